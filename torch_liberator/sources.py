"""
Checkpoints read lazily: keys and specs first, tensor data only on request.

A :class:`LazySource` knows every key of a checkpoint and its
:class:`~torch_liberator.shapes.TensorSpec` (shape and dtype) from the file's
header alone, and reads tensors only when asked, a batch at a time, so a
caller can plan a whole load from the specs and then read only the tensors
(or the slices of them) it will use. The engines are the formats' own:

* :class:`SafetensorsSource`: one ``.safetensors`` file, read with
  :func:`safetensors.safe_open` (``get_slice`` reads only the slice asked for);
* :class:`ShardedSafetensorsSource`: a sharded checkpoint, a
  ``*.safetensors.index.json`` whose ``weight_map`` names the shard of every
  key (the layout Hugging Face writes); the shards must exist and their
  headers must agree with the index, checked before any tensor is read;
* :class:`MappedStateSource`: anything that reopens as a flat dict of
  tensors, memory-mapped (``torch.load(mmap=True)``, built by
  :mod:`torch_liberator.checkpoint`) or already in memory.

Every source has what a load plan asks of one
(:class:`torch_liberator.tensorsource.TensorSource`: ``specs``,
``problems``, ``read(keys)``) plus :meth:`LazySource.read_tensors`, which
streams tensors, or only the blocks of them a shove keeps.

:mod:`torch_liberator.dcp` adds the torch.distributed.checkpoint directory.

Memory: tensors are read in batches of at most :data:`READ_BATCH_BYTES`
(or one tensor, if larger), and the file is reopened for each batch, so the
pages of the file a batch touched are released before the next batch is
read. The peak memory of reading a whole checkpoint through a source stays
near one batch, not the size of the checkpoint.

Example:
    >>> import os, tempfile, torch
    >>> from safetensors.torch import save_file
    >>> from torch_liberator.sources import SafetensorsSource
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = os.path.join(tmp.name, 'model.safetensors')
    >>> save_file({'fc.weight': torch.arange(6.).reshape(3, 2)}, fpath)
    >>> source = SafetensorsSource(fpath)
    >>> source.specs['fc.weight']
    TensorSpec(shape=(3, 2), dtype=torch.float32)
    >>> dict(source.read_tensors({'fc.weight': (slice(0, 2), slice(0, 1))}))['fc.weight'].tolist()
    [[0.0], [2.0]]
    >>> tmp.cleanup()
"""
import json
import os
import re
from typing import Callable, Dict, Iterable, Iterator, Mapping, Optional, Tuple

import torch

from torch_liberator.errors import CheckpointFormatError, CheckpointNotFoundError
from torch_liberator.preflight import check_source
from torch_liberator.shapes import TensorSpec

__all__ = [
    'INDEX_SUFFIX',
    'LazySource',
    'MappedStateSource',
    'READ_BATCH_BYTES',
    'RenamedSource',
    'SafetensorsSource',
    'ShardedSafetensorsSource',
    'block_of',
    'describe_error',
    'find_index',
    'preview_items',
    'read_safetensors_specs',
]

#: Read at most this many bytes of tensor data per batch (one tensor at
#: least): the bound on the memory a lazy read adds on top of the model.
READ_BATCH_BYTES = 64 * 2 ** 20

#: How the index file of a sharded safetensors checkpoint is named.
INDEX_SUFFIX = '.safetensors.index.json'

# An index file larger than this is not an index (a 100k-key index is ~5 MiB).
_MAX_INDEX_BYTES = 256 * 2 ** 20

