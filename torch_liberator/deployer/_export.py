"""
Extract the source code that defines a model class into one ``.py`` file.

The class's source closure (the class, its helpers, the module-level names
they use, and the imports they need) is gathered statically by the
`liberator <https://pypi.org/project/liberator/>`_ package, then checked and
completed with a small fixed contract:

* ``get_model_cls()`` returns the model class;
* ``get_initkw()`` returns the keyword arguments that build the deployed
  model (literals, plus classes or functions referenced by name or import
  path -- never pickled objects; see :mod:`torch_liberator.deployer._initkw`);
* ``__torch_liberator_export__`` records the class, its origin and the
  third-party imports the code still needs.

Packages named in ``export_modules`` are inlined, so the file no longer
imports them. Known liberator pitfalls are turned into clear
:class:`~torch_liberator.errors.ExportError` s instead of wrong code:
classes without a source file, classes nested in functions, names that
cannot be resolved, imports of an ``export_modules`` package that could not
be inlined, and relative imports. Classes defined in the running
``__main__`` script are read from its file without running it again, and a
lost ``from __future__ import annotations`` is put back at the top.

Example:
    >>> import tempfile, torch
    >>> from torch_liberator.deployer._export import export_model_code
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = export_model_code(tmp.name, torch.nn.Linear(3, 2))
    >>> fpath.name.startswith('Linear_') and fpath.suffix == '.py'
    True
    >>> 'def get_model_cls' in fpath.read_text()
    True
    >>> tmp.cleanup()
"""
import contextlib
import io
import os
import re
import sys
import warnings
from pathlib import Path

from torch_liberator.errors import ExportError
from torch_liberator.deployer._bindings import pin_conditional_bindings
from torch_liberator.deployer._imports import (
    find_code_imports, find_local_packages, imported_anywhere, installed_versions)
from torch_liberator.deployer._initkw import LocalRefs, encode_value, resolve_initkw, value_code

__all__ = [
    'ExportedCode',
    'build_factory_code',
    'build_model_code',
    'export_model_code',
]

_FUTURE_RE = re.compile(
    r'^from\s+__future__\s+import\s+[^\n]*\bannotations\b', re.MULTILINE)


class ExportedCode:
    """
    The text of an exported model file and what is known about it.

    Attributes:
        text (str): the Python source.
        fname (str): ``<Class>_<sha256 prefix of text>.py``.
        class_name (str): the model class's name in the file.
        origin (str): ``module.qualname`` the class was exported from.
        initkw (dict): JSON form of the init keyword arguments.
        requires (Dict[str, str | None]): third-party top-level imports the
            code still needs -> the installed version (None if unknown).
        local_imports (Dict[str, str]): modules the code imports (anywhere)
            that are not installed packages but the user's own code ->
            where they are here; the file will not load where they are not.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._export import build_model_code
        >>> code = build_model_code(torch.nn.Linear(2, 2))
        >>> code.class_name, code.initkw
        ('Linear', {'in_features': 2, 'out_features': 2})
        >>> 'torch' in code.requires
        True
    """

    def __init__(self, text, class_name, origin, initkw, requires, local_imports=None):
        import hashlib
        self.text = text
        self.local_imports = dict(local_imports or {})
        self.class_name = class_name
        self.origin = origin
        self.initkw = initkw
        self.requires = requires
        digest = hashlib.sha256(text.encode('utf8')).hexdigest()
        self.fname = f'{class_name}_{digest[:16]}.py'

    def __repr__(self):
        return f'<ExportedCode {self.fname} from {self.origin}>'


# --- source extraction -----------------------------------------------------

def _module_source(obj):
    """(source, visitor key, visitor modname) of the module defining obj."""
    modname = obj.__module__
    qualname = obj.__qualname__
    if '<locals>' in qualname or '.' in qualname:
        raise ExportError(
            f'cannot export {qualname}: it is defined inside a function or '
            'class; define it at module level')
    module = sys.modules.get(modname)
    deployed = getattr(module, '__torch_liberator_source__', None)
    if deployed is not None:  # code loaded from a deploy file
        return deployed, f'<deployed {modname}>', modname
    fpath = getattr(module, '__file__', None)
    if not fpath or not str(fpath).endswith('.py') or not os.path.isfile(fpath):
        raise ExportError(
            f'cannot export {qualname}: its module {modname!r} has no Python '
            f'source file ({fpath!r}); classes defined in an interactive '
            'session, a notebook cell, `python -c` or a compiled extension '
            'cannot be extracted -- move the class into a .py file and import it')
    import tokenize
    with tokenize.open(fpath) as file:
        source = file.read()
    # The running script keeps the name __main__ so that liberator finds
    # its already-imported objects instead of importing (re-running) it.
    return source, os.path.abspath(fpath), modname


