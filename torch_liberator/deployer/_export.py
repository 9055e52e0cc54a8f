"""
Extract the source code that defines a model class into one ``.py`` file.

`liberator <https://pypi.org/project/liberator/>`_ gathers the class's source
closure (``export_modules`` packages inlined); the file ends with
``get_model_cls()`` and ``get_initkw()``. What liberator would get wrong is an
:class:`~torch_liberator.errors.ExportError` instead: no source file, nested
classes, unresolved names, imports that cannot work standalone, and names
bound conditionally (liberator keeps the last binding; the one that ran here
is put in the file, or export stops).

Example:
    >>> import tempfile, torch
    >>> from torch_liberator.deployer._export import export_model_code
    >>> tmp = tempfile.TemporaryDirectory()
    >>> fpath = export_model_code(tmp.name, torch.nn.Linear(3, 2))
    >>> fpath.name.startswith('Linear_'), 'def get_model_cls' in fpath.read_text()
    (True, True)
    >>> tmp.cleanup()
"""
import ast
import contextlib
import functools
import hashlib
import importlib
import io
import os
import re
import sys
import warnings
from pathlib import Path

from torch_liberator.deployer._files import atomic_write, plain_name
from torch_liberator.deployer._initkw import encode_initkw, initkw_code, resolve_initkw
from torch_liberator.errors import DeployError, ExportError

__all__ = ['ExportedCode', 'build_factory_code', 'build_model_code', 'export_model_code',
           'find_code_imports']

_FUTURE_RE = re.compile(r'^from\s+__future__\s+import\s+[^\n]*\bannotations\b', re.MULTILINE)


class ExportedCode:
    """
    An exported model file: ``text``, ``fname`` (``<Class>_<sha256>.py``),
    ``class_name``, ``origin``, ``initkw`` (JSON form), ``requires`` (imports
    run at load -> installed version) and ``local_imports`` (imported modules
    that are not installed packages -> where they are here).

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._export import build_model_code
        >>> code = build_model_code(torch.nn.Linear(2, 2))
        >>> code.class_name, code.initkw, 'torch' in code.requires
        ('Linear', {'in_features': 2, 'out_features': 2}, True)
    """

    def __init__(self, text, class_name, origin, initkw, requires, local_imports=None):
        self.text, self.class_name, self.origin = text, class_name, origin
        self.initkw, self.requires = initkw, requires
        self.local_imports = dict(local_imports or {})
        digest = hashlib.sha256(text.encode('utf8')).hexdigest()
        self.fname = f'{plain_name(class_name)}_{digest[:16]}.py'  # a factory's class may be odd

    def __repr__(self):
        return f'<ExportedCode {self.fname} from {self.origin}>'


# --- imports ------------------------------------------------------------------

def find_code_imports(text):
    """
    The third-party top-level modules Python source imports when run (at
    module level, in module-level blocks and class bodies; not in functions),
    and the relative or ``__main__`` import lines (anywhere).

    Example:
        >>> from torch_liberator.deployer._export import find_code_imports
        >>> find_code_imports('import os, torch\\nfrom . import x\\ndef f():\\n    import jax')
        (['torch'], ['from . import x'])
    """
    tree = ast.parse(text)
    bad = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
           and (node.level or node.module == '__main__')]
    return _third_party(tree, in_functions=False), bad


def _third_party(tree, in_functions):
    """Sorted third-party top-level module names imported in ``tree``."""
    tops, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            tops.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if not node.level and node.module != '__main__':
                tops.add(node.module.split('.')[0])
        elif in_functions or not isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
    return sorted(t for t in tops if t not in sys.stdlib_module_names and t != '__future__')


def _local_packages(mods):
    """The modules importable here that are not installed (a user's own code)."""
    import importlib.util
    import site
    import sysconfig
    roots = {os.path.realpath(p) for p in site.getsitepackages() + [
        site.getusersitepackages(), sysconfig.get_paths()['purelib'],
        sysconfig.get_paths()['platlib']]}
    found = {}
    for mod in mods:
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            continue
        where = spec and (spec.origin if spec.origin not in (None, 'namespace') else
                          next(iter(spec.submodule_search_locations or []), None))
        if not where or not os.path.exists(where):
            continue  # not importable here, or built in
        real = os.path.realpath(where)
        if not any(real.startswith(root + os.sep) for root in roots) \
                and mod not in _distributions():
            found[mod] = where
    return found


@functools.lru_cache(maxsize=None)
def _distributions():
    import importlib.metadata
    return importlib.metadata.packages_distributions()


def _installed_versions(mods):
    """Module -> the installed version of its distribution (None if unknown)."""
    import importlib.metadata
    out = {}
    for mod in mods:
        out[mod] = None
        # the distribution usually has the module's name; scanning them all is slow
        for dist in [mod] + _distributions().get(mod, []):
            with contextlib.suppress(Exception):
                out[mod] = importlib.metadata.version(dist)
                break
    return out


