"""
Properties of the key association solvers on random key trees.

Each test builds a random tree of dotted keys, applies a transformation whose
correct mapping is known (wrap, unwrap, rename a wrapper, insert a level,
drop or add subtrees) and checks that the solver recovers exactly that
mapping. Labels added by a transformation are fresh (upper case), as a new
module name would be.
"""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_liberator.association import (
    ASSOCIATIONS, associate_keys, maximum_common_ordered_subpaths)

TREE_MODES = ('isomorphism', 'embedding')
LABELS = ['a', 'b', 'c', 'conv', 'bn', 'fc', '0', '1', '2', 'layer1', 'block']
LEAVES = ['weight', 'bias', 'running_mean', 'scale']


def random_keys(rng, max_depth=4):
    """Random unique key paths whose internal labels repeat across branches."""
    def grow(prefix, depth):
        if depth >= max_depth or (depth > 0 and rng.random() < 0.25):
            return [prefix + '.' + leaf
                    for leaf in rng.sample(LEAVES, rng.randint(1, 3))]
        keys = []
        for label in rng.sample(LABELS, rng.randint(1, 4)):
            keys += grow(f'{prefix}.{label}' if prefix else label, depth + 1)
        return keys
    return grow('', 0)


seeds = st.integers(min_value=0, max_value=2 ** 32 - 1)


def check_one_to_one(mapping, src_keys, dst_keys):
    assert len(set(mapping.values())) == len(mapping)
    assert set(mapping) <= set(src_keys)
    assert set(mapping.values()) <= set(dst_keys)


@pytest.mark.parametrize('mode', ASSOCIATIONS)
@given(seed=seeds)
@settings(max_examples=40, deadline=None)
def test_identical_keys_map_to_themselves(mode, seed):
    keys = random_keys(random.Random(seed))
    assert associate_keys(keys, keys, association=mode) == {k: k for k in keys}


@pytest.mark.parametrize('mode', TREE_MODES)
@given(seed=seeds)
@settings(max_examples=60, deadline=None)
def test_identical_keys_solver_without_shortcut(mode, seed):
    keys = random_keys(random.Random(seed))
    sub1, sub2 = maximum_common_ordered_subpaths(keys, keys, mode=mode)
    assert sub1 == sub2 == keys


