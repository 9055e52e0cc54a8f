"""
Fit one tensor into another whose shape may differ ("shoving").

This module is pure tensor surgery: it knows nothing about state-dict keys,
models or user options (:mod:`torch_liberator.policies` decides which of these
to use for which key). Every operation comes in two halves: a check from
shapes alone, which raises :class:`~torch_liberator.errors.ShapeMismatchError`
when the operation cannot fit the pair (so a whole load can be validated
before a byte is written), and the operation itself.

* corner (:func:`plan_shove`, :func:`shove_tensor`): copy the leading block
  both tensors share, the published behaviour;
* centre (:func:`check_center`, :func:`shove_center`): crop or pad around the
  centre of every dimension;
* reshape (:func:`check_reshape`, :func:`shove_reshape`): the same sizes once
  unit dimensions are dropped (``[C]`` and ``[C, 1, 1]``), lossless.

Shoves that compute new values (position embeddings, input channels) are in
:mod:`torch_liberator.resample`.

The outcomes, named as in the ``info['seen']`` dict of
:func:`torch_liberator.load_partial_state` (:func:`shove_outcome`):

* ``'full_add'``: every element of the source lands in the destination, and
  fills it: equal shapes, or a lossless reshape;
* ``'partial_add_all'``: the shapes differ and no source dimension is larger
  than the destination's, so nothing had to be cut to make it fit;
* ``'partial_add_some'``: the shapes differ and some source dimension is
  larger: part of the source was cut, summed or resampled away.

Example:
    >>> import torch
    >>> from torch_liberator.shove import shove_tensor
    >>> dst = torch.zeros(3, 3)
    >>> shove_tensor(dst, torch.ones(2, 2))
    'partial_add_all'
    >>> int(dst.sum())
    4
"""
import math
from typing import Sequence

import torch

from torch_liberator.errors import ShapeMismatchError
from torch_liberator.shapes import shape_relation

__all__ = [
    'SHOVE_OUTCOMES',
    'check_center',
    'check_reshape',
    'plan_shove',
    'shove_center',
    'shove_outcome',
    'shove_reshape',
    'shove_tensor',
]

#: Every value :func:`plan_shove`, :func:`shove_outcome` and the ``shove_*``
#: functions can return.
SHOVE_OUTCOMES = ('full_add', 'partial_add_all', 'partial_add_some')


def _as_shape(shape, name):
    """
    Normalize a shape-like (``torch.Size``, tuple or list of ints) to a tuple.
    """
    if isinstance(shape, torch.Size):
        return shape  # already a tuple of non-negative ints
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError) as err:
        raise ShapeMismatchError(
            f'{name}={shape!r} is not a shape; pass a torch.Size or a tuple '
            'of non-negative ints') from err
    if any(d < 0 for d in dims):
        raise ShapeMismatchError(
            f'{name}={shape!r} has a negative dimension; sizes must be >= 0')
    return dims


def _overlap(dst_shape, src_shape):
    """
    The shape of the leading block shared by two shapes of equal rank.
    """
    return tuple(min(a, b) for a, b in zip(dst_shape, src_shape))


def plan_shove(dst_shape, src_shape, dst_dtype=None, src_dtype=None):
    """
    Decide what :func:`shove_tensor` would do, without touching any tensor.

    Use it to validate every pair of a load before the first tensor is
    written, so a failure leaves the destination untouched.

    Args:
        dst_shape (torch.Size | Tuple[int, ...]): shape of the destination
            (the model's tensor).
        src_shape (torch.Size | Tuple[int, ...]): shape of the source (the
            checkpoint's tensor).
        dst_dtype (torch.dtype | None): dtype of the destination; with
            ``src_dtype``, lets the plan refuse a lossy complex -> real copy.
        src_dtype (torch.dtype | None): dtype of the source.

    Returns:
        str: one of :data:`SHOVE_OUTCOMES`: ``'full_add'`` (same shape),
        ``'partial_add_all'`` (same rank, the whole source fits) or
        ``'partial_add_some'`` (same rank, part of the source is cut).

    Raises:
        ShapeMismatchError: if the ranks differ (a 0-d tensor only fits
            another 0-d tensor), or if a complex source would be copied into
            a real destination (the imaginary part would be lost).

    Example:
        >>> import torch
        >>> from torch_liberator.shove import plan_shove
        >>> plan_shove((4, 3), (4, 3))
        'full_add'
        >>> plan_shove(torch.Size([5, 3]), torch.Size([4, 3]))
        'partial_add_all'
        >>> plan_shove((2, 3), (4, 3))
        'partial_add_some'
        >>> plan_shove((), ())
        'full_add'
        >>> import pytest
        >>> with pytest.raises(ValueError, match='ranks differ'):
        ...     plan_shove((4, 3), (12,))
    """
    dst_dims = _as_shape(dst_shape, 'dst_shape')
    src_dims = _as_shape(src_shape, 'src_shape')
    if (dst_dtype is not None and src_dtype is not None
            and src_dtype.is_complex and not dst_dtype.is_complex):
        raise ShapeMismatchError(
            f'cannot shove a {src_dtype} tensor into a {dst_dtype} one: the '
            'imaginary part would be lost; convert the source explicitly '
            '(e.g. src.real) if that is what you want')
    if len(dst_dims) != len(src_dims):
        raise ShapeMismatchError(
            f'cannot shove a tensor of shape {tuple(src_dims)} into one of '
            f'shape {tuple(dst_dims)}: ranks differ ({len(src_dims)} vs {len(dst_dims)}); '
            'only tensors of the same rank can be fitted, reshape the source '
            'first or leave this tensor out')
    if dst_dims == src_dims:
        return 'full_add'
    if all(s <= d for s, d in zip(src_dims, dst_dims)):
        return 'partial_add_all'
    return 'partial_add_some'


