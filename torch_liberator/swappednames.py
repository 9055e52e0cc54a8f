"""
Shoves that a swap of names explains.

A same-named pair of other sizes is shoved (a 1000-class head into a
10-class one). But a name can move: a checkpoint whose ``layer3`` was saved
as ``body2``, loaded into a model whose ``layer4`` is named ``body2``,
would get ``layer3``'s tensors cropped into ``layer4`` by name, while the
checkpoint's ``layer4`` fits the model's ``body2`` exactly and its
``body2`` fits the model's empty ``layer3`` exactly (mutation fuzz seed
13419). Such a swap is evidence that the shared name means two different
modules: the shoved pairs are left out (:func:`swapped_shoves`). A shove
with no exact fit on either side, or with one on one side only, stays.

Example:
    >>> from torch_liberator.swappednames import swapped_shoves
    >>> src = {'a.w': (4, 2), 'body.w': (8, 4)}
    >>> dst = {'a.w': (4, 2), 'body.w': (16, 8), 'mid.w': (8, 4)}
    >>> src['c.w'] = (16, 8)  # the model's body, saved under another name
    >>> mapping = {'a.w': 'a.w', 'body.w': 'body.w'}
    >>> swapped_shoves(mapping, src, dst)
    {'body.w': 'body.w'}
    >>> del src['c.w']  # no exact fit for the model's body: a shove as published
    >>> swapped_shoves(mapping, src, dst)
    {}
"""
from bisect import bisect_left
from collections import Counter
from typing import Dict, Mapping, Optional, Sequence

from torch_liberator.shapes import shape_relation

__all__ = ['shoves_beside_exact_fits', 'swapped_shoves']

Shapes = Mapping[str, Optional[Sequence[int]]]


def _is_scalar(shape):
    """A tensor of one value (a BatchNorm's ``num_batches_tracked``): it
    fits anywhere and says nothing about which module it belongs to."""
    return shape is not None and all(size == 1 for size in shape)


def _ancestors(key, sep):
    """The node paths above ``key``, nearest first ('' is the root)."""
    parts = key.split(sep)
    return [sep.join(parts[:i]) for i in range(len(parts) - 1, -1, -1)]


def _shoved_parts(mapping, src, dst, sep):
    """
    ``[[(source node, destination node), ...], ...]``: for each shoved pair,
    the node pairs above it, lowest first, whose mapped tensors (scalars
    aside) are all shoved, each to the same path below the other node,
    with nothing else mapped into the destination node.
    """
    shoved = {s for s, d in mapping.items()
              if shape_relation(src[s], dst[d]) in ('same_rank', 'different_rank')}
    if not shoved:
        return []
    mapped, filled, shoved_below = Counter(), Counter(), Counter()
    tops = {}
    for s, d in mapping.items():
        if _is_scalar(src[s]) and _is_scalar(dst[d]):
            continue
        for a in _ancestors(s, sep):
            mapped[a] += 1
        for b in _ancestors(d, sep):
            filled[b] += 1
        if s not in shoved:
            continue
        # the node pairs above the pair's common suffix of labels
        s_parts, d_parts = s.split(sep), d.split(sep)
        common = 0
        while (common < min(len(s_parts), len(d_parts))
               and s_parts[-1 - common] == d_parts[-1 - common]):
            common += 1
        pairs = [(sep.join(s_parts[:-j]), sep.join(d_parts[:-j])) for j in range(1, common + 1)]
        for pair in pairs:
            shoved_below[pair] += 1
        tops[s] = pairs
    return [[(a, b) for a, b in pairs  # (a root has nothing beside it)
             if a and b and shoved_below[a, b] == mapped[a] == filled[b]]
            for pairs in tops.values()]


class _Side:
    """One side's keys, sorted for prefix ranges, and its free nodes
    (none of whose keys is ``taken``) with their number of keys."""

    def __init__(self, shapes, taken, sep):
        self.shapes, self.sep = shapes, sep
        self.sorted = sorted(shapes)
        count, busy = Counter(), set()
        for key in shapes:
            for a in _ancestors(key, sep)[:-1]:  # the root is never free
                count[a] += 1
                if key in taken:
                    busy.add(a)
        self.free = {a: n for a, n in count.items() if a not in busy}

    def signature(self, node):
        """The keys below ``node`` relative to it, with their shapes, sorted."""
        start = node + self.sep if node else ''
        lo = bisect_left(self.sorted, start)
        hi = bisect_left(self.sorted, start + '\U0010ffff', lo) if start else len(self.sorted)
        return tuple(sorted((k[len(start):], None if self.shapes[k] is None else tuple(self.shapes[k]))
                            for k in self.sorted[lo:hi]))

    def has_exact_fit(self, signature, avoid):
        """Whether a free node outside ``avoid`` holds exactly ``signature``."""
        for node, n in self.free.items():
            if (n == len(signature) and node != avoid and not node.startswith(avoid + self.sep)
                    and self.signature(node) == signature):
                return True
        return False


