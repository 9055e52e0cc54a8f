"""
Ordered trees of dotted key paths.

A state dict's keys (``layer1.0.conv1.weight``, ...) name the leaves of a tree
whose inner nodes are the module paths (``layer1``, ``layer1.0``, ...).
:class:`KeyTree` builds that tree once, in the order the keys are given, and
stores it as flat arrays indexed by pre-order position, so the solvers in
:mod:`torch_liberator.subtree_isomorphism` and
:mod:`torch_liberator.subtree_embedding` can ask "which nodes lie below this
one" (a contiguous range), "which child has this label" (a dict lookup) and
"where else does this label occur" (a sorted array) in constant or
logarithmic time.

Notes:
    Building costs ``O(total number of path components)`` time and memory.

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

__all__ = ['KeyTree']


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
        path (List[str]): the node's full prefix path (root: ``''``).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> tree = KeyTree(['a.b.c', 'a.d'])
        >>> [tree.path[n] for n in range(tree.num_nodes)]
        ['', 'a', 'a.b', 'a.b.c', 'a.d']
        >>> tree.end[1], tree.depth[3]
        (5, 3)
    """

    def __init__(self, keys, sep='.'):
        self.sep = sep
        # Build with insertion-ordered child maps, then renumber in pre-order.
        childmaps = [{}]
        labels = ['']
        keyof = [None]
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(
                    f'keys must be strings, got {type(key).__name__}: {key!r}')
            node = 0
            for part in key.split(sep):
                cmap = childmaps[node]
                nxt = cmap.get(part)
                if nxt is None:
                    nxt = len(labels)
                    cmap[part] = nxt
                    childmaps.append({})
                    labels.append(part)
                    keyof.append(None)
                node = nxt
            if keyof[node] is not None:
                raise ValueError(f'duplicate key {key!r}')
            keyof[node] = key

        n = len(labels)
        order = []
        stack = [0]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(reversed(childmaps[node].values()))
        newid = [0] * n
        for pos, old in enumerate(order):
            newid[old] = pos

        self.label = [labels[old] for old in order]
        self.key = [keyof[old] for old in order]
        self.children = [[newid[c] for c in childmaps[old].values()]
                         for old in order]
        self._childmap = [{labels[c]: newid[c] for c in childmaps[old].values()}
                          for old in order]
        parent = [-1] * n
        depth = [0] * n
        path = [''] * n
        for node in range(n):
            pdepth = depth[node] + 1
            ppath = path[node]
            for c in self.children[node]:
                parent[c] = node
                depth[c] = pdepth
                path[c] = self.label[c] if node == 0 else ppath + sep + self.label[c]
        end = list(range(1, n + 1))
        for node in range(n - 1, 0, -1):
            p = parent[node]
            if end[node] > end[p]:
                end[p] = end[node]
        self.parent = parent
        self.depth = depth
        self.path = path
        self.end = end
        self.root = 0
        self.num_nodes = n
        self._key_nodes = [node for node in range(n) if self.key[node] is not None]
        self.num_keys = len(self._key_nodes)
        self.node_of_key = {self.key[node]: node for node in self._key_nodes}
        self._label_index = None
        self._nkeys_below = None

    def child(self, node, label):
        """
        The child of ``node`` with ``label``, or None.

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.b'])
            >>> tree.child(tree.root, 'a'), tree.child(tree.root, 'b')
            (1, None)
        """
        return self._childmap[node].get(label)

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

    def relative_path(self, node, ancestor):
        """
        The path of ``node`` below ``ancestor`` (``''`` when they are equal).

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.b.c'])
            >>> tree.relative_path(3, 1)
            'b.c'
            >>> tree.relative_path(3, 0)
            'a.b.c'
        """
        if node == ancestor:
            return ''
        if ancestor == 0:
            return self.path[node]
        return self.path[node][len(self.path[ancestor]) + len(self.sep):]

    def ancestor(self, node, levels):
        """
        The ancestor ``levels`` steps above ``node``.

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.b.c'])
            >>> tree.path[tree.ancestor(3, 2)]
            'a'
        """
        parent = self.parent
        for _ in range(levels):
            node = parent[node]
        return node

    def nodes_labeled(self, label, below):
        """
        Nodes strictly below ``below`` whose label is ``label``, in pre-order.

        Example:
            >>> from torch_liberator.keytree import KeyTree
            >>> tree = KeyTree(['a.x.w', 'b.x.w', 'x.w'])
            >>> [tree.path[n] for n in tree.nodes_labeled('x', tree.root)]
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
