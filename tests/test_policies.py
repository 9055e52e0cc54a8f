"""
Tests for torch_liberator.policies: parsing ``mangle``, deciding per pair
from specs, applying decisions, and every policy on real models.
"""
import pytest
import torch
from conftest import assert_unchanged, snapshot

from torch_liberator import load_partial_state, policies
from torch_liberator.errors import PolicyError, ShapeMismatchError
from torch_liberator.policies import (
    POLICIES, MangleRules, ShoveDecision, apply_decision, interpolate,
    prepare_shove, suggest_policy)
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
    # a corner or centre copy of such a pair copies one element: not full_add
    for policy in ('corner', 'center'):
        d = MangleRules({'w': policy}, ['w']).decide('w', 'w', spec(1, 3), spec(3, 1))
        assert (d.action, d.policy, d.outcome, d.covers) == (
            'shove', policy, 'partial_add_some', False)


def test_skip_policy_says_why_and_hints():
    rules = MangleRules(False, ['encoder.pos_embedding'])
    d = rules.decide('pos', 'encoder.pos_embedding', spec(1, 197, 768), spec(1, 577, 768))
    assert d.action == 'skip'
    assert d.reason == ("shape (1, 197, 768) != model 'encoder.pos_embedding' "
                        "(1, 577, 768) and the policy is 'skip'")
    assert d.hint == "mangle={'encoder.pos_embedding': 'interpolate'}"


def test_corner_on_a_position_embedding_hints_interpolate():
    d = MangleRules(True, ['pos_embed']).decide(
        'pos_embed', 'pos_embed', spec(1, 197, 768), spec(1, 577, 768))
    assert (d.action, d.policy, d.outcome) == ('shove', 'corner', 'partial_add_all')
    assert d.hint == "mangle={'pos_embed': 'interpolate'}"


def test_corner_on_a_stem_hints_adapt_channels():
    d = MangleRules(True, ['conv1.weight']).decide(
        'conv1.weight', 'conv1.weight', spec(64, 3, 7, 7), spec(64, 1, 7, 7))
    assert d.hint == "mangle={'conv1.weight': 'adapt_channels'}"
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
    # dtype names from a file header: known names are checked, unknown ones pass
    rules = MangleRules('interpolate', ['w'])
    d = rules.decide('w', 'w', spec(1, 197, 8, dtype='int32'), spec(1, 577, 8))
    assert d.reason == 'interpolate: interpolate needs floating point tensors, got int32'
    for name in ('bfloat16', 'float16', 'F32', None):
        d = rules.decide('w', 'w', spec(1, 197, 8, dtype=name), spec(1, 577, 8))
        assert (d.action, d.policy) == ('shove', 'interpolate'), name


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
        dst.fill_(7)  # works on a copy: the model never sees it
        raise RuntimeError('no')
    d = MangleRules(boom, ['w']).decide('w', 'w', TensorSpec.of(src), TensorSpec.of(dst))
    with pytest.raises(ShapeMismatchError, match=r'the policy raised RuntimeError: no'):
        prepare_shove(d, src, dst, 'w')
    assert dst.tolist() == [0.0, 0.0]

    def listy(src, dst, key):
        return [1.0, 2.0]
    d = MangleRules(listy, ['w']).decide('w', 'w', TensorSpec.of(src), TensorSpec.of(dst))
    with pytest.raises(ShapeMismatchError, match=(
            r"model key 'w': listy from \(3,\) to \(2,\): the policy returned a "
            r"list, not a tensor")):
        prepare_shove(d, src, dst, 'w')

    def complex_values(src, dst, key):
        return torch.ones(2, dtype=torch.complex64)
    d = MangleRules(complex_values, ['w']).decide('w', 'w', TensorSpec.of(src), TensorSpec.of(dst))
    with pytest.raises(ShapeMismatchError, match='its result cannot be copied: a complex'):
        prepare_shove(d, src, dst, 'w')


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


# --- on real models -------------------------------------------------------------
# Every policy against an independent reference, element by element.


def _grid_reference(pos, prefix, grid, dst_grid):
    """Split, explicit F.interpolate of the grid as an image, join."""
    width = pos.shape[-1]
    image = pos[0, prefix:].reshape(*grid, width).permute(2, 0, 1)[None]
    shrink = dst_grid[0] < grid[0] or dst_grid[1] < grid[1]
    image = torch.nn.functional.interpolate(
        image, size=dst_grid, mode='bicubic', align_corners=False,
        antialias=shrink)
    tokens = image[0].permute(1, 2, 0).reshape(1, -1, width)
    return torch.cat([pos[:, :prefix], tokens], dim=1)


