"""
When is a list position evidence? Only where the two lists agree up to it.

The name modes (``strict`` to ``embedding``) read a key's components as
names, and in an ``nn.Sequential`` or ``nn.ModuleList`` a name is a position:
``features.8`` is the ninth item. A position names the same layer in two
lists only if the lists hold their layers at the same positions up to it.
Insert one layer and every later position names another layer: torchvision's
vgg11 holds its convolutions at ``features.{0, 3, 6, 8, ...}``, vgg11_bn at
``features.{0, 4, 8, 11, ...}`` with BatchNorms between, so vgg11's
``features.8`` (its fourth convolution, 256 to 256) and vgg11_bn's
``features.8`` (its third, 128 to 256) are two different layers, and so are
the two ``features.18`` although their shapes agree.

:func:`positions_disagree` finds the pairs whose keys share a position label
where the two lists holding it disagree: of the positions that hold
tensors, from the first position both lists hold (a slice ``features[4:9]``
keeps its labels) up to the label, each list holds some that the other
does not. One holding a subset of the other's is a list with items removed
in place (a pruned block, ``del model.layer3[2]``), which keeps its labels.

Where another reading pairs the items of two lists by what they hold,
:func:`witnessed_offsets` says which pairs keep the offset it found
between the lists (a slice that keeps its labels, offset 0) and which
break it (a list renumbered: ``nn.Sequential(*features[3:])`` holds the
list's item 3 as its item 0). Where two lists differ in length, the
items' own kernel shapes may show the offset: :func:`against_list_shapes`
leaves out pairs at another (an FPN that starts a level later). Where a
list is cut into parts, neither the parts' sizes, nor their numbers, nor
a part keeping the list's name say which items they hold:
:func:`across_other_cuts` leaves out the pairs between such runs that rest
on them.

Example:
    >>> from torch_liberator.listpositions import positions_disagree
    >>> vgg = ['features.0.weight', 'features.3.weight', 'features.8.weight']
    >>> vgg_bn = ['features.0.weight', 'features.1.weight', 'features.4.weight',
    ...           'features.8.weight']
    >>> sorted(positions_disagree({k: k for k in vgg if k in vgg_bn}, vgg, vgg_bn))
    ['features.8.weight']
"""
from collections import Counter
from typing import Dict, Iterable, Mapping, NamedTuple, Optional, Set, Tuple

from torch_liberator.keyorder import order_is_lost

__all__ = ['across_other_cuts', 'against_list_shapes', 'free_twin_items', 'list_items',
           'list_positions', 'positions_disagree', 'relabelled', 'witnessed_offsets']


def list_positions(keys: Iterable[str], sep: str = '.') -> Dict[str, Set[int]]:
    """
    ``{module path: the integer child labels under it that hold tensors}``.

    Example:
        >>> from torch_liberator.listpositions import list_positions
        >>> list_positions(['features.0.weight', 'features.3.bias', 'fc.weight'])
        {'features': {0, 3}}
    """
    out = {}
    seen = set()  # module paths read, with every path above them
    for key in keys:
        module = key.rpartition(sep)[0]
        while module and module not in seen:
            seen.add(module)
            parent, _, comp = module.rpartition(sep)
            if comp.isdigit():
                out.setdefault(parent, set()).add(int(comp))
            module = parent
    return out


def _agree(a: Set[int], b: Set[int], label: int) -> bool:
    lo = max(min(a), min(b))
    a = {p for p in a if lo <= p <= label}
    b = {p for p in b if lo <= p <= label}
    return a <= b or b <= a


