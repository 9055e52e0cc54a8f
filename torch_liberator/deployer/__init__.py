"""
Ship a model as one zip holding its code and weights, and load it back.

:func:`deploy` exports the model class (with liberator), stores the state
dict as safetensors and writes a manifest of sha256 hashes.
:class:`DeployedModel` reads such a file: its manifest and train info
without running anything, and the model only after every member's sha256
matches the manifest.

The package is made of a few modules, one job each:

* ``_format``: the file format (zip container, manifest, hashes, weights);
* ``_export``, ``_imports`` and ``_initkw``: the model's code, what it
  imports, and its init arguments (or the factory that builds it);
* ``_check``: what deploy checks before writing (the file rebuilds the model);
* ``_example``: the optional behavioural check (example inputs and outputs);
* ``_metabuild``: building a model on the meta device;
* ``_model``: :func:`deploy`, :func:`deploy_files`, :class:`DeployedModel`;
* ``_fresh``: loading a file in a fresh process from an empty folder.

Security model: the hashes detect a deploy file that was corrupted or
modified after it was written (a tampered ``.py`` is refused before any of
it runs). They are not a signature: whoever can rewrite the whole zip can
rewrite its manifest too, so load deploy files only from sources you would
take a Python package from, and compare the zip's own sha256 if you need to
pin one.

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
from torch_liberator.deployer._check import describe_layout_difference
from torch_liberator.deployer._export import export_model_code
from torch_liberator.deployer._format import read_deploy_state_dict
from torch_liberator.deployer._fresh import load_in_fresh_process
from torch_liberator.deployer._initkw import parse_initkw
from torch_liberator.deployer._model import DeployedModel, deploy, deploy_files

__all__ = ['DeployedModel', 'deploy', 'deploy_files', 'describe_layout_difference',
           'export_model_code', 'load_in_fresh_process', 'parse_initkw',
           'read_deploy_state_dict']
