"""
Hunt 4, more: efficientnet_pytorch's names, neighbours whose names collide
with other meanings (faster R-CNN v1 -> v2), converted (Detectron 1, Caffe,
efficientnet_pytorch) checkpoints into detectors and beside a sibling, and a
checkpoint of an unrelated network some of whose layers have the model's
shapes (nothing belongs: every tensor loaded is wrong).

Example:
    >>> from corpus_pairs.hunt4_more import lukemelas_efficientnet_name
    >>> lukemelas_efficientnet_name('features.2.0.block.0.1.running_var', {(2, 0): 1})
    '_blocks.1._bn0.running_var'
"""
import re

from corpus_pairs.hunt4_names import renamed_state
from corpus_pairs.hunt4_flat import caffe_resnet_name, detectron1_resnet_name
from corpus_pairs.models import Slots, keep, tv_detector, tv_model, tv_segmenter
from corpus_pairs.registry import Case, register_pair

__all__ = ['lukemelas_efficientnet_name']


def lukemelas_efficientnet_name(key: str, index: dict) -> str:
    """
    The ``efficientnet_pytorch`` (lukemelas; smp's efficientnet encoders) name of a torchvision efficientnet key.

    ``index`` maps ``(stage, block)`` to the flat block number.

    Example:
        >>> from corpus_pairs.hunt4_more import lukemelas_efficientnet_name
        >>> lukemelas_efficientnet_name('features.1.0.block.1.fc2.bias', {(1, 0): 0})
        '_blocks.0._se_expand.bias'
        >>> lukemelas_efficientnet_name('features.8.1.weight', {})
        '_bn1.weight'
    """
    m = re.fullmatch(r'features\.(\d+)\.(\d+)\.block\.(\d+)\.(.*)', key)
    if m:
        stage, block, part, tail = int(m[1]), int(m[2]), int(m[3]), m[4]
        parts = ['depthwise', 'se', 'project'] if stage == 1 else ['expand', 'depthwise', 'se', 'project']
        kind = parts[part]
        pre = f'_blocks.{index[(stage, block)]}.'
        if kind == 'se':
            return pre + tail.replace('fc1', '_se_reduce').replace('fc2', '_se_expand')
        sub, param = tail.split('.', 1)
        conv, bn = {'expand': ('_expand_conv', '_bn0'), 'depthwise': ('_depthwise_conv', '_bn1'),
                    'project': ('_project_conv', '_bn2')}[kind]
        return pre + (conv if sub == '0' else bn) + '.' + param
    for pattern, repl in [(r'features\.0\.0\.(\w+)', r'_conv_stem.\1'), (r'features\.0\.1\.(\w+)', r'_bn0.\1'),
                          (r'features\.8\.0\.(\w+)', r'_conv_head.\1'), (r'features\.8\.1\.(\w+)', r'_bn1.\1'),
                          (r'classifier\.1\.(\w+)', r'_fc.\1')]:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    raise KeyError(key)


def _flat_index(model):
    index, flat = {}, 0
    for s in range(1, len(model.features) - 1):
        for i in range(len(model.features[s])):
            index[(s, i)] = flat
            flat += 1
    return index


def _lukemelas_case(order, prefix=''):
    m = tv_model('efficientnet_b0')
    index = _flat_index(m)
    state = renamed_state(m, lambda k: prefix + lukemelas_efficientnet_name(k, index))
    if order == 'sorted':
        state = dict(sorted(state.items()))
    return Case(state, m, None)


register_pair('h4-lukemelas-efficientnet-names->tv-efficientnet_b0', 'identity', cross_naming=True,
              note='a torchvision efficientnet_b0 under efficientnet_pytorch names (_conv_stem, '
                   '_blocks.N._expand_conv / _bn0 / _depthwise_conv / _bn1 / _se_reduce / _project_conv '
                   '/ _bn2, _conv_head, _fc) into the torchvision model')(lambda: _lukemelas_case('model'))
