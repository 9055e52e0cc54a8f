"""
The association modes' solvers: one :class:`Problem` (both sides' keys and
shapes, and what the solvers build from them, shared) and a solver per mode
in :data:`SOLVERS` (:mod:`torch_liberator.autoselect` picks among them for
``auto``).

Each solver returns ``(mapping, ambiguous)``: source key -> destination
key, and source key -> the destination keys it could equally go to (left
out). A solver is the mode's core (identical keys, wrapper prefixes
stripped, the common subtree isomorphism or embedding of the key trees,
the structural alignment), the lists moved or cut in parts solved apart
(:mod:`torch_liberator.movedparts`), wrapped in the checks that leave pairs
out (:mod:`torch_liberator.leaveout`: rival copies of a network, list
positions that name other layers, a whole fit elsewhere, ...). The tree
modes and ``structure`` solve with each side's wrappers stripped first
(:meth:`Problem.unwrapped`): a wrapper's name is no name. The public
entry point is :func:`torch_liberator.association.associate`.

Example:
    >>> from torch_liberator.modesolvers import SOLVERS, Problem
    >>> problem = Problem({'layer1.0.w': (4, 3), 'fc.w': (2, 4)},
    ...                   {'backbone.layer1.0.w': (4, 3), 'head.w': (2, 4)}, '.')
    >>> SOLVERS['embedding'](problem)[0]
    {'layer1.0.w': 'backbone.layer1.0.w'}
"""
from collections import Counter, defaultdict
from typing import Callable, Dict, Optional, Tuple

from torch_liberator.alignment import StructureSides
from torch_liberator.coincidence import other_design_parts
from torch_liberator.flatnames import enough_for_flat, torch_spelling
from torch_liberator.keygroups import WRAPPER_PREFIXES, common_module
from torch_liberator.keytree import KeyTree
from torch_liberator.openmodules import fill_open_modules
from torch_liberator.leaveout import checked, in_source_order
from torch_liberator.listpositions import list_items, list_positions
from torch_liberator.movedparts import moved_part_pairs
from torch_liberator.repeateditems import repeated_item_pairs
from torch_liberator.rivalsources import feeder_nodes
from torch_liberator.shapes import shape_relation, squeeze_units
from torch_liberator.splitnorms import joined_norms
from torch_liberator.subtree_embedding import embedding_mapping, whole_rivals
from torch_liberator.subtree_isomorphism import TOP_ANCHORS, find_anchors, isomorphism_mapping
from torch_liberator.wholefits import model_fit_by_shapes


