"""
Tests of torch_liberator.loadplan: the plan is made from keys and shapes,
touches nothing, agrees with what load_partial_state does, and the user's
rename / include / exclude steer it.
"""
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import (Backboned, Embedder, TiedLinears, assert_unchanged,
                      make_convbn, make_mlp, snapshot)
from torch_liberator.errors import (KeyRuleError, PolicyError,
                                    ShapeMismatchError)
from torch_liberator.initializer import Pretrained, load_partial_state
from torch_liberator.loadplan import (ACTIONS, LoadPlan, describe_destination,
                                      plan_load)
from torch_liberator.shapes import TensorSpec
from torch_liberator.tensorsource import SpecSource


def distinct_state(model, start=0):
    """The model's state dict with every element distinct across tensors
    (so a value read back names the tensor it came from)."""
    state, offset = {}, start
    for key, value in model.state_dict().items():
        n = value.numel()
        state[key] = (torch.arange(offset, offset + n, dtype=torch.float64)
                      .reshape(value.shape).to(value.dtype))
        offset += n
    return state


class TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = make_mlp(seed=3)
        self.head = torch.nn.Linear(3, 2)


# --- the plan itself --------------------------------------------------------

def test_plan_touches_nothing():
    src = Backboned(make_convbn(seed=0))
    dst = Embedder(make_convbn(seed=1))
    state = src.state_dict()
    before_dst, before_src = snapshot(dst), {k: v.clone() for k, v in state.items()}
    plan = plan_load(dst, state, association='isomorphism')
    assert isinstance(plan, LoadPlan)
    assert_unchanged(dst, before_dst)
    for key, value in state.items():
        assert torch.equal(value, before_src[key])
    assert plan.counts() == {'copy': len(state) - 2, 'shove': 0, 'skip': 2}


def test_plan_needs_only_specs():
    specs_src = {'module.0.weight': TensorSpec((3, 4), 'float32'),
                 'module.0.bias': TensorSpec((3,), 'float32'),
                 'module.2.weight': TensorSpec((5, 3), 'float32')}
    specs_dst = {'0.weight': TensorSpec((3, 4)), '0.bias': TensorSpec((3,)),
                 '2.weight': TensorSpec((2, 3)), '2.bias': TensorSpec((2,))}
    plan = plan_load(specs_dst, SpecSource(specs_src), association='module-hack')
    assert [(e.src_key, e.dst_key, e.action, e.outcome, e.policy)
            for e in plan.entries] == [
        ('module.0.weight', '0.weight', 'copy', 'full_add', None),
        ('module.0.bias', '0.bias', 'copy', 'full_add', None),
        ('module.2.weight', '2.weight', 'shove', 'partial_add_some', 'corner'),
    ]
    assert plan.entries[2].src_spec.shape == (5, 3)
    assert plan.entries[2].dst_spec.shape == (2, 3)
    assert plan.self_unset == ['2.bias']
    assert plan.association == 'module-hack'


def test_meta_model_can_be_planned():
    with torch.device('meta'):
        dst = Embedder(make_mlp())
    specs = SpecSource(dst.state_dict()).specs
    plan = plan_load(specs, make_mlp(seed=0).state_dict())
    assert plan.counts() == {'copy': 4, 'shove': 0, 'skip': 0}
    assert plan.self_unset == ['extra.weight', 'extra.bias']


def test_every_entry_says_what_and_why():
    src = {'a.weight': torch.zeros(4, 3), 'a.bias': torch.zeros(4),
           'b.weight': torch.zeros(2, 2), 'zzz.q': torch.zeros(1)}
    dst = torch.nn.ModuleDict({'a': torch.nn.Linear(3, 5),
                               'b': torch.nn.Linear(2, 2)})
    plan = plan_load(dst, src, mangle={'a.bias': 'skip'})
    by_key = {e.src_key: e for e in plan.entries}
    assert list(by_key) == list(src)
    assert by_key['a.weight'].action == 'shove'
    assert by_key['a.weight'].policy == 'corner'
    assert (by_key['a.weight'].src_spec.shape,
            by_key['a.weight'].dst_spec.shape) == ((4, 3), (5, 3))
    assert by_key['a.bias'].action == 'skip'
    assert "policy is 'skip'" in by_key['a.bias'].reason
    assert by_key['b.weight'].action == 'copy'
    assert by_key['zzz.q'].action == 'skip'
    assert by_key['zzz.q'].reason == 'no matching model key'
    for e in plan.entries:
        assert e.action in ACTIONS
        assert (e.action == 'skip') == bool(e.reason)
    assert plan.self_unset == ['a.bias', 'b.bias']
    assert plan.other_unused == ['a.bias', 'zzz.q']


