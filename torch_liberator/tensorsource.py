"""
A checkpoint seen as specs first and tensors on demand.

Planning a load needs only each checkpoint key's shape and dtype
(:class:`~torch_liberator.shapes.TensorSpec`); the tensors themselves are
read afterwards, and only those the plan copies. Anything with the three
members of :class:`TensorSource` can be a source: an in-memory state dict
(:class:`StateDictSource`) or a reader that gets the specs from a file's
header and reads tensors one by one.

Example:
    >>> import torch
    >>> from torch_liberator.tensorsource import open_source
    >>> source = open_source({'fc.weight': torch.zeros(2, 3)})
    >>> source.specs['fc.weight'].shape
    (2, 3)
    >>> list(source.read(['fc.weight']))
    ['fc.weight']
"""
import os
from typing import (Dict, Iterable, Mapping, Optional, Protocol, Union,
                    runtime_checkable)

import torch

from torch_liberator.checkpoint import open_checkpoint, unwrap_state_dict
from torch_liberator.errors import CheckpointFormatError
from torch_liberator.preflight import check_source
from torch_liberator.shapes import TensorSpec

__all__ = ['SpecSource', 'StateDictSource', 'TensorSource', 'open_source']


@runtime_checkable
class TensorSource(Protocol):
    """
    What a load plan needs from a checkpoint.

    Attributes:
        specs (Mapping[str, TensorSpec]): every checkpoint key, in the
            checkpoint's order, with its shape and dtype; known without
            reading tensor data.
        problems (Mapping[str, str]): keys whose tensors cannot be loaded,
            with the reason (a nested, sparse, quantized or meta tensor, a
            dtype torch cannot copy); the plan skips them.

    A source also has ``read(keys)``, which returns ``{key: Tensor}`` for
    the keys asked (only those), on the device the source was opened for.

    Example:
        >>> import torch
        >>> from torch_liberator.tensorsource import StateDictSource, TensorSource
        >>> isinstance(StateDictSource({}), TensorSource)
        True
    """

    specs: Mapping[str, TensorSpec]
    problems: Mapping[str, str]

    def read(self, keys: Iterable[str]) -> Dict[str, torch.Tensor]:
        ...


class StateDictSource:
    """
    A state dict already in memory, as a :class:`TensorSource`.

    Args:
        state (Mapping[str, Tensor]): a flat state dict, or a nested
            checkpoint dict (``{'state_dict': ..., 'epoch': 3}``) that
            :func:`~torch_liberator.checkpoint.unwrap_state_dict` unwraps.

    Raises:
        CheckpointFormatError: ``state`` is not a mapping of str keys to
            tensors (or a checkpoint dict holding one).

    Example:
        >>> import torch
        >>> from torch_liberator.tensorsource import StateDictSource
        >>> source = StateDictSource({'state_dict': {'w': torch.zeros(2)}, 'epoch': 1})
        >>> source.specs
        {'w': TensorSpec(shape=(2,), dtype=torch.float32)}
        >>> StateDictSource({'w': torch.zeros(2).to_sparse()}).problems
        {'w': 'torch.sparse_coo tensors are not supported; densify it first'}
    """

    def __init__(self, state: Mapping[str, torch.Tensor]):
        self.state = _flat_tensor_state(state)
        self.specs, self.problems = {}, {}
        for key, value in self.state.items():
            reason = check_source(value)
            if reason:
                self.problems[key] = reason
            # a nested tensor has no single shape: planned as unknown, skipped
            self.specs[key] = (TensorSpec(None, value.dtype) if value.is_nested
                               else TensorSpec.of(value))

    def read(self, keys: Iterable[str]) -> Dict[str, torch.Tensor]:
        """
        The tensors of ``keys`` (no copy).

        Example:
            >>> import torch
            >>> from torch_liberator.tensorsource import StateDictSource
            >>> StateDictSource({'w': torch.ones(1)}).read(['w'])
            {'w': tensor([1.])}
        """
        return {key: self.state[key] for key in keys}