def test_vit_b_16_224_into_384(torchvision, capsys):
    """
    The default corner copy of the position embedding is named and hinted;
    'interpolate' gives a grid equal to an explicit bicubic resize.
    """
    torch.manual_seed(0)
    src = torchvision.models.vit_b_16(weights=None)
    dst = torchvision.models.vit_b_16(weights=None, image_size=384)
    info = load_partial_state(dst, src.state_dict(), verbose=1)
    plan = info['plan']
    assert plan.hints == ["mangle={'encoder.pos_embedding': 'interpolate'}"]
    out = capsys.readouterr().out
    assert ('shoved 1: encoder.pos_embedding (1, 197, 768) -> (1, 577, 768) '
            'corner') in out
    assert "hint: mangle={'encoder.pos_embedding': 'interpolate'}" in out
    table = str(plan)
    assert "hint: mangle={'encoder.pos_embedding': 'interpolate'}" in table
    assert '(1, 197, 768) -> (1, 577, 768) corner' in table

    info = load_partial_state(dst, src.state_dict(), verbose=1,
                              mangle={'encoder.pos_embedding': 'interpolate'})
    pos = src.encoder.pos_embedding.detach()
    expected = _grid_reference(pos, 1, (14, 14), (24, 24))
    got = dst.encoder.pos_embedding.detach()
    assert got.shape == (1, 577, 768)
    assert torch.equal(got[:, 0], pos[:, 0])           # class token kept
    assert torch.equal(got, expected)                  # the grid, resized
    dst_state = dst.state_dict()
    for key, value in src.state_dict().items():        # the rest copied
        if key != 'encoder.pos_embedding':
            assert torch.equal(dst_state[key], value), key
    assert info['seen']['partial_add_all'] == ['encoder.pos_embedding']
    assert len(info['seen']['full_add']) == 151
    shoves = [(e.dst_key, e.policy) for e in info['plan'].entries if e.action == 'shove']
    assert shoves == [('encoder.pos_embedding', 'interpolate')]
    assert info['plan'].hints == []
    out = capsys.readouterr().out
    assert ('shoved 1: encoder.pos_embedding (1, 197, 768) -> (1, 577, 768) '
            'interpolate') in out


def _small_vit(image_size):
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=image_size, patch_size=16, num_layers=4,
                             num_heads=4, hidden_dim=128, mlp_dim=256,
                             num_classes=10).eval()


def _smooth_image(size):
    axis = torch.linspace(0, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing='ij')
    return torch.stack([torch.sin(2 * torch.pi * (x + 0.3 * c))
                        * torch.cos(torch.pi * (y - 0.2 * c))
                        for c in range(3)])[None]


def test_vit_at_384_from_224_gives_close_outputs(torchvision):
    """
    A torchvision ViT (4 layers, width 128) whose position embedding is
    smooth, as trained ones are, loaded at 384 from 224: on a smooth image
    its logits are close to the 224 model's on the image resized to 224.
    Measured: relative L2 error 0.067 with 'interpolate', 0.77 with a corner
    copy; the bounds are 0.1 and 0.5.
    """
    torch.manual_seed(0)
    src = _small_vit(224)
    with torch.no_grad():
        torch.nn.init.normal_(src.heads.head.weight)   # torchvision inits it to 0
        axis = torch.linspace(0, 1, 14)
        gy, gx = torch.meshgrid(axis, axis, indexing='ij')
        freqs = torch.randn(128, 3)
        smooth = torch.sin(freqs[:, 0, None, None] * 3 * gx
                           + freqs[:, 1, None, None] * 3 * gy
                           + freqs[:, 2, None, None]) * 0.5
        src.encoder.pos_embedding[0, 1:] = smooth.permute(1, 2, 0).reshape(196, 128)
    image = _smooth_image(384)
    resized = torch.nn.functional.interpolate(
        image, size=(224, 224), mode='bicubic', align_corners=False, antialias=True)
    with torch.no_grad():
        reference = src(resized)

    def relative_error(mangle):
        dst = _small_vit(384)
        load_partial_state(dst, src.state_dict(), mangle=mangle, verbose=0)
        with torch.no_grad():
            out = dst(image)
        return float((out - reference).norm() / reference.norm())

    assert relative_error({'encoder.pos_embedding': 'interpolate'}) < 0.1
    assert relative_error(True) > 0.5  # the check tells the policies apart


