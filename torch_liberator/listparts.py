"""
Which items of two lists are one module, and which starts keep them so.

Numbers in key paths (``layer1.0``, ``features.5``) name positions in lists,
and positions are weak evidence: a list cut in two and renumbered, a list
spliced at an offset after a stem, or two lists of different lengths all pair
items of equal numbers that are not one module. The tree solvers
(:mod:`torch_liberator.subtree_isomorphism`,
:mod:`torch_liberator.subtree_embedding` and the checks of
:mod:`torch_liberator.modesolvers`) ask this module when a start pair
``(u, v)`` — a node of each tree below which relative paths are paired — is
supported by its keys (:func:`start_is_supported`), which pairs below it rest
only on a position in a later part of a list cut in parts
(:func:`later_part_modules`) or in two different lists
(:func:`in_other_lists`), and which shoves pair modules only by a position
(:func:`shove_is_positional`).

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> from torch_liberator.listparts import list_items
    >>> tree = KeyTree(['layer1.0.w', 'layer1.1.w'])
    >>> list_items(tree, tree.child(tree.root, 'layer1'))
    ('0', '1')
"""
from torch_liberator.keytree import anchored_pairs, pair_tier
from torch_liberator.movedparts import labels_in_order

__all__ = ['in_other_lists', 'is_renamed', 'later_part_modules', 'list_items',
           'shove_is_positional', 'start_is_supported']


def is_renamed(tree1, tree2, start):
    """
    True when the start pair ``(u, v)`` is renamed inside both trees
    (``features`` <-> ``high``), not a wrapper added or removed on one side.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.listparts import is_renamed
        >>> t1, t2 = KeyTree(['a.x.w']), KeyTree(['b.x.w', 'a.y'])
        >>> is_renamed(t1, t2, (t1.child(0, 'a'), t2.child(0, 'b')))
        True
        >>> is_renamed(t1, t2, (t1.child(0, 'a'), t2.child(0, 'a')))
        False
        >>> is_renamed(t1, t2, (t1.child(0, 'a'), t2.root))
        False
    """
    u, v = start
    return (u != tree1.root and v != tree2.root
            and tree1.label[u] != tree2.label[v])


def start_is_supported(tree1, tree2, start, pairs):
    """
    False when ``start`` pairs two nodes of different labels while one has
    a namesake beside the other, when it relabels two lists of different lengths whose
    numbers no longer say which item is which (the shorter is a later part
    of a list cut in parts, or sits at an offset in the longer one), or when
    it is renamed on both sides (:func:`is_renamed`) and the key pairs
    ``(a, b, tier)`` found below it do not speak for the rename: only
    shapes do then, so every pair must be of the same tensor
    (tier 0) and, when every one of them hangs below a numbered child of
    ``start`` (positions in a list, which a list cut in two and renumbered
    no longer keeps), they must cover at least three quarters of the keys
    below the smaller side (a detector's copy of a backbone's first blocks,
    kept under their indices, ends with a part of the next block).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.listparts import start_is_supported
        >>> t1, t2 = KeyTree(['a.w']), KeyTree(['b.w', 'b.v'])
        >>> a, b = t1.child(0, 'a'), t2.child(0, 'b')
        >>> start_is_supported(t1, t2, (a, b), [(t1.child(a, 'w'), t2.child(b, 'w'), 0)])
        True
        >>> start_is_supported(t1, t2, (a, b), [(t1.child(a, 'w'), t2.child(b, 'w'), 1)])
        False
        >>> start_is_supported(t1, t2, (a, t2.root), [(t1.child(a, 'w'), t2.child(b, 'w'), 1)])
        True
    """
    u, v = start
    if (_in_renumbered_items(tree1, u, tree2, v) or _namesake_beside(tree1, u, tree2, v)
            or _namesake_item_fits(tree1, u, tree2, v)):
        return False
    if tree1.label[u] != tree2.label[v] and (
            _window_of_a_longer_list(tree1, u, tree2, v)
            or _offset_items(tree1, u, tree2, v, pairs)):
        return False
    if not is_renamed(tree1, tree2, start):
        return True
    if not pairs or any(tier for _, _, tier in pairs):
        return False
    heads = set(_path_nodes(tree1, u, pairs))
    numbered = tree1.label[u].isdigit() and tree2.label[v].isdigit()
    if not numbered and any(not tree1.label[a].isdigit() for a in heads):
        # named relative paths (transition1.conv) speak too; not below an
        # item renumbered as another (layer1.0 <-> res3.1), where only the
        # positions would
        return True
    items = list_items(tree1, u)
    if (items and not numbered and len(heads) == len(items)
            and items == list_items(tree2, v)):
        # lists of the same items (layer1 <-> res2, blocks <-> 1), one
        # named at least, each item paired: the positions are kept
        return True
    return 4 * len(pairs) >= 3 * min(tree1.num_keys_below(u), tree2.num_keys_below(v))


