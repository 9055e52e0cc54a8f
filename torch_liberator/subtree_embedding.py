"""
Maximum common subtree embedding between two key trees.

An embedding keeps ancestor relations instead of parent-child edges: a level
may be skipped on either side, so ``layer1.0.conv.weight`` corresponds to
``backbone.body.layer1.0.conv.weight`` and ``features.0.weight`` to
``features.block.0.weight``. Matched nodes carry the same label, and a key
(leaf) is matched only below the image of the module that owns it: a
parameter keeps its module, so a lone ``fc.weight`` is never pushed into some
unrelated ``weight`` elsewhere in the model.

Algorithm:
    Top-down matching from a start pair (the two roots, or the anchors found
    by :func:`torch_liberator.subtree_isomorphism.find_anchors`). For a
    matched pair ``(u, v)`` the children of ``u`` are placed below ``v`` in
    three passes:

    1. a child goes to the child of ``v`` with the same label when that
       explains every key below it;
    2. the others go, best score first, to the best of the shallowest free
       nodes below ``v`` with their label (levels skipped in the
       destination);
    3. a child that found no place is skipped (a level missing in the
       destination) and its own children are placed below ``v`` instead;
       its keys then only go to direct children of ``v``.

    Taken destination subtrees are never reused, nor their ancestors, so the
    result is one-to-one and preserves ancestry. Scores are
    ``(keys matched, nodes matched)``: more keys first, then more agreeing
    path components. Scores of node pairs are memoized.

    This greedy search is exact when each level present on one side only has
    a label absent from the other — wrapping, unwrapping, renamed wrappers,
    inserted or removed levels, added or dropped subtrees. Where a label is
    ambiguous it tries at most ``MAX_CANDIDATES`` nodes per child.

Notes:
    Cost: each node of the source is scored against the destination node of
    the same label below its parent's image — one candidate when structures
    agree, at most ``MAX_CANDIDATES`` otherwise — with ``O(log N)`` lookups,
    so ``O(N log N)`` for ``N`` keys in the common cases and
    ``O(N MAX_CANDIDATES log N)`` at worst, against ``O(N^2)`` or more for a
    full ordered-forest dynamic program.

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> from torch_liberator.subtree_embedding import embedding_mapping
    >>> src = KeyTree(['features.0.weight', 'features.1.weight', 'fc.weight'])
    >>> dst = KeyTree(['features.block.0.weight', 'features.block.1.weight',
    ...                'head.fc6.weight'])
    >>> for k, v in embedding_mapping(src, dst).items():
    ...     print(k, '->', v)
    features.0.weight -> features.block.0.weight
    features.1.weight -> features.block.1.weight
"""
from bisect import bisect_right, insort

__all__ = ['embedding_mapping', 'MAX_CANDIDATES']

#: at most this many same-label destination nodes are tried for one child
MAX_CANDIDATES = 8

#: at most this many same-label nodes are scanned to find the shallowest
SCAN_LIMIT = 4096


class _Claims:
    """Disjoint destination subtrees already taken, as pre-order intervals."""

    def __init__(self, tree):
        self.tree = tree
        self.starts = []
        self.ends = {}

    def is_free(self, node):
        """True when ``node`` is neither inside nor above a taken subtree."""
        starts = self.starts
        i = bisect_right(starts, node)
        if i and self.ends[starts[i - 1]] > node:
            return False  # inside (or equal to) a taken subtree
        return not (i < len(starts) and starts[i] < self.tree.end[node])

    def take(self, node):
        insort(self.starts, node)
        self.ends[node] = self.tree.end[node]


