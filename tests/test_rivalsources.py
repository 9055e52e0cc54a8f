"""
Tests of :mod:`torch_liberator.rivalsources`: a module filled from a rival
copy of the module that fills it (mutation fuzz seed 9005: a resnext50
without its fc beside a whole resnet50, into a resnext50; the resnet50's fc
went to the resnext50's head in embedding, structure and auto).
"""
import pytest

from torch_liberator.association import associate
from torch_liberator.rivalsources import rival_pairs


def _net(width, prefix='', head=True):
    keys = {'conv.weight': (width, 3, 3, 3), 'conv.bias': (width,), 'bn.weight': (width,),
            'bn.bias': (width,), 'bn.running_mean': (width,), 'bn.running_var': (width,),
            'mid.weight': (16, width, 1, 1), 'mid.bias': (16,)}
    if head:
        keys.update({'fc.weight': (5, 16), 'fc.bias': (5,)})
    return {prefix + k: v for k, v in keys.items()}


@pytest.mark.parametrize('mode', ['prefix-hack', 'isomorphism', 'embedding', 'structure', 'auto'])
def test_a_head_from_another_network_beside_a_headless_one_is_left_out(mode):
    src = {**_net(8, 'stage.', head=False), **_net(12, 'body.')}
    result = associate(src, _net(8), association=mode)
    assert not any(k.startswith('body.') for k in result.mapping), result.mapping
    assert {result.mapping[k] for k in _net(8, 'stage.', head=False)} == set(_net(8, head=False))


@pytest.mark.parametrize('mode', ['embedding', 'structure', 'auto'])
def test_a_split_checkpoint_keeps_its_head(mode):
    # the parts of one network share no name: both fill the model
    src = {**_net(8, 'backbone.', head=False), 'head.fc.weight': (5, 16), 'head.fc.bias': (5,)}
    result = associate(src, _net(8), association=mode)
    assert result.mapping['head.fc.weight'] == 'fc.weight'
    assert len(result.mapping) == len(src)


def test_positions_are_no_names():
    # a list cut in two parts, each renumbered from 0: both fill the list
    src = ['a.0.weight', 'a.1.weight', 'b.0.weight', 'b.1.weight']
    mapping = {'a.0.weight': 'layer.0.weight', 'a.1.weight': 'layer.1.weight',
               'b.0.weight': 'layer.2.weight', 'b.1.weight': 'layer.3.weight'}
    assert rival_pairs(mapping, src) == {}
    # ... and kept whole (split_keep): the shared suffix starts at the item
    mapping = {'a.0.weight': 'layer.0.weight', 'a.1.weight': 'layer.1.weight',
               'b.2.weight': 'layer.2.weight'}
    assert rival_pairs(mapping, ['a.0.weight', 'a.1.weight', 'b.2.weight']) == {}


def test_nested_sources_are_no_rivals():
    src = ['conv.weight', 'extra.conv.weight', 'extra.fc.weight']
    mapping = {'conv.weight': 'conv.weight', 'extra.fc.weight': 'fc.weight'}
    assert rival_pairs(mapping, src) == {}
