"""
Name anchors for the structure solver: groups whose module paths share a
suffix that no other group shares.

Pure: two :class:`~torch_liberator.keygroups.KeyGroups` in, pairs of group
indices out. A suffix must start with a word (``layer1.0.conv1`` and
``backbone.body.layer1.0.conv1``; not ``1.bn``, a position in a list, which
a list cut in two or renumbered does not keep); among several groups sharing
the longest suffix, the one at the closest depth wins when it is alone there
(so ``model.*`` beats ``ema_model.module.*``). A pair is an anchor when each
is the other's partner, their tensors can pair, and so can those of every
sibling with a namesake beside the partner (a resnet34 block's ``bn1`` is
not the ``bn1`` of a resnet50 block, whose ``conv1`` has another shape),
and of every layer with a namesake in a list item the suffix shares (a
wide_resnet50_2 block's shortcut is not a resnext50 block's, whose grouped
``conv2`` has another shape), and no position in the shared suffix
numbers two lists of different items (a VGG11's ``features.0`` is not a
VGG16's), and the suffix is not unique only
because a copy of its network beside it lacks it (a wide_resnet50_2's ``fc``
beside a headless resnet50), and no position in it numbers a later part of
a list cut in parts against the whole list (``blocks.blocks.0`` beside
``blocks.layers`` is not the model's ``blocks.0``).

Example:
    >>> from torch_liberator.alignment import StructureSides
    >>> from torch_liberator.nameanchors import name_partners
    >>> sides = StructureSides({'layer1.0.conv1.weight': (4, 3), 'fc.weight': (2, 4)},
    ...                        {'backbone.layer1.0.conv1.weight': (4, 3),
    ...                         'head.weight': (2, 4)})
    >>> name_partners(sides.src, sides.dst, sides.inner)
    [(0, 0)]
"""
from typing import Callable, List, Optional, Tuple

from torch_liberator.keygroups import KeyGroups, is_word

__all__ = ['name_partners']


def _suffix_index(side, sep):
    """Every path suffix that starts with a word -> the group ending so
    (an int), or the list of the groups when several do. (Most suffixes are
    unique: an int keeps them out of the garbage collector's way.)"""
    index = {}
    sep_len = len(sep)
    for g, (path, comps) in enumerate(zip(side.path, side.comps)):
        start = 0
        for comp in comps:
            if is_word(comp):
                suffix = path[start:]
                found = index.get(suffix)
                if found is None:
                    index[suffix] = g
                elif isinstance(found, int):
                    index[suffix] = [found, g]
                else:
                    found.append(g)
            start += len(comp) + sep_len
    return index


def _by_depth(candidates, side):
    """depth -> the group at that depth, or -1 when several are."""
    out = {}
    for g in candidates:
        depth = len(side.comps[g])
        out[depth] = g if depth not in out else -1
    return out


def _best_partner(side, g, index, others, cache, sep):
    """The unique group of ``others`` sharing the longest named suffix
    with group ``g`` of ``side`` (ties to the closest depth), or None."""
    path = side.path[g]
    if not path:
        return None
    depth = len(side.comps[g])
    start = 0
    while True:
        suffix = path[start:]
        candidates = index.get(suffix)
        if candidates is not None:
            if isinstance(candidates, int):
                return candidates
            by_depth = cache.get(suffix)
            if by_depth is None:
                by_depth = cache[suffix] = _by_depth(candidates, others)
            gap = min(abs(d - depth) for d in by_depth)
            closest = [d for d in (depth - gap, depth + gap) if d in by_depth]
            if len(set(closest)) == 1 and by_depth[closest[0]] >= 0:
                found = by_depth[closest[0]]
                # depth tells wrapper levels apart (model.* and
                # ema_model.module.*), not the items of a list: one item
                # with an inserted level is the only one at its depth
                # (blocks.1.main.norm1 is not blocks.3.stem.norm1)
                shared = suffix.count(sep) + 1
                if any(c.isdigit() for c in side.comps[g][:depth - shared]) or any(
                        c.isdigit() for c in others.comps[found][:closest[0] - shared]):
                    return None
                return found
            return None
        cut = path.find(sep, start)
        if cut < 0:
            return None
        start = cut + len(sep)


