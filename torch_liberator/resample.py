"""
Shoves that compute new values: a convolution weight adapted to another
number of input channels, and a position embedding resampled to another
patch grid.

Like :mod:`torch_liberator.shove`, this is pure tensor surgery that knows
nothing about keys or models, and each operation has a check from shapes
alone (it raises :class:`~torch_liberator.errors.ShapeMismatchError`):

* input channels (:func:`check_adapt_channels`, :func:`adapt_channels`):
  timm's ``adapt_input_conv`` rule;
* position embeddings (:func:`infer_pos_embed_layout`,
  :func:`resample_pos_embed`): keep the prefix tokens, resample the patch
  grid as an image, as timm's ``resample_abs_pos_embed`` does.

Both return new tensors, computed in at least float32 precision and cast back
to the source's dtype.

Example:
    >>> import torch
    >>> from torch_liberator.resample import adapt_channels
    >>> rgb = torch.randn(8, 3, 3, 3)
    >>> grey = adapt_channels(rgb, 1)
    >>> assert torch.allclose(grey[:, 0], rgb.sum(dim=1))
"""
import math
from typing import Optional, Sequence, Tuple

import torch

from torch_liberator.errors import ShapeMismatchError
from torch_liberator.shove import shove_outcome

__all__ = [
    'adapt_channels',
    'check_adapt_channels',
    'infer_pos_embed_layout',
    'resample_pos_embed',
]


def _mismatch(src_shape, dst_shape, why):
    return ShapeMismatchError(
        f'cannot fit shape {tuple(src_shape)} into {tuple(dst_shape)}: {why}')


# --- input channels ----------------------------------------------------------

def check_adapt_channels(src_shape: Sequence[int],
                         dst_shape: Sequence[int]) -> str:
    """
    Check that :func:`adapt_channels` can fit a convolution weight
    ``[out, in, *kernel]`` into one with another number of input channels;
    return the outcome.

    Raises:
        ShapeMismatchError: unless both have rank >= 3, equal output channels
            and kernel sizes, and at least one input channel each.

    Example:
        >>> from torch_liberator.resample import check_adapt_channels
        >>> check_adapt_channels((64, 3, 7, 7), (64, 4, 7, 7))
        'partial_add_all'
    """
    src_dims, dst_dims = tuple(src_shape), tuple(dst_shape)
    if len(src_dims) < 3 or len(src_dims) != len(dst_dims):
        raise _mismatch(src_dims, dst_dims, (
            'adapt_channels handles convolution weights [out, in, *kernel] '
            'of equal rank >= 3'))
    if src_dims[0] != dst_dims[0] or src_dims[2:] != dst_dims[2:]:
        raise _mismatch(src_dims, dst_dims, (
            'adapt_channels only changes the input channels (dimension 1); '
            'the output channels and kernel sizes must be equal'))
    if src_dims[1] < 1 or dst_dims[1] < 1:
        raise _mismatch(src_dims, dst_dims, 'a side has no input channels')
    return shove_outcome(src_dims, dst_dims)