def swapped_shoves(mapping: Mapping[str, str], src_shapes: Shapes, dst_shapes: Shapes,
                   sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` that shove a part of the checkpoint into a
    model module of its names (every tensor of the part shoved, to the same
    path) while the model has an empty module holding exactly the part's
    tensors and the checkpoint an unused module holding exactly the model
    module's: the name was swapped, and the shoves are wrong.

    The swap is sought at the shoved module first, then at each level above
    it whose mapped tensors are all shoved to the same paths: a checkpoint's
    ``features.2.0`` (a classifier's norm, in a flattened ConvNeXt) against
    the model's ``features.2.0`` (a downsampling norm) swaps as one module.

    Cost: nothing beyond one pass when no pair is shoved; otherwise
    ``O(N * depth)`` for ``N`` keys, plus one signature per free module of
    a shoved part's size, per level tried.

    Example:
        >>> from torch_liberator.swappednames import swapped_shoves
        >>> src = {'stem.w': (8, 3), 'body2.0.w': (16, 8), 'layer4.0.w': (32, 16)}
        >>> dst = {'stem.w': (8, 3), 'layer3.0.w': (16, 8), 'body2.0.w': (32, 16)}
        >>> swapped_shoves({'stem.w': 'stem.w', 'body2.0.w': 'body2.0.w'}, src, dst)
        {'body2.0.w': 'body2.0.w'}
    """
    levels = [found for found in _shoved_parts(mapping, src_shapes, dst_shapes, sep) if found]
    if not levels:
        return {}
    source = _Side(src_shapes, set(mapping), sep)
    model = _Side(dst_shapes, set(mapping.values()), sep)
    swapped, seen = set(), {}
    for found in levels:
        for a, b in found:  # the module first, then the levels above it
            if (a, b) not in seen:
                seen[a, b] = (model.has_exact_fit(source.signature(a), b)
                              and source.has_exact_fit(model.signature(b), a))
            if seen[a, b]:
                swapped.add(a)
                break
    return {s: d for s, d in mapping.items()
            if any(a in swapped for a in _ancestors(s, sep))}


def shoves_beside_exact_fits(mapping: Mapping[str, str], src_shapes: Shapes, dst_shapes: Shapes,
                             sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` from a checkpoint module into a model module
    when one of them is shoved while an unused module of the checkpoint
    holds exactly the model module's tensors: a pair that must be shoved
    does not beat a module that fits as it is, and neither is guessed (a
    regnet's ``fc``, saved under the name of the model's ConvNeXt head,
    ``head.fc``, while the checkpoint's ConvNeXt head, under another name,
    fits it; mutation fuzz seed 11587). :func:`swapped_shoves` asks for a
    fit on both sides; this one-sided test is for the modes in which shapes
    take part in the matching.

    Example:
        >>> from torch_liberator.swappednames import shoves_beside_exact_fits
        >>> src = {'head.fc.w': (1000, 440), 'head.fc.b': (1000,),
        ...        'x.5.fc.w': (1000, 320), 'x.5.fc.b': (1000,)}
        >>> dst = {'head.fc.w': (1000, 320), 'head.fc.b': (1000,)}
        >>> mapping = {'head.fc.w': 'head.fc.w', 'head.fc.b': 'head.fc.b'}
        >>> sorted(shoves_beside_exact_fits(mapping, src, dst))
        ['head.fc.b', 'head.fc.w']
        >>> del src['x.5.fc.w'], src['x.5.fc.b']  # no exact fit: a shove as published
        >>> shoves_beside_exact_fits(mapping, src, dst)
        {}
    """
    modules = {(s.rpartition(sep)[0], d.rpartition(sep)[0]) for s, d in mapping.items()
               if shape_relation(src_shapes[s], dst_shapes[d]) in ('same_rank', 'different_rank')}
    if not modules:
        return {}
    source = _Side(src_shapes, set(mapping), sep)
    model = _Side(dst_shapes, set(mapping.values()), sep)
    out = {(a, b) for a, b in modules if b and source.has_exact_fit(model.signature(b), a)}
    return {s: d for s, d in mapping.items()
            if (s.rpartition(sep)[0], d.rpartition(sep)[0]) in out}