def positions_disagree(mapping: Mapping[str, str], src_keys: Iterable[str],
                       dst_keys: Iterable[str], sep: str = '.',
                       lists: Optional[Tuple[dict, dict]] = None) -> Set[str]:
    """
    The source keys of ``mapping`` whose pair rests on a position label
    that the two lists holding it give to different layers (see the module
    docstring). Only labels shared by both keys, read from the tensor name
    back to the first components that differ, are looked at: a position
    that a list cut in parts renumbered is not a name the pair relies on.

    Args:
        mapping: source key -> destination key.
        src_keys, dst_keys: every key of each side.
        sep: separator between path components.
        lists: the two sides' :func:`list_positions`, when the caller has
            them already (they are read from the keys otherwise).

    Example:
        >>> from torch_liberator.listpositions import positions_disagree
        >>> src = ['features.0.weight', 'features.2.weight', 'features.5.weight']
        >>> # a slice keeps its labels: features[2:6] holds 2 and 5 as the list does
        >>> dst = ['slice.2.weight', 'slice.5.weight']
        >>> positions_disagree({'features.2.weight': 'slice.2.weight',
        ...                     'features.5.weight': 'slice.5.weight'}, src, dst)
        set()
    """
    src_lists, dst_lists = lists or (None, None)
    verdicts = {}
    out = set()
    by_modules = {}  # the verdict reads the module paths only
    for s, d in mapping.items():
        modules = (s.rpartition(sep)[0], d.rpartition(sep)[0])
        wrong = by_modules.get(modules)
        if wrong is not None:
            if wrong:
                out.add(s)
            continue
        by_modules[modules] = False
        path_a, path_b = modules
        if not any(c.isdigit() for c in path_a.split(sep)):
            continue
        if src_lists is None:
            src_lists, dst_lists = list_positions(src_keys, sep), list_positions(dst_keys, sep)
        while path_a and path_b:  # the module components, from the last up
            path_a, _, x = path_a.rpartition(sep)
            path_b, _, y = path_b.rpartition(sep)
            if x != y:
                break
            if not x.isdigit():
                continue
            lists_at = (path_a, path_b, x)
            agree = verdicts.get(lists_at)
            if agree is None:  # one verdict per pair of lists and label
                held_a, held_b = src_lists.get(lists_at[0]), dst_lists.get(lists_at[1])
                agree = verdicts[lists_at] = (not (held_a and held_b) or held_a == held_b
                                              or _agree(held_a, held_b, int(x)))
            if not agree:
                out.add(s)
                by_modules[modules] = True
                break
    return out


def _list_steps(src_key: str, dst_key: str, sep: str):
    """``((source list, destination list), (source label, destination
    label), level, same below)`` for every list position of the source
    key's module path with every one of the destination key's; ``level``
    is True for two with as many list positions below them (the innermost
    lists, the ones holding those, ...), ``same below`` for two items
    holding the keys under the same path."""
    a, b = src_key.split(sep), dst_key.split(sep)
    at_a = [p for p, x in enumerate(a[:-1]) if x.isdigit()]
    at_b = [q for q, y in enumerate(b[:-1]) if y.isdigit()]
    for m, p in enumerate(at_a):
        for n, q in enumerate(at_b):
            yield ((sep.join(a[:p]), sep.join(b[:q])), (int(a[p]), int(b[q])),
                   len(at_a) - m == len(at_b) - n, a[p + 1:] == b[q + 1:])


def _level_steps(src_module: str, dst_module: str, sep: str):
    """``((source list, destination list), (source label, destination
    label))`` for the list positions of two module paths with as many list
    positions below them (the innermost lists, the ones holding those,
    ...)."""
    a, b = src_module.split(sep), dst_module.split(sep)
    at_a = [p for p, x in enumerate(a) if x.isdigit()]
    at_b = [q for q, y in enumerate(b) if y.isdigit()]
    for p, q in zip(reversed(at_a), reversed(at_b)):
        yield (sep.join(a[:p]), sep.join(b[:q])), (int(a[p]), int(b[q]))


def relabelled(mapping: Mapping[str, str], lists: Tuple[dict, dict], sep: str = '.') -> bool:
    """
    Whether a pair of ``mapping`` joins two lists, as deep in lists, whose
    items hold tensors at other labels (``lists``: both sides'
    :func:`list_positions`): only then can a witness find an offset
    between them (:func:`witnessed_offsets`).

    Example:
        >>> from torch_liberator.listpositions import list_positions, relabelled
        >>> src, dst = ['f.3.w', 'f.4.w'], ['g.0.w', 'g.1.w']
        >>> lists = (list_positions(src), list_positions(dst))
        >>> relabelled({'f.3.w': 'g.0.w'}, lists), relabelled({}, lists)
        (True, False)
    """
    src_lists, dst_lists = lists
    modules = {(s.rpartition(sep)[0], d.rpartition(sep)[0]) for s, d in mapping.items()}
    return any(src_lists.get(a) != dst_lists.get(b)
               for src_module, dst_module in modules
               for (a, b), _ in _level_steps(src_module, dst_module, sep))


