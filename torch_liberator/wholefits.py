"""
The checks against a module of one side that holds the other whole: an
exact run of the checkpoint's groups that is the model, a module of the
checkpoint that is the model less its head, a module of the model that is
the checkpoint (whole, in another nesting, or less its head) or holds its
shapes. Where such a place exists and the mapping fills it less well from
outside it, the pairs from outside are left out: a namesake of another
design, of other widths or filled in part, is not the checkpoint's place.

:data:`WHOLE_FIT_CHECKS` joins :data:`torch_liberator.leaveout.CHECKS`;
:func:`parts_around` is shared with the check that one network does not go
to two.

Example:
    >>> from torch_liberator.modesolvers import Problem
    >>> from torch_liberator.wholefits import WHOLE_FIT_CHECKS
    >>> block = {'conv.weight': (8, 3, 3, 3), 'bn.weight': (8,), 'bn.bias': (8,),
    ...          'fc.weight': (4, 8), 'fc.bias': (4,)}
    >>> # the model holds the checkpoint's names with other widths (a), and
    >>> # the checkpoint itself, whole, under another name (b)
    >>> dst = {**{'a.' + k: (s[0] * 2,) + s[1:] for k, s in block.items()},
    ...        **{'b.' + k: s for k, s in block.items()}}
    >>> by_names = {k: 'a.' + k for k in block}
    >>> sorted(WHOLE_FIT_CHECKS['beside_a_whole_fit'](Problem(block, dst, '.'), by_names))
    ['bn.bias', 'bn.weight', 'conv.weight', 'fc.bias', 'fc.weight']
"""
import os
from collections import Counter
from typing import Callable, Dict, Optional, Tuple

from torch_liberator.keygroups import common_module
from torch_liberator.modulefit import (NESTING_FIT_MIN, body_shapes_fit, head_fit,
                                       headed_shapes_fit, nested_run_fit, run_fit,
                                       shapes_fit, whole_fit)
from torch_liberator.shapes import shape_relation, squeeze_units

__all__ = ['WHOLE_FIT_CHECKS', 'model_fit_by_shapes', 'parts_around']


def _short_of_an_exact_run(problem, mapping):
    """
    When the model, whole, is a run of the checkpoint's groups, every shape
    equal (:func:`~torch_liberator.modulefit.run_fit`), while the mapping
    fills it less well (fewer tensors placed without a shove) from outside
    that run: the names found a sibling of the model's names of other
    widths (a wide_resnet50_2 under resnet50's names, beside the resnet50
    itself as a children-Sequential), and the run is the better place; the
    pairs from outside it are left out. A module of the checkpoint that
    holds the whole model in another library's nesting
    (:func:`~torch_liberator.modulefit.whole_fit`) counts as such a run
    (timm's mobilenetv2_100 beside a torchvision efficientnet_b0, into a
    torchvision mobilenet_v2: the efficientnet's stem, last convolution and
    classifier have the model's names and shapes, cross fuzz seed 1064),
    and so does one whose first part is the whole model, the module less
    its head (:func:`~torch_liberator.modulefit.head_fit`: a timm
    mobilenetv3_large_100 without its classifier, whose names a timm
    efficientnet_b0 beside a torchvision mobilenet_v3_large in the
    checkpoint has, seed 2315). The other way about, a module of the
    checkpoint that is the model less its head
    (:func:`_less_its_head`) is the place of what it holds: the pairs
    from outside it into its place are left out, and so are the head's
    from a part of the checkpoint that sent them (timm's mnasnet_100
    without its classifier beside a torchvision mnasnet0_5, into a
    torchvision mnasnet1_0: the mnasnet0_5's last BatchNorm and classifier
    by name, cross fuzz seed 2548 of ``--wide``); where no order finds
    such a module, the one holding the model's shapes serves
    (:func:`_outside_a_shapes_fit`). A mapping that fills the
    whole model without a shove from outside the fit stays (the names
    decide between two exact places); one that fills it from the fit and
    from elsewhere does not: one network comes from one place (timm's
    resnet101, its ``layer3`` cut in two renamed parts, beside a resnet50
    of torchvision's names, into torchvision's resnet101: ``isomorphism``
    took the stem, ``layer1``, ``layer2`` and ``layer4`` from the resnet50
    by name and ``layer3`` from the resnet101, 206 wrong).
    """
    src, dst = problem.src, problem.dst
    if len(src) <= len(dst) or not mapping:
        return set()
    sides, sep = problem.sides(), problem.sep
    if len(sides.dst) >= len(sides.src):
        return set()
    full = _unshoved(problem, mapping) >= len(dst)
    found = _outside_a_shapes_fit(problem, mapping) if not sides.ordered else None
    if sides.ordered:
        at = run_fit(sides.dst, 0, len(sides.dst), sides.src)
        if at is None:  # or in another library's nesting, a module of the checkpoint
            at = whole_fit(sides.dst, sides.src)
        if at is None:  # or the first part of one, less its head
            at = head_fit(sides.dst, sides.src)
        # or, the other way about, a module of the checkpoint is the model
        # less its head: the pairs from outside it into its place are left
        # out, and so are the head's from a module of the checkpoint that sent them
        span = _less_its_head(sides.dst, sides.src, sep) if at is None else None
        if at is not None:
            run = {key for keys in sides.src.keys[at:at + len(sides.dst)] for key in keys}
            found = {s for s in mapping if s not in run}, run.__contains__
        elif span is not None:
            a, b = span
            run = {key for keys in sides.src.keys[a:b] for key in keys}
            place = {key for keys in sides.dst.keys[:b - a] for key in keys}
            out = {s for s, d in mapping.items() if s not in run and d in place}
            found = _with_their_parts(problem, mapping, out, run.__contains__), run.__contains__
        else:
            found = _outside_a_shapes_fit(problem, mapping)
    if found is None:
        return set()
    out, in_fit = found
    return _split_from(problem, mapping, out, in_fit, full)


