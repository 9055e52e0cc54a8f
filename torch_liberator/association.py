"""
Decide which checkpoint key goes to which model key.

Pure: key strings in, a one-to-one mapping out; no torch needed. The
association modes, from the most literal to the most general:

================  ============================================================
``strict``        identical keys only
``module-hack``   identical after adding or stripping the ``module.`` prefix
                  of (Distributed)DataParallel or the ``_orig_mod.`` prefix
                  that ``torch.compile`` leaves (a prefix every key of a side
                  carries: a wrapper)
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
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

from torch_liberator.alignment import StructureSides
from torch_liberator.coincidence import thin_and_unnamed
from torch_liberator.keytree import KeyTree
from torch_liberator.listpositions import positions_disagree
from torch_liberator.movedparts import moved_part_pairs
from torch_liberator.repeateditems import repeated_item_pairs
from torch_liberator.rivalsources import rival_pairs, rival_places, stray_parts
from torch_liberator.shapes import shape_relation
from torch_liberator.subtree_embedding import embedding_mapping, whole_rivals
from torch_liberator.subtree_isomorphism import (
    TOP_ANCHORS, find_anchors, isomorphism_mapping)

__all__ = [
    'ASSOCIATIONS',
    'Association',
    'MODES',
    'associate',
    'associate_keys',
    'maximum_common_ordered_subpaths',
]

#: every value accepted by ``association=``
ASSOCIATIONS = ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism',
                'structure', 'auto')

#: the modes ``auto`` takes when one maps every key of the smaller side
AUTO_EXACT = ('strict', 'module-hack', 'prefix-hack')

#: the modes ``auto`` otherwise compares, in order of preference on ties
AUTO_GENERAL = ('isomorphism', 'embedding', 'structure')

#: the tree problems accepted by ``mode=`` of maximum_common_ordered_subpaths
MODES = ('embedding', 'isomorphism')

#: prefixes that wrappers add in front of every key
_WRAPPER_PREFIXES = ('module.', '_orig_mod.')

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
    """``{key: shape or None}`` in the given order; duplicates are errors."""
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
    return out


class _Problem:
    """
    One association problem: both sides (``{key: shape or None}`` in their
    given order), the separator, and what the solvers build from them (the
    key trees, their anchors, the module groups, the lists cut in parts,
    the isomorphism that ``prefix-hack`` shares), built once and shared
    when ``auto`` runs several solvers.
    """

    def __init__(self, src, dst, sep):
        self.src, self.dst, self.sep = src, dst, sep
        self._trees = None
        self._anchors = None
        self._sides = None
        self._parts = None
        self.isomorphism = None  # (mapping, ambiguous), once solved

    def trees(self) -> Tuple[KeyTree, KeyTree]:
        if self._trees is None:
            self._trees = (KeyTree(self.src, sep=self.sep, shapes=self.src),
                           KeyTree(self.dst, sep=self.sep, shapes=self.dst))
        return self._trees

    def anchors(self):
        """``find_anchors`` of the two trees (the isomorphism's candidates
        and the embedding's extra starts)."""
        if self._anchors is None:
            self._anchors = find_anchors(*self.trees(), top=TOP_ANCHORS)
        return self._anchors

    def moved_parts(self) -> Tuple[Dict[str, str], '_Problem']:
        """
        The pairs of the lists moved, cut in parts or spliced and of the
        modules under joined names
        (:func:`~torch_liberator.movedparts.moved_part_pairs`), and the
        problem of the keys they leave.
        """
        if self._parts is None:
            pairs = moved_part_pairs(*self.trees())
            rest = self
            if pairs:
                taken = set(pairs.values())
                rest = _Problem(
                    {k: v for k, v in self.src.items() if k not in pairs},
                    {k: v for k, v in self.dst.items() if k not in taken},
                    self.sep)
            self._parts = (pairs, rest)
        return self._parts

    def sides(self) -> StructureSides:
        if self._sides is None:
            self._sides = StructureSides(self.src, self.dst, sep=self.sep)
        return self._sides


def _strict_solver(problem):
    src, dst = problem.src, problem.dst
    return {k: k for k in src if k in dst}, {}


def _wrapper_chain(keys):
    """
    The wrapper prefixes in front of every key of one side that lies in a
    module (``module.`` of DataParallel, ``_orig_mod.``, or both), as one
    string: a wrapper holds one child and no module beside it. Keys at the
    top level (AveragedModel's ``n_averaged``) do not count; a side whose
    ``module`` child has siblings with tensors below them is not wrapped
    (mutation fuzz seed 9236: ``module.bn1.*`` of a resnet50 beside
    ``head.*``, an efficientnet, went to the model's ``bn1``).
    """
    dotted = [k for k in keys if '.' in k]
    chain, found = '', bool(dotted)
    while found:
        found = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(chain + prefix) for k in dotted):
                chain, found = chain + prefix, True
    return chain


