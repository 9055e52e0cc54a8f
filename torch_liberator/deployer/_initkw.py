"""
The keyword arguments that rebuild a model ("initkw"): given, ``model._initkw``
or read from the attributes the model stores under its ``__init__`` parameter
names; or the factory that builds it. Their JSON form (tuples, non-finite
floats, dtypes, ``functools.partial`` and classes/functions by import path
tagged) becomes Python source in the exported file; nothing is pickled.

Example:
    >>> import torch
    >>> from torch_liberator.deployer._initkw import encode_initkw, resolve_initkw
    >>> resolve_initkw(torch.nn.Linear(2, 3), None)
    ({'in_features': 2, 'out_features': 3}, 'inferred')
    >>> encode_initkw({'size': (2, 3), 'act': torch.nn.ReLU})[0]
    {'size': {'__tuple__': [2, 3]}, 'act': {'__ref__': 'torch.nn.modules.activation:ReLU'}}
"""
import functools
import importlib
import inspect
import json
import math
import re

from torch_liberator.errors import ExportError

__all__ = ['PRETRAINED_ARGS', 'encode_initkw', 'initkw_code', 'parse_initkw', 'resolve_factory',
           'resolve_initkw', 'unconfirmed_arguments']

#: factory arguments that would download weights at every load (the file has them)
PRETRAINED_ARGS = ('pretrained', 'pretrained_backbone', 'weights', 'weights_backbone')

_MARKERS = ('__tuple__', '__float__', '__ref__', '__dtype__', '__partial__')
_NAME = r'[A-Za-z_]\w*(\.[A-Za-z_]\w*)*'
_REF_RE = re.compile(rf'^{_NAME}(:{_NAME})?$')
_COLON_REF_RE = re.compile(rf'^{_NAME}:{_NAME}$')
_MISSING = object()


def _init_parameters(cls):
    try:
        return list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []


def resolve_initkw(model, initkw):
    """
    The keyword arguments that rebuild ``model`` and where they came from
    (``'argument'``, ``'_initkw'`` or ``'inferred'``). Inference reads each
    ``__init__`` parameter from the attribute the instance stores under its
    name (or ``_name``), never a submodule or tensor; parameters with a
    default that are not stored are left out.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._initkw import resolve_initkw
        >>> resolve_initkw(torch.nn.ReLU(), None)
        ({'inplace': False}, 'inferred')
    """
    import torch
    is_cls = isinstance(model, type)
    cls = model if is_cls else type(model)
    params = _init_parameters(cls)
    given, how = initkw, 'argument'
    if given is None and not is_cls and isinstance(getattr(model, '_initkw', None), dict):
        given, how = model._initkw, '_initkw'
    if given is not None:
        if not isinstance(given, dict):
            raise ExportError(f'initkw must be a dict of keyword arguments, got '
                              f'{type(given).__name__}')
        names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(k for k in given if k not in names)
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params):
            raise ExportError(f'initkw has arguments {unknown} that {cls.__name__}.__init__ '
                              f'does not take; valid names: {names}')
        return dict(given), how

    def storable(value):
        if isinstance(value, (torch.nn.Module, torch.Tensor)) or inspect.ismethod(value):
            return False
        try:
            return _encode_value(value, '', None) or True
        except ExportError:
            return False

    stored = {} if is_cls else vars(model)  # not class attributes such as _version
    found, missing = {}, []
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = next((stored[a] for a in (param.name, '_' + param.name)
                      if a in stored and storable(stored[a])), _MISSING)
        if value is not _MISSING and param.kind is not param.POSITIONAL_ONLY:
            found[param.name] = value
        elif param.default is param.empty:
            missing.append(param.name)
    if missing:
        raise ExportError(
            f'cannot infer the init arguments of {cls.__name__}: {missing} are required by '
            f'{cls.__name__}.__init__ but the model has no _initkw and stores no usable '
            'attribute of the same name; pass initkw={...} to deploy (or set model._initkw)')
    return found, 'inferred'


