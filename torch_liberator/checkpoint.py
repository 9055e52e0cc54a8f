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
* torch_liberator deploy files: a ``.zip``, a path inside one
  (``dir/x.zip/name/weights.safetensors``) or an unzipped deploy directory
  (read by :func:`torch_liberator.deployer.read_deploy_state_dict`);
* a glob pattern that matches exactly one of the above.

What the file held is flattened by :func:`unwrap_state_dict`: training
checkpoints that nest the weights under :data:`WRAPPER_KEYS` (or EMA weights
under :data:`EMA_KEYS`) are unwrapped.

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
from collections.abc import Mapping

import torch

from torch_liberator.deployer._files import is_torch_archive, split_zip_path
from torch_liberator.deployer._format import read_deploy_state_dict
from torch_liberator.errors import (
    CheckpointFormatError, CheckpointNotFoundError, UnsafeCheckpointError)

__all__ = [
    'EMA_KEYS',
    'WRAPPER_KEYS',
    'read_state_dict',
    'unwrap_state_dict',
]

#: Keys under which training checkpoints nest the model weights, tried in
#: this order.
WRAPPER_KEYS = ('model_state_dict', 'state_dict', 'weights', 'model')

#: Keys under which training checkpoints keep exponential-moving-average
#: weights, tried in this order when ``ema=True``.
EMA_KEYS = ('ema_state_dict', 'state_dict_ema', 'model_ema', 'ema')

# Wrappers nested deeper than this are assumed to be a cycle or a mistake.
_MAX_DEPTH = 8

_ZIP_MAGIC = b'PK\x03\x04'