def _renumbered_item(tree1, u, tree2, v):
    """
    True when ``u`` and ``v`` are items of different numbers in two lists of
    the same items (``features.5`` <-> ``model.6``, both lists holding
    0..12): such lists pair their items by number, and two equal blocks
    at different positions are not one.
    """
    if u == tree1.root or v == tree2.root:
        return False
    label1, label2 = tree1.label[u], tree2.label[v]
    if not (label1.isdigit() and label2.isdigit()) or label1 == label2:
        return False
    items = list_items(tree1, tree1.parent[u])
    return items is not None and items == list_items(tree2, tree2.parent[v])


def _in_renumbered_items(tree1, u, tree2, v):
    """
    True when ``u`` and ``v``, or the nodes the same number of levels above
    them, are items renumbered (:func:`_renumbered_item`): the checkpoint's
    ``features.11.block`` is not the model's ``features.10.block`` when
    both lists hold 0..12, however alike the blocks (mutation fuzz seed
    5876 of --wide, block 11 renamed inside and block 10 cut short).
    """
    while u != tree1.root and v != tree2.root:
        if _renumbered_item(tree1, u, tree2, v):
            return True
        u, v = tree1.parent[u], tree2.parent[v]
    return False


def _namesake_item_fits(tree1, u, tree2, v):
    """
    True when ``u`` and ``v`` are items of different numbers and the
    items of the same numbers fit as well: the item of ``u``'s number
    beside ``v`` takes as many keys from ``u``, or the item of ``v``'s
    number beside ``u`` as many into ``v`` (or holds the same shapes as
    its neighbour: the same block, named anew inside, mutation fuzz seed
    22139), and neither exists without fitting. Two equal blocks
    (``features.{5,6}`` against ``blocks.{5,6}`` of a list split keeping
    its numbers, or a list cut short against the
    whole one): nothing but the order of the nodes would pick ``blocks.6``
    for ``features.5``. A list spliced at an offset (``stages.0.blocks.0``
    as a flat list's ``2`` after two stem items) has, at the other number,
    an item of another kind: the numbers are not the evidence there.
    """
    if u == tree1.root or v == tree2.root:
        return False
    label1, label2 = tree1.label[u], tree2.label[v]
    if not (label1.isdigit() and label2.isdigit()) or label1 == label2:
        return False
    count = len(anchored_pairs(tree1, tree2, (u, v)))
    w = tree2.child(tree2.parent[v], label1)
    x = tree1.child(tree1.parent[u], label2)
    # a namesake of the very shapes fits too, named anew inside or not (the
    # checkpoint's features.11, its block renamed, beside features.10)
    fits_w = w is not None and (len(anchored_pairs(tree1, tree2, (u, w))) >= count
                                or _same_shapes(tree2, w, v))
    fits_x = x is not None and (len(anchored_pairs(tree1, tree2, (x, v))) >= count
                                or _same_shapes(tree1, x, u))
    # either namesake fits as well, and the other, where it exists, too
    return (fits_w or fits_x) and (fits_w or w is None) and (fits_x or x is None)


