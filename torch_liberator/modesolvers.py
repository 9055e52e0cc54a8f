"""
The association modes' solvers: one :class:`Problem` (both sides' keys and
shapes, and what the solvers build from them, shared) and a solver per mode
in :data:`SOLVERS` (:mod:`torch_liberator.autoselect` picks among them for
``auto``).

Each solver returns ``(mapping, ambiguous)``: source key -> destination
key, and source key -> the destination keys it could equally go to (left
out). A solver is the mode's core (identical keys, wrapper prefixes
stripped, the common subtree isomorphism or embedding of the key trees,
the structural alignment) wrapped in the checks that leave pairs out: lists
moved or cut in parts (:mod:`torch_liberator.movedparts`), rival copies of
a network (:mod:`torch_liberator.rivalsources`), list positions that name
other layers (:mod:`torch_liberator.listpositions`). The public entry point
is :func:`torch_liberator.association.associate`.

Example:
    >>> from torch_liberator.modesolvers import SOLVERS, Problem
    >>> problem = Problem({'layer1.0.w': (4, 3), 'fc.w': (2, 4)},
    ...                   {'backbone.layer1.0.w': (4, 3), 'head.w': (2, 4)}, '.')
    >>> SOLVERS['embedding'](problem)[0]
    {'layer1.0.w': 'backbone.layer1.0.w'}
"""
from typing import Callable, Dict, Tuple

from torch_liberator.alignment import StructureSides
from torch_liberator.coincidence import names_agree, split_items, too_thin
from torch_liberator.flatnames import enough_for_flat, torch_spelling
from torch_liberator.keytree import KeyTree
from torch_liberator.listparts import later_part_modules
from torch_liberator.listpositions import list_positions, positions_disagree
from torch_liberator.modulefit import head_fit, module_spans, nested_run_fit, run_fit, whole_fit
from torch_liberator.movedparts import moved_part_pairs
from torch_liberator.repeateditems import repeated_item_pairs
from torch_liberator.rivalsources import (feeder_nodes, foreign_parts, lone_namesakes, lone_shoves,
                                         rival_pairs, rival_places, stray_parts)
from torch_liberator.shapes import shape_relation
from torch_liberator.subtree_embedding import embedding_mapping, whole_rivals
from torch_liberator.subtree_isomorphism import TOP_ANCHORS, find_anchors, isomorphism_mapping
from torch_liberator.swappednames import shoves_beside_exact_fits, swapped_shoves

__all__ = ['ONE_PREFIX_ROOM', 'SOLVERS', 'Problem', 'one_prefix_pairs', 'strict_pairs']

#: prefixes that wrappers add in front of every key
_WRAPPER_PREFIXES = ('module.', '_orig_mod.')


class Problem:
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
        self._lists = None
        self.isomorphism = None  # (mapping, ambiguous), once solved
        self._solved = {}  # solver -> (mapping, ambiguous)

    def trees(self) -> Tuple[KeyTree, KeyTree]:
        """The two sides as :class:`~torch_liberator.keytree.KeyTree`, built once."""
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

    def lists(self):
        """Both sides' :func:`~torch_liberator.listpositions.list_positions`,
        read once (five of ``auto``'s solvers check list positions)."""
        if self._lists is None:
            self._lists = (list_positions(self.src, self.sep),
                           list_positions(self.dst, self.sep))
        return self._lists

    def moved_parts(self) -> Tuple[Dict[str, str], 'Problem']:
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
                rest = Problem(
                    {k: v for k, v in self.src.items() if k not in pairs},
                    {k: v for k, v in self.dst.items() if k not in taken},
                    self.sep)
            self._parts = (pairs, rest)
        return self._parts

    def solve(self, mode: str) -> Tuple[Dict[str, str], dict]:
        """The ``mode`` solver's (mapping, ambiguous), solved once (``auto``
        asks several modes; the name modes ask the structure mode to
        witness a thin mapping)."""
        solver = SOLVERS[mode]
        if solver not in self._solved:
            self._solved[solver] = solver(self)
        return self._solved[solver]

    def has_shapes(self) -> bool:
        """Whether both sides give shapes (the structure mode can run)."""
        return all(any(shape is not None for shape in side.values())
                   for side in (self.src, self.dst))

    def sides(self) -> StructureSides:
        if self._sides is None:
            self._sides = StructureSides(self.src, self.dst, sep=self.sep)
        return self._sides


