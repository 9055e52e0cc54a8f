"""
Turn what a checkpoint file held into a flat ``{str: Tensor}`` state dict.

Training checkpoints nest the weights: ``{'state_dict': ..., 'epoch': 3}``
(Lightning), ``{'model': ...}``, EMA copies under ``model_ema`` or beside the
model in a flat state (``ema_model.module.*``). :func:`unwrap_state_dict`
finds the weights and checks that they are a state dict; it works on objects
already in memory and never modifies them. Reading files is
:mod:`torch_liberator.checkpoint`'s job.

Example:
    >>> import torch
    >>> from torch_liberator.unwrap import unwrap_state_dict
    >>> ckpt = {'epoch': 3, 'state_dict': torch.nn.Linear(2, 1).state_dict()}
    >>> sorted(unwrap_state_dict(ckpt))
    ['bias', 'weight']
"""
from collections.abc import Mapping

import torch

from torch_liberator.emacopy import EMA_KEYS, EMA_PREFIXES, select_ema_keys
from torch_liberator.errors import CheckpointFormatError
from torch_liberator.sources import preview_items

__all__ = [
    'WRAPPER_KEYS',
    'unwrap_state_dict',
]

#: Keys under which training checkpoints nest the model weights, tried in
#: this order.
WRAPPER_KEYS = ('model_state_dict', 'state_dict', 'weights', 'model')

# Wrappers nested deeper than this are assumed to be a cycle or a mistake.
_MAX_DEPTH = 8


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
    * With ``ema=True``, one of
      :data:`~torch_liberator.emacopy.EMA_KEYS` (``ema_state_dict``,
      ``state_dict_ema``, ``model_ema``, ``ema``) is preferred at every level,
      and a flat state that holds an EMA copy beside the model under one of
      :data:`~torch_liberator.emacopy.EMA_PREFIXES` gives that copy
      (:func:`~torch_liberator.emacopy.select_ema_keys`).
    * A checkpoint whose only weights are an EMA copy is an error that
      suggests ``ema=True``.
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
        >>> from torch_liberator.unwrap import unwrap_state_dict
        >>> weights = torch.nn.Linear(1, 1).state_dict()
        >>> ckpt = {'epoch': 7, 'state_dict': {'model': weights}}
        >>> sorted(unwrap_state_dict(ckpt))
        ['bias', 'weight']
        >>> ckpt = {'model': weights, 'ema': {'w': torch.ones(1)}}
        >>> sorted(unwrap_state_dict(ckpt, ema=True))
        ['w']
        >>> lightning = {'model.w': torch.zeros(1), 'ema_model.module.w': torch.ones(1)}
        >>> unwrap_state_dict(lightning, ema=True)['w'].item()
        1.0
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
        ema_only = [key for key, value in items
                    if key in EMA_KEYS and _is_container(value)]
        if ema_only and not ema:
            raise CheckpointFormatError(
                f'{where} holds only EMA weights (under {ema_only[0]!r}) and '
                f'none of the regular wrapper keys {WRAPPER_KEYS}; pass '
                'ema=True to load the EMA weights')
        raise CheckpointFormatError(
            f'{where} holds no tensors and none of the recognized wrapper '
            f'keys {recognized}; keys found: '
            f'{preview_items(repr(k) for k, _ in items)}{notes}. If the weights '
            'are stored under another key, pass checkpoint[key] instead')
    bad_keys = [k for k, _ in items if not isinstance(k, str)]
    if bad_keys:
        raise CheckpointFormatError(
            f'{where} has keys that are not strings: '
            f'{preview_items(f"{k!r} ({type(k).__name__})" for k in bad_keys)}; '
            'state dict keys must be strings such as "layer1.0.weight"')
    bad_values = [(k, v) for k, v in items if not isinstance(v, torch.Tensor)]
    if bad_values:
        raise CheckpointFormatError(
            f'{where} holds values that are not tensors: '
            f'{preview_items(f"{k!r} ({type(v).__name__})" for k, v in bad_values)}; '
            'a state dict maps every key to a tensor, remove the other '
            'entries')
    if ema:
        names = select_ema_keys(key for key, _ in items)
        if names is not None:
            return {new: obj[old] for new, old in names.items()}
        levels = trail + [(where, [k for k, _ in items])]
        found = '; '.join(f'{name}: {preview_items(repr(k) for k in keys)}'
                          for name, keys in levels)
        raise CheckpointFormatError(
            f'ema=True but the checkpoint holds no EMA weights (looked for '
            f'{EMA_KEYS}, and for keys under {EMA_PREFIXES}); keys found: '
            f'{found}. Pass ema=False to read the regular weights')
    return dict(items)
