"""
Decide which checkpoint key goes to which model key.

Pure: key strings in, a one-to-one mapping out; no torch needed. The
association modes, from the most literal to the most general:

================  ============================================================
``strict``        identical keys only
``module-hack``   identical after adding or stripping the ``module.`` prefix
                  of (Distributed)DataParallel or the ``_orig_mod.`` prefix
                  that ``torch.compile`` leaves, where it wraps the side (one
                  smaller layer beside it aside)
``prefix-hack``   the single best "remove prefix P, add prefix Q" transform
``isomorphism``   maximum common subtree isomorphism of the two key trees:
                  parent-child edges kept, the names of the two subtree roots
                  may differ (``module.*`` <-> ``backbone.*``)
``embedding``     maximum common subtree embedding: ancestor order kept, levels
                  may be skipped on either side
                  (``layer1.0.w`` <-> ``backbone.body.layer1.0.w``,
                  ``features.0.w`` <-> ``features.block.0.w``)
``structure``     registration order, shapes and the names that agree, across
                  naming schemes (timm <-> torchvision, renamed submodules,
                  ``nn.Sequential(*children)``); needs shapes; see
                  :mod:`torch_liberator.alignment`
``auto``          an exact mode when one maps every key of the smaller side
                  (or all that have a tensor of their shape on the other)
                  with nothing ambiguous, otherwise the general mode that
                  places the most tensors whose shapes fit (see
                  :func:`associate`); ``Association.association`` says which
                  mode was used
================  ============================================================

``prefix-hack`` and ``isomorphism`` find the same transform (a state dict's
relative paths are unique, so a common subtree is exactly a shared
prefix pair); both are kept because published code names both.

Example:
    >>> from torch_liberator.association import associate_keys
    >>> src = ['conv1.weight', 'layer1.0.weight', 'fc.weight']
    >>> dst = ['backbone.body.conv1.weight', 'backbone.body.layer1.0.weight']
    >>> associate_keys(src, dst, association='embedding')
    {'conv1.weight': 'backbone.body.conv1.weight', 'layer1.0.weight': 'backbone.body.layer1.0.weight'}
"""
import re
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

from torch_liberator.autoselect import AUTO_EXACT, AUTO_GENERAL, solve_auto
from torch_liberator.emacopy import without_ema_copy
from torch_liberator.errors import CheckpointFormatError
from torch_liberator.keyorder import NORM_BUFFERS, numbered_order, registration_order
from torch_liberator.leaveout import in_source_order
from torch_liberator.listpositions import positions_disagree
from torch_liberator.modesolvers import Problem, one_prefix_pairs, strict_pairs, unwrapped_pairs
from torch_liberator.shapes import shape_relation, squeeze_units

__all__ = [
    'ASSOCIATIONS',
    'AUTO_EXACT',
    'AUTO_GENERAL',
    'Association',
    'KEY_DIGITS_MAX',
    'MODES',
    'associate',
    'associate_keys',
    'maximum_common_ordered_subpaths',
]

#: every value accepted by ``association=``
ASSOCIATIONS = ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism',
                'structure', 'auto')

#: the tree problems accepted by ``mode=`` of maximum_common_ordered_subpaths
MODES = ('embedding', 'isomorphism')

#: the most digits a number in a key may have: the solvers read a key's
#: numbers (list positions, ``layer4``), and no module path numbers its
#: modules with more, while Python refuses to read an integer of over 4300
KEY_DIGITS_MAX = 100

_LONG_NUMBER = re.compile(r'\d{%d}' % (KEY_DIGITS_MAX + 1))

#: a shape as the solvers see it: sizes, or None when unknown
Shape = Optional[Tuple[int, ...]]

#: what ``associate`` accepts for one side: keys, or keys with their shapes
#: (a tuple, a ``torch.Size``, anything with ``.shape`` such as a tensor or a
#: :class:`~torch_liberator.shapes.TensorSpec`, or None when unknown)
Side = Union[Iterable[str], Mapping[str, object]]


