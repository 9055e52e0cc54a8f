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

The checks against a module that holds the other side whole (an exact run,
a whole fit, a fit by shapes) live in :mod:`torch_liberator.wholefits` and
join :data:`CHECKS` here.

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
from torch_liberator.nameanchors import shared_length
from torch_liberator.rivalsources import (foreign_parts, lone_namesakes, lone_shoves, rival_pairs,
                                          rival_places, stray_parts)
from torch_liberator.shapes import is_kernel, shape_relation, squeeze_units
from torch_liberator.wholefits import WHOLE_FIT_CHECKS, parts_around

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
    the order of the rest of both networks, which the names cannot reach;
    a pair it made and then doubted (it lists the key as ambiguous with
    that place) is contradicted too when the checkpoint's top-level module
    holding the key is four times larger than what the mapping takes from
    it and the witness places nothing of it: a darknet17's ``head.fc`` beside a
    vovnet's stem in the checkpoint met the vovnet's ``head.fc`` by name
    and shape, and nothing else of the darknet went anywhere (mutation
    fuzz seed 41636 of ``--wider --split --joined``; the structure mode
    left it out as a part of another network than the one its bulk fed).
    """
    src, dst = problem.src, problem.dst
    if not mapping or not too_thin(len(mapping), len(src), len(dst)) or not problem.has_shapes():
        return set()
    witness, doubted = problem.solve('structure')
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

    def top(key):  # the checkpoint's top-level module holding the key
        return key.partition(sep)[0] if sep in key else ''

    placed_tops = {top(s) for s in witness}
    held = Counter(top(s) for s in src)
    mapped = Counter(top(s) for s in mapping)

    def lone(s, d):
        # a pair the witness made and doubted, whose top-level module of the
        # checkpoint is four times larger and sends it nothing: a part of a
        # network that the model does not hold
        return (d in doubted.get(s, ()) and top(s) not in placed_tops
                and held[top(s)] >= 4 * mapped[top(s)])

    return {s for s, d in mapping.items()
            if (witness.get(s) != d if s in unnamed
                else s in witness and witness[s] != d or taken.get(d, s) != s
                or lone(s, d)
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
    parts, part_of = parts_around(problem, mapping)
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
    **WHOLE_FIT_CHECKS,
}