def _split_from(problem, mapping, out, in_fit, full):
    """
    ``out``, the pairs of ``mapping`` from outside a fit (``in_fit(key)``
    false), unless the mapping fills the whole model without a shove
    (``full``) and either all of it comes from outside the fit, whole from
    the network it came from (two exact places, which the names decide), or
    what comes from outside is no network's part (a classifier by its name
    beside an auxiliary one that the fit's run holds): parts of the
    checkpoint (children of the module around all of it, a wrapper passed)
    of fewer than :data:`~torch_liberator.modulefit.NESTING_FIT_MIN` keys
    that hold nothing the mapping leaves unused with a kernel (a vgg11
    beside the model's vgg16 less its head is a network, its classifier
    another network's head). A longer network that the names fill the
    model from in part, its blocks skipped, is no exact place beside the
    fit: a resnet101 of the model's names beside the model's resnet50, its
    lists cut in renamed parts (:func:`_used_in_part`); the mapping is left
    out.
    """
    if not full or not out:
        return out
    if len(out) == len(mapping):
        return out if _used_in_part(problem, mapping, in_fit) else set()
    src, part = problem.src, _parts_of(problem)
    parts = {part(s) for s in out}
    sizes = Counter(part(key) for key in src)
    if any(sizes[p] >= NESTING_FIT_MIN for p in parts):
        return out
    # (or a network of fewer keys, whose body the mapping leaves unused)
    return out if any(part(key) in parts and key not in mapping and not in_fit(key)
                      and shape is not None and len(squeeze_units(shape)) >= 2
                      for key, shape in src.items()) else set()


def _parts_of(problem):
    """``part(key)``: the part of the checkpoint a key lies in, the child of
    the module around all of the checkpoint (a wrapper passed)."""
    sep = problem.sep
    root = len(os.path.commonprefix([key.split(sep)[:-1] for key in problem.src]))
    return lambda key: tuple(key.split(sep)[:root + 1])