def witnessed_offsets(mapping: Mapping[str, str], witness: Mapping[str, str],
                      sep: str = '.') -> Dict[str, bool]:
    """
    What ``witness`` says of the pairs of ``mapping`` it did not make,
    where they join two lists whose every pair in the witness has one
    offset (item ``i`` to item ``i + k``), for two or more items of the
    source list, or for one where the two lists lie as deep in lists (a
    list and one nested in the other's item pair one item by chance):
    ``{source key: False}`` for a pair at another offset, refuted whatever
    else it keeps to, ``{source key: True}`` for one at that offset
    between keys of the same path below the two items (the offset and the
    names lead from one key to the other). Pairs of neither kind are left
    out.

    A list renumbered (a slice ``features[3:]`` rebuilt as a new
    ``nn.Sequential``) gives its items the labels of other items of the
    model's list, and the same key on both sides then names two layers: a
    witness that pairs items by what they hold (the structure mode) sees
    the shift. A slice that keeps its labels (``features[4:9]``) keeps
    offset 0, and a pair by those labels keeps it too.

    Args:
        mapping: source key -> destination key, the pairs to check.
        witness: source key -> destination key, another reading.
        sep: separator between path components.

    Example:
        >>> from torch_liberator.listpositions import witnessed_offsets
        >>> witness = {'4.weight': '1.weight', '5.fc.weight': '2.fc.weight'}
        >>> witnessed_offsets({'3.weight': '3.weight', '6.weight': '3.weight',
        ...                    '5.bn.weight': '2.fc.weight', '4.weight': '1.weight',
        ...                    'head.weight': 'fc.weight'}, witness)
        {'3.weight': False, '6.weight': True}
    """
    offsets = {}
    for s, d in witness.items():
        for lists, (i, j), level, _ in _list_steps(s, d, sep):
            seen = offsets.setdefault(lists, [set(), set(), False])
            seen[0].add(j - i)
            seen[1].add(i)
            seen[2] = seen[2] or level
    verdicts = {}
    for s, d in mapping.items():
        if witness.get(s) == d:
            continue
        kept = refuted = False
        for lists, (i, j), _, same in _list_steps(s, d, sep):
            shifts, items, level = offsets.get(lists, ((), (), False))
            if len(shifts) == 1 and (len(items) > 1 or level):
                refuted = refuted or j - i not in shifts
                kept = kept or (j - i in shifts and same)
        if refuted or kept:
            verdicts[s] = not refuted
    return verdicts


def _shapes_offset(mine: Dict[int, tuple], theirs: Dict[int, tuple]) -> Optional[int]:
    """The one offset at which the items that hold what no other item of
    their list holds, two or more, find their like in the other list;
    None if there is no such one."""
    def unique(items):
        seen = {}
        for label, held in items.items():
            seen.setdefault(held, []).append(label)
        return {held: labels[0] for held, labels in seen.items() if len(labels) == 1}

    there = unique(theirs)
    shifts = [there[held] - label for held, label in unique(mine).items() if held in there]
    if len(shifts) > 1 and len(set(shifts)) == 1:
        return shifts[0]
    return _contained_shift(mine, theirs)


def _contained_shift(mine: Dict[int, tuple], theirs: Dict[int, tuple]) -> Optional[int]:
    """The one offset at which every item of the shorter list finds its
    like in the longer one, item after item (a stage of one odd block and
    five alike ones, against a list of the five alike: they are its last
    five); None if no offset, or more than one, fits, or the shorter list
    holds fewer than two items with kernels (items without, a norm after a
    convolution, say nothing)."""
    mine, theirs = ({label: held for label, held in items.items() if held}
                    for items in (mine, theirs))
    short, long = (mine, theirs) if len(mine) <= len(theirs) else (theirs, mine)
    if len(short) < 2:
        return None
    shifts = range(min(long) - min(short), max(long) - max(short) + 1)
    fits = [k for k in shifts
            if all(long.get(label + k) == held for label, held in short.items())]
    if len(fits) != 1 or len(shifts) < 2:
        return None  # (one offset alone was possible: that it fits says nothing)
    return fits[0] if short is mine else -fits[0]