def name_partners(src: KeyGroups, dst: KeyGroups,
                  inner: Callable[[int, int], Optional[list]],
                  sep: str = '.', ordered: bool = True) -> List[Tuple[int, int]]:
    """
    The name anchors: ``(source group, destination group)`` pairs, each the
    other's best partner by name, whose tensors can pair.

    Args:
        src: the source's groups.
        dst: the destination's groups.
        inner: ``inner(i, j)``: how source group ``i`` and destination group
            ``j`` pair tensor by tensor, None when they cannot
            (:meth:`~torch_liberator.alignment.StructureSides.inner`).
        sep: separator between path components.
        ordered: whether both sides' keys are in registration order (not
            sorted by name).

    Returns:
        List[Tuple[int, int]]: the pairs, in source order.

    Example:
        >>> from torch_liberator.alignment import StructureSides
        >>> from torch_liberator.nameanchors import name_partners
        >>> # model.* beats ema_model.module.* (the closer depth)
        >>> sides = StructureSides({'model.fc.weight': (2, 4),
        ...                         'ema_model.module.fc.weight': (2, 4)},
        ...                        {'fc.weight': (2, 4)})
        >>> name_partners(sides.src, sides.dst, sides.inner)
        [(0, 0)]
    """
    src_index = _suffix_index(src, sep)
    dst_index = _suffix_index(dst, sep)
    src_cache, dst_cache = {}, {}
    siblings, dst_siblings = _children_of(src), _children_of(dst)
    items = (_list_items(src), _list_items(dst), {})
    built = []

    def cut_lists():  # built when an anchor first needs them
        if not built:
            built.extend((_Lists(src, items[0]), _Lists(dst, items[1])))
        return built
    out = []
    for i in range(len(src)):
        j = _best_partner(src, i, dst_index, dst, dst_cache, sep)
        if j is None or _best_partner(dst, j, src_index, src, src_cache, sep) != i:
            continue
        if inner(i, j) is None:
            # the name is shared but the module is not (a list re-indexed:
            # high.0.conv is features.4.conv, not features.0.conv): the name
            # says nothing here
            continue
        if _parents_differ(src, i, dst, j, siblings, dst_siblings, inner):
            continue
        if _blocks_differ(src, i, dst, j, siblings, dst_siblings, inner):
            continue
        if _lists_differ(src.comps[i], dst.comps[j], items):
            continue
        if _copy_lacks(src, i, dst, j, items):
            continue
        if _later_part(src, i, dst, j, items, cut_lists, inner, ordered):
            continue
        out.append((i, j))
    return out


def _later_part(src, i, dst, j, children, cut_lists, inner, ordered):
    """
    Whether a position in the name anchor ``(i, j)``'s shared suffix
    numbers two lists of different lengths, the shorter a later part of a
    list cut in parts named like the whole (a mixer's ``blocks`` cut into
    ``blocks.layers``, ``blocks.main`` and ``blocks.blocks``, whose
    ``blocks.blocks.0`` is the model's ``blocks.5``, mutation fuzz seeds
    12097, 12523): the shorter follows (any, when the keys are sorted), among
    its siblings, a list that has no namesake beside the longer one and
    whose first item holds a module at the anchor's path that pairs with
    the longer list's first item's. Parts of disjoint numbers kept the
    list's own; a part that keeps the list's name is its first part,
    unless it hangs below the list's namesake.
    ``children``: each side's module path
    -> its child labels (:func:`_list_items`); ``cut_lists()``: the two
    sides' :class:`_Lists`.
    """
    a, b = src.comps[i], dst.comps[j]
    for k in range(1, min(len(a), len(b)) + 1):
        if a[-k] != b[-k]:
            break
        if not a[-k].isdigit():
            continue
        lists = (a[:-k], b[:-k])
        sizes = [len(children[0].get(lists[0], ())), len(children[1].get(lists[1], ()))]
        if sizes[0] == sizes[1]:
            continue
        rest = a[len(a) - k + 1:]
        s = 0 if sizes[0] < sizes[1] else 1  # the shorter side
        part_path, name = lists[s], lists[1 - s][-1:]
        if part_path[-1:] == name and part_path[-2:-1] != name:
            continue  # the first part keeps the list's name (layer3, layer3_tail)
        part, whole = cut_lists()[s], cut_lists()[1 - s]
        theirs = whole.first_item(lists[1 - s], rest)
        if theirs is None:
            continue
        beside = children[1 - s].get(lists[1 - s][:-1], ()) if lists[1 - s] else ()
        numbers = children[s][lists[s]]
        for sibling in part.earlier_lists(lists[s], ordered):
            if sibling[-1] in beside or numbers.isdisjoint(children[s][sibling]):
                continue  # (parts of disjoint numbers kept the list's: they say where)
            mine = part.first_item(sibling, rest)
            if mine is not None and (inner(mine, theirs) if s == 0
                                     else inner(theirs, mine)) is not None:
                return True
    return False


