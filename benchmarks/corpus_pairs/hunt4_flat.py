"""
Hunt 4: flat names of converted checkpoints (Caffe, MXNet, Detectron 1).

Real renames of a torchvision resnet's own tensors (truth by identity), in
the converters' order or sorted by name, as converted checkpoints often are:
Caffe (``res4b22_branch2a``, batch norm split into ``bn*`` statistics and
``scale*`` affine, blocks lettered ``a..f`` or ``a, b1..b22``), MXNet
(``stage3_unit10_conv1_weight``, 1-based units, ``arg:`` parameters before
``aux:`` statistics), Detectron 1 (``res4_5_branch2a_bn_s``, affine only).
Sorting scrambles the order (``res4b10`` before ``res4b2``, every ``bn*``
before every ``res*``), so only the names can place the tensors.

Example:
    >>> from corpus_pairs.hunt4_flat import caffe_resnet_name
    >>> caffe_resnet_name('layer3.11.bn2.running_var', deep=True)
    'bn4b11_branch2b.running_var'
"""
import re
import string

from corpus_pairs.hunt4_names import renamed_state
from corpus_pairs.models import tv_model
from corpus_pairs.registry import PAIRS, Case, register_pair, sorted_keys

__all__ = ['caffe_resnet_name', 'detectron1_resnet_name', 'mxnet_resnet_name']


def _block_parts(key):
    """``layerL.B.part.param`` -> (stage number 2..5, block, part, param) or None."""
    m = re.fullmatch(r'layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.\d)\.(\w+)', key)
    return (int(m[1]) + 1, int(m[2]), m[3], m[4]) if m else None


def caffe_resnet_name(key: str, deep: bool = False) -> str | None:
    """
    The Caffe (``ResNet-50-deploy.prototxt``) name of a torchvision resnet key.

    ``deep``: resnet101 / 152 letters (``a``, ``b1``, ``b2`` ...); else ``a..f``.
    Counters are dropped.

    Example:
        >>> from corpus_pairs.hunt4_flat import caffe_resnet_name
        >>> caffe_resnet_name('layer1.0.downsample.1.weight')
        'scale2a_branch1.weight'
        >>> caffe_resnet_name('bn1.running_mean')
        'bn_conv1.running_mean'
    """
    if key.endswith('num_batches_tracked'):
        return None
    layer, param = key.rsplit('.', 1)
    parts = _block_parts(key)
    if parts:
        stage, block, part, _ = parts
        letter = string.ascii_lowercase[block] if not deep or block == 0 else f'b{block}'
        branch = {'conv1': '2a', 'conv2': '2b', 'conv3': '2c', 'bn1': '2a', 'bn2': '2b', 'bn3': '2c',
                  'downsample.0': '1', 'downsample.1': '1'}[part]
        name = f'{stage}{letter}_branch{branch}'
        conv = part.startswith('conv') or part == 'downsample.0'
    elif layer in ('conv1', 'bn1'):
        name, conv = 'conv1' if layer == 'conv1' else '_conv1', layer == 'conv1'
    else:
        return 'fc1000.' + param
    if conv:
        return ('res' + name if name != 'conv1' else name) + '.' + param
    return ('bn' if param.startswith('running') else 'scale') + name + '.' + param


def mxnet_resnet_name(key: str) -> str | None:
    """
    An MXNet-style flat name (``arg:stage1_unit1_conv1_weight``, ``aux:..._moving_var``).

    Example:
        >>> from corpus_pairs.hunt4_flat import mxnet_resnet_name
        >>> mxnet_resnet_name('layer2.3.bn1.running_var')
        'aux:stage2_unit4_bn1_moving_var'
        >>> mxnet_resnet_name('layer2.0.downsample.0.weight')
        'arg:stage2_unit1_sc_weight'
    """
    if key.endswith('num_batches_tracked'):
        return None
    layer, param = key.rsplit('.', 1)
    parts = _block_parts(key)
    if parts:
        stage, block, part, _ = parts
        part = {'downsample.0': 'sc', 'downsample.1': 'sc_bn'}.get(part, part)
        name = f'stage{stage - 1}_unit{block + 1}_{part}'
    else:
        name = {'conv1': 'conv0', 'bn1': 'bn0', 'fc': 'fc1'}[layer]
    bn = name.endswith(('bn', 'bn0', 'bn1', 'bn2', 'bn3'))
    if bn:
        param = {'weight': 'gamma', 'bias': 'beta', 'running_mean': 'moving_mean',
                 'running_var': 'moving_var'}[param]
    return ('aux:' if param.startswith('moving') else 'arg:') + f'{name}_{param}'


