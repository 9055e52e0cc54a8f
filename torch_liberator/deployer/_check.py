"""
That a deploy file rebuilds the model it was given: the rebuild check at
deploy (on the ``meta`` device, before anything is written), building on
``meta`` at load, and the example check (inputs and outputs stored at
deploy, compared at load).

Example:
    >>> import torch
    >>> from torch_liberator.deployer._check import check_rebuild
    >>> check_rebuild(torch.nn.Linear(2, 3), torch.nn.Linear, {'in_features': 2, 'out_features': 3})
"""
import functools
import inspect
import math

import torch

from torch_liberator.errors import DeployError

__all__ = ['EXAMPLE_ATOL', 'EXAMPLE_FNAME', 'EXAMPLE_RTOL', 'build_assigned', 'build_on_meta',
           'check_example', 'check_materialized', 'check_rebuild', 'check_state_fits',
           'describe_layout_difference', 'record_example']

#: the member that holds the example inputs and outputs
EXAMPLE_FNAME = 'example.safetensors'
#: default tolerances of the example comparison (float tensors)
EXAMPLE_RTOL, EXAMPLE_ATOL = 1e-4, 1e-5
# attributes every torch.nn.Module has (hooks, flags): not configuration
_MODULE_MACHINERY = frozenset(vars(torch.nn.Module())) | {'training'}
# set on a model after it is built (timm, torch_liberator): compared only if __init__ made them
_POST_INIT = ('_initkw', 'pretrained_cfg', 'default_cfg', 'pretrained_model_args',
              '_model_args', 'pretrained_cfg_overlay')
_MAX_DEPTH = 32


def _check_tolerance(rtol, atol, what):
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
               and t >= 0 for t in (rtol, atol)):
        raise DeployError(f'{what} must be (rtol, atol), two finite numbers >= 0')
    return float(rtol), float(atol)


def _one_line(err):
    return f'{type(err).__name__}: {" ".join(str(err).split())}'


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def build_on_meta(cls, initkw):
    """
    ``cls(**initkw)`` built on the meta device (shapes only, no values).

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import build_on_meta
        >>> build_on_meta(torch.nn.Linear, {'in_features': 2, 'out_features': 3}).weight.shape
        torch.Size([3, 2])
    """
    with torch.device('meta'):
        return cls(**initkw)


def _holds_meta(value, depth=0):
    # a meta tensor in a module's __dict__ value (parameters, buffers, plain
    # attributes, and lists, tuples and dicts of them)
    if isinstance(value, torch.Tensor):
        return value.is_meta
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, (list, tuple)) and depth < 8 and any(
        _holds_meta(v, depth + 1) for v in value)


def build_assigned(cls, initkw, state):
    """
    ``cls(**initkw)`` built on meta, adopting ``state``'s tensors (no random
    init, no copy); None where that could differ from a normal build
    (building fails on meta, tied weights, a tensor left on meta after the
    load: non-persistent buffers, tensor attributes), so the caller builds
    normally.

    Raises:
        DeployError: the model was built but ``state`` does not fit it.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import build_assigned
        >>> state = torch.nn.Linear(2, 3).state_dict()
        >>> model = build_assigned(torch.nn.Linear, {'in_features': 2, 'out_features': 3}, state)
        >>> model.weight.data_ptr() == state['weight'].data_ptr()
        True
    """
    try:
        model = build_on_meta(cls, initkw)
    except Exception:  # the user's code may raise anything: build normally
        return None
    named = dict(model.named_parameters(remove_duplicate=False))
    named.update(model.named_buffers(remove_duplicate=False))
    if (len({id(t) for t in named.values()}) != len(named)  # tied weights stay tied
            or len({id(t) for t in state.values()}) != len(state)
            or any(not t.is_meta or (k in state and t.dtype != state[k].dtype)
                   for k, t in named.items())):  # made off meta, or cast by a normal load
        return None
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise DeployError(f'the deployed weights do not fit {cls.__name__}(**initkw): {err}; '
                          'use load_model(strict=False) to load what fits') from err
    return None if any(_holds_meta(vars(m)) for m in model.modules()) else model


