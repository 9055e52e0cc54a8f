"""
What :func:`~torch_liberator.deploy` checks before it writes anything: that
the file would rebuild the model it is given.

* :func:`check_materialized`: every tensor holds data (none on ``meta``).
* :func:`check_rebuild`: the class (or factory) called with the init
  arguments, on the ``meta`` device, gives the model's class and exactly
  its state-dict keys and shapes. When some arguments were left to their
  defaults because the model does not store them (an inferred ``initkw``),
  the rebuilt model must also equal the model in every plain attribute of
  every submodule (``num_heads``, ``eps``, ``p`` of a dropout, activation
  classes, ...): same shapes with a different configuration is a different
  model.

Example:
    >>> import torch
    >>> from torch_liberator.deployer._check import check_rebuild
    >>> model = torch.nn.Linear(2, 3)
    >>> check_rebuild(model, torch.nn.Linear, {'in_features': 2, 'out_features': 3})
    >>> try:
    ...     check_rebuild(model, torch.nn.Linear, {'in_features': 2, 'out_features': 4})
    ... except ValueError as err:
    ...     print(str(err)[:62])
    initkw {'in_features': 2, 'out_features': 4} (from argument) b
"""
import functools
import inspect
import math

import torch

from torch_liberator.errors import DeployError

__all__ = ['check_materialized', 'check_rebuild', 'check_state_fits',
           'describe_layout_difference']

# attributes every torch.nn.Module has (hooks, flags): not configuration
_MODULE_MACHINERY = frozenset(vars(torch.nn.Module())) | {'training'}
# attributes commonly set on a model after it is built (timm's create_model,
# torch_liberator's own _initkw): compared only when __init__ made them
_POST_INIT = ('_initkw', 'pretrained_cfg', 'default_cfg', 'pretrained_model_args',
              '_model_args', 'pretrained_cfg_overlay')


def check_materialized(model):
    """
    Refuse a model whose parameters or buffers hold no data (``meta``).

    Raises:
        DeployError: names the tensors and how to give them values.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import check_materialized
        >>> with torch.device('meta'):
        ...     model = torch.nn.Linear(2, 2)
        >>> try:
        ...     check_materialized(model)
        ... except ValueError as err:
        ...     print(str(err)[:58])
        cannot deploy Linear: its tensors ['weight', 'bias'] are o
    """
    named = list(model.named_parameters(remove_duplicate=False))
    named += list(model.named_buffers(remove_duplicate=False))
    meta = [name for name, tensor in named if tensor.is_meta]
    if meta:
        raise DeployError(
            f'cannot deploy {type(model).__name__}: its tensors {meta[:5]}'
            f'{" ..." if len(meta) > 5 else ""} are on the meta device and hold '
            'no values; give them values first (e.g. model.to_empty(device='
            "'cpu') and load the weights, or build the model off meta)")


def _layout(state):
    return {key: tuple(value.shape) for key, value in state.items()}


def describe_layout_difference(want, got, limit=3):
    """
    One line saying how a state-dict layout differs from the one wanted
    ('' if they agree): keys it is missing, keys it has in excess, and
    shapes (``got instead of wanted``).

    Args:
        want (Dict[str, Tensor | Sequence[int]]): the model's state dict (or
            key -> shape).
        got (Dict[str, Tensor | Sequence[int]]): the other one.
        limit (int): how many keys to name per kind of difference.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import describe_layout_difference
        >>> describe_layout_difference({'w': (2, 3), 'b': (2,)}, {'w': (3, 3), 'c': (1,)})
        "missing ['b']; unexpected ['c']; shapes: w (3, 3) instead of (2, 3)"
    """
    want = {k: tuple(getattr(v, 'shape', v)) for k, v in want.items()}
    got = {k: tuple(getattr(v, 'shape', v)) for k, v in got.items()}
    parts = []
    for label, keys in (('missing', [k for k in want if k not in got]),
                        ('unexpected', [k for k in got if k not in want])):
        if keys:
            more = f' and {len(keys) - limit} more' if len(keys) > limit else ''
            parts.append(f'{label} {keys[:limit]}{more}')
    shapes = [k for k in want if k in got and want[k] != got[k]]
    if shapes:
        more = f' and {len(shapes) - limit} more' if len(shapes) > limit else ''
        parts.append('shapes: ' + ', '.join(
            f'{k} {got[k]} instead of {want[k]}' for k in shapes[:limit]) + more)
    return '; '.join(parts)