def detectron1_resnet_name(key: str) -> str | None:
    """
    The Detectron 1 (Caffe2 pickle) name: ``res3_2_branch2b_bn_s``; affine only, no statistics.

    Example:
        >>> from corpus_pairs.hunt4_flat import detectron1_resnet_name
        >>> detectron1_resnet_name('layer3.4.conv2.weight')
        'res4_4_branch2b_w'
        >>> detectron1_resnet_name('bn1.bias'), detectron1_resnet_name('bn1.running_var')
        ('res_conv1_bn_b', None)
    """
    if key.endswith(('num_batches_tracked', 'running_mean', 'running_var')):
        return None
    layer, param = key.rsplit('.', 1)
    parts = _block_parts(key)
    if parts:
        stage, block, part, _ = parts
        branch = {'conv1': '2a', 'conv2': '2b', 'conv3': '2c', 'bn1': '2a_bn', 'bn2': '2b_bn',
                  'bn3': '2c_bn', 'downsample.0': '1', 'downsample.1': '1_bn'}[part]
        name = f'res{stage}_{block}_branch{branch}'
    else:
        name = {'conv1': 'conv1', 'bn1': 'res_conv1_bn', 'fc': 'fc1000'}[layer]
    suffix = {'weight': 's', 'bias': 'b'} if name.endswith('bn') else {'weight': 'w', 'bias': 'b'}
    return f'{name}_{suffix[param]}'


def _flat_case(arch, rename, order):
    model = tv_model(arch)
    state = renamed_state(model, rename)
    if order == 'sorted':
        state = dict(sorted(state.items()))
    elif order == 'params first':
        state = dict(sorted(state.items(), key=lambda kv: kv[0].startswith('aux:')))
    return Case(state, model, None)


for _name, _arch, _rename, _order, _note in [
    ('h4-caffe-names->resnet50', 'resnet50', caffe_resnet_name, 'model',
     'a resnet50 under Caffe names (res2a_branch2a, bn2a_branch2a mean/var, scale2a_branch2a '
     'weight/bias, fc1000), in model order'),
    ('h4-caffe-names (sorted)->resnet50', 'resnet50', caffe_resnet_name, 'sorted',
     'the same, sorted by name: every bn* before every res* before every scale*'),
    ('h4-caffe-names (sorted)->resnet101', 'resnet101', lambda k: caffe_resnet_name(k, deep=True), 'sorted',
     'a resnet101 under Caffe names (res4a, res4b1 .. res4b22), sorted: res4b10 before res4b2'),
    ('h4-mxnet-names->resnet50', 'resnet50', mxnet_resnet_name, 'params first',
     'a resnet50 under MXNet flat names (arg:stage3_unit1_conv1_weight, aux:..._moving_mean), '
     'arg: parameters before aux: statistics'),
    ('h4-mxnet-names (sorted)->resnet101', 'resnet101', mxnet_resnet_name, 'sorted',
     'a resnet101 under MXNet flat names, sorted: unit10 before unit2, aux: before arg:'),
    ('h4-detectron1-names (sorted)->resnet50', 'resnet50', detectron1_resnet_name, 'sorted',
     'a resnet50 under Detectron 1 names (res2_0_branch2a_w, _bn_s, _bn_b; no statistics), sorted'),
    ('h4-detectron1-names->resnet101', 'resnet101', detectron1_resnet_name, 'model',
     'a resnet101 under Detectron 1 names in model order (res4_0 .. res4_22)'),
]:
    register_pair(_name, 'identity', cross_naming=True, note=_note)(
        lambda a=_arch, r=_rename, o=_order: _flat_case(a, r, o))


# --- hunt 4's cross-naming and idiom pairs with the checkpoint keys sorted by name


def _sorted_variant(name):
    """The named pair with its source sorted by name (as ``safetensors.safe_open`` lists keys)."""
    def build():
        return sorted_keys(PAIRS[name].build())
    return build


for _base in ['h4-hf-regnet-names->tv-regnet_y_400mf', 'h4-hf-efficientnet-names->tv-efficientnet_b0',
              'h4-timm-efficientnet_b0->tv-efficientnet_b0-layergetter',
              'h4-timm-regnety_004->tv-regnet_y_400mf-stages-renamed', 'h4-mnasnet0_5-layers-split',
              'h4-densenet121-features-halves', 'h4-regnet_y_400mf-stages-renamed',
              'h4-mobilenet_v2-inserted-body-level', 'h4-squeezenet1_0+squeezenet1_1<-squeezenet1_1',
              'h4-tv-mobilenet_v3_large->timm-mobilenetv3_large_100']:
    register_pair(f'{_base} (sorted keys)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  note=f'{_base} with the checkpoint keys sorted by name')(_sorted_variant(_base))


# --- flat names into another network: nothing belongs


def _flat_unrelated(arch, rename, other):
    """Flat names share no key with the torch model: nothing is unjudged."""
    return Case(renamed_state(tv_model(arch), rename), tv_model(other), {})


for _name, _arch, _rename, _other, _note in [
    ('h5-detectron1-names(resnet18)->vgg11_bn (unrelated)', 'resnet18', detectron1_resnet_name, 'vgg11_bn',
     "a resnet18 under Detectron 1 names into vgg11_bn: its three stage-opening convolutions "
     "(128, 256, 512 channels) and its last stage line up with the vgg's by their channels alone "
     "(12 tensors in structure and auto, before flat sides had to align half a network)"),
    ('h5-mxnet-names(resnet18)->vgg11_bn (unrelated)', 'resnet18', mxnet_resnet_name, 'vgg11_bn',
     'a resnet18 under MXNet flat names into vgg11_bn'),
]:
    register_pair(_name, 'names', note=_note)(
        lambda a=_arch, r=_rename, o=_other: _flat_unrelated(a, r, o))