# --- conditional bindings ---------------------------------------------------------

_BLOCKS = ('body', 'orelse', 'finalbody')
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _conditional_names(source):
    """Module-level names bound more than once or inside a block -> the statements."""
    bound = {}

    def visit(stmts, nested):
        for stmt in stmts:
            for name in _bound_names(stmt):
                bound.setdefault(name, []).append((nested, stmt))
            if isinstance(stmt, _SCOPES):
                continue
            for field in _BLOCKS:
                visit(getattr(stmt, field, None) or [], True)
            for block in (getattr(stmt, 'handlers', None) or []) + (
                    getattr(stmt, 'cases', None) or []):
                visit(block.body, True)

    visit(ast.parse(source).body, False)
    return {name: [stmt for _, stmt in found] for name, found in bound.items()
            if len(found) > 1 or found[0][0]}


def _bound_names(stmt):
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [alias.asname or alias.name.split('.')[0] for alias in stmt.names]
    if isinstance(stmt, _SCOPES):
        return [stmt.name]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else (
        [stmt.target] if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) else [])
    return [node.id for target in targets for node in ast.walk(target)
            if isinstance(node, ast.Name)]


def _pin_conditional_bindings(lib, sources, modnames, owner):
    """Rewrite each conditionally bound name in a liberator result to the
    binding that gives the running module's object, or raise."""
    found = {}
    for definition in list(lib.body_defs.values()) + list(lib.header_defs.values()):
        key = definition.modpath
        if key not in found:
            found[key] = _conditional_names(sources[key]) if sources.get(key) else {}
        stmts = found[key].get(definition.name)
        module = sys.modules.get(modnames.get(key, ''))
        if (not stmts or module is None or not hasattr(module, definition.name)
                or definition.type not in ('Import', 'ImportFrom', 'Assign')):
            continue  # liberator takes a def's or class's code from the live object
        live = getattr(module, definition.name)
        code = next((c for c in (_binding_code(s, definition.name, live, sources[key])
                                 for s in stmts) if c is not None), None)
        if code is None:
            raise ExportError(
                f'cannot export {owner}: {module.__name__} binds {definition.name!r} '
                f'conditionally or more than once (lines {sorted(s.lineno for s in stmts)}), '
                'and which binding ran cannot be told from the code; liberator would keep '
                f'{definition.code.splitlines()[0]!r}. Bind it once, unconditionally, at '
                'module level')
        definition._code = code  # liberator keeps a definition's text there
        if definition.code != code.strip():
            raise ExportError(
                f'cannot export {owner}: this liberator version does not let '
                f'torch_liberator fix its choice for {definition.name!r}; install '
                'liberator>=0.1.1 as pyproject.toml declares')


