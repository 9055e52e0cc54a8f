"""
Modules the structure alignment left open, placed by the pairs around them.

The alignment leaves a module of the checkpoint out when a module of the
same shapes could take its place and the order of the two networks
disagrees: HF's ResNet registers a bottleneck's ``shortcut`` before its
``layer`` list, torchvision's ``downsample`` after ``conv3``, and in the
first block of ``layer1`` the two are of one shape (``[256, 64, 1, 1]``);
timm's RegNet registers ``downsample`` after ``conv1``, torchvision's
``proj`` before ``f.a``, and in a stage's first block the two are of one
shape. The pairs around such a module still say where it goes. Two rules,
in order, each inside a *region* (a module of the checkpoint and a module
of the model that the mapping makes one: every pair under the one goes
under the other and back; neither is the root), holding no more open
tensors than paired ones on either side (a mobilenet_v2's stem and
classifier, paired by name with an efficientnet_b0's, make no region of
the two networks whose every open block could be placed by shape); a
third for a block left out whole, and a fourth for the rest of a list cut
in two:

1. **By analogy** (:func:`fill_open_modules`, first pass): an open module
   of the checkpoint goes to the one open module of the model, below the
   lowest model module of its region, with its tensors' names and shapes
   and at the path below it where the mapping puts the module of its own
   path in the other regions named alike, digits aside (``s2.b1`` and
   ``block2.block2-0`` for ``s1.b1`` and ``block1.block1-0``): the
   ``layer.2`` of every other bottleneck went to its ``conv3``, the
   ``shortcut`` of every other first block to its ``downsample``. Only
   the regions that put every module the region pairs too where the
   region puts it count, and only from a module of the open one's kind
   (its tensors' names and ranks); below a list position, only those that
   pair every module the region pairs (the same position in a list of
   other items is another module; a name, ``branch1x1``, is one). timm's
   depthwise-separable first block of an efficientnet sends its
   ``conv_pw`` to HF's ``projection``, an inverted residual to the
   ``expansion``, so the first block's ``bn1`` (the depthwise norm) is no
   analogy for theirs (the expansion norm, of the depthwise norm's
   shape).
2. **The last of its shapes** (second pass): an open module of the
   checkpoint whose names and shapes no other open module of its region
   has, on either side, goes to that one module of the model, unless an
   open module of another region fits there as well (one whose region,
   more open than paired, places nothing itself), or a
   list item of the model around that place holds pairs from a list item
   of the checkpoint that does not hold this one (the RegNet's
   ``downsample``, once ``conv1`` went to ``f.a`` by analogy; not HF's
   Swin V2 final ``swinv2.layernorm`` into ``features.7.0.norm1``, a norm
   left open in a block whose pairs all came from
   ``swinv2.encoder.layers.3.blocks.0``).
   A region more open than paired serves too when its open modules are
   the same on both sides, names and shapes, as many of each: then they
   are one set of modules, and each of a kind of its own has one place
   (with the keys sorted by name the alignment places only what has a
   shape of its own; a renamed resnet18, keys sorted, gets 24 of its 122
   tensors instead of 9).

3. **A tied block** (:func:`fill_open_modules` with ``ambiguous``, the
   alignment's ties): a module of the checkpoint none of whose keys is
   paired, whose ambiguous keys all have their candidates below one
   module of the model none of whose keys is paired either, is that
   module when every module below it goes, by analogy as in rule 1, to
   the one open module of its names and shapes below the other, one to
   one and all of them, and no key outside it has a candidate there (a
   surplus block of the checkpoint tied with the block that fills the
   same place). In timm's regnetx_004 the first stage's one
   block has ``conv1``, ``conv3`` and ``downsample`` of one shape, and
   the alignment left all of it out, every candidate in torchvision's
   ``block1-0``; the other stages' first blocks place it. Candidates in
   two blocks, or a module without an analogy, place nothing.
4. **The rest of a list** (:func:`fill_open_modules`, last): a list of
   the checkpoint whose first ``k`` items went, item by item and number by
   number, to a list of the model of ``k`` items, and whose other items
   are all open, goes on in the one list beside that one named after it
   (``layer3_tail`` beside ``layer3``, ``blocks_b`` beside ``blocks``) of
   exactly as many items, all open: item ``k + j`` into its item ``j``,
   each key at the path the first items' pairs give, shapes equal, every
   key of both placed, or nothing. A model that keeps a list's head under
   its name and registers the rest first (``self.layer3_tail =
   layer3[2:]`` before ``self.layer3 = layer3[:2]``) gives the order no
   place for the rest, and its items are all alike.

Only a module none of whose tensors is mapped counts as open, on either
side; a module of the model must take a module of the checkpoint whole,
and nothing is placed that two candidates claim. The structure solver
drops a placed module whose path first differs from its place's in two
names each of which the other side holds there (a densenet169's block-4
``denselayer1`` by analogy, digits aside, into a densenet121's
``denselayer5`` beside its ``denselayer1``:
:meth:`~torch_liberator.alignment.StructureSides.namesakes_crossed`); the
mode's checks then judge these pairs as any other.

Example:
    >>> from torch_liberator.keygroups import KeyGroups
    >>> from torch_liberator.openmodules import fill_open_modules
    >>> # a block: a shortcut and three layers, the middle one of the shortcut's shape
    >>> def block(side, i, n, shortcut, layers):
    ...     shapes = [(n, 4), (4, 4), (n, 4), (4, n)]
    ...     names = [shortcut, *layers]
    ...     return {f'{side}.{i}.{name}.w': shape for name, shape in zip(names, shapes)}
    >>> src = {**block('b', 0, 8, 'short', ['layer.0', 'layer.1', 'layer.2']),
    ...        **block('b', 1, 9, 'short', ['layer.0', 'layer.1', 'layer.2'])}
    >>> dst = {**block('l', 0, 8, 'down', ['c1', 'c2', 'c3']),
    ...        **block('l', 1, 9, 'down', ['c1', 'c2', 'c3'])}
    >>> mapping = {'b.0.layer.0.w': 'l.0.c1.w', 'b.0.layer.2.w': 'l.0.c3.w',
    ...            'b.1.short.w': 'l.1.down.w', 'b.1.layer.0.w': 'l.1.c1.w',
    ...            'b.1.layer.1.w': 'l.1.c2.w', 'b.1.layer.2.w': 'l.1.c3.w'}
    >>> # b.0.short and b.0.layer.1 are both (8, 4): block 1 tells them apart
    >>> fill_open_modules(KeyGroups(src), KeyGroups(dst), mapping, '.')
    {'b.0.short.w': 'l.0.down.w', 'b.0.layer.1.w': 'l.0.c2.w'}
"""
import re
from collections import Counter
from typing import Dict, List, Mapping, Optional, Tuple

