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
    moved), which bounds the voting at ``O(1)`` per trie node; a larger
    node whose suffix names a module (``se.fc1.weight``) votes within the
    groups of keys of one shape that are that small.
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
    >>> mapping, ambiguous = isomorphism_mapping(src, dst)
    >>> for k, v in mapping.items():
    ...     print(k, '->', v)
    conv1.weight -> backbone.body.conv1.weight
    layer1.0.weight -> backbone.body.layer1.0.weight
"""
from collections import Counter

from torch_liberator.keytree import anchored_pairs, pair_tier
from torch_liberator.listparts import (
    in_other_lists, later_part_modules, shove_is_positional, start_is_supported)

__all__ = ['TOP_ANCHORS', 'find_anchors', 'isomorphism_mapping', 'merge_tied']

#: this many anchors (the best by names) are scored with shapes
TOP_ANCHORS = 4

#: a suffix-trie node votes only when (keys of side 1) * (keys of side 2) is
#: at most this; larger groups are suffixes like ``weight`` that say nothing
#: about where a subtree moved.
VOTE_LIMIT = 16


def _suffix_votes(tree1, tree2):
    """
    Count, for each anchor pair, the key pairs whose longest common suffix
    leads to it (see the module docstring).
    """
    # suffix-trie node: [children by component, keys of tree1, of tree2]
    # ending in the node's suffix; a key at trie depth d votes with the tree
    # node d levels above it (what remains when the suffix is cut off)
    root = [{}, [], []]
    for side, tree in ((1, tree1), (2, tree2)):
        label, parent = tree.label, tree.parent
        for key in tree.keys_below(tree.root):
            tnode = root
            node = key
            while node > 0:
                children = tnode[0]
                part = label[node]
                nxt = children.get(part)
                if nxt is None:
                    nxt = children[part] = [{}, [], []]
                tnode = nxt
                node = parent[node]
                tnode[side].append(key)
    votes = Counter()
    label1, label2 = tree1.label, tree2.label
    parent1, parent2 = tree1.parent, tree2.parent
    shape1, shape2 = tree1.shape, tree2.shape

    def up(parent, node, depth):
        for _ in range(depth):
            node = parent[node]
        return node

    def vote(keys1, keys2, depth):
        anchors2 = [up(parent2, q, depth) for q in keys2]
        for p in keys1:
            p = up(parent1, p, depth)
            up1 = label1[p] if p else None
            for q in anchors2:
                if up1 is not None and q and label2[q] == up1:
                    continue  # the pair shares a longer suffix
                votes[(p, q)] += 1

    stack = [(tnode, 1) for tnode in root[0].values()]
    while stack:
        (children, keys1, keys2), depth = stack.pop()
        if not (keys1 and keys2):
            continue
        if len(keys1) * len(keys2) <= VOTE_LIMIT:
            vote(keys1, keys2, depth)
        elif depth > 1:
            # a group too large to vote may hold few keys of one shape (the
            # squeeze-excitation of a stage's first block among sixteen);
            # split by shape only below a named module (se.fc1.weight): a
            # tensor's name alone (weight) with its shape is no evidence of
            # where a module went
            by_shape = {}
            for p in keys1:
                by_shape.setdefault(shape1[p], ([], []))[0].append(p)
            for q in keys2:
                group = by_shape.get(shape2[q])
                if group is not None:
                    group[1].append(q)
            if len(by_shape) > 1:
                for group1, group2 in by_shape.values():
                    if group2 and len(group1) * len(group2) <= VOTE_LIMIT:
                        vote(group1, group2, depth)
        stack.extend((tnode, depth + 1) for tnode in children.values())
    return votes


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


def isomorphism_mapping(tree1, tree2, anchors=None):
    """
    One-to-one key mapping of the maximum common subtree isomorphism.

    The best anchors by names (:data:`TOP_ANCHORS` of them) are ranked with
    shapes: pairs of the same tensor (equal shapes, or equal but for size-1
    dimensions, or unknown) in modules without pairs of other shapes, less
    the other pairs, first; then the pairs of the same tensor, then the
    pairs kept (those to shove too), then fewer levels cut off or added (a model's own copy before the EMA copy
    of a Lightning checkpoint). A module with a pair of different ranks (a
    BatchNorm against a convolution of the same name) loses all its pairs.
    Equally good anchors that map a key differently make it ambiguous; when
    that leaves nothing, the next best anchors are taken, less the tied
    keys.

    Args:
        tree1 (KeyTree): source tree (with shapes, when known).
        tree2 (KeyTree): destination tree (with shapes, when known).
        anchors (List[Tuple[int, Tuple[int, int]]] | None): what
            ``find_anchors(tree1, tree2, top=TOP_ANCHORS)`` returns, when
            already computed (the embedding starts from the same anchors);
            None computes it.

    Returns:
        Tuple[Dict[str, str], Dict[str, Tuple[str, ...]]]: source key ->
        destination key, in source order (empty when nothing corresponds);
        and the ambiguous source keys with their equally good destination
        keys (left out of the mapping).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.subtree_isomorphism import isomorphism_mapping
        >>> isomorphism_mapping(KeyTree(['a.w']), KeyTree(['b.v']))
        ({}, {})
        >>> src = KeyTree(['conv.w'])
        >>> dst = KeyTree(['x.conv.w', 'y.conv.w'])
        >>> isomorphism_mapping(src, dst)
        ({}, {'conv.w': ('x.conv.w', 'y.conv.w')})
    """
    if anchors is None:
        anchors = find_anchors(tree1, tree2, top=TOP_ANCHORS)
    ranked = []
    for _, anchor in anchors:
        pairs = [(u, v, pair_tier(tree1, u, tree2, v))
                 for u, v in anchored_pairs(tree1, tree2, anchor)]
        if not start_is_supported(tree1, tree2, anchor, pairs):
            # renamed on both sides (features <-> high), and only shapes
            # speak for it
            continue
        # a module with a pair of different ranks is another kind of module
        vetoed = {tree1.parent[u] for u, v, tier in pairs if tier == 2 or (
            tier and shove_is_positional(tree1, u, tree2, v, anchor))}
        vetoed.update(later_part_modules(tree1, tree2, anchor, pairs))
        if tree1.label[anchor[0]] != tree2.label[anchor[1]]:
            lists = {}
            vetoed.update(tree1.parent[u] for u, v, _ in pairs
                          if in_other_lists(tree1, u, tree2, v, anchor, lists))
        good = sum(tier == 0 for u, v, tier in pairs
                   if tree1.parent[u] not in vetoed)
        clean = _clean_pairs(tree1, pairs, vetoed)
        against = len(pairs) - clean
        pairs = [(u, v) for u, v, tier in pairs
                 if tree1.parent[u] not in vetoed]
        levels = tree1.depth[anchor[0]] + tree2.depth[anchor[1]]
        # among equals, the place the checkpoint fills whole (a b0 into the
        # b0 of a model holding a b1 and a b0) before one it fills in part
        unfilled = tree2.num_keys_below(anchor[1]) - len(pairs)
        ranked.append(((clean - against, good, len(pairs), -levels, -unfilled), pairs))
    mapping, ambiguous = {}, {}
    for best in sorted({rank for rank, _ in ranked}, reverse=True):
        # equally good anchors, in find_anchors' order (most votes first)
        mapping, tied = merge_tied(
            [(dict(pairs), {}) for rank, pairs in ranked if rank == best])
        # a tie that leaves nothing does not hide the next best anchor, as
        # long as that one stays clear of the tied keys
        taken = set().union(*ambiguous.values())
        mapping = {u: v for u, v in mapping.items()
                   if u not in ambiguous and v not in taken}
        ambiguous.update(tied)
        if mapping:
            break
    keys1, keys2 = tree1.key, tree2.key
    return ({keys1[u]: keys2[v] for u, v in sorted(mapping.items())},
            {keys1[u]: tuple(keys2[v] for v in sorted(vs))
             for u, vs in sorted(ambiguous.items())})


def _clean_pairs(tree1, pairs, vetoed=()):
    """
    How many of the key pairs ``(a, b, tier)`` hold the same tensor in a
    block (the module around ``a``'s module) none of whose pairs is of
    other shapes, their module not ``vetoed``. A pair of other shapes,
    shoved or vetoed, is evidence against its place, and so against the
    pairs of the same tensor in the block around it: of two places with
    the same names (a basic-block checkpoint, its own copy and a
    bottleneck network side by side, whose BatchNorms have the same
    widths), the one whose blocks are all the same wins. (The embedding
    reads only list items as blocks: ``subtree_embedding``'s starts include
    sub-starts, and a head's shove must not let them win.)
    """
    parent = tree1.parent
    odd = {parent[parent[a]] for a, _, tier in pairs if tier}
    return sum(not tier and parent[parent[a]] not in odd and parent[a] not in vetoed
               for a, _, tier in pairs)


def merge_tied(results):
    """
    One answer from several equally good ones: the first, less what the
    others contradict.

    A source node is ambiguous when the answers send it to different
    destinations, or when another answer gives its destination to another
    source; what only one answer maps (answers explaining disjoint parts)
    is kept from the first.

    Args:
        results (List[Tuple[Dict[int, int], Dict[int, Set[int]]]]): node
            mappings, each with its own ambiguous nodes and their
            candidates.

    Returns:
        Tuple[Dict[int, int], Dict[int, Set[int]]]: the mapping (ambiguous
        nodes left out) and the ambiguous nodes with their candidates.

    Example:
        >>> from torch_liberator.subtree_isomorphism import merge_tied
        >>> merge_tied([({1: 5, 2: 6}, {}), ({1: 7}, {}), ({3: 6}, {})])
        ({}, {1: {5, 7}, 2: {6}})
        >>> merge_tied([({1: 5}, {}), ({2: 6}, {})])
        ({1: 5}, {})
    """
    first, ambiguous = results[0]
    ambiguous = {u: set(vs) for u, vs in ambiguous.items()}
    owner = {v: u for u, v in first.items()}
    for other, other_ambiguous in results[1:]:
        for u, v in other.items():
            if u in first and first[u] != v:
                ambiguous.setdefault(u, {first[u]}).add(v)
            elif owner.get(v, u) != u:
                ambiguous.setdefault(owner[v], {v})
        for u, vs in other_ambiguous.items():
            if u in first or u in ambiguous:
                ambiguous.setdefault(u, set()).update(vs)
    mapping = {u: v for u, v in first.items() if u not in ambiguous}
    return mapping, ambiguous
