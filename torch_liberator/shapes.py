"""
Tensor shapes and specs without tensor data.

Pure: a spec is a shape and a dtype, read from a live tensor or from a file's
header; nothing here imports torch, so planning and association can work from
headers alone. :func:`shape_relation` names how two shapes relate, which is
what the association solvers, the shape policies and the plan ask about.

Example:
    >>> from torch_liberator.shapes import TensorSpec, shape_relation
    >>> spec = TensorSpec((768,), 'float32')
    >>> shape_relation(spec.shape, (768, 1, 1))
    'units'
"""
from typing import NamedTuple, Optional, Sequence, Tuple

from torch_liberator.errors import ShapeMismatchError

__all__ = ['RELATIONS', 'TensorSpec', 'is_kernel', 'shape_relation', 'squeeze_units']

#: every value :func:`shape_relation` returns, from the closest to the farthest
RELATIONS = ('equal', 'units', 'same_rank', 'different_rank', 'unknown')


class TensorSpec(NamedTuple):
    """
    What is known about a tensor without reading its data.

    Attributes:
        shape (Tuple[int, ...]): the sizes.
        dtype (object): a ``torch.dtype``, a dtype name such as
            ``'float32'`` (as file headers give it), or None when unknown.

    Example:
        >>> from torch_liberator.shapes import TensorSpec
        >>> TensorSpec((3, 4)).numel
        12
        >>> TensorSpec.of(object())
        Traceback (most recent call last):
        ...
        TypeError: TensorSpec.of needs an object with .shape and .dtype, got object
    """

    shape: Tuple[int, ...]
    dtype: object = None

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count

    @classmethod
    def of(cls, tensor) -> 'TensorSpec':
        """
        The spec of anything with ``.shape`` and ``.dtype`` (a tensor, a
        meta tensor, a DTensor).

        Raises:
            TypeError: ``tensor`` has no ``.shape`` and ``.dtype``.
            ShapeMismatchError: ``tensor`` is a nested tensor (its
                components have different shapes).

        Example:
            >>> import torch
            >>> from torch_liberator.shapes import TensorSpec
            >>> TensorSpec.of(torch.zeros(2, 3, device='meta'))
            TensorSpec(shape=(2, 3), dtype=torch.float32)
        """
        if getattr(tensor, 'is_nested', False):
            raise ShapeMismatchError(
                'a nested tensor has no single shape (its components differ); '
                'convert it first, e.g. .to_padded_tensor(0)')
        try:
            shape, dtype = tensor.shape, tensor.dtype
        except AttributeError:
            raise TypeError(
                'TensorSpec.of needs an object with .shape and .dtype, got '
                f'{type(tensor).__name__}') from None
        return cls(tuple(map(int, shape)), dtype)


def squeeze_units(shape: Sequence[int]) -> Tuple[int, ...]:
    """
    ``shape`` without its size-1 dimensions.

    Example:
        >>> from torch_liberator.shapes import squeeze_units
        >>> squeeze_units((1, 768, 1, 1))
        (768,)
    """
    return tuple(size for size in shape if size != 1)


def is_kernel(shape: Optional[Sequence[int]]) -> bool:
    """
    Whether a tensor of ``shape`` is a kernel: two or more dimensions
    besides size-1 ones (a convolution's or a linear layer's weight, not a
    norm's vector or a layer scale ``[C, 1, 1]``). An unknown shape is not.

    Example:
        >>> from torch_liberator.shapes import is_kernel
        >>> is_kernel((64, 3, 7, 7)), is_kernel((768, 1, 1)), is_kernel(None)
        (True, False, False)
    """
    return shape is not None and len(squeeze_units(shape)) >= 2


def shape_relation(src: Optional[Sequence[int]],
                   dst: Optional[Sequence[int]]) -> str:
    """
    How a source shape relates to a destination shape, one of
    :data:`RELATIONS`.

    * ``'equal'``: the same sizes;
    * ``'units'``: the same sizes once size-1 dimensions are dropped
      (``[C]`` and ``[C, 1, 1]``): the same tensor, reshaped losslessly;
    * ``'same_rank'``: same number of dimensions, other sizes (a shove can
      copy the overlap);
    * ``'different_rank'``: nothing reconciles them without a policy;
    * ``'unknown'``: either shape is None.

    Example:
        >>> from torch_liberator.shapes import shape_relation
        >>> shape_relation((10, 5), (10, 5))
        'equal'
        >>> shape_relation((1, 1, 8), (8,))
        'units'
        >>> shape_relation((1000, 512), (10, 512))
        'same_rank'
        >>> shape_relation((8, 3, 3), (8,))
        'different_rank'
        >>> shape_relation(None, (8,))
        'unknown'
    """
    if src is None or dst is None:
        return 'unknown'
    src, dst = tuple(src), tuple(dst)
    if src == dst:
        return 'equal'
    if squeeze_units(src) == squeeze_units(dst):
        return 'units'
    if len(src) == len(dst):
        return 'same_rank'
    return 'different_rank'
