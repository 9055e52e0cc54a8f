"""
Pair modules by what they hold when the order of the keys is lost.

Pure: two :class:`~torch_liberator.keygroups.KeyGroups` in, group pairs
out; no torch needed. A checkpoint read from a safetensors file lists its
tensors sorted by name, so neighbours in the listing are no longer
neighbours in the model and registration order, the structure mode's main
evidence, says nothing. What is left is the tree of module paths and the
shapes. A module's *signature* is the multiset of its tensors' shapes
(size-1 dimensions dropped, and shapes that only one side has anywhere
left out: they can pair with nothing). Two modules of one signature are
one module when no other module of either side holds it and their groups
are the same (two norms of a weight and a bias hold the shapes of one
BatchNorm); inside two such modules the children pair the same way, one
level at a time. A unit larger than anything left on the other side is
opened (its own tensors and children take its place), or, when none is,
the largest units that can be, so that a level one library inserts
(torchvision's ``encoder`` around ``layers``) is skipped.

A module so paired is doubted where a rival of its side could match the
other module as well: the module one level up, at most twice as large (a
module inserted beside it), or one elsewhere that holds the same shapes
and one group more (a module inserted inside). The groups the rival
reading places otherwise are left out when the rival holds a group of
their shapes beside the match that paired with nothing outside it and
lies in no module the other side holds too (a resnet stage whose second
block paired with a block of its own is no rival of the first).

What has paired leaves the count, so a tie it held may resolve (a resnet
block's shortcut BatchNorm, paired with its module, leaves ``bn1`` and
``bn2`` the only two of their width).
Children of one signature pair only when they differ by numbers alone on
both sides (``blocks.3``, ``encoder_layer_3``; ``norm1`` and ``ln_1``;
``f.a`` and ``conv1``, a last letter counting where a module's one-letter
children are ``a``, ``b``, ... in full), in the order of those numbers,
as many on each side, in lists of the same lengths: lists number their
items in registration order. When they differ by numbers alone on one
side only and the other side's keys are in registration order (a
checkpoint read from a safetensors file, into a model), they pair in the
order of the numbers and of registration (timm's ``bn1`` and ``bn2``,
HF's ``expand_bn`` and ``depthwise_norm``), unless the pairs already made
beside them come in one order by those numbers and in the other by
registration (a timm block flattened into numbered children numbers its
shortcut last; torchvision registers its ``proj`` first). More on one
side than on the other, they pair only as the items of one list on each
side (they differ in their last number alone), numbered from one start,
the shorter's numbers all among the longer's: the items of one number pair
(torchvision's resnet34 ``layer2.1`` is HF's resnet18 ``stages.1.layers.1``,
as the name modes read ``layer2.1`` in both depths, and as registration
order pairs them); the longer's other items stay out. Any other tie
(``q``, ``k``, ``v`` of one shape) pairs nothing.

With one side's keys sorted and the other's in registration order, a
norm left open beside its layer, the two alone in a module of the sorted
side, goes next to its layer's partner on the other side, on the side of
it that every such module already paired shows (:func:`norms_by_their_layers`).

Groups set aside (a layer one side fuses and the run of Linears it stacks
on the other, :mod:`torch_liberator.fusedruns`) hold nothing that pairs:
they count in no signature and in no module's number of groups, a child
that holds nothing else, itself or below, is no child (HF's Swin
``attention.self``, its query, key and value aside, is its position table
alone, as torchvision's ``attn`` holds one of its own; HF's ViT
``attention.attention`` holds nothing else), and a module that then holds
one thing is that thing (HF's ViT attention holds only ``output.dense``,
as torchvision's holds only ``out_proj`` beside its packed ``in_proj`` and
timm's only ``proj`` beside its packed ``qkv``).

Only modules of two or more groups are matched at the top level, each the
one module of its signature on both sides: a single group found by its
shape alone is left to the structure mode's leftovers, which know more
about chance. Nothing here reads a name beyond its numbers (digits, and
the words that number siblings: HF's ``layernorm_before`` and
``layernorm_after``, :mod:`torch_liberator.namenumbers`), so it crosses
naming schemes (timm's ViT into torchvision's, keys sorted).

Example:
    >>> from torch_liberator.keygroups import KeyGroups, group_tensor_pairs
    >>> from torch_liberator.unordered import signature_pairs
    >>> def block(p, n):
    ...     return {f'{p}.{n[0]}.weight': (8,), f'{p}.{n[1]}.weight': (8, 8),
    ...             f'{p}.{n[2]}.weight': (16, 8)}
    >>> src = KeyGroups(dict(sorted({**block('blocks.0', ['norm', 'attn', 'mlp']),
    ...                              **block('blocks.1', ['norm', 'attn', 'mlp'])}.items())))
    >>> dst = KeyGroups({**block('layers.layer_0', ['ln', 'sa', 'ff']),
    ...                  **block('layers.layer_1', ['ln', 'sa', 'ff'])})
    >>> pairs, _, _ = signature_pairs(src, dst, lambda i, j: group_tensor_pairs(src, i, dst, j))
    >>> for i, j in sorted(pairs)[:3]:
    ...     print(src.path[i], '->', dst.path[j])
    blocks.0.attn -> layers.layer_0.sa
    blocks.0.mlp -> layers.layer_0.ff
    blocks.0.norm -> layers.layer_0.ln
"""
from collections import Counter
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from torch_liberator.keygroups import KeyGroups
from torch_liberator.namenumbers import name_numbers

