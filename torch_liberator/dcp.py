"""
torch.distributed.checkpoint (DCP) directories as sources, and loading into
models sharded with FSDP2 (``fully_shard``) or holding DTensors.

A DCP checkpoint is a directory: a ``.metadata`` file (every tensor's name,
global shape, dtype and where its chunks are stored) and ``*.distcp`` data
files. :class:`DcpSource` reads the metadata alone
(``FileSystemReader(path).read_metadata()``), so the association and the plan
need no tensor data. Tensors are then read through DCP itself:

* :func:`load_renamed` hands DCP a state dict keyed by *checkpoint* names
  whose values are the *model's* tensors. DCP's own load planner then reads,
  on every rank, only the chunks that overlap that rank's shard of each
  destination (a DTensor's local shard, or the whole of a plain tensor): a
  renamed, partial load that is still shard-wise.
* :meth:`DcpSource.read_tensors` reads whole source tensors into plain CPU
  tensors (each rank by itself), for pairs whose shapes differ, which are
  then fitted by :func:`write_tensor`.

:func:`write_tensor` is the one place that writes a plain tensor into a
destination that may be a DTensor: the new value of the whole destination
is built on every rank, and each rank keeps its own shard.

Example:
    >>> import os, tempfile, warnings, torch
    >>> import torch.distributed.checkpoint as dcp
    >>> from torch_liberator.dcp import DcpSource, load_renamed
    >>> tmp = tempfile.TemporaryDirectory()
    >>> src = torch.nn.Linear(2, 3)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter('ignore')  # "assuming a single process"
    ...     dcp.save(src.state_dict(), checkpoint_id=tmp.name)
    >>> source = DcpSource(tmp.name)
    >>> source.specs['weight']
    TensorSpec(shape=(3, 2), dtype=torch.float32)
    >>> dst = torch.nn.Sequential(torch.nn.Linear(2, 3))
    >>> load_renamed(source, {'weight': dst[0].weight})
    >>> assert torch.equal(dst[0].weight, src.weight)
    >>> tmp.cleanup()
"""
import os
import pickle
import warnings
from typing import Mapping

import torch

from torch_liberator.errors import (
    CheckpointFormatError, CheckpointNotFoundError, UnsafeCheckpointError)
from torch_liberator.shapes import TensorSpec
from torch_liberator.sources import (
    LazySource, describe_error, open_bounded, preview_items)

__all__ = [
    'DCP_METADATA',
    'DcpSource',
    'is_dcp_dir',
    'is_distributed_tensor',
    'load_renamed',
    'read_dcp_metadata',
    'write_tensor',
]

#: The file that makes a directory a DCP checkpoint.
DCP_METADATA = '.metadata'

# ``.metadata`` is a pickle. It is unpickled with only the classes DCP
# metadata is made of (Python's "restricting globals"), so that a hostile
# file cannot run code: module -> allowed names (None: any name).
_METADATA_GLOBALS = {
    'torch.distributed.checkpoint.metadata': None,
    'torch.distributed.checkpoint.filesystem': {'_StorageInfo'},
    'torch.serialization': {'_get_layout'},
    'pathlib': {'Path', 'PosixPath', 'WindowsPath', 'PurePosixPath',
                'PureWindowsPath'},
    'collections': {'OrderedDict'},
    'builtins': {'set', 'frozenset', 'slice'},
}

# A metadata file larger than this is not DCP metadata.
_MAX_METADATA_BYTES = 2 ** 30


def is_dcp_dir(dpath) -> bool:
    """
    True if ``dpath`` is a folder that looks like a DCP checkpoint: it holds
    a ``.metadata`` file or ``*.distcp`` data files.

    Example:
        >>> import tempfile
        >>> from torch_liberator.dcp import is_dcp_dir
        >>> is_dcp_dir(tempfile.mkdtemp())
        False
    """
    if not os.path.isdir(dpath):
        return False
    return any(name == DCP_METADATA or name.endswith('.distcp')
               for name in os.listdir(dpath))


def is_distributed_tensor(tensor) -> bool:
    """
    True for a :class:`torch.distributed.tensor.DTensor` (what FSDP2's
    ``fully_shard`` turns parameters into).

    Example:
        >>> import torch
        >>> from torch_liberator.dcp import is_distributed_tensor
        >>> is_distributed_tensor(torch.zeros(1))
        False
    """
    if type(tensor) in _PLAIN or not torch.distributed.is_available():
        return False  # (a parameter of a DTensor has the DTensor's type)
    from torch.distributed.tensor import DTensor
    return isinstance(tensor, DTensor)


#: the tensor types that are never a DTensor
_PLAIN = (torch.Tensor, torch.nn.Parameter)