def strict_pairs(problem: 'Problem') -> Tuple[Dict[str, str], dict]:
    """
    The identical keys, before any check (``strict`` less the list
    positions that disagree; ``associate``'s shortcut starts from them).

    Example:
        >>> from torch_liberator.modesolvers import Problem, strict_pairs
        >>> strict_pairs(Problem({'a': (1,), 'b': (2,)}, {'b': (2,)}, '.'))
        ({'b': 'b'}, {})
    """
    src, dst = problem.src, problem.dst
    return {k: k for k in src if k in dst}, {}


#: :func:`one_prefix_pairs` applies only when the larger side holds at
#: most this share of the smaller side's key count besides it
ONE_PREFIX_ROOM = 0.1


def one_prefix_pairs(problem: 'Problem') -> Dict[str, str]:
    """
    When every key of the smaller side is a key of the other under one
    prefix (``model.``, ``_orig_mod.``) with the same shape, under no other
    prefix, and the other side holds few keys besides (at most
    :data:`ONE_PREFIX_ROOM` of the smaller side's: a wrapper and a small
    extra layer): those pairs; else ``{}``. The tree modes and
    ``structure`` find no other answer then (each key has one place of its
    name and shape, and there is no room for a second copy of the network
    under other names), so
    ``associate`` returns it without building trees, as it returns
    identical keys. A second place, complete (a model and its EMA copy) or
    under other names (the children-Sequential of the same network beside
    a deeper one of its names), leaves it to the solvers.

    Example:
        >>> from torch_liberator.modesolvers import Problem, one_prefix_pairs
        >>> net = {f'layers.{i}.weight': (i + 2, i + 1) for i in range(10)}
        >>> wrapped = {'model.' + k: v for k, v in net.items()}
        >>> pairs = one_prefix_pairs(Problem(net, {**wrapped, 'extra.weight': (1, 2)}, '.'))
        >>> len(pairs), pairs['layers.9.weight']
        (10, 'model.layers.9.weight')
        >>> ema = {'ema.' + k: v for k, v in net.items()}
        >>> one_prefix_pairs(Problem(net, {**wrapped, **ema}, '.'))
        {}
        >>> copy = {f'copy.{i}.weight': v for i, v in enumerate(net.values())}  # another copy
        >>> one_prefix_pairs(Problem(net, {**wrapped, **copy}, '.'))
        {}
    """
    small, large = problem.src, problem.dst
    if len(small) > len(large):
        small, large = large, small
    if not small or len(large) - len(small) > len(small) * ONE_PREFIX_ROOM:
        return {}  # (no room is the cheap test: most problems end here)
    first = next(iter(small))
    tail = problem.sep + first
    complete = []
    for key in large:
        if not key.endswith(tail):
            continue
        prefix = key[:len(key) - len(first)]
        if all(large.get(prefix + k, ()) == shape for k, shape in small.items()):
            complete.append(prefix)
            if len(complete) > 1:
                return {}
    if not complete:
        return {}
    prefix = complete[0]
    if small is problem.src:
        return {k: prefix + k for k in small}
    return {k: k[len(prefix):] for k in problem.src  # in source order
            if k.startswith(prefix) and k[len(prefix):] in small}