def check_materialized(model):
    """
    Refuse a model whose tensors are on the ``meta`` device (no values).

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import check_materialized
        >>> check_materialized(torch.nn.Linear(2, 2))
    """
    named = list(model.named_parameters(remove_duplicate=False))
    named += list(model.named_buffers(remove_duplicate=False))
    meta = [name for name, tensor in named if tensor.is_meta]
    if meta:
        raise DeployError(
            f'cannot deploy {type(model).__name__}: its tensors {meta[:5]}'
            f'{" ..." if len(meta) > 5 else ""} are on the meta device and hold no values; '
            "give them values first (e.g. model.to_empty(device='cpu') and load the "
            'weights, or build the model off meta)')


def describe_layout_difference(want, got, limit=3):
    """
    One line saying how the state-dict layout ``got`` differs from ``want``
    (key -> tensor or shape); '' if they agree.

    Example:
        >>> from torch_liberator.deployer._check import describe_layout_difference
        >>> describe_layout_difference({'w': (2, 3), 'b': (2,)}, {'w': (3, 3), 'c': (1,)})
        "missing ['b']; unexpected ['c']; shapes: w (3, 3) instead of (2, 3)"
    """
    want = {k: tuple(getattr(v, 'shape', v)) for k, v in want.items()}
    got = {k: tuple(getattr(v, 'shape', v)) for k, v in got.items()}
    shapes = [f'{k} {got[k]} instead of {want[k]}' for k in want if k in got and want[k] != got[k]]
    parts = []
    for label, items in (('missing', [k for k in want if k not in got]),
                         ('unexpected', [k for k in got if k not in want]),
                         ('shapes:', shapes)):
        if items:
            named = ', '.join(items[:limit]) if label == 'shapes:' else str(items[:limit])
            more = f' and {len(items) - limit} more' if len(items) > limit else ''
            parts.append(f'{label} {named}{more}')
    return '; '.join(parts)


# (builder, initkw text, layout) whose layout check passed: a training loop
# deploys the same model again and again
_PASSED = set()


def check_rebuild(model, build, initkw, how='argument', unconfirmed=(), assume_defaults=False):
    """
    Refuse ``initkw`` unless ``build(**initkw)``, built on meta, is of the
    model's class with its state-dict keys and shapes; with ``unconfirmed``
    arguments (defaults the model does not store) and not
    ``assume_defaults``, also with the same submodules and plain attributes.

    Raises:
        DeployError: names what differs and what to pass instead.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import check_rebuild
        >>> try:  # as if inference had not found p
        ...     check_rebuild(torch.nn.Dropout(p=0.3), torch.nn.Dropout, {}, 'inferred', ['p'])
        ... except ValueError as err:
        ...     print(str(err)[:53])
        cannot tell the init arguments of Dropout: the model
    """
    name = getattr(build, '__name__', repr(build))
    want = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    compare = bool(unconfirmed) and not assume_defaults
    key = None if compare else (build, repr(initkw), tuple(sorted(want.items())))
    try:
        if key in _PASSED:
            return
    except TypeError:  # an unhashable builder
        key = None
    label = f'initkw {initkw} (from {how})'
    probe = _build_probe(build, name, initkw, label)
    if type(probe) is not type(model):
        raise DeployError(
            f'{label} makes {name} build a {type(probe).__qualname__}, not the model\'s '
            f'{type(model).__qualname__}; name the factory and arguments that built this model')
    diff = describe_layout_difference(want, probe.state_dict())
    if diff:
        what = f'a {name}' if inspect.isclass(build) else f'{type(probe).__name__} (via {name})'
        raise DeployError(f"{label} builds {what} whose state dict differs from the model's "
                          f'(rebuilt: {diff}); {_hint(build, name, unconfirmed)}')
    found = _attribute_differences(model, probe) if compare else []
    if found:
        where, mine, theirs = found[0]
        leaves = {w.rsplit('.', 1)[-1].lstrip('_') for w, _, _ in found}
        likely = [n for n in unconfirmed if any(
            leaf == n or leaf.endswith('_' + n) for leaf in leaves)]
        likely = f' (likely {likely})' if likely else ''
        raise DeployError(
            f'cannot tell the init arguments of {name}: the model does not store '
            f'{list(unconfirmed)}, so their defaults would be used, and rebuilt that way it '
            f'differs{likely} at {where} ({_short(mine, 40)} in the model, '
            f'{_short(theirs, 40)} rebuilt; {len(found)} difference(s)); pass initkw= with '
            'their values (or set model._initkw), or assume_defaults=True if the defaults '
            'are right')
    if key is not None:
        _PASSED.add(key)


