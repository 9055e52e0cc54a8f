"""
Pairs that fill one module from a rival copy of the module that fills it.

A general mode may skip a level on either side, so two sibling source
modules can both feed one destination module: a checkpoint holding a
headless network (``stage.conv``, ``stage.bn``) beside another whole one
(``body.conv``, ``body.bn``, ``body.fc``) loaded into the first network
with its head (``conv``, ``bn``, ``fc``) gets ``stage``'s tensors and
``body.fc``. But ``body`` has a ``conv`` too, and it is not the one the
model's ``conv`` holds: ``body`` is another network of the same names,
and nothing says its ``fc`` is the model's (mutation fuzz seed 9005: a
resnext50 without its fc beside a resnet50, into a resnext50). Such pairs
are left out; a split checkpoint (``backbone.conv``, ``head.fc``) shares
no name between its parts and keeps its pairs. Positions (numbered
children) are no names: the parts of a list cut in two share them.

The mirror on the model's side (:func:`rival_places`): a checkpoint whose
bulk went to one model module, and a small part of it (``classifier``) to
another module that has a child named like the bulk (``features``), gives
that module another network's part: a model holding an efficientnet_b0 as
``nn.Sequential(*children)`` beside a mobilenet_v2 (whose classifier has
the b0's shape) does not take its classifier from the mobilenet_v2's
name (mutation fuzz seed 9477). And when names say nothing of the other
network (:func:`stray_parts`: a timm efficientnet_b0's ``classifier``
into a mobilenet_v2's ``classifier.1``, seed 9650), a part that went
beside the bulk while the bulk's module has an empty module of the same
tensors fits two places; and when the bulk fills a model module whole
(:func:`foreign_parts`), a small part that went into another network of
the model, hung under another wrapper, went there by name alone. With no
bulk at all (:func:`lone_namesakes`), a small part placed by its name while
the rest of its network, named like the model's and of other shapes, went
nowhere is another network's part; and a module paired by its name alone
whose tensors must be shoved, the only pair of two networks that share
nothing else (:func:`lone_shoves`), is another network's head.

Example:
    >>> from torch_liberator.rivalsources import rival_pairs
    >>> src = ['stage.conv.weight', 'body.conv.weight', 'body.fc.weight']
    >>> mapping = {'stage.conv.weight': 'conv.weight', 'body.fc.weight': 'fc.weight'}
    >>> rival_pairs(mapping, src)
    {'body.fc.weight': 'fc.weight'}
    >>> rival_pairs({'stage.conv.weight': 'conv.weight', 'head.fc.weight': 'fc.weight'},
    ...             ['stage.conv.weight', 'head.fc.weight'])
    {}
"""
from bisect import bisect_left
from collections import Counter
from typing import Dict, Iterable, Mapping

from torch_liberator.keygroups import module_pairs, module_signatures
from torch_liberator.shapes import is_kernel, shape_relation

__all__ = ['feeder_nodes', 'foreign_parts', 'lone_namesakes', 'lone_shoves', 'rival_pairs',
           'rival_places', 'stray_parts']


def feeder_nodes(src_module: str, dst_module: str, sep: str = '.'):
    """
    The source and destination nodes above the longest common suffix of
    two keys of one leaf name, given their modules ('' is the root), and the
    first label of that suffix (None when it is the leaf's name alone): the
    two places whose correspondence the pair of keys rests on.

    Example:
        >>> from torch_liberator.rivalsources import feeder_nodes
        >>> feeder_nodes('features.stage4.part.1.conv', 'stage4.core.1.conv')
        ('features.stage4.part', 'stage4.core', '1')
        >>> feeder_nodes('layer1.0', 'backbone.body.layer1.0')
        ('', 'backbone.body', 'layer1')
    """
    if src_module == dst_module:
        return '', '', src_module.partition(sep)[0] or None
    if dst_module.endswith(sep + src_module) and src_module:
        return '', dst_module[:-len(src_module) - len(sep)], src_module.partition(sep)[0]
    if src_module.endswith(sep + dst_module) and dst_module:
        return src_module[:-len(dst_module) - len(sep)], '', dst_module.partition(sep)[0]
    x, n, label = src_module, dst_module, None
    while x and n:
        x_head, _, x_label = x.rpartition(sep)
        n_head, _, n_label = n.rpartition(sep)
        if x_label != n_label:
            break
        x, n, label = x_head, n_head, x_label
    return x, n, label


