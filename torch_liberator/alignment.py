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

0. A layer one side fuses (an attention's ``qkv`` of ``3C`` outputs) and
   the run of Linears of ``C`` it stacks on the other (HF's ``query``,
   ``key`` and ``value``, the only layers of their module) are set aside
   when the two sides hold as many of each and nothing else of those
   shapes (:mod:`torch_liberator.fusedruns`): no one tensor of either is
   the other's, and left in, the three would tie with the output Linear
   of their shape beside them.
1. *Name anchors*: groups whose module paths share a suffix starting with
   a word (``layer1.0.conv1`` and ``backbone.body.layer1.0.conv1``; not
   ``1.bn``, a position that a list cut in two renumbers) that no other
   group shares as well (ties go to the smaller difference in depth, so
   ``model.*`` beats ``ema_model.module.*``), in both directions, and whose
   shapes can pair, unless the paths, past a level only one side names,
   first differ above that suffix in two words each naming a module
   beside the other (the checkpoint's ``Mixed_6b.trunk.branch1x1``
   against the model's ``Mixed_6d.model.trunk.branch1x1``: ``trunk`` is
   the only such suffix, but both models hold a ``Mixed_6b`` and a
   ``Mixed_6d``). A group with such a partner is only ever paired with
   it.
2. The anchors that every longest increasing subsequence keeps (pairs in
   the same order on both sides) cut both sequences into gaps.
3. Each gap is solved like patience diff: equal gaps pair position by
   position; otherwise the groups whose shapes are unique in the gap on both
   sides become anchors (again through the longest increasing subsequence)
   and the sub-gaps are solved the same way; a gap without such anchors is
   aligned by dynamic programming (a longest common subsequence scored by
   the number of paired tensors, ties broken by agreeing trailing name
   components, none when they end at two different numbers: the same
   layer of another item, and exact shapes). A pair is kept only when *every* optimal alignment
   makes it; the others are ambiguous and listed, never guessed. No pair
   of a gap crosses the two pairs around it: a group whose path shares
   more leading components with one bound's than with the other's (its
   block) never pairs with one leaning the other way (a block's shortcut,
   registered last, is not the next block's first norm).
4. Leftovers: name partners that were out of order (order is a hint, not a
   law), then groups (or single tensors of containers, such as a class
   token) whose shapes are unique among the leftovers on both sides. Not
   from inside a module of more than a few groups none of which found a
   partner (keys in registration order): a whole network that did not
   align (a second backbone beside the one that did) holds shapes that
   are unique by coincidence.
5. Modules as wholes (:mod:`torch_liberator.modulefit`): a module
   around an unpaired group whose shapes, place by place, are those of the
   module around the partners of its paired groups (their parents holding
   the same pairs) is that module: its other groups pair by position (a
   shortcut registered first: its convolution pairs by its unique shape,
   its BatchNorm goes with it); the gaps are then aligned again between
   all pairs, and the leftovers paired again. Before all this, a side
   that, whole, has the shapes and tree shape of exactly one module of the
   other side goes there (or, but for the sizes of its last group, a
   classifier, exactly one: the network fine-tuned to other classes,
   beside a longer sibling that its names fit with blocks skipped; the
   head stays out); and a module of the model that is a run of the
   checkpoint's groups (a network's ``nn.Sequential(*children[:-1])``)
   takes that run when name partners send part of it into a sibling of
   the checkpoint's names that fits it only in part (timm's resnet50d
   beside resnet50's children, for a resnet50 checkpoint); the sibling's
   partners are then listed as ambiguous. A sibling that holds the run
   whole is a copy of the network, closer by its names, and keeps it.
   A BatchNorm tied between places follows the layer registered just
   before it, to the place just after that layer's partner (Keras's flat
   ``conv3_block1_0_conv`` / ``_bn`` units have no module to follow); kept
   only when it adds norms and changes nothing else. Inside two modules
   that correspond (two or more pairs below each, all landing below the
   other), groups left over under one relative path pair by their names,
   tensor by tensor (an attention whose children two libraries register
   in other orders), and a layer that each holds as the only free layer
   of its shapes pairs with the other's (HF's Swin V2 spells the layers
   of its attention otherwise, and registers them in another order).
