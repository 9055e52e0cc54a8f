"""
The checks that leave pairs out of a solver's mapping.

A mode's solver (:data:`torch_liberator.modesolvers.SOLVERS`) is its core
followed by checks (:func:`checked`, :data:`CHECKS`). Each check finds the
pairs that rest on evidence something else contradicts (a rival copy of a
network, a list position that names another layer, a module of the model
that holds the whole checkpoint in another nesting, a thin mapping the
structure mode does not witness, ...), and they move from the mapping to
the ambiguous keys with the one place they were given: a wrong tensor is
worse than a missing one.

A check reads only the :class:`~torch_liberator.modesolvers.Problem` it is
given (its sides, trees, lists, parts of other designs and, for the
thin-mapping witness, the structure mode's cached answer) and the mapping
so far.

Example:
    >>> from torch_liberator.leaveout import checked
    >>> from torch_liberator.modesolvers import Problem
    >>> # the model's exact key, of the same shape, is in the checkpoint unused
    >>> solve = checked(lambda problem: ({'stem.w': 'layers.w'}, {}), 'exact_keys_contest')
    >>> solve(Problem({'stem.w': (3,), 'layers.w': (3,)}, {'layers.w': (3,)}, '.'))
    ({}, {'stem.w': ('layers.w',)})
"""
import os
from collections import Counter
from typing import Callable, Dict

from torch_liberator import swappednames
from torch_liberator.coincidence import (ONE_DESIGN_SHARE, against_shared_names,
                                         away_from_their_fit, design_share, kinds_apart,
                                         names_agree, network_parts, split_from_their_fit,
                                         split_items, too_thin)
from torch_liberator.crossings import (crossed_norm_pairs, crossed_ordinal_pairs,
                                       crossed_peer_pairs, strayed_pairs)
from torch_liberator.keygroups import common_module, enclosing_modules, key_span, module_pairs
from torch_liberator.listparts import later_part_modules
from torch_liberator.listpositions import (across_other_cuts, against_list_shapes,
                                           free_twin_items, positions_disagree, relabelled,
                                           witnessed_offsets)
from torch_liberator.modulefit import (NESTING_FIT_MIN, body_shapes_fit, head_fit, module_spans,
                                       nested_run_fit, run_fit, shapes_fit, whole_fit)
from torch_liberator.nameanchors import shared_length
from torch_liberator.rivalsources import (foreign_parts, lone_namesakes, lone_shoves, rival_pairs,
                                          rival_places, stray_parts)
from torch_liberator.shapes import is_kernel, shape_relation, squeeze_units

__all__ = ['CHECKS', 'checked', 'in_source_order']


def in_source_order(problem, mapping, ambiguous):
    """
    ``(mapping, ambiguous)`` with their keys in the order of ``problem.src``.

    Example:
        >>> from types import SimpleNamespace
        >>> from torch_liberator.leaveout import in_source_order
        >>> problem = SimpleNamespace(src={'a': (1,), 'b': (2,)})
        >>> in_source_order(problem, {'b': 'y', 'a': 'x'}, {})
        ({'a': 'x', 'b': 'y'}, {})
    """
    src = problem.src
    return ({k: mapping[k] for k in src if k in mapping},
            {k: ambiguous[k] for k in src if k in ambiguous})


def checked(solver: Callable, *checks: str) -> Callable:
    """
    ``solver`` followed by the named checks, in the order given: each check
    finds the source keys of the mapping so far that its evidence
    contradicts, and they move to the ambiguous keys with the one place
    they were given. The names are those of :data:`CHECKS`.

    Args:
        solver: ``solver(problem) -> (mapping, ambiguous)``.
        *checks: names of :data:`CHECKS`.

    Returns:
        Callable: a solver of the same signature.

    Example:
        >>> from torch_liberator.leaveout import checked
        >>> from torch_liberator.modesolvers import Problem
        >>> solve = checked(lambda problem: ({'b.w': 'a.w'}, {}), 'exact_keys_contest')
        >>> solve(Problem({'a.w': (3,), 'b.w': (3,)}, {'a.w': (3,)}, '.'))
        ({}, {'b.w': ('a.w',)})
        >>> checked(solve, 'no such check')
        Traceback (most recent call last):
        ...
        ValueError: unknown check 'no such check'; one of ['across_other_cuts', ...]
    """
    unknown = [name for name in checks if name not in CHECKS]
    if unknown:
        raise ValueError(f'unknown check {unknown[0]!r}; one of {sorted(CHECKS)}')
    finders = [CHECKS[name] for name in checks]

    def solve(problem):
        mapping, ambiguous = solver(problem)
        for finder in finders:
            out = finder(problem, mapping)
            if out:
                ambiguous = dict(ambiguous)
                ambiguous.update((s, (mapping[s],)) for s in out)
                mapping = {s: d for s, d in mapping.items() if s not in out}
                mapping, ambiguous = in_source_order(problem, mapping, ambiguous)
        return mapping, ambiguous
    return solve


def _without_rivals(problem, mapping):
    """
    The pairs that fill a module from a rival copy of the module that fills
    it (:func:`~torch_liberator.rivalsources.rival_pairs`), that put a part
    of the checkpoint into another network of its names than the one its
    bulk went to (:func:`~torch_liberator.rivalsources.rival_places`), or
    beside it while the bulk's module has an empty place for it
    (:func:`~torch_liberator.rivalsources.stray_parts`), or that take a
    part from beside the checkpoint network the bulk came from while that
    network holds unused tensors of the part's names and shapes, unless
    their names agree (:func:`~torch_liberator.coincidence.names_agree`:
    a Swin's final ``norm`` beside its ``features``): the same test, both
    ways (the stem of an efficientnet saved as ``stem``, beside a regnet as
    ``features`` whose own ``stem`` went unused, taken by that name for the
    model regnet's stem; cross fuzz seed 2861).
    """
    rivals = set(rival_pairs(mapping, problem.src, problem.sep))
    rivals.update(rival_places(mapping, problem.dst, problem.sep))
    rivals.update(stray_parts(mapping, problem.dst, problem.sep))
    inverse = {d: s for s, d in mapping.items()}
    rivals.update(s for s in stray_parts(inverse, problem.src, problem.sep).values()
                  if not names_agree(s, mapping[s], problem.sep))  # names vouch for their own
    return rivals


