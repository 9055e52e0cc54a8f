"""
Pairs that crossed: two modules of one kind, each sent where the other
belongs.

A solver that reads order and shapes cannot tell apart two modules of one
shape registered in another order; what can is the evidence around them.
Five kinds are read here, and the pairs they contradict are left out:

* **A norm follows its layer** (:func:`crossed_norm_pairs`). A unit is the
  module that holds a layer and the norm after it (timm's ``ConvNormAct``
  as ``conv1.{conv,bn}``, torchvision's ``Conv2dNormActivation`` as
  ``f.a.{0,1}``). The kernel (the layer's weight) says which unit of the
  model a unit of the checkpoint is: its shape is rarely shared. A norm's
  vectors are of one width in many units: in a regnet block whose
  ``conv1`` and ``conv2`` were registered in another order, ``conv1``'s
  kernel went to ``f.a`` and ``conv2``'s to ``f.b``, but ``conv2``'s
  BatchNorm to ``f.a`` and ``conv1``'s to ``f.b`` (mutation fuzz seeds 2737
  and 3648 of ``--cross --wide --reorder``). A key that is no kernel, sent
  into the model unit that another checkpoint unit's kernels went to,
  while that unit holds a key of the same path and shape itself, is left
  out: that unit's own norm is the one that belongs there, whether or not
  the solver placed it. So is one whose layer's unit of the model is one
  layer and one norm that could hold it, when it went elsewhere (a regnet
  block registered in another order, ``conv3``'s kernel into ``f.c`` and
  its BatchNorm into ``f.b``, ``conv2`` unplaced: seed 1956 of
  ``--joined --cross --wide --reorder``). A norm that went where its layer
  did not, with no such twin or slot (a model that keeps its norms in a
  list of their own), stays.
* **Numbered names that crossed** (:func:`crossed_ordinal_pairs`). Two
  sibling modules of one shape numbered by their names (``ln_1`` and
  ``ln_2``, ``Mixed_6c`` and ``Mixed_6d``, a list's items), sent to two
  siblings numbered the other way round (``norm2`` and ``norm1``, ``13``
  and ``12``): a ViT block of the model registered its norms after their
  layers, and order put torchvision's ``ln_1`` into timm's ``norm2``
  (mutation fuzz seed 4588 of ``--cross --wide --reorder``). The names say
  one thing, the order another: both pairs are left out. A pair's modules
  are read where its two paths, from the tensor up, first differ. Modules
  of other shapes numbered the other way round stay (two libraries may
  number differently; the shapes decided), and so do numbers shifted
  alike (``ln_1``, ``ln_2`` into ``norm2``, ``norm3``). A free twin pair
  counts as a pair: a module sent where its numbers go the other way round
  against a sibling that holds its placed tensors unused and a sibling of
  its place whose places for them are empty is left out (timm's
  inception_v3 with its children registered in another order:
  ``Mixed_6c`` into the flattened model's ``13`` by order, ``Mixed_6d``
  and ``12`` free; mutation fuzz seed 3002 of ``--cross --wide
  --reorder``; an hrnet's ``stage3`` registered first, its first two
  branches, of ``stage2``'s shapes, into ``stage2``'s place, seed 4959 of
  ``--wide --reorder``).
* **Twins go where their peers go** (:func:`crossed_peer_pairs`). Two
  sibling units named by words whose keys have the same paths and shapes
  (a regnet's ``conv1`` and ``downsample`` in a stage's first block, each
  a conv and a BatchNorm) that took each other's places, read below the
  model module holding both, against every other parent holding units of
  their two names, two or more (the other stages' first blocks send
  ``conv1`` to ``f.a`` and ``downsample`` to ``proj``): this block
  registered them in another order, and order alone crossed them
  (mutation fuzz seed 3310 of ``--cross --wide --reorder``). When the
  other parents left their twins out as well, nothing speaks against this
  one, and it stays: a block registered in its own order among blocks
  that are all ambiguous is not caught (noted on issue 8).
* **Norms keep their order in their block** (:func:`crossed_twin_norms`,
  on group pairs: the structure alignment unpairs these before it pairs
  each block's norms in order, and every mode's check reads its mapping
  so through :meth:`~torch_liberator.alignment.StructureSides.twin_norms_crossed`).
  The norms a block holds directly, of one shape (a transformer block's
  two LayerNorms), are used in the order the block registers them, in
  every library we know but one way of writing it: HuggingFace's Swin V2
  registers ``layernorm_before`` after the attention and
  ``layernorm_after`` after the MLP (a post-norm block), torchvision's
  ``norm1`` before the attention and ``norm2`` before the MLP, though
  both apply them after. Order put ``layernorm_before`` into ``norm2``
  and ``layernorm_after`` into the next block's ``norm1`` (40 wrong in
  structure and auto, both ways). A norm sent, under another name, to a
  place whose position among its block's norms of that shape is not its
  own (the two blocks holding as many) is left out: its neighbours say
  one place, the norms' order another. Where a side's keys are not in
  registration order (sorted by name), its norms' order is what their
  names number (``layernorm_before`` before ``layernorm_after``), where
  they differ by such numbers alone.
* **A module follows its siblings** (:func:`strayed_pairs`). Every other
  child of its parent (two or more) went into one module of the model,
  it went elsewhere, and that module holds exactly one free child of its
  very tensors: siblings registered in another order, and a norm of its
  width that the model inserted at the top, let order alone send a
  block's norm there (random trees of permuted siblings with modules
  inserted). A list cut in parts sends its first item apart from the
  rest too, but the rest's part has no free item for it.

Example:
    >>> from torch_liberator.crossings import crossed_norm_pairs
    >>> src = {'c1.conv.weight': (8, 8, 1, 1), 'c1.bn.weight': (8,),
    ...        'c2.conv.weight': (8, 8, 3, 3), 'c2.bn.weight': (8,)}
    >>> dst = {'a.0.weight': (8, 8, 1, 1), 'a.1.weight': (8,),
    ...        'b.0.weight': (8, 8, 3, 3), 'b.1.weight': (8,)}
    >>> crossed = {'c1.conv.weight': 'a.0.weight', 'c1.bn.weight': 'b.1.weight',
    ...            'c2.conv.weight': 'b.0.weight', 'c2.bn.weight': 'a.1.weight'}
    >>> sorted(crossed_norm_pairs(crossed, src, dst))
    ['c1.bn.weight', 'c2.bn.weight']
    >>> crossed.update({'c1.bn.weight': 'a.1.weight', 'c2.bn.weight': 'b.1.weight'})
    >>> crossed_norm_pairs(crossed, src, dst)
    set()
"""
import re
from functools import lru_cache
from typing import Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from torch_liberator.keygroups import (KeyGroups, common_module, is_word, module_pairs,
                                       module_signatures)