@dataclass(frozen=True)
class Association:
    """
    The result of :func:`associate`.

    Attributes:
        mapping (Dict[str, str]): source key -> destination key; one to one,
            leaf to leaf, in source order.
        ambiguous (Dict[str, Tuple[str, ...]]): source key -> the equally
            good destination keys it could go to; such keys are left out of
            ``mapping`` (a wrong tensor is worse than a missing one).
        association (str): the mode that was used.

    Example:
        >>> from torch_liberator.association import associate
        >>> result = associate({'w': (3,)}, {'w': (3,)}, association='strict')
        >>> result.mapping, result.ambiguous, result.association
        ({'w': 'w'}, {}, 'strict')
    """

    mapping: Dict[str, str]
    ambiguous: Dict[str, Tuple[str, ...]]
    association: str


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f'{name}={value!r} is not one of {choices}')


def _shape_of(key, value) -> Shape:
    if value is None:
        return None
    value = getattr(value, 'shape', value)
    if value is None:
        return None
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError('a string is not a shape')
        return tuple(map(int, value))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f'the shape given for key {key!r} is {value!r}, not a shape; '
            'pass a tuple of ints, a torch.Size, a tensor or None') from err


def _as_side(side, name) -> Dict[str, Shape]:
    """``{key: shape or None}`` in the given order; duplicates, keys that are no
    strings and numbers of more than :data:`KEY_DIGITS_MAX` digits are errors."""
    if isinstance(side, str):
        raise TypeError(
            f'{name} is a str ({side!r}), not a collection of keys; pass a '
            'list of keys or a mapping of keys to shapes')
    if isinstance(side, Mapping):
        pairs = [(key, _shape_of(key, value)) for key, value in side.items()]
    else:
        pairs = [(key, None) for key in side]
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f'duplicate or empty key {key!r} in {name}')
            seen.add(key)
    for key in out:
        if not isinstance(key, str):
            raise TypeError(
                f'keys must be strings, got {type(key).__name__}: {key!r}')
        if _LONG_NUMBER.search(key):
            raise CheckpointFormatError(
                f'key {key[:80]!r}... of {name} holds a number of more than {KEY_DIGITS_MAX} '
                'digits, which no module path does; drop that key, or rename it '
                "(rename={pattern: 'new.name'}), before loading")
    return out


