"""
Group pairs of the structure alignment that are coincidences, not
evidence: shapes that two unrelated networks share by chance.

Pure: two :class:`~torch_liberator.keygroups.KeyGroups` and the group
pairs ``(i, j)`` found, in; the pairs to leave out, out
(:func:`chance_pairs`). Five signs, all read from registration order:

* **A norm without its layer** (:func:`unattached_pairs`): in
  registration order, a pair of groups whose tensors are all vectors (a
  BatchNorm or LayerNorm, a layer scale) counts only beside a pair of the
  groups next to them (before or after) on both sides, or next to one
  module pair on both sides, or placed by its block (two corresponding
  modules holding as many norms): a norm is placed by
  the layer it normalizes. Vectors of one width are everywhere; a resnet50
  bottleneck's ``bn1`` and ``bn2`` (128 channels) line up with the
  ``norm2`` of successive densenet121 dense layers, between convolutions
  that pair with nothing.
* **A part inserted in a block** (:func:`inserted_parts`): a module
  whose paired children have, between them, an unpaired child of two or
  more groups, while their partners lie in one unbroken run of the other
  side: the other block has nothing there, so it is another design (a
  mobilenet_v2 block and an efficientnet_b0 block are the same layers but
  for the latter's squeeze-excitation).
* **Too thin to be a network** (:func:`too_thin`): in registration
  order, when what aligned holds less than :data:`MIN_SHARE` of the smaller
  side's tensors, or less than :data:`MIN_SHARE_OF_LARGER` of the larger
  side's, and no name anchored any of it: the 7x7 convolution and
  BatchNorm that start a resnet, a densenet and a googlenet alike, and a
  BatchNorm or two of a width both happen to use, four convolutions of a
  resnet18's last stage in a vgg11 (a fifth of the vgg, a thirtieth of
  the resnet). The same architecture,
  however renamed, aligns far more (a checkpoint in Caffe's names aligns
  a fifth of a resnet50 even where its order is another). With keys
  sorted (a safetensors file) there is no order to align: a shape unique on
  both sides is all the evidence there is, for a renamed network and for
  an unrelated one alike. Such pairs are kept between networks of one
  design (:func:`design_share` at least :data:`ONE_DESIGN_SHARE`: a
  timm mobilenetv2_100 and torchvision's mobilenet_v2 hold the same
  kernels), and left out between two designs (a mobilenet_v2 and an
  efficientnet_b0 share under half of theirs). Names vouch for their
  own pairs only: in an alignment that thin, the pairs names anchored stay
  and the rest is left out (a mobilenet_v2 and an efficientnet_b0 share
  the stem's and the classifier's names).
* **Too few shapes to be a network** (:func:`few_shapes`): what aligned,
  though not thin, holds kernels of at most :data:`FEW_SHAPES` shapes,
  fewer than :data:`MIN_SHAPE_SHARE` of the kernel shapes the two sides
  share, and no name anchored any of it: the last stage of a resnet18
  (512-channel 3x3 convolutions and their BatchNorms, 19 tensors) in the
  last stage of a vgg11_bn, while the 128- and 256-channel convolutions
  both networks also hold pair with nothing. A network aligns the shapes
  it shares with the other throughout.

* **A block paired alone** (:func:`lone_items`): of two or more equal
  items of a list on each side, one alone holds pairs, and only some of
  its groups: a network aligned with its own design pairs every item it
  can (the last block of each ConvNeXt stage pairs its MLP with the MLP of
  the last block of each Swin stage, and nothing else of either).

And of two parts of one module left short, one that could hold what the
other received makes the other's pairs an alternative the alignment
wandered to (:func:`parts_left_unfilled`).

With the keys sorted by name, a norm of either side whose siblings, on
both sides, found no partner is no evidence either
(:func:`norms_among_unpaired`): it has no layer beside it to be placed by.

The same test, by keys, judges what ``auto`` picks in registration order
(:func:`thin_unnamed_pairs`): in a general mode's mapping that thin, the
pairs whose names do not agree are chance.

Example:
    >>> from torch_liberator.keygroups import KeyGroups
    >>> from torch_liberator.coincidence import unattached_pairs
    >>> src = KeyGroups({'block.conv1.w': (4, 8), 'block.bn1.w': (6,), 'block.conv2.w': (9, 6)})
    >>> dst = KeyGroups({'a.norm1.w': (3,), 'a.conv1.w': (5, 3), 'a.norm2.w': (6,),
    ...                  'a.conv2.w': (7, 6)})
    >>> unattached_pairs(src, dst, [(1, 2)])
    {(1, 2)}
"""
import os
from bisect import bisect_left
from collections import Counter
from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple

from torch_liberator.fusedruns import RUN_LENGTHS
from torch_liberator.keygroups import KeyGroups, Shape
from torch_liberator.modulefit import NESTING_FIT_MIN, SHAPES_FIT_KINDS
from torch_liberator.nameanchors import shared_length
from torch_liberator.shapes import is_kernel, squeeze_units

__all__ = ['FEW_SHAPES', 'MIN_SHAPE_SHARE', 'MIN_SHARE', 'MIN_SHARE_OF_LARGER', 'ONE_DESIGN_SHARE',
           'UNNAMED_CHILDREN', 'against_shared_names', 'away_from_their_fit', 'chance_pairs',
           'design_share',
           'few_shapes', 'inserted_parts', 'kinds_apart',
           'lone_items', 'names_agree', 'network_parts', 'norms_among_unpaired',
           'other_design_parts',
           'parts_left_unfilled', 'split_from_their_fit', 'split_items', 'thin_unnamed_pairs',
           'too_thin', 'unattached_pairs']

#: an alignment without name anchors holding less than this share of the
#: smaller side's tensors is a coincidence
MIN_SHARE = 0.1

#: ... and so is one holding less than this share of the larger side's
MIN_SHARE_OF_LARGER = 0.05

#: ... and one whose kernels come in at most :data:`FEW_SHAPES` shapes,
#: less than this share of the kernel shapes the two sides share
#: (:func:`few_shapes`)
MIN_SHAPE_SHARE = 0.5

#: two networks whose :func:`design_share` is at least this are of one
#: design (the same architecture in two libraries shares all its kernels,
#: a resnet18 and a vgg13_bn share 0.69 of theirs)
ONE_DESIGN_SHARE = 0.8

#: see :data:`MIN_SHAPE_SHARE`: more kernel shapes than this, in order, are
#: a network, however few of the shared ones (a densenet, whose every dense
#: layer has a width of its own, aligns ten of 35 under other names)
FEW_SHAPES = 3


