"""
Module evidence for the structure solver: a module's tensors go to one
module, or to none.

Pure: :class:`~torch_liberator.keygroups.KeyGroups` and group pairs in, new
group pairs out. A state dict lists a module's groups as one contiguous run
(its *span*), so a module is a run of groups with a shape signature (the
squeezed shapes of its groups, in order). The evidence that follows:

* :func:`whole_fit`: one side, whole, has the signature of exactly one
  module of the other side (a resnet18 checkpoint into a model holding a
  renamed resnet34 and a renamed resnet18; a timm efficientnet_b0 into
  torchvision's b1 and b0 side by side, where the b0 fills one module
  whole and the b1 only in part): it belongs there, as the tree modes load
  a checkpoint into the one place it fills whole.
* :func:`head_fit`: one side, whole, is the first part of exactly one
  module of the other side, that module less its head, in either
  library's nesting.
* :func:`resized_head_fit`: one side, whole but for its head's sizes, is
  exactly one module of the other side (a resnet18 checkpoint into a model
  holding a resnet34 beside the resnet18 fine-tuned to 10 classes: the
  resnet34 takes every key by name and shape, but only the resnet18 is
  filled whole, no block skipped).
* :func:`run_fit`: a module of one side is a run of the other side's
  groups, not a module there (a network's children-Sequential without its
  head holds the checkpoint's groups but the head's).
* :func:`module_closure`: a paired group lies in a module whose signature
  equals that of a module around its partner, at the same position, inside
  parents holding the same pairs: the two modules are one, so their other
  groups pair position by position, unless two of those have one shape
  (detectron2 and HuggingFace register a block's shortcut before its convs,
  which the order cannot place; once the shortcut's convolution is paired by
  its unique shape, its BatchNorm goes with it).

Example:
    >>> from torch_liberator.keygroups import KeyGroups
    >>> from torch_liberator.modulefit import module_closure
    >>> src = KeyGroups({'down.0.w': (8, 4), 'down.1.w': (8,), 'bn3.w': (8,)})
    >>> dst = KeyGroups({'bn.w': (8,), 'short.conv.w': (8, 4), 'short.norm.w': (8,)})
    >>> # down.0 <-> short.conv is known; down is [conv, norm] like short
    >>> module_closure(src, dst, {0: 1}, src.module_spans(), dst.module_spans())
    [(1, 2)]
"""
from bisect import bisect_left
from collections import Counter
from typing import Dict, List, Mapping, Optional, Set, Tuple

from torch_liberator.keygroups import KeyGroups
from torch_liberator.movedparts import labels_in_order
from torch_liberator.shapes import squeeze_units

__all__ = ['FIT_BUDGET', 'NAMED_FIT_MIN', 'NESTING_FIT_MIN', 'SHAPES_FIT_KINDS', 'body_shapes_fit',
           'head_fit', 'headed_shapes_fit', 'module_closure',
           'nested_run_fit', 'parts_against_their_labels', 'resized_head_fit',
           'run_fit', 'same_groups_fit', 'shapes_fit', 'unpaired_module_size', 'whole_fit']

#: a module's groups: ``(first group, one past the last)``
Span = Tuple[int, int]

#: :func:`whole_fit` compares at most this many groups per group searched
FIT_BUDGET = 4

#: the fewest groups whose shapes, found at one place only, say that a side
#: nested differently is that module (fewer repeat by chance: a short model
#: with a layer inserted fits the wrong module as well as the right one)
NESTING_FIT_MIN = 32

#: :func:`shapes_fit` also takes fewer keys than :data:`NESTING_FIT_MIN`
#: when they hold kernels (two or more dimensions besides size-1 ones) of
#: at least this many shapes: a vgg11's 22 tensors come in nine kernel
#: shapes, which a module holds as many of each by design, not by chance
SHAPES_FIT_KINDS = 8

#: the fewest groups that do the same when every group shares a word of its
#: path with its place (a VGG11's ``features.6`` and its copy's
#: ``features.high.0``)
NAMED_FIT_MIN = 8


def unpaired_module_size(spans: Tuple[Span, ...], paired: List[int], g: int,
                         unit: Optional[Span] = None) -> int:
    """
    How many groups the largest module around group ``g`` holds when none
    of them but ``g`` is paired (``g`` may be): 1 for a group whose neighbours found their
    partners, the size of a whole network when ``g`` lies in one that
    found none (a second backbone beside the one that aligned). ``unit``
    (a span holding ``g``, such as a layer and its norm) widens "but ``g``"
    to the groups of the unit.

    Args:
        spans: the spans around ``g``, innermost first (an item of
            :meth:`~torch_liberator.keygroups.KeyGroups.module_spans`).
        paired: running counts of paired groups: ``paired[k]`` is how many
            of groups ``0 .. k - 1`` are paired (``len(side) + 1`` items).
        g: the group.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import unpaired_module_size
        >>> side = KeyGroups({'a.x.w': (1,), 'a.y.w': (2,), 'b.p.w': (3,), 'b.q.w': (4,)})
        >>> spans = side.module_spans()
        >>> paired = [0, 1, 1, 1, 1]  # only a.x is paired
        >>> unpaired_module_size(spans[1], paired, 1), unpaired_module_size(spans[3], paired, 3)
        (1, 2)
    """
    first, last = unit or (g, g + 1)
    own = paired[last] - paired[first]  # g (or its unit) itself, when paired
    size = 1
    for start, stop in spans:
        if paired[stop] - paired[start] > own:
            break
        size = stop - start
    return size


