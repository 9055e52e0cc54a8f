"""
The scorer of the maximum common subtree embedding: how well one source node
matches one destination node, memoized, and the key pairs below a matched
pair (:class:`Embedder`). :mod:`torch_liberator.subtree_embedding` picks the
starts and turns their pairs into a mapping.

Three rules keep the result trustworthy:

* a module's tensors (the keys directly below one node) go to one module or
  to none: they are matched by name below the image of their module, and a
  module whose tensors include a pair of different ranks (a convolution
  against a BatchNorm) is not matched at all;
* shapes rank the candidates: a pair of the same tensor (equal shapes, or
  equal but for size-1 dimensions) beats a pair to shove (same rank, other
  sizes), which is kept only when the two keys have the same relative path
  (a 1000-class head into a 10-class head);
* two equally good candidates are a tie, not a choice: the source subtree is
  left out and reported as ambiguous. Being closer (fewer levels skipped) is
  not a tie, except between places that only shapes find (renamed ones): a
  child of ``v`` and a grandchild below an inserted level tie (a regnet's
  shortcut ``proj`` and first conv ``f.a``, of one shape, against timm's
  ``conv1`` and a wrapped ``downsample.features``, cross-library fuzz seed
  5131).

Algorithm:
    Top-down matching from a start pair (which starts are tried and which
    one wins is :mod:`torch_liberator.subtree_embedding`'s part). For a
    matched pair ``(u, v)`` the module tensors of ``u`` are matched to those
    of ``v`` by name (or, when ``v`` holds none, to those below a chain of
    single children of ``v``, or of the one child of ``v`` whose tensors
    have their names and shapes, no node deeper below ``v`` holding such
    tensors too: PEFT's LoRA ``base_layer`` beside ``lora_A`` and
    ``lora_B``, not a bottleneck's ``conv3`` beside ``downsample.0``; and
    the same on the source's side), and the inner children of ``u`` are
    placed below ``v``:

    1. a child goes to the child of ``v`` with the same label when that
       explains every key below it with the same tensors, but never an
       item past an earlier item that its namesake does not fit, in two
       lists of different lengths (RetinaNet's ``conv.{0..3}.0`` against
       FCOS's ``conv.{0,3,6,9}`` with a GroupNorm after each conv: the
       fourth conv is not FCOS's ``conv.3``);
    2. the others compete for candidates: the same-label child of ``v``, the
       shallowest free same-label nodes deeper below ``v`` (levels inserted
       in the destination), and children or grandchildren of ``v`` with
       another label whose subtree agrees completely with shapes (a renamed
       level: ``layer1`` <-> ``4``, or ``layer1`` <-> ``body.0``), or, for
       two lists of the same items, one named at least (``layer1.{0,1}``
       <-> ``res2.{0,1}``), in part: every item found its namesake and every
       pair below is of the same tensor (the positions are kept, and the
       names below them agree). A named child renamed to one item of a
       list ties with the list's other free items of the same shapes
       (``part`` <-> ``stage.2`` beside equal ``stage.0``, ``stage.1``:
       the number is chance), and an item renamed to a named module ties
       with the equal items beside it that still seek places (``3`` <->
       ``core`` beside equal ``1``, ``2``: a wrapper that makes one item
       look like the module is no evidence). A subtree that agrees whole
       but for the ties met inside it is renamed too, its ties reported
       (the block that holds the shortcut and the conv of one shape is
       still that block). A module split under joined names beside the
       renamed place (``conv1_conv`` and ``conv1_bn`` for a ``conv1`` of
       a conv and a BatchNorm), holding its shapes, is as good a place: a
       tie; so is such a module beside the source a source as good
       (``branch1_conv`` and ``branch1_bn`` beside ``branch2_0``, renamed
       to a ``branch1`` of their shapes). A lone module (tensors, no
       submodules) is renamed only to a lone module, only to a child of
       ``v``, only when one of the two labels is a
       number (``conv1`` <-> ``0``), only beside a module of its parent
       that places tensors below ``v`` too (when it has any), and never
       below a skipped level: its shapes alone would speak for it.
       Candidates are granted best score first; equal best scores for one
       source, or for one destination, make a tie, and a later source that
       comes for a place of a tie, or for a node inside one, meets it too
       (a block's branches, sought a level deeper once the block found no
       place whole, do not go to the one free block they fit in part while
       the equal blocks they fit whole are tied). A place that only shapes
       found counts its tensors, not the positions that agree below it
       (``proj.{0,1}`` is no likelier a flattened ``conv1.{0,1}`` than a
       ``downsample.{conv,bn}`` of the same shapes);
    3. a child that found nothing is skipped (a level missing in the
       destination): its inner children compete below ``v`` instead; not
       one whose free namesake below ``v`` holds submodules too (it is that
       module, fitting it in nothing: its branches do not go into another
       block of their names). The named parts of a list cut in place keeping its numbers are skipped
       even when they found places, if their items, by number, place as
       many of the same tensors below ``v`` or more. A
       child whose one place of its name holds only ties (two equal blocks
       renamed on both sides) is not skipped: it takes that place, and the
       ties are reported. A numbered child (an item of a list) is never skipped, and a number
       below a skipped level is not sought deeper below ``v``: the number
       alone does not say which list it was in (``stages.0.blocks.2`` is
       not ``features.2``); nor does it take its namesake below ``v``
       unless that explains every key below it (timm's ``blocks.0``,
       ``blocks`` skipped, is not torchvision's ``features`` as ``0``,
       whose stem would take its BatchNorm; a mixer's ``blocks.1`` is
       none of the model's ``1.{0..7}``), nor, as a lone module, while
       items of its list that find their numbers do not fit them, nor its
       namesake below a level inserted in the destination unless the two
       lists agree item by item. An item sought
       below a level inserted in the destination (not below a skipped one)
       likewise needs a place that explains it whole.

    Taken destination subtrees are never reused, nor their ancestors, so the
    result is one-to-one and preserves ancestry. Scores are tuples
    ``(same tensors, tensors to shove, agreeing labels, -levels skipped)``
    compared in that order, memoized per node pair.

Notes:
    Cost: each source node is scored against the same-label destination
    nodes near its parent's image — one when structures agree, at most
    ``MAX_CANDIDATES`` otherwise — plus, where labels disagree, against the
    differently-labeled siblings that could be renamed ones (as many keys
    below, or lists of the same items; at most ``RENAME_LIMIT`` pairs per
    node pair); with ``O(log N)`` lookups that is ``O(N log N)`` for ``N`` keys
    when names mostly agree. A full ordered-forest dynamic program (the
    published 0.2 solver) costs ``O(N^2)`` or more.

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> from torch_liberator.embedder import Embedder
    >>> src = KeyTree(['features.0.weight', 'features.1.weight'])
    >>> dst = KeyTree(['features.block.0.weight', 'features.block.1.weight'])
    >>> embedder = Embedder(src, dst)
    >>> embedder.score(src.root, dst.root)  # same tensors (unknown shapes fit), to shove, labels, -skips
    (2, 0, 5, -2)
    >>> pairs, ties = embedder.collect(src.root, dst.root)
    >>> sorted((src.key[a], dst.key[b]) for a, b, tier in pairs)
    [('features.0.weight', 'features.block.0.weight'), ('features.1.weight', 'features.block.1.weight')]
"""
import heapq
from bisect import bisect_right, insort
from collections import Counter