def test_info_plan_is_the_plan_and_agrees_with_info(resnet50, faster_rcnn_frozen):
    state = resnet50.state_dict()
    planned = plan_load(faster_rcnn_frozen, state, association='embedding')
    before = snapshot(faster_rcnn_frozen)
    model = faster_rcnn_frozen
    info = load_partial_state(model, state, association='embedding', verbose=0)
    plan = info['plan']
    assert plan.entries == planned.entries
    assert plan.self_unset == planned.self_unset
    assert info['mapping'] == plan.mapping
    assert info['seen'] == plan.seen()
    assert info['self_unset'] == plan.self_unset
    assert info['other_unused'] == plan.other_unused
    assert {k: len(v) for k, v in info['seen'].items()} == {
        'full_add': 265, 'partial_add_some': 0, 'partial_add_all': 0,
        'skipped': 55}
    assert len(info['self_unset']) == 30
    # load what it planned, by values: every copied tensor equals its source
    after = model.state_dict()
    for e in plan.entries:
        if e.action == 'copy':
            assert torch.equal(after[e.dst_key], state[e.src_key]), e.src_key
    for key in plan.self_unset:
        assert torch.equal(after[key], before[key]), key
    model.load_state_dict(before)  # the fixture is shared


def test_plan_from_a_file_without_a_model(tmp_path):
    src = make_convbn(seed=0)
    fpath = tmp_path / 'ckpt.pt'
    torch.save({'state_dict': src.state_dict(), 'epoch': 4}, fpath)
    dst_specs, _ = describe_destination(Embedder(make_convbn()))
    plan = plan_load(dst_specs, fpath)
    assert plan.mapping == {key: 'module.' + key for key in src.state_dict()}


def test_to_dict_is_json_and_complete():
    src = {'w': torch.zeros(3), 'x': torch.zeros(1)}
    plan = plan_load({'w': torch.zeros(2), 'v': torch.zeros(1)}, src,
                     association='strict')
    data = json.loads(json.dumps(plan.to_dict()))
    assert data['counts'] == {'copy': 0, 'shove': 1, 'skip': 1}
    assert data['entries'][0] == {
        'src': 'w', 'dst': 'w', 'action': 'shove',
        'outcome': 'partial_add_some', 'src_shape': [3], 'dst_shape': [2],
        'policy': 'corner', 'reason': '', 'given': False, 'hint': None}
    assert data['entries'][1]['reason'] == 'no matching model key'
    assert data['self_unset'] == ['v'] and data['other_unused'] == ['x']
    assert data['n_model_keys'] == 2 and data['association'] == 'strict'


def test_tied_model_keys_count_once():
    src = {'a.weight': torch.randn(2, 2)}
    plan = plan_load(TiedLinears(), src, association='strict')
    assert plan.tied == {'b.weight': 'a.weight'}
    assert plan.self_unset == []
    plan = plan_load(TiedLinears(), {'b.weight': torch.randn(2, 2)},
                     association='strict')
    assert plan.self_unset == []


def test_tensors_that_would_fail_half_way_are_planned_as_skips():
    class Expanded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.register_buffer('b', torch.zeros(1).expand(3))
    dst = Expanded()
    src = {'lin.weight': torch.randn(2, 2), 'lin.bias': torch.randn(2),
           'b': torch.ones(3)}
    plan = plan_load(dst, src, association='strict')
    assert [e.action for e in plan.entries] == ['copy', 'copy', 'skip']
    assert 'expanded view' in plan.entries[2].reason
    before = snapshot(dst)
    info = load_partial_state(dst, src, association='strict', verbose=0)
    assert info['plan'].entries == plan.entries
    assert info['self_unset'] == ['b']
    assert_unchanged(dst, before, keys=['b'])
    assert torch.equal(dst.lin.weight, src['lin.weight'])