def shapes_fit(small: Mapping[str, tuple], large: Mapping[str, tuple],
               sep: str = '.') -> Optional[str]:
    """
    The one module of ``large`` (its path) whose keys have the shapes of
    all of ``small``'s keys, as many of each (size-1 dimensions aside: a
    layer scale ``[C]`` in timm is ``[C, 1, 1]`` in torchvision), when the order says nothing
    (keys sorted by name): the place :func:`whole_fit` finds by order,
    found by the shapes alone. None when no module has them, or several
    (a wrapper and the module it holds are one), or when ``large`` has
    nothing beside it, or ``small`` has fewer than :data:`NESTING_FIT_MIN`
    keys with kernels of fewer than :data:`SHAPES_FIT_KINDS` shapes (a
    few shapes say little), or when the rest of the module around the one
    found holds the same shapes (a copy that is no module of its own:
    :func:`_copy_beside`).

    Example:
        >>> from torch_liberator.modulefit import shapes_fit
        >>> small = {f'layer{i}.weight': (4, 4) for i in range(40)}
        >>> small['fc.weight'] = (3, 4)
        >>> large = {'wide.fc.weight': (3, 8), 'wide.body.weight': (8, 8)}
        >>> large.update({f'net.x{i}.weight': (4, 4) for i in range(40)})
        >>> large['net.head.weight'] = (3, 4)
        >>> shapes_fit(small, large)
        'net'
        >>> copy = {f'copy.x{i}.weight': (4, 4) for i in range(40)}
        >>> shapes_fit(small, {**large, **copy, 'copy.head.weight': (3, 4)}) is None  # two places
        True
        >>> # a copy beside the one module, no module itself, is a place too
        >>> ema = {f'module.{k}': v for k, v in small.items()}
        >>> ema.update({f'module.ema.{k}': v for k, v in small.items()})
        >>> shapes_fit(small, ema) is None
        True
    """
    want = len(small)
    shapes = _wanted_shapes(small, large)
    if shapes is None:
        return None
    counts = _keys_per_module(large, sep)
    sized = [path for path, count in counts.items() if count == want]
    if not sized:
        return None
    keys, found = sorted(large), []
    for path in sized:
        at = bisect_left(keys, path + sep)
        held = Counter(squeeze_units(large[key]) for key in keys[at:at + want]
                       if large[key] is not None)
        if held == shapes:
            found.append(path)
    # a chain of wrappers around one module holds the same keys: one place
    outer = [p for p in found if not any(p.startswith(q + sep) for q in found)]
    if len(outer) != 1 or _copy_beside_keys(large, outer[0], sep, counts):
        return None
    return outer[0]


def _wanted_shapes(small: Mapping[str, tuple], large: Mapping[str, tuple]) -> Optional[Counter]:
    """The shapes of ``small``'s keys, as many of each, size-1 dimensions
    aside (a layer scale ``[C]`` in timm is ``[C, 1, 1]`` in torchvision),
    for the fits by shapes; None when a shape is unknown or when
    :func:`_too_small_to_fit` declines."""
    if _too_small_to_fit(small, large):
        return None
    shapes = Counter(squeeze_units(shape) for shape in small.values() if shape is not None)
    return shapes if sum(shapes.values()) == len(small) else None


def _too_small_to_fit(small: Mapping[str, tuple], large: Mapping[str, tuple]) -> bool:
    """Whether :func:`shapes_fit` and :func:`body_shapes_fit` decline: ``large``
    holds nothing beside ``small``, or ``small`` has fewer than
    :data:`NESTING_FIT_MIN` keys with kernels (two or more dimensions besides
    size-1 ones) of fewer than :data:`SHAPES_FIT_KINDS` shapes."""
    if len(large) <= len(small):
        return True
    if len(small) >= NESTING_FIT_MIN:
        return False
    kinds = {kernel for kernel in (squeeze_units(shape) for shape in small.values()
                                   if shape is not None) if len(kernel) >= 2}
    return len(kinds) < SHAPES_FIT_KINDS


def _keys_per_module(keys, sep: str) -> Counter:
    """Module path -> how many of ``keys`` lie below it (the root left out)."""
    counts: Counter = Counter()
    for key in keys:
        path = key
        while True:
            path = path.rpartition(sep)[0]
            if not path:
                break
            counts[path] += 1
    return counts


def _copy_beside_keys(large: Mapping[str, tuple], path: str, sep: str,
                      counts: Counter) -> bool:
    """Whether the module ``path`` of ``large`` lies in a module (or the
    whole of ``large``) whose other keys are a copy of it, shapes alike as
    many of each: :func:`_copy_beside` for keys without order. ``counts``:
    :func:`_keys_per_module` of ``large``."""
    parent = path.rpartition(sep)[0]
    while parent and counts[parent] == counts[path]:
        parent = parent.rpartition(sep)[0]  # (wrappers around the module)
    if (counts[parent] if parent else len(large)) != 2 * counts[path]:
        return False
    inside, around = Counter(), Counter()
    for key, shape in large.items():
        if key.startswith(path + sep):
            inside[squeeze_units(shape)] += 1
        elif not parent or key.startswith(parent + sep):
            around[squeeze_units(shape)] += 1
    return inside == around


