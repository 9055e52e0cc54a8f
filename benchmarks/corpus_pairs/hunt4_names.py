"""
Hunt 4: other libraries' names, cross-library compositions, detector <-> segmenter.

Other libraries' names are real renames of a real model's state dict (the
tensor objects kept, so the truth is by identity): HuggingFace RegNet and
EfficientNet, Keras MobileNetV2. Cross-library compositions load a timm
checkpoint into a torchvision idiom (a layer getter, a children cut): the
truth is the zip of the two state dicts (as in :mod:`corpus_pairs.cross`)
carried through the idiom by tensor identity. Detector <-> segmenter pairs
carry a backbone between two tasks (truth by names).

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('h4-hf-regnet-names->tv-regnet_y_400mf')
    >>> case.truth['regnet.encoder.stages.1.layers.0.shortcut.convolution.weight']
    'trunk_output.block2.block2-0.proj.0.weight'
"""
import re

from torch import nn

from corpus_pairs.cross import regnet_truth, swin_truth
from corpus_pairs.hunt3 import names_case
from corpus_pairs.hunt4 import getter
from corpus_pairs.models import Slots, keep, timm_module, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['hf_efficientnet_name', 'hf_regnet_name', 'keras_mobilenet_v2_name', 'renamed_state',
           'through_view']


def renamed_state(model, rename) -> dict:
    """
    ``model``'s own tensors under ``rename(key)`` (a key renamed to ``None`` is dropped).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt4_names import renamed_state
        >>> list(renamed_state(nn.Linear(2, 2), lambda k: 'fc/' + k))
        ['fc/weight', 'fc/bias']
    """
    out = {}
    for key, value in keep(model).items():
        new = rename(key)
        if new is not None:
            out[new] = value
    return out


def _rules(key, rules):
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    raise KeyError(f'no rule for {key!r}')


_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


def hf_regnet_name(key: str) -> str:
    """
    The HuggingFace ``RegNetForImageClassification`` name of a torchvision RegNet-Y key.

    Example:
        >>> from corpus_pairs.hunt4_names import hf_regnet_name
        >>> hf_regnet_name('trunk_output.block1.block1-0.f.se.fc2.weight')
        'regnet.encoder.stages.0.layers.0.layer.2.attention.3.weight'
    """
    block = r'trunk_output\.block(\d)\.block\d-(\d+)\.'
    key = re.sub(block, lambda m: f'regnet.encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.', key)
    return _rules(key, [
        (r'stem\.0\.weight', 'regnet.embedder.embedder.convolution.weight'),
        (r'stem\.1\.' + _BN, r'regnet.embedder.embedder.normalization.\1'),
        (r'(.*)\.proj\.0\.weight', r'\1.shortcut.convolution.weight'),
        (r'(.*)\.proj\.1\.' + _BN, r'\1.shortcut.normalization.\2'),
        (r'(.*)\.f\.a\.0\.weight', r'\1.layer.0.convolution.weight'),
        (r'(.*)\.f\.a\.1\.' + _BN, r'\1.layer.0.normalization.\2'),
        (r'(.*)\.f\.b\.0\.weight', r'\1.layer.1.convolution.weight'),
        (r'(.*)\.f\.b\.1\.' + _BN, r'\1.layer.1.normalization.\2'),
        (r'(.*)\.f\.se\.fc1\.(\w+)', r'\1.layer.2.attention.1.\2'),
        (r'(.*)\.f\.se\.fc2\.(\w+)', r'\1.layer.2.attention.3.\2'),
        (r'(.*)\.f\.c\.0\.weight', r'\1.layer.3.convolution.weight'),
        (r'(.*)\.f\.c\.1\.' + _BN, r'\1.layer.3.normalization.\2'),
        (r'fc\.(\w+)', r'classifier.1.\1'),
    ])


def _effnet_flat_index(model):
    """torchvision efficientnet ``features.S.I`` -> HuggingFace's flat block number."""
    index, flat = {}, 0
    for s in range(1, len(model.features) - 1):
        for i in range(len(model.features[s])):
            index[(s, i)] = flat
            flat += 1
    return index


