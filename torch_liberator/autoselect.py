"""
``auto``: which mode's answer to trust, and which of its pairs.

The exact modes are tried first, cheapest first; one that explains all it
can is taken as it is. Otherwise the general modes run on one shared
:class:`~torch_liberator.modesolvers.Problem`, the one placing the most
tensors whose shapes fit is chosen, and the others act as witnesses: a pair
that another mode contradicts is left out as ambiguous (:func:`solve_auto`).

Example:
    >>> from torch_liberator.autoselect import AUTO_EXACT, AUTO_GENERAL, VOUCHED_SHARE
    >>> AUTO_EXACT, AUTO_GENERAL
    (('strict', 'module-hack', 'prefix-hack'), ('isomorphism', 'embedding', 'structure'))
    >>> round(VOUCHED_SHARE, 3)
    0.333
"""
from typing import Dict, Tuple

from torch_liberator.coincidence import names_agree, thin_unnamed_pairs
from torch_liberator.listpositions import witnessed_offsets
from torch_liberator.modesolvers import Problem
from torch_liberator.rivalsources import rival_pairs
from torch_liberator.shapes import shape_relation, squeeze_units

__all__ = ['AUTO_EXACT', 'AUTO_GENERAL', 'NAME_MODES', 'VOUCHED_SHARE', 'solve_auto']

#: the modes ``auto`` takes when one maps every key of the smaller side (or
#: every key of one side that has a tensor of its shape on the other)
AUTO_EXACT = ('strict', 'module-hack', 'prefix-hack')

#: the modes ``auto`` otherwise compares, in order of preference on ties
AUTO_GENERAL = ('isomorphism', 'embedding', 'structure')

#: the least share of a name mode's pairs that names or the structure mode
#: must vouch for (:func:`solve_auto`); below it the mode does not compete
VOUCHED_SHARE = 1 / 3


def _fitting_pairs(mapping, src, dst):
    """How many pairs hold tensors of one shape (up to size-1 dimensions),
    or of unknown shape."""
    return sum(shape_relation(src[s], dst[d]) in ('equal', 'units', 'unknown')
               for s, d in mapping.items())


def _kernels_reshaped(mapping, src, dst):
    """How many pairs join two kernels of other spatial sizes (a 3x3
    convolution and an 11x11 one): a shove that no change of width or
    class count explains."""
    count = 0
    for s, d in mapping.items():
        a, b = src[s], dst[d]
        if a is not None and b is not None and len(a) == len(b) > 2 and a[2:] != b[2:]:
            count += 1
    return count


def _places_all_it_can(mapping, src, dst):
    """
    True when ``mapping`` pairs every key of one side that has a tensor of
    its shape (up to size-1 dimensions, or unknown) anywhere on the other:
    no mapping can then hold more pairs whose shapes fit (a classifier's
    ``fc``, which a detector lacks, is no place left open).
    """
    for keys, mapped, other in ((src, mapping.keys(), dst), (dst, set(mapping.values()), src)):
        shapes = {None if shape is None else squeeze_units(shape) for shape in other.values()}
        if all(key in mapped or (shape is not None and None not in shapes
                                 and squeeze_units(shape) not in shapes)
               for key, shape in keys.items()):
            return True
    return False


#: the general modes in which names decide
NAME_MODES = AUTO_GENERAL[:2]


def _vouched(mapping, structure, sep):
    """How many pairs of a name mode's ``mapping`` names or the
    ``structure`` mode's mapping vouch for: the structure mode's own
    pairs, pairs of agreeing names
    (:func:`~torch_liberator.coincidence.names_agree`) but for list
    positions alone (``3.weight`` and ``3.weight`` in two lists numbered
    from other starts), and pairs between two lists at the offset every
    structure pair between them keeps, under the same names below the
    items (:func:`~torch_liberator.listpositions.witnessed_offsets`)."""
    in_step = witnessed_offsets(mapping, structure, sep)
    count = 0
    for s, d in mapping.items():
        modules = s.split(sep)[:-1]
        count += (structure.get(s) == d or in_step.get(s, False)
                  or (names_agree(s, d, sep) and not (modules and all(map(str.isdigit, modules)))))
    return count


