"""
Tests for torch_liberator.policies: parsing ``mangle``, deciding per pair
from specs, the preflight on real tensors, and applying decisions.
"""
import pytest
import torch

from torch_liberator import policies
from torch_liberator.errors import PolicyError, ShapeMismatchError
from torch_liberator.policies import (
    POLICIES, MangleRules, ShoveDecision, apply_decision, check_copyable,
    interpolate, prepare_shove, suggest_policy, summarize_shoves)
from torch_liberator.shapes import TensorSpec


def spec(*shape, dtype=torch.float32):
    return TensorSpec(tuple(shape), dtype)


def test_all_is_sorted_and_complete():
    assert policies.__all__ == sorted(policies.__all__)
    public = {name for name in vars(policies)
              if not name.startswith('_')
              and getattr(getattr(policies, name), '__module__', None) == policies.__name__}
    assert public <= set(policies.__all__)


@pytest.mark.parametrize('mangle, name', [
    (True, 'corner'), (False, 'skip'), ('center', 'center'),
    ('interpolate', 'interpolate'), ('adapt_channels', 'adapt_channels'),
    ('reshape', 'reshape'), ('skip', 'skip'), ('raise', 'raise'),
])
def test_mangle_values_name_the_default(mangle, name):
    rules = MangleRules(mangle, ['a'])
    assert rules.policy_for('a') == (name, None)


def test_every_policy_name_is_accepted():
    for name in POLICIES:
        assert MangleRules(name, ['a']).policy_for('a') == (name, None)


def test_callable_policy_is_named_by_its_function():
    def halve(src, dst, key):
        return src[: dst.shape[0]] / 2
    rules = MangleRules({'fc.*': halve}, ['fc.weight', 'conv.weight'])
    assert rules.policy_for('fc.weight') == ('halve', 'fc.*')
    assert rules.policy_for('conv.weight') == ('corner', None)


def test_first_matching_pattern_wins_and_star_is_the_default_anywhere():
    keys = ['head.fc.weight', 'head.fc.bias', 'stem.weight']
    rules = MangleRules({'*': 'skip', 're:fc': 'center', 'head.*': 'corner'}, keys)
    assert rules.policy_for('head.fc.weight') == ('center', 're:fc')
    assert rules.policy_for('head.fc.bias') == ('center', 're:fc')
    assert rules.policy_for('stem.weight') == ('skip', None)
    rules = MangleRules({'head.*': 'corner', 're:fc': 'center'}, keys)
    assert rules.policy_for('head.fc.weight') == ('corner', 'head.*')
    assert rules.policy_for('stem.weight') == ('corner', None)


def test_glob_matches_whole_keys_and_regex_searches():
    keys = ['encoder.pos_embedding', 'pos_embed']
    assert MangleRules({'pos_embed': 'skip'}, keys).policy_for(
        'encoder.pos_embedding') == ('corner', None)
    assert MangleRules({'re:pos_emb': 'skip'}, keys).policy_for(
        'encoder.pos_embedding') == ('skip', 're:pos_emb')


@pytest.mark.parametrize('mangle, match', [
    ('corners', r"mangle='corners' is not a policy; use one of \('corner', 'center'"),
    (None, r'mangle=None is a NoneType; use one of'),
    (3, r'mangle=3 is a int; use one of'),
    ({'fc.*': 'crop'}, r"mangle\['fc.\*'\]='crop' is not a policy"),
    ({'missing.*': 'skip'}, r"mangle pattern 'missing.\*' matches no model key; model keys look like \['fc.weight', 'fc.bias'\]"),
    ({'re:(': 'skip'}, r"mangle pattern 're:\(' is not a valid regex"),
    ({('fc',): 'skip'}, r"mangle pattern \('fc',\) is a tuple; patterns are strings"),
])
def test_bad_mangle_is_a_policy_error(mangle, match):
    with pytest.raises(PolicyError, match=match):
        MangleRules(mangle, ['fc.weight', 'fc.bias'])


def test_interpolate_arguments_are_checked():
    with pytest.raises(PolicyError, match=r'interpolate\(prefix_tokens=-1\)'):
        interpolate(prefix_tokens=-1)
    with pytest.raises(PolicyError, match=r'interpolate\(grid=\(14,\)\): pass \(rows, cols\)'):
        interpolate(grid=(14,))
    with pytest.raises(PolicyError, match=r"interpolate\(dst_grid='ab'\)"):
        interpolate(dst_grid='ab')


