"""
``.safetensors`` files and sharded safetensors checkpoints as lazy sources.

* :class:`SafetensorsSource`: one ``.safetensors`` file: specs from its
  header, tensors read with :func:`safetensors.safe_open` (``get_slice``
  reads only the block asked for);
* :class:`ShardedSafetensorsSource`: a sharded checkpoint, a
  ``*.safetensors.index.json`` whose ``weight_map`` names the shard of every
  key (the layout Hugging Face writes); the shards must exist in the index's
  folder and their headers must hold exactly the keys the index assigns to
  them, checked before any tensor is read.

Both read in bounded batches (:class:`torch_liberator.sources.LazySource`),
opening the file anew for each batch.

Example:
    >>> import os, tempfile, torch
    >>> from safetensors.torch import save_file
    >>> from torch_liberator.safesources import SafetensorsSource
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
from typing import Dict

import torch

from torch_liberator.errors import CheckpointFormatError, CheckpointNotFoundError
from torch_liberator.shapes import TensorSpec
from torch_liberator.sources import (
    LazySource, check_unchanged, describe_error, file_identity, open_bounded,
    preview_items)

__all__ = [
    'INDEX_SUFFIX',
    'SafetensorsSource',
    'ShardedSafetensorsSource',
    'find_index',
    'read_safetensors_specs',
]

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


class SafetensorsSource(LazySource):
    """
    One ``.safetensors`` file: specs from its header, tensors (or slices of
    them) read with :func:`safetensors.safe_open`.

    Args:
        fpath (str | PathLike): the file.

    Raises:
        CheckpointNotFoundError: there is no such file.
        CheckpointFormatError: the header is corrupt or truncated.

    Example:
        >>> import os, tempfile, torch
        >>> from safetensors.torch import save_file
        >>> from torch_liberator.safesources import SafetensorsSource
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
        if not os.path.isfile(self.fpath):
            raise CheckpointNotFoundError(
                f'safetensors file {self.fpath!r} does not exist; check the '
                'path')
        self.identity = file_identity(self.fpath)
        self.specs = read_safetensors_specs(self.fpath)

    def _read_batch(self, batch):
        yield from _read_safetensors_batch(self.fpath, batch, self.identity)


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
        >>> from torch_liberator.safesources import ShardedSafetensorsSource
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
        self.identities = {}
        for shard, keys in self.shards.items():
            self.identities[shard] = file_identity(shard)
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
            yield from _read_safetensors_batch(shard, items,
                                               self.identities[shard])


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
        >>> from torch_liberator.safesources import read_safetensors_specs
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


def _read_safetensors_batch(fpath, batch, identity):
    from safetensors import safe_open
    try:
        with safe_open(fpath, framework='pt') as file:
            check_unchanged(fpath, identity)  # the file opened is the first
            for key, block in batch:
                if block is None:
                    tensor = file.get_tensor(key)
                else:
                    tensor = file.get_slice(key)[block]
                yield key, tensor
    except CheckpointFormatError:
        raise
    except Exception as err:
        check_unchanged(fpath, identity)  # a replaced file explains it
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
        >>> from torch_liberator.safesources import find_index
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
        with open_bounded(path, _MAX_INDEX_BYTES, 'sharded index') as file:
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