from torch_liberator.keygroups import KeyGroups, common_module, enclosing_modules, key_span

__all__ = ['fill_open_modules']

_DIGITS = re.compile('[0-9]+')


def _open_groups(groups: KeyGroups, used) -> Dict[str, Tuple[str, ...]]:
    """Module path -> its keys, for the modules (one group each) of which no key is in ``used``."""
    found = {path: keys for path, keys in zip(groups.path, groups.keys)
             if path and keys[0] not in used and not any(key in used for key in keys)}
    if found:
        seen = Counter(path for path in groups.path if path in found)
        found = {path: keys for path, keys in found.items() if seen[path] == 1}
    return found


def _signatures(groups: KeyGroups, paths) -> Dict[str, tuple]:
    index = {path: i for i, path in enumerate(groups.path) if path in paths}
    return {path: tuple(sorted(zip(groups.names[i], groups.squeezed[i])))
            for path, i in index.items()}


def _places_by_analogy(src: KeyGroups, agreeing: Dict[str, set], module: str, block: str,
                       sep: str) -> set:
    """The paths below the model's module of a region (``block`` its
    checkpoint's) where the regions of :func:`_agreeing` put the module at
    ``module``'s path below theirs, when that module is of its kind
    (:func:`_kinds`): the items of a list may differ, and a norm at one's
    ``2`` says nothing of a conv at another's. Below a list position, only
    a region that pairs every path the region pairs counts: the same
    position in a list of other items is another module (a name, such as
    an inception block's ``branch1x1``, is one in any block)."""
    below = module[len(block) + len(sep):]
    listed = any(part.isdigit() for part in below.split(sep))
    analogous = [(target, other) for target, other, whole in agreeing.get(below, ())
                 if whole or not listed]
    kinds = _kinds(src, {other + sep + below for _, other in analogous} | {module})
    return {target for target, other in analogous
            if kinds.get(other + sep + below) == kinds[module]}


