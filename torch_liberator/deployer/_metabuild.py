"""
Build a model on the meta device and adopt loaded tensors: no random
initialization, no memory for throw-away weights, no copy.

A strict :meth:`~torch_liberator.deployer.DeployedModel.load_model` already
holds every tensor the model needs, so building the model normally would
allocate and randomly initialize weights only to overwrite them. Built
under ``torch.device('meta')`` the model's tensors hold no data, and
``load_state_dict(assign=True)`` makes the loaded tensors its parameters.

On the meta device an initializer has nothing to fill, yet it still runs its
Python and dispatches its ops (for resnet50 about half the build time).
:class:`SkipMetaInit` answers every ``torch.nn.init`` function and every
in-place op that only changes values (``normal_``, ``fill_``, ``mul_``, ...)
on a meta tensor by returning that tensor, which is what the op would
return: shape, dtype and strides are unchanged by definition.

Example:
    >>> import torch
    >>> from torch_liberator.deployer._metabuild import build_assigned
    >>> state = torch.nn.Linear(2, 3).state_dict()
    >>> model = build_assigned(torch.nn.Linear, {'in_features': 2, 'out_features': 3}, state)
    >>> model.weight.data_ptr() == state['weight'].data_ptr()  # no copy
    True
"""
import torch
from torch.overrides import TorchFunctionMode

from torch_liberator.errors import DeployError

__all__ = ['SkipMetaInit', 'build_assigned', 'build_on_meta']

# in-place ops that change values only (never shape, dtype or strides)
_VALUE_OPS = (
    'normal_', 'uniform_', 'zero_', 'fill_', 'random_', 'bernoulli_',
    'exponential_', 'geometric_', 'log_normal_', 'cauchy_', 'erfinv_',
    'mul_', 'add_', 'sub_', 'div_', 'clamp_', 'clamp_min_', 'clamp_max_',
    'copy_', 'abs_', 'neg_', 'sqrt_', 'exp_', 'log_',
)


class SkipMetaInit(TorchFunctionMode):
    """
    A torch function mode in which initializers and value-only in-place ops
    on meta tensors return their tensor without running.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._metabuild import SkipMetaInit
        >>> with torch.device('meta'), SkipMetaInit():
        ...     conv = torch.nn.Conv2d(3, 8, 3)
        >>> conv.weight.shape, conv.weight.is_meta
        (torch.Size([8, 3, 3, 3]), True)
    """

    _skip = frozenset(
        {getattr(torch.Tensor, name) for name in _VALUE_OPS if hasattr(torch.Tensor, name)}
        | {func for name, func in vars(torch.nn.init).items()
           if name.endswith('_') and not name.startswith('_') and callable(func)})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if (func in self._skip and args and isinstance(args[0], torch.Tensor)
                and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


def build_on_meta(cls, initkw):
    """
    ``cls(**initkw)`` on the meta device, initializers skipped: the model's
    structure and tensor shapes, with no memory and no random numbers.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._metabuild import build_on_meta
        >>> build_on_meta(torch.nn.Linear, {'in_features': 2, 'out_features': 3}).weight.shape
        torch.Size([3, 2])
    """
    with torch.device('meta'), SkipMetaInit():
        return cls(**initkw)


def build_assigned(cls, initkw, state):
    """
    Build ``cls(**initkw)`` on the meta device and adopt ``state``'s tensors.

    Args:
        cls (type): the model class.
        initkw (dict): its constructor arguments.
        state (Dict[str, Tensor]): one distinct tensor per state-dict key.

    Returns:
        torch.nn.Module | None: the model owning ``state``'s tensors, or None
        when this model cannot be built that way (it fails on meta, ties
        weights, has non-persistent buffers or tensor attributes the state
        does not restore); the caller then builds it normally.

    Raises:
        DeployError: the model was built but ``state`` does not fit it.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._metabuild import build_assigned
        >>> state = {'weight': torch.ones(2, 2)}
        >>> try:
        ...     build_assigned(torch.nn.Linear, {'in_features': 2, 'out_features': 2}, state)
        ... except ValueError as err:
        ...     print(str(err)[:44])
        the deployed weights do not fit Linear(**ini
    """
    try:
        model = build_on_meta(cls, initkw)
    except Exception:
        return None
    params = list(model.named_parameters(remove_duplicate=False))
    buffers = list(model.named_buffers(remove_duplicate=False))
    tensors = [t for _, t in params + buffers]
    if len({id(t) for t in tensors}) != len(tensors):
        return None  # tied weights: let load_state_dict keep the ties
    if {n for n, _ in params + buffers} != set(model.state_dict()):
        return None  # non-persistent buffers would stay on meta
    if len({id(v) for v in state.values()}) != len(state):
        return None
    if _has_meta_attributes(model):
        return None  # e.g. self.scale = torch.tensor(2.0): not in the state
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise DeployError(
            f'the deployed weights do not fit {cls.__name__}(**initkw): '
            f'{err}; use load_model(strict=False) to load what fits') from err
    if any(t.is_meta for t in model.parameters()) or any(
            t.is_meta for t in model.buffers()):
        return None
    return model


def _has_meta_attributes(model):
    skip = ('_parameters', '_buffers', '_modules')
    for module in model.modules():
        for key, value in vars(module).items():
            if key in skip:
                continue
            values = value.values() if isinstance(value, dict) else (
                value if isinstance(value, (list, tuple)) else [value])
            if any(isinstance(v, torch.Tensor) and v.is_meta for v in values):
                return True
    return False
