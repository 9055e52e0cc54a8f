"""
Maximum common subtree isomorphism between two key trees.

Two state dicts of the same network differ, in practice, by where the network
hangs: ``layer1.0.conv1.weight`` in one is ``backbone.body.layer1.0.conv1.weight``
or ``module.layer1.0.conv1.weight`` in the other. In tree terms the common
part is a subtree rooted at an *anchor* pair ``(P, Q)`` — a node of each tree,
whose names may differ — below which every parent-child edge and every label
agrees, so a key ``P.s`` corresponds to ``Q.s``. :func:`find_anchors` finds
the anchor pairs that explain the most keys and :func:`isomorphism_mapping`
turns the best one into a one-to-one key mapping.

Algorithm:
    A common relative path ``s`` of keys ``P.s`` and ``Q.s`` is a common
    *suffix* of the two keys. So the keys of both trees are inserted,
    component-reversed, into one suffix trie. A trie node ``σ`` holds the keys
    ending in ``σ``; a pair of keys whose longest common suffix is exactly
    ``σ`` votes for the anchor obtained by cutting ``σ`` off both keys. Only
    trie nodes holding few keys of each side vote (suffixes such as ``weight``
    that end thousands of keys carry no information about where a network
    moved), which bounds the voting at ``O(1)`` per trie node.
    Each anchor pair ``(P, Q)`` found that way is then scored exactly — the
    number of relative paths present below both — in decreasing order of
    votes, skipping pairs whose subtrees are too small to beat the best score
    so far. The identity anchor (both roots) is always scored.

    Every anchor that maps ``m`` keys receives votes from all of them whose
    shared suffix is unique on both sides, so on real state dicts (where the
    relative paths below a module are unique) the optimum is always among the
    candidates.

Notes:
    Cost: ``O(N d)`` time and memory for ``N`` keys of depth ``d`` to build
    the trie and vote, plus ``O(N)`` per anchor scored exactly (usually one
    or two). The published 0.2 solver used a dynamic program over balanced
    sequences, ``O(N^2)`` or worse.

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> from torch_liberator.subtree_isomorphism import isomorphism_mapping
    >>> src = KeyTree(['conv1.weight', 'layer1.0.weight', 'fc.weight'])
    >>> dst = KeyTree(['backbone.body.conv1.weight',
    ...                'backbone.body.layer1.0.weight', 'head.weight'])
    >>> for k, v in isomorphism_mapping(src, dst).items():
    ...     print(k, '->', v)
    conv1.weight -> backbone.body.conv1.weight
    layer1.0.weight -> backbone.body.layer1.0.weight
"""
from collections import Counter
from zlib import crc32

__all__ = ['find_anchors', 'isomorphism_mapping', 'anchored_pairs']

#: above this many keys on a side, only a consistent sample of the keys
#: votes (see :func:`_voters`)
SAMPLE_ABOVE = 16384

#: a suffix-trie node votes only when (keys of side 1) * (keys of side 2) is
#: at most this; larger groups are suffixes like ``weight`` that say nothing
#: about where a subtree moved.
VOTE_LIMIT = 16


def _voters(tree, rate):
    """
    The key nodes that vote: all of them, or, at sampling ``rate`` r > 1, the
    keys whose last two components hash to 0 modulo r. Both trees use the
    same rule, so two keys that agree on their last two components are
    sampled together and a moved subtree keeps about 1/r of its votes.
    """
    nodes = tree.keys_below(tree.root)
    if rate <= 1:
        return nodes
    keys, sep = tree.key, tree.sep
    return [node for node in nodes
            if crc32(sep.join(keys[node].rsplit(sep, 2)[-2:]).encode()) % rate == 0]