def unattached_pairs(src: KeyGroups, dst: KeyGroups,
                     group_pairs: Iterable[Tuple[int, int]]) -> Set[Tuple[int, int]]:
    """
    The pairs ``(i, j)`` of vector-only groups (every tensor of at most one
    dimension besides size-1 ones) with no pair of neighbouring groups
    beside them: ``i - 1`` or ``i + 1`` paired with ``j - 1`` or ``j + 1``
    (a norm registered after its layer on one side and before it on the
    other, as Swin's patch merging in timm and in torchvision, still sits
    by it), nor a module that the groups just before (or just after) it on
    both sides are paired into (the final norm after a ViT's last block,
    registered after that block's norms on one side and its MLP on the
    other, beside a head that pairs with nothing: 10 classes against
    1000). Keys in registration order; see the module docstring.

    Args:
        src, dst: the two grouped sides.
        group_pairs: ``(source group, destination group)`` pairs, one to one.

    Returns:
        Set[Tuple[int, int]]: the pairs to leave out.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.coincidence import unattached_pairs
        >>> src = KeyGroups({'c1.w': (4, 8), 'n1.w': (4,), 'c2.w': (6, 4), 'n2.w': (4,)})
        >>> dst = KeyGroups({'a.conv.w': (4, 8), 'a.norm.w': (4,), 'b.conv.w': (9, 9),
        ...                  'b.norm.w': (4,)})
        >>> # n1 sits by its conv on both sides; n2's conv paired with nothing
        >>> sorted(unattached_pairs(src, dst, [(0, 0), (1, 1), (3, 3)]))
        [(3, 3)]
    """
    pairs = set(group_pairs)
    partner_src = dict(pairs)
    partner_dst = {j: i for i, j in pairs}
    out = set()
    for i, j in pairs:
        if src.vectors_only(i) and not any(
                (a, b) in pairs for a in (i - 1, i + 1) for b in (j - 1, j + 1)) and not any(
                _beside_one_module(src, dst, i, j, step, partner_src, partner_dst)
                for step in (-1, 1)):
            out.add((i, j))
    return out


def norms_among_unpaired(src: KeyGroups, dst: KeyGroups,
                         group_pairs: Iterable[Tuple[int, int]]) -> Set[Tuple[int, int]]:
    """
    The order-free sign of a norm without its layer: the pairs ``(i, j)``
    of vector-only groups each of whose parent modules (not the root)
    holds other groups, none of them paired, or one of whose parent
    modules holds two or more such groups (a root-level norm against one
    of the norms a backbone puts on each stage's output: torchvision's
    swin_t, keys sorted, put its final norm into the fourth of HF's
    ``hidden_states_norms``, the only one of its width). With the keys sorted by name
    there are no neighbours to read (:func:`unattached_pairs`), but a
    norm's layer is still its sibling: a torchvision ConvNeXt's classifier
    norm (beside its unpaired ``classifier.2``) is not the norm that a
    HuggingFace backbone puts on its last stage's output (beside the other
    stages' ``hidden_states_norms``), though the two are the only vectors
    of that width left on each side.

    Args:
        src, dst: the two grouped sides.
        group_pairs: ``(source group, destination group)`` pairs, one to one.

    Returns:
        Set[Tuple[int, int]]: the pairs to leave out.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.coincidence import norms_among_unpaired
        >>> src = KeyGroups({'body.conv.w': (4, 3), 'head.norm.w': (8,), 'head.fc.w': (9, 8)})
        >>> dst = KeyGroups({'body.conv.w': (4, 3), 'outs.a.w': (4,), 'outs.b.w': (8,)})
        >>> sorted(norms_among_unpaired(src, dst, [(0, 0), (1, 2)]))
        [(1, 2)]
        >>> # a root-level norm sits among every pair of its network
        >>> norms_among_unpaired(KeyGroups({'conv.w': (4, 3), 'norm.w': (8,)}), dst,
        ...                      [(0, 0), (1, 2)])
        set()
        >>> # unless its partner is one of three or more norms none other paired
        >>> outs = KeyGroups({'body.conv.w': (4, 3), 'outs.a.w': (4,), 'outs.b.w': (6,),
        ...                   'outs.c.w': (8,)})
        >>> norms_among_unpaired(KeyGroups({'conv.w': (4, 3), 'norm.w': (8,)}), outs,
        ...                      [(0, 0), (1, 3)])
        {(1, 3)}
    """
    pairs = list(group_pairs)
    out = set()
    if not pairs:
        return out
    counts = []
    for side, paired in ((src, {i for i, _ in pairs}), (dst, {j for _, j in pairs})):
        held, taken = Counter(), Counter()
        for g, comps in enumerate(side.comps):
            for depth in range(len(comps)):
                held[comps[:depth]] += 1
                taken[comps[:depth]] += g in paired
        counts.append((held, taken))

    def alone(side, g, held, taken, siblings=1):
        parent = side.comps[g][:-1]
        return bool(parent) and held[parent] > siblings and taken[parent] == 1

    for i, j in pairs:
        if not (src.vectors_only(i) and dst.vectors_only(j)):
            continue
        if ((alone(src, i, *counts[0]) and alone(dst, j, *counts[1]))
                or alone(src, i, *counts[0], siblings=2) or alone(dst, j, *counts[1], siblings=2)):
            out.add((i, j))
    return out


def _beside_one_module(src, dst, i, j, step, partner_src, partner_dst) -> bool:
    """Whether the groups just before (``step`` -1) or after (+1) ``i`` and
    ``j`` are paired into one module pair that holds neither norm: each
    lies, with the other's partner, in a module (not the root) that ``i``
    or ``j`` is outside of."""
    a, b = i + step, j + step
    if a not in partner_src or b not in partner_dst:
        return False
    for side, g, partner, norm in ((src, a, partner_dst[b], i), (dst, b, partner_src[a], j)):
        module = os.path.commonprefix([side.comps[g], side.comps[partner]])
        if not module or side.comps[norm][:len(module)] == module:
            return False
    return True


def chance_pairs(src: KeyGroups, dst: KeyGroups, tensor_pairs: Iterable[Tuple[int, int, int, int]],
                 anchored: Iterable[Tuple[int, int]] = (),
                 in_their_modules: Iterable[Tuple[int, int]] = ()) -> Set[Tuple[int, int]]:
    """
    The group pairs of an alignment (keys in registration order) that are
    chance: norms away from their layers (:func:`unattached_pairs`), parts
    of blocks of another design (:func:`inserted_parts`), blocks paired
    alone among their equals on both sides (:func:`lone_items`), then all
    that is left when it is too thin (:func:`too_thin`) or holds too few
    kernel shapes (:func:`few_shapes`) and no name anchored any of it.
    Pairs that names anchored are never chance, and
    neither is an alignment that pairs every group of a side (nothing
    else was there to pair).

    Args:
        src, dst: the two grouped sides.
        tensor_pairs: ``(source group, position, destination group,
            position)`` of every paired tensor.
        anchored: group pairs that name anchors made.
        in_their_modules: norm pairs that their modules placed (the
            modules correspond and hold as many norms of that shape): they
            need no layer beside them.

    Returns:
        Set[Tuple[int, int]]: the group pairs to leave out.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.coincidence import chance_pairs
        >>> src = KeyGroups({'stem.w': (8, 3, 7, 7), **{f'b{i}.w': (i + 9, 8) for i in range(30)}})
        >>> dst = KeyGroups({'conv0.w': (8, 3, 7, 7), **{f'l{i}.w': (i + 50, 8) for i in range(30)}})
        >>> chance_pairs(src, dst, [(0, 0, 0, 0)])
        {(0, 0)}
        >>> chance_pairs(src, dst, [(0, 0, 0, 0)], anchored=[(0, 0)])
        set()
    """
    tensor_pairs = list(tensor_pairs)
    anchored = set(anchored)
    group_pairs = {(i, j) for i, _, j, _ in tensor_pairs}
    if len(group_pairs) >= min(len(src), len(dst)):
        return set()
    chance = unattached_pairs(src, dst, group_pairs) - anchored - set(in_their_modules)
    for side, at in ((src, 0), (dst, 1)):
        partner = {pair[at]: pair[1 - at] for pair in group_pairs}
        inserted = inserted_parts(side, partner, dst if at == 0 else src)
        chance |= {pair for pair in group_pairs if pair[at] in inserted} - anchored
    lone_src = lone_items(src, {i for i, _ in group_pairs})
    lone_dst = lone_items(dst, {j for _, j in group_pairs})
    chance |= {(i, j) for i, j in group_pairs if i in lone_src and j in lone_dst} - anchored
    group_pairs -= chance
    held = [(i, a) for i, a, j, _ in tensor_pairs if (i, j) in group_pairs]
    thin = too_thin(len(held), sum(map(len, src.keys)), sum(map(len, dst.keys)))
    if not group_pairs & anchored and (thin or few_shapes(
            {src.squeezed[i][a] for i, a in held}, _kernel_shapes(src) & _kernel_shapes(dst))):
        chance |= group_pairs
    elif thin:
        # names vouch for their own pairs, not for the rest of so little
        chance |= group_pairs - anchored
    return chance