def _liberate(cls, extra_objs, export_modules):
    from liberator.core import DefinitionVisitor, Liberator
    lib = Liberator(logger=-1)
    sources = {}
    for obj in [cls] + list(extra_objs):
        source, key, modname = _module_source(obj)
        sources[key] = source
        if key not in lib.visitors:
            lib.visitors[key] = DefinitionVisitor.parse(
                source=source, modpath=key, modname=modname, logger=lib.logger)
        visitor = lib.visitors[key]
        try:
            definition = visitor.extract_definition(obj.__name__)
        except KeyError:
            raise ExportError(
                f'cannot export {obj.__qualname__}: {modname} has no top-level '
                f'definition named {obj.__name__!r} (was it created '
                'dynamically?); define it with a class/def statement') from None
        lib._add_definition(definition)
        lib.close(visitor)
    if export_modules:
        lib.expand(list(export_modules))
    return lib, sources


class _NoProgress(Exception):
    pass


@contextlib.contextmanager
def _guard_closing(max_rounds=200):
    """
    liberator resolves names in rounds until none is undefined, and stops
    when a round repeats the previous one. Some modules make it oscillate
    between two sets forever (a class whose annotations name itself, e.g.
    torch.nn.Sequential): stop on any repeated set, or after max_rounds.
    """
    import liberator.core
    original = liberator.core.undefined_names
    seen = []

    def guarded(source):
        names = original(source)
        key = frozenset(names)
        if key and (key in seen[:-1] or len(seen) >= max_rounds):
            raise _NoProgress(sorted(key))
        seen.append(key)
        return names

    liberator.core.undefined_names = guarded
    try:
        yield
    finally:
        liberator.core.undefined_names = original


def _run_liberator(cls, extra_objs, export_modules):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings(), _guard_closing():
            warnings.simplefilter('ignore')
            lib, sources = _liberate(cls, extra_objs, export_modules)
    except ExportError:
        raise
    except _NoProgress as err:
        raise ExportError(
            f'cannot export {cls.__qualname__}: liberator cannot order its '
            f'definitions (names {err.args[0]} keep coming back undefined, '
            'often a class that names itself in annotations without '
            '`from __future__ import annotations`); add that import to the '
            'module, or deploy a model class of your own') from None
    except AssertionError as err:
        raise ExportError(
            f'cannot export {cls.__qualname__}: liberator could not resolve '
            f'some names ({err}); define them at module level or add their '
            'package to export_modules') from err
    except Exception as err:
        raise ExportError(
            f'cannot export {cls.__qualname__}: liberator failed with '
            f'{type(err).__name__}: {err}') from err
    return lib, sources


_CONTRACT = '''

# --- torch_liberator deploy contract (generated) ---
__torch_liberator_export__ = {meta}


def _tl_import(modname, qualname):
    import importlib
    obj = importlib.import_module(modname)
    for part in qualname.split('.'):
        obj = getattr(obj, part)
    return obj


def _tl_partial(func, *args, **kwargs):
    import functools
    return functools.partial(func, *args, **kwargs)


def get_model_cls():
    """Return the model class (or factory) that builds the deployed model."""
    return {class_name}


def get_initkw():
    """Return the keyword arguments that build the deployed model."""
    return {initkw_code}
'''


def build_model_code(model, initkw=None, export_modules=()):
    """
    Build the text of a standalone model file (does not write anything).

    Args:
        model (torch.nn.Module | type): the model, or its class (then
            ``initkw`` is needed unless ``__init__`` takes no arguments).
        initkw (dict | None): see :func:`torch_liberator.deployer._initkw.infer_initkw`.
        export_modules (Iterable[str]): packages whose code is inlined.

    Returns:
        ExportedCode

    Raises:
        ExportError: the source cannot be extracted correctly.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._export import build_model_code
        >>> code = build_model_code(torch.nn.Linear, initkw={'in_features': 1, 'out_features': 1})
        >>> ns = {}
        >>> exec(compile(code.text, code.fname, 'exec'), ns)
        >>> ns['get_model_cls']()(**ns['get_initkw']()).weight.shape
        torch.Size([1, 1])
    """
    cls = model if isinstance(model, type) else type(model)
    if isinstance(export_modules, str):
        export_modules = [export_modules]
    export_modules = sorted(set(export_modules))
    kwargs, _ = resolve_initkw(model, initkw)
    local = LocalRefs(cls, export_modules)
    enc = {k: encode_value(v, f'initkw[{k!r}]', local) for k, v in kwargs.items()}
    body, future = _extract_body(cls, local.objects, export_modules)
    code = _finish_code(cls, body, future, enc, export_modules)
    if code.local_imports:
        names = sorted(code.local_imports)
        where = ', '.join(f'{m} ({code.local_imports[m]})' for m in names)
        warnings.warn(
            f'the exported code of {cls.__qualname__} imports {where}, which '
            'is not an installed package: the deploy file will not load where '
            f'it is missing; pass export_modules={names} to put its code in '
            'the file (or make it an installed package)', UserWarning, stacklevel=3)
    return code



