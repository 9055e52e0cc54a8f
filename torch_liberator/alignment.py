"""
Align two state dicts by structure: registration order, shapes, and the
names that agree.

Pure: keys and shapes in, a one-to-one mapping and the ambiguous keys out; no
torch needed. This is the solver of ``association='structure'``, the mode
that moves weights between implementations whose names differ (timm and
torchvision, a model whose every submodule was renamed, a backbone taken
apart with ``nn.Sequential(*children)``).

A state dict lists each module's own tensors together, then its children, in
registration order. The keys are therefore cut into *groups*: the tensors of
one module (a BatchNorm's weight, bias and running statistics). Groups, not
single tensors, are aligned, so a module's tensors go to one module or to
none. Two groups can be paired when their tensors' shapes agree position by
position (shapes that differ only by size-1 dimensions, ``[C]`` and
``[C, 1, 1]``, agree), or, when their sizes differ (a BatchNorm2d and a
FrozenBatchNorm2d, which has no ``num_batches_tracked``), when every tensor of
the smaller group has a same-named, shape-compatible tensor in the other.

The two group sequences are aligned the way ``diff`` aligns lines:

1. *Name anchors*: groups whose module paths share a suffix starting with
   a word (``layer1.0.conv1`` and ``backbone.body.layer1.0.conv1``; not
   ``1.bn``, a position that a list cut in two renumbers) that no other
   group shares as well (ties go to the smaller difference in depth, so
   ``model.*`` beats ``ema_model.module.*``), in both directions, and whose
   shapes can pair. A group with such a partner is only ever paired with
   it.
2. The anchors that every longest increasing subsequence keeps (pairs in
   the same order on both sides) cut both sequences into gaps.
3. Each gap is solved like patience diff: equal gaps pair position by
   position; otherwise the groups whose shapes are unique in the gap on both
   sides become anchors (again through the longest increasing subsequence)
   and the sub-gaps are solved the same way; a gap without such anchors is
   aligned by dynamic programming (a longest common subsequence scored by
   the number of paired tensors, ties broken by agreeing name components
   and exact shapes). A pair is kept only when *every* optimal alignment
   makes it; the others are ambiguous and listed, never guessed.
4. Leftovers: name partners that were out of order (order is a hint, not a
   law), then groups (or single tensors of containers, such as a class
   token) whose shapes are unique among the leftovers on both sides.
5. Names that disagree: when more paired tensors sit in modules of the
   same name than of two different names (the two models share a naming
   scheme), a pair whose names are two different words (``fc`` and
   ``head``; a container's own tensors by their own names) is dropped: in a
   shared scheme, a different name means a different module. Integer names
   (Sequential positions) and a name found in the other path (an inserted
   level: ``head.fc`` and ``head``) never count against a pair.

Notes:
    Cost: grouping, name anchors and the longest increasing subsequences are
    O(n d + n log n) for n keys of depth d; equal gaps cost O(n). The
    dynamic programming runs only inside gaps without unique shapes, costs
    O(p q) for gaps of p and q groups, and is bounded by ``max_cells``
    (larger gaps are left unpaired and listed as ambiguous). On state dicts
    of 100,000 keys the cost is near linear (see docs/benchmarks.rst).

    The longest increasing subsequence is the patience-sorting algorithm
    (Fredman 1975, O(n log n)); the gap alignment is the Needleman-Wunsch /
    longest-common-subsequence recurrence run forwards and backwards, which
    tells for each pair whether all optimal alignments contain it.

Example:
    >>> from torch_liberator.alignment import align_structure
    >>> src = {'conv1.weight': (8, 3, 3, 3), 'bn1.weight': (8,),
    ...        'bn1.bias': (8,), 'fc.weight': (10, 8), 'fc.bias': (10,)}
    >>> dst = {'stem.0.weight': (8, 3, 3, 3), 'stem.1.weight': (8,),
    ...        'stem.1.bias': (8,), 'head.weight': (10, 8),
    ...        'head.bias': (10,)}
    >>> result = align_structure(src, dst)
    >>> for pair in result.mapping.items():
    ...     print(*pair)
    conv1.weight stem.0.weight
    bn1.weight stem.1.weight
    bn1.bias stem.1.bias
    fc.weight head.weight
    fc.bias head.bias
"""
from bisect import bisect_left, insort
from collections import Counter
from typing import Dict, Mapping, NamedTuple, Optional, Tuple

from torch_liberator.shapes import squeeze_units

__all__ = ['Alignment', 'MAX_CELLS', 'StructureSides', 'align_structure',
           'find_name_conflicts', 'order_is_lost']

#: the largest gap (src groups x dst groups) aligned by dynamic programming
MAX_CELLS = 250_000

#: a shape as the solver sees it: sizes, or None when unknown
Shape = Optional[Tuple[int, ...]]