def test_every_pair_that_would_fail_is_skipped_once_and_the_rest_loads():
    """The checks of one tensor run once (source when it is opened, model
    tensor and dtypes when the pair is planned), the checks of memory shared
    between tensors once per load: each bad pair is skipped with its own
    reason, every good pair still loads, nothing else changes."""
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name in ('good', 'sparse', 'meta', 'complex', 'own', 'later'):
                self.register_buffer(name, torch.zeros(3))
            self.register_buffer('expanded', torch.zeros(1).expand(3))
    dst = Model()
    src = {
        'good': torch.arange(3.),
        'sparse': torch.ones(3).to_sparse(),
        'meta': torch.empty(3, device='meta'),
        'complex': torch.ones(3, dtype=torch.complex64),
        'expanded': torch.ones(3),
        'own': dst.own,  # the model's own tensor: a no-op copy, not refused
        'later': dst.good,  # read after 'good' was written: refused
    }
    before = snapshot(dst)
    info = load_partial_state(dst, src, association='strict', verbose=0)
    reasons = {e.src_key: e.reason for e in info['plan'].entries}
    assert [e.src_key for e in info['plan'].entries if e.loads] == ['good', 'own']
    assert reasons['sparse'] == 'torch.sparse_coo tensors are not supported; densify it first'
    assert reasons['meta'] == 'meta tensors hold no data'
    assert reasons['complex'].startswith('a complex checkpoint tensor into a real model tensor')
    assert reasons['expanded'].startswith('the model tensor is an expanded view')
    assert reasons['later'].startswith(
        "the checkpoint tensor shares memory with model tensor 'good', which "
        'is written before it is read')
    assert torch.equal(dst.good, torch.arange(3.))
    assert_unchanged(dst, before, keys=[k for k in before if k != 'good'])


def test_pretrained_plan_matches_forward(tmp_path):
    src = Backboned(make_mlp(seed=0))
    fpath = tmp_path / 'w.pt'
    torch.save(src.state_dict(), fpath)
    pre = Pretrained(fpath, verbose=0, exclude='head.*')
    dst = Embedder(make_mlp(seed=1))
    plan = pre.plan(dst)
    assert_unchanged(dst, snapshot(Embedder(make_mlp(seed=1))))
    info = pre.forward(dst)
    assert info['plan'].entries == plan.entries
    assert info['other_unused'] == ['head.weight', 'head.bias']


# --- rename -------------------------------------------------------------------

def test_rename_pairs_are_loaded_and_never_overridden():
    src_model = TwoHeads()
    state = distinct_state(src_model)
    dst = TwoHeads()
    # identity would put head into head; the user says body.2 -> head
    # (by names: 'structure', which 'auto' may pick, also pairs by order)
    info = load_partial_state(
        dst, state, verbose=0, association='isomorphism',
        rename={'body.2.weight': 'head.weight', 'body.2.bias': 'head.bias'})
    assert info['mapping']['body.2.weight'] == 'head.weight'
    assert torch.equal(dst.head.weight, state['body.2.weight'])
    assert torch.equal(dst.head.bias, state['body.2.bias'])
    assert torch.equal(dst.body[0].weight, state['body.0.weight'])
    given = [e.src_key for e in info['plan'].entries if e.given]
    assert given == ['body.2.weight', 'body.2.bias']
    # the checkpoint's own head found no place the user did not take
    assert 'head.weight' in info['other_unused']


def test_rename_regex_then_association_places_the_rest():
    src = make_mlp(seed=0)
    state = {'model.' + k: v for k, v in distinct_state(src).items()}
    state['ema.0.weight'] = torch.full((3, 4), -1.0)
    dst = Embedder(make_mlp(seed=1))
    info = load_partial_state(dst, state, verbose=0,
                              rename={r'^model\.': 'module.'},
                              association='strict')
    assert info['mapping'] == {f'model.{k}': f'module.{k}'
                               for k in src.state_dict()}
    assert torch.equal(dst.module[2].bias, state['model.2.bias'])
    assert info['other_unused'] == ['ema.0.weight']
    # a regex that only strips a prefix: the association places the result
    dst = Backboned(make_mlp(seed=1))
    info = load_partial_state(dst, state, verbose=0,
                              rename={r'^model\.': ''}, exclude='ema.*')
    assert info['mapping']['model.0.weight'] == 'backbone.0.weight'
    assert torch.equal(dst.backbone[0].weight, state['model.0.weight'])


