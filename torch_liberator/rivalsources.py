"""
Pairs that fill one module from a rival copy of the module that fills it.

A general mode may skip a level on either side, so two sibling source
modules can both feed one destination module: a checkpoint holding a
headless network (``stage.conv``, ``stage.bn``) beside another whole one
(``body.conv``, ``body.bn``, ``body.fc``) loaded into the first network
with its head (``conv``, ``bn``, ``fc``) gets ``stage``'s tensors and
``body.fc``. But ``body`` has a ``conv`` too, and it is not the one the
model's ``conv`` holds: ``body`` is another network of the same names,
and nothing says its ``fc`` is the model's (mutation fuzz seed 9005: a
resnext50 without its fc beside a resnet50, into a resnext50). Such pairs
are left out; a split checkpoint (``backbone.conv``, ``head.fc``) shares
no name between its parts and keeps its pairs. Positions (numbered
children) are no names: the parts of a list cut in two share them.

Example:
    >>> from torch_liberator.rivalsources import rival_pairs
    >>> src = ['stage.conv.weight', 'body.conv.weight', 'body.fc.weight']
    >>> mapping = {'stage.conv.weight': 'conv.weight', 'body.fc.weight': 'fc.weight'}
    >>> rival_pairs(mapping, src)
    {'body.fc.weight': 'fc.weight'}
    >>> rival_pairs({'stage.conv.weight': 'conv.weight', 'head.fc.weight': 'fc.weight'},
    ...             ['stage.conv.weight', 'head.fc.weight'])
    {}
"""
from typing import Dict, Iterable, Mapping

__all__ = ['rival_pairs']


def _feeder(src_parts, dst_parts):
    """The source and destination nodes above the longest common suffix of
    two keys, and the first label of that suffix (None when there is none)."""
    n, most = 0, min(len(src_parts), len(dst_parts))
    while n < most and src_parts[-1 - n] == dst_parts[-1 - n]:
        n += 1
    if not n:
        return None
    return (tuple(src_parts[:len(src_parts) - n]), tuple(dst_parts[:len(dst_parts) - n]),
            src_parts[len(src_parts) - n])


def _nested(a, b):
    """Whether one of two node paths is at or below the other."""
    return a[:len(b)] == b or b[:len(a)] == a


def rival_pairs(mapping: Mapping[str, str], src_keys: Iterable[str],
                sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` that fill a destination module ``N`` from a
    source module ``X`` (the nodes above the longest common suffix of the two
    keys) while another source module ``Y``, neither above nor below ``X``,
    fills ``N`` too and fills ``N.L`` for a named child ``L`` that ``X``
    also has: ``X`` is a rival copy of ``Y``, not the other part of it.

    Args:
        mapping: source key -> destination key.
        src_keys: every source key (the children of ``X`` are read from them).
        sep: separator between path components.

    Returns:
        Dict[str, str]: the rival pairs, a sub-mapping of ``mapping``.

    Example:
        >>> from torch_liberator.rivalsources import rival_pairs
        >>> src = ['a.conv.weight', 'a.bn.weight', 'b.conv.weight', 'b.bn.weight', 'b.fc.weight']
        >>> rival_pairs({'a.conv.weight': 'conv.weight', 'a.bn.weight': 'bn.weight',
        ...              'b.fc.weight': 'fc.weight'}, src)
        {'b.fc.weight': 'fc.weight'}
    """
    fed = {}  # destination node -> {source node: {first labels}}
    where = {}
    for s, d in mapping.items():
        found = _feeder(s.split(sep), d.split(sep))
        if found is None:
            continue
        x, n, label = found
        fed.setdefault(n, {}).setdefault(x, set()).add(label)
        where[s] = (x, n)
    shared = {n: feeders for n, feeders in fed.items() if len(feeders) > 1}
    if not shared:
        return {}
    wanted = {x for feeders in shared.values() for x in feeders}
    children = {x: set() for x in wanted}
    for key in src_keys:
        parts = tuple(key.split(sep))
        for i in range(len(parts)):
            below = children.get(parts[:i])
            if below is not None:
                below.add(parts[i])
    rivals = set()
    for n, feeders in shared.items():
        for x, labels in feeders.items():
            names = {c for c in children[x] - labels if not c.isdigit()}
            if any(names & other for y, other in feeders.items()
                   if y != x and not _nested(x, y)):
                rivals.add((x, n))
    return {s: d for s, d in mapping.items() if where.get(s) in rivals}