def check_state_fits(build, initkw, state, where):
    """
    Refuse ``state`` unless it loads strictly (load hooks included) into
    ``build(**initkw)`` built on meta.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import check_state_fits
        >>> state = torch.nn.Linear(3, 3).state_dict()
        >>> check_state_fits(torch.nn.Linear, {'in_features': 3, 'out_features': 3}, state, 'w.pt')
    """
    name = getattr(build, '__name__', repr(build))
    label = f'{name}(**{initkw})'
    probe = _build_probe(build, name, initkw, label)
    diff = describe_layout_difference(probe.state_dict(), state)
    if not diff:
        try:
            probe.load_state_dict(state, strict=True, assign=any(
                t.is_meta for t in probe.state_dict().values()))
        except Exception as err:  # a model's load hooks may raise anything
            diff = _one_line(err)
    if diff:
        raise DeployError(f'the weights in {where} do not load strictly into {label}: {diff}')


def _build_probe(build, name, initkw, label):
    # build(**initkw) on meta (for real if that fails), every required argument given
    try:
        params = inspect.signature(build).parameters.values()
    except (TypeError, ValueError):
        params = []
    missing = [p.name for p in params if p.default is p.empty and p.name not in initkw
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    if missing:
        fix = ('pass every argument the model was built with, or name the factory that '
               "built it (factory='torchvision.models:resnet50', initkw={...})"
               if inspect.isclass(build) else 'pass them in initkw')
        raise DeployError(f'{label} cannot build {name}: it requires {missing}, which '
                          f'initkw does not give; {fix}')
    try:
        return build_on_meta(build, initkw)
    except Exception:  # some models cannot be built on meta: build for real
        pass
    try:
        with torch.no_grad():
            return build(**initkw)
    except Exception as err:  # the user's code may raise anything
        raise DeployError(f'{label} does not build {name}: {_one_line(err)}') from err


def _hint(build, name, unconfirmed):
    try:
        varargs = inspect.isclass(build) and any(
            p.kind is p.VAR_POSITIONAL for p in inspect.signature(build).parameters.values())
    except (TypeError, ValueError):
        varargs = False
    if varargs:
        return (f'{name} takes positional *args (e.g. submodules, as torch.nn.Sequential '
                'does), which initkw cannot give; deploy a model class of your own that '
                'builds its layers')
    if unconfirmed:
        return (f'the model does not store {list(unconfirmed)}, so their defaults were '
                'used; pass initkw= (or set model._initkw)')
    return 'pass the initkw the model was built with'


def _attribute_differences(model, probe):
    # (where, model's value, rebuilt value) for each submodule and plain attribute that differ
    theirs = dict(probe.named_modules(remove_duplicate=False))
    out = []
    for where, module in model.named_modules(remove_duplicate=False):
        other = theirs.pop(where, None)
        if type(module) is not type(other):
            out.append((where or '<root>', type(module).__name__, type(other).__name__))
            continue
        attrs, other_attrs = vars(module), vars(other)
        for attr in sorted((attrs.keys() | other_attrs.keys()) - _MODULE_MACHINERY):
            if attr not in other_attrs and (not where or attr in _POST_INIT):
                continue  # set on the model after it was built
            if attr not in attrs or attr not in other_attrs or not _same(
                    attrs[attr], other_attrs[attr]):
                out.append((f'{where}.{attr}' if where else attr,
                            attrs.get(attr, '<unset>'), other_attrs.get(attr, '<unset>')))
    return out + [(where, 'NoneType', type(other).__name__) for where, other in theirs.items()]


def _same(a, b, depth=0):
    # equal as configuration: tensors by shape, submodules by place (compared
    # on their own), routines and classes by identity
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
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
        return _same((a.func, a.args, a.keywords), (b.func, b.args, b.keywords), depth + 1)
    if inspect.ismethod(a):  # bound to model and rebuilt model: same function?
        return a.__func__ is b.__func__
    if inspect.isroutine(a) or inspect.isclass(a):
        return False  # not the same object
    if type(a).__eq__ is not object.__eq__:
        try:
            return bool(a == b)
        except Exception:  # an __eq__ that does not give a bool
            return False
    return hasattr(a, '__dict__') and _same(vars(a), vars(b), depth + 1)


def record_example(model, example_inputs, tolerance=None):
    """
    Run ``model`` in eval mode (flags restored) on example inputs (a tensor or
    a tuple of arguments: tensors or nestings of them); returns the
    ``example.safetensors`` bytes and the manifest entry.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import record_example
        >>> inputs = (torch.zeros(1, 2), torch.ones(1, 3))
        >>> data, entry = record_example(torch.nn.Bilinear(2, 3, 1), inputs)
        >>> entry['inputs'], entry['outputs'], entry['rtol']
        ({'tuple': [{'tensor': 'inputs.0'}, {'tensor': 'inputs.1'}]}, {'tensor': 'outputs'}, 0.0001)
    """
    from safetensors.torch import save
    rtol, atol = _check_tolerance(*(tolerance or (EXAMPLE_RTOL, EXAMPLE_ATOL)),
                                  f'example tolerance {tolerance!r}')
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    tensors = {}
    entry = {'file': EXAMPLE_FNAME, 'inputs': _flatten(args, 'inputs', tensors),
             'outputs': _flatten(_run(model, args, 'deploy'), 'outputs', tensors),
             'rtol': rtol, 'atol': atol}
    try:
        return save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}), entry
    except Exception as err:  # torch and safetensors raise their own error types
        raise DeployError(
            f'cannot store the example tensors as safetensors: {_one_line(err)}') from err


