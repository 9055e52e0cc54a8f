"""
Load a deploy file the way someone else would: in a fresh Python process,
from an empty temporary folder, with neither the current folder nor the
file's folder on ``sys.path``.

A deploy file that only loads next to the code it came from (a local package
it imports but does not hold, a module beside the zip) passes a check made
in the same process or folder and fails everywhere else; and a ``torch.py``
planted next to a zip must not run when the zip is checked. The child
imports this torch_liberator by its file path, and everything else from the
interpreter's own paths (site-packages, ``PYTHONPATH``).

Example:
    >>> from torch_liberator.deployer import load_in_fresh_process
    >>> from torch_liberator.errors import LiberatorError
    >>> try:
    ...     load_in_fresh_process('/does/not/exist.zip')
    ... except LiberatorError as err:
    ...     print('does not exist' in str(err))
    True
"""
import json
import os
import subprocess
import sys
import tempfile

from torch_liberator.deployer._format import DeployFile
from torch_liberator.errors import DeployError

__all__ = ['load_in_fresh_process']

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


def load_in_fresh_process(fpath, timeout=None):
    """
    Load a deploy file strictly in a fresh process, and run its stored
    example check if it has one.

    Args:
        fpath (str | PathLike): the deploy file.
        timeout (float | None): seconds to wait for the child.

    Returns:
        dict: ``class`` (the loaded model's class name), ``tensors`` (state
        dict entries), ``check`` (``None``, or the example check's summary:
        ``tensors`` compared and ``max_abs_diff``) and ``torch_file`` (where
        the child imported torch from).

    Raises:
        DeployError: it did not load (the child's error, one line).
        LiberatorError: it is not a readable deploy file (raised before any
            process starts).

    Example:
        >>> # xdoctest: +REQUIRES(--slow)
        >>> import torch, tempfile, os
        >>> from torch_liberator.deployer import deploy, load_in_fresh_process
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = deploy(torch.nn.Linear(2, 2), os.path.join(tmp.name, 'g.zip'),
        ...                example_inputs=torch.ones(1, 2), verbose=0)
        >>> load_in_fresh_process(fpath)['check']['tensors']
        1
        >>> tmp.cleanup()
    """
    import torch_liberator
    fpath = os.path.abspath(os.fspath(fpath))
    with DeployFile(fpath):
        pass  # a missing or foreign file fails here, before a process starts
    pkg = os.path.dirname(os.path.abspath(torch_liberator.__file__))
    banned = [os.path.dirname(fpath), os.getcwd()]
    env = dict(os.environ)
    env.pop('PYTHONSTARTUP', None)
    with tempfile.TemporaryDirectory(prefix='torch_liberator_verify_') as empty:
        try:
            proc = subprocess.run(
                [sys.executable, '-c', _CHILD, pkg, fpath, *banned], cwd=empty,
                env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise DeployError(
                f'{fpath!r} did not load in a fresh process within {timeout} s') from err
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode != 0 or not lines:
        errs = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        last = errs[-1] if errs else f'exit status {proc.returncode}'
        raise DeployError(f'{fpath!r} did not load in a fresh process: {last}')
    try:
        return json.loads(lines[-1])
    except ValueError as err:
        raise DeployError(f'{fpath!r}: the fresh process printed {lines[-1][:80]!r}, '
                          'not its summary') from err