def unconfirmed_arguments(model, initkw):
    """
    The ``__init__`` arguments an inferred ``initkw`` leaves to defaults the
    model does not store (``'**kwargs'`` when it takes extra keywords).

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._initkw import unconfirmed_arguments
        >>> unconfirmed_arguments(torch.nn.Linear(2, 3), {'in_features': 2, 'out_features': 3})
        ['bias', 'device', 'dtype']
    """
    params = _init_parameters(type(model))
    out = [p.name for p in params if p.name not in initkw
           and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return out + ['**kwargs'] * any(p.kind is p.VAR_KEYWORD for p in params)


def _import_by_name(name):
    # the object 'module:qualname' (or 'module.name') names
    if not isinstance(name, str) or not _REF_RE.match(name):
        raise ExportError(f"{name!r} is not an import path; write MODULE:NAME (e.g. "
                          "'torchvision.models:resnet18') or MODULE.NAME")
    modname, sep, qualname = name.partition(':')
    if not sep:
        modname, _, qualname = name.rpartition('.')
        if not modname:
            raise ExportError(f'{name!r} names no module; write MODULE:NAME')
    try:
        obj = importlib.import_module(modname)
    except Exception as err:  # a module may raise anything on import
        raise ExportError(f'cannot import {modname!r} (for {name!r}): {type(err).__name__}: '
                          f'{" ".join(str(err).split())}') from err
    for part in qualname.split('.'):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ExportError(f'{name!r}: {modname!r} has no {qualname!r}') from None
    return obj


def resolve_factory(factory, initkw=None):
    """
    ``(factory, 'module:qualname', initkw)`` for a factory given by import
    path or as an object importable by that path; :data:`PRETRAINED_ARGS`
    must be off (the deploy file holds the weights).

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._initkw import resolve_factory
        >>> func, ref, kw = resolve_factory('torch.nn.Linear', {'in_features': 1})
        >>> func is torch.nn.Linear, ref, resolve_factory(torch.nn.Linear)[1]
        (True, 'torch.nn:Linear', 'torch.nn.modules.linear:Linear')
    """
    ref = None
    if isinstance(factory, str):  # keep the path as the user wrote it
        ref = factory if ':' in factory else ':'.join(factory.rsplit('.', 1))
        factory = _import_by_name(factory)
    if not callable(factory):
        raise ExportError(f'factory {factory!r} is not callable; name a function (or class) '
                          "that builds the model, e.g. 'torchvision.models:resnet18'")
    ref = ref or _encode_ref(factory, 'factory', None)['__ref__']
    if _import_by_name(ref) is not factory:
        raise ExportError(f'factory {factory!r} cannot be imported again as {ref!r}; define it '
                          'at module level in an importable module')
    initkw = {} if initkw is None else initkw
    if not isinstance(initkw, dict):
        raise ExportError(f'initkw must be a dict of keyword arguments, got '
                          f'{type(initkw).__name__}')
    fetch = {k: v for k, v in initkw.items()
             if k in PRETRAINED_ARGS and v is not None and v is not False}
    if fetch:
        raise ExportError(
            f'initkw {fetch} would make {ref} fetch pretrained weights at every load, and the '
            'deploy file holds the weights already; pass weights=None / pretrained=False')
    _encode_value(initkw, 'initkw', None)  # storable without pickling
    return factory, ref, dict(initkw)


def parse_initkw(text, name='initkw'):
    """
    Keyword arguments from JSON text, as the command line takes them: a
    string ``MODULE:NAME`` stands for the class or function it names.

    Example:
        >>> from torch_liberator.deployer._initkw import parse_initkw
        >>> kw = parse_initkw('{"block": "torch.nn:ReLU", "layers": [2, 2], "name": "relu"}')
        >>> kw['block'].__name__, kw['layers'], kw['name']
        ('ReLU', [2, 2], 'relu')
    """
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ExportError(f'{name} is not valid JSON ({err}): {text!r}') from err
    if not isinstance(data, dict):
        raise ExportError(f'{name} must be a JSON object, got {text!r}')

    def decode(value):
        if isinstance(value, str) and _COLON_REF_RE.match(value):
            return _import_by_name(value)
        if isinstance(value, list):
            return [decode(v) for v in value]
        return {k: decode(v) for k, v in value.items()} if isinstance(value, dict) else value

    return decode(data)


def encode_initkw(initkw, cls=None, export_modules=()):
    """
    The JSON form of init arguments, and the classes and functions among
    them whose code must be exported with the model (those of ``cls``'s
    module, ``__main__`` or an ``export_modules`` package); others are
    recorded by an import path that must find the same object again.

    Example:
        >>> import math, torch
        >>> from torch_liberator.deployer._initkw import encode_initkw
        >>> encode_initkw({'eps': math.inf, 'dtype': torch.float16})
        ({'eps': {'__float__': 'inf'}, 'dtype': {'__dtype__': 'float16'}}, [])
    """
    local = (set() if cls is None else {cls.__module__, '__main__'}, tuple(export_modules), [])
    return {k: _encode_value(v, f'initkw[{k!r}]', local) for k, v in initkw.items()}, local[2]


def _encode_value(value, where, local):
    # JSON form of one value; local = (roots, packages, found objects), None to check only
    import torch
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {'__float__': repr(value)}
    if isinstance(value, list):
        return [_encode_value(v, f'{where}[{i}]', local) for i, v in enumerate(value)]
    if type(value) is tuple:
        return {'__tuple__': _encode_value(list(value), where, local)}
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str) or k in _MARKERS]
        if bad:
            raise ExportError(f'{where} is a dict with keys {bad!r}; deploy files store dicts '
                              f'with string keys other than {_MARKERS}')
        return {k: _encode_value(v, f'{where}[{k!r}]', local) for k, v in value.items()}
    if isinstance(value, torch.dtype):
        return {'__dtype__': str(value).replace('torch.', '')}
    if isinstance(value, functools.partial):
        return {'__partial__': _encode_value(value.func, f'{where}.func', local),
                'args': _encode_value(list(value.args), f'{where}.args', local),
                'keywords': _encode_value(dict(value.keywords), f'{where}.keywords', local)}
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
        return _encode_ref(value, where, local)
    text = repr(value)
    raise ExportError(
        f'{where} is {type(value).__name__} {text if len(text) < 60 else text[:57] + "..."}, '
        'which a deploy file cannot store: use literals (numbers, strings, lists, tuples, '
        'dicts), dtypes, functools.partial, or classes/functions importable by name')


