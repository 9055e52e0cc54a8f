"""
Decide which checkpoint key goes to which model key.

Pure: key strings in, a one-to-one mapping out; no torch needed. The
association modes, from the most literal to the most general:

================  ============================================================
``strict``        identical keys only
``module-hack``   identical after adding or stripping the ``module.`` prefix
                  of (Distributed)DataParallel or the ``_orig_mod.`` prefix
                  that ``torch.compile`` leaves
``prefix-hack``   the single best "remove prefix P, add prefix Q" transform
``isomorphism``   maximum common subtree isomorphism of the two key trees:
                  parent-child edges kept, the names of the two subtree roots
                  may differ (``module.*`` <-> ``backbone.*``)
``embedding``     maximum common subtree embedding: ancestor order kept, levels
                  may be skipped on either side
                  (``layer1.0.w`` <-> ``backbone.body.layer1.0.w``,
                  ``features.0.w`` <-> ``features.block.0.w``)
================  ============================================================

``prefix-hack`` and ``isomorphism`` find the same transform (a state dict's
relative paths are unique, so a common subtree is exactly a shared
prefix pair); both are kept because published code names both.

Example:
    >>> from torch_liberator.association import associate_keys
    >>> src = ['conv1.weight', 'layer1.0.weight', 'fc.weight']
    >>> dst = ['backbone.body.conv1.weight', 'backbone.body.layer1.0.weight']
    >>> associate_keys(src, dst, association='embedding')
    {'conv1.weight': 'backbone.body.conv1.weight', 'layer1.0.weight': 'backbone.body.layer1.0.weight'}
"""
import gc
from contextlib import contextmanager

from torch_liberator.keytree import KeyTree
from torch_liberator.subtree_embedding import embedding_mapping
from torch_liberator.subtree_isomorphism import find_anchors, isomorphism_mapping

__all__ = [
    'ASSOCIATIONS',
    'MODES',
    'associate_keys',
    'maximum_common_ordered_subpaths',
]

#: every value accepted by ``association=``
ASSOCIATIONS = ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism')

#: the tree problems accepted by ``mode=`` of maximum_common_ordered_subpaths
MODES = ('embedding', 'isomorphism')

#: prefixes that wrappers add in front of every key
_WRAPPER_PREFIXES = ('module.', '_orig_mod.')


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f'{name}={value!r} is not one of {choices}')


def _strict_mapping(src_keys, dst_keys):
    dst = set(dst_keys)
    return {k: k for k in src_keys if k in dst}


def _strip_wrappers(key):
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                stripped = True
    return key


def _module_hack_mapping(src_keys, dst_keys):
    """
    Compare both key sets with every wrapper prefix stripped, then keep the
    pairs whose stripped keys agree.
    """
    dst_by_bare = {}
    for key in dst_keys:
        dst_by_bare.setdefault(_strip_wrappers(key), key)
    mapping = {}
    used = set()
    for key in src_keys:
        target = dst_by_bare.get(_strip_wrappers(key))
        if target is not None and target not in used:
            mapping[key] = target
            used.add(target)
    return mapping


@contextmanager
def _gc_paused():
    """
    The solvers allocate many small objects that all stay alive until they
    return; a cyclic-GC pass in between would walk every object of the
    process (a loaded model included) for nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _tree_mapping(src_keys, dst_keys, mode, sep):
    with _gc_paused():
        tree1 = KeyTree(src_keys, sep=sep)
        tree2 = KeyTree(dst_keys, sep=sep)
        if mode == 'isomorphism':
            return isomorphism_mapping(tree1, tree2)
        anchors = [anchor for _, anchor in find_anchors(tree1, tree2, top=2)]
        return embedding_mapping(tree1, tree2, anchors=anchors)


def associate_keys(src_keys, dst_keys, association='isomorphism', sep='.',
                   shortcut=True):
    """
    Map checkpoint (source) keys to model (destination) keys.

    Args:
        src_keys (Iterable[str]): keys of the checkpoint.
        dst_keys (Iterable[str]): keys of the model.
        association (str): one of :data:`ASSOCIATIONS`.
        sep (str): separator between path components.
        shortcut (bool): when the identical keys already make the largest
            possible mapping (every key of the smaller side exists on the
            other), return them without building trees; the result is the
            same. False always runs the chosen solver.

    Returns:
        Dict[str, str]: source key -> destination key; one-to-one, in source
        order, and only keys that exist on both sides.

    Raises:
        ValueError: unknown ``association``.

    Example:
        >>> from torch_liberator.association import associate_keys
        >>> src = ['module.fc.weight', 'module.fc.bias']
        >>> dst = ['fc.weight', 'fc.bias']
        >>> associate_keys(src, dst, association='strict')
        {}
        >>> associate_keys(src, dst, association='module-hack')
        {'module.fc.weight': 'fc.weight', 'module.fc.bias': 'fc.bias'}
        >>> associate_keys(src, dst, association='prefix-hack')
        {'module.fc.weight': 'fc.weight', 'module.fc.bias': 'fc.bias'}
    """
    _check_choice('association', association, ASSOCIATIONS)
    src_keys = list(src_keys)
    dst_keys = list(dst_keys)
    exact = _strict_mapping(src_keys, dst_keys)
    if association == 'strict' or (
            shortcut and len(exact) == min(len(src_keys), len(dst_keys))):
        # nothing can map more keys than identity already does
        return exact
    if association == 'module-hack':
        return _module_hack_mapping(src_keys, dst_keys)
    mode = 'embedding' if association == 'embedding' else 'isomorphism'
    return _tree_mapping(src_keys, dst_keys, mode, sep)


def maximum_common_ordered_subpaths(paths1, paths2, sep='.', mode='embedding'):
    """
    The largest sets of paths that correspond between two path lists.

    Splits each path on ``sep``, builds the two trees and solves the maximum
    common subtree ``embedding`` or ``isomorphism`` problem (see the module
    docstring).

    Args:
        paths1 (Iterable[str]): first list of paths.
        paths2 (Iterable[str]): second list of paths.
        sep (str): separator between path components.
        mode (str): ``'embedding'`` or ``'isomorphism'``.

    Returns:
        Tuple[List[str], List[str]]: ``subpaths1, subpaths2``, equally long,
        where ``subpaths1[i]`` corresponds to ``subpaths2[i]``; ordered as in
        ``paths1``.

    Example:
        >>> from torch_liberator.association import maximum_common_ordered_subpaths
        >>> paths1 = ['stats', 'z.mu', 'z.sigma', 'x.y.z']
        >>> paths2 = ['model.stats', 'model.z.mu', 'model.z.sigma', 'head.w']
        >>> sub1, sub2 = maximum_common_ordered_subpaths(paths1, paths2, mode='isomorphism')
        >>> list(zip(sub1, sub2))
        [('stats', 'model.stats'), ('z.mu', 'model.z.mu'), ('z.sigma', 'model.z.sigma')]
    """
    _check_choice('mode', mode, MODES)
    mapping = _tree_mapping(list(paths1), list(paths2), mode, sep)
    return list(mapping.keys()), list(mapping.values())