def test_timm_vit_and_deit_interpolate():
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    for name, prefix in [('vit_tiny_patch16_224', 1),
                         ('deit_tiny_distilled_patch16_224', 2)]:
        src = timm.create_model(name, pretrained=False, depth=1)
        dst = timm.create_model(name, pretrained=False, depth=1, img_size=384)
        load_partial_state(dst, src.state_dict(), mangle={'pos_embed': 'interpolate'},
                           verbose=0)
        expected = _grid_reference(src.pos_embed.detach(), prefix, (14, 14), (24, 24))
        assert torch.equal(dst.pos_embed.detach(), expected), name
    with torch.no_grad():
        assert dst.eval()(torch.randn(1, 3, 384, 384)).shape == (1, 1000)


def test_timm_vit_shrinks_with_antialias_as_timm_does():
    timm = pytest.importorskip('timm')
    from timm.layers import resample_abs_pos_embed
    torch.manual_seed(0)
    src = timm.create_model('vit_tiny_patch16_224', pretrained=False, depth=1, img_size=384)
    dst = timm.create_model('vit_tiny_patch16_224', pretrained=False, depth=1)
    load_partial_state(dst, src.state_dict(), mangle='interpolate', verbose=0)
    expected = resample_abs_pos_embed(src.pos_embed.detach(), new_size=(14, 14),
                                      old_size=(24, 24), num_prefix_tokens=1)
    assert torch.allclose(dst.pos_embed.detach(), expected, atol=1e-6, rtol=0)


def test_interpolate_callable_settles_a_non_square_grid(torchvision):
    """A 224x384 ViT: the destination grid (14, 24) is not square, so the
    name alone cannot infer it; the callable policy gives it."""
    from torchvision.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    src = _small_vit(224)
    dst = _small_vit(224)
    dst.encoder.pos_embedding = torch.nn.Parameter(torch.zeros(1, 1 + 14 * 24, 128))
    assert isinstance(dst, VisionTransformer)
    before = snapshot(dst)
    with pytest.raises(ShapeMismatchError, match=(
            r"checkpoint 'encoder.pos_embedding' \(1, 197, 128\) -> model "
            r"'encoder.pos_embedding' \(1, 337, 128\): mangle pattern "
            r"'encoder.pos_embedding' chose 'interpolate', which cannot fit them "
            r'\(cannot fit shape \(1, 197, 128\) into \(1, 337, 128\): 197 -> 337 tokens '
            r'cannot be read as prefix tokens plus a grid')):
        load_partial_state(dst, src.state_dict(), verbose=0,
                           mangle={'encoder.pos_embedding': 'interpolate'})
    assert_unchanged(dst, before)
    load_partial_state(dst, src.state_dict(), verbose=0, mangle={
        'encoder.pos_embedding': interpolate(prefix_tokens=1, dst_grid=(14, 24))})
    expected = _grid_reference(src.encoder.pos_embedding.detach(), 1, (14, 14), (14, 24))
    assert torch.equal(dst.encoder.pos_embedding.detach(), expected)


@pytest.fixture(scope='module')
def resnet18_rgb(torchvision):
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


