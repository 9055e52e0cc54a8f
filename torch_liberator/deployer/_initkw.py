"""
The keyword arguments that rebuild a model ("initkw"): find them, and store
them without pickling.

:func:`infer_initkw` decides where they come from: an explicit argument
wins, then ``model._initkw``, then the attributes a model stores under the
names of its ``__init__`` parameters. Values are stored in a JSON form
(literals; tuples, non-finite floats, dtypes, ``functools.partial`` and
classes/functions by import path are tagged) that the exporter turns back
into Python source for the file's ``get_initkw()``. Nothing is ever pickled.

Example:
    >>> import torch
    >>> from torch_liberator.deployer._initkw import infer_initkw, encode_initkw
    >>> kw = infer_initkw(torch.nn.Linear(2, 3))
    >>> kw
    {'in_features': 2, 'out_features': 3}
    >>> encode_initkw({'size': (2, 3), 'act': torch.nn.ReLU})
    {'size': {'__tuple__': [2, 3]}, 'act': {'__ref__': 'torch.nn.modules.activation:ReLU'}}
"""
import functools
import importlib
import inspect
import math
import re

from torch_liberator.errors import ExportError

__all__ = ['encode_initkw', 'import_by_name', 'infer_initkw', 'parse_initkw',
           'resolve_factory', 'unconfirmed_arguments']

#: factory arguments that would download weights at every load; a deploy
#: file holds the weights, so they must be off (False / None)
PRETRAINED_ARGS = ('pretrained', 'pretrained_backbone', 'weights', 'weights_backbone')


def encode_initkw(initkw):
    """
    The JSON form of init keyword arguments (what a manifest records).

    Classes and functions are recorded by import path, which must find the
    same object again.

    Args:
        initkw (dict): keyword arguments.

    Returns:
        dict: JSON-serializable.

    Raises:
        ExportError: a value cannot be stored without pickling.

    Example:
        >>> import math, torch
        >>> from torch_liberator.deployer._initkw import encode_initkw
        >>> encode_initkw({'eps': math.inf, 'dtype': torch.float16})
        {'eps': {'__float__': 'inf'}, 'dtype': {'__dtype__': 'float16'}}
    """
    local = LocalRefs(None, ())
    return {k: encode_value(v, f'initkw[{k!r}]', local) for k, v in initkw.items()}


def infer_initkw(model, initkw=None):
    """
    Work out the keyword arguments that rebuild ``model``.

    An explicit ``initkw`` wins; then ``model._initkw``; otherwise each
    parameter of ``type(model).__init__`` is read from the attribute of the
    same name (or ``_name``) the model stores. Parameters with a default that
    are not stored are left out (the default applies). Submodules and
    tensors are never taken as init arguments.

    Args:
        model (torch.nn.Module): the model instance.
        initkw (dict | None): explicit keyword arguments.

    Returns:
        dict: keyword arguments.

    Raises:
        ExportError: a required argument cannot be found, or an explicit
            key is not an argument of ``__init__``.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._initkw import infer_initkw
        >>> infer_initkw(torch.nn.Conv2d(3, 8, 5))
        {'in_channels': 3, 'out_channels': 8, 'kernel_size': (5, 5), 'stride': (1, 1), 'padding': (0, 0), 'dilation': (1, 1), 'groups': 1, 'padding_mode': 'zeros'}
        >>> class Net(torch.nn.Module):
        ...     def __init__(self, width, depth):
        ...         super().__init__()
        ...         self.width = width
        >>> try:
        ...     infer_initkw(Net(4, 2))
        ... except ValueError as err:
        ...     print(str(err)[:60])
        cannot infer the init arguments of Net: ['depth'] are requir
    """
    return resolve_initkw(model, initkw)[0]