def hf_efficientnet_name(key: str, index: dict) -> str | None:
    """
    The HuggingFace ``EfficientNetForImageClassification`` name of a torchvision efficientnet key.

    ``index`` maps ``(stage, block)`` to the flat block number. Counters
    (``num_batches_tracked``) are dropped as HuggingFace checkpoints do.

    Example:
        >>> from corpus_pairs.hunt4_names import hf_efficientnet_name
        >>> hf_efficientnet_name('features.2.1.block.1.0.weight', {(2, 1): 2})
        'efficientnet.encoder.blocks.2.depthwise_conv.depthwise_conv.weight'
    """
    if key.endswith('num_batches_tracked'):
        return None
    m = re.fullmatch(r'features\.(\d+)\.(\d+)\.block\.(.*)', key)
    if m:
        stage, block, rest = int(m[1]), int(m[2]), m[3]
        pre = f'efficientnet.encoder.blocks.{index[(stage, block)]}.'
        parts = ['depthwise', 'se', 'project'] if stage == 1 else ['expand', 'depthwise', 'se', 'project']
        n, tail = rest.split('.', 1)
        part = parts[int(n)]
        names = {'expand': ('expansion.expand_conv', 'expansion.expand_bn'),
                 'depthwise': ('depthwise_conv.depthwise_conv', 'depthwise_conv.depthwise_norm'),
                 'project': ('projection.project_conv', 'projection.project_bn')}
        if part == 'se':
            return pre + 'squeeze_excite.' + tail.replace('fc1', 'reduce').replace('fc2', 'expand')
        conv, bn = names[part]
        sub, param = tail.split('.', 1)
        return pre + (conv if sub == '0' else bn) + '.' + param
    return _rules(key, [
        (r'features\.0\.0\.weight', 'efficientnet.embeddings.convolution.weight'),
        (r'features\.0\.1\.(\w+)', r'efficientnet.embeddings.batchnorm.\1'),
        (r'features\.8\.0\.weight', 'efficientnet.encoder.top_conv.weight'),
        (r'features\.8\.1\.(\w+)', r'efficientnet.encoder.top_bn.\1'),
        (r'classifier\.1\.(\w+)', r'classifier.\1'),
    ])


_KERAS_BN = {'weight': 'gamma', 'bias': 'beta', 'running_mean': 'moving_mean',
             'running_var': 'moving_variance'}


def keras_mobilenet_v2_name(key: str) -> str | None:
    """
    The Keras ``MobileNetV2`` layer / variable name of a torchvision mobilenet_v2 key.

    Example:
        >>> from corpus_pairs.hunt4_names import keras_mobilenet_v2_name
        >>> keras_mobilenet_v2_name('features.3.conv.1.1.running_var')
        'block_2_depthwise_BN/moving_variance'
    """
    if key.endswith('num_batches_tracked'):
        return None
    layer, param = key.rsplit('.', 1)
    m = re.fullmatch(r'features\.(\d+)\.conv\.(.*)', layer)
    if m:
        i, rest = int(m[1]), m[2]
        pre = 'expanded_conv' if i == 1 else f'block_{i - 1}'
        roles = ({'0.0': 'depthwise', '0.1': 'depthwise_BN', '1': 'project', '2': 'project_BN'} if i == 1 else
                 {'0.0': 'expand', '0.1': 'expand_BN', '1.0': 'depthwise', '1.1': 'depthwise_BN',
                  '2': 'project', '3': 'project_BN'})
        name = f'{pre}_{roles[rest]}'
    else:
        name = {'features.0.0': 'Conv1', 'features.0.1': 'bn_Conv1', 'features.18.0': 'Conv_1',
                'features.18.1': 'Conv_1_bn', 'classifier.1': 'Logits'}[layer]
    if name.endswith(('BN', 'bn')) or name == 'bn_Conv1':
        return f'{name}/{_KERAS_BN[param]}'
    if param == 'bias':
        return f'{name}/bias'
    return f'{name}/depthwise_kernel' if name.endswith('depthwise') else f'{name}/kernel'


def _renamed_case(arch, rename_for, make_view=None):
    """The checkpoint of ``arch`` under ``rename_for(model)``'s names into ``make_view(model)``."""
    model = tv_model(arch)
    state = renamed_state(model, rename_for(model))
    return Case(state, make_view(model) if make_view else model, None)


register_pair('h4-hf-regnet-names->tv-regnet_y_400mf', 'identity', cross_naming=True,
              note='a torchvision regnet_y_400mf state dict under HuggingFace RegNet names '
                   '(regnet.encoder.stages.S.layers.L.layer.N.convolution ...) into the torchvision model')(
    lambda: _renamed_case('regnet_y_400mf', lambda m: hf_regnet_name))
register_pair('h4-hf-efficientnet-names->tv-efficientnet_b0', 'identity', cross_naming=True,
              note='a torchvision efficientnet_b0 state dict under HuggingFace EfficientNet names '
                   '(flat encoder.blocks.N, expansion / depthwise_conv / squeeze_excite / projection), '
                   'no counters, into the torchvision model')(
    lambda: _renamed_case('efficientnet_b0',
                          lambda m, i=None: lambda k, i=_effnet_flat_index(m): hf_efficientnet_name(k, i)))