def body_shapes_fit(small: Mapping[str, tuple], large: Mapping[str, tuple],
                    sep: str = '.') -> Optional[Tuple[str, str]]:
    """
    :func:`shapes_fit` for ``small`` less its head, when the order says
    nothing: the one module of ``large`` whose keys have the shapes of all
    of ``small``'s but those of one module of ``small`` (the head a
    ``children()[:-1]`` cut off, with its own children: torchvision's
    ConvNeXt ends in ``classifier.0``, a norm, and ``classifier.2``), as
    many of each, and that module; the root's own tensors (a ViT's tokens,
    which ``nn.Sequential(*model.children())`` drops) count as a module.
    None when no module of ``large`` has them, or several, or the shapes
    left over are those of no module of ``small``, or of several, or when
    :func:`shapes_fit` would decline (too few keys and kernel shapes,
    nothing beside).

    Returns:
        Tuple[str, str] | None: the module of ``large`` and the module of
        ``small`` left over (``''``: the root's own tensors).

    Example:
        >>> from torch_liberator.modulefit import body_shapes_fit
        >>> small = {f'layer{i}.weight': (4, 4) for i in range(40)}
        >>> small.update({'fc.weight': (3, 4), 'fc.bias': (3,)})
        >>> large = {f'other.x{i}.weight': (4, 4) for i in range(40)}
        >>> large.update({'other.fc.weight': (3, 4), 'other.fc.bias': (3,)})
        >>> large.update({f'body.{i}.weight': (4, 4) for i in range(40)})
        >>> body_shapes_fit(small, large)
        ('body', 'fc')
        >>> body_shapes_fit(small, {**large, **{f'copy.{i}.weight': (4, 4) for i in range(40)}})
        >>> # a head of two modules (a norm and a classifier)
        >>> layers = {f'layer{i}.weight': (4, 4) for i in range(40)}
        >>> head = {'head.0.weight': (4,), 'head.2.weight': (3, 4)}
        >>> other = {f'other.{i}.weight': (5, 5) for i in range(3)}
        >>> body_shapes_fit({**layers, **head}, {**other, **{f'body.{i}.weight': (4, 4)
        ...                                                   for i in range(40)}})
        ('body', 'head')
    """
    want = len(small)
    shapes = _wanted_shapes(small, large)
    if shapes is None:
        return None
    below = _keys_per_module(small, sep)
    roots = Counter(squeeze_units(shape) for key, shape in small.items() if sep not in key)
    sizes = set(below.values()) | ({sum(roots.values())} if roots else set())
    counts = _keys_per_module(large, sep)
    keys, found = sorted(large), []
    small_keys = sorted(small)
    for path, count in counts.items():
        if want - count not in sizes or want - count >= count:
            continue  # (the head is the smaller part)
        at = bisect_left(keys, path + sep)
        held = Counter(squeeze_units(large[key]) for key in keys[at:at + count]
                       if large[key] is not None)
        if held - shapes:
            continue
        left = shapes - held
        heads = [module for module, n in below.items() if n == want - count
                 and _held_below(small, small_keys, module, n, sep) == left]
        heads = [h for h in heads if not any(h.startswith(g + sep) for g in heads)]
        if roots == left:
            heads.append('')
        if len(heads) == 1:
            found.append((path, heads[0]))
    outer = [(p, h) for p, h in found if not any(p.startswith(q + sep) for q, _ in found)]
    return outer[0] if len(outer) == 1 else None


def headed_shapes_fit(small: Mapping[str, tuple], large: Mapping[str, tuple],
                      sep: str = '.') -> Optional[Tuple[str, str]]:
    """
    :func:`shapes_fit` for a module of ``large`` that holds ``small`` and a
    head: the one module of ``large`` whose keys, less those of one of its
    children (a classifier that ``small``, cut before it, lacks), have the
    shapes of all of ``small``'s, as many of each, the head the smaller
    part: the place :func:`head_fit` finds by order, found by the shapes
    alone (keys sorted by name). None when no module has them, or several,
    or when :func:`shapes_fit` would decline (too few keys and kernel
    shapes, nothing beside), or when the rest of the module around the one
    found is a copy of it.

    Returns:
        Tuple[str, str] | None: the module of ``large`` and its child left
        over.

    Example:
        >>> from torch_liberator.modulefit import headed_shapes_fit
        >>> small = {f'layer{i}.weight': (4, 4) for i in range(40)}
        >>> large = {f'net.x{i}.weight': (4, 4) for i in range(40)}
        >>> large.update({'net.fc.weight': (3, 4), 'net.fc.bias': (3,)})
        >>> large.update({f'other.{i}.weight': (4, 4) for i in range(20)})
        >>> headed_shapes_fit(small, large)
        ('net', 'net.fc')
        >>> # a second such module: two places, none found
        >>> large.update({f'copy.{k[4:]}': v for k, v in large.items() if k.startswith('net.')})
        >>> headed_shapes_fit(small, large) is None
        True
    """
    want = len(small)
    shapes = _wanted_shapes(small, large)
    if shapes is None:
        return None
    counts = _keys_per_module(large, sep)
    keys, found = sorted(large), []
    for path, count in counts.items():
        head_size = count - want
        if not 0 < head_size < want:
            continue  # (the head is the smaller part)
        at = bisect_left(keys, path + sep)
        held = Counter(squeeze_units(large[key]) for key in keys[at:at + count]
                       if large[key] is not None)
        if shapes - held:
            continue
        left = held - shapes
        heads = [child for child in {key[:key.find(sep, len(path) + 1)]
                                     for key in keys[at:at + count]
                                     if sep in key[len(path) + 1:]}
                 if counts[child] == head_size
                 and _held_below(large, keys, child, head_size, sep) == left]
        if len(heads) == 1:
            found.append((path, heads[0]))
    outer = [(p, h) for p, h in found if not any(p.startswith(q + sep) for q, _ in found)]
    if len(outer) != 1 or _copy_beside_keys(large, outer[0][0], sep, counts):
        return None
    return outer[0]