def _suffix_votes(tree1, tree2):
    """
    Count, for each anchor pair, the key pairs whose longest common suffix
    leads to it (see the module docstring).
    """
    rate = -(-max(tree1.num_keys, tree2.num_keys) // SAMPLE_ABOVE)
    # suffix-trie node: [children by component, prefixes in tree1, in tree2]:
    # a key ending in the node's suffix contributes the tree node of what
    # remains of it when the suffix is cut off (the anchor it would vote for)
    root = [{}, [], []]
    for side, tree in ((1, tree1), (2, tree2)):
        label, parent = tree.label, tree.parent
        for node in _voters(tree, rate):
            tnode = root
            while node > 0:
                children = tnode[0]
                part = label[node]
                nxt = children.get(part)
                if nxt is None:
                    nxt = children[part] = [{}, [], []]
                tnode = nxt
                node = parent[node]
                tnode[side].append(node)
    votes = Counter()
    label1, label2 = tree1.label, tree2.label
    stack = list(root[0].values())
    while stack:
        children, anchors1, anchors2 = stack.pop()
        if not (anchors1 and anchors2):
            continue
        if len(anchors1) * len(anchors2) <= VOTE_LIMIT:
            for p in anchors1:
                up1 = label1[p] if p else None
                for q in anchors2:
                    if up1 is not None and q and label2[q] == up1:
                        continue  # the pair shares a longer suffix
                    votes[(p, q)] += 1
        stack.extend(children.values())
    return votes


def anchored_pairs(tree1, tree2, anchor):
    """
    The key pairs ``(P.s, Q.s)`` below an anchor pair ``(P, Q)``.

    Args:
        tree1 (KeyTree): source tree.
        tree2 (KeyTree): destination tree.
        anchor (Tuple[int, int]): a node of each tree.

    Returns:
        List[Tuple[int, int]]: key node pairs, in ``tree1`` pre-order.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.subtree_isomorphism import anchored_pairs
        >>> t1, t2 = KeyTree(['a.x', 'a.y']), KeyTree(['b.y', 'b.z'])
        >>> [(t1.key[u], t2.key[v]) for u, v in anchored_pairs(t1, t2, (1, 1))]
        [('a.y', 'b.y')]
    """
    node1, node2 = anchor
    lookup = tree2.node_of_key
    keys1 = tree1.key
    cut = len(tree1.path(node1)) + len(tree1.sep) if node1 != tree1.root else 0
    join = tree2.path(node2) + tree2.sep if node2 != tree2.root else ''
    resep = tree1.sep != tree2.sep
    pairs = []
    for key_node in tree1.keys_below(node1):
        if key_node == node1:
            continue
        rel = keys1[key_node][cut:]
        if resep:
            rel = rel.replace(tree1.sep, tree2.sep)
        other = lookup(join + rel)
        if other is not None:
            pairs.append((key_node, other))
    return pairs


def find_anchors(tree1, tree2, top=4):
    """
    The anchor pairs that explain the most keys, best first.

    Args:
        tree1 (KeyTree): source tree.
        tree2 (KeyTree): destination tree.
        top (int): how many anchors to return at most.

    Returns:
        List[Tuple[int, Tuple[int, int]]]: ``(number of keys, (P, Q))`` in
        decreasing number of keys; anchors that explain no key are left out.
        Ties are broken by votes, then by shallower anchors, then by order.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.subtree_isomorphism import find_anchors
        >>> t1 = KeyTree(['backbone.c.w', 'backbone.d.w', 'x.w'])
        >>> t2 = KeyTree(['module.c.w', 'module.d.w', 'y.w'])
        >>> [(n, t1.path(p), t2.path(q)) for n, (p, q) in find_anchors(t1, t2, top=2)]
        [(2, 'backbone', 'module'), (1, 'x', 'y')]
    """
    votes = _suffix_votes(tree1, tree2)
    root_pair = (tree1.root, tree2.root)
    votes.setdefault(root_pair, 0)
    # order candidates by votes (a lower bound of their exact count)
    candidates = sorted(votes.items(), key=lambda kv: (
        -kv[1], tree1.depth[kv[0][0]] + tree2.depth[kv[0][1]], kv[0]))
    scored = []
    for anchor, nvotes in candidates:
        bound = min(tree1.num_keys_below(anchor[0]),
                    tree2.num_keys_below(anchor[1]))
        if len(scored) >= top and bound <= scored[-1][0][0]:
            continue
        count = len(anchored_pairs(tree1, tree2, anchor))
        if count == 0:
            continue
        rank = (-count, -nvotes, tree1.depth[anchor[0]] + tree2.depth[anchor[1]],
                anchor)
        scored.append(((count, anchor), rank))
        scored.sort(key=lambda item: item[1])
        del scored[top:]
    return [item[0] for item in scored]


def isomorphism_mapping(tree1, tree2):
    """
    One-to-one key mapping of the maximum common subtree isomorphism.

    Args:
        tree1 (KeyTree): source tree.
        tree2 (KeyTree): destination tree.

    Returns:
        Dict[str, str]: source key -> destination key, in source order;
        empty when nothing corresponds.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.subtree_isomorphism import isomorphism_mapping
        >>> isomorphism_mapping(KeyTree(['a.w']), KeyTree(['b.v']))
        {}
    """
    anchors = find_anchors(tree1, tree2, top=1)
    if not anchors:
        return {}
    pairs = anchored_pairs(tree1, tree2, anchors[0][1])
    return {tree1.key[u]: tree2.key[v] for u, v in pairs}