@pytest.mark.parametrize('mode', TREE_MODES + ('prefix-hack',))
@given(seed=seeds, depth=st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_wrapping_and_unwrapping_are_recovered(mode, seed, depth):
    keys = random_keys(random.Random(seed))
    prefix = '.'.join(['WRAP'] * depth) + '.'
    wrapped = [prefix + k for k in keys]
    assert associate_keys(keys, wrapped, association=mode) == dict(zip(keys, wrapped))
    assert associate_keys(wrapped, keys, association=mode) == dict(zip(wrapped, keys))


@pytest.mark.parametrize('mode', TREE_MODES + ('prefix-hack',))
@given(seed=seeds)
@settings(max_examples=60, deadline=None)
def test_renamed_wrapper_is_recovered(mode, seed):
    keys = random_keys(random.Random(seed))
    src = ['module.' + k for k in keys]
    dst = ['backbone.body.' + k for k in keys]
    assert associate_keys(src, dst, association=mode) == dict(zip(src, dst))


@given(seed=seeds)
@settings(max_examples=80, deadline=None)
def test_embedding_recovers_inserted_levels(seed):
    rng = random.Random(seed)
    keys = random_keys(rng)
    # insert a fresh level below a random inner node, then maybe another
    inner = sorted({k.rsplit('.', n)[0] for k in keys for n in range(1, k.count('.') + 1)})
    moved = list(keys)
    for level in range(rng.randint(1, 2)):
        at = rng.choice(inner)
        moved = [m if not m.startswith(at + '.') or m.count('.') <= at.count('.')
                 else f'{at}.INSERTED{level}{m[len(at):]}' for m in moved]
        inner = [i if not i.startswith(at + '.') else f'{at}.INSERTED{level}{i[len(at):]}'
                 for i in inner]
    expected = dict(zip(keys, moved))
    assert associate_keys(keys, moved, association='embedding') == expected
    assert associate_keys(moved, keys, association='embedding') == {
        v: k for k, v in expected.items()}


@pytest.mark.parametrize('mode', TREE_MODES)
@given(seed=seeds)
@settings(max_examples=80, deadline=None)
def test_dropped_and_added_subtrees(mode, seed):
    rng = random.Random(seed)
    keys = random_keys(rng)
    top = sorted({k.split('.')[0] for k in keys})
    dropped = rng.choice(top) if len(top) > 1 else None
    kept = [k for k in keys if k.split('.')[0] != dropped]
    # the destination is wrapped, lost one top-level subtree, gained a head
    # (whose parameter names are new: a head holding just a weight and a
    # bias could legitimately take the place of any such module)
    dst = ['WRAP.' + k for k in kept] + ['WRAP.HEAD.W', 'WRAP.HEAD.B']
    mapping = associate_keys(keys, dst, association=mode)
    check_one_to_one(mapping, keys, dst)
    assert mapping == {k: 'WRAP.' + k for k in kept}


@pytest.mark.parametrize('mode', TREE_MODES)
@given(seed=seeds, seed2=seeds)
@settings(max_examples=60, deadline=None)
def test_unrelated_trees_map_one_to_one_leaf_to_leaf(mode, seed, seed2):
    src = random_keys(random.Random(seed))
    dst = random_keys(random.Random(seed2))
    mapping = associate_keys(src, dst, association=mode)
    check_one_to_one(mapping, src, dst)
    # a key only ever goes to a key with the same parameter name
    for k, v in mapping.items():
        assert k.rsplit('.', 1)[-1] == v.rsplit('.', 1)[-1]


def test_isomorphism_keeps_one_wrapper_per_mapping():
    # the published README case: the two extra layers have different names
    # and nothing below them but their parameters, so they are not matched
    src = ['backbone.conv1.weight', 'backbone.fc.weight', 'cm2.weight', 'cm2.bias']
    dst = ['module.conv1.weight', 'module.fc.weight', 'cm1.weight', 'cm1.bias']
    assert associate_keys(src, dst, association='isomorphism') == {
        'backbone.conv1.weight': 'module.conv1.weight',
        'backbone.fc.weight': 'module.fc.weight'}


def test_embedding_prefers_longer_agreeing_paths():
    src = ['b.x.weight', 'a.b.x.weight']
    dst = ['WRAP.a.b.x.weight']
    assert associate_keys(src, dst, association='embedding') == {
        'a.b.x.weight': 'WRAP.a.b.x.weight'}


def test_lone_parameter_is_not_pushed_into_an_unrelated_module():
    src = ['conv1.weight', 'layer1.0.weight', 'fc.weight', 'fc.bias']
    dst = ['backbone.body.conv1.weight', 'backbone.body.layer1.0.weight',
           'backbone.fpn.inner.0.weight', 'backbone.fpn.inner.0.bias',
           'roi.fc6.weight', 'roi.fc6.bias']
    expected = {'conv1.weight': 'backbone.body.conv1.weight',
                'layer1.0.weight': 'backbone.body.layer1.0.weight'}
    for mode in TREE_MODES:
        assert associate_keys(src, dst, association=mode) == expected


@pytest.mark.parametrize('prefix', ['module.', '_orig_mod.', 'module._orig_mod.'])
def test_module_hack_strips_and_adds_wrapper_prefixes(prefix):
    keys = ['conv.weight', 'conv.bias']
    wrapped = [prefix + k for k in keys]
    assert associate_keys(wrapped, keys, 'module-hack') == dict(zip(wrapped, keys))
    assert associate_keys(keys, wrapped, 'module-hack') == dict(zip(keys, wrapped))


def test_strict_keeps_only_identical_keys():
    assert associate_keys(['a.w', 'b.w'], ['b.w', 'c.w'], 'strict') == {'b.w': 'b.w'}


def test_custom_separator():
    sub1, sub2 = maximum_common_ordered_subpaths(
        ['a/b/w', 'a/c/w'], ['x/a/b/w', 'x/a/c/w'], sep='/', mode='isomorphism')
    assert sub1 == ['a/b/w', 'a/c/w'] and sub2 == ['x/a/b/w', 'x/a/c/w']


def test_keys_out_of_module_order():
    src = ['a.x.w', 'b.y.w', 'a.z.w']
    dst = ['M.a.x.w', 'M.b.y.w', 'M.a.z.w']
    for mode in TREE_MODES:
        assert associate_keys(src, dst, mode) == dict(zip(src, dst))


def test_unknown_association_names_the_choices():
    with pytest.raises(ValueError, match=r"association='isomorphsm' is not one of .*'strict'"):
        associate_keys(['a'], ['a'], association='isomorphsm')
    with pytest.raises(ValueError, match=r"mode='prefix-hack' is not one of"):
        maximum_common_ordered_subpaths(['a'], ['a'], mode='prefix-hack')


def test_empty_inputs():
    for mode in ASSOCIATIONS:
        assert associate_keys([], ['a.b'], mode) == {}
        assert associate_keys(['a.b'], [], mode) == {}


def test_duplicate_or_bad_keys_are_rejected():
    with pytest.raises(ValueError, match='duplicate'):
        maximum_common_ordered_subpaths(['a.b', 'a.b'], ['a.b'])
    with pytest.raises(TypeError, match='keys must be strings'):
        maximum_common_ordered_subpaths([1], ['a.b'])
