"""
Read a state dict from any supported checkpoint file, safely.

This module knows nothing about models: it turns a path into a flat
``{str: Tensor}`` dict, or raises an error that says what is wrong with the
file and how to fix it. Supported sources:

* files written by :func:`torch.save` (``.pt``, ``.pth``, ``.ckpt``, ``.bin``
  or any other name), read with ``torch.load(weights_only=True)``, which
  cannot run code; files that need arbitrary unpickling are refused unless the
  caller opts in with ``allow_unsafe=True``;
* ``.safetensors`` files;
* sharded safetensors checkpoints: a ``*.safetensors.index.json`` or the
  folder holding it (:class:`torch_liberator.safesources.ShardedSafetensorsSource`);
* torch.distributed.checkpoint (DCP) directories
  (:class:`torch_liberator.dcp.DcpSource`);
* torch_liberator deploy files: a ``.zip``, a path inside one
  (``dir/x.zip/name/weights.safetensors``) or an unzipped deploy directory
  (read by :func:`torch_liberator.deployer.read_deploy_state_dict`);
* a glob pattern that matches exactly one of the above.

:func:`read_state_dict` reads every tensor; :func:`open_checkpoint` returns a
lazy :class:`~torch_liberator.sources.LazySource` that knows every key and
shape from the file's header or metadata and reads tensors only on request
(for huge checkpoints). Only regular files and folders are read: a FIFO, a
device or a socket is refused before it is opened.

What the file held is flattened by
:func:`torch_liberator.unwrap.unwrap_state_dict` (importable from here too): training
checkpoints that nest the weights under :data:`WRAPPER_KEYS` (or EMA weights
under :data:`EMA_KEYS`) are unwrapped; with ``ema=True`` a flat state that
holds the EMA copy beside the model (``ema_model.module.*``, as Lightning
writes) gives the EMA copy (:data:`EMA_PREFIXES`).

Example:
    >>> import os, tempfile, torch
    >>> from torch_liberator.checkpoint import read_state_dict
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = os.path.join(tmp.name, 'epoch_3.ckpt')
    >>> model = torch.nn.Linear(2, 3)
    >>> torch.save({'epoch': 3, 'state_dict': model.state_dict()}, fpath)
    >>> state = read_state_dict(os.path.join(tmp.name, '*.ckpt'))
    >>> sorted(state)
    ['bias', 'weight']
    >>> assert torch.equal(state['weight'], model.weight)
    >>> tmp.cleanup()
"""
import glob
import os
import pickle
import re
import stat

import torch

from torch_liberator.dcp import DcpSource, is_dcp_dir
from torch_liberator.deployer._files import is_torch_archive, split_zip_path
from torch_liberator.deployer._format import read_deploy_state_dict
from torch_liberator.emacopy import EMA_KEYS, EMA_PREFIXES, select_ema_keys
from torch_liberator.errors import (
    CheckpointFormatError, CheckpointNotFoundError, UnsafeCheckpointError)
from torch_liberator.safesources import (
    INDEX_SUFFIX, SafetensorsSource, ShardedSafetensorsSource)
from torch_liberator.sources import (
    LazySource, MappedStateSource, RenamedSource, check_unchanged,
    describe_error, file_identity, preview_items)
from torch_liberator.unwrap import WRAPPER_KEYS, unwrap_state_dict

__all__ = [
    'EMA_KEYS',
    'EMA_PREFIXES',
    'WRAPPER_KEYS',
    'open_checkpoint',
    'read_state_dict',
    'select_ema_keys',
    'unwrap_state_dict',
]

_ZIP_MAGIC = b'PK\x03\x04'