# --- decide ---------------------------------------------------------------------

def test_equal_shapes_are_copied_whatever_the_policy():
    for mangle in (True, False, 'raise', 'interpolate'):
        d = MangleRules(mangle, ['w']).decide('w', 'w', spec(3, 4), spec(3, 4))
        assert (d.action, d.policy, d.outcome, d.covers) == ('copy', None, 'full_add', True)


def test_corner_outcomes_follow_the_published_categories():
    rules = MangleRules(True, ['w'])
    cases = [((10, 4), (12, 4), 'partial_add_all', False),
             ((10, 4), (8, 4), 'partial_add_some', True),
             ((10, 4), (8, 6), 'partial_add_some', False)]
    for src, dst, outcome, covers in cases:
        d = rules.decide('w', 'w', spec(*src), spec(*dst))
        assert (d.action, d.policy, d.outcome, d.covers) == ('shove', 'corner', outcome, covers)


def test_unit_dimensions_are_reshaped_by_default_even_with_mangle_false():
    for mangle in (True, False, 'raise', {'*': 'center'}):
        d = MangleRules(mangle, ['gamma']).decide('gamma', 'gamma', spec(768), spec(768, 1, 1))
        assert (d.action, d.policy, d.outcome, d.covers) == ('shove', 'reshape', 'full_add', True)


def test_a_pattern_naming_the_key_overrides_the_default_reshape():
    d = MangleRules({'gamma': 'skip'}, ['gamma']).decide('gamma', 'gamma', spec(768), spec(768, 1, 1))
    assert (d.action, d.outcome) == ('skip', 'skipped')


def test_skip_policy_says_why_and_hints():
    rules = MangleRules(False, ['encoder.pos_embedding'])
    d = rules.decide('pos', 'encoder.pos_embedding', spec(1, 197, 768), spec(1, 577, 768))
    assert d.action == 'skip'
    assert d.reason == ("shape (1, 197, 768) != model 'encoder.pos_embedding' "
                        "(1, 577, 768) and the policy is 'skip'")
    assert d.hint == "hint: mangle={'encoder.pos_embedding': 'interpolate'}"


def test_corner_on_a_position_embedding_hints_interpolate():
    d = MangleRules(True, ['pos_embed']).decide(
        'pos_embed', 'pos_embed', spec(1, 197, 768), spec(1, 577, 768))
    assert (d.action, d.policy, d.outcome) == ('shove', 'corner', 'partial_add_all')
    assert d.hint == "hint: mangle={'pos_embed': 'interpolate'}"


def test_corner_on_a_stem_hints_adapt_channels():
    d = MangleRules(True, ['conv1.weight']).decide(
        'conv1.weight', 'conv1.weight', spec(64, 3, 7, 7), spec(64, 1, 7, 7))
    assert d.hint == "hint: mangle={'conv1.weight': 'adapt_channels'}"
    d = MangleRules({'conv1.*': 'corner'}, ['conv1.weight']).decide(
        'conv1.weight', 'conv1.weight', spec(64, 3, 7, 7), spec(64, 1, 7, 7))
    assert d.hint is None  # the user chose corner by name


def test_raise_policy_names_keys_shapes_and_fix():
    rules = MangleRules('raise', ['encoder.pos_embedding'])
    with pytest.raises(ShapeMismatchError, match=(
            r"checkpoint 'pos_embed' \(1, 197, 768\) -> model 'encoder.pos_embedding' "
            r"\(1, 577, 768\): shapes differ and mangle says raise; choose a policy "
            r"for it, e.g. mangle=\{'encoder.pos_embedding': 'interpolate'\}")):
        rules.decide('pos_embed', 'encoder.pos_embedding', spec(1, 197, 768), spec(1, 577, 768))


def test_a_named_policy_that_cannot_fit_raises_a_default_one_skips():
    keys = ['fc.weight']
    with pytest.raises(ShapeMismatchError, match=(
            r"checkpoint 'fc.weight' \(1000, 512\) -> model 'fc.weight' \(10, 512\): "
            r"mangle pattern 'fc.\*' chose 'interpolate', which cannot fit them")):
        MangleRules({'fc.*': 'interpolate'}, keys).decide(
            'fc.weight', 'fc.weight', spec(1000, 512), spec(10, 512))
    d = MangleRules('interpolate', keys).decide(
        'fc.weight', 'fc.weight', spec(1000, 512), spec(10, 512))
    assert d.action == 'skip'
    assert d.reason.startswith('interpolate: cannot fit shape (1000, 512) into (10, 512)')