def inserted_parts(side: KeyGroups, partner: Mapping[int, int],
                   other: Optional[KeyGroups] = None) -> Set[int]:
    """
    The paired groups of ``side`` inside a module of another design than
    their partners': the module has, between two children that hold paired
    groups, a child of two or more groups none of which is paired (a
    squeeze-excitation of two convolutions), while the partners of its
    paired groups form one unbroken run of the other side (the other
    module has nothing there). Two implementations of one block have the
    same parts; a mobilenet_v2 block aligns with an efficientnet_b0 block
    but for the latter's squeeze-excitation. A single unpaired group (a
    BatchNorm that one network has after each convolution and the other
    not) is no other design: VGG11's convolutions go into VGG11-BN's. Nor
    is a part whose counterpart the other block holds elsewhere, unpaired
    too (given ``other``): HuggingFace's ViT registers a layer's attention
    first and its norms last, torchvision's its attention between its
    norms, and the attention's query, key and value have no place in the
    packed ``in_proj``.

    Args:
        side: one grouped side (keys in registration order).
        partner: its paired groups -> their groups on the other side.
        other: the other side, when known: when the lowest module around
            the partners has an unpaired child of two or more groups, the
            other block has a part too, registered elsewhere.

    Returns:
        Set[int]: the groups of ``side`` whose pairs to leave out.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.coincidence import inserted_parts
        >>> block = KeyGroups({'b.expand.w': (6, 2), 'b.dw.w': (6, 3, 3), 'b.se.fc1.w': (2, 6),
        ...                    'b.se.fc2.w': (6, 2), 'b.project.w': (3, 6)})
        >>> sorted(inserted_parts(block, {0: 0, 1: 1, 4: 2}))
        [0, 1, 4]
        >>> sorted(inserted_parts(block, {0: 0, 1: 1, 4: 5}))  # the other has a part there too
        []
    """
    # module path -> its children in order: (child path, [groups])
    children: Dict[Tuple[str, ...], Dict[Tuple[str, ...], List[int]]] = {}
    for g, comps in enumerate(side.comps):
        for depth in range(len(comps)):
            children.setdefault(comps[:depth], {}).setdefault(comps[:depth + 1], []).append(g)
    out = set()
    for parts in children.values():
        if len(parts) < 3:
            continue
        held = [any(g in partner for g in groups) for groups in parts.values()]
        if held.count(True) < 2:
            continue
        first, last = held.index(True), len(held) - 1 - held[::-1].index(True)
        sizes = [len(groups) for groups in parts.values()]
        if not any(not held[c] and sizes[c] >= 2 for c in range(first + 1, last)):
            continue
        mine = [g for groups in parts.values() for g in groups if g in partner]
        theirs = sorted(partner[g] for g in mine)
        if theirs[-1] - theirs[0] + 1 == len(theirs) and not (
                other is not None and _unpaired_part(other, theirs, set(partner.values()))):
            out.update(mine)
    return out


def _unpaired_part(side: KeyGroups, groups: List[int], paired: Set[int]) -> bool:
    """Whether the lowest module around ``groups`` has a child of two or
    more groups none of which is in ``paired``."""
    module = os.path.commonprefix([side.comps[g] for g in groups])
    depth = len(module)
    sizes, held = Counter(), set()
    for g, comps in enumerate(side.comps):
        if len(comps) > depth and comps[:depth] == module:
            sizes[comps[depth]] += 1
            if g in paired:
                held.add(comps[depth])
    return any(n >= 2 and child not in held for child, n in sizes.items())


def lone_items(side: KeyGroups, paired: Set[int]) -> Set[int]:
    """
    The paired groups of ``side`` in the one item, of two or more equal
    items of a list (same groups, names and shapes), that holds any pair,
    when that item is paired in part only: a network aligned with its own
    design pairs every item it can, and a block paired alone and in part
    among its equals is a coincidence of shapes (the last block of each
    ConvNeXt stage pairs its MLP with the MLP of the last block of each
    Swin stage; the depthwise convolution and the attention pair nothing,
    nor do the other blocks).

    Args:
        side: one grouped side.
        paired: its paired groups.

    Returns:
        Set[int]: the groups of such lone items.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.coincidence import lone_items
        >>> side = KeyGroups({f'blocks.{i}.{n}.w': (4, 4) if n != 'dw' else (4, 1, 7, 7)
        ...                   for i in range(3) for n in ('dw', 'fc')})
        >>> sorted(lone_items(side, {5}))  # blocks.2.fc alone, its dw unpaired
        [5]
        >>> sorted(lone_items(side, {1, 5}))  # two items: no lone one
        []
    """
    # list path -> item label -> the item's groups
    items: Dict[Tuple[str, ...], Dict[str, List[int]]] = {}
    for g, comps in enumerate(side.comps):
        for depth in range(1, len(comps)):
            if comps[depth].isdigit():
                items.setdefault(comps[:depth], {}).setdefault(comps[depth], []).append(g)
    out = set()
    for path, members in items.items():
        if len(members) < 2:
            continue
        held = [label for label, groups in members.items() if any(g in paired for g in groups)]
        if len(held) != 1 or all(g in paired for g in members[held[0]]):
            continue
        below = len(path) + 1

        def signature(groups):
            return tuple((side.comps[g][below:], side.shapes[g]) for g in groups)

        mine = signature(members[held[0]])
        if sum(1 for groups in members.values() if signature(groups) == mine) >= 2:
            out.update(g for g in members[held[0]] if g in paired)
    return out