def _rename_errors():
    yield {'^nope': ''}, "rename rule '\\^nope' matches no checkpoint key"
    yield {'0.weight': 'no.such.key'}, "'no.such.key' names no model key"
    yield {'(': 'x'}, 'neither a checkpoint key nor a valid regex'
    yield {'^(0|2)\\.weight$': 'module.0.weight'}, "both '0.weight' and '2.weight'"
    yield {'0.weight': 'module.0.weight', '^2\\.weight$': 'module.0.weight'}, 'to model key'
    yield ['0.weight'], 'is not a dict of str to str'
    yield {'^0\\.': r'\9'}, 'replacement'


@pytest.mark.parametrize('case', range(7))
def test_bad_rename_is_an_error_and_loads_nothing(case):
    rename, match = list(_rename_errors())[case]
    dst = Embedder(make_mlp(seed=1))
    before = snapshot(dst)
    with pytest.raises(KeyRuleError, match=match):
        load_partial_state(dst, make_mlp(seed=0).state_dict(), verbose=0,
                           rename=rename)
    assert_unchanged(dst, before)


# --- include / exclude --------------------------------------------------------

def test_exclude_and_include_limit_what_loads():
    src, dst = make_convbn(seed=0), make_convbn(seed=1)
    state = src.state_dict()
    before = snapshot(dst)
    info = load_partial_state(dst, state, verbose=0, exclude=['1.*'])
    skipped = [k for k in state if k.startswith('1.')]
    assert info['other_unused'] == skipped
    assert info['self_unset'] == skipped
    assert_unchanged(dst, before, keys=skipped)
    assert torch.equal(dst[0].weight, src[0].weight)
    reasons = {e.src_key: e.reason for e in info['plan'].entries}
    assert reasons['1.weight'] == "excluded by exclude='1.*'"
    # include matches the model side as well as the checkpoint side
    dst = Embedder(make_convbn(seed=2))
    info = load_partial_state(dst, state, verbose=0, include='module.3.*')
    assert [e.src_key for e in info['plan'].loaded] == ['3.weight', '3.bias']
    assert torch.equal(dst.module[3].weight, src[3].weight)


@pytest.mark.parametrize('kwargs, match', [
    (dict(include='nothing.*'), "include pattern 'nothing.*' matches no"),
    (dict(exclude=['0.*', 'haed.*']), "exclude pattern 'haed.*' matches no"),
    (dict(include=3), 'include must be a glob pattern or a list of them'),
])
def test_bad_globs_are_errors_and_load_nothing(kwargs, match):
    dst = make_mlp(seed=1)
    before = snapshot(dst)
    with pytest.raises(KeyRuleError, match=match):
        load_partial_state(dst, make_mlp(seed=0).state_dict(), verbose=0,
                           **kwargs)
    assert_unchanged(dst, before)


def test_policy_errors_load_nothing():
    dst = torch.nn.Linear(2, 3)
    before = snapshot(dst)
    with pytest.raises(ShapeMismatchError, match='mangle says raise'):
        load_partial_state(dst, torch.nn.Linear(2, 4).state_dict(),
                           mangle='raise', verbose=0)
    assert_unchanged(dst, before)
    with pytest.raises(PolicyError, match='is not a policy'):
        load_partial_state(dst, torch.nn.Linear(2, 4).state_dict(),
                           mangle='squash', verbose=0)
    assert_unchanged(dst, before)

    def bad_policy(src, dst, key):
        raise RuntimeError('boom')
    with pytest.raises(ShapeMismatchError, match='the policy raised RuntimeError: boom'):
        load_partial_state(dst, torch.nn.Linear(2, 4).state_dict(),
                           mangle=bad_policy, verbose=0)
    assert_unchanged(dst, before)


# --- saying so when little is loaded ---------------------------------------------

def test_warns_when_nothing_loads(capsys):
    src = {'encoder.layers.0.w': torch.zeros(7, 7),
           'encoder.layers.1.w': torch.zeros(9)}
    load_partial_state(make_mlp(), src)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        'warning: 0 of 4 model tensors loaded: no checkpoint key found a '
        'place (the checkpoint looks like a different architecture); see '
        '`python -m torch_liberator map`')