# safetensors header dtype codes -> torch dtypes; codes torch lacks stay names
_SAFETENSORS_DTYPES = {
    name: getattr(torch, attr) for name, attr in (
        ('F64', 'float64'), ('F32', 'float32'), ('F16', 'float16'),
        ('BF16', 'bfloat16'), ('I64', 'int64'), ('I32', 'int32'),
        ('I16', 'int16'), ('I8', 'int8'), ('U8', 'uint8'), ('U16', 'uint16'),
        ('U32', 'uint32'), ('U64', 'uint64'), ('BOOL', 'bool'),
        ('F8_E4M3', 'float8_e4m3fn'), ('F8_E5M2', 'float8_e5m2'),
        ('C64', 'complex64'))
    if hasattr(torch, attr)}

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

    def read_tensors(self, requests: Mapping[str, Block]
                     ) -> Iterator[Tuple[str, torch.Tensor]]:
        """
        Read the requested tensors, a batch at a time.

        Args:
            requests (Mapping[str, Tuple[slice, ...] | None]): key -> the
                block to read (a tuple of slices, one per dimension, see
                :func:`block_of`) or None for the whole tensor.

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
        batch, size = [], 0
        for key in self.specs:
            if key not in requests:
                continue
            nbytes = self._request_bytes(key, requests[key])
            if batch and size + nbytes > READ_BATCH_BYTES:
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


class SafetensorsSource(LazySource):
    """
    One ``.safetensors`` file: specs from its header, tensors (or slices of
    them) read with :func:`safetensors.safe_open`.

    Args:
        fpath (str | PathLike): the file.

    Raises:
        CheckpointFormatError: the header is corrupt or truncated.

    Example:
        >>> import os, tempfile, torch
        >>> from safetensors.torch import save_file
        >>> from torch_liberator.sources import SafetensorsSource
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = os.path.join(tmp.name, 'a.safetensors')
        >>> save_file({'b': torch.zeros(2), 'a': torch.ones(1, dtype=torch.int8)}, fpath)
        >>> SafetensorsSource(fpath).specs
        {'b': TensorSpec(shape=(2,), dtype=torch.float32), 'a': TensorSpec(shape=(1,), dtype=torch.int8)}
        >>> tmp.cleanup()
    """

    def __init__(self, fpath):
        super().__init__()
        self.fpath = os.fspath(fpath)
        self.specs = read_safetensors_specs(self.fpath)

    def _read_batch(self, batch):
        yield from _read_safetensors_batch(self.fpath, batch)


class ShardedSafetensorsSource(LazySource):
    """
    A sharded safetensors checkpoint: an index file
    (``model.safetensors.index.json``, its ``weight_map`` naming the shard
    of every key) or the folder that holds exactly one index.

    Opening it checks, before any tensor is read, that every shard the
    index names is a file inside the index's folder, and that the shards'
    headers hold exactly the keys the index assigns to them.

    Args:
        fpath (str | PathLike): the index file or its folder.

    Raises:
        CheckpointNotFoundError: a folder without an index, or a shard the
            index names is missing.
        CheckpointFormatError: the index is not valid JSON of the expected
            form, a shard path leaves the folder, or a shard's header
            disagrees with the index.

    Example:
        >>> import json, os, tempfile, torch
        >>> from safetensors.torch import save_file
        >>> from torch_liberator.sources import ShardedSafetensorsSource
        >>> tmp = tempfile.TemporaryDirectory()
        >>> save_file({'a.weight': torch.ones(2)}, os.path.join(tmp.name, 'model-00001-of-00002.safetensors'))
        >>> save_file({'b.weight': torch.zeros(3)}, os.path.join(tmp.name, 'model-00002-of-00002.safetensors'))
        >>> index = {'metadata': {}, 'weight_map': {
        ...     'a.weight': 'model-00001-of-00002.safetensors',
        ...     'b.weight': 'model-00002-of-00002.safetensors'}}
        >>> with open(os.path.join(tmp.name, 'model.safetensors.index.json'), 'w') as file:
        ...     json.dump(index, file)
        >>> source = ShardedSafetensorsSource(tmp.name)
        >>> {key: spec.shape for key, spec in source.specs.items()}
        {'a.weight': (2,), 'b.weight': (3,)}
        >>> dict(source.read_tensors({'b.weight': None}))['b.weight'].tolist()
        [0.0, 0.0, 0.0]
        >>> tmp.cleanup()
    """

    def __init__(self, fpath):
        super().__init__()
        path = os.fspath(fpath)
        if os.path.isdir(path):
            path = find_index(path)
        self.fpath = path
        self.shards = _read_index(path)  # {shard path: [keys]}, index order
        self.shard_of = {}
        for shard, keys in self.shards.items():
            specs = read_safetensors_specs(shard)
            expected = set(keys)
            extra = [key for key in specs if key not in expected]
            missing = [key for key in keys if key not in specs]
            if extra or missing:
                raise CheckpointFormatError(
                    f'shard {shard!r} disagrees with the index {path!r}: '
                    f'the index assigns it {len(keys)} tensors, '
                    f'{len(missing)} of them are not in its header '
                    f'{preview_items(map(repr, missing), 5)} and it holds {len(extra)} tensors '
                    f'the index does not assign to it {preview_items(map(repr, extra), 5)}; the '
                    'index and the shards come from different saves: '
                    'download or save the checkpoint again')
            for key, spec in specs.items():
                self.specs[key] = spec
                self.shard_of[key] = shard

    def _read_batch(self, batch):
        by_shard = {}
        for key, block in batch:
            by_shard.setdefault(self.shard_of[key], []).append((key, block))
        for shard, items in by_shard.items():
            yield from _read_safetensors_batch(shard, items)


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
        for old, tensor in self.source.read_tensors(requests):
            yield back[old], tensor


# --- safetensors --------------------------------------------------------------

def read_safetensors_specs(fpath: str) -> Dict[str, TensorSpec]:
    """
    The specs of a ``.safetensors`` file's tensors, in file order, from its
    header alone.

    Raises:
        CheckpointFormatError: the header is corrupt or truncated.

    Example:
        >>> import os, tempfile, torch
        >>> from safetensors.torch import save_file
        >>> from torch_liberator.sources import read_safetensors_specs
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = os.path.join(tmp.name, 'a.safetensors')
        >>> save_file({'w': torch.zeros(2, 3, dtype=torch.bfloat16)}, fpath)
        >>> read_safetensors_specs(fpath)
        {'w': TensorSpec(shape=(2, 3), dtype=torch.bfloat16)}
        >>> tmp.cleanup()
    """
    from safetensors import safe_open
    try:
        with safe_open(fpath, framework='pt') as file:
            keys = (file.offset_keys() if hasattr(file, 'offset_keys')
                    else file.keys())
            specs = {}
            for key in keys:
                part = file.get_slice(key)
                code = part.get_dtype()
                specs[key] = TensorSpec(
                    tuple(int(size) for size in part.get_shape()),
                    _SAFETENSORS_DTYPES.get(code, code))
    except Exception as err:
        raise CheckpointFormatError(
            f'cannot read the header of safetensors file {fpath!r} '
            f'({describe_error(err)}); it is corrupt or truncated, save it '
            'again') from err
    return specs


def _read_safetensors_batch(fpath, batch):
    from safetensors import safe_open
    try:
        with safe_open(fpath, framework='pt') as file:
            for key, block in batch:
                if block is None:
                    tensor = file.get_tensor(key)
                else:
                    tensor = file.get_slice(key)[block]
                yield key, tensor
    except CheckpointFormatError:
        raise
    except Exception as err:
        raise CheckpointFormatError(
            f'cannot read tensors from safetensors file {fpath!r} '
            f'({describe_error(err)}); it changed or broke since it was '
            'opened: save it again') from err


# --- sharded index ---------------------------------------------------------------

def find_index(dpath: str) -> str:
    """
    The one ``*.safetensors.index.json`` in a folder.

    Raises:
        CheckpointNotFoundError: none, or several.

    Example:
        >>> import os, tempfile
        >>> from torch_liberator.sources import find_index
        >>> tmp = tempfile.TemporaryDirectory()
        >>> open(os.path.join(tmp.name, 'model.safetensors.index.json'), 'w').close()
        >>> os.path.basename(find_index(tmp.name))
        'model.safetensors.index.json'
        >>> tmp.cleanup()
    """
    names = sorted(name for name in os.listdir(dpath)
                   if name.endswith(INDEX_SUFFIX))
    if len(names) != 1:
        found = 'no' if not names else f'{len(names)} ({", ".join(names)})'
        raise CheckpointNotFoundError(
            f'folder {dpath!r} holds {found} sharded safetensors index '
            f'files (*{INDEX_SUFFIX}); pass the index file itself')
    return os.path.join(dpath, names[0])


def _read_index(path):
    """``{shard path: [keys]}`` of an index file, checked; shards in the
    order they first appear, keys in index order."""
    try:
        size = os.path.getsize(path)
        if size > _MAX_INDEX_BYTES:
            raise CheckpointFormatError(
                f'sharded index {path!r} is {size} bytes, more than any '
                f'index ({_MAX_INDEX_BYTES}); it is not an index file')
        with open(path, 'rb') as file:
            index = json.loads(file.read())
    except CheckpointFormatError:
        raise
    except (OSError, ValueError) as err:
        raise CheckpointFormatError(
            f'cannot read sharded index {path!r} ({describe_error(err)}); '
            'it must be the JSON file written with the shards, download or '
            'save it again') from err
    weight_map = index.get('weight_map') if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in weight_map.items()):
        raise CheckpointFormatError(
            f'sharded index {path!r} has no "weight_map" mapping tensor '
            'names to shard file names; it is not a safetensors index')
    folder = os.path.dirname(os.path.abspath(path))
    shards = {}
    for key, name in weight_map.items():
        shard = os.path.normpath(os.path.join(folder, name))
        if (os.path.isabs(name) or os.path.dirname(shard) != folder
                or not name.endswith('.safetensors')):
            raise CheckpointFormatError(
                f'sharded index {path!r} names the shard {name!r} for '
                f'{key!r}: shards must be .safetensors files in the index\'s '
                'own folder; the index is corrupt or hostile')
        shards.setdefault(shard, []).append(key)
    missing = [shard for shard in shards if not os.path.isfile(shard)]
    if missing:
        raise CheckpointNotFoundError(
            f'sharded index {path!r} names {len(missing)} shard files that '
            f'do not exist: {preview_items((repr(os.path.basename(m)) for m in missing), 5)}; '
            'download or copy every shard next to the index')
    return shards


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