def _same_shapes(tree, a, b):
    """Whether nodes ``a`` and ``b`` of ``tree`` hold keys of the same known
    shapes (as many of each)."""
    shapes_a = [tree.shape[k] for k in tree.keys_below(a)]
    if not shapes_a or None in shapes_a:
        return False
    return sorted(shapes_a) == sorted(tree.shape[k] for k in tree.keys_below(b))


def _namesake_beside(tree1, u, tree2, v):
    """
    True when ``u`` and ``v`` have different labels and one of them has a
    namesake beside the other (``blocks`` <-> ``blocks_b`` while the model
    also holds ``blocks``, the first part of the list kept under its name):
    the names then say where ``u`` goes, and it is not ``v``. A position
    (``0``) is no name: lists renumber their items.
    """
    label1, label2 = tree1.label[u], tree2.label[v]
    if label1 == label2:
        return False
    # a position (``0``) beside the other is no namesake: lists renumber
    return ((v != tree2.root and not label1.isdigit()
             and tree2.child(tree2.parent[v], label1) is not None)
            or (u != tree1.root and not label2.isdigit()
                and tree1.child(tree1.parent[u], label2) is not None))


def _unequal_lists(tree1, u, tree2, v):
    """The list items of ``u`` and ``v`` when both are lists of different
    lengths, else None."""
    items1, items2 = list_items(tree1, u), list_items(tree2, v)
    if not items1 or not items2 or len(items1) == len(items2):
        return None
    return items1, items2


def _offset_items(tree1, u, tree2, v, pairs):
    """
    True when ``u`` and ``v`` are lists of different lengths and some item
    is paired while an item of a lower number, present on both sides, is
    not: the shorter list then sits at an offset in the longer one
    (``stages.0.blocks.{0,1,2}`` in a flattened list whose items 0 and 1
    are the stem), where equal numbers are not the same item.
    """
    lists = _unequal_lists(tree1, u, tree2, v)
    if lists is None:
        return False
    items1, items2 = lists
    paired = {int(tree1.label[n]) for n in _path_nodes(tree1, u, pairs)}
    if not paired:
        return False
    common = set(map(int, items1)) & set(map(int, items2))
    return any(i not in paired for i in common if i < max(paired))


def _window_of_a_longer_list(tree1, u, tree2, v):
    """
    True when ``u`` and ``v`` are lists of different lengths and the shorter
    one follows another list among its siblings: it is then a later part of
    a list cut in parts and renumbered (``blocks.{0..11}`` <->
    ``blocks_b.{0..7}`` beside ``blocks_a.{0..3}``), and its numbers do not
    say where in the longer list it starts. The first part (a detector's
    copy of a backbone's first blocks) starts where the longer one does;
    but when the keys are not in registration order (sorted by name), no
    part is known to be first, and any sibling list makes it a part; nor
    when the parts' labels give an order against their registration
    (``second`` registered before ``first``).
    """
    lists = _unequal_lists(tree1, u, tree2, v)
    if lists is None:
        return False
    tree, node = (tree1, u) if len(lists[0]) < len(lists[1]) else (tree2, v)
    parent = tree.parent[node]
    if parent is None:
        return False
    parts = [c for c in tree.children[parent] if c == node or list_items(tree, c)]
    longer = (tree2, v) if tree is tree1 else (tree1, u)
    if len(parts) > 1 and labels_in_order([tree.label[c] for c in parts[::-1]],
                                          longer[0].label[longer[1]]):
        return True  # registered against the order their labels give
    for sibling in tree.children[parent]:
        if sibling == node:
            if tree.ordered:
                return False
        elif list_items(tree, sibling):
            return True
    return False


def _same_tensors(tree1, x, tree2, y):
    """How many key pairs below ``(x, y)`` hold the same tensor."""
    return sum(pair_tier(tree1, a, tree2, b) == 0
               for a, b in anchored_pairs(tree1, tree2, (x, y)))


