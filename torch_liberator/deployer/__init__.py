"""
Ship a model as one zip holding its code and weights, and load it back.

:func:`deploy` exports the model class (with liberator), stores the state
dict as safetensors and writes a manifest of sha256 hashes;
:class:`DeployedModel` reads the manifest and train info without running
anything, and the model only after every member's sha256 matches.

Modules, one job each, imports flowing one way (``_model`` -> ``_check``,
``_export`` -> ``_initkw``; all -> ``_format`` -> ``_files``): ``_files``
(atomic writes, plain names, zip paths), ``_format`` (zip, manifest, hashes,
weights), ``_export`` (the model's code, via liberator), ``_initkw`` (init
arguments and factories), ``_check`` (rebuild and example checks, building on
meta) and ``_model`` (:func:`deploy`, :class:`DeployedModel` and friends).

Example:
    >>> import torch, tempfile, os
    >>> from torch_liberator.deployer import DeployedModel, deploy
    >>> tmp = tempfile.TemporaryDirectory()
    >>> model = torch.nn.Conv2d(3, 4, kernel_size=3)
    >>> fpath = deploy(model, os.path.join(tmp.name, 'c.zip'), verbose=0)
    >>> loaded = DeployedModel(fpath).load_model()
    >>> x = torch.rand(1, 3, 8, 8)
    >>> bool(torch.equal(loaded(x), model(x)))
    True
    >>> tmp.cleanup()
"""
from torch_liberator.deployer._check import describe_layout_difference
from torch_liberator.deployer._export import export_model_code
from torch_liberator.deployer._format import read_deploy_state_dict
from torch_liberator.deployer._initkw import parse_initkw
from torch_liberator.deployer._model import (
    DeployedModel, deploy, deploy_files, load_in_fresh_process)

__all__ = ['DeployedModel', 'deploy', 'deploy_files', 'describe_layout_difference',
           'export_model_code', 'load_in_fresh_process', 'parse_initkw',
           'read_deploy_state_dict']