def _module_hack_solver(problem):
    """
    Compare both key sets with each side's wrapper prefixes stripped
    (:func:`_wrapper_chain`), then keep the pairs whose stripped keys agree.
    """
    def stripper(keys):
        chain = _wrapper_chain(keys)
        return lambda key: key[len(chain):] if key.startswith(chain) else key

    bare_dst, bare_src = stripper(problem.dst), stripper(problem.src)
    dst_by_bare = {}
    for key in problem.dst:
        dst_by_bare.setdefault(bare_dst(key), key)
    mapping = {}
    used = set()
    for key in problem.src:
        target = dst_by_bare.get(bare_src(key))
        if target is not None and target not in used:
            mapping[key] = target
            used.add(target)
    return mapping, {}


def _same_name_modules(src, dst, mapping, ambiguous, sep):
    """
    Identical keys outside the common subtree, a whole module at a time:
    the isomorphism keeps one connected subtree, so a model whose blocks
    gained a level keeps its blocks there and its stem and head by name (as
    0.2 did). A module with any tensor already mapped, taken or ambiguous
    (on either side) is left alone, and shapes must fit or be shoved.
    """
    def module(key):
        return key.rpartition(sep)[0]

    taken = set(mapping.values())
    busy_src = {module(k) for k in mapping} | {module(k) for k in ambiguous}
    busy_dst = {module(v) for v in taken}
    busy_dst.update(module(v) for vs in ambiguous.values() for v in vs)
    same = {k: k for k in src if k in dst and k not in mapping
            and k not in ambiguous and k not in taken
            and module(k) not in busy_src and module(k) not in busy_dst}
    refused = {module(k) for k in same
               if shape_relation(src[k], dst[k]) == 'different_rank'}
    return {k: v for k, v in same.items() if module(k) not in refused}


def _leave_out_contested(problem, mapping, ambiguous):
    """Move to ``ambiguous`` the pairs of a place filled in part that a
    place filled whole contests (see
    :func:`~torch_liberator.subtree_embedding.whole_rivals`): a closer place
    does not outweigh the same network."""
    contested = whole_rivals(*problem.trees(), mapping,
                             anchors=[a for _, a in problem.anchors()])
    for key, places in contested.items():
        mapping.pop(key, None)
        ambiguous[key] = places


def _in_source_order(problem, mapping, ambiguous):
    src = problem.src
    return ({k: mapping[k] for k in src if k in mapping},
            {k: ambiguous[k] for k in src if k in ambiguous})


def _isomorphism_solver(problem):
    if problem.isomorphism is None:  # prefix-hack and isomorphism share it
        mapping, ambiguous = isomorphism_mapping(*problem.trees(),
                                                 anchors=problem.anchors())
        mapping.update(_same_name_modules(problem.src, problem.dst, mapping,
                                          ambiguous, problem.sep))
        _leave_out_contested(problem, mapping, ambiguous)
        problem.isomorphism = _in_source_order(problem, mapping, ambiguous)
    mapping, ambiguous = problem.isomorphism
    return dict(mapping), dict(ambiguous)


def _embedding_solver(problem):
    anchors = [anchor for _, anchor in problem.anchors()]
    mapping, ambiguous = embedding_mapping(*problem.trees(), anchors=anchors)
    # equal blocks that names cannot tell apart, in lists the embedding
    # pairs position by position
    more = repeated_item_pairs(*problem.trees(), mapping)
    mapping.update(more)
    ambiguous = {k: v for k, v in ambiguous.items() if k not in more}
    return _in_source_order(problem, mapping, ambiguous)


def _with_moved_parts(solver):
    """
    ``solver`` run on what the lists moved, cut in parts or spliced and
    the modules under joined names leave (:meth:`_Problem.moved_parts`),
    with their pairs added: names cannot follow an item renumbered in a
    part, its order and contents can.
    """
    def solve(problem):
        pairs, rest = problem.moved_parts()
        if not pairs:
            return solver(problem)
        mapping, ambiguous = solver(rest)
        mapping.update(pairs)
        # what the solver finds with the lists in place (the start it
        # prefers may change without them) joins, where nothing disagrees;
        # a disagreement leaves both out
        whole, whole_ambiguous = solver(problem)
        owner = {d: s for s, d in mapping.items()}
        for s, d in whole.items():
            if mapping.get(s, d) != d or owner.get(d, s) != s:
                ambiguous[s] = tuple(sorted({d, mapping.get(s, d)}))
                mapping.pop(s, None)
                rival = owner.get(d)
                if rival is not None and rival != s:
                    ambiguous[rival] = (d,)
                    mapping.pop(rival, None)
            else:
                mapping[s] = d
        for s, ds in whole_ambiguous.items():
            if s not in mapping:
                ambiguous.setdefault(s, ds)
        return _in_source_order(problem, mapping, ambiguous)
    return solve