def _part_of_a_cut_list(tree1, u, tree2, v):
    """
    True when ``u`` and ``v`` are lists of different lengths and one of
    them follows (any, when the keys are sorted), among its siblings, a
    list that has no list of its name beside the other (a ``stem``
    module there is no counterpart of a part ``blocks.stem.0``, mutation
    fuzz seed 8068) and whose first item holds as many of the other's
    first item's tensors as its own first item does: it is then a later
    part of a list cut in parts, and its numbers do not say where in the
    other list it starts. The shorter is such a part of the longer
    (``blocks.blocks`` of a list cut into
    ``blocks.layers`` and ``blocks.blocks``), or the longer of the shorter,
    a whole list cut short (the checkpoint's ``stage4.{0,1}`` against the
    model's ``stage4.blocks.{0,1,2}`` after ``stage4.layers.0``, mutation
    fuzz seed 18033). Parts of disjoint numbers kept the list's own (a list
    split keeping its numbers); a part that keeps the other list's name is
    its first part (``blocks`` beside ``blocks_tail``, registered in either
    order), unless it hangs below the list's namesake, however deep
    (``blocks.blocks`` beside ``blocks.layers``, or ``blocks.main.blocks``
    beside ``blocks.main.model``, mutation fuzz seed 27733: the parts of
    ``blocks`` are named anew, and one happens to repeat the list's name).
    """
    cut = _cut_offset(tree1, u), _cut_offset(tree2, v)
    if None not in cut and cut[0][0] != cut[1][0] and cut[0][1] == cut[1][1]:
        # two parts of one list cut in other places, whatever their names
        # (both called encoder: the checkpoint's, items 11-12 of a
        # mobilenet_v3_small, the model's items 10-12, mutation fuzz seed
        # 2729 of --wide)
        return True
    if _unequal_lists(tree1, u, tree2, v) is not None:
        return (_follows_a_part(tree1, u, tree2, v, True)
                or _follows_a_part(tree2, v, tree1, u, False))
    # lists of one length cut from lists of one length, starting at
    # different items: both later parts (a mixer's blocks cut 7 + 1 against
    # 5 + 1 + 2: the checkpoint's ``net.0`` is block 7, the model's
    # ``blocks.0`` block 5; mutation fuzz seed 25363), or a whole list, keys
    # sorted or not, against a later part (a shufflenet's stage3, its last
    # block renamed, against the model's stage3 cut into encoder.0 and
    # backbone.0-6: stage3.1 is backbone.0; seed 25601). Lists cut from
    # lists of other lengths are two networks side by side, not parts (a
    # vgg13's features before a vgg11's).
    if len(_numbered(tree1, u)) != len(_numbered(tree2, v)) or not _numbered(tree1, u):
        return False
    first = _offset(tree1, u, tree2, v, True)
    second = _offset(tree2, v, tree1, u, False)
    return (first is not None and second is not None and first[0] != second[0]
            and first[1] == second[1])


def _cut_offset(tree, node):
    """``(start, items)`` of the list that the list ``node`` is a part of,
    when its siblings include other parts (lists of overlapping numbers:
    each part renumbered from 0) and the keys are in registration order:
    where ``node``'s items start, and the shapes of every item of the
    parts joined in order (two sides cut one list only when those agree:
    a resnet's stages are no parts of one list); None otherwise."""
    parent = tree.parent[node]
    if not tree.ordered or parent is None or parent < 0:
        return None
    numbers = {tree.label[k] for k in _numbered(tree, node)}
    parts = [(s, items) for s, items in ((s, _numbered(tree, s)) for s in tree.children[parent])
             if items and not numbers.isdisjoint(tree.label[k] for k in items)]
    if len(parts) < 2:
        return None
    before = next(i for i, (s, _) in enumerate(parts) if s == node)
    return (sum(len(items) for _, items in parts[:before]),
            tuple(tuple(sorted(str(tree.shape[k]) for k in tree.keys_below(item)))
                  for _, items in parts for item in items))


def _numbered(tree, node):
    """The numbered children of ``node`` that hold something."""
    return [k for k in tree.children[node] if tree.label[k].isdigit() and tree.children[k]]


