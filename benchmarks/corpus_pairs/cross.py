"""
Cross-library pairs, timm <-> torchvision: the truth is written by hand (a
zip of the two state dicts in order, or rules over the names) and checked by
equal outputs (:func:`corpus_pairs.verify_truth`); plus timm's
``features_only`` models (truth by names).

Example:
    >>> from corpus_pairs import PAIRS
    >>> PAIRS['timm-vit-small->tv-vit-small'].truth_from
    'outputs'
"""
import re

from torch import nn

from corpus_pairs.models import NO_AUX, image, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair, truth_by_names

__all__ = ['maxvit_truth', 'regnet_truth', 'swin_truth', 'swinv2_truth', 'vit_truth']


# --- cross-library pairs (truth written by hand, checked by equal outputs)


_VIT_RULES = [  # timm name -> torchvision name (regex over full keys)
    (r'cls_token', 'class_token'),
    (r'pos_embed', 'encoder.pos_embedding'),
    (r'patch_embed\.proj\.(\w+)', r'conv_proj.\1'),
    (r'blocks\.(\d+)\.norm1\.(\w+)', r'encoder.layers.encoder_layer_\1.ln_1.\2'),
    (r'blocks\.(\d+)\.attn\.qkv\.(\w+)', r'encoder.layers.encoder_layer_\1.self_attention.in_proj_\2'),
    (r'blocks\.(\d+)\.attn\.proj\.(\w+)', r'encoder.layers.encoder_layer_\1.self_attention.out_proj.\2'),
    (r'blocks\.(\d+)\.norm2\.(\w+)', r'encoder.layers.encoder_layer_\1.ln_2.\2'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'encoder.layers.encoder_layer_\1.mlp.0.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'encoder.layers.encoder_layer_\1.mlp.3.\2'),
    (r'norm\.(\w+)', r'encoder.ln.\1'),
    (r'head\.(\w+)', r'heads.head.\1'),
]


def _zip_case(src, dst, x):
    """Truth = the two state dicts zipped in order (checked by shapes here, by outputs in the tests)."""
    s, d = keep(src), dst.state_dict()
    if len(s) != len(d) or any(a.numel() != b.numel() for a, b in zip(s.values(), d.values())):
        raise RuntimeError('the two state dicts do not zip')
    return Case(s, dst, dict(zip(s, d)), src, x)


def vit_truth(timm_keys) -> dict:
    """
    ``{timm ViT key: torchvision ViT key}`` for every key of a timm VisionTransformer.

    Example:
        >>> from corpus_pairs.cross import vit_truth
        >>> vit_truth(['blocks.3.attn.qkv.weight'])
        {'blocks.3.attn.qkv.weight': 'encoder.layers.encoder_layer_3.self_attention.in_proj_weight'}
    """
    truth = {}
    for key in timm_keys:
        for pattern, repl in _VIT_RULES:
            if re.fullmatch(pattern, key):
                truth[key] = re.sub(pattern, repl, key)
                break
        else:
            raise KeyError(f'no torchvision name for the timm ViT key {key!r}')
    return truth


def _vits(small):
    timm, tv = timm_module(), torchvision_module()
    if small:
        cfg = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                   mlp_dim=128, num_classes=10)
        a = timm.models.vision_transformer.VisionTransformer(
            img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4,
            num_classes=10)
        b = tv.models.vision_transformer.VisionTransformer(**cfg)
        return a, b, image(32)
    return (timm.create_model('vit_base_patch16_224', pretrained=False),
            tv.models.vit_b_16(weights=None), image(224))


def _vit_case(small, timm_to_tv):
    a, b, x = _vits(small)
    truth = vit_truth(a.state_dict())
    if timm_to_tv:
        return Case(keep(a), b, truth, a, x)
    return Case(keep(b), a, {v: k for k, v in truth.items()}, b, x)


register_pair('timm-vit-small->tv-vit-small', 'outputs', cross_naming=True, fast=True,
              note='a 2-layer ViT configured alike in timm and torchvision')(lambda: _vit_case(True, True))
register_pair('tv-vit-small->timm-vit-small', 'outputs', cross_naming=True, fast=True,
              note='the same, torchvision to timm')(lambda: _vit_case(True, False))
register_pair('timm-vit_base->tv-vit_b_16', 'outputs', cross_naming=True,
              note='timm vit_base_patch16_224 -> torchvision vit_b_16')(lambda: _vit_case(False, True))
register_pair('tv-vit_b_16->timm-vit_base', 'outputs', cross_naming=True,
              note='torchvision vit_b_16 -> timm vit_base_patch16_224')(lambda: _vit_case(False, False))