__all__ = ['norms_by_their_layers', 'signature_pairs']


class _Tree:
    """One side's module tree over its groups: children, own group and
    signature of every module path, with chains of single children
    folded (a module holding nothing but one child is that child)."""

    def __init__(self, side: KeyGroups, sep: str, shared: set,
                 rank: Optional[Mapping[str, int]] = None, aside: frozenset = frozenset()):
        self.side = side
        self.sep = sep
        #: groups set aside (a fused layer, the run of Linears it stacks):
        #: they hold nothing that pairs
        self.aside = aside
        self._more: Dict[str, bool] = {}  # module path -> holds a group not set aside
        #: module path or group -> the first position of its keys in the
        #: side's registration order; None when that order is lost
        self.rank: Optional[Dict[object, int]] = None
        self.key_rank = rank
        if rank is not None:
            self.rank = {}
            for g, keys in enumerate(side.keys):
                first = min(rank[key] for key in keys)
                self.rank[g] = first
                comps = side.comps[g]
                for depth in range(len(comps) + 1):
                    path = sep.join(comps[:depth])
                    self.rank[path] = min(self.rank.get(path, first), first)
        #: the shapes the other side has too: a tensor of any other shape
        #: can pair with nothing, and says nothing of what a module is (an
        #: index buffer that one library saves and the other does not)
        self.shared = shared
        self.children: Dict[str, List[str]] = {}
        self.own: Dict[str, int] = {}
        seen = set()
        for g, comps in enumerate(side.comps):
            self.own[side.path[g]] = g
            for depth in range(len(comps), 0, -1):
                child = sep.join(comps[:depth])
                if child in seen:
                    break
                seen.add(child)
                self.children.setdefault(sep.join(comps[:depth - 1]), []).append(child)
        #: each group's signature
        self.group_sig = tuple(() if g in aside else
                               tuple(sorted(Counter(s for s in shapes if s in shared).items()))
                               for g, shapes in enumerate(side.squeezed))
        self.sig: Dict[str, tuple] = {}
        self.groups: Dict[str, int] = {}
        self._signatures('')
        self._held: Dict[str, Counter] = {}
        self._by_content: Optional[Dict[tuple, set]] = None

    def _signatures(self, root):
        # iterative post-order: the signature of a module is the multiset
        # of its tensors' shapes that the other side has too
        counts: Dict[str, Counter] = {}
        stack = [(root, False)]
        while stack:
            path, done = stack.pop()
            kids = self.children.get(path, [])
            if not done:
                stack.append((path, True))
                stack.extend((kid, False) for kid in kids)
                continue
            total = Counter()
            n = 0
            g = self.own.get(path)
            if g is not None:
                total.update(dict(self.group_sig[g]))
                n += g not in self.aside
            for kid in kids:
                total.update(counts.pop(kid))
                n += self.groups[kid]
            counts[path] = total
            self.sig[path] = tuple(sorted(total.items()))
            self.groups[path] = n

    def held(self, path):
        """The multiset of the signatures of the groups at or below module
        ``path`` (groups of no shared shape left out), kept once found."""
        stack = [(path, False)]
        while stack:  # iterative post-order: a path may be deep
            here, done = stack.pop()
            if here in self._held:
                continue
            kids = self.children.get(here, ())
            if not done:
                stack.append((here, True))
                stack.extend((kid, False) for kid in kids)
                continue
            found = Counter()
            g = self.own.get(here)
            if g is not None and self.group_sig[g]:
                found[self.group_sig[g]] += 1
            for kid in kids:
                found.update(self._held[kid])
            self._held[here] = found
        return self._held[path]

    def groups_below(self, path):
        """The groups at or below module ``path`` that hold a shared shape."""
        out, stack = [], [path]
        while stack:
            here = stack.pop()
            g = self.own.get(here)
            if g is not None and self.group_sig[g]:
                out.append(g)
            stack.extend(self.children.get(here, ()))
        return out

    def modules_below(self, path):
        """The module paths below ``path``."""
        out, stack = [], list(self.children.get(path, ()))
        while stack:
            here = stack.pop()
            if here in self.children:
                out.append(here)
                stack.extend(self.children[here])
        return out

    def holding(self, wanted: Counter) -> set:
        """The module paths that stand for themselves (no chain of single
        children above what they hold) whose groups are ``wanted`` (group
        signatures, counted), or those and one more."""
        if self._by_content is None:
            self._by_content = {}
            for path in self.sig:
                if self.unit(path) == ('n', path):
                    content = _content(self.held(path))
                    self._by_content.setdefault(content, set()).add(path)
                    for n, (s, count) in enumerate(content):  # and with one group less
                        kept = ((s, count - 1),) if count > 1 else ()
                        less = content[:n] + kept + content[n + 1:]
                        self._by_content.setdefault(less, set()).add(path)
        return self._by_content.get(_content(wanted), set())

    def unit(self, path):
        """The unit a module stands for: itself, or, down a chain of
        single children with no tensors of their own (or only a group set
        aside: torchvision's packed ``in_proj``), the first that holds two
        things (children that hold only groups set aside, themselves or
        below, do not count)."""
        while (self.own.get(path) in self.aside or path not in self.own) and len(
                self._kids(path)) == 1:
            path = self._kids(path)[0]
        if path in self.own and not self._kids(path):
            return ('g', self.own[path])
        return ('n', path)

    def _kids(self, path):
        kids = self.children.get(path, ())
        if not self.aside:
            return kids
        return [kid for kid in kids if self._holds_more(kid)]

    def _holds_more(self, path):
        """Whether module ``path`` holds a group not set aside, itself or
        below (HF's ViT ``attention.attention`` holds only its query, key
        and value, each a module of its own)."""
        found = self._more.get(path)
        if found is None:
            own = self.own.get(path)
            found = (own is not None and own not in self.aside) or any(
                self._holds_more(kid) for kid in self.children.get(path, ()))
            self._more[path] = found
        return found

    def opened(self, unit):
        """What an unpaired unit holds, one level down, less what holds no
        shape the other side has (None for a leaf group, a single tensor,
        or a container's own group of one such tensor)."""
        kind = unit[0]
        if kind == 'n':
            path = unit[1]
            out = []
            if path in self.own:
                out.append(('o', self.own[path]))
            out.extend(self.unit(kid) for kid in self.children.get(path, ()))
            return [u for u in out if self.signature(u)]
        if kind == 'o':
            g = unit[1]
            out = [('t', g, k) for k in range(len(self.side.names[g]))
                   if self.side.squeezed[g][k] in self.shared]
            return out if len(out) > 1 else None
        return None

    def signature(self, unit):
        kind = unit[0]
        if kind == 'n':
            return self.sig[unit[1]]
        if kind == 't':
            shape = self.side.squeezed[unit[1]][unit[2]]
            return ((shape, 1),) if shape in self.shared else ()
        return self.group_sig[unit[1]]

    def size(self, unit):
        return sum(n for _, n in self.signature(unit))

    def label(self, unit):
        """The unit's path (with a tensor's name), for its numbers."""
        if unit[0] == 'n':
            return unit[1]
        if unit[0] == 't':
            return self.side.keys[unit[1]][unit[2]]
        return self.side.path[unit[1]] + ('' if unit[0] == 'g' else self.sep + '#own')

    def registered(self, unit):
        """Where ``unit`` comes in the side's registration order."""
        if unit[0] == 'n':
            return self.rank[unit[1]]
        if unit[0] == 't':
            return self.key_rank[self.side.keys[unit[1]][unit[2]]]
        return self.rank[unit[1]]

    def lettered(self, path):
        """Whether module ``path`` ends in a letter that numbers it: its
        parent's children of one letter are ``a``, ``b``, ... in full."""
        parent, _, last = path.rpartition(self.sep)
        if len(last) != 1 or not 'a' <= last <= 'z':
            return False
        letters = sorted(kid.rpartition(self.sep)[2] for kid in self.children.get(parent, ())
                         if len(kid.rpartition(self.sep)[2]) == 1)
        return ''.join(letters) == 'abcdefghijklmnopqrstuvwxyz'[:len(letters)]

    def all_units(self, unit):
        """Every unit at or below ``unit``, each once (the one thing a unit
        holds is that unit again)."""
        out, stack = [], [(unit, True)]
        while stack:
            u, counted = stack.pop()
            if counted:
                out.append(u)
            inside = self.opened(u) or ()
            stack.extend((w, len(inside) > 1) for w in inside)
        return out