class Alignment(NamedTuple):
    """
    The result of :func:`align_structure`.

    Attributes:
        mapping (Dict[str, str]): source key -> destination key, one to one,
            in source order.
        ambiguous (Dict[str, Tuple[str, ...]]): source key -> the equally
            good destination keys; such keys are not in ``mapping``.

    Example:
        >>> from torch_liberator.alignment import align_structure
        >>> # one source BatchNorm, two identical places for it
        >>> bn = lambda p: {p + '.weight': (4,), p + '.bias': (4,)}
        >>> result = align_structure(bn('a'), {**bn('x'), **bn('y')})
        >>> result.mapping
        {}
        >>> result.ambiguous['a.weight']
        ('x.weight', 'y.weight')
    """

    mapping: Dict[str, str]
    ambiguous: Dict[str, Tuple[str, ...]]


class _Side:
    """
    One state dict cut into groups, the tensors that one module holds
    directly in state-dict order, as parallel tuples indexed by group
    number: ``path``, ``comps`` (its components), ``keys``, ``names`` (the
    tensors' own names), ``shapes``, ``squeezed`` (without size-1
    dimensions), ``leaf`` (no child module holds tensors) and ``kind`` (one
    id for groups of equal names, shapes and leafness). (Tuples of strings
    and ints, unlike one object per group, stay out of the way of Python's
    garbage collector, which otherwise walks 100k groups again and again.)
    """

    __slots__ = ('path', 'comps', 'keys', 'names', 'shapes', 'squeezed',
                 'leaf', 'kind')

    def __init__(self, side, sep):
        paths, starts, keys, names, shapes = [], [], [], [], []
        sep_len = len(sep)
        for key, shape in side.items():
            if shape is None:
                continue  # without a shape there is no structural evidence
            cut = key.rfind(sep)
            if cut >= 0:
                path, name = key[:cut], key[cut + sep_len:]
            else:
                path, name = '', key
            if not paths or paths[-1] != path:
                paths.append(path)
                starts.append(len(keys))
            keys.append(key)
            names.append(name)
            shapes.append(tuple(shape))
        inner = set()
        for path in paths:
            while path:
                cut = path.rfind(sep)
                path = path[:cut] if cut >= 0 else ''
                if path in inner:
                    break
                inner.add(path)
        squeezed_of = {}
        for shape in shapes:
            if shape not in squeezed_of:
                squeezed_of[shape] = squeeze_units(shape)
        ends = starts[1:] + [len(keys)]
        self.path = tuple(paths)
        self.comps = tuple(tuple(path.split(sep)) if path else ()
                           for path in paths)
        self.keys = tuple(tuple(keys[a:b]) for a, b in zip(starts, ends))
        self.names = tuple(tuple(names[a:b]) for a, b in zip(starts, ends))
        self.shapes = tuple(tuple(shapes[a:b]) for a, b in zip(starts, ends))
        self.squeezed = tuple(tuple(squeezed_of[shape] for shape in group)
                              for group in self.shapes)
        self.leaf = tuple(path not in inner for path in paths)
        kinds = {}
        self.kind = tuple(kinds.setdefault(kind, len(kinds)) for kind in
                          zip(self.names, self.shapes, self.leaf))

    def __len__(self):
        return len(self.path)


def _is_word(component):
    return not component.isdigit()