def shove_tensor(dst, src):
    """
    Copy as much of ``src`` into ``dst`` as fits, in place.

    Same shape: a full copy. Same rank, different sizes: the overlapping
    leading block is copied (``dst[:a, :b, ...] = src[:a, :b, ...]``) and the
    rest of ``dst`` keeps its values. The copy converts dtype and device as
    :meth:`torch.Tensor.copy_` does, reads ``src`` through views, and never
    materializes a converted copy of the whole source. Runs under
    :func:`torch.no_grad`, so ``dst`` may be a parameter that requires grad.

    Args:
        dst (torch.Tensor): destination, modified in place.
        src (torch.Tensor): source, only read.

    Returns:
        str: what was done, as :func:`plan_shove` would say:
        ``'full_add'``, ``'partial_add_all'`` or ``'partial_add_some'``.

    Raises:
        ShapeMismatchError: if the ranks differ, or ``src`` is complex and
            ``dst`` is not. ``dst`` is unchanged.
        TypeError: if ``dst`` or ``src`` is not a tensor.

    Example:
        >>> import torch
        >>> from torch_liberator.shove import shove_tensor
        >>> dst = torch.zeros(2, 3)
        >>> src = torch.arange(12, dtype=torch.float64).reshape(3, 4)
        >>> shove_tensor(dst, src)
        'partial_add_some'
        >>> dst.tolist()
        [[0.0, 1.0, 2.0], [4.0, 5.0, 6.0]]
        >>> dst.dtype
        torch.float32
        >>> weight = torch.nn.Linear(2, 2).weight
        >>> shove_tensor(weight, torch.eye(2))
        'full_add'
        >>> assert torch.equal(weight.detach(), torch.eye(2))
    """
    for name, value in (('dst', dst), ('src', src)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f'{name} must be a torch.Tensor, got {type(value).__name__}')
    outcome = plan_shove(dst.shape, src.shape, dst.dtype, src.dtype)
    with torch.no_grad():
        if outcome == 'full_add':
            if dst is not src:
                dst.copy_(src)
        else:
            block = tuple(slice(0, n) for n in _overlap(dst.shape, src.shape))
            dst[block].copy_(src[block])
    return outcome


def shove_outcome(src_shape: Sequence[int], dst_shape: Sequence[int]) -> str:
    """
    The ``info['seen']`` category of a shove from ``src_shape`` into
    ``dst_shape`` by a policy that may cut, sum or resample (every policy but
    the lossless reshape, which is always ``'full_add'``):
    :data:`SHOVE_OUTCOMES`.

    ``'full_add'`` for equal shapes; otherwise ``'partial_add_all'`` when no
    source dimension is larger than the destination's (same rank), or the
    source has no more elements (different ranks), else
    ``'partial_add_some'``.

    Example:
        >>> from torch_liberator.shove import shove_outcome
        >>> shove_outcome((1, 197, 768), (1, 577, 768))
        'partial_add_all'
        >>> shove_outcome((64, 3, 7, 7), (64, 1, 7, 7))
        'partial_add_some'
    """
    src_dims, dst_dims = tuple(src_shape), tuple(dst_shape)
    if src_dims == dst_dims:
        return 'full_add'
    if len(src_dims) == len(dst_dims):
        fits = all(s <= d for s, d in zip(src_dims, dst_dims))
    else:
        fits = math.prod(src_dims) <= math.prod(dst_dims)
    return 'partial_add_all' if fits else 'partial_add_some'