def _kinds(groups: KeyGroups, paths) -> Dict[str, tuple]:
    """Module path -> its tensors' names and ranks (size-1 dimensions
    aside), for the modules (one group each) of ``paths``."""
    index = {path: i for i, path in enumerate(groups.path) if path in paths}
    return {path: tuple(sorted((name, len(shape)) for name, shape
                               in zip(groups.names[i], groups.squeezed[i])))
            for path, i in index.items()}


class _Under:
    """How many of some keys lie under a module: a sorted list and bisection."""

    def __init__(self, keys, sep: str):
        self.keys = sorted(keys)
        self.sep = sep

    def span(self, module: str) -> Tuple[int, int]:
        return key_span(self.keys, module, self.sep)

    def count(self, module: str) -> int:
        lo, hi = self.span(module)
        return hi - lo


class _Regions:
    """The region of each module of the checkpoint under a mapping."""

    def __init__(self, mapping: Mapping[str, str], sep: str):
        self.mapping = mapping
        self.sep = sep
        self.src = _Under(mapping, sep)
        self.dst = _Under(mapping.values(), sep)
        self._cache: Dict[str, Optional[Tuple[str, str]]] = {}
        self._inverse: Optional[Dict[str, str]] = None
        self._sources: Dict[str, Optional[str]] = {}

    def source_of(self, module: str) -> Optional[str]:
        """The checkpoint module that holds exactly the sources of the pairs
        below the model's ``module``, or None when it holds none."""
        if module not in self._sources:
            if self._inverse is None:
                self._inverse = {d: s for s, d in self.mapping.items()}
            lo, hi = self.dst.span(module)
            self._sources[module] = None if hi == lo else common_module(
                (self._inverse[k] for k in self.dst.keys[lo:hi]), self.sep)
        return self._sources[module]

    def of(self, module: str) -> Optional[Tuple[str, str, str, int]]:
        """``(checkpoint module, model module, widened, pairs)``: the
        nearest enclosing module holding pairs, the model module that holds
        exactly those pairs (the lowest), the same widened while its parent
        holds no others, and how many pairs they are; None when either
        module is the root or the pairs are not one to one."""
        sep = self.sep
        for up in enclosing_modules(module, sep):
            lo, hi = self.src.span(up)
            if hi == lo:
                continue
            if up not in self._cache:
                place = common_module((self.mapping[k] for k in self.src.keys[lo:hi]), sep)
                found = None
                if place and self.dst.count(place) == hi - lo:
                    wide = place
                    while sep in wide:
                        parent = wide.rpartition(sep)[0]
                        if self.dst.count(parent) != hi - lo:
                            break
                        wide = parent
                    found = (place, wide)
                self._cache[up] = found
            found = self._cache[up]
            return None if found is None else (up, *found, hi - lo)
        return None