def _disputed(mapping, others):
    """
    ``{source key: destination keys}`` for the pairs of ``mapping`` that
    another mode's mapping contradicts: it sends the key elsewhere, or
    gives its place to another key.
    """
    disputed = {}
    for other in others:
        owner = {d: s for s, d in other.items()}
        for s, d in mapping.items():
            alt, rival = other.get(s, d), owner.get(d, s)
            if alt != d or rival != s:
                disputed.setdefault(s, {d}).add(alt)
    return disputed


def solve_auto(problem: Problem) -> Tuple[Dict[str, str], Dict[str, Tuple[str, ...]], str]:
    """
    An exact mode when it explains everything, else the best general one,
    less what the other general modes contradict.

    The exact modes (:data:`AUTO_EXACT`, in order) are taken as soon as one
    maps every key of the smaller side, finds nothing ambiguous and pairs
    only tensors whose shapes fit: nothing can map more. So is one that
    maps something, every key of one side that has a tensor of its shape
    (up to size-1 dimensions) on the other (all but a classifier's head
    that a detector lacks), nothing ambiguous, only tensors whose shapes
    fit, while no later exact mode pairs more keys (by shoving what has no
    place of its shape). When the first
    that maps every key must shove some pairs (a 1000-class head into a
    10-class one, or a wider model under the same names), it competes with
    the general modes below, first on ties. Otherwise each mode of :data:`AUTO_GENERAL` runs
    (``structure`` only when shapes are known) and the best is the one that
    places the most tensors whose shapes fit (equal, or equal up to size-1
    dimensions); ties go to the one that joins fewer kernels of other
    spatial sizes (vgg11's 3x3 convolutions into AlexNet's 11x11 and 5x5
    ones by name), then to the earlier mode (names before structure). A
    pair whose tensors must be shoved counts for nothing here: it is weaker
    evidence than a fitting one. Pairs that join two differently named
    modules while the two models otherwise share their names
    (:func:`~torch_liberator.alignment.find_name_conflicts`) are left out of
    every mode's mapping before it is scored. Every mode leaves ambiguous
    keys out, so placing more means recovering more, not guessing more.

    The modes are independent witnesses: a pair of the best mapping that
    another mode contradicts (it sends the key elsewhere, or gives the place
    to another key) is left out and reported as ambiguous. Two right answers
    never disagree, so this costs nothing where every mode is right, and
    keeps one mode's mistake from reaching the model. Given shapes, a name
    mode of which under :data:`VOUCHED_SHARE` of the pairs are vouched for
    (by agreeing names, not list positions alone; by the structure mode's
    pairs; by the offset at which it pairs two lists' items, under the
    same names below them) does not compete: the tree and the shapes placed
    the rest, which the structure mode reads better. And a pair of a
    chosen name mode that the structure mode did not make is left out
    when it joins two lists at an offset that every structure pair between
    them contradicts (:func:`~torch_liberator.listpositions.witnessed_offsets`:
    a list renumbered). When a witness fills
    a contradicted place from another copy of what fills the rest (a
    checkpoint's caformer stem, where the best mode took the stem of the
    poolformer beside it and its blocks), the copy that holds such a place
    of its own is a rival (:func:`~torch_liberator.rivalsources.rival_pairs`)
    and its pairs are left out too. When they contradict
    most of the best mapping, they saw the checkpoint in different places
    (a network's children-Sequential beside a sibling of its names: the
    names lead to the sibling, the order to the children), and a pair only
    some of them made is no evidence either: only the pairs every mode
    made stay. And in registration
    order, in a general mode's mapping that holds under a tenth of the
    smaller side, the pairs whose names do not agree
    (:func:`~torch_liberator.coincidence.thin_unnamed_pairs`: the stem of a
    resnet in a densenet) are chance and left out.

    Returns:
        Tuple: the mapping, the ambiguous keys, and the mode used.

    Example:
        >>> from torch_liberator.autoselect import solve_auto
        >>> from torch_liberator.modesolvers import Problem
        >>> mapping, ambiguous, mode = solve_auto(Problem({'module.w': (3,)}, {'w': (3,)}, '.'))
        >>> mapping, mode
        ({'module.w': 'w'}, 'module-hack')
    """
    src, dst = problem.src, problem.dst
    solve = problem.solve
    smaller = min(len(src), len(dst))
    candidates = []
    for index, mode in enumerate(AUTO_EXACT):
        mapping, ambiguous = solve(mode)
        if (mapping and not ambiguous and len(mapping) < smaller
                and _fitting_pairs(mapping, src, dst) == len(mapping)
                and _places_all_it_can(mapping, src, dst)
                and all(len(solve(later)[0]) <= len(mapping) for later in AUTO_EXACT[index + 1:])):
            # all that has a place of its shape, and no later exact mode
            # pairs more (by shoving what has none)
            return mapping, ambiguous, mode
        if len(mapping) == smaller and not ambiguous:
            fitting = _fitting_pairs(mapping, src, dst)
            if fitting == len(mapping):
                return mapping, ambiguous, mode
            # names explain everything, but some pairs must be shoved: the
            # general modes may place more tensors whose shapes fit
            candidates.append((fitting, mode, mapping, ambiguous))
            break
    has_shapes = problem.has_shapes()
    for mode in AUTO_GENERAL:
        if mode == 'structure' and not has_shapes:
            continue
        mapping, ambiguous = solve(mode)
        conflicts = problem.sides().name_conflicts(mapping)
        mapping = {k: v for k, v in mapping.items() if k not in conflicts}
        candidates.append((_fitting_pairs(mapping, src, dst), mode, mapping, ambiguous))
    structure = next((c[2] for c in candidates if c[1] == 'structure'), None)
    if structure is not None:
        for index, (fitting, mode, mapping, ambiguous) in enumerate(candidates):
            if (mode in NAME_MODES
                    and _vouched(mapping, structure, problem.sep) < VOUCHED_SHARE * len(mapping)):
                # the tree and the shapes placed it, which structure reads better
                candidates[index] = (-1, mode, mapping, ambiguous)
    # the first of the best; among equals, the one that reshapes fewer
    # kernels (vgg11 into AlexNet: two biases fit by name in isomorphism,
    # and its 3x3 convolutions would go into AlexNet's 11x11 and 5x5 ones)
    best = max(candidates, key=lambda c: (c[0], -_kernels_reshaped(c[2], src, dst)))
    _, mode, mapping, ambiguous = best
    if mode in AUTO_GENERAL and has_shapes and problem.sides().ordered:
        # a few shapes in common: chance, not a network, where names do not agree
        chance = thin_unnamed_pairs(mapping, len(src), len(dst), problem.sep)
        if chance:
            ambiguous = {**ambiguous, **{k: (mapping[k],) for k in chance}}
            ambiguous = {k: ambiguous[k] for k in src if k in ambiguous}
            mapping = {k: v for k, v in mapping.items() if k not in chance}
    if mode in NAME_MODES and structure is not None:
        shifted = {k for k, kept in witnessed_offsets(mapping, structure, problem.sep).items()
                   if not kept}
        if shifted:
            ambiguous = {**ambiguous, **{k: (mapping[k],) for k in shifted}}
            ambiguous = {k: ambiguous[k] for k in src if k in ambiguous}
            mapping = {k: v for k, v in mapping.items() if k not in shifted}
    others = [c[2] for c in candidates if c is not best]
    disputed = _disputed(mapping, others)
    if len(disputed) * 2 > len(mapping):
        # the witnesses saw the checkpoint in different places: what they
        # did not contradict is no evidence either, unless all of them made it
        disputed.update((s, {d}) for s, d in mapping.items()
                        if s not in disputed and any(other.get(s) != d for other in others))
    if disputed:
        places = {mapping[k] for k in disputed}
        mapping = {k: v for k, v in mapping.items() if k not in disputed}
        # a place a witness fills from another copy of what fills the rest
        # (a stem from the checkpoint's other network, whose own stem the
        # best mode took): that network is a rival, not another part
        witnessed = {s: d for other in others for s, d in other.items()
                     if d in places and s not in mapping}
        rivals = set(rival_pairs({**mapping, **witnessed}, src, problem.sep)) - set(witnessed)
        disputed.update((k, {mapping[k]}) for k in rivals)
        ambiguous = dict(ambiguous)
        ambiguous.update((k, tuple(sorted(ds))) for k, ds in disputed.items())
        mapping = {k: v for k, v in mapping.items() if k not in disputed}
        ambiguous = {k: ambiguous[k] for k in src if k in ambiguous}
    return mapping, ambiguous, mode