6. Names that disagree: when more paired tensors sit in modules of the
   same name than of two different names (the two models share a naming
   scheme), a pair whose names are two different words (``fc`` and
   ``head``; a container's own tensors by their own names) is dropped: in a
   shared scheme, a different name means a different module. A word and
   the word numbered (``conv`` and ``conv2``) are one layer that one
   library numbers when the two modules around them hold other pairs
   between them (RAFT's original ``fnet`` and torchvision's
   ``feature_encoder``), and two when they hold none. Integer names
   (Sequential positions) and a name found in the other path (an inserted
   level: ``head.fc`` and ``head``) never count against a pair. Nor, in
   such a scheme, is a pair kept whose paths, the same below, first
   differ in two words that each name a module beside the other
   (``branch3x3_2a.bn`` against ``branch3x3dbl_2.bn`` where the model has
   a ``branch3x3_2a`` too: its branches registered in another order;
   a level that only one side names, ``branch7x7dbl_3.main.bn``, is
   passed over, and a name joined from a path, ``Mixed_6d_branch7x7dbl_3``,
   names the model's ``Mixed_6d.branch7x7dbl_3``). A
   rename is no disagreement: two words the other model never uses, paired
   with each other only, in two or more module pairs (HF's
   ``layernorm_before`` for timm's ``norm1``).
7. Coincidences (:mod:`torch_liberator.coincidence`, keys in registration
   order): a norm or layer scale paired away from the layer beside it, and
   an alignment that no name anchors holding under a tenth of the smaller
   side or a twentieth of the larger (the stem of a resnet in a densenet),
   are left out and listed as ambiguous.

When either side's order is lost (keys sorted by name, as a safetensors
file lists them; see :mod:`torch_liberator.keyorder`), steps 2, 3 and 5
are skipped: after the name anchors, modules pair by the shapes they hold
(:mod:`torch_liberator.unordered`), then the leftovers by unique shapes,
but for a norm whose siblings found no partner on either side (a
classifier's norm is not a backbone's norm on its last stage).
Two registration orders can also disagree: mmpretrain's ConvNeXt
registers its four downsampling layers before its stages, torchvision's
between them. When an alignment in registration order leaves a tenth of
the smaller side unpaired (:data:`ORDER_DOUBT`), the order-free alignment
runs too. When it keeps every pair the order made, what it places inside
a module that it paired by what the module holds alone (the one module of
its shapes on each side, no number taking part there or above) is added,
if that module has :data:`~torch_liberator.modulefit.NESTING_FIT_MIN`
groups or more on each side, or holds every tensor of each of its kernel
shapes, of :data:`KERNELS_ALONE_MIN` shapes or more, on each side (a
ConvNeXt stage of three blocks): in a few groups of shapes found elsewhere
too, the shapes coincide by chance (a level inserted beside a block of the
same two shapes). A key the
order found ambiguous is added only when its other places lie outside
that module. An alignment whose places go back somewhere in the order of
the destination is read against the order-free one too: a key of a module
``S`` (paired by what it holds alone with ``D``) sent into ``D'`` (paired
so with ``S'``) while a key of ``S'`` went into ``D`` crosses two modules
that the order swapped (a regnet stage whose blocks the model registers
last first); it goes where the order-free alignment puts it inside ``D``,
or is left out when that place is taken or missing.

Notes:
    The parts live in their own modules: :mod:`torch_liberator.keygroups`
    cuts keys into groups and pairs two groups' tensors,
    :mod:`torch_liberator.keyorder` tells sorted keys from a registration
    order, :mod:`torch_liberator.lcs` holds the
    subsequence algorithms, :mod:`torch_liberator.nameanchors` finds the
    name anchors (step 1), :mod:`torch_liberator.groupalign` runs steps 1
    to 7, :mod:`torch_liberator.modulefit` finds the module evidence (step
    5), :mod:`torch_liberator.namevotes` judges names (step 6); this module
    is the entry point.

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
from collections import Counter
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

from torch_liberator.crossings import crossed_twin_norms
from torch_liberator.groupalign import GroupAligner
from torch_liberator.keygroups import (KeyGroups, Shape, common_module, enclosing_modules,
                                       group_tensor_pairs)
from torch_liberator.keyorder import order_is_lost, sort_within_modules
from torch_liberator.modulefit import NESTING_FIT_MIN, same_groups_fit
from torch_liberator.namevotes import NameVotes

__all__ = ['Alignment', 'MAX_CELLS', 'ORDER_DOUBT', 'StructureSides', 'align_structure',
           'find_name_conflicts']

#: the largest gap (src groups x dst groups) aligned by dynamic programming
MAX_CELLS = 250_000

#: an alignment in registration order that leaves at least this share of
#: the smaller side unpaired is compared with the order-free one
#: (:meth:`StructureSides.align`)
ORDER_DOUBT = 0.1

#: a module paired by what it holds alone, of fewer groups than
#: :data:`~torch_liberator.modulefit.NESTING_FIT_MIN`, is still believed
#: when it holds every tensor of each of its kernel shapes, of this many
#: shapes or more, on both sides (a ConvNeXt stage's depthwise and two
#: pointwise kernels of its width)
KERNELS_ALONE_MIN = 3


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
        ordered: whether both sides list their keys in registration
            order; None tells it from the keys
            (:func:`~torch_liberator.keyorder.order_is_lost`).

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
                 sep: str = '.', ordered: Optional[bool] = None):
        self.sep = sep
        self._given = (src, dst)
        #: with the order lost on one side only, the other side's keys ->
        #: their positions (registration order), None for the lost side
        self.ranks: Tuple[Optional[Dict[str, int]], ...] = (None, None)
        if ordered is None:
            lost = (order_is_lost(src, sep=sep), order_is_lost(dst, sep=sep))
            ordered = not any(lost)
            if not ordered:
                self.ranks = tuple(None if gone else {key: n for n, key in enumerate(side)}
                                   for gone, side in zip(lost, (src, dst)))
        #: False when either side's keys are not in registration order
        #: (sorted by name as in a safetensors file, parameters before
        #: buffers, back to front; see order_is_lost): then order is no
        #: evidence, and a module's tensors are compared in one order on
        #: both sides
        self.ordered = ordered
        #: with the order lost, ``{src module: dst module}`` that the
        #: alignment paired by what they hold and no number (see
        #: :func:`~torch_liberator.unordered.signature_pairs`)
        self.unique_modules: Dict[str, str] = {}
        if not self.ordered:
            src, dst = sort_within_modules(src, sep), sort_within_modules(dst, sep)
        self.src = KeyGroups(src, sep)
        self.dst = KeyGroups(dst, sep)
        #: judges the names of tensor pairs (a shared naming scheme)
        self.votes = NameVotes(self.src, self.dst)
        self._pair_cache = {}
        self._where = None

    def inner(self, i: int, j: int) -> Optional[List[Tuple[int, int]]]:
        """
        :func:`~torch_liberator.keygroups.group_tensor_pairs` of source
        group ``i`` and destination group ``j``, cached by kind of group.

        Example:
            >>> from torch_liberator.alignment import StructureSides
            >>> StructureSides({'a.w': (2, 3)}, {'b.w': (2, 3, 1)}).inner(0, 0)
            [(0, 0)]
        """
        cache_key = (self.src.kind[i], self.dst.kind[j])
        try:
            return self._pair_cache[cache_key]
        except KeyError:
            pairs = group_tensor_pairs(self.src, i, self.dst, j)
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
        narrowed = self._narrowed()
        if narrowed is not None:
            found = narrowed.align(max_cells)
            self.unique_modules = narrowed.unique_modules
            return found
        found = Alignment(*GroupAligner(self, max_cells).solve())
        if not self.ordered:
            return found
        smaller = min(map(len, self._given))
        doubt = smaller and smaller - len(found.mapping) >= ORDER_DOUBT * smaller
        crossing = self._goes_back(found.mapping)
        if not (doubt or crossing):
            return found
        sides = StructureSides(*self._given, self.sep, ordered=False)
        free = sides.align(max_cells)
        if crossing:
            found = _uncrossed(found, free, sides.unique_modules, self.sep)
        if doubt:
            found = self._order_free_added(found, free, sides)
        return found

    def _order_free_added(self, found, free, sides):
        """``found`` (an alignment in registration order that left much
        out: two orders that disagree, as mmpretrain's ConvNeXt registers
        its four downsampling layers before its stages) with the pairs that
        ``free`` (the order-free alignment of ``sides``) makes inside a
        module of :data:`~torch_liberator.modulefit.NESTING_FIT_MIN` groups
        or more that it paired by what it holds alone (no number, there or
        above), when it keeps every pair of ``found``: for a key ``found``
        left out, and for an ambiguous one when its other places lie
        outside."""
        if any(free.mapping.get(key) != value for key, value in found.mapping.items()):
            return found
        below = (_groups_below(sides.src, self.sep), _groups_below(sides.dst, self.sep))
        large = {module: other for module, other in sides.unique_modules.items()
                 if min(below[0][module], below[1][other]) >= NESTING_FIT_MIN}
        small = {module: other for module, other in sides.unique_modules.items()
                 if module not in large}
        if small:
            alone = (_kernels_alone(sides.src, small, self.sep),
                     _kernels_alone(sides.dst, small.values(), self.sep))
            large.update((module, other) for module, other in small.items()
                         if module in alone[0] and other in alone[1])
        mapping = {key: free.mapping[key] for key in self._given[0]
                   if key in free.mapping and (key in found.mapping or _inside(
                       key, free.mapping[key], found.ambiguous.get(key, ()), large, self.sep))}
        ambiguous = {key: value for key, value in found.ambiguous.items() if key not in mapping}
        return Alignment(mapping, ambiguous)

    def _narrowed(self):
        """The two sides less what lies outside the one module of the larger
        that holds the same groups as the whole smaller side (modulefit's
        same_groups_fit), or None."""
        src, dst = self.src, self.dst
        if len(src) < len(dst):
            start = same_groups_fit(src, dst)
            if start is None:
                return None
            inside, outside = range(start, start + len(src)), dst
        else:
            start = same_groups_fit(dst, src)
            if start is None:
                return None
            inside, outside = range(start, start + len(dst)), src
        part = {key: shape for g in inside
                for key, shape in zip(outside.keys[g], outside.shapes[g])}
        whole = {key: shape for side in ((src,) if outside is dst else (dst,))
                 for g in range(len(side))
                 for key, shape in zip(side.keys[g], side.shapes[g])}
        # in the order the keys were given (the groups of a side whose
        # order is lost on the other are sorted within modules), so that
        # the narrowed sides tell a listing in registration order as well
        given_src, given_dst = ({key: n for n, key in enumerate(side)} for side in self._given)
        if outside is dst:
            return StructureSides(dict(sorted(whole.items(), key=lambda kv: given_src[kv[0]])),
                                  dict(sorted(part.items(), key=lambda kv: given_dst[kv[0]])),
                                  self.sep)
        return StructureSides(dict(sorted(part.items(), key=lambda kv: given_src[kv[0]])),
                              dict(sorted(whole.items(), key=lambda kv: given_dst[kv[0]])),
                              self.sep)

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
        keys, tensor_pairs = self._tensor_pairs(mapping)
        return {keys[n] for n in self.votes.conflicts(tensor_pairs)}

    def namesakes_crossed(self, mapping: Mapping[str, str]) -> set:
        """
        The source keys of ``mapping`` whose modules' paths, the same below,
        first differ in two words each of which names a module beside the
        other (:meth:`~torch_liberator.namevotes.NameVotes.namesakes_above`):
        the namesake is there, whatever else the names say.

        Example:
            >>> from torch_liberator.alignment import StructureSides
            >>> keys = {'b.layer1.bn.w': (4,), 'b.layer5.bn.w': (8,), 'b.layer6.bn.w': (4,)}
            >>> sides = StructureSides(keys, keys)
            >>> sides.namesakes_crossed({'b.layer1.bn.w': 'b.layer6.bn.w'})
            {'b.layer1.bn.w'}
        """
        keys, tensor_pairs = self._tensor_pairs(mapping)
        return {key for key, (i, _, j, _) in zip(keys, tensor_pairs)
                if self.votes.namesakes_above(i, j)}

    def twin_norms_crossed(self, mapping: Mapping[str, str]) -> set:
        """
        The source keys of ``mapping`` in norms sent, under another name, out
        of their block's order of norms
        (:func:`~torch_liberator.crossings.crossed_twin_norms`).

        Example:
            >>> from torch_liberator.alignment import StructureSides
            >>> ln = lambda p: {p + '.weight': (8,), p + '.bias': (8,)}
            >>> sides = StructureSides({**ln('l.before'), **ln('l.after')},
            ...                        {**ln('f.norm1'), **ln('f.norm2')})
            >>> sorted(sides.twin_norms_crossed({'l.before.weight': 'f.norm2.weight'}))
            ['l.before.weight']
        """
        keys, tensor_pairs = self._tensor_pairs(mapping)
        ordered = (self.ordered or self.ranks[0] is not None,
                   self.ordered or self.ranks[1] is not None)
        crossed = set(crossed_twin_norms(self.src, self.dst,
                                         {(i, j) for i, _, j, _ in tensor_pairs}, ordered))
        return {key for key, (i, _, j, _) in zip(keys, tensor_pairs) if (i, j) in crossed}

    def _goes_back(self, mapping: Mapping[str, str]) -> bool:
        """Whether the places of ``mapping``, in its order, go back
        somewhere in the destination's order (groups are runs of its keys,
        in order)."""
        last = (-1, -1)
        for _, _, j, b in self._tensor_pairs(mapping)[1]:
            if (j, b) < last:
                return True
            last = (j, b)
        return False

    def _tensor_pairs(self, mapping):
        """The source keys of ``mapping`` found on both sides, and their
        ``(src group, src position, dst group, dst position)``."""
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
        return keys, tensor_pairs


def _inside(key: str, place: str, others, modules: Mapping[str, str], sep: str) -> bool:
    """Whether a module pair of ``modules`` holds ``key`` and ``place``
    while none of ``others`` (its other candidate places, when it has
    any, one of them ``place``) lies inside it."""
    if others and place not in others:
        return False
    for module in enclosing_modules(key, sep):
        other = modules.get(module)
        if other is not None and place.startswith(other + sep):
            return not any(p != place and p.startswith(other + sep) for p in others)
    return False


def _uncrossed(found: Alignment, free: Alignment, modules: Mapping[str, str],
               sep: str) -> Alignment:
    """``found`` with the pairs that cross two module pairs of ``modules``
    (each the one module of its shapes on both sides, paired by the
    order-free alignment ``free`` with no number deciding) put where
    ``free`` puts them: a key of ``S`` (paired with ``D``) sent into
    ``D'`` (paired with ``S'``) while a key of ``S'`` went into ``D``.
    When ``free`` has no free place inside ``D`` for it, the key is left
    out, with both places. A key sent so into ``D'`` alone (no key of
    ``S'`` in ``D``) is left out, with both places, when ``free`` puts it
    in a place inside ``D`` that ``found`` left empty: the two readings
    disagree. A key sent out of its module's partner in any other way
    stays: nothing says where the crossing is."""
    partner_of = {other: module for module, other in modules.items()}
    crossing = {}  # source key -> (its module, the module whose partner it went into)
    for key, place in found.mapping.items():
        mine = next((m for m in enclosing_modules(key, sep) if m in modules), None)
        if mine is None or place.startswith(modules[mine] + sep):
            continue
        theirs = next((partner_of[m] for m in enclosing_modules(place, sep) if m in partner_of),
                      None)
        if theirs is not None and theirs != mine:
            crossing[key] = (mine, theirs)
    mutual = {(mine, theirs) for mine, theirs in crossing.values()}
    moved = {key: pair[0] for key, pair in crossing.items() if pair[::-1] in mutual}
    # one way only: the order-free reading has a place for the key inside
    # its module's partner that the order left empty (a regnet stage whose
    # blocks the checkpoint registers last first, the second block's conv3
    # left out as a tie, the first's sent into the second's place)
    taken = set(found.mapping.values())
    alone = {key for key, (mine, _) in crossing.items() if key not in moved
             and free.mapping.get(key) is not None and free.mapping[key] not in taken
             and free.mapping[key].startswith(modules[mine] + sep)}
    if not moved and not alone:
        return found
    mapping = {key: place for key, place in found.mapping.items()
               if key not in moved and key not in alone}
    ambiguous = dict(found.ambiguous)
    for key in alone:
        ambiguous[key] = (found.mapping[key], free.mapping[key])
    used = set(mapping.values())
    for key, module in moved.items():
        place = free.mapping.get(key)
        if place is not None and place not in used and place.startswith(modules[module] + sep):
            mapping[key] = place
            used.add(place)
        else:
            ambiguous[key] = tuple(p for p in (found.mapping[key], place) if p is not None)
    order = {key: n for n, key in enumerate(found.mapping)}
    return Alignment(dict(sorted(mapping.items(), key=lambda pair: order[pair[0]])), ambiguous)


def _groups_below(side: KeyGroups, sep: str) -> Counter:
    """How many groups of ``side`` lie at or below each module."""
    counts = Counter()
    for path in side.path:
        counts[path] += 1
        counts.update(enclosing_modules(path, sep))
    return counts


def _kernels_alone(side: KeyGroups, modules: Iterable[str], sep: str) -> set:
    """The modules of ``modules`` that hold kernels of
    :data:`KERNELS_ALONE_MIN` shapes (size-1 dimensions aside) or more, and
    every tensor of ``side`` of each of those shapes: no coincidence can put
    their shapes elsewhere."""
    kinds = {module: set() for module in modules}
    keys_of = {}  # kernel shape -> every key of that shape
    for g, path in enumerate(side.path):
        shapes = []
        for key, shape in zip(side.keys[g], side.squeezed[g]):
            if len(shape) >= 2:
                shapes.append(shape)
                keys_of.setdefault(shape, []).append(key)
        if shapes:
            for module in (path, *enclosing_modules(path, sep)):
                if module in kinds:
                    kinds[module].update(shapes)
    # the lowest module holding every tensor of a kernel shape
    homes = {shape: common_module(keys, sep) for shape, keys in keys_of.items()}
    return {module for module, held in kinds.items()
            if len(held) >= KERNELS_ALONE_MIN and all(
                homes[shape] == module or homes[shape].startswith(module + sep)
                for shape in held)}


def find_name_conflicts(src: Mapping[str, Shape], dst: Mapping[str, Shape],
                        mapping: Mapping[str, str], sep: str = '.') -> set:
    """
    The source keys of ``mapping`` whose pair joins two modules of different
    names while the two models share a naming scheme (step 6 of the module
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