def _wrapper_chain(keys):
    """
    The wrapper prefixes in front of the keys of one side (``module.`` of
    DataParallel, ``_orig_mod.``, or both), as one string: a prefix that the
    side's keys in modules carry, but for at most one small module beside
    it (fewer keys than it holds). Top-level keys (AveragedModel's
    ``n_averaged``) do not count, nor does one layer beside the wrapped
    network (the published README's ``CustomModel`` holds ``module`` = a
    resnet50 and a one-unit ``extra`` layer). A ``module`` child beside
    another network is a part of the model, no wrapper (mutation fuzz seed
    9236: ``module.bn1.*`` of a resnet50 beside ``head.*``, an
    efficientnet, went to the model's ``bn1``).
    """
    dotted = [k for k in keys if '.' in k]
    chain, found = '', bool(dotted)
    while found:
        found = False
        for prefix in _WRAPPER_PREFIXES:
            outside = [k for k in dotted if not k.startswith(chain + prefix)]
            if len(outside) < len(dotted) - len(outside) and len(
                    {k.rpartition('.')[0] for k in outside}) <= 1:
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
    the modules under joined names leave (:meth:`Problem.moved_parts`),
    with their pairs added: names cannot follow an item renumbered in a
    part, its order and contents can. What the solver finds with the
    lists in place joins where nothing disagrees (a key that was a tie
    without the moved lists included), less what rests on a
    correspondence that a disagreement contradicts.
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
        contradicted, only_whole = set(), []
        for s, d in whole.items():
            if mapping.get(s, d) != d or owner.get(d, s) != s:
                contradicted.add(_correspondence(s, d, problem.sep))
                ambiguous[s] = tuple(sorted({d, mapping.get(s, d)}))
                mapping.pop(s, None)
                rival = owner.get(d)
                if rival is not None and rival != s:
                    ambiguous[rival] = (d,)
                    mapping.pop(rival, None)
            else:
                if s not in mapping:
                    only_whole.append(s)
                    ambiguous.pop(s, None)  # a tie only without the lists
                mapping[s] = d
        # a correspondence that the moved lists contradict (the checkpoint's
        # part.0 is not the model's core.0) places nothing else on its own
        # (part.1 is not core.1)
        for s in only_whole:
            if _correspondence(s, mapping[s], problem.sep) in contradicted:
                ambiguous[s] = (mapping.pop(s),)
        for s, ds in whole_ambiguous.items():
            if s not in mapping:
                ambiguous.setdefault(s, ds)
        return _in_source_order(problem, mapping, ambiguous)
    return solve


def _correspondence(src_key, dst_key, sep):
    """The places a key pair rests on (``features.stage4.part`` being
    ``stage4.core`` for ``...part.1.conv.weight`` -> ``...core.1.conv.weight``;
    :func:`~torch_liberator.rivalsources.feeder_nodes`)."""
    return feeder_nodes(src_key.rpartition(sep)[0], dst_key.rpartition(sep)[0], sep)[:2]


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


def _leaving_out(finder):
    """
    A wrapper of solvers: the solver's mapping less the source keys that
    ``finder(problem, mapping)`` returns, which join the ambiguous keys with
    the one place they were given.
    """
    def wrap(solver):
        def solve(problem):
            mapping, ambiguous = solver(problem)
            out = finder(problem, mapping)
            if not out:
                return mapping, ambiguous
            ambiguous = dict(ambiguous)
            ambiguous.update((s, (mapping[s],)) for s in out)
            mapping = {s: d for s, d in mapping.items() if s not in out}
            return _in_source_order(problem, mapping, ambiguous)
        return solve
    return wrap


def _in_torch_spelling(solver):
    """
    ``solver`` run with the keys of a flat side (another framework's
    ``bn/gamma`` or ``res2_0_branch2a_bn_s``) spelled as torch spells them
    (:func:`~torch_liberator.flatnames.torch_spelling`), its answer in the
    given keys: the module path is what the structure solver aligns, and
    the tensor's own name what tells a module's tensors apart. With a flat
    side, an alignment of under half of the smaller side is left out
    (:func:`~torch_liberator.flatnames.enough_for_flat`).
    """
    def solve(problem):
        src = torch_spelling(problem.src, problem.sep)
        dst = torch_spelling(problem.dst, problem.sep)
        if src is None and dst is None:
            return solver(problem)
        src = src or {k: k for k in problem.src}
        dst = dst or {k: k for k in problem.dst}
        mapping, ambiguous = solver(Problem(
            {src[k]: shape for k, shape in problem.src.items()},
            {dst[k]: shape for k, shape in problem.dst.items()}, problem.sep))
        src_key = {new: k for k, new in src.items()}
        dst_key = {new: k for k, new in dst.items()}
        mapping = {src_key[s]: dst_key[d] for s, d in mapping.items()}
        ambiguous = {src_key[s]: tuple(dst_key[d] for d in ds) for s, ds in ambiguous.items()}
        if not enough_for_flat(len(mapping), len(problem.src), len(problem.dst)):
            # a run of shared shapes, not a network: listed with its places
            ambiguous.update((s, (d,)) for s, d in mapping.items())
            return {}, {k: ambiguous[k] for k in problem.src if k in ambiguous}
        return mapping, ambiguous
    return solve