def associate(src: Side, dst: Side, association: str = 'isomorphism',
              sep: str = '.', shortcut: bool = True) -> Association:
    """
    Decide which checkpoint (source) key goes to which model (destination)
    key, and which keys are ambiguous. A side listed back to front, or as
    every parameter, then every buffer (or buffers first), is solved in
    registration order (:func:`~torch_liberator.keyorder.registration_order`).
    Where a side registers a numbered list out of turn (``b2`` before
    ``b1``), the two sides are solved again with its items in the order of
    their numbers (:func:`~torch_liberator.keyorder.numbered_order`); a
    pair one reading makes is kept where the other makes it too or says
    nothing of its key and place, and left out as ambiguous where the other
    places either otherwise or doubts it.
    A checkpoint holding the model beside an EMA copy of it under a name
    ``ema=True`` knows (``ema_model.*``) gives the model copy
    (:func:`~torch_liberator.emacopy.without_ema_copy`).

    Args:
        src: the checkpoint's keys, or a mapping of its keys to shapes
            (tuples, ``torch.Size``, tensors, TensorSpecs; None when
            unknown). A state dict can be passed as is.
        dst: the model's keys, or a mapping of its keys to shapes.
        association: one of :data:`ASSOCIATIONS`. ``'structure'`` needs
            shapes; ``'auto'`` chooses a mode: an exact mode
            (:data:`AUTO_EXACT`) when one maps every key of the smaller side
            (or every key of one side that has a tensor of its shape on the
            other) with nothing ambiguous, else the mode of :data:`AUTO_GENERAL`
            that places the most tensors whose shapes fit (ties: the
            earlier mode), less any pair joining two differently named
            modules of a shared naming scheme;
            ``Association.association`` names it.
        sep: separator between path components.
        shortcut: when the identical keys already make the largest possible
            mapping (every key of the smaller side exists on the other)
            and no identical pair joins tensors of different ranks, nor
            must be shoved while the rest of the checkpoint holds a tensor
            of the model's shape for each such pair, return them without
            building trees; and in the tree modes, ``'structure'``
            and ``'auto'``, when the smaller side's keys are the other's
            under one prefix with equal shapes and under no other
            (:func:`~torch_liberator.modesolvers.one_prefix_pairs`), return
            those; the result is the same. False always runs the chosen
            solver.

    Returns:
        Association: the mapping (one to one, leaf to leaf, in source
        order), the ambiguous source keys, and the mode used.

    Raises:
        ValueError: unknown ``association``, a duplicate key, or
            ``'structure'`` without shapes.
        TypeError: a key that is not a str or a shape that is not a shape.

    Example:
        >>> from torch_liberator.association import associate
        >>> src = {'module.fc.weight': (10, 5), 'module.fc.bias': (10,)}
        >>> dst = {'fc.weight': (10, 5), 'fc.bias': (10,)}
        >>> result = associate(src, dst, association='module-hack')
        >>> result.mapping
        {'module.fc.weight': 'fc.weight', 'module.fc.bias': 'fc.bias'}
        >>> result.ambiguous
        {}
        >>> # timm-like and torchvision-like names: only 'structure' sees
        >>> # that the tokens and the MLP correspond, and 'auto' takes it
        >>> src = {'cls_token': (1, 1, 4), 'patch.weight': (4, 3, 2, 2),
        ...        'blocks.0.mlp.fc1.weight': (8, 4), 'head.weight': (10, 4)}
        >>> dst = {'class_token': (1, 1, 4), 'conv_proj.weight': (4, 3, 2, 2),
        ...        'encoder.layers.0.mlp.0.weight': (8, 4),
        ...        'heads.head.weight': (10, 4)}
        >>> result = associate(src, dst, association='auto')
        >>> result.association, len(result.mapping), result.mapping['cls_token']
        ('structure', 4, 'class_token')
        >>> associate(list(src), list(dst), association='structure')
        Traceback (most recent call last):
        ...
        ValueError: association='structure' needs tensor shapes, but src gives keys only; pass {key: shape} mappings (a state dict works as is)
    """
    _check_choice('association', association, ASSOCIATIONS)
    src, dst = _without_lone_buffers(_as_side(src, 'src'), _as_side(dst, 'dst'), sep)
    src = without_ema_copy(src, dst, sep)
    problem = Problem(src, dst, sep)
    found = _shortcut(problem, association) if shortcut else None
    if found is not None:
        return found
    # a listing back to front, or cut in two sections (parameters, then
    # buffers), is solved in registration order; the answer keeps the order listed
    ordered = Problem(registration_order(src, sep), registration_order(dst, sep), sep)
    if ordered.src is src and ordered.dst is dst:
        ordered = problem  # (what it has built stays)
    result = _solved(ordered, association)
    # a numbered list registered out of turn: its numbers' order is read
    # too, and a pair one reading makes and the other places otherwise or
    # doubts is left out
    renumbered = Problem(numbered_order(ordered.src, sep), numbered_order(ordered.dst, sep), sep)
    if renumbered.src is not ordered.src or renumbered.dst is not ordered.dst:
        result = _agreed(result, _solved(renumbered, association))
    elif ordered.src is src:
        return result
    return Association(*in_source_order(problem, result.mapping, result.ambiguous),
                       result.association)


def _solved(problem: Problem, association: str) -> 'Association':
    """``association`` (a mode, or ``'auto'``) solved on ``problem``."""
    if association == 'auto':
        return Association(*solve_auto(problem))
    return Association(*problem.solve(association), association)


def _agreed(first: 'Association', second: 'Association') -> 'Association':
    """
    The pairs of two readings that the other makes too, or says nothing of
    (neither places the key nor lists it as a tie, and neither fills the
    place nor lists it as one of a tie's places); a key the two place apart,
    or one reading places and the other doubts, is ambiguous between its
    places (and so is one either lists as ambiguous and neither places).
    In the first reading's mode.

    Example:
        >>> from torch_liberator.association import Association, _agreed
        >>> first = Association({'a': 'x', 'b': 'y', 'c': 'w'}, {}, 'structure')
        >>> second = Association({'a': 'x', 'b': 'z', 'd': 'v'}, {'c': ('w', 'u')}, 'structure')
        >>> found = _agreed(first, second)
        >>> found.mapping
        {'a': 'x', 'd': 'v'}
        >>> found.ambiguous
        {'c': ('w', 'u'), 'b': ('y', 'z')}
    """
    def silent(s, d, other, held):  # the other reading says nothing of s or d
        return s not in other.mapping and s not in other.ambiguous and d not in held

    held = [set(side.mapping.values()).union(*side.ambiguous.values())
            for side in (first, second)]
    mapping = {s: d for s, d in first.mapping.items()
               if second.mapping.get(s) == d or silent(s, d, second, held[1])}
    mapping.update((s, d) for s, d in second.mapping.items()
                   if s not in first.mapping and silent(s, d, first, held[0]))
    ambiguous = {s: places for s, places in {**second.ambiguous, **first.ambiguous}.items()
                 if s not in mapping}
    for s in [*first.mapping, *second.mapping]:
        if s not in mapping:
            places = [*ambiguous.get(s, ()), first.mapping.get(s), second.mapping.get(s)]
            ambiguous[s] = tuple(dict.fromkeys(d for d in places if d is not None))
    return Association(mapping, ambiguous, first.association)