def _structure_solver(problem):
    for name, side in (('src', problem.src), ('dst', problem.dst)):
        if side and all(shape is None for shape in side.values()):
            raise ValueError(
                f"association='structure' needs tensor shapes, but {name} "
                'gives keys only; pass {key: shape} mappings (a state dict '
                'works as is)')
    alignment = problem.sides().align()
    mapping, ambiguous = dict(alignment.mapping), dict(alignment.ambiguous)
    _leave_out_contested(problem, mapping, ambiguous)
    return _in_source_order(problem, mapping, ambiguous)


def _without_rivals(solver):
    """
    ``solver`` less the pairs that fill a module from a rival copy of the
    module that fills it (:func:`~torch_liberator.rivalsources.rival_pairs`)
    or a part of the checkpoint into another network of its names than the
    one its bulk went to (:func:`~torch_liberator.rivalsources.rival_places`),
    or beside it while the bulk's module has an empty place for it
    (:func:`~torch_liberator.rivalsources.stray_parts`), reported as ambiguous.
    """
    def solve(problem):
        mapping, ambiguous = solver(problem)
        rivals = rival_pairs(mapping, problem.src, problem.sep)
        rivals.update(rival_places(mapping, problem.dst, problem.sep))
        rivals.update(stray_parts(mapping, problem.dst, problem.sep))
        if not rivals:
            return mapping, ambiguous
        ambiguous = dict(ambiguous)
        ambiguous.update((s, (d,)) for s, d in rivals.items())
        mapping = {s: d for s, d in mapping.items() if s not in rivals}
        return _in_source_order(problem, mapping, ambiguous)
    return solve


def _positions_checked(solver):
    """
    ``solver`` less the pairs that rest on a list position which the two
    lists holding it give to different layers
    (:func:`~torch_liberator.listpositions.positions_disagree`: vgg11's
    ``features.8`` is not vgg11_bn's), reported as ambiguous. For the modes
    that read positions as names.
    """
    def solve(problem):
        mapping, ambiguous = solver(problem)
        moved = positions_disagree(mapping, problem.src, problem.dst, problem.sep)
        if not moved:
            return mapping, ambiguous
        ambiguous = dict(ambiguous)
        ambiguous.update((s, (mapping[s],)) for s in moved)
        mapping = {s: d for s, d in mapping.items() if s not in moved}
        return _in_source_order(problem, mapping, ambiguous)
    return solve


#: association name -> solver(problem) -> (mapping, ambiguous) for a
#: :class:`_Problem`; ``prefix-hack`` is ``isomorphism`` without the lists
#: moved or cut in parts
_SOLVERS: Dict[str, Callable] = {
    'strict': _positions_checked(_strict_solver),
    'module-hack': _positions_checked(_module_hack_solver),
    'prefix-hack': _positions_checked(_isomorphism_solver),
    'isomorphism': _positions_checked(_with_moved_parts(_isomorphism_solver)),
    'embedding': _positions_checked(_without_rivals(_with_moved_parts(_embedding_solver))),
    'structure': _without_rivals(_structure_solver),
}


def _fitting_pairs(mapping, src, dst):
    """How many pairs hold tensors of one shape (up to size-1 dimensions),
    or of unknown shape."""
    return sum(shape_relation(src[s], dst[d]) in ('equal', 'units', 'unknown')
               for s, d in mapping.items())


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


