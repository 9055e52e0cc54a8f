"""
The structure solver's alignment of two group sequences, the way ``diff``
aligns lines.

Pure: two :class:`~torch_liberator.keygroups.KeyGroups` sides (held by a
:class:`~torch_liberator.alignment.StructureSides`) in, a one-to-one
mapping of keys and the ambiguous keys out. The steps (the module docstring
of :mod:`torch_liberator.alignment` tells why each is sound):

0. a layer fused on one side (an attention's ``qkv``) and the run of
   Linears it stacks on the other (``query``, ``key``, ``value``) are set
   aside (:mod:`torch_liberator.fusedruns`): no one tensor of either is
   the other's, and they count as placed where a lone pair is judged;
1. name anchors (:mod:`torch_liberator.nameanchors`): groups whose paths
   share a suffix starting with a word that no other group shares, both
   ways, and whose shapes can pair, unless the words above that suffix
   name two sibling modules each side holds
   (:meth:`~torch_liberator.namevotes.NameVotes.namesakes_above`);
2. the anchors every longest increasing subsequence keeps cut both
   sequences into gaps;
3. each gap is solved like patience diff (equal gaps position by position,
   unique shapes as anchors, unless a copy of the network beside one of
   them lacks the module, otherwise dynamic programming, whose name bonus
   stops at a position that numbers a later part of a list cut in parts);
   a pair is kept only when every optimal alignment makes it; an
   ambiguous group that every optimum pairs goes where its siblings went;
4. leftovers whose shapes are unique on both sides;
5. modules as wholes (:mod:`torch_liberator.modulefit`): a side that,
   whole, fits exactly one module of the other goes there (before step 1),
   and so does a run of the source that one module of the destination
   holds, against name partners into a sibling that holds it in part;
   a module around known pairs pulls in its other groups, then the gaps
   are aligned again and the leftovers paired again; and the norms two
   corresponding modules hold directly, as many of one shape on each
   side, pair in registration order where the same names pair so in two
   or more module pairs and nowhere otherwise (HF's ViT registers its
   norms last in each layer); and groups that two corresponding modules
   hold under one relative path pair by their names (timm's Swin V2
   registers an attention's position MLP before ``qkv``, torchvision's
   after it), and a layer that each of two such modules holds as the only
   free layer of its shapes pairs with the other's;
6. pairs whose names disagree in a shared naming scheme are dropped, and
   so is a pair, however found, that is the only one inside a module of
   more than :data:`LONE_LIMIT` groups on either side, and (keys in
   registration order) so are the pairs in a part left unfilled when
   another part left unfilled could hold them (an alternative the
   alignment wandered to), and those in lists registered against the
   order their labels give, and (:mod:`torch_liberator.coincidence`)
   norms placed away from their layers (not two corresponding
   containers' own tensors of one name, a Swin V2 attention's
   ``logit_scale``) and alignments too thin to be the
   same network; with the keys sorted, a norm whose siblings found no
   partner on either side.

Example:
    >>> from torch_liberator.alignment import StructureSides
    >>> from torch_liberator.groupalign import GroupAligner
    >>> bn = lambda p: {p + '.weight': (4,), p + '.bias': (4,)}
    >>> mapping, ambiguous = GroupAligner(
    ...     StructureSides(bn('a'), {**bn('x'), **bn('y')}), 100).solve()
    >>> mapping, ambiguous['a.bias']
    ({}, ('x.bias', 'y.bias'))
"""
import os
from bisect import bisect_left, insort
from collections import Counter

from torch_liberator.coincidence import chance_pairs, norms_among_unpaired, parts_left_unfilled
from torch_liberator.crossings import crossed_twin_norms
from torch_liberator.fusedruns import fused_counterparts
from torch_liberator.keygroups import enclosing_modules, is_word, joined_length
from torch_liberator.lcs import certain_lis, dp_verdicts
from torch_liberator.modulefit import (
    module_closure, nested_run_fit, parts_against_their_labels, resized_head_fit,
    run_fit, unpaired_module_size, whole_fit)
from torch_liberator.nameanchors import LaterParts, copy_lacks, module_children, name_partners
from torch_liberator.unordered import norms_by_their_layers, signature_pairs

__all__ = ['LONE_LIMIT', 'GroupAligner']

#: a pair is dropped when it is the only one inside a module of more groups
#: than this, on either side (keys in registration order)
LONE_LIMIT = 4