from torch_liberator.namenumbers import name_numbers
from torch_liberator.shapes import is_kernel

__all__ = ['crossed_norm_pairs', 'crossed_ordinal_pairs', 'crossed_peer_pairs',
           'crossed_twin_norms', 'strayed_pairs']


def crossed_norm_pairs(mapping: Mapping[str, str], src: Mapping[str, Optional[Sequence[int]]],
                       dst: Mapping[str, Optional[Sequence[int]]], sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` that are not kernels and went into the
    unit of the model that another checkpoint unit's kernels all went to,
    while that unit holds a key of the same path and shape itself, or away
    from the unit of the model their own unit's kernels all went to, while
    that unit is one layer and one norm with a key of their name and place
    shape (see the module docstring). Only a model unit that got kernels
    of that one checkpoint unit, and all of them, counts (not a flat list
    of layers).

    Args:
        mapping: source key -> destination key.
        src, dst: key -> shape of each side.
        sep: separator between path components.
    """
    pairs = []  # (checkpoint unit, model unit, source keys)
    kernels = {}  # checkpoint unit -> the model units its kernels went to
    owners = {}  # model unit -> the checkpoint units whose kernels went there
    kind = {}  # shape -> whether a kernel
    for (a, b), keys in module_pairs(mapping, sep).items():
        p, q = a.rpartition(sep)[0], b.rpartition(sep)[0]
        for key in keys:
            shape = src[key]
            if shape not in kind:
                kind[shape] = is_kernel(shape)
            if kind[shape]:
                kernels.setdefault(p, set()).add(q)
                owners.setdefault(q, set()).add(p)
        pairs.append((p, q, keys))
    home = {p: next(iter(qs)) for p, qs in kernels.items() if len(qs) == 1}
    out = set()
    slots = None
    for p, q, keys in pairs:
        mine = home.get(p)
        if mine not in (None, q):
            # its layer's unit of the model is one layer and one norm that
            # could hold it: that norm is its place, not another unit's
            if slots is None:
                slots = _norm_slots(dst, sep)
            slot = slots.get(mine, {})
            out.update(s for s in keys if not kind[src[s]]
                       and slot.get(s.rpartition(sep)[2]) == dst[mapping[s]])
        others = owners.get(q, ())
        if len(others) != 1 or mine == q:
            continue
        other = next(iter(others))
        if other == p or home.get(other) != q:
            continue
        for s in keys:
            if kind[src[s]]:
                continue
            rest = s[len(p) + len(sep):] if p else s  # the key's path in its unit
            twin = other + sep + rest if other else rest
            if twin in src and src[twin] == src[s]:
                out.add(s)
    return out


def _norm_slots(side, sep):
    """Unit -> {tensor name: shape} of its norm, for the units that hold
    exactly two modules, directly: a layer (a kernel) and a norm (no
    kernel)."""
    modules = {}
    for key, shape in side.items():
        module, _, name = key.rpartition(sep)
        modules.setdefault(module, {})[name] = shape
    children, below = {}, {}
    for module in modules:
        comps = module.split(sep) if module else []
        if comps:
            children.setdefault(sep.join(comps[:-1]), []).append(module)
        for depth in range(len(comps)):
            unit = sep.join(comps[:depth])
            below[unit] = below.get(unit, 0) + 1
    out = {}
    for unit, two in children.items():
        if len(two) == 2 and below[unit] == 2:
            norms = [m for m in two if not any(map(is_kernel, modules[m].values()))]
            if len(norms) == 1:
                out[unit] = modules[norms[0]]
    return out


def crossed_twin_norms(src: KeyGroups, dst: KeyGroups,
                       group_pairs: Iterable[Tuple[int, int]],
                       ordered: Tuple[bool, bool] = (True, True)) -> List[Tuple[int, int]]:
    """
    The group pairs ``(i, j)`` of a norm (a group of vectors only, with no
    module below) sent to a norm of another name whose position among the
    norms of that shape its module holds directly is not the source's
    among its module's, both modules holding two or more, as many (see the
    module docstring). A norm sent to its namesake stays: the names decide.
    On a side whose listing is not in registration order (``ordered``, per
    side), a module's norms that differ by numbers alone come in the order
    of their numbers (``layernorm_before`` before ``layernorm_after``,
    :func:`~torch_liberator.namenumbers.name_numbers`), not the listing's.

    Example:
        >>> from torch_liberator.crossings import crossed_twin_norms
        >>> from torch_liberator.keygroups import KeyGroups
        >>> ln = lambda p: {p + '.weight': (8,), p + '.bias': (8,)}
        >>> src = KeyGroups({'l.0.attn.weight': (8, 8), **ln('l.0.before'), **ln('l.0.after')})
        >>> dst = KeyGroups({**ln('f.0.norm1'), 'f.0.attn.weight': (8, 8), **ln('f.0.norm2')})
        >>> crossed_twin_norms(src, dst, [(0, 1), (1, 2)])  # by order: before -> norm2
        [(1, 2)]
        >>> crossed_twin_norms(src, dst, [(1, 0), (2, 2)])
        []
    """
    mine = theirs = None
    out = []
    for i, j in group_pairs:
        a, b = src.comps[i], dst.comps[j]
        if (not a or not b or a[-1] == b[-1] or not src.leaf[i] or not dst.leaf[j]
                or src.squeezed[i] != dst.squeezed[j] or not src.vectors_only(i)):
            continue
        if mine is None:
            mine, theirs = _norm_twins(src, ordered[0]), _norm_twins(dst, ordered[1])
        here = mine[a[:-1], src.squeezed[i]]
        there = theirs[b[:-1], dst.squeezed[j]]
        if len(here) == len(there) >= 2 and here.index(i) != there.index(j):
            out.append((i, j))
    return out


def _norm_twins(side: KeyGroups, ordered: bool = True) -> dict:
    """``{(module, shapes): its norm groups in order}``: the leaf groups of
    vectors only that each module holds directly, by shapes; with the
    side's order lost, by their names' numbers where those are all that
    differ."""
    out = {}
    for g, comps in enumerate(side.comps):
        if comps and side.leaf[g] and side.vectors_only(g):
            out.setdefault((comps[:-1], side.squeezed[g]), []).append(g)
    if not ordered:
        for twins in out.values():
            named = {g: name_numbers(side.path[g], side.sep) for g in twins}
            if len({template for template, _ in named.values()}) == 1:
                twins.sort(key=lambda g: named[g][1])
    return out


def crossed_ordinal_pairs(mapping: Mapping[str, str],
                          src: Mapping[str, Optional[Sequence[int]]],
                          dst: Mapping[str, Optional[Sequence[int]]], sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` in sibling modules numbered by their
    names (a word and a number or a letter, or an item's number) that went
    to siblings of the model numbered the other way round, the modules of
    one shape (see the module docstring), or the other way round against
    a free twin pair (a sibling of each, of its kind of name, holding the
    pair's tensors unused or their places empty). A pair's modules are
    read where its two paths, from the tensor up, first differ.

    Example:
        >>> from torch_liberator.crossings import crossed_ordinal_pairs
        >>> src = {'b.ln_1.weight': (8,), 'b.ln_2.weight': (8,), 'b.fc.weight': (8, 8)}
        >>> dst = {'k.norm1.weight': (8,), 'k.norm2.weight': (8,), 'k.mlp.weight': (8, 8)}
        >>> mapping = {'b.ln_1.weight': 'k.norm2.weight', 'b.ln_2.weight': 'k.norm1.weight',
        ...            'b.fc.weight': 'k.mlp.weight'}
        >>> sorted(crossed_ordinal_pairs(mapping, src, dst))
        ['b.ln_1.weight', 'b.ln_2.weight']
        >>> # inception blocks Mixed_6c and Mixed_6d (one shape) into a list's 13 and 12
        >>> src = {'Mixed_6c.conv.weight': (8, 8), 'Mixed_6d.conv.weight': (8, 8)}
        >>> dst = {'12.conv.weight': (8, 8), '13.conv.weight': (8, 8)}
        >>> sorted(crossed_ordinal_pairs({'Mixed_6c.conv.weight': '13.conv.weight',
        ...                               'Mixed_6d.conv.weight': '12.conv.weight'}, src, dst))
        ['Mixed_6c.conv.weight', 'Mixed_6d.conv.weight']
        >>> # Mixed_6c alone into 13, while Mixed_6d and 12 are free
        >>> crossed_ordinal_pairs({'Mixed_6c.conv.weight': '13.conv.weight'}, src, dst)
        {'Mixed_6c.conv.weight'}
    """
    places = {}  # (checkpoint module, model module) where the paths first differ -> keys
    for (a, b), keys in module_pairs(mapping, sep).items():
        while a and b:
            pa, _, la = a.rpartition(sep)
            pb, _, lb = b.rpartition(sep)
            if la != lb:
                places.setdefault((a, b), []).extend(keys)
                break
            a, b = pa, pb
    numbered = {}  # (parents, kinds of names) -> [(number, number, module, keys)]
    for (a, b), keys in places.items():
        pa, _, la = a.rpartition(sep)
        pb, _, lb = b.rpartition(sep)
        x, y = _ordinal(la), _ordinal(lb)
        if x is not None and y is not None:
            numbered.setdefault((pa, pb, x[0], y[0]), []).append((x[1], y[1], a, keys, lb))
    out = set()
    for entries in numbered.values():
        if len(entries) < 2:
            continue
        # (the cheap test first: numbers the other way round at all)
        inverted = {id(keys) for keys in _inverted([(x, y, keys) for x, y, _, keys, _ in entries])}
        alike = {}  # of those, modules of one shape
        for x, y, a, keys, _ in entries:
            if id(keys) in inverted:
                alike.setdefault(_shapes(keys, src, a, sep), []).append((x, y, keys))
        for group in alike.values():
            out.update(key for keys in _inverted(group) for key in keys)
    out.update(_against_free_twins(numbered, mapping, src, dst, sep))
    return out


def _against_free_twins(numbered, mapping, src, dst, sep):
    """
    The keys of ``numbered``'s entries whose numbers go the other way round
    against a free twin pair: another sibling of the checkpoint module, of
    its kind of name, that holds every one of the entry's tensors (its path
    and shape) unused, and another sibling of the model module, likewise,
    whose places for them are empty. That pair is as good a pair for those
    tensors as the entry's, and the numbers of the two pairs disagree
    (``Mixed_6c`` into ``13`` while ``Mixed_6d`` and ``12`` are free; an
    hrnet's ``stage3``, whose first two branches have ``stage2``'s shapes,
    sent there into ``stage2``'s place while ``stage2`` and those branches'
    places in ``stage3``'s are free).
    """
    filled = set(mapping.values())
    # a free module has its keys unused: its name is found among those
    unused_src = _child_names([k for k in src if k not in mapping],
                              {pa for pa, _, _, _ in numbered}, sep)
    unused_dst = _child_names([k for k in dst if k not in filled],
                              {pb for _, pb, _, _ in numbered}, sep)
    below = {}  # (side, parent) -> {child: {path below it: (shape, key)}}
    out = set()
    for (pa, pb, kx, ky), entries in numbered.items():
        free_src = [c for c in unused_src.get(pa, ()) if _kind(c) == kx]
        free_dst = [c for c in unused_dst.get(pb, ()) if _kind(c) == ky]
        if not free_src or not free_dst:
            continue
        if (1, pa) not in below:
            below[1, pa] = _children(src, pa, sep)
        if (2, pb) not in below:
            below[2, pb] = _children(dst, pb, sep)
        mine, theirs = below[1, pa], below[2, pb]
        for x, y, a, keys, b in entries:
            place = pb + sep + b if pb else b
            wanted_a = [(k[len(a) + len(sep):], tuple(src[k] or ())) for k in keys]
            wanted_b = [(mapping[k][len(place) + len(sep):], tuple(dst[mapping[k]] or ()))
                        for k in keys]
            here = a.rpartition(sep)[2]
            numbers_a = [_ordinal(c)[1] for c in free_src
                         if c != here and _holds(mine[c], wanted_a, mapping.__contains__)]
            if not numbers_a:
                continue
            numbers_b = [_ordinal(c)[1] for c in free_dst
                         if c != b and _holds(theirs[c], wanted_b, filled.__contains__)]
            if any((x2 - x) * (y2 - y) < 0 for x2 in numbers_a for y2 in numbers_b):
                out.update(keys)
    return out


def _holds(child, wanted, used):
    """Whether ``child`` (of :func:`_children`) holds a key at each path
    of ``wanted`` with its shape, none of them ``used``."""
    for path, shape in wanted:
        found = child.get(path)
        if found is None or found[0] != shape or used(found[1]):
            return False
    return True


def _kind(name):
    """The kind of name of :func:`_ordinal`, or None."""
    found = _ordinal(name)
    return None if found is None else found[0]


def _child_names(keys, parents, sep):
    """``{parent: set of child names}`` of the module paths ``parents``
    (``''``: the root) that hold one of ``keys`` below a child."""
    out = {}
    for key in keys:
        start = 0  # where the child's name begins
        while True:
            cut = key.find(sep, start)
            if cut < 0:
                break
            head = key[:start - len(sep)] if start else ''
            if head in parents:
                out.setdefault(head, set()).add(key[start:cut])
            start = cut + len(sep)
    return out


def _children(shapes, parent, sep):
    """``{child name: {path below it: (shape, key)}}`` of module path
    ``parent``."""
    found = {}
    prefix = parent + sep if parent else ''
    for key, shape in shapes.items():
        if key.startswith(prefix):
            child, _, rest = key[len(prefix):].partition(sep)
            if rest:
                found.setdefault(child, {})[rest] = (tuple(shape or ()), key)
    return found


def crossed_peer_pairs(mapping: Mapping[str, str], src: Mapping[str, Optional[Sequence[int]]],
                       sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` in twin units (modules named by words,
    one level above the modules that hold tensors, siblings whose keys have
    the same paths and shapes) that went where the units of their names
    elsewhere did not: each unit's place, read below the model module that
    holds the places of all its siblings, is the place that every other
    unit of its twin's name took, and two or more did (see the module
    docstring).

    Example:
        >>> from torch_liberator.crossings import crossed_peer_pairs
        >>> src, mapping = {}, {}
        >>> places = {'conv1': 'f.a', 'downsample': 'proj'}
        >>> for b in range(3):
        ...     for name, place in places.items():
        ...         src[f's{b}.b1.{name}.conv.weight'] = (8, 4, 1, 1)
        ...         if b == 2:  # this block registered them the other way round
        ...             place = places['downsample' if name == 'conv1' else 'conv1']
        ...         mapping[f's{b}.b1.{name}.conv.weight'] = f'block{b}.0.{place}.0.weight'
        >>> sorted(crossed_peer_pairs(mapping, src))
        ['s2.b1.conv1.conv.weight', 's2.b1.downsample.conv.weight']
    """
    units = {}  # checkpoint unit -> its (source key, model key) pairs
    for s, d in mapping.items():
        module = s[:s.rfind(sep)]
        cut = module.rfind(sep)
        if cut >= 0:
            units.setdefault(module[:cut], []).append((s, d))
    children = {}  # checkpoint parent -> [(label, the model keys of that unit, their module)]
    for unit, pairs in units.items():
        parent, _, label = unit.rpartition(sep)
        if is_word(label):
            places = [d for _, d in pairs]
            children.setdefault(parent, []).append((label, places, common_module(places, sep)))
    votes = {}  # (label, label) -> {their places below the module holding both: parents}
    read = []  # (parent, (label, label), their places so read)
    for parent, found in children.items():
        if not 2 <= len(found) <= _MOST_UNITS:
            continue
        found.sort()
        for i, (one, keys1, place1) in enumerate(found):
            for two, keys2, place2 in found[i + 1:]:
                common = common_module(keys1 + keys2, sep)
                cut = len(common) + len(sep) if common else 0
                places = (place1[cut:], place2[cut:])
                counts = votes.setdefault((one, two), {})
                counts[places] = counts.get(places, 0) + 1
                read.append((parent, (one, two), places))
    out = set()
    for parent, labels, places in read:
        if places[0] == places[1]:
            continue
        # every other parent holding the two names (two or more) took
        # their places the other way round
        others = {p: c - (p == places) for p, c in votes[labels].items()}
        others = {p: c for p, c in others.items() if c > 0}
        if len(others) != 1 or others.get(places[::-1], 0) < 2:
            continue
        below = _children(src, parent, sep)
        one, two = ({path: shape for path, (shape, _) in below[label].items()} for label in labels)
        if one != two:
            continue  # no twins: their shapes told them apart
        prefix = parent + sep if parent else ''
        out.update(s for label in labels for s, _ in units[prefix + label])
    return out


#: a parent of more units than this is a list, whose items' order other
#: checks weigh
_MOST_UNITS = 8


#: a name that numbers a module: a word and digits (``norm2``, ``ln_1``), or
#: digits alone (a list's item)
_NUMBERED = re.compile(r'(.*?)_?(\d+)')

#: ... or a letter after digits or ``_`` (``Mixed_6c``, ``branch3x3_2a``), or alone
_LETTERED = re.compile(r'(.*[\d_])?([a-z])')


@lru_cache(maxsize=4096)
def _ordinal(label):
    """``((kind, word), number)`` of a name that numbers a module, else None."""
    if label[-1:].isdigit():
        match = _NUMBERED.fullmatch(label)
        return (('number', match[1]), int(match[2])) if match else None
    match = _LETTERED.fullmatch(label)
    return (('letter', match[1] or ''), ord(match[2])) if match else None


def _inverted(group):
    """The key lists of ``group`` (``(number, number, keys)``) whose two
    numbers go the other way round against another's."""
    group = sorted(group, key=lambda entry: entry[0])
    ys = [y for _, y, _ in group]
    before, top = [], None  # the largest number before each
    for y in ys:
        before.append(top)
        top = y if top is None else max(top, y)
    after, low = [], None  # the smallest number after each
    for y in reversed(ys):
        after.append(low)
        low = y if low is None else min(low, y)
    after.reverse()
    return [keys for n, (_, y, keys) in enumerate(group)
            if (before[n] is not None and before[n] > y) or (after[n] is not None and after[n] < y)]


def _shapes(keys, shapes, module, sep):
    """The shapes of ``keys`` by their paths below ``module``."""
    cut = len(module) + len(sep) if module else 0
    return tuple(sorted((key[cut:], tuple(shapes[key] or ())) for key in keys))


def _strayed_one_way(mapping, src, dst, sep):
    targets = {}  # checkpoint module -> model keys its keys went to
    for s, d in mapping.items():
        targets.setdefault(s.rpartition(sep)[0], set()).add(d)
    # the parents whose modules went to more than one place (else none of
    # them went away from the rest), each -> {child: model keys the keys
    # below it went to}
    places_of = {}  # parent -> [how many of its modules have pairs, where they went]
    for module, went in targets.items():
        if module:
            seen = places_of.setdefault(module.rpartition(sep)[0], [0, set()])
            seen[0] += 1
            seen[1].update(d.rpartition(sep)[0].rpartition(sep)[0] for d in went)
    images = {parent: {} for parent, (modules, places) in places_of.items()
              if modules < 2 or len(places) > 1}
    for module, went in targets.items() if images else ():
        parts = module.split(sep) if module else []
        for n in range(len(parts)):
            children = images.get(sep.join(parts[:n]))
            if children is not None:
                children.setdefault(parts[n], set()).update(went)
    strays = []  # (checkpoint module, the model module its siblings went into)
    for parent, children in images.items():
        if len(children) < 3:
            continue
        places = {}  # child -> the model module its image lies in
        for child, went in children.items():
            image = common_module(went, sep)
            places[child] = image.rpartition(sep)[0] if image else None
        for child, went in children.items():
            module = parent + sep + child if parent else child
            others = {places[c] for c in children if c != child}
            if (module in targets and len({d.rpartition(sep)[0] for d in went}) == 1
                    and len(others) == 1 and None not in others):
                (place,) = others
                if not next(iter(went)).startswith(place + sep if place else ''):
                    strays.append((module, place))
    if not strays:
        return set()
    src_held, dst_held = module_signatures(src, sep), module_signatures(dst, sep)
    used = {d.rpartition(sep)[0] for d in mapping.values()}
    free = {}  # model parent -> {what a module holds: its free modules}
    for module, held in dst_held.items():
        if module and module not in used:
            free.setdefault(module.rpartition(sep)[0], {}).setdefault(held, []).append(module)
    out = set()
    for module, place in strays:
        if len(free.get(place, {}).get(src_held[module], ())) == 1:
            out.update(s for s in mapping if s.rpartition(sep)[0] == module)
    return out


def strayed_pairs(mapping: Mapping[str, str], src: Mapping[str, Optional[Sequence[int]]],
                  dst: Mapping[str, Optional[Sequence[int]]], sep: str = '.') -> Set[str]:
    """
    The source keys of a module that went away from its siblings: every
    other child of its parent (two or more, modules or whole subtrees)
    went into one module of the model (as its children), this one
    elsewhere, while that module holds one free child of its very tensors
    (names and shapes). Siblings registered in another order, and a module
    the model inserted elsewhere of the same tensors, let order alone send
    it there; the free slot among its siblings' places says where it
    belongs, and two places are no answer.
    Read both ways: a model module whose siblings came from one checkpoint
    module, itself filled from elsewhere while that module holds one
    unused child of its tensors.

    Example:
        >>> from torch_liberator.crossings import strayed_pairs
        >>> src = {'b.0.weight': (4,), 'b.1.weight': (5,), 'b.2.weight': (6,),
        ...        'b.3.weight': (8,)}
        >>> dst = {'new.weight': (8,), 'blk.0.weight': (4,), 'blk.1.weight': (5,),
        ...        'blk.2.weight': (6,), 'blk.3.weight': (8,)}
        >>> strayed = {'b.0.weight': 'blk.0.weight', 'b.1.weight': 'blk.1.weight',
        ...            'b.2.weight': 'blk.2.weight', 'b.3.weight': 'new.weight'}
        >>> sorted(strayed_pairs(strayed, src, dst))
        ['b.3.weight']
    """
    out = _strayed_one_way(mapping, src, dst, sep)
    inverse = {d: s for s, d in mapping.items()}
    out.update(inverse[d] for d in _strayed_one_way(inverse, dst, src, sep))
    return out
