"""
Fit one tensor into another whose shape may differ ("shoving").

This module is pure tensor surgery: it knows nothing about state-dict keys or
models. :func:`plan_shove` decides, from shapes (and optionally dtypes) alone,
what a copy would do, so a caller can validate a whole load before writing a
single byte; :func:`shove_tensor` carries the plan out in place.

The three outcomes, named as in the ``info['seen']`` dict of
:func:`torch_liberator.load_partial_state`:

* ``'full_add'``: the shapes are equal, every element of the source is copied.
* ``'partial_add_all'``: same rank, every source dimension is ``<=`` the
  destination one, so all of the source fits into the destination's leading
  block; the rest of the destination is left alone.
* ``'partial_add_some'``: same rank, some source dimension is larger, so only
  the overlapping leading block is copied and part of the source is cut.

Tensors whose ranks differ cannot be fitted and raise
:class:`~torch_liberator.errors.ShapeMismatchError`; deciding what to do about
that (skip the key, report it) is the caller's policy.

Example:
    >>> import torch
    >>> from torch_liberator.shove import shove_tensor
    >>> dst = torch.zeros(3, 3)
    >>> shove_tensor(dst, torch.ones(2, 2))
    'partial_add_all'
    >>> int(dst.sum())
    4
"""
import torch

from torch_liberator.errors import ShapeMismatchError

__all__ = [
    'SHOVE_OUTCOMES',
    'plan_shove',
    'shove_tensor',
]

#: Every value :func:`plan_shove` and :func:`shove_tensor` can return.
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