class _Embedder:
    """
    Scores are pairs ``(keys matched, nodes matched)``: more keys first, then
    more agreeing path components, so ``a.b.x`` goes to ``W.a.b.x`` rather
    than ``b.x`` when both could.
    """

    def __init__(self, tree1, tree2):
        self.tree1 = tree1
        self.tree2 = tree2
        self.children1 = tree1.children
        self.children2 = tree2.children
        self.memo = {}

    def score(self, u, v):
        """Score of matching ``u`` to ``v``; memoized with its choices."""
        found = self.memo.get((u, v))
        if found is not None:
            return found[0]
        t1, t2 = self.tree1, self.tree2
        is_pair = t1.key[u] is not None and t2.key[v] is not None and u != t1.root
        choices = []
        keys, nodes = self._place(self.children1[u], v, _Claims(t2), choices)
        result = (keys + is_pair, nodes + 1)
        self.memo[(u, v)] = (result, choices)
        return result

    def _candidates(self, c, v, claims, direct):
        """
        The shallowest free nodes below ``v`` labeled like ``c``: keys for a
        key, inner nodes for an inner node.
        """
        t2 = self.tree2
        children2 = self.children2
        want_inner = bool(self.children1[c])
        keys2 = t2.key
        best_depth = None
        found = []
        for scanned, w in enumerate(t2.nodes_labeled(self.tree1.label[c], v)):
            if scanned >= SCAN_LIMIT:
                break
            if w == direct:
                continue
            if want_inner:
                if not children2[w]:
                    continue
            elif keys2[w] is None or children2[w]:
                continue
            d = t2.depth[w]
            if best_depth is not None and d > best_depth:
                continue
            if not claims.is_free(w):
                continue
            if best_depth is None or d < best_depth:
                best_depth, found = d, []
            found.append(w)
        return found[:MAX_CANDIDATES]

    def _place(self, sources, v, claims, choices, own=True):
        """
        Match the source nodes ``sources`` (siblings, or the children of
        skipped levels) to disjoint nodes below destination node ``v``.
        ``own`` says whether ``v`` is the image of their parent: only then
        may a key go deeper than a direct child of ``v``.
        """
        t1, t2 = self.tree1, self.tree2
        children1, children2 = self.children1, self.children2
        keys = nodes = 0
        leftover = []
        # 1. same label directly below v; a key can only go there
        for c in sources:
            direct = t2.child(v, t1.label[c])
            if direct is not None and not claims.is_free(direct):
                direct = None
            if not children1[c]:
                if t1.key[c] is None:
                    continue
                if direct is not None and t2.key[direct] is not None:
                    claims.take(direct)
                    choices.append((c, direct))
                    keys += 1
                    nodes += 1
                elif own:
                    leftover.append((c, None, (0, 0)))
                continue
            if direct is not None and children2[direct]:
                s = self.score(c, direct)
                if s[0] == t1.num_keys_below(c):
                    claims.take(direct)
                    choices.append((c, direct))
                    keys += s[0]
                    nodes += s[1]
                    continue
                leftover.append((c, direct, s))
            else:
                leftover.append((c, None, (0, 0)))
        # 2. otherwise the best of the shallowest same-label nodes below v,
        #    best-scoring sources first
        ranked = []
        for order, (c, direct, best) in enumerate(leftover):
            best_node = direct
            for w in self._candidates(c, v, claims, direct):
                s = self.score(c, w) if children1[c] else (1, 1)
                if s > best:
                    best, best_node = s, w
            ranked.append((best, -order, c, best_node))
        ranked.sort(reverse=True)
        skipped = []
        for best, _, c, w in ranked:
            if best[0] > 0 and claims.is_free(w):
                claims.take(w)
                choices.append((c, w))
                keys += best[0]
                nodes += best[1]
            else:
                skipped.append(c)
        # 3. a source level with no counterpart: place its children instead
        if skipped:
            skipped.sort()
            grandchildren = [g for c in skipped for g in children1[c]]
            k, n = self._place(grandchildren, v, claims, choices, own=False)
            keys += k
            nodes += n
        return keys, nodes

    def pairs(self, u, v):
        """Matched key pairs below the pair ``(u, v)``, in source order."""
        t1, t2 = self.tree1, self.tree2
        out = []
        stack = [(u, v)]
        while stack:
            a, b = stack.pop()
            if t1.key[a] is not None and t2.key[b] is not None and a != t1.root:
                out.append((a, b))
            if (a, b) in self.memo:
                stack.extend(reversed(self.memo[(a, b)][1]))
        out.sort()
        return out


def embedding_mapping(tree1, tree2, anchors=()):
    """
    One-to-one key mapping of a maximum common subtree embedding.

    Args:
        tree1 (KeyTree): source tree.
        tree2 (KeyTree): destination tree.
        anchors (Iterable[Tuple[int, int]]): extra node pairs to start from
            besides the two roots (see
            :func:`torch_liberator.subtree_isomorphism.find_anchors`); the
            start that explains the most keys wins, the roots on ties.

    Returns:
        Dict[str, str]: source key -> destination key, in source order.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.subtree_embedding import embedding_mapping
        >>> src = KeyTree(['module.conv.weight', 'module.conv.bias'])
        >>> dst = KeyTree(['conv.weight', 'conv.bias', 'extra.weight'])
        >>> embedding_mapping(src, dst)
        {'module.conv.weight': 'conv.weight', 'module.conv.bias': 'conv.bias'}
    """
    embedder = _Embedder(tree1, tree2)
    starts = [(tree1.root, tree2.root)]
    starts += [a for a in anchors if a not in starts]
    best, best_start = (-1, -1), None
    for start in starts:
        s = embedder.score(*start)
        if s > best:
            best, best_start = s, start
    pairs = embedder.pairs(*best_start)
    return {tree1.key[a]: tree2.key[b] for a, b in pairs}
