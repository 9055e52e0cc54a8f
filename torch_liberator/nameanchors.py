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
a list cut in parts against the other list (``blocks.blocks.0`` beside
``blocks.layers`` is not the model's ``blocks.0``; nor is the model's
``stage4.blocks.1`` beside ``stage4.layers`` a whole ``stage4.1`` cut
short: :class:`LaterParts`).

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

__all__ = ['LaterParts', 'copy_lacks', 'lacked_by_a_copy', 'module_children', 'name_partners', 'shared_length']


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


def _by_word(candidates, side, shared):
    """word -> the candidates (groups ending in a suffix of ``shared``
    components) whose path holds that word before the suffix."""
    out = {}
    for c in candidates:
        comps = side.comps[c]
        for comp in set(comps[:len(comps) - shared]):
            if is_word(comp):
                out.setdefault(comp, []).append(c)
    return out


def _most_words(words, candidates, by_word):
    """The candidates that hold the most of ``words`` before the suffix,
    or all of them when none holds any: ``head.stage.bn`` is the model's
    ``head.bn``, not ``head_dist.bn``, which is as close in depth."""
    counts = {}
    for word in words:
        for c in by_word.get(word, ()):
            counts[c] = counts.get(c, 0) + 1
    if not counts:
        return candidates
    most = max(counts.values())
    return [c for c in candidates if counts.get(c) == most]


def _best_partner(side, g, index, others, cache, sep):
    """The unique group of ``others`` sharing the longest named suffix
    with group ``g`` of ``side`` (ties to the one holding most of ``g``'s
    other words, then to the closest depth), or None."""
    path = side.path[g]
    if not path:
        return None
    comps = side.comps[g]
    depth = len(comps)
    start = 0
    while True:
        suffix = path[start:]
        candidates = index.get(suffix)
        if candidates is not None:
            if isinstance(candidates, int):
                return candidates
            shared = suffix.count(sep) + 1
            # depth tells wrapper levels apart (model.* and
            # ema_model.module.*), not the items of a list: one item
            # with an inserted level is the only one at its depth
            # (blocks.1.main.norm1 is not blocks.3.stem.norm1)
            if any(c.isdigit() for c in comps[:depth - shared]):
                return None
            by_depth, by_word = cache.get(suffix) or (None, None)
            if by_depth is None:
                by_depth = _by_depth(candidates, others)
                by_word = _by_word(candidates, others, shared)
                cache[suffix] = by_depth, by_word
            words = [c for c in dict.fromkeys(comps[:depth - shared])
                     if len(by_word.get(c, ())) < len(candidates)]
            if words:
                fewer = _most_words(words, candidates, by_word)
                if len(fewer) < len(candidates):
                    by_depth = _by_depth(fewer, others)
            gap = min(abs(d - depth) for d in by_depth)
            closest = [d for d in (depth - gap, depth + gap) if d in by_depth]
            if len(set(closest)) == 1 and by_depth[closest[0]] >= 0:
                found = by_depth[closest[0]]
                if any(c.isdigit() for c in others.comps[found][:closest[0] - shared]):
                    return None
                return found
            return None
        cut = path.find(sep, start)
        if cut < 0:
            return None
        start = cut + len(sep)


def name_partners(src: KeyGroups, dst: KeyGroups,
                  inner: Callable[[int, int], Optional[list]],
                  sep: str = '.', ordered: bool = True,
                  later: Optional['LaterParts'] = None) -> List[Tuple[int, int]]:
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
        later: the sides' :class:`LaterParts`, when already built.

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
    if later is None:
        later = LaterParts(src, dst, inner, ordered)
    items = (*later.children, {})
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
        if copy_lacks(src, i, dst, j, items):
            continue
        if later.position(i, j):
            continue
        if _names_crossed(src.comps[i], dst.comps[j], items):
            continue
        out.append((i, j))
    return out