class GroupAligner:
    """
    One alignment of the two sides of a
    :class:`~torch_liberator.alignment.StructureSides`: what is decided so
    far, and the steps that decide it (see the module docstring).

    Args:
        sides (StructureSides): the two grouped sides; its ``src``,
            ``dst``, ``sep``, ``ordered``, ``inner(i, j)`` and
            ``votes.conflicts`` are used.
        max_cells (int): the largest gap (source groups x destination
            groups) aligned by dynamic programming.

    Example:
        >>> from torch_liberator.alignment import StructureSides
        >>> from torch_liberator.groupalign import GroupAligner
        >>> sides = StructureSides({'a.w': (2, 3), 'fc.w': (4,)},
        ...                        {'b.w': (2, 3), 'head.w': (4,)})
        >>> mapping, ambiguous = GroupAligner(sides, 100).solve()
        >>> mapping, ambiguous
        ({'a.w': 'b.w', 'fc.w': 'head.w'}, {})
    """

    def __init__(self, sides, max_cells: int, settle_norms: bool = True):
        self.sep = sides.sep
        self.max_cells = max_cells
        self.src, self.dst = sides.src, sides.dst
        self.sides = sides
        self.inner = sides.inner
        self.conflicts = sides.votes.conflicts
        self.pairs = {}        # src group index -> dst group index
        self.paired_dst = {}   # dst group index -> src group index
        self.blocked_src = set()
        self.blocked_dst = set()
        self.partners = []     # name partners (src index, dst index), valid
        self.partner_of_src = {}
        self.ambiguous = {}    # src group index -> dst group indices
        self.must_pair = set()  # ambiguous src groups no optimum leaves out
        self.dst_must_pair = {}  # the same for dst groups -> src candidates
        self.loose_pairs = []  # containers' tensors paired one by one
        self.namesake_pairs = []  # tensors paired by their names in their modules
        self.signature_singles = []  # containers' tensors paired by what holds them
        self.settle_norms = settle_norms  # may norms follow their layers
        self.after_layer = set()  # src groups placed by the layer before them
        self.late_pass = False  # siblings resolved again after the leftovers
        self.norms_by_module = set()  # norm pairs their modules placed
        self.norms_unpaired = False  # crossed norms unpaired once
        self.fused = (set(), set())  # groups one fused layer on one side, a run on the other
        self.children = (module_children(self.src), module_children(self.dst))
        self.later_parts = LaterParts(self.src, self.dst, self.inner, sides.ordered,
                                      children=self.children)

    # -- 1. name anchors (torch_liberator.nameanchors) --------------------
    def _find_name_partners(self):
        for i, j in name_partners(self.src, self.dst, self.inner, self.sep,
                                  ordered=self.sides.ordered, later=self.later_parts):
            if self.sides.votes.namesakes_above(i, j):
                continue  # the words above name two sibling modules
            self.blocked_src.add(i)
            self.blocked_dst.add(j)
            self.partners.append((i, j))
            self.partner_of_src[i] = j

    def _set_aside_fused(self):
        """Block the groups that are one fused layer on one side and a run
        of Linears on the other
        (:func:`~torch_liberator.fusedruns.fused_counterparts`): no one
        tensor of either is the other's, and the run's Linears would tie
        with the output Linear beside them."""
        self.fused = fused_counterparts(self.src, self.dst)
        self.blocked_src.update(self.fused[0])
        self.blocked_dst.update(self.fused[1])

    # -- 2, 3. anchors and gaps -------------------------------------------
    def _pair(self, i, j):
        self.pairs[i] = j
        self.paired_dst[j] = i

    def solve(self):
        """
        Run the steps.

        Returns:
            Tuple[Dict[str, str], Dict[str, Tuple[str, ...]]]: the mapping
            (source key -> destination key, in source order) and the
            ambiguous source keys -> their equally good destination keys.

        Example:
            >>> from torch_liberator.alignment import StructureSides
            >>> from torch_liberator.groupalign import GroupAligner
            >>> GroupAligner(StructureSides({'w': (3,)}, {'v': (3,)}), 100).solve()
            ({'w': 'v'}, {})
        """
        self._find_name_partners()
        self._set_aside_fused()
        if not self.sides.ordered:
            # keys sorted by name: neighbours in the listing are not
            # neighbours in the model, so only names, what modules hold and
            # unique shapes speak
            self._pair_by_signatures()
            self._pair_leftovers()
            for i, j in norms_by_their_layers(self.src, self.dst, self.pairs, self.sides.ranks,
                                              self.inner, self.sep):
                if i not in self.blocked_src and j not in self.blocked_dst:
                    self._pair(i, j)
                    self._settled(i, j)
            return self._result()
        if self._fit_whole() or self._fit_run():
            return self._result()
        anchors = certain_lis(self.partners)
        for i, j in anchors:
            self._pair(i, j)
        bounds = [(-1, -1)] + anchors + [(len(self.src), len(self.dst))]
        for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
            free_src = [i for i in range(i0 + 1, i1) if i not in self.blocked_src]
            free_dst = [j for j in range(j0 + 1, j1) if j not in self.blocked_dst]
            self._solve_gap(free_src, free_dst, (i0, j0), (i1, j1))
        self._resolve_by_siblings()
        self._pair_leftovers()
        while True:
            if self._close_modules():
                self._solve_gaps_again()
                self._resolve_by_siblings()
            elif not (self._settled_late() or self._norms_in_their_modules()
                      or self._namesakes_in_their_modules()
                      or self._layers_alone_in_their_modules()):
                break
            self._pair_leftovers()
        mapping, ambiguous = self._result()
        if self.after_layer or self.late_pass:
            # norms settled by their layers may add norms, nothing else
            plain = GroupAligner(self.sides, self.max_cells, settle_norms=False).solve()
            norms = {key for i in range(len(self.src)) if self._is_norm(i)
                     for key in self.src.keys[i]}
            if any(mapping.get(k) != v for k, v in plain[0].items()) or any(
                    k not in plain[0] and k not in norms for k in mapping):
                return plain
        return mapping, ambiguous

    def _pair_by_signatures(self):
        """With the order lost, the modules that hold the same shapes as
        one module of the other side only, and their insides
        (:func:`~torch_liberator.unordered.signature_pairs`); name partners
        keep theirs, and the groups a rival module could give as well are
        listed as ambiguous."""
        groups, singles, doubts = signature_pairs(self.src, self.dst, self.inner, self.sep,
                                                  unique=self.sides.unique_modules,
                                                  ranks=self.sides.ranks, aside=self.fused)
        for i, j in doubts:  # listed: a rival could give them as well
            if i not in self.blocked_src and j not in self.blocked_dst:
                self.ambiguous.setdefault(i, []).append(j)
        for i, j in groups:
            if (i not in self.blocked_src and j not in self.blocked_dst
                    and i not in self.pairs and j not in self.paired_dst):
                self._pair(i, j)
        for i, a, j, b in singles:
            if i not in self.blocked_src and j not in self.blocked_dst:
                self.signature_singles.append((i, a, j, b))
        for i, _, j, _ in self.signature_singles:
            self.blocked_src.add(i)
            self.blocked_dst.add(j)

    # -- 5. modules as wholes (torch_liberator.modulefit) -----------------
    def _spans(self):
        return self.src.module_spans(), self.dst.module_spans()

    def _fit_whole(self):
        """One side whole into the one module of the other side that has
        its shapes (unless a name partner says otherwise)."""
        n_src, n_dst = len(self.src), len(self.dst)
        if n_src == n_dst:
            return False
        head = None  # a head of other sizes: (src group, dst group)
        if n_src < n_dst:
            start = whole_fit(self.src, self.dst)
            if start is None:
                # the checkpoint, its classifier resized: the network fine-tuned
                start = resized_head_fit(self.src, self.dst, self.sep)
                if start is not None:
                    head = (n_src - 1, start + n_src - 1)
                    n_src -= 1
            pairs = None if start is None else [(k, start + k) for k in range(n_src)]
        else:
            start = whole_fit(self.dst, self.src)
            pairs = None if start is None else [(start + k, k) for k in range(n_dst)]
        if pairs is None:
            return False
        partner_of_dst = {j: i for i, j in self.partners}
        if any(self.partner_of_src.get(i, j) != j or partner_of_dst.get(j, i) != i
               for i, j in pairs + ([head] if head else [])):
            return False
        for i, j in pairs:
            self._pair(i, j)
        if head:  # its place is the fine-tuned head, which takes no tensor of another size
            self.blocked_src.add(head[0])
            self.blocked_dst.add(head[1])
        return True

    def _fit_run(self):
        """
        A module of the destination that is a run of the source's groups
        (:func:`~torch_liberator.modulefit.run_fit`: a network's
        ``nn.Sequential(*list(net.children())[:-1])``) while name partners
        send some of that run elsewhere: when the run holds more groups
        than those partners, the names found a sibling of the checkpoint's
        names that fits it in part (timm's resnet50d beside resnet50's
        children), and the run is the checkpoint's place, unless the lowest
        module holding the disputed partners is a run of the checkpoint too
        (two copies of the network: the one of its names is closer). The
        partners inside that module are listed as ambiguous, not paired.
        """
        n_src, n_dst = len(self.src), len(self.dst)
        if not self.partners or n_src < 2:
            return False
        partner_dst = [0] * (n_dst + 1)
        for _, j in self.partners:
            partner_dst[j + 1] = 1
        for j in range(n_dst):
            partner_dst[j + 1] += partner_dst[j]
        _, dst_spans = self._spans()
        candidates = set()
        for chain in dst_spans:
            for a, b in reversed(chain):  # outermost first: the large ones
                if 2 * (b - a) < n_src:
                    break
                if b - a <= n_src and b - a < n_dst and partner_dst[b] == partner_dst[a]:
                    candidates.add((a, b))
        found = []
        for a, b in sorted(candidates, key=lambda span: (span[0] - span[1], span[0])):
            if any(a0 <= a and b <= b0 for a0, b0, _ in found):
                continue
            at = run_fit(self.dst, a, b - a, self.src)
            if at is None:  # or in another library's nesting
                at = nested_run_fit(self.dst, a, b - a, self.src, self.sep)
            if at is not None:
                found.append((a, b, at))
        if len(found) != 1:
            return False
        a, b, at = found[0]
        disputed = [(i, j) for i, j in self.partners if at <= i < at + b - a]
        if not disputed or len(disputed) >= b - a:
            return False
        # the module the disputed partners lie in: when it holds a run of
        # the checkpoint as well (the same network, closer by its names),
        # the names decide
        paths = [self.dst.comps[j] for _, j in disputed]
        common = 0
        while all(len(p) > common and p[common] == paths[0][common] for p in paths):
            common += 1
        # (a module of the run's size at least, or a top-level one: a stem
        # alone, disputed, is a run of any checkpoint of its kind, swin_t's
        # beside swin_v2_t's)
        lost = paths[0][:common]
        inside = [j for j in range(n_dst) if self.dst.comps[j][:common] == lost]
        while len(lost) > 1 and len(inside) < b - a:
            lost = lost[:-1]
            inside = [j for j in range(n_dst) if self.dst.comps[j][:len(lost)] == lost]
        if (not common or inside != list(range(inside[0], inside[-1] + 1))
                or run_fit(self.dst, inside[0], len(inside), self.src) is not None):
            return False
        for i, j in self.partners:
            if self.dst.comps[j][:len(lost)] == lost and not at <= i < at + b - a:
                self.ambiguous[i] = [j]
        for k in range(b - a):
            self._pair(at + k, a + k)
        self.partners, self.partner_of_src = [], {}
        return True

    def _close_modules(self):
        """Pair what modules around known pairs imply; True when any."""
        if len(self.pairs) in (len(self.src), len(self.dst)):
            return False  # one side is all paired: nothing left to imply
        loose_src, loose_dst = self._loose_groups()
        frozen_src, frozen_dst = self.blocked_src | loose_src, self.blocked_dst | loose_dst
        open_src = {self.src.squeezed[i] for i in range(len(self.src))
                    if i not in self.pairs and i not in frozen_src}
        if not any(self.dst.squeezed[j] in open_src for j in range(len(self.dst))
                   if j not in self.paired_dst and j not in frozen_dst):
            return False  # no unpaired group has a counterpart to imply
        new = module_closure(self.src, self.dst, self.pairs, *self._spans(),
                             frozen_src=frozen_src, frozen_dst=frozen_dst)
        # groups of one shape whose tensors do not pair (a weight against a
        # bias, both of shape (1,)) are no pair
        new = [(i, j) for i, j in new if self.inner(i, j) is not None]
        for i, j in new:
            self._pair(i, j)
            self._settled(i, j)
        return bool(new)

    def _solve_gaps_again(self):
        """Align the groups still unpaired in the gaps between the pairs
        that every longest increasing chain of all pairs keeps."""
        loose_src, loose_dst = self._loose_groups()
        anchors = certain_lis(self.pairs.items())
        bounds = [(-1, -1)] + anchors + [(len(self.src), len(self.dst))]
        for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
            free_src = [i for i in range(i0 + 1, i1) if i not in self.pairs
                        and i not in self.blocked_src and i not in loose_src]
            free_dst = [j for j in range(j0 + 1, j1) if j not in self.paired_dst
                        and j not in self.blocked_dst and j not in loose_dst]
            if free_src and free_dst:
                for i in free_src:
                    self.ambiguous.pop(i, None)
                    self.must_pair.discard(i)
                for j in free_dst:
                    self.dst_must_pair.pop(j, None)
                self._solve_gap(free_src, free_dst, (i0, j0), (i1, j1))

    def _solve_gap(self, src_idx, dst_idx, left, right):
        """Align one gap between the pairs ``left`` and ``right`` (``(i, j)``
        group indices; out of range at either end of the sequences): equal
        gaps position by position, else through the groups of unique shapes
        in it, else by dynamic programming (:meth:`_align_dp`). No pair is
        made across the two around it (:meth:`_across_bounds`)."""
        stack = [(src_idx, dst_idx, left, right)]
        while stack:
            src_idx, dst_idx, left, right = stack.pop()
            if not src_idx or not dst_idx:
                continue
            crossing = self._across_bounds(left, right)
            if len(src_idx) == len(dst_idx) and all(
                    self.src.squeezed[i] == self.dst.squeezed[j] and self.inner(i, j) is not None
                    and not crossing(i, j) for i, j in zip(src_idx, dst_idx)):
                for i, j in zip(src_idx, dst_idx):
                    self._pair(i, j)
                continue
            anchors = self._unique_shape_anchors(src_idx, dst_idx)
            if anchors:
                for a, b in anchors:
                    self._pair(src_idx[a], dst_idx[b])
                ends = [left, *((src_idx[a], dst_idx[b]) for a, b in anchors), right]
                bounds = [(-1, -1)] + anchors + [(len(src_idx), len(dst_idx))]
                for n, ((a0, b0), (a1, b1)) in enumerate(zip(bounds, bounds[1:])):
                    stack.append((src_idx[a0 + 1:a1], dst_idx[b0 + 1:b1], ends[n], ends[n + 1]))
            elif len(src_idx) * len(dst_idx) <= self.max_cells:
                self._align_dp(src_idx, dst_idx, crossing)
            elif not self._align_subsequence(src_idx, dst_idx, crossing):
                self._give_up(src_idx, dst_idx)

    def _across_bounds(self, left, right):
        """
        ``crossing(i, j)``: whether pairing source group ``i`` with
        destination group ``j`` in the gap between the pairs ``left`` and
        ``right`` would cross them. A group leans towards the bound whose
        path shares more leading components with its own (the module it
        belongs to: ``s4.b1.downsample.bn`` leans towards ``s4.b1.se.fc2``,
        not ``s4.b2.conv2.conv``); a pair whose source leans one way and
        whose destination the other takes a module of one item into the
        next one. timm's regnet registers a block's shortcut last and,
        with its children in another order, the order had the shortcut's
        norm of block 1 fill the first norm of torchvision's block 2 (whose
        own first norm came later in the checkpoint), one width: 5 wrong
        (cross fuzz seed 48019). A group that shares as much with both, or
        a gap at either end of the sequences, leans nowhere and crosses
        nothing.
        """
        (i0, j0), (i1, j1) = left, right
        if not (0 <= i0 < len(self.src) and 0 <= i1 < len(self.src)
                and 0 <= j0 < len(self.dst) and 0 <= j1 < len(self.dst)):
            return lambda i, j: False
        src_bounds = (self.src.comps[i0], self.src.comps[i1])
        dst_bounds = (self.dst.comps[j0], self.dst.comps[j1])
        src_lean, dst_lean = {}, {}  # each group's lean, read once (the DP asks per cell)

        def crossing(i, j):
            if i not in src_lean:
                src_lean[i] = _lean(self.src.comps[i], *src_bounds)
            if j not in dst_lean:
                dst_lean[j] = _lean(self.dst.comps[j], *dst_bounds)
            return src_lean[i] * dst_lean[j] < 0
        return crossing

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
                      if a is not None and dst_seen.get(shapes) is not None
                      # (one shape, other tensors: a weight against a bias)
                      and self.inner(src_idx[a], dst_idx[dst_seen[shapes]]) is not None
                      # a shape unique only because a copy beside lacks the
                      # module (a resnext50's fc beside a headless
                      # wide_resnet50_2, seed 18862) is no anchor
                      and not copy_lacks(self.src, src_idx[a], self.dst,
                                         dst_idx[dst_seen[shapes]], self.children, at_least=1)]
        candidates.sort()
        return certain_lis(candidates)

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

    def _align_subsequence(self, src_idx, dst_idx, crossing):
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
            return pairs is not None and len(pairs) == len(self.src.keys[i]) and not crossing(i, j)

        def dst_fits(j, i):
            pairs = self.inner(i, j)
            return pairs is not None and len(pairs) == len(self.dst.keys[j]) and not crossing(i, j)

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
                self._pair(i, j)
            elif small is src_idx:
                self.ambiguous[i] = [large[lo], large[hi]]
        return True

    def _name_bonus(self, i, j):
        """Agreeing trailing path components (when one is a word; none when
        they end at two different numbers in lists of one name, the same
        layer of another item: the checkpoint's ``layer1.2.conv1`` is not
        the model's ``layer1.1.conv1`` by its name, mutation fuzz seed
        1554), up to a
        position that numbers a later part of a list cut in parts against
        the other list (:class:`~torch_liberator.nameanchors.LaterParts`:
        the model's ``stage4.blocks.1`` is not the checkpoint's
        ``stage4.1`` when ``stage4.layers.0`` holds its ``stage4.0``), plus
        the components one name joins with ``_`` above them (``stem_bn``
        against ``stem.bn``), plus the tensors whose shapes are exactly
        equal."""
        comps1, comps2 = self.src.comps[i], self.dst.comps[j]
        common = 0
        for c1, c2 in zip(reversed(comps1), reversed(comps2)):
            if c1 != c2 or not c1:
                if (c1.isdigit() and c2.isdigit() and len(comps1) > common + 1
                        and len(comps2) > common + 1
                        and comps1[-common - 2] == comps2[-common - 2]):
                    common = 0  # the same layer of another item of one list
                break
            common += 1
        if any(c.isdigit() for c in comps1[len(comps1) - common:]):
            later = self.later_parts.position(i, j)
            if later:
                common = later - 1
        has_word = any(is_word(c) for c in comps1[len(comps1) - common:])
        # above them, one name may be the other's components joined with _
        # (timm's features_only networks: stem_bn for stem.bn)
        joined = 0
        if common < min(len(comps1), len(comps2)) and (
                '_' in comps1[-common - 1] or '_' in comps2[-common - 1]):
            rest1, rest2 = comps1[:len(comps1) - common], comps2[:len(comps2) - common]
            joined = joined_length(rest1[-1], rest2) or joined_length(rest2[-1], rest1)
        shapes1, shapes2 = self.src.shapes[i], self.dst.shapes[j]
        exact = sum(shapes1[a] == shapes2[b] for a, b in self.inner(i, j))
        return (common if has_word else 0) + joined + exact

    def _align_dp(self, src_idx, dst_idx, crossing):
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
                if pairs is None or not pairs or crossing(i, j):
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
            dp_verdicts([[c * weight + b if c else 0 for c, b in zip(rc, rb)]
                         for rc, rb in zip(counts, bonus)], p, q),
            dp_verdicts([[weight + b if c else 0 for c, b in zip(rc, rb)]
                         for rc, rb in zip(counts, bonus)], p, q)]
        for a in range(p):
            (partners1, skip1), (partners2, skip2) = (v[0][a] for v in verdicts)
            partners = sorted(set(partners1) | set(partners2))
            skippable = skip1 or skip2
            if len(partners) == 1 and not skippable:
                self._pair(src_idx[a], dst_idx[partners[0]])
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

    def _resolve_by_siblings(self):
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
            by_layer = self._beside_their_layers()
            moves = list(by_layer)
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
                # two claims on one group: leave both out (a norm beside
                # its layer keeps the order where it sits)
                if src_count[i] > 1 or dst_count[j] > 1 or (
                        (i, j) not in by_layer and not fits(i, j)):
                    continue
                self._pair(i, j)
                if (i, j) in by_layer:
                    self.after_layer.add(i)
                insort(paired, i)
                p, q = self._parent(self.src.path[i]), self._parent(self.dst.path[j])
                down.setdefault(p, set()).add(q)
                up.setdefault(q, set()).add(p)
                self._settled(i, j)
                changed = True

    def _settled_late(self):
        """After the leftovers, which may have paired the layers that tied
        norms follow: resolve again; True when that paired anything."""
        if not self.settle_norms:
            return False
        before = len(self.pairs)
        self._resolve_by_siblings()
        self.late_pass |= len(self.pairs) > before
        return len(self.pairs) > before

    def _pairs_below(self, src_modules, dst_modules):
        """The pairs made so far, read by module: for each source module of
        ``src_modules`` the destination groups paired from below it, and
        for each destination module of ``dst_modules`` the source groups
        paired into it (a group's own path counts as below it)."""
        went = {p: [] for p in src_modules}
        came = {q: [] for q in dst_modules}
        for i, j in self.pairs.items():
            src_path, dst_path = self.src.path[i], self.dst.path[j]
            for p in (src_path, *enclosing_modules(src_path, self.sep)):
                if p in went:
                    went[p].append(j)
            for q in (dst_path, *enclosing_modules(dst_path, self.sep)):
                if q in came:
                    came[q].append(i)
        return went, came

    def _norms_in_their_modules(self):
        """
        Pair the free norms (leaf groups of vectors only) that two
        corresponding modules hold directly, in registration order, where
        both hold as many of one shape: True when that paired anything.
        Modules correspond when every pair below one lies below the other,
        both ways, and there are two or more. Libraries register a block's
        norms in their own places: HuggingFace's ViT puts
        ``layernorm_before`` and ``layernorm_after`` last in each layer,
        torchvision's ``ln_1`` and ``ln_2`` open the attention and the MLP,
        so the gaps between the layers' anchors hold them crossed and tie.
        The order is evidence only where the same pair of names recurs in
        two or more module pairs and no module pair pairs either name
        otherwise: one module's children registered in another order (a
        detectron2 block's shortcut first) would swap two norms, and a block
        whose norms were registered the other way round against its peers
        leaves those names out everywhere.
        """
        unpaired = False
        if not self.norms_unpaired:  # (once: what pairs them again stays, for the checks)
            self.norms_unpaired = True
            unpaired = self._unpair_crossed_norms()
        loose_src, loose_dst = self._loose_groups()

        def free_norms(side, paired, blocked, loose):
            by_module = {}
            for g in range(len(side)):
                if (g in paired or g in blocked or g in loose or not side.leaf[g]
                        or not side.vectors_only(g)):
                    continue
                module = self._parent(side.path[g])
                if module:  # (the root holds everything: it is no block)
                    by_module.setdefault(module, []).append(g)
            return by_module

        norms_src = free_norms(self.src, self.pairs, self.blocked_src, loose_src)
        norms_dst = free_norms(self.dst, self.paired_dst, self.blocked_dst, loose_dst)
        if not norms_src or not norms_dst:
            return unpaired
        went, came = self._pairs_below(norms_src, norms_dst)

        def below(groups, module):
            return all(self.src.path[i] == module or self.src.path[i].startswith(module + self.sep)
                       for i in groups)

        proposals = []
        for p, partners in went.items():
            if len(partners) < 2:
                continue
            common = self.sep.join(os.path.commonprefix([self.dst.comps[j] for j in partners]))
            q = next((m for m in (common, *enclosing_modules(common, self.sep))
                      if m in norms_dst), None)
            if q is None or not below(came[q], p):
                continue
            shapes_dst = {}
            for j in norms_dst[q]:
                shapes_dst.setdefault(self.dst.squeezed[j], []).append(j)
            shapes_src = {}
            for i in norms_src[p]:
                shapes_src.setdefault(self.src.squeezed[i], []).append(i)
            for shapes, sources in shapes_src.items():
                places = shapes_dst.get(shapes, ())
                if len(places) == len(sources):
                    proposals.extend(zip(sources, places))
        # a norm proposed for two places, or two norms for one place (two
        # module pairs reaching one module above their own), is no pair
        sources, places = Counter(i for i, _ in proposals), Counter(j for _, j in proposals)
        proposals = [(i, j) for i, j in proposals if sources[i] == places[j] == 1]
        names = Counter()
        src_names, dst_names = Counter(), Counter()
        for i, j in proposals:
            pair = (self.src.comps[i][-1], self.dst.comps[j][-1])
            if pair not in names:
                src_names[pair[0]] += 1
                dst_names[pair[1]] += 1
            names[pair] += 1
        made = False
        for i, j in proposals:
            a, b = self.src.comps[i][-1], self.dst.comps[j][-1]
            if names[a, b] >= 2 and src_names[a] == 1 and dst_names[b] == 1:
                self._pair(i, j)
                self.norms_by_module.add((i, j))
                self._settled(i, j)
                made = True
        return made or unpaired

    def _namesakes_in_their_modules(self):
        """
        Pair the free groups that two corresponding modules hold under one
        relative path (``attn.qkv`` in both blocks), tensor by tensor of one
        name and shape: True when that paired anything. Modules correspond
        as for :meth:`_norms_in_their_modules` (two or more pairs below
        each, every one landing below the other). timm's Swin V2 registers
        an attention's position MLP before ``qkv`` and ``proj``,
        torchvision's after them: the gap between the blocks' anchors
        crossed them and the alignment kept only the MLP; the names
        inside the two blocks say where the rest goes. A list position in
        the relative path (``cpb_mlp.2``) counts only where the pairs
        already in that list keep their positions on both sides. The own
        tensors of two corresponding modules pair with each other, by
        name or else as :func:`~torch_liberator.keygroups.group_tensor_pairs`
        pairs them: HF's BEiT layer holds ``lambda_1`` and ``lambda_2`` as
        timm's block holds ``gamma_1`` and ``gamma_2``, and the attention
        inside holds ``q_bias`` and ``v_bias`` of their shape.
        """
        loose_src, loose_dst = self._loose_groups()
        free_dst = {self.dst.path[j]: j for j in range(len(self.dst))
                    if j not in self.paired_dst and j not in self.blocked_dst
                    and j not in loose_dst}
        free_src = [i for i in range(len(self.src)) if i not in self.pairs
                    and i not in self.blocked_src and i not in loose_src]
        # a container's own group paired with another container's own group:
        # its module's counterpart may hold the place (below)
        own_pairs = [i for i, j in self.pairs.items() if not self.src.leaf[i]
                     and self.src.path[i] and not self.dst.leaf[j] and i not in self.blocked_src]
        if not (free_src or own_pairs) or not free_dst:
            return False
        sep = self.sep

        def around(side, g):
            # the modules holding group g; a container's own group: itself
            # too, unless it is the root's (whose correspondence says nothing)
            path = side.path[g]
            return enclosing_modules(path, sep) if side.leaf[g] or not path else (
                path, *enclosing_modules(path, sep))

        went, came = self._pairs_below(
            [p for i in (*free_src, *own_pairs) for p in around(self.src, i)],
            [q for j in free_dst.values() for q in around(self.dst, j)])
        lists = None
        found = {}
        for i in (*free_src, *own_pairs):
            path = self.src.path[i]
            targets = set()
            for p in around(self.src, i):
                if len(went[p]) < 2:
                    continue
                common = os.path.commonprefix([self.dst.comps[j] for j in went[p]])
                rel = path[len(p) + 1:].split(sep) if path != p else []
                for k in range(len(common), 0, -1):
                    q = sep.join(common[:k])
                    if q not in came:
                        continue
                    if not all(self.src.path[g] == p or self.src.path[g].startswith(p + sep)
                               for g in came[q]):
                        break
                    j = free_dst.get(sep.join((q, *rel)))
                    if j is None or self.dst.leaf[j] != self.src.leaf[i]:
                        continue
                    if not all(is_word(c) for c in rel):
                        if lists is None:
                            lists = self._list_positions()
                        if not self._positions_kept(lists, p, q, rel):
                            continue
                    targets.add(j)
            if len(targets) == 1 and (i not in self.pairs or self.pairs[i] not in targets):
                found[i] = targets.pop()
        taken = Counter(found.values())
        made = False
        for i, j in found.items():
            if taken[j] > 1:
                continue
            names, shapes = self.dst.names[j], self.dst.squeezed[j]
            pairs = [(a, names.index(name)) for a, name in enumerate(self.src.names[i])
                     if name in names and shapes[names.index(name)] == self.src.squeezed[i][a]]
            if not pairs and not self.src.leaf[i]:
                # a container's own tensors under other names (HF's BEiT
                # lambda_1 for timm's gamma_1): the two modules' own groups
                pairs = self.inner(i, j) or []
            if not pairs:
                continue
            if i in self.pairs:  # another module's own group: not the counterpart
                del self.paired_dst[self.pairs.pop(i)]
            self.namesake_pairs.extend((i, a, j, b) for a, b in pairs)
            self._settled(i, j)
            made = True
        return made

    def _layers_alone_in_their_modules(self):
        """
        Pair a free layer (a leaf group holding a tensor of two or more
        dimensions besides size-1 ones) with the one free layer of its
        shapes in the corresponding module, when each is the only free
        layer of those shapes in its module: True when that paired anything.
        Two modules correspond when the pairs below one are the pairs below
        the other, two or more; a layer is read in the lowest such module
        around it, on each side, and the two must be one correspondence.
        HF's Swin V2 registers an attention's position MLP first and its
        output Linear after ``query``, ``key`` and ``value``; torchvision's
        registers ``qkv`` and ``proj`` before ``cpb_mlp``. The gap between
        the blocks' anchors crosses them and keeps one; the two attentions
        correspond, and each holds the other alone, with its shapes.
        A layer of a tie stays out: its shapes are not alone in the widest
        modules around the two that hold the same pairs, or the alignment
        listed it as ambiguous.
        """
        loose_src, loose_dst = self._loose_groups()
        doubted = {j for places in self.ambiguous.values() for j in places}

        def free_layers(side, paired, blocked, loose, out=()):
            return [g for g in range(len(side))
                    if g not in paired and g not in blocked and g not in loose
                    and g not in out and side.leaf[g] and not side.vectors_only(g)]

        free_src = free_layers(self.src, self.pairs, self.blocked_src, loose_src,
                               set(self.ambiguous))
        free_dst = free_layers(self.dst, self.paired_dst, self.blocked_dst, loose_dst, doubted)
        if not free_src or not free_dst:
            return False
        sep = self.sep
        went, came = self._pairs_below(
            [p for i in free_src for p in enclosing_modules(self.src.path[i], sep) if p],
            [q for j in free_dst for q in enclosing_modules(self.dst.path[j], sep) if q])

        counterpart = {}  # src module -> dst module, corresponding
        for p, places in went.items():
            if len(places) < 2:
                continue
            q = sep.join(os.path.commonprefix([self.dst.comps[j] for j in places]))
            if q in came and len(came[q]) == len(places):
                counterpart[p] = q

        def lowest(side, g, modules):
            return next((m for m in enclosing_modules(side.path[g], sep) if m in modules), None)

        by_src, by_dst = {}, {}
        for i in free_src:
            p = lowest(self.src, i, counterpart)
            if p is not None:
                by_src.setdefault(p, []).append(i)
        mirrored = set(counterpart.values())
        for j in free_dst:
            q = lowest(self.dst, j, mirrored)
            if q is not None:
                by_dst.setdefault(q, []).append(j)

        def widest(module, placed):
            # the highest module around ``module`` holding the same pairs
            for outer in enclosing_modules(module, sep):
                if not outer or len(placed.get(outer, ())) != len(placed[module]):
                    break
                module = outer
            return module

        # every free layer of the widest modules holding these pairs, not
        # only those whose lowest correspondence this is: a rival anywhere
        # there is a tie
        wide = {p: (widest(p, went), widest(counterpart[p], came)) for p in by_src}
        inside_src = {p_wide: [] for p_wide, _ in wide.values()}
        inside_dst = {q_wide: [] for _, q_wide in wide.values()}
        for side, free, inside in ((self.src, free_src, inside_src),
                                   (self.dst, free_dst, inside_dst)):
            for g in free:
                for module in enclosing_modules(side.path[g], sep):
                    if module in inside:
                        inside[module].append(g)
        made = False
        for p, sources in by_src.items():
            q = counterpart[p]
            rivals_src, rivals_dst = inside_src[wide[p][0]], inside_dst[wide[p][1]]
            for i in sources:
                places = [j for j in by_dst.get(q, ()) if self._whole_pair(i, j)]
                if len(places) != 1:
                    continue
                j = places[0]
                if sum(self._whole_pair(i, k) for k in rivals_dst) != 1 or sum(
                        self._whole_pair(k, j) for k in rivals_src) != 1:
                    continue
                self._pair(i, j)
                self._settled(i, j)
                made = True
        return made

    def _whole_pair(self, i, j):
        """Whether source group ``i`` and destination group ``j`` pair
        every tensor of both."""
        pairs = self.inner(i, j)
        return bool(pairs) and len(pairs) == len(self.src.names[i]) == len(self.dst.names[j])

    def _own_namesakes(self):
        """The pairs of two containers' own groups whose paired tensors are
        named alike and whose modules correspond: something paired below
        the source module, all of it below the destination module (one way
        only, and one pair will do, unlike :meth:`_norms_in_their_modules`:
        HF splits an attention into ``self`` and ``output``, both in
        torchvision's one ``attn``, and ``self`` may hold one pair besides).
        Their names and their modules place them, not a layer beside them
        (:func:`chance_pairs` leaves a vector without one out): the
        ``logit_scale`` of HF's Swin V2 attention (``attention.self``,
        registered first) and of torchvision's (``attn``, after the fused
        ``qkv``)."""
        sep, out = self.sep, set()

        def alike(i, j):
            pairs = self.inner(i, j)
            return bool(pairs) and all(self.src.names[i][a] == self.dst.names[j][b]
                                       for a, b in pairs)

        candidates = [(i, j) for i, j in self.pairs.items()
                      if not self.src.leaf[i] and not self.dst.leaf[j] and self.src.path[i]
                      and alike(i, j)]
        if not candidates:
            return out
        # the pairs by source path: a module's groups are one run of it
        by_path = sorted((self.src.path[a], self.dst.path[b]) for a, b in self.pairs.items())
        paths = [src_path for src_path, _ in by_path]
        for i, j in candidates:
            below_src, below_dst = self.src.path[i] + sep, self.dst.path[j] + sep
            start = bisect_left(paths, below_src)
            stop = start
            while stop < len(paths) and paths[stop].startswith(below_src):
                stop += 1
            if stop > start and all(dst_path.startswith(below_dst)
                                    for _, dst_path in by_path[start:stop]):
                out.add((i, j))
        return out

    def _list_positions(self):
        """Source list path -> ``(position, destination group)`` of every
        pair inside the list."""
        out = {}
        for i, j in self.pairs.items():
            comps = self.src.comps[i]
            for k, c in enumerate(comps):
                if not is_word(c):
                    out.setdefault(self.sep.join(comps[:k]), []).append((c, j))
        return out

    def _positions_kept(self, lists, p, q, rel):
        """Whether every list position in ``rel`` (below modules ``p`` and
        ``q``) holds pairs already, each at the same position on both
        sides."""
        for k, c in enumerate(rel):
            if is_word(c):
                continue
            src_list = self.sep.join((p, *rel[:k]))
            dst_list = (*q.split(self.sep), *rel[:k])
            entries = lists.get(src_list)
            if not entries or any(
                    self.dst.comps[j][:len(dst_list) + 1] != (*dst_list, position)
                    for position, j in entries):
                return False
        return True

    def _loose_groups(self):
        """The groups paired tensor by tensor, on each side."""
        src = {i for i, _, _, _ in self.loose_pairs}
        dst = {j for _, _, j, _ in self.loose_pairs}
        src.update(i for i, _, _, _ in self.namesake_pairs)
        dst.update(j for _, _, j, _ in self.namesake_pairs)
        return src, dst

    def _unpair_crossed_norms(self):
        """
        Unpair the norms that order sent, under another name, out of their
        block's order of norms
        (:func:`~torch_liberator.crossings.crossed_twin_norms`): True when
        any. HF's Swin V2 and timm's register a block's norms after their
        layers, torchvision's before them, and order put the first into
        ``norm2`` and the second into the next block's ``norm1`` (40
        wrong); unpaired, they are the free norms of two corresponding
        blocks (:meth:`_norms_in_their_modules`).
        """
        crossed = crossed_twin_norms(self.src, self.dst, [
            (i, j) for i, j in self.pairs.items() if i not in self.blocked_src])
        for i, j in crossed:
            del self.pairs[i]
            del self.paired_dst[j]
        return bool(crossed)

    def _beside_their_layers(self):
        """
        Moves ``(i, j)`` for the BatchNorms left tied between places that
        the layer registered just before each settles: when that layer is
        paired and the group just after its partner is one of the norm's
        places, free, the norm goes there (a BatchNorm follows its
        convolution on both sides), and every other place is just after a
        paired layer of its own (a module inserted in the model between a
        convolution and its BatchNorm leaves two places after one layer:
        a tie). Keras names one unit per convolution,
        ``conv3_block1_0_conv`` and ``conv3_block1_0_bn``, against
        torchvision's ``layer2.0.downsample.{0,1}`` and ``layer2.0.conv3``
        / ``bn3``: the two 512-channel BatchNorms have no parent module to
        follow, their convolutions' shapes differ. Source ties, then model
        ties, the same way. :meth:`solve` keeps what they settle only when
        it adds norms and changes nothing else: in a chance alignment
        they make it look thicker than it is (a mobilenet_v3_small and a
        mnasnet, stems and first blocks, whose alignment the coincidence
        checks leave out whole).
        """
        if not self.settle_norms:
            return []

        def after_layers(places, paired, side):
            # every place is just after a paired layer of its own
            return all(p - 1 in paired and self._is_layer(p - 1, side) for p in places)

        moves = []
        for i in self.must_pair:
            j = self.pairs.get(i - 1)
            if (i not in self.pairs and j is not None and self._is_norm(i)
                    and self._is_layer(i - 1, self.src) and j + 1 in self.ambiguous[i]
                    and j + 1 not in self.paired_dst
                    and after_layers(self.ambiguous[i], self.paired_dst, self.dst)):
                moves.append((i, j + 1))
        for j, candidates in self.dst_must_pair.items():
            i = self.paired_dst.get(j - 1)
            if (j not in self.paired_dst and i is not None and i + 1 in candidates
                    and i + 1 not in self.pairs and self._is_norm(i + 1)
                    and self._is_layer(j - 1, self.dst)
                    and after_layers(candidates, self.pairs, self.src)):
                moves.append((i + 1, j))
        return moves

    def _is_norm(self, i):
        # a BatchNorm: vectors with running statistics (a LayerNorm's place
        # in the order is the library's: HF's ViT registers layernorm_before
        # after the MLP's output layer)
        return 'running_mean' in self.src.names[i] and self.src.vectors_only(i)

    @staticmethod
    def _is_layer(g, side):
        return any(len(shape) >= 2 for shape in side.squeezed[g])

    # -- 4. leftovers -----------------------------------------------------
    def _pair_leftovers(self):
        for i, j in self.partners:
            if i not in self.pairs and j not in self.paired_dst:
                self._pair(i, j)
                self._settled(i, j)
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
                if self.inner(i, j) is None:
                    continue  # one shape, other tensors (a weight against a bias)
                self._pair(i, j)
            else:
                self.loose_pairs.append((i, a or 0, j, b or 0))
            self._settled(i, j)

    def _lone_groups(self):
        """A test of a pair ``(i, j)`` made: True when either
        group lies in a module of more than :data:`LONE_LIMIT` groups none of
        which but it is paired, or but it and the norm registered just after
        it (or, for a norm, the layer just before it). Such a module did
        not align as a whole (a second network beside the one that did; with
        the keys sorted, a network whose equal blocks have two places), so
        one shape inside it that fits is a coincidence, not evidence
        (mutation fuzz seed 14339: a resnet18's fc by its unique shape into
        the resnet34 beside the model's headless resnet18, keys sorted; seed
        4213 of ``--wide --reorder``: a tiny_vit's downsampling convolution
        and its BatchNorm, ``[128, 64, 1, 1]``, into a resnet18's
        ``layer2.0.downsample`` beside the model's tiny_vit stem)."""
        spans_src, spans_dst = self._spans()
        counts = []
        # (a fused layer and its run of Linears are accounted for: the
        # module holding them aligned)
        for side, paired, fused in ((self.src, self.pairs, self.fused[0]),
                                    (self.dst, self.paired_dst, self.fused[1])):
            running = [0]
            for g in range(len(side)):
                running.append(running[-1] + (g in paired or g in fused))
            counts.append(running)

        def unit(side, running, g):  # a layer and the norm registered just after it
            def paired(k):
                return 0 <= k < len(side) and running[k + 1] > running[k]
            if paired(g + 1) and side.vectors_only(g + 1) and not side.vectors_only(g):
                return g, g + 2
            if side.vectors_only(g) and paired(g - 1) and not side.vectors_only(g - 1):
                return g - 1, g + 1
            return None

        def lone(i, j):
            return (unpaired_module_size(spans_src[i], counts[0], i,
                                         unit(self.src, counts[0], i)) > LONE_LIMIT
                    or unpaired_module_size(spans_dst[j], counts[1], j,
                                            unit(self.dst, counts[1], j)) > LONE_LIMIT)
        return lone

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

    def _settled(self, i, j):
        """Source group ``i`` and destination group ``j`` found their places:
        neither is ambiguous or owed a pair any longer."""
        self.ambiguous.pop(i, None)
        self.must_pair.discard(i)
        self.dst_must_pair.pop(j, None)

    def _taken_positions(self, g, is_src):
        if is_src:
            return {a for a, _ in self.inner(g, self.pairs[g])}
        return {b for _, b in self.inner(self.paired_dst[g], g)}

    # -- 6. names that disagree, and the result ---------------------------
    def _tensor_pairs(self):
        """(src group, src pos, dst group, dst pos) of every paired tensor."""
        out = []
        for i, j in self.pairs.items():
            for a, b in self.inner(i, j):
                out.append((i, a, j, b))
        out.extend(self.loose_pairs)
        out.extend(self.namesake_pairs)
        out.extend(self.signature_singles)
        return out

    def _result(self):
        tensor_pairs = self._tensor_pairs()
        named = set(self.partners)
        dropped = {n for n in self.conflicts(tensor_pairs)
                   if (tensor_pairs[n][0], tensor_pairs[n][2]) not in named}
        # (a module's keys stay together when they are sorted by name)
        lone = self._lone_groups()
        alone = [n for n, (i, _, j, _) in enumerate(tensor_pairs)
                 if (i, j) not in named and lone(i, j)]
        if not self.sides.ordered:
            # a norm whose siblings, on both sides, found no partner
            out = dropped.union(alone)
            kept_pairs = {(i, j) for n, (i, _, j, _) in enumerate(tensor_pairs) if n not in out}
            apart = norms_among_unpaired(self.src, self.dst, kept_pairs) - named
            alone.extend(n for n, (i, _, j, _) in enumerate(tensor_pairs)
                         if n not in out and (i, j) in apart)
        dropped.update(alone)
        if self.sides.ordered:
            for side, at, other in ((self.dst, 2, self.src), (self.src, 0, self.dst)):
                against = parts_against_their_labels(side)
                dropped.update(n for n, pair in enumerate(tensor_pairs) if pair[at] in against)
                kept = [n for n in range(len(tensor_pairs)) if n not in dropped]
                crossed = parts_left_unfilled(side, {tensor_pairs[n][at] for n in kept}, other)
                dropped.update(n for n in kept if tensor_pairs[n][at] in crossed)
        # shapes shared by chance (in registration order): a norm away from
        # its layer, or too little of either network
        chance = set()
        if self.sides.ordered:
            chance = chance_pairs(self.src, self.dst, [
                pair for n, pair in enumerate(tensor_pairs) if n not in dropped], named,
                self.norms_by_module | {(i, j) for i, _, j, _ in self.namesake_pairs}
                | self._own_namesakes())
        by_chance = [pair for pair in tensor_pairs if (pair[0], pair[2]) in chance]
        by_chance.extend(tensor_pairs[n] for n in alone)
        dropped.update(n for n, (i, _, j, _) in enumerate(tensor_pairs) if (i, j) in chance)
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
        for i, a, j, b in by_chance:  # listed with the one place they fit
            ambiguous[(i, a)] = (dst_keys[j][b],)
        return mapping, {src_keys[i][a]: ambiguous[i, a]
                         for i, a in sorted(ambiguous)}


def _lean(comps, left, right):
    """1 when the path ``comps`` shares more leading components with
    ``left`` than with ``right``, -1 the other way round, 0 when as many."""
    a, b = (len(os.path.commonprefix([comps, other])) for other in (left, right))
    return (a > b) - (a < b)