class SpecSource:
    """
    Keys and specs without tensors, as a :class:`TensorSource` for planning
    only (a model built on the ``meta`` device, a list of shapes).

    Args:
        specs (Mapping[str, TensorSpec | Tensor]): key -> spec (tensors,
            meta ones included, are described by their shape and dtype).

    Example:
        >>> import torch
        >>> from torch_liberator.tensorsource import SpecSource
        >>> source = SpecSource({'w': torch.empty(2, 3, device='meta')})
        >>> source.specs, source.problems
        ({'w': TensorSpec(shape=(2, 3), dtype=torch.float32)}, {})
        >>> source.read(['w'])
        Traceback (most recent call last):
        ...
        torch_liberator.errors.CheckpointFormatError: this source holds shapes only, no tensor data ('w' asked); load from a checkpoint file or a state dict
    """

    def __init__(self, specs: Mapping[str, object]):
        self.specs = {key: value if isinstance(value, TensorSpec)
                      else TensorSpec.of(value)
                      for key, value in specs.items()}
        self.problems = {}

    def read(self, keys: Iterable[str]) -> Dict[str, torch.Tensor]:
        """Raise: there is no data to read."""
        keys = list(keys)
        if not keys:
            return {}
        raise CheckpointFormatError(
            f'this source holds shapes only, no tensor data ({keys[0]!r} '
            'asked); load from a checkpoint file or a state dict')


SourceLike = Union[str, os.PathLike, Mapping[str, torch.Tensor], TensorSource]


def open_source(source: SourceLike, device: Optional[torch.device] = None,
                ema: bool = False,
                allow_unsafe: bool = False) -> TensorSource:
    """
    A :class:`TensorSource` for a path, a state dict, or a source.

    Args:
        source: a checkpoint path (what
            :func:`~torch_liberator.checkpoint.read_state_dict` accepts), a
            state dict (flat or nested), or a :class:`TensorSource`, returned
            as it is. A path is opened lazily
            (:func:`~torch_liberator.checkpoint.open_checkpoint`): specs from
            the file's header or metadata, tensors read on request (to the
            CPU; the copy into the model moves them to its device).
        device: unused since paths are opened lazily (kept for callers).
        ema: read the EMA copy of a checkpoint that holds one.
        allow_unsafe: allow arbitrary unpickling (trusted files only).

    Raises:
        CheckpointNotFoundError: a path names no file.
        CheckpointFormatError: the file or dict holds no state dict of
            tensors.

    Example:
        >>> import torch
        >>> from torch_liberator.tensorsource import open_source
        >>> open_source([torch.zeros(1)])
        Traceback (most recent call last):
        ...
        torch_liberator.errors.CheckpointFormatError: model_state_dict is a list, not a mapping of names to tensors; pass a state dict or a checkpoint path
    """
    if isinstance(source, (str, os.PathLike)):
        return open_checkpoint(source, ema=ema, allow_unsafe=allow_unsafe)
    if not hasattr(source, 'items') and isinstance(source, TensorSource):
        return source  # (a mapping is a state dict, even with .specs)
    if ema and hasattr(source, 'items'):
        source = unwrap_state_dict(source, ema=True)
    return StateDictSource(source)


def _flat_tensor_state(state):
    """Return ``state`` as a ``{str: Tensor}`` dict, or raise."""
    if isinstance(state, torch.nn.Module):
        raise CheckpointFormatError(
            f'model_state_dict is a {type(state).__name__} module, not a '
            'state dict; pass module.state_dict() instead')
    if not hasattr(state, 'items'):
        raise CheckpointFormatError(
            f'model_state_dict is a {type(state).__name__}, not a mapping of '
            'names to tensors; pass a state dict or a checkpoint path')
    if not all(isinstance(value, torch.Tensor) for value in state.values()):
        # maybe a nested checkpoint ({'state_dict': {...}, 'epoch': 3})
        state = unwrap_state_dict(state)
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointFormatError(
                f'checkpoint key {key!r} is a {type(key).__name__}, not a '
                'str; state dict keys must be strings')
        if not isinstance(value, torch.Tensor):
            raise CheckpointFormatError(
                f'checkpoint value for key {key!r} is a '
                f'{type(value).__name__}, not a tensor; remove non-tensor '
                'entries or pass the nested state dict')
    return dict(state)
