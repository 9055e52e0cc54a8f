"""
torch_liberator: load what fits of a checkpoint into a model whose structure
differs, and ship a model as a single self-contained file.

The two main entry points are :func:`load_partial_state` (and its file-based
twin :class:`Pretrained`) and :func:`deploy` / :class:`DeployedModel`.
Names are imported lazily, so ``import torch_liberator`` stays cheap.

Example:
    >>> import torch
    >>> import torch_liberator
    >>> src = torch.nn.Sequential(torch.nn.Linear(3, 4))
    >>> dst = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(3, 4)))
    >>> info = torch_liberator.load_partial_state(dst, src.state_dict(), verbose=0)
    >>> sorted(info['mapping'].items())
    [('0.bias', '0.0.bias'), ('0.weight', '0.0.weight')]
"""
import importlib

__version__ = '0.3.0'

# public name -> submodule that defines it
_LAZY = {
    'ASSOCIATIONS': 'association',
    'POLICIES': 'policies',
    'associate_keys': 'association',
    'maximum_common_ordered_subpaths': 'association',
    'read_state_dict': 'checkpoint',
    'open_checkpoint': 'checkpoint',
    'shove_tensor': 'shove',
    'load_partial_state': 'initializer',
    'Pretrained': 'initializer',
    'LoadPlan': 'plantypes',
    'PlanEntry': 'plantypes',
    'plan_load': 'loadplan',
    'export_model_code': 'deployer',
    'deploy': 'deployer',
    'DeployedModel': 'deployer',
    'CheckpointFormatError': 'errors',
    'CheckpointNotFoundError': 'errors',
    'DeployError': 'errors',
    'ExportError': 'errors',
    'IntegrityError': 'errors',
    'LiberatorError': 'errors',
    'ShapeMismatchError': 'errors',
    'UnsafeCheckpointError': 'errors',
}

# submodules that are attributes of the package (the 0.2 import paths)
_SUBMODULES = ('deployer', 'exporter')

__all__ = sorted(_LAZY) + ['__version__']


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f'{__name__}.{name}')
    try:
        modname = _LAZY[name]
    except KeyError:
        raise AttributeError(
            f'module {__name__!r} has no attribute {name!r}') from None
    value = getattr(importlib.import_module(f'{__name__}.{modname}'), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