from torch_liberator.keytree import pair_tier
from torch_liberator.listparts import list_items

__all__ = ['Embedder', 'MAX_CANDIDATES', 'RENAME_LIMIT', 'SCAN_LIMIT']

#: at most this many same-label destination nodes are tried for one child
MAX_CANDIDATES = 8

#: at most this many same-label nodes are scanned to find the shallowest
SCAN_LIMIT = 4096

#: at most this many (source child, renamed destination node) pairs that
#: could agree (as many keys below each, or lists of the same items) are
#: scored below one node pair
RENAME_LIMIT = 1024

_ZERO = (0, 0, 0, 0)


class _Claims:
    """Disjoint destination subtrees already taken, as pre-order intervals."""

    def __init__(self, tree):
        self.tree = tree
        self.starts = []
        self.ends = {}
        self.contested = set()  # free places one tied source may own
        self.tied = set()  # taken subtrees that nobody got: places of a tie

    def is_free(self, node):
        """True when ``node`` is neither inside nor above a taken subtree."""
        starts = self.starts
        i = bisect_right(starts, node)
        if i and self.ends[starts[i - 1]] > node:
            return False  # inside (or equal to) a taken subtree
        return not (i < len(starts) and starts[i] < self.tree.end[node])

    def take(self, node, tie=False):
        insort(self.starts, node)
        self.ends[node] = self.tree.end[node]
        if tie:
            self.tied.add(node)

    def in_tie(self, node):
        """True when ``node`` is inside (or is) a subtree taken by a tie."""
        starts = self.starts
        i = bisect_right(starts, node)
        return bool(i) and starts[i - 1] in self.tied and self.ends[starts[i - 1]] > node

    def copy(self):
        """The same claims, to try placements on without touching these."""
        other = _Claims(self.tree)
        other.starts, other.ends = list(self.starts), dict(self.ends)
        other.contested = set(self.contested)
        other.tied = set(self.tied)
        return other


def _joined_groups(tree, parent, inner, leaves, skip):
    """The lone children of ``parent`` (tensors, no submodules), ``skip``
    aside, whose labels join one word with ``_`` (``conv1_conv``,
    ``conv1_bn``), grouped by that word: the groups of two or more."""
    groups = {}
    for e in tree.children[parent]:
        label = tree.label[e]
        if e != skip and '_' in label and not inner[e] and leaves[e]:
            groups.setdefault(label.split('_', 1)[0], []).append(e)
    return [members for members in groups.values() if len(members) >= 2]


def _tensors_of(tree, leaves):
    """The names and shapes of one module's tensors (``leaves``: name ->
    key node), as a hashable set."""
    return frozenset((label, tree.shape[key]) for label, key in leaves.items())


def _module_index(tree):
    """Per node: ``{label: key node}`` of its leaf keys, and its inner children."""
    leaves = [None] * tree.num_nodes
    inner = [()] * tree.num_nodes
    children, keys, labels = tree.children, tree.key, tree.label
    for node in range(tree.num_nodes):
        kids = children[node]
        if not kids:
            continue
        found = {labels[c]: c for c in kids
                 if not children[c] and keys[c] is not None}
        leaves[node] = found or None
        if len(found) < len(kids):
            inner[node] = [c for c in kids if children[c]]
    return leaves, inner


def _down_chain(leaves, inner, node):
    """Follow single inner children down to the first node with tensors."""
    while leaves[node] is None and len(inner[node]) == 1:
        node = inner[node][0]
    return node


