"""
Checkpoints read lazily: keys and specs first, tensor data only on request.

A :class:`LazySource` knows every key of a checkpoint and its
:class:`~torch_liberator.shapes.TensorSpec` (shape and dtype) from the file's
header alone, and reads tensors only when asked, a batch at a time, so a
caller can plan a whole load from the specs and then read only the tensors
(or the slices of them) it will use. The engines are the formats' own:

* :class:`MappedStateSource`: anything that reopens as a flat dict of
  tensors, memory-mapped (``torch.load(mmap=True)``, built by
  :mod:`torch_liberator.checkpoint`) or already in memory;
* :class:`RenamedSource`: another source with some keys renamed.

Every source has what a load plan asks of one
(:class:`torch_liberator.tensorsource.TensorSource`: ``specs``,
``problems``, ``read(keys)``) plus :meth:`LazySource.read_tensors`, which
streams tensors, or only the blocks of them a shove keeps.

:mod:`torch_liberator.safesources` adds ``.safetensors`` files and sharded
safetensors checkpoints, :mod:`torch_liberator.dcp` the
torch.distributed.checkpoint directory.

Memory: tensors are read in batches (of at most :data:`READ_BATCH_BYTES`
unless the caller asks for another bound, see :func:`read_batch_bytes`; one
tensor if it is larger), and the file is reopened for each batch, so the
pages of the file a batch touched are released before the next batch is
read. The peak memory of reading a whole checkpoint through a source stays
near one batch, not the size of the checkpoint. Reopening is not free: a
:func:`torch.save` file is unpickled again on every reopen, which is why a
load sizes its batches from the model (:func:`read_batch_bytes`) rather
than reopening every 64 MiB.

Example:
    >>> import torch
    >>> from torch_liberator.sources import MappedStateSource
    >>> source = MappedStateSource(lambda: {'fc.weight': torch.arange(6.).reshape(3, 2)})
    >>> source.specs['fc.weight']
    TensorSpec(shape=(3, 2), dtype=torch.float32)
    >>> dict(source.read_tensors({'fc.weight': (slice(0, 2), slice(0, 1))}))['fc.weight'].tolist()
    [[0.0], [2.0]]
"""
import os
import re
from typing import Callable, Dict, Iterable, Iterator, Mapping, Optional, Tuple

import torch

from torch_liberator.errors import CheckpointFormatError
from torch_liberator.preflight import check_source
from torch_liberator.shapes import TensorSpec

__all__ = [
    'LazySource',
    'MappedStateSource',
    'READ_BATCH_BYTES',
    'READ_BATCH_FRACTION',
    'RenamedSource',
    'block_of',
    'check_unchanged',
    'describe_error',
    'file_identity',
    'open_bounded',
    'preview_items',
    'read_batch_bytes',
]

#: Read at most this many bytes of tensor data per batch (one tensor at
#: least) unless the caller gives another bound: the memory a lazy read adds.
READ_BATCH_BYTES = 64 * 2 ** 20

#: A load into a model reads batches of up to this fraction of the model's
#: size when that is more than :data:`READ_BATCH_BYTES`
#: (:func:`read_batch_bytes`): memory then grows by at most ~0.08x of the
#: model, and a file is reopened about 12 times whatever its size, where a
#: fixed bound would reopen it (and unpickle every record again) once per
#: 64 MiB: a cost that grows with the square of the checkpoint's size.
READ_BATCH_FRACTION = 1 / 12

Block = Optional[Tuple[slice, ...]]


def block_of(src_shape, dst_shape) -> Tuple[slice, ...]:
    """
    The leading block of ``src_shape`` that a corner copy into ``dst_shape``
    keeps (both of one rank): what to read of a source tensor that is shoved.

    Example:
        >>> from torch_liberator.sources import block_of
        >>> block_of((1000, 512), (10, 512))
        (slice(0, 10, None), slice(0, 512, None))
    """
    return tuple(slice(0, min(int(s), int(d)))
                 for s, d in zip(src_shape, dst_shape))