def _held_below(side: Mapping[str, tuple], keys: List[str], module: str, n: int,
                sep: str) -> Counter:
    """The shapes (size-1 dimensions aside) of the ``n`` keys of ``side``
    below ``module``; ``keys``: ``side``'s keys sorted."""
    at = bisect_left(keys, module + sep)
    return Counter(squeeze_units(side[key]) for key in keys[at:at + n])


def whole_fit(small: KeyGroups, large: KeyGroups) -> Optional[int]:
    """
    The first group of the one module of ``large`` whose groups have the
    shapes of all of ``small``, position by position, and are containers'
    own tensors where those of ``small`` are; None when there is no such
    module or several (several equally good places: ambiguous; a copy that
    is no module of its own counts, :func:`_copy_beside`), when
    ``large`` is no larger than ``small``, or when ``small`` is a single
    group (one group is one shape: the leftovers of unique shapes judge it).

    A module whose groups also sit at the same depths as those of
    ``small`` is looked for first, among whole modules; it is taken when
    its modules span the same groups as those of ``small`` (a tree of the
    same shape, the names aside) and, for a ``small`` of fewer than
    :data:`NESTING_FIT_MIN` groups, when each group sits as many levels
    below the module around them all as in ``small`` (levels of one child
    count: a few shapes are too little evidence to pass over them).
    Failing that, a module of another tree shape (another library's
    nesting of the same network: timm's ``blocks.0.0`` is torchvision's
    ``features.1.0.block``) is taken only when the shapes of ``small``
    occur at one offset of ``large`` and no other, module or not, when the
    two nestings agree (no module of one side ends inside a module of the
    other), and when ``small`` has at least :data:`NESTING_FIT_MIN` groups
    (:data:`NAMED_FIT_MIN` when each shares a word of its path with its
    place). The search compares at most :data:`FIT_BUDGET`
    groups per group of ``large`` (shapes repeated at many offsets); past
    that it answers None, as for ambiguity.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import whole_fit
        >>> small = KeyGroups({'conv.w': (4, 3), 'bn.w': (4,)})
        >>> large = KeyGroups({'big.c.w': (4, 3), 'big.x.w': (9,), 'big.n.w': (4,),
        ...                    'tiny.c.w': (4, 3), 'tiny.n.w': (4,)})
        >>> whole_fit(small, large)
        3
        >>> twice = KeyGroups({'a.conv.w': (4, 3), 'a.bn.w': (4,),
        ...                    'b.conv.w': (4, 3), 'b.bn.w': (4,)})
        >>> print(whole_fit(small, twice))
        None
        >>> # nested differently: found because 32 shapes occur at one place
        >>> shapes = [(c, c + 1) for c in range(32)]
        >>> flat = KeyGroups({f'l{c}.w': s for c, s in enumerate(shapes)})
        >>> nested = KeyGroups({**{f'a.{c}.w': s for c, s in enumerate(shapes[:8])},
        ...                     **{f'b.s{c // 4}.{c}.w': s for c, s in enumerate(shapes)}})
        >>> whole_fit(flat, nested)
        8
        >>> # two groups under modules of one child: not the tree of 'b.r6'
        >>> deep = KeyGroups({'0.0.0.w': (4, 4), '1.m0.0.w': (8, 8, 3, 3)})
        >>> ckpt = KeyGroups({'a.3.w': (4, 4), 'b.r6.3.w': (4, 4), 'b.r6.4.w': (8, 8, 3, 3)})
        >>> print(whole_fit(deep, ckpt))
        None
    """
    n, size = len(small), len(large)
    if n < 2 or size <= n:
        return None  # one group is one shape: no structure to recognise
    depth = [len(comps) - len(small.comps[0]) for comps in small.comps]
    same_shapes = _same_shape_runs(small, large)
    if same_shapes is None:
        return None
    same_tree = [s for s in same_shapes
                 if all(len(large.comps[s + k]) - len(large.comps[s]) == depth[k] for k in range(n))
                 and _is_one_module(large, s, n)]
    if same_tree:
        own = _spans_within(small, 0, n)
        same_tree = [s for s in same_tree if _spans_within(large, s, n) == own]
    if n < NESTING_FIT_MIN:
        below = _depths_below_top(small, 0, n)
        same_tree = [s for s in same_tree if _depths_below_top(large, s, n) == below]
    if same_tree:
        if len(same_tree) != 1 or _copy_beside(large, same_tree[0], n):
            return None
        return same_tree[0]
    if (len(same_shapes) == 1 and _is_one_module(large, same_shapes[0], n)
            and (n >= NESTING_FIT_MIN
                 or (n >= NAMED_FIT_MIN and _words_agree(small, large, same_shapes[0])))):
        s = same_shapes[0]
        if _nest(_spans_within(large, s, n) | _spans_within(small, 0, n)):
            return s
    return None