register_pair('h4-keras-mobilenet_v2-names->tv-mobilenet_v2', 'identity', cross_naming=True,
              note='a torchvision mobilenet_v2 state dict under Keras MobileNetV2 names '
                   '(block_N_expand/kernel, block_N_depthwise_BN/moving_mean ...), no counters')(
    lambda: _renamed_case('mobilenet_v2', lambda m: keras_mobilenet_v2_name))
register_pair('h4-hf-regnet-names->tv-regnet_y_400mf-trunk-layergetter', 'identity', cross_naming=True,
              note="HuggingFace RegNet names into IntermediateLayerGetter(regnet_y_400mf.trunk_output, "
                   "{'block3': 'c4'}): no stem, no block4, no fc in the destination")(
    lambda: _renamed_case('regnet_y_400mf', lambda m: hf_regnet_name,
                          lambda m: getter(m.trunk_output, {'block3': 'c4'})))
register_pair('h4-keras-mobilenet_v2-names->tv-mobilenet_v2-features[:14]', 'identity', cross_naming=True,
              note='Keras MobileNetV2 names into nn.Sequential(*mobilenet_v2().features[:14]) '
                   '(features.N -> N, the rest dropped)')(
    lambda: _renamed_case('mobilenet_v2', lambda m: keras_mobilenet_v2_name,
                          lambda m: nn.Sequential(*list(m.features)[:14])))


# --- cross-library compositions: a timm checkpoint into a torchvision idiom


def through_view(source_model, full, view, full_truth=None) -> Case:
    """
    A case: ``source_model``'s checkpoint into ``view`` (built from the modules of ``full``).

    The truth is ``full_truth`` (``{source key: key of full}``; default: the
    two state dicts zipped in order), carried to the destination keys whose
    tensor objects ``view`` holds.

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt4_names import through_view
        >>> full = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4))
        >>> src = nn.ModuleDict({'a': nn.Linear(2, 3), 'b': nn.Linear(3, 4)})
        >>> through_view(src, full, nn.Sequential(full[1])).truth
        {'b.weight': '0.weight', 'b.bias': '0.bias'}
    """
    s, d = keep(source_model), full.state_dict(keep_vars=True)
    if full_truth is None:
        if len(s) != len(d) or any(a.numel() != b.numel() for a, b in zip(s.values(), d.values())):
            raise RuntimeError('the two state dicts do not zip')
        full_truth = dict(zip(s, d))
    where = {id(v): k for k, v in view.state_dict(keep_vars=True).items()}
    truth = {a: where[id(d[b])] for a, b in full_truth.items() if id(d[b]) in where}
    return Case(s, view, truth)


def _timm_into(timm_arch, tv_arch, make_view, truth_for=None):
    full, src = tv_model(tv_arch), timm_module().create_model(timm_arch, pretrained=False)
    return through_view(src, full, make_view(full), truth_for(src.state_dict()) if truth_for else None)


for _name, _timm, _tv, _make, _truth, _note in [
    ('h4-timm-efficientnet_b0->tv-efficientnet_b0-layergetter', 'efficientnet_b0', 'efficientnet_b0',
     lambda m: getter(m.features, {'3': 'c3', '5': 'c4'}), None,
     "timm efficientnet_b0 into IntermediateLayerGetter(tv efficientnet_b0.features, {'3', '5'}): "
     'timm names, torchvision getter names, features.6.. cut off'),
    ('h4-timm-convnext_tiny->tv-convnext_tiny-children', 'convnext_tiny', 'convnext_tiny',
     lambda m: nn.Sequential(*list(m.features.children())[:6]), None,
     'timm convnext_tiny into nn.Sequential(*tv convnext_tiny().features[:6]): timm stem/stages names '
     'to re-indexed torchvision features'),
    ('h4-timm-swin_tiny->tv-swin_t-features[:4]', 'swin_tiny_patch4_window7_224', 'swin_t',
     lambda m: nn.Sequential(*list(m.features)[:4]), swin_truth,
     'timm swin_tiny into nn.Sequential(*tv swin_t().features[:4]): the first two stages'),
    ('h4-timm-regnety_004->tv-regnet_y_400mf-stages-renamed', 'regnety_004', 'regnet_y_400mf',
     lambda m: Slots(stem=m.stem, stages=nn.ModuleList(
         [nn.Sequential(*b.children()) for b in m.trunk_output.children()]), head=m.fc), regnet_truth,
     'timm regnety_004 into torchvision regnet_y_400mf regrouped as stem / stages.N.M / head'),
    ('h4-timm-mobilenetv3_large_100->tv-mobilenet_v3_large-backbone-extra', 'mobilenetv3_large_100',
     'mobilenet_v3_large',
     lambda m: Slots(backbone=nn.Sequential(*list(m.features)[:13]),
                     extra=nn.Sequential(*list(m.features)[13:])), None,
     'timm mobilenetv3_large_100 into tv mobilenet_v3_large features split at 13 (second part re-indexed)'),
]:
    register_pair(_name, 'identity', cross_naming=True, note=_note)(
        lambda a=_timm, b=_tv, f=_make, t=_truth: _timm_into(a, b, f, t))