def _analogies(mapping: Mapping[str, str], region: Tuple[str, str], sep: str
               ) -> Dict[Tuple[str, str], Dict[str, set]]:
    """Where the mapping puts, in every pair of modules named as the
    region's two are, digits aside (``s2.b1`` and ``block2.block2-0`` for
    ``s1.b1`` and ``block1.block1-0``), each module below the checkpoint's:
    the pair of modules -> its path below the one -> the paths below the
    other."""
    mine, theirs = region
    depth = (mine.count(sep) + 1, theirs.count(sep) + 1)
    names = (_DIGITS.sub('', mine), _DIGITS.sub('', theirs))
    out: Dict[Tuple[str, str], Dict[str, set]] = {}
    for s, d in mapping.items():
        a, b = s.split(sep), d.split(sep)
        if len(a) > depth[0] + 1 and len(b) > depth[1] + 1:
            pair = (sep.join(a[:depth[0]]), sep.join(b[:depth[1]]))
            if _DIGITS.sub('', pair[0]) == names[0] and _DIGITS.sub('', pair[1]) == names[1]:
                out.setdefault(pair, {}).setdefault(sep.join(a[depth[0]:-1]), set()).add(
                    sep.join(b[depth[1]:-1]))
    return out


def _agreeing(analogies: Dict[Tuple[str, str], Dict[str, set]], region: Tuple[str, str]
              ) -> Dict[str, set]:
    """The places of :func:`_analogies` from the pairs of modules that
    put every module the region pairs too where the region puts it: timm's
    depthwise-separable ``blocks.0.0`` sends its ``conv_pw`` to the
    projection where an inverted residual ``blocks.1.0`` sends its own to
    the expansion, so its ``bn1`` says nothing of theirs. Each place comes
    with the checkpoint module that went there and whether that pair of
    modules pairs every path the region pairs."""
    own = analogies.get(region, {})
    out: Dict[str, set] = {}
    for (module, _), places in analogies.items():
        whole = own.keys() <= places.keys()  # it pairs every path the region pairs
        if all(own.get(path, targets) == targets for path, targets in places.items()):
            for path, targets in places.items():
                out.setdefault(path, set()).update((target, module, whole)
                                                   for target in targets)
    return out


def _one_pass(src: KeyGroups, dst: KeyGroups, open_src, open_dst, regions, sep, by_analogy):
    by_region: Dict[Tuple[str, str, str, int], List[str]] = {}
    for module in open_src:
        region = regions.of(module)
        if region is not None:
            by_region.setdefault(region, []).append(module)
    if not by_region:
        return {}
    dst_under: Dict[str, List[str]] = {}
    places = {place for _, lowest, wide, _ in by_region for place in (lowest, wide)}
    for module in open_dst:
        for up in enclosing_modules(module, sep):
            if up in places:
                dst_under.setdefault(up, []).append(module)
    mine = _signatures(src, {m for modules in by_region.values() for m in modules})
    theirs = _signatures(dst, {m for modules in dst_under.values() for m in modules})
    # by the region's names, digits aside; and those that agree with a region
    analogies: Dict[Tuple[str, str], Dict[Tuple[str, str], Dict[str, set]]] = {}
    agreeing: Dict[Tuple[str, str], Dict[str, set]] = {}
    claims: Dict[str, List[str]] = {}  # model module -> checkpoint modules claiming it
    for (module_of, lowest, wide, count), modules in by_region.items():
        if (sum(len(open_src[m]) for m in modules) > count
                or sum(len(open_dst[m]) for m in dst_under.get(wide, [])) > count) and (
                    by_analogy or Counter(mine[m] for m in modules)
                    != Counter(theirs[m] for m in dst_under.get(wide, []))):
            continue  # more open than paired, and not the same modules: no evidence
        # by analogy, below the lowest model module of the region (the same
        # for each block of a kind); the last of its shapes, in all of it
        place = lowest if by_analogy else wide
        candidates = dst_under.get(place, [])
        for module in modules:
            fits = [m for m in candidates if theirs[m] == mine[module]]
            if by_analogy:
                names = (_DIGITS.sub('', module_of), _DIGITS.sub('', place))
                if names not in analogies:
                    analogies[names] = _analogies(regions.mapping, (module_of, place), sep)
                if (module_of, place) not in agreeing:
                    agreeing[module_of, place] = _agreeing(analogies[names], (module_of, place))
                wanted = _places_by_analogy(src, agreeing[module_of, place], module,
                                            module_of, sep)
                fits = [m for m in fits if m[len(place) + len(sep):] in wanted]
            elif sum(1 for other in modules if mine[other] == mine[module]) != 1:
                continue
            else:  # not into a list item of the model that another module's pairs fill
                fits = [m for m in fits if not _claimed(m, module, lowest, regions, sep)]
            if len(fits) == 1:
                claims.setdefault(fits[0], []).append(module)
    if not by_analogy:
        # a place that an open module of another region fits as well is
        # no module's last of its shapes (that region may hold more open
        # than paired, and claim nothing itself)
        for (_, _, wide, _), modules in by_region.items():
            for module in modules:
                for m in dst_under.get(wide, []):
                    if theirs[m] == mine[module] and m in claims and module not in claims[m]:
                        claims[m].append(module)
    out = {}
    for place, modules in claims.items():
        if len(modules) == 1:
            names = {key.rpartition(sep)[2]: key for key in open_dst[place]}
            out.update((key, names[key.rpartition(sep)[2]]) for key in open_src[modules[0]])
    return out