def test_warns_when_under_half_loads(capsys):
    src = torch.nn.Sequential(torch.nn.Linear(4, 3)).state_dict()
    dst = torch.nn.Sequential(*[torch.nn.Linear(4, 3) for _ in range(3)])
    load_partial_state(dst, src, association='strict')
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        'warning: 2 of 6 model tensors loaded: the checkpoint has only 2 '
        'tensors (a part of this model, or another architecture); see '
        '`python -m torch_liberator map`')
    load_partial_state(dst, src, association='strict', verbose=0)
    assert capsys.readouterr().out == ''


def test_warning_names_refused_pairs(capsys):
    dst = torch.nn.Linear(2, 3)
    load_partial_state(dst, torch.nn.Linear(2, 4).state_dict(), mangle=False)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        'warning: 0 of 2 model tensors loaded: 2 matched pairs were not '
        "loaded (e.g. 'weight': shape (4, 2) != model 'weight' (3, 2) and "
        "the policy is 'skip'); see `python -m torch_liberator map`")


def test_no_warning_when_half_or_more_loads(capsys):
    src = torch.nn.Sequential(torch.nn.Linear(4, 3)).state_dict()
    dst = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 3))
    load_partial_state(dst, src, association='strict')
    assert 'warning' not in capsys.readouterr().out


def test_verbose_1_names_every_shove(capsys):
    src = torch.nn.Sequential(torch.nn.Linear(8, 1000)).state_dict()
    dst = torch.nn.Sequential(torch.nn.Linear(8, 10))
    load_partial_state(dst, src)
    out = capsys.readouterr().out
    assert ('shoved 2: 0.weight (1000, 8) -> (10, 8) corner, '
            '0.bias (1000,) -> (10,) corner') in out
    assert 'perfect fit' not in out


# --- the 0.2 signatures -------------------------------------------------------------

def test_pretrained_published_positional_order(tmp_path):
    fpath = tmp_path / 'w.pt'
    torch.save(make_mlp(seed=0).state_dict(), fpath)
    pre = Pretrained(fpath, False, torch.nn.init.zeros_, True, 'strict',
                     False, 0)
    assert (pre.mangle, pre.leftover, pre.ignore_unset, pre.association,
            pre.allow_efficiency_tricks, pre.verbose) == (
        False, torch.nn.init.zeros_, True, 'strict', False, 0)
    info = pre(make_mlp(seed=1))
    assert len(info['seen']['full_add']) == 4
    with pytest.raises(TypeError):
        Pretrained(fpath, True, 'noop', False, 'strict', True, 0, False)


def test_load_partial_state_published_positional_order():
    src, dst = make_mlp(seed=0), Embedder(make_mlp(seed=1))
    info = load_partial_state(dst, src.state_dict(), 'noop', ['extra.bias'],
                              0, True, 'isomorphism', False)
    assert info['self_unset'] == ['extra.weight']