def _numbered_order(tree, units):
    """``[(numbers, unit)]`` in the order of the units' numbers when they
    differ by numbers alone (their labels equal once the digits are
    blanked), else None. A last component of one letter counts as a number
    when its module's one-letter children are the first letters of the
    alphabet (torchvision's regnet block ``f.a``, ``f.b``, ``f.c``), never
    otherwise (an attention's ``q``, ``k``, ``v``); so does a word that
    numbers siblings (HF's ``layernorm_before`` and ``layernorm_after``,
    :func:`~torch_liberator.namenumbers.name_numbers`)."""
    templates, keyed = set(), []
    for n, unit in enumerate(units):
        label = tree.label(unit)
        template, numbers = name_numbers(label, tree.sep)
        if unit[0] in ('n', 'g') and tree.lettered(label):
            head, _, letter = template.rpartition(tree.sep)
            template = head + tree.sep + '@'
            numbers += (ord(letter),)
        templates.add(template)
        keyed.append((tuple(numbers), n))
    if len(templates) != 1:
        return None
    keyed.sort()
    if len({k for k, _ in keyed}) != len(keyed):
        return None
    return [(numbers, units[n]) for numbers, n in keyed]


def _tie_pairs(a, b, mine, theirs, made=()):
    """The pairs among units of one signature, as many on each side: one
    each; or, when on each side they differ by numbers alone, in the order
    of their numbers, in lists of the same lengths; or, when they do on one
    side and the other side's keys are in registration order, in the order
    of the numbers and of registration (timm's ``bn1`` and ``bn2``, keys
    sorted, and HF's ``expand_bn`` and ``depthwise_norm`` registered in
    that order), unless that order crosses a pair of ``made`` (the pairs
    already made beside them); else none (``q``, ``k``, ``v``)."""
    if len(mine) == 1:
        return [(mine[0], theirs[0])]
    order = (_numbered_order(a, mine), _numbered_order(b, theirs))
    if order[0] is not None and order[1] is None and _unnumbered(b, theirs):
        pairs = [(u, v) for (_, u), v in zip(order[0], sorted(theirs, key=b.registered))]
        return [] if _crossed((a, b), pairs, made) else pairs
    if order[1] is not None and order[0] is None and _unnumbered(a, mine):
        pairs = [(u, v) for u, (_, v) in zip(sorted(mine, key=a.registered), order[1])]
        return [] if _crossed((b, a), [(v, u) for u, v in pairs],
                              [(v, u) for u, v in made]) else pairs
    if None in order:
        return []
    runs = (_runs([n for n, _ in order[0]]), _runs([n for n, _ in order[1]]))
    if None not in runs and runs[0] != runs[1]:
        return []
    return [(u, v) for (_, u), (_, v) in zip(*order)]