def _claimed(place: str, module: str, lowest: str, regions: '_Regions', sep: str) -> bool:
    """Whether a list item of the model below ``lowest`` holds ``place`` and
    pairs whose sources fill a list item of the checkpoint that does not
    hold ``module``: that item is another block's counterpart."""
    for up in enclosing_modules(place, sep):
        if up == lowest or not up.startswith(lowest + sep):
            return False
        if up.rpartition(sep)[2].isdigit():
            source = regions.source_of(up)
            if (source and source.rpartition(sep)[2].isdigit()
                    and not module.startswith(source + sep)):
                return True
    return False


def _tied_blocks(src: KeyGroups, dst: KeyGroups, open_src, open_dst, mapping, ambiguous, sep):
    """Whole open modules of the checkpoint placed by analogy where the
    ambiguous keys below them all have their candidates below one open
    module of the model, and no other key has any there (rule 3 of the
    module docstring)."""
    candidates: Dict[str, set] = {}  # checkpoint module -> the candidates of keys below it
    claims: Dict[str, set] = {}  # model module -> the keys that have candidates below it
    for key, options in ambiguous.items():
        for up in enclosing_modules(key, sep):
            candidates.setdefault(up, set()).update(options)
        for option in options:
            for up in enclosing_modules(option, sep):
                claims.setdefault(up, set()).add(key)
    if not candidates:
        return {}
    paired_src, paired_dst = _Under(mapping, sep), _Under(mapping.values(), sep)
    every_src = {path for path in src.path if path}
    out: Dict[str, str] = {}
    tried = set()
    for module in open_src:
        for block in enclosing_modules(module, sep):
            if paired_src.count(block):
                break  # a region of pairs: the first two rules' case
            if block in tried or block not in candidates:
                continue
            tried.add(block)
            place = common_module(candidates[block], sep)
            if (not place or paired_dst.count(place)
                    or any(not key.startswith(block + sep) for key in claims[place])):
                continue  # into a module of pairs, or a tie with another block
            found = _block_by_analogy(src, dst, open_src, open_dst, every_src, mapping,
                                      (block, place), sep)
            if found and not any(key in out for key in found):
                out.update(found)
                break
    return out