@_leaving_out
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


@_leaving_out
def _without_lone_shoves(problem, mapping):
    """
    The exact modes' pairs of a module paired by name alone that must be
    shoved, two networks sharing nothing else below the module's parents
    (:func:`~torch_liberator.rivalsources.lone_shoves`: a wide_resnet50's
    ``main.fc`` into a regnet's).
    """
    return set(lone_shoves(mapping, problem.src, problem.dst, problem.sep))


@_leaving_out
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


@_leaving_out
def _blocks_kept_whole(problem, mapping):
    """
    The smaller part of a block split between two blocks of one list of
    the model, the one it went to filled in part only while the block of
    the larger part has empty places of its shapes
    (:func:`~torch_liberator.coincidence.split_items`).
    """
    return split_items(mapping, problem.src, problem.dst, problem.sep)


@_leaving_out
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


@_leaving_out
def _rivals_beside_moved(problem, mapping):
    """
    When lists moved (:meth:`Problem.moved_parts`), the pairs that the
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


@_leaving_out
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
    checkpoint has, seed 2315). A mapping that fills the whole
    model without a shove stays (the names decide between two exact
    places).
    """
    src, dst = problem.src, problem.dst
    if len(src) <= len(dst) or not mapping:
        return set()
    exact = _unshoved(problem, mapping)
    if exact >= len(dst):
        return set()
    sides = problem.sides()
    if not sides.ordered or len(sides.dst) >= len(sides.src):
        return set()
    at = run_fit(sides.dst, 0, len(sides.dst), sides.src)
    if at is None:  # or in another library's nesting, a module of the checkpoint
        at = whole_fit(sides.dst, sides.src)
    if at is None:  # or the first part of one, less its head
        at = head_fit(sides.dst, sides.src)
    if at is None:
        return set()
    run = {key for keys in sides.src.keys[at:at + len(sides.dst)] for key in keys}
    return {s for s in mapping if s not in run}


@_leaving_out
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
        inside = sum(at <= src_group[s] < at + b - a for s in mapping)
        if 2 * inside > len(mapping):
            return set(mapping)
    return set()


@_leaving_out
def _beside_a_whole_fit(problem, mapping):
    """
    When one module of the model holds the whole checkpoint, in order,
    every shape equal, at one place only, in its own nesting or another
    library's (:func:`~torch_liberator.modulefit.whole_fit`), or is the
    whole checkpoint and a head after it
    (:func:`~torch_liberator.modulefit.head_fit`), and that module holds
    more of the checkpoint than the mapping places without a shove, or as
    much while the mapping's place skips groups of the model between those
    it fills (a longer network, filled in part): the mapping's pairs that
    the fit contradicts are left out, those it confirms kept. Cases: timm's
    mnasnet_100 into a model holding torchvision's mnasnet1_0 beside timm's
    efficientnet_b0, whose names are the checkpoint's and whose shapes are
    in part (cross fuzz seed 1237: all left out); a torchvision
    mobilenet_v2 into timm's beside a regnet, the classifier by its name
    into timm's (kept) and the stem by its numbers into the regnet's (left
    out, seed 900); a headless resnet18 into a model holding a resnet18
    with two blocks renamed beside a resnet34 of the checkpoint's names,
    which the names fill every other block of (seed 2276: all left out).
    """
    src, dst = problem.src, problem.dst
    exact = _unshoved(problem, mapping)
    if not mapping or len(dst) - len(mapping) < exact:
        return set()  # no room beside the mapping for a fit holding as much
    sides = problem.sides()
    if not sides.ordered:
        return set()
    keys_before, held_before = _running_counts(sides.dst, set(mapping.values()))
    held = [g for g in range(len(sides.dst)) if held_before[g + 1] > held_before[g]]
    gapped = bool(held) and held[-1] - held[0] + 1 > len(held)
    if exact >= len(src) and not gapped:
        return set()  # (the cheap test first: the whole checkpoint in one run)
    n = len(sides.src)
    at = whole_fit(sides.src, sides.dst)
    if at is None:
        at = head_fit(sides.src, sides.dst)
    if at is None:
        return set()
    room = keys_before[at + n] - keys_before[at]
    if room < exact or (room == exact and not gapped):
        return set()
    src_group = {key: g for g, keys in enumerate(sides.src.keys) for key in keys}
    place = {key: g for g, keys in enumerate(sides.dst.keys[at:at + n]) for key in keys}
    return {s for s, d in mapping.items() if place.get(d) != src_group[s]}


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


