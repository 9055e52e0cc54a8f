"""
Maximum common subtree embedding between two key trees, with shapes.

An embedding keeps ancestor relations instead of parent-child edges: a level
may be skipped on either side, so ``layer1.0.conv.weight`` corresponds to
``backbone.body.layer1.0.conv.weight`` and ``features.0.weight`` to
``features.block.0.weight``; a level may also be renamed when what lies below
it agrees completely (``layer1.*`` <-> ``4.*`` in
``nn.Sequential(*list(resnet.children())[:-2])``).

The node pairs are scored by :class:`torch_liberator.embedder.Embedder`
(its docstring gives the rules: a module's tensors go to one module or to
none, shapes rank the candidates, ties are left out). This module tries the
starts and makes the mapping:

* the starts are the two roots, the nodes below either root's chain of
  wrapper levels such as ``backbone.bottom_up``, and the anchors found by
  :func:`torch_liberator.subtree_isomorphism.find_anchors`; the best start
  that its own pairs support wins (a refused start, see
  :func:`~torch_liberator.listparts.start_is_supported`, does
  not hide the others), the one with fewer skipped levels among equals
  when one of them places every key below its source node (copies of a
  network), else equals at any depth tie (fragments of two networks);
* equally good starts that disagree make their disagreements ambiguous;
* a renamed start that is one stage of several repeats beside it;
* a mapping that fills the model's lists in part (a checkpoint of a shorter
  network in a longer sibling) is contested by a place filled whole
  (:func:`whole_rivals`), or by another checkpoint module that fills one of
  the model's modules whole (the model's own network beside a shorter one
  of its names).

Notes:
    Cost: a few starts, each scored by the memoized
    :class:`~torch_liberator.embedder.Embedder` (``O(N log N)`` for ``N`` keys
    when names mostly agree; see :mod:`torch_liberator.embedder`); the
    rivals of a mapping that fills lists in part add the starts of the model
    modules of half to all the checkpoint's size. A full ordered-forest
    dynamic program (the published 0.2 solver) costs ``O(N^2)`` or more.

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> from torch_liberator.subtree_embedding import embedding_mapping
    >>> src = KeyTree(['features.0.weight', 'features.1.weight', 'fc.weight'])
    >>> dst = KeyTree(['features.block.0.weight', 'features.block.1.weight',
    ...                'head.fc6.weight'])
    >>> mapping, ambiguous = embedding_mapping(src, dst)
    >>> for k, v in mapping.items():
    ...     print(k, '->', v)
    features.0.weight -> features.block.0.weight
    features.1.weight -> features.block.1.weight
"""
from collections import Counter

from torch_liberator.embedder import RENAME_LIMIT, Embedder
from torch_liberator.keygroups import is_word
from torch_liberator.listparts import (
    is_renamed, later_part_modules, list_items, shove_is_positional, start_is_supported)
from torch_liberator.subtree_isomorphism import merge_tied

__all__ = ['embedding_mapping', 'whole_rivals']


def _explained_whole(embedder, start):
    """Whether the start's pairs place every key below its source node."""
    s = embedder.score(*start)
    return s[0] + s[1] == embedder.tree1.num_keys_below(start[0])


def _around(tree, node):
    """The nodes beside ``node`` (its siblings) and those labeled like it."""
    found = set(tree.children[tree.parent[node]])
    found.update(tree.nodes_labeled(tree.label[node], tree.root))
    found.discard(node)
    return sorted(found)