def test_initializer_is_the_0_2_name_of_leftover():
    src = torch.nn.Sequential(torch.nn.Linear(3, 2))
    dst = Embedder(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    with pytest.warns(DeprecationWarning, match='pass leftover= instead'):
        load_partial_state(dst, src.state_dict(), verbose=0,
                           initializer=torch.nn.init.ones_)
    assert bool((dst.extra.weight == 1).all())
    with pytest.warns(DeprecationWarning):  # positionally, as 0.2 had it
        load_partial_state(dst, src.state_dict(), 'noop', False, 0, True,
                           'isomorphism', True, torch.nn.init.zeros_)
    assert bool((dst.extra.weight == 0).all())
    before = snapshot(dst)
    with pytest.raises(ValueError, match='pass only leftover='):
        load_partial_state(dst, src.state_dict(), verbose=0,
                           leftover=torch.nn.init.ones_,
                           initializer=torch.nn.init.zeros_)
    assert_unchanged(dst, before)


# --- ambiguity ----------------------------------------------------------------

def test_ambiguous_keys_are_left_out_and_said(monkeypatch, capsys):
    # the association reports '2.weight' as ambiguous (a solver that sees two
    # equally good places); the plan must leave it out and say so everywhere
    import torch_liberator.loadplan as loadplan
    from torch_liberator.association import Association, associate

    def ambiguous(src, dst, **kwargs):
        found = associate(src, dst, **kwargs)
        if '2.weight' not in src:
            return found
        mapping = {k: v for k, v in found.mapping.items() if k != '2.weight'}
        return Association(mapping, {'2.weight': ('module.2.weight', 'other.weight')},
                           found.association)
    monkeypatch.setattr(loadplan, 'associate', ambiguous)
    src, dst = make_mlp(seed=0), Embedder(make_mlp(seed=1))
    before = snapshot(dst)
    info = load_partial_state(dst, src.state_dict())
    plan = info['plan']
    assert plan.ambiguous == {'2.weight': ('module.2.weight', 'other.weight')}
    entry = plan.entries[2]
    assert (entry.src_key, entry.dst_key, entry.action) == ('2.weight', None, 'skip')
    assert entry.reason == ("ambiguous: could go to 'module.2.weight' or "
                            "'other.weight'; give the pair in rename= to load it")
    assert '2.weight' in info['other_unused']
    assert 'module.2.weight' in info['self_unset']
    assert_unchanged(dst, before, keys=['module.2.weight'])
    out = capsys.readouterr().out
    assert '  ambiguous=1 (2.* 1): left out; give the pairs in rename= to load them' in out
    table = str(plan).splitlines()
    assert ('ambiguous 1: left out, e.g. 2.weight could go to module.2.weight '
            'or other.weight; give the pairs in rename= to load them') in table
    assert ('2.weight -> -             skip    1  ambiguous: 2 equally good '
            'places') in table
    assert plan.to_dict()['ambiguous'] == {'2.weight': ['module.2.weight', 'other.weight']}
    # the user settles it: a given pair never goes to the association
    info = load_partial_state(dst, src.state_dict(), verbose=0,
                              rename={'2.weight': 'module.2.weight'})
    assert info['plan'].ambiguous == {}
    assert torch.equal(dst.module[2].weight, src[2].weight)


def test_two_backbones_side_by_side_are_ambiguous_until_renamed(capsys):
    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = make_convbn(seed=1)
            self.b = make_convbn(seed=2)
    src = make_convbn(seed=0)
    state = distinct_state(src)
    dst = Two()
    before = snapshot(dst)
    info = load_partial_state(dst, state)
    assert info['plan'].ambiguous == {
        key: (f'a.{key}', f'b.{key}') for key in state}
    assert_unchanged(dst, before)  # nothing guessed
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        'warning: 0 of 18 model tensors loaded: 9 checkpoint keys are '
        'ambiguous and were left out; give their pairs in rename=; see '
        '`python -m torch_liberator map`')
    info = load_partial_state(dst, state, verbose=0, rename={'^': 'b.'})
    assert info['plan'].ambiguous == {}
    assert_unchanged(dst, before, keys=[f'a.{key}' for key in state])
    for key, value in state.items():
        assert torch.equal(dst.state_dict()[f'b.{key}'], value), key


def test_two_copies_in_the_checkpoint_are_ambiguous_until_one_is_renamed():
    # a MoCo checkpoint holds the query and the key encoder, copies of one
    # network: neither is the model's until the user says which
    src = make_convbn(seed=0)
    state = {**{f'module.encoder_q.{k}': v for k, v in distinct_state(src).items()},
             **{f'module.encoder_k.{k}': v + 1000 for k, v in distinct_state(src).items()}}
    dst = make_convbn(seed=1)
    before = snapshot(dst)
    info = load_partial_state(dst, state, verbose=0)
    assert sorted(info['plan'].ambiguous) == sorted(k for k in state if 'encoder_q' in k)
    assert_unchanged(dst, before)
    # exclude acts on the pairs the association made: it moves nothing
    info = load_partial_state(dst, state, verbose=0, exclude='module.encoder_k.*')
    assert_unchanged(dst, before)
    # a rename rule picks the copy
    info = load_partial_state(dst, state, verbose=0, rename={r'^module\.encoder_q\.': ''})
    assert info['association'] == 'strict' and info['plan'].ambiguous == {}
    for key, value in dst.state_dict().items():
        assert torch.equal(value, state[f'module.encoder_q.{key}']), key


# --- sources: only what the plan needs is read ----------------------------------

class RecordingSource:
    """A TensorSource that knows its specs up front and records reads."""

    def __init__(self, state):
        self.state = state
        self.specs = {k: TensorSpec.of(v) for k, v in state.items()}
        self.problems = {}
        self.asked = []

    def read(self, keys):
        keys = list(keys)
        self.asked.extend(keys)
        return {k: self.state[k].clone() for k in keys}


