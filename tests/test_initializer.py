"""
Tests of torch_liberator.initializer: load_partial_state and Pretrained.

Small inline models only; the torchvision cases of the README live in
test_readme_examples.py.
"""
import pytest
import torch

from conftest import (Backboned, Embedder, Holder, assert_unchanged, counts,
                      make_convbn, make_mlp, snapshot)
from torch_liberator.association import ASSOCIATIONS
from torch_liberator.errors import (CheckpointFormatError,
                                    CheckpointNotFoundError)
from torch_liberator.initializer import Pretrained, load_partial_state

SEEN = ['full_add', 'partial_add_some', 'partial_add_all', 'skipped']


def assert_loaded(model, src_state, mapping):
    dst = model.state_dict()
    for src_key, dst_key in mapping.items():
        assert torch.equal(dst[dst_key], src_state[src_key]), src_key


# --- the info dict ----------------------------------------------------------

def test_identical_models_are_a_perfect_fit():
    src, dst = make_convbn(seed=0), make_convbn(seed=1)
    state = src.state_dict()
    info = load_partial_state(dst, state, verbose=0)
    assert list(info) == ['mapping', 'seen', 'self_unset', 'other_unused',
                          'association', 'plan']
    assert info['association'] == 'strict'  # what the default 'auto' chose
    assert list(info['seen']) == SEEN
    assert info['mapping'] == {key: key for key in state}
    assert info['seen']['full_add'] == list(state)
    assert counts(info) == dict(full_add=len(state), partial_add_some=0,
                                partial_add_all=0, skipped=0, self_unset=0,
                                other_unused=0)
    assert_loaded(dst, state, info['mapping'])


# 'structure' needs shapes; load_partial_state passes keys only until the
# load plan (issue 8, section 4) passes {key: shape}
@pytest.mark.parametrize('association', [
    mode for mode in ASSOCIATIONS if mode != 'structure'])
@pytest.mark.parametrize('tricks', [True, False])
def test_every_association_gives_a_mapping(association, tricks):
    src, dst = make_mlp(seed=0), make_mlp(seed=1)
    state = src.state_dict()
    info = load_partial_state(dst, state, association=association,
                              allow_efficiency_tricks=tricks, verbose=0)
    assert info['mapping'] == {key: key for key in state}
    assert info['other_unused'] == [] and info['self_unset'] == []
    assert_loaded(dst, state, info['mapping'])


@pytest.mark.parametrize('association', ['isomorphism', 'embedding',
                                         'module-hack', 'prefix-hack'])
def test_load_into_a_model_that_embeds_the_source(association):
    src = make_mlp(seed=0)
    dst = Embedder(make_mlp(seed=1))
    before = snapshot(dst)
    state = src.state_dict()
    info = load_partial_state(dst, state, association=association, verbose=0)
    assert info['mapping'] == {key: 'module.' + key for key in state}
    assert info['self_unset'] == ['extra.weight', 'extra.bias']
    assert info['other_unused'] == []
    assert_loaded(dst, state, info['mapping'])
    assert_unchanged(dst, before, keys=['extra.weight', 'extra.bias'])


def test_renamed_wrapper_isomorphism():
    src = Backboned(make_convbn(seed=0), extra_name='head2')
    dst = Embedder(make_convbn(seed=1), extra_name='head1')
    state = src.state_dict()
    info = load_partial_state(dst, state, verbose=0, association='isomorphism')
    inner = [key for key in state if key.startswith('backbone.')]
    # the *_add lists name model keys, skipped names checkpoint keys (as 0.2)
    assert info['seen']['full_add'] == [
        key.replace('backbone.', 'module.', 1) for key in inner]
    assert set(info['seen']['skipped']) == {'head2.weight', 'head2.bias'}
    assert info['seen']['skipped'] == info['other_unused']
    assert set(info['self_unset']) == {'head1.weight', 'head1.bias'}
    for key in inner:
        assert info['mapping'][key] == key.replace('backbone.', 'module.', 1)
    assert_loaded(dst, state, {k: info['mapping'][k] for k in inner})