def check_example(model, data, entry):
    """
    Run ``model`` on the stored inputs and compare with the stored outputs;
    returns ``{'tensors': compared, 'max_abs_diff': over float outputs}``.

    Raises:
        DeployError: the outputs differ, or the stored check is malformed.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._check import check_example, record_example
        >>> model = torch.nn.Linear(2, 2)
        >>> check_example(model, *record_example(model, torch.ones(1, 2)))
        {'tensors': 1, 'max_abs_diff': 0.0}
    """
    from safetensors.torch import load
    entry = entry if isinstance(entry, dict) else {}
    rtol, atol = _check_tolerance(entry.get('rtol'), entry.get('atol'),
                                  f"the manifest example's tolerance {_short(entry.get('rtol'))}, "
                                  f"{_short(entry.get('atol'))}")
    device = next((t.device for t in model.parameters()), torch.device('cpu'))
    try:
        tensors = {k: v.to(device) for k, v in load(bytes(data)).items()}
    except Exception as err:  # safetensors raises its own error types
        raise DeployError(f'{EXAMPLE_FNAME} is not a valid safetensors file: '
                          f'{_one_line(err)}') from err
    args = _unflatten(entry.get('inputs'), tensors, 'inputs', 0)
    if not isinstance(args, tuple):
        raise DeployError(f'the stored example inputs are not a tuple of arguments: {args!r}')
    got = {}
    spec = _flatten(_run(model, args, 'load'), 'outputs', got, strict=False)
    if spec != entry.get('outputs'):
        raise DeployError(
            "the loaded model's outputs differ from those stored at deploy in structure "
            f'({_short(spec)} vs {_short(entry.get("outputs"))}); the file does not rebuild '
            'the deployed model')
    worst = 0.0
    for key, value in got.items():
        want = tensors.get(key)
        if want is None:
            raise DeployError(f'the stored example has no tensor {key!r}')
        if value.shape != want.shape or value.dtype != want.dtype:
            raise DeployError(
                f"the loaded model's output {key} is {value.dtype} {tuple(value.shape)}, but "
                f'{want.dtype} {tuple(want.shape)} was stored at deploy; the file does not '
                'rebuild the deployed model')
        if not (value.is_floating_point() or value.is_complex()):
            if not torch.equal(value, want):
                raise DeployError(f"the loaded model's output {key} differs from the one "
                                  'stored at deploy; the file does not rebuild the deployed model')
            continue
        diff = (value - want).abs()
        worst = max(worst, float(diff.nan_to_num(0.0, 0.0, 0.0).max()) if diff.numel() else 0.0)
        if not torch.allclose(value, want, rtol=rtol, atol=atol, equal_nan=True):
            raise DeployError(
                f"the loaded model's outputs differ from those stored at deploy: {key} by "
                f'up to {float(diff.max()):.3g} (tolerance rtol={rtol:g}, atol={atol:g}); '
                'the file does not rebuild the deployed model (or the model is not '
                'deterministic)')
    return {'tensors': len(got), 'max_abs_diff': worst}