def _names_crossed(comps1, comps2, children):
    """
    Whether the two paths differ just above their shared suffix by names
    that both sides hold there (``Mixed_7b`` and ``Mixed_7c`` above
    ``branch3x3dbl_3b.conv``, the checkpoint's own ``Mixed_7c`` one a level
    deeper and the model's ``Mixed_7b`` one too: each is unique as a
    suffix, and the names above say each is the other's): the suffix
    crosses two namesakes (cross-library mutation fuzz seed 179 of
    ``--wide``, an inception_v3, a swap in structure). ``children``: each
    side's module path -> its child labels (:func:`module_children`).
    """
    shared = shared_length(comps1, comps2)
    if shared >= min(len(comps1), len(comps2)):
        return False
    a, b = comps1[-1 - shared], comps2[-1 - shared]
    if a.isdigit() or b.isdigit():
        return False  # (positions: the lists' checks)
    return (a in children[1].get(comps2[:-1 - shared], ())
            and b in children[0].get(comps1[:-1 - shared], ()))


class LaterParts:
    """
    Where a position in two groups' shared suffix numbers two lists of
    different lengths, one a later part of a list cut in parts (a mixer's
    ``blocks`` cut into ``blocks.layers``, ``blocks.main`` and
    ``blocks.blocks``, whose ``blocks.blocks.0`` is the model's
    ``blocks.5``, mutation fuzz seeds 12097, 12523; or the model's
    ``stage4.blocks.{0,1,2}`` after ``stage4.layers.0`` against the
    checkpoint's whole ``stage4.{0,1}`` cut short, seed 18033): the part
    follows (any, when the keys are sorted), among its siblings, a list
    that has no list of its name beside the other list (a top-level
    ``stem`` module is no counterpart of ``blocks.stem.0``, seed 8068) and
    whose first item holds a module at the groups' path below the position
    that pairs with the other list's first item's. Parts of disjoint numbers kept the list's
    own; a part that keeps the other list's name is its first part, unless
    it hangs below the list's namesake, however deep (``blocks.main.blocks``
    after ``blocks.main.model``, seed 27733), or, with the keys in order,
    only its name is the list's, not its path (a ConvNeXt's ``features.5``
    cut into ``body`` and ``blocks`` against timm's ``stages.2.blocks``:
    ``blocks`` follows ``body``, cross fuzz seed 7274). Such a position is
    no evidence: not for a name anchor, nor for the name bonus of an
    alignment.

    Args:
        src, dst: the two sides' groups.
        inner: ``inner(i, j)``, None when groups ``i`` and ``j`` cannot pair.
        ordered: whether both sides' keys are in registration order.
        children: each side's module path -> its child labels
            (:func:`module_children`), when already built.

    Example:
        >>> from torch_liberator.alignment import StructureSides
        >>> from torch_liberator.nameanchors import LaterParts
        >>> src = {'s.0.a.w': (4, 4), 's.0.b.w': (8, 4), 's.1.b.w': (8, 4)}
        >>> dst = {'s.first.0.a.w': (4, 4), 's.first.0.b.w': (8, 4)}
        >>> dst.update({f's.rest.{i}.b.w': (8, 4) for i in range(3)})
        >>> sides = StructureSides(src, dst)
        >>> later = LaterParts(sides.src, sides.dst, sides.inner)
        >>> later.position(2, 2), later.position(2, 3)  # s.1.b <-> s.rest.{0, 1}.b
        (0, 2)
    """

    def __init__(self, src: KeyGroups, dst: KeyGroups,
                 inner: Callable[[int, int], Optional[list]], ordered: bool = True,
                 children=None):
        self.src, self.dst, self.inner, self.ordered = src, dst, inner, ordered
        self.children = children or (module_children(src), module_children(dst))
        self._lists = None
        self._cut = {}  # (list path, list path) -> their cut_offset
        self._beside = {}  # (list path, side) -> whether a list is beside it
        self._follows = {}  # (lists, path below) -> whether one list is a later part

    def position(self, i: int, j: int) -> int:
        """How many trailing components of the groups' paths reach the
        deepest position that numbers such a part (counting it), or 0."""
        a, b = self.src.comps[i], self.dst.comps[j]
        children = self.children
        for k in range(1, min(len(a), len(b)) + 1):
            if a[-k] != b[-k]:
                break
            if not a[-k].isdigit():
                continue
            lists = (a[:-k], b[:-k])
            if self._cut_apart(lists):
                return k
            if (len(children[0].get(lists[0], ())) == len(children[1].get(lists[1], ()))
                    and not self._beside_a_list(lists[0], 0)
                    and not self._beside_a_list(lists[1], 1)):
                continue  # (a list of the other's length, no part of a list cut in parts)
            rest = a[len(a) - k + 1:]
            follows = self._follows.get((lists, rest))
            if follows is None:
                follows = self._follows[lists, rest] = (self._follows_a_part(lists, rest, 0)
                                                        or self._follows_a_part(lists, rest, 1))
            if follows:
                return k
        return 0

    def _cut_apart(self, lists):
        """Whether the two lists are parts of lists of one length cut in
        other places, whatever their names (both called ``encoder``: the
        checkpoint's items 11-12 of a mobilenet_v3_small, the model's items
        10-12, mutation fuzz seed 2729 of ``--wide``)."""
        if not self.ordered:
            return False
        if self._lists is None:
            self._lists = (_Lists(self.src, self.children[0]), _Lists(self.dst, self.children[1]))
        cut = self._cut.get(lists)
        if cut is None:
            cut = self._cut[lists] = (self._lists[0].cut_offset(lists[0]),
                                      self._lists[1].cut_offset(lists[1]))
        return None not in cut and cut[0][0] != cut[1][0] and cut[0][1] == cut[1][1]

    def _beside_a_list(self, path, s):
        """Whether the module holding side ``s``'s list ``path`` holds
        another list beside it: the list may be a part of one cut in parts
        (a resnet's ``layer1`` cut into ``features.0`` and ``model.{0,1}``,
        the model's ``layer1`` cut short to two blocks: equal lengths, and
        ``model.1`` is still not ``layer1.1``, mutation fuzz seed 31127)."""
        found = self._beside.get((path, s))
        if found is None:
            children = self.children[s]
            parent = path[:-1]
            found = any(label != path[-1] and any(
                c.isdigit() for c in children.get(parent + (label,), ()))
                for label in children.get(parent, ())) if path else False
            self._beside[path, s] = found
        return found

    def _follows_a_part(self, lists, rest, s):
        """Whether side ``s``'s list of ``lists`` is the later part."""
        children = self.children
        part_path, name = lists[s], lists[1 - s][-1:]
        if (name and part_path[-1:] == name and name[0] not in part_path[:-1]
                and (not self.ordered or lists[0] == lists[1])):
            # the first part keeps the list's name (layer3, layer3_tail), at
            # the list's own path; a part registered later whose name only
            # ends like the other list's is placed by the order
            return False
        if self._lists is None:
            self._lists = (_Lists(self.src, children[0]), _Lists(self.dst, children[1]))
        part, whole = self._lists[s], self._lists[1 - s]
        theirs = whole.first_item(lists[1 - s], rest)
        if theirs is None:
            return False
        other = children[1 - s]
        parent = lists[1 - s][:-1]
        beside = other.get(parent, ()) if lists[1 - s] else ()
        numbers = children[s][lists[s]]
        for sibling in part.earlier_lists(lists[s], self.ordered):
            if (sibling[-1] in beside and any(
                    c.isdigit() for c in other.get(parent + (sibling[-1],), ()))):
                continue  # (a list of its name beside the other list is its counterpart)
            if numbers.isdisjoint(children[s][sibling]):
                continue  # (parts of disjoint numbers kept the list's: they say where)
            mine = part.first_item(sibling, rest)
            if mine is not None and (self.inner(mine, theirs) if s == 0
                                     else self.inner(theirs, mine)) is not None:
                return True
        return False


