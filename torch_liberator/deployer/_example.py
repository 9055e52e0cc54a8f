"""
A behavioural check kept in a deploy file: example inputs and the outputs
the model gave for them when it was deployed.

``deploy(..., example_inputs=x)`` runs the model once (``eval()`` mode,
without gradients) and stores the inputs and outputs as
``example.safetensors``; the manifest's ``example`` entry records how they
nest (tuples, lists, dicts) and the tolerance. ``load_model(check=True)``
and ``python -m torch_liberator verify`` run the loaded model on the same
inputs and compare: floating-point tensors with :func:`torch.allclose`
(``rtol``, ``atol``; default :data:`EXAMPLE_RTOL`, :data:`EXAMPLE_ATOL`),
other tensors and plain values exactly; shapes and dtypes must match.

Example:
    >>> import torch
    >>> from torch_liberator.deployer._example import check_example, record_example
    >>> model = torch.nn.Linear(3, 2)
    >>> data, entry = record_example(model, torch.ones(1, 3))
    >>> entry['outputs']
    {'tensor': 'outputs'}
    >>> check_example(model, data, entry)['tensors']
    1
"""
import math

import torch

from torch_liberator.errors import DeployError

__all__ = ['EXAMPLE_ATOL', 'EXAMPLE_FNAME', 'EXAMPLE_RTOL', 'check_example',
           'record_example']

#: the member that holds the example inputs and outputs
EXAMPLE_FNAME = 'example.safetensors'
#: default relative tolerance of the comparison (float tensors)
EXAMPLE_RTOL = 1e-4
#: default absolute tolerance of the comparison (float tensors)
EXAMPLE_ATOL = 1e-5

_MAX_DEPTH = 32


def record_example(model, example_inputs, tolerance=None):
    """
    Run ``model`` on example inputs; return what a deploy file stores.

    Args:
        model (torch.nn.Module): the model (its train/eval flags are
            restored afterwards).
        example_inputs (Tensor | tuple): a tensor, or a tuple of positional
            arguments (tensors, or lists/tuples/dicts of them); any other
            value is one positional argument.
        tolerance (Tuple[float, float] | None): ``(rtol, atol)`` for the
            comparison; default ``(EXAMPLE_RTOL, EXAMPLE_ATOL)``.

    Returns:
        Tuple[bytes, dict]: the safetensors bytes and the manifest entry.

    Raises:
        DeployError: the model fails on the inputs, or inputs or outputs
            are not tensors (or nestings of them and plain values).

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._example import record_example
        >>> data, entry = record_example(torch.nn.Bilinear(2, 3, 1), (torch.zeros(1, 2), torch.ones(1, 3)))
        >>> entry['inputs'], entry['outputs']
        ({'tuple': [{'tensor': 'inputs.0'}, {'tensor': 'inputs.1'}]}, {'tensor': 'outputs'})
        >>> entry['rtol'], entry['atol']
        (0.0001, 1e-05)
    """
    rtol, atol = (EXAMPLE_RTOL, EXAMPLE_ATOL) if tolerance is None else tolerance
    if not all(isinstance(t, (int, float)) and math.isfinite(t) and t >= 0
               for t in (rtol, atol)):
        raise DeployError(
            f'example tolerance {tolerance!r} must be (rtol, atol), two finite '
            'numbers >= 0')
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    tensors = {}
    in_spec = _flatten(args, 'inputs', tensors)
    outputs = _run(model, args, 'deploy')
    out_spec = _flatten(outputs, 'outputs', tensors)
    from safetensors.torch import save
    entry = {'file': EXAMPLE_FNAME, 'inputs': in_spec, 'outputs': out_spec,
             'rtol': float(rtol), 'atol': float(atol)}
    try:
        return save({key: value.detach().cpu().contiguous().clone()
                     for key, value in tensors.items()}), entry
    except Exception as err:  # torch and safetensors raise their own error types
        raise DeployError(
            f'cannot store the example tensors as safetensors: {type(err).__name__}: '
            f'{" ".join(str(err).split())}') from err


