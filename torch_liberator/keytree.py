"""
Ordered trees of dotted key paths.

A state dict's keys (``layer1.0.conv1.weight``, ...) name the leaves of a tree
whose inner nodes are the module paths (``layer1``, ``layer1.0``, ...).
:class:`KeyTree` builds that tree once, in the order the keys are given, and
stores it as flat arrays indexed by pre-order position, so the solvers in
:mod:`torch_liberator.subtree_isomorphism` and
:mod:`torch_liberator.subtree_embedding` can ask "which nodes lie below this
one" (a contiguous range), "which child has this label" (a dict lookup of
its path) and "where else does this label occur" (a sorted array) in constant
or logarithmic time.

Notes:
    Building costs ``O(N)`` string operations for ``N`` nodes: a node is
    created by one ``rfind`` and a dict lookup of its parent's path. When the
    keys come module by module (as ``state_dict()`` lists them) creation
    order already is pre-order and no renumbering is needed; otherwise one
    ``O(N)`` traversal renumbers the nodes.

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> tree = KeyTree(['conv.weight', 'conv.bias', 'head.0.weight'])
    >>> tree.num_nodes, tree.num_keys
    (7, 3)
    >>> conv = tree.child(tree.root, 'conv')
    >>> [tree.key[n] for n in tree.keys_below(conv)]
    ['conv.weight', 'conv.bias']
"""
from bisect import bisect_left

from torch_liberator.keyorder import order_is_lost
from torch_liberator.shapes import shape_relation

__all__ = ['KeyTree', 'TIERS', 'anchored_pairs', 'pair_tier']

#: how well two keys' shapes agree, best first, as :func:`pair_tier` ranks
#: them: the same tensor (equal, equal but for size-1 dimensions, or not
#: known), a tensor to shove (same rank), nothing to reconcile (other rank)
TIERS = ('same', 'shove', 'veto')

_TIER_OF_RELATION = {'equal': 0, 'units': 0, 'unknown': 0, 'same_rank': 1,
                     'different_rank': 2}