def _run(model, args, when):
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            return model(*args)
    except Exception as err:  # the model's own code may raise anything
        raise DeployError(f'{type(model).__name__} failed on the example inputs at {when}: '
                          f'{_one_line(err)}') from err
    finally:
        for module, mode in modes:
            module.training = mode


def _flatten(value, key, tensors, depth=0, strict=True):
    # the JSON spec of a nesting of tensors; the tensors go into ``tensors``
    if depth > _MAX_DEPTH:
        raise DeployError(f'example {key} is nested more than {_MAX_DEPTH} deep')
    if isinstance(value, torch.Tensor):
        if key in tensors:
            raise DeployError(f'example {key} is named twice (a dict key holds a dot); use '
                              'dict keys without dots')
        tensors[key] = value
        return {'tensor': key}
    if value is None or isinstance(value, (bool, int, str)) or (
            isinstance(value, float) and math.isfinite(value)):
        return {'value': value}
    if isinstance(value, (tuple, list)):
        return {'tuple' if isinstance(value, tuple) else 'list': [
            _flatten(v, f'{key}.{i}', tensors, depth + 1, strict) for i, v in enumerate(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {'dict': {k: _flatten(v, f'{key}.{k}', tensors, depth + 1, strict)
                         for k, v in value.items()}}
    if not strict:
        return {'unsupported': type(value).__name__}
    raise DeployError(
        f'example {key} is a {type(value).__name__}, which a deploy file cannot store; use '
        'tensors, or tuples, lists and dicts of them (and plain numbers, strings, None)')


def _unflatten(spec, tensors, where, depth):
    # a value rebuilt from a spec read from a manifest (checked: hostile)
    if depth <= _MAX_DEPTH and isinstance(spec, dict) and len(spec) == 1:
        (kind, body), = spec.items()
        if kind == 'tensor' and isinstance(body, str) and body in tensors:
            return tensors[body]
        if kind == 'value' and (body is None or isinstance(body, (bool, int, float, str))):
            return body
        if kind in ('tuple', 'list') and isinstance(body, list):
            items = [_unflatten(v, tensors, f'{where}.{i}', depth + 1) for i, v in enumerate(body)]
            return tuple(items) if kind == 'tuple' else items
        if kind == 'dict' and isinstance(body, dict):
            return {k: _unflatten(v, tensors, f'{where}.{k}', depth + 1) for k, v in body.items()}
    raise DeployError(f'the stored example spec at {where} is malformed: {_short(spec)}')