def _same_items(a, b, mine, theirs):
    """The pairs among units of one signature, more on one side than on
    the other, when each side's are the items of one list (they differ in
    their last number alone): the items of one number on both sides
    (torchvision's resnet34 ``layer2.1`` and HF's resnet18
    ``stages.1.layers.1``, the blocks that a shorter stage keeps, as the
    name modes read ``layer2.1`` in both depths), when every number of the
    shorter list is one of the longer's and the two start at one number;
    else none (a list numbered from 1 against one numbered from 0)."""
    order = (_numbered_order(a, mine), _numbered_order(b, theirs))
    if None in order:
        return []
    last = []
    for numbered in order:
        numbers = [n for n, _ in numbered]
        if any(not n or len(n) != len(numbers[0]) or n[:-1] != numbers[0][:-1]
               for n in numbers):
            return []  # not one list: two stages' blocks, or a number inside a name
        last.append({n[-1]: unit for n, unit in numbered})
    short, long = sorted(last, key=len)
    if not short.keys() <= long.keys() or min(short) != min(long):
        return []  # numbered from another start: the same number is not the same place
    return [(last[0][n], last[1][n]) for n in sorted(short)]


def _crossed(trees, pairs, made):
    """Whether a pair of ``pairs`` (numbers on the first side, registration
    on the second) and a pair of ``made`` come in one order by the numbers
    and in the other by registration: a timm block flattened into numbered
    children numbers its shortcut last (``5``, after ``1``..``3``), where
    torchvision registers ``proj`` before ``f.a``..``f.c``, so the two
    of one shape (``0`` and ``5``; ``proj`` and ``f.a``) are left out."""
    numbered, registered = trees
    sep = numbered.sep
    for u, v in pairs:
        for w, x in made:
            # at the depth of the shallower of the two: the twins may be
            # the layers inside two modules whose own tie was left out
            here, there = numbered.label(u).split(sep), numbered.label(w).split(sep)
            depth = min(len(here), len(there))
            cut = [('n', sep.join(here[:depth])), ('n', sep.join(there[:depth]))]
            order = _numbered_order(numbered, cut)
            if order is None:
                continue
            if (order[0][1] == cut[0]) != (registered.registered(v) < registered.registered(x)):
                return True
    return False


