"""
Tests for torch_liberator.resample: input-channel adaptation and
position-embedding resampling, against independent references (explicit
sums and tilings, explicit ``torch.nn.functional.interpolate`` of the grid,
and timm's own helpers when timm is installed).
"""
import pytest
import torch
import torch.nn.functional as F

from torch_liberator import resample
from torch_liberator.errors import ShapeMismatchError
from torch_liberator.resample import (
    adapt_channels, check_adapt_channels, infer_pos_embed_layout,
    resample_pos_embed)


def test_all_is_sorted_and_complete():
    assert resample.__all__ == sorted(resample.__all__)
    public = {name for name in vars(resample)
              if not name.startswith('_') and callable(getattr(resample, name))
              and getattr(getattr(resample, name), '__module__', None) == resample.__name__}
    assert public <= set(resample.__all__)


# --- adapt_channels ---------------------------------------------------------------

def test_adapt_channels_to_one_is_the_sum_over_inputs():
    w = torch.randn(8, 3, 5, 5)
    out = adapt_channels(w, 1)
    assert out.shape == (8, 1, 5, 5)
    expected = w[:, 0:1] + w[:, 1:2] + w[:, 2:3]
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize('n_src, n_dst, order', [
    (3, 4, [0, 1, 2, 0]),
    (3, 6, [0, 1, 2, 0, 1, 2]),
    (3, 2, [0, 1]),
    (4, 3, [0, 1, 2]),
    (2, 5, [0, 1, 0, 1, 0]),
])
def test_adapt_channels_tiles_in_order_and_rescales(n_src, n_dst, order):
    w = torch.randn(6, n_src, 3, 3)
    out = adapt_channels(w, n_dst)
    expected = torch.stack([w[:, c] for c in order], dim=1) * (n_src / n_dst)
    assert out.shape == (6, n_dst, 3, 3)
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)


def test_adapt_channels_conv1d_and_conv3d_and_half():
    w1 = torch.randn(4, 3, 5)
    assert torch.allclose(adapt_channels(w1, 1), w1.sum(1, keepdim=True), atol=1e-6)
    w3 = torch.randn(4, 2, 3, 3, 3)
    assert torch.allclose(adapt_channels(w3, 4), torch.cat([w3, w3], 1) / 2, atol=1e-6)
    half = torch.randn(4, 3, 3, 3).half()
    out = adapt_channels(half, 1)
    assert out.dtype == torch.float16
    assert torch.equal(out, half.float().sum(1, keepdim=True).half())


def test_adapt_channels_matches_timm():
    timm_models = pytest.importorskip('timm.models')
    w = torch.randn(16, 3, 7, 7)
    for n in (1, 2, 4, 5, 6, 9):
        expected = timm_models.adapt_input_conv(n, w.clone())
        assert torch.allclose(adapt_channels(w, n), expected, atol=1e-6, rtol=0), n


@pytest.mark.parametrize('src, dst, match', [
    ((64, 3), (64, 1), r'adapt_channels handles convolution weights \[out, in, \*kernel\] of equal rank >= 3'),
    ((64, 3, 7, 7), (32, 1, 7, 7), 'the output channels and kernel sizes must be equal'),
    ((64, 3, 7, 7), (64, 1, 3, 3), 'the output channels and kernel sizes must be equal'),
    ((64, 3, 7, 7), (64, 0, 7, 7), 'a side has no input channels'),
])
def test_check_adapt_channels_errors(src, dst, match):
    with pytest.raises(ShapeMismatchError, match=match):
        check_adapt_channels(src, dst)


def test_adapt_channels_refuses_integers():
    with pytest.raises(ShapeMismatchError, match='needs a floating point weight, got torch.int64'):
        adapt_channels(torch.ones(2, 3, 1, 1, dtype=torch.long), 1)


# --- position embeddings ------------------------------------------------------

@pytest.mark.parametrize('src, dst, layout', [
    ((1, 197, 768), (1, 577, 768), (1, (14, 14), (24, 24))),   # ViT-B/16 224 -> 384
    ((1, 577, 768), (1, 197, 768), (1, (24, 24), (14, 14))),   # and back
    ((1, 198, 192), (1, 578, 192), (2, (14, 14), (24, 24))),   # DeiT distilled
    ((1, 196, 192), (1, 576, 192), (0, (14, 14), (24, 24))),   # no class token
    ((1, 256, 64), (1, 576, 64), (0, (16, 16), (24, 24))),     # no class token, patch 14
    ((1, 201, 64), (1, 581, 64), (5, (14, 14), (24, 24))),     # class + 4 registers
    ((197, 32), (50, 32), (1, (14, 14), (7, 7))),              # [N, D]
])
def test_infer_pos_embed_layout(src, dst, layout):
    assert infer_pos_embed_layout(src, dst) == layout