def _numbers_carry(items, parents, siblings, tree, inner):
    """
    Whether list items found below levels inserted on one side (children of
    the nodes ``parents`` of ``tree``) may be matched by their numbers to the
    numbered nodes ``items`` of the other side: only when their numbers
    still say which item they are. Not when a number occurs under two of
    the parents (a list split in parts, each renumbered from 0), nor beside
    them (a numbered node among ``siblings``), nor when there are fewer
    items than on the other side (the list's head moved elsewhere: its
    renumbered tail would pass for it).
    """
    if not parents or any(tree.label[s].isdigit() for s in siblings):
        return False
    numbers = [tree.label[g] for p in parents for g in inner[p]
               if tree.label[g].isdigit()]
    return len(set(numbers)) == len(numbers) >= len(items)


class Embedder:
    """
    Scores node pairs of two key trees and collects the key pairs below
    them (see the module docstring for the rules).

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.embedder import Embedder
        >>> embedder = Embedder(KeyTree(['a.w']), KeyTree(['m.a.w']))
        >>> [embedder.tree2.key[v] for v in embedder.hanging(2)]
        [None, None]
    """

    def __init__(self, tree1, tree2):
        self.tree1 = tree1
        self.tree2 = tree2
        self.leaves1, self.inner1 = _module_index(tree1)
        self.leaves2, self.inner2 = _module_index(tree2)
        self.memo = {}
        self.named_pairs1 = None  # (parent label, label) of the source's nodes
        self.sibling_places = {}  # (source node, destination node) -> children placing
        self.shape_runs = {}  # destination node -> shapes of its keys, in order
        self.source_shapes = {}  # source node -> shapes of its keys, counted
        self.alike = {}  # side -> {module tensors' names and shapes: nodes}
        self.shapes_known = (
            any(tree1.shape[n] is not None for n in tree1.keys_below(0))
            and any(tree2.shape[n] is not None for n in tree2.keys_below(0)))

    def _leaf_pairs(self, x, y):
        """
        The module tensors of source node ``x`` matched by name to those of
        destination node ``y``: ``(pairs, same, shove)``; nothing when some
        pair has different ranks (a module never takes another kind's).
        """
        leaves1, leaves2 = self.leaves1[x], self.leaves2[y]
        if not (leaves1 and leaves2):
            return [], 0, 0
        t1, t2 = self.tree1, self.tree2
        pairs = []
        fair = 0
        for label, a in leaves1.items():
            b = leaves2.get(label)
            if b is None:
                continue
            tier = pair_tier(t1, a, t2, b)
            if tier == 2:
                return [], 0, 0
            pairs.append((a, b, tier))
            fair += tier
        return pairs, len(pairs) - fair, fair

    def score(self, u, v):
        """Score of matching ``u`` to ``v``; memoized with its choices."""
        found = self.memo.get((u, v))
        if found is not None:
            return found[0]
        t1, t2 = self.tree1, self.tree2
        claims = _Claims(t2)
        sources = self.inner1[u]
        leafpairs, good, fair = self._leaf_pairs(u, v)
        skips = 0
        if not leafpairs and self.leaves1[u] and not self.leaves2[v]:
            # levels inserted between the module and its tensors in the
            # destination: v is a chain of single children down to them,
            # or holds them in one child beside others (a LoRA wrapper's
            # base_layer beside its lora_A and lora_B)
            w = _down_chain(self.leaves2, self.inner2, v)
            if w == v:
                w = self._one_child_alike(u, v, 2)
            if w != v:
                leafpairs, good, fair = self._leaf_pairs(u, w)
                for _, b, _ in leafpairs:
                    claims.take(b)  # w's tensors; its children stay free
                if leafpairs:
                    skips = t2.depth[w] - t2.depth[v]
        elif not leafpairs and self.leaves2[v] and not self.leaves1[u]:
            # ... or in the source
            x = _down_chain(self.leaves1, self.inner1, u)
            if x == u:
                x = self._one_child_alike(v, u, 1)
            if x != u:
                leafpairs, good, fair = self._leaf_pairs(x, v)
                if leafpairs:
                    sources = self.inner1[x]
                    skips = t1.depth[x] - t1.depth[u]
        if (u and t1.key[u] is not None and t2.key[v] is not None
                and pair_tier(t1, u, t2, v) < 2):
            # a key that also has children (rare): the node itself
            tier = pair_tier(t1, u, t2, v)
            leafpairs.append((u, v, tier))
            good += not tier
            fair += tier
        choices = []
        placed = _ZERO
        if sources:
            placed = self._place(sources, v, claims, choices,
                                 renames=not self._positional(u, v))
        result = (good + placed[0], fair + placed[1],
                  len(leafpairs) + placed[2], placed[3] - skips)
        self.memo[(u, v)] = (result, leafpairs, choices)
        return result

    def _one_child_alike(self, node, parent, side):
        """
        The one inner child of ``parent`` (a node of tree ``side``, 1 or 2)
        whose tensors are those of ``node`` (of the other tree): the same
        names, each of the same shape; ``parent`` itself when there is no
        such child or more than one, or when a node deeper below
        ``parent`` holds such tensors too. A module's tensors moved one
        level down beside siblings of other tensors (PEFT's LoRA wraps a Linear
        as ``base_layer``, ``lora_A``, ``lora_B``) are still that module's;
        a bottleneck block is not its ``conv3`` while its ``downsample.0``
        holds a kernel of that shape too (a resnext50 block of a list cut
        in parts, ``trunk.0``, was taken for the flattened model's
        ``downsample`` conv, ``0.7.0``; mutation fuzz seed 1988 of
        ``--wider``).
        """
        mine = self.leaves1[node] if side == 2 else self.leaves2[node]
        tree, other = (self.tree2, self.tree1) if side == 2 else (self.tree1, self.tree2)
        leaves, inner = (self.leaves2, self.inner2) if side == 2 else (self.leaves1, self.inner1)
        if not self.shapes_known:
            return parent
        found = parent
        for child in inner[parent]:
            theirs = leaves[child]
            if (theirs is None or theirs.keys() != mine.keys() or any(
                    tree.shape[theirs[label]] is None
                    or tree.shape[theirs[label]] != other.shape[mine[label]]
                    for label in mine)):
                continue
            if found != parent:
                return parent  # two such children: a tie, not a place
            found = child
        if found != parent and any(parent < n < tree.end[parent] and n != found
                                   for n in self._alike_nodes(side, found)):
            return parent  # ... or one deeper
        return found

    def _alike_nodes(self, side, node):
        """The nodes of tree ``side`` whose module tensors have the names
        and shapes of ``node``'s."""
        tree, leaves = (self.tree2, self.leaves2) if side == 2 else (self.tree1, self.leaves1)
        index = self.alike.get(side)
        if index is None:
            index = self.alike[side] = {}
            for n, found in enumerate(leaves):
                if found:
                    index.setdefault(_tensors_of(tree, found), []).append(n)
        return index.get(_tensors_of(tree, leaves[node]), ())

    def _beside_its_namesake(self, c, v, claims):
        """
        Whether the module ``c`` (with submodules) has a free namesake
        below ``v`` that holds submodules too: ``c`` is that module, though
        it fits it in nothing, and is not a level missing in the model
        whose children may be sought anywhere below ``v`` (inception's
        ``Mixed_6a``, its branches nested against the model's under joined
        names, is not skipped to send ``branch3x3dbl_1`` into the model's
        ``Mixed_5d``, whose branch of that name and shapes was joined in
        the checkpoint; mutation fuzz seed 85 of ``--joined --cross --wide
        --reorder``).
        """
        d = self.tree2.child(v, self.tree1.label[c])
        return (d is not None and bool(self.inner1[c]) and bool(self.inner2[d])
                and claims.is_free(d))

    def _only_ties(self, c, d):
        """Whether ``c`` scored against ``d`` placed nothing and met ties."""
        s = self.score(c, d)
        return not s[0] and not s[1] and any(kind == 'tie' for kind, _, _ in self.memo[c, d][2])

    def _tied_keys(self, c, d):
        """How many keys below ``c`` ties left out when ``c`` was scored
        against ``d``."""
        self.score(c, d)
        return sum(self.tree1.num_keys_below(x) for x, _ in self.collect(c, d)[1])

    def _same_list(self, c, d):
        """
        True when the lists ``c`` and ``d`` (``layer1`` and ``res2``, one
        named at least) hold the same items and each item of ``c`` went to
        its namesake, with a tensor of the same shape at least, when ``c``
        was scored against ``d``: the positions are
        kept, so the names below the items speak for the rename even where
        the two agree only in part.
        """
        t1, t2 = self.tree1, self.tree2
        if t1.label[c].isdigit() and t2.label[d].isdigit():
            return False  # an item renumbered as another: only positions
        items = list_items(t1, c)
        if not items or items != list_items(t2, d):
            return False
        _, _, choices = self.memo[(c, d)]
        paired = {(x, y) for kind, x, y in choices if kind == 'pair'}
        for x in t1.children[c]:
            y = t2.child(d, t1.label[x])
            if (x, y) not in paired or not self.memo[(x, y)][0][0]:
                return False  # (an item that only takes shoves found no namesake)
        return True

    def _items_agree(self, p, q):
        """Whether every numbered child of ``p`` whose namesake is below
        ``q`` is that namesake's same tensors, whole."""
        t1, t2 = self.tree1, self.tree2
        for x in self.inner1[p]:
            y = t2.child(q, t1.label[x]) if t1.label[x].isdigit() else None
            if y is not None and (not t2.children[y]
                                  or self.score(x, y)[0] != t1.num_keys_below(x)):
                return False
        return True

    def _deeper(self, c, v, claims, direct):
        """The shallowest inner nodes below ``v`` labeled like ``c``, free
        or inside a subtree that a tie took."""
        t2 = self.tree2
        children2 = t2.children
        best_depth = None
        found = []
        for scanned, w in enumerate(t2.nodes_labeled(self.tree1.label[c], v)):
            if scanned >= SCAN_LIMIT:
                break
            if w == direct or not children2[w] or t2.parent[w] == v:
                continue
            d = t2.depth[w]
            if best_depth is not None and d > best_depth:
                continue
            if not claims.is_free(w) and not claims.in_tie(w):
                continue  # (a place inside a tie stays one: who seeks it meets the tie)
            if best_depth is None or d < best_depth:
                best_depth, found = d, []
            found.append(w)
        return found[:MAX_CANDIDATES]

    def _siblings_place(self, c, v):
        """Whether a module beside ``c`` (another child of its parent)
        places a tensor of the same shape in a module of ``v``, or ``c`` is
        its parent's only module."""
        u = self.tree1.parent[c]
        if len(self.inner1[u]) == 1:
            return True
        found = self.sibling_places.get((u, v))
        if found is None:
            found = {x for x in self.inner1[u]
                     if any(self.score(x, w)[0] for w in self.inner2[v])}
            self.sibling_places[u, v] = found
        return bool(found - {c})

    def _lone_fits(self, c, w):
        """
        Whether the lone module ``c`` may go to ``w``, found below levels
        inserted in the destination: not when ``w``'s parent has another
        name (or a number) and the source has a module of ``w``'s name below a parent of
        that name (``norm`` is not ``layers_2.downsample.norm`` while
        ``layers.2.downsample.norm`` exists: a final norm and a patch
        merging's norm of one width).
        """
        t1, t2 = self.tree1, self.tree2
        parent_label = t2.label[t2.parent[w]]
        if parent_label == t1.label[t1.parent[c]] and not parent_label.isdigit():
            return True  # (equal numbers are no evidence: any list has a 0)
        if self.named_pairs1 is None:
            self.named_pairs1 = {(t1.label[t1.parent[n]], t1.label[n])
                                 for n in range(1, t1.num_nodes)}
        return (parent_label, t2.label[w]) not in self.named_pairs1

    def _equal_items(self, d, claims):
        """
        The free items of ``d``'s list (``d`` numbered) other than ``d``
        that hold tensors of ``d``'s shapes, in order: places as good as
        ``d`` for a named module that only its shapes placed there.
        """
        t2 = self.tree2
        parent = t2.parent[d]
        if not t2.label[d].isdigit() or parent is None:
            return []
        run = self._shape_run(d)
        return [e for e in self.inner2[parent]
                if e != d and t2.label[e].isdigit() and claims.is_free(e)
                and t2.num_keys_below(e) == len(run) and self._shape_run(e) == run]

    def _equal_sources(self, c, pending):
        """The numbered sources of ``pending`` other than ``c`` that hold
        as many tensors of each shape as ``c``: items that ``c``'s place
        fits as well, whatever levels wrap their modules."""
        return [e for e, _ in pending
                if e != c and self.tree1.label[e].isdigit()
                and self._source_shapes(e) == self._source_shapes(c)]

    def _source_shapes(self, node):
        """The shapes of the source keys below ``node``, counted."""
        found = self.source_shapes.get(node)
        if found is None:
            t1 = self.tree1
            found = frozenset(Counter(t1.shape[k] for k in t1.keys_below(node)).items())
            self.source_shapes[node] = found
        return found

    def _joined_alike(self, c, d, v, claims):
        """
        The first of free lone children of ``v`` (not ``d``) whose labels
        join one word with ``_`` (``conv1_conv``, ``conv1_bn``), two or
        more, that together hold tensors of the shapes below source node
        ``c``: a module split under joined names, as good a place for
        ``c`` as ``d`` is, though no node holds it. Empty when there is
        none.
        """
        t2 = self.tree2
        groups = _joined_groups(t2, v, self.inner2, self.leaves2, d)
        if not groups:
            return []
        mine = self._source_shapes(c)
        for members in groups:
            if all(claims.is_free(e) for e in members):
                shapes = Counter(t2.shape[k] for e in members for k in t2.keys_below(e))
                if frozenset(shapes.items()) == mine:
                    return [members[0]]
        return []

    def _joined_sources(self, c, d, pending):
        """
        The mirror of :meth:`_joined_alike`: the lone siblings of ``c``
        whose labels join one word with ``_`` (``branch1_conv``,
        ``branch1_bn``), two or more, all in ``pending``, that together
        hold tensors of the shapes below destination node ``d``: a module
        split under joined names beside ``c``, as good a source for ``d``
        as ``c`` is (each member meets ``c`` in the tie). Empty when there
        is none.
        """
        t1, t2 = self.tree1, self.tree2
        groups = _joined_groups(t1, t1.parent[c], self.inner1, self.leaves1, c)
        if not groups:
            return []
        waiting = {e for e, _ in pending}
        theirs = frozenset(Counter(t2.shape[k] for k in t2.keys_below(d)).items())
        for members in groups:
            shapes = Counter(t1.shape[k] for e in members for k in t1.keys_below(e))
            if frozenset(shapes.items()) == theirs and waiting.issuperset(members):
                return members
        return []

    def _shape_run(self, node):
        """The shapes of the destination keys below ``node``, in order."""
        run = self.shape_runs.get(node)
        if run is None:
            t2 = self.tree2
            run = tuple(t2.shape[k] for k in t2.keys_below(node))
            self.shape_runs[node] = run
        return run

    def _positional(self, u, v):
        """
        True when ``u`` and ``v`` are items of the same number in lists of
        different lengths whose names differ (``features.2`` and ``2`` of a
        flattened list): only the position pairs them, so what lies below
        must agree by names, and no level below is renamed.
        """
        t1, t2 = self.tree1, self.tree2
        p1, p2 = t1.parent[u], t2.parent[v]
        return (p1 is not None and p2 is not None and t1.label[u].isdigit()
                and t1.label[p1] != t2.label[p2]
                and len(t1.children[p1]) != len(t2.children[p2]))

    def _place(self, sources, v, claims, choices, skipped=False, renames=True):
        """
        Match the inner source nodes ``sources`` (siblings, or the children
        of skipped levels when ``skipped``) to disjoint inner nodes below
        destination ``v``; levels renamed only when ``renames``. Returns the
        summed score.
        """
        t1, t2 = self.tree1, self.tree2
        total = [0, 0, 0, 0]

        def grant(c, d, s):
            if d in claims.contested:
                claims.take(d, tie=True)
                choices.append(('tie', c, (d,)))
                return
            claims.take(d)
            choices.append(('pair', c, d))
            for i in range(4):
                total[i] += s[i]

        # 1. same label directly below v, when it explains everything and
        # no other source of that label (below another skipped level) wants it
        pending = []
        labels = Counter(t1.label[c] for c in sources) if skipped else {}
        found = []
        for c in sources:
            d = t2.child(v, t1.label[c])
            if d is not None and (not t2.children[d] or not claims.is_free(d)):
                d = None
            s = None if d is None else self.score(c, d)
            found.append((c, d, s))
        loose = set()  # below a skipped level: lists whose numbers do not carry
        if skipped:
            fits = {}
            for c, d, s in found:
                if d is not None and t1.label[c].isdigit():
                    fits.setdefault(t1.parent[c], []).append(
                        s[0] + s[1] == t1.num_keys_below(c))
            loose = {p for p, whole in fits.items() if not all(whole)}
        past = self._past_an_unfit_item(found, v) if not skipped else None
        for c, d, s in found:
            if d is None or (past is not None and t1.label[c].isdigit()
                             and int(t1.label[c]) > past):
                pending.append((c, []))
                continue
            s = (s[0], s[1], s[2] + 1, s[3])
            need = t1.num_keys_below(c)
            by_number = skipped and t1.label[c].isdigit()
            if by_number and (s[0] + s[1] < need
                              or (not self.inner1[c] and t1.parent[c] in loose)):
                # an item below a skipped level whose namesake explains it
                # in part: only its number says it is that item (timm's
                # blocks.0, blocks skipped, is not torchvision's features,
                # 0, whose stem would take its BatchNorm); nor does a lone
                # module's number carry when items of its list that find
                # their numbers do not fit them (mnasnet's layers.{0,1}, a
                # stem, against a timm network flattened)
                pending.append((c, []))
            elif s[0] == need and labels.get(t1.label[c], 1) == 1:
                grant(c, d, s)
            else:
                pending.append((c, [(s, d)] if s[0] or s[1] else []))
        if not pending:
            return tuple(total)
        # 2. candidates: deeper same-label nodes, renamed children of v
        src_labels = {t1.label[c] for c, _ in pending}
        renamed = [d for d in self.inner2[v]
                   if t2.label[d] not in src_labels and claims.is_free(d)]
        # ... and their children: a destination level inserted above
        # renamed ones (a resnet's conv1 and layer1 as stem.0 and body.0)
        # (numbers below another parent are no same-label candidates)
        renamed += [g for d in renamed for g in self.inner2[d]
                    if t2.label[g] not in src_labels or t2.label[g].isdigit()]
        # a renamed level is recognized by its shapes, and only at a bounded
        # cost: only (source, destination) pairs with as many keys below
        # each can agree whole, so only they count against the limit
        # ... or two lists of the same items (layer1.{0,1} <-> res2.{0,1})
        renamed_for = {}
        if self.shapes_known and renamed and renames:
            by_count, by_items = {}, {}
            for d in renamed:
                by_count.setdefault(t2.num_keys_below(d), []).append(d)
                items = list_items(t2, d)
                if items:
                    by_items.setdefault(items, []).append(d)
            renamed_for = {
                c: set(by_count.get(t1.num_keys_below(c), ())).union(
                    by_items.get(list_items(t1, c), ()))
                for c, _ in pending}
            if sum(map(len, renamed_for.values())) > RENAME_LIMIT:
                renamed_for = {}
        heap = []
        deeper_of = {}
        for c, cands in pending:
            if skipped and t1.label[c].isdigit():
                # a number below a skipped level, sought deeper below v:
                # levels missing on both sides, and an item's number alone
                # says nothing about which list it was in
                deeper_of[c] = ()
            else:
                deeper_of[c] = self._deeper(c, v, claims, cands[0][1] if cands else None)
                if not self.inner1[c]:
                    deeper_of[c] = [w for w in deeper_of[c] if self._lone_fits(c, w)]
        if not _numbers_carry(
                [c for c in sources if t1.label[c].isdigit()],
                {t2.parent[w] for c, ws in deeper_of.items()
                 if t1.label[c].isdigit() for w in ws},
                self.inner2[v], t2, self.inner2):
            for c in deeper_of:
                if t1.label[c].isdigit():
                    deeper_of[c] = ()
        tied_in = {}  # source -> the places of its name holding only ties
        for c, cands in pending:
            d = t2.child(v, t1.label[c])
            if d is not None and not cands and self._only_ties(c, d):
                tied_in.setdefault(c, []).append(d)
        equal_items = []  # (source, score, place): equal items of renamed ones
        equal_to = {}  # source -> the equal items beside it, once asked
        for order, (c, cands) in enumerate(pending):
            need = t1.num_keys_below(c)
            for w in deeper_of[c]:
                s = self.score(c, w)
                if not s[0] and self._only_ties(c, w):
                    tied_in.setdefault(c, []).append(w)
                if s[0] and t1.label[c].isdigit() and s[0] + s[1] < need:
                    # an item sought below a level inserted in the model
                    # that explains it in part: only its number says it is
                    # that item (torchvision's features, 0, flattened, is
                    # not timm's blocks.0, whose first BatchNorm its stem's
                    # would take)
                    continue
                if s[0]:
                    cands.append(((s[0], s[1], s[2] + 1,
                                   s[3] - (t2.depth[w] - t2.depth[v] - 1)), w))
            bare = not self.inner1[c]
            namesake = t2.child(v, t1.label[c]) if t1.label[c].isdigit() else None
            for d in sorted(renamed_for.get(c, ())):
                if bare != (not self.inner2[d]):
                    continue  # a module with submodules is no lone module
                if (skipped and t2.parent[d] != v and t2.label[d] == t1.label[c]
                        and not self._items_agree(t1.parent[c], t2.parent[d])):
                    # an item below a skipped level, as its namesake below a
                    # level inserted in the model: the two lists must agree
                    # item by item (mobilenet_v3's features.15.block.0 is
                    # not mobilenet_v2's features.15.conv.0: block.1 and
                    # conv.1 differ)
                    continue
                if (namesake is not None and t2.label[d].isdigit()
                        and self.inner2[namesake] and self._shape_run(d) == self._shape_run(namesake)):
                    # an item renumbered as an item of its namesake's
                    # shapes: the number is all that tells equal blocks
                    # apart, a name renamed inside one of them is no reason
                    # to take another (layer2.1 is not layer2.2 because the
                    # model's layer2.1 calls its conv2 main)
                    continue
                if bare and (skipped or t2.parent[d] != v or not (
                        t1.label[c].isdigit() or t2.label[d].isdigit())
                        or not self._siblings_place(c, v)):
                    # a lone module renamed is trusted only as a sibling
                    # of matched ones, numbered on one side at least (conv1
                    # -> 0 in nn.Sequential(*resnet.children())); two names
                    # (head_a, head_b), a level skipped above, or siblings
                    # that place nothing (a stem's conv and BatchNorm, 0 and
                    # 1, against a block's conv_dw and bn1 of another
                    # kernel), and only its shapes would speak for it
                    continue
                s = self.score(c, d)
                have = t2.num_keys_below(d)
                if s[0] != need or need != have:
                    if (t1.nodes_labeled(t2.label[d], c)
                            or t2.nodes_labeled(t1.label[c], d)):
                        # unless both subtrees agree whole, an inserted
                        # level, not a renamed one
                        continue
                # whole, or whole but for ties met inside (a shortcut and a
                # first conv of one shape: which is which is left out, the
                # rest of the block is still this block)
                whole = need == have and (s[0] == need
                                          or s[0] == need - self._tied_keys(c, d))
                if not whole and not self._same_list(c, d):
                    continue
                if s[0] and not s[1]:
                    # (only shapes found the place: the positions that
                    # agree below it, 0 and 1 of two Sequentials, are no
                    # evidence for it)
                    s = (s[0], s[1], s[0] + s[1], s[3])
                    cands.append((s, d))
                    # a module of c's tensors split under joined names
                    # beside d (timm's conv1 as conv1_conv and conv1_bn)
                    # is as good a place, though no node holds it
                    cands.extend((s, e) for e in self._joined_alike(c, d, v, claims))
                    # ... and the mirror: such a module beside c (a googlenet
                    # block's branch1_conv and branch1_bn beside branch2_0,
                    # branch2.0 joined, both of branch1's shapes) is as good
                    # a source for d (mutation fuzz seed 4498 of --joined
                    # --wide --reorder)
                    equal_items.extend((e, s, d) for e in self._joined_sources(c, d, pending))
                    if not t1.label[c].isdigit():
                        # a named module renamed to one of equal items:
                        # its number is chance, the items tie
                        cands.extend((s, e) for e in self._equal_items(d, claims))
                    elif not t2.label[d].isdigit():
                        # ... and the mirror: an item renamed to a named
                        # module ties with the equal items beside it that
                        # still seek places; a wrapper around one item
                        # (layer3.3.features) makes it no likelier that
                        # item (timm's layer3 cut into backbone.{0..4} and
                        # core.0, which is block 5; cross fuzz seed 1747
                        # of --wide)
                        if c not in equal_to:
                            equal_to[c] = self._equal_sources(c, pending)
                        equal_items.extend((e, s, d) for e in equal_to[c])
        self._prefer_parts_by_number(pending, sources, v, claims, renames)
        cands_of = dict(pending)
        for e, s, d in equal_items:
            cands_of[e].append((s, d))
        for order, (c, cands) in enumerate(pending):
            for s, d in cands:
                heap.append((tuple(-x for x in s), order, d, c, s))
        heapq.heapify(heap)
        done = set()
        while heap:
            group = [heapq.heappop(heap)]
            while heap and heap[0][0] == group[0][0]:
                group.append(heapq.heappop(heap))
            wants = {}   # source -> free destinations at this score
            wanted = {}  # destination -> sources at this score
            in_ties = {}  # source -> places at this score that a tie took
            for _, _, d, c, s in group:
                if c in done:
                    continue
                if not claims.is_free(d):
                    if claims.in_tie(d):
                        in_ties.setdefault(c, []).append(d)
                    continue
                wants.setdefault(c, []).append(d)
                wanted.setdefault(d, []).append(c)
            for c, ds in in_ties.items():
                # as good a place inside a tie (the inception block whose
                # twin tied for the two places, sought a level deeper once
                # its own level found none): this source meets the tie, and
                # its free places at this score are contested
                done.add(c)
                free = wants.pop(c, [])
                choices.append(('tie', c, tuple(sorted(set(ds + free)))))
                for d in free:
                    wanted[d] = [r for r in wanted[d] if r != c]
                    claims.contested.add(d)
            # places granted at one score must not nest: nested ones rival
            clear = sorted(ds[0] for c, ds in wants.items()
                           if len(ds) == 1 and len(wanted[ds[0]]) == 1)
            for d1, d2 in zip(clear, clear[1:]):
                if d2 < t2.end[d1]:
                    wanted[d1] = wanted[d1] + wanted[d2]
                    wanted[d2] = wanted[d1]
            for c, ds in wants.items():
                if c in done:
                    continue
                d = ds[0]
                if len(ds) == 1 and len(wanted[d]) == 1:
                    grant(c, d, group[0][4])  # the group shares one score
                    done.add(c)
                    continue
                # a tie: equally good places for c, or rivals for its place
                rivals = {r for d2 in ds for r in wanted[d2]}
                for r in rivals:
                    if r not in done:
                        done.add(r)
                        choices.append(('tie', r, tuple(sorted(wants[r]))))
                for d2 in ds:
                    if len(wanted[d2]) > 1 and claims.is_free(d2):
                        claims.take(d2, tie=True)  # nobody gets a contested place
                    else:
                        # one of a source's equal places may be that
                        # source's: whoever comes for it later meets the
                        # tie (a regnet's shortcut tied between timm's
                        # downsample and conv1; conv1, a level deeper,
                        # took the shortcut's place; cross fuzz seed 1485
                        # of --wide)
                        claims.contested.add(d2)
        # 3. a source level with no counterpart: place its children instead;
        # never a numbered level (an item of a list: skipping it would let
        # its siblings' equally numbered children pass for one another)
        for c, places in tied_in.items():
            # a place of its name that holds only ties (two equal blocks
            # renamed on both sides) is its place, and what goes where in
            # it is ambiguous: skipping the level would let the blocks be
            # sought elsewhere, where the tie is not seen
            if c not in done and len(places) == 1 and claims.is_free(places[0]):
                grant(c, places[0], _ZERO)
                done.add(c)
        missing = [c for c, _ in pending
                   if c not in done and not t1.label[c].isdigit() and c not in tied_in
                   and not self._beside_its_namesake(c, v, claims)]
        numbered = [c for c in missing
                    if any(t1.label[g].isdigit() for g in self.inner1[c])]
        keep_numbers = _numbers_carry(
            [c for c in self.inner2[v] if t2.label[c].isdigit()],
            numbered, sources, t1, self.inner1)
        grandchildren = [g for c in missing for g in self.inner1[c]
                         if keep_numbers or not t1.label[g].isdigit()]
        if grandchildren:
            s = self._place(grandchildren, v, claims, choices, skipped=True,
                            renames=renames)
            if s[0] or s[1]:
                for i in range(4):
                    total[i] += s[i]
                total[3] -= len(missing)
        return tuple(total)

    def _past_an_unfit_item(self, found, v):
        """
        The lowest number of an item that its namesake does not fit, when
        ``found`` (``(source, namesake, score)`` of one parent's children,
        placed below ``v``) are items of two lists of different lengths;
        ``None`` otherwise. Past it the numbers say nothing: RetinaNet's
        head holds four convs (``conv.{0..3}.0``) where FCOS's holds
        ``conv.{0,3,6,9}`` with a GroupNorm after each, so RetinaNet's
        ``conv.1`` meets a GroupNorm, and its ``conv.3`` (the fourth conv)
        is not FCOS's ``conv.3`` (the second).
        """
        t1, t2 = self.tree1, self.tree2
        items = [c for c, _, _ in found if t1.label[c].isdigit()]
        if not items:
            return None
        u = t1.parent[items[0]]
        mine = sum(t1.label[c].isdigit() for c in t1.children[u])
        theirs = sum(t2.label[d].isdigit() for d in t2.children[v])
        if mine == theirs:
            return None
        unfit = [int(t1.label[c]) for c, d, s in found
                 if d is not None and t1.label[c].isdigit()
                 and s[0] + s[1] < t1.num_keys_below(c)]
        return min(unfit, default=None)

    def _prefer_parts_by_number(self, pending, sources, v, claims, renames):
        """
        Clear the candidates of the named parts of a list cut in place
        (``stem.{0,1}``, ``layers.{2..5}``, ``base.{6..18}``) when, skipped
        together, their items would go by number to ``v``'s items and place
        as many of the same tensors as their candidates do, or more: a part
        named by chance like a level inserted in the model
        (``features.5.base``) would otherwise take it, and the numbers that
        say where every item goes would never be read.
        """
        t1, t2 = self.tree1, self.tree2
        parts = [(c, cands) for c, cands in pending if not t1.label[c].isdigit()
                 and any(t1.label[g].isdigit() for g in self.inner1[c])]
        items = [d for d in self.inner2[v] if t2.label[d].isdigit()]
        if not parts or not items or not _numbers_carry(
                items, [c for c, _ in parts], sources, t1, self.inner1):
            return
        if not any(cands for _, cands in parts):
            return  # skipped anyway
        best = sum(max((s[0] for s, _ in cands), default=0) for _, cands in parts)
        by_number = self._place([g for c, _ in parts for g in self.inner1[c]], v, claims.copy(),
                                [], skipped=True, renames=renames)
        if by_number[0] and by_number[0] >= best:
            for _, cands in parts:
                cands.clear()

    def collect(self, u, v):
        """
        Matched key pairs ``(a, b, tier)`` below the pair ``(u, v)``, and the
        ties ``(source node, destination nodes)`` met on the way.
        """
        pairs, ties = [], []
        stack = [(u, v)]
        while stack:
            a, b = stack.pop()
            _, leafpairs, choices = self.memo[(a, b)]
            pairs.extend(leafpairs)
            for kind, c, d in choices:
                if kind == 'pair':
                    stack.append((c, d))
                else:
                    ties.append((c, d))
        return pairs, ties

    def hanging(self, side):
        """The root of one side (1: source, 2: destination), and the node
        below its chain of wrapper levels (levels holding one submodule and
        no tensors), if any."""
        tree = self.tree1 if side == 1 else self.tree2
        leaves, inner = ((self.leaves1, self.inner1) if side == 1
                         else (self.leaves2, self.inner2))
        below = _down_chain(leaves, inner, tree.root)
        return [tree.root] if below == tree.root else [tree.root, below]
