"""
Which keys of a flat state dict are an EMA copy of the model beside it.

Training code often keeps an exponential moving average of the model's
weights as a module of its own, and a flat state dict then holds both
copies: Lightning's ``model.*`` and ``ema_model.module.*``, timm's
``model_ema.module.*``, or a plain ``ema.*`` deep copy. The names of those
copies (:data:`EMA_PREFIXES`) are known; :func:`select_ema_keys` finds the
EMA copy (what ``ema=True`` loads) and :func:`without_ema_copy` leaves it
out when the model copy is what is asked for. Pure: keys and shapes in.

Example:
    >>> from torch_liberator.emacopy import select_ema_keys
    >>> select_ema_keys(['model.fc.weight', 'ema.fc.weight'])
    {'fc.weight': 'ema.fc.weight'}
"""
from typing import Dict, Iterable, Mapping, Optional

from torch_liberator.keygroups import WRAPPER_PREFIXES

__all__ = ['EMA_KEYS', 'EMA_PREFIXES', 'select_ema_keys', 'without_ema_copy']

#: Keys under which training checkpoints keep exponential-moving-average
#: weights, tried in this order when ``ema=True``.
EMA_KEYS = ('ema_state_dict', 'state_dict_ema', 'model_ema', 'ema')

#: Key prefixes under which a flat state dict holds an EMA copy beside the
#: model (Lightning's ``ema_model.module.*``, timm's ``model_ema.module.*``),
#: tried in this order when ``ema=True``.
EMA_PREFIXES = ('ema_model',) + EMA_KEYS


def _bare(key: str) -> str:
    """``key`` less the saving wrapper's levels (DataParallel's
    ``module.``, torch.compile's ``_orig_mod.``) in front of it."""
    while key.startswith(WRAPPER_PREFIXES):
        key = key.partition('.')[2]
    return key


def select_ema_keys(keys: Iterable[str]) -> Optional[Dict[str, str]]:
    """
    Find the EMA copy in the keys of a flat state dict that holds it beside
    the model, under one of :data:`EMA_PREFIXES` (Lightning's
    ``ema_model.module.*`` beside ``model.*``).

    Args:
        keys (Iterable[str]): the flat state dict's keys.

    Returns:
        Dict[str, str] | None: EMA key without its prefix -> the key as
        stored, in the given order; None if no key has an EMA prefix. The
        ``module.`` level of an averaging wrapper
        (:class:`torch.optim.swa_utils.AveragedModel`, timm's ``ModelEma``)
        is removed too, and the wrapper's own entries (``n_averaged``) are
        left out.

    Example:
        >>> from torch_liberator.emacopy import select_ema_keys
        >>> select_ema_keys(['model.fc.weight', 'ema_model.module.fc.weight',
        ...                  'ema_model.n_averaged'])
        {'fc.weight': 'ema_model.module.fc.weight'}
        >>> select_ema_keys(['fc.weight']) is None
        True
        >>> # saved from DataParallel or torch.compile: module.model_ema.module.*
        >>> select_ema_keys(['module.fc.weight', 'module.model_ema.module.fc.weight'])
        {'fc.weight': 'module.model_ema.module.fc.weight'}
    """
    bare = {key: _bare(key) for key in keys}
    heads = {name.partition('.')[0] for name in bare.values()}
    for prefix in EMA_PREFIXES:
        if prefix not in heads:
            continue
        inner = {name[len(prefix) + 1:]: key for key, name in bare.items()
                 if name.startswith(prefix + '.')}
        if not inner:
            continue  # (a tensor named like the prefix itself)
        wrapped = {key[len('module.'):]: old for key, old in inner.items()
                   if key.startswith('module.')}
        return wrapped or inner
    return None


def without_ema_copy(src: Mapping, dst: Mapping, sep: str = '.') -> Mapping:
    """
    ``src`` (``{key: shape}``) less its EMA copy (:func:`select_ema_keys`)
    when the rest of it holds the model copy (every EMA key, of the same
    shape, ends a key of the rest) and the model ``dst`` holds no EMA copy
    of its own (under any of those names): the model copy is the one asked
    for (``ema=True`` reads the other). Two copies at one depth
    (``model.*`` and a plain deep copy ``ema_model.*``) were a tie, and
    nothing loaded. Otherwise ``src`` itself.

    Example:
        >>> from torch_liberator.emacopy import without_ema_copy
        >>> src = {'model.fc.weight': (2, 2), 'ema_model.fc.weight': (2, 2)}
        >>> without_ema_copy(src, {'fc.weight': (2, 2)})
        {'model.fc.weight': (2, 2)}
        >>> # the model holds its own EMA copy: every key stays
        >>> len(without_ema_copy(src, {'model.fc.weight': (2, 2), 'ema_model.fc.weight': (2, 2)}))
        2
    """
    if sep != '.':
        return src
    names = select_ema_keys(src)
    if not names:
        return src
    if select_ema_keys(dst) is not None:
        return src  # the model holds an EMA copy of its own
    stored = set(names.values())
    rest = {key: shape for key, shape in src.items() if key not in stored}
    ends = {}
    for key, shape in rest.items():
        comps = key.split('.')
        for n in range(len(comps)):
            ends.setdefault('.'.join(comps[n:]), set()).add(_shape(shape))
    if not all(_shape(src[old]) in ends.get(new, ()) for new, old in names.items()):
        return src
    return rest


def _shape(shape):
    return None if shape is None else tuple(shape)
