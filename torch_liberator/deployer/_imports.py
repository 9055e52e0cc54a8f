"""
What exported model code imports: the third-party packages a deploy file
needs where it loads (its manifest's ``requires``, with their versions), and
the user's own, not installed, packages it would miss there.

Example:
    >>> from torch_liberator.deployer._imports import find_code_imports
    >>> find_code_imports('import torch\\ndef f():\\n    import jax')
    (['torch'], [])
"""
import ast
import contextlib
import functools
import os
import sys

__all__ = ['find_code_imports', 'find_local_packages', 'imported_anywhere',
           'installed_versions']


def find_code_imports(text):
    """
    Top-level names of the third-party modules some Python source imports
    when it is run (static).

    Only imports that run with the module count: those at module level
    (also inside module-level ``if``/``try`` blocks and class bodies), not
    those inside functions, which run only when called (timm imports the
    optional ``jax`` that way).

    Args:
        text (str): Python source.

    Returns:
        Tuple[List[str], List[str]]: (third-party module names, relative or
        ``__main__`` import lines, anywhere, that cannot work in a
        standalone file).

    Example:
        >>> from torch_liberator.deployer._imports import find_code_imports
        >>> find_code_imports('import os\\nimport torch.nn as nn\\nfrom . import x')
        (['torch'], ['from . import x'])
        >>> find_code_imports('import numpy\\ndef f():\\n    import jax')
        (['numpy'], [])
    """
    tree = ast.parse(text)
    bad = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
           and (node.level or node.module == '__main__')]
    return sorted(_third_party(_import_nodes(tree, in_functions=False))), bad


def imported_anywhere(text):
    """
    Like :func:`find_code_imports`'s first list, but also counting imports
    inside functions (they fail when called where the module is missing).

    Example:
        >>> from torch_liberator.deployer._imports import imported_anywhere
        >>> imported_anywhere('import torch\\ndef f():\\n    import jax')
        ['jax', 'torch']
    """
    return sorted(_third_party(_import_nodes(ast.parse(text), in_functions=True)))


def _import_nodes(tree, in_functions):
    """Import statements of ``tree``; with ``in_functions=False`` not those
    in function bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif in_functions or not isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _third_party(nodes):
    tops = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level or node.module == '__main__':
                continue
            mods = [node.module]
        else:
            mods = [alias.name for alias in node.names]
        tops.update(mod.split('.')[0] for mod in mods)
    return {top for top in tops
            if top not in sys.stdlib_module_names and top != '__future__'}


def find_local_packages(mods):
    """
    The modules of ``mods`` that are importable here but not installed
    (neither in a site-packages folder nor a distribution): a user's own
    code that another machine will not have.

    Args:
        mods (Iterable[str]): top-level module names.

    Returns:
        Dict[str, str]: name -> where it is found here.

    Example:
        >>> from torch_liberator.deployer._imports import find_local_packages
        >>> find_local_packages(['torch', 'json', 'no_such_module_xyz'])
        {}
    """
    import importlib.util
    import site
    import sysconfig
    roots = {os.path.realpath(p) for p in site.getsitepackages() + [
        site.getusersitepackages(), sysconfig.get_paths()['purelib'],
        sysconfig.get_paths()['platlib']]}
    found = {}
    for mod in mods:
        if mod in sys.stdlib_module_names:
            continue
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            continue
        where = spec and (spec.origin if spec.origin not in (None, 'namespace') else
                          next(iter(spec.submodule_search_locations or []), None))
        if not where or not os.path.exists(where):
            continue  # not importable here, or built in
        real = os.path.realpath(where)
        if any(real.startswith(root + os.sep) for root in roots):
            continue
        if mod in _distributions():
            continue  # an editable or otherwise installed distribution
        found[mod] = where
    return found


@functools.lru_cache(maxsize=None)
def _distributions():
    import importlib.metadata
    return importlib.metadata.packages_distributions()


def installed_versions(mods):
    """
    The installed version of each module's distribution (None if unknown).

    Example:
        >>> import json
        >>> from torch_liberator.deployer._imports import installed_versions
        >>> list(installed_versions(['torch', 'no_such_module_xyz']).items())[1]
        ('no_such_module_xyz', None)
    """
    import importlib.metadata
    out = {}
    for mod in mods:
        version = None
        # the distribution usually has the module's name; scanning every
        # installed distribution (slow: ~0.5 s) is the fallback
        with contextlib.suppress(Exception):
            version = importlib.metadata.version(mod)
            out[mod] = version
            continue
        for dist in _distributions().get(mod, []):
            with contextlib.suppress(Exception):
                version = importlib.metadata.version(dist)
                break
        out[mod] = version
    return out