class _Lists:
    """One side's lists, for :class:`LaterParts`: module paths in
    registration order, and the group at a path."""

    def __init__(self, side, children):
        self.side, self.children = side, children
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

    def cut_offset(self, path):
        """``(start, items)`` of the list that the list ``path`` is a part
        of, when lists of overlapping numbers (parts, each renumbered from
        0) are beside it: where its items start, and the shapes of every
        item of the parts joined in order (a resnet's stages are no parts
        of one list: joined, they are not the other side's joined parts);
        None otherwise."""
        if not path or not self.is_list(path):
            return None
        numbers, parent = self.children[path], path[:-1]
        beside = [parent + (label,) for label in self.children.get(parent, ())]
        parts = sorted((other for other in beside
                        if self.is_list(other) and not numbers.isdisjoint(self.children[other])),
                       key=self.first.__getitem__)
        if len(parts) < 2:
            return None
        before = parts.index(path)
        items = tuple(self._shapes(part + (label,)) for part in parts
                      for label in sorted(self.children[part], key=int))
        return sum(len(self.children[p]) for p in parts[:before]), items

    def _shapes(self, path):
        """The shapes of the groups below ``path`` (from its first one on,
        while they are below it), sorted."""
        side, out = self.side, []
        g = self.first[path] if path in self.first else self.group[path]
        while g < len(side.comps) and side.comps[g][:len(path)] == path:
            out.extend(map(str, side.shapes[g]))
            g += 1
        return tuple(sorted(out))

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