class DcpSource(LazySource):
    """
    A torch.distributed.checkpoint directory, known from its metadata.

    Opening it reads ``.metadata`` only and checks that every data file the
    metadata refers to exists; non-tensor entries (DCP also stores bytes
    objects) are listed in :attr:`objects` and never loaded.

    Args:
        dpath (str | PathLike): the checkpoint directory.

    Attributes:
        objects (List[str]): keys of non-tensor entries.

    Raises:
        CheckpointFormatError: no ``.metadata`` file, or one that cannot be
            read.
        CheckpointNotFoundError: a data file the metadata names is missing.

    Example:
        >>> import tempfile
        >>> from torch_liberator.dcp import DcpSource
        >>> try:
        ...     DcpSource(tempfile.mkdtemp())
        ... except ValueError as err:
        ...     print(str(err)[-58:])
        save it again with torch.distributed.checkpoint.save(...)
    """

    def __init__(self, dpath):
        super().__init__()
        from torch.distributed.checkpoint.metadata import TensorStorageMetadata
        self.fpath = os.fspath(dpath)
        metadata = self._read_metadata()
        self.objects = []
        for key, item in metadata.state_dict_metadata.items():
            if isinstance(item, TensorStorageMetadata):
                self.specs[key] = TensorSpec(
                    tuple(int(size) for size in item.size),
                    item.properties.dtype)
            else:
                self.objects.append(key)
        names = {info.relative_path
                 for info in (metadata.storage_data or {}).values()}
        outside = sorted(str(name) for name in names
                         if os.path.basename(str(name)) != str(name)
                         or str(name) in ('', '.', '..'))
        if outside:
            raise CheckpointFormatError(
                f'DCP checkpoint {self.fpath!r} has metadata that names data '
                f'files outside its directory {preview_items(map(repr, outside), 5)};'
                ' the metadata is corrupt or hostile: save the checkpoint again')
        missing = sorted(name for name in names
                         if not os.path.isfile(os.path.join(self.fpath, name)))
        if missing:
            raise CheckpointNotFoundError(
                f'DCP checkpoint {self.fpath!r} is incomplete: its metadata '
                f'refers to {len(missing)} data files that do not exist '
                f'{preview_items(map(repr, missing), 5)}; copy the whole '
                'directory written by every rank, or save it again')

    def _read_metadata(self):
        if not os.path.isfile(os.path.join(self.fpath, DCP_METADATA)):
            raise CheckpointFormatError(
                f'{self.fpath!r} has no {DCP_METADATA} file, so it is not a '
                'complete torch.distributed.checkpoint directory (the save '
                'did not finish, or only some ranks\' files were copied); '
                'save it again with torch.distributed.checkpoint.save(...)')
        return read_dcp_metadata(self.fpath)

    def _read_batch(self, batch):
        state = {key: torch.empty(self.specs[key].shape,
                                  dtype=self.specs[key].dtype)
                 for key, _ in batch}
        _dcp_load(self, state, no_dist=True)
        for key, block in batch:
            tensor = state.pop(key)
            yield key, tensor if block is None else tensor[block]


def read_dcp_metadata(dpath):
    """
    The :class:`torch.distributed.checkpoint.metadata.Metadata` of a DCP
    directory, unpickled with only the classes DCP metadata is made of, so
    that a hostile ``.metadata`` cannot run code.

    Raises:
        UnsafeCheckpointError: the file refers to anything else.
        CheckpointFormatError: the file is corrupt, too large, or not DCP
            metadata.

    Example:
        >>> import tempfile, warnings, torch
        >>> import torch.distributed.checkpoint as dcp
        >>> from torch_liberator.dcp import read_dcp_metadata
        >>> tmp = tempfile.TemporaryDirectory()
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter('ignore')
        ...     dcp.save({'w': torch.zeros(2)}, checkpoint_id=tmp.name)
        >>> read_dcp_metadata(tmp.name).state_dict_metadata['w'].size
        torch.Size([2])
        >>> tmp.cleanup()
    """
    from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
    fpath = os.path.join(os.fspath(dpath), DCP_METADATA)
    try:
        with open_bounded(fpath, _MAX_METADATA_BYTES, 'DCP metadata') as file:
            metadata = _MetadataUnpickler(file).load()
    except (CheckpointFormatError, UnsafeCheckpointError):
        raise
    except Exception as err:
        raise CheckpointFormatError(
            f'cannot read {DCP_METADATA} of DCP checkpoint {os.fspath(dpath)!r} '
            f'({describe_error(err)}); it is corrupt or was written by an '
            'incompatible torch: save it again') from err
    if not isinstance(metadata, Metadata):
        raise CheckpointFormatError(
            f'{fpath!r} holds a {type(metadata).__name__}, not DCP Metadata; '
            'save the checkpoint again with torch.distributed.checkpoint')
    if getattr(metadata, 'storage_meta', None) is None:
        metadata.storage_meta = StorageMeta()
    return metadata


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        allowed = _METADATA_GLOBALS.get(module, ())
        if module == 'torch' and (name == 'Size' or isinstance(
                getattr(torch, name, None), torch.dtype)):
            allowed = None
        if allowed is None or name in allowed:
            return super().find_class(module, name)
        raise UnsafeCheckpointError(
            f'DCP metadata refers to {module}.{name}, which DCP metadata is '
            'never made of; the file may be hostile (unpickling it could run '
            'code), so it is refused: save the checkpoint again with '
            'torch.distributed.checkpoint')