def _unnumbered(tree, units):
    """Whether ``units`` are in their side's registration order and no two
    of them differ by numbers alone: two items of a list, or of two lists,
    are registered as their model registers the lists (a tail cut from a
    list and registered first), which numbers on the other side do not
    follow."""
    templates = {name_numbers(tree.label(unit), tree.sep)[0] for unit in units}
    return tree.rank is not None and len(templates) == len(units)


def _runs(numbers):
    """How many of the units numbered ``numbers`` (in order) share each
    value of their numbers but the last that varies, run by run: two
    stages of 2 and 1 equal blocks are not two of 1 and 2 (None when a
    single number varies, as in one list, flat or nested in modules of one
    item each)."""
    varying = [k for k in range(len(numbers[0])) if len({n[k] for n in numbers}) > 1]
    if len(varying) < 2:
        return None
    runs, last = [], None
    for n in numbers:
        outer = tuple(n[k] for k in varying[:-1])
        if runs and outer == last:
            runs[-1] += 1
        else:
            runs.append(1)
        last = outer
    return runs


def signature_pairs(src: KeyGroups, dst: KeyGroups,
                    inner: Callable[[int, int], Optional[list]],
                    sep: str = '.', unique: Optional[Dict[str, str]] = None,
                    ranks: Tuple[Optional[Mapping[str, int]], ...] = (None, None),
                    aside: Tuple[frozenset, frozenset] = (frozenset(), frozenset())
                    ) -> Tuple[List[Tuple[int, int]], List[tuple]]:
    """
    Group pairs, and single-tensor pairs of containers' own tensors, found
    by signatures alone (see the module's docstring).

    Args:
        src, dst: the two sides' groups.
        inner: ``inner(i, j)`` -> the tensor pairs of groups ``i`` and ``j``,
            or None when they cannot pair
            (:func:`~torch_liberator.keygroups.group_tensor_pairs`).
        sep: separator between path components.
        unique: when given, filled with ``{src module: dst module}`` for
            the modules paired as the one module of their signature in
            their scope, inside parents paired so too, up to the top: no
            number took part in placing them.
        ranks: for each side, its keys -> their positions when they are in
            registration order, else None.
        aside: for each side, the groups that hold nothing that pairs.

    Returns:
        Tuple: ``[(src group, dst group)]``, ``[(src group, position,
        dst group, position)]`` for single tensors, and ``[(src group, dst
        group)]`` for the pairs left out because a rival module could give
        the group as well (:func:`_doubted`).

    Example:
        >>> from torch_liberator.keygroups import KeyGroups, group_tensor_pairs
        >>> from torch_liberator.unordered import signature_pairs
        >>> qkv = {f'{p}.{n}.weight': (4, 4) for p in ('a', 'b') for n in 'kqv'}
        >>> src, dst = KeyGroups(qkv), KeyGroups({k.replace('a.', 'c.'): s for k, s in qkv.items()})
        >>> signature_pairs(src, dst, lambda i, j: group_tensor_pairs(src, i, dst, j))
        ([], [], [])
    """
    shared = ({s for group in src.squeezed for s in group}
              & {s for group in dst.squeezed for s in group}) - {()}
    trees = (_Tree(src, sep, shared, ranks[0], aside[0]),
             _Tree(dst, sep, shared, ranks[1], aside[1]))
    groups, singles = [], []
    top = (trees[0].unit(''), trees[1].unit(''))
    alone = []
    _match(trees, top, groups, singles, inner, strong=False,
           unique=unique if unique is not None else {}, alone=alone)
    doubted = _doubted(trees, alone, groups, singles, inner)
    doubts = [(found[0], found[2]) if len(found) == 4 else found for found in doubted]
    return ([found for found in groups if found not in doubted],
            [found for found in singles if found not in doubted], doubts)