def _used_in_part(problem, mapping, in_fit):
    """Whether the module of the checkpoint around the sources of
    ``mapping`` holds, outside the fit, tensors the mapping leaves unused
    with the kernel shapes (two or more dimensions, size-1 ones aside) of
    tensors it uses: blocks of a longer network that the names skip, not
    its head."""
    src, sep = problem.src, problem.sep
    module = common_module(mapping, sep)
    prefix = module + sep if module else ''
    used = {kernel for kernel in (squeeze_units(src[s]) for s in mapping) if len(kernel) >= 2}
    return any(key.startswith(prefix) and key not in mapping and not in_fit(key)
               and src[key] is not None and squeeze_units(src[key]) in used for key in src)


def _outside_a_shapes_fit(problem, mapping):
    """
    The pairs of ``mapping`` from outside the one module of the checkpoint
    that holds the model's shapes (:func:`model_fit_by_shapes`), and
    ``in_fit(key)``; None without such a module: the fit that no order
    finds (keys sorted, or the model's children registered in another
    order: timm's efficientnet_b1 against a torchvision one beside timm's
    b0, whose names are the model's, cross fuzz seed 54 of ``--reorder``).
    A module that holds them and a head serves too: timm's resnet101, its
    lists cut in renamed parts, beside a resnet50 of the model's names,
    keys sorted, into torchvision's resnet101 without its fc; the names
    filled the model's resnet50 part from the resnet50 (cross fuzz seed
    67034 of ``--wider --reorder --sorted``, 318 wrong). And so does one
    that holds the model less its head, as :func:`_less_its_head` finds by
    order: the pairs from outside it into its place are left out, and so
    are the head's from a part of the checkpoint that sent them (the same
    resnet101 without its fc, into torchvision's with its fc: the structure
    mode's sorted reading took the resnet50 whole, its fc too).
    """
    found = model_fit_by_shapes(problem)
    if found is None:
        return None
    module, head = found
    inside = module + problem.sep

    def in_fit(key):
        return key.startswith(inside)

    if head is None:
        return {s for s in mapping if not in_fit(s)}, in_fit
    head = head + problem.sep
    out = {s for s, d in mapping.items() if not in_fit(s) and not d.startswith(head)}
    return _with_their_parts(problem, mapping, out, in_fit), in_fit


def _with_their_parts(problem, mapping, out, in_fit):
    """
    ``out`` (pairs from outside a fit, ``in_fit(key)`` false, into its
    place) and the other pairs of ``mapping`` from the parts of the
    checkpoint that sent them (children of the module around all of it, a
    wrapper passed), outside the fit: a rival network's head goes with its
    body. So does one from a part outside the fit that holds a body of
    its own the mapping leaves unused (kernels, two or more dimensions
    besides size-1 ones): a vgg11 beside the model's vgg16 less its
    classifier, whose classifier has the model's names and shapes, is
    another network's head. A head saved as a part of its own beside the
    body keeps its pairs.
    """
    src, part = problem.src, _parts_of(problem)
    own = {part(key) for key in src if in_fit(key)}  # (the fit's neck and heads are its own)
    rivals = {part(s) for s in out}
    rivals.update(part(key) for key, shape in src.items()
                  if key not in mapping and not in_fit(key) and shape is not None
                  and len(squeeze_units(shape)) >= 2 and part(key) not in own)
    return set(out) | {s for s in mapping if not in_fit(s) and part(s) in rivals}


def model_fit_by_shapes(problem) -> Optional[Tuple[str, Optional[str]]]:
    """
    The one module of the checkpoint that holds the model's shapes, as
    many of each (:func:`~torch_liberator.modulefit.shapes_fit`), or them
    and a head (:func:`~torch_liberator.modulefit.headed_shapes_fit`),
    and None beside it; else the one that holds the model's shapes less
    those of one module of the model, its head
    (:func:`~torch_liberator.modulefit.body_shapes_fit`), and that module;
    None when there is none, or several.

    Example:
        >>> from torch_liberator.modesolvers import Problem
        >>> from torch_liberator.wholefits import model_fit_by_shapes
        >>> model = {f'layer{i}.weight': (4, 4) for i in range(40)}
        >>> src = {f'other.{k}': (8, 8) for k in model}
        >>> src.update({f'net.{i}.weight': (4, 4) for i in range(40)})
        >>> src.update({'net.fc.weight': (3, 4), 'net.fc.bias': (3,)})
        >>> model_fit_by_shapes(Problem(src, model, '.'))
        ('net', None)
        >>> model.update({'fc.weight': (5, 4), 'fc.bias': (5,)})
        >>> model_fit_by_shapes(Problem(src, model, '.'))  # no head of the model's shapes
        >>> src = {k: v for k, v in src.items() if not k.startswith('net.fc.')}
        >>> model_fit_by_shapes(Problem(src, model, '.'))
        ('net', 'fc')
    """
    sep = problem.sep
    module = shapes_fit(problem.dst, problem.src, sep)
    if module is None:
        headed = headed_shapes_fit(problem.dst, problem.src, sep)
        module = headed and headed[0]
    if module is not None:
        return module, None
    return body_shapes_fit(problem.dst, problem.src, sep)