def _nested(a, b, sep):
    """Whether one of two node paths is at or below the other ('' is the root)."""
    return (not a or not b or a == b or a.startswith(b + sep) or b.startswith(a + sep))


def _child_labels(keys, nodes, sep):
    """Each of ``nodes`` (paths, '' the root) -> the labels of its children in ``keys``."""
    children = {x: set() for x in nodes}
    for key in keys:
        parts = key.split(sep)
        for i in range(len(parts)):
            below = children.get(sep.join(parts[:i]))
            if below is not None:
                below.add(parts[i])
    return children


def rival_pairs(mapping: Mapping[str, str], src_keys: Iterable[str],
                sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` that fill a destination module ``N`` from a
    source module ``X`` (the nodes above the longest common suffix of the two
    keys) while another source module ``Y``, neither above nor below ``X``,
    fills ``N`` too and fills ``N.L`` for a named child ``L`` that ``X``
    also has: ``X`` is a rival copy of ``Y``, not the other part of it.

    Args:
        mapping: source key -> destination key.
        src_keys: every source key (the children of ``X`` are read from them).
        sep: separator between path components.

    Returns:
        Dict[str, str]: the rival pairs, a sub-mapping of ``mapping``.

    Example:
        >>> from torch_liberator.rivalsources import rival_pairs
        >>> src = ['a.conv.weight', 'a.bn.weight', 'b.conv.weight', 'b.bn.weight', 'b.fc.weight']
        >>> rival_pairs({'a.conv.weight': 'conv.weight', 'a.bn.weight': 'bn.weight',
        ...              'b.fc.weight': 'fc.weight'}, src)
        {'b.fc.weight': 'fc.weight'}
    """
    modules = {}  # (source module, destination module) -> leaf names
    for s, d in mapping.items():
        s_module, _, s_leaf = s.rpartition(sep)
        d_module, _, d_leaf = d.rpartition(sep)
        if s_leaf == d_leaf:
            modules.setdefault((s_module, d_module), set()).add(s_leaf)
    fed = {}  # destination node -> {source node: {first labels}}
    where = {}  # (source module, destination module) -> (source node, destination node)
    for (s_module, d_module), leaves in modules.items():
        x, n, label = feeder_nodes(s_module, d_module, sep)
        where[s_module, d_module] = (x, n)
        fed.setdefault(n, {}).setdefault(x, set()).update([label] if label else leaves)
    shared = {n: feeders for n, feeders in fed.items() if len(feeders) > 1}
    if not shared:
        return {}
    wanted = {x for feeders in shared.values() for x in feeders}
    children = _child_labels(src_keys, wanted, sep)
    rivals = set()
    for n, feeders in shared.items():
        for x, labels in feeders.items():
            names = {c for c in children[x] - labels if not c.isdigit()}
            if any(names & other for y, other in feeders.items()
                   if y != x and not _nested(x, y, sep)):
                rivals.add((x, n))
    return {s: d for s, d in mapping.items()
            if where.get((s.rpartition(sep)[0], d.rpartition(sep)[0])) in rivals
            and s.rpartition(sep)[2] == d.rpartition(sep)[2]}


def _groups(mapping, sep):
    """The pairs of ``mapping`` by ``(source node, destination node)`` above
    the longest common suffix of their two keys (same leaf names only),
    with the first labels of those suffixes."""
    groups = {}
    for s, d in mapping.items():
        s_module, _, s_leaf = s.rpartition(sep)
        d_module, _, d_leaf = d.rpartition(sep)
        if s_leaf != d_leaf:
            continue
        x, n, label = feeder_nodes(s_module, d_module, sep)
        pairs, labels = groups.setdefault((x, n), ({}, set()))
        pairs[s] = d
        labels.add(label or s_leaf)
    return groups


def rival_places(mapping: Mapping[str, str], dst_keys: Iterable[str],
                 sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` that fill a destination module ``N`` from a
    source module ``X`` (the nodes above the longest common suffix of the two
    keys) while more of ``X`` (``X.C`` or ``X`` itself under label ``C``)
    went to a destination module beside ``N``, and ``N`` has a named child
    ``C`` of its own: ``N`` is another network of ``X``'s names, the bulk of
    ``X`` went elsewhere, and the small part in ``N`` is there by name alone.

    Args:
        mapping: source key -> destination key.
        dst_keys: every destination key (the children of ``N`` are read from them).
        sep: separator between path components.

    Returns:
        Dict[str, str]: the rival pairs, a sub-mapping of ``mapping``.

    Example:
        >>> from torch_liberator.rivalsources import rival_places
        >>> dst = ['main.0.0.weight', 'main.0.1.weight', 'main.2.weight',
        ...        'other.features.0.weight', 'other.classifier.weight']
        >>> mapping = {'features.0.weight': 'main.0.0.weight', 'features.1.weight': 'main.0.1.weight',
        ...            'classifier.weight': 'other.classifier.weight'}
        >>> rival_places(mapping, dst)
        {'classifier.weight': 'other.classifier.weight'}
    """
    groups = _groups(mapping, sep)
    if len(groups) < 2:
        return {}
    children = _child_labels(dst_keys, {n for _, n in groups}, sep)
    rivals = {}
    for (x, n), (pairs, labels) in groups.items():
        names = {c for c in children[n] - labels if not c.isdigit()}
        if not names:
            continue  # N holds no named child left unfilled: no rival to look for
        for (y, m), (other, other_labels) in groups.items():
            if _nested(n, m, sep) or len(other) <= len(pairs):
                continue
            if y == x:
                parts = other_labels
            elif not x or y.startswith(x + sep):
                parts = {y[len(x) + len(sep) if x else 0:].partition(sep)[0]}
            else:
                continue
            if names & parts:
                rivals.update(pairs)
                break
    return {s: d for s, d in mapping.items() if s in rivals}


def _parts(mapping, sep):
    """``(prefix, {label: pairs})``: the pairs of ``mapping`` by the child of
    the lowest module holding all their destinations (``prefix``, a list of
    labels) that holds them; None when there are fewer than two pairs, a
    destination lies in that module itself or one child holds them all."""
    if len(mapping) < 2:
        return None
    paths = [d.split(sep) for d in mapping.values()]
    depth = 0
    while all(len(p) > depth + 1 and p[depth] == paths[0][depth] for p in paths):
        depth += 1
    if any(len(p) == depth + 1 for p in paths):
        return None  # a tensor beside the modules: no module to compare
    parts = {}
    for s, p in zip(mapping, paths):
        parts.setdefault(p[depth], {})[s] = mapping[s]
    if len(parts) < 2:
        return None
    return paths[0][:depth], parts


def _whole_module(keys, all_keys, sep):
    """Whether ``keys`` are every key of the lowest module holding them all."""
    paths = [k.split(sep)[:-1] for k in keys]
    depth = 0
    while all(len(p) > depth and p[depth] == paths[0][depth] for p in paths):
        depth += 1
    prefix = sep.join(paths[0][:depth])
    if not prefix:
        return False
    below = sum(1 for k in all_keys if k.startswith(prefix + sep))
    return below == len(keys)


def foreign_parts(mapping: Mapping[str, str], src_keys: Iterable[str], dst_keys: Iterable[str],
                  sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` that put a small part of the checkpoint (an
    eighth at most, a whole module of it) into a model module beside the
    ones its bulk (the rest) filled (nearly) whole, a module that takes a
    quarter of its keys at most from the checkpoint, and that hangs in the
    model otherwise than the bulk (under another wrapper level): the model
    holds another network there, and the part (a classifier, by its name
    and shape) came to it by name alone (mutation fuzz seed 10819: a timm
    efficientnet_b0's classifier into a mnasnet beside the headless b0).
    When the module it went to is 32 times the part or more, the bulk need
    not fill its own whole: the part is a sliver of a network that gets
    nothing else, a head by its name alone (seen from the model, cross
    fuzz seed 820 of ``--wide --reorder``: a resnext50's ``fc`` beside a
    headless inception_v3 in the checkpoint, into an inception_v3 whose
    body the order placed in part).

    Args:
        mapping: source key -> destination key.
        src_keys: every source key.
        dst_keys: every destination key.
        sep: separator between path components.

    Returns:
        Dict[str, str]: the foreign pairs, a sub-mapping of ``mapping``.

    Example:
        >>> from torch_liberator.rivalsources import foreign_parts
        >>> dst = [f'main.{i}.weight' for i in range(8)] + [
        ...     'other.a.weight', 'other.b.weight', 'other.c.weight', 'other.fc.weight']
        >>> mapping = {f'c{i}.weight': f'main.{i}.weight' for i in range(8)}
        >>> mapping['fc.weight'] = 'other.fc.weight'
        >>> foreign_parts(mapping, list(mapping), dst)
        {'fc.weight': 'other.fc.weight'}
    """
    found = _parts(mapping, sep)
    if found is None:
        return {}
    prefix, parts = found
    size = Counter()
    start = len(prefix)
    for key in dst_keys:
        path = key.split(sep)
        if len(path) > start + 1 and path[:start] == prefix:
            size[path[start]] += 1
    foreign = {}
    for label, pairs in parts.items():
        if 8 * len(pairs) > len(mapping) or 4 * len(pairs) > size[label] or label.isdigit():
            continue  # (items of one list are parts of one sequence)
        # the bulk: the rest of the checkpoint, filling its modules (nearly) whole
        rest = [other for other in parts if other != label]
        if any(other.isdigit() for other in rest):
            continue
        if (10 * sum(len(parts[other]) for other in rest) < 9 * sum(size[other] for other in rest)
                and 32 * len(pairs) > size[label]):
            continue  # the bulk's own network is not filled, and the part is
            # no sliver of the module it went to: no other one to tell
        # where the bulk's keys hang in the model (their common suffixes' tops)
        hangs = Counter(n for other in rest for (_, n), (group, _) in _groups(parts[other], sep).items()
                        for _ in group).most_common(1)
        if hangs and all(n == hangs[0][0] for _, n in _groups(pairs, sep)):
            continue  # hung as the bulk is: one network's parts (a detector's box head)
        if not _whole_module(list(pairs), src_keys, sep):
            continue  # a sliver on both sides: one stage aligned in part
        foreign.update(pairs)
    return {s: d for s, d in mapping.items() if s in foreign}


def stray_parts(mapping: Mapping[str, str], dst_shapes: Mapping, sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` whose destinations lie in a model module beside
    the one that holds most of them (below the lowest module holding all),
    when that module has empty modules of the same tensors (leaf names and
    shapes) for destination modules of the part holding most of its
    tensors: the part fits the bulk's own place as well as the one it went
    to (a classifier by name into another network beside the one the
    features went to). The part is left out whole: what of it has no room
    in the bulk's module (mc3_18's fc, beside r3d_18's children[:-1], took
    the r3d_18 checkpoint's fc by name, with the stem and first stage that
    belong in the children) went there by the same mistake. A part none
    of whose layers (modules holding a kernel) has room is no stray,
    however many of its norms have: a norm of one width fits many places
    (timm's regnetx_004 into torchvision's regnet_x_400mf, whose last
    stages differ in width: the stem, a convolution of its own and a
    BatchNorm of 32 channels, went to the model's stem, and the empty
    first block has BatchNorms of 32). Unknown shapes decide nothing.

    Args:
        mapping: source key -> destination key.
        dst_shapes: every destination key -> its shape.
        sep: separator between path components.

    Returns:
        Dict[str, str]: the stray pairs, a sub-mapping of ``mapping``.

    Example:
        >>> from torch_liberator.rivalsources import stray_parts
        >>> dst = {'main.0.weight': (8, 3), 'main.1.weight': (8, 8), 'main.2.weight': (5, 8),
        ...        'other.features.weight': (4, 3), 'other.classifier.weight': (5, 8)}
        >>> mapping = {'conv.weight': 'main.0.weight', 'mid.weight': 'main.1.weight',
        ...            'classifier.weight': 'other.classifier.weight'}
        >>> stray_parts(mapping, dst)
        {'classifier.weight': 'other.classifier.weight'}
    """
    found = _parts(mapping, sep)
    if found is None:
        return {}
    prefix, parts = found
    sizes = sorted((len(pairs), label) for label, pairs in parts.items())
    if sizes[-1][0] == sizes[-2][0]:
        return {}
    bulk = sep.join(prefix + [sizes[-1][1]])
    signatures = module_signatures(dst_shapes, sep)
    filled = {d.rpartition(sep)[0] for d in mapping.values()}
    free = Counter(sig for m, sig in signatures.items()
                   if (m == bulk or m.startswith(bulk + sep)) and m not in filled)
    stray = {}
    for label, pairs in parts.items():
        if label == sizes[-1][1]:
            continue
        modules = Counter(d.rpartition(sep)[0] for d in pairs.values())
        if any(shape is None for m in modules for _, shape in signatures[m]):
            continue
        # the part's modules that an empty module of the bulk could hold
        room, fits, kernels = Counter(free), 0, [0, 0]  # kernel modules: with room, in all
        for module, count in sorted(modules.items()):
            kernel = any(is_kernel(shape) for _, shape in signatures[module])
            kernels[1] += kernel
            if room[signatures[module]]:
                room[signatures[module]] -= 1
                fits += count
                kernels[0] += kernel
        if fits * 2 > len(pairs) and (kernels[0] or not kernels[1]):
            stray.update(pairs)
    return {s: d for s, d in mapping.items() if s in stray}


def lone_namesakes(mapping: Mapping[str, str], src_shapes: Mapping, dst_shapes: Mapping,
                   sep: str = '.') -> Dict[str, str]:
    """
    The pairs of ``mapping`` that fill a small part of a destination module
    ``N`` from a source module ``X`` (the nodes above the longest common
    suffix of the two keys) by its name alone while the rest of ``X`` is
    another network of ``N``'s names: ``X`` and ``N`` share other named
    children, at least four times the part's tensors in ``X``, none of
    which went anywhere, and a quarter of their tensors at least have
    other shapes than their namesakes below ``N``. Its head (``fc``) fits
    by name and shape, and that is all (mutation fuzz seeds 12659, 13322:
    a resnet50's ``fc`` into a resnext50's while a resnext50 beside the
    resnet50 in the checkpoint, or in the model, took nothing in
    ``structure``). When all the pairs lie below one module on both sides,
    that module is the part's network (seed 13978: a resnet18 saved as
    ``stage``, into a resnext50 wrapped as ``stem.stage``, lends it neither
    stem nor head). When the rest has the same shapes, it is the same
    network, only not placed (its order lost with the keys sorted), and the
    part stays.

    Example:
        >>> from torch_liberator.rivalsources import lone_namesakes
        >>> src = {f'net.layer{i}.conv.weight': (8, 8) for i in range(4)}
        >>> src['net.fc.weight'] = (5, 8)
        >>> dst = {f'layer{i}.conv.weight': (16, 8) for i in range(4)}
        >>> dst['fc.weight'] = (5, 8)
        >>> lone_namesakes({'net.fc.weight': 'fc.weight'}, src, dst)
        {'net.fc.weight': 'fc.weight'}
        >>> same = {k: (8, 8) if 'conv' in k else v for k, v in dst.items()}
        >>> lone_namesakes({'net.fc.weight': 'fc.weight'}, src, same)
        {}
    """
    unused = len(src_shapes) - len(mapping)  # the rest of a lone part's network is among these
    if unused < 4:
        return {}
    groups = _groups(mapping, sep)
    src_keys, dst_keys = sorted(src_shapes), sorted(dst_shapes)

    def below(keys, node):
        """``{child label: keys below it}`` of ``node`` ('' the root)."""
        start = node + sep if node else ''
        found = {}
        for key in keys[bisect_left(keys, start):]:
            if not key.startswith(start):
                break
            label, _, rest = key[len(start):].partition(sep)
            if rest:  # a tensor of the module itself is no child
                found.setdefault(label, []).append(key)
        return found

    lone = {}
    for (x, n), (pairs, labels) in groups.items():
        if unused < 4 * len(pairs):
            continue
        while len(labels) == 1 and all(s.count(sep) > (x.count(sep) + 1 if x else 0) + 1
                                       for s in pairs):
            # all the pairs below one child, a module: it is the part's network
            # (a checkpoint's `stage.*` into the model's `stem.stage.*`)
            label = labels.pop()
            x, n = (x + sep + label if x else label), (n + sep + label if n else label)
            depth = x.count(sep) + 1
            labels = {s.split(sep)[depth] for s in pairs}
        x_children, n_children = below(src_keys, x), below(dst_keys, n)
        shared = {c for c in x_children.keys() & n_children.keys()
                  if not c.isdigit() and c not in labels}
        held = [k for c in shared for k in x_children[c]]
        if not held or len(held) < 4 * len(pairs) or any(k in mapping for k in held):
            continue
        x_start, n_start = (x + sep if x else ''), (n + sep if n else '')
        namesakes = [(k, n_start + k[len(x_start):]) for k in held]
        namesakes = [(k, d) for k, d in namesakes if d in dst_shapes]
        other = sum(shape_relation(src_shapes[k], dst_shapes[d]) not in ('equal', 'units')
                    for k, d in namesakes)
        if namesakes and 4 * other >= len(namesakes):
            lone.update(pairs)
    return {s: d for s, d in mapping.items() if s in lone}


def lone_shoves(mapping: Mapping[str, str], src_shapes: Mapping, dst_shapes: Mapping,
                sep: str = '.') -> Dict[str, str]:
    """
    The pairs of the module pairs of ``mapping`` that must shove a tensor
    (shapes of other sizes) while nothing else pairs below their parents,
    both of which hold other tensors: the module is the one name two
    different networks share, not one network's layer of another width
    (mutation fuzz seed 20518: a wide_resnet50 saved as ``main`` beside a
    flattened regnet, into a model whose ``main`` is that regnet; strict
    shoved the resnet's ``fc`` into the regnet's, its bias of equal shape
    along); likewise the modules below the first common module that holds
    tensors paired nowhere, when every pair below it shoves and a child of
    one name holds tensors on both sides and pairs nothing (the two
    ``trunk``s are other networks: :func:`_in_namesakes_apart`). A module
    of its own (a 1000-class ``fc`` into a 10-class one, nothing beside it)
    and a network of other widths, whose other layers pair by the same
    names, keep their pairs.

    Example:
        >>> from torch_liberator.rivalsources import lone_shoves
        >>> src = {'net.conv.weight': (8, 3), 'net.fc.weight': (10, 8), 'net.fc.bias': (10,)}
        >>> dst = {'net.stem.weight': (4, 3), 'net.fc.weight': (10, 4), 'net.fc.bias': (10,)}
        >>> sorted(lone_shoves({k: k for k in ('net.fc.weight', 'net.fc.bias')}, src, dst))
        ['net.fc.bias', 'net.fc.weight']
        >>> wider = {'net.conv.weight': (16, 3), 'net.fc.weight': (10, 16), 'net.fc.bias': (10,)}
        >>> lone_shoves({k: k for k in src}, src, wider)
        {}
    """
    shoves = {s for s, d in mapping.items()
              if shape_relation(src_shapes[s], dst_shapes[d]) in ('same_rank', 'different_rank')}
    if not shoves:
        return {}  # (most mappings: no grouping then)
    modules = module_pairs(mapping, sep)  # (source module, destination module) -> its source keys
    shoved = [pair for pair, keys in modules.items()
              if pair[0] and pair[1] and not shoves.isdisjoint(keys)]
    if not shoved:
        return {}
    below = Counter()  # (source node, destination node) -> module pairs at or below both
    shoved_below = Counter()  # ... of which shove
    shoving = set(shoved)
    for x, y in modules:
        shoves_here = (x, y) in shoving
        below[x, y] += 1  # (a module's own tensors beside its child: an attention's in_proj)
        shoved_below[x, y] += shoves_here
        while x and y:
            x, y = x.rpartition(sep)[0], y.rpartition(sep)[0]
            below[x, y] += 1
            shoved_below[x, y] += shoves_here
    src_keys, dst_keys = sorted(src_shapes), sorted(dst_shapes)
    paired = (set(mapping), set(mapping.values()))
    contents = {}
    lone = {}
    for x, y in shoved:
        parents = (x.rpartition(sep)[0], y.rpartition(sep)[0])
        if ((below[parents] == 1 and _holds_more(src_keys, parents[0], x, sep)
                and _holds_more(dst_keys, parents[1], y, sep))
                or _in_namesakes_apart((x, y), below, shoved_below, (src_keys, dst_keys),
                                       paired, contents, sep)):
            lone.update((s, mapping[s]) for s in modules[x, y])
    return lone


def _in_namesakes_apart(node, below, shoved_below, keys, paired, contents, sep):
    """
    Whether, up from the module pair ``node`` while every pair below
    shoves, the first ancestor pair that holds keys paired nowhere on both
    sides also holds a child of one name on both sides below which nothing
    pairs: the two are different networks that share some names (the
    checkpoint's ``trunk`` a VGG, the model's a mobilenet_v3: both
    ``classifier.{0,3}`` shove, both ``features`` pair nothing; mutation
    fuzz seed 157 of ``--wide``). ``contents`` caches
    :func:`_children_apart` per node.
    """
    while node[0] and node[1] and shoved_below[node] == below[node]:
        node = (node[0].rpartition(sep)[0], node[1].rpartition(sep)[0])
        found = []
        for side in (0, 1):
            if (side, node[side]) not in contents:
                contents[side, node[side]] = _children_apart(
                    keys[side], node[side], paired[side], sep)
            found.append(contents[side, node[side]])
        (src_unpaired, src_apart), (dst_unpaired, dst_apart) = found
        if src_unpaired and dst_unpaired:
            return shoved_below[node] == below[node] and not src_apart.isdisjoint(dst_apart)
    return False


def _children_apart(keys, node, paired, sep):
    """``(whether node holds a key not in paired, the labels of its
    children that hold keys, none of them paired)``."""
    start = node + sep if node else ''
    holding, pairing, unpaired = set(), set(), False
    for key in keys[bisect_left(keys, start):]:
        if not key.startswith(start):
            break
        label = key[len(start):].partition(sep)[0]
        holding.add(label)
        if key in paired:
            pairing.add(label)
        else:
            unpaired = True
    return unpaired, holding - pairing


def _holds_more(keys, node, module, sep):
    """Whether ``node`` ('' the root) holds a key of the sorted ``keys``
    outside its descendant ``module``."""
    start, inside = (node + sep if node else ''), module + sep
    for key in keys[bisect_left(keys, start):]:
        if not key.startswith(start):
            return False
        if not key.startswith(inside):
            return True
    return False