class _Lists:
    """One side's lists, for :func:`_later_part`: module paths in
    registration order, and the group at a path."""

    def __init__(self, side, children):
        self.children = children
        self.first = {}  # module path -> the first group below it
        self.group = {}  # module path -> its group
        for g, comps in enumerate(side.comps):
            self.group[comps] = g
            for depth in range(len(comps)):
                self.first.setdefault(comps[:depth], g)

    def is_list(self, path):
        labels = self.children.get(path)
        return bool(labels) and all(label.isdigit() for label in labels)

    def first_item(self, path, rest):
        """The group at ``rest`` below the list ``path``'s first item."""
        labels = self.children.get(path)
        if not labels or not self.is_list(path):
            return None
        return self.group.get(path + (min(labels, key=int),) + rest)

    def earlier_lists(self, path, ordered):
        """The lists beside ``path`` registered before it (all of them
        when the keys are sorted)."""
        if not path:
            return
        parent = path[:-1]
        for label in sorted(self.children.get(parent, ())):
            other = parent + (label,)
            if other != path and self.is_list(other) and (
                    not ordered or self.first[other] < self.first[path]):
                yield other


def _shared_length(a, b):
    """How many trailing components the paths ``a`` and ``b`` share."""
    shared = 0
    while shared < min(len(a), len(b)) and a[-1 - shared] == b[-1 - shared]:
        shared += 1
    return shared


def _blocks_differ(src, i, dst, j, siblings, dst_siblings, inner):
    """
    Whether a list item that both paths hold in their shared suffix (a
    block: ``layer3.0`` of ``layer3.0.downsample.0``) holds, directly, a
    layer with a namesake in the other's block whose tensors cannot pair
    with its own: two kinds of block (a wide_resnet50_2's ``conv2`` and a
    resnext50's grouped one, mutation fuzz seed 15824), whose shortcuts
    agree by name and shape only because the two networks share them. The
    anchor's own parent is :func:`_parents_differ`'s.
    """
    a, b = src.comps[i], dst.comps[j]
    shared = _shared_length(a, b)
    for up in range(2, shared):
        if not a[-1 - up].isdigit():
            continue  # a named module: a head of another size may differ
        mine = siblings.get(a[:-up], ())
        theirs = {dst.comps[h][-1]: h for h in dst_siblings.get(b[:-up], ())}
        for g in mine:
            h = theirs.get(src.comps[g][-1])
            if h is not None and inner(g, h) is None:
                return True
    return False