def _offset(tree, node, other, whole, node_is_src):
    """``(start, length)`` of the list ``node`` was cut from: ``(0, its
    children)`` when it is no later part (:func:`_follows_a_part`); when it
    is one, the items its siblings registered before it hold and the items
    of all the parts; None when the start is unknown (keys sorted)."""
    if not _follows_a_part(tree, node, other, whole, node_is_src):
        return 0, len(tree.children[node])
    if not tree.ordered:
        return None
    start, total, seen = 0, 0, False
    for sibling in tree.children[tree.parent[node]]:
        seen = seen or sibling == node
        items = len(_numbered(tree, sibling))
        total += items
        start += 0 if seen else items
    return start, total


def _follows_a_part(tree, node, other, whole, node_is_src):
    """
    :func:`_part_of_a_cut_list` for the list ``node`` of ``tree`` as the
    later part, against the list ``whole`` of ``other``; ``node_is_src``
    says which tree is the source.
    """
    parent = tree.parent[node]
    if parent < 0:
        return False  # (the root is no part)
    name = other.label[whole]
    if tree.label[node] == name and name not in _labels_above(tree, node):
        return False  # the first part keeps the list's name (layer3, layer3_tail)
    beside = other.parent[whole]

    def fit(first):  # tensors of ``first`` that the whole's first item holds
        head = min(_numbered(other, whole), key=lambda k: int(other.label[k]))
        return (_same_tensors(tree, first, other, head) if node_is_src
                else _same_tensors(other, head, tree, first))

    own, numbers = None, {tree.label[k] for k in _numbered(tree, node)}
    for sibling in tree.children[parent]:
        if sibling == node:
            if tree.ordered:
                return False
            continue
        items = list_items(tree, sibling)
        if not items or numbers.isdisjoint(items):
            continue  # (parts of disjoint numbers kept the list's: they say where)
        namesake = None if beside is None else other.child(beside, tree.label[sibling])
        if namesake is not None and list_items(other, namesake):
            continue  # (a list of its name beside the other list is its counterpart)
        if own is None:
            own = fit(min(_numbered(tree, node), key=lambda k: int(tree.label[k])))
        if own and fit(tree.child(sibling, min(items, key=int))) >= own:
            return True
    return False


def _labels_above(tree, node):
    """The labels of the modules above ``node`` (the root's excluded)."""
    out, node = set(), tree.parent[node]
    while node > tree.root:
        out.add(tree.label[node])
        node = tree.parent[node]
    return out


def later_part_modules(tree1, tree2, start, pairs):
    """
    The source modules (parents of the key nodes ``a``) of the pairs
    ``(a, b, tier)`` below ``start`` that rest on a position (the same
    number on both sides) in two lists of which one is a later part
    of a list cut in parts (:func:`_part_of_a_cut_list`), whatever its
    name: a mixer's ``blocks`` cut into ``blocks.layers``, ``blocks.main``
    and ``blocks.blocks``, whose ``blocks.blocks.0`` is the model's
    ``blocks.5``, not the ``blocks.0`` that stripping ``blocks.`` names
    (mutation fuzz seeds 12097, 12523). Their pairs are no evidence.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.listparts import later_part_modules
        >>> keys = [f'blocks.{part}.{i}.w' for part, n in [('a', 2), ('blocks', 1)]
        ...         for i in range(n)]
        >>> t1 = KeyTree(keys, shapes={k: (4,) for k in keys})
        >>> t2 = KeyTree([f'blocks.{i}.w' for i in range(3)],
        ...              shapes={f'blocks.{i}.w': (4,) for i in range(3)})
        >>> start = (t1.child(0, 'blocks'), t2.root)
        >>> pairs = [(t1.node_of_key('blocks.blocks.0.w'), t2.node_of_key('blocks.0.w'), 0)]
        >>> [t1.path(m) for m in later_part_modules(t1, t2, start, pairs)]
        ['blocks.blocks.0']
    """
    u, v = start
    verdicts, seen, out = {}, {}, set()
    for a, b, _ in pairs:
        x, y, walked, found = tree1.parent[a], tree2.parent[b], [], False
        while x != u and y != v:  # from the modules up (the verdict of a
            known = seen.get((x, y))  # pair of modules holds for all below)
            if known is not None:
                found = known
                break
            walked.append((x, y))
            label = tree1.label[x]
            if label.isdigit() and label == tree2.label[y]:
                lists = (tree1.parent[x], tree2.parent[y])
                verdict = verdicts.get(lists)
                if verdict is None:
                    verdict = verdicts[lists] = _part_of_a_cut_list(
                        tree1, lists[0], tree2, lists[1])
                if verdict:
                    found = True
                    break
            x, y = tree1.parent[x], tree2.parent[y]
        seen.update((step, found) for step in walked)
        if found:
            out.add(tree1.parent[a])
    return out