def build_factory_code(factory_ref, initkw, model_cls):
    """
    The text of a model file whose ``get_model_cls()`` returns a factory
    named by import path (the model's code is then not in the file: the
    factory's package must be installed where it loads).

    Args:
        factory_ref (str): ``'module:qualname'`` of the factory.
        initkw (dict): its keyword arguments.
        model_cls (type): the class it builds (names the file).

    Returns:
        ExportedCode

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._export import build_factory_code
        >>> code = build_factory_code('torch.nn:Linear', {'in_features': 2, 'out_features': 1}, torch.nn.Linear)
        >>> ns = {}
        >>> exec(compile(code.text, code.fname, 'exec'), ns)
        >>> ns['get_model_cls']()(**ns['get_initkw']()).weight.shape
        torch.Size([1, 2])
        >>> list(code.requires)
        ['torch']
    """
    from torch_liberator import __version__
    enc = {k: encode_value(v, f'initkw[{k!r}]', LocalRefs(None, ())) for k, v in initkw.items()}
    modname, qualname = factory_ref.split(':')
    tops = {modname.split('.')[0]} | {r.split('.')[0] for r in _refs(enc)}
    requires = installed_versions(sorted(tops - set(sys.stdlib_module_names)))
    head = f'"""\n{model_cls.__name__}: a model built by {factory_ref}, deployed by ' \
           f'torch_liberator {__version__}.\n\nGenerated; re-export instead of ' \
           'editing (deploy files check its sha256).\n"""\n'
    meta = {'class': model_cls.__name__, 'factory': factory_ref, 'origin': factory_ref,
            'requires': requires, 'format_version': 1}
    text = head + _CONTRACT.format(
        meta=repr(_sorted_dict(meta)),
        class_name=f'_tl_import({modname!r}, {qualname!r})',
        initkw_code=value_code(enc) if enc else '{}')
    return ExportedCode(text, model_cls.__name__, factory_ref, enc, requires)


def _refs(enc):
    """Module names of the ``__ref__`` values in a JSON-form initkw."""
    if isinstance(enc, list):
        return [m for v in enc for m in _refs(v)]
    if isinstance(enc, dict):
        own = [enc['__ref__'].split(':')[0]] if '__ref__' in enc else []
        return own + [m for v in enc.values() for m in _refs(v)]
    return []

# (cls, local objects, export_modules) -> (stamp, body, future): liberator
# is the slow part of a deploy, and a training loop deploys the same class
# again and again. The stamp (mtime and size of every source file used)
# invalidates an entry when a file changes.
_BODY_CACHE = {}


def _file_stamp(paths):
    stamp = []
    for path in sorted(set(paths)):
        try:
            st = os.stat(path)
        except (OSError, TypeError, ValueError):
            stamp.append((str(path), None))
        else:
            stamp.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stamp)


def _extract_body(cls, local_objects, export_modules):
    """The liberated source (without header and contract) and whether it
    needs ``from __future__ import annotations``."""
    key = (cls, tuple(local_objects), tuple(export_modules))
    try:
        cached = _BODY_CACHE.get(key)
    except TypeError:  # unhashable object in the key
        key, cached = None, None
    if cached is not None and _file_stamp(cached[0]) == cached[1]:
        return cached[2], cached[3]
    lib, sources = _run_liberator(cls, local_objects, export_modules)
    modnames = {}
    for modpath, visitor in lib.visitors.items():
        modnames[modpath] = visitor.modname
        if modpath not in sources:  # an export_modules module read by liberator
            sources[modpath] = _read_text(modpath)
    pin_conditional_bindings(lib, sources, modnames, cls.__qualname__)
    future = any(_FUTURE_RE.search(sources.get(d.modpath) or _read_text(d.modpath))
                 for d in lib.body_defs.values())
    for name, definition in list(lib.header_defs.items()):
        if definition.native_modname == '__future__':
            del lib.header_defs[name]
    names = {}
    for definition in lib.body_defs.values():
        other = names.setdefault(definition.name, definition.absname)
        if other != definition.absname:
            raise ExportError(
                f'cannot export {cls.__qualname__}: two definitions named '
                f'{definition.name!r} ({other} and {definition.absname}) would '
                'collide in one file; rename one of them')
    body = lib.current_sourcecode().strip('\n')
    if key is not None:
        paths = [d.modpath for d in lib.body_defs.values() if d.modpath]
        _BODY_CACHE[key] = (paths, _file_stamp(paths), body, future)
    return body, future