def run_fit(module: KeyGroups, start: int, n: int, side: KeyGroups) -> Optional[int]:
    """
    Where in ``side`` the module of ``module`` holding groups ``start ..
    start + n - 1`` is a run of groups: the one offset of ``side`` whose
    ``n`` groups have its shapes and leafness, place by place, and its tree
    below it (the same modules, at the same depths); None when there is
    none or several (or past :data:`FIT_BUDGET` comparisons per group of
    ``side``). The run need not be a module of ``side``: a
    network's ``nn.Sequential(*list(net.children())[:-1])`` is the
    checkpoint's groups but its head, under no module of their own.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import run_fit
        >>> net = KeyGroups({'conv.w': (4, 3), 'bn.w': (4,), 'block.c.w': (8, 4),
        ...                  'block.n.w': (8,), 'fc.w': (10, 8)})
        >>> model = KeyGroups({'x.w': (2,), 'b.0.w': (4, 3), 'b.1.w': (4,), 'b.2.c.w': (8, 4),
        ...                    'b.2.n.w': (8,)})
        >>> run_fit(model, 1, 4, net)
        0
    """
    if n < 2 or n > len(side):
        return None
    base = len(module.comps[start])
    depth = [len(module.comps[start + k]) - base for k in range(n)]
    own = _spans_within(module, start, n) - {(0, n)}
    found, work = [], 0
    for s in range(len(side) - n + 1):
        if (side.squeezed[s] != module.squeezed[start]
                or side.squeezed[s + n - 1] != module.squeezed[start + n - 1]):
            continue
        k, top = 0, len(side.comps[s])
        while k < n and (side.squeezed[s + k] == module.squeezed[start + k]
                         and side.leaf[s + k] == module.leaf[start + k]
                         and len(side.comps[s + k]) - top == depth[k]):
            k += 1
        work += k + 1
        if work > FIT_BUDGET * len(side):
            return None  # shapes repeated at many offsets: no one place
        if k == n:
            if _spans_within(side, s, n) - {(0, n)} == own:
                found.append(s)
                if len(found) > 1:
                    return None
    return found[0] if found else None


def head_fit(small: KeyGroups, large: KeyGroups) -> Optional[int]:
    """
    The first group of the one run of ``large`` that has the shapes of
    all of ``small``, position by position (and its containers' own
    tensors where those of ``small`` are), and begins a module of
    ``large`` that holds more after it (or ``large`` itself, when the run
    is its start): ``small`` is that module less its last groups (a
    network without its head, or truncated), in either library's nesting. None when there is no such run or several, when the
    two nestings disagree (a module of one ends inside a module of the
    other), when ``small`` has fewer than :data:`NESTING_FIT_MIN` groups,
    or past :data:`FIT_BUDGET` comparisons per group of ``large``.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import head_fit
        >>> shapes = [(c, c + 1) for c in range(40)]
        >>> headless = KeyGroups({f'l{c}.w': s for c, s in enumerate(shapes[:32])})
        >>> model = KeyGroups({**{f'a.{c}.w': (c + 2, 1) for c in range(8)},
        ...                    **{f'b.s{c // 4}.{c}.w': s for c, s in enumerate(shapes)}})
        >>> head_fit(headless, model)
        8
    """
    n, size = len(small), len(large)
    if n < NESTING_FIT_MIN or size <= n:
        return None
    found = _same_shape_runs(small, large)
    if not found or len(found) != 1:
        return None
    s = found[0]
    inside = _module_or_side_around(large, s, n)
    if (not inside or inside[0] != s or len(inside) <= n
            or inside != list(range(s, s + len(inside)))):
        return None  # not the first part of one module holding more
    return s if _nest(_spans_within(large, s, n) | _spans_within(small, 0, n)) else None