def _exact_lcs(shapes1, shapes2):
    """Longest common subsequence of two short lists of exact shapes."""
    n, m = len(shapes1), len(shapes2)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if shapes1[i] == shapes2[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if shapes1[i] == shapes2[j] and table[i][j] == table[i + 1][j + 1] + 1:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _inner_pairs(side1, g1, side2, g2):
    """
    Which tensor of group ``g1`` of ``side1`` goes to which tensor of group
    ``g2`` of ``side2`` when the two groups are paired, or None when they
    cannot be.
    """
    names1, names2 = side1.names[g1], side2.names[g2]
    squeezed1, squeezed2 = side1.squeezed[g1], side2.squeezed[g2]
    if squeezed1 == squeezed2:
        if names1 != names2 and set(names1) == set(names2):
            index = {name: j for j, name in enumerate(names2)}
            pairs = [(i, index[name]) for i, name in enumerate(names1)]
            if all(squeezed1[i] == squeezed2[j] for i, j in pairs):
                return pairs
        return [(i, i) for i in range(len(names1))]
    smaller = min(len(names1), len(names2))
    index = {name: j for j, name in enumerate(names2)}
    pairs = [(i, index[name]) for i, name in enumerate(names1)
             if name in index and squeezed1[i] == squeezed2[index[name]]]
    if len(pairs) == smaller:
        return pairs
    if not side1.leaf[g1] and not side2.leaf[g2]:
        # containers' own tensors (class tokens, layer scales) stand alone
        pairs = _exact_lcs(side1.shapes[g1], side2.shapes[g2])
        if len(pairs) == smaller:
            return pairs
    return None


class StructureSides:
    """
    Two state dicts cut into module groups (see the module docstring), built
    once to be aligned (:meth:`align`) or to judge the names of any mapping
    (:meth:`name_conflicts`).

    Args:
        src: source (checkpoint) keys -> shapes, in state-dict order. Keys
            whose shape is None are left out of every group.
        dst: destination (model) keys -> shapes, in state-dict order.
        sep: separator between path components.

    Example:
        >>> from torch_liberator.alignment import StructureSides
        >>> sides = StructureSides({'a.w': (2, 3), 'fc.w': (4,)},
        ...                        {'b.w': (2, 3), 'head.w': (4,)})
        >>> sides.align().mapping
        {'a.w': 'b.w', 'fc.w': 'head.w'}
        >>> sides.name_conflicts({'a.w': 'b.w'})
        set()
    """

    def __init__(self, src: Mapping[str, Shape], dst: Mapping[str, Shape],
                 sep: str = '.'):
        self.sep = sep
        #: False when either side's keys come sorted by name (a safetensors
        #: file; see order_is_lost) instead of in registration order: then
        #: order is no evidence, and a module's tensors are compared in one
        #: order on both sides
        self.ordered = not (order_is_lost(src) or order_is_lost(dst))
        if not self.ordered:
            src, dst = _by_leaf_name(src, sep), _by_leaf_name(dst, sep)
        self.src = _Side(src, sep)
        self.dst = _Side(dst, sep)
        self._pair_cache = {}
        self._where = None

    def inner(self, i, j):
        cache_key = (self.src.kind[i], self.dst.kind[j])
        try:
            return self._pair_cache[cache_key]
        except KeyError:
            pairs = _inner_pairs(self.src, i, self.dst, j)
            self._pair_cache[cache_key] = pairs
            return pairs

    def align(self, max_cells: int = MAX_CELLS) -> Alignment:
        """
        Pair the groups (see :func:`align_structure`).

        Example:
            >>> from torch_liberator.alignment import StructureSides
            >>> StructureSides({'w': (3,)}, {'v': (3,)}).align().mapping
            {'w': 'v'}
        """
        if max_cells < 0:
            raise ValueError(f'max_cells={max_cells!r} must be >= 0')
        return _Aligner(self, max_cells).solve()

    def name_conflicts(self, mapping: Mapping[str, str]) -> set:
        """
        The source keys of ``mapping`` whose pair joins two modules of
        different names while the two models share a naming scheme (see
        :func:`find_name_conflicts`).

        Example:
            >>> from torch_liberator.alignment import StructureSides
            >>> sides = StructureSides(
            ...     {'x.conv.w': (2,), 'x.bn.w': (3,), 'fc.w': (4,)},
            ...     {'y.conv.w': (2,), 'y.bn.w': (3,), 'head.w': (4,)})
            >>> sides.name_conflicts({'x.conv.w': 'y.conv.w',
            ...                       'x.bn.w': 'y.bn.w', 'fc.w': 'head.w'})
            {'fc.w'}
        """
        if self._where is None:
            self._where = tuple(
                {key: (g, pos) for g, keys in enumerate(side.keys)
                 for pos, key in enumerate(keys)}
                for side in (self.src, self.dst))
        where_src, where_dst = self._where
        keys, tensor_pairs = [], []
        for s_key, d_key in mapping.items():
            if s_key in where_src and d_key in where_dst:
                keys.append(s_key)
                tensor_pairs.append(where_src[s_key] + where_dst[d_key])
        return {keys[n] for n in self.conflicts(tensor_pairs)}

    @staticmethod
    def _name_of(side, g, pos):
        """The name a tensor is known by: its module's for a leaf module,
        its own for a container's tensor; with the path's components."""
        comps = side.comps[g]
        if side.leaf[g] and comps:
            return comps[-1], comps
        name = side.names[g][pos]
        return name, comps + (name,)

    @staticmethod
    def _compare(name1, comps1, name2, comps2):
        """+1 names agree, -1 two different words, 0 no evidence (an
        integer, or one name appears in the other's path: a level was
        inserted, as ``head.fc`` and ``head``)."""
        if not name1 or not name2:
            return 0  # the root has no name
        if name1 == name2:
            return 1 if _is_word(name1) else 0
        if not (_is_word(name1) and _is_word(name2)):
            return 0
        if name1 in comps2 or name2 in comps1:
            return 0
        return -1

    def _verdict(self, i, a, j, b):
        """How the names of one tensor pair compare (see ``_compare``)."""
        return self._compare(*self._name_of(self.src, i, a),
                             *self._name_of(self.dst, j, b))

    def _module_vote(self, i, j):
        """How the names of two paired modules compare."""
        comps1, comps2 = self.src.comps[i], self.dst.comps[j]
        if not comps1 or not comps2:
            return 0
        return self._compare(comps1[-1], comps1, comps2[-1], comps2)

    def conflicts(self, tensor_pairs):
        """Positions in ``tensor_pairs`` whose names are two different
        words while the models share a naming scheme: more of the paired
        tensors sit in modules of one name than of two different names."""
        vote_of = {}
        votes = []
        for i, _, j, _ in tensor_pairs:
            vote = vote_of.get((i, j))
            if vote is None:
                vote = vote_of[(i, j)] = self._module_vote(i, j)
            votes.append(vote)
        if votes.count(1) <= votes.count(-1):
            return set()
        src, dst = self.src, self.dst
        out = set()
        for n, (pair, vote) in enumerate(zip(tensor_pairs, votes)):
            i, a, j, b = pair
            if src.leaf[i] and dst.leaf[j] and src.comps[i] and dst.comps[j]:
                verdict = vote  # both tensors go by their modules' names
            else:
                verdict = self._verdict(i, a, j, b)
            if verdict < 0:
                out.add(n)
        return out


class _Aligner:
    """One alignment of a :class:`StructureSides`: what is decided."""

    def __init__(self, sides, max_cells):
        self.sep = sides.sep
        self.max_cells = max_cells
        self.src, self.dst = sides.src, sides.dst
        self.sides = sides
        self.inner = sides.inner
        self.conflicts = sides.conflicts
        self.pairs = {}        # src group index -> dst group index
        self.paired_dst = {}   # dst group index -> src group index
        self.blocked_src = set()
        self.blocked_dst = set()
        self.partners = []     # name partners (src index, dst index), valid
        self.partner_of_src = {}
        self.ambiguous = {}    # src group index -> dst group indices
        self.must_pair = set()  # ambiguous src groups no optimum leaves out
        self.dst_must_pair = {}  # the same for dst groups -> src candidates

    # -- 1. name anchors --------------------------------------------------
    def _suffix_index(self, side):
        """Every path suffix that starts with a word -> the group ending so
        (an int), or the list of the groups when several do. (A suffix
        starting with a number, ``1.bn``, names a position in a list, which
        a list cut in two or renumbered does not keep. Most suffixes are
        unique: an int keeps them out of the garbage collector's way.)"""
        index = {}
        sep_len = len(self.sep)
        for g, (path, comps) in enumerate(zip(side.path, side.comps)):
            start = 0
            for comp in comps:
                if _is_word(comp):
                    suffix = path[start:]
                    found = index.get(suffix)
                    if found is None:
                        index[suffix] = g
                    elif isinstance(found, int):
                        index[suffix] = [found, g]
                    else:
                        found.append(g)
                start += len(comp) + sep_len
        return index

    @staticmethod
    def _by_depth(candidates, side):
        """depth -> the group at that depth, or -1 when several are."""
        out = {}
        for g in candidates:
            depth = len(side.comps[g])
            out[depth] = g if depth not in out else -1
        return out

    def _best_partner(self, side, g, index, others, cache):
        """The unique group of ``others`` sharing the longest named suffix
        with group ``g`` of ``side`` (ties to the closest depth), or None."""
        path = side.path[g]
        if not path:
            return None
        depth = len(side.comps[g])
        start = 0
        while True:
            suffix = path[start:]
            candidates = index.get(suffix)
            if candidates is not None:
                if isinstance(candidates, int):
                    return candidates
                by_depth = cache.get(suffix)
                if by_depth is None:
                    by_depth = cache[suffix] = self._by_depth(candidates, others)
                gap = min(abs(d - depth) for d in by_depth)
                closest = [d for d in (depth - gap, depth + gap) if d in by_depth]
                if len(set(closest)) == 1 and by_depth[closest[0]] >= 0:
                    return by_depth[closest[0]]
                return None
            cut = path.find(self.sep, start)
            if cut < 0:
                return None
            start = cut + len(self.sep)

    def find_name_partners(self):
        src_index = self._suffix_index(self.src)
        dst_index = self._suffix_index(self.dst)
        src_cache, dst_cache = {}, {}
        for i in range(len(self.src)):
            j = self._best_partner(self.src, i, dst_index, self.dst, dst_cache)
            if j is None or self._best_partner(
                    self.dst, j, src_index, self.src, src_cache) != i:
                continue
            if self.inner(i, j) is None:
                # the name is shared but the module is not (a list
                # re-indexed: high.0.conv is features.4.conv, not
                # features.0.conv): the name says nothing here
                continue
            self.blocked_src.add(i)
            self.blocked_dst.add(j)
            self.partners.append((i, j))
            self.partner_of_src[i] = j

    # -- 2, 3. anchors and gaps -------------------------------------------
    def pair(self, i, j):
        self.pairs[i] = j
        self.paired_dst[j] = i

    def solve(self):
        self.find_name_partners()
        if not self.sides.ordered:
            # keys sorted by name: neighbours in the listing are not
            # neighbours in the model, so only names and unique shapes speak
            self.pair_leftovers()
            return self.result()
        anchors = _certain_lis(self.partners)
        for i, j in anchors:
            self.pair(i, j)
        bounds = [(-1, -1)] + anchors + [(len(self.src), len(self.dst))]
        for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
            free_src = [i for i in range(i0 + 1, i1) if i not in self.blocked_src]
            free_dst = [j for j in range(j0 + 1, j1) if j not in self.blocked_dst]
            self.solve_gap(free_src, free_dst)
        self.resolve_by_siblings()
        self.pair_leftovers()
        return self.result()

    def solve_gap(self, src_idx, dst_idx):
        stack = [(src_idx, dst_idx)]
        while stack:
            src_idx, dst_idx = stack.pop()
            if not src_idx or not dst_idx:
                continue
            if len(src_idx) == len(dst_idx) and all(
                    self.src.squeezed[i] == self.dst.squeezed[j]
                    for i, j in zip(src_idx, dst_idx)):
                for i, j in zip(src_idx, dst_idx):
                    self.pair(i, j)
                continue
            anchors = self._unique_shape_anchors(src_idx, dst_idx)
            if anchors:
                for a, b in anchors:
                    self.pair(src_idx[a], dst_idx[b])
                bounds = [(-1, -1)] + anchors + [(len(src_idx), len(dst_idx))]
                for (a0, b0), (a1, b1) in zip(bounds, bounds[1:]):
                    stack.append((src_idx[a0 + 1:a1], dst_idx[b0 + 1:b1]))
            elif len(src_idx) * len(dst_idx) <= self.max_cells:
                self._align_dp(src_idx, dst_idx)
            elif not self._align_subsequence(src_idx, dst_idx):
                self._give_up(src_idx, dst_idx)

    def _unique_shape_anchors(self, src_idx, dst_idx):
        def unique_positions(side, indices):
            seen = {}
            for pos, g in enumerate(indices):
                shapes = side.shapes[g]
                seen[shapes] = None if shapes in seen else pos
            return seen
        src_seen = unique_positions(self.src, src_idx)
        dst_seen = unique_positions(self.dst, dst_idx)
        candidates = [(a, dst_seen[shapes]) for shapes, a in src_seen.items()
                      if a is not None and dst_seen.get(shapes) is not None]
        candidates.sort()
        return _certain_lis(candidates)

    def _give_up(self, src_idx, dst_idx):
        """List a gap too large to align: each source group with (at most
        8 of) the destination groups of its shapes in the gap."""
        by_shapes = {}
        for j in dst_idx:
            options = by_shapes.setdefault(self.dst.squeezed[j], [])
            if len(options) < 8:
                options.append(j)
        for i in src_idx:
            if self.src.squeezed[i] in by_shapes:
                self.ambiguous[i] = by_shapes[self.src.squeezed[i]]

    def _embed(self, small, large, fits, reverse):
        """Greedy embedding of every group of ``small`` into ``large``
        (leftmost, or rightmost with ``reverse``): positions in ``large``,
        or None when ``small`` is not a subsequence of ``large``."""
        order = range(len(small) - 1, -1, -1) if reverse else range(len(small))
        out = [0] * len(small)
        pos = len(large) - 1 if reverse else 0
        step = -1 if reverse else 1
        for a in order:
            while 0 <= pos < len(large) and not fits(small[a], large[pos]):
                pos += step
            if not 0 <= pos < len(large):
                return None
            out[a] = pos
            pos += step
        return out

    def _align_subsequence(self, src_idx, dst_idx):
        """
        A gap where one side is a subsequence of the other (modules only
        inserted, or only removed), every group of the shorter side kept
        whole: each of its groups lies between its leftmost and its
        rightmost embedding in all optimal alignments, so it is certain
        exactly when the two agree. O(p + q). Returns False when the gap is
        not of that kind.
        """
        def src_fits(i, j):
            pairs = self.inner(i, j)
            return pairs is not None and len(pairs) == len(self.src.keys[i])

        def dst_fits(j, i):
            pairs = self.inner(i, j)
            return pairs is not None and len(pairs) == len(self.dst.keys[j])

        if len(src_idx) <= len(dst_idx):
            small, large, fits = src_idx, dst_idx, src_fits
        else:
            small, large, fits = dst_idx, src_idx, dst_fits
        left = self._embed(small, large, fits, reverse=False)
        if left is None:
            return False
        right = self._embed(small, large, fits, reverse=True)
        for a, (lo, hi) in enumerate(zip(left, right)):
            i, j = (small[a], large[lo]) if small is src_idx else (large[lo], small[a])
            if lo == hi:
                self.pair(i, j)
            elif small is src_idx:
                self.ambiguous[i] = [large[lo], large[hi]]
        return True

    def _name_bonus(self, i, j):
        """Agreeing trailing path components (when one is a word) plus the
        tensors whose shapes are exactly equal."""
        comps1, comps2 = self.src.comps[i], self.dst.comps[j]
        common = 0
        has_word = False
        for c1, c2 in zip(reversed(comps1), reversed(comps2)):
            if c1 != c2 or not c1:
                break
            common += 1
            has_word = has_word or _is_word(c1)
        shapes1, shapes2 = self.src.shapes[i], self.dst.shapes[j]
        exact = sum(shapes1[a] == shapes2[b] for a, b in self.inner(i, j))
        return (common if has_word else 0) + exact

    def _align_dp(self, src_idx, dst_idx):
        """
        Longest-common-subsequence alignment of one gap, forwards and
        backwards, under two scores: paired tensors (a BatchNorm weighs five,
        a convolution one) and paired modules (each weighs one), both with
        the name bonus to break ties. A pair is kept only when every optimal
        alignment makes it under both scores; where the two optima disagree
        (a detectron2 block lists its shortcut first: its BatchNorms line up
        with torchvision's one place off when tensors are counted, and in
        place when modules are) the groups are ambiguous, never guessed.
        """
        p, q = len(src_idx), len(dst_idx)
        counts, bonus = [], []
        max_bonus = 0
        for i in src_idx:
            row_c, row_b = [], []
            for j in dst_idx:
                pairs = self.inner(i, j)
                if pairs is None or not pairs:
                    row_c.append(0)
                    row_b.append(0)
                else:
                    b = self._name_bonus(i, j)
                    max_bonus = max(max_bonus, b)
                    row_c.append(len(pairs))
                    row_b.append(b)
            counts.append(row_c)
            bonus.append(row_b)
        weight = max_bonus * min(p, q) + 1
        verdicts = [
            _dp_verdicts([[c * weight + b if c else 0 for c, b in zip(rc, rb)]
                          for rc, rb in zip(counts, bonus)], p, q),
            _dp_verdicts([[weight + b if c else 0 for c, b in zip(rc, rb)]
                          for rc, rb in zip(counts, bonus)], p, q)]
        for a in range(p):
            (partners1, skip1), (partners2, skip2) = (v[0][a] for v in verdicts)
            partners = sorted(set(partners1) | set(partners2))
            skippable = skip1 or skip2
            if len(partners) == 1 and not skippable:
                self.pair(src_idx[a], dst_idx[partners[0]])
            elif partners:
                self.ambiguous[src_idx[a]] = [dst_idx[b] for b in partners]
                if not skippable:
                    self.must_pair.add(src_idx[a])
        # the same from the destination's side: a destination group that
        # every optimal alignment pairs, with several possible sources
        for b in range(q):
            (partners1, skip1), (partners2, skip2) = (v[1][b] for v in verdicts)
            partners = sorted(set(partners1) | set(partners2))
            if len(partners) > 1 and not (skip1 or skip2):
                self.dst_must_pair[dst_idx[b]] = [src_idx[a] for a in partners]

    def _parent(self, path):
        if not path:
            return None
        cut = path.rfind(self.sep)
        return path[:cut] if cut >= 0 else ''

    def resolve_by_siblings(self):
        """
        An ambiguous group that every optimal alignment pairs goes to the
        one candidate whose parent module is where all its paired siblings
        went (and whose paired siblings all came from its parent), when that
        keeps the order: a module's children stay together. (A group that
        some optimal alignment leaves out is not resolved: being left out
        may be the truth.)
        """
        if not self.must_pair and not self.dst_must_pair:
            return  # nothing to resolve
        down, up = {}, {}
        for i, j in self.pairs.items():
            p, q = self._parent(self.src.path[i]), self._parent(self.dst.path[j])
            down.setdefault(p, set()).add(q)
            up.setdefault(q, set()).add(p)
        paired = sorted(self.pairs)

        def fits(i, j):
            # keeps the order with the nearest paired source groups
            at = bisect_left(paired, i)
            return not ((at and self.pairs[paired[at - 1]] > j) or (
                at < len(paired) and self.pairs[paired[at]] < j))

        def only(candidates, parent_of, parent):
            found = [c for c in candidates if parent_of(c) == parent]
            return found[0] if len(found) == 1 else None

        changed = True
        while changed:
            changed = False
            moves = []
            for i in self.must_pair:
                if i in self.pairs:
                    continue
                p = self._parent(self.src.path[i])
                targets = down.get(p, ())
                if p is None or len(targets) != 1:
                    continue
                q = next(iter(targets))
                if up.get(q, {p}) != {p}:
                    continue
                free = [j for j in self.ambiguous[i] if j not in self.paired_dst]
                j = only(free, lambda j: self._parent(self.dst.path[j]), q)
                if j is not None:
                    moves.append((i, j))
            for j, candidates in self.dst_must_pair.items():
                if j in self.paired_dst:
                    continue
                q = self._parent(self.dst.path[j])
                sources = up.get(q, ())
                if q is None or len(sources) != 1:
                    continue
                p = next(iter(sources))
                if down.get(p, {q}) != {q}:
                    continue
                free = [i for i in candidates if i not in self.pairs]
                i = only(free, lambda i: self._parent(self.src.path[i]), p)
                if i is not None:
                    moves.append((i, j))
            moves = set(moves)
            src_count = Counter(i for i, _ in moves)
            dst_count = Counter(j for _, j in moves)
            for i, j in sorted(moves):
                if src_count[i] > 1 or dst_count[j] > 1 or not fits(i, j):
                    continue  # two claims on one group: leave both out
                self.pair(i, j)
                insort(paired, i)
                p, q = self._parent(self.src.path[i]), self._parent(self.dst.path[j])
                down.setdefault(p, set()).add(q)
                up.setdefault(q, set()).add(p)
                self.ambiguous.pop(i, None)
                changed = True

    # -- 4. leftovers -----------------------------------------------------
    def pair_leftovers(self):
        for i, j in self.partners:
            if i not in self.pairs and j not in self.paired_dst:
                self.pair(i, j)
                self.ambiguous.pop(i, None)
        src_units = self._leftover_units(self.src, set(self.pairs),
                                         self.blocked_src)
        dst_units = self._leftover_units(self.dst, self.paired_dst,
                                         self.blocked_dst)
        self.loose_pairs = []
        for shapes, (src_unit, n_src) in src_units.items():
            dst_unit, n_dst = dst_units.get(shapes, (None, 0))
            if n_src != 1 or n_dst != 1:
                continue
            (i, a), (j, b) = src_unit, dst_unit
            if a is None and b is None:
                self.pair(i, j)
            else:
                self.loose_pairs.append((i, a or 0, j, b or 0))
            self.ambiguous.pop(i, None)

    def _leftover_units(self, side, paired, blocked):
        """Unpaired leaf groups whole, unpaired containers' tensors one by
        one, keyed by squeezed shapes: (unit, how many units share them)."""
        units = {}

        def add(shapes, unit):
            old = units.get(shapes)
            units[shapes] = (unit, 1) if old is None else (old[0], old[1] + 1)

        for g in range(len(side)):
            if g in blocked:
                continue
            if g not in paired:
                if side.leaf[g] or len(side.names[g]) == 1:
                    add(side.squeezed[g], (g, None))
                    continue
                taken = ()
            elif side.leaf[g]:
                continue
            else:
                taken = self._taken_positions(g, side is self.src)
            for pos, shape in enumerate(side.squeezed[g]):
                if pos not in taken:
                    add((shape,), (g, pos))
        return units

    def _taken_positions(self, g, is_src):
        if is_src:
            return {a for a, _ in self.inner(g, self.pairs[g])}
        return {b for _, b in self.inner(self.paired_dst[g], g)}

    # -- 5. names that disagree, and the result ---------------------------
    def _tensor_pairs(self):
        """(src group, src pos, dst group, dst pos) of every paired tensor."""
        out = []
        for i, j in self.pairs.items():
            for a, b in self.inner(i, j):
                out.append((i, a, j, b))
        out.extend(self.loose_pairs)
        return out

    def result(self):
        tensor_pairs = self._tensor_pairs()
        named = set(self.partners)
        dropped = {n for n in self.conflicts(tensor_pairs)
                   if (tensor_pairs[n][0], tensor_pairs[n][2]) not in named}
        # (group, position) is unique per source tensor and sorts in source
        # order (groups are runs of the source's keys, in order)
        kept = sorted(pair for n, pair in enumerate(tensor_pairs)
                      if n not in dropped)
        src_keys, dst_keys = self.src.keys, self.dst.keys
        mapping = {src_keys[i][a]: dst_keys[j][b] for i, a, j, b in kept}
        ambiguous = {}
        for i, options in self.ambiguous.items():
            if i in self.pairs:
                continue
            for a, key in enumerate(self.src.keys[i]):
                if key in mapping:
                    continue
                targets = []
                for j in options:
                    pairs = dict(self.inner(i, j))
                    if a in pairs:
                        targets.append(self.dst.keys[j][pairs[a]])
                if targets:
                    ambiguous[(i, a)] = tuple(targets)
        return Alignment(mapping, {src_keys[i][a]: ambiguous[i, a]
                                   for i, a in sorted(ambiguous)})


def _by_leaf_name(side, sep):
    """``side`` with each run of one module's tensors sorted by name."""
    out, run, parent = {}, [], None
    for key in list(side) + [None]:
        here = None if key is None else key.rpartition(sep)[0]
        if key is None or here != parent:
            out.update((k, side[k]) for k in sorted(run))
            run, parent = [], here
        if key is not None:
            run.append(key)
    return out


def order_is_lost(keys, min_keys: int = 32) -> bool:
    """
    True when ``keys`` (at least ``min_keys`` of them: a few keys may come
    sorted by chance) come sorted by name, in at most three sorted runs
    (safetensors files list their tensors by dtype, then name), rather than
    in a model's registration order. A state
    dict lists a module's ``weight`` before its ``bias`` and ``conv1`` before
    ``bn1``, so its keys are almost never sorted; when they are, the order
    tells nothing about which modules are neighbours.

    Example:
        >>> from torch_liberator.alignment import order_is_lost
        >>> registered = ['conv1.weight', 'bn1.weight', 'bn1.bias',
        ...               'layer1.0.conv1.weight', 'layer1.0.bn1.weight',
        ...               'layer1.0.bn1.bias', 'fc.weight', 'fc.bias']
        >>> order_is_lost(registered)
        False
        >>> order_is_lost(sorted(registered), min_keys=8)
        True
        >>> order_is_lost(sorted(registered))  # too few keys to tell
        False
    """
    keys = list(keys)
    if len(keys) < min_keys:
        return False
    descents = sum(a > b for a, b in zip(keys, keys[1:]))
    return descents <= 2


def _dp_verdicts(score, p, q):
    """
    The optimal alignments of a ``p`` x ``q`` score matrix (0: no pair), as
    ``(rows, cols)``: for each row, the columns some optimal alignment pairs
    it with and whether some optimal alignment leaves it out; the same for
    each column. Forward and backward longest-common-subsequence tables.
    """
    fwd = [[0] * (q + 1) for _ in range(p + 1)]
    for a in range(p):
        row, nxt, srow = fwd[a], fwd[a + 1], score[a]
        for b in range(q):
            best = nxt[b] if nxt[b] > row[b + 1] else row[b + 1]
            s = srow[b]
            if s and row[b] + s > best:
                best = row[b] + s
            nxt[b + 1] = best
    bwd = [[0] * (q + 1) for _ in range(p + 1)]
    for a in range(p - 1, -1, -1):
        row, nxt, srow = bwd[a], bwd[a + 1], score[a]
        for b in range(q - 1, -1, -1):
            best = nxt[b] if nxt[b] > row[b + 1] else row[b + 1]
            s = srow[b]
            if s and nxt[b + 1] + s > best:
                best = nxt[b + 1] + s
            row[b] = best
    total = fwd[p][q]
    rows = []
    for a in range(p):
        before, after, srow = fwd[a], bwd[a + 1], score[a]
        partners = [b for b in range(q)
                    if srow[b] and before[b] + srow[b] + after[b + 1] == total]
        skippable = any(before[b] + after[b] == total for b in range(q + 1))
        rows.append((partners, skippable))
    cols = []
    for b in range(q):
        partners = [a for a in range(p) if score[a][b] and fwd[a][b]
                    + score[a][b] + bwd[a + 1][b + 1] == total]
        skippable = any(fwd[a][b] + bwd[a][b + 1] == total for a in range(p + 1))
        cols.append((partners, skippable))
    return rows, cols


def _certain_lis(pairs):
    """
    The pairs that every longest chain increasing on both sides contains.

    ``pairs`` are ``(i, j)`` with distinct ``i`` and distinct ``j``; the
    result is sorted. Patience sorting, O(n log n).
    """
    pairs = sorted(pairs)
    n = len(pairs)
    if n == 0:
        return []
    ends = [p[1] for p in pairs]

    def lengths(values):
        tails, out = [], []
        for value in values:
            pos = bisect_left(tails, value)
            if pos == len(tails):
                tails.append(value)
            else:
                tails[pos] = value
            out.append(pos + 1)
        return out

    forward = lengths(ends)
    backward = lengths([-v for v in reversed(ends)])[::-1]
    longest = max(forward)
    on_some = [k for k in range(n) if forward[k] + backward[k] - 1 == longest]
    per_level = {}
    for k in on_some:
        per_level[forward[k]] = per_level.get(forward[k], 0) + 1
    return [pairs[k] for k in on_some if per_level[forward[k]] == 1]


def find_name_conflicts(src: Mapping[str, Shape], dst: Mapping[str, Shape],
                        mapping: Mapping[str, str], sep: str = '.') -> set:
    """
    The source keys of ``mapping`` whose pair joins two modules of different
    names while the two models share a naming scheme (step 5 of the module
    docstring), whichever mode made the mapping.

    Example:
        >>> from torch_liberator.alignment import find_name_conflicts
        >>> src = {'backbone.conv1.weight': (8, 3, 3, 3),
        ...        'backbone.layer1.conv1.weight': (8, 8, 3, 3),
        ...        'custom_model2_layer.weight': (1, 1)}
        >>> dst = {'module.conv1.weight': (8, 3, 3, 3),
        ...        'module.layer1.conv1.weight': (8, 8, 3, 3),
        ...        'custom_model1_layer.weight': (1, 1)}
        >>> find_name_conflicts(src, dst, dict(zip(src, dst)))
        {'custom_model2_layer.weight'}
    """
    return StructureSides(src, dst, sep).name_conflicts(mapping)


def align_structure(src: Mapping[str, Shape], dst: Mapping[str, Shape],
                    sep: str = '.', max_cells: int = MAX_CELLS) -> Alignment:
    """
    Pair source keys with destination keys by structure (see the module
    docstring): state-dict order, shapes, and the names that agree.

    Args:
        src: source (checkpoint) keys -> shapes, in state-dict order. Keys
            whose shape is None are never paired.
        dst: destination (model) keys -> shapes, in state-dict order.
        sep: separator between path components.
        max_cells: the largest gap (source groups x destination groups)
            aligned by dynamic programming; larger gaps without unique
            shapes are left unpaired and listed as ambiguous.

    Returns:
        Alignment: the mapping (one to one, shapes compatible, in source
        order) and the ambiguous source keys.

    Example:
        >>> from torch_liberator.alignment import align_structure
        >>> # timm-style and torchvision-style names for one transformer block
        >>> src = {'cls_token': (1, 1, 4), 'pos_embed': (1, 5, 4),
        ...        'patch.weight': (4, 3, 2, 2), 'patch.bias': (4,),
        ...        'blocks.0.gamma': (4,), 'blocks.0.norm1.weight': (4,),
        ...        'blocks.0.norm1.bias': (4,)}
        >>> dst = {'class_token': (1, 1, 4), 'conv_proj.weight': (4, 3, 2, 2),
        ...        'conv_proj.bias': (4,), 'encoder.pos_embedding': (1, 5, 4),
        ...        'encoder.layers.0.layer_scale': (4, 1, 1),
        ...        'encoder.layers.0.ln_1.weight': (4,),
        ...        'encoder.layers.0.ln_1.bias': (4,)}
        >>> mapping = align_structure(src, dst).mapping
        >>> mapping['pos_embed'], mapping['blocks.0.gamma']
        ('encoder.pos_embedding', 'encoder.layers.0.layer_scale')
        >>> len(mapping)
        7
    """
    return StructureSides(src, dst, sep).align(max_cells)