def read_state_dict(fpath, device=None, ema=False, allow_unsafe=False):
    """
    Read a flat state dict from a checkpoint file.

    Args:
        fpath (str | PathLike): a checkpoint file (``.pt``, ``.pth``,
            ``.ckpt``, ``.bin``, ``.safetensors``, anything written by
            :func:`torch.save`), a sharded safetensors index
            (``model.safetensors.index.json``) or its folder, a
            torch.distributed.checkpoint directory, a deploy ``.zip``, a path
            inside a deploy zip, an unzipped deploy directory, or a glob
            pattern that matches exactly one of these.
        device (str | torch.device | None): where to put the tensors
            (``map_location`` of :func:`torch.load`). None keeps the devices
            the file was saved from (CPU for safetensors and deploy files).
        ema (bool): return the EMA weights of a checkpoint that holds them
            (see :data:`EMA_KEYS` and :data:`EMA_PREFIXES`); an error if it
            holds none.
        allow_unsafe (bool): read a :func:`torch.save` file that holds
            arbitrary Python objects with ``torch.load(weights_only=False)``.
            Unpickling can run any code: only use it for files you trust.

    Returns:
        Dict[str, torch.Tensor]: a new dict (the file's objects are not
        modified); see :func:`unwrap_state_dict`.

    Raises:
        CheckpointNotFoundError: ``fpath`` does not exist, or the glob matches
            no path or several.
        UnsafeCheckpointError: the file needs arbitrary unpickling and
            ``allow_unsafe`` is False.
        CheckpointFormatError: the file is corrupt, truncated, unreadable,
            not a regular file or folder (a FIFO, a device), or does not hold
            a state dict of tensors.

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.checkpoint import read_state_dict
        >>> from safetensors.torch import save_file
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = os.path.join(tmp.name, 'model.safetensors')
        >>> save_file({'w': torch.ones(2, 2)}, fpath)
        >>> read_state_dict(fpath)['w'].shape
        torch.Size([2, 2])
        >>> # EMA weights of a training checkpoint
        >>> fpath = os.path.join(tmp.name, 'last.pt')
        >>> torch.save({'model': {'w': torch.zeros(1)},
        ...             'model_ema': {'w': torch.ones(1)}}, fpath)
        >>> read_state_dict(fpath)['w'].item(), read_state_dict(fpath, ema=True)['w'].item()
        (0.0, 1.0)
        >>> tmp.cleanup()
    """
    path, inside_zip = _resolve_path(fpath)
    kind = 'deploy' if inside_zip else _detect_kind(path)
    if kind in ('sharded', 'dcp'):
        source = open_checkpoint(path, ema=ema)
        return {key: tensor.to(device) if device is not None else tensor
                for key, tensor in source.read_tensors(
                    dict.fromkeys(source.specs))}
    if kind == 'deploy':
        obj = read_deploy_state_dict(path, device=device)
    elif kind == 'safetensors':
        obj = _read_safetensors(path, device)
    else:
        obj = _read_torch(path, device, allow_unsafe)
    return _unwrap_file(obj, ema, path)


def open_checkpoint(fpath, ema=False, allow_unsafe=False) -> LazySource:
    """
    Open a checkpoint lazily: every key and spec now, from the file's header
    or metadata; tensor data only when asked for.

    What is read up front, per format: the header of a ``.safetensors`` file
    or of every shard of a sharded index (checked against the index); the
    ``.metadata`` of a torch.distributed.checkpoint directory; the pickle of
    a :func:`torch.save` file opened with ``torch.load(mmap=True)``, whose
    tensors stay on disk until read. Legacy (pre-1.6, non-zip) torch files
    cannot be memory-mapped and deploy files are hash-checked as a whole:
    both are read whole into memory here.

    Args:
        fpath (str | PathLike): anything :func:`read_state_dict` accepts.
        ema (bool): the EMA weights, as in :func:`read_state_dict`.
        allow_unsafe (bool): as in :func:`read_state_dict`.

    Returns:
        LazySource: ``.specs`` maps every key to its
        :class:`~torch_liberator.shapes.TensorSpec`;
        ``.read_tensors(requests)`` reads what is asked, in bounded batches.

    Raises:
        CheckpointNotFoundError, UnsafeCheckpointError, CheckpointFormatError:
            as :func:`read_state_dict`, all before any tensor data is read
            (a sharded index naming a missing shard, or a shard whose header
            disagrees with the index; a DCP directory without metadata).

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.checkpoint import open_checkpoint
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = os.path.join(tmp.name, 'last.ckpt')
        >>> torch.save({'epoch': 1, 'state_dict': torch.nn.Linear(2, 3).state_dict()}, fpath)
        >>> source = open_checkpoint(fpath)
        >>> {key: spec.shape for key, spec in source.specs.items()}
        {'weight': (3, 2), 'bias': (3,)}
        >>> dict(source.read_tensors({'bias': None}))['bias'].shape
        torch.Size([3])
        >>> tmp.cleanup()
    """
    path, inside_zip = _resolve_path(fpath)
    kind = 'deploy' if inside_zip else _detect_kind(path)
    if kind == 'torch' and _is_zip(path):
        identity = file_identity(path)

        def open_state():  # called again for every batch read
            try:
                obj = _read_torch(path, 'cpu', allow_unsafe, mmap=True)
            finally:  # the file mapped is the first (or explains the error)
                check_unchanged(path, identity)
            return _unwrap_file(obj, ema, path)
        return MappedStateSource(open_state, path)
    if kind in ('torch', 'deploy'):
        state = read_state_dict(path, ema=ema, allow_unsafe=allow_unsafe)
        return MappedStateSource(lambda: state, path)
    if kind == 'safetensors':
        source = SafetensorsSource(path)
    elif kind == 'sharded':
        source = ShardedSafetensorsSource(path)
    else:
        source = DcpSource(path)
    if not ema:
        return source
    names = select_ema_keys(source.specs)
    if names is None:
        raise CheckpointFormatError(
            f'{path!r}: ema=True but the checkpoint holds no EMA weights '
            f'(looked for keys under {EMA_PREFIXES}); keys found: '
            f'{preview_items(map(repr, source.specs))}. Pass ema=False to '
            'read the regular weights')
    return RenamedSource(source, names)