def test_corner_across_ranks_is_skipped_as_published():
    d = MangleRules(True, ['w']).decide('w', 'w', spec(4, 3), spec(12))
    assert d.action == 'skip'
    assert 'ranks differ (2 vs 1)' in d.reason


def test_uncopyable_and_complex_dtypes_are_skipped_from_specs():
    rules = MangleRules(True, ['w'])
    for name in ('bits8', 'uint4', 'int4', 'float4_e2m1fn_x2'):
        d = rules.decide('w', 'w', spec(4, dtype=name), spec(4))
        assert d.action == 'skip'
        assert d.reason == (f'the checkpoint tensor is {name}, which torch cannot '
                            'copy; convert it to a supported dtype first')
    d = rules.decide('w', 'w', spec(4, dtype=torch.complex64), spec(4))
    assert d.action == 'skip' and 'imaginary part' in d.reason
    # unknown dtypes (a header without them) do not block a copy
    assert rules.decide('w', 'w', TensorSpec((4,)), TensorSpec((4,))).action == 'copy'


def test_interpolate_and_adapt_channels_need_floating_point():
    d = MangleRules('adapt_channels', ['w']).decide(
        'w', 'w', spec(8, 3, 3, 3, dtype=torch.int64), spec(8, 1, 3, 3, dtype=torch.int64))
    assert d.action == 'skip'
    assert d.reason == 'adapt_channels: adapt_channels needs floating point tensors, got int64'


def test_callable_needs_data_and_is_checked_when_prepared():
    def wrong(src, dst, key):
        return src
    rules = MangleRules(wrong, ['w'])
    src, dst = torch.ones(3), torch.zeros(2)
    d = rules.decide('w', 'w', TensorSpec.of(src), TensorSpec.of(dst))
    assert (d.action, d.policy, d.outcome, d.needs_data) == ('shove', 'wrong', 'partial_add_some', True)
    with pytest.raises(ShapeMismatchError, match=(
            r"model key 'w': wrong from \(3,\) to \(2,\): the policy returned "
            r"shape \(3,\); return a tensor of the model tensor's shape \(2,\)")):
        prepare_shove(d, src, dst, 'w')
    assert dst.tolist() == [0.0, 0.0]

    def boom(src, dst, key):
        raise RuntimeError('no')
    d = MangleRules(boom, ['w']).decide('w', 'w', TensorSpec.of(src), TensorSpec.of(dst))
    with pytest.raises(ShapeMismatchError, match=r'the policy raised RuntimeError: no'):
        prepare_shove(d, src, dst, 'w')


def test_summary_names_every_shove():
    rules = MangleRules(True, ['fc.weight', 'fc.bias', 'conv.weight'])
    decisions = {
        'conv.weight': rules.decide('conv.weight', 'conv.weight', spec(3, 3), spec(3, 3)),
        'fc.weight': rules.decide('fc.weight', 'fc.weight', spec(1000, 2048), spec(10, 2048)),
        'fc.bias': rules.decide('fc.bias', 'fc.bias', spec(1000), spec(10)),
    }
    assert summarize_shoves(decisions) == (
        'shoved 2: fc.weight (1000, 2048) -> (10, 2048) corner, '
        'fc.bias (1000,) -> (10,) corner')
    assert summarize_shoves({}) == 'shoved 0'


def test_decision_as_dict_is_plain_data():
    import json
    d = MangleRules(True, ['w']).decide('w', 'w', spec(4, 3), spec(2, 3))
    data = d.as_dict()
    assert 'fn' not in data
    assert json.loads(json.dumps(data)) == {
        'action': 'shove', 'policy': 'corner', 'outcome': 'partial_add_some',
        'src_shape': [4, 3], 'dst_shape': [2, 3], 'reason': None, 'hint': None,
        'covers': True, 'needs_data': False}
    assert isinstance(d, ShoveDecision)