def read_batch_bytes(model_bytes: int) -> int:
    """
    The batch bound of a load into a model of ``model_bytes`` bytes: the
    larger of :data:`READ_BATCH_BYTES` and :data:`READ_BATCH_FRACTION` of
    the model.

    Example:
        >>> from torch_liberator.sources import read_batch_bytes
        >>> read_batch_bytes(2 ** 20) // 2 ** 20, read_batch_bytes(12 * 2 ** 30) // 2 ** 20
        (64, 1024)
    """
    return max(READ_BATCH_BYTES, int(model_bytes * READ_BATCH_FRACTION))


class LazySource:
    """
    Base class: a checkpoint whose keys and specs are known before any
    tensor is read. Subclasses fill :attr:`specs` (and :attr:`problems`)
    and define ``_read_batch``.

    Attributes:
        specs (Dict[str, TensorSpec]): every tensor of the checkpoint, in the
            order the checkpoint stores them.
        problems (Dict[str, str]): keys whose tensors cannot be loaded, with
            the reason (the plan skips them).
        fpath (str | None): the file or folder read.

    Example:
        >>> import torch
        >>> from torch_liberator.sources import MappedStateSource
        >>> source = MappedStateSource(lambda: {'w': torch.ones(3)})
        >>> source.nbytes({'w': None}), source.nbytes({'w': (slice(0, 1),)})
        (12, 4)
        >>> source.read(['w'])['w'].tolist()
        [1.0, 1.0, 1.0]
    """

    fpath = None

    def __init__(self):
        self.specs: Dict[str, TensorSpec] = {}
        self.problems: Dict[str, str] = {}

    def read(self, keys: Iterable[str]) -> Dict[str, torch.Tensor]:
        """
        ``{key: tensor}`` for ``keys``, all at once (see
        :meth:`read_tensors` to stream them in bounded memory).
        """
        return dict(self.read_tensors(dict.fromkeys(keys)))

    def __repr__(self):
        where = '' if self.fpath is None else repr(self.fpath) + ', '
        return f'{type(self).__name__}({where}{len(self.specs)} tensors)'

    def nbytes(self, requests: Mapping[str, Block]) -> int:
        """Bytes of tensor data that reading ``requests`` moves."""
        return sum(self._request_bytes(key, block)
                   for key, block in requests.items())

    def _request_bytes(self, key, block):
        spec = self.specs[key]
        shape = spec.shape if block is None else [
            len(range(*part.indices(size)))
            for part, size in zip(block, spec.shape)]
        count = 1
        for size in shape:
            count *= size
        itemsize = getattr(spec.dtype, 'itemsize', 4)
        return count * itemsize

    def read_tensors(self, requests: Mapping[str, Block],
                     batch_bytes: Optional[int] = None,
                     ) -> Iterator[Tuple[str, torch.Tensor]]:
        """
        Read the requested tensors, a batch at a time.

        Args:
            requests (Mapping[str, Tuple[slice, ...] | None]): key -> the
                block to read (a tuple of slices, one per dimension, see
                :func:`block_of`) or None for the whole tensor.
            batch_bytes (int | None): read at most this many bytes per batch
                (one tensor at least); None: :data:`READ_BATCH_BYTES`.

        Yields:
            Tuple[str, torch.Tensor]: key and CPU tensor, in the source's
            order. A tensor may be a view of a file mapping that is released
            when the next batch is read: copy it before asking for the next
            one, and do not keep it.

        Raises:
            KeyError: a requested key is not in :attr:`specs`.
            CheckpointFormatError: the file changed or broke since it was
                opened.

        Example:
            >>> import torch
            >>> from torch_liberator.sources import MappedStateSource
            >>> source = MappedStateSource(lambda: {'a': torch.zeros(2), 'b': torch.ones(2)})
            >>> [key for key, _ in source.read_tensors({'b': None})]
            ['b']
        """
        missing = [key for key in requests if key not in self.specs]
        if missing:
            raise KeyError(f'not in {self!r}: {missing[:5]}')
        if batch_bytes is None:
            batch_bytes = READ_BATCH_BYTES
        batch, size = [], 0
        for key in self.specs:
            if key not in requests:
                continue
            nbytes = self._request_bytes(key, requests[key])
            if batch and size + nbytes > batch_bytes:
                yield from self._read_batch(batch)
                batch, size = [], 0
            batch.append((key, requests[key]))
            size += nbytes
        if batch:
            yield from self._read_batch(batch)

    def _read_batch(self, batch):  # pragma: no cover - abstract
        raise NotImplementedError


