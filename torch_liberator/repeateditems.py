"""
Equal blocks that names cannot tell apart, placed by their positions.

Two implementations of one network name the blocks of a stage differently
(timm's RegNet ``s2.b{1..3}``, torchvision's ``block2.block2-{0..2}``) and
the modules inside them in part alike (``se.fc1`` and ``f.se.fc1``). A name-
based solver pairs what is unique (the first block of each stage, whose
shapes differ from the others') and leaves the equal blocks after it as
ties. Their positions settle the ties: in two lists of blocks of one length
that the solver pairs position by position, what a paired item shows
repeats at the other positions.

Notes:
    Cost: ``O(N d)`` for ``N`` keys of depth ``d`` (each pair climbs to its
    block), plus one lookup per learned relative path and item.

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> from torch_liberator.repeateditems import repeated_item_pairs
    >>> src = {'s1.b1.se.w': (4, 4), 's1.b2.se.w': (4, 4)}
    >>> dst = {'block1.block1-0.f.se.w': (4, 4), 'block1.block1-1.f.se.w': (4, 4)}
    >>> repeated_item_pairs(KeyTree(src, shapes=src), KeyTree(dst, shapes=dst),
    ...                     {'s1.b1.se.w': 'block1.block1-0.f.se.w'})
    {'s1.b2.se.w': 'block1.block1-1.f.se.w'}
"""
from typing import Dict

from torch_liberator.keytree import KeyTree, pair_tier
from torch_liberator.movedparts import numbered_items

__all__ = ['repeated_item_pairs']


def _block_lists(tree):
    """``{list node: items}`` of the lists of blocks (items that hold
    submodules), and ``{item: (list node, position)}``."""
    blocks, where = {}, {}
    for node in range(tree.num_nodes):
        found = numbered_items(tree, node)
        if found is None or not all(
                any(tree.children[g] for g in tree.children[item]) for item in found[0]):
            continue
        blocks[node] = found[0]
        for position, item in enumerate(found[0]):
            where[item] = (node, position)
    return blocks, where


def _block_item(tree, node, where):
    """``(list, position)`` of the innermost list of blocks above ``node``."""
    while node > 0:
        found = where.get(node)
        if found is not None:
            return found
        node = tree.parent[node]
    return None


def repeated_item_pairs(tree1: KeyTree, tree2: KeyTree,
                        mapping: Dict[str, str]) -> Dict[str, str]:
    """
    More pairs between two lists of blocks of the same length that
    ``mapping`` already pairs position by position: what the paired items
    show (``b1.se.fc1.weight`` -> ``block2-0.f.se.fc1.weight``) repeats for
    the items at the same positions (timm's ``s2.b{1..3}`` and
    torchvision's ``block2.block2-{0..2}``, whose equal blocks names alone
    cannot tell apart).

    A pair of lists counts only when every pair of ``mapping`` between their
    items joins items at the same position, neither list is paired with
    another, and the relative paths learned agree (one target each). A key
    is added only when its place is free, of the same tensor (equal known
    shapes, up to size-1 dimensions), and every key of its module found a
    place of the same tensor.

    Args:
        tree1 (KeyTree): source tree, with shapes.
        tree2 (KeyTree): destination tree, with shapes.
        mapping (Dict[str, str]): the pairs found so far.

    Returns:
        Dict[str, str]: the new pairs only (source keys not in ``mapping``,
        destination keys not among its values).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.repeateditems import repeated_item_pairs
        >>> src = {f's1.b{i}.se.fc.weight': (4, 4) for i in (1, 2, 3)}
        >>> dst = {f'block1.block1-{i}.f.se.fc.weight': (4, 4) for i in (0, 1, 2)}
        >>> known = {'s1.b1.se.fc.weight': 'block1.block1-0.f.se.fc.weight'}
        >>> more = repeated_item_pairs(KeyTree(src, shapes=src), KeyTree(dst, shapes=dst), known)
        >>> for key, value in more.items():
        ...     print(key, '->', value)
        s1.b2.se.fc.weight -> block1.block1-1.f.se.fc.weight
        s1.b3.se.fc.weight -> block1.block1-2.f.se.fc.weight
    """
    lists1, where1 = _block_lists(tree1)
    lists2, where2 = _block_lists(tree2)
    votes = {}  # (list1, list2) -> [(pos1, pos2, rel1, rel2)]
    for key1, key2 in mapping.items():
        a, b = tree1.node_of_key(key1), tree2.node_of_key(key2)
        if a is None or b is None:
            continue
        item1, item2 = _block_item(tree1, a, where1), _block_item(tree2, b, where2)
        if item1 is None or item2 is None:
            continue
        (l1, p1), (l2, p2) = item1, item2
        x, y = lists1[l1][p1], lists2[l2][p2]
        votes.setdefault((l1, l2), []).append(
            (p1, p2, key1[len(tree1.path(x)) + 1:], key2[len(tree2.path(y)) + 1:]))
    partners1, partners2 = {}, {}
    for l1, l2 in votes:
        partners1.setdefault(l1, set()).add(l2)
        partners2.setdefault(l2, set()).add(l1)
    taken = set(mapping.values())
    found = {}
    for (l1, l2), pairs in votes.items():
        items1, items2 = lists1[l1], lists2[l2]
        if (len(items1) != len(items2) or len(partners1[l1]) > 1
                or len(partners2[l2]) > 1 or any(p1 != p2 for p1, p2, _, _ in pairs)):
            continue
        learned = {}
        for _, _, rel1, rel2 in pairs:
            learned.setdefault(rel1, set()).add(rel2)
        learned = {r1: r2s.pop() for r1, r2s in learned.items() if len(r2s) == 1}
        for x, y in zip(items1, items2):
            base1, base2 = tree1.path(x) + tree1.sep, tree2.path(y) + tree2.sep
            by_module = {}
            for rel1, rel2 in learned.items():
                a, b = tree1.node_of_key(base1 + rel1), tree2.node_of_key(base2 + rel2)
                if a is None:
                    continue
                fits = (b is not None and tree1.key[a] not in mapping
                        and tree2.key[b] not in taken
                        and None not in (tree1.shape[a], tree2.shape[b])
                        and pair_tier(tree1, a, tree2, b) == 0)
                by_module.setdefault(tree1.parent[a], []).append((a, b, fits))
            for entries in by_module.values():
                if all(fits for _, _, fits in entries):
                    found.update((tree1.key[a], tree2.key[b]) for a, b, _ in entries)
    # one place per key (two list pairs could name the same one)
    count = {}
    for key2 in found.values():
        count[key2] = count.get(key2, 0) + 1
    return {k: v for k, v in found.items() if count[v] == 1}
