"""
BatchNorms saved as two modules, read as one.

Caffe keeps a batch norm in two layers: ``BatchNorm`` holds the running
statistics and ``Scale`` the affine weight and bias. Converted ResNets keep
both names (``bn2a_branch2a.running_mean`` beside
``scale2a_branch2a.weight``), so a torch BatchNorm's four tensors come from
two checkpoint modules, and a solver that keeps a module's tensors together
(as every tree mode does) can place only half of it. :func:`joined_norms`
finds such pairs and spells the affine module's keys under the statistics
module's name, so the pair is one module of four tensors; the structure
mode aligns them spelled so (``modesolvers``) and answers in the given keys.

Two sibling modules are one norm when one holds running statistics only
(``running_mean`` and ``running_var``, perhaps ``num_batches_tracked``), the
other a ``weight`` and a ``bias`` only, all of one width, and their names
are two words before one shared rest that starts with no letter (``bn``
and ``scale`` before ``2a_branch2a``; MXNet's ``aux`` and ``arg`` before
``:stage1_unit1_bn1``, once spelled the torch way); each module has one
such partner, or none is joined. A torch BatchNorm holds all four tensors in one
module, so torch checkpoints are never respelled.

Example:
    >>> from torch_liberator.splitnorms import joined_norms
    >>> keys = {'res2a_branch2a.weight': (64, 64, 1, 1),
    ...         'bn2a_branch2a.running_mean': (64,), 'bn2a_branch2a.running_var': (64,),
    ...         'scale2a_branch2a.weight': (64,), 'scale2a_branch2a.bias': (64,)}
    >>> joined_norms(keys)['scale2a_branch2a.bias']
    'bn2a_branch2a.bias'
    >>> print(joined_norms({'bn.weight': (4,), 'bn.bias': (4,), 'bn.running_mean': (4,)}))
    None
"""
import re
from typing import Dict, Mapping, Optional, Sequence

__all__ = ['joined_norms']

_STATISTICS = {'running_mean', 'running_var'}
_AFFINE = {'weight', 'bias'}

#: a word, then the rest of the name from a character that is no letter
#: (``scale`` + ``2a_branch2a``, ``arg`` + ``:stage1_unit1_bn1``)
_WORD_REST = re.compile(r'([A-Za-z]+)([^A-Za-z].*)')


def joined_norms(shapes: Mapping[str, Optional[Sequence[int]]],
                 sep: str = '.') -> Optional[Dict[str, str]]:
    """
    ``{key: key}`` for every key of one side, the affine half of each
    BatchNorm saved as two modules spelled under its statistics' module
    (see the module docstring); None when the side holds no such pair.

    Args:
        shapes: one side's keys and shapes, in order.
        sep: separator between path components.
    """
    suffix = sep + 'running_mean'
    if not any(key.endswith(suffix) and key[:-len('running_mean')] + 'weight' not in shapes
               for key in shapes):
        return None  # (the cheap test first: every norm holds its weight)
    modules = {}  # module path -> {tensor name: shape}
    for key, shape in shapes.items():
        path, _, name = key.rpartition(sep)
        modules.setdefault(path, {})[name] = shape
    stats, affine = {}, {}  # (parent, rest, width) -> module paths
    for path, tensors in modules.items():
        names = set(tensors) - {'num_batches_tracked'}
        widths = {tuple(tensors[n] or ()) for n in names}
        if len(widths) != 1 or len(next(iter(widths))) != 1:
            continue
        parent, _, label = path.rpartition(sep)
        match = _WORD_REST.fullmatch(label)
        if match is None:
            continue
        place = (parent, match[2], next(iter(widths)))
        if names == _STATISTICS:
            stats.setdefault(place, []).append(path)
        elif names == _AFFINE and 'num_batches_tracked' not in tensors:
            affine.setdefault(place, []).append(path)
    joined = {affine[place][0]: paths[0] for place, paths in stats.items()
              if len(paths) == 1 and len(affine.get(place, ())) == 1}
    if not joined:
        return None
    out = {}
    for key in shapes:
        path, _, name = key.rpartition(sep)
        out[key] = joined[path] + sep + name if path in joined else key
    return out