class KeyTree:
    """
    An ordered tree over key paths split on a separator.

    Node ``0`` is the root (the empty path). Nodes are numbered in pre-order,
    so the nodes below node ``n`` are exactly ``range(n + 1, end[n])``.

    Attributes:
        label (List[str]): last path component of each node (root: ``''``).
        parent (List[int]): parent node (root: ``-1``).
        depth (List[int]): number of components in the node's path.
        end (List[int]): one past the last pre-order index below the node.
        children (List[List[int]]): children in first-seen key order.
        key (List[str | None]): the full key for nodes that are keys.
        shape (List[Tuple[int, ...] | None]): the shape of each key node
            (None for inner nodes and unknown shapes).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> tree = KeyTree(['a.b.c', 'a.d'])
        >>> tree.label
        ['', 'a', 'b', 'c', 'd']
        >>> tree.end[1], tree.depth[3]
        (5, 3)
    """

    def __init__(self, keys, sep='.', shapes=None):
        self.sep = sep
        keys = self._keys = list(keys)
        # Pass 1: create nodes in first-seen order. A node is found by its
        # path string, so a key whose parent module exists already (the
        # usual case) costs one rfind and a few dict and list operations,
        # not one dict step per path component.
        ids = {'': 0}
        labels = ['']
        parents = [-1]
        keyof = [None]
        childlists = [[]]
        seplen = len(sep)
        for key in keys:
            if type(key) is not str and not isinstance(key, str):
                raise TypeError(
                    f'keys must be strings, got {type(key).__name__}: {key!r}')
            node = ids.get(key)
            if node is not None:
                # the key names a node that exists: a module path, or a repeat
                if node == 0 or keyof[node] is not None:
                    raise ValueError(f'duplicate or empty key {key!r}')
                keyof[node] = key
                continue
            i = key.rfind(sep)
            parent = ids.get(key[:i]) if i >= 0 else 0
            if parent is None:
                # create the missing ancestors, top down
                missing = []
                path = key[:i]
                while parent is None:
                    missing.append(path)
                    j = path.rfind(sep)
                    path = path[:j] if j >= 0 else ''
                    parent = ids.get(path)
                for path in reversed(missing):
                    j = path.rfind(sep)
                    new = len(labels)
                    ids[path] = new
                    labels.append(path[j + seplen:] if j >= 0 else path)
                    parents.append(parent)
                    keyof.append(None)
                    childlists[parent].append(new)
                    childlists.append([])
                    parent = new
            new = len(labels)
            ids[key] = new
            labels.append(key[i + seplen:] if i >= 0 else key)
            parents.append(parent)
            keyof.append(key)
            childlists[parent].append(new)
            childlists.append([])
        paths = list(ids)
        n = len(labels)
        if not _is_preorder(childlists):
            order = _preorder(childlists)
            newid = [0] * n
            for pos, old in enumerate(order):
                newid[old] = pos
            labels = [labels[old] for old in order]
            keyof = [keyof[old] for old in order]
            paths = [paths[old] for old in order]
            parents = [-1] + [newid[parents[old]] for old in order[1:]]
            childlists = [[newid[c] for c in childlists[old]] for old in order]
            ids = {path: pos for pos, path in enumerate(paths)}
        depth = [0] * n
        for node in range(1, n):
            depth[node] = depth[parents[node]] + 1
        end = list(range(1, n + 1))
        for node in range(n - 1, 0, -1):
            p = parents[node]
            if end[node] > end[p]:
                end[p] = end[node]
        self.label = labels
        self.key = keyof
        self.parent = parents
        self.children = childlists
        self.depth = depth
        self.end = end
        self.root = 0
        self.num_nodes = n
        self._paths = paths
        self._ids = ids
        self._key_nodes = [node for node, k in enumerate(keyof) if k is not None]
        self.num_keys = len(self._key_nodes)
        self.shape = [None] * n
        if shapes:
            for node in self._key_nodes:
                self.shape[node] = shapes.get(keyof[node])
        self._label_index = None
        self._nkeys_below = None
        self._ordered = None

    @property
    def ordered(self):
        """
        Whether the keys came in a model's registration order, so that
        siblings listed first were registered first (False for sorted keys
        and the other orders of
        :func:`torch_liberator.keyorder.order_is_lost`).

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> keys = [f'blocks.{i}.{n}.weight' for i in range(12) for n in ('norm', 'fc', 'proj')]
            >>> KeyTree(keys).ordered, KeyTree(sorted(keys)).ordered
            (True, False)
        """
        if self._ordered is None:
            self._ordered = not order_is_lost(self._keys, sep=self.sep)
        return self._ordered

    def node_of_key(self, key):
        """
        The node of ``key``, or None when it is not a key of this tree.

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.b', 'c'])
            >>> tree.node_of_key('a.b'), tree.node_of_key('a'), tree.node_of_key('x')
            (2, None, None)
        """
        node = self._ids.get(key)
        return node if node is not None and self.key[node] is not None else None

    def path(self, node):
        """
        The full path of ``node`` (``''`` for the root).

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.b.c', 'a.d'])
            >>> [tree.path(n) for n in range(tree.num_nodes)]
            ['', 'a', 'a.b', 'a.b.c', 'a.d']
        """
        return self._paths[node]

    def child(self, node, label):
        """
        The child of ``node`` with ``label``, or None.

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.b'])
            >>> tree.child(tree.root, 'a'), tree.child(tree.root, 'b')
            (1, None)
        """
        if node == 0:
            return self._ids.get(label) if label else None
        return self._ids.get(self._paths[node] + self.sep + label)

    def keys_below(self, node):
        """
        Key nodes in the subtree of ``node`` (itself included), in pre-order.

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['x.a', 'y.b', 'x.c'])
            >>> [tree.key[n] for n in tree.keys_below(tree.child(0, 'x'))]
            ['x.a', 'x.c']
        """
        nodes = self._key_nodes
        lo = bisect_left(nodes, node)
        hi = bisect_left(nodes, self.end[node], lo)
        return nodes[lo:hi]

    def num_keys_below(self, node):
        """
        How many keys lie in the subtree of ``node`` (itself included).

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> KeyTree(['x.a', 'y.b', 'x.c']).num_keys_below(0)
            3
        """
        counts = self._nkeys_below
        if counts is None:
            counts = [0 if k is None else 1 for k in self.key]
            for other in range(self.num_nodes - 1, 0, -1):
                counts[self.parent[other]] += counts[other]
            self._nkeys_below = counts
        return counts[node]

    def nodes_labeled(self, label, below):
        """
        Nodes strictly below ``below`` whose label is ``label``, in pre-order.

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.x.w', 'b.x.w', 'x.w'])
            >>> [tree.path(n) for n in tree.nodes_labeled('x', tree.root)]
            ['a.x', 'b.x', 'x']
        """
        index = self._label_index
        if index is None:
            index = {}
            for node, lab in enumerate(self.label):
                index.setdefault(lab, []).append(node)
            self._label_index = index
        nodes = index.get(label, ())
        lo = bisect_left(nodes, below + 1)
        hi = bisect_left(nodes, self.end[below], lo)
        return nodes[lo:hi]


def pair_tier(tree1, node1, tree2, node2):
    """
    The tier (an index into :data:`TIERS`) of the shapes of two key nodes:
    0 for the same tensor, 1 for a tensor to shove, 2 for shapes that
    cannot be reconciled (see :func:`torch_liberator.shapes.shape_relation`).

    Example:
        >>> from torch_liberator.keytree import KeyTree, pair_tier
        >>> t1 = KeyTree(['w', 'v'], shapes={'w': (8,), 'v': (8, 3)})
        >>> t2 = KeyTree(['w'], shapes={'w': (8, 1, 1)})
        >>> w1, v1, w2 = t1.node_of_key('w'), t1.node_of_key('v'), t2.node_of_key('w')
        >>> [TIERS[pair_tier(t1, n, t2, w2)] for n in (w1, v1)]
        ['same', 'veto']
    """
    return _TIER_OF_RELATION[shape_relation(tree1.shape[node1],
                                            tree2.shape[node2])]


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
        >>> from torch_liberator.keytree import anchored_pairs
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


def _is_preorder(childlists):
    """
    True when nodes numbered in creation order are already numbered in
    pre-order (keys listed module by module, as ``state_dict()`` lists them).
    """
    n = len(childlists)
    end = list(range(1, n + 1))
    for node in range(n - 1, -1, -1):
        expected = node + 1
        for c in childlists[node]:
            if c != expected:
                return False
            expected = end[c]
        end[node] = expected
    return True


def _preorder(childlists):
    """Node ids in pre-order, children in first-seen order."""
    order = []
    stack = [0]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(childlists[node]))
    return order