def resolve_initkw(model, initkw):
    """
    :func:`infer_initkw`, and where the arguments came from.

    Returns:
        Tuple[dict, str]: ``(initkw, how)``, ``how`` one of ``'argument'``,
        ``'_initkw'``, ``'inferred'``.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._initkw import resolve_initkw
        >>> resolve_initkw(torch.nn.ReLU(), None)
        ({'inplace': False}, 'inferred')
    """
    import torch
    cls = model if isinstance(model, type) else type(model)
    params = _init_parameters(cls)
    takes_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if initkw is None and not isinstance(model, type):
        stored = getattr(model, '_initkw', None)
        if isinstance(stored, dict):
            return _check_names(cls, dict(stored), names, takes_var_kw), '_initkw'
    if initkw is not None:
        if not isinstance(initkw, dict):
            raise ExportError(
                f'initkw must be a dict of keyword arguments, got '
                f'{type(initkw).__name__}')
        return _check_names(cls, dict(initkw), names, takes_var_kw), 'argument'
    if isinstance(model, type):
        found, missing = {}, [p.name for p in params if p.default is p.empty
                              and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    else:
        found, missing = {}, []
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            value = _stored_value(model, param.name, torch)
            if value is not _MISSING:
                try:
                    encode_value(value, f'initkw[{param.name!r}]', local=None)
                except ExportError:
                    value = _MISSING
            if value is not _MISSING and param.kind is not param.POSITIONAL_ONLY:
                found[param.name] = value
            elif param.default is param.empty:
                missing.append(param.name)
    if missing:
        raise ExportError(
            f'cannot infer the init arguments of {cls.__name__}: {missing} are '
            f'required by {cls.__name__}.__init__ but the model has no '
            '_initkw and stores no usable attribute of the same name; pass '
            'initkw={...} to deploy (or set model._initkw)')
    return found, 'inferred'



def unconfirmed_arguments(model, initkw):
    """
    The ``__init__`` arguments an inferred ``initkw`` leaves to their defaults.

    The model did not store them, so nothing says the defaults are what it
    was built with (timm's ``VisionTransformer`` does not store
    ``num_heads``). ``'**kwargs'`` is listed when ``__init__`` takes extra
    keyword arguments that inference cannot see.

    Args:
        model (torch.nn.Module): the model.
        initkw (dict): the inferred keyword arguments.

    Returns:
        List[str]: argument names, in signature order.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._initkw import infer_initkw, unconfirmed_arguments
        >>> model = torch.nn.Linear(2, 3)
        >>> unconfirmed_arguments(model, infer_initkw(model))
        ['bias', 'device', 'dtype']
    """
    params = _init_parameters(type(model))
    out = [p.name for p in params if p.name not in initkw
           and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        out.append('**kwargs')
    return out


def _init_parameters(cls):
    try:
        return list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []


def import_by_name(name):
    """
    The object an import path names: ``'module:qualname'`` (or, for a
    module-level name, ``'module.name'``).

    Raises:
        ExportError: it cannot be imported; the message says why.

    Example:
        >>> from torch_liberator.deployer._initkw import import_by_name
        >>> import_by_name('torch.nn:Linear').__name__
        'Linear'
        >>> import_by_name('collections.OrderedDict').__name__
        'OrderedDict'
    """
    if not isinstance(name, str) or not _REF_RE.match(name):
        raise ExportError(
            f'{name!r} is not an import path; write MODULE:NAME (e.g. '
            "'torchvision.models:resnet18') or MODULE.NAME")
    modname, sep, qualname = name.partition(':')
    if not sep:
        modname, _, qualname = name.rpartition('.')
        if not modname:
            raise ExportError(f'{name!r} names no module; write MODULE:NAME')
    try:
        obj = importlib.import_module(modname)
    except Exception as err:  # a module may raise anything on import
        raise ExportError(
            f'cannot import {modname!r} (for {name!r}): {type(err).__name__}: '
            f'{_one_line(err)}') from err
    for part in qualname.split('.'):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ExportError(f'{name!r}: {modname!r} has no {qualname!r}') from None
    return obj


_REF_RE = re.compile(r'^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$')


def _one_line(err):
    return ' '.join(str(err).split())


def resolve_factory(factory, initkw=None):
    """
    A factory that builds a model, its import path, and its arguments.

    Args:
        factory (str | Callable): ``'module:name'`` (or ``'module.name'``)
            such as ``'torchvision.models:resnet18'`` or
            ``'timm:create_model'``, or the function (or class) itself,
            which must be importable by that path.
        initkw (dict | None): its keyword arguments. Those that would fetch
            pretrained weights at every load (:data:`PRETRAINED_ARGS`) must
            be off: the deploy file holds the weights.

    Returns:
        Tuple[Callable, str, dict]: the factory, ``'module:qualname'`` and
        the keyword arguments.

    Raises:
        ExportError: it cannot be imported again by name, is not callable,
            or the arguments ask for pretrained weights.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._initkw import resolve_factory
        >>> func, ref, kw = resolve_factory('torch.nn.Linear', {'in_features': 1, 'out_features': 2})
        >>> func is torch.nn.Linear, ref
        (True, 'torch.nn:Linear')
        >>> resolve_factory(torch.nn.Linear)[1]
        'torch.nn.modules.linear:Linear'
    """
    if isinstance(factory, str):  # keep the path as the user wrote it
        name = factory
        factory = import_by_name(name)
        ref = name if ':' in name else ':'.join(name.rsplit('.', 1))
    else:
        ref = None
    if not callable(factory):
        raise ExportError(
            f'factory {factory!r} is not callable; name a function (or '
            "class) that builds the model, e.g. 'torchvision.models:resnet18'")
    ref = ref or _encode_ref(factory, 'factory', local=None)['__ref__']
    if import_by_name(ref) is not factory:
        raise ExportError(
            f'factory {factory!r} cannot be imported again as {ref!r}; '
            'define it at module level in an importable module')
    initkw = {} if initkw is None else initkw
    if not isinstance(initkw, dict):
        raise ExportError(
            f'initkw must be a dict of keyword arguments, got {type(initkw).__name__}')
    fetch = {k: v for k, v in initkw.items() if k in PRETRAINED_ARGS
             and v is not None and v is not False}
    if fetch:
        raise ExportError(
            f'initkw {fetch} would make {ref} fetch pretrained weights at every '
            'load, and the deploy file holds the weights already; pass '
            'weights=None / pretrained=False')
    encode_value(initkw, 'initkw', local=None)  # storable without pickling
    return factory, ref, dict(initkw)


def parse_initkw(text, name='initkw'):
    """
    Keyword arguments from JSON text, as the command line takes them.

    A string of the form ``MODULE:NAME`` (``"torchvision.models.resnet:
    Bottleneck"``) stands for the class or function it names; the tagged
    JSON form a manifest records (``{"__tuple__": [...]}``,
    ``{"__dtype__": "float16"}``, ``{"__ref__": "torch.nn:ReLU"}``, ...) is
    accepted too.

    Args:
        text (str): a JSON object.
        name (str): what to call it in error messages.

    Returns:
        dict

    Raises:
        ExportError: not a JSON object, or a name that cannot be imported.

    Example:
        >>> from torch_liberator.deployer._initkw import parse_initkw
        >>> kw = parse_initkw('{"block": "torch.nn:ReLU", "size": {"__tuple__": [2, 3]}, "name": "relu"}')
        >>> kw['block'].__name__, kw['size'], kw['name']
        ('ReLU', (2, 3), 'relu')
    """
    import json
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ExportError(f'{name} is not valid JSON ({err}): {text!r}') from err
    if not isinstance(data, dict):
        raise ExportError(f'{name} must be a JSON object, got {text!r}')
    return {k: _decode_value(v, f'{name}[{k!r}]', 0) for k, v in data.items()}


_NAME_REF_RE = re.compile(r'^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$')


def _decode_value(enc, where, depth):
    import torch
    if depth > 50:
        raise ExportError(f'{where} is nested too deeply')
    if isinstance(enc, str):
        return import_by_name(enc) if _NAME_REF_RE.match(enc) else enc
    if isinstance(enc, list):
        return [_decode_value(v, f'{where}[{i}]', depth + 1) for i, v in enumerate(enc)]
    if not isinstance(enc, dict):
        return enc
    tags = [m for m in _MARKERS if m in enc]
    if not tags:
        return {k: _decode_value(v, f'{where}[{k!r}]', depth + 1) for k, v in enc.items()}
    tag, value = tags[0], enc[tags[0]]
    if tag == '__tuple__' and isinstance(value, list):
        return tuple(_decode_value(v, f'{where}[{i}]', depth + 1) for i, v in enumerate(value))
    if tag == '__float__' and value in ('inf', '-inf', 'nan'):
        return float(value)
    if tag == '__ref__' and isinstance(value, str):
        return import_by_name(value)
    if tag == '__dtype__' and isinstance(getattr(torch, str(value), None), torch.dtype):
        return getattr(torch, value)
    if tag == '__partial__' and isinstance(enc.get('args', []), list) and isinstance(
            enc.get('keywords', {}), dict):
        func = _decode_value(value, f'{where}.func', depth + 1)
        args = [_decode_value(v, f'{where}.args', depth + 1) for v in enc.get('args', [])]
        keywords = {k: _decode_value(v, f'{where}.keywords', depth + 1)
                    for k, v in enc.get('keywords', {}).items()}
        return functools.partial(func, *args, **keywords)
    raise ExportError(f'{where}: {enc!r} is not a valid {tag} value')

_MISSING = object()


def _stored_value(model, name, torch):
    # only what the instance stored itself: class attributes such as
    # torch.nn.Module._version must not pass for an init argument
    stored = vars(model)
    for attr in (name, '_' + name):
        if attr not in stored:
            continue
        value = stored[attr]
        if isinstance(value, (torch.nn.Module, torch.Tensor)) or inspect.ismethod(value):
            continue
        return value
    return _MISSING


def _check_names(cls, initkw, names, takes_var_kw):
    unknown = sorted(k for k in initkw if k not in names)
    if unknown and not takes_var_kw:
        raise ExportError(
            f'initkw has arguments {unknown} that {cls.__name__}.__init__ does '
            f'not take; valid names: {names}')
    return initkw


# --- init keyword values: JSON form and Python source ----------------------

_MARKERS = ('__tuple__', '__float__', '__ref__', '__dtype__', '__partial__')


def encode_value(value, where, local):
    """
    JSON form of one init value. ``local`` is a set that collects objects
    that must be exported with the code (None: only check).
    """
    import torch
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {'__float__': repr(value)}
    if isinstance(value, list):
        return [encode_value(v, f'{where}[{i}]', local) for i, v in enumerate(value)]
    if isinstance(value, tuple) and type(value) is tuple:
        return {'__tuple__': [encode_value(v, f'{where}[{i}]', local)
                              for i, v in enumerate(value)]}
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str) or k in _MARKERS]
        if bad:
            raise ExportError(
                f'{where} is a dict with keys {bad!r}; deploy files store '
                f'dicts with string keys other than {_MARKERS}')
        return {k: encode_value(v, f'{where}[{k!r}]', local) for k, v in value.items()}
    if isinstance(value, torch.dtype):
        return {'__dtype__': str(value).replace('torch.', '')}
    if isinstance(value, functools.partial):
        return {'__partial__': encode_value(value.func, f'{where}.func', local),
                'args': [encode_value(v, f'{where}.args', local) for v in value.args],
                'keywords': {k: encode_value(v, f'{where}.keywords', local)
                             for k, v in value.keywords.items()}}
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
        return _encode_ref(value, where, local)
    raise ExportError(
        f'{where} is {type(value).__name__} {_short_repr(value)}, which a '
        'deploy file cannot store: use literals (numbers, strings, lists, '
        'tuples, dicts), dtypes, functools.partial, or classes/functions '
        'importable by name')