def against_list_shapes(mapping: Mapping[str, str], src: Mapping, dst: Mapping,
                        sep: str = '.', lists: Optional[Tuple[dict, dict]] = None,
                        items: Optional[Tuple[dict, dict]] = None) -> Set[str]:
    """
    The source keys of ``mapping`` between two lists of other lengths,
    paired at another offset (item ``i`` to item ``i + k``) than the one
    the lists' items show by their kernel shapes (two or more items whose
    kernels no other item of their list has, found in the other list at
    one offset; or the one offset of the shorter list's items, each by
    kernels, in the longer: a resnet50's ``layer3`` against its last five
    blocks, cut off as a list of their own, sits at offset 1, where the
    block with the shortcut is not). A list of alike items (one kernel
    shape throughout, so nothing in them says which is which) is read by a
    sibling list of as many items on each side, whose items differ. An FPN holds its
    ``inner_blocks`` (one per level, of the level's input width) beside its
    ``layer_blocks`` (all alike): retinanet's FPN starts at the level whose
    input is 512 wide, fasterrcnn's one level earlier, so retinanet's
    ``inner_blocks.0`` is fasterrcnn's ``inner_blocks.1`` (not the
    namesake, 256 wide, into which the name modes shoved it), and its
    ``layer_blocks.0``, which smooths that level, is not fasterrcnn's
    ``layer_blocks.0``. The pairs are left out, not moved.

    Args:
        mapping: source key -> destination key.
        src, dst: ``{key: shape}`` of each side.
        sep: separator between path components.
        lists: the two sides' :func:`list_positions`, when the caller has
            them already (they are read from the keys otherwise).
        items: the two sides' :func:`list_items`, likewise.

    Example:
        >>> from torch_liberator.listpositions import against_list_shapes
        >>> src = {'inner.0.w': (4, 8), 'inner.1.w': (4, 16), 'out.0.w': (4, 4), 'out.1.w': (4, 4)}
        >>> dst = {'inner.0.w': (4, 2), 'inner.1.w': (4, 8), 'inner.2.w': (4, 16),
        ...        'out.0.w': (4, 4), 'out.1.w': (4, 4), 'out.2.w': (4, 4)}
        >>> sorted(against_list_shapes({'out.0.w': 'out.0.w', 'out.1.w': 'out.1.w'}, src, dst))
        ['out.0.w', 'out.1.w']
        >>> against_list_shapes({'out.0.w': 'out.1.w', 'out.1.w': 'out.2.w'}, src, dst)
        set()
        >>> # the namesakes of items that differ, shoved (8 wide into 2 wide)
        >>> shoved = {'inner.0.w': 'inner.0.w', 'inner.1.w': 'inner.1.w'}
        >>> sorted(against_list_shapes(shoved, src, dst))
        ['inner.0.w', 'inner.1.w']
    """
    by_modules = {}  # (source module, model module) -> source keys
    for s, d in mapping.items():
        by_modules.setdefault((s.rpartition(sep)[0], d.rpartition(sep)[0]), []).append(s)
    src_lists, dst_lists = lists or (None, None)
    offsets = {}  # (source list, model list) of other lengths -> (pairs, offsets)
    for (src_module, dst_module), keys in by_modules.items():
        for pair, (i, j) in _level_steps(src_module, dst_module, sep):
            if src_lists is None:
                src_lists, dst_lists = list_positions(src, sep), list_positions(dst, sep)
            if len(src_lists[pair[0]]) != len(dst_lists[pair[1]]):
                found = offsets.setdefault(pair, ([], set()))
                found[0].extend((s, j - i) for s in keys)
                found[1].add(j - i)
    out = set()
    if offsets:
        held = items or (list_items(src, sep), list_items(dst, sep))
    for (a, b), (pairs, seen) in offsets.items():
        mine, theirs = held[0].get(a, {}), held[1].get(b, {})
        if len(set(mine.values())) != 1 or set(mine.values()) != set(theirs.values()):
            # items that differ say which is which themselves
            shift = _shapes_offset(mine, theirs)
            if shift is not None and seen != {shift}:
                out.update(s for s, k in pairs if k != shift)
            continue
        parent_a, parent_b = a.rpartition(sep)[0], b.rpartition(sep)[0]
        shifts = set()
        for other_a, held_a in src_lists.items():
            if other_a == a or other_a.rpartition(sep)[0] != parent_a or len(held_a) != len(mine):
                continue
            for other_b, held_b in dst_lists.items():
                if (other_b != b and other_b.rpartition(sep)[0] == parent_b
                        and len(held_b) == len(theirs)):
                    shift = _shapes_offset(held[0].get(other_a, {}), held[1].get(other_b, {}))
                    if shift is not None:
                        shifts.add(shift)
        if len(shifts) == 1 and seen != shifts:
            (shift,) = shifts
            out.update(s for s, k in pairs if k != shift)
    return out


