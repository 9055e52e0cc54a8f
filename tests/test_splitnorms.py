"""
Tests of :mod:`torch_liberator.splitnorms`: a BatchNorm saved as two
modules (Caffe's ``bn*`` statistics and ``scale*`` affine, MXNet's ``aux:``
statistics and ``arg:`` affine) loads whole under ``association='structure'``
and ``'auto'``, judged by the model's outputs. Before, the structure mode
kept a module's tensors together and placed no BatchNorm of a Caffe-named
resnet50 (55 of 267 tensors, the convolutions and the classifier).
"""
import pytest
import torch
from torch import nn

from torch_liberator import load_partial_state
from torch_liberator.splitnorms import joined_norms


def _net(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 1),
                        nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 4 * 4, 4)).eval()
    for bn in (net[1], net[4]):  # statistics that are not the defaults
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return net


def _caffe_state(model, style):
    """The model's state under Caffe names (``res1``, ``bn1``/``scale1``,
    with dots) or MXNet's flat ones (``arg:unit1_bn_gamma``)."""
    out = {}
    for key, value in model.state_dict().items():
        layer, _, name = key.rpartition('.')
        if name == 'num_batches_tracked':
            continue
        bn = isinstance(model[int(layer)], nn.BatchNorm2d)
        if style == 'caffe':
            word = ('bn' if name.startswith('running') else 'scale') if bn else 'res'
            out[f'{word}{layer}_branch.{name}'] = value.clone()
        else:
            tensor = {'weight': 'gamma', 'bias': 'beta', 'running_mean': 'moving_mean',
                      'running_var': 'moving_var'}[name] if bn else name
            word = 'aux' if name.startswith('running') else 'arg'
            out[f'{word}:unit{layer}_{"bn" if bn else "conv"}_{tensor}'] = value.clone()
    return out


def test_joined_norms_spells_the_affine_half_under_the_statistics():
    keys = {'res1.weight': (8, 3, 3, 3), 'bn1.running_mean': (8,), 'bn1.running_var': (8,),
            'scale1.weight': (8,), 'scale1.bias': (8,)}
    assert joined_norms(keys) == {'res1.weight': 'res1.weight',
                                  'bn1.running_mean': 'bn1.running_mean',
                                  'bn1.running_var': 'bn1.running_var',
                                  'scale1.weight': 'bn1.weight', 'scale1.bias': 'bn1.bias'}


@pytest.mark.parametrize('keys', [
    # a torch BatchNorm: its four tensors in one module already
    {'bn1.weight': (8,), 'bn1.bias': (8,), 'bn1.running_mean': (8,), 'bn1.running_var': (8,)},
    # two affine halves for one statistics module: which is its own is unknown
    {'bn1.running_mean': (8,), 'bn1.running_var': (8,), 'scale1.weight': (8,),
     'scale1.bias': (8,), 'gain1.weight': (8,), 'gain1.bias': (8,)},
    # of another width
    {'bn1.running_mean': (8,), 'bn1.running_var': (8,), 'scale1.weight': (4,),
     'scale1.bias': (4,)},
    # different rests of the names
    {'bn1.running_mean': (8,), 'bn1.running_var': (8,), 'scale2.weight': (8,),
     'scale2.bias': (8,)},
])
def test_joined_norms_leaves_other_sides_alone(keys):
    assert joined_norms(keys) is None


@pytest.mark.parametrize('style', ['caffe', 'mxnet'])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
@pytest.mark.parametrize('order', ['as saved', 'statistics last'])
def test_a_batchnorm_saved_as_two_modules_loads_whole(style, mode, order):
    source = _net(0)
    state = _caffe_state(source, style)
    if order == 'statistics last':  # MXNet's arg: parameters before aux: statistics
        state = dict(sorted(state.items(), key=lambda kv: 'running' in kv[0] or 'moving' in kv[0]))
    model = _net(1)
    info = load_partial_state(model, state, association=mode, verbose=0)
    assert sorted(info['mapping']) == sorted(state)
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(model(x), source(x))