@_leaving_out
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


@_leaving_out
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
    seed 3585). List positions alone (``features.0.0``,
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
    owner = lambda key: key.rsplit(sep, 2)[0] if key.count(sep) >= 2 else ''  # NOQA: E731
    owners = {}  # source module holding a module -> where the witness puts their keys
    for s, d in witness.items():
        owners.setdefault(owner(s), set()).add(owner(d))
    return {s for s, d in mapping.items()
            if (witness.get(s) != d if s in unnamed
                else s in witness and witness[s] != d or taken.get(d, s) != s
                or owner(d) not in owners.get(owner(s), {owner(d)}))}


@_leaving_out
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


@_leaving_out
def _swaps_left_out(problem, mapping):
    """
    The shoves into a model module of the checkpoint part's names while an
    empty model module holds the part's tensors exactly and an unused part
    of the checkpoint the module's
    (:func:`~torch_liberator.swappednames.swapped_shoves`: a name that
    means two modules); for every mode, the exact ones included.
    """
    return swapped_shoves(mapping, problem.src, problem.dst, problem.sep)


@_leaving_out
def _shoves_beside_exact_fits(problem, mapping):
    """
    The pairs into a model module, one of them shoved, while an unused
    module of the checkpoint holds the model module's tensors exactly
    (:func:`~torch_liberator.swappednames.shoves_beside_exact_fits`), and
    the swapped names of :func:`_swaps_left_out`: in the tree modes a pair
    that must be shoved never beats one that fits, and the name alone does
    not say which is meant.
    """
    out = set(shoves_beside_exact_fits(mapping, problem.src, problem.dst, problem.sep))
    out.update(swapped_shoves(mapping, problem.src, problem.dst, problem.sep))
    return out


#: association name -> solver(problem) -> (mapping, ambiguous) for a
#: :class:`Problem`; ``prefix-hack`` is ``isomorphism`` without the lists
#: moved or cut in parts (and so without what their solve finds)
SOLVERS: Dict[str, Callable] = {
    'strict': _swaps_left_out(_without_lone_shoves(_positions_checked(strict_pairs))),
    'module-hack': _swaps_left_out(_without_lone_shoves(_positions_checked(_module_hack_solver))),
    'prefix-hack': _shoves_beside_exact_fits(_thin_and_unnamed(_exact_keys_contest(_positions_checked(
        _into_other_networks(_short_of_an_exact_run(_beside_a_whole_fit(_beside_an_exact_run(
            _by_name_alone(_isomorphism_solver))))))))),
    'isomorphism': _shoves_beside_exact_fits(_thin_and_unnamed(_exact_keys_contest(_positions_checked(
        _into_other_networks(_short_of_an_exact_run(_beside_a_whole_fit(_beside_an_exact_run(
            _rivals_beside_moved(_by_name_alone(_with_moved_parts(_isomorphism_solver))))))))))),
    'embedding': _shoves_beside_exact_fits(_thin_and_unnamed(_exact_keys_contest(_positions_checked(
        _into_other_networks(_short_of_an_exact_run(_beside_a_whole_fit(_beside_an_exact_run(
            _without_rivals(_by_name_alone(_with_moved_parts(_embedding_solver))))))))))),
    'structure': _swaps_left_out(_in_torch_spelling(_into_other_networks(_blocks_kept_whole(
        _beside_a_whole_fit(_without_rivals(_by_name_alone(_structure_solver))))))),
}
