"""
Tests of :mod:`torch_liberator.flatnames`: checkpoints converted from other
frameworks, whose keys hold no dot (Keras's ``bn_Conv1/gamma``, Caffe2's and
Detectron 1's ``res2_0_branch2a_bn_s``, MXNet's ``stage1_unit1_bn1_gamma``),
cross to a torch model under ``association='structure'`` and ``'auto'``,
judged by values (the model's outputs). Before, ``structure`` read each such
checkpoint as one module and placed nothing (0 of 262 tensors of a Keras
mobilenet_v2, 0 of 314 of a Detectron 1 resnet101).
"""
import pytest
import torch
from torch import nn

from conftest import requires
from torch_liberator import load_partial_state
from torch_liberator.association import associate
from torch_liberator.flatnames import TENSOR_NAMES, torch_spelling


def _net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 1),
                         nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 4 * 4, 4)).eval()


_KERAS = {'weight': 'kernel', 'bias': 'bias', 'running_mean': 'moving_mean',
          'running_var': 'moving_variance'}
_BN_KERAS = {'weight': 'gamma', 'bias': 'beta', **{k: v for k, v in _KERAS.items() if 'running' in k}}
_DETECTRON = {'weight': 'w', 'bias': 'b'}
_BN_DETECTRON = {'weight': 's', 'bias': 'b'}


def _flat_state(model, style):
    """The model's state dict under Keras (``/``) or Detectron 1 (``_``) names."""
    out = {}
    for key, value in model.state_dict().items():
        layer, _, name = key.rpartition('.')
        bn = isinstance(model[int(layer)], nn.BatchNorm2d)
        if name == 'num_batches_tracked':
            continue
        if style == 'keras':
            out[f'layer_{layer}/{(_BN_KERAS if bn else _KERAS)[name]}:0'] = value.clone()
        elif name in ('weight', 'bias'):  # Detectron 1: no statistics
            out[f'layer_{layer}_{(_BN_DETECTRON if bn else _DETECTRON)[name]}'] = value.clone()
    return out


def test_torch_spelling_of_the_three_schemes():
    assert torch_spelling(['block_1_expand_BN/moving_variance:0', 'Conv1/kernel']) == {
        'block_1_expand_BN/moving_variance:0': 'block_1_expand_BN.running_var',
        'Conv1/kernel': 'Conv1.weight'}
    assert torch_spelling(['res2_0_branch2a_w', 'res2_0_branch2a_bn_s']) == {
        'res2_0_branch2a_w': 'res2_0_branch2a.weight',
        'res2_0_branch2a_bn_s': 'res2_0_branch2a_bn.weight'}
    assert torch_spelling(['stage1_unit1_bn1_moving_mean', 'fc1_bias']) == {
        'stage1_unit1_bn1_moving_mean': 'stage1_unit1_bn1.running_mean', 'fc1_bias': 'fc1.bias'}
    assert TENSOR_NAMES['moving_variance'] == 'running_var'
    # a Keras application's model name holds a dot; every key is a / path
    assert torch_spelling(['mobilenetv2_1.00_224/bn_Conv1/gamma:0',
                           'mobilenetv2_1.00_224/bn_Conv1/beta:0']) == {
        'mobilenetv2_1.00_224/bn_Conv1/gamma:0': 'mobilenetv2_1_00_224.bn_Conv1.weight',
        'mobilenetv2_1.00_224/bn_Conv1/beta:0': 'mobilenetv2_1_00_224.bn_Conv1.bias'}


@pytest.mark.parametrize('keys', [
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'],  # a bare BatchNorm
    ['layer1.0.conv1.weight', 'fc_w'],  # a dot anywhere: torch's own names
    ['a_w', 'a_weight'],  # two keys spelled alike
    ['stem', 'other', 'conv_w'],  # under half end in a tensor name
    [],
])
def test_torch_spelling_leaves_other_sides_alone(keys):
    assert torch_spelling(keys) is None


@pytest.mark.parametrize('style', ['keras', 'detectron'])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_flat_checkpoint_loads_whole_and_gives_the_same_outputs(style, mode):
    source = _net(0)
    for bn in (source[1], source[4]):  # statistics that are not the defaults
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    state = _flat_state(source, style)
    model = _net(1)
    if style == 'detectron':  # no statistics in the file: give the model the source's
        for i in (1, 4):
            model[i].running_mean.copy_(source[i].running_mean)
            model[i].running_var.copy_(source[i].running_var)
    info = load_partial_state(model, state, association=mode, verbose=0)
    assert sorted(info['mapping']) == sorted(state)
    assert info['other_unused'] == []
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(model(x), source(x))


def test_the_published_modes_read_flat_keys_as_before():
    state = {'conv_w': (8, 3, 3, 3), 'conv_b': (8,)}
    model = {'conv.weight': (8, 3, 3, 3), 'conv.bias': (8,)}
    for mode in ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism'):
        assert associate(state, model, association=mode).mapping == {}
    assert associate(state, model, association='structure').mapping == {
        'conv_w': 'conv.weight', 'conv_b': 'conv.bias'}


def test_a_keras_mobilenet_v2_crosses_to_torchvision():
    tvm = requires('torchvision').models
    torch.manual_seed(0)
    source = tvm.mobilenet_v2(weights=None).eval()
    state = {}
    for i, (key, value) in enumerate(source.state_dict().items()):
        if key.endswith('num_batches_tracked'):
            continue
        layer, _, name = key.rpartition('.')
        spelled = {'weight': 'kernel' if value.dim() > 1 else 'gamma', 'bias': 'beta',
                   'running_mean': 'moving_mean', 'running_var': 'moving_variance'}[name]
        if layer == 'classifier.1':
            spelled = {'weight': 'kernel', 'bias': 'bias'}[name]
        state[f'{layer.replace(".", "_")}/{spelled}'] = value.clone()
    model = tvm.mobilenet_v2(weights=None).eval()
    load_partial_state(model, state, association='auto', verbose=0)
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(model(x), source(x))