def check_example(model, data, entry):
    """
    Run ``model`` on the stored inputs and compare with the stored outputs.

    Args:
        model (torch.nn.Module): the loaded model (flags restored after).
        data (bytes): the ``example.safetensors`` member (hash-checked).
        entry (dict): the manifest's ``example`` entry.

    Returns:
        dict: ``tensors`` (how many outputs were compared) and
        ``max_abs_diff`` (over float outputs; 0.0 if none).

    Raises:
        DeployError: the outputs differ beyond the tolerance, or the stored
            check is malformed.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._example import check_example, record_example
        >>> data, entry = record_example(torch.nn.Linear(2, 2), torch.ones(1, 2))
        >>> try:
        ...     check_example(torch.nn.Linear(2, 2), data, entry)
        ... except ValueError as err:
        ...     print(str(err)[:53])
        the loaded model's outputs differ from those stored a
    """
    rtol, atol = _read_tolerance(entry)
    tensors = _read_tensors(data)
    args = _unflatten(entry.get('inputs'), tensors, 'inputs', 0)
    if not isinstance(args, tuple):
        raise DeployError(f'the stored example inputs are not a tuple of arguments: {args!r}')
    device = next((t.device for t in model.parameters()), torch.device('cpu'))
    args = _to_device(args, device)
    outputs = _run(model, args, 'load')
    got = {}
    spec = _flatten(outputs, 'outputs', got, allow_error=True)
    if spec != entry.get('outputs'):
        raise DeployError(
            "the loaded model's outputs differ from those stored at deploy in "
            f'structure ({_short(spec)} vs {_short(entry.get("outputs"))}); the '
            'file does not rebuild the deployed model')
    worst, compared = 0.0, 0
    for key, value in got.items():
        want = tensors.get(key)
        if want is None:
            raise DeployError(f'the stored example has no tensor {key!r}')
        value = value.detach().cpu()
        if value.shape != want.shape or value.dtype != want.dtype:
            raise DeployError(
                f"the loaded model's output {key} is {value.dtype} "
                f'{tuple(value.shape)}, but {want.dtype} {tuple(want.shape)} was '
                'stored at deploy; the file does not rebuild the deployed model')
        compared += 1
        if value.is_floating_point() or value.is_complex():
            diff = (value - want).abs()
            finite = torch.isfinite(diff)
            if finite.any():
                worst = max(worst, float(diff[finite].max()))
            if not torch.allclose(value, want, rtol=rtol, atol=atol, equal_nan=True):
                raise DeployError(
                    f"the loaded model's outputs differ from those stored at "
                    f'deploy: {key} by up to {float(diff.max()):.3g} (tolerance '
                    f'rtol={rtol:g}, atol={atol:g}); the file does not rebuild '
                    'the deployed model (or the model is not deterministic)')
        elif not torch.equal(value, want):
            raise DeployError(
                f"the loaded model's output {key} differs from the one stored at "
                'deploy; the file does not rebuild the deployed model')
    return {'tensors': compared, 'max_abs_diff': worst}


def _run(model, args, when):
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            return model(*args)
    except Exception as err:  # the model's own code may raise anything
        raise DeployError(
            f'{type(model).__name__} failed on the example inputs at {when}: '
            f'{type(err).__name__}: {" ".join(str(err).split())}') from err
    finally:
        for module, mode in modes:
            module.training = mode


def _flatten(value, key, tensors, depth=0, allow_error=False):
    """The JSON spec of a nesting of tensors; tensors go into ``tensors``."""
    if depth > _MAX_DEPTH:
        raise DeployError(f'example {key} is nested more than {_MAX_DEPTH} deep')
    if isinstance(value, torch.Tensor):
        if key in tensors:
            raise DeployError(
                f'example {key} is named twice (a dict key holds a dot); use '
                'dict keys without dots')
        tensors[key] = value
        return {'tensor': key}
    if value is None or isinstance(value, (bool, int, str)) or (
            isinstance(value, float) and math.isfinite(value)):
        return {'value': value}
    if isinstance(value, (tuple, list)):
        kind = 'tuple' if isinstance(value, tuple) else 'list'
        return {kind: [_flatten(v, f'{key}.{i}', tensors, depth + 1, allow_error)
                       for i, v in enumerate(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {'dict': {k: _flatten(v, f'{key}.{k}', tensors, depth + 1, allow_error)
                         for k, v in value.items()}}
    if allow_error:
        return {'unsupported': type(value).__name__}
    raise DeployError(
        f'example {key} is a {type(value).__name__}, which a deploy file cannot '
        'store; use tensors, or tuples, lists and dicts of them (and plain '
        'numbers, strings, None)')


def _unflatten(spec, tensors, where, depth):
    """Rebuild a value from a spec read from a manifest (checked: hostile)."""
    if depth > _MAX_DEPTH or not isinstance(spec, dict) or len(spec) != 1:
        raise DeployError(f'the stored example spec at {where} is malformed: {_short(spec)}')
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


def _to_device(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _read_tolerance(entry):
    if not isinstance(entry, dict):
        raise DeployError(f'the manifest example entry is malformed: {_short(entry)}')
    rtol, atol = entry.get('rtol'), entry.get('atol')
    for name, value in (('rtol', rtol), ('atol', atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0):
            raise DeployError(f'the manifest example {name} {value!r} is not a number >= 0')
    return float(rtol), float(atol)


def _read_tensors(data):
    from safetensors.torch import load
    try:
        return load(bytes(data))
    except Exception as err:  # safetensors raises its own error types
        raise DeployError(
            f'{EXAMPLE_FNAME} is not a valid safetensors file: {type(err).__name__}: '
            f'{" ".join(str(err).split())}') from err


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'