def _repeats(embedder, start, mapping, ambiguous):
    """
    The pairs of the lists that repeat a renamed start's pattern, beside
    it: a renamed start ``(u, v)`` that is a list of the same items on both
    sides (timm's ``layers.2.blocks`` <-> torchvision's ``features.5``)
    stands for one stage of several; the other stages are the lists labeled
    like ``u`` or beside it, against those labeled like ``v`` or beside it
    (``layers.0.blocks`` <-> ``features.1``). A pair of them is kept when
    the two are lists of the same items that agree whole (every key of the
    smaller side, the same tensors; torchvision's blocks also hold a
    buffer), neither has another such counterpart, and nothing below either
    is mapped or ambiguous yet; nothing is kept when ``u`` or ``v`` agrees
    whole with another of them (the start itself is then in doubt).
    """
    t1, t2 = embedder.tree1, embedder.tree2
    u, v = start
    if not is_renamed(t1, t2, start) or list_items(t1, u) is None:
        return {}

    # the start itself takes part: a list that agrees whole with the
    # start's other side as well makes the start a tie, and nothing repeats
    sources, targets = [u] + _around(t1, u), [v] + _around(t2, v)
    if len(sources) * len(targets) > RENAME_LIMIT:
        return {}
    whole = []
    for x in sources:
        items = list_items(t1, x)
        need = t1.num_keys_below(x)
        for y in targets:
            if items is None or list_items(t2, y) != items:
                continue
            s = embedder.score(x, y)
            if s[0] == min(need, t2.num_keys_below(y)) and not s[1]:
                whole.append((x, y))
    if any((x == u) != (y == v) for x, y in whole):
        return {}
    whole = [(x, y) for x, y in whole if x != u]
    count1 = Counter(x for x, _ in whole)
    count2 = Counter(y for _, y in whole)
    used1 = set(mapping) | set(ambiguous)
    used2 = set(mapping.values()).union(*ambiguous.values())
    extra = {}
    for x, y in whole:
        if count1[x] > 1 or count2[y] > 1:
            continue  # a tie
        found = _start_result(embedder, (x, y))
        if found is None or found[1]:
            continue
        pairs = found[0]
        if (len(pairs) != embedder.score(x, y)[0]
                or used1.intersection(t1.keys_below(x))
                or used2.intersection(t2.keys_below(y))):
            continue
        extra.update(pairs)
        used1.update(t1.keys_below(x))
        used2.update(t2.keys_below(y))
    return extra


def _relative(tree, node, start):
    key = tree.key[node]
    return key[len(tree.path(start)) + len(tree.sep):] if start else key


def _start_result(embedder, start, collected=None):
    """``({src node: dst node}, {src node: set of dst nodes})`` from a start
    (``collected``: its :meth:`Embedder.collect`, when the caller has it)."""
    t1, t2 = embedder.tree1, embedder.tree2
    pairs, ties = collected or embedder.collect(*start)
    if not start_is_supported(t1, t2, start, pairs):
        return None  # renamed on both sides, and only shapes speak for it
    # a pair to shove needs the same relative name; a module one of whose
    # pairs fails that is another module, and loses all its pairs
    parent1 = t1.parent
    foreign = {parent1[a] for a, b, tier in pairs
               if tier and (_relative(t1, a, start[0]).split(t1.sep)
                            != _relative(t2, b, start[1]).split(t2.sep)
                            or shove_is_positional(t1, a, t2, b, start))}
    foreign.update(later_part_modules(t1, t2, start, pairs))
    mapping = {a: b for a, b, tier in pairs if parent1[a] not in foreign}
    ambiguous = {}
    for c, ds in ties:
        for d in ds:
            embedder.score(c, d)
            found = embedder.collect(c, d)[0]
            mixed = {parent1[a] for a, b, tier in found if tier}
            for a, b, tier in found:
                if parent1[a] not in mixed:
                    ambiguous.setdefault(a, set()).add(b)
    return mapping, ambiguous


def _place_of(tree, nodes):
    """The lowest module holding all the nodes ``nodes``."""
    end, parent = tree.end, tree.parent
    place = None
    for node in nodes:
        place = node if place is None else place
        while not place <= node < end[place]:
            place = parent[place]
    return place