def _without_lone_shoves(problem, mapping):
    """
    The exact modes' pairs of a module paired by name alone that must be
    shoved, two networks sharing nothing else below the module's parents
    (:func:`~torch_liberator.rivalsources.lone_shoves`: a wide_resnet50's
    ``main.fc`` into a regnet's).
    """
    return set(lone_shoves(mapping, problem.src, problem.dst, problem.sep))


def _shoved_beside_a_fit(problem, mapping):
    """
    The pairs of a module that must be shoved into a model module when a
    module of the checkpoint that the mapping leaves unused holds that
    model module's tensors, names and shapes, exactly: the names met by
    chance, the fit is elsewhere. A wide_resnet50 saved as ``head`` beside
    a torchvision swin_t as ``trunk``, into timm's swin: strict shoved the
    resnet's ``head.fc`` (``[1000, 2048]``) into the model's ``head.fc``
    (``[1000, 768]``), while the checkpoint's ``trunk.head`` holds a
    ``weight`` of ``[1000, 768]`` and a ``bias`` (cross fuzz seed 8598). A
    head of another size with no such module (a 1000-class ``fc`` into a
    10-class one) is shoved as published.
    """
    src, dst, sep = problem.src, problem.dst, problem.sep
    shoved = {}
    for s, d in mapping.items():
        if shape_relation(src[s], dst[d]) in ('same_rank', 'different_rank'):
            shoved.setdefault(d.rpartition(sep)[0], set()).add(s.rpartition(sep)[0])
    if not shoved:
        return set()
    wanted = {}
    for key, shape in dst.items():
        module, _, name = key.rpartition(sep)
        if module in shoved:
            wanted.setdefault(module, []).append((name, _shape_of(shape)))
    signatures = {tuple(sorted(v)): module for module, v in wanted.items()}
    held = {}
    used = set(mapping)
    for key, shape in src.items():
        if key not in used:
            module, _, name = key.rpartition(sep)
            held.setdefault(module, []).append((name, _shape_of(shape)))
    fits = {signatures[sig] for sig in (tuple(sorted(v)) for v in held.values())
            if sig in signatures}
    modules = {m for place in fits for m in shoved[place]}
    return {s for s in mapping if s.rpartition(sep)[0] in modules}


def _by_name_alone(problem, mapping):
    """
    The pairs that fill a small part of a model module by its name alone
    while the rest of its network, named like the module's and of other
    shapes there, went nowhere
    (:func:`~torch_liberator.rivalsources.lone_namesakes`: a resnet50's
    ``fc`` into a resnext50's; a resnet18's stem and head, saved under the
    name of the model's wrapper, into a resnext50's).
    """
    return set(lone_namesakes(mapping, problem.src, problem.dst, problem.sep))


def _blocks_kept_whole(problem, mapping):
    """
    The smaller part of a block split between two blocks of one list of
    the model, the one it went to filled in part only while the block of
    the larger part has empty places of its shapes
    (:func:`~torch_liberator.coincidence.split_items`); and the parts of a
    block sent outside the one block it fills that holds exactly its shapes
    (:func:`~torch_liberator.coincidence.split_from_their_fit`).
    """
    return (split_items(mapping, problem.src, problem.dst, problem.sep)
            | split_from_their_fit(mapping, problem.src, problem.dst, problem.sep))


def _away_from_their_fit(problem, mapping):
    """
    The pairs of a checkpoint block sent whole into a model block of other
    shapes while the one model block of its very shapes receives nothing
    (:func:`~torch_liberator.coincidence.away_from_their_fit`), and of a
    model block filled whole from a checkpoint block of other shapes while
    the one checkpoint block of its very shapes gives nothing: the names
    met by chance, the like is elsewhere.
    """
    src, dst, sep = problem.src, problem.dst, problem.sep
    back = {d: s for s, d in mapping.items()}
    return (away_from_their_fit(mapping, src, dst, sep)
            | {back[d] for d in away_from_their_fit(back, dst, src, sep)})


def _filled_from_their_fit(problem, mapping):
    """
    The mirror of :func:`_blocks_kept_whole`'s second reading: a model
    block filled from two checkpoint blocks keeps only what the one of its
    very shapes gives (torchvision's resnet34 into HF's ResNet-18: HF's
    last-stage block 0 took its second convolution from torchvision's block
    1). Run after :func:`_one_module_from_two`, which reads the children's
    names first.
    """
    back = {d: s for s, d in mapping.items()}
    return {back[d] for d in split_from_their_fit(back, problem.dst, problem.src, problem.sep)}


def _into_other_networks(problem, mapping):
    """
    The pairs that put a small part of the checkpoint into another network
    of the model, beside the one its bulk filled whole, or that fill a
    small part of the model from another network of the checkpoint, beside
    the one the bulk came from whole
    (:func:`~torch_liberator.rivalsources.foreign_parts`, both ways).
    """
    out = set(foreign_parts(mapping, problem.src, problem.dst, problem.sep))
    inverse = {d: s for s, d in mapping.items()}
    out.update(foreign_parts(inverse, problem.dst, problem.src, problem.sep).values())
    return out