def _kernel_shapes(side: KeyGroups) -> Set[Tuple[int, ...]]:
    return {shape for shapes in side.squeezed for shape in shapes if len(shape) >= 2}


def few_shapes(held_shapes: Iterable[Tuple[int, ...]], shared: Set[Tuple[int, ...]]) -> bool:
    """
    True when the kernels (tensors of two or more dimensions besides size-1
    ones) of an alignment come in at most :data:`FEW_SHAPES` shapes, fewer
    than :data:`MIN_SHAPE_SHARE` of the kernel shapes that the two sides
    share: a run of layers of one or two common shapes (the 512-channel 3x3 convolutions that end a resnet18 and
    a vgg11_bn), not a network, which aligns the shapes it shares with the
    other throughout. Vectors (norms, biases) take no part.

    Example:
        >>> from torch_liberator.coincidence import few_shapes
        >>> shared = {(128, 64, 3, 3), (256, 128, 3, 3), (256, 256, 3, 3),
        ...           (512, 256, 3, 3), (512, 512, 3, 3)}
        >>> few_shapes({(512, 256, 3, 3), (512, 512, 3, 3), (512,)}, shared)
        True
        >>> few_shapes(shared, shared | {(1000, 512)})
        False
    """
    used = {shape for shape in held_shapes if len(shape) >= 2}
    return len(used) <= FEW_SHAPES and len(used) < MIN_SHAPE_SHARE * len(shared)