def _without_lone_buffers(src: Dict[str, Shape], dst: Dict[str, Shape],
                          sep: str) -> Tuple[Dict[str, Shape], Dict[str, Shape]]:
    """
    Both sides, less one side's keys of a normalization buffer
    (:data:`~torch_liberator.keyorder.NORM_BUFFERS`: ``running_mean``,
    ``running_var``, ``num_batches_tracked``) that the other side, of the
    same tensor names otherwise, has none of: they can pair with nothing
    of their kind, and a module of five tensors against one of four is no
    longer one signature. Checkpoints of old torch have no
    ``num_batches_tracked``, nor has a FrozenBatchNorm2d; a checkpoint of
    ``named_parameters()`` has no buffers at all. (A resnet18 checkpoint
    of old torch into a resnet34 beside a resnet18 went to the resnet34 by
    name, its own slot no longer an exact fit.) Another framework's names
    (Keras' ``moving_mean``) are not the same tensor names: nothing is
    left out there.
    """
    def leaf(key):
        return key.rpartition(sep)[2]

    buffers = [{leaf(k) for k in side if k.endswith(NORM_BUFFERS)} & set(NORM_BUFFERS)
               for side in (src, dst)]
    if buffers[0] == buffers[1]:
        return src, dst  # (most problems end here, without reading every name)
    leaves = ({leaf(k) for k in src}, {leaf(k) for k in dst})
    lone = [{name for name in NORM_BUFFERS if name in mine and name not in theirs}
            if theirs <= mine else set() for mine, theirs in (leaves, leaves[::-1])]
    if lone[0]:
        src = {k: v for k, v in src.items() if leaf(k) not in lone[0]}
    if lone[1]:
        dst = {k: v for k, v in dst.items() if leaf(k) not in lone[1]}
    return src, dst


def _shortcut(problem: Problem, association: str) -> Optional[Association]:
    """
    :func:`associate`'s answer when no solver can do better (the order of
    the keys plays no part here), else None: the identical keys, when they
    explain every key of the smaller side, and else, in the tree modes,
    the one prefix that does.
    """
    if association != 'strict':
        exact, _ = strict_pairs(problem)
        if _names_explain_all(problem, exact):
            # nothing can map more keys than identity already does
            used = 'strict' if association == 'auto' else association
            return Association(exact, {}, used)
    if association not in ('strict', 'module-hack'):
        # the same, once each side's wrapper prefixes are stripped (a
        # densenet169 saved from DataParallel into a densenet121: the
        # solvers would align block 4's layers by their input widths)
        unwrapped = unwrapped_pairs(problem) if any(problem.wrapper_chains()) else exact
        if unwrapped != exact and _names_explain_all(problem, unwrapped):
            used = 'module-hack' if association == 'auto' else association
            return Association(unwrapped, {}, used)
        pairs = one_prefix_pairs(problem)
        if pairs and not positions_disagree(pairs, problem.src, problem.dst, problem.sep,
                                            lists=problem.lists()):
            # one prefix explains every key of the smaller side, and no
            # other place holds it whole: what the tree modes find
            used = 'prefix-hack' if association == 'auto' else association
            return Association(pairs, {}, used)
    return None


def _names_explain_all(problem: Problem, pairs: Dict[str, str]) -> bool:
    """Whether ``pairs`` (of equal names) hold every key of the smaller
    side, none joining tensors of different ranks, none resting on a list
    position that the two lists give to different layers, and not all of
    the shoved ones beside a copy (:func:`_shoves_have_a_copy`)."""
    src, dst = problem.src, problem.dst
    return (len(pairs) == min(len(src), len(dst))
            and not any(shape_relation(src[s], dst[d]) == 'different_rank'
                        for s, d in pairs.items())
            and not _shoves_have_a_copy(problem, pairs)
            and not positions_disagree(pairs, src, dst, problem.sep, lists=problem.lists()))