def _partly_filled_place(tree, nodes):
    """The place of the destination key nodes ``nodes`` (:func:`_place_of`)
    when they take some items of a list inside it and leave others empty
    (the place holds a longer network than the checkpoint: a resnet18 in a
    resnet34), else None. Lists around the place do not count (one block of
    ``nn.Sequential(*children)`` is no shorter network)."""
    place = _place_of(tree, nodes)
    seen = set()
    for node in nodes:
        while node != place and node not in seen:
            seen.add(node)
            node = tree.parent[node]
    lists = {tree.parent[n] for n in seen if not is_word(tree.label[n])}
    if any(c not in seen for p in lists for c in tree.children[p]
           if not is_word(tree.label[c])):
        return place
    return None


def _rival_starts(embedder, starts, n, source=None, target=None):
    """``starts``, and the source's roots against every model module that
    holds from half of ``n`` keys up to the source's size: the places a
    whole network could fill, whatever their names; with ``source``, also
    the checkpoint modules of half of ``n`` keys or more beside it (beside
    it or one of its ancestors) against ``target``: the other networks a
    checkpoint holds side by side."""
    t1, t2 = embedder.tree1, embedder.tree2
    low, high = (n + 1) // 2, t1.num_keys
    places = [v for v in range(t2.num_nodes)
              if t2.key[v] is None and low <= t2.num_keys_below(v) <= high]
    extra = [(u, v) for u in embedder.hanging(1) for v in places]
    node = source
    while node is not None and node != t1.root:
        parent = t1.parent[node]
        extra += [(u, target) for u in t1.children[parent]
                  if u != node and t1.key[u] is None and t1.num_keys_below(u) >= low]
        node = parent
    return list(dict.fromkeys(list(starts) + extra))


def _contested_sides(tree1, tree2, chosen):
    """
    What :func:`_contest` needs to look at, cheaply: ``(place, source,
    target, other)`` where ``place`` is the model module ``chosen`` fills in
    part (or None), ``source`` and ``target`` the modules holding all of
    ``chosen``'s keys on each side, and ``other`` whether another network of
    the checkpoint may contest: ``chosen`` is a shorter network that maps
    most of its own keys, or a longer one (its lists used in part) that
    fills most of the model module. None when nothing can contest.
    """
    if not chosen:
        return None
    place = _partly_filled_place(tree2, chosen.values())
    source, target = _place_of(tree1, chosen), _place_of(tree2, chosen.values())
    n = 2 * len(chosen)
    if place is not None:
        other = n >= tree1.num_keys_below(source)
    else:
        other = (n >= tree2.num_keys_below(target)
                 and _partly_filled_place(tree1, chosen) is not None)
    if place is None and not other:
        return None
    return place, source, target, other


def _shoved_blocks(tree1, pairs):
    """
    ``(clean, against)`` for the key pairs ``(a, b, tier)`` of a start:
    a block (a list item around the pair's module: ``layer1.0`` of
    ``layer1.0.conv2``) that takes a shove is another kind of block, and all
    its pairs count against the start; the pairs of the same tensor
    elsewhere count for it, and a shove outside such blocks (a 1000-class
    head into a 10-class one) neither. Of a resnext50's blocks, a
    wide_resnet50_2 of its very names takes every ``conv2`` as a shove,
    the model's own renamed copy none (mutation fuzz seed 16495). (The
    isomorphism's anchors count any module around a shove against their
    place; a start here may be a sub-start of another, which that reading
    would let win by leaving a shoved head out.)
    """
    parent, label = tree1.parent, tree1.label
    odd = set()
    for a, _, tier in pairs:
        if tier:
            block = parent[parent[a]]
            if block is not None and label[block].isdigit():
                odd.add(block)
    clean = against = 0
    for a, _, tier in pairs:
        if parent[parent[a]] in odd:
            against += 1
        elif not tier:
            clean += 1
    return clean, against