def read_state_dict(fpath, device=None, ema=False, allow_unsafe=False):
    """
    Read a flat state dict from a checkpoint file.

    Args:
        fpath (str | PathLike): a checkpoint file (``.pt``, ``.pth``,
            ``.ckpt``, ``.bin``, ``.safetensors``, anything written by
            :func:`torch.save`), a deploy ``.zip``, a path inside a deploy
            zip, an unzipped deploy directory, or a glob pattern that matches
            exactly one of these.
        device (str | torch.device | None): where to put the tensors
            (``map_location`` of :func:`torch.load`). None keeps the devices
            the file was saved from (CPU for safetensors and deploy files).
        ema (bool): return the EMA weights of a checkpoint that holds them
            (see :data:`EMA_KEYS`); an error if it holds none.
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
        CheckpointFormatError: the file is corrupt, truncated, unreadable, or
            does not hold a state dict of tensors.

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
    if kind == 'deploy':
        obj = read_deploy_state_dict(path, device=device)
    elif kind == 'safetensors':
        obj = _read_safetensors(path, device)
    else:
        obj = _read_torch(path, device, allow_unsafe)
    try:
        return unwrap_state_dict(obj, ema=ema)
    except CheckpointFormatError as err:
        raise CheckpointFormatError(f'{path!r}: {err}') from err


def unwrap_state_dict(obj, ema=False):
    """
    Turn what a checkpoint file held into a flat ``{str: Tensor}`` dict.

    * A dict whose values are tensors is a state dict: returned as a new
      plain dict (the ``_metadata`` attribute of
      :meth:`torch.nn.Module.state_dict` is dropped).
    * A dict holding a dict (or module) under one of :data:`WRAPPER_KEYS`
      (``model_state_dict``, ``state_dict``, ``weights``, ``model``, tried in
      that order) is unwrapped, recursively: lightning's
      ``{'state_dict': ..., 'epoch': ...}``, ``{'model': {...}}``.
    * With ``ema=True``, one of :data:`EMA_KEYS` (``ema_state_dict``,
      ``state_dict_ema``, ``model_ema``, ``ema``) is preferred at every level.
    * An :class:`torch.nn.Module` (only found in files read with
      ``allow_unsafe=True``) gives its ``state_dict()``.

    ``obj`` itself is never modified.

    Args:
        obj (Mapping | torch.nn.Module): what :func:`torch.load` returned.
        ema (bool): return the EMA weights; an error if there are none.

    Returns:
        Dict[str, torch.Tensor]

    Raises:
        CheckpointFormatError: ``obj`` is neither a state dict nor a known
            wrapper of one (the message names the keys found and the keys
            recognized), a key is not a string, a value is not a tensor, or
            ``ema=True`` and no EMA weights were found.

    Example:
        >>> import torch
        >>> from torch_liberator.checkpoint import unwrap_state_dict
        >>> weights = torch.nn.Linear(1, 1).state_dict()
        >>> ckpt = {'epoch': 7, 'state_dict': {'model': weights}}
        >>> sorted(unwrap_state_dict(ckpt))
        ['bias', 'weight']
        >>> ckpt = {'model': weights, 'ema': {'w': torch.ones(1)}}
        >>> sorted(unwrap_state_dict(ckpt, ema=True))
        ['w']
        >>> try:
        ...     unwrap_state_dict({'epoch': 7, 'optimizer': {}})
        ... except ValueError as err:
        ...     print(str(err)[:60])
        checkpoint holds no tensors and none of the recognized wrapp
    """
    return _unwrap(obj, ema, 'checkpoint', [])


# --- unwrapping --------------------------------------------------------------

def _is_container(value):
    return isinstance(value, (Mapping, torch.nn.Module))


def _preview(items, limit=10):
    """A short list repr: the first ``limit`` items and how many more."""
    items = list(items)
    text = ', '.join(items[:limit])
    if len(items) > limit:
        text += f', ... ({len(items) - limit} more)'
    return f'[{text}]'


def _unwrap(obj, ema, where, trail):
    """
    Recursive worker of :func:`unwrap_state_dict`. ``where`` names ``obj``
    in messages (``checkpoint['state_dict']``); ``trail`` lists
    ``(where, keys)`` of the wrapper levels above, for the EMA message.
    """
    if len(trail) > _MAX_DEPTH:
        raise CheckpointFormatError(
            f'{where} is nested more than {_MAX_DEPTH} wrapper levels deep '
            '(a cycle?); unwrap the checkpoint yourself and pass the state '
            'dict')
    if isinstance(obj, torch.nn.Module):
        module_name = type(obj).__name__
        obj = obj.state_dict()
        where = f'{where} ({module_name}.state_dict())'
    elif not isinstance(obj, Mapping):
        raise CheckpointFormatError(
            f'{where} is a {type(obj).__name__}, not a state dict: expected a '
            'dict of tensors, a dict that nests one under one of '
            f'{WRAPPER_KEYS}, or an nn.Module')
    else:
        if ema:
            for key in EMA_KEYS:
                value = obj.get(key)
                if _is_container(value):
                    return _unwrap(value, False, f'{where}[{key!r}]',
                                   trail + [(where, list(obj))])
        for key in WRAPPER_KEYS:
            value = obj.get(key)
            if _is_container(value):
                return _unwrap(value, ema, f'{where}[{key!r}]',
                               trail + [(where, list(obj))])
    return _flat_state(obj, ema, where, trail)


def _flat_state(obj, ema, where, trail):
    """Validate a mapping that should be a flat state dict; copy it."""
    items = list(obj.items())
    if items and not any(isinstance(v, torch.Tensor) for _, v in items):
        recognized = WRAPPER_KEYS + (EMA_KEYS if ema else ())
        notes = ''.join(
            f'; {key!r} is present but holds a {type(value).__name__}, not a dict'
            for key, value in items if key in recognized)
        raise CheckpointFormatError(
            f'{where} holds no tensors and none of the recognized wrapper '
            f'keys {recognized}; keys found: '
            f'{_preview(repr(k) for k, _ in items)}{notes}. If the weights '
            'are stored under another key, pass checkpoint[key] instead')
    bad_keys = [k for k, _ in items if not isinstance(k, str)]
    if bad_keys:
        raise CheckpointFormatError(
            f'{where} has keys that are not strings: '
            f'{_preview(f"{k!r} ({type(k).__name__})" for k in bad_keys)}; '
            'state dict keys must be strings such as "layer1.0.weight"')
    bad_values = [(k, v) for k, v in items if not isinstance(v, torch.Tensor)]
    if bad_values:
        raise CheckpointFormatError(
            f'{where} holds values that are not tensors: '
            f'{_preview(f"{k!r} ({type(v).__name__})" for k, v in bad_values)}; '
            'a state dict maps every key to a tensor, remove the other '
            'entries')
    if ema:
        levels = trail + [(where, [k for k, _ in items])]
        found = '; '.join(f'{name}: {_preview(repr(k) for k in keys)}'
                          for name, keys in levels)
        raise CheckpointFormatError(
            f'ema=True but the checkpoint holds no EMA weights (looked for '
            f'{EMA_KEYS}); keys found: {found}. Pass ema=False to read the '
            'regular weights')
    return dict(items)


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
                f'exactly one: {_preview(repr(m) for m in matches)}; make the '
                'pattern more specific')
        return matches[0], False
    raise CheckpointNotFoundError(
        f'checkpoint file {path!r} does not exist')


def _detect_kind(path):
    """
    Returns:
        str: 'deploy', 'safetensors' or 'torch'.
    """
    if os.path.isdir(path):
        return 'deploy'
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


# --- reading -----------------------------------------------------------------

def _describe(err):
    """``'Type: first line of the message'``, short, without ANSI codes."""
    lines = re.sub(r'\x1b\[[0-9;]*m', '', str(err)).strip().splitlines()
    text = lines[0] if lines else ''
    if len(text) > 200:
        text = text[:200] + '...'
    name = type(err).__name__
    return f'{name}: {text}' if text else name


def _read_safetensors(path, device):
    from safetensors.torch import load_file
    target = 'cpu' if device is None else str(torch.device(device))
    try:
        return load_file(path, device=target)
    except Exception as err:
        raise CheckpointFormatError(
            f'cannot read safetensors file {path!r} ({_describe(err)}); it is '
            'corrupt or truncated, save it again') from err


def _read_torch(path, device, allow_unsafe):
    try:
        return torch.load(path, map_location=device,
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
        f'cannot read checkpoint {path!r} ({_describe(_inner(err))}); {hint}')


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
    return f'it holds objects other than tensors ({_describe(_inner(err))})'


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