@register_pair('timm-efficientnet_b0->tv-efficientnet_b0', 'outputs', cross_naming=True,
               note='timm efficientnet_b0 -> torchvision efficientnet_b0 (same order, other names)')
def _effnet():
    return _zip_case(timm_module().create_model('efficientnet_b0', pretrained=False),
                     torchvision_module().models.efficientnet_b0(weights=None), image(64))


@register_pair('timm-convnext_tiny->tv-convnext_tiny', 'outputs', cross_naming=True,
               note="timm convnext_tiny -> torchvision convnext_tiny; timm's gamma [C] is "
                    "torchvision's layer_scale [C, 1, 1]")
def _convnext():
    return _zip_case(timm_module().create_model('convnext_tiny', pretrained=False),
                     torchvision_module().models.convnext_tiny(weights=None), image(64))


def _timm_resnet(arch):
    return _zip_case(timm_module().create_model(arch, pretrained=False),
                     getattr(torchvision_module().models, arch)(weights=None), image(64))


register_pair('timm-resnet18->tv-resnet18', 'outputs', fast=True,
              note='timm resnet18 -> torchvision resnet18 (same names)')(lambda: _timm_resnet('resnet18'))
@register_pair('timm-resnet18->timm-features_only', 'names', fast=True,
               note="timm resnet18 -> timm.create_model('resnet18', features_only=True)")
def _features_only():
    timm = timm_module()
    src = timm.create_model('resnet18', pretrained=False)
    dst = timm.create_model('resnet18', pretrained=False, features_only=True)
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


register_pair('timm-resnet50->tv-resnet50', 'outputs',
              note='timm resnet50 -> torchvision resnet50 (same names)')(lambda: _timm_resnet('resnet50'))


# --- more cross-library pairs (timm <-> torchvision), checked by equal outputs


def _timm_tv(timm_arch, tv_arch, size=64, timm_to_tv=True, tv_kw=None, prepare=None):
    """timm and torchvision models whose state dicts zip in order."""
    a = timm_module().create_model(timm_arch, pretrained=False)
    b = tv_model(tv_arch, **(tv_kw or {}))
    if prepare:
        prepare(a)
    return _zip_case(a, b, image(size)) if timm_to_tv else _zip_case(b, a, image(size))


def _bn_eps(eps):
    def prepare(model):
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = eps
    return prepare


for _name, _args, _kw in [
    ('timm-densenet121->tv-densenet121', ('densenet121', 'densenet121'), {}),
    ('tv-densenet121->timm-densenet121', ('densenet121', 'densenet121'), dict(timm_to_tv=False)),
    ('timm-inception_v3->tv-inception_v3', ('inception_v3', 'inception_v3'),
     dict(size=96, tv_kw=NO_AUX)),
    ('timm-vgg11->tv-vgg11', ('vgg11', 'vgg11'), dict(size=224)),
    ('timm-mobilenetv2_100->tv-mobilenet_v2', ('mobilenetv2_100', 'mobilenet_v2'), {}),
    ('tv-mobilenet_v2->timm-mobilenetv2_100', ('mobilenetv2_100', 'mobilenet_v2'), dict(timm_to_tv=False)),
    # torchvision's MobileNetV3 BatchNorms use eps=1e-3 (timm's 1e-5): set for the output check
    ('timm-mobilenetv3_large_100->tv-mobilenet_v3_large', ('mobilenetv3_large_100', 'mobilenet_v3_large'),
     dict(prepare=_bn_eps(1e-3))),
    ('timm-efficientnet_b2->tv-efficientnet_b2', ('efficientnet_b2', 'efficientnet_b2'), {}),
    ('timm-resnet34->tv-resnet34', ('resnet34', 'resnet34'), {}),
    ('timm-resnext50_32x4d->tv-resnext50_32x4d', ('resnext50_32x4d', 'resnext50_32x4d'), {}),
    ('timm-mnasnet_100->tv-mnasnet1_0', ('mnasnet_100', 'mnasnet1_0'), {}),
    ('tv-mnasnet1_0->timm-mnasnet_100', ('mnasnet_100', 'mnasnet1_0'), dict(timm_to_tv=False)),
]:
    register_pair(_name, 'outputs', cross_naming=not _name.startswith('timm-res'),
                  note=f'timm {_args[0]} <-> torchvision {_args[1]} (the state dicts zip in order)')(
        lambda a=_args, k=_kw: _timm_tv(*a, **k))