def resized_head_fit(small: KeyGroups, large: KeyGroups, sep: str = '.') -> Optional[int]:
    """
    The first group of the one module of ``large`` that is the whole of
    ``small`` but for the sizes of its last group, the head: ``small``
    less its head is the first part of that module (:func:`head_fit`),
    and the one group after it has the head's names and ranks, of other
    sizes (a 1000-class classifier against a 10-class one). None when
    there is no such module, when ``small`` fits whole anywhere
    (:func:`whole_fit` finds that), or when its last group holds no
    tensor of two or more dimensions.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import resized_head_fit
        >>> body = {f'l{c}.w': (c + 1, c + 2) for c in range(32)}
        >>> small = KeyGroups({**body, 'fc.w': (1000, 33), 'fc.b': (1000,)})
        >>> longer = {f'a.l{i}.w': (c + 1, c + 2) for i, c in enumerate([0, 1, 1, *range(2, 32)])}
        >>> fine_tuned = {'b.' + k: s for k, s in body.items()}
        >>> large = KeyGroups({**longer, 'a.fc.w': (1000, 33), 'a.fc.b': (1000,),
        ...                    **fine_tuned, 'b.fc.w': (10, 33), 'b.fc.b': (10,)})
        >>> resized_head_fit(small, large)
        34
    """
    n = len(small)
    head = n - 1
    if n <= NESTING_FIT_MIN or len(large) <= n or all(len(s) < 2 for s in small.shapes[head]):
        return None
    body = KeyGroups({key: shape for g in range(head)
                      for key, shape in zip(small.keys[g], small.shapes[g])}, sep)
    at = head_fit(body, large)
    if at is None:
        return None
    inside = _module_or_side_around(large, at, head)
    last = at + head
    if (inside != list(range(at, last + 1)) or large.names[last] != small.names[head]
            or [len(s) for s in large.shapes[last]] != [len(s) for s in small.shapes[head]]
            or large.shapes[last] == small.shapes[head]):
        return None
    return at


def nested_run_fit(side: KeyGroups, start: int, n: int, other: KeyGroups,
                   sep: str = '.') -> Optional[int]:
    """
    Where in ``other`` the module of ``side`` holding groups ``start ..
    start + n - 1`` is a run in another library's nesting: the first group
    of the one module of ``other`` that it is whole
    (:func:`whole_fit`), or whose first part it is, the rest a head
    (:func:`head_fit`; the whole of ``other`` counts as such a module);
    None when there is none, or when the module has fewer than
    :data:`NESTING_FIT_MIN` groups.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import nested_run_fit
        >>> shapes = [(c, c + 1) for c in range(40)]
        >>> net = KeyGroups({f'body.s{c // 4}.{c}.w': s for c, s in enumerate(shapes)})
        >>> model = KeyGroups({**{f'other.{c}.w': (c + 2, 1) for c in range(8)},
        ...                    **{f'net.l{c}.w': s for c, s in enumerate(shapes[:36])}})
        >>> nested_run_fit(model, 8, 36, net)
        0
    """
    if n < NESTING_FIT_MIN:
        return None
    part = KeyGroups({key: shape for g in range(start, start + n)
                      for key, shape in zip(side.keys[g], side.shapes[g])}, sep)
    at = whole_fit(part, other)
    return head_fit(part, other) if at is None else at


def _same_shape_runs(small, large):
    """The offsets of ``large`` whose ``len(small)`` groups have the
    squeezed shapes and leafness of ``small``'s, place by place; None past
    :data:`FIT_BUDGET` comparisons per group of ``large``."""
    n, size = len(small), len(large)
    first, last = small.squeezed[0], small.squeezed[-1]
    found, work = [], 0
    for s in range(size - n + 1):
        if large.squeezed[s] != first or large.squeezed[s + n - 1] != last:
            continue
        k = 0
        while k < n and (small.squeezed[k] == large.squeezed[s + k]
                         and small.leaf[k] == large.leaf[s + k]):
            k += 1
        work += k + 1
        if work > FIT_BUDGET * size:
            return None
        if k == n:
            found.append(s)
    return found


def same_groups_fit(small: KeyGroups, large: KeyGroups) -> Optional[int]:
    """
    The first group of the one module of ``large`` that holds the same
    groups as all of ``small`` (the same squeezed shapes and leafness, as
    many of each), in any order; None when no module or several do, or when
    ``small`` has fewer than :data:`NESTING_FIT_MIN` groups, or when the
    rest of the module around it is a copy (:func:`_copy_beside`). Another
    library may list a block's modules in another order (Keras and
    detectron2 put the shortcut first), so the exact sequence of
    :func:`whole_fit` is not found; the same groups, in one module and no
    other, still say where a whole checkpoint goes (a Keras-named resnet50
    into a model holding a resnet101 and a resnet50).

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import same_groups_fit
        >>> shapes = [(c, c + 1) for c in range(32)]
        >>> small = KeyGroups({f'l{c}.w': s for c, s in enumerate(shapes[::-1])})
        >>> large = KeyGroups({**{f'a.{c}.w': s for c, s in enumerate(shapes[:8])},
        ...                    **{f'b.{c}.w': s for c, s in enumerate(shapes)}})
        >>> same_groups_fit(small, large)
        8
    """
    n = len(small)
    if n < NESTING_FIT_MIN or len(large) <= n:
        return None
    starts = {a for spans in large.module_spans() for a, b in spans if b - a == n}
    want = Counter(zip(small.squeezed, small.leaf))
    found = [a for a in sorted(starts)
             if Counter(zip(large.squeezed[a:a + n], large.leaf[a:a + n])) == want]
    if len(found) != 1 or _copy_beside(large, found[0], n):
        return None
    return found[0]