__all__ = ['ONE_PREFIX_ROOM', 'SOLVERS', 'Problem', 'one_prefix_pairs', 'strict_pairs',
           'unwrapped_pairs']


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
        self._items = None
        self.isomorphism = None  # (mapping, ambiguous), once solved
        self._solved = {}  # solver -> (mapping, ambiguous)
        self._unwrapped = None
        self._chains = None
        self._designs = None

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

    def list_items(self):
        """Both sides' :func:`~torch_liberator.listpositions.list_items`,
        read once (every solver of ``auto`` checks lists by their items)."""
        if self._items is None:
            self._items = (list_items(self.src, self.sep), list_items(self.dst, self.sep))
        return self._items

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

    def wrapper_chains(self) -> Tuple[str, str]:
        """Each side's wrapper prefixes (:func:`_wrapper_chain`), read once."""
        if self._chains is None:
            self._chains = (_wrapper_chain(self.src), _wrapper_chain(self.dst))
        return self._chains

    def unwrapped(self) -> Optional[Tuple['Problem', Dict[str, str], Dict[str, str]]]:
        """
        The problem with each side's wrapper prefixes stripped
        (:func:`_wrapper_chain`: ``module.`` of DataParallel, ``_orig_mod.``),
        then the root that every key of a side has and no key of the other
        side names (:func:`_unmatched_root`: Lightning's ``model.``), and
        each side's stripped keys -> its keys; built once, None when
        neither side has either (a wrapper whose stripping would join two
        keys is kept).

        Example:
            >>> from torch_liberator.modesolvers import Problem
            >>> problem = Problem({'model.layer1.w': (2,), 'model.fc.w': (3,)},
            ...                   {'module.layer1.w': (2,), 'module.fc.w': (3,)}, '.')
            >>> bare, src_key, dst_key = problem.unwrapped()
            >>> list(bare.src) == list(bare.dst) == ['layer1.w', 'fc.w']
            True
            >>> src_key['fc.w'], dst_key['fc.w']
            ('model.fc.w', 'module.fc.w')
            >>> Problem({'layer4.0.w': (2,)}, {'layer4.0.w': (2,)}, '.').unwrapped() is None
            True
        """
        if self._unwrapped is None:
            renamed = []
            for side, other, chain in zip((self.src, self.dst), (self.dst, self.src),
                                          self.wrapper_chains()):
                bare = {(k[len(chain):] if chain and k.startswith(chain) else k): k
                        for k in side}
                if len(bare) != len(side):
                    bare = {k: k for k in side}
                root = _unmatched_root(bare, other, self.sep)
                if root:
                    bare = {b[len(root):]: k for b, k in bare.items()}
                renamed.append(bare if any(b != k for b, k in bare.items()) else None)
            if renamed == [None, None]:
                self._unwrapped = (None,)
            else:
                src_key, dst_key = (bare or {k: k for k in side} for bare, side
                                    in zip(renamed, (self.src, self.dst)))
                bare = Problem({b: self.src[k] for b, k in src_key.items()},
                               {b: self.dst[k] for b, k in dst_key.items()}, self.sep)
                self._unwrapped = (bare, src_key, dst_key)
        return None if self._unwrapped[0] is None else self._unwrapped

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

    def other_designs(self) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
        """
        The prefixes of the model's network-sized parts of another design
        than the checkpoint, and of the checkpoint's of another design than
        the model (:func:`~torch_liberator.coincidence.other_design_parts`,
        each way; empty without shapes), read once: the structure mode
        aligns without the former, and two checks leave out what went
        into the one or came from the other.
        """
        if self._designs is None:
            self._designs = ((), ())
            if self.has_shapes():
                self._designs = (other_design_parts(self.src, self.dst, self.sep),
                                 other_design_parts(self.dst, self.src, self.sep))
        return self._designs

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
    When every key of the smaller side (of either, when they are of one
    size) is a key of the other under one
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
        >>> # sides of one size: either may be the wrapped one
        >>> one_prefix_pairs(Problem(wrapped, net, '.'))['model.layers.9.weight']
        'layers.9.weight'
    """
    if len(problem.src) == len(problem.dst):
        # (either side may be the wrapped one)
        return _one_prefix_pairs(problem, problem.src, problem.dst) or _one_prefix_pairs(
            problem, problem.dst, problem.src)
    small, large = problem.src, problem.dst
    if len(small) > len(large):
        small, large = large, small
    return _one_prefix_pairs(problem, small, large)


def _one_prefix_pairs(problem, small, large):
    """:func:`one_prefix_pairs` with ``small`` the side looked for in ``large``."""
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
        for prefix in WRAPPER_PREFIXES:
            outside = [k for k in dotted if not k.startswith(chain + prefix)]
            if len(outside) < len(dotted) - len(outside) and len(
                    {k.rpartition('.')[0] for k in outside}) <= 1:
                chain, found = chain + prefix, True
    return chain


def unwrapped_pairs(problem: 'Problem') -> Dict[str, str]:
    """
    The keys equal once each side's wrapper prefixes are stripped
    (``module.`` of DataParallel, ``_orig_mod.`` of torch.compile; see
    :func:`_wrapper_chain`), before any check: ``module-hack``'s pairs, from
    which ``associate``'s shortcut starts as it does from
    :func:`strict_pairs`.

    Example:
        >>> from torch_liberator.modesolvers import Problem, unwrapped_pairs
        >>> unwrapped_pairs(Problem({'module.a.w': (1,), 'module.b.w': (2,)},
        ...                         {'b.w': (3,)}, '.'))
        {'module.b.w': 'b.w'}
    """
    def stripper(chain):
        return lambda key: key[len(chain):] if key.startswith(chain) else key

    bare_src, bare_dst = map(stripper, problem.wrapper_chains())
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
    return mapping


def _module_hack_solver(problem):
    """
    Compare both key sets with each side's wrapper prefixes stripped
    (:func:`_wrapper_chain`), then keep the pairs whose stripped keys agree.
    """
    return unwrapped_pairs(problem), {}


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
                             anchors=lambda: [a for _, a in problem.anchors()])
    for key, places in contested.items():
        mapping.pop(key, None)
        ambiguous[key] = places


def _isomorphism_solver(problem):
    if problem.isomorphism is None:  # prefix-hack and isomorphism share it
        mapping, ambiguous = isomorphism_mapping(*problem.trees(),
                                                 anchors=problem.anchors())
        mapping.update(_same_name_modules(problem.src, problem.dst, mapping,
                                          ambiguous, problem.sep))
        _leave_out_contested(problem, mapping, ambiguous)
        problem.isomorphism = in_source_order(problem, mapping, ambiguous)
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
    return in_source_order(problem, mapping, ambiguous)


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
        # the parts of a checkpoint list cut in parts that the moved parts
        # did not place are placed in the rest by numbers that the items
        # taken out no longer back (a shufflenet's stage3 cut into main.0
        # and encoder.0-6, the model's block 7 a level deeper: without
        # block 0, encoder.0 went to block 7 by its shapes; mutation fuzz
        # seed 561 of --wide); they stay only where the solve with the
        # lists in place agrees (below)
        cut = _cut_lists(pairs, problem.sep)
        unbacked = {s for s in mapping if _in_parts(s, cut, problem.sep)}
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
        for s in unbacked:
            if s in mapping and whole.get(s) != mapping[s]:
                ambiguous[s] = (mapping.pop(s),)
        for s, ds in whole_ambiguous.items():
            if s not in mapping:
                ambiguous.setdefault(s, ds)
        return in_source_order(problem, mapping, ambiguous)
    return solve


def _cut_lists(keys, sep):
    """The module paths that hold, in a named child of theirs, an item
    of one of ``keys`` (``stage3`` of ``stage3.main.0.conv.weight``): the
    lists the keys' parts were cut from (the root excluded: the children
    of a whole network are no list)."""
    lists = set()
    for key in keys:
        comps = key.split(sep)[:-1]
        for depth in range(2, len(comps)):
            if comps[depth].isdigit() and not comps[depth - 1].isdigit():
                lists.add(sep.join(comps[:depth - 1]))
    return lists


def _in_parts(key, lists, sep):
    """Whether ``key`` lies below an item of a named part of one of ``lists``."""
    return not _cut_lists([key], sep).isdisjoint(lists)


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
    sides = problem.sides()
    filled = fill_open_modules(sides.src, sides.dst, mapping, problem.sep, ambiguous)
    # (an analogy that only digits aside holds: a densenet169's block-4
    # denselayer1 into a densenet121's denselayer5, of its shapes, beside
    # the namesake; and, where the two share their names, a module into
    # one of another name: a timm ViT's norm into the fc_norm of one that
    # pools by average, the last open module of its shapes)
    if filled:
        crossed = sides.namesakes_crossed(filled) | sides.name_conflicts({**mapping, **filled})
        filled = {s: d for s, d in filled.items() if s not in crossed}
    mapping.update(filled)
    ambiguous = {k: v for k, v in ambiguous.items() if k not in filled}
    _leave_out_contested(problem, mapping, ambiguous)
    return in_source_order(problem, mapping, ambiguous)


def _with_an_order_free_reading(solver):
    """
    ``solver``, and where the checkpoint's order left a tie (ambiguous
    keys) and the mapping fills neither side, ``solver`` again with the
    checkpoint's keys sorted: the reading of a safetensors file, where
    what each module holds and the numbers in its name speak, not the
    order (:mod:`torch_liberator.unordered`). That reading is taken when
    it keeps every pair the first one made and places more; otherwise the
    first stands. An HF-named ViT, each layer's norms registered last,
    into a model holding a torchvision ViT of its depth and one of half
    its depth: by order the checkpoint's run fits both and every tensor
    was a tie (0 of 152); by what the modules hold, the deep one holds it
    whole (148 of 152: the class token, position table and head, of the
    shallow one's shapes too, stay out as ties).

    The structure mode weighs the two readings twice: on what the
    alignment alone finds, and again on what survives the checks of
    :mod:`torch_liberator.leaveout`. Before the checks, a tie of the order
    can come with pairs the checks then drop: torchvision's resnet34 into
    HF's resnet18 (each block's shortcut registered first) paired a
    block's norms into a shorter stage, which the sorted reading does not
    keep; after them, the first reading keeps 24 tensors and the sorted
    one 117 (all but the stem's norm: each stage's first block by its
    shapes, the blocks after it by their numbers), all of the 24 among
    them. Weighed only after the checks, HF's PoolFormer would lose its
    blocks: its first reading keeps the final norm that the sorted one,
    checked, doubts.
    """
    def solve(problem):
        mapping, ambiguous = solver(problem)
        if not ambiguous or len(mapping) >= min(len(problem.src), len(problem.dst)):
            return mapping, ambiguous
        keys = sorted(problem.src)
        if keys == list(problem.src):
            return mapping, ambiguous
        other = solver(Problem({k: problem.src[k] for k in keys}, problem.dst, problem.sep))
        return _more_if_kept(problem, (mapping, ambiguous), other)
    return solve


def _more_if_kept(problem, first, second):
    """The second reading ``(mapping, ambiguous)`` of ``problem`` when it
    keeps every pair the first one made and places more (the keys either
    leaves ambiguous and it leaves unplaced stay ambiguous), else the first."""
    (mapping, ambiguous), (other, other_ambiguous) = first, second
    if len(other) <= len(mapping) or any(other.get(k) != v for k, v in mapping.items()):
        return mapping, ambiguous
    ambiguous = {k: v for k, v in {**other_ambiguous, **ambiguous}.items() if k not in other}
    return in_source_order(problem, other, ambiguous)


def _inside_the_models_fit(solver):
    """
    ``solver``, and where it leaves part of the model unset while one
    module of a larger checkpoint holds the model's shapes, as many of
    each, alone, with a head, or less the model's head
    (:func:`~torch_liberator.wholefits.model_fit_by_shapes`), ``solver``
    again on that module's keys alone: the other networks of the
    checkpoint are rivals the checks leave out (a namesake of another
    depth), not sources. That answer is taken when it keeps every pair
    the first one made and places more; what it leaves out of the
    checkpoint stays ambiguous. timm's resnet101, its lists cut in
    renamed parts, beside a resnet50 of the model's names, keys sorted,
    into torchvision's resnet101 without its fc: the checks left the
    resnet50's pairs out, and nothing was placed; the resnet101 alone
    fills the model (cross fuzz seed 67034 of ``--wider --reorder
    --sorted``).
    """
    def solve(problem):
        mapping, ambiguous = solver(problem)
        if len(mapping) >= len(problem.dst) or len(problem.src) <= len(problem.dst):
            return mapping, ambiguous
        found = model_fit_by_shapes(problem)
        if found is None:
            return mapping, ambiguous
        inside = found[0] + problem.sep
        if any(not s.startswith(inside) for s in mapping):
            return mapping, ambiguous
        other = solver(Problem({k: shape for k, shape in problem.src.items()
                                if k.startswith(inside)}, problem.dst, problem.sep))
        return _more_if_kept(problem, (mapping, ambiguous), other)
    return solve


def _without_other_designs(solver):
    """
    ``solver`` run on the model less its network-sized parts of another
    design than the checkpoint, when another part is of the checkpoint's
    design (:func:`~torch_liberator.coincidence.other_design_parts`): the
    alignment that would follow the names or shapes such a part shares
    with the checkpoint finds the network of its design instead. A timm
    mobilenetv2_100 cut short, into a model holding torchvision's
    mobilenet_v2 beside timm's efficientnet_b0 (the checkpoint's names),
    aligned the efficientnet's stem and first blocks; the mobilenet_v2
    takes every tensor now.
    """
    def solve(problem):
        weak = problem.other_designs()[0]
        if not weak:
            return solver(problem)
        dst = {k: shape for k, shape in problem.dst.items() if not k.startswith(weak)}
        return solver(Problem(problem.src, dst, problem.sep))
    return solve


def _in_torch_spelling(solver):
    """
    ``solver`` run with the keys of a flat side (another framework's
    ``bn/gamma`` or ``res2_0_branch2a_bn_s``) spelled as torch spells them
    (:func:`~torch_liberator.flatnames.torch_spelling`), and with each
    BatchNorm saved as two modules (Caffe's ``bn*`` statistics and
    ``scale*`` affine) spelled as one
    (:func:`~torch_liberator.splitnorms.joined_norms`), its answer in the
    given keys: the module path is what the structure solver aligns, and
    the tensor's own name what tells a module's tensors apart. With a flat
    side, an alignment of under half of the smaller side is left out
    (:func:`~torch_liberator.flatnames.enough_for_flat`).
    """
    def solve(problem):
        flat_src = torch_spelling(problem.src, problem.sep)
        flat_dst = torch_spelling(problem.dst, problem.sep)
        src = _respelled(problem.src, flat_src, problem.sep)
        dst = _respelled(problem.dst, flat_dst, problem.sep)
        if src is None and dst is None:
            return solver(problem)
        src = src or {k: k for k in problem.src}
        dst = dst or {k: k for k in problem.dst}
        mapping, ambiguous = solver(Problem(
            {new: problem.src[k] for k, new in src.items()},
            {new: problem.dst[k] for k, new in dst.items()}, problem.sep))
        src_key = {new: k for k, new in src.items()}
        dst_key = {new: k for k, new in dst.items()}
        mapping = {src_key[s]: dst_key[d] for s, d in mapping.items()}
        ambiguous = {src_key[s]: tuple(dst_key[d] for d in ds) for s, ds in ambiguous.items()}
        if (flat_src or flat_dst) and not enough_for_flat(
                len(mapping), len(problem.src), len(problem.dst)):
            # a run of shared shapes, not a network: listed with its places
            ambiguous.update((s, (d,)) for s, d in mapping.items())
            return {}, {k: ambiguous[k] for k in problem.src if k in ambiguous}
        return in_source_order(problem, mapping, ambiguous)
    return solve


def _respelled(shapes, flat, sep):
    """
    ``{key: respelled key}`` of one side, ``flat`` (its torch spelling, or
    None) and then its BatchNorms saved as two modules joined, with the
    keys of a joined module listed together where its first key was (each
    module's tensors are together in a state dict); None when neither
    applies.
    """
    joined = joined_norms(shapes if flat is None else
                          {flat[k]: shape for k, shape in shapes.items()}, sep)
    if joined is None:
        return flat
    by_module = {}
    for k in shapes:
        new = joined[k if flat is None else flat[k]]
        by_module.setdefault(new.rpartition(sep)[0], []).append((k, new))
    return {k: new for pairs in by_module.values() for k, new in pairs}


def _unmatched_root(keys, other, sep):
    """The leading components (with their separators) that every key of
    ``keys`` has and no key of ``other`` has anywhere in its path: a root
    wrapper whose name says nothing (Lightning's ``model.``), not a part
    of the other side (a checkpoint of ``layer4.*`` alone)."""
    common = common_module(keys, sep)
    if not common:
        return ''
    named = {comp for key in other for comp in key.split(sep)}
    root = ''
    for comp in common.split(sep):
        if comp in named:
            break
        root += comp + sep
    return root


def _with_wrappers_stripped(solver):
    """
    ``solver`` run with each side's wrapper prefixes stripped
    (:meth:`Problem.unwrapped`), its answer in the given keys: a wrapper's
    ``module.`` is no name. A model wrapped in DataParallel (``module.*``)
    and a checkpoint holding the model and its EMA copy (``model.*`` and
    ``model_ema.module.*``) share the suffix ``module.conv1.weight`` with
    the EMA copy, not with the model copy.
    """
    def solve(problem):
        found = problem.unwrapped()
        if found is None:
            return solver(problem)
        bare, src_key, dst_key = found
        mapping, ambiguous = solver(bare)
        return ({src_key[s]: dst_key[d] for s, d in mapping.items()},
                {src_key[s]: tuple(dst_key[d] for d in ds) for s, ds in ambiguous.items()})
    return solve


#: tensor names every module kind uses, in torch and in other frameworks'
#: checkpoints (Keras, Caffe, JAX): no evidence of which module it is
_GENERIC_TENSOR_NAMES = frozenset({
    'weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked',
    'w', 'b', 'kernel', 'scale', 'moving_mean', 'moving_variance'})


def _same_named_end(src_key, dst_key, sep):
    """Whether the two keys end in the same components up to and including
    a name that not every module uses (``reduction.weight``,
    ``relative_position_bias_table``; not ``norm1.weight`` against
    ``layernorm_before.weight``, nor ``0.weight``). One such name will do,
    where :func:`~torch_liberator.coincidence.names_agree` asks for two
    module names: the pair comes from the structure solve, not from the
    names alone."""
    for a, b in zip(reversed(src_key.split(sep)), reversed(dst_key.split(sep))):
        if a != b:
            return False
        if a not in _GENERIC_TENSOR_NAMES and not a.isdigit():
            return True
    return False


def _named_in_structure(solver):
    """
    ``solver`` (the name modes' core), with the pairs of the ``structure``
    solve that the names leave open: names decide, and the order and shapes
    say which of the equal names it is. A pair the names made is never
    changed.

    * A key the names tie between two or more places (not one a check
      took away) goes where the structure solve puts it, if that is one
      of the tied places. A checkpoint of resnet18 into a model that holds
      it, wrapped, beside a resnet34 whose keys hold every one of its
      names and shapes: the names cannot tell the two apart, the order and
      the blocks each stage holds can (122 of 122, as 0.2.1 places; we
      placed 0).
    * A key the names tie with another copy of it in the checkpoint, the
      model key whole below each copy's prefix (a distillation checkpoint's
      ``student.*`` resnet18 beside a ``teacher.*`` resnet34 that holds
      every one of its names), goes where the structure solve puts it, if
      that is the one place: the name modes placed the student when the
      teacher came first, and nothing when the student did (0.2.1's
      isomorphism: 122 of 122; :func:`_copies_ending_in`).
    * A key the names neither placed nor tied, if the two keys end in the
      same names (:func:`_same_named_end`). A renumbered list whose numbers
      the name modes never follow (torchvision's swin_t,
      ``features.{1,3,5,7}`` with the patch merging at ``features.{2,4,6}``,
      against HuggingFace's ``encoder.layers.{0..3}.blocks`` and
      ``layers.N.downsample``) keeps its position tables and patch merging:
      21 of 145 tensors, as many as 0.2.1's embedding places there, where
      ours placed 3; a resnet50 whose layer3 is cut in two lists, 314 of
      320 (0.2.1: 314; ours placed 200).

    The structure solve runs only when there is something to settle: a
    tie, or a key left out with a free place of its shape (without size-1
    dimensions) on the other side. A source module's tensors still go to
    one module, and the module above them to one
    (:func:`_one_place_per_module`): what would split them keeps only what
    the names placed.
    """
    def solve(problem):
        mapping, ambiguous = solver(problem)
        if not _left_open(problem, mapping, ambiguous):
            return mapping, ambiguous
        found, _ = problem.solve('structure')
        taken = set(mapping.values())
        copies = None  # model key -> how many checkpoint keys end in it below a prefix
        added = {}
        for s, d in found.items():
            if s in mapping or d in taken:
                continue
            if s in ambiguous:
                if len(ambiguous[s]) > 1 and d in ambiguous[s]:
                    added[s] = d
                elif ambiguous[s] == (d,) and s.endswith(problem.sep + d):
                    if copies is None:
                        copies = _copies_ending_in(problem, ambiguous)
                    if copies.get(d, 0) > 1:
                        added[s] = d
            elif _same_named_end(s, d, problem.sep):
                added[s] = d
        added = _one_place_per_module(mapping, added, problem.sep)
        if not added:
            return mapping, ambiguous
        return in_source_order(problem, {**mapping, **added},
                               {s: ds for s, ds in ambiguous.items() if s not in added})
    return solve


def _copies_ending_in(problem, ambiguous):
    """``{model key: how many checkpoint keys end in it below a prefix}``
    for the model keys that ambiguous checkpoint keys name whole (a
    student's ``student.conv1.weight`` and its teacher's
    ``teacher.conv1.weight`` for ``conv1.weight``: the names tie the two
    copies, and the order and shapes may tell them apart)."""
    sep = problem.sep
    wanted = {places[0] for s, places in ambiguous.items()
              if len(places) == 1 and s.endswith(sep + places[0])}
    count = Counter()
    for key in problem.src:
        comps = key.split(sep)
        for n in range(1, len(comps)):
            tail = sep.join(comps[n:])
            if tail in wanted:
                count[tail] += 1
    return count


def _left_open(problem, mapping, ambiguous):
    """Whether the names left a tie, or a source key out that has a free
    place of its shape (size-1 dimensions aside): what the structure solve
    may settle (:func:`_named_in_structure`).

    Example:
        >>> from torch_liberator.modesolvers import Problem, _left_open
        >>> problem = Problem({'a.w': (4, 1), 'b.w': (3,)}, {'x.w': (4,), 'y.w': (2,)}, '.')
        >>> _left_open(problem, {}, {})
        True
        >>> _left_open(problem, {'a.w': 'x.w'}, {})
        False
    """
    if not problem.has_shapes():
        return False
    if any(len(places) > 1 for places in ambiguous.values()):
        return True
    taken = set(mapping.values())
    free = {squeeze_units(shape) for key, shape in problem.dst.items()
            if shape is not None and key not in taken}
    return any(shape is not None and squeeze_units(shape) in free
               for key, shape in problem.src.items()
               if key not in mapping and key not in ambiguous)


def _one_place_per_module(mapping, added, sep):
    """``added`` without the pairs that would split a module, or the module
    above it, between two places, with ``mapping``'s: a source module's
    tensors land in one destination module and a destination module's come
    from one source module; so do the modules one level up (unless that
    level is a list, whose items go their own ways), so that a stem's norm
    comes from the network its convolution came from. The root holds loose
    tensors (a class token, a position table), which go their own ways.

    Example:
        >>> from torch_liberator.modesolvers import _one_place_per_module
        >>> _one_place_per_module({'bn.weight': 'a.bn.weight'},
        ...                       {'bn.bias': 'b.bn.bias', 'fc.bias': 'b.fc.bias'}, '.')
        {'fc.bias': 'b.fc.bias'}
        >>> _one_place_per_module({'x.stem.conv.weight': 'stem.conv.weight'},
        ...                       {'y.stem.norm.weight': 'stem.norm.weight'}, '.')
        {}
    """
    def above(key, levels):  # None: the root, or a list (no module)
        parts = key.split(sep)[:-1]
        if levels == 2:
            if len(parts) < 2 or parts[-1].isdigit():
                return None
            parts = parts[:-1]
        return sep.join(parts) or None

    keep = dict(added)
    for levels in (1, 2):
        down, up = defaultdict(set), defaultdict(set)
        for s, d in (*mapping.items(), *keep.items()):
            a, b = above(s, levels), above(d, levels)
            if a is not None and b is not None:
                down[a].add(b)
                up[b].add(a)
        keep = {s: d for s, d in keep.items()
                if len(down.get(above(s, levels), ())) <= 1
                and len(up.get(above(d, levels), ())) <= 1}
    return keep


#: the checks after the tree modes' core (``isomorphism`` and ``embedding``
#: insert theirs after the first)
_NAME_CHECKS = ('by_name_alone', 'beside_an_exact_run', 'beside_a_whole_fit',
                'short_of_an_exact_run', 'into_other_networks', 'positions_checked',
                'positions_witnessed', 'against_list_shapes',
                'exact_keys_contest', 'namesake_module_free', 'prefix_ties', 'thin_and_unnamed',
                'thin_across_kinds',
                'against_shared_names', 'shoves_beside_exact_fits',
                'one_network_in_two', 'one_module_from_two', 'away_from_their_fit',
                'other_design_beside_own',
                'other_design_beside_the_checkpoints', 'other_design_by_shapes',
                'crossed_norms', 'crossed_ordinals', 'crossed_peers', 'crossed_twin_norms',
                'across_other_cuts')

#: the checks of the structure mode's core, in order (the order-free
#: reading is weighed before them and after them: see
#: :func:`_with_an_order_free_reading`)
_STRUCTURE_CHECKS = (
    'by_name_alone', 'without_rivals', 'beside_a_whole_fit', 'short_of_an_exact_run',
    'blocks_kept_whole', 'into_other_networks', 'one_network_in_two', 'one_module_from_two',
    'filled_from_their_fit', 'thin_across_kinds', 'against_shared_names',
    'other_design_by_shapes', 'other_design_beside_own', 'other_design_beside_the_checkpoints',
    'crossed_norms', 'crossed_ordinals', 'crossed_peers', 'crossed_twin_norms', 'strayed',
    'against_list_shapes', 'free_twin_items', 'across_other_cuts')

#: association name -> solver(problem) -> (mapping, ambiguous) for a
#: :class:`Problem`: the mode's core, then the checks of
#: :mod:`torch_liberator.leaveout` in order; ``prefix-hack`` is
#: ``isomorphism`` without the lists moved or cut in parts (and so without
#: what their solve finds) and without the structure solve's pairs
#: (:func:`_named_in_structure`)
SOLVERS: Dict[str, Callable] = {
    'strict': checked(strict_pairs, 'positions_checked', 'against_list_shapes',
                      'across_other_cuts', 'away_from_their_fit', 'without_lone_shoves',
                      'swaps_left_out', 'beside_a_whole_fit', 'short_of_an_exact_run',
                      'shoved_beside_a_fit'),
    'module-hack': checked(_module_hack_solver, 'positions_checked', 'against_list_shapes',
                           'across_other_cuts', 'away_from_their_fit', 'without_lone_shoves',
                           'swaps_left_out', 'beside_a_whole_fit', 'short_of_an_exact_run',
                           'shoved_beside_a_fit'),
    'prefix-hack': _with_wrappers_stripped(checked(_isomorphism_solver, *_NAME_CHECKS)),
    'isomorphism': _named_in_structure(_with_wrappers_stripped(checked(
        _with_moved_parts(_isomorphism_solver), 'by_name_alone', 'rivals_beside_moved',
        *_NAME_CHECKS[1:]))),
    'embedding': _named_in_structure(_with_wrappers_stripped(checked(
        _with_moved_parts(_embedding_solver), 'by_name_alone', 'without_rivals',
        *_NAME_CHECKS[1:]))),
    'structure': _with_wrappers_stripped(checked(_in_torch_spelling(_inside_the_models_fit(
        _with_an_order_free_reading(checked(_with_an_order_free_reading(
            _without_other_designs(_structure_solver)), *_STRUCTURE_CHECKS)))), 'swaps_left_out')),
}