# (builder, initkw text, layout) whose layout check already passed
_PASSED = set()


def check_rebuild(model, build, initkw, how='argument', unconfirmed=(),
                  assume_defaults=False):
    """
    Refuse ``initkw`` unless ``build(**initkw)`` rebuilds ``model``.

    The model is built on the ``meta`` device (initializers skipped; a
    normal build if that fails). It must be of the model's class and have
    the model's state-dict keys and shapes. With ``unconfirmed`` arguments
    (left to their defaults because the model does not store them) it must
    also have the model's submodules and the same plain attributes in each.

    Args:
        model (torch.nn.Module): the model being deployed.
        build (Callable): its class, or a factory.
        initkw (dict): keyword arguments for ``build``.
        how (str): where ``initkw`` came from (for the message).
        unconfirmed (Sequence[str]): arguments whose defaults were used.
        assume_defaults (bool): trust those defaults (skip the attribute
            comparison; the layout is still checked).

    Raises:
        DeployError: names what differs and what to pass instead.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import check_rebuild
        >>> model = torch.nn.Dropout(p=0.3)
        >>> try:  # as if inference had not found p
        ...     check_rebuild(model, torch.nn.Dropout, {}, 'inferred', ['p'])
        ... except ValueError as err:
        ...     print(str(err)[:78])
        cannot tell the init arguments of Dropout: the model does not store ['p'], so
    """
    name = getattr(build, '__name__', repr(build))
    want = _layout(model.state_dict())
    compare = bool(unconfirmed) and not assume_defaults
    try:  # the layout check depends on these only; attributes are per model
        key = None if compare else (build, repr(initkw), tuple(sorted(want.items())))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _PASSED:
        return
    label = f'initkw {initkw} (from {how})'
    _check_signature(build, name, initkw, label)
    probe = _build_probe(build, name, initkw, label)
    if type(probe) is not type(model):
        raise DeployError(
            f'{label} makes {name} build a {type(probe).__qualname__}, not the '
            f"model's {type(model).__qualname__}; name the factory and "
            'arguments that built this model')
    diff = describe_layout_difference(want, _layout(probe.state_dict()))
    if diff:
        what = f'a {name}' if inspect.isclass(build) else f'{type(probe).__name__} (via {name})'
        raise DeployError(
            f'{label} builds {what} whose state dict differs from the '
            f"model's (rebuilt: {diff}); {_hint(build, name, unconfirmed)}")
    if compare:
        found = _attribute_differences(model, probe)
        if found:
            where, mine, theirs = found[0]
            leaves = {w.rsplit('.', 1)[-1].lstrip('_') for w, _, _ in found}
            likely = [n for n in unconfirmed if any(
                leaf == n or leaf.endswith('_' + n) for leaf in leaves)]
            likely = f' (likely {likely})' if likely else ''
            raise DeployError(
                f'cannot tell the init arguments of {name}: the model does not '
                f'store {list(unconfirmed)}, so their defaults would be used, '
                f'and rebuilt that way it differs{likely} at {where} ('
                f'{_short(mine)} in the model, {_short(theirs)} rebuilt; '
                f'{len(found)} difference(s)); pass initkw= with their values '
                '(or set model._initkw), or assume_defaults=True if the '
                'defaults are right')
    if key is not None:
        _PASSED.add(key)


def check_state_fits(build, initkw, state, where):
    """
    Refuse ``state`` unless it loads strictly into ``build(**initkw)``.

    The model is built on the ``meta`` device (a normal build if that
    fails) and loaded with ``load_state_dict(strict=True)``, so the model's
    own load hooks run too.

    Args:
        build (Callable): the model class or factory.
        initkw (dict): its keyword arguments.
        state (Dict[str, Tensor]): the weights.
        where (str): names the weights in the message.

    Raises:
        DeployError: names the keys and shapes that differ.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import check_state_fits
        >>> state = torch.nn.Linear(3, 3).state_dict()
        >>> try:
        ...     check_state_fits(torch.nn.Linear, {'in_features': 3, 'out_features': 4}, state, 'w.pt')
        ... except ValueError as err:
        ...     print(err)
        the weights in w.pt do not load strictly into Linear(**{'in_features': 3, 'out_features': 4}): shapes: weight (3, 3) instead of (4, 3), bias (3,) instead of (4,)
    """
    name = getattr(build, '__name__', repr(build))
    label = f'{name}(**{initkw})'
    _check_signature(build, name, initkw, label)
    probe = _build_probe(build, name, initkw, label)
    diff = describe_layout_difference(probe.state_dict(), state)
    if not diff:
        try:
            probe.load_state_dict(state, strict=True, assign=any(
                t.is_meta for t in probe.state_dict().values()))
        except Exception as err:  # a model's load hooks may raise anything
            diff = f'{type(err).__name__}: {" ".join(str(err).split())}'
    if diff:
        raise DeployError(
            f'the weights in {where} do not load strictly into {label}: {diff}')