def _copy_beside(side: KeyGroups, start: int, n: int) -> bool:
    """
    Whether the module of ``side`` holding groups ``start .. start + n -
    1`` lies in a module (or the whole side) whose other groups are a copy
    of it: the same squeezed shapes and leafness, as many of each. That
    copy is no module of its own, yet as good a place: a model beside its
    EMA copy, saved from DataParallel (``module.*`` and
    ``module.model_ema.module.*``), where only the EMA copy is one module.
    A fit found there is no one place; the names decide.
    """
    chain = side.module_spans()[start]
    larger = [(a, b) for a, b in chain if a <= start and start + n <= b and b - a > n]
    a, b = larger[0] if larger else (0, len(side))
    if b - a != 2 * n:
        return False
    rest = [g for g in range(a, b) if not start <= g < start + n]
    return (Counter((side.squeezed[g], side.leaf[g]) for g in rest)
            == Counter((side.squeezed[g], side.leaf[g]) for g in range(start, start + n)))


def parts_against_their_labels(side: KeyGroups) -> Set[int]:
    """
    The groups inside lists registered against the order their labels give
    (``second = layers[2:]`` registered before ``first = layers[:2]``, see
    :func:`torch_liberator.movedparts.labels_in_order`): there the
    registration order, which the structure solver follows, says the
    opposite of the names, and nothing in such a list is known, when it
    shares a kind of group with another of them (lists of distinct shapes
    are placed by their shapes, whatever the order).

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import parts_against_their_labels
        >>> keys = {f'{part}.{i}.w': (4, 4) for part in ('second', 'first') for i in range(2)}
        >>> sorted(parts_against_their_labels(KeyGroups(keys)))
        [0, 1, 2, 3]
        >>> # labels that give no order (two streams), or the order kept
        >>> parts_against_their_labels(KeyGroups({k.replace('second', 'rgb').replace('first', 'depth'): s
        ...                                       for k, s in keys.items()}))
        set()
        >>> parts_against_their_labels(KeyGroups(dict(sorted(keys.items()))))
        set()
    """
    lists = {}  # parent path -> its children that are lists, in order
    for comps in side.comps:
        for depth in range(len(comps) - 1):
            if comps[depth + 1].isdigit():
                children = lists.setdefault(comps[:depth], [])
                if comps[depth] not in children:
                    children.append(comps[depth])
    marked = set()
    for parent, children in lists.items():
        if len(children) > 1 and labels_in_order(children[::-1], ''):
            marked.update(parent + (child,) for child in children)
    if not marked:
        return set()
    inside = {}  # marked list -> its groups
    for g, comps in enumerate(side.comps):
        for depth in range(len(comps)):
            if comps[:depth + 1] in marked:
                inside.setdefault(comps[:depth + 1], []).append(g)
                break
    # only lists that share a kind of group can be taken for one another
    # (distinct shapes place themselves, whatever the order)
    kinds = Counter(shape for groups in inside.values()
                    for shape in {side.squeezed[g] for g in groups})
    return {g for groups in inside.values() for g in groups
            if any(kinds[side.squeezed[h]] > 1 for h in groups)}


def _words_agree(small, large, start):
    """Whether every group of ``small`` shares a word (not a position) of
    its path with the group of ``large`` at its place from ``start``."""
    for k, comps in enumerate(small.comps):
        words = {c for c in comps if not c.isdigit()}
        if not words.intersection(large.comps[start + k]):
            return False
    return True


def _spans_within(side, start, n):
    """The spans of the modules within groups ``start .. start + n - 1``,
    counted from ``start``: the shape of that part of the tree."""
    return {(a - start, b - start) for spans in side.module_spans()[start:start + n]
            for a, b in spans if start <= a and b <= start + n}


def _depths_below_top(side, start, n):
    """How many levels below the module around groups ``start`` .. ``start
    + n - 1`` (their longest common path) each of them sits: levels of one
    child count, which :func:`_spans_within` does not see."""
    top = _common_length(side.comps[start], side.comps[start + n - 1])
    return [len(side.comps[start + k]) - top for k in range(n)]


def _common_length(first, last):
    """How many leading path components ``first`` and ``last`` share."""
    common = 0
    for c1, c2 in zip(first, last):
        if c1 != c2:
            break
        common += 1
    return common


def _nest(spans):
    """Whether any two of the spans ``(start, stop)`` are nested or apart,
    none crossing: two nestings of one sequence of modules that agree (a
    stage of one is a stage, or several blocks, of the other), unlike a
    module of one that ends inside a module of the other."""
    open_stops = []
    for start, stop in sorted(spans, key=lambda span: (span[0], -span[1])):
        while open_stops and open_stops[-1] <= start:
            open_stops.pop()
        if open_stops and stop > open_stops[-1]:
            return False
        open_stops.append(stop)
    return True


def _module_around(side, start, n):
    """The groups of the module around groups ``start`` and ``start + n -
    1`` (their longest common path), in order; None for the root."""
    first, last = side.comps[start], side.comps[start + n - 1]
    common = _common_length(first, last)
    if not common:
        return None
    prefix = first[:common]
    return [g for g, comps in enumerate(side.comps) if comps[:common] == prefix]


def _module_or_side_around(side, start, n):
    """:func:`_module_around`, or the whole side for a run at its start
    that no module holds (the first part of the whole side)."""
    inside = _module_around(side, start, n)
    if inside is None and start == 0:
        inside = list(range(len(side)))
    return inside