def _match(trees, pair, groups, singles, inner, strong, unique, alone):
    """Pair what the two units of ``pair`` hold; ``strong``: the two are
    one module (same signature, each alone in its side), so their single
    groups and tensors pair too; ``unique`` collects module pairs placed
    without numbers, or is None below a pair that numbers placed;
    ``alone`` collects ``(pair, (src module, dst module), groups, singles)``
    for the modules paired as the one of their signature in its scope,
    with the ranges of ``groups`` and ``singles`` they made, or is None."""
    a, b = trees
    scope = [Counter(t.signature(u) for u in t.all_units(unit)[1:])
             for t, unit in zip(trees, pair)]
    fronts = [t.opened(unit) or [] for t, unit in zip(trees, pair)]
    for side in (0, 1):
        if len(fronts[side]) == 1:  # the one thing a unit holds: that unit again
            scope[side][trees[side].signature(fronts[side][0])] += 1
    made = []  # the pairs made at this level, for the ties to check their order
    while True:
        by_sig = [{}, {}]
        for side in (0, 1):
            for u in fronts[side]:
                sig = trees[side].signature(u)
                if sig:
                    by_sig[side].setdefault(sig, []).append(u)
        paired = [set(), set()]
        # one of a signature on each side first: the ties check their order against them
        for sig, mine in sorted(by_sig[0].items(), key=lambda item: len(item[1]) > 1):
            theirs = by_sig[1].get(sig)
            if not theirs:
                continue
            if len(mine) == scope[0][sig] and len(theirs) == scope[1][sig]:
                single = len(mine) == len(theirs) == 1
                placed = unique if single else None
                ties = (_tie_pairs(a, b, mine, theirs, made) if len(mine) == len(theirs)
                        else _same_items(a, b, mine, theirs))
                for u, v in ties:
                    if (alone is not None and single and u[0] == v[0] == 'n'
                            and a.held(u[1]) != b.held(v[1])):
                        continue  # the same shapes in other groups: two norms, one BatchNorm
                    start = len(groups), len(singles)
                    if _take(trees, u, v, groups, singles, inner, strong, placed, alone):
                        paired[0].add(u)
                        paired[1].add(v)
                        made.append((u, v))
                        if alone is not None and single and u[0] == v[0] == 'n':
                            alone.append((pair, (u[1], v[1]), range(start[0], len(groups)),
                                          range(start[1], len(singles))))
                        if placed is not None and u[0] == v[0] == 'n':
                            placed[u[1]] = v[1]
        # what paired is out of the scope: a tie the pair held one of
        # (a block's bn1 and bn2 beside its shortcut's bn) may resolve
        for side in (0, 1):
            for u in paired[side]:
                scope[side].subtract(trees[side].signature(w)
                                     for w in trees[side].all_units(u))
        fronts = [[u for u in front if u not in done] for front, done in zip(fronts, paired)]
        if not fronts[0] or not fronts[1]:
            return
        if paired[0]:
            continue  # (the scope shrank: look again before opening)
        # open what can pair with nothing on the other side (larger than
        # all of it); failing that, the largest units that can be opened
        most = [max(trees[side].size(u) for u in front) for side, front in enumerate(fronts)]
        progressed = False
        for side in (0, 1):
            new = []
            for u in fronts[side]:
                inside = trees[side].opened(u) if trees[side].size(u) > most[1 - side] else None
                new.extend(inside if inside is not None else [u])
            progressed |= len(new) != len(fronts[side])
            fronts[side] = new
        if not progressed:
            sizes = [trees[side].size(u) for side in (0, 1) for u in fronts[side]
                     if trees[side].opened(u)]
            if not sizes:
                return
            largest = max(sizes)
            for side in (0, 1):
                new = []
                for u in fronts[side]:
                    inside = (trees[side].opened(u) if trees[side].size(u) == largest
                              else None)
                    new.extend(inside if inside is not None else [u])
                progressed |= len(new) != len(fronts[side])
                fronts[side] = new
        if not progressed:
            return


def _doubted(trees, alone, groups, singles, inner):
    """The group pairs of ``groups`` and tensor pairs of ``singles`` that a
    module pair of ``alone`` made where a rival reading disagrees: another
    module of one side in its scope (:func:`_rival_modules`), matched with
    the other side's module, pairs the group elsewhere or not at all, and
    holds a group of its shapes beside what the pair holds that paired
    with nothing outside it and lies in no module of two or more groups
    that the other side holds outside the pair (a resnet stage whose
    second block paired with a block of its own, or holds what one does,
    is no rival of the first). Keys sorted, a module that lost a level
    matches the one below it by shapes as well as the one it is."""
    sig = (trees[0].group_sig, trees[1].group_sig)
    partner = ({}, {})
    for i, j in groups:
        partner[0][i] = j
        partner[1][j] = i
    for i, _, j, _ in singles:
        partner[0].setdefault(i, j)
        partner[1].setdefault(j, i)
    doubted = set()
    for pair, paths, made, made_singles in alone:
        for side in (0, 1):
            rivals = _rival_modules(trees[side], paths[side], pair[side][1],
                                    trees[1 - side], paths[1 - side])
            inside = set(trees[1 - side].groups_below(paths[1 - side])) if rivals else ()
            for module, beside in rivals:
                extra = {sig[side][g] for g in beside
                         if (partner[side].get(g) is None or partner[side][g] in inside)
                         and not _twinned(trees[side], g, module, paths[side],
                                          trees[1 - side], paths[1 - side])}
                if not extra:
                    continue
                units = [None, None]
                units[side] = trees[side].unit(module)
                units[1 - side] = ('n', paths[1 - side])
                alt_groups, alt_singles = [], []
                _match(trees, tuple(units), alt_groups, alt_singles, inner, strong=True,
                       unique=None, alone=None)
                # the other side's group -> its group in the rival reading
                alt = {found[1 - side]: found[side] for found in alt_groups}
                for n in made:
                    found = groups[n]
                    if sig[1 - side][found[1 - side]] in extra and (
                            alt.get(found[1 - side]) != found[side]):
                        doubted.add(found)
                alt = {(found[2 - 2 * side], found[3 - 2 * side]): found[2 * side:2 * side + 2]
                       for found in alt_singles}
                for n in made_singles:
                    found = singles[n]
                    theirs = found[2 - 2 * side:4 - 2 * side]
                    if sig[1 - side][theirs[0]] in extra and (
                            alt.get(theirs) != found[2 * side:2 * side + 2]):
                        doubted.add(found)
    return doubted