def test_suggest_policy():
    assert suggest_policy('gamma', (8,), (8, 1, 1)) == 'reshape'
    assert suggest_policy('pos_embed', (197, 768), (577, 768)) == 'interpolate'
    assert suggest_policy('fc.weight', (197, 768), (577, 768)) is None
    assert suggest_policy('conv1.weight', (64, 3, 7, 7), (64, 4, 7, 7)) == 'adapt_channels'
    assert suggest_policy('layer.conv.weight', (64, 32, 3, 3), (64, 16, 3, 3)) is None
    assert suggest_policy('w', (3,), (3,)) is None


# --- apply -----------------------------------------------------------------------

def test_apply_corner_center_reshape_and_skip():
    rules = MangleRules({'a': 'corner', 'b': 'center', 'c': 'reshape', 'd': 'skip'},
                        ['a', 'b', 'c', 'd'])
    src = torch.arange(25.).reshape(5, 5)
    for key, expected in [('a', src[:3, :3]), ('b', src[1:4, 1:4])]:
        dst = torch.zeros(3, 3)
        d = rules.decide(key, key, TensorSpec.of(src), TensorSpec.of(dst))
        apply_decision(d, dst, src, key)
        assert torch.equal(dst, expected)
    dst = torch.zeros(1, 25, 1)
    d = rules.decide('c', 'c', TensorSpec.of(src.flatten()), TensorSpec.of(dst))
    apply_decision(d, dst, src.flatten(), 'c')
    assert torch.equal(dst.flatten(), src.flatten())
    dst = torch.zeros(3, 3)
    d = rules.decide('d', 'd', TensorSpec.of(src), TensorSpec.of(dst))
    apply_decision(d, dst, src, 'd')
    assert torch.equal(dst, torch.zeros(3, 3))


def test_apply_writes_a_parameter_in_place_without_grad():
    conv = torch.nn.Conv2d(3, 4, 3)
    src = torch.randn(4, 3, 5, 5)
    d = MangleRules('center', ['weight']).decide(
        'weight', 'weight', TensorSpec.of(src), TensorSpec.of(conv.weight))
    weight = conv.weight
    apply_decision(d, conv.weight, src, 'weight')
    assert conv.weight is weight and weight.grad_fn is None
    assert torch.equal(weight.detach(), src[:, :, 1:4, 1:4])


# --- check_copyable --------------------------------------------------------------

def test_check_copyable_accepts_ordinary_pairs_and_self():
    t = torch.arange(4.)
    assert check_copyable(torch.ones(4, dtype=torch.float64), torch.zeros(4)) is None
    assert check_copyable(t, t) is None  # a model's own state dict loaded back
    assert check_copyable(torch.ones(3, 4).t(), torch.zeros(4, 3)) is None
    assert check_copyable(torch.ones(1).expand(4), torch.zeros(4)) is None  # reading is fine


def test_check_copyable_refuses_what_would_fail_half_way():
    assert 'expanded view' in check_copyable(torch.ones(4, 3), torch.zeros(1, 3).expand(4, 3))
    base = torch.arange(10.)
    assert 'shares memory' in check_copyable(base[:6], base[4:])
    nested = torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(3, 3)])
    assert check_copyable(nested, torch.zeros(2, 3)).startswith(
        'the checkpoint tensor is a nested tensor')
    jagged = torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(3, 3)],
                                        layout=torch.jagged)
    assert check_copyable(jagged, torch.zeros(2, 3)).startswith(
        'the checkpoint tensor is a nested tensor')
    bits = torch.zeros(4, dtype=torch.uint8).view(torch.bits8)
    assert check_copyable(bits, torch.zeros(4)) == (
        'the checkpoint tensor is bits8, which torch cannot copy; convert it to '
        'a supported dtype first')
    assert 'the model tensor is bits8' in check_copyable(torch.zeros(4), bits.clone())
    assert check_copyable(torch.zeros(2, device='meta'), torch.zeros(2)) == 'meta tensors hold no data'


def test_uncopyable_dtypes_match_this_torch():
    """Every dtype torch has either copies into float32 or is listed."""
    listed = set(policies.UNCOPYABLE_DTYPES)
    for dtype in {getattr(torch, name) for name in dir(torch)
                  if isinstance(getattr(torch, name), torch.dtype)}:
        name = str(dtype).rsplit('.', 1)[-1]
        if dtype.is_complex:
            continue  # complex -> real is refused for another reason
        try:
            src = torch.empty(4, dtype=dtype)
            torch.zeros(4).copy_(src)
            fails = False
        except (RuntimeError, TypeError):
            fails = True
        assert fails == (name in listed), name