def _contest(embedder, starts, chosen):
    """
    ``chosen`` (source node -> destination node), less what a rival place
    contests: when ``chosen`` fills the model's lists in part (a resnet18
    checkpoint in a resnet34 slot, every key by name and shape), a start
    that places at least half as many tensors, every one of the same tensor
    or to shove by name, and fills its own place whole (or all but a few
    renamed modules, :func:`_whole_but_renamed`: the model's own copy with
    a stage and the head renamed, mutation fuzz seed 17245, or with its stem
    renamed and no head, seed 18519), beside the chosen
    place (neither inside nor around the module holding all of ``chosen``'s
    destinations; the resnet18 one
    level deeper, fine-tuned to another head, or as
    ``nn.Sequential(*children)``) is as good: being closer does not
    outweigh being the network itself (a place most of whose blocks take a
    shove is another kind of network and contests nothing, :func:`_shoved_blocks`). The keys the two map differently
    are ambiguous; when that is half of ``chosen`` or more, the place
    itself is in question and all of ``chosen`` is left out.

    The same on the checkpoint's side: when ``chosen`` is a shorter network
    that maps most of its keys or a longer one that fills most of the model
    module, a start from a checkpoint module beside the one ``chosen``
    comes from, that places at least half as many tensors and fills its
    model module whole or uses its own module whole (or all but a few
    renamed modules: as many keys left over on each side, of the same
    shapes, or more on the checkpoint's, its head the model lacks; see
    :func:`_whole_but_renamed`), is another network of
    the checkpoint (the model's own, as ``nn.Sequential(*children)``,
    beside a resnet18 or a resnet34 of the model's names; or with a
    BatchNorm renamed, into the model without its head, cross fuzz seed
    6128): all of ``chosen`` is left out. A mapping that found little of its network says
    nothing of its length (an EMA copy beside it is no other network).

    Returns:
        Tuple[Dict[int, int], Dict[int, Set[int]]]: what is kept, and the
        contested source nodes with their destinations.
    """
    sides = _contested_sides(embedder.tree1, embedder.tree2, chosen)
    if sides is None:
        return chosen, {}
    return _contest_sides(embedder, starts, chosen, *sides)


def _beside(tree, a, b):
    """Whether nodes ``a`` and ``b`` are neither one inside nor around the other."""
    end = tree.end
    return not (a <= b < end[a] or b <= a < end[b])


def _contest_sides(embedder, starts, chosen, place, source, target, other):
    """:func:`_contest` once :func:`_contested_sides` has found something to contest."""
    t1, t2 = embedder.tree1, embedder.tree2
    owner = {b: a for a, b in chosen.items()}
    rivals, other_network = [], False
    for start in _rival_starts(embedder, starts, len(chosen), source if other else None, target):
        u, v = start
        from_beside = other and _beside(t1, source, u)
        if not from_beside and (place is None or not _beside(t2, place, v)):
            continue
        good, fair, _, _ = embedder.score(*start)
        if 2 * (good + fair) < len(chosen):
            continue
        whole = t2.num_keys_below(v) == good + fair or (
            from_beside and t1.num_keys_below(u) == good + fair)
        # a model place may lack the checkpoint's head (its children[:-1]),
        # and so may the model that a network beside the chosen one fills
        headless = from_beside or (place is not None and _beside(t2, place, v))
        if not whole and not _may_be_renamed(t1, t2, start, good + fair, headless):
            continue
        collected = embedder.collect(*start)
        clean, against = _shoved_blocks(t1, collected[0])
        if clean < against:
            continue  # most of its blocks take a shove: another kind of network
        result = _start_result(embedder, start, collected)
        if not whole and (result is None
                          or not _whole_but_renamed(t1, t2, start, result[0], headless)):
            continue
        if result is not None and any(owner.get(b, a) != a or chosen.get(a, b) != b
                                      for a, b in result[0].items()):
            rivals.append(result)
            other_network |= from_beside
    if not rivals:
        return chosen, {}
    kept, tied = merge_tied([(chosen, {})] + rivals)
    if other_network or 2 * len(tied) >= len(chosen):
        for a, b in kept.items():
            tied[a] = {b}
        kept = {}
    return kept, tied