def _check_signature(build, name, initkw, label):
    try:
        sig = inspect.signature(build)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    missing = [p.name for p in params if p.default is p.empty and p.name not in initkw
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    if missing:
        fix = ('pass every argument the model was built with, or name the '
               "factory that built it (factory='torchvision.models:resnet50', "
               'initkw={...})') if inspect.isclass(build) else 'pass them in initkw'
        raise DeployError(
            f'{label} cannot build {name}: it requires {missing}, which '
            f'initkw does not give; {fix}')


def _build_probe(build, name, initkw, label):
    from torch_liberator.deployer._metabuild import build_on_meta
    try:
        return build_on_meta(build, initkw)
    except Exception:  # some models cannot be built on meta: build for real
        pass
    try:
        with torch.no_grad():
            return build(**initkw)
    except Exception as err:  # the user's code may raise anything
        raise DeployError(
            f'{label} does not build {name}: {type(err).__name__}: '
            f'{" ".join(str(err).split())}') from err


def _hint(build, name, unconfirmed):
    params = []
    if inspect.isclass(build):
        try:
            params = list(inspect.signature(build.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            pass
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return (f'{name} takes positional *args (e.g. submodules, as '
                'torch.nn.Sequential does), which initkw cannot give; deploy a '
                'model class of your own that builds its layers')
    if unconfirmed:
        return (f'the model does not store {list(unconfirmed)}, so their '
                'defaults were used; pass initkw= (or set model._initkw)')
    return 'pass the initkw the model was built with'


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + '...'


def _attribute_differences(model, probe):
    """(where, model's value, rebuilt value) for every submodule and plain
    attribute in which the two differ."""
    mine = dict(model.named_modules(remove_duplicate=False))
    theirs = dict(probe.named_modules(remove_duplicate=False))
    out = []
    for where in mine.keys() | theirs.keys():
        if where not in mine or where not in theirs:
            out.append((where or '<root>', type(mine.get(where)).__name__,
                        type(theirs.get(where)).__name__))
    for where, module in mine.items():
        other = theirs.get(where)
        if other is None:
            continue
        if type(module) is not type(other):
            out.append((where or '<root>', type(module).__name__, type(other).__name__))
            continue
        attrs, other_attrs = vars(module), vars(other)
        for attr in sorted((attrs.keys() | other_attrs.keys()) - _MODULE_MACHINERY):
            if attr not in other_attrs and (not where or attr in _POST_INIT):
                continue  # set on the model after it was built
            path = f'{where}.{attr}' if where else attr
            if attr not in attrs or attr not in other_attrs:
                out.append((path, attrs.get(attr, '<unset>'), other_attrs.get(attr, '<unset>')))
            elif not _same(attrs[attr], other_attrs[attr]):
                out.append((path, attrs[attr], other_attrs[attr]))
    order = {name: index for index, name in enumerate(mine)}

    def module_index(item):
        path = item[0]
        head = path if path in order else path.rpartition('.')[0]
        return (order.get(head, len(order)), path)

    return sorted(out, key=module_index)


def _same(a, b, depth=0):
    """Equal as configuration: tensors by shape, submodules by place (they
    are compared on their own), routines and classes by identity."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.shape == b.shape)
    if type(a) is not type(b) or depth > 8:
        return False
    if isinstance(a, torch.nn.Module):
        return True
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, functools.partial):
        return (_same(a.func, b.func, depth + 1) and _same(a.args, b.args, depth + 1)
                and _same(a.keywords, b.keywords, depth + 1))
    if inspect.ismethod(a):  # bound to model and rebuilt model: same function?
        return a.__func__ is b.__func__
    if inspect.isroutine(a) or inspect.isclass(a):
        return False  # not the same object
    if type(a).__eq__ is not object.__eq__:
        try:
            return bool(a == b)
        except Exception:  # an __eq__ that does not give a bool
            return False
    if hasattr(a, '__dict__'):
        return _same(vars(a), vars(b), depth + 1)
    return False