def _copy_lacks(src, i, dst, j, children):
    """
    Whether the name anchor ``(i, j)``'s suffix is unique only because a
    copy of its network lacks it: the module above the shared suffix, on
    either side, has a sibling holding every other named child it has (two
    or more) and not the anchor's (a whole wide_resnet50_2 beside a
    headless resnet50 of the same names, whose ``fc`` is the wide one's
    alone, mutation fuzz seed 14940): the name says which network has a
    head, not that the model's head is that network's. ``children``: each
    side's module path -> its child labels (:func:`_list_items`).
    """
    a, b = src.comps[i], dst.comps[j]
    shared = _shared_length(a, b)
    for comps, labels in ((a, children[0]), (b, children[1])):
        above = comps[:len(comps) - shared]
        if not above:
            continue
        label = comps[len(above)]
        rest = {c for c in labels[above] - {label} if is_word(c)}
        if len(rest) < 2:
            continue  # (the items of lists are no names: lists cut share them)
        parent = above[:-1]
        for sibling in labels[parent] - {above[-1]}:
            theirs = labels.get(parent + (sibling,), set())
            if rest <= theirs and label not in theirs:
                return True
    return False


def _list_items(side):
    """module path -> the labels of its children (every level): the items
    of lists, and the named children of modules."""
    out = {}
    for comps in side.comps:
        for depth in range(len(comps)):
            out.setdefault(comps[:depth], set()).add(comps[depth])
    return out


def _lists_differ(comps1, comps2, items):
    """Whether a position shared by the two paths' suffix (the ``0`` of
    ``features.0`` and ``aux.features.0``) numbers two lists whose items
    are not one set within the other (a VGG11's ``features.{0,3,6,..}``, a
    VGG16's ``features.{0,2,5,..}``): then the equal number is a
    coincidence of positions, and the name says nothing."""
    items1, items2, nested = items  # nested: (list1, list2) -> verdict, once per pair
    for k in range(1, min(len(comps1), len(comps2)) + 1):
        a, b = comps1[-k], comps2[-k]
        if a != b:
            break
        if a.isdigit():
            lists = (comps1[:-k], comps2[:-k])
            one_in_other = nested.get(lists)
            if one_in_other is None:
                labels1, labels2 = items1.get(lists[0], set()), items2.get(lists[1], set())
                one_in_other = nested[lists] = labels1 <= labels2 or labels2 <= labels1
            if not one_in_other:
                return True
    return False


def _children_of(side):
    """module path -> its child groups (those one level below it)."""
    out = {}
    for g, comps in enumerate(side.comps):
        if comps:
            out.setdefault(comps[:-1], []).append(g)
    return out


#: the most siblings without a namesake compared on each side (beyond, a
#: flat listing of many modules says nothing of one module's kind)
UNNAMED_SIBLINGS = 8


def _parents_differ(src, i, dst, j, siblings, dst_siblings, inner):
    """
    Whether the modules around groups ``i`` and ``j`` are two kinds of
    module, so that the name they share says nothing about where ``i``
    goes: a sibling of ``i`` has a namesake beside ``j`` whose tensors
    cannot pair with its own (a resnet34's basic block ``layer2.0`` and a
    resnet50's bottleneck ``encoder.layer2.0`` share ``bn1``, not
    ``conv1``), or both have siblings without a namesake on the other side
    and none of these can pair (a googlenet's inception3b saved as
    ``body`` beside the model's inception4c wrapped as
    ``inception4c.body``: their ``branch1.bn`` agree, and the convolution
    beside it, renamed in the model, has another shape; not at the top
    level, where the two are whole models).
    """
    if not src.comps[i] or not dst.comps[j]:
        return False
    mine = {src.comps[g][-1]: g for g in siblings[src.comps[i][:-1]] if g != i}
    theirs = {dst.comps[h][-1]: h for h in dst_siblings[dst.comps[j][:-1]] if h != j}
    for label, g in mine.items():
        h = theirs.get(label)
        if h is not None and inner(g, h) is None:
            return True
    if len(src.comps[i]) < 2 or len(dst.comps[j]) < 2:
        return False  # beside the root: the whole models, no one module's kind
    lone1 = [g for label, g in mine.items() if label not in theirs]
    lone2 = [h for label, h in theirs.items() if label not in mine]
    if not lone1 or not lone2 or max(len(lone1), len(lone2)) > UNNAMED_SIBLINGS:
        return False
    return all(inner(g, h) is None for g in lone1 for h in lone2)
