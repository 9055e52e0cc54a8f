"""
Make liberator's choice between a name's bindings agree with what ran.

liberator reads a module statically and keeps, for each name, the last
statement that binds it, whatever the control flow. A module that binds a
name in both branches of a ``try``/``if`` then exports the wrong one::

    try:
        import numpy as np          # what ran here
    except ImportError:
        np = None                   # what liberator keeps

and the deployed model behaves differently with the same weights. For every
name that its source module binds more than once, or inside a
``try``/``if``/``with``/loop block, :func:`pin_conditional_bindings` finds
the binding statement whose value is the object the running module holds
(an import that gives the same object, or a literal equal to it) and puts it
in the exported code; when none can be shown to match, export stops with an
:class:`~torch_liberator.errors.ExportError` naming the name. (For a
``def`` or ``class``, liberator already copies the source of the object
that ran.)

Example:
    >>> from torch_liberator.deployer._bindings import conditional_names
    >>> sorted(conditional_names('try:\\n    import numpy as np\\nexcept ImportError:\\n    np = None\\nX = 1\\n'))
    ['np']
"""
import ast
import importlib
import sys

from torch_liberator.errors import ExportError

__all__ = ['conditional_names', 'pin_conditional_bindings']

_BLOCKS = ('body', 'orelse', 'finalbody')
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def conditional_names(source):
    """
    Module-level names a source binds more than once, or inside a block.

    Returns:
        Dict[str, List[ast.stmt]]: name -> the statements that bind it.

    Example:
        >>> from torch_liberator.deployer._bindings import conditional_names
        >>> found = conditional_names('A = 1\\nif B:\\n    C = 2\\nelse:\\n    C = 3\\n')
        >>> sorted(found), len(found['C'])
        (['C'], 2)
    """
    bound = {}

    def visit(stmts, nested):
        for stmt in stmts:
            for name in _bound_names(stmt):
                bound.setdefault(name, []).append((nested, stmt))
            if isinstance(stmt, _SCOPES):
                continue
            for field in _BLOCKS:
                visit(getattr(stmt, field, None) or [], True)
            for handler in getattr(stmt, 'handlers', None) or []:
                visit(handler.body, True)
            for case in getattr(stmt, 'cases', None) or []:
                visit(case.body, True)

    visit(ast.parse(source).body, False)
    return {name: [stmt for _, stmt in found] for name, found in bound.items()
            if len(found) > 1 or found[0][0]}


def _bound_names(stmt):
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [alias.asname or alias.name.split('.')[0] for alias in stmt.names]
    if isinstance(stmt, _SCOPES):
        return [stmt.name]
    targets = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    return [node.id for target in targets for node in ast.walk(target)
            if isinstance(node, ast.Name)]


def pin_conditional_bindings(lib, sources, modnames, owner):
    """
    Rewrite, in a liberator result, each conditionally bound name to the
    binding that gives the running module's object.

    Args:
        lib (liberator.core.Liberator): after closing; its definitions'
            ``code`` are replaced where needed.
        sources (Dict[str, str]): module key (liberator's ``modpath``) ->
            source text.
        modnames (Dict[str, str]): module key -> module name.
        owner (str): what is being exported (for messages).

    Raises:
        ExportError: a name's binding cannot be shown to be the one that ran.
    """
    found = {}
    for definition in list(lib.body_defs.values()) + list(lib.header_defs.values()):
        key = definition.modpath
        if key not in found:
            source = sources.get(key)
            found[key] = conditional_names(source) if source else {}
        stmts = found[key].get(definition.name)
        module = sys.modules.get(modnames.get(key, ''))
        if (not stmts or module is None or not hasattr(module, definition.name)
                or definition.type not in ('Import', 'ImportFrom', 'Assign')):
            continue  # liberator takes a def's or class's code from the live object
        live = getattr(module, definition.name)
        code = next((c for c in (_binding_code(s, definition.name, live, sources[key])
                                 for s in stmts) if c is not None), None)
        if code is None:
            lines = sorted(s.lineno for s in stmts)
            raise ExportError(
                f'cannot export {owner}: {module.__name__} binds {definition.name!r} '
                f'conditionally or more than once (lines {lines}), and which '
                'binding ran cannot be told from the code; liberator would keep '
                f'{definition.code.splitlines()[0]!r}. Bind it once, '
                'unconditionally, at module level')
        definition._code = code  # liberator keeps a definition's text there
        if definition.code != code.strip():
            raise ExportError(
                f'cannot export {owner}: this liberator version does not let '
                f'torch_liberator fix its choice for {definition.name!r}; '
                'install liberator>=0.1.1 as pyproject.toml declares')


def _binding_code(stmt, name, live, source):
    """Source of one statement binding ``name`` to ``live``, or None."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            if (alias.asname or alias.name.split('.')[0]) == name:
                return _import_code(stmt, alias, name, live)
        return None
    if isinstance(stmt, ast.Assign) and [getattr(t, 'id', None) for t in stmt.targets] == [name]:
        try:
            value = ast.literal_eval(stmt.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        if type(value) is type(live) and value == live:
            return ast.get_source_segment(source, stmt)
        return None
    return None


def _import_code(stmt, alias, name, live):
    if isinstance(stmt, ast.ImportFrom):
        if stmt.level or not stmt.module:
            return None
        try:
            module = importlib.import_module(stmt.module)
            value = getattr(module, alias.name, None)
            if value is None:
                value = importlib.import_module(f'{stmt.module}.{alias.name}')
        except Exception:  # a module may raise anything on import
            return None
        tail = f' as {name}' if name != alias.name else ''
        code = f'from {stmt.module} import {alias.name}{tail}'
    else:
        try:
            value = importlib.import_module(alias.name if alias.asname else name)
        except Exception:  # a module may raise anything on import
            return None
        code = f'import {alias.name}' + (f' as {alias.asname}' if alias.asname else '')
    return code if value is live else None
