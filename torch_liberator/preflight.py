"""
Can a copy be made at all? The checks a load runs on every pair before the
first write, so that nothing fails half-way.

:func:`check_spec_copyable` works from specs (dtypes known from a file header
suffice, so a dry run sees these); :func:`check_copyable` needs the real
tensors and adds what only they tell: nested, sparse, quantized or meta
sources, expanded model tensors, and memory shared between a source and its
destination. Both return None or the reason, for the caller to skip the pair
with.

Example:
    >>> import torch
    >>> from torch_liberator.preflight import check_copyable
    >>> print(check_copyable(torch.ones(3), torch.zeros(1).expand(3)))
    the model tensor is an expanded view (several elements share memory) and cannot be written element by element; give the module its own tensor (e.g. .clone()) before loading
"""
from typing import Dict, Iterable, Optional, Tuple

import torch

from torch_liberator.shapes import TensorSpec

__all__ = [
    'UNCOPYABLE_DTYPES',
    'check_copyable',
    'check_destination',
    'check_pairs',
    'check_source',
    'check_spec_copyable',
    'dtype_name',
]

#: dtypes :meth:`torch.Tensor.copy_` cannot read or write in this torch
#: (sub-byte and bit types, packed float4, quantized types), by name.
UNCOPYABLE_DTYPES = tuple(
    name for name in (
        ['bits1x8', 'bits2x4', 'bits4x2', 'bits8', 'bits16',
         'float4_e2m1fn_x2', 'qint8', 'qint32', 'quint8', 'quint4x2',
         'quint2x4']
        + [f'uint{n}' for n in range(1, 8)] + [f'int{n}' for n in range(1, 8)])
    if isinstance(getattr(torch, name, None), torch.dtype))


_UNCOPYABLE = frozenset(getattr(torch, name) for name in UNCOPYABLE_DTYPES)
_COMPLEX_INTO_REAL = (
    'a complex checkpoint tensor into a real model tensor would lose the '
    'imaginary part; convert the source explicitly (e.g. .real) if that is '
    'intended')


def _uncopyable(side, dtype):
    return (f'the {side} tensor is {dtype_name(dtype)}, which torch cannot '
            'copy; convert it to a supported dtype first')


def dtype_name(dtype) -> Optional[str]:
    """
    The bare name of a ``torch.dtype`` or dtype string (None stays None).

    Example:
        >>> import torch
        >>> from torch_liberator.preflight import dtype_name
        >>> dtype_name(torch.bits8), dtype_name('float32'), dtype_name(None)
        ('bits8', 'float32', None)
    """
    if dtype is None:
        return None
    return str(dtype).rsplit('.', 1)[-1]


def check_spec_copyable(src_spec: TensorSpec,
                        dst_spec: TensorSpec) -> Optional[str]:
    """
    Why the dtypes of a pair cannot be copied, or None: a dtype in
    :data:`UNCOPYABLE_DTYPES` on either side, or a complex source for a real
    destination (the imaginary part would be lost). Unknown dtypes pass.

    Example:
        >>> import torch
        >>> from torch_liberator.preflight import check_spec_copyable
        >>> from torch_liberator.shapes import TensorSpec
        >>> print(check_spec_copyable(TensorSpec((4,), 'int4'), TensorSpec((4,), torch.float32)))
        the checkpoint tensor is int4, which torch cannot copy; convert it to a supported dtype first
        >>> check_spec_copyable(TensorSpec((4,)), TensorSpec((4,))) is None
        True
    """
    for side, spec in (('checkpoint', src_spec), ('model', dst_spec)):
        if _is_uncopyable(spec.dtype):
            return _uncopyable(side, spec.dtype)
    if _is_complex(src_spec.dtype) and _is_complex(dst_spec.dtype) is False:
        return _COMPLEX_INTO_REAL
    return None


def _is_uncopyable(dtype):
    if isinstance(dtype, torch.dtype):
        return dtype in _UNCOPYABLE
    return dtype_name(dtype) in UNCOPYABLE_DTYPES


def _is_complex(dtype):
    """True, False, or None when the dtype is unknown."""
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        return dtype.is_complex
    return 'complex' in dtype_name(dtype)


def check_source(src: torch.Tensor) -> Optional[str]:
    """
    Why a checkpoint tensor cannot be loaded at all, or None: a nested,
    sparse, quantized or meta tensor, or a dtype :meth:`torch.Tensor.copy_`
    cannot read (:data:`UNCOPYABLE_DTYPES`).

    Example:
        >>> import torch
        >>> from torch_liberator.preflight import check_source
        >>> print(check_source(torch.zeros(2).to_sparse()))
        torch.sparse_coo tensors are not supported; densify it first
        >>> check_source(torch.zeros(2)) is None
        True
    """
    if getattr(src, 'is_nested', False):
        return ('the checkpoint tensor is a nested tensor, which has no single '
                'shape to fit; convert it first (e.g. .to_padded_tensor(0))')
    if src.layout != torch.strided:
        return f'{src.layout} tensors are not supported; densify it first'
    if src.is_quantized:
        return 'quantized tensors are not supported; dequantize it first'
    if src.is_meta:
        return 'meta tensors hold no data'
    if src.dtype in _UNCOPYABLE:
        return _uncopyable('checkpoint', src.dtype)
    return None