def design_share(src_shapes: Iterable, dst_shapes: Iterable) -> float:
    """
    The share of kernels (tensors of two or more dimensions besides size-1
    ones) that two networks hold alike: the size of the common multiset of
    kernel shapes over the smaller side's count of kernels (1 when a side
    holds none: nothing tells the designs apart). A network and its port
    to another library, or a part of it, share all; two designs share some (a mobilenet_v2 and an
    efficientnet_b0, 0.23; a resnet18 and a vgg13_bn, 0.69). A kernel one
    side fuses (an attention's ``qkv``, ``[3C, C]``), of a shape the other
    side lacks, counts as the ``k`` kernels ``[C, C]`` it stacks
    (:data:`~torch_liberator.fusedruns.RUN_LENGTHS`) when the other side
    holds that many more of them, both Linears (a 1x1 convolution of
    ``3C`` outputs is no fused attention): HF's ViT keeps query, key and
    value apart, torchvision's packs them, and is no other design.

    Example:
        >>> from torch_liberator.coincidence import design_share
        >>> design_share([(8, 3, 3, 3), (8,), (4, 8)], [(8, 3, 3, 3), (4, 8), (4, 4)])
        1.0
        >>> design_share([(8, 3, 3, 3), (4, 8)], [(8, 3, 7, 7), (4, 8), (1, 4, 8)])
        0.5
        >>> design_share([(8,), (8,)], [(4, 8)])
        1.0
        >>> design_share([(24, 8), (8, 8)], [(8, 8)] * 4)
        1.0
    """
    kernels, linear = [], []
    for shapes in (src_shapes, dst_shapes):
        shapes = [tuple(shape) for shape in shapes if shape is not None]
        squeezed = (squeeze_units(shape) for shape in shapes)
        kernels.append(Counter(shape for shape in squeezed if len(shape) >= 2))
        linear.append(Counter(shape for shape in shapes if len(shape) == 2))
    # a Linear one side fuses (an attention's qkv of 3C outputs) holds the
    # kernels of the run of Linears the other keeps apart
    for a, b in ((0, 1), (1, 0)):
        mine, theirs = kernels[a], kernels[b]
        for shape, count in list(linear[a].items()):
            if shape in theirs or mine[shape] < count:
                continue
            for k in RUN_LENGTHS:
                part = (shape[0] // k, shape[1])
                if shape[0] % k == 0 and linear[b][part] >= k * count + mine[part]:
                    mine[shape] -= count
                    if not mine[shape]:
                        del mine[shape]
                    mine[part] += k * count
                    break
    smaller = min(sum(kernels[0].values()), sum(kernels[1].values()))
    return sum((kernels[0] & kernels[1]).values()) / smaller if smaller else 1.0


def network_parts(side: Iterable[str], size: int, sep: str = '.') -> Dict[str, List[str]]:
    """
    The children of the network whose keys are ``side``, below its
    wrappers (modules holding every key), that hold at least half of
    ``size`` keys: the networks a model or a checkpoint holds side by
    side. Prefix (ending in ``sep``) -> its keys.

    Example:
        >>> from torch_liberator.coincidence import network_parts
        >>> keys = ['m.a.conv.w', 'm.a.bn.w', 'm.b.conv.w', 'm.b.bn.w', 'm.fc.w']
        >>> network_parts(keys, 4)
        {'m.a.': ['m.a.conv.w', 'm.a.bn.w'], 'm.b.': ['m.b.conv.w', 'm.b.bn.w']}
    """
    prefix, keys = '', list(side)
    while True:
        children = {}
        for key in keys:
            head, found, _ = key[len(prefix):].partition(sep)
            if found:
                children.setdefault(prefix + head + sep, []).append(key)
        if len(children) == 1 and len(next(iter(children.values()))) == len(keys):
            prefix = next(iter(children))
            continue
        return {p: ks for p, ks in children.items() if 2 * len(ks) >= size}


def other_design_parts(one: Mapping[str, Shape], two: Mapping[str, Shape],
                       sep: str = '.') -> Tuple[str, ...]:
    """
    The prefixes of the network-sized parts of ``two``
    (:func:`network_parts`, sized by ``one``) of another design than
    ``one`` (:func:`design_share` under :data:`ONE_DESIGN_SHARE`), when
    ``one`` is one network and another part of ``two`` is of its design:
    ``two`` holds ``one``'s network, and whatever names or shapes the
    other parts share with it met by chance. Empty when there is no such
    part, or when ``one`` has fewer than
    :data:`~torch_liberator.modulefit.NESTING_FIT_MIN` keys of fewer than
    :data:`~torch_liberator.modulefit.SHAPES_FIT_KINDS` kernel shapes: a
    few keys of a few shapes tell no design (in a random tree of 22 keys,
    a part of the model taken for another design held the place of the
    checkpoint's linear, which went to an inserted one instead).
    ``one`` and ``two`` are ``{key: shape}``.

    Example:
        >>> from torch_liberator.coincidence import other_design_parts
        >>> net = {f'c{i}.w': (8 + i, 7 + i, 3, 3) for i in range(8)}  # eight kernel shapes
        >>> other = {f'c{i}.w': (8 + i, 7 + i, 1, 1) for i in range(8)}
        >>> two = {**{'a.' + k: v for k, v in other.items()},
        ...        **{'b.' + k: v for k, v in net.items()}}
        >>> other_design_parts(net, two)
        ('a.',)
        >>> other_design_parts(net, {'a.' + k: v for k, v in other.items()})
        ()
        >>> # a part without kernels is of no design
        >>> other_design_parts(net, {**{'a.' + k: v for k, v in other.items()},
        ...                          **{f'b.n{i}': (8,) for i in range(8)}})
        ()
        >>> # nor is a network of a few keys of a few kernel shapes
        >>> few = {'conv.w': (8, 3, 3, 3), 'mid.w': (8, 8, 3, 3), 'fc.w': (10, 8)}
        >>> other_design_parts(few, {'a.conv.w': (8, 3, 3, 3), 'a.mid.w': (16, 8, 1, 1),
        ...                          'a.fc.w': (10, 16), **{'b.' + k: v for k, v in few.items()}})
        ()
    """
    if len(one) < NESTING_FIT_MIN and len({squeeze_units(shape) for shape in one.values()
                                          if is_kernel(shape)}) < SHAPES_FIT_KINDS:
        return ()  # a few keys of a few kernel shapes: no design to tell
    parts = network_parts(two, len(one), sep)
    if len(parts) < 2 or len(network_parts(one, min(map(len, parts.values())), sep)) >= 2:
        return ()
    # (a part without kernels tells no design: neither the checkpoint's nor another)
    shares = {prefix: design_share(one.values(), (two[k] for k in keys))
              for prefix, keys in parts.items() if any(is_kernel(two[k]) for k in keys)}
    if not any(map(is_kernel, one.values())) or max(shares.values(), default=0) < ONE_DESIGN_SHARE:
        return ()
    return tuple(prefix for prefix, share in shares.items() if share < ONE_DESIGN_SHARE)


def too_thin(held: int, n_src: int, n_dst: int) -> bool:
    """
    True when ``held`` paired tensors are less than :data:`MIN_SHARE` of the
    smaller side's ``min(n_src, n_dst)`` tensors or less than
    :data:`MIN_SHARE_OF_LARGER` of the larger side's (see the module
    docstring; the caller spares what names anchored).

    Example:
        >>> from torch_liberator.coincidence import too_thin
        >>> too_thin(6, 320, 727)    # a stem's conv and BatchNorm
        True
        >>> too_thin(4, 122, 22)     # four convolutions of a resnet18 in a vgg11
        True
        >>> too_thin(55, 267, 320)   # Caffe's names: the convolutions of a resnet50
        False
    """
    return held < MIN_SHARE * min(n_src, n_dst) or held < MIN_SHARE_OF_LARGER * max(n_src, n_dst)


def names_agree(src_key: str, dst_key: str, sep: str = '.') -> bool:
    """
    True when the two keys are identical, or end in the same tensor name
    under two or more equal module names, one of them a word (not a list
    position).

    Example:
        >>> from torch_liberator.coincidence import names_agree
        >>> names_agree('layer1.0.conv1.weight', 'backbone.body.layer1.0.conv1.weight')
        True
        >>> names_agree('features.transition1.conv.weight', 'inception3b.branch1.conv.weight')
        False
        >>> names_agree('features.0.1.weight', 'layers.0.1.weight')
        False
    """
    if src_key == dst_key:
        return True
    a, b = src_key.split(sep), dst_key.split(sep)
    if a[-1] != b[-1]:
        return False
    agreeing, word = 0, False
    for x, y in zip(reversed(a[:-1]), reversed(b[:-1])):
        if x != y:
            break
        agreeing += 1
        word = word or not x.isdigit()
    return agreeing >= 2 and word


def against_shared_names(mapping: Mapping[str, str], src_shapes: Mapping, dst_shapes: Mapping,
                         sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` placed by position alone (their names
    do not agree, :func:`names_agree`), when the keys the two sides share
    speak against one design: more of the shared kernels (tensors of two
    or more dimensions besides size-1 ones) differ in shape, with a shape
    the other side holds nowhere, than agree and than are placed by
    position, together. A vgg11 and an AlexNet share ``features.{0,3,6,8}``
    in shapes of their own and ``classifier.6`` alone in one: the middle
    layers of their classifiers, ``[4096, 4096]`` at ``classifier.3`` and
    ``classifier.4``, meet by chance. A renamed network placed by position
    outnumbers the few names it shares with the model by chance (a head of
    another size). A list renumbered (a vgg16 into a vgg16_bn, whose
    BatchNorms shift the convolutions) gives its shared names shapes that
    the other side holds elsewhere, and speaks for neither.

    Example:
        >>> from torch_liberator.coincidence import against_shared_names
        >>> src = {'f.0.w': (8, 3, 3, 3), 'f.3.w': (9, 8, 3, 3), 'f.6.w': (7, 9, 3, 3),
        ...        'c.3.w': (6, 6), 'c.6.w': (2, 6)}
        >>> dst = {'f.0.w': (8, 3, 7, 7), 'f.3.w': (9, 8, 5, 5), 'f.6.w': (5, 9, 3, 3),
        ...        'c.4.w': (6, 6), 'c.6.w': (2, 6)}
        >>> mapping = {'c.3.w': 'c.4.w', 'c.6.w': 'c.6.w'}
        >>> sorted(against_shared_names(mapping, src, dst))
        ['c.3.w']
        >>> dst['f.3.w'] = (9, 8, 3, 3)  # two of the four shared kernels agree
        >>> against_shared_names(mapping, src, dst)
        set()
    """
    agree, differ = 0, []
    for key, shape in src_shapes.items():
        other = dst_shapes.get(key)
        if shape is None or other is None:
            continue
        mine = squeeze_units(shape)
        theirs = mine if other == shape else squeeze_units(other)
        if len(mine) < 2 and len(theirs) < 2:
            continue
        if mine == theirs:
            agree += 1
        else:
            differ.append((mine, theirs))
    if len(differ) <= agree:
        return set()
    present = [{squeeze_units(shape) for shape in side.values() if shape is not None}
               for side in (src_shapes, dst_shapes)]
    # (both shapes elsewhere on the other side: a list renumbered)
    against = sum(1 for mine, theirs in differ
                  if mine not in present[1] or theirs not in present[0])
    if against <= agree:
        return set()
    unnamed = {s for s, d in mapping.items() if s != d and not names_agree(s, d, sep)}
    placed = sum(1 for s in unnamed if is_kernel(src_shapes.get(s)))
    return unnamed if against > agree + placed else set()


def thin_unnamed_pairs(mapping: Mapping[str, str], n_src: int, n_dst: int,
                       sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` whose names do not agree
    (:func:`names_agree`), when the mapping is thin as in :func:`too_thin`
    (counted in keys); none otherwise. Names vouch for their own pairs, not
    for the rest of so little: a mobilenet_v2 and an mnasnet share a
    ``classifier.1`` and, by shapes alone, one inverted residual block.

    Example:
        >>> from torch_liberator.coincidence import thin_unnamed_pairs
        >>> thin_unnamed_pairs({'features.0.0.weight': 'layers.0.weight'}, 244, 263)
        {'features.0.0.weight'}
        >>> sorted(thin_unnamed_pairs({'fc.weight': 'fc.weight', 'a.0.weight': 'b.3.weight'}, 244, 263))
        ['a.0.weight']
    """
    if not mapping or not too_thin(len(mapping), n_src, n_dst):
        return set()
    return {s for s, d in mapping.items() if not names_agree(s, d, sep)}


#: the most children without a namesake compared on each side (beyond, a
#: flat listing of many modules says nothing of one module's kind)
UNNAMED_CHILDREN = 8


def kinds_apart(mapping: Mapping[str, str], src_shapes: Mapping, dst_shapes: Mapping,
                sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` that pass, on the way up their shared
    names (below the top), through two modules of different kinds: each
    holds children the other has no namesake of, tensors at least, and
    none of those has the shapes of one of the other's (a poolformer block's
    ``norm1``, ``norm2`` and layer scales against a tiny_vit block's
    ``attn`` and ``local_conv``), so the name they share below (``mlp.fc1``,
    of one shape) is chance. For thin mappings, whose few names vouch for
    little (:func:`too_thin`; mutation fuzz seed 1304 of ``--wide``, keys
    sorted).

    Example:
        >>> from torch_liberator.coincidence import kinds_apart
        >>> src = {'blk.mlp.fc1.weight': (8, 4), 'blk.norm1.weight': (4,), 'blk.scale.weight': (4,)}
        >>> dst = {'net.blk.mlp.fc1.weight': (8, 4), 'net.blk.attn.qkv.weight': (12, 4)}
        >>> sorted(kinds_apart({'blk.mlp.fc1.weight': 'net.blk.mlp.fc1.weight'}, src, dst))
        ['blk.mlp.fc1.weight']
        >>> dst['net.blk.norm.weight'] = (4,)  # a renamed norm: the same kind
        >>> kinds_apart({'blk.mlp.fc1.weight': 'net.blk.mlp.fc1.weight'}, src, dst)
        set()
    """
    contents = ({}, {})
    ordered = (sorted(src_shapes), sorted(dst_shapes))
    verdicts, out = {}, set()
    for s, d in mapping.items():
        a, b = s.split(sep)[:-1], d.split(sep)[:-1]
        for up in range(1, shared_length(a, b)):
            x, y = sep.join(a[:len(a) - up]), sep.join(b[:len(b) - up])
            verdict = verdicts.get((x, y))
            if verdict is None:
                for side, path, shapes in ((0, x, src_shapes), (1, y, dst_shapes)):
                    if path not in contents[side]:
                        contents[side][path] = _children_shapes(shapes, ordered[side], path, sep)
                verdict = verdicts[x, y] = _two_kinds(contents[0][x], contents[1][y])
            if verdict:
                out.add(s)
                break
    return out


def _children_shapes(shapes, keys, path, sep):
    """``(child label -> the shapes below it, all the shapes below the
    module)`` of the module ``path``, as many of each (unit dimensions and
    scalars left out); lists (children all numbered) are left out of the
    children: the parts of a list cut in parts are no kind of module.
    ``keys``: the keys of ``shapes``, sorted."""
    start, out, lists, whole = path + sep, {}, {}, Counter()
    for key in keys[bisect_left(keys, start):]:
        if not key.startswith(start):
            break
        shape = shapes[key]
        label, _, rest = key[len(start):].partition(sep)
        held = out.setdefault(label, Counter())
        squeezed = None if shape is None else squeeze_units(shape)
        if squeezed != ():  # (a BatchNorm's counter is not in every library's)
            held[squeezed] += 1
            whole[squeezed] += 1
        lists[label] = lists.get(label, True) and rest.partition(sep)[0].isdigit()
    return {label: held for label, held in out.items() if not lists[label]}, whole


def _two_kinds(mine, theirs):
    """Whether two modules (:func:`_children_shapes`) are two kinds of
    module (see :func:`kinds_apart`); the same tensors organized otherwise
    (detectron2's ``conv1.norm`` for torchvision's ``bn1``) are one."""
    (mine, whole1), (theirs, whole2) = mine, theirs
    if whole1 == whole2:
        return False
    lone1 = [c for c in mine if c not in theirs]
    lone2 = [c for c in theirs if c not in mine]
    if not lone1 or not lone2 or max(len(lone1), len(lone2)) > UNNAMED_CHILDREN:
        return False
    return all(mine[c] != theirs[e] for c in lone1 for e in lone2)


def _items_of(keys, sep):
    """Each key -> its item: the outermost module at a list position (a
    numbered child) that holds two or more modules' tensors (a stage, or a
    block of a flat list; not the parts of a block); None when no such
    module holds it."""
    modules = {}  # module path -> the modules of tensors below it
    for key in keys:
        parts = key.split(sep)
        module = sep.join(parts[:-1])
        for depth in range(1, len(parts) - 1):
            if parts[depth].isdigit():
                modules.setdefault(sep.join(parts[:depth + 1]), set()).add(module)
    out = {}
    for key in keys:
        parts = key.split(sep)
        out[key] = None
        for depth in range(1, len(parts) - 1):
            path = sep.join(parts[:depth + 1])
            if parts[depth].isdigit() and len(modules[path]) >= 2:
                out[key] = path
                break
    return out


def split_items(mapping: Mapping[str, str], src_keys: Iterable[str], dst_shapes: Mapping,
                sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` in the smaller part of a source item (a
    block at a list position) split between two items of one list of the
    model, when the item that smaller part went to is filled in part only
    and the item the larger part went to has empty places of the smaller
    part's shapes: a block goes to one block (a ViT's ``blocks.10``, whose
    MLP the model holds a level deeper, gave that MLP to the model's
    ``blocks.11``, which the checkpoint has no block for). A block the
    other side cuts in two whole items (attention and MLP as two children)
    fills both; a stage against the other side's blocks (HF's ``stages.0``
    and torchvision's ``layer1.0``, ``layer1.1``) fills each block it can.

    Args:
        mapping: source key -> destination key.
        src_keys: every source key.
        dst_shapes: every destination key -> its shape (unknown shapes
            decide nothing).
        sep: separator between path components.

    Returns:
        Set[str]: the source keys to leave out.

    Example:
        >>> from torch_liberator.coincidence import split_items
        >>> src = [f'blocks.{i}.{m}.w' for i in range(2) for m in ('attn', 'norm', 'mlp')]
        >>> dst = {k: (4, 4) for k in src + ['blocks.2.attn.w', 'blocks.2.norm.w', 'blocks.2.mlp.w']}
        >>> mapping = {k: k for k in src}
        >>> mapping['blocks.1.mlp.w'] = 'blocks.2.mlp.w'
        >>> sorted(split_items(mapping, src, dst))
        ['blocks.1.mlp.w']
    """
    if len(mapping) >= len(dst_shapes):
        return set()  # (one-to-one and every place filled: no item has an empty place)
    src_item = _items_of(src_keys, sep)
    dst_item = _items_of(dst_shapes, sep)
    size = Counter(dst_item.values())
    filled = Counter(dst_item[d] for d in mapping.values())
    taken = set(mapping.values())
    empty = {}  # destination item -> the shapes of its keys left empty
    for d, item in dst_item.items():
        if item is not None and d not in taken:
            empty.setdefault(item, Counter())[_shape_of(dst_shapes[d])] += 1
    went = {}  # source item -> destination item -> its source keys
    for s, d in mapping.items():
        if src_item.get(s) is not None and dst_item.get(d) is not None:
            went.setdefault(src_item[s], {}).setdefault(dst_item[d], []).append(s)
    out = set()
    for targets in went.values():
        if len(targets) < 2:
            continue
        ranked = sorted(targets, key=lambda item: -len(targets[item]))
        main, lists = ranked[0], {item.rpartition(sep)[0] for item in ranked}
        if len(lists) != 1 or len(targets[main]) == len(targets[ranked[1]]):
            continue  # items of several lists, or no larger part
        room = empty.get(main, Counter())
        for item in ranked[1:]:
            shapes = Counter(_shape_of(dst_shapes[mapping[s]]) for s in targets[item])
            if (filled[item] < size[item] and None not in shapes
                    and all(room[shape] >= n for shape, n in shapes.items())):
                out.update(targets[item])
    return out


def split_from_their_fit(mapping: Mapping[str, str], src: Mapping, dst: Mapping,
                         sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` that a source list item (a module at a
    list position, at any depth) sends outside the one model item, of those
    it fills, that holds exactly its shapes: a block goes to one block.
    HF's ResNet registers a block's shortcut first, torchvision's last; a
    resnet18 checkpoint under HF's names into torchvision's resnet34 lined
    up HF's last stage against torchvision's longer one so that block 0's
    shortcut and first convolution went to block 0, and its second
    convolution to block 1 (block 1 then to block 2, a guess the list's
    free twin shows: :func:`~torch_liberator.listpositions.free_twin_items`).
    When several items it fills hold its shapes, it keeps only a part
    larger than every other (a block split between two alike blocks).

    Args:
        mapping: source key -> destination key.
        src, dst: ``{key: shape}`` of each side (unknown shapes, None,
            decide nothing).

    Returns:
        Set[str]: the source keys to leave out.

    Example:
        >>> from torch_liberator.coincidence import split_from_their_fit
        >>> src = {'b.0.short.w': (4, 2), 'b.0.c1.w': (4, 2, 3), 'b.0.c2.w': (4, 4, 3)}
        >>> dst = {'l.0.c1.w': (4, 2, 3), 'l.0.c2.w': (4, 4, 3), 'l.0.ds.w': (4, 2),
        ...        'l.1.c1.w': (4, 4, 3), 'l.1.c2.w': (4, 4, 3)}
        >>> mapping = {'b.0.short.w': 'l.0.ds.w', 'b.0.c1.w': 'l.0.c1.w', 'b.0.c2.w': 'l.1.c2.w'}
        >>> sorted(split_from_their_fit(mapping, src, dst))
        ['b.0.c2.w']
    """
    if None in src.values() or None in dst.values() or not _sent_apart(mapping, sep):
        return set()
    dst_item = _items_of(dst, sep)
    went = {}  # source list item (any depth) -> model item -> its source keys
    for s, d in mapping.items():
        target = dst_item.get(d)
        if target is not None:
            for item in _list_items(s, sep):
                went.setdefault(item, {}).setdefault(target, []).append(s)
    went = {item: targets for item, targets in went.items() if len(targets) > 1}
    if not went:
        return set()
    mine = {item: Counter() for item in went}  # source item -> its shapes
    for key, shape in src.items():
        for item in _list_items(key, sep):
            if item in mine:
                mine[item][squeeze_units(shape)] += 1
    targets_of = {t for targets in went.values() for t in targets}
    held = {t: Counter() for t in targets_of}  # model item -> its shapes
    for key, item in dst_item.items():
        if item in held:
            held[item][squeeze_units(dst[key])] += 1
    out = set()
    for item, targets in went.items():
        fits = sorted((t for t in targets if held[t] == mine[item]),
                      key=lambda t: -len(targets[t]))
        if not fits:
            continue
        larger = len(fits) == 1 or len(targets[fits[0]]) > len(targets[fits[1]])
        keep = fits[0] if larger else None
        out.update(s for t, keys in targets.items() if t != keep for s in keys)
    return out


def away_from_their_fit(mapping: Mapping[str, str], src: Mapping, dst: Mapping,
                        sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` that a source item (the outermost module
    at a list position below the root, holding two or more modules) sends,
    all of them, into one model item of other shapes (the model module as
    far above the keys as the item is, at a list position), while the one
    model item that holds exactly its shapes receives nothing: a block
    goes to its like, not to a namesake of another design. Scalars (a
    BatchNorm's count of batches) say nothing. A resnet50 checkpoint, its keys sorted,
    into a model that cut ``layer3`` in two, the first three blocks under a
    new name registered first and the last three kept as ``layer3.0-2``:
    the name modes filled the model's ``layer3.0`` (one of five alike
    blocks) from the checkpoint's ``layer3.0`` (the block with the
    shortcut), all but its first convolution, while the model's
    ``layer3_first.0`` holds exactly its shapes (17 wrong). Where two or
    more model items hold its shapes, the names may choose.

    Args:
        mapping: source key -> destination key.
        src, dst: ``{key: shape}`` of each side (unknown shapes decide
            nothing).
        sep: separator between path components.

    Returns:
        Set[str]: the source keys to leave out.

    Example:
        >>> from torch_liberator.coincidence import away_from_their_fit
        >>> src = {'l.0.a.w': (4, 2), 'l.0.b.w': (4, 4), 'l.0.ds.w': (4, 2)}
        >>> dst = {'first.0.a.w': (4, 2), 'first.0.b.w': (4, 4), 'first.0.ds.w': (4, 2),
        ...        'l.0.a.w': (4, 4), 'l.0.b.w': (4, 4)}
        >>> sorted(away_from_their_fit({'l.0.b.w': 'l.0.b.w'}, src, dst))
        ['l.0.b.w']
        >>> # its like filled already: the names' pair stands
        >>> away_from_their_fit({'l.0.b.w': 'l.0.b.w', 'l.0.a.w': 'first.0.a.w'}, src, dst)
        set()
    """
    if not mapping or None in src.values() or None in dst.values():
        return set()
    outer = {s: _outer_item(s, sep) for s in mapping}
    went = {}  # source item -> the model modules its keys go to, at its depth
    for s, d in mapping.items():
        item, below = outer[s]
        if item is not None:
            comps = d.split(sep)
            went.setdefault(item, set()).add(
                sep.join(comps[:-below]) if below < len(comps) else None)
    went = {item: targets.pop() for item, targets in went.items()
            if len(targets) == 1 and None not in targets}
    went = {item: target for item, target in went.items()
            if target.rpartition(sep)[2].isdigit()}  # (a list item of the model)
    # an item that went whole to one of its shapes has every key paired, at
    # equal shapes, and fills its target: only the others are read further
    suspect = {_outer_item(s, sep)[0] for s in src if s not in mapping and src[s] != ()}
    suspect.update(outer[s][0] for s, d in mapping.items()
                   if squeeze_units(src[s]) != squeeze_units(dst[d]))
    into = {}  # model item -> the source items sent to it
    for item, target in went.items():
        into.setdefault(target, []).append(item)
    taken = set(mapping.values())
    for d in dst:
        if d not in taken and dst[d] != ():
            comps = d.split(sep)
            for n in range(len(comps) - 1):
                suspect.update(into.get(sep.join(comps[:n + 1]), ()))
    went = {item: target for item, target in went.items() if item in suspect}
    if not went:
        return set()
    mine, modules = {}, {}  # source item -> the shapes below it, its modules
    for key, shape in src.items():
        item = _outer_item(key, sep)[0]
        if item in went and shape != ():
            mine.setdefault(item, Counter())[squeeze_units(shape)] += 1
            modules.setdefault(item, set()).add(key.rpartition(sep)[0])
    mine = {item: frozenset(shapes.items()) for item, shapes in mine.items()
            if len(modules[item]) > 1}
    held = _shapes_below_items(dst, sep)
    like = {}  # shapes -> the model items holding exactly them
    for item, shapes in held.items():
        like.setdefault(shapes, []).append(item)
    filled = {sep.join(comps[:n + 1]) for comps in (d.split(sep) for d in taken)
              for n in range(len(comps) - 1) if comps[n].isdigit()}
    away = {item for item, target in went.items()
            if item in mine and held.get(target) != mine[item]
            and len(like.get(mine[item], ())) == 1 and like[mine[item]][0] not in filled}
    return {s for s in mapping if outer[s][0] in away}


def _outer_item(key: str, sep: str) -> Tuple[Optional[str], int]:
    """The outermost module at a list position below the root above
    ``key`` and how many components of the key lie below it; ``(None, 0)``
    where there is none."""
    comps = key.split(sep)
    for n in range(1, len(comps) - 1):
        if comps[n].isdigit():
            return sep.join(comps[:n + 1]), len(comps) - n - 1
    return None, 0


def _shapes_below_items(shapes: Mapping, sep: str) -> Dict[str, frozenset]:
    """``{module at a list position (any depth): the shapes of the tensors
    below it, size-1 dimensions aside, as a multiset}``; scalars (a
    BatchNorm's count of batches, which a frozen one lacks) say nothing."""
    out = {}
    for key, shape in shapes.items():
        if shape == ():
            continue
        comps = key.split(sep)
        for n in range(len(comps) - 1):
            if comps[n].isdigit():
                out.setdefault(sep.join(comps[:n + 1]), Counter())[squeeze_units(shape)] += 1
    return {item: frozenset(held.items()) for item, held in out.items()}


def _sent_apart(mapping: Mapping[str, str], sep: str) -> bool:
    """Whether some source list item sends keys below two different
    outermost list items of the model (a model item, read as
    :func:`_items_of` reads it, lies at or below one of those)."""
    seen = {}  # source list item -> the model's outermost list item it sends to
    for s, d in mapping.items():
        comps = d.split(sep)
        n = next((n for n, c in enumerate(comps[:-1]) if c.isdigit()), None)
        if n is None:
            continue
        target = sep.join(comps[:n + 1])
        if any(seen.setdefault(item, target) != target for item in _list_items(s, sep)):
            return True
    return False


def _list_items(key, sep):
    """The module paths at a list position (a numbered component) above
    ``key``, outermost first."""
    comps = key.split(sep)
    return [sep.join(comps[:n + 1]) for n in range(len(comps) - 1) if comps[n].isdigit()]


def _shape_of(shape):
    return None if shape is None else tuple(shape)


def parts_left_unfilled(side: KeyGroups, paired: Set[int],
                        other: Optional[KeyGroups] = None) -> Set[int]:
    """
    The paired groups that lie in parts left unfilled, when two or more
    are: below the deepest module holding every paired group of ``side``,
    each child receiving pairs is a part, and a part is unfilled when some
    of its groups are unpaired. A network spread over parts fills each
    (a backbone cut into low, mid and high) or leaves only its last one
    short (a truncated checkpoint), and stages of one network hold other
    widths; of two parts left short, one that could hold all that the
    other received makes the other's pairs an alternative the alignment
    wandered to (a checkpoint of a two-layer network, named otherwise,
    whose first layer went into a one-layer network beside the right one:
    each could hold what the other got, and nothing in either is known).
    When what the other received is norms only (vectors of one width are
    everywhere), the part that could hold them is not in doubt for that: a
    Swin's encoder, short of the query, key and value that torchvision
    packs in one ``qkv``, beside HuggingFace's stage norms, one of which
    took torchvision's final norm (the encoder's 109 tensors were all
    left out with it). A kernel is evidence both ways: an hrnet's
    transition that a stage could hold leaves that stage in doubt, and
    it held an incre module's block (mutation fuzz seed 5848). An open
    group that no group of ``other`` (the other side, when given) could
    fill leaves its part no shorter: torchvision's
    MaxViT has no bias in its stem convolution and classifier and a
    shortcut timm's lacks, so its stem, blocks and head were all short,
    and the head's norm and projection fit a block's.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.coincidence import parts_left_unfilled
        >>> side = KeyGroups({'a.0.w': (4, 3), 'a.1.w': (5, 4), 'b.0.w': (4, 3), 'b.1.w': (5, 4)})
        >>> # the first layer of each copy: two alternatives, nothing known
        >>> sorted(parts_left_unfilled(side, {0, 2}))
        [0, 2]
        >>> parts_left_unfilled(side, {0, 1})
        set()
        >>> # the open layers have a shape the other side never has
        >>> parts_left_unfilled(side, {0, 2}, KeyGroups({'x.w': (4, 3), 'y.w': (4, 3)}))
        set()
    """
    if not paired:
        return set()
    first = side.comps[min(paired)]
    depth = min(len(side.comps[g]) for g in paired)
    for g in paired:
        comps = side.comps[g]
        k = 0
        while k < depth and k < len(comps) and comps[k] == first[k]:
            k += 1
        depth = k
    prefix = first[:depth]

    def part(g):
        comps = side.comps[g]
        return comps[depth] if len(comps) > depth and comps[:depth] == prefix else None

    # an open group no group of the other side could fill (a convolution
    # with a bias against one without) leaves its part no shorter
    fillable = (None if other is None else
                {(other.squeezed[g], other.leaf[g]) for g in range(len(other))})
    unfilled = {part(g) for g in range(len(side))
                if g not in paired and part(g) is not None and (
                    fillable is None or (side.squeezed[g], side.leaf[g]) in fillable)}
    receiving = {part(g) for g in paired} - {None}
    short = sorted(receiving & unfilled)
    if len(short) < 2:
        return set()
    held, got = {}, {}
    for g in range(len(side)):
        name = part(g)
        if name in unfilled:
            signature = (side.squeezed[g], side.leaf[g])
            held.setdefault(name, Counter())[signature] += 1
            if g in paired:
                got.setdefault(name, Counter())[signature] += 1
    # two parts are alternatives when what one received the other could
    # hold as well (two networks of one family; not two stages of one)
    # (what is only norms, of widths found everywhere, says nothing of the
    # part that could hold it: its own pairs alone are in doubt)
    wandered = set()
    for a in short:
        for b in short:
            if a != b and not got[a] - held[b]:
                wandered.add(a)
                if any(is_kernel(shape) for signature, _ in got[a] for shape in signature):
                    wandered.add(b)
    return {g for g in paired if part(g) in wandered}