def _twinned(tree, g, rival, path, other, partner) -> bool:
    """Whether group ``g`` of ``tree`` lies in a module of two or more
    groups below ``rival``, beside ``path``, whose groups the ``other``
    tree holds as those of a module outside ``partner``."""
    sep = tree.sep
    module = tree.side.path[g]
    while module and module != rival:
        module = module.rpartition(sep)[0]
        if module == rival or path.startswith(module + sep):
            return False
        held = tree.held(module)
        n = sum(held.values())
        if n >= 2 and any(
                sum(other.held(twin).values()) == n and twin != partner
                and not twin.startswith(partner + sep) for twin in other.holding(held)):
            return True
    return False


def _rival_modules(tree, path, within, other, partner):
    """The modules of ``tree`` inside ``within`` other than ``path`` that
    could match module ``partner`` of the ``other`` tree as well as
    ``path`` does, each with its groups outside ``path``: an ancestor of
    ``path`` of at most twice as many groups as ``partner`` (one level up,
    a module inserted beside), or a module elsewhere that holds all of
    ``partner``'s groups and one more at most (a module inserted inside;
    a few more are a block of another design: ShuffleNet's ``branch2``
    holds all the shapes of ``branch1`` and two more)."""
    sep = tree.sep
    wanted = other.held(partner)
    n = sum(wanted.values())
    size = sum(tree.held(path).values())
    mine = None
    out = []
    up = path
    while up:
        up = up.rpartition(sep)[0]
        if up == within:
            break
        count = sum(tree.held(up).values())
        if count == size:
            continue  # a chain of single children
        if count > 2 * n:
            break
        mine = mine or set(tree.groups_below(path))
        out.append((up, [g for g in tree.groups_below(up) if g not in mine]))
    holding = tree.holding(wanted)
    if within and tree.groups[within] < len(holding):
        holding = [m for m in tree.modules_below(within) if m in holding]
    for module in holding:
        if module in (path, within) or (within and not module.startswith(within + sep)):
            continue
        if module.startswith(path + sep) or path.startswith(module + sep) or not module:
            continue
        out.append((module, tree.groups_below(module)))
    return out


def _content(counts: Counter) -> tuple:
    """A multiset as a key: its items with a count, sorted."""
    return tuple(sorted(item for item in counts.items() if item[1]))


def _take(trees, u, v, groups, singles, inner, strong, unique, alone):
    """Record the pair of units ``u``, ``v`` of one signature; True when
    it placed something (or may, inside)."""
    a, b = trees
    if u[0] in ('n', 'o') and v[0] in ('n', 'o') and (u[0] == 'n' or v[0] == 'n'):
        if u[0] == 'n' and v[0] == 'n' and (strong or min(a.groups[u[1]], b.groups[v[1]]) >= 2):
            _match(trees, (u, v), groups, singles, inner, strong=True, unique=unique,
                   alone=alone)
            return True
        return False
    if not strong:
        return False
    if u[0] in ('g', 'o') and v[0] in ('g', 'o'):
        if inner(u[1], v[1]) is None:
            return False
        groups.append((u[1], v[1]))
        return True
    if u[0] == 't' and v[0] == 't':
        singles.append((u[1], u[2], v[1], v[2]))
        return True
    return False