def in_other_lists(tree1, a, tree2, b, start, cache):
    """
    True when the pair ``(a, b)`` below a relabelled ``start`` hangs below
    two lists whose items are not one set within the other (a VGG11's
    ``features.{0,3,6,..}`` and a VGG16's ``features.{0,2,5,..}``): the
    lists are different, and an equal number in both is a coincidence of
    positions, not one item. (A list cut short keeps the other's items.)
    """
    while a != start[0] and b != start[1]:
        if tree1.label[a].isdigit() and tree2.label[b].isdigit():
            key = (tree1.parent[a], tree2.parent[b])
            if key not in cache:
                items1 = set(list_items(tree1, key[0]) or ())
                items2 = set(list_items(tree2, key[1]) or ())
                cache[key] = bool(items1 and items2) and not (
                    items1 <= items2 or items2 <= items1)
            if cache[key]:
                return True
        a, b = tree1.parent[a], tree2.parent[b]
    return False


def shove_is_positional(tree1, a, tree2, b, start):
    """
    True when the pair to shove ``(a, b)`` below ``start`` (a start whose
    labels differ: a prefix stripped or a level renamed) is paired only by
    a position in lists of different lengths: ``features.4`` of a list of
    stages and ``4`` of a flattened list of blocks are not one module, and
    their tensors' other sizes say so. Same-named starts keep published
    shoves (a resnet50's blocks into a resnet18's).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.listparts import shove_is_positional
        >>> t1 = KeyTree(['f.0.w', 'f.1.w'])
        >>> t2 = KeyTree(['0.w', '1.w', '2.w'])
        >>> a, b = t1.child(t1.child(t1.child(0, 'f'), '1'), 'w'), t2.child(t2.child(0, '1'), 'w')
        >>> shove_is_positional(t1, a, t2, b, (t1.child(0, 'f'), t2.root))
        True
    """
    u, v = start
    if tree1.label[u] == tree2.label[v]:
        return False
    while a != u and b != v:
        if tree1.label[a].isdigit() and (
                len(tree1.children[tree1.parent[a]])
                != len(tree2.children[tree2.parent[b]])):
            return True
        a, b = tree1.parent[a], tree2.parent[b]
    return False


def list_items(tree, node):
    """
    The labels of ``node``'s children when ``node`` is a list: its children
    are all numbered modules (a list's items); else None.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.listparts import list_items
        >>> tree = KeyTree(['layer1.0.w', 'layer1.1.w', 'layer1.1.v', 'x.0', 'x.a.w'])
        >>> list_items(tree, tree.child(0, 'layer1')), list_items(tree, tree.child(0, 'x'))
        (('0', '1'), None)
    """
    kids = tree.children[node]
    if not kids or not all(tree.label[k].isdigit() and tree.children[k]
                           for k in kids):
        return None
    return tuple(sorted(tree.label[k] for k in kids))


def _path_nodes(tree, start, pairs):
    """The first node below ``start`` on the way to each paired key."""
    for a, _, _ in pairs:
        node = a
        while tree.parent[node] != start:
            node = tree.parent[node]
        yield node