def _unwrap_file(obj, ema, path):
    try:
        return unwrap_state_dict(obj, ema=ema)
    except CheckpointFormatError as err:
        raise CheckpointFormatError(f'{path!r}: {err}') from err


# --- finding the file --------------------------------------------------------

def _resolve_path(fpath):
    """
    Returns:
        Tuple[str, bool]: the path of an existing file or directory (a glob
        resolved), and whether it is a path inside a zip file.
    """
    try:
        path = os.fspath(fpath)
    except TypeError:
        raise TypeError(
            f'fpath must be a str or os.PathLike, got {type(fpath).__name__}; '
            'to flatten an object already in memory use '
            'unwrap_state_dict') from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    path = os.path.expanduser(path)
    if os.path.exists(path):
        return path, False
    if split_zip_path(path) is not None:
        return path, True
    if glob.has_magic(path):
        matches = sorted(glob.glob(path, recursive=True))
        if not matches:
            raise CheckpointNotFoundError(
                f'no checkpoint matches the pattern {path!r}; check the '
                'folder and the pattern')
        if len(matches) > 1:
            raise CheckpointNotFoundError(
                f'the pattern {path!r} matches {len(matches)} paths, expected '
                f'exactly one: {preview_items(repr(m) for m in matches)}; make the '
                'pattern more specific')
        return matches[0], False
    raise CheckpointNotFoundError(
        f'checkpoint file {path!r} does not exist')


