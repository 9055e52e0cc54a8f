"""
Ship a model as one zip holding its code and weights, and load it back.

:func:`deploy` exports the model class (with liberator), stores the state
dict as safetensors and writes a manifest of sha256 hashes.
:class:`DeployedModel` reads such a file: its manifest and train info
without running anything, and the model only after every member's sha256
matches the manifest.

Modules, one job each, imports flowing one way (``_model`` -> ``_check``,
``_export`` -> ``_initkw``; everything -> ``_format`` -> ``_files``):
``_files`` (safe files: the atomic writer, plain names, zip paths),
``_format`` (zip, manifest, hashes, weights), ``_export`` (the model's code,
via liberator), ``_initkw`` (init arguments and factories), ``_check``
(rebuild and example checks, building on meta) and ``_model`` (:func:`deploy`,
:func:`deploy_files`, :class:`DeployedModel`, :func:`load_in_fresh_process`).

Security model: the hashes detect a deploy file that was corrupted,
truncated or modified after it was written (a tampered ``.py`` is refused
before any of it runs). They are not a signature: whoever can rewrite the
whole zip can rewrite its manifest too, so load deploy files only from
sources you would take a Python package from, and check the whole file
against a sha256 its author published elsewhere
(``DeployedModel(f).verify(sha256=...)``, ``verify --sha256 HEX``).

Example:
    >>> import torch, tempfile, os
    >>> import torch_liberator
    >>> from torch_liberator.deployer import DeployedModel
    >>> tmp = tempfile.TemporaryDirectory()
    >>> model = torch.nn.Conv2d(3, 4, kernel_size=3)
    >>> fpath = torch_liberator.deploy(model, os.path.join(tmp.name, 'conv.zip'), verbose=0)
    >>> loaded = DeployedModel(fpath).load_model()
    >>> x = torch.rand(1, 3, 8, 8)
    >>> bool(torch.equal(loaded(x), model(x)))
    True
    >>> tmp.cleanup()
"""
import importlib

# public name -> its module, imported on first use (torch_liberator.checkpoint
# reads deploy files through ``_format`` without importing the model side)
_LAZY = {
    'DeployedModel': '_model',
    'deploy': '_model',
    'deploy_files': '_model',
    'describe_layout_difference': '_check',
    'export_model_code': '_export',
    'load_in_fresh_process': '_model',
    'parse_initkw': '_initkw',
    'read_deploy_state_dict': '_format',
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    try:
        modname = _LAZY[name]
    except KeyError:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}') from None
    value = getattr(importlib.import_module(f'{__name__}.{modname}'), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