class MappedStateSource(LazySource):
    """
    A checkpoint that reopens as a flat dict of tensors, such as a file
    written by :func:`torch.save` read with ``torch.load(mmap=True)``:
    opening it reads the pickle (names, shapes, dtypes) but no tensor data;
    a batch reads only the pages of its tensors, and the mapping is dropped
    after each batch. ``lambda: state`` makes a source of a dict already in
    memory.

    Args:
        open_state (Callable[[], Dict[str, torch.Tensor]]): returns the flat
            state dict, anew on each call.
        fpath (str | None): the file, for messages.

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.sources import MappedStateSource
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = os.path.join(tmp.name, 'm.pt')
        >>> torch.save({'w': torch.arange(4.)}, fpath)
        >>> source = MappedStateSource(lambda: torch.load(fpath, mmap=True, weights_only=True), fpath)
        >>> dict(source.read_tensors({'w': (slice(1, 3),)}))['w'].tolist()
        [1.0, 2.0]
        >>> tmp.cleanup()
    """

    def __init__(self, open_state: Callable[[], Dict[str, torch.Tensor]],
                 fpath: Optional[str] = None):
        super().__init__()
        self.fpath = fpath
        self._open_state = open_state
        state = open_state()
        self.specs = {key: TensorSpec.of(value) for key, value in state.items()}
        self.problems = {key: check_source(value)
                         for key, value in state.items()
                         if check_source(value)}

    def _read_batch(self, batch):
        state = self._open_state()
        for key, block in batch:
            spec = self.specs[key]
            tensor = state.get(key)
            if tensor is None or TensorSpec.of(tensor) != spec:
                raise CheckpointFormatError(
                    f'{self.fpath!r} changed while it was being read: '
                    f'{key!r} is no longer a {spec}; load again')
            yield key, tensor if block is None else tensor[block]
        del state  # unmaps the file before the next batch is read


class RenamedSource(LazySource):
    """
    A view of another source with some of its keys under new names (and
    the others left out).

    Args:
        source (LazySource): the source read.
        names (Mapping[str, str]): new key -> key in ``source``, in the
            order the view lists them.

    Example:
        >>> import torch
        >>> from torch_liberator.sources import MappedStateSource, RenamedSource
        >>> inner = MappedStateSource(lambda: {'ema.w': torch.ones(1), 'w': torch.zeros(1)})
        >>> view = RenamedSource(inner, {'w': 'ema.w'})
        >>> dict(view.read_tensors({'w': None}))['w'].tolist()
        [1.0]
    """

    def __init__(self, source: LazySource, names: Mapping[str, str]):
        super().__init__()
        self.source = source
        self.fpath = source.fpath
        self.names = dict(names)
        self.specs = {new: source.specs[old] for new, old in self.names.items()}

    def _read_batch(self, batch):
        back = {self.names[key]: key for key, _ in batch}
        requests = {self.names[key]: block for key, block in batch}
        # the batch is already bounded: read it as one
        whole = self.source.nbytes(requests)
        for old, tensor in self.source.read_tensors(requests, whole):
            yield back[old], tensor


# --- helpers shared with the other readers ---------------------------------------

def describe_error(err: BaseException) -> str:
    """
    ``'Type: first line of the message'``, short, without ANSI codes.

    Example:
        >>> from torch_liberator.sources import describe_error
        >>> describe_error(ValueError('bad\\nmore'))
        'ValueError: bad'
    """
    lines = re.sub(r'\x1b\[[0-9;]*m', '', str(err)).strip().splitlines()
    text = lines[0] if lines else ''
    if len(text) > 200:
        text = text[:200] + '...'
    name = type(err).__name__
    return f'{name}: {text}' if text else name