@register_pair('h4-tv-mobilenet_v3_large->timm-mobilenetv3_large_100', 'identity', cross_naming=True,
               note='torchvision mobilenet_v3_large into timm mobilenetv3_large_100 (the zip of the '
                    'state dicts; timm -> torchvision is checked by outputs in cross)')
def _tv_to_timm_mbv3():
    a, b = tv_model('mobilenet_v3_large'), timm_module().create_model('mobilenetv3_large_100',
                                                                       pretrained=False)
    return through_view(a, b, b)


@register_pair('h4-timm-resnet50d->tv-resnet50(blocks shared)', 'identity',
               note="a timm resnet50d checkpoint (deep stem; downsample = AvgPool, conv, bn) into a "
                    "torchvision resnet50 whose blocks are timm's blocks with downsample = (conv, bn): "
                    'the blocks belong (downsample.1/.2 -> .0/.1); the stem and fc are unjudged')
def _resnet50d():
    t = timm_module().create_model('resnet50d', pretrained=False)
    r = tv_model('resnet50')
    for i in range(1, 5):
        tv_layer, timm_layer = getattr(r, f'layer{i}'), getattr(t, f'layer{i}')
        for tv_block, timm_block in zip(tv_layer, timm_layer):
            for name in ('conv1', 'bn1', 'conv2', 'bn2', 'conv3', 'bn3'):
                setattr(tv_block, name, getattr(timm_block, name))
            if timm_block.downsample is not None:
                tv_block.downsample = nn.Sequential(*list(timm_block.downsample)[1:])
    unjudged = [k for k in r.state_dict() if k.startswith(('conv1.', 'bn1.', 'fc.'))]
    return Case(keep(t), r, None, unjudged=unjudged)


# --- detector <-> segmenter (a backbone carried between tasks; truth by names)


def _task(kind, name):
    import torchvision
    return getattr(getattr(torchvision.models, kind), name)(weights=None, weights_backbone=None)


for _name, _src, _dst, _rules_, _note in [
    ('h4-retinanet->fcn_resnet50', ('detection', 'retinanet_resnet50_fpn'),
     ('segmentation', 'fcn_resnet50'), [('backbone.body.', 'backbone.')],
     'a retinanet_resnet50_fpn checkpoint into fcn_resnet50: backbone.body.* -> backbone.*; the fpn, '
     'heads and frozen-BN buffers of the detector have no home but the backbone'),
    ('h4-fasterrcnn_mobilenet->lraspp', ('detection', 'fasterrcnn_mobilenet_v3_large_fpn'),
     ('segmentation', 'lraspp_mobilenet_v3_large'), [('backbone.body.', 'backbone.')],
     'a fasterrcnn_mobilenet_v3_large_fpn checkpoint into lraspp_mobilenet_v3_large: '
     'backbone.body.N -> backbone.N'),
    ('h4-deeplabv3_mobilenet->fasterrcnn_mobilenet_320', ('segmentation', 'deeplabv3_mobilenet_v3_large'),
     ('detection', 'fasterrcnn_mobilenet_v3_large_320_fpn'), [('backbone.', 'backbone.body.')],
     'a deeplabv3_mobilenet_v3_large checkpoint into fasterrcnn_mobilenet_v3_large_320_fpn: '
     'backbone.N -> backbone.body.N; the ASPP head and the aux classifier belong nowhere'),
    ('h4-fcn_resnet50->maskrcnn', ('segmentation', 'fcn_resnet50'), ('detection', 'maskrcnn_resnet50_fpn'),
     [('backbone.', 'backbone.body.')],
     'an fcn_resnet50 checkpoint into maskrcnn_resnet50_fpn: backbone.* -> backbone.body.*'),
]:
    register_pair(_name, 'names', note=_note)(
        lambda s=_src, d=_dst, r=_rules_: names_case(_task(*s), _task(*d), r))
