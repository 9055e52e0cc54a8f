"""
Package an already-exported model file and a checkpoint into a deploy zip
(what the published ``python -m torch_liberator --model --weights --info
--dst`` form does). The model file is read as text and never run; what the
manifest says about it (class name, a literal ``get_initkw()``, imports) is
found statically.

Example:
    >>> import os, tempfile, torch
    >>> from torch_liberator.exporter import export_model_code
    >>> from torch_liberator.packager import deploy_files
    >>> tmp = tempfile.TemporaryDirectory()
    >>> code = export_model_code(tmp.name, torch.nn.Linear(1, 1))
    >>> torch.save(torch.nn.Linear(1, 1).state_dict(), os.path.join(tmp.name, 'w.pt'))
    >>> fpath = deploy_files(code, os.path.join(tmp.name, 'w.pt'), tmp.name, verbose=0)
    >>> fpath.name.startswith('deploy_Linear_')
    True
    >>> tmp.cleanup()
"""
import json
import os
from pathlib import Path

from torch_liberator.deploywriter import (
    TRAIN_INFO_FNAME, WEIGHTS_FNAME, sha256_bytes, write_deploy_zip)
from torch_liberator.errors import DeployError

__all__ = ['deploy_files']


def _static_contract(text, fname):
    """Class name and literal initkw of a model file, read without running
    it (None when not a literal)."""
    import ast
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise DeployError(f'{fname} is not valid Python: {err}') from err
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    missing = [n for n in ('get_model_cls', 'get_initkw') if n not in funcs]
    if missing:
        raise DeployError(
            f'{fname} defines no {missing}; a deploy model file needs '
            'get_model_cls() and get_initkw() -- create it with '
            '`python -m torch_liberator export` or export_model_code')
    class_name = initkw = None
    for node in ast.walk(funcs['get_model_cls']):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
            class_name = node.value.id
    for node in ast.walk(funcs['get_initkw']):
        if isinstance(node, ast.Return) and node.value is not None:
            try:
                initkw = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                initkw = None
    if not isinstance(initkw, dict) or not all(isinstance(k, str) for k in initkw):
        initkw = None
    else:
        initkw = json.loads(json.dumps(initkw, default=repr))
    return class_name, initkw


def deploy_files(model_fpath, weights_fpath, fpath, train_info=None, verbose=1):
    """
    Package an already-exported model file and a checkpoint into a deploy
    zip (the published CLI form ``--model --weights --info --dst``).

    Args:
        model_fpath (str | PathLike): a ``.py`` defining ``get_model_cls()``
            and ``get_initkw()`` (as :func:`export_model_code` writes).
        weights_fpath (str | PathLike): a checkpoint readable by
            :func:`torch_liberator.checkpoint.read_state_dict` (safely).
        fpath (str | PathLike): the ``.zip`` or an existing directory.
        train_info (dict | str | PathLike | None): JSON metadata.
        verbose (int): 1 prints the written path.

    Returns:
        Path: the zip written. Nothing in ``model_fpath`` is executed.

    Example:
        >>> import torch, ubelt as ub
        >>> from torch_liberator.exporter import export_model_code
        >>> from torch_liberator.deployer import DeployedModel
        >>> from torch_liberator.packager import deploy_files
        >>> dpath = ub.Path.appdir('torch_liberator/tests/deployer').ensuredir()
        >>> model = torch.nn.Linear(2, 3)
        >>> code_fpath = export_model_code(dpath, model)
        >>> torch.save(model.state_dict(), dpath / 'lin.pt')
        >>> fpath = deploy_files(code_fpath, dpath / 'lin.pt', dpath / 'packed.zip', verbose=0)
        >>> DeployedModel(fpath).info['manifest']['initkw']
        {'in_features': 2, 'out_features': 3}
    """
    from torch_liberator.checkpoint import read_state_dict
    from torch_liberator.deployer import _dest_path, _train_info_bytes, _versions
    from torch_liberator.exporter import find_code_imports
    from torch_liberator.weightsfile import WeightsPayload
    model_fpath = Path(model_fpath)
    try:
        text = model_fpath.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DeployError(f'cannot read model file {os.fspath(model_fpath)!r}: {err}') from err
    class_name, initkw = _static_contract(text, model_fpath.name)
    payload = WeightsPayload(read_state_dict(weights_fpath))
    stem = class_name or model_fpath.stem
    fname = f'{stem}_{sha256_bytes(text.encode("utf8"))[:16]}.py'
    fpath = _dest_path(fpath, fname[:-3], payload)
    files = {fname: text.encode('utf8'), WEIGHTS_FNAME: payload}
    info = _train_info_bytes(train_info)
    if info is not None:
        files[TRAIN_INFO_FNAME] = info
    requires = {m: None for m in find_code_imports(text)[0]}
    manifest = {
        'model': {'class': class_name, 'code': fname, 'origin': model_fpath.name},
        'initkw': initkw, 'initkw_source': 'get_initkw()',
        'requires': requires, 'versions': _versions(),
        'weights': {'file': WEIGHTS_FNAME, 'format': 'safetensors',
                    'tensors': payload.num_tensors, 'aliases': len(payload.aliases)},
    }
    fpath = write_deploy_zip(fpath, files, manifest)
    if verbose:
        print(f'[DEPLOYER] Deployed zipfpath={os.fspath(fpath)}')
    return fpath