def regnet_truth(timm_keys) -> dict:
    """
    timm RegNet names -> torchvision's (timm: conv1..3, se, downsample; torchvision: proj first).

    Example:
        >>> from corpus_pairs.cross import regnet_truth
        >>> regnet_truth(['s2.b1.downsample.conv.weight'])
        {'s2.b1.downsample.conv.weight': 'trunk_output.block2.block2-0.proj.0.weight'}
    """
    parts = {'conv1.conv': 'f.a.0', 'conv1.bn': 'f.a.1', 'conv2.conv': 'f.b.0', 'conv2.bn': 'f.b.1',
             'se.fc1': 'f.se.fc1', 'se.fc2': 'f.se.fc2', 'conv3.conv': 'f.c.0', 'conv3.bn': 'f.c.1',
             'downsample.conv': 'proj.0', 'downsample.bn': 'proj.1'}
    truth = {}
    for key in timm_keys:
        m = re.fullmatch(r's(\d)\.b(\d+)\.(\w+\.\w+)\.(\w+)', key)
        if m:
            stage, block, part, leaf = m.groups()
            truth[key] = f'trunk_output.block{stage}.block{stage}-{int(block) - 1}.{parts[part]}.{leaf}'
        elif key.startswith('stem.'):
            truth[key] = key.replace('stem.conv.', 'stem.0.').replace('stem.bn.', 'stem.1.')
        elif key.startswith('head.fc.'):
            truth[key] = key[len('head.'):]
        else:
            raise KeyError(f'no torchvision name for the timm RegNet key {key!r}')
    return truth


def _regnet_case(timm_arch, tv_arch, timm_to_tv):
    a = timm_module().create_model(timm_arch, pretrained=False)
    b = tv_model(tv_arch)
    truth = regnet_truth(a.state_dict())
    if timm_to_tv:
        return Case(keep(a), b, truth, a, image())
    return Case(keep(b), a, {v: k for k, v in truth.items()}, b, image())


register_pair('timm-regnety_004->tv-regnet_y_400mf', 'outputs', cross_naming=True,
              note="timm regnety_004 -> torchvision regnet_y_400mf: torchvision registers the "
                   "shortcut (proj, [48, 32, 1, 1]) before f.a (the same shape): order misleads")(
    lambda: _regnet_case('regnety_004', 'regnet_y_400mf', True))
register_pair('tv-regnet_y_400mf->timm-regnety_004', 'outputs', cross_naming=True,
              note='the same, torchvision to timm')(
    lambda: _regnet_case('regnety_004', 'regnet_y_400mf', False))