def _may_be_renamed(tree1, tree2, start, placed, headless=False):
    """The cheap half of :func:`_whole_but_renamed`, from the counts of a
    start that places ``placed`` keys."""
    left = tree1.num_keys_below(start[0]) - placed
    room = tree2.num_keys_below(start[1]) - placed
    if headless:
        return 0 < room <= left and 2 * left <= placed
    return 0 < left == room and 2 * left <= placed


def _whole_but_renamed(tree1, tree2, start, pairs, headless=False):
    """Whether the pairs ``pairs`` of a start ``(u, v)`` leave as many keys
    of ``u`` unused as of ``v`` unfilled, of the same shapes, and few (half
    the pairs at most): the same network with a module renamed where the
    names could not follow (``bn1`` saved as ``norm``; a stage and the
    head). ``headless``: ``v`` may lack some of ``u``'s keys besides (the
    model's copy without the head, its stem renamed: mutation fuzz seed
    18519), every key of ``v`` left having one of ``u``'s shapes."""
    u, v = start
    used, filled = set(pairs), set(pairs.values())
    unused = [tree1.shape[a] for a in tree1.keys_below(u) if a not in used]
    unfilled = [tree2.shape[b] for b in tree2.keys_below(v) if b not in filled]
    if not unfilled or len(unused) < len(unfilled) or 2 * len(unused) > len(pairs):
        return False
    if not headless and len(unused) != len(unfilled):
        return False
    if None in unused or None in unfilled:
        return False
    return not Counter(map(tuple, unfilled)) - Counter(map(tuple, unused))


def whole_rivals(tree1, tree2, mapping, anchors=()):
    """
    The keys of ``mapping`` (from any solver) that a place filled whole
    contests: when ``mapping`` fills the model's lists in part (a checkpoint
    of a shorter network in a longer sibling), an embedding start that
    places at least half as many tensors and fills its own place whole
    makes the keys the two map differently ambiguous (all of ``mapping``,
    when they are half of it or more); another network of the checkpoint
    beside the one ``mapping`` comes from contests it too (see
    :func:`_contest`).

    Args:
        tree1 (KeyTree): source tree (with shapes, when known).
        tree2 (KeyTree): destination tree (with shapes, when known).
        mapping (Dict[str, str]): source key -> destination key.
        anchors (Iterable[Tuple[int, int]] | Callable): extra starts, as for
            :func:`embedding_mapping`, or a function returning them, called
            only when ``mapping`` leaves a place to contest (finding
            anchors costs more than the cheap test on big state dicts).

    Returns:
        Dict[str, Tuple[str, ...]]: the contested source keys and their
        destinations, to leave out.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.subtree_embedding import whole_rivals
        >>> src = KeyTree(['blocks.0.w', 'blocks.1.w'], shapes={'blocks.0.w': (2,), 'blocks.1.w': (3,)})
        >>> dst_keys = {'long.blocks.0.w': (2,), 'long.blocks.1.w': (3,), 'long.blocks.2.w': (3,),
        ...             'own.inner.blocks.0.w': (2,), 'own.inner.blocks.1.w': (3,)}
        >>> dst = KeyTree(dst_keys, shapes=dst_keys)
        >>> mapping = {'blocks.0.w': 'long.blocks.0.w', 'blocks.1.w': 'long.blocks.1.w'}
        >>> for key, places in whole_rivals(src, dst, mapping).items():
        ...     print(key, places)
        blocks.0.w ('long.blocks.0.w', 'own.inner.blocks.0.w')
        blocks.1.w ('long.blocks.1.w', 'own.inner.blocks.1.w')
    """
    chosen = {tree1.node_of_key(k): tree2.node_of_key(v) for k, v in mapping.items()}
    sides = _contested_sides(tree1, tree2, chosen)
    if sides is None:
        return {}  # (the cheap test first: most mappings fill what they touch)
    if callable(anchors):
        anchors = anchors()
    _, tied = _contest_sides(Embedder(tree1, tree2), anchors, chosen, *sides)
    keys1, keys2 = tree1.key, tree2.key
    return {keys1[a]: tuple(keys2[b] for b in sorted(bs)) for a, bs in sorted(tied.items())}