def shared_length(a: Tuple[str, ...], b: Tuple[str, ...]) -> int:
    """
    How many trailing components the paths ``a`` and ``b`` share.

    Example:
        >>> from torch_liberator.nameanchors import shared_length
        >>> shared_length(('body', 'layer1', 'conv'), ('layer1', 'conv'))
        2
    """
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
    shared = shared_length(a, b)
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


def copy_lacks(src: KeyGroups, i: int, dst: KeyGroups, j: int, children,
               at_least: int = 0) -> bool:
    """
    Whether the pair of groups ``(i, j)`` is unique only because a copy of
    its network lacks it (:func:`lacked_by_a_copy`, on either side, above
    the suffix the two paths share, of at least ``at_least`` components): a
    whole wide_resnet50_2 beside a headless resnet50 of the same names,
    whose ``fc`` is the wide one's alone (mutation fuzz seed 14940): the
    name, or the shape, says which network has a head, not that the other
    side's head is that network's. ``children``: each side's module path
    -> its child labels (:func:`module_children`).

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.nameanchors import copy_lacks, module_children
        >>> keys = {f'{net}.{m}.weight': (2,) for net in ('a', 'b') for m in ('conv', 'bn')}
        >>> src = KeyGroups({**keys, 'a.fc.weight': (3, 2)})
        >>> dst = KeyGroups({'fc.weight': (3, 2)})
        >>> copy_lacks(src, 4, dst, 0, (module_children(src), module_children(dst)))
        True
    """
    a, b = src.comps[i], dst.comps[j]
    shared = max(at_least, shared_length(a, b))
    return (lacked_by_a_copy(a, shared, children[0])
            or lacked_by_a_copy(b, shared, children[1]))


def lacked_by_a_copy(comps: Tuple[str, ...], shared: int, labels) -> bool:
    """
    Whether the module of path ``comps`` above its last ``shared``
    components has a sibling holding every other named child it has (two
    or more) and not the one on the way to ``comps``: a copy of its
    network that lacks the part ``comps`` is in (a headless copy beside a
    whole one), so that what is unique about ``comps``, its name or its
    shape, says which copy has the part, not where the other side's goes.
    ``labels``: the side's module path -> its child labels
    (:func:`module_children`).

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.nameanchors import lacked_by_a_copy, module_children
        >>> keys = {f'{net}.{m}.weight': (2,) for net in ('a', 'b') for m in ('conv', 'bn')}
        >>> side = KeyGroups({**keys, 'a.fc.weight': (3, 2)})
        >>> lacked_by_a_copy(('a', 'fc'), 1, module_children(side))
        True
        >>> lacked_by_a_copy(('a', 'conv'), 1, module_children(side))
        False
    """
    above = comps[:len(comps) - shared]
    if not above:
        return False
    label = comps[len(above)]
    rest = {c for c in labels[above] - {label} if is_word(c)}
    if len(rest) < 2:
        return False  # (the items of lists are no names: lists cut share them)
    parent = above[:-1]
    for sibling in labels[parent] - {above[-1]}:
        theirs = labels.get(parent + (sibling,), set())
        if rest <= theirs and label not in theirs:
            return True
    return False


def module_children(side: KeyGroups) -> dict:
    """
    Module path -> the labels of its children (every level): the items
    of lists, and the named children of modules.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.nameanchors import module_children
        >>> sorted(module_children(KeyGroups({'a.0.w': (1,), 'a.1.w': (1,)}))[('a',)])
        ['0', '1']
    """
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