def _short_repr(value):
    text = repr(value)
    return text if len(text) < 60 else text[:57] + '...'


def _encode_ref(obj, where, local):
    modname = getattr(obj, '__module__', None)
    qualname = getattr(obj, '__qualname__', None)
    if not modname or not qualname or '<' in qualname:
        raise ExportError(
            f'{where} is {obj!r}, which has no importable name (defined inside '
            'a function, or a lambda); define it at module level')
    if local is None:  # only checking that the value can be stored
        return {'__ref__': f'{modname}:{qualname}'}
    if local.is_local(obj):
        local.objects.append(obj)
        return {'__ref__': f'{modname}:{qualname}', 'exported': True}
    try:
        found = importlib.import_module(modname)
        for part in qualname.split('.'):
            found = getattr(found, part)
    except (ImportError, AttributeError) as err:
        raise ExportError(
            f'{where} is {obj!r}, but {modname}:{qualname} cannot be imported '
            f'again ({err}); define it at module level in an importable '
            'module, or add its package to export_modules') from err
    if found is not obj:
        raise ExportError(
            f'{where}: {modname}:{qualname} imports a different object than '
            f'{obj!r}; use the object the module defines')
    return {'__ref__': f'{modname}:{qualname}'}


def value_code(enc):
    """Python expression that rebuilds a JSON-form init value."""
    if isinstance(enc, list):
        return '[' + ', '.join(value_code(v) for v in enc) + ']'
    if isinstance(enc, dict):
        if '__tuple__' in enc:
            items = [value_code(v) for v in enc['__tuple__']]
            return '(' + ', '.join(items) + (',)' if len(items) == 1 else ')')
        if '__float__' in enc:
            return f'float({enc["__float__"]!r})'
        if '__dtype__' in enc:
            return f'_tl_import("torch", {enc["__dtype__"]!r})'
        if '__ref__' in enc:
            modname, qualname = enc['__ref__'].split(':')
            if enc.get('exported'):
                return qualname
            return f'_tl_import({modname!r}, {qualname!r})'
        if '__partial__' in enc:
            parts = [value_code(enc['__partial__'])]
            parts += [value_code(v) for v in enc['args']]
            parts += [f'{k}={value_code(v)}' for k, v in enc['keywords'].items()]
            return '_tl_partial(' + ', '.join(parts) + ')'
        return '{' + ', '.join(f'{k!r}: {value_code(v)}' for k, v in enc.items()) + '}'
    return repr(enc)


class LocalRefs:
    """Objects whose code is exported with the model (same module as the
    model, ``__main__``, or an ``export_modules`` package)."""

    def __init__(self, cls, export_modules):
        self.roots = set() if cls is None else {cls.__module__, '__main__'}
        self.packages = tuple(export_modules)
        self.objects = []

    def is_local(self, obj):
        modname = obj.__module__
        return modname in self.roots or any(
            modname == p or modname.startswith(p + '.') for p in self.packages)