def embedding_mapping(tree1, tree2, anchors=()):
    """
    One-to-one key mapping of a maximum common subtree embedding.

    Args:
        tree1 (KeyTree): source tree (with shapes, when known).
        tree2 (KeyTree): destination tree (with shapes, when known).
        anchors (Iterable[Tuple[int, int]]): extra node pairs to start from
            besides the two roots and the nodes below their wrapper levels
            (see :func:`torch_liberator.subtree_isomorphism.find_anchors`);
            the start that scores best among those its own pairs support
            wins, the one with fewer skipped levels among equals; equal
            starts that disagree make their disagreements ambiguous.

    Returns:
        Tuple[Dict[str, str], Dict[str, Tuple[str, ...]]]: source key ->
        destination key, in source order; and the ambiguous source keys with
        their equally good destination keys (left out of the mapping).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.subtree_embedding import embedding_mapping
        >>> src = KeyTree(['module.conv.weight', 'module.conv.bias'])
        >>> dst = KeyTree(['conv.weight', 'conv.bias', 'extra.weight'])
        >>> embedding_mapping(src, dst)
        ({'module.conv.weight': 'conv.weight', 'module.conv.bias': 'conv.bias'}, {})
    """
    embedder = Embedder(tree1, tree2)
    starts = [(tree1.root, tree2.root)]
    # ... and where each model hangs below levels that hold only one
    # submodule each (backbone.bottom_up.*): its own wrappers
    starts += [(u, v) for u in embedder.hanging(1)
               for v in embedder.hanging(2)]
    starts += list(anchors)
    scored, collected, unranked = {}, {}, {}
    for start in starts:
        if start in scored:
            continue
        s = embedder.score(*start)
        levels = tree1.depth[start[0]] + tree2.depth[start[1]]
        # among equals, the place filled whole before one filled in part
        unfilled = tree2.num_keys_below(start[1]) - s[0] - s[1]
        # blocks that take a shove speak against their place first
        collected[start] = embedder.collect(*start)
        clean, against = _shoved_blocks(tree1, collected[start][0])
        scored[start] = (clean - against, s[0], s[1], s[2], s[3] - levels, -unfilled)
        unranked[start] = (clean - against, s[0], s[1], s[2], s[3], -unfilled)
    # the best start that its own pairs support (a refused one does not
    # hide the others)
    results = []
    for rank in sorted(set(scored.values()), reverse=True):
        tied = [start for start, s in scored.items() if s == rank]
        if not any(_explained_whole(embedder, start) for start in tied):
            # being closer decides between copies of a network (a model and
            # its EMA copy), not between parts of two networks that each
            # place the same few tensors (two stems of one design)
            tied = [start for start, s in unranked.items() if s == unranked[tied[0]]]
        results = [(start, _start_result(embedder, start, collected[start])) for start in tied]
        results = [(start, r) for start, r in results if r is not None]
        if results:
            break
    if not results:
        return {}, {}
    mapping, ambiguous = merge_tied([r for _, r in results])
    mapping, contested = _contest(embedder, starts, mapping)
    for a, bs in contested.items():
        ambiguous.setdefault(a, set()).update(bs)
    if len(results) == 1 and not contested:
        mapping.update(_repeats(embedder, results[0][0], mapping, ambiguous))
    keys1, keys2 = tree1.key, tree2.key
    return ({keys1[a]: keys2[b] for a, b in sorted(mapping.items())},
            {keys1[a]: tuple(keys2[b] for b in sorted(bs))
             for a, bs in sorted(ambiguous.items())})