def test_infer_pos_embed_layout_with_arguments():
    # a non-square destination cannot be inferred, the arguments settle it
    with pytest.raises(ShapeMismatchError, match=(
            r'197 -> 385 tokens cannot be read as prefix tokens plus a grid '
            r'\(inferred grids must be square, at least 2x2\); say which with a '
            r'callable policy, e.g. torch_liberator.policies.interpolate\(prefix_tokens=1')):
        infer_pos_embed_layout((1, 197, 8), (1, 385, 8))
    assert infer_pos_embed_layout((1, 197, 8), (1, 385, 8), dst_grid=(16, 24)) == (
        1, (14, 14), (16, 24))
    assert infer_pos_embed_layout((1, 197, 8), (1, 385, 8), prefix_tokens=1,
                                  dst_grid=(24, 16)) == (1, (14, 14), (24, 16))
    with pytest.raises(ShapeMismatchError, match=(
            r'with prefix_tokens=2, grid=\(14, 14\) \(inferred grids')):
        infer_pos_embed_layout((1, 197, 8), (1, 577, 8), prefix_tokens=2, grid=(14, 14))


def test_infer_pos_embed_layout_ambiguity_names_the_readings():
    with pytest.raises(ShapeMismatchError, match=(
            r'145 -> 1025 tokens have several readings \(prefix_tokens=1: 12x12 -> '
            r'32x32; prefix_tokens=64: 9x9 -> 31x31\); say which')):
        infer_pos_embed_layout((1, 145, 8), (1, 1025, 8))


@pytest.mark.parametrize('src, dst, match', [
    ((1, 1, 197, 8), (1, 1, 577, 8), r'interpolate handles position embeddings \[N, D\] or \[1, N, D\]'),
    ((1, 197, 8), (577, 8), 'of equal rank'),
    ((1, 197, 8), (1, 577, 16), 'the embedding width and leading dimensions must be equal'),
])
def test_infer_pos_embed_layout_shape_errors(src, dst, match):
    with pytest.raises(ShapeMismatchError, match=match):
        infer_pos_embed_layout(src, dst)


def _reference_resample(src, prefix, grid, dst_grid):
    """The independent reference: split, F.interpolate the grid, join."""
    rows, cols = grid
    width = src.shape[-1]
    image = src[0, prefix:].reshape(rows, cols, width).permute(2, 0, 1)[None]
    shrink = dst_grid[0] < rows or dst_grid[1] < cols
    image = F.interpolate(image, size=dst_grid, mode='bicubic',
                          align_corners=False, antialias=shrink)
    tokens = image[0].permute(1, 2, 0).reshape(1, -1, width)
    return torch.cat([src[:, :prefix], tokens], dim=1)


@pytest.mark.parametrize('prefix, grid, dst_grid', [
    (1, (14, 14), (24, 24)),
    (1, (24, 24), (14, 14)),
    (2, (14, 14), (16, 16)),
    (0, (7, 7), (12, 12)),
    (1, (14, 14), (16, 24)),
    (1, (14, 14), (7, 28)),
])
def test_resample_pos_embed_matches_explicit_interpolate(prefix, grid, dst_grid):
    torch.manual_seed(0)
    src = torch.randn(1, prefix + grid[0] * grid[1], 16)
    dst_shape = (1, prefix + dst_grid[0] * dst_grid[1], 16)
    out = resample_pos_embed(src, dst_shape, prefix_tokens=prefix, grid=grid,
                             dst_grid=dst_grid)
    expected = _reference_resample(src, prefix, grid, dst_grid)
    assert out.shape == dst_shape
    assert torch.equal(out[:, :prefix], src[:, :prefix])
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)


def test_resample_a_constant_grid_stays_constant_and_rank2_works():
    src = torch.cat([torch.full((1, 4), 9.0), torch.full((49, 4), 2.5)])
    out = resample_pos_embed(src, (1 + 144, 4))
    assert out[0].tolist() == [9.0] * 4
    assert torch.allclose(out[1:], torch.full((144, 4), 2.5), atol=1e-5)


def test_resample_keeps_dtype_and_refuses_integers():
    src = torch.randn(1, 1 + 16, 8).to(torch.bfloat16)
    out = resample_pos_embed(src, (1, 1 + 64, 8))
    assert out.dtype == torch.bfloat16
    expected = _reference_resample(src.float(), 1, (4, 4), (8, 8)).to(torch.bfloat16)
    assert torch.equal(out, expected)
    with pytest.raises(ShapeMismatchError, match='needs a floating point embedding, got torch.int64'):
        resample_pos_embed(torch.ones(1, 17, 8, dtype=torch.long), (1, 65, 8))


def test_resample_matches_timm_when_shrinking():
    """timm always antialiases; when shrinking both do, so they agree."""
    timm_layers = pytest.importorskip('timm.layers')
    torch.manual_seed(0)
    src = torch.randn(1, 1 + 24 * 24, 32)
    expected = timm_layers.resample_abs_pos_embed(
        src, new_size=(14, 14), old_size=(24, 24), num_prefix_tokens=1)
    out = resample_pos_embed(src, (1, 197, 32))
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)
