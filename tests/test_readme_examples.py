"""
The partial-loading cases of the published 0.2 README, with its exact
numbers, plus checks that what was loaded really equals its source.

The torchvision models are built once per session (see conftest.py).
"""
import pytest
import torch

from conftest import Backboned, Embedder, counts, snapshot
from torch_liberator.initializer import Pretrained, load_partial_state


def assert_loaded(model, src_state, info):
    dst = model.state_dict()
    loaded = [key for name in ('full_add', 'partial_add_all',
                               'partial_add_some')
              for key in info['seen'][name]]
    assert loaded
    full = set(info['seen']['full_add'])   # model keys
    for src_key, dst_key in info['mapping'].items():
        if dst_key in full:
            assert torch.equal(dst[dst_key], src_state[src_key]), src_key


def test_resnet50_into_a_model_that_embeds_it(resnet50):
    # as in the README: the model holds the very resnet50 whose state is read
    model = Embedder(resnet50)
    info = load_partial_state(model, resnet50.state_dict(),
                              association='isomorphism', verbose=0)
    assert len(info['seen']['full_add']) == 320
    assert len(info['self_unset']) == 2
    assert len(info['other_unused']) == 0
    assert info['self_unset'] == ['extra.weight', 'extra.bias']
    assert all(dst == 'module.' + src for src, dst in info['mapping'].items())


def test_resnet50_state_really_lands_in_the_embedding_model(
        torchvision, resnet50_other):
    torch.manual_seed(5)
    model = Embedder(torchvision.models.resnet50(weights=None))
    state = resnet50_other.state_dict()
    before = snapshot(model)
    info = load_partial_state(model, state, verbose=0)
    assert counts(info) == dict(full_add=320, partial_add_some=0,
                                partial_add_all=0, skipped=0, self_unset=2,
                                other_unused=0)
    assert_loaded(model, state, info)
    after = model.state_dict()
    for key in ('extra.weight', 'extra.bias'):  # leftover='noop'
        assert torch.equal(after[key], before[key])


def test_custom_model1_from_custom_model2(resnet50):
    model1 = Embedder(resnet50, extra_name='custom_model1_layer')
    model2 = Backboned(resnet50, extra_name='custom_model2_layer')
    info = load_partial_state(model1, model2.state_dict(),
                              association='isomorphism', verbose=0)
    assert len(info['seen']['full_add']) == 320
    assert len(info['seen']['skipped']) == 2
    assert len(info['self_unset']) == 2
    assert len(info['other_unused']) == 2
    assert set(info['other_unused']) == {'custom_model2_layer.weight',
                                         'custom_model2_layer.bias'}
    assert set(info['self_unset']) == {'custom_model1_layer.weight',
                                       'custom_model1_layer.bias'}
    for src, dst in info['mapping'].items():
        assert dst == src.replace('backbone.', 'module.', 1)


@pytest.mark.parametrize('association', ['embedding', 'isomorphism'])
def test_resnet50_into_faster_rcnn_frozen_bn(association, faster_rcnn_frozen,
                                             resnet50_other):
    state = resnet50_other.state_dict()
    info = load_partial_state(faster_rcnn_frozen, state, verbose=0,
                              association=association)
    assert counts(info) == dict(full_add=265, partial_add_some=0,
                                partial_add_all=0, skipped=55, self_unset=30,
                                other_unused=55)
    assert info['seen']['skipped'] == info['other_unused']
    skipped = set(info['other_unused'])
    assert skipped == {key for key in state
                       if key.endswith('num_batches_tracked')
                       or key.startswith('fc.')}
    for src, dst in info['mapping'].items():
        assert dst == 'backbone.body.' + src
    assert_loaded(faster_rcnn_frozen, state, info)


@pytest.mark.parametrize('association', ['embedding', 'isomorphism'])
def test_resnet50_into_faster_rcnn_plain_bn(association, faster_rcnn_plain,
                                            resnet50_other):
    state = resnet50_other.state_dict()
    info = load_partial_state(faster_rcnn_plain, state, verbose=0,
                              association=association)
    assert counts(info) == dict(full_add=318, partial_add_some=0,
                                partial_add_all=0, skipped=2, self_unset=30,
                                other_unused=2)
    assert set(info['other_unused']) == {'fc.weight', 'fc.bias'}
    assert_loaded(faster_rcnn_plain, state, info)


def test_faster_rcnn_own_checkpoint_through_pretrained(tmp_path, torchvision,
                                                       faster_rcnn_plain):
    fpath = tmp_path / 'frcnn.pt'
    torch.save(faster_rcnn_plain.state_dict(), fpath)
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    torch.manual_seed(9)
    fresh = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    info = Pretrained(fpath, verbose=0).forward(fresh)
    n = len(faster_rcnn_plain.state_dict())
    assert counts(info) == dict(full_add=n, partial_add_some=0,
                                partial_add_all=0, skipped=0, self_unset=0,
                                other_unused=0)
    assert_loaded(fresh, faster_rcnn_plain.state_dict(), info)


@pytest.mark.parametrize('names', [('module', 'extra'), ('backbone', 'head'),
                                   ('_orig_mod', 'module')])
def test_own_checkpoint_is_a_perfect_fit_whatever_the_names(tmp_path, names):
    inner_name, extra_name = names

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            setattr(self, inner_name, torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3),
                                    torch.nn.BatchNorm2d(8))))
            setattr(self, extra_name, torch.nn.Linear(8, 2))

    torch.manual_seed(0)
    src = Model()
    fpath = tmp_path / 'own.pt'
    torch.save(src.state_dict(), fpath)
    torch.manual_seed(1)
    dst = Model()
    for association in ('isomorphism', 'embedding'):
        info = Pretrained(fpath, association=association, verbose=0)(dst)
        assert info['self_unset'] == [] and info['other_unused'] == []
        assert info['mapping'] == {key: key for key in src.state_dict()}
        assert_loaded(dst, src.state_dict(), info)
        # the same without the shortcut for identical keys: the solver itself
        info = load_partial_state(dst, src.state_dict(), verbose=0,
                                  association=association,
                                  allow_efficiency_tricks=False)
        assert info['mapping'] == {key: key for key in src.state_dict()}