def _encode_ref(obj, where, local):
    modname = getattr(obj, '__module__', None)
    qualname = getattr(obj, '__qualname__', None)
    if not modname or not qualname or '<' in qualname:
        raise ExportError(f'{where} is {obj!r}, which has no importable name (defined inside '
                          'a function, or a lambda); define it at module level')
    ref = {'__ref__': f'{modname}:{qualname}'}
    if local is None:  # only checking that the value can be stored
        return ref
    roots, packages, found = local
    if modname in roots or any(modname == p or modname.startswith(p + '.') for p in packages):
        found.append(obj)
        return {**ref, 'exported': True}
    try:
        same = _import_by_name(ref['__ref__']) is obj
    except ExportError as err:
        raise ExportError(
            f'{where} is {obj!r}, but {ref["__ref__"]} cannot be imported again ({err}); '
            'define it at module level in an importable module, or add its package to '
            'export_modules') from err
    if not same:
        raise ExportError(f'{where}: {ref["__ref__"]} imports a different object than '
                          f'{obj!r}; use the object the module defines')
    return ref


def initkw_code(enc):
    """
    A Python expression that rebuilds a JSON-form init value (the exported
    file defines ``_tl_import`` and ``_tl_partial``).

    Example:
        >>> from torch_liberator.deployer._initkw import initkw_code
        >>> initkw_code({'size': {'__tuple__': [2]}, 'eps': {'__float__': 'inf'}})
        "{'size': (2,), 'eps': float('inf')}"
    """
    if isinstance(enc, list):
        return '[' + ', '.join(initkw_code(v) for v in enc) + ']'
    if not isinstance(enc, dict):
        return repr(enc)
    if '__tuple__' in enc:
        items = [initkw_code(v) for v in enc['__tuple__']]
        return '(' + ', '.join(items) + (',)' if len(items) == 1 else ')')
    if '__float__' in enc:
        return f'float({enc["__float__"]!r})'
    if '__dtype__' in enc:
        return f'_tl_import("torch", {enc["__dtype__"]!r})'
    if '__ref__' in enc:
        modname, qualname = enc['__ref__'].split(':')
        return qualname if enc.get('exported') else f'_tl_import({modname!r}, {qualname!r})'
    if '__partial__' in enc:
        parts = [initkw_code(enc['__partial__'])] + [initkw_code(v) for v in enc['args']]
        parts += [f'{k}={initkw_code(v)}' for k, v in enc['keywords'].items()]
        return '_tl_partial(' + ', '.join(parts) + ')'
    return '{' + ', '.join(f'{k!r}: {initkw_code(v)}' for k, v in enc.items()) + '}'