def test_live_tensors_are_written_not_replaced():
    src, dst = make_convbn(seed=0), make_convbn(seed=1)
    params = {name: (p, p.data_ptr()) for name, p in dst.named_parameters()}
    load_partial_state(dst, src.state_dict(), verbose=0)
    for name, p in dst.named_parameters():
        assert p is params[name][0] and p.data_ptr() == params[name][1]
        assert p.requires_grad


def test_dtype_and_requires_grad_are_kept():
    src, dst = make_mlp(seed=0).half(), make_mlp(seed=1)
    info = load_partial_state(dst, src.state_dict(), verbose=0)
    assert len(info['seen']['full_add']) == 4
    assert dst[0].weight.dtype == torch.float32
    assert torch.equal(dst[0].weight, src[0].weight.float())


# --- shapes -----------------------------------------------------------------

def test_mangle_copies_the_overlap_and_keeps_the_rest():
    src = torch.nn.Linear(3, 2)   # weight (2, 3), bias (2,)
    dst = torch.nn.Linear(2, 3)   # weight (3, 2), bias (3,)
    before = snapshot(dst)
    info = load_partial_state(dst, src.state_dict(), verbose=0)
    assert info['seen']['partial_add_some'] == ['weight']
    assert info['seen']['partial_add_all'] == ['bias']
    assert info['self_unset'] == [] and info['other_unused'] == []
    with torch.no_grad():
        assert torch.equal(dst.weight[:2, :2], src.weight[:2, :2])
        assert torch.equal(dst.weight[2:], before['weight'][2:])
        assert torch.equal(dst.bias[:2], src.bias)
        assert torch.equal(dst.bias[2:], before['bias'][2:])


def test_mangle_false_skips_mismatched_shapes():
    src, dst = torch.nn.Linear(3, 2), torch.nn.Linear(2, 3)
    before = snapshot(dst)
    info = load_partial_state(dst, src.state_dict(), mangle=False, verbose=0)
    assert info['seen']['skipped'] == ['weight', 'bias']
    assert info['other_unused'] == ['weight', 'bias']
    assert info['self_unset'] == ['weight', 'bias']
    assert info['mapping'] == {'weight': 'weight', 'bias': 'bias'}
    assert_unchanged(dst, before)


def test_rank_mismatch_is_skipped_with_a_reason(capsys):
    dst = Holder(2, 2)
    before = snapshot(dst)
    info = load_partial_state(dst, Holder(4).state_dict(), verbose=2)
    assert info['seen']['skipped'] == ['w'] and info['self_unset'] == ['w']
    assert_unchanged(dst, before)
    out = capsys.readouterr().out
    assert 'skipped: w (' in out and 'ranks differ' in out


def test_complex_into_real_is_skipped_not_half_done():
    src = {'w': torch.randn(2, 2, dtype=torch.complex64)}
    dst = Holder(2, 2)
    before = snapshot(dst)
    info = load_partial_state(dst, src, verbose=0)
    assert info['seen']['skipped'] == ['w']
    assert_unchanged(dst, before)


# --- leftover ---------------------------------------------------------------

def test_noop_changes_nothing_that_got_no_source():
    src = torch.nn.Sequential(torch.nn.Linear(3, 2))
    dst = Embedder(torch.nn.Sequential(torch.nn.Linear(2, 3)))
    before = snapshot(dst)
    info = load_partial_state(dst, src.state_dict(), verbose=0)
    assert info['seen']['partial_add_some'] == ['module.0.weight']
    assert_unchanged(dst, before, keys=['extra.weight', 'extra.bias'])
    with torch.no_grad():
        assert torch.equal(dst.module[0].weight[2:],
                           before['module.0.weight'][2:])
        assert torch.equal(dst.module[0].bias[2:],
                           before['module.0.bias'][2:])


def test_callable_leftover_initializes_unset_and_partial_tensors():
    src = torch.nn.Sequential(torch.nn.Linear(3, 2))
    dst = Embedder(torch.nn.Sequential(torch.nn.Linear(2, 3)))
    load_partial_state(dst, src.state_dict(), leftover=torch.nn.init.ones_,
                       verbose=0)
    with torch.no_grad():
        assert bool((dst.extra.weight == 1).all())
        assert bool((dst.extra.bias == 1).all())
        weight = dst.module[0].weight
        assert torch.equal(weight[:2, :2], src[0].weight[:, :2])
        assert bool((weight[2:] == 1).all())
        assert torch.equal(dst.module[0].bias[:2], src[0].bias)
        assert bool((dst.module[0].bias[2:] == 1).all())