def _block_by_analogy(src, dst, open_src, open_dst, every_src, mapping, region, sep):
    """Every module below the checkpoint's ``block`` to the one open module
    below the model's ``place`` of its names and shapes at the path the
    regions named alike give, one to one and all of them, or nothing."""
    block, place = region
    mine = [m for m in every_src if m.startswith(block + sep)]
    theirs = [m for m in open_dst if m.startswith(place + sep)]
    if not mine or len(mine) != len(theirs) or any(m not in open_src for m in mine):
        return {}
    analogies = _agreeing(_analogies(mapping, region, sep), region)
    signature_of = {**_signatures(src, mine), **_signatures(dst, theirs)}
    chosen = {}
    for module in mine:
        wanted = _places_by_analogy(src, analogies, module, block, sep)
        fits = [m for m in theirs if signature_of[m] == signature_of[module]
                and m[len(place) + len(sep):] in wanted]
        if len(fits) != 1:
            return {}
        chosen[module] = fits[0]
    if len(set(chosen.values())) != len(chosen):
        return {}
    out = {}
    for module, target in chosen.items():
        names = {key.rpartition(sep)[2]: key for key in open_dst[target]}
        out.update((key, names[key.rpartition(sep)[2]]) for key in open_src[module])
    return out


def _list_items(groups: KeyGroups) -> Dict[Tuple[str, ...], Dict[int, List[Tuple[str, tuple]]]]:
    """List path -> item number -> ``(key, squeezed shape)`` of every key
    below that item, for every path component that is a number."""
    out: Dict[Tuple[str, ...], Dict[int, List[Tuple[str, tuple]]]] = {}
    for comps, keys, shapes in zip(groups.comps, groups.keys, groups.squeezed):
        for depth, comp in enumerate(comps):
            if comp.isdigit() and comp == str(int(comp)):
                item = out.setdefault(comps[:depth], {}).setdefault(int(comp), [])
                item.extend(zip(keys, shapes))
    return out


def _list_tails(src: KeyGroups, dst: KeyGroups, mapping: Mapping[str, str],
                sep: str) -> Dict[str, str]:
    """The open items of the checkpoint's lists placed into the one open
    list of the model that is the rest of the list their paired items went
    to (rule 4 of the module docstring)."""
    src_lists, dst_lists = _list_items(src), _list_items(dst)
    used = set(mapping.values())
    out: Dict[str, str] = {}
    for path, items in src_lists.items():
        n = len(items)
        if n < 2 or set(items) != set(range(n)):
            continue
        paired = [i for i in range(n) if any(key in mapping for key, _ in items[i])]
        k = len(paired)
        if not 0 < k < n or paired != list(range(k)):
            continue  # (the paired items first, the rest all open)
        prefix = sep.join(path) + sep if path else ''
        found = _paired_items(items, k, mapping, prefix, sep)
        if found is None:
            continue
        place, below = found
        if not place or len(dst_lists.get(place, ())) != k:
            continue  # (the model's list holds other items: it is not the head of a cut)
        tail = _tail_of(place, n - k, dst_lists, used)
        if tail is not None:
            moved = _items_into(items, range(k, n), tail, below, prefix, sep)
            taken = set(out.values())
            if not any(key in out or target in taken for key, target in moved.items()):
                out.update(moved)
    return out


def _paired_items(items, k, mapping, prefix, sep):
    """``(list, below)`` when every key of the checkpoint's items ``0`` to
    ``k - 1`` went to the item of its number of one list of the model
    (``list``, its path components), each path below an item to one path
    below the model's (``below``); else None."""
    place, below = None, {}
    for i in range(k):
        for key, _ in items[i]:
            if key not in mapping:
                return None
            mine = key[len(prefix) + len(str(i)) + len(sep):]
            target = mapping[key].split(sep)
            cut = len(target) - mine.count(sep) - 1
            if cut < 1 or target[cut - 1] != str(i) or place not in (None, tuple(target[:cut - 1])):
                return None
            place = tuple(target[:cut - 1])
            if below.setdefault(mine, sep.join(target[cut:])) != sep.join(target[cut:]):
                return None
    return place, below


def _tail_of(place, count, dst_lists, used):
    """The one list of the model beside ``place`` (a list whose items all
    paired with the checkpoint's first ones) named after it
    (``layer3_tail`` beside ``layer3``), of ``count`` items, none of whose
    keys is used; None when there is not exactly one."""
    parent, label = place[:-1], place[-1]
    found = [path for path, items in dst_lists.items()
             if path[:-1] == parent and path != place and path[-1].startswith(label + '_')
             and set(items) == set(range(count))
             and not any(key in used for item in items.values() for key, _ in item)]
    return (found[0], dst_lists[found[0]]) if len(found) == 1 else None


