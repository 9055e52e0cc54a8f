"""
The model side of deployment: :func:`deploy` and :func:`deploy_files` write a
deploy file, :class:`DeployedModel` reads one back, and
:func:`load_in_fresh_process` loads one the way someone else would.
"""
import hashlib
import json
import linecache
import os
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from torch_liberator.deployer._files import atomic_write, plain_name, remove_stale_parts
from torch_liberator.deployer._format import (
    TRAIN_INFO_FNAME, DeployFile, encode_weights, write_deploy_zip)
from torch_liberator.errors import DeployError, IntegrityError

__all__ = ['DeployedModel', 'deploy', 'deploy_files', 'load_in_fresh_process']


def _train_info_bytes(train_info):
    if isinstance(train_info, (str, os.PathLike)):
        try:
            train_info = json.loads(Path(train_info).read_text())
        except (OSError, ValueError) as err:
            raise DeployError(f'cannot read train_info {os.fspath(train_info)!r} as JSON: '
                              f'{err}') from err
    try:
        text = json.dumps(train_info, indent=2, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise DeployError(f'train_info must be JSON-serializable ({err}); convert its '
                          'values to numbers, strings, lists and dicts') from err
    return (text + '\n').encode('utf8')


def _write(fpath, files, manifest, state, train_info, verbose):
    # the part deploy and deploy_files share
    import platform

    import torch

    from torch_liberator import __version__
    tensors, manifest['weights'] = encode_weights(state)
    manifest['versions'] = {'python': platform.python_version(), 'torch': torch.__version__,
                            'torch_liberator': __version__}
    if train_info is not None:
        files[TRAIN_INFO_FNAME] = _train_info_bytes(train_info)
    fpath = os.fspath(write_deploy_zip(fpath, files, manifest, tensors))
    if verbose:
        print(f'[DEPLOYER] Deployed zipfpath={fpath}')
    return fpath


def deploy(model, fpath, initkw=None, export_modules=(), train_info=None,
           verbose=1, *, factory=None, assume_defaults=False,
           example_inputs=None, example_tolerance=None) -> str:
    """
    Write ``model``'s code and weights into one deploy zip, atomically (equal
    inputs give equal bytes), only once the class (or ``factory``) called
    with the init arguments on the meta device gives the model's class with
    exactly its state-dict keys and shapes.

    Args:
        fpath (str | PathLike): the ``.zip``, or an existing directory (the
            file then gets a name from the class and a hash).
        initkw (dict | None): what builds the model; default ``model._initkw``,
            else read from the attributes the model stores. With ``factory``:
            the factory's keyword arguments.
        export_modules (Iterable[str]): packages whose code is inlined.
        train_info (dict | str | PathLike | None): JSON-able metadata (or a
            JSON file) stored as ``train_info.json``.
        factory (str | Callable | None): build with this factory
            (``'torchvision.models:resnet18'``, ``'timm:create_model'`` with
            ``initkw={'model_name': ...}``) instead of exporting the class.
        assume_defaults (bool): accept an inferred ``initkw`` that leaves
            arguments the model does not store to their defaults although the
            model rebuilt that way differs in some attribute.
        example_inputs (Tensor | tuple | None): inputs whose outputs are
            stored; ``load_model(check=True)`` and ``verify`` compare them.
        example_tolerance (Tuple[float, float] | None): ``(rtol, atol)``,
            default ``(1e-4, 1e-5)``.

    Returns:
        str: the zip written.

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.deployer import deploy, DeployedModel
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = deploy(torch.nn.Linear(4, 2), os.path.join(tmp.name, 'lin.zip'),
        ...                example_inputs=torch.ones(1, 4), verbose=0)
        >>> DeployedModel(fpath).load_model(check=True).out_features
        2
        >>> tmp.cleanup()
    """
    from torch_liberator.deployer._check import (
        EXAMPLE_FNAME, check_materialized, check_rebuild, record_example)
    from torch_liberator.deployer._export import build_factory_code, build_model_code
    from torch_liberator.deployer._initkw import (
        resolve_factory, resolve_initkw, unconfirmed_arguments)
    check_materialized(model)
    if factory is None:
        kwargs, how = resolve_initkw(model, initkw)
        unconfirmed = unconfirmed_arguments(model, kwargs) if how == 'inferred' else []
        check_rebuild(model, type(model), kwargs, how, unconfirmed, assume_defaults)
        code = build_model_code(model, initkw=kwargs, export_modules=export_modules)
    elif export_modules:
        raise DeployError(f'export_modules={export_modules!r} has no effect with factory=: '
                          'the file names the factory and exports no code; drop one of them')
    else:
        build, ref, kwargs = resolve_factory(factory, initkw)
        how = 'factory'
        check_rebuild(model, build, kwargs, how)
        code = build_factory_code(ref, kwargs, type(model))
    state = model.state_dict()  # before any forward
    files = {code.fname: code.text.encode('utf8')}
    manifest = {'model': {'class': code.class_name, 'code': code.fname, 'origin': code.origin},
                'initkw': code.initkw, 'initkw_source': how, 'requires': code.requires}
    if factory is not None:
        manifest['model']['factory'] = code.origin
    if example_inputs is not None:
        files[EXAMPLE_FNAME], manifest['example'] = record_example(
            model, example_inputs, example_tolerance)
    return _write(fpath, files, manifest, state, train_info, verbose)


def _import_code(text, digest, label):
    # verified model code run as a module with a unique name, kept in
    # sys.modules so that instances pickle (no zipimport, no temp files)
    stem = re.sub(r'\W', '_', label.rsplit('/', 1)[-1].rsplit('.', 1)[0])
    modname = f'torch_liberator_deployed_{stem}_{digest[:16]}'
    module = sys.modules.get(modname)
    if getattr(module, '__torch_liberator_sha256__', None) == digest:
        return module
    filename = f'<torch_liberator deploy {label}>'
    module = types.ModuleType(modname)
    module.__file__ = filename
    module.__torch_liberator_source__ = text
    module.__torch_liberator_sha256__ = digest
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    sys.modules[modname] = module
    try:
        exec(compile(text, filename, 'exec'), module.__dict__)
        missing = [f'{n}()' for n in ('get_model_cls', 'get_initkw')
                   if not callable(getattr(module, n, None))]
        if missing:
            raise DeployError(
                f'the model code in {label} defines no {" or ".join(missing)}; a deploy model '
                'file needs both -- create it with `python -m torch_liberator export` or '
                'export_model_code')
    except BaseException as err:
        del sys.modules[modname]
        if isinstance(err, ImportError):
            raise DeployError(
                f'the model code in {label} needs {err.name!r}, which is not importable '
                f'here ({err}); install it (see `python -m torch_liberator inspect` for the '
                'imports the code needs)') from err
        if isinstance(err, Exception) and not isinstance(err, DeployError):
            raise DeployError(f'the model code in {label} failed to run: '
                              f'{type(err).__name__}: {err}') from err
        raise
    return module


class DeployedModel:
    """
    A deploy file (zip, unzipped folder, or torch_liberator 0.2 zip):
    ``info`` and ``train_info()`` never run code; ``load_model`` and
    ``model_definition`` run it only after every member's sha256 matches.

    Example:
        >>> import os, tempfile, torch
        >>> from torch_liberator.deployer import deploy, DeployedModel
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = deploy(torch.nn.Linear(3, 1), os.path.join(tmp.name, 'dm.zip'),
        ...                train_info={'lr': 0.1}, verbose=0)
        >>> loader = DeployedModel(fpath)
        >>> loader.train_info()
        {'lr': 0.1}
        >>> cls, initkw = loader.model_definition()
        >>> cls.__name__, initkw
        ('Linear', {'in_features': 3, 'out_features': 1})
        >>> tmp.cleanup()
    """

    def __init__(self, fpath):
        self.fpath = Path(fpath)
        self.load_info = self.check_info = None
        with DeployFile(self.fpath):
            pass  # fail early on a missing or foreign file

    def __repr__(self):
        return f'DeployedModel({os.fspath(self.fpath)!r})'

    @property
    def info(self) -> dict:
        """
        dict: ``fpath``, ``name``, ``legacy``, ``manifest`` (None for 0.2),
        ``members`` (name -> size), ``code``, ``requires`` and ``sha256`` (of
        the whole zip); runs nothing, checks no hash.

        Example:
            >>> import os, tempfile, torch
            >>> from torch_liberator.deployer import deploy, DeployedModel
            >>> with tempfile.TemporaryDirectory() as dpath:
            ...     fpath = deploy(torch.nn.ReLU(), os.path.join(dpath, 'r.zip'), verbose=0)
            ...     info = DeployedModel(fpath).info
            >>> info['manifest']['model']['class']
            'ReLU'
        """
        from torch_liberator.deployer._export import find_code_imports
        with DeployFile(self.fpath) as dfile:
            info = {'fpath': os.fspath(self.fpath), 'name': dfile.name, 'legacy': dfile.legacy,
                    'manifest': dfile.manifest, 'members': dict(dfile.members),
                    'code': dfile.code_member, 'sha256': dfile.file_sha256()}
            if dfile.legacy:
                code = dfile.read(dfile.code_member).decode('utf8', 'replace')
                try:
                    info['requires'] = find_code_imports(code)[0]
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    info['requires'] = None  # it would not run either
            else:
                info['requires'] = dfile.manifest.get('requires')
        return info

    def verify(self, sha256=None):
        """
        Check every member's size and sha256 against the manifest and, given
        ``sha256`` (published out of band), the whole file's; runs nothing.
        Removes temporary files that killed deploys left beside the file.

        Example:
            >>> import os, tempfile, torch
            >>> from torch_liberator.deployer import deploy, DeployedModel
            >>> with tempfile.TemporaryDirectory() as dpath:
            ...     fpath = deploy(torch.nn.ReLU(), os.path.join(dpath, 'v.zip'), verbose=0)
            ...     DeployedModel(fpath).verify()
        """
        if self.fpath.is_file():
            remove_stale_parts(self.fpath)
        with DeployFile(self.fpath) as dfile:
            if sha256 is not None:
                got = dfile.file_sha256()
                if got is None:
                    raise DeployError(f'{os.fspath(self.fpath)!r} is a folder, which has no '
                                      'sha256 of its own; check the zip it was unpacked from')
                if got != str(sha256).strip().lower():
                    raise IntegrityError(
                        f'{os.fspath(self.fpath)!r} has sha256 {got}, not {sha256!r}: it is '
                        'not the file that was published; do not use it')
            dfile.verify()

    def train_info(self):
        """
        The stored train info (hash-checked JSON), or None; see the class example.
        """
        with DeployFile(self.fpath) as dfile:
            if TRAIN_INFO_FNAME in dfile.members:
                return dfile.read_json(TRAIN_INFO_FNAME)
        return None

    def extract_snapshot(self, extract_dpath=None) -> str:
        """
        Write the (hash-checked) weights into ``extract_dpath`` (default: the
        deploy file's folder) as ``<name>_weights.safetensors`` (0.2 files:
        ``<name>_deploy_snapshot.pt``), names reduced to plain file names.

        Example:
            >>> import os, tempfile, torch
            >>> from torch_liberator.deployer import deploy, DeployedModel
            >>> with tempfile.TemporaryDirectory() as dpath:
            ...     fpath = deploy(torch.nn.Linear(1, 1), os.path.join(dpath, 's.zip'), verbose=0)
            ...     print(os.path.basename(DeployedModel(fpath).extract_snapshot()))
            s_weights.safetensors
        """
        with DeployFile(self.fpath) as dfile:
            data = dfile.read(dfile.weights_member)
            name = plain_name(f'{dfile.name}_{plain_name(dfile.weights_member)}')
        if extract_dpath is None:
            extract_dpath = self.fpath if self.fpath.is_dir() else self.fpath.parent
        dpath = Path(extract_dpath).resolve()
        dpath.mkdir(parents=True, exist_ok=True)
        return os.fspath(atomic_write(dpath / name, lambda file: file.write(data)))

    def _verified_module(self, with_weights, with_example=False):
        from torch_liberator.deployer._check import EXAMPLE_FNAME
        with DeployFile(self.fpath) as dfile:
            dfile.verify()  # every hash, before any code runs
            code = dfile.read(dfile.code_member)
            state = dfile.read_state_dict() if with_weights else None
            if with_weights and dfile.legacy:
                from torch_liberator.checkpoint import unwrap_state_dict
                state = unwrap_state_dict(state)
            label = f'{dfile.name}/{dfile.code_member}'
            example = None
            if with_example:
                entry = (dfile.manifest or {}).get('example')
                if entry is None or EXAMPLE_FNAME not in dfile.members:
                    raise DeployError(
                        f'{os.fspath(self.fpath)!r} stores no example inputs to check the '
                        'model with; deploy it with example_inputs=... (or load without '
                        'check=True)')
                example = (dfile.read(EXAMPLE_FNAME), entry)
        try:
            text = code.decode('utf8')
        except UnicodeDecodeError as err:
            raise DeployError(f'{label} is not UTF-8 text') from err
        return _import_code(text, hashlib.sha256(code).hexdigest(), label), state, example

    def model_definition(self):
        """
        Verify the file, import its code and return ``(cls, initkw)``; see the
        class example.
        """
        module = self._verified_module(with_weights=False)[0]
        return module.get_model_cls(), module.get_initkw()

    def load_model(self, strict=True, device=None, verbose=1, *, check=False):
        """
        Verify every member, build the model and load its weights.

        Args:
            strict (bool): True requires an exact fit (the model is built on
                meta and adopts the loaded tensors where that gives the same
                model); False loads what fits with
                :func:`torch_liberator.load_partial_state` (its info dict in
                ``self.load_info``).
            device (str | torch.device | None): where to put the model.
            verbose (int): passed to ``load_partial_state``.
            check (bool): run the example stored at deploy and compare the
                outputs (summary in ``self.check_info``).

        Example:
            >>> import os, tempfile, torch
            >>> from torch_liberator.deployer import deploy, DeployedModel
            >>> with tempfile.TemporaryDirectory() as dpath:
            ...     fpath = deploy(torch.nn.Linear(2, 2), os.path.join(dpath, 'l.zip'), verbose=0)
            ...     loader = DeployedModel(fpath)
            ...     model = loader.load_model(strict=False, verbose=0)
            >>> len(loader.load_info['seen']['full_add'])
            2
        """
        from torch_liberator.deployer._check import build_assigned, check_example
        module, state, example = self._verified_module(with_weights=True, with_example=check)
        cls, initkw = module.get_model_cls(), module.get_initkw()
        model = build_assigned(cls, initkw, state) if strict else None
        if model is None:
            try:
                model = cls(**initkw)
            except Exception as err:
                raise DeployError(f'{cls.__name__}(**{initkw}) failed: {type(err).__name__}: '
                                  f'{err}') from err
            if strict:
                try:
                    model.load_state_dict(state, strict=True)
                except RuntimeError as err:
                    raise DeployError(f'the deployed weights do not fit {cls.__name__}: {err}; '
                                      'use load_model(strict=False) to load what fits') from err
            else:
                from torch_liberator.initializer import load_partial_state
                self.load_info = load_partial_state(model, state, verbose=verbose)
        if device is not None:
            model = model.to(device)
        if check:
            self.check_info = check_example(model, *example)
        return model


def deploy_files(model_fpath, weights_fpath, fpath, train_info=None, verbose=1) -> str:
    """
    Package a model file (defining ``get_model_cls()`` and ``get_initkw()``,
    as :func:`export_model_code` writes) and any checkpoint
    :func:`torch_liberator.checkpoint.read_state_dict` reads into a deploy zip
    (the published CLI form ``--model --weights --info --dst``), once the
    weights load strictly into the model the file builds. The model file is
    run to build it on meta: give only a file you trust.

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> from torch_liberator.deployer import DeployedModel, deploy_files, export_model_code
        >>> tmp = tempfile.TemporaryDirectory()
        >>> dpath, model = Path(tmp.name), torch.nn.Linear(2, 3)
        >>> torch.save(model.state_dict(), dpath / 'lin.pt')
        >>> code_fpath = export_model_code(dpath, model)
        >>> fpath = deploy_files(code_fpath, dpath / 'lin.pt', dpath / 'p.zip', verbose=0)
        >>> DeployedModel(fpath).info['manifest']['initkw']
        {'in_features': 2, 'out_features': 3}
        >>> tmp.cleanup()
    """
    from torch_liberator.checkpoint import read_state_dict
    from torch_liberator.deployer._check import check_state_fits
    from torch_liberator.deployer._export import find_code_imports
    from torch_liberator.deployer._initkw import encode_initkw
    from torch_liberator.errors import ExportError
    model_fpath = Path(model_fpath)
    try:
        text = model_fpath.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DeployError(f'cannot read model file {os.fspath(model_fpath)!r}: {err}') from err
    state = read_state_dict(weights_fpath)
    data = text.encode('utf8')
    digest = hashlib.sha256(data).hexdigest()
    module = _import_code(text, digest, os.fspath(model_fpath))
    build, initkw = module.get_model_cls(), module.get_initkw()
    check_state_fits(build, initkw, state, os.fspath(weights_fpath))
    try:
        initkw = encode_initkw(initkw)[0]
    except ExportError:
        initkw = None  # not storable in JSON: the code still builds it
    stem = plain_name(getattr(build, '__name__', model_fpath.stem))
    fname = f'{stem}_{digest[:16]}.py'
    manifest = {'model': {'class': stem, 'code': fname, 'origin': model_fpath.name},
                'initkw': initkw, 'initkw_source': 'get_initkw()',
                'requires': {m: None for m in find_code_imports(text)[0]}}
    return _write(fpath, {fname: data}, manifest, state, train_info, verbose)


# argv: torch_liberator's folder, the deploy file, then folders to keep off
# sys.path. Only the standard library is imported before sys.path is clean.
_CHILD = '''
import importlib.util, json, os, sys, warnings
pkg, fpath, banned = sys.argv[1], sys.argv[2], sys.argv[3:]
banned = {os.path.realpath(p) for p in banned + [os.getcwd()]}
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) not in banned]
spec = importlib.util.spec_from_file_location(
    'torch_liberator', os.path.join(pkg, '__init__.py'), submodule_search_locations=[pkg])
module = importlib.util.module_from_spec(spec)
sys.modules['torch_liberator'] = module
spec.loader.exec_module(module)
from torch_liberator.deployer import DeployedModel
from torch_liberator.errors import LiberatorError
warnings.filterwarnings('ignore', message='.*cannot be verified')
try:
    loader = DeployedModel(fpath)
    check = bool((loader.info['manifest'] or {}).get('example'))
    model = loader.load_model(strict=True, check=check, verbose=0)
except LiberatorError as err:
    sys.exit(f'{type(err).__name__}: {err}')
print(json.dumps({'class': type(model).__name__, 'tensors': len(model.state_dict()),
                  'check': loader.check_info,
                  'torch_file': getattr(sys.modules.get('torch'), '__file__', None)}))
'''


def load_in_fresh_process(fpath, timeout=None) -> dict:
    """
    Load a deploy file strictly (and run its stored example check) the way
    someone else would: in a fresh Python process started in an empty
    temporary folder, with neither the current folder nor the file's on
    ``sys.path``, so a local package the file lacks fails here too and a
    ``torch.py`` planted beside the zip never runs. Returns ``class``,
    ``tensors``, ``check`` (None or the example check's summary) and
    ``torch_file``; the child's error is a one-line DeployError.

    Example:
        >>> from torch_liberator.deployer import load_in_fresh_process
        >>> from torch_liberator.errors import LiberatorError
        >>> try:
        ...     load_in_fresh_process('/does/not/exist.zip')
        ... except LiberatorError as err:
        ...     print('does not exist' in str(err))
        True
    """
    import torch_liberator
    fpath = os.path.abspath(os.fspath(fpath))
    with DeployFile(fpath):
        pass  # a missing or foreign file fails here, before a process starts
    pkg = os.path.dirname(os.path.abspath(torch_liberator.__file__))
    with tempfile.TemporaryDirectory(prefix='torch_liberator_verify_') as empty:
        try:
            proc = subprocess.run(
                [sys.executable, '-c', _CHILD, pkg, fpath, os.path.dirname(fpath), os.getcwd()],
                cwd=empty, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise DeployError(f'{fpath!r} did not load in a fresh process within {timeout} s') \
                from err
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode != 0 or not lines:
        errs = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        last = errs[-1] if errs else f'exit status {proc.returncode}'
        raise DeployError(f'{fpath!r} did not load in a fresh process: {last}')
    try:
        return json.loads(lines[-1])
    except ValueError as err:
        raise DeployError(f'{fpath!r}: the fresh process printed {lines[-1][:80]!r}, not its '
                          'summary') from err
