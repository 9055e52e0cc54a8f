"""
Tests of torch_liberator.keyrules: rename rules and include / exclude globs,
on keys alone.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_liberator.errors import KeyRuleError
from torch_liberator.keyrules import KeyFilter, rename_keys


def test_regex_rules_apply_in_order_to_every_key():
    src = ['model.backbone.conv.w', 'model.head.w']
    dst = ['body.conv.w', 'cls.w']
    names, given = rename_keys(src, dst, {r'^model\.': '', r'^backbone\.': 'body.'})
    assert names == {'model.backbone.conv.w': 'body.conv.w',
                     'model.head.w': 'head.w'}
    # only a rename that lands on a model key is a settled pair
    assert given == {'model.backbone.conv.w': 'body.conv.w'}


def test_explicit_pairs_win_over_rules():
    names, given = rename_keys(['a.w', 'b.w'], ['x.w', 'b.w'],
                               {'a.w': 'x.w', r'\.w$': '.w'})
    # the rule matched b.w but left it as it was: not a pair the user gave
    assert given == {'a.w': 'x.w'}
    assert names['a.w'] == 'a.w'  # explicit pairs are not rewritten


def test_no_rename_is_identity():
    assert rename_keys(['a', 'b'], ['a'], None) == ({'a': 'a', 'b': 'b'}, {})


@pytest.mark.parametrize('rename, match', [
    ({'^zz': ''}, r"rename rule '\^zz' matches no checkpoint key \(e.g. 'a.w'\)"),
    ({'a.w': 'nope'}, "'nope' names no model key"),
    ({'[': ''}, 'neither a checkpoint key nor a valid regex'),
    ({r'^(a|b)\.w$': 'x.w'}, "rename sends both 'a.w' and 'b.w' to model key 'x.w'"),
    ({r'^(a|b)\.': 'c.'}, "rename turns both 'a.w' and 'b.w' into 'c.w'"),
    ({'a.w': 3}, 'is not a dict of str to str'),
    ('a.w', 'is not a dict of str to str'),
])
def test_bad_rules(rename, match):
    with pytest.raises(KeyRuleError, match=match):
        rename_keys(['a.w', 'b.w'], ['x.w', 'y.w'], rename)


def test_filter_matches_either_side():
    keep = KeyFilter(include=['backbone.*'], exclude='*.fc.*')
    assert keep
    assert keep.reason('layer1.w', 'backbone.layer1.w') is None
    assert keep.reason('backbone.layer1.w', 'body.layer1.w') is None
    assert keep.reason('head.w', 'cls.w') == "matches no include pattern ['backbone.*']"
    assert keep.reason('x.fc.w', 'backbone.x.w') == "excluded by exclude='*.fc.*'"
    assert not KeyFilter()
    assert KeyFilter().reason('a', 'b') is None


def test_filter_patterns_must_match_something():
    KeyFilter(exclude='head.*').check_used(['head.w'], [])
    KeyFilter(include='cls.*').check_used([], ['cls.w'])
    with pytest.raises(KeyRuleError, match="include pattern 'x.*' matches no"):
        KeyFilter(include='x.*').check_used(['a'], ['b'])
    with pytest.raises(KeyRuleError, match='exclude must be a glob pattern'):
        KeyFilter(exclude=[1])


_key = st.lists(st.sampled_from(['a', 'b', 'c', '0', '1']), min_size=1,
                max_size=4).map('.'.join)


@settings(max_examples=100, deadline=None)
@given(st.lists(_key, min_size=1, max_size=15, unique=True), st.data())
def test_explicit_pairs_are_returned_exactly(src, data):
    dst = [f'm.{key}' for key in src]
    chosen = data.draw(st.lists(st.sampled_from(src), unique=True, min_size=1))
    rename = {key: f'm.{key}' for key in chosen}
    names, given = rename_keys(src, dst, rename)
    assert given == rename
    assert names == {key: key for key in src}