def test_leftover_does_not_touch_fully_loaded_tensors():
    src, dst = make_mlp(seed=0), make_mlp(seed=1)
    calls = []
    info = load_partial_state(dst, src.state_dict(), verbose=0,
                              leftover=lambda t: calls.append(t.shape))
    assert calls == [] and info['self_unset'] == []


def test_leftover_that_cannot_handle_a_tensor_leaves_it(capsys):
    src = torch.nn.Sequential(torch.nn.Linear(4, 3))
    dst = Embedder(torch.nn.Sequential(torch.nn.Linear(4, 3)))
    dst.extra = torch.nn.Linear(5, 6)
    before = snapshot(dst)
    load_partial_state(dst, src.state_dict(),
                       leftover=torch.nn.init.kaiming_normal_, verbose=2)
    after = dst.state_dict()
    assert not torch.equal(after['extra.weight'], before['extra.weight'])
    assert torch.equal(after['extra.bias'], before['extra.bias'])
    out = capsys.readouterr().out
    assert 'could not initialize extra.bias' in out


def test_leftover_respects_tied_weights():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2)
            self.b = torch.nn.Linear(2, 2)
            self.b.weight = self.a.weight
    src = {'a.weight': torch.randn(2, 2), 'a.bias': torch.randn(2)}
    dst = Tied()
    info = load_partial_state(dst, src, association='strict',
                              leftover=torch.nn.init.zeros_, verbose=0)
    assert torch.equal(dst.a.weight, src['a.weight'])
    assert info['self_unset'] == ['b.bias']
    assert bool((dst.b.bias == 0).all())


# --- options ----------------------------------------------------------------

def test_ignore_unset():
    src = make_mlp(seed=0)
    state = src.state_dict()
    info = load_partial_state(Embedder(make_mlp()), state, ignore_unset=True,
                              verbose=0)
    assert info['self_unset'] == []
    info = load_partial_state(Embedder(make_mlp()), state, verbose=0,
                              ignore_unset=['extra.bias'])
    assert info['self_unset'] == ['extra.weight']
    assert len(info['seen']['full_add']) == 4


def test_dataparallel_is_unwrapped():
    src = make_mlp(seed=0)
    dst = torch.nn.DataParallel(make_mlp(seed=1))
    info = load_partial_state(dst, src.state_dict(), association='strict',
                              verbose=0)
    assert info['mapping'] == {key: key for key in src.state_dict()}
    assert torch.equal(dst.module[2].weight, src[2].weight)


def test_attribute_named_module_is_not_unwrapped():
    src = make_mlp(seed=0)
    dst = Embedder(make_mlp(seed=1))
    before = snapshot(dst)
    # strict matching: nothing fits unless the model were (wrongly) unwrapped
    info = load_partial_state(dst, src.state_dict(), association='strict',
                              verbose=0)
    assert info['seen']['full_add'] == []
    assert len(info['self_unset']) == 6
    assert_unchanged(dst, before)
    # and its own keys, extra included, load strictly
    other = Embedder(make_mlp(seed=2))
    info = load_partial_state(dst, other.state_dict(), association='strict',
                              verbose=0)
    assert info['self_unset'] == [] and info['other_unused'] == []
    assert torch.equal(dst.extra.weight, other.extra.weight)


def test_nested_checkpoint_dict_is_unwrapped():
    src, dst = make_mlp(seed=0), make_mlp(seed=1)
    ckpt = {'epoch': 3, 'state_dict': src.state_dict()}
    info = load_partial_state(dst, ckpt, verbose=0)
    assert len(info['seen']['full_add']) == 4
    assert torch.equal(dst[0].weight, src[0].weight)