def _auto_solver(problem) -> 'Association':
    """
    An exact mode when it explains everything, else the best general one,
    less what the other general modes contradict.

    The exact modes (:data:`AUTO_EXACT`, in order) are taken as soon as one
    maps every key of the smaller side, finds nothing ambiguous and pairs
    only tensors whose shapes fit: nothing can map more. When the first
    that maps every key must shove some pairs (a 1000-class head into a
    10-class one, or a wider model under the same names), it competes with
    the general modes below, first on ties. Otherwise each mode of :data:`AUTO_GENERAL` runs
    (``structure`` only when shapes are known) and the best is the one that
    places the most tensors whose shapes fit (equal, or equal up to size-1
    dimensions); ties go to the earlier mode (names before structure). A
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
    keeps one mode's mistake from reaching the model. And in registration
    order, a general mode's mapping that holds under a tenth of the smaller
    side with names agreeing nowhere
    (:func:`~torch_liberator.coincidence.thin_and_unnamed`: the stem of a
    resnet in a densenet) is chance: nothing is loaded.
    """
    src, dst = problem.src, problem.dst
    solved = {}

    def solve(mode):
        solver = _SOLVERS[mode]
        if solver not in solved:
            solved[solver] = solver(problem)
        return solved[solver]

    smaller = min(len(src), len(dst))
    candidates = []
    for mode in AUTO_EXACT:
        mapping, ambiguous = solve(mode)
        if len(mapping) == smaller and not ambiguous:
            fitting = _fitting_pairs(mapping, src, dst)
            if fitting == len(mapping):
                return Association(mapping, ambiguous, mode)
            # names explain everything, but some pairs must be shoved: the
            # general modes may place more tensors whose shapes fit
            candidates.append((fitting, mode, mapping, ambiguous))
            break
    has_shapes = (any(shape is not None for shape in src.values())
                  and any(shape is not None for shape in dst.values()))
    for mode in AUTO_GENERAL:
        if mode == 'structure' and not has_shapes:
            continue
        mapping, ambiguous = solve(mode)
        conflicts = problem.sides().name_conflicts(mapping)
        mapping = {k: v for k, v in mapping.items() if k not in conflicts}
        candidates.append((_fitting_pairs(mapping, src, dst), mode, mapping, ambiguous))
    best = max(candidates, key=lambda c: c[0])  # the first of the best
    _, mode, mapping, ambiguous = best
    if (mode in AUTO_GENERAL and has_shapes and problem.sides().ordered
            and thin_and_unnamed(mapping, len(src), len(dst), problem.sep)):
        # a few shapes in common, names agreeing nowhere: chance, not a network
        ambiguous = {**ambiguous, **{k: (v,) for k, v in mapping.items()}}
        ambiguous = {k: ambiguous[k] for k in src if k in ambiguous}
        return Association({}, ambiguous, mode)
    disputed = _disputed(mapping, [c[2] for c in candidates if c is not best])
    if disputed:
        ambiguous = dict(ambiguous)
        ambiguous.update((k, tuple(sorted(ds))) for k, ds in disputed.items())
        mapping = {k: v for k, v in mapping.items() if k not in disputed}
        ambiguous = {k: ambiguous[k] for k in src if k in ambiguous}
    return Association(mapping, ambiguous, mode)


def associate(src: Side, dst: Side, association: str = 'isomorphism',
              sep: str = '.', shortcut: bool = True) -> Association:
    """
    Decide which checkpoint (source) key goes to which model (destination)
    key, and which keys are ambiguous.

    Args:
        src: the checkpoint's keys, or a mapping of its keys to shapes
            (tuples, ``torch.Size``, tensors, TensorSpecs; None when
            unknown). A state dict can be passed as is.
        dst: the model's keys, or a mapping of its keys to shapes.
        association: one of :data:`ASSOCIATIONS`. ``'structure'`` needs
            shapes; ``'auto'`` chooses a mode: an exact mode
            (:data:`AUTO_EXACT`) when one maps every key of the smaller side
            with nothing ambiguous, else the mode of :data:`AUTO_GENERAL`
            that places the most tensors whose shapes fit (ties: the
            earlier mode), less any pair joining two differently named
            modules of a shared naming scheme;
            ``Association.association`` names it.
        sep: separator between path components.
        shortcut: when the identical keys already make the largest possible
            mapping (every key of the smaller side exists on the other)
            and no identical pair joins tensors of different ranks, return
            them without building trees; the result is the same.
            False always runs the chosen solver.

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
    problem = _Problem(_as_side(src, 'src'), _as_side(dst, 'dst'), sep)
    if shortcut and association != 'strict':
        exact, _ = _strict_solver(problem)
        if len(exact) == min(len(problem.src), len(problem.dst)) and not any(
                shape_relation(problem.src[k], problem.dst[k]) == 'different_rank'
                for k in exact):
            # nothing can map more keys than identity already does
            used = 'strict' if association == 'auto' else association
            return Association(exact, {}, used)
    if association == 'auto':
        return _auto_solver(problem)
    mapping, ambiguous = _SOLVERS[association](problem)
    return Association(mapping, ambiguous, association)


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
    mapping, _ = _SOLVERS[mode](_Problem(_as_side(paths1, 'paths1'),
                                         _as_side(paths2, 'paths2'), sep))
    return list(mapping.keys()), list(mapping.values())