def _shoves_have_a_copy(problem: Problem, pairs: Dict[str, str]) -> bool:
    """
    Whether the pairs of equal names in ``pairs`` that must be shoved have,
    in the checkpoint keys outside ``pairs``, a tensor of the model's shape
    for every one of them: another network of the checkpoint may then fit where the same
    names do not, and the solver, not identity, must decide (cross fuzz
    seed 7800: a checkpoint holding an mnasnet0_5 under the model's own
    names and a timm mnasnet1_0 beside it, into torchvision's mnasnet1_0;
    every identical pair was shoved). A deeper network of one family
    (a densenet169 into a densenet121) holds no other head of the model's
    shape, and keeps its identical pairs.
    """
    src, dst = problem.src, problem.dst
    shoved = Counter(squeeze_units(dst[d]) for s, d in pairs.items()
                     if shape_relation(src[s], dst[d]) == 'same_rank')
    if not shoved or len(src) == len(pairs):
        return False
    rest = Counter(squeeze_units(shape) for key, shape in src.items()
                   if key not in pairs and shape is not None)
    return not shoved - rest


def associate_keys(src_keys: Side, dst_keys: Side,
                   association: str = 'isomorphism', sep: str = '.',
                   shortcut: bool = True) -> Dict[str, str]:
    """
    Map checkpoint (source) keys to model (destination) keys.

    The mapping of :func:`associate`; see there.

    Args:
        src_keys: keys of the checkpoint, or a mapping of them to shapes.
        dst_keys: keys of the model, or a mapping of them to shapes.
        association (str): one of :data:`ASSOCIATIONS`.
        sep (str): separator between path components.
        shortcut (bool): as in :func:`associate`.

    Returns:
        Dict[str, str]: source key -> destination key; one-to-one, in source
        order, and only keys that exist on both sides.

    Raises:
        ValueError: unknown ``association``.

    Example:
        >>> from torch_liberator.association import associate_keys
        >>> src = ['module.fc.weight', 'module.fc.bias']
        >>> dst = ['fc.weight', 'fc.bias']
        >>> associate_keys(src, dst, association='strict')
        {}
        >>> associate_keys(src, dst, association='module-hack')
        {'module.fc.weight': 'fc.weight', 'module.fc.bias': 'fc.bias'}
        >>> associate_keys(src, dst, association='prefix-hack')
        {'module.fc.weight': 'fc.weight', 'module.fc.bias': 'fc.bias'}
    """
    return associate(src_keys, dst_keys, association=association, sep=sep,
                     shortcut=shortcut).mapping


def maximum_common_ordered_subpaths(paths1, paths2, sep='.', mode='embedding'):
    """
    The largest sets of paths that correspond between two path lists.

    Splits each path on ``sep``, builds the two trees and solves the maximum
    common subtree ``embedding`` or ``isomorphism`` problem (see the module
    docstring).

    Args:
        paths1 (Iterable[str]): first list of paths.
        paths2 (Iterable[str]): second list of paths.
        sep (str): separator between path components.
        mode (str): ``'embedding'`` or ``'isomorphism'``.

    Returns:
        Tuple[List[str], List[str]]: ``subpaths1, subpaths2``, equally long,
        where ``subpaths1[i]`` corresponds to ``subpaths2[i]``; ordered as in
        ``paths1``.

    Example:
        >>> from torch_liberator.association import maximum_common_ordered_subpaths
        >>> paths1 = ['stats', 'z.mu', 'z.sigma', 'x.y.z']
        >>> paths2 = ['model.stats', 'model.z.mu', 'model.z.sigma', 'head.w']
        >>> sub1, sub2 = maximum_common_ordered_subpaths(paths1, paths2, mode='isomorphism')
        >>> list(zip(sub1, sub2))
        [('stats', 'model.stats'), ('z.mu', 'model.z.mu'), ('z.sigma', 'model.z.sigma')]
    """
    _check_choice('mode', mode, MODES)
    mapping, _ = Problem(_as_side(paths1, 'paths1'), _as_side(paths2, 'paths2'), sep).solve(mode)
    return list(mapping.keys()), list(mapping.values())