def _vetted_reader(dpath):
    """A :class:`FileSystemReader` that reads ``.metadata`` with
    :func:`read_dcp_metadata` (DCP itself would unpickle anything)."""
    from torch.distributed.checkpoint import FileSystemReader

    class VettedReader(FileSystemReader):
        def read_metadata(self, *args, **kwargs):
            metadata = read_dcp_metadata(dpath)
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return VettedReader(dpath)


def load_renamed(source: DcpSource, targets: Mapping[str, torch.Tensor]):
    """
    Load checkpoint tensors into destination tensors of the same global
    shape, under other names, through DCP.

    Collective when a default process group is initialized and a
    destination is a DTensor: then every rank must call it with the same
    keys, and each rank reads only the chunks that overlap its own shard of
    each destination.

    Args:
        source (DcpSource): the checkpoint.
        targets (Mapping[str, torch.Tensor]): checkpoint key -> the tensor to
            fill in place (a model parameter or buffer, a DTensor, or a plain
            tensor), of the same global shape as the checkpoint's.

    Raises:
        CheckpointFormatError: DCP failed to read the data (the message
            names the checkpoint).

    Example:
        >>> import os, tempfile, warnings, torch
        >>> import torch.distributed.checkpoint as dcp
        >>> from torch_liberator.dcp import DcpSource, load_renamed
        >>> tmp = tempfile.TemporaryDirectory()
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter('ignore')
        ...     dcp.save({'a': torch.arange(3.)}, checkpoint_id=tmp.name)
        >>> out = torch.zeros(3, dtype=torch.float64)
        >>> load_renamed(DcpSource(tmp.name), {'a': out})
        >>> out.tolist()
        [0.0, 1.0, 2.0]
        >>> tmp.cleanup()
    """
    state = {key: (value.detach() if isinstance(value, torch.nn.Parameter)
                   else value) for key, value in targets.items()}
    # collective only for sharded destinations: a plain model can be loaded
    # by one rank alone
    distributed = (torch.distributed.is_available()
                   and torch.distributed.is_initialized()
                   and any(is_distributed_tensor(v) for v in state.values()))
    _dcp_load(source, state, no_dist=not distributed)


def _dcp_load(source, state, no_dist):
    import torch.distributed.checkpoint as dcp
    with warnings.catch_warnings():
        # "torch.distributed is disabled ... assuming a single process":
        # that is what no_dist asks for
        warnings.filterwarnings('ignore', message='torch.distributed')
        try:
            with torch.no_grad():
                dcp.load(state,
                         storage_reader=_vetted_reader(source.fpath),
                         planner=dcp.DefaultLoadPlanner(
                             allow_partial_load=True),
                         no_dist=no_dist)
        except (Exception, dcp.CheckpointException) as err:
            # DCP's CheckpointException derives from BaseException
            raise CheckpointFormatError(
                f'cannot read tensors from DCP checkpoint {source.fpath!r} '
                f'({describe_error(err)}); its data files are corrupt or '
                'changed since its metadata was read: save it again') from err


def write_tensor(dst: torch.Tensor, fill, covers: bool = False) -> None:
    """
    Write into ``dst``, which may be a DTensor, with ``fill``: a function
    that modifies a plain tensor of ``dst``'s global shape in place.

    A plain ``dst`` is filled directly. For a DTensor, every rank builds the
    whole new value and keeps its own shard: it starts from the current
    value, gathered from all ranks (collective: all ranks must call it, in
    the same order), unless ``covers`` says that ``fill`` overwrites every
    element (then no communication is needed). Call it under
    :func:`torch.no_grad` when ``dst`` requires grad (a parameter):
    :func:`torch_liberator.transfer.transfer_plan` holds one over a whole
    load.

    Args:
        dst (torch.Tensor): the destination (a parameter, buffer or DTensor).
        fill (Callable[[torch.Tensor], object]): e.g.
            ``lambda full: shove_tensor(full, src)``.
        covers (bool): ``fill`` writes every element of the tensor.

    Example:
        >>> import torch
        >>> from torch_liberator.dcp import write_tensor
        >>> dst = torch.nn.Parameter(torch.zeros(3))
        >>> with torch.no_grad():
        ...     write_tensor(dst, lambda full: full[:2].fill_(1))
        >>> dst.tolist()
        [1.0, 1.0, 0.0]
    """
    if not is_distributed_tensor(dst):
        fill(dst)
        return
    from torch.distributed.tensor import distribute_tensor
    if covers:
        full = torch.empty(dst.shape, dtype=dst.dtype, device=dst.device)
    else:
        full = dst.full_tensor().clone()
    fill(full)
    local = distribute_tensor(full, dst.device_mesh, dst.placements,
                              src_data_rank=None).to_local()
    dst.to_local().copy_(local)