def check_destination(dst: torch.Tensor) -> Optional[str]:
    """
    Why a model tensor cannot be written element by element, or None: a
    quantized tensor, a dtype :meth:`torch.Tensor.copy_` cannot write, or an
    expanded view (several elements share memory). A meta tensor passes (a
    plan can be made for a model on the meta device).

    Example:
        >>> import torch
        >>> from torch_liberator.preflight import check_destination
        >>> print(check_destination(torch.zeros(1).expand(3)))
        the model tensor is an expanded view (several elements share memory) and cannot be written element by element; give the module its own tensor (e.g. .clone()) before loading
    """
    if dst.is_quantized:
        return ('the model tensor is quantized; load into the float model '
                'before quantizing it')
    if dst.dtype in _UNCOPYABLE:
        return _uncopyable('model', dst.dtype)
    if _may_self_overlap(dst):
        return ('the model tensor is an expanded view (several elements share '
                'memory) and cannot be written element by element; give the '
                'module its own tensor (e.g. .clone()) before loading')
    return None


def check_copyable(src: torch.Tensor, dst: torch.Tensor) -> Optional[str]:
    """
    Why copying ``src`` into ``dst`` would fail half-way, or None.

    :func:`check_source`, :func:`check_destination` and
    :func:`check_spec_copyable`, plus what only the two tensors together
    tell: a source that overlaps its destination's memory (unless it *is*
    the destination: copying a tensor onto itself is a no-op). A model
    tensor on the meta device passes, as in :func:`check_destination` (a
    copy into it does not fail; it stores nothing).

    Example:
        >>> import torch
        >>> from torch_liberator.preflight import check_copyable
        >>> check_copyable(torch.ones(3), torch.zeros(3)) is None
        True
        >>> base = torch.arange(6.)
        >>> print(check_copyable(base[:4], base[2:]))
        the checkpoint tensor shares memory with the model tensor it would be copied into; pass a copy (e.g. {k: v.clone() for k, v in state.items()})
    """
    reason = check_source(src) or check_destination(dst)
    if reason:
        return reason
    if src.dtype.is_complex and not dst.dtype.is_complex:
        return _COMPLEX_INTO_REAL
    return check_pairs([('', '', src, dst)]).get('')  # a load of one pair


def check_pairs(pairs: Iterable[Tuple[str, str, torch.Tensor, torch.Tensor]]
                ) -> Dict[str, str]:
    """
    What only the tensors of a load together tell: memory shared between a
    checkpoint tensor and a model tensor, pair by pair in the order they
    will be written.

    A pair is refused when its checkpoint tensor overlaps its own model
    tensor (unless it *is* that tensor, same view: copying a tensor onto
    itself is a no-op), or overlaps a model tensor written *before* it (it
    would be read after that write changed it: a state dict of this very
    model, loaded under other keys). The checks of one tensor at a time
    (:func:`check_source`, :func:`check_destination`,
    :func:`check_spec_copyable`) are not repeated here: a plan runs them
    once per tensor.

    Args:
        pairs: ``(checkpoint key, model key, source, destination)`` in
            write order.

    Returns:
        Dict[str, str]: ``{checkpoint key: reason}`` for the pairs to skip.

    Example:
        >>> import torch
        >>> from torch_liberator.preflight import check_pairs
        >>> model = torch.nn.ModuleDict({'a': torch.nn.Linear(2, 2), 'b': torch.nn.Linear(2, 2)})
        >>> state = model.state_dict()
        >>> swap = [('b.weight', 'a.weight', state['b.weight'], model.a.weight),
        ...         ('a.weight', 'b.weight', state['a.weight'], model.b.weight)]
        >>> print(check_pairs(swap)['a.weight'])
        the checkpoint tensor shares memory with model tensor 'a.weight', which is written before it is read; pass a copy (e.g. {k: v.clone() for k, v in state.items()})
    """
    reasons = {}
    written = {}  # storage -> [(model key, tensor)] written so far
    for src_key, dst_key, src, dst in pairs:
        src_storage, dst_storage = _storage_id(src), _storage_id(dst)
        same = src_storage == dst_storage and _same_view(src, dst)
        reason = None
        if src_storage == dst_storage and not same and _meet(src, dst):
            reason = ('the checkpoint tensor shares memory with the model '
                      'tensor it would be copied into; pass a copy (e.g. '
                      '{k: v.clone() for k, v in state.items()})')
        if reason is None:
            for other, tensor in written.get(src_storage, ()):
                if _meet(src, tensor):
                    reason = (
                        f'the checkpoint tensor shares memory with model '
                        f'tensor {other!r}, which is written before it is '
                        'read; pass a copy (e.g. {k: v.clone() for k, v in '
                        'state.items()})')
                    break
        if reason:
            reasons[src_key] = reason
        elif not same:
            written.setdefault(dst_storage, []).append((dst_key, dst))
    return reasons


def _storage_id(tensor):
    return tensor.device, tensor.untyped_storage().data_ptr()


def _may_self_overlap(tensor):
    """True unless the strides prove that no two elements share memory."""
    if tensor.is_contiguous():
        return False
    dims = sorted((stride, size) for size, stride in
                  zip(tensor.shape, tensor.stride()) if size > 1)
    extent = 0  # elements spanned by the dimensions so far, minus one
    for stride, size in dims:
        if stride <= extent:
            return True
        extent += (size - 1) * stride
    return False


def _byte_range(tensor):
    start = tensor.data_ptr()
    span = sum((size - 1) * stride
               for size, stride in zip(tensor.shape, tensor.stride()))
    return start, start + (span + 1) * tensor.element_size()


def _same_view(src, dst):
    return (src.data_ptr() == dst.data_ptr() and src.shape == dst.shape
            and src.stride() == dst.stride() and src.dtype == dst.dtype)


def _meet(first, second):
    """The memory of two tensors of one storage overlaps."""
    if first.numel() == 0 or second.numel() == 0:
        return False
    (start1, end1), (start2, end2) = _byte_range(first), _byte_range(second)
    return start1 < end2 and start2 < end1