def test_only_planned_tensors_are_read():
    src = Backboned(make_mlp(seed=0))
    state = distinct_state(src)
    source = RecordingSource(state)
    dst = Embedder(make_mlp(seed=1))
    plan = plan_load(dst, source, association='isomorphism', exclude='*.2.bias')
    assert source.asked == []  # planning reads nothing
    info = load_partial_state(dst, source, verbose=0, association='isomorphism',
                              exclude='*.2.bias')
    assert info['plan'].entries == plan.entries
    assert source.asked == ['backbone.0.weight', 'backbone.0.bias',
                            'backbone.2.weight']
    assert torch.equal(dst.module[2].weight, state['backbone.2.weight'])


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(6))), st.sets(st.integers(0, 5), min_size=1))
def test_given_pairs_are_never_overridden(perm, chosen):
    # six same-shaped tensors: names alone would pair i with i; the user's
    # pairs send i to perm[i] and must hold, by value
    src = {f'blocks.{i}.w': torch.full((2,), float(i)) for i in range(6)}
    dst = torch.nn.ParameterDict({f'b{i}': torch.nn.Parameter(torch.zeros(2))
                                  for i in range(6)})
    dst_keys = list(dst.state_dict())
    rename = {f'blocks.{i}.w': dst_keys[perm[i]] for i in chosen}
    info = load_partial_state(dst, src, verbose=0, rename=rename)
    for src_key, dst_key in rename.items():
        assert info['mapping'][src_key] == dst_key
        assert torch.equal(dst.state_dict()[dst_key], src[src_key])
    assert len(set(info['mapping'].values())) == len(info['mapping'])


def test_unknown_shapes_are_planned_as_skips_and_print():
    src = {'0.weight': torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)]),
           '0.bias': torch.zeros(3)}
    plan = plan_load(torch.nn.Sequential(torch.nn.LazyLinear(3)), src,
                     association='strict')
    data = json.loads(json.dumps(plan.to_dict()))
    assert [(e['action'], e['src_shape'], e['dst_shape']) for e in data['entries']] == [
        ('skip', None, None), ('skip', [3], None)]
    assert 'nested tensor' in plan.entries[0].reason
    assert 'lazy module' in plan.entries[1].reason
    assert str(plan).splitlines()[-2] == 'copy 0, shove 0, skip 2 of 2 checkpoint tensors'


def test_len_of_every_info_value_still_works():
    # the published README prints ub.map_vals(len, ub.dict_diff(info, ['seen']))
    ub = pytest.importorskip('ubelt')
    src = Backboned(make_mlp(seed=0))
    info = load_partial_state(Embedder(make_mlp(seed=1)), src.state_dict(),
                              verbose=0, association='isomorphism')
    assert ub.map_vals(len, ub.dict_diff(info, ['seen'])) == {
        'mapping': 4, 'self_unset': 2, 'other_unused': 2,
        'association': len('isomorphism'), 'plan': 6}


def test_a_module_paired_with_another_kind_sends_nothing():
    # vgg11 -> vgg11_bn by name: features.1 is a conv in one and a BatchNorm
    # in the other; the conv's 4-d weight cannot go, so its bias must not go
    # into the BatchNorm's bias either (it did: a conv bias in a norm)
    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 3),
                              torch.nn.Linear(2, 2)).state_dict()
    dst = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Linear(2, 2))
    for association in ('strict', 'embedding', 'auto'):
        plan = plan_load(dst, src, association=association)
        loaded = {e.src_key: e.dst_key for e in plan.loaded}
        assert loaded == {'0.weight': '0.weight', '0.bias': '0.bias',
                          '2.weight': '2.weight', '2.bias': '2.bias'}, association
        skipped = {e.src_key: e.reason for e in plan.entries if e.action == 'skip'}
        assert association != 'strict' or 'different kinds' in skipped['1.bias']
    # a pair the user named is kept
    plan = plan_load(dst, src, association='strict', rename={'1.bias': '1.bias'})
    assert '1.bias' in {e.src_key for e in plan.loaded}
    # a reshape is no other kind: a 1x1 conv head into a Linear loads whole
    head = torch.nn.Sequential(torch.nn.Conv2d(4, 3, 1)).state_dict()
    plan = plan_load(torch.nn.Sequential(torch.nn.Linear(4, 3)), head, association='strict')
    assert [e.src_key for e in plan.loaded] == ['0.weight', '0.bias']