def _less_its_head(whole, side, sep):
    """
    The span of the one module of ``side`` whose groups are the first ones
    of ``whole``, in its nesting or another library's, while ``whole``
    holds more after them (its head, which the module lacks), the module
    at least half of ``whole`` and :data:`~torch_liberator.modulefit.NESTING_FIT_MIN`
    groups; None when there is none or several.
    """
    m = len(whole)
    spans = {span for chain in side.module_spans() for span in chain
             if max(NESTING_FIT_MIN, (m + 1) // 2) <= span[1] - span[0] < m}
    found = []
    for a, b in sorted(spans):
        at = run_fit(side, a, b - a, whole)
        if at is None:
            at = nested_run_fit(side, a, b - a, whole, sep)
        if at == 0:
            found.append((a, b))
    return found[0] if len(found) == 1 else None


def _beside_an_exact_run(problem, mapping):
    """
    When a module of the model that the mapping leaves empty is a run of
    the checkpoint's groups, every shape equal
    (:func:`~torch_liberator.modulefit.run_fit`), holding more of the
    checkpoint's tensors than the mapping places without a shove, and most
    of the mapping comes from that run's tensors (a rival place for them,
    not another part of the checkpoint): the names found a sibling of the
    checkpoint's names that holds it only in part (timm's resnet50d, its
    stem and shortcuts of other shapes, beside resnet50's own
    children-Sequential, for a resnet50 checkpoint), and the run is the
    better place; the mapping is left out. (The structure solver's twin
    of this step places the run:
    :class:`~torch_liberator.groupalign.GroupAligner`.)
    """
    src, dst = problem.src, problem.dst
    exact = _unshoved(problem, mapping)
    if not mapping or exact >= len(src) or len(dst) - len(mapping) <= exact:
        return set()  # no room beside the mapping for a run holding more
    sides = problem.sides()
    if not sides.ordered:
        return set()
    keys_before, held_before = _running_counts(sides.dst, set(mapping.values()))
    spans = {span for chain in sides.dst.module_spans() for span in chain}
    src_group = {key: g for g, keys in enumerate(sides.src.keys) for key in keys}
    for a, b in sorted(spans, key=lambda span: span[0] - span[1]):
        if (keys_before[b] - keys_before[a] <= exact or b - a > len(sides.src)
                or held_before[b] != held_before[a]):
            continue
        at = run_fit(sides.dst, a, b - a, sides.src)
        if at is None:  # or in another library's nesting
            at = nested_run_fit(sides.dst, a, b - a, sides.src, problem.sep)
        if at is None:
            continue
        # a rival for the same tensors: most of the mapping comes from the run
        inside = sum(at <= src_group.get(s, -1) < at + b - a for s in mapping)
        if 2 * inside > len(mapping):
            return set(mapping)
    return set()


def _beside_a_whole_fit(problem, mapping):
    """
    When one module of the model holds the whole checkpoint, in order,
    every shape equal, at one place only, in its own nesting or another
    library's (:func:`~torch_liberator.modulefit.whole_fit`), or is the
    whole checkpoint and a head after it
    (:func:`~torch_liberator.modulefit.head_fit`), and that module holds
    more of the checkpoint than the mapping places without a shove in one
    place (in the fit, or beside it: a mapping split between the two
    places less than either), or as much while the mapping's place beside
    the fit skips groups of the model between those it fills, or leaves
    tensors in it unset (a longer network, or one of another design,
    filled in part): the mapping's pairs that
    the fit contradicts are left out, those it confirms kept. Cases: timm's
    mnasnet_100 into a model holding torchvision's mnasnet1_0 beside timm's
    efficientnet_b0, whose names are the checkpoint's and whose shapes are
    in part (cross fuzz seed 1237: all left out); a torchvision
    mobilenet_v2 into timm's beside a regnet, the classifier by its name
    into timm's (kept) and the stem by its numbers into the regnet's (left
    out, seed 900); a headless resnet18 into a model holding a resnet18
    with two blocks renamed beside a resnet34 of the checkpoint's names,
    which the names fill every other block of (seed 2276: all left out);
    timm's resnet26d into a model holding a resnet26t (its names, a stem
    of other widths) beside the resnet26d's children-Sequential, where the
    embedding put the body into the resnet26t by name and the stem into
    the children by shape (175 wrong).
    A module of the model that is the checkpoint less its head judges the
    mapping too (:func:`_beside_its_body`). Where no order finds such a
    module, the one module holding exactly the checkpoint's shapes serves
    (:func:`_outside_shapes_fit`).
    """
    src, dst = problem.src, problem.dst
    if not mapping:
        return set()
    exact = _unshoved(problem, mapping)
    sides = problem.sides()
    if not sides.ordered:
        # (the fits found by shapes compare their own room: a mapping
        # split between a namesake and the fit has little beside it)
        return _outside_shapes_fit(problem, mapping, exact)
    parts, part_of = parts_around(problem, mapping)
    straddles = len({part_of[s] for s in mapping} & parts) > 1
    if len(dst) - len(mapping) < exact and not straddles:
        return set()  # no room beside the mapping for a fit holding as much
    keys_before, held_before = _running_counts(sides.dst, set(mapping.values()))
    held = [g for g in range(len(sides.dst)) if held_before[g + 1] > held_before[g]]
    gapped = bool(held) and held[-1] - held[0] + 1 > len(held)
    if (exact >= len(src) and not gapped and not straddles
            and not _left_unset(problem, mapping, mapping, None)):
        # (the cheap test first: the whole checkpoint in one run, in one
        # network of the model, which it fills)
        return set()
    n = len(sides.src)
    at = whole_fit(sides.src, sides.dst)
    if at is None:
        at = head_fit(sides.src, sides.dst)
    if at is None:  # or the checkpoint less its head
        span = _less_its_head(sides.src, sides.dst, problem.sep)
        if span is not None:
            return _beside_its_body(problem, mapping, exact, span, gapped)
        return _outside_shapes_fit(problem, mapping, exact)
    room = keys_before[at + n] - keys_before[at]
    place = {key: g for g, keys in enumerate(sides.dst.keys[at:at + n]) for key in keys}
    placed, beside = _in_one_place(problem, mapping, place.__contains__)
    if room < placed or (room == placed and not gapped and not _left_unset(
            problem, mapping, beside, common_module(place, problem.sep) + problem.sep)):
        return set()
    src_group = {key: g for g, keys in enumerate(sides.src.keys) for key in keys}
    return {s for s, d in mapping.items() if s in src_group and place.get(d) != src_group[s]}


def _beside_its_body(problem, mapping, exact, span, gapped):
    """
    The pairs of ``mapping`` that the module of the model at ``span``
    contradicts, when it is the checkpoint less its head
    (:func:`_less_its_head`) and holds more of the checkpoint than the
    mapping places without a shove, or as much of its body while the
    mapping's place beside it skips groups of the model between those it
    fills (``gapped``) or leaves tensors unset: those of the body that go
    elsewhere, and those of the head that go, not to the groups after the
    body's, but into a part of the model beside it that holds more than
    twice the head: another network. Cases: a timm rexnet_100 into a model
    holding it headless as ``trunk`` beside a resnet50d as ``head``, whose
    ``head.fc`` strict shoved the rexnet's classifier into (mutation fuzz
    seed 3256 of ``--wide --reorder``); a torchvision convnext_tiny into a
    model holding it headless, ``features.5`` cut in two renamed parts,
    beside a convnext_small of its names, which the names filled every
    block and the head of, skipping the small one's later blocks (the name
    modes, 101 wrong). A head of the model's own (beside the body, or after
    a neck) keeps its pairs.
    """
    sides, sep = problem.sides(), problem.sep
    a, b = span
    keys_before, _ = _running_counts(sides.dst, ())
    body = b - a
    src_group = {key: g for g, keys in enumerate(sides.src.keys) for key in keys}
    place = sep.join(os.path.commonprefix(list(sides.dst.comps[a:b])))
    room = keys_before[b] - keys_before[a]
    if room <= exact:
        # the mapping places as much; it gives way only where it places the
        # body no better, in a network filled in part
        body_pairs = {s: d for s, d in mapping.items() if src_group.get(s, body) < body}
        inside = place + sep if place else ''
        beside = {s: d for s, d in mapping.items() if not d.startswith(inside)}
        if room != _unshoved(problem, body_pairs) or not (
                gapped or _left_unset(problem, mapping, beside, inside)):
            return set()
    dst_group = {key: g for g, keys in enumerate(sides.dst.keys) for key in keys}
    after = range(b, b + len(sides.src) - body)
    head = sum(len(keys) for keys in sides.src.keys[body:])
    out, sizes = set(), {}
    for s, d in mapping.items():
        g = src_group.get(s)
        if g is None or d not in dst_group:
            continue  # (a key without a shape is in no group and tells nothing)
        if g < body:
            if dst_group[d] != a + g:
                out.add(s)
        elif dst_group[d] not in after and _in_a_larger_part(
                d, place, head, problem.dst, sep, sizes):
            out.add(s)
    return out


def _outside_shapes_fit(problem, mapping, exact):
    """
    The pairs of ``mapping`` outside the one module of the model that holds
    the checkpoint's shapes, as many of each (:func:`~torch_liberator.
    modulefit.shapes_fit`), when the mapping places fewer than all of them
    without a shove: the fit that the order cannot find (keys sorted, or
    another library's order: a torchvision regnet's shortcut first, timm's
    last), whose pairs cannot be checked one by one; what the mapping puts
    elsewhere goes. A torchvision regnet_y_1_6gf into a model holding
    timm's beside torchvision's regnet_y_400mf, whose names are the
    checkpoint's and whose widths are not: the name modes shoved every
    tensor into the latter (cross fuzz seeds 393, keys sorted, and 635, both
    headless, of ``--wide``). The checkpoint less one module serves too
    (:func:`~torch_liberator.modulefit.body_shapes_fit`: a head cut off, or
    the root's own tensors, a ViT's tokens, which
    ``nn.Sequential(*model.children())`` drops), when it holds more than
    the mapping places in one place, or as much while the mapping's place
    beside it leaves tensors unset: timm's DeiT III-S, keys sorted, into
    a model holding a ViT-S (its names, no layer scales) beside the
    DeiT's children-Sequential, where the structure mode put all but the
    layer scales into the ViT (151 wrong).
    """
    sep = problem.sep
    if len(problem.src) <= exact:
        return _filled_in_part(problem, mapping)
    found = _fit_by_shapes(problem)
    if found is None:
        return set()
    module, head = found
    if head is None:
        inside = module + sep
        return {s for s, d in mapping.items() if not d.startswith(inside)}
    # the checkpoint less its head (keys sorted, against children()[:-1]):
    # the body's pairs go inside; the head's stay only beside it, in a
    # part of the model no bigger than twice the head (a head of its own)
    inside, in_head = module + sep, _head_keys(head, sep)
    body = sum(1 for d in problem.dst if d.startswith(inside))
    placed, beside = _in_one_place(
        problem, {s: d for s, d in mapping.items() if not in_head(s)},
        lambda d: d.startswith(inside))
    if body < placed or body == placed and not _left_unset(problem, mapping, beside, inside):
        # the mapping places as much of the body without a shove, and
        # where it went, beside the fit, it leaves nothing unset
        return set()

    size = sum(1 for s in problem.src if in_head(s))
    sizes = {}
    return {s for s, d in mapping.items() if not d.startswith(inside) and (
        not in_head(s) or _in_a_larger_part(d, module, size, problem.dst, sep, sizes))}


def _in_one_place(problem, mapping, inside):
    """What ``mapping`` places without a shove in one place: in the fit
    (the places ``inside`` accepts) or beside it, whichever holds more (a
    mapping split between a namesake of another design and the fit, the
    names filling the one and the order or the shapes the other, places
    less than either); and its pairs beside the fit."""
    split = ({}, {})
    for s, d in mapping.items():
        split[bool(inside(d))][s] = d
    return max(_unshoved(problem, pairs) for pairs in split), split[False]


def _filled_in_part(problem, mapping):
    """
    The pairs of ``mapping`` (the whole checkpoint, placed without a
    shove) outside the one module of the model that holds the checkpoint's
    shapes (:func:`~torch_liberator.modulefit.shapes_fit`), or its shapes
    less one module's (:func:`~torch_liberator.modulefit.body_shapes_fit`:
    its head, or the root's own tensors, a ViT's tokens, which
    ``nn.Sequential(*model.children())`` drops), when the module they went
    to holds tensors the mapping leaves unset: a network of another design,
    filled in part, against one that the checkpoint fills. What
    :func:`_beside_a_whole_fit` finds by order (the mapping's place skips
    groups between those it fills) when the keys are sorted: timm's
    regnetx_002 into a model holding timm's regnety_002 (its names, and
    squeeze-excitation in every block) beside the children-Sequential of a
    regnetx_002; prefix-hack put the whole checkpoint into the regnety, and
    ``auto`` took it (266 wrong). The same with timm's ViT-S beside a
    DeiT III-S (its names, and layer scales in every block).

    The same pairs go when the mapping splits the checkpoint's body between
    the fit and another place, which it fills: one network is in one
    place. A torchvision convnext_small, keys sorted, into a model holding
    timm's convnext_small without its head beside a torchvision
    convnext_tiny, whose names are the checkpoint's: the names filled the
    tiny one (182 tensors) and the structure solve put the rest into
    timm's; the fit holds the body whole (its pairs from outside are left
    out, and the head's, which has no place of its own beside the fit).
    """
    found = _fit_by_shapes(problem)
    if found is None:
        return set()
    sep = problem.sep
    inside = found[0] + sep
    outside = {s: d for s, d in mapping.items() if not d.startswith(inside)}
    if _left_unset(problem, mapping, outside, inside):
        return set(outside)
    in_head = _head_keys(found[1], sep)
    body_outside = [s for s in outside if not in_head(s)]
    if not body_outside or all(in_head(s) for s, d in mapping.items() if d.startswith(inside)):
        return set()
    size, sizes = sum(1 for s in problem.src if in_head(s)), {}
    return set(body_outside) | {s for s, d in outside.items() if in_head(s) and _in_a_larger_part(
        d, found[0], size, problem.dst, sep, sizes)}


def _head_keys(head, sep):
    """``in_head(key)``: whether a checkpoint key is of the module ``head``
    (``''``: the root's own tensors, a ViT's tokens; None: no head)."""
    if head is None:
        return lambda key: False
    if not head:
        return lambda key: sep not in key
    prefix = head + sep
    return lambda key: key.startswith(prefix)


def _fit_by_shapes(problem):
    """``(module, None)`` for the one module of the model that holds the
    checkpoint's shapes (:func:`~torch_liberator.modulefit.shapes_fit`),
    else ``(module, head)`` for the one that holds them less the
    checkpoint module ``head`` (:func:`~torch_liberator.modulefit.
    body_shapes_fit`), else ``(module, None)`` for the one that holds them
    and a head of its own (:func:`~torch_liberator.modulefit.
    headed_shapes_fit`: a headless resnet18, keys sorted, into a model
    holding a resnet18 with two blocks renamed beside a resnet34 of the
    checkpoint's names; the names filled every other block of the resnet34,
    120 wrong in the name modes), else None."""
    sep = problem.sep
    module = shapes_fit(problem.src, problem.dst, sep)
    if module is not None:
        return module, None
    found = body_shapes_fit(problem.src, problem.dst, sep)
    if found is None:
        headed = headed_shapes_fit(problem.src, problem.dst, sep)
        found = headed and (headed[0], None)
    return found


def _left_unset(problem, mapping, pairs, fit):
    """Whether the lowest module holding the places of ``pairs`` (a part
    of ``mapping``, outside the module ``fit``, a prefix, or None) holds
    model tensors outside ``fit`` that ``mapping`` leaves unset."""
    if not pairs:
        return False
    sep = problem.sep
    place = common_module(pairs.values(), sep)
    prefix = place + sep if place else ''
    filled = set(mapping.values())
    return any(d.startswith(prefix) and d not in filled and not (fit and d.startswith(fit))
               for d in problem.dst)


def parts_around(problem, mapping):
    """
    The network-sized parts of the model around the mapping (children of
    the module around every place it fills, each holding at least half as
    many keys as the checkpoint), and each source key's part.

    Example:
        >>> from torch_liberator.modesolvers import Problem
        >>> from torch_liberator.wholefits import parts_around
        >>> src = {'conv.w': (3,), 'conv.b': (3,), 'bn.w': (3,), 'bn.b': (3,)}
        >>> dst = {p + k: (3,) for p in ('a.', 'b.') for k in src}
        >>> dst['fc.w'] = (2,)  # a head, not a network
        >>> parts, part_of = parts_around(Problem(src, dst, '.'), {'conv.w': 'a.conv.w',
        ...                                                         'bn.w': 'b.bn.w'})
        >>> sorted(parts), part_of
        (['a', 'b'], {'conv.w': 'a', 'bn.w': 'b'})
    """
    sep = problem.sep
    # the module around every place filled, as a prefix ending in sep ('' for the root)
    under = os.path.commonprefix([d.rpartition(sep)[0] + sep if sep in d else ''
                                  for d in mapping.values()])
    under = under[:under.rfind(sep) + 1]
    sizes = {}
    for key in problem.dst:
        if key.startswith(under):
            part = key[len(under):].split(sep, 1)[0]
            sizes[part] = sizes.get(part, 0) + 1
    parts = {part for part, n in sizes.items() if 2 * n >= len(problem.src)}
    part_of = {s: d[len(under):].split(sep, 1)[0] for s, d in mapping.items()}
    return parts, part_of


def _in_a_larger_part(key, module, head, dst_keys, sep, sizes):
    """
    Whether ``key`` lies in a part of the model beside ``module`` (the
    module one level below the innermost one holding both) that holds more
    than twice ``head`` keys: another network, not a head of the model's
    own beside the body. ``sizes`` caches the parts' key counts.
    """
    path, place = key.split(sep), module.split(sep) if module else []
    part = sep.join(path[:len(os.path.commonprefix([place, path[:-1]])) + 1]) + sep
    if part not in sizes:
        sizes[part] = sum(k.startswith(part) for k in dst_keys)
    return sizes[part] > 2 * head


def _unshoved(problem, mapping):
    """How many of the mapping's pairs need no shove."""
    return sum(shape_relation(problem.src[s], problem.dst[d]) in ('equal', 'units')
               for s, d in mapping.items())


def _running_counts(side, used):
    """Per group boundary of ``side``: the keys before it, and the groups
    before it holding a key of ``used``."""
    keys_before, held_before = [0], [0]
    for keys in side.keys:
        keys_before.append(keys_before[-1] + len(keys))
        held_before.append(held_before[-1] + any(key in used for key in keys))
    return keys_before, held_before


#: check name -> ``finder(problem, mapping)``, the source keys it leaves out
WHOLE_FIT_CHECKS: Dict[str, Callable] = {
    'short_of_an_exact_run': _short_of_an_exact_run,
    'beside_an_exact_run': _beside_an_exact_run,
    'beside_a_whole_fit': _beside_a_whole_fit,
}