_SWIN_RULES = [  # timm name -> torchvision name
    (r'patch_embed\.proj\.(\w+)', r'features.0.0.\1'),
    (r'patch_embed\.norm\.(\w+)', r'features.0.2.\1'),
    (r'layers\.(\d)\.blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'features.{2s+1}.\2.mlp.0.\3'),
    (r'layers\.(\d)\.blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'features.{2s+1}.\2.mlp.3.\3'),
    (r'layers\.(\d)\.blocks\.(\d+)\.(.+)', r'features.{2s+1}.\2.\3'),
    (r'layers\.(\d)\.downsample\.(\w+)\.(\w+)', r'features.{2s}.\2.\3'),
    (r'norm\.(\w+)', r'norm.\1'),
    (r'head\.fc\.(\w+)', r'head.\1'),
]


def swin_truth(timm_keys) -> dict:
    """
    timm Swin names -> torchvision's.

    Example:
        >>> from corpus_pairs.cross import swin_truth
        >>> swin_truth(['layers.1.downsample.norm.weight'])
        {'layers.1.downsample.norm.weight': 'features.2.norm.weight'}
    """
    truth = {}
    for key in timm_keys:
        for pattern, repl in _SWIN_RULES:
            m = re.fullmatch(pattern, key)
            if m:
                if '{' in repl:
                    stage = int(m.group(1))
                    repl = repl.replace('{2s+1}', str(2 * stage + 1)).replace('{2s}', str(2 * stage))
                truth[key] = m.expand(repl)
                break
        else:
            raise KeyError(f'no torchvision name for the timm Swin key {key!r}')
    return truth


@register_pair('timm-swin_tiny->tv-swin_t', 'outputs', cross_naming=True,
               note="timm swin_tiny_patch4_window7_224 -> torchvision swin_t: timm's downsample opens "
                    "a stage, torchvision's PatchMerging is its own features entry; torchvision's "
                    'relative_position_index buffers get nothing')
def _swin_cross():
    a = timm_module().create_model('swin_tiny_patch4_window7_224', pretrained=False)
    return Case(keep(a), tv_model('swin_t'), swin_truth(a.state_dict()), a, image(224))


_SWINV2_PARTS = {'attn.logit_scale': 'attn.logit_scale', 'attn.cpb_mlp.': 'attn.cpb_mlp.',
                 'attn.qkv.weight': 'attn.qkv.weight', 'attn.proj.': 'attn.proj.',
                 'norm1.': 'norm1.', 'norm2.': 'norm2.', 'mlp.fc1.': 'mlp.0.', 'mlp.fc2.': 'mlp.3.'}


def swinv2_truth(timm_keys) -> dict:
    """
    timm Swin V2 names -> torchvision's, for the keys that have a place (not
    timm's separate ``q_bias`` and ``v_bias``, nor the relative position
    buffers).

    Example:
        >>> from corpus_pairs.cross import swinv2_truth
        >>> truth = swinv2_truth(['layers.0.blocks.1.norm1.weight', 'layers.0.blocks.1.attn.q_bias',
        ...                       'layers.1.downsample.reduction.weight'])
        >>> sorted(truth.values())
        ['features.1.1.norm1.weight', 'features.2.reduction.weight']
    """
    truth = {}
    for key in timm_keys:
        m = re.fullmatch(r'layers\.(\d+)\.blocks\.(\d+)\.(.*)', key)
        if m:
            for part, place in _SWINV2_PARTS.items():
                if m[3].startswith(part):
                    truth[key] = f'features.{2 * int(m[1]) + 1}.{m[2]}.{place}{m[3][len(part):]}'
            continue
        m = re.fullmatch(r'layers\.(\d+)\.downsample\.(.*)', key)
        if m:
            truth[key] = f'features.{2 * int(m[1])}.{m[2]}'
            continue
        for part, place in [('patch_embed.proj.', 'features.0.0.'),
                            ('patch_embed.norm.', 'features.0.2.'), ('norm.', 'norm.'),
                            ('head.fc.', 'head.')]:
            if key.startswith(part):
                truth[key] = place + key[len(part):]
    return truth


def _either_way(timm_model, tv, truth, reverse):
    """The timm model's checkpoint into torchvision's (``truth``: timm key ->
    torchvision key), or, reversed, torchvision's into timm's."""
    if reverse:
        return Case(keep(tv), timm_model, {v: k for k, v in truth.items()})
    return Case(keep(timm_model), tv, truth)


def _swinv2_case(reverse):
    a = timm_module().create_model('swinv2_tiny_window8_256', pretrained=False)
    return _either_way(a, tv_model('swin_v2_t'), swinv2_truth(a.state_dict()), reverse)


register_pair('timm-swinv2_tiny->tv-swin_v2_t', 'names', cross_naming=True,
              note='timm swinv2_tiny_window8_256 -> torchvision swin_v2_t: timm registers a '
                   "block's norm1 after the attention and norm2 after the MLP, torchvision "
                   'before them (both apply them after): order put norm1 into norm2 and norm2 '
                   "into the next block's norm1 (40 wrong); timm's q_bias and v_bias have no "
                   'place')(
    lambda: _swinv2_case(False))
register_pair('tv-swin_v2_t->timm-swinv2_tiny', 'names', cross_naming=True,
              note='the same, back')(lambda: _swinv2_case(True))


_MAXVIT_CONV = {'pre_norm.': 'layers.pre_norm.', 'conv1_1x1.': 'layers.conv_a.0.',
                'norm1.': 'layers.conv_a.1.', 'conv2_kxk.': 'layers.conv_b.0.',
                'norm2.': 'layers.conv_b.1.', 'se.': 'layers.squeeze_excitation.',
                'conv3_1x1.': 'layers.conv_c.', 'shortcut.expand.': 'proj.1.'}
_MAXVIT_ATTN = {'norm1.': 'attn_layer.0.', 'attn.qkv.': 'attn_layer.1.to_qkv.',
                'attn.proj.': 'attn_layer.1.merge.', 'norm2.': 'mlp_layer.0.',
                'mlp.fc1.': 'mlp_layer.1.', 'mlp.fc2.': 'mlp_layer.3.'}
_MAXVIT_ENDS = [('stem.conv1.', 'stem.0.0.'), ('stem.norm1.', 'stem.0.1.'),
                ('stem.conv2.', 'stem.1.0.'), ('head.norm.', 'classifier.2.'),
                ('head.pre_logits.fc.', 'classifier.3.'), ('head.fc.', 'classifier.5.')]


def maxvit_truth(timm_shapes, tv_shapes) -> dict:
    """
    timm MaxViT names -> torchvision's, for the keys whose place has their
    shape: not the biases of timm's stem convolution and classifier
    (torchvision's have none), nor the relative position tables (timm's
    ``(heads, 13, 13)`` is torchvision's ``(169, heads)`` transposed).

    Example:
        >>> from corpus_pairs.cross import maxvit_truth
        >>> timm_keys = {'stages.0.blocks.1.attn_grid.attn.proj.weight': (64, 64),
        ...              'stem.conv1.bias': (64,)}
        >>> place = 'blocks.0.layers.1.layers.grid_attention.attn_layer.1.merge.weight'
        >>> truth = maxvit_truth(timm_keys, {place: (64, 64)})
        >>> list(truth.values())
        ['blocks.0.layers.1.layers.grid_attention.attn_layer.1.merge.weight']
    """
    truth = {}
    for key, shape in timm_shapes.items():
        place = None
        m = re.fullmatch(r'stages\.(\d+)\.blocks\.(\d+)\.(conv|attn_block|attn_grid)\.(.*)', key)
        if m:
            parts, unit = ((_MAXVIT_CONV, 'MBconv.') if m[3] == 'conv' else
                           (_MAXVIT_ATTN, 'window_attention.' if m[3] == 'attn_block'
                            else 'grid_attention.'))
            for part, there in parts.items():
                if m[4].startswith(part):
                    place = f'blocks.{m[1]}.layers.{m[2]}.layers.{unit}{there}{m[4][len(part):]}'
        else:
            for part, there in _MAXVIT_ENDS:
                if key.startswith(part):
                    place = there + key[len(part):]
        if place is not None and tv_shapes.get(place) == shape:
            truth[key] = place
    return truth


def _maxvit_case(reverse):
    a = timm_module().create_model('maxvit_tiny_tf_224', pretrained=False)
    b = tv_model('maxvit_t')
    truth = maxvit_truth({k: tuple(v.shape) for k, v in a.state_dict().items()},
                         {k: tuple(v.shape) for k, v in b.state_dict().items()})
    return _either_way(a, b, truth, reverse)


register_pair('timm-maxvit_tiny->tv-maxvit_t', 'names', cross_naming=True,
              note="timm maxvit_tiny_tf_224 -> torchvision maxvit_t: torchvision's stem "
                   'convolution and classifier have no bias and its first block a 1x1 '
                   "shortcut timm's lacks, so the stem, the blocks and the head are each "
                   "left short; the head's norm and projection fit a block's, whose places "
                   'were all taken (was 0: read as two alternatives)')(
    lambda: _maxvit_case(False))
register_pair('tv-maxvit_t->timm-maxvit_tiny', 'names', cross_naming=True,
              note='the same, back')(lambda: _maxvit_case(True))


@register_pair('tv-resnet50->timm-features_only(1,2)', 'names',
               note="torchvision resnet50 -> timm.create_model('resnet50', features_only=True, "
                    'out_indices=(1, 2)): layer3, layer4 and fc belong nowhere')
def _tv_features_only():
    src = tv_model('resnet50')
    dst = timm_module().create_model('resnet50', pretrained=False, features_only=True, out_indices=(1, 2))
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


@register_pair('tv-efficientnet_b0->timm-features_only', 'names', cross_naming=True,
               note="torchvision efficientnet_b0 -> timm efficientnet_b0 features_only: the truth is "
                    "the verified timm<->torchvision zip (pair timm-efficientnet_b0->tv-efficientnet_b0) "
                    'restricted to the keys features_only keeps (no conv_head, bn2, classifier)')
def _tv_effnet_features_only():
    timm = timm_module()
    src = tv_model('efficientnet_b0')
    full = timm.create_model('efficientnet_b0', pretrained=False)
    dst = timm.create_model('efficientnet_b0', pretrained=False, features_only=True)
    state = keep(src)
    kept = dst.state_dict().keys()
    zipped = dict(zip(state, full.state_dict()))
    return Case(state, dst, {s: d for s, d in zipped.items() if d in kept})


@register_pair('timm-vit_small->tv-vit(small config)', 'outputs', cross_naming=True,
               note='timm vit_small_patch16_224 -> torchvision VisionTransformer configured alike '
                    '(384 wide, 6 heads, 12 layers)')
def _vit_small_real():
    a = timm_module().create_model('vit_small_patch16_224', pretrained=False)
    b = torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536)
    return Case(keep(a), b, vit_truth(a.state_dict()), a, image(224))


@register_pair('timm-mobilenetv2_100->timm-features_only', 'names',
               note="timm mobilenetv2_100 -> the same with features_only=True (same names)")
def _timm_mbv2_features_only():
    timm = timm_module()
    src = timm.create_model('mobilenetv2_100', pretrained=False)
    dst = timm.create_model('mobilenetv2_100', pretrained=False, features_only=True)
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


# --- more timm <-> torchvision families (hunt 2), checked by equal outputs


for _name, _args, _kw in [
    # torchvision's EfficientNetV2 and MobileNetV3 BatchNorms use eps=1e-3 (timm's 1e-5)
    ('timm-efficientnetv2_s->tv-efficientnet_v2_s', ('efficientnetv2_s', 'efficientnet_v2_s'),
     dict(prepare=_bn_eps(1e-3))),
    ('timm-mobilenetv3_small_100->tv-mobilenet_v3_small', ('mobilenetv3_small_100', 'mobilenet_v3_small'),
     dict(prepare=_bn_eps(1e-3))),
    ('tv-mobilenet_v3_small->timm-mobilenetv3_small_100', ('mobilenetv3_small_100', 'mobilenet_v3_small'),
     dict(prepare=_bn_eps(1e-3), timm_to_tv=False)),
    ('timm-efficientnet_b3->tv-efficientnet_b3', ('efficientnet_b3', 'efficientnet_b3'), {}),
    ('tv-efficientnet_b0->timm-efficientnet_b0', ('efficientnet_b0', 'efficientnet_b0'),
     dict(timm_to_tv=False)),
    ('timm-convnext_small->tv-convnext_small', ('convnext_small', 'convnext_small'), {}),
    ('tv-convnext_tiny->timm-convnext_tiny', ('convnext_tiny', 'convnext_tiny'), dict(timm_to_tv=False)),
    ('timm-wide_resnet50_2->tv-wide_resnet50_2', ('wide_resnet50_2', 'wide_resnet50_2'), {}),
    ('timm-densenet169->tv-densenet169', ('densenet169', 'densenet169'), {}),
]:
    register_pair(_name, 'outputs', cross_naming=not _name.startswith('timm-wide'),
                  note=f'timm {_args[0]} <-> torchvision {_args[1]} (the state dicts zip in order)')(
        lambda a=_args, k=_kw: _timm_tv(*a, **k))


register_pair('timm-regnetx_016->tv-regnet_x_1_6gf', 'outputs', cross_naming=True,
              note='timm regnetx_016 -> torchvision regnet_x_1_6gf (no SE; proj registered first '
                   'in torchvision)')(lambda: _regnet_case('regnetx_016', 'regnet_x_1_6gf', True))
register_pair('tv-regnet_x_1_6gf->timm-regnetx_016', 'outputs', cross_naming=True,
              note='the same, torchvision to timm')(
    lambda: _regnet_case('regnetx_016', 'regnet_x_1_6gf', False))
def _regnet_last_stage_differs(timm_to_tv):
    """timm's regnetx_004 and torchvision's regnet_x_400mf: one design, but
    the last stage is 384 wide in timm and 400 in torchvision; its blocks
    and the head belong nowhere."""
    a = timm_module().create_model('regnetx_004', pretrained=False)
    b = tv_model('regnet_x_400mf')
    truth = {k: v for k, v in regnet_truth(a.state_dict()).items()
             if not k.startswith(('s4.', 'head.'))}
    if timm_to_tv:
        return Case(keep(a), b, truth)
    return Case(keep(b), a, {v: k for k, v in truth.items()})


register_pair('timm-regnetx_004->tv-regnet_x_400mf (last stage wider)', 'names', cross_naming=True,
              note='timm regnetx_004 -> torchvision regnet_x_400mf: the first three stages and '
                   'the stem are one design, the last stage is 384 wide in timm, 400 in '
                   'torchvision')(lambda: _regnet_last_stage_differs(True))
register_pair('tv-regnet_x_400mf->timm-regnetx_004 (last stage wider)', 'names', cross_naming=True,
              note='the same, torchvision to timm')(lambda: _regnet_last_stage_differs(False))
register_pair('timm-regnety_016->tv-regnet_y_1_6gf', 'outputs', cross_naming=True,
              note='timm regnety_016 -> torchvision regnet_y_1_6gf (27 blocks, SE)')(
    lambda: _regnet_case('regnety_016', 'regnet_y_1_6gf', True))


def _timm_vit_case(timm_arch, tv_cfg, timm_to_tv=True):
    a = timm_module().create_model(timm_arch, pretrained=False)
    b = torchvision_module().models.vision_transformer.VisionTransformer(image_size=224, **tv_cfg)
    truth = vit_truth(a.state_dict())
    if timm_to_tv:
        return Case(keep(a), b, truth, a, image(224))
    return Case(keep(b), a, {v: k for k, v in truth.items()}, b, image(224))


_DEIT_TINY = dict(patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768)
register_pair('timm-deit_tiny->tv-vit(tiny config)', 'outputs', cross_naming=True,
              note='timm deit_tiny_patch16_224 -> torchvision VisionTransformer configured alike '
                   '(192 wide, 3 heads, 12 layers: 12 blocks of equal shapes)')(
    lambda: _timm_vit_case('deit_tiny_patch16_224', _DEIT_TINY))
register_pair('tv-vit(tiny config)->timm-deit_tiny', 'outputs', cross_naming=True,
              note='the same, torchvision to timm')(
    lambda: _timm_vit_case('deit_tiny_patch16_224', _DEIT_TINY, False))
register_pair('timm-vit_base_patch32->tv-vit_b_32', 'outputs', cross_naming=True,
              note='timm vit_base_patch32_224 -> torchvision vit_b_32')(
    lambda: _timm_vit_case('vit_base_patch32_224', dict(patch_size=32, num_layers=12, num_heads=12,
                                                        hidden_dim=768, mlp_dim=3072)))


@register_pair('tv-swin_t->timm-swin_tiny', 'outputs', cross_naming=True,
               note="torchvision swin_t -> timm swin_tiny_patch4_window7_224 (the reverse of "
                    "timm-swin_tiny->tv-swin_t; torchvision's relative_position_index buffers belong nowhere)")
def _swin_cross_reverse():
    a = timm_module().create_model('swin_tiny_patch4_window7_224', pretrained=False)
    b = tv_model('swin_t')
    truth = swin_truth(a.state_dict())
    return Case(keep(b), a, {v: k for k, v in truth.items()}, b, image(224))


# --- timm features_only models whose module names lose a dot (stages.0 -> stages_0)


def _features_only_truth(names, dst):
    """``{key: key with the first '.' of a features_only module name turned into '_'}`` where it exists."""
    kept = dst.state_dict().keys()
    truth = {}
    for key in names:
        for candidate in (key, re.sub(r'^(\w+)\.(\d+)\.', r'\1_\2.', key)):
            if candidate in kept:
                truth[key] = candidate
                break
    return truth


def _timm_to_features_only(arch):
    """A timm model into the same model built with ``features_only=True``."""
    timm = timm_module()
    src = timm.create_model(arch, pretrained=False)
    dst = timm.create_model(arch, pretrained=False, features_only=True)
    state = keep(src)
    return Case(state, dst, _features_only_truth(state, dst))


@register_pair('timm-convnext_tiny->timm-features_only', 'names',
               note="timm convnext_tiny -> the same with features_only=True: stem.0 -> stem_0, "
                    'stages.N -> stages_N, the head belongs nowhere')
def _convnext_features_only():
    return _timm_to_features_only('convnext_tiny')


@register_pair('timm-swin_tiny->timm-features_only', 'names',
               note="timm swin_tiny_patch4_window7_224 -> features_only=True: layers.N -> layers_N; "
                    'the final norm and head belong nowhere')
def _swin_features_only():
    return _timm_to_features_only('swin_tiny_patch4_window7_224')


@register_pair('tv-convnext_tiny->timm-features_only', 'names', cross_naming=True,
               note='torchvision convnext_tiny -> timm convnext_tiny features_only: the truth is the '
                    'verified zip (timm-convnext_tiny->tv-convnext_tiny) through the renamed stem_0/stages_N')
def _tv_convnext_features_only():
    timm = timm_module()
    src = tv_model('convnext_tiny')
    full = timm.create_model('convnext_tiny', pretrained=False)
    dst = timm.create_model('convnext_tiny', pretrained=False, features_only=True)
    state = keep(src)
    to_dst = _features_only_truth(full.state_dict(), dst)
    return Case(state, dst, {s: to_dst[t] for s, t in zip(state, full.state_dict()) if t in to_dst})


@register_pair('timm-efficientnet_b0->tv-efficientnet_b0 (no num_batches_tracked)', 'outputs',
               cross_naming=True,
               note='the timm -> torchvision efficientnet_b0 pair from a checkpoint saved before '
                    'BatchNorm had num_batches_tracked (PyTorch < 0.4.1): 49 fewer keys')
def _effnet_no_counters():
    case = _zip_case(timm_module().create_model('efficientnet_b0', pretrained=False),
                     tv_model('efficientnet_b0'), image(64))
    case.source = {k: v for k, v in case.source.items() if not k.endswith('num_batches_tracked')}
    case.truth = {k: v for k, v in case.truth.items() if k in case.source}
    return case


@register_pair('timm-deit_tiny->timm-features_only', 'names',
               note="timm deit_tiny -> features_only=True (the ViT wrapped as model.*): the head "
                    'and final norm belong nowhere')
def _deit_features_only():
    timm = timm_module()
    src = timm.create_model('deit_tiny_patch16_224', pretrained=False)
    dst = timm.create_model('deit_tiny_patch16_224', pretrained=False, features_only=True)
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', 'model.')]))


@register_pair('timm-regnety_016->timm-features_only', 'names',
               note='timm regnety_016 -> the same with features_only=True (same names, the head dropped)')
def _regnet_features_only():
    timm = timm_module()
    src = timm.create_model('regnety_016', pretrained=False)
    dst = timm.create_model('regnety_016', pretrained=False, features_only=True)
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


@register_pair('timm-efficientnet_b0 (no head)->tv-efficientnet_b0', 'names', cross_naming=True,
               note='the timm -> torchvision efficientnet_b0 pair from a checkpoint without '
                    'conv_head, bn2 and classifier (a saved feature extractor); the truth is the '
                    'verified zip restricted to the keys kept')
def _effnet_no_head():
    case = _zip_case(timm_module().create_model('efficientnet_b0', pretrained=False),
                     tv_model('efficientnet_b0'), image(64))
    case.source = {k: v for k, v in case.source.items()
                   if not k.startswith(('conv_head.', 'bn2.', 'classifier.'))}
    case.truth = {k: v for k, v in case.truth.items() if k in case.source}
    return case


# --- another depth: one library's checkpoint into the other library's model
# of the same family and another depth (the truth by names: where the other
# library's model of the checkpoint's own depth names each tensor, kept
# where the destination has that name in the same shape)


def _another_depth(src, names, dst, sort=False):
    """``names``: source key -> its name in the other library's model of the
    source's depth (a verified zip or rules). Names the destination holds
    in another shape are unjudged; ``sort``: the checkpoint's keys sorted,
    as a safetensors file lists them."""
    state, have = keep(src), dst.state_dict()

    def squeezed(t):
        return tuple(n for n in t.shape if n != 1)

    truth = {k: v for k, v in names.items()
             if v in have and squeezed(state[k]) == squeezed(have[v])}
    unjudged = {v for v in names.values() if v in have} - set(truth.values())
    if sort:
        state = dict(sorted(state.items()))
    return Case(state, dst, truth, unjudged=unjudged)


def _zipped_names(timm_arch, tv_arch):
    """A timm model and ``{timm key: torchvision key}`` of the zip of the
    two libraries' models of one architecture (checked by outputs in the
    corpus's pairs of that architecture)."""
    a = timm_module().create_model(timm_arch, pretrained=False)
    b = tv_model(tv_arch)
    return a, dict(zip(a.state_dict(), b.state_dict()))


for _timm, _tv, _other, _sort in [('efficientnet_b0', 'efficientnet_b0', 'efficientnet_b1', False),
                                  ('efficientnet_b0', 'efficientnet_b0', 'efficientnet_b1', True),
                                  ('efficientnet_b1', 'efficientnet_b1', 'efficientnet_b0', False),
                                  ('convnext_tiny', 'convnext_tiny', 'convnext_small', False)]:
    register_pair(f'timm-{_timm}->tv-{_other} (another depth{", sorted keys" if _sort else ""})',
                  'names', cross_naming=True,
                  note=f'timm {_timm} -> torchvision {_other}: blocks go where torchvision '
                       f'{_tv} names them, where {_other} has them in the same shape')(
        lambda t=_timm, v=_tv, o=_other, s=_sort: _another_depth(
            *_zipped_names(t, v), tv_model(o), sort=s))


def _swin_another_depth(sort):
    a = timm_module().create_model('swin_tiny_patch4_window7_224', pretrained=False)
    return _another_depth(a, swin_truth(a.state_dict()), tv_model('swin_s'), sort=sort)


register_pair('timm-swin_tiny->tv-swin_s (another depth)', 'names', cross_naming=True,
              note='timm swin_tiny -> torchvision swin_s (stage 3 of 6 blocks into one of 18)')(
    lambda: _swin_another_depth(False))
register_pair('timm-swin_tiny->tv-swin_s (another depth, sorted keys)', 'names',
              cross_naming=True, note='the same, keys sorted')(lambda: _swin_another_depth(True))


def _vit_another_depth():
    a = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    b = torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=224, **{**_DEIT_TINY, 'num_layers': 6})
    return _another_depth(a, vit_truth(a.state_dict()), b)


register_pair('timm-deit_tiny->tv-vit(tiny config, 6 layers) (another depth)', 'names',
              cross_naming=True,
              note='timm deit_tiny (12 blocks) -> a torchvision ViT of its width and 6 layers: '
                   'the first six blocks by their numbers')(_vit_another_depth)