def _resnet18_with_stem(torchvision, in_channels, kernel=7):
    model = torchvision.models.resnet18(weights=None).eval()
    model.conv1 = torch.nn.Conv2d(in_channels, 64, kernel, stride=2,
                                  padding=kernel // 2, bias=False)
    return model


@pytest.mark.parametrize('in_channels', [1, 6])
def test_grey_resnet18_from_rgb_weights_sees_a_grey_image_alike(
        torchvision, resnet18_rgb, in_channels):
    dst = _resnet18_with_stem(torchvision, in_channels)
    info = load_partial_state(dst, resnet18_rgb.state_dict(), verbose=0,
                              mangle={'conv1.weight': 'adapt_channels'})
    outcome = 'partial_add_some' if in_channels == 1 else 'partial_add_all'
    assert info['seen'][outcome] == ['conv1.weight']
    torch.manual_seed(1)
    grey = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        expected = resnet18_rgb.conv1(grey.expand(-1, 3, -1, -1))
        got = dst.conv1(grey.expand(-1, in_channels, -1, -1))
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    # the weight itself, against an explicit sum / tiling
    w = resnet18_rgb.conv1.weight.detach()
    if in_channels == 1:
        reference = w[:, 0:1] + w[:, 1:2] + w[:, 2:3]
    else:
        reference = torch.cat([w, w], dim=1) * 0.5
    assert torch.allclose(dst.conv1.weight.detach(), reference, atol=1e-7, rtol=0)


def test_four_band_resnet18_from_rgb_weights(torchvision, resnet18_rgb):
    dst = _resnet18_with_stem(torchvision, 4)
    load_partial_state(dst, resnet18_rgb.state_dict(), verbose=0, mangle='adapt_channels')
    w = resnet18_rgb.conv1.weight.detach()
    reference = torch.stack([w[:, 0], w[:, 1], w[:, 2], w[:, 0]], dim=1) * 0.75
    assert torch.allclose(dst.conv1.weight.detach(), reference, atol=1e-7, rtol=0)
    assert torch.equal(dst.fc.weight, resnet18_rgb.fc.weight)


def test_cifar_stem_keeps_the_centre_of_the_7x7_kernel(torchvision, resnet18_rgb):
    dst = _resnet18_with_stem(torchvision, 3, kernel=3)
    info = load_partial_state(dst, resnet18_rgb.state_dict(), verbose=0,
                              mangle={'conv1.*': 'center'})
    w = resnet18_rgb.conv1.weight.detach()
    manual = torch.empty(64, 3, 3, 3)
    for i in range(3):
        for j in range(3):
            manual[:, :, i, j] = w[:, :, 2 + i, 2 + j]
    assert torch.equal(dst.conv1.weight.detach(), manual)
    assert info['seen']['partial_add_some'] == ['conv1.weight']


def test_layer_scale_vector_is_reshaped_even_with_mangle_false(torchvision):
    """torchvision's ConvNeXt stores layer scale as [C, 1, 1], timm as [C]."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    def convnext():  # torchvision's ConvNeXt, two small stages
        return ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 1)],
                        num_classes=10)
    torch.manual_seed(0)
    state = {key: (value.flatten() if key.endswith('layer_scale') else value)
             for key, value in convnext().state_dict().items()}
    with torch.no_grad():
        for key, value in state.items():
            if key.endswith('layer_scale'):
                value.uniform_()
    assert state['features.1.0.layer_scale'].shape == (16,)
    dst = convnext()
    info = load_partial_state(dst, state, verbose=0, mangle=False)
    n_scales = sum(key.endswith('layer_scale') for key in state)
    assert n_scales == 3
    assert len(info['seen']['full_add']) == len(state)
    assert info['other_unused'] == []
    for key, value in dst.state_dict().items():
        assert torch.equal(value, state[key].reshape(value.shape)), key
    shoves = [(e.dst_key, e.policy) for e in info['plan'].entries if e.action == 'shove']
    assert shoves == [(f'features.{i}.layer_scale', 'reshape')
                      for i in ('1.0', '1.1', '3.0')]


def test_callable_policy_on_a_real_head(resnet18_rgb, torchvision):
    """The classifier head of 1000 classes into 10, by a user function."""
    calls = []

    def first_rows(src, dst, key):
        calls.append(key)
        return src[: dst.shape[0]] * 2

    dst = torchvision.models.resnet18(weights=None, num_classes=10)
    info = load_partial_state(dst, resnet18_rgb.state_dict(), verbose=0,
                              mangle={'fc.*': first_rows})
    assert calls == ['fc.weight', 'fc.bias']
    assert torch.equal(dst.fc.weight.detach(), resnet18_rgb.fc.weight.detach()[:10] * 2)
    assert [e.policy for e in info['plan'].entries if e.action == 'shove'] == [
        'first_rows', 'first_rows']


# --- bad input: an error before anything is touched --------------------------------

@pytest.fixture(scope='module')
def grey_resnet18_10(torchvision):
    """A 1-channel, 10-class resnet18 (every test leaves it unchanged)."""
    model = _resnet18_with_stem(torchvision, 1)
    model.fc = torch.nn.Linear(512, 10)
    return model


@pytest.mark.parametrize('mangle, error, match', [
    ('interpolation', PolicyError, r"mangle='interpolation' is not a policy"),
    ({'head.*': 'skip'}, PolicyError, r"mangle pattern 'head.\*' matches no model key"),
    ({'conv1.weight': 'interpolate'}, ShapeMismatchError,
     r"checkpoint 'conv1.weight' \(64, 3, 7, 7\) -> model 'conv1.weight' \(64, 1, 7, 7\): "
     r"mangle pattern 'conv1.weight' chose 'interpolate', which cannot fit them "
     r'\(cannot fit shape \(64, 3, 7, 7\) into \(64, 1, 7, 7\): interpolate handles '
     r'position embeddings'),
    ({'fc.bias': 'adapt_channels'}, ShapeMismatchError,
     r"'fc.bias' \(1000,\) -> model 'fc.bias' \(10,\): mangle pattern 'fc.bias' chose "
     r"'adapt_channels'.*rank >= 3"),
    ('raise', ShapeMismatchError,
     r"checkpoint 'conv1.weight' \(64, 3, 7, 7\) -> model 'conv1.weight' \(64, 1, 7, 7\): "
     r"shapes differ and mangle says raise; choose a policy for it, e.g. "
     r"mangle=\{'conv1.weight': 'adapt_channels'\}"),
    ({'fc.*': lambda s, d, k: s}, ShapeMismatchError,
     r"model key 'fc.weight': <lambda> from \(1000, 512\) to \(10, 512\): the policy "
     r"returned shape \(1000, 512\)"),
])
def test_bad_mangle_leaves_the_model_bit_identical(grey_resnet18_10, resnet18_rgb,
                                                   mangle, error, match):
    dst = grey_resnet18_10
    before = snapshot(dst)
    with pytest.raises(error, match=match):
        load_partial_state(dst, resnet18_rgb.state_dict(), verbose=0, mangle=mangle)
    assert_unchanged(dst, before)


def test_pretrained_checks_mangle_up_front(tmp_path):
    from torch_liberator import Pretrained
    with pytest.raises(PolicyError, match=r"mangle='centre' is not a policy"):
        Pretrained(tmp_path / 'x.pt', mangle='centre')
    with pytest.raises(PolicyError, match=r"mangle\['fc.\*'\]=3 is a int"):
        Pretrained(tmp_path / 'x.pt', mangle={'fc.*': 3})


# --- nothing half-done ---------------------------------------------------------------

class _WithBuffers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        self.register_buffer('expanded', torch.zeros(1, 3).expand(4, 3))
        self.register_buffer('codes', torch.zeros(4))


def test_what_would_fail_half_way_is_skipped_with_a_reason():
    torch.manual_seed(0)
    dst = _WithBuffers()
    before = snapshot(dst)
    state = {
        'lin.weight': torch.randn(4, 3),
        'lin.bias': torch.randn(4),
        'expanded': torch.randn(4, 3),
        'codes': torch.zeros(4, dtype=torch.uint8).view(torch.bits8),
    }
    info = load_partial_state(dst, state, verbose=0)
    reasons = {e.src_key: e.reason for e in info['plan'].entries if e.action == 'skip'}
    assert reasons == {
        'expanded': ('the model tensor is an expanded view (several elements share '
                     'memory) and cannot be written element by element; give the '
                     'module its own tensor (e.g. .clone()) before loading'),
        'codes': ('the checkpoint tensor is bits8, which torch cannot copy; convert '
                  'it to a supported dtype first'),
    }
    assert info['seen']['full_add'] == ['lin.weight', 'lin.bias']
    assert torch.equal(dst.lin.weight.detach(), state['lin.weight'])
    assert_unchanged(dst, before, keys=['expanded', 'codes'])


def test_a_state_dict_sharing_memory_with_the_model_is_never_read_after_a_write():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({'a': torch.nn.Linear(2, 2), 'b': torch.nn.Linear(2, 2)})
    before = snapshot(model)
    state = model.state_dict()
    swapped = {'x': state['b.weight'], 'y': state['a.weight']}
    info = load_partial_state(model, swapped, verbose=0,
                              rename={'x': 'a.weight', 'y': 'b.weight'})
    loaded = [(e.src_key, e.dst_key) for e in info['plan'].entries if e.loads]
    skipped = {e.src_key: e.reason for e in info['plan'].entries if not e.loads}
    # x is written into a.weight first; y holds a.weight's memory, changed by then
    assert loaded == [('x', 'a.weight')]
    assert skipped == {'y': (
        "the checkpoint tensor shares memory with model tensor 'a.weight', which "
        'is written before it is read; pass a copy (e.g. {k: v.clone() for k, v '
        'in state.items()})')}
    assert torch.equal(model.a.weight.detach(), before['b.weight'])
    assert torch.equal(model.b.weight.detach(), before['b.weight'])
    assert info['self_unset'] == ['a.bias', 'b.weight', 'b.bias']
    # loading a model's own state dict into itself is a no-op, not a problem
    info = load_partial_state(model, model.state_dict(), verbose=0)
    assert len(info['seen']['full_add']) == 4


def test_a_nested_tensor_source_is_skipped_with_a_clear_reason():
    dst = torch.nn.Linear(3, 2)
    before = snapshot(dst)
    for layout in (torch.strided, torch.jagged):
        nested = torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(1, 3)],
                                            layout=layout)
        info = load_partial_state(dst, {'weight': nested, 'bias': torch.ones(2)},
                                  verbose=0)
        entry = info['plan'].entries[0]
        assert (entry.src_key, entry.action) == ('weight', 'skip')
        assert entry.reason.startswith('the checkpoint tensor is a nested tensor')
        assert info['seen']['full_add'] == ['bias']
    assert torch.equal(dst.weight, before['weight'])


# --- dry runs and files ----------------------------------------------------------------

def test_dry_run_on_a_meta_model_shows_policies_and_hints(torchvision):
    """The plan needs shapes only: a model on the meta device will do."""
    from torch_liberator import plan_load
    torch.manual_seed(0)
    state = _small_vit(224).state_dict()
    with torch.device('meta'):
        model = _small_vit(384)
    plan = plan_load(model, state, mangle={'encoder.pos_embedding': 'interpolate'})
    shoves = [(e.dst_key, e.policy, e.outcome, e.src_spec.shape, e.dst_spec.shape)
              for e in plan.entries if e.action == 'shove']
    assert shoves == [('encoder.pos_embedding', 'interpolate', 'partial_add_all',
                       (1, 197, 128), (1, 577, 128))]
    plan = plan_load(model, state)
    assert plan.hints == ["mangle={'encoder.pos_embedding': 'interpolate'}"]
    data = plan.to_dict()
    assert data['hints'] == ["mangle={'encoder.pos_embedding': 'interpolate'}"]


def test_pretrained_file_with_rules(tmp_path, torchvision, resnet18_rgb):
    from torch_liberator import Pretrained
    fpath = tmp_path / 'rgb.pt'
    torch.save(resnet18_rgb.state_dict(), fpath)
    dst = _resnet18_with_stem(torchvision, 1)
    dst.fc = torch.nn.Linear(512, 10)
    fc_before = dst.fc.weight.detach().clone()
    info = Pretrained(fpath, mangle={'conv1.weight': 'adapt_channels', 'fc.*': 'skip'},
                      verbose=0).forward(dst)
    w = resnet18_rgb.conv1.weight.detach()
    assert torch.allclose(dst.conv1.weight.detach(), w.sum(1, keepdim=True), atol=1e-6, rtol=0)
    assert torch.equal(dst.fc.weight.detach(), fc_before)
    assert sorted(info['other_unused']) == ['fc.bias', 'fc.weight']
    assert info['seen']['partial_add_some'] == ['conv1.weight']


def test_decisions_agree_with_what_is_written():
    """For any shapes and any built-in default policy: decide never raises,
    a shove writes exactly as much as ``covers`` says, and a skip writes
    nothing."""
    hypothesis = pytest.importorskip('hypothesis')
    st = hypothesis.strategies
    shapes = st.integers(0, 4).flatmap(lambda rank: st.tuples(
        st.lists(st.integers(1, 5), min_size=rank, max_size=rank),
        st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    policy_names = st.sampled_from(['corner', 'center', 'interpolate',
                                    'adapt_channels', 'reshape', 'skip'])

    @hypothesis.given(shapes, policy_names, st.booleans())
    @hypothesis.settings(max_examples=150, deadline=None)
    def check(pair, name, drop_rank):
        src_shape, dst_shape = pair
        if drop_rank and dst_shape:
            dst_shape = dst_shape[1:]
        src = torch.randn(src_shape)
        dst = torch.full(dst_shape, float('nan'))
        d = MangleRules(name, ['w']).decide('w', 'w', TensorSpec.of(src), TensorSpec.of(dst))
        apply_decision(d, dst, src, 'w')
        written = ~torch.isnan(dst)
        if d.action == 'skip':
            assert not written.any()
            assert d.reason
        else:
            assert bool(written.all()) == d.covers
            if d.outcome == 'full_add':
                assert torch.equal(dst.flatten(), src.flatten())
    check()