def _detect_kind(path):
    """
    Returns:
        str: 'deploy', 'safetensors', 'sharded', 'dcp' or 'torch'.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise CheckpointFormatError(
            f'cannot read checkpoint file {path!r}: {err}') from err
    if stat.S_ISDIR(mode):
        if is_dcp_dir(path):
            return 'dcp'
        if any(name.endswith(INDEX_SUFFIX) for name in os.listdir(path)):
            return 'sharded'
        return 'deploy'
    if not stat.S_ISREG(mode):
        # opening a FIFO would block until someone writes to it
        raise CheckpointFormatError(
            f'checkpoint path {path!r} is a {_file_type(mode)}, not a regular '
            'file or folder; pass the path of the checkpoint file itself')
    if path.endswith(INDEX_SUFFIX):
        return 'sharded'
    try:
        with open(path, 'rb') as file:
            header = file.read(16)
        size = os.path.getsize(path)
    except OSError as err:
        raise CheckpointFormatError(
            f'cannot read checkpoint file {path!r}: {err}') from err
    if size == 0:
        raise CheckpointFormatError(
            f'checkpoint file {path!r} is empty (0 bytes); it was not written '
            'completely, save it again')
    if path.lower().endswith('.safetensors'):
        return 'safetensors'
    if header.startswith(_ZIP_MAGIC):
        if path.lower().endswith('.zip') and not is_torch_archive(path):
            return 'deploy'
        return 'torch'
    if len(header) > 8 and header[8:9] == b'{':
        # safetensors: 8 byte little-endian header size, then JSON
        if int.from_bytes(header[:8], 'little') < size:
            return 'safetensors'
    return 'torch'


def _file_type(mode):
    for test, name in ((stat.S_ISFIFO, 'FIFO (named pipe)'),
                       (stat.S_ISCHR, 'character device'),
                       (stat.S_ISBLK, 'block device'),
                       (stat.S_ISSOCK, 'socket')):
        if test(mode):
            return name
    return 'special file'


# --- reading -----------------------------------------------------------------

def _read_safetensors(path, device):
    from safetensors.torch import load_file
    target = 'cpu' if device is None else str(torch.device(device))
    try:
        return load_file(path, device=target)
    except Exception as err:
        raise CheckpointFormatError(
            f'cannot read safetensors file {path!r} ({describe_error(err)}); it is '
            'corrupt or truncated, save it again') from err


def _read_torch(path, device, allow_unsafe, mmap=False):
    try:
        return torch.load(path, map_location=device, mmap=mmap,
                          weights_only=not allow_unsafe)
    except pickle.UnpicklingError as err:
        if not allow_unsafe:
            needs = _unsafe_requirement(err, path)
            if needs is not None:
                raise UnsafeCheckpointError(
                    f'checkpoint {path!r} cannot be read safely: {needs}, and '
                    'unpickling it could run arbitrary code. Only if you '
                    'trust the file, pass allow_unsafe=True to read it with '
                    'torch.load(weights_only=False); better, re-save it as a '
                    'plain state dict (torch.save(model.state_dict(), ...)) '
                    'or as .safetensors') from err
        raise _format_error(path, err) from err
    except Exception as err:
        raise _format_error(path, err) from err


def _format_error(path, err):
    hint = 'the file is corrupt, truncated, or not a checkpoint'
    if 'CUDA' in str(err) or 'cuda' in str(err):
        hint = ('it was saved on a GPU this machine cannot use; pass '
                "device='cpu'")
    elif isinstance(err, (ImportError, AttributeError)):
        hint = ('it refers to Python code that cannot be imported here; '
                'install the code it was saved with, or re-save the state dict')
    return CheckpointFormatError(
        f'cannot read checkpoint {path!r} ({describe_error(_inner(err))}); {hint}')


def _unsafe_requirement(err, path):
    """
    Why a ``weights_only`` load failed, if the file itself looks intact.

    Returns:
        str | None: what the file needs (``'it holds objects of a.B'``), or
        None when the error looks like corruption: a malformed opcode, or a
        pickle stream that ends early (a truncated legacy file can name a
        cut-off global such as ``torch._utils._rebuild_tens``).
    """
    text = str(err)
    if 'Weights only load failed' not in text:
        return None
    if re.search(r'Unsupported operand|String is too long|persistent id', text):
        return None
    if not _is_zip(path) and not _legacy_pickles_intact(path):
        return None
    found = re.search(r'GLOBAL (\S+) was not an allowed global', text)
    if found:
        return f'it holds objects of {found.group(1)}'
    return f'it holds objects other than tensors ({describe_error(_inner(err))})'


def _inner(err):
    """The weights-only unpickler's own error, without torch's preamble."""
    if 'Weights only load failed' in str(err) and err.__context__ is not None:
        return err.__context__
    return err


def _is_zip(path):
    try:
        with open(path, 'rb') as file:
            return file.read(4) == _ZIP_MAGIC
    except OSError:
        return False


def _legacy_pickles_intact(path):
    """
    True if the pickles at the start of a legacy (non-zip) torch file are
    complete. They are only parsed (:func:`pickletools.genops`), never
    executed: magic number, protocol, system info, the object, storage keys.
    """
    import pickletools
    try:
        with open(path, 'rb') as file:
            for _ in range(5):
                for _ in pickletools.genops(file):
                    pass
    except Exception:
        return False
    return True