def _rivals_beside_moved(problem, mapping):
    """
    When lists moved (:meth:`~torch_liberator.modesolvers.Problem.moved_parts`), the pairs that the
    solve of what they left finds and the solve with the lists in place does
    not, and that fill a module from another network of the checkpoint's
    names than the one its bulk went to
    (:func:`~torch_liberator.rivalsources.rival_places`): with the list
    gone, what is left of the checkpoint (a stem, a head) fits the other
    network by name alone (a regnet's trunk moved into a children-Sequential
    beside a wider regnet, its stem and fc into the wider one's).
    """
    if not problem.moved_parts()[0]:
        return set()
    whole = problem.isomorphism[0] if problem.isomorphism else {}
    return {s for s in rival_places(mapping, problem.dst, problem.sep)
            if whole.get(s) != mapping[s]}


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
    whole model without a shove stays (the names decide between two exact
    places).
    """
    src, dst = problem.src, problem.dst
    if len(src) <= len(dst) or not mapping:
        return set()
    exact = _unshoved(problem, mapping)
    if exact >= len(dst):
        return set()
    sides, sep = problem.sides(), problem.sep
    if len(sides.dst) >= len(sides.src):
        return set()
    if not sides.ordered:
        return _outside_a_shapes_fit(problem, mapping)
    at = run_fit(sides.dst, 0, len(sides.dst), sides.src)
    if at is None:  # or in another library's nesting, a module of the checkpoint
        at = whole_fit(sides.dst, sides.src)
    if at is None:  # or the first part of one, less its head
        at = head_fit(sides.dst, sides.src)
    if at is not None:
        run = {key for keys in sides.src.keys[at:at + len(sides.dst)] for key in keys}
        return {s for s in mapping if s not in run}
    # or, the other way about, a module of the checkpoint is the model less
    # its head: the pairs from outside it into its place are left out, and
    # so are the head's from a module of the checkpoint that sent them
    span = _less_its_head(sides.dst, sides.src, sep)
    if span is None:
        return _outside_a_shapes_fit(problem, mapping)
    a, b = span
    run = {key for keys in sides.src.keys[a:b] for key in keys}
    place = {key for keys in sides.dst.keys[:b - a] for key in keys}
    out = {s for s, d in mapping.items() if s not in run and d in place}
    if out:
        # the parts of the checkpoint (children of the module around all
        # of it, a wrapper passed) that sent them
        root = len(os.path.commonprefix([key.split(sep)[:-1] for key in problem.src]))
        rivals = {tuple(s.split(sep)[:root + 1]) for s in out}
        out.update(s for s in mapping
                   if s not in run and tuple(s.split(sep)[:root + 1]) in rivals)
    return out


def _outside_a_shapes_fit(problem, mapping):
    """The pairs of ``mapping`` from outside the one module of the
    checkpoint that holds the model's shapes, as many of each
    (:func:`~torch_liberator.modulefit.shapes_fit`): the fit that no order
    finds (keys sorted, or the model's children registered in another
    order: timm's efficientnet_b1 against a torchvision one beside timm's
    b0, whose names are the model's, cross fuzz seed 54 of ``--reorder``)."""
    module = shapes_fit(problem.dst, problem.src, problem.sep)
    if module is None:
        return set()
    inside = module + problem.sep
    return {s for s in mapping if not s.startswith(inside)}


def _less_its_head(whole, side, sep):
    """
    The span of the one module of ``side`` whose groups are the first ones
    of ``whole``, in its nesting or another library's, while ``whole``
    holds more after them (its head, which the module lacks), the module
    at least half of ``whole`` and :data:`~torch_liberator.modulefit.NESTING_FIT_MIN`
    groups; None when there is none or several.
    """
    m = len(whole)
    spans = {span for chain in module_spans(side) for span in chain
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
    spans = {span for chain in module_spans(sides.dst) for span in chain}
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
    parts, part_of = _network_parts(problem, mapping)
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
            return _beside_its_body(problem, mapping, exact, span)
        return _outside_shapes_fit(problem, mapping, exact)
    room = keys_before[at + n] - keys_before[at]
    place = {key: g for g, keys in enumerate(sides.dst.keys[at:at + n]) for key in keys}
    placed, beside = _in_one_place(problem, mapping, place.__contains__)
    if room < placed or (room == placed and not gapped and not _left_unset(
            problem, mapping, beside, common_module(place, problem.sep) + problem.sep)):
        return set()
    src_group = {key: g for g, keys in enumerate(sides.src.keys) for key in keys}
    return {s for s, d in mapping.items() if s in src_group and place.get(d) != src_group[s]}


def _beside_its_body(problem, mapping, exact, span):
    """
    The pairs of ``mapping`` that the module of the model at ``span``
    contradicts, when it is the checkpoint less its head
    (:func:`_less_its_head`) and holds more of the checkpoint than the
    mapping places without a shove: those of the body that go elsewhere,
    and those of the head that go, not to the groups after the body's, but
    into a part of the model beside it that holds more than twice the
    head: another network. Case: a timm rexnet_100 into a model holding it
    headless as ``trunk`` beside a resnet50d as ``head``, whose
    ``head.fc`` strict shoved the rexnet's classifier into (mutation fuzz
    seed 3256 of ``--wide --reorder``). A head of the model's own (beside
    the body, or after a neck) keeps its pairs.
    """
    sides, sep = problem.sides(), problem.sep
    a, b = span
    keys_before, _ = _running_counts(sides.dst, ())
    if keys_before[b] - keys_before[a] <= exact:
        return set()
    body = b - a
    src_group = {key: g for g, keys in enumerate(sides.src.keys) for key in keys}
    dst_group = {key: g for g, keys in enumerate(sides.dst.keys) for key in keys}
    after = range(b, b + len(sides.src) - body)
    head = sum(len(keys) for keys in sides.src.keys[body:])
    place = sep.join(os.path.commonprefix(list(sides.dst.comps[a:b])))
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
    inside, head_prefix = module + sep, head + sep if head else ''

    def in_head(key):  # (head '': the root's own tensors, a ViT's tokens)
        return key.startswith(head_prefix) and sep not in key[len(head_prefix):]

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
    """
    found = _fit_by_shapes(problem)
    if found is None:
        return set()
    inside = found[0] + problem.sep
    outside = {s: d for s, d in mapping.items() if not d.startswith(inside)}
    return set(outside) if _left_unset(problem, mapping, outside, inside) else set()


def _fit_by_shapes(problem):
    """``(module, None)`` for the one module of the model that holds the
    checkpoint's shapes (:func:`~torch_liberator.modulefit.shapes_fit`),
    else ``(module, head)`` for the one that holds them less the
    checkpoint module ``head`` (:func:`~torch_liberator.modulefit.
    body_shapes_fit`), else None."""
    module = shapes_fit(problem.src, problem.dst, problem.sep)
    if module is not None:
        return module, None
    return body_shapes_fit(problem.src, problem.dst, problem.sep)


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


def _network_parts(problem, mapping):
    """The network-sized parts of the model around the mapping (children
    of the module around every place it fills, each holding at least half
    as many keys as the checkpoint), and each source key's part."""
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


def _exact_keys_contest(problem, mapping):
    """
    The pairs that fill a model key whose exact namesake in the checkpoint,
    of the same shape, went nowhere: the two are rivals for that place, and
    the names speak for the other (cross fuzz seed 605: a regnet's
    ``encoder.stem.{0,1}`` taken for the model's ``layers.{0,1}`` by a
    renamed start, while the checkpoint's own ``layers.{0,1}``, a
    flattened mnasnet's stem, are exactly the model's keys).
    """
    src, dst = problem.src, problem.dst
    return {s for s, d in mapping.items()
            if s != d and d in src and d not in mapping
            and shape_relation(src[d], dst[d]) in ('equal', 'units')}


def _namesake_module_free(problem, mapping):
    """
    The pairs under a module of the checkpoint that went to a module of
    another name, while the model holds the module's namesake, every key of
    it unused and its shapes those of the checkpoint module's: two places,
    and the name speaks for the other (mutation fuzz seed 5286 of
    ``--wide``: a distilled LeViT's ``head``, whose ``linear`` the model
    calls ``features_x``, went to the model's ``head_dist``, the same
    shapes under the checkpoint's child names; 7 wrong in embedding).
    """
    src, dst, sep = problem.src, problem.dst, problem.sep
    taken = set(mapping.values())
    sorted_src, sorted_dst = None, None
    verdicts, out = {}, set()
    tops = {k.split(sep, 1)[0] for k in dst}  # (the namesake must start with one)
    for s, d in mapping.items():
        if (s == d or d.endswith(sep + s) or s.endswith(sep + d)
                or s.split(sep, 1)[0] not in tops):
            continue
        a, b = s.split(sep), d.split(sep)
        n = shared_length(a, b)
        if n == 0 or n == min(len(a), len(b)):
            continue
        module = sep.join(a[:-n])
        verdict = verdicts.get(module)
        if verdict is None:
            if sorted_src is None:
                sorted_src, sorted_dst = sorted(src), sorted(dst)
            theirs = sorted_dst[slice(*key_span(sorted_dst, module, sep))]
            mine = sorted_src[slice(*key_span(sorted_src, module, sep))]
            verdict = bool(theirs) and not any(k in taken for k in theirs) and (
                sorted(_shape_of(dst[k]) for k in theirs)
                == sorted(_shape_of(src[k]) for k in mine))
            verdicts[module] = verdict
        if verdict:
            out.add(s)
    return out


def _shape_of(shape):
    return () if shape is None else squeeze_units(shape)


def _prefix_ties(problem, mapping):
    """
    In a thin mapping (:func:`~torch_liberator.coincidence.too_thin`), the
    pairs that give a checkpoint key to the model key of that name under
    one prefix, while the model holds the name under another prefix too,
    unused and of a shape that fits, and no other pair of a module that
    fits whole goes under the one prefix more than under the other: two places as
    good, and nothing to choose between them (mutation fuzz seed 4159 of
    ``--wide``: a rexnet's ``stem.conv`` and ``stem.bn``, keys sorted, into
    a model holding a rexnet cut to its stem as ``layers`` and a regnet as
    ``extractor``, whose stems are of one shape; embedding took the
    regnet's, and with the rexnet's ``head.fc`` shoved into the regnet's,
    its stem too).
    """
    src, dst, sep = problem.src, problem.dst, problem.sep
    if not mapping or not too_thin(len(mapping), len(src), len(dst)):
        return set()
    prefix = {s: d[:-len(s) - len(sep)] for s, d in mapping.items()
              if d != s and d.endswith(sep + s)}
    if not prefix:
        return set()
    taken = set(mapping.values())
    lengths = {s.count(sep) + 1 for s in prefix}
    rivals = {}  # source key -> the other prefixes holding its name, unused
    for key, shape in dst.items():
        if key in taken:
            continue
        comps = key.split(sep)
        for n in lengths:
            name = sep.join(comps[-n:])
            if len(comps) > n and name in prefix and shape_relation(
                    src[name], shape) in ('equal', 'units'):
                rivals.setdefault(name, set()).add(sep.join(comps[:-n]))
    if not rivals:
        return set()
    shoved = {s.rpartition(sep)[0] for s, d in mapping.items()
              if shape_relation(src[s], dst[d]) not in ('equal', 'units')}
    support = {}  # prefix -> pairs under it of modules that fit whole (a shove is no support)
    for s, d in mapping.items():
        if s not in rivals and s.rpartition(sep)[0] not in shoved:
            for up in enclosing_modules(d, sep):
                support[up] = support.get(up, 0) + 1
    return {s for s, others in rivals.items()
            if any(support.get(other, 0) >= support.get(prefix[s], 0) for other in others)}


def _thin_and_unnamed(problem, mapping):
    """
    In a mapping that places under a tenth of the smaller side (a twentieth
    of the larger), the pairs whose names do not agree
    (:func:`~torch_liberator.coincidence.thin_unnamed_pairs`) and that the
    structure mode does not make as well, and the pairs whose names agree
    but that the structure mode contradicts (it gives the key, or the
    place, to another, or puts the other modules beside the key's module
    under another parent: torchvision's efficientnet_b0 stem BatchNorm
    ``features.0.1`` is a mobilenet_v2's by name and shape, but its
    neighbour ``features.0.0`` goes to timm's ``conv_stem``, cross fuzz
    seed 3585; or fills the place's neighbours from another module: the
    mirror, the checkpoint's efficientnet_b0 beside timm's mobilenetv2,
    whose ``conv_stem`` fills the model's ``features.0.0``, cross fuzz seed
    1525 of ``--wide``). List positions alone (``features.0.0``,
    ``features.0.1`` against ``stem.0``, ``stem.1``) meet in networks of
    one design (torchvision's ConvNeXt and timm's, whose stems the
    structure mode aligns with the rest) and in networks of two (a
    mobilenet_v2's stem and a regnet's, which it does not; cross fuzz
    seeds 235, 1089, 1541); and two libraries may name two networks alike
    (a DeiT's ``blocks.0.mlp.fc1`` beside a torchvision ConvNeXt, whose
    second stage is timm's ``stages.1.blocks.0.mlp.fc1`` of the same
    shapes: seed 2910). The structure mode is the witness because it reads
    the order of the rest of both networks, which the names cannot reach.
    """
    src, dst = problem.src, problem.dst
    if not mapping or not too_thin(len(mapping), len(src), len(dst)) or not problem.has_shapes():
        return set()
    witness = problem.solve('structure')[0]
    taken = {d: s for s, d in witness.items()}
    sep = problem.sep
    unnamed = {s for s, d in mapping.items() if not names_agree(s, d, sep)}

    def owner(key):  # the module holding the key's module
        return key.rsplit(sep, 2)[0] if key.count(sep) >= 2 else ''

    owners = {}  # source module holding a module -> where the witness puts their keys
    feeders = {}  # destination module holding a module -> whence the witness fills it
    for s, d in witness.items():
        owners.setdefault(owner(s), set()).add(owner(d))
        feeders.setdefault(owner(d), set()).add(owner(s))
    return {s for s, d in mapping.items()
            if (witness.get(s) != d if s in unnamed
                else s in witness and witness[s] != d or taken.get(d, s) != s
                or owner(d) not in owners.get(owner(s), {owner(d)})
                or owner(s) not in feeders.get(owner(d), {owner(s)}))}


def _other_design_by_shapes(problem, mapping):
    """
    Between key lists of which one lost its registration order (sorted
    keys, as safetensors stores them, or reversed), or in a mapping of
    under a quarter of the smaller side (a checkpoint of a network's later
    stages and head), the pairs whose names do not agree
    (:func:`~torch_liberator.coincidence.names_agree`, nor one key end the
    other) into a part of the
    model of another design than the checkpoint
    (:func:`~torch_liberator.coincidence.design_share` under
    :data:`~torch_liberator.coincidence.ONE_DESIGN_SHARE`), or of less
    of its design than another part. A part is the model below its
    wrappers or, when it holds two or more, one of its network-sized
    children (each holding at least half as many keys as the
    checkpoint). Neither names nor positions speak for such pairs, only
    shapes that met by chance: a mobilenet_v2 checkpoint, keys sorted,
    put 31 tensors into an efficientnet_b0 by the shapes of the blocks
    the two designs share; a timm ConvNeXt gave its ``head.fc``
    (``[1000, 768]``) and ``head.norm`` to the ``head`` and ``norm`` of a
    Swin beside a torchvision ConvNeXt cut before its classifier (cross
    fuzz seed 7185); the last 60 % of a mobilenet_v2's keys, in order, put
    an inverted residual block and the last BatchNorm into an mnasnet0_5
    (23 tensors). A network of the checkpoint's design keeps them: a
    timm ViT's ``patch_embed.proj``, ``pos_embed`` and head, each the one
    place of its shape in torchvision's.
    """
    src, dst, sep = problem.src, problem.dst, problem.sep
    if not mapping or not problem.has_shapes() or (
            problem.sides().ordered and 4 * len(mapping) >= min(len(src), len(dst))):
        return set()
    unnamed = [s for s, d in mapping.items() if not names_agree(s, d, sep)
               and not d.endswith(sep + s) and not s.endswith(sep + d)]
    if not unnamed:
        return set()
    parts = network_parts(dst, len(src), sep)
    if len(parts) < 2:
        parts = {'': list(dst)}
    shares = {prefix: design_share(src.values(), (dst[k] for k in keys))
              for prefix, keys in parts.items()}
    best = max(shares.values())
    weak = [prefix for prefix, share in shares.items()
            if share < ONE_DESIGN_SHARE or share < best]
    return {s for s in unnamed if any(mapping[s].startswith(prefix) for prefix in weak)}


def _other_design_beside_own(problem, mapping):
    """
    The pairs drawn from a network-sized part of the checkpoint (a child,
    below the wrappers, holding at least half as many keys as the model)
    of another design than the model
    (:func:`~torch_liberator.coincidence.design_share` under
    :data:`~torch_liberator.coincidence.ONE_DESIGN_SHARE`), when another
    such part is of the model's design and the model is one network: the
    checkpoint holds the model's network, and a stem or a block that the
    other shares with it in names or shapes is no evidence. A timm
    mobilenetv3_large_100 beside a torchvision mobilenet_v3_small, keys
    sorted, into torchvision's mobilenet_v3_large: the small one's stem and
    first depthwise convolution, named as the model's, went there (cross
    fuzz seed 4510 of ``--wide``: 40 wrong in the name modes, 12 in
    ``structure`` and ``auto``).
    """
    weak = problem.other_designs()[1] if mapping else ()
    return {s for s in mapping if s.startswith(weak)} if weak else set()


def _other_design_beside_the_checkpoints(problem, mapping):
    """
    The mirror of :func:`_other_design_beside_own`: the pairs into a
    network-sized part of the model (a child, below the wrappers, holding
    at least half as many keys as the checkpoint) of another design than
    the checkpoint, when another such part is of the checkpoint's design
    and the checkpoint is one network. The model holds the checkpoint's
    network, and the names or shapes another network shares with it are no
    evidence. A timm mobilenetv2_100 cut short, into a model holding timm's
    efficientnet_b0 (the checkpoint's very names) beside torchvision's
    mobilenet_v2: the stem and first blocks, of one shape in both designs,
    went to the efficientnet by name (cross fuzz seed 4264 of ``--wide
    --reorder``: 63-73 wrong in every general mode).
    """
    weak = problem.other_designs()[0] if mapping else ()
    return {s for s, d in mapping.items() if d.startswith(weak)} if weak else set()


def _against_shared_names(problem, mapping):
    """
    The pairs placed by position alone between two networks whose shared
    names speak against one design
    (:func:`~torch_liberator.coincidence.against_shared_names`): a vgg11
    into an AlexNet, whose ``classifier.3`` and ``classifier.4`` (``[4096,
    4096]``) and ``features.8`` and ``features.10`` (``[256, 256, 3, 3]``)
    the tree modes and ``structure`` paired while ``features.{0,3,6,8}``
    of both differ in shape.
    """
    return against_shared_names(mapping, problem.src, problem.dst, problem.sep)


def _thin_across_kinds(problem, mapping):
    """
    In a thin mapping (:func:`~torch_liberator.coincidence.too_thin`), the
    pairs whose shared names pass through two modules of different kinds
    (:func:`~torch_liberator.coincidence.kinds_apart`): a poolformer's
    ``stages.1.blocks.0.mlp.fc1``, keys sorted, is not a tiny_vit's of that
    name and shape beside the model's poolformer stem, whose block holds
    ``attn`` and ``local_conv`` where the poolformer's holds norms and
    layer scales (mutation fuzz seed 1304 of ``--wide``: 8 wrong in every
    tree mode and ``auto``, the structure mode, reading no order in sorted
    keys, making them too); and, when every module left must be shoved in
    part, the rest: no module fits as it is, and the names met by chance
    (the poolformer's ``head.norm`` and ``head.fc`` into the tiny_vit's,
    512 wide into 320; a rexnet's ``head.fc`` into a regnet's, whose bias
    of 1000 fits); and a module shoved under another name outside the model
    module that holds every pair that fits (a tiny_vit's ``head.fc``, 320
    wide, into a repvgg's ``trunk.head.fc`` beside the model's tiny_vit
    stem, which took the rest: mutation fuzz seed 4952 of ``--wide``). A
    mapping that places more keeps such a head: a detector's class head of
    another size, beside the backbone it fills, is shoved as published.
    """
    src, dst = problem.src, problem.dst
    if not mapping or not too_thin(len(mapping), len(src), len(dst)) or not problem.has_shapes():
        return set()
    sep = problem.sep
    out = kinds_apart(mapping, src, dst, sep)
    shoved = {s.rpartition(sep)[0] for s, d in mapping.items()
              if shape_relation(src[s], dst[d]) in ('same_rank', 'different_rank')}
    if all(s.rpartition(sep)[0] in shoved for s in mapping if s not in out):
        out.update(mapping)
        return out
    # a module shoved under another name outside the model module that
    # holds every pair that fits: a head lent by its name to another network
    fitting = [d for s, d in mapping.items()
               if s not in out and s.rpartition(sep)[0] not in shoved]
    home = common_module(fitting, sep)
    if home:
        prefix = home + sep
        out.update(s for s, d in mapping.items() if s != d and s.rpartition(sep)[0] in shoved
                   and not d.startswith(prefix))
    return out


def _positions_checked(problem, mapping):
    """
    The pairs that rest on a list position which the two lists holding it
    give to different layers
    (:func:`~torch_liberator.listpositions.positions_disagree`: vgg11's
    ``features.8`` is not vgg11_bn's), or on a position in two lists of
    which one is a later part of a list cut in parts
    (:func:`~torch_liberator.listparts.later_part_modules` on the
    whole trees: the model's ``blocks.blocks.0`` after ``blocks.stem.{0,1}``
    is not the ``blocks.blocks.0`` of a checkpoint wrapped as ``blocks``,
    though the keys are identical, mutation fuzz seed 19398; nor, once the
    moved parts took ``stage4.0`` and the rest looks whole, is the model's
    ``stage4.blocks.1`` the checkpoint's ``stage4.1``, seed 18033); for the
    modes that read positions as names.
    """
    out = set(positions_disagree(mapping, problem.src, problem.dst, problem.sep,
                                 lists=problem.lists()))
    modules = {(s.rpartition(problem.sep)[0], d.rpartition(problem.sep)[0])
               for s, d in mapping.items()}
    if not any(_in_unequal_or_cut_lists(problem, a, b) for a, b in modules):
        return out  # (the cheap test first: no position numbers lists of two lengths)
    tree1, tree2 = problem.trees()
    nodes = {s: tree1.node_of_key(s) for s in mapping}
    pairs = [(nodes[s], tree2.node_of_key(d), 0) for s, d in mapping.items()]
    modules = later_part_modules(tree1, tree2, (tree1.root, tree2.root), pairs)
    out.update(s for s, a in nodes.items() if tree1.parent[a] in modules)
    return out


def _positions_witnessed(problem, mapping):
    """
    Where a pair joins two lists of other labels
    (:func:`~torch_liberator.listpositions.relabelled`), the pairs between
    two lists at an offset that every structure pair between them refutes
    (:func:`~torch_liberator.listpositions.witnessed_offsets`): a list
    renumbered gives one label to two layers. Lists of one labelling are
    not read (and the structure mode not run for them).
    """
    if not (mapping and relabelled(mapping, problem.lists(), problem.sep)
            and problem.has_shapes()):
        return set()  # (lists of one labelling: no offset to find)
    witness = problem.solve('structure')[0]
    return {k for k, kept in witnessed_offsets(mapping, witness, problem.sep).items() if not kept}


def _against_list_shapes(problem, mapping):
    """
    The pairs between two lists of other lengths at another offset than
    the one their items' kernel shapes show, or for alike items a sibling
    list's (:func:`~torch_liberator.listpositions.against_list_shapes`:
    an FPN's ``inner_blocks`` one level on, its ``layer_blocks`` with
    them).
    """
    if not problem.has_shapes():
        return set()
    return against_list_shapes(mapping, problem.src, problem.dst, problem.sep,
                               lists=problem.lists(), items=problem.list_items())


def _free_twin_items(problem, mapping):
    """
    The pairs into (or out of) a list item whose pairs could move into an
    empty twin of its kernel shapes in its list, unless the names say them
    (:func:`~torch_liberator.listpositions.free_twin_items`: HF's Swin-T
    block 5 is not torchvision's Swin-S block 17 by its place before the
    downsampling).
    """
    if not problem.has_shapes():
        return set()
    return free_twin_items(mapping, problem.src, problem.dst, problem.sep)


def _across_other_cuts(problem, mapping):
    """
    The pairs between two runs of alike items, in lists of other names,
    that rest on how a run is cut into parts: at other places in two cut
    runs, or where a cut run's order is lost
    (:func:`~torch_liberator.listpositions.across_other_cuts`: a stage's
    two-block part is not the model's two-block part by its size).
    """
    if not problem.has_shapes():
        return set()
    return across_other_cuts(mapping, problem.src, problem.dst, problem.sep,
                             items=problem.list_items())


def _in_unequal_or_cut_lists(problem, src_module, dst_module):
    """Whether a position that the two module paths share, counted from
    their ends up to their first disagreement, numbers lists of different
    lengths, or lists of differing names that each have a list beside them
    (parts of lists cut in parts)."""
    sep = problem.sep
    lists1, lists2 = problem.lists()
    a, b = src_module.split(sep), dst_module.split(sep)
    for k in range(1, min(len(a), len(b)) + 1):
        if a[-k] != b[-k]:
            return False
        if not a[-k].isdigit():
            continue
        list1, list2 = sep.join(a[:-k]), sep.join(b[:-k])
        if len(lists1.get(list1, ())) != len(lists2.get(list2, ())):
            return True
        if (k < min(len(a), len(b)) and a[-k - 1] != b[-k - 1]
                and _beside_another_list(list1, lists1, sep)
                and _beside_another_list(list2, lists2, sep)):
            return True
    return False


def _beside_another_list(path, lists, sep):
    """Whether the module holding the list ``path`` holds another list."""
    parent = path.rpartition(sep)[0]
    return any(other != path and other.rpartition(sep)[0] == parent for other in lists)


def _swaps_left_out(problem, mapping):
    """
    The shoves into a model module of the checkpoint part's names while an
    empty model module holds the part's tensors exactly and an unused part
    of the checkpoint the module's
    (:func:`~torch_liberator.swappednames.swapped_shoves`: a name that
    means two modules); for every mode, the exact ones included.
    """
    return swappednames.swapped_shoves(mapping, problem.src, problem.dst, problem.sep)


def _shoves_beside_exact_fits(problem, mapping):
    """
    The pairs into a model module, one of them shoved, while an unused
    module of the checkpoint holds the model module's tensors exactly
    (:func:`~torch_liberator.swappednames.shoves_beside_exact_fits`), and
    the swapped names of the ``swaps_left_out`` check: in the tree modes a pair
    that must be shoved never beats one that fits, and the name alone does
    not say which is meant.
    """
    out = set(swappednames.shoves_beside_exact_fits(mapping, problem.src, problem.dst, problem.sep))
    out.update(swappednames.swapped_shoves(mapping, problem.src, problem.dst, problem.sep))
    return out


def _one_network_in_two(problem, mapping):
    """
    The pairs into two network-sized parts of the model (children of the
    module around every place the mapping fills, each holding at least
    half as many keys as the checkpoint) when, in the checkpoint's
    registration order, the mapping leaves one part for the other and
    comes back: one network of the checkpoint does not go to two copies
    of itself turn about, and which share is right the order cannot say.
    A torchvision mobilenet_v2 with levels inserted, into a model holding
    timm's mobilenetv2_100 beside a torchvision mnasnet0_5: the structure
    mode sent its stem and first blocks into the mobilenet, blocks 4 and
    14 into the mnasnet's blocks of the same design, block 17 and the last
    convolution back into the mobilenet and the last BatchNorm and the
    classifier into the mnasnet's (cross fuzz seed 3955: 20 wrong of 33).
    A checkpoint of both networks fills each part in one run, and so does
    one network split between two parts (SSD's VGG). With the order lost
    (keys sorted), the items of one list sent into namesake lists of two
    parts (:func:`_list_in_two_parts`) tell the same.
    """
    if not mapping:
        return set()
    sep = problem.sep
    parts, part_of = _network_parts(problem, mapping)
    if len(parts) < 2:
        return set()
    if not problem.sides().ordered:
        return _list_in_two_parts(mapping, part_of, parts, sep)
    left, last = set(), None
    for s in problem.src:
        part = part_of.get(s)
        if part not in parts or part == last:
            continue
        if part in left:
            return {k for k, p in part_of.items() if p in parts}
        if last is not None:
            left.add(last)
        last = part
    return set()


def _first_list(key, sep):
    """``(list path, label)`` of the first list item on ``key``'s path
    (``features.layer2.2.conv1.weight``: ``('features.layer2', 'layer2')``),
    or None."""
    comps = key.split(sep)
    for k in range(1, len(comps) - 1):
        if comps[k].isdigit():
            return sep.join(comps[:k]), comps[k - 1]
    return None


def _list_in_two_parts(mapping, part_of, parts, sep):
    """With the order lost: the pairs that send the items of one list of
    the checkpoint into a list of its name in another network-sized part
    of the model than the one most of the mapping fills (a resnet101,
    keys sorted, into its own copy with ``layer2`` cut to two blocks
    beside an fcn_resnet50: ``layer2.2`` and ``layer2.3`` went by their
    names into the fcn's backbone, 36 wrong, mutation fuzz seed 9693 of
    ``--wide``). A list split between two parts under other names (SSD's
    VGG) is not one list in two namesakes."""
    filled = Counter(part_of[s] for s in mapping if part_of[s] in parts)
    if len(filled) < 2:
        return set()
    main = max(filled, key=lambda part: (filled[part], part))
    if filled[main] * 2 <= sum(filled.values()):
        return set()
    into = {}
    for s, d in mapping.items():
        found, there = _first_list(s, sep), _first_list(d, sep)
        if found and there and found[1] == there[1] and part_of[s] in parts:
            into.setdefault(found[0], {}).setdefault(part_of[s], []).append(s)
    out = set()
    for by_part in into.values():
        if main in by_part and len(by_part) > 1:
            out.update(s for part, keys in by_part.items() if part != main for s in keys)
    return out


def _one_module_from_two(problem, mapping):
    """
    The pairs that fill a model module from a second checkpoint module
    while another checkpoint module holds every child the mapping fills it
    with: the pairs keep their child names (``branch1``, ``branch2``), so
    each says which checkpoint module the model module is, and two
    answers cannot both be right. The one whose module has all those
    children is kept, the other's pairs are left out. A shufflenet's
    stage cut in parts on both sides, the names colliding: the
    checkpoint's block 2 is ``base.0`` (``branch2`` only), the model's
    block 0 is ``base.0`` (``branch1`` and ``branch2``); the structure mode
    filled it with block 0's ``branch1`` (``extractor.0``) and block 2's
    ``branch2`` by its name (18 wrong). A pair speaks for the module just
    above the first word its two paths end in (``branch1`` of
    ``...extractor.0.branch1.0``), not higher: ``blocks.blocks.3.conv``
    and ``blocks.3.conv`` say that ``blocks.blocks.3`` is ``blocks.3``,
    not that the checkpoint's ``blocks`` is the model's root. Only word
    children count: a list cut in parts keeping its numbers fills one list
    from two parts. When both checkpoint modules have all those children,
    the one split between two model modules is the one left out, and when
    both are split, the one that gives no kernel there (a norm follows its
    layer): a googlenet flattened, into one whose children are registered
    in another order, swapped the BatchNorms (of one width) of ``3b``'s
    ``branch1`` and ``5b``'s ``branch4.1``, whose convs went to their
    places (mutation fuzz seed 1188 of ``--joined --wide --reorder``: 10
    wrong in structure).
    """
    sep = problem.sep
    modules = module_pairs(mapping, sep)  # (checkpoint module, model module) -> source keys
    sources = {}  # model module -> {checkpoint module: source keys}
    for (a, b), keys in modules.items():
        while a and b:  # up the module components both paths end in, to the first word
            a, _, x = a.rpartition(sep)
            b, _, y = b.rpartition(sep)
            if x != y:
                break
            if not x.isdigit():
                sources.setdefault(b, {}).setdefault(a, set()).update(keys)
                break
    out = set()
    for dst_mod, by_src in sources.items():
        if len(by_src) < 2:
            continue
        tree = problem.trees()[0]
        skip = len(dst_mod.split(sep)) if dst_mod else 0
        filled = {mapping[s].split(sep)[skip] for keys in by_src.values() for s in keys}
        whole = [m for m in by_src if _holds_children(tree, m, filled)]
        if len(whole) > 1:
            # ... and of those, the one whose other children went nowhere
            # else: a checkpoint module split between two model modules
            # lent one of them a child by its shapes alone; when all are
            # split (two swapped norms of one width), the one that gives
            # a kernel here: a norm follows its layer
            unsplit = [m for m in whole if not _split_elsewhere(mapping, m, dst_mod, sep)]
            whole = unsplit or [m for m in whole
                                if any(is_kernel(problem.src[s]) for s in by_src[m])]
        if len(whole) == 1:
            out.update(s for m, keys in by_src.items() if m != whole[0] for s in keys)
    return out


def _split_elsewhere(mapping, src_mod, dst_mod, sep):
    """Whether a key below checkpoint module ``src_mod`` is paired outside
    model module ``dst_mod``."""
    below, into = src_mod + sep, dst_mod + sep if dst_mod else ''
    return any(s.startswith(below) and not d.startswith(into) for s, d in mapping.items())


def _holds_children(tree, path, labels):
    """Whether the module at ``path`` of ``tree`` (a KeyTree) has a child
    of every label."""
    node = tree.root
    for comp in path.split(tree.sep) if path else ():
        node = tree.child(node, comp)
        if node is None:
            return False
    return all(tree.child(node, label) is not None for label in labels)


def _crossed_norms(problem, mapping):
    """
    The norms sent into the unit of the model that another checkpoint
    unit's kernels went to, while that unit holds a norm of their path and
    shape (:func:`~torch_liberator.crossings.crossed_norm_pairs`: a norm
    follows its layer, and order and shapes alone crossed two of one
    width).
    """
    return crossed_norm_pairs(mapping, problem.src, problem.dst, problem.sep)


def _crossed_ordinals(problem, mapping):
    """
    The pairs of two sibling modules of one shape numbered by their names
    (``ln_1``, ``ln_2``) that went to two siblings numbered the other way
    round (``norm2``, ``norm1``): names and order disagree
    (:func:`~torch_liberator.crossings.crossed_ordinal_pairs`).
    """
    return crossed_ordinal_pairs(mapping, problem.src, problem.dst, problem.sep)


def _crossed_peers(problem, mapping):
    """
    The pairs of two twin units (``conv1`` and ``downsample`` of a regnet
    block, one shape) that took each other's places against every other
    parent holding units of their names
    (:func:`~torch_liberator.crossings.crossed_peer_pairs`: the block
    registered them in another order, and order alone crossed them).
    """
    return crossed_peer_pairs(mapping, problem.src, problem.sep)


def _strayed(problem, mapping):
    """
    The pairs of a module sent away from its siblings' place, which holds
    one free child of its tensors
    (:func:`~torch_liberator.crossings.strayed_pairs`).
    """
    return strayed_pairs(mapping, problem.src, problem.dst, problem.sep)


def _crossed_twin_norms(problem, mapping):
    """
    The norms sent, under another name, to a place whose position among its
    block's norms of that shape is not theirs among their block's
    (:meth:`~torch_liberator.alignment.StructureSides.twin_norms_crossed`: HF's Swin V2
    registers its norms after their layers, torchvision's before, and
    order crossed them).
    """
    if not problem.has_shapes():
        return set()
    return problem.sides().twin_norms_crossed(mapping)


#: check name -> ``finder(problem, mapping)``, the source keys it leaves out
CHECKS: Dict[str, Callable] = {
    'crossed_norms': _crossed_norms,
    'crossed_ordinals': _crossed_ordinals,
    'crossed_peers': _crossed_peers,
    'crossed_twin_norms': _crossed_twin_norms,
    'strayed': _strayed,
    'without_rivals': _without_rivals,
    'thin_across_kinds': _thin_across_kinds,
    'against_shared_names': _against_shared_names,
    'other_design_by_shapes': _other_design_by_shapes,
    'other_design_beside_own': _other_design_beside_own,
    'other_design_beside_the_checkpoints': _other_design_beside_the_checkpoints,
    'without_lone_shoves': _without_lone_shoves,
    'shoved_beside_a_fit': _shoved_beside_a_fit,
    'by_name_alone': _by_name_alone,
    'blocks_kept_whole': _blocks_kept_whole,
    'away_from_their_fit': _away_from_their_fit,
    'into_other_networks': _into_other_networks,
    'rivals_beside_moved': _rivals_beside_moved,
    'short_of_an_exact_run': _short_of_an_exact_run,
    'beside_an_exact_run': _beside_an_exact_run,
    'beside_a_whole_fit': _beside_a_whole_fit,
    'exact_keys_contest': _exact_keys_contest,
    'prefix_ties': _prefix_ties,
    'namesake_module_free': _namesake_module_free,
    'thin_and_unnamed': _thin_and_unnamed,
    'positions_checked': _positions_checked,
    'positions_witnessed': _positions_witnessed,
    'against_list_shapes': _against_list_shapes,
    'free_twin_items': _free_twin_items,
    'across_other_cuts': _across_other_cuts,
    'swaps_left_out': _swaps_left_out,
    'shoves_beside_exact_fits': _shoves_beside_exact_fits,
    'one_network_in_two': _one_network_in_two,
    'one_module_from_two': _one_module_from_two,
    'filled_from_their_fit': _filled_from_their_fit,
}