def test_path_is_read(tmp_path):
    src, dst = make_convbn(seed=0), make_convbn(seed=1)
    fpath = tmp_path / 'weights.pt'
    torch.save({'model': src.state_dict(), 'step': 10}, fpath)
    info = load_partial_state(dst, fpath, verbose=0)
    assert info['other_unused'] == [] and info['self_unset'] == []
    assert_loaded(dst, src.state_dict(), info['mapping'])
    info = load_partial_state(make_convbn(), str(fpath), verbose=0)
    assert info['other_unused'] == []


def test_safetensors_path_is_read(tmp_path):
    import safetensors.torch as safetensors_torch
    src, dst = make_mlp(seed=0), Embedder(make_mlp(seed=1))
    fpath = tmp_path / 'weights.safetensors'
    safetensors_torch.save_file(src.state_dict(), str(fpath))
    info = load_partial_state(dst, fpath, verbose=0)
    assert len(info['seen']['full_add']) == 4
    assert torch.equal(dst.module[0].weight, src[0].weight)


# --- errors leave the model bit-identical -----------------------------------

def _bad_calls(tmp_path):
    good = make_mlp(seed=0).state_dict()
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'this is not a checkpoint')
    yield ('unknown association', ValueError,
           r"association='isomorphsm' is not one of \('strict'",
           dict(model_state_dict=good, association='isomorphsm'))
    yield ('bad leftover', ValueError, "neither 'noop' nor callable",
           dict(model_state_dict=good, leftover='kaiming'))
    yield ('leftover None', ValueError, "neither 'noop' nor callable",
           dict(model_state_dict=good, leftover=None))
    yield ('bad ignore_unset', ValueError, 'ignore_unset=3',
           dict(model_state_dict=good, ignore_unset=3))
    yield ('non-tensor value', CheckpointFormatError,
           r"'2.weight' \(list\)|'2.weight'.*list",
           dict(model_state_dict={**good, '2.weight': [1.0, 2.0]}))
    yield ('non-str key', CheckpointFormatError, 'not a str|not strings',
           dict(model_state_dict={**good, 3: torch.zeros(1)}))
    yield ('module instead of state', CheckpointFormatError,
           r'pass module.state_dict\(\)',
           dict(model_state_dict=make_mlp()))
    yield ('not a mapping', CheckpointFormatError, 'not a mapping',
           dict(model_state_dict=[torch.zeros(1)]))
    yield ('unknown nesting', CheckpointFormatError, "'optimizer'",
           dict(model_state_dict={'optimizer': {'lr': 0.1}, 'epoch': 2}))
    yield ('missing file', CheckpointNotFoundError, 'nope',
           dict(model_state_dict=tmp_path / 'nope.pt'))
    yield ('corrupt file', CheckpointFormatError, 'corrupt.pt',
           dict(model_state_dict=corrupt))


@pytest.mark.parametrize('case', range(11))
def test_errors_leave_the_model_bit_identical(case, tmp_path):
    _, exc, match, kwargs = list(_bad_calls(tmp_path))[case]
    dst = Embedder(make_mlp(seed=1))
    before = snapshot(dst)
    with pytest.raises(exc, match=match):
        load_partial_state(dst, verbose=0, **kwargs)
    assert_unchanged(dst, before)


def test_not_a_model_is_an_error():
    with pytest.raises(ValueError, match='not a torch.nn.Module'):
        load_partial_state(make_mlp().state_dict(), {}, verbose=0)


# --- verbosity --------------------------------------------------------------

def _deep_mlp(n, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(n)])


def test_verbose_0_prints_nothing(capsys):
    src = Backboned(_deep_mlp(5, 0))
    load_partial_state(Embedder(_deep_mlp(5, 1)), src.state_dict(), verbose=0)
    assert capsys.readouterr().out == ''


def test_verbose_1_is_short_whatever_the_size(capsys):
    src = Backboned(_deep_mlp(200, 0))
    dst = Embedder(_deep_mlp(200, 1))
    load_partial_state(dst, src.state_dict(), leftover=torch.nn.init.ones_,
                       association='isomorphism')
    lines = capsys.readouterr().out.splitlines()
    assert 2 <= len(lines) <= 6, lines
    assert 'full_add=400' in lines[1]
    assert all(len(line) < 200 for line in lines)