def norms_by_their_layers(src: KeyGroups, dst: KeyGroups, pairs: Mapping[int, int],
                          ranks: Tuple[Optional[Mapping[str, int]], ...],
                          inner: Callable[[int, int], Optional[list]], sep: str = '.'
                          ) -> List[Tuple[int, int]]:
    """
    Group pairs for the norms left open on a side whose keys are sorted,
    each in a module of two groups beside the layer it goes with (HF's
    ``expansion.expand_conv`` and ``expansion.expand_bn``), when the other
    side's keys are in registration order: the norm goes to the group
    registered just after (or just before) its layer's partner, in that
    partner's module, when every such module whose layer and norm are both
    paired says so, two or more of them and none otherwise (timm registers
    ``conv_pw``, ``bn1``, ``conv_dw``, ``bn2``: its ``bn1`` and ``bn2``,
    one shape, are HF's ``expand_bn`` and ``depthwise_norm``). A place two
    norms claim, or one of other tensors (a BatchNorm, for a norm of a
    weight and a bias alone), is none.

    Args:
        src, dst: the two sides' groups (each module's keys together).
        pairs: the group pairs so far, source -> destination.
        ranks: for each side, its keys -> positions when they are in
            registration order, else None; exactly one side must have them.
        inner: ``inner(i, j)`` -> the tensor pairs of source group ``i`` and
            destination group ``j``, or None when they cannot pair.
        sep: separator between path components.

    Returns:
        List[Tuple[int, int]]: new ``(source group, destination group)`` pairs.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups, group_tensor_pairs
        >>> from torch_liberator.unordered import norms_by_their_layers
        >>> # HF-like modules of a layer and its norm, keys sorted; timm-like
        >>> # flat blocks in registration order; block 1's norms are twins
        >>> hf = KeyGroups({'b.0.dw.conv.w': (6, 1, 3), 'b.0.dw.norm.w': (6,),
        ...                 'b.0.exp.conv.w': (8, 4), 'b.0.exp.norm.w': (8,),
        ...                 'b.1.dw.conv.w': (9, 1, 3), 'b.1.dw.norm.w': (9,),
        ...                 'b.1.exp.conv.w': (9, 4), 'b.1.exp.norm.w': (9,)})
        >>> keys = {'b.0.conv_pw.w': (8, 4), 'b.0.bn1.w': (8,), 'b.0.conv_dw.w': (6, 1, 3),
        ...         'b.0.bn2.w': (6,), 'b.1.conv_pw.w': (9, 4), 'b.1.bn1.w': (9,),
        ...         'b.1.conv_dw.w': (9, 1, 3), 'b.1.bn2.w': (9,)}
        >>> timm = KeyGroups(keys)
        >>> known = {'b.0.dw.conv': 'b.0.conv_dw', 'b.0.dw.norm': 'b.0.bn2',
        ...          'b.0.exp.conv': 'b.0.conv_pw', 'b.0.exp.norm': 'b.0.bn1',
        ...          'b.1.dw.conv': 'b.1.conv_dw', 'b.1.exp.conv': 'b.1.conv_pw'}
        >>> pairs = {hf.path.index(a): timm.path.index(b) for a, b in known.items()}
        >>> ranks = (None, {key: n for n, key in enumerate(keys)})
        >>> found = norms_by_their_layers(hf, timm, pairs, ranks,
        ...                               lambda i, j: group_tensor_pairs(hf, i, timm, j))
        >>> sorted((hf.path[i], timm.path[j]) for i, j in found)
        [('b.1.dw.norm', 'b.1.bn2'), ('b.1.exp.norm', 'b.1.bn1')]
    """
    if (ranks[0] is None) == (ranks[1] is None):
        return []
    flip = ranks[0] is not None  # the source is in registration order, the model sorted
    loose, ranked, rank = (dst, src, ranks[0]) if flip else (src, dst, ranks[1])
    partner = {j: i for i, j in pairs.items()} if flip else dict(pairs)
    taken = set(partner.values())
    order = sorted(range(len(ranked)), key=lambda g: min(rank[k] for k in ranked.keys[g]))
    pos = {g: n for n, g in enumerate(order)}
    below: Dict[str, List[int]] = {}
    for g, comps in enumerate(loose.comps):
        for depth in range(len(comps)):
            below.setdefault(sep.join(comps[:depth]), []).append(g)
    units = []  # (layer, norm) alone in a module, each directly below it
    for module, groups in below.items():
        if len(groups) == 2 and module and all(
                loose.path[g].rpartition(sep)[0] == module for g in groups):
            norm = [g for g in groups if loose.vectors_only(g)]
            if len(norm) == 1:
                units.append((groups[0] if norm[0] == groups[1] else groups[1], norm[0]))
    steps = Counter(pos[partner[n]] - pos[partner[layer]] for layer, n in units
                    if layer in partner and n in partner)
    step = 1 if steps[1] >= 2 and steps[-1] == 0 else -1 if steps[-1] >= 2 and steps[1] == 0 else 0
    if not step or sum(steps.values()) != steps[step]:
        return []
    claims: Dict[int, List[int]] = {}
    for layer, norm in units:
        if layer not in partner or norm in partner:
            continue
        at = pos[partner[layer]] + step
        if not 0 <= at < len(order):
            continue
        place = order[at]
        fits = inner(place, norm) if flip else inner(norm, place)
        if (place not in taken and fits is not None
                and sorted(ranked.squeezed[place]) == sorted(loose.squeezed[norm])
                and ranked.path[place].rpartition(sep)[0]
                == ranked.path[partner[layer]].rpartition(sep)[0]):
            claims.setdefault(place, []).append(norm)
    found = [(norms[0], place) for place, norms in claims.items() if len(norms) == 1]
    return [(j, i) for i, j in found] if flip else found