def _is_one_module(side, start, n):
    """Whether groups ``start`` .. ``start + n - 1`` are one module's, all
    of them (the module around the first and the last; no other group)."""
    return _module_around(side, start, n) == list(range(start, start + n))


def module_closure(src: KeyGroups, dst: KeyGroups, pairs: Mapping[int, int],
                   src_spans: Tuple[Tuple[Span, ...], ...],
                   dst_spans: Tuple[Tuple[Span, ...], ...],
                   frozen_src: Set[int] = frozenset(),
                   frozen_dst: Set[int] = frozenset()) -> List[Tuple[int, int]]:
    """
    New group pairs that modules around known pairs imply.

    A module around an unpaired source group and a module of the
    destination with as many groups, the same shapes position by position,
    holding at least one known pair at the same position on both sides,
    every other group either unpaired on both sides or paired within the two
    modules, and whose parent modules hold the same known pairs (every
    known pair inside one lands inside the other; a root only matches a
    root), are one module: their unpaired groups pair position by
    position, unless two of them have one shape (then only their order
    would place them, which the first alignment found ambiguous). Two such
    module pairs never disagree: the modules around one group are nested,
    and the larger pair holds the smaller one's known pairs at the same
    positions.

    Args:
        src: the source's groups.
        dst: the destination's groups.
        pairs: the known pairs, source group -> destination group.
        src_spans: :meth:`~torch_liberator.keygroups.KeyGroups.module_spans` of ``src``.
        dst_spans: :meth:`~torch_liberator.keygroups.KeyGroups.module_spans` of ``dst``.
        frozen_src: unpaired source groups that must stay unpaired (a module
            holding one is not closed).
        frozen_dst: the same for the destination.

    Returns:
        List[Tuple[int, int]]: the new pairs, sorted.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.modulefit import module_closure
        >>> conv_bn = lambda p: {p + '.c.w': (8, 4), p + '.n.w': (8,)}
        >>> src = KeyGroups({**conv_bn('a'), 'x.w': (8,)})
        >>> dst = KeyGroups({**conv_bn('p'), **conv_bn('q')})
        >>> # a = [c, n] is p = [c, n]: a.n goes to p.n, unless p.n is taken
        >>> module_closure(src, dst, {0: 0}, src.module_spans(), dst.module_spans())
        [(1, 1)]
        >>> module_closure(src, dst, {0: 0, 2: 1}, src.module_spans(), dst.module_spans())
        []
    """
    paired_dst = {j: i for i, j in pairs.items()}
    # the nearest paired source group at or before / after each group
    before, after = [-1] * len(src), [len(src)] * len(src)
    last = -1
    for g in range(len(src)):
        if g in pairs:
            last = g
        before[g] = last
    last = len(src)
    for g in range(len(src) - 1, -1, -1):
        if g in pairs:
            last = g
        after[g] = last
    checked = {}
    found: Dict[int, int] = {}
    for g in range(len(src)):
        if g in pairs or g in frozen_src:
            continue
        chain = src_spans[g]
        for level, (s0, s1) in enumerate(chain):
            # any known pair inside decides which destination module it is
            i = before[g] if before[g] >= s0 else after[g]
            if i >= s1:
                continue
            j = pairs[i]
            d0 = j - (i - s0)
            try:
                dst_level = dst_spans[j].index((d0, d0 + s1 - s0))
            except ValueError:
                continue
            key = (s0, d0, s1 - s0)
            new = checked.get(key)
            if new is None:
                new = checked[key] = _closure(src, dst, pairs, paired_dst, key,
                                              frozen_src, frozen_dst)
            if not new:
                continue
            parents = (_parent(chain, level), _parent(dst_spans[j], dst_level))
            same = checked.get(parents)
            if same is None:
                same = checked[parents] = _hold_the_same_pairs(pairs, paired_dst, *parents)
            if same:
                found.update(new)
    return sorted(found.items())


def _parent(chain, level):
    return chain[level + 1] if level + 1 < len(chain) else None


def _hold_the_same_pairs(pairs, paired_dst, src_span, dst_span):
    """Whether every known pair inside one span lands inside the other and
    the other way round (two roots: yes; a root and a module: no)."""
    if src_span is None or dst_span is None:
        return src_span is None and dst_span is None
    (s0, s1), (d0, d1) = src_span, dst_span
    return (all(d0 <= pairs[g] < d1 for g in range(s0, s1) if g in pairs)
            and all(s0 <= paired_dst[h] < s1 for h in range(d0, d1) if h in paired_dst))


def _closure(src, dst, pairs, paired_dst, key, frozen_src, frozen_dst):
    """The unpaired group pairs of two equal modules, or () when they are not."""
    s0, d0, length = key
    if not all(src.squeezed[s0 + k] == dst.squeezed[d0 + k] for k in range(length)):
        return ()
    new = []
    for k in range(length):
        g, h = s0 + k, d0 + k
        partner = pairs.get(g)
        if partner is None and h not in paired_dst:
            if g in frozen_src or h in frozen_dst:
                return ()
            new.append((g, h))
        elif partner != h:
            return ()
    if len({src.squeezed[g] for g, _ in new}) < len(new):
        return ()  # interchangeable groups: only their order would place them
    return tuple(new)