def test_verbose_2_explains_every_key(capsys):
    src = Backboned(make_mlp(seed=0))
    dst = Embedder(make_mlp(seed=1))
    state = src.state_dict()
    load_partial_state(dst, state, verbose=2, association='isomorphism')
    out = capsys.readouterr().out
    for key in state:
        assert key in out
    assert 'skipped: head.weight (no matching model key)' in out
    assert 'self_unset: extra.bias' in out


def test_perfect_fit_message(capsys):
    load_partial_state(make_mlp(seed=1), make_mlp(seed=0).state_dict())
    out = capsys.readouterr().out
    assert 'perfect fit' in out and len(out.splitlines()) == 2


# --- Pretrained -------------------------------------------------------------

def test_pretrained_own_checkpoint_is_a_perfect_fit(tmp_path):
    src = Backboned(make_convbn(seed=0), extra_name='module')
    fpath = tmp_path / 'own.pt'
    torch.save(src.state_dict(), fpath)
    dst = Backboned(make_convbn(seed=1), extra_name='module')
    info = Pretrained(fpath, verbose=0).forward(dst)
    assert counts(info) == dict(full_add=len(src.state_dict()),
                                partial_add_some=0, partial_add_all=0,
                                skipped=0, self_unset=0, other_unused=0)
    assert_loaded(dst, src.state_dict(), info['mapping'])


def test_pretrained_options_are_passed_on(tmp_path):
    src = torch.nn.Linear(3, 2)
    fpath = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': src.state_dict(), 'epoch': 1}, fpath)
    dst = torch.nn.Linear(2, 3)
    before = snapshot(dst)
    info = Pretrained(fpath, mangle=False, verbose=0)(dst)
    assert info['seen']['skipped'] == ['weight', 'bias']
    assert_unchanged(dst, before)
    info = Pretrained(fpath, leftover=torch.nn.init.zeros_, verbose=0,
                      ignore_unset=True).forward(dst)
    assert info['seen']['partial_add_all'] == ['bias']
    assert info['self_unset'] == []
    assert float(dst.bias.detach()[2]) == 0.0


def test_pretrained_checks_options_up_front(tmp_path):
    with pytest.raises(ValueError, match='is not one of'):
        Pretrained(tmp_path / 'x.pt', association='nope')
    with pytest.raises(ValueError, match='nor callable'):
        Pretrained(tmp_path / 'x.pt', leftover=3)


def test_pretrained_missing_file_leaves_model(tmp_path):
    dst = make_mlp(seed=0)
    before = snapshot(dst)
    with pytest.raises(CheckpointNotFoundError):
        Pretrained(tmp_path / 'missing.pt', verbose=0).forward(dst)
    assert_unchanged(dst, before)
    assert 'missing.pt' in repr(Pretrained(tmp_path / 'missing.pt'))


def test_lazy_module_tensors_are_skipped_with_a_reason(capsys):
    dst = torch.nn.Sequential(torch.nn.LazyLinear(3))
    src = torch.nn.Sequential(torch.nn.Linear(2, 3)).state_dict()
    info = load_partial_state(dst, src, leftover=torch.nn.init.zeros_,
                              verbose=2)
    assert info['seen']['skipped'] == ['0.weight', '0.bias']
    assert 'forward pass' in capsys.readouterr().out


def test_empty_checkpoint_sets_nothing():
    dst = make_mlp(seed=0)
    before = snapshot(dst)
    info = load_partial_state(dst, {}, verbose=0)
    assert info['mapping'] == {} and len(info['self_unset']) == 4
    assert_unchanged(dst, before)


def test_inference_tensors_are_skipped_not_half_written():
    with torch.inference_mode():
        dst = Embedder(make_mlp(seed=1))
    src = Embedder(make_mlp(seed=0)).state_dict()
    before = snapshot(dst)
    info = load_partial_state(dst, src, leftover=torch.nn.init.ones_,
                              verbose=0)
    assert len(info['seen']['skipped']) == len(src)
    assert_unchanged(dst, before)
    with torch.inference_mode():
        info = load_partial_state(dst, src, verbose=0)
    assert info['self_unset'] == []
    assert torch.equal(dst.extra.weight, src['extra.weight'])
