"""
Hunt 3: other libraries' names (HuggingFace ViT in its registration order,
mmdet / mmseg checkpoints, Keras-like flat names), timm <-> torchvision
pairs not in :mod:`corpus_pairs.cross` (checked by outputs), and
torchvision's segmentation (aux heads), video and quantizable models.

Example:
    >>> from corpus_pairs import build_case
    >>> build_case('keras-names->resnet50').truth['conv2_block1_0_conv.weight']
    'layer1.0.downsample.0.weight'
"""
import re
from collections import OrderedDict

import torch
from torch import nn

from corpus_pairs.cross import vit_truth
from corpus_pairs.hunt3 import names_case, vit_tiny_config
from corpus_pairs.models import (
    NO_AUX, Slots, image, in_order, keep, timm_module, torchvision_module, tv_model)
from corpus_pairs.registry import Case, register_pair

__all__ = ['hf_beit_like', 'hf_beit_name', 'hf_hiera_state', 'hf_swinv2_state',
           'hf_vit_state', 'keras_resnet']


# --- other libraries' names


_HF_VIT = [  # timm ViT key -> HuggingFace ViTForImageClassification key (qkv kept fused)
    (r'cls_token', 'vit.embeddings.cls_token'),
    (r'pos_embed', 'vit.embeddings.position_embeddings'),
    (r'patch_embed\.proj\.(\w+)', r'vit.embeddings.patch_embeddings.projection.\1'),
    (r'blocks\.(\d+)\.norm1\.(\w+)', r'vit.encoder.layer.\1.layernorm_before.\2'),
    (r'blocks\.(\d+)\.attn\.qkv\.(\w+)', r'vit.encoder.layer.\1.attention.attention.qkv.\2'),
    (r'blocks\.(\d+)\.attn\.proj\.(\w+)', r'vit.encoder.layer.\1.attention.output.dense.\2'),
    (r'blocks\.(\d+)\.norm2\.(\w+)', r'vit.encoder.layer.\1.layernorm_after.\2'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'vit.encoder.layer.\1.intermediate.dense.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'vit.encoder.layer.\1.output.dense.\2'),
    (r'norm\.(\w+)', r'vit.layernorm.\1'),
    (r'head\.(\w+)', r'classifier.\1'),
]


def _hf_order(key):
    """HuggingFace's registration order: embeddings (parameters before the patch conv), each layer's
    attention, intermediate, output, then its two layer norms, the final norm, the classifier."""
    m = re.match(r'vit\.encoder\.layer\.(\d+)\.(\w+)', key)
    if m:
        part = ['attention', 'intermediate', 'output', 'layernorm_before', 'layernorm_after'].index(m.group(2))
        return (1, int(m.group(1)), part)
    top = ['vit.embeddings.cls_token', 'vit.embeddings.position_embeddings', 'vit.embeddings.patch_embeddings']
    for i, prefix in enumerate(top):
        if key.startswith(prefix):
            return (0, i, 0)
    return (2, 0 if key.startswith('vit.layernorm') else 1, 0)


def hf_vit_state(model) -> dict:
    """
    A timm ViT's own tensors under HuggingFace ViT names, in HuggingFace's registration order.

    Example:
        >>> from corpus_pairs.models import timm_module
        >>> from corpus_pairs.hunt3_names import hf_vit_state
        >>> vit = timm_module().models.vision_transformer.VisionTransformer(
        ...     img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2)
        >>> list(hf_vit_state(vit))[1:3]
        ['vit.embeddings.position_embeddings', 'vit.embeddings.patch_embeddings.projection.weight']
    """
    state = {}
    for key, value in keep(model).items():
        for pattern, repl in _HF_VIT:
            if re.fullmatch(pattern, key):
                state[re.sub(pattern, repl, key)] = value
                break
        else:
            raise KeyError(f'no HuggingFace name for {key!r}')
    return dict(sorted(state.items(), key=lambda kv: _hf_order(kv[0])))


@register_pair('hf-vit-names->timm-deit_tiny', 'identity', cross_naming=True,
               note='a deit_tiny checkpoint under HuggingFace ViT names and order (embeddings.'
                    'patch_embeddings.projection, encoder.layer.N.attention.output.dense, layernorm_before/'
                    'after registered last in each layer; qkv kept fused) into timm deit_tiny')
def _hf_vit_timm():
    src = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    return Case(hf_vit_state(src), src, None)


@register_pair('hf-vit-names->tv-vit(tiny config)', 'names', cross_naming=True,
               note='the same checkpoint into a torchvision ViT configured alike: the truth goes through '
                    'timm (verified by outputs in timm-deit_tiny->tv-vit(tiny config))')
def _hf_vit_tv():
    src = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    state = hf_vit_state(src)
    to_tv = vit_truth(src.state_dict())
    back = {id(v): k for k, v in keep(src).items()}
    return Case(state, vit_tiny_config(), {k: to_tv[back[id(v)]] for k, v in state.items()})


_HF_SWINV2_PARTS = [  # torchvision block part -> HF Swinv2Layer part, in HF's order
    ('attn.logit_scale', 'attention.self.logit_scale'),
    ('attn.cpb_mlp.', 'attention.self.continuous_position_bias_mlp.'),
    ('attn.qkv.', 'attention.self.qkv.'), ('attn.proj.', 'attention.output.dense.'),
    ('norm1.', 'layernorm_before.'), ('mlp.0.', 'intermediate.dense.'), ('mlp.3.', 'output.dense.'),
    ('norm2.', 'layernorm_after.')]


def _hf_swinv2_name(key):
    """(HF key, its place in HF's order) of a torchvision swin_v2 key, or None."""
    m = re.fullmatch(r'features\.(\d+)\.(\d+)\.(.*)', key)
    if m and int(m[1]) % 2:
        for part, (tv, hf) in enumerate(_HF_SWINV2_PARTS):
            if m[3].startswith(tv):
                stage, block = (int(m[1]) - 1) // 2, int(m[2])
                return (f'swinv2.encoder.layers.{stage}.blocks.{block}.{hf}{m[3][len(tv):]}',
                        (1, stage, 0, block, part))
        return None  # the relative position buffers: HF does not save them
    m = re.fullmatch(r'features\.(\d+)\.(reduction|norm)\.(.*)', key)
    if m:
        return (f'swinv2.encoder.layers.{int(m[1]) // 2 - 1}.downsample.{m[2]}.{m[3]}',
                (1, int(m[1]) // 2 - 1, 1, 0, 0))
    for tv, hf, at in [('features.0.0.', 'swinv2.embeddings.patch_embeddings.projection.', (0,)),
                       ('features.0.2.', 'swinv2.embeddings.norm.', (0, 1)),
                       ('norm.', 'swinv2.layernorm.', (2,)), ('head.', 'classifier.', (3,))]:
        if key.startswith(tv):
            return hf + key[len(tv):], at
    return None


def hf_swinv2_state(model) -> dict:
    """
    A torchvision Swin V2's own tensors under HuggingFace's Swinv2 names, in
    HuggingFace's registration order: each block's attention first, then
    ``layernorm_before``, the MLP and ``layernorm_after`` (torchvision
    registers ``norm1`` before the attention, ``norm2`` before the MLP;
    both apply them after). The qkv stays packed; the relative position
    buffers, which HF does not save, are left out.

    Example:
        >>> from corpus_pairs.models import tv_model
        >>> from corpus_pairs.hunt3_names import hf_swinv2_state
        >>> keys = list(hf_swinv2_state(tv_model('swin_v2_t')))
        >>> [key.partition('blocks.0.')[2] for key in keys[4:6]]
        ['attention.self.logit_scale', 'attention.self.continuous_position_bias_mlp.0.weight']
        >>> [key.partition('blocks.0.')[2] for key in keys[12:14]]
        ['layernorm_before.weight', 'layernorm_before.bias']
    """
    named = []
    for key, value in keep(model).items():
        found = _hf_swinv2_name(key)
        if found is not None:
            named.append((found[1], found[0], value))
    return in_order(named)


@register_pair('hf-swinv2-names->tv-swin_v2_t', 'identity', cross_naming=True, fast=True,
               note="a torchvision swin_v2_t checkpoint under HuggingFace's Swinv2 names and "
                    'order (layernorm_before after the attention, layernorm_after after the '
                    'MLP; '
                    'qkv kept packed) into torchvision swin_v2_t: order alone put each norm '
                    "in the other's place or the next block's (40 wrong)")
def _hf_swinv2_tv():
    src = tv_model('swin_v2_t')
    return Case(hf_swinv2_state(src), src, None)


_HF_HIERA_PARTS = [  # timm Hiera block part -> HF HieraLayer part, in HF's order
    ('norm1.', 'layernorm_before.'), ('attn.', 'attn.'), ('norm2.', 'layernorm_after.'),
    ('mlp.', 'mlp.'), ('proj.', 'proj.')]


def hf_hiera_state(model, depths) -> dict:
    """
    A timm Hiera's own tensors under HuggingFace's Hiera names, in
    HuggingFace's registration order: blocks numbered within their stage,
    the norms ``layernorm_before`` and ``layernorm_after``, and the
    projection that opens a stage registered last in its layer (timm
    registers it first).

    Example:
        >>> from corpus_pairs.models import timm_module
        >>> from corpus_pairs.hunt3_names import hf_hiera_state
        >>> model = timm_module().create_model('hiera_tiny_224', pretrained=False)
        >>> keys = list(hf_hiera_state(model, (1, 2, 7, 2)))
        >>> [key.partition('stages.1.layers.0.')[2] for key in keys[15:17]]
        ['layernorm_before.weight', 'layernorm_before.bias']
        >>> [key.partition('stages.1.layers.0.')[2] for key in keys[27:29]]
        ['proj.weight', 'proj.bias']
    """
    where = [(stage, layer) for stage, depth in enumerate(depths) for layer in range(depth)]
    named = []
    for key, value in keep(model).items():
        m = re.fullmatch(r'blocks\.(\d+)\.(.*)', key)
        if m:
            stage, layer = where[int(m[1])]
            part = next(n for n, (timm, _) in enumerate(_HF_HIERA_PARTS) if m[2].startswith(timm))
            timm, hf = _HF_HIERA_PARTS[part]
            layer_key = f'hiera.encoder.stages.{stage}.layers.{layer}.{hf}{m[2][len(timm):]}'
            named.append(((1, stage, layer, part), layer_key, value))
            continue
        ends = [('pos_embed', 'hiera.embeddings.position_embeddings'),
                ('patch_embed.proj.', 'hiera.embeddings.patch_embeddings.projection.'),
                ('head.norm.', 'hiera.pooler.layernorm.'), ('head.fc.', 'classifier.')]
        for n, (timm, hf) in enumerate(ends):
            if key.startswith(timm):
                named.append(((0 if n < 2 else 2, n), hf + key[len(timm):], value))
    return in_order(named)


@register_pair('hf-hiera-names->timm-hiera_tiny', 'identity', cross_naming=True, fast=True,
               note="a timm hiera_tiny_224 checkpoint under HuggingFace's Hiera names and order "
                    "(layernorm_before and layernorm_after for norm1 and norm2 in a scheme that "
                    "shares every other name; a stage's projection last in its first layer) into "
                    "timm's: the norms were left out as names that disagree (200 of 299 at "
                    'base size)')
def _hf_hiera_timm():
    model = timm_module().create_model('hiera_tiny_224', pretrained=False)
    return Case(hf_hiera_state(model, (1, 2, 7, 2)), model, None)


class _HFBeitLayer(nn.Module):
    """HuggingFace's BeitLayer, its names and registration order (its own
    layer scales lambda_1 and lambda_2 first in the state dict)."""

    def __init__(self, dim, heads, window):
        super().__init__()
        table = nn.Module()
        table.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2 + 3, heads))
        self.attention = Slots(
            attention=Slots(query=nn.Linear(dim, dim), key=nn.Linear(dim, dim, bias=False),
                            value=nn.Linear(dim, dim), relative_position_bias=table),
            output=Slots(dense=nn.Linear(dim, dim)))
        self.intermediate = Slots(dense=nn.Linear(dim, 4 * dim))
        self.output = Slots(dense=nn.Linear(4 * dim, dim))
        self.layernorm_before = nn.LayerNorm(dim)
        self.layernorm_after = nn.LayerNorm(dim)
        self.lambda_1 = nn.Parameter(torch.ones(dim))
        self.lambda_2 = nn.Parameter(torch.ones(dim))


def hf_beit_like(dim=32, depth=3, heads=2, patch=8, image=32, classes=10):
    """
    A module of HuggingFace's ``BeitForImageClassification`` names, order and
    shapes (relative position bias in each layer, mean pooling), for the
    small timm BEiT of :func:`_small_timm_beit` (no transformers needed).

    Example:
        >>> from corpus_pairs.hunt3_names import hf_beit_like
        >>> keys = list(hf_beit_like().state_dict())
        >>> keys[3:5]
        ['beit.encoder.layer.0.lambda_1', 'beit.encoder.layer.0.lambda_2']
        >>> keys[-4:-2]
        ['beit.pooler.layernorm.weight', 'beit.pooler.layernorm.bias']
    """
    embeddings = nn.Module()
    embeddings.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
    embeddings.patch_embeddings = Slots(projection=nn.Conv2d(3, dim, patch, patch))
    window = image // patch
    encoder = Slots(layer=nn.ModuleList(_HFBeitLayer(dim, heads, window) for _ in range(depth)))
    beit = Slots(embeddings=embeddings, encoder=encoder, pooler=Slots(layernorm=nn.LayerNorm(dim)))
    return Slots(beit=beit, classifier=nn.Linear(dim, classes))


def _small_timm_beit():
    from timm.models.beit import Beit
    return Beit(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2, num_classes=10,
                use_abs_pos_emb=False, use_rel_pos_bias=True, init_values=0.1)


_HF_BEIT = [  # timm BEiT key -> HuggingFace's (q_bias, v_bias and the packed qkv have no place)
    (r'cls_token', 'beit.embeddings.cls_token'),
    (r'patch_embed\.proj\.(\w+)', r'beit.embeddings.patch_embeddings.projection.\1'),
    (r'blocks\.(\d+)\.gamma_(\d)', r'beit.encoder.layer.\1.lambda_\2'),
    (r'blocks\.(\d+)\.norm1\.(\w+)', r'beit.encoder.layer.\1.layernorm_before.\2'),
    (r'blocks\.(\d+)\.attn\.relative_position_bias_table', r'beit.encoder.layer.\1.attention.'
     r'attention.relative_position_bias.relative_position_bias_table'),
    (r'blocks\.(\d+)\.attn\.proj\.(\w+)', r'beit.encoder.layer.\1.attention.output.dense.\2'),
    (r'blocks\.(\d+)\.norm2\.(\w+)', r'beit.encoder.layer.\1.layernorm_after.\2'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'beit.encoder.layer.\1.intermediate.dense.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'beit.encoder.layer.\1.output.dense.\2'),
    (r'fc_norm\.(\w+)', r'beit.pooler.layernorm.\1'),
    (r'head\.(\w+)', r'classifier.\1'),
]


def hf_beit_name(key):
    """
    timm BEiT key -> HuggingFace's, or None where it has no place.

    Example:
        >>> from corpus_pairs.hunt3_names import hf_beit_name
        >>> hf_beit_name('blocks.2.gamma_1'), hf_beit_name('blocks.2.attn.q_bias')
        ('beit.encoder.layer.2.lambda_1', None)
    """
    for pattern, repl in _HF_BEIT:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def _hf_beit_case(reverse):
    timm_beit, hf = _small_timm_beit(), hf_beit_like()
    hf_keys = hf.state_dict().keys()
    truth = {k: hf_beit_name(k) for k in timm_beit.state_dict() if hf_beit_name(k)}
    assert all(v in hf_keys for v in truth.values())
    if reverse:
        return Case(keep(timm_beit), hf, truth)
    return Case(keep(hf), timm_beit, {v: k for k, v in truth.items()})


register_pair('hf-beit-like->timm-beit', 'names', cross_naming=True, fast=True,
              note="a small BEiT under HuggingFace's names and order (the layer's lambda_1 and "
                   'lambda_2 first, its norms last, query, key and value apart) into timm\'s: '
                   "order took timm's block scales for the previous layer's norms and its "
                   "attention's q_bias and v_bias for HF's lambdas (62 wrong at full size)")(
    lambda: _hf_beit_case(False))
register_pair('timm-beit->hf-beit-like', 'names', cross_naming=True, fast=True,
              note='the same, back')(lambda: _hf_beit_case(True))


def _fpn_neck():
    neck = nn.Module()
    neck.lateral_convs = nn.ModuleList(Slots(conv=nn.Conv2d(c, 256, 1)) for c in (256, 512, 1024, 2048))
    neck.fpn_convs = nn.ModuleList(Slots(conv=nn.Conv2d(256, 256, 3, padding=1)) for _ in range(4))
    return neck


@register_pair('mmdet-checkpoint->resnet50', 'identity',
               note='an mmdet-style Faster R-CNN checkpoint (backbone.* with torchvision resnet names and '
                    'no fc, neck.lateral_convs/fpn_convs, rpn_head, roi_head.bbox_head) into resnet50: '
                    'the backbone belongs, the fc gets nothing')
def _mmdet():
    r = tv_model('resnet50')
    backbone = nn.Module()
    for name, child in r.named_children():
        if name not in ('avgpool', 'fc'):
            backbone.add_module(name, child)
    rpn = Slots(rpn_conv=nn.Conv2d(256, 256, 3, padding=1), rpn_cls=nn.Conv2d(256, 3, 1),
                rpn_reg=nn.Conv2d(256, 12, 1))
    roi = Slots(bbox_head=Slots(shared_fcs=nn.ModuleList([nn.Linear(12544, 1024), nn.Linear(1024, 1024)]),
                                fc_cls=nn.Linear(1024, 81), fc_reg=nn.Linear(1024, 320)))
    holder = Slots(backbone=backbone, neck=_fpn_neck(), rpn_head=rpn, roi_head=roi)
    return Case(keep(holder), r, None)


def _mmseg_holder(r):
    backbone = nn.Module()
    backbone.stem = nn.Sequential(r.conv1, r.bn1, r.relu)
    for i in range(1, 5):
        backbone.add_module(f'layer{i}', getattr(r, f'layer{i}'))
    decode = Slots(conv_seg=nn.Conv2d(512, 19, 1),
                   bottleneck=Slots(conv=nn.Conv2d(2048, 512, 3, padding=1, bias=False), bn=nn.BatchNorm2d(512)))
    aux = Slots(conv_seg=nn.Conv2d(256, 19, 1),
                convs=nn.ModuleList([Slots(conv=nn.Conv2d(1024, 256, 3, padding=1, bias=False),
                                           bn=nn.BatchNorm2d(256))]))
    return Slots(backbone=backbone, decode_head=decode, auxiliary_head=aux)


@register_pair('mmseg-checkpoint->resnet50', 'identity',
               note='an mmseg-style checkpoint (backbone.stem.0/1 = conv1/bn1, backbone.layerN, '
                    'decode_head.bottleneck.conv/bn, auxiliary_head.convs.0.conv/bn, conv_seg) into '
                    'resnet50: the backbone belongs')
def _mmseg():
    r = tv_model('resnet50')
    return Case(keep(_mmseg_holder(r)), r, None)


@register_pair('resnet50->mmseg-model', 'identity',
               note='the reverse: a torchvision resnet50 checkpoint into the mmseg-style model '
                    '(backbone.stem.0 ...); its fc belongs nowhere')
def _to_mmseg():
    r = tv_model('resnet50')
    return Case(keep(r), _mmseg_holder(r), None)


def keras_resnet(r):
    """
    A resnet's modules under Keras ResNet50 layer names, flat, the shortcut first in each block.

    Example:
        >>> from corpus_pairs.models import tv_model
        >>> from corpus_pairs.hunt3_names import keras_resnet
        >>> list(keras_resnet(tv_model('resnet18')).state_dict())[6:8]
        ['conv2_block1_1_conv.weight', 'conv2_block1_1_bn.weight']
    """
    flat = OrderedDict(conv1_conv=r.conv1, conv1_bn=r.bn1)
    for stage in range(1, 5):
        for index, block in enumerate(getattr(r, f'layer{stage}')):
            name = f'conv{stage + 1}_block{index + 1}'
            if block.downsample is not None:
                flat[f'{name}_0_conv'], flat[f'{name}_0_bn'] = block.downsample[0], block.downsample[1]
            for k in (1, 2, 3) if hasattr(block, 'conv3') else (1, 2):
                flat[f'{name}_{k}_conv'] = getattr(block, f'conv{k}')
                flat[f'{name}_{k}_bn'] = getattr(block, f'bn{k}')
    flat['predictions'] = r.fc
    return nn.ModuleDict(flat)


@register_pair('keras-names->resnet50', 'identity', cross_naming=True,
               note='a resnet50 checkpoint under Keras ResNet50 flat layer names (conv2_block1_0_conv '
                    '= the shortcut, first; conv2_block1_1_bn, ..., predictions) into torchvision resnet50')
def _keras_to_tv():
    r = tv_model('resnet50')
    return Case(keep(keras_resnet(r)), r, None)


@register_pair('resnet50->keras-names', 'identity', cross_naming=True,
               note='the reverse: torchvision resnet50 into the flat Keras-named model')
def _tv_to_keras():
    r = tv_model('resnet50')
    return Case(keep(r), keras_resnet(r), None)


# --- timm <-> torchvision pairs the cross family lacks (zip in order, checked by outputs)


def _tv_order(keys):
    """torchvision's keys in timm's order: relative_position_index buffers (non-persistent in timm)
    left out, a RegNet block's shortcut (proj, registered first) moved after its f.* keys, a Swin
    PatchMerging's norm before its reduction."""
    keys = [k for k in keys if not k.endswith('relative_position_index')]
    block = lambda k: k.split('.proj.')[0].split('.f.')[0] if '.block' in k else k  # NOQA: E731
    out, i = [], 0
    while i < len(keys):
        j = i
        while j < len(keys) and block(keys[j]) == block(keys[i]):
            j += 1
        group = keys[i:j]
        out += [k for k in group if '.proj.' not in k] + [k for k in group if '.proj.' in k]
        i = j
    merging = lambda k: re.fullmatch(r'(features\.\d+)\.(reduction|norm)\.\w+', k)  # NOQA: E731
    i = 0
    while i < len(out) - 2:
        if merging(out[i]) and merging(out[i]).group(2) == 'reduction':
            out[i:i + 3] = out[i + 1:i + 3] + [out[i]]
            i += 3
        else:
            i += 1
    return out


def _zip(src, dst, size=64):
    s, d = keep(src), _tv_order(list(dst.state_dict()))
    shapes = dst.state_dict()
    if len(s) != len(d) or any(a.numel() != shapes[b].numel() for a, b in zip(s.values(), d)):
        raise RuntimeError('the two state dicts do not zip')
    return Case(s, dst, dict(zip(s, d)), src, image(size))


for _timm_arch, _tv_arch in [
    ('resnet101', 'resnet101'),
    ('efficientnet_b1', 'efficientnet_b1'),
    ('regnety_032', 'regnet_y_3_2gf'),
    ('densenet201', 'densenet201'),
    ('swin_small_patch4_window7_224', 'swin_s'),
    ('convnext_base', 'convnext_base'),
    ('resnext101_32x8d', 'resnext101_32x8d'),
]:
    register_pair(f'timm-{_timm_arch}->tv-{_tv_arch}', 'outputs', cross_naming=True,
                  note=f'timm {_timm_arch} -> torchvision {_tv_arch} (the state dicts zip in order; '
                       "a RegNet block's shortcut, registered first in torchvision, goes last; swin's "
                       'relative_position_index buffers get nothing)')(
        lambda a=_timm_arch, b=_tv_arch: _zip(timm_module().create_model(a, pretrained=False), tv_model(b),
                                             224 if 'swin' in a else 64))


# --- torchvision segmentation, video and quantizable models


def _captured(module_name, factory, build):
    import importlib
    module = importlib.import_module(module_name)
    real, built = getattr(module, factory), []

    def capture(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]
    setattr(module, factory, capture)
    try:
        dst = build()
    finally:
        setattr(module, factory, real)
    return Case(keep(built[0]), dst, None)


def _seg(name, **kw):
    return lambda: getattr(torchvision_module().models.segmentation, name)(
        weights=None, weights_backbone=None, **kw)


for _name, _module, _factory, _build in [
    ('resnet101->deeplabv3_resnet101', 'torchvision.models.segmentation.deeplabv3', 'resnet101',
     _seg('deeplabv3_resnet101')),
    ('resnet50->fcn(aux)', 'torchvision.models.segmentation.fcn', 'resnet50', _seg('fcn_resnet50', aux_loss=True)),
    ('resnet50->deeplabv3(aux)', 'torchvision.models.segmentation.deeplabv3', 'resnet50',
     _seg('deeplabv3_resnet50', aux_loss=True)),
    ('mobilenet_v3->deeplabv3(aux)', 'torchvision.models.segmentation.deeplabv3', 'mobilenet_v3_large',
     _seg('deeplabv3_mobilenet_v3_large', aux_loss=True)),
]:
    register_pair(_name, 'identity', note=f'{_factory} checkpoint into the model whose builder built it '
                                          '(aux classifier included where named)')(
        lambda m=_module, f=_factory, b=_build: _captured(m, f, b))


def _video(name):
    return getattr(torchvision_module().models.video, name)(weights=None)


register_pair('r3d_18->mc3_18', 'names',
              note='video resnets: r3d_18 -> mc3_18, the same names; layers 2-4 have 1x3x3 kernels '
                   'instead of 3x3x3 (shoved as published)')(
    lambda: names_case(_video('r3d_18'), _video('mc3_18')))
register_pair('mc3_18->r3d_18', 'names',
              note='the reverse: mc3_18 -> r3d_18 (1x3x3 kernels shoved into 3x3x3)')(
    lambda: names_case(_video('mc3_18'), _video('r3d_18')))


def _quantizable(arch, **kw):
    return getattr(torchvision_module().models.quantization, arch)(weights=None, quantize=False, **kw)


register_pair('resnet50->quantizable resnet50', 'names',
              note='torchvision resnet50 -> quantization.resnet50(quantize=False): same names')(
    lambda: names_case(tv_model('resnet50'), _quantizable('resnet50')))
register_pair('quantizable mobilenet_v3_large->mobilenet_v3_large', 'names',
              note='a quantizable mobilenet_v3_large checkpoint into torchvision mobilenet_v3_large')(
    lambda: names_case(_quantizable('mobilenet_v3_large'), tv_model('mobilenet_v3_large')))
register_pair('inception_v3->quantizable inception_v3(aux)', 'names',
              note='torchvision inception_v3 without the aux head -> the quantizable inception_v3 with it: '
                   'AuxLogits gets nothing')(
    lambda: names_case(tv_model('inception_v3', **NO_AUX),
                      _quantizable('inception_v3', aux_logits=True, init_weights=False)))