# full results of _finish_code, which checks the text with pyflakes
_CODE_CACHE = {}


def _finish_code(cls, body, future, enc, export_modules):
    key = (cls, body, future, repr(enc), tuple(export_modules))
    if key not in _CODE_CACHE:
        _CODE_CACHE.clear()  # keep only the latest: texts are large
        _CODE_CACHE[key] = _finish_code_uncached(cls, body, future, enc, export_modules)
    return _CODE_CACHE[key]


def _finish_code_uncached(cls, body, future, enc, export_modules):
    from liberator.core import undefined_names
    from torch_liberator import __version__
    origin = f'{cls.__module__}.{cls.__qualname__}'
    head = f'"""\n{cls.__name__}: model code exported by torch_liberator ' \
           f'{__version__} from {origin}.\n\nGenerated; re-export instead of ' \
           'editing (deploy files check its sha256).\n"""\n'
    if future:
        head += 'from __future__ import annotations\n'
    third, bad = find_code_imports(body)
    anywhere = imported_anywhere(body)
    leftover = [m for m in anywhere if any(m == p.split('.')[0] for p in export_modules)]
    if bad or leftover:
        raise ExportError(
            f'cannot export {cls.__qualname__}: the extracted code still has '
            f'imports that will not work standalone ({bad + leftover}); '
            'liberator does not inline imports inside functions -- move them '
            'to module level (or leave the package out of export_modules)')
    requires = installed_versions(third)
    meta = {'class': cls.__name__, 'origin': origin, 'requires': requires,
            'format_version': 1}
    text = head + '\n' + body + '\n' + _CONTRACT.format(
        meta=repr(_sorted_dict(meta)), class_name=cls.__name__,
        initkw_code=value_code(enc) if enc else '{}')
    try:
        compile(text, f'{cls.__name__}.py', 'exec')
    except SyntaxError as err:
        raise ExportError(
            f'cannot export {cls.__qualname__}: the extracted code does not '
            f'compile ({err}); please report this with the class source') from err
    undefined = sorted(undefined_names(text))
    if undefined:
        raise ExportError(
            f'cannot export {cls.__qualname__}: the extracted code uses names '
            f'liberator could not define: {undefined}; define them at module '
            'level in the model module, or add their package to export_modules')
    return ExportedCode(text, cls.__name__, origin, enc, requires,
                        local_imports=find_local_packages(anywhere))


def _sorted_dict(value):
    if isinstance(value, dict):
        return {k: _sorted_dict(value[k]) for k in sorted(value)}
    return value


def _read_text(fpath):
    try:
        return Path(fpath).read_text()
    except (OSError, TypeError, ValueError):
        return ''


def export_model_code(dpath, model, initkw=None, export_modules=()):
    """
    Write the standalone source file of a model class into ``dpath``.

    Args:
        dpath (str | PathLike): an existing output folder.
        model (torch.nn.Module | type): the model or its class.
        initkw (dict | None): see :func:`torch_liberator.deployer._initkw.infer_initkw`.
        export_modules (Iterable[str]): packages whose code is inlined.

    Returns:
        Path: ``dpath / '<Class>_<hash>.py'``.

    Raises:
        ExportError: the source cannot be extracted correctly.

    Example:
        >>> import tempfile, torch
        >>> from torch_liberator.deployer._export import export_model_code
        >>> tmp = tempfile.TemporaryDirectory()
        >>> fpath = export_model_code(tmp.name, torch.nn.Conv1d(1, 2, 3))
        >>> fpath.name.startswith('Conv1d_')
        True
        >>> tmp.cleanup()
    """
    from torch_liberator.deployer._files import atomic_write
    from torch_liberator.errors import DeployError
    code = build_model_code(model, initkw=initkw, export_modules=export_modules)
    try:
        return atomic_write(Path(dpath) / code.fname,
                            lambda file: file.write(code.text.encode('utf8')))
    except DeployError as err:
        raise ExportError(str(err)) from err
