"""
Layers one library fuses and another keeps apart: an attention's query, key
and value as one ``qkv`` Linear of ``3C`` outputs (timm, torchvision's
Swin, ``nn.MultiheadAttention``'s ``in_proj_weight``) or as three Linears
of ``C`` (HuggingFace's ``query``, ``key`` and ``value``).

Pure: two :class:`~torch_liberator.keygroups.KeyGroups` in, the groups on
each side that are such counterparts out. The structure solver sets them
aside before it aligns (:class:`~torch_liberator.groupalign.GroupAligner`):
neither is any one tensor of the other, and left in the alignment the three
Linears of one shape tie with the attention's output Linear, of that shape
too, so that the output projection, which has its place, was left out as
ambiguous (HF's Swin into torchvision's: 24 of 149 tensors). With the keys
sorted, the signatures that pair modules leave them out
(:mod:`torch_liberator.unordered`), and
:func:`~torch_liberator.coincidence.design_share` counts a fused kernel as
the kernels it stacks.

The evidence must be unmistakable, or nothing is set aside:

* a *run* is the two or three groups that are the only groups directly
  below one module, not the root (``attention.self.{query,key,value}``; with the keys
  sorted, the module's own position table may sort between them),
  leaves, each a weight of one shape, of rank 2 or more, with or without a
  bias (HF's Swin V2 gives its key none), in either order (keys sorted
  list the bias first);
* its *fused* counterpart is a group on the other side whose shapes are
  the run's stacked along the first dimension: the weight, and a bias when
  one Linear of the run has one;
* on the whole of both sides, the fused groups of those shapes are as many
  as the runs, the run's side holds no group of the fused shapes, and the
  fused side no run of those shapes.

Example:
    >>> from torch_liberator.keygroups import KeyGroups
    >>> from torch_liberator.fusedruns import fused_counterparts
    >>> lin = lambda p, n: {p + '.weight': (n, 8), p + '.bias': (n,)}
    >>> hf = KeyGroups({**lin('attn.self.query', 8), **lin('attn.self.key', 8),
    ...                 **lin('attn.self.value', 8), **lin('attn.output.dense', 8)})
    >>> tv = KeyGroups({**lin('attn.qkv', 24), **lin('attn.proj', 8)})
    >>> fused_counterparts(hf, tv)
    ({0, 1, 2}, {0})
"""
from collections import Counter
from typing import Set, Tuple

from torch_liberator.keygroups import KeyGroups

__all__ = ['RUN_LENGTHS', 'fused_counterparts']

#: how many Linears one fused layer may stand for (key and value; query,
#: key and value)
RUN_LENGTHS = (2, 3)


def _member(side: KeyGroups, g: int):
    """The weight's shape of a group that may be one Linear of a run (a
    leaf of one weight of rank 2 or more and at most one bias of its
    outputs, in either order), else None. Anything else beside the weight
    (a scalar, one element once size-1 dimensions are set aside) makes it
    no Linear."""
    shapes = side.squeezed[g]
    if not side.leaf[g] or not shapes or len(shapes) > 2:
        return None
    weights = [shape for shape in shapes if len(shape) >= 2]
    if len(weights) != 1 or any(shape != weights[0][:1]
                                for shape in shapes if shape is not weights[0]):
        return None
    return weights[0]


def _runs(side: KeyGroups):
    """``{stacked shapes: [run, ...]}``: the runs of ``side`` (see the
    module docstring), each a tuple of group indices."""
    below = {}
    for g, comps in enumerate(side.comps):
        if len(comps) > 1:  # (the root's own Linears are no attention's)
            below.setdefault(comps[:-1], []).append(g)
    out = {}
    for run in below.values():
        weights = {_member(side, g) for g in run}
        if len(run) not in RUN_LENGTHS or len(weights) != 1 or None in weights:
            continue
        # the shapes of a Linear with a bias where one has one, in its order
        widest = max(run, key=lambda g: len(side.squeezed[g]))
        stacked = tuple((len(run) * shape[0], *shape[1:]) for shape in side.squeezed[widest])
        out.setdefault(stacked, []).append(tuple(run))
    return out


def _one_way(runs_side: KeyGroups, fused_side: KeyGroups):
    runs = _runs(runs_side)
    if not runs:
        return set(), set()
    fused = {}
    for g in range(len(fused_side)):
        if fused_side.squeezed[g] in runs:
            fused.setdefault(fused_side.squeezed[g], []).append(g)
    plain = Counter(runs_side.squeezed)
    back = _runs(fused_side)
    run_groups, fused_groups = set(), set()
    for stacked, found in runs.items():
        groups = fused.get(stacked, ())
        if len(groups) == len(found) and not plain[stacked] and stacked not in back:
            run_groups.update(g for run in found for g in run)
            fused_groups.update(groups)
    return run_groups, fused_groups


def fused_counterparts(src: KeyGroups, dst: KeyGroups) -> Tuple[Set[int], Set[int]]:
    """
    The groups of each side that are one fused layer on one side and a run
    of Linears on the other (see the module docstring), either way round.

    Args:
        src (KeyGroups): the source (checkpoint) side.
        dst (KeyGroups): the destination (model) side.

    Returns:
        Tuple[Set[int], Set[int]]: source groups, destination groups.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.fusedruns import fused_counterparts
        >>> lin = lambda p, n: {p + '.weight': (n, 8), p + '.bias': (n,)}
        >>> tv = KeyGroups({**lin('attn.qkv', 24), **lin('attn.proj', 8)})
        >>> hf = KeyGroups({**lin('self.q', 8), **lin('self.k', 8),
        ...                 **lin('self.v', 8), **lin('out', 8)})
        >>> fused_counterparts(tv, hf)
        ({0}, {0, 1, 2})
        >>> # a second fused layer of those shapes and one run: not told apart
        >>> two = KeyGroups({**lin('a.qkv', 24), **lin('b.qkv', 24)})
        >>> fused_counterparts(two, hf)
        (set(), set())
    """
    runs_dst, fused_src = _one_way(dst, src)
    runs_src, fused_dst = _one_way(src, dst)
    return runs_src | fused_src, runs_dst | fused_dst