def _binding_code(stmt, name, live, source):
    """Source of one statement binding ``name`` to ``live``, or None."""
    if isinstance(stmt, ast.Assign) and [getattr(t, 'id', None) for t in stmt.targets] == [name]:
        try:
            value = ast.literal_eval(stmt.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        return ast.get_source_segment(source, stmt) \
            if type(value) is type(live) and value == live else None
    if not isinstance(stmt, (ast.Import, ast.ImportFrom)) or (
            isinstance(stmt, ast.ImportFrom) and (stmt.level or not stmt.module)):
        return None
    for alias in stmt.names:
        if (alias.asname or alias.name.split('.')[0]) != name:
            continue
        try:  # a module may raise anything on import
            if isinstance(stmt, ast.ImportFrom):
                value = getattr(importlib.import_module(stmt.module), alias.name, None)
                if value is None:
                    value = importlib.import_module(f'{stmt.module}.{alias.name}')
                code = f'from {stmt.module} import {alias.name}' + (
                    f' as {name}' if name != alias.name else '')
            else:
                value = importlib.import_module(alias.name if alias.asname else name)
                code = f'import {alias.name}' + (f' as {alias.asname}' if alias.asname else '')
        except Exception:
            return None
        return code if value is live else None
    return None


# --- source extraction ------------------------------------------------------------

def _module_source(obj):
    """(source, liberator key, module name) of the module defining ``obj``."""
    modname, qualname = obj.__module__, obj.__qualname__
    if '<locals>' in qualname or '.' in qualname:
        raise ExportError(f'cannot export {qualname}: it is defined inside a function or '
                          'class; define it at module level')
    module = sys.modules.get(modname)
    deployed = getattr(module, '__torch_liberator_source__', None)
    if deployed is not None:  # code loaded from a deploy file
        return deployed, f'<deployed {modname}>', modname
    fpath = getattr(module, '__file__', None)
    if not fpath or not str(fpath).endswith('.py') or not os.path.isfile(fpath):
        raise ExportError(
            f'cannot export {qualname}: its module {modname!r} has no Python source file '
            f'({fpath!r}); classes defined in an interactive session, a notebook cell, '
            '`python -c` or a compiled extension cannot be extracted -- move the class into '
            'a .py file and import it')
    import tokenize
    with tokenize.open(fpath) as file:
        # the running script keeps the name __main__, so that liberator finds
        # its objects instead of importing (re-running) it
        return file.read(), os.path.abspath(fpath), modname


class _NoProgress(Exception):
    pass


@contextlib.contextmanager
def _guard_closing(max_rounds=200):
    """Stop liberator when its name-resolution rounds repeat a set (some
    modules, e.g. torch.nn.Sequential's, make it oscillate forever)."""
    import liberator.core
    original, seen = liberator.core.undefined_names, []

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
    from liberator.core import DefinitionVisitor, Liberator
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
                _guard_closing():
            warnings.simplefilter('ignore')
            lib, sources = Liberator(logger=-1), {}
            for obj in [cls] + list(extra_objs):
                source, key, modname = _module_source(obj)
                sources[key] = source
                if key not in lib.visitors:
                    lib.visitors[key] = DefinitionVisitor.parse(
                        source=source, modpath=key, modname=modname, logger=lib.logger)
                try:
                    definition = lib.visitors[key].extract_definition(obj.__name__)
                except KeyError:
                    raise ExportError(
                        f'cannot export {obj.__qualname__}: {modname} has no top-level '
                        f'definition named {obj.__name__!r} (was it created dynamically?); '
                        'define it with a class/def statement') from None
                lib._add_definition(definition)
                lib.close(lib.visitors[key])
            if export_modules:
                lib.expand(list(export_modules))
    except ExportError:
        raise
    except _NoProgress as err:
        raise ExportError(
            f'cannot export {cls.__qualname__}: liberator cannot order its definitions (names '
            f'{err.args[0]} keep coming back undefined, often a class that names itself in '
            'annotations without `from __future__ import annotations`); add that import to '
            'the module, or deploy a model class of your own') from None
    except AssertionError as err:
        raise ExportError(
            f'cannot export {cls.__qualname__}: liberator could not resolve some names '
            f'({err}); define them at module level or add their package to export_modules') \
            from err
    except Exception as err:
        raise ExportError(f'cannot export {cls.__qualname__}: liberator failed with '
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


def _contract(head, meta, class_name, enc):
    from torch_liberator import __version__
    head = f'"""\n{head}, deployed by torch_liberator {__version__}.\n\nGenerated; ' \
           're-export instead of editing (deploy files check its sha256).\n"""\n'
    meta = {k: meta[k] for k in sorted(meta)}
    return head, _CONTRACT.format(meta=repr(meta), class_name=class_name,
                                  initkw_code=initkw_code(enc))


def build_model_code(model, initkw=None, export_modules=()):
    """
    The text of a standalone model file (an :class:`ExportedCode`; writes
    nothing). ``model`` may be a class; ``initkw`` as in
    :func:`torch_liberator.deployer._initkw.resolve_initkw`.

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
    export_modules = tuple(sorted({export_modules} if isinstance(export_modules, str)
                                  else set(export_modules)))
    kwargs, _ = resolve_initkw(model, initkw)
    enc, objects = encode_initkw(kwargs, cls, export_modules)
    key = (cls, tuple(objects), export_modules, repr(enc))
    try:
        paths, stamp, code = _CODE_CACHE.get(key, ((), None, None))
    except TypeError:  # an unhashable object in the key
        key, paths, stamp, code = None, (), None, None
    if code is None or _file_stamp(paths) != stamp:
        code, paths = _export_code(cls, objects, export_modules, enc)
        if key is not None:
            _CODE_CACHE[key] = (paths, _file_stamp(paths), code)
    if code.local_imports:
        names = sorted(code.local_imports)
        where = ', '.join(f'{m} ({code.local_imports[m]})' for m in names)
        warnings.warn(
            f'the exported code of {cls.__qualname__} imports {where}, which is not an '
            'installed package: the deploy file will not load where it is missing; pass '
            f'export_modules={names} to put its code in the file (or make it an installed '
            'package)', UserWarning, stacklevel=3)
    return code


def build_factory_code(factory_ref, initkw, model_cls):
    """
    The text of a model file whose ``get_model_cls()`` returns a factory
    named by import path (``'module:qualname'``); its package must be
    installed where the file loads.

    Example:
        >>> import torch
        >>> from torch_liberator.deployer._export import build_factory_code
        >>> initkw = {'in_features': 2, 'out_features': 1}
        >>> code = build_factory_code('torch.nn:Linear', initkw, torch.nn.Linear)
        >>> ns = {}
        >>> exec(compile(code.text, code.fname, 'exec'), ns)
        >>> ns['get_model_cls']()(**ns['get_initkw']()).weight.shape, list(code.requires)
        (torch.Size([1, 2]), ['torch'])
    """
    enc = encode_initkw(initkw)[0]
    modname, qualname = factory_ref.split(':')
    tops = {modname.split('.')[0]} | {r.split('.')[0] for r in re.findall(
        r"'__ref__': '([^':]+):", repr(enc))}
    requires = _installed_versions(sorted(tops - set(sys.stdlib_module_names)))
    meta = {'class': model_cls.__name__, 'factory': factory_ref, 'origin': factory_ref,
            'requires': requires, 'format_version': 1}
    head, contract = _contract(f'{model_cls.__name__}: a model built by {factory_ref}', meta,
                               f'_tl_import({modname!r}, {qualname!r})', enc)
    return ExportedCode(head + contract, model_cls.__name__, factory_ref, enc, requires)


# (cls, local objects, export_modules, initkw) -> (source paths, their stamp, code):
# liberator is the slow part of a deploy, and a training loop deploys the same
# class again and again; the stamp (mtime and size of every source) invalidates
_CODE_CACHE = {}


def _file_stamp(paths):
    stamp = []
    for path in paths:
        try:
            st = os.stat(path)
            stamp.append((st.st_mtime_ns, st.st_size))
        except (OSError, TypeError, ValueError):
            stamp.append(None)
    return tuple(stamp)


def _export_code(cls, local_objects, export_modules, enc):
    # the checked file text around liberator's body, and the sources it came from
    from liberator.core import undefined_names
    lib, sources = _run_liberator(cls, local_objects, export_modules)
    modnames = {}
    for modpath, visitor in lib.visitors.items():
        modnames[modpath] = visitor.modname
        if modpath not in sources:  # an export_modules module read by liberator
            sources[modpath] = _read_text(modpath)
    _pin_conditional_bindings(lib, sources, modnames, cls.__qualname__)
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
                f'{definition.name!r} ({other} and {definition.absname}) would collide in '
                'one file; rename one of them')
    body = lib.current_sourcecode().strip('\n')
    origin = f'{cls.__module__}.{cls.__qualname__}'
    third, bad = find_code_imports(body)
    anywhere = _third_party(ast.parse(body), in_functions=True)
    leftover = [m for m in anywhere if any(m == p.split('.')[0] for p in export_modules)]
    if bad or leftover:
        raise ExportError(
            f'cannot export {cls.__qualname__}: the extracted code still has imports that '
            f'will not work standalone ({bad + leftover}); liberator does not inline imports '
            'inside functions -- move them to module level (or leave the package out of '
            'export_modules)')
    requires = _installed_versions(third)
    meta = {'class': cls.__name__, 'origin': origin, 'requires': requires, 'format_version': 1}
    head, contract = _contract(f'{cls.__name__}: model code exported from {origin}', meta,
                               cls.__name__, enc)
    text = head + ('from __future__ import annotations\n' if future else '') + '\n' + body \
        + '\n' + contract
    try:
        compile(text, f'{cls.__name__}.py', 'exec')
    except SyntaxError as err:
        raise ExportError(f'cannot export {cls.__qualname__}: the extracted code does not '
                          f'compile ({err}); please report this with the class source') from err
    undefined = sorted(undefined_names(text))
    if undefined:
        raise ExportError(
            f'cannot export {cls.__qualname__}: the extracted code uses names liberator could '
            f'not define: {undefined}; define them at module level in the model module, or '
            'add their package to export_modules')
    paths = sorted({d.modpath for d in lib.body_defs.values() if d.modpath})
    return ExportedCode(text, cls.__name__, origin, enc, requires,
                        local_imports=_local_packages(anywhere)), paths


def _read_text(fpath):
    try:
        return Path(fpath).read_text()
    except (OSError, TypeError, ValueError):
        return ''


def export_model_code(dpath, model, initkw=None, export_modules=()):
    """
    Write the standalone source file of a model class into the folder
    ``dpath``; returns ``dpath / '<Class>_<hash>.py'``.

    Raises:
        ExportError: the source cannot be extracted correctly.

    Example:
        >>> import tempfile, torch
        >>> from torch_liberator.deployer._export import export_model_code
        >>> tmp = tempfile.TemporaryDirectory()
        >>> export_model_code(tmp.name, torch.nn.Conv1d(1, 2, 3)).name.startswith('Conv1d_')
        True
        >>> tmp.cleanup()
    """
    code = build_model_code(model, initkw=initkw, export_modules=export_modules)
    try:
        return atomic_write(Path(dpath) / code.fname,
                            lambda file: file.write(code.text.encode('utf8')))
    except DeployError as err:
        raise ExportError(str(err)) from err