def preview_items(items, limit: int = 10) -> str:
    """
    A short list of strings for a message: the first ``limit`` and how many
    more.

    Example:
        >>> from torch_liberator.sources import preview_items
        >>> preview_items(['a', 'b', 'c'], limit=2)
        '[a, b, ... (1 more)]'
    """
    items = list(items)
    text = ', '.join(items[:limit])
    if len(items) > limit:
        text += f', ... ({len(items) - limit} more)'
    return f'[{text}]'


def file_identity(fpath) -> Tuple[int, int, int, int]:
    """
    What tells a file from another saved at the same path: its device,
    inode, size and modification time (ns). A lazy source takes it before
    reading the header and compares it each time it reopens the file
    (:func:`check_unchanged`), so that one load never mixes two saves.

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.sources import file_identity
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     fpath = os.path.join(dpath, 'a.bin')
        ...     with open(fpath, 'wb') as file:
        ...         _ = file.write(b'12')
        ...     first = file_identity(fpath)
        ...     with open(fpath + '.new', 'wb') as file:
        ...         _ = file.write(b'12')
        ...     os.replace(fpath + '.new', fpath)  # an atomic save
        ...     first == file_identity(fpath), first[2]
        (False, 2)
    """
    stat = os.stat(fpath)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def check_unchanged(fpath, identity: Tuple[int, int, int, int]) -> None:
    """
    Raise if the file at ``fpath`` is no longer the one whose
    :func:`file_identity` is ``identity`` (replaced, rewritten or removed
    since its header was read).

    Raises:
        CheckpointFormatError: it changed.

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.sources import check_unchanged, file_identity
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     fpath = os.path.join(dpath, 'a.bin')
        ...     open(fpath, 'wb').close()
        ...     identity = file_identity(fpath)
        ...     check_unchanged(fpath, identity)
        ...     os.remove(fpath)
        ...     check_unchanged(fpath, identity)
        Traceback (most recent call last):
        ...
        torch_liberator.errors.CheckpointFormatError: ...a.bin' changed while it was being read (it was removed, replaced or rewritten since its header was read); one load must not mix two saves: load again once the file is written
    """
    try:
        now = file_identity(fpath)
    except OSError:
        now = None
    if now != tuple(identity):
        raise CheckpointFormatError(
            f'{os.fspath(fpath)!r} changed while it was being read (it was '
            'removed, replaced or rewritten since its header was read); one '
            'load must not mix two saves: load again once the file is '
            'written')


def open_bounded(fpath, limit: int, what: str):
    """
    Open a small file that a checkpoint names (an index, metadata) for
    reading in binary, refusing one larger than ``limit`` bytes: its size is
    taken from the open handle, so it is the file that is read.

    Raises:
        CheckpointFormatError: the file is larger than ``limit``.
        OSError: it cannot be opened.

    Example:
        >>> import tempfile
        >>> from torch_liberator.sources import open_bounded
        >>> with tempfile.NamedTemporaryFile() as tmp:
        ...     _ = tmp.write(b'{}' * 10); tmp.flush()
        ...     with open_bounded(tmp.name, 100, 'index') as file:
        ...         print(file.read())
        ...     open_bounded(tmp.name, 8, 'index')
        b'{}{}{}{}{}{}{}{}{}{}'
        Traceback (most recent call last):
        ...
        torch_liberator.errors.CheckpointFormatError: ...is 20 bytes, over the 8 that any index fits in; it is not one
    """
    file = open(fpath, 'rb')
    size = os.fstat(file.fileno()).st_size
    if size > limit:
        file.close()
        raise CheckpointFormatError(
            f'{os.fspath(fpath)!r} is {size} bytes, over the {limit} that any '
            f'{what} fits in; it is not one')
    return file