def _items_into(items, numbers, tail, rest, prefix, sep):
    """The keys of the checkpoint's items ``numbers`` into the tail's items
    in order, each at the path ``rest`` gives below its item, shapes
    equal, every key of both placed; or nothing."""
    path, tail_items = tail
    tail_prefix = sep.join(path) + sep
    out = {}
    for j, i in enumerate(numbers):
        theirs = dict(tail_items[j])
        mine = items[i]
        if len(mine) != len(theirs):
            return {}
        for key, shape in mine:
            below = rest.get(key[len(prefix) + len(str(i)) + len(sep):])
            target = None if below is None else f'{tail_prefix}{j}{sep}{below}'
            if target is None or theirs.get(target) != shape:
                return {}
            out[key] = target
    return out if len(set(out.values())) == len(out) else {}


def fill_open_modules(src: KeyGroups, dst: KeyGroups, mapping: Mapping[str, str],
                      sep: str, ambiguous: Optional[Mapping[str, Tuple[str, ...]]] = None
                      ) -> Dict[str, str]:
    """
    The pairs that place open modules of the checkpoint by analogy, then
    as the last of their shapes in their region, then whole blocks the
    ambiguous keys point to, then the rest of a list cut in two (see the
    module docstring). ``src`` and
    ``dst`` are the two sides cut in groups; ``mapping`` is not changed;
    ``ambiguous`` (source key -> its candidate model keys) is the
    alignment's.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.openmodules import fill_open_modules
        >>> src = KeyGroups({'s.0.conv.w': (8, 4), 's.0.down.w': (8, 4), 's.0.c2.w': (8, 8),
        ...                  's.0.c3.w': (9, 8)})
        >>> dst = KeyGroups({'t.0.proj.w': (8, 4), 't.0.f.a.w': (8, 4), 't.0.f.b.w': (8, 8),
        ...                  't.0.f.c.w': (9, 8)})
        >>> paired = {'s.0.c2.w': 't.0.f.b.w', 's.0.c3.w': 't.0.f.c.w'}
        >>> fill_open_modules(src, dst, paired, '.')  # two open modules of one shape
        {}
        >>> fill_open_modules(src, dst, {**paired, 's.0.conv.w': 't.0.f.a.w'}, '.')
        {'s.0.down.w': 't.0.proj.w'}
    """
    open_src = _open_groups(src, mapping)
    open_dst = _open_groups(dst, set(mapping.values()))
    if not open_src or not open_dst or not mapping:
        return {}
    regions = _Regions(mapping, sep)
    found = _one_pass(src, dst, open_src, open_dst, regions, sep, by_analogy=True)
    if found:
        taken = set(found.values())
        open_src = {m: keys for m, keys in open_src.items() if keys[0] not in found}
        open_dst = {m: keys for m, keys in open_dst.items() if keys[0] not in taken}
        regions = _Regions({**mapping, **found}, sep)
    found.update(_one_pass(src, dst, open_src, open_dst, regions, sep, by_analogy=False))
    if ambiguous:
        taken = set(found.values())
        open_src = {m: keys for m, keys in open_src.items() if keys[0] not in found}
        open_dst = {m: keys for m, keys in open_dst.items() if keys[0] not in taken}
        found.update(_tied_blocks(src, dst, open_src, open_dst, {**mapping, **found},
                                  {k: v for k, v in ambiguous.items() if k not in found}, sep))
    if _any_item(open_src, sep) and _any_item(open_dst, sep):
        found.update(_list_tails(src, dst, {**mapping, **found}, sep))
    return found


def _any_item(modules, sep) -> bool:
    """Whether a path of ``modules`` runs through a list item."""
    return any(comp.isdigit() for module in modules for comp in module.split(sep))