register_pair('h4-lukemelas-efficientnet-names (sorted, smp encoder.)->tv-efficientnet_b0', 'identity',
              cross_naming=True,
              note='the same under encoder.* (an smp encoder), sorted: _blocks.10 before _blocks.2, '
                   '_bn0 < _bn1 < _bn2 < _depthwise_conv < _expand_conv inside a block')(
    lambda: _lukemelas_case('sorted', 'encoder.'))


# --- neighbours whose names collide with other meanings


@register_pair('h4-fasterrcnn->fasterrcnn_v2', 'names',
               note='a fasterrcnn_resnet50_fpn checkpoint into fasterrcnn_resnet50_fpn_v2: the keys of '
                    'one name and shape (body, fpn convs, rpn head, box predictor) belong; the v1 box head '
                    '(fc6, fc7) and fpn biases have no home in v2; its box head (convs, then a Linear '
                    "of fc6's shape) is unjudged")
def _frcnn_v2():
    src, dst = tv_detector('fasterrcnn_resnet50_fpn')(), tv_detector('fasterrcnn_resnet50_fpn_v2')()
    state, dst_state = keep(src), dst.state_dict()
    truth = {k: k for k, v in state.items() if k in dst_state and dst_state[k].shape == v.shape}
    # v2's box head ends in a Linear of fc6's shape (after four convs): which one is meant is debatable
    head = [k for k in dst_state if k.startswith('roi_heads.box_head.')]
    return Case(state, dst, truth, unjudged=head)


# --- an unrelated network: nothing belongs


register_pair('h4-resnet50->densenet121 (unrelated)', 'names',
              note='a resnet50 checkpoint into densenet121: another network (the stems have one shape, '
                   "some 1x1 convs and norms too); nothing belongs (the truth is empty)")(
    lambda: Case(keep(tv_model('resnet50')), tv_model('densenet121'), {}))


# --- converted checkpoints into detectors, and beside a sibling


def _renamed_into(rename, make):
    """``make() -> (module whose tensors are renamed, destination holding it)``."""
    part, dst = make()
    return Case(renamed_state(part, rename), dst, None)


def _frcnn_body():
    det = tv_detector('fasterrcnn_resnet50_fpn')()
    return det.backbone.body, det


def _deeplab_body():
    seg = tv_segmenter('deeplabv3_resnet50')()
    return seg.backbone, seg


def _beside(arch, other):
    model = tv_model(arch)
    return model, Slots(a=tv_model(other), b=model)


for _name, _rename, _make, _note in [
    ('h4-detectron1-names->fasterrcnn', detectron1_resnet_name, _frcnn_body,
     'a Detectron 1 R-50 checkpoint (res2_0_branch2a_w, _bn_s, _bn_b; no statistics) into '
     "fasterrcnn_resnet50_fpn: the detector's backbone.body (FrozenBatchNorm2d)"),
    ('h4-caffe-names->deeplabv3', caffe_resnet_name, _deeplab_body,
     'a Caffe ResNet-50 checkpoint (res2a_branch2a, bn / scale split) into deeplabv3_resnet50: '
     "the segmenter's backbone (dilated, same shapes)"),
    ('h4-caffe-names->wide_resnet50_2+resnet50', caffe_resnet_name, lambda: _beside('resnet50', 'wide_resnet50_2'),
     'a Caffe ResNet-50 checkpoint into Slots(a = wide_resnet50_2, b = resnet50): b only'),
    ('h4-lukemelas-efficientnet-names->mobilenet_v2+efficientnet_b0', None,
     lambda: _beside('efficientnet_b0', 'mobilenet_v2'),
     'an efficientnet_pytorch efficientnet-b0 checkpoint into Slots(a = mobilenet_v2, b = '
     'efficientnet_b0) (the stems and first blocks have the same shapes): b only'),
]:
    register_pair(_name, 'identity', cross_naming=True, note=_note)(
        lambda r=_rename, f=_make: _renamed_into(r, f) if r else _lukemelas_beside(f))


def _lukemelas_beside(make):
    part, dst = make()
    index = _flat_index(part)
    return Case(renamed_state(part, lambda k: lukemelas_efficientnet_name(k, index)), dst, None)