def free_twin_items(mapping: Mapping[str, str], src: Mapping, dst: Mapping,
                    sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` paired into an item of a list (or out
    of one) that has a twin in its list, an item holding the same kernel
    shapes, into which (or out of which) nothing is paired, where the pairs
    could move into it without losing one: a twin between the list's pairs
    (block 2 taken while block 1 is empty and block 0 taken), or beyond
    them while the item on the other side has such a twin too (the whole
    run could shift). A twin beyond the pairs of a list whose partner list
    is full is no alternative: a mixer's eight blocks cut into a first part
    of one and a second of seven fill the seven whatever the first did.
    A pair whose other key
    holds the same label as many levels from its end (``blocks.3.attn.qkv``
    and ``features.5.3.attn.qkv``; ``layer1.1.conv1`` in resnet18 and
    resnet34) is kept: the name modes read that as the item's name too.

    HF's Swin-T puts 6 blocks in its third stage, torchvision's Swin-S 18,
    all of one shape: an alignment in registration order placed the MLP
    of HF's block 5 in torchvision's block 17 (the last before the
    downsampling, as HF's block 5 is), where blocks 5 to 16 fit as well.

    Args:
        mapping: source key -> destination key.
        src, dst: ``{key: shape}`` of each side.
        sep: separator between path components.

    Returns:
        Set[str]: the source keys to leave out.

    Example:
        >>> from torch_liberator.listpositions import free_twin_items
        >>> src = {f'blocks.{i}.fc.weight': (4, 4) for i in range(2)}
        >>> dst = {f'layers.{i}.lin.weight': (4, 4) for i in range(3)}
        >>> sorted(free_twin_items({'blocks.1.fc.weight': 'layers.2.lin.weight'}, src, dst))
        ['blocks.1.fc.weight']
        >>> # the same label as deep: block 1 is layer 1 by its name
        >>> free_twin_items({'blocks.1.fc.weight': 'layers.1.lin.weight'}, src, dst)
        set()
    """
    sides = (src, dst)
    modules = {}  # (source module, model module) -> source keys: verdicts read the paths
    for s, d in mapping.items():
        modules.setdefault((s.rpartition(sep)[0], d.rpartition(sep)[0]), []).append(s)
    used = (set(), set())  # per side: the (list, label) items that something is paired in
    for pair in modules:
        for side in (0, 1):
            comps = pair[side].split(sep)
            for n in range(len(comps)):
                if comps[n].isdigit():
                    used[side].add((sep.join(comps[:n]), int(comps[n])))
    span = ({}, {})  # per side: list path -> the lowest and highest label holding a pair
    for side in (0, 1):
        for path, label in used[side]:
            lo, hi = span[side].get(path, (label, label))
            span[side][path] = (min(lo, label), max(hi, label))
    empty = [None, None]  # per side: list path -> kernels -> the labels of its empty items
    items = [None, None]  # per side: list path -> label -> the item's kernels
    verdicts = {}  # (side, list, label) -> 'gap', 'edge' or None
    out = set()
    for pair, keys in modules.items():
        split = (pair[0].split(sep), pair[1].split(sep))
        found = [set(), set()]
        for side in (0, 1):
            comps, other = split[side], split[1 - side]
            for n in range(len(comps)):
                if not comps[n].isdigit():
                    continue
                below = len(comps) - n
                if len(other) >= below and other[-below] == comps[n]:
                    continue  # the same label as deep: the item's name says it
                at = (side, sep.join(comps[:n]), int(comps[n]))
                if at not in verdicts:
                    if items[side] is None:
                        items[side] = list_items(sides[side], sep)
                        empty[side] = {}
                        for path, held in items[side].items():
                            for label, kernels in held.items():
                                if (path, label) not in used[side]:
                                    empty[side].setdefault(path, {}).setdefault(
                                        kernels, []).append(label)
                    mine = items[side].get(at[1], {}).get(at[2])
                    twins = empty[side].get(at[1], {}).get(mine, ()) if mine else ()
                    lo, hi = span[side][at[1]]
                    verdicts[at] = (None if not twins else
                                    'gap' if any(lo < label < hi for label in twins) else 'edge')
                if verdicts[at]:
                    found[side].add(verdicts[at])
        # an empty twin between the list's pairs, or beyond them on both sides
        if 'gap' in found[0] | found[1] or (found[0] and found[1]):
            out.update(keys)
    return out


def list_items(shapes: Mapping, sep: str = '.') -> Dict[str, Dict[int, tuple]]:
    """
    ``{list path: {label: the item's kernel shapes (tensors of two or
    more dimensions), sorted}}`` of every list of a side, read in one pass:
    what tells an item's layers, with or without a norm or a bias beside
    them.

    Example:
        >>> from torch_liberator.listpositions import list_items
        >>> list_items({'blocks.0.fc.weight': (4, 8), 'blocks.0.norm.weight': (4,),
        ...             'blocks.1.norm.weight': (4,)})
        {'blocks': {0: ((4, 8),), 1: ()}}
    """
    found = {}
    for key, shape in shapes.items():
        comps = key.split(sep)
        kernel = shape is not None and len(shape) > 1
        for n in range(len(comps) - 1):
            if comps[n].isdigit():
                held = found.setdefault(sep.join(comps[:n]), {}).setdefault(int(comps[n]), [])
                if kernel:
                    held.append(tuple(shape))
    return {path: {label: tuple(sorted(kernels)) for label, kernels in labels.items()}
            for path, labels in found.items()}


def across_other_cuts(mapping: Mapping[str, str], src: Mapping, dst: Mapping,
                      sep: str = '.', items: Optional[Tuple[dict, dict]] = None) -> Set[str]:
    """
    The source keys of ``mapping`` paired between two runs of alike items
    (the items of equal kernel shapes that a module holds in its lists)
    where a run cut into parts (two or more lists) gives no reason for the
    pair:

    * both runs cut: the item's place in its run differs from its
      partner's, or a place is unknown (parts whose names are not numbers,
      on a side whose key order is lost,
      :func:`~torch_liberator.keyorder.order_is_lost`). A stage of four
      alike blocks cut into parts of 1, 1 and 2 whose names a safetensors
      file sorts, the two-block part first, against a model's cut 1, 2, 1:
      every tree mode paired the two-block parts, blocks 2 and 3 into
      blocks 1 and 2.
    * one run cut, in an order lost, into parts that hold nothing but its
      items, against a list of as many items: neither the parts' numbers
      nor the sorted listing say where they go (a stage cut in halves,
      sorted, the second half first: the name modes paired it with the
      model's first two blocks). A part that holds another layer too is
      placed by it (a VGG cut in slices); in registration order the
      order places it, unless a part named like the other side's list
      disagrees (below).
    * one name on both sides, in runs cut otherwise (one side only, or
      into other parts): the pair keeps its place in the run and its
      number, or the item's kernels place the two lists at its offset
      (:func:`against_list_shapes`: a stage's block with the shortcut is
      its first), or show that the numbers cannot be the same items (the
      place decides); otherwise it is left out, and so it is where a place
      is unknown. A deit's ``blocks[:4]`` moved under ``early``, registered
      first, and ``blocks[4:]`` numbered from 0 again: every tree mode
      paired ``blocks.i`` with ``blocks.i``, four blocks off (96 wrong;
      0.2.1 too). The mirror, ``blocks[:4]`` kept under the name and the
      rest registered first, holds the same keys: the name was right
      there, by luck, and is left out too.
    * one side cut, in registration order, beside a part named like the
      other side's list whose place the name contradicts, with no odd item
      to place that part, or the pair's own lists: the other parts hold
      the rest, but which rest, the head or the tail, nothing says
      (``blocks_head = blocks[:8]`` registered first: every tree mode
      filled it with blocks 4 to 11, 96 wrong).

    Sizes of other runs are not one run (two heads' towers of one module,
    four and four, against a model's tower of four). Runs cut alike on both
    sides (the same parts, registered in another order) are the names' to
    decide.

    Args:
        mapping: source key -> destination key.
        src, dst: ``{key: shape}`` of each side, in their listing order.
        sep: separator between path components.
        items: the two sides' :func:`list_items`, when the caller has them
            already (they are read from the keys otherwise).

    Returns:
        Set[str]: the source keys to leave out.

    Example:
        >>> from torch_liberator.listpositions import across_other_cuts
        >>> def stage(cut):
        ...     return {f'{part}.{i}.fc.weight': (4, 4) for part, n in cut for i in range(n)}
        >>> src = stage([('a', 2), ('b', 1), ('c', 1)])  # blocks 0-1, 2, 3
        >>> dst = stage([('x', 1), ('y', 2), ('z', 1)])  # blocks 0, 1-2, 3
        >>> mapping = {'a.0.fc.weight': 'y.0.fc.weight', 'a.1.fc.weight': 'y.1.fc.weight'}
        >>> sorted(across_other_cuts(mapping, src, dst))
        ['a.0.fc.weight', 'a.1.fc.weight']
        >>> # in the order of the run: block 1 is block 1, block 3 block 3
        >>> across_other_cuts({'a.1.fc.weight': 'y.0.fc.weight',
        ...                    'c.0.fc.weight': 'z.0.fc.weight'}, src, dst)
        set()
    """
    items = items or [list_items(side, sep) for side in (src, dst)]
    runs = [_runs(held, side, sep) for held, side in zip(items, (src, dst))]
    if not any(at.cut for side in runs for at in side.values()):
        return set()
    out = set()
    verdicts = {}  # (source module, model module) -> leave out
    for s, d in mapping.items():
        pair = (s.rpartition(sep)[0], d.rpartition(sep)[0])
        if pair not in verdicts:
            verdicts[pair] = _other_cut(pair, runs, items, sep)
        if verdicts[pair]:
            out.add(s)
    return out


def _other_cut(pair, runs, items, sep):
    """Whether an item above the source module and one above the model
    module, of one kernel signature, are paired against their runs' cuts
    (:func:`across_other_cuts`)."""
    places = []  # per side: kernels -> (list path, item label, the _RunItem) above the module
    for side in (0, 1):
        comps = pair[side].split(sep)
        places.append({})
        for n in range(1, len(comps)):
            at = runs[side].get((sep.join(comps[:n]), comps[n]))
            if at is not None:
                places[side][at.kernels] = (sep.join(comps[:n]), int(comps[n]), at)
    for kernels, (path, label, mine) in places[0].items():
        if kernels not in places[1]:
            continue
        their_path, their_label, theirs = places[1][kernels]
        if mine.label == theirs.label:
            if mine.parts == theirs.parts or mine.length != theirs.length:
                continue  # cut alike, or not one run
            held, whole = items[0][path], items[1][their_path]
            by_place = None not in (mine.place, theirs.place) and mine.place == theirs.place
            if by_place and label == their_label:
                continue  # the name and the order agree
            if _contained_shift(held, whole) == their_label - label:
                continue  # the items' kernels place the two lists so
            if by_place and _numbers_refuted(held, whole):
                continue  # the lists' numbers cannot be the same items: the order decides
            return True  # one name, in runs cut otherwise: the name may be either part's
        if mine.cut and theirs.cut:  # both cut: the places decide
            if mine.place is None or theirs.place is None or mine.place != theirs.place:
                return True
        elif mine.length != theirs.length:
            continue
        elif any(at.place is None and at.alike for at in (mine, theirs)):
            return True  # one cut in parts of alike items only, in an order lost
        elif None not in (mine.place, theirs.place) and (
                _namesake_unplaced(0, path, their_path, kernels, runs, items, sep) if mine.cut
                else _namesake_unplaced(1, their_path, path, kernels, runs, items, sep)) and (
                _contained_shift(items[0][path], items[1][their_path]) != their_label - label):
            return True  # beside a part named like the list, whose place is a guess
    return False


def _namesake_unplaced(side, path, their_path, kernels, runs, items, sep):
    """Whether the run of ``kernels`` that ``side`` cuts (the list at
    ``path`` one of its parts) holds a part named like the other side's
    list (at ``their_path``) whose items' places in the run are not those
    of their namesakes there, with no odd item to show where that part
    lies (:func:`_contained_shift`): the part may hold the run's first
    items, as its name says, or the items its place says, and the other
    parts the rest, whichever it is."""
    other = 1 - side
    parent = path.rpartition(sep)[0]
    name = their_path.rpartition(sep)[2]
    namesake = parent + sep + name if parent else name
    held = items[side].get(namesake)
    if not held:
        return False
    whole = items[other][their_path]
    for label, kernels_held in held.items():
        at = runs[side].get((namesake, str(label)))
        there = runs[other].get((their_path, str(label)))
        if (kernels_held == kernels and at is not None and there is not None
                and there.kernels == kernels and at.place != there.place):
            break  # the name and the order disagree
    else:
        return False
    return _contained_shift(held, whole) != 0 and not _numbers_refuted(held, whole)


def _numbers_refuted(mine: Dict[int, tuple], theirs: Dict[int, tuple]) -> bool:
    """Whether two lists hold items of other kernels under one number: they
    are not the same items by number (a stage's block with the shortcut
    against one of the alike blocks)."""
    return any(held and theirs.get(label) and theirs[label] != held
               for label, held in mine.items())


class _RunItem(NamedTuple):
    """An item of a run of alike items (:func:`_runs`)."""
    kernels: tuple  # the item's kernel shapes, sorted
    place: Optional[int]  # its place in the run; None where the order is lost
    label: str  # the name of the list holding it
    length: int  # how many items the run holds
    cut: bool  # whether two or more lists hold the run
    alike: bool  # whether those lists hold nothing but the run's items
    parts: tuple  # (list name, how many of the run's items it holds) of each list, sorted


def _runs(items: Dict[str, Dict[int, tuple]], shapes: Mapping,
          sep: str) -> Dict[Tuple[str, str], _RunItem]:
    """``{(list path, item label): _RunItem}`` for the items of every run
    of alike items (of one kernel signature) that a module holds in its
    lists (``items``: the side's :func:`list_items`); a place counts the
    run's lists in the side's order, by number where they are numbered."""
    runs = {}  # (parent module, kernels) -> list paths holding such items, in order
    for path, held in items.items():
        # (the root as a list has no parent: its items' lists are its children)
        parent = path.rpartition(sep)[0] if path else None
        for kernels in set(held.values()):
            if kernels:
                runs.setdefault((parent, kernels), []).append(path)
    lost = None
    out = {}
    for (parent, kernels), paths in runs.items():
        cut, known = len(paths) > 1, True
        if cut and all(path.rpartition(sep)[2].isdigit() for path in paths):
            paths = sorted(paths, key=lambda p: int(p.rpartition(sep)[2]))
        elif cut:
            if lost is None:
                lost = order_is_lost(shapes, sep=sep)
            known = not lost
        found = [(path, label) for path in paths for label in sorted(items[path])
                 if items[path][label] == kernels]
        alike = cut and all(set(items[path].values()) == {kernels} for path in paths)
        parts = tuple(sorted(Counter(path.rpartition(sep)[2] for path, _ in found).items()))
        for place, (path, label) in enumerate(found):
            out[(path, str(label))] = _RunItem(kernels, place if known else None,
                                               path.rpartition(sep)[2], len(found), cut, alike,
                                               parts)
    return out