def adapt_channels(src: torch.Tensor, in_channels: int) -> torch.Tensor:
    """
    A convolution weight ``[out, M, *kernel]`` adapted to ``in_channels``
    (``N``) input channels, as timm's ``adapt_input_conv`` does.

    ``N == 1``: the sum over the ``M`` input channels. Otherwise the source
    channels are repeated in order (``0, 1, .., M-1, 0, 1, ..``), cut to
    ``N``, and scaled by ``M / N``. So for a grey image (every channel equal)
    the response is the source's on that image in ``M`` channels whenever
    ``N`` is 1 or a multiple of ``M``.

    Returns:
        torch.Tensor: a new tensor of ``src``'s dtype (computed in at least
        float32 precision).

    Raises:
        ShapeMismatchError: ``src`` is not floating point, or not a
            convolution weight (rank < 3).

    Example:
        >>> import torch
        >>> from torch_liberator.resample import adapt_channels
        >>> w = torch.arange(6.).reshape(2, 3, 1, 1)
        >>> adapt_channels(w, 1).flatten().tolist()
        [3.0, 12.0]
        >>> adapt_channels(w, 4)[0].flatten().tolist()
        [0.0, 0.75, 1.5, 0.0]
    """
    if not src.is_floating_point():
        raise ShapeMismatchError(
            f'adapt_channels needs a floating point weight, got {src.dtype}')
    out_shape = (src.shape[0], in_channels) + tuple(src.shape[2:])
    check_adapt_channels(tuple(src.shape), out_shape)
    work = _work_tensor(src)
    if in_channels == 1:
        out = work.sum(dim=1, keepdim=True)
    else:
        n_src = src.shape[1]
        repeats = -(-in_channels // n_src)
        reps = (1, repeats) + (1,) * (src.dim() - 2)
        out = work.repeat(*reps)[:, :in_channels] * (n_src / in_channels)
    return out.to(src.dtype)


def _work_tensor(src):
    """``src`` detached, in float32 at least (float64 stays float64)."""
    src = src.detach()
    if src.dtype in (torch.float64,):
        return src
    return src.to(torch.float32)


# --- position embeddings ----------------------------------------------------

def _square_side(count):
    side = math.isqrt(count) if count >= 0 else 0
    return side if side * side == count else None


def _as_grid(grid, name):
    try:
        rows, cols = (int(n) for n in grid)
    except (TypeError, ValueError) as err:
        raise ShapeMismatchError(
            f'{name}={grid!r} is not a grid; pass two ints (rows, cols)') from err
    if rows < 1 or cols < 1:
        raise ShapeMismatchError(f'{name}={grid!r} has a side < 1')
    return rows, cols


def _grid_reading(n_src, n_dst, prefix, grid, dst_grid):
    """The (src_grid, dst_grid) of one prefix count, or None."""
    if not 0 <= prefix < min(n_src, n_dst):
        return None
    grids = []
    for count, given in ((n_src - prefix, grid), (n_dst - prefix, dst_grid)):
        if given is not None:
            if given[0] * given[1] != count:
                return None
            grids.append(given)
            continue
        side = _square_side(count)
        if side is None or side < 2:
            return None
        grids.append((side, side))
    return tuple(grids)


def infer_pos_embed_layout(src_shape: Sequence[int], dst_shape: Sequence[int],
                           prefix_tokens: Optional[int] = None,
                           grid: Optional[Tuple[int, int]] = None,
                           dst_grid: Optional[Tuple[int, int]] = None):
    """
    Read two position embeddings ``[..., P + H*W, D]`` as ``P`` prefix tokens
    (class, distillation, register tokens) followed by an ``H x W`` patch grid.

    What is not given is inferred: the one reading in which both grids are
    square (at least 2x2) with the same ``P`` on both sides, ``P`` smaller
    than either grid's number of patches. When none or several readings
    exist, the error names them and the argument that settles it.

    Args:
        src_shape, dst_shape: ``[N, D]`` or ``[B, N, D]`` (timm's
            ``pos_embed`` and torchvision's ``encoder.pos_embedding`` are
            ``[1, N, D]``); all but the token dimension must be equal.
        prefix_tokens (int | None): ``P``, the same on both sides.
        grid (Tuple[int, int] | None): the source grid ``(H, W)``.
        dst_grid (Tuple[int, int] | None): the destination grid.

    Returns:
        Tuple[int, Tuple[int, int], Tuple[int, int]]:
        ``(prefix_tokens, grid, dst_grid)``.

    Raises:
        ShapeMismatchError: the shapes are not position embeddings, or the
            layout cannot be inferred, or the arguments do not fit them.

    Example:
        >>> from torch_liberator.resample import infer_pos_embed_layout
        >>> infer_pos_embed_layout((1, 197, 768), (1, 577, 768))
        (1, (14, 14), (24, 24))
        >>> infer_pos_embed_layout((1, 196, 8), (1, 384, 8), grid=(14, 14), dst_grid=(16, 24))
        (0, (14, 14), (16, 24))
        >>> import pytest
        >>> with pytest.raises(ValueError, match='several readings'):
        ...     infer_pos_embed_layout((1, 145, 8), (1, 1025, 8))
        >>> infer_pos_embed_layout((1, 145, 8), (1, 1025, 8), prefix_tokens=1)
        (1, (12, 12), (32, 32))
    """
    src_dims, dst_dims = tuple(src_shape), tuple(dst_shape)
    if len(src_dims) not in (2, 3) or len(src_dims) != len(dst_dims):
        raise _mismatch(src_dims, dst_dims, (
            'interpolate handles position embeddings [N, D] or [1, N, D] '
            'of equal rank'))
    if src_dims[:-2] != dst_dims[:-2] or src_dims[-1] != dst_dims[-1]:
        raise _mismatch(src_dims, dst_dims, (
            'interpolate changes only the number of tokens (dimension -2); '
            'the embedding width and leading dimensions must be equal'))
    if grid is not None:
        grid = _as_grid(grid, 'grid')
    if dst_grid is not None:
        dst_grid = _as_grid(dst_grid, 'dst_grid')
    n_src, n_dst = src_dims[-2], dst_dims[-2]
    if prefix_tokens is not None:
        if isinstance(prefix_tokens, bool) or not isinstance(prefix_tokens, int) \
                or prefix_tokens < 0:
            raise ShapeMismatchError(
                f'prefix_tokens={prefix_tokens!r} is not an int >= 0')
        candidates = [prefix_tokens]
    else:
        candidates = range(min(n_src, n_dst))
    readings = {}
    for prefix in candidates:
        reading = _grid_reading(n_src, n_dst, prefix, grid, dst_grid)
        if reading is None:
            continue
        if prefix_tokens is None and any(prefix >= rows * cols
                                         for rows, cols in reading):
            continue  # more prefix tokens than patches: not a ViT layout
        readings[prefix] = reading
    given = ', '.join(f'{name}={value!r}' for name, value in (
        ('prefix_tokens', prefix_tokens), ('grid', grid),
        ('dst_grid', dst_grid)) if value is not None)
    if len(readings) == 1:
        (prefix, (src_grid, out_grid)), = readings.items()
        return prefix, src_grid, out_grid
    if not readings:
        why = (f'{n_src} -> {n_dst} tokens cannot be read as prefix tokens '
               f'plus a grid{" with " + given if given else ""} (inferred '
               'grids must be square, at least 2x2)')
    else:
        options = '; '.join(
            f'prefix_tokens={p}: {g[0]}x{g[1]} -> {d[0]}x{d[1]}'
            for p, (g, d) in readings.items())
        why = f'{n_src} -> {n_dst} tokens have several readings ({options})'
    raise _mismatch(src_dims, dst_dims, (
        f'{why}; say which with a callable policy, e.g. '
        'torch_liberator.policies.interpolate(prefix_tokens=1, grid=(14, 14), '
        'dst_grid=(24, 24))'))


def resample_pos_embed(src: torch.Tensor, dst_shape: Sequence[int],
                       prefix_tokens: Optional[int] = None,
                       grid: Optional[Tuple[int, int]] = None,
                       dst_grid: Optional[Tuple[int, int]] = None
                       ) -> torch.Tensor:
    """
    A position embedding resampled to ``dst_shape``: the prefix tokens are
    kept as they are, the patch grid is resized as a ``D``-channel image with
    :func:`torch.nn.functional.interpolate` (``mode='bicubic'``,
    ``align_corners=False``, ``antialias=True`` when a side shrinks), as
    timm's ``resample_abs_pos_embed`` does.

    Args:
        src (torch.Tensor): ``[N, D]`` or ``[B, N, D]``, floating point.
        dst_shape: the shape to produce.
        prefix_tokens, grid, dst_grid: as :func:`infer_pos_embed_layout`
            (inferred when None).

    Returns:
        torch.Tensor: a new tensor of ``dst_shape`` and ``src``'s dtype
        (computed in at least float32 precision).

    Raises:
        ShapeMismatchError: as :func:`infer_pos_embed_layout`, or ``src`` is
            not floating point.

    Example:
        >>> import torch
        >>> from torch_liberator.resample import resample_pos_embed
        >>> src = torch.randn(1, 1 + 4 * 4, 8)
        >>> out = resample_pos_embed(src, (1, 1 + 8 * 8, 8))
        >>> tuple(out.shape)
        (1, 65, 8)
        >>> assert torch.equal(out[:, 0], src[:, 0])
    """
    if not src.is_floating_point():
        raise ShapeMismatchError(
            f'interpolate needs a floating point embedding, got {src.dtype}')
    dst_dims = tuple(dst_shape)
    prefix, (rows, cols), (out_rows, out_cols) = infer_pos_embed_layout(
        tuple(src.shape), dst_dims, prefix_tokens, grid, dst_grid)
    width = src.shape[-1]
    work = _work_tensor(src).reshape(-1, src.shape[-2], width)
    image = work[:, prefix:].reshape(-1, rows, cols, width).permute(0, 3, 1, 2)
    shrink = out_rows < rows or out_cols < cols
    image = torch.nn.functional.interpolate(
        image, size=(out_rows, out_cols), mode='bicubic', align_corners=False,
        antialias=shrink)
    tokens = image.permute(0, 2, 3, 1).reshape(-1, out_rows * out_cols, width)
    out = torch.cat([work[:, :prefix], tokens], dim=1)
    return out.reshape(dst_dims).to(src.dtype)