def _mismatch(src_shape, dst_shape, why):
    return ShapeMismatchError(
        f'cannot fit shape {tuple(src_shape)} into {tuple(dst_shape)}: {why}')


# --- centre ------------------------------------------------------------------

def check_center(src_shape: Sequence[int], dst_shape: Sequence[int]) -> str:
    """
    Check that :func:`shove_center` can fit the shapes; return its outcome.

    Raises:
        ShapeMismatchError: if the ranks differ.

    Example:
        >>> from torch_liberator.shove import check_center
        >>> check_center((64, 3, 7, 7), (64, 3, 3, 3))
        'partial_add_some'
    """
    if len(src_shape) != len(dst_shape):
        raise _mismatch(src_shape, dst_shape, (
            f'ranks differ ({len(src_shape)} vs {len(dst_shape)}); the centre '
            'policy crops or pads each dimension, so the ranks must agree'))
    return shove_outcome(src_shape, dst_shape)


def _center_index(src_shape, dst_shape):
    """The (source, destination) slices that line up the two centres."""
    src_index, dst_index = [], []
    for s, d in zip(src_shape, dst_shape):
        n = min(s, d)
        s0, d0 = (s - n) // 2, (d - n) // 2
        src_index.append(slice(s0, s0 + n))
        dst_index.append(slice(d0, d0 + n))
    return tuple(src_index), tuple(dst_index)


def shove_center(dst: torch.Tensor, src: torch.Tensor) -> str:
    """
    Copy the centre of ``src`` onto the centre of ``dst``, in place.

    Along each dimension the larger side is cropped around its centre to the
    smaller one (a 7x7 kernel into a 3x3 one keeps rows and columns 2..4); the
    rest of ``dst`` keeps its values. For an odd difference the extra element
    goes to the end (``(larger - smaller) // 2`` is cut from the start).

    Returns:
        str: the outcome, as :func:`shove_outcome` says.

    Raises:
        ShapeMismatchError: if the ranks differ; ``dst`` is unchanged.

    Example:
        >>> import torch
        >>> from torch_liberator.shove import shove_center
        >>> dst = torch.zeros(3, 3)
        >>> shove_center(dst, torch.arange(25.).reshape(5, 5))
        'partial_add_some'
        >>> dst.tolist()
        [[6.0, 7.0, 8.0], [11.0, 12.0, 13.0], [16.0, 17.0, 18.0]]
        >>> dst = torch.zeros(1, 4)
        >>> shove_center(dst, torch.ones(1, 2))
        'partial_add_all'
        >>> dst.tolist()
        [[0.0, 1.0, 1.0, 0.0]]
    """
    outcome = check_center(tuple(src.shape), tuple(dst.shape))
    src_index, dst_index = _center_index(src.shape, dst.shape)
    with torch.no_grad():
        dst[dst_index].copy_(src[src_index])
    return outcome


# --- reshape -----------------------------------------------------------------

def check_reshape(src_shape: Sequence[int], dst_shape: Sequence[int]) -> str:
    """
    Check that :func:`shove_reshape` can fit the shapes (equal once unit
    dimensions are dropped); return ``'full_add'``.

    Raises:
        ShapeMismatchError: for any other pair of shapes: a reshape that
            moves elements between real dimensions would scramble them.

    Example:
        >>> from torch_liberator.shove import check_reshape
        >>> check_reshape((768,), (1, 1, 768))
        'full_add'
    """
    if shape_relation(tuple(src_shape), tuple(dst_shape)) not in ('equal', 'units'):
        raise _mismatch(src_shape, dst_shape, (
            'the reshape policy only adds or drops size-1 dimensions '
            '([C] <-> [C, 1, 1]); the sizes differ once those are dropped'))
    return 'full_add'


def shove_reshape(dst: torch.Tensor, src: torch.Tensor) -> str:
    """
    Copy ``src`` into ``dst`` whose shape differs only by size-1 dimensions.

    Lossless: every element is copied, in order.

    Raises:
        ShapeMismatchError: as :func:`check_reshape`; ``dst`` is unchanged.

    Example:
        >>> import torch
        >>> from torch_liberator.shove import shove_reshape
        >>> dst = torch.zeros(3, 1, 1)
        >>> shove_reshape(dst, torch.tensor([1., 2., 3.]))
        'full_add'
        >>> dst.flatten().tolist()
        [1.0, 2.0, 3.0]
    """
    outcome = check_reshape(tuple(src.shape), tuple(dst.shape))
    with torch.no_grad():
        dst.copy_(src.reshape(dst.shape))
    return outcome
