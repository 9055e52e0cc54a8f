"""
Parts moved under other names: lists cut, moved or spliced, and names joined.

A network's repeated blocks are a list (``blocks.{0..7}``), and code that
reuses a network reshapes its lists without renaming what is inside the
items: it cuts a list into consecutive parts, each renumbered from 0
(``blocks.{0..7}`` -> ``early.{0..2}`` + ``late.{0..4}``, as SSD cuts VGG),
moves a list whole under numbered labels of another form
(``encoder.layers.encoder_layer_{i}`` -> ``blocks.{i}``), or splices a list's
sub-lists into one flat list (``features.{0..7}`` whose stages become
``{0..21}``). Names alone cannot follow these: the numbers no longer say
which item is which. The order can, when the items agree whole.

A *list* is a node whose children are all numbered modules: labels that
are numbers, or numbered labels of one common stem (``encoder_layer_3``,
``denselayer3``, ``block2-3``: item 3) whose items hold submodules
(``fc1``, ``fc2`` are two named layers, not a list). Its items are taken in
the order of their numbers. An item's *signature* is its relative key
paths with their shapes (size-1 dimensions dropped): two items agree when
everything below them does, names and shapes.

A list ``L`` of one tree *fits* a run of the other tree: consecutive lists
among one node's children (in registration order, the model's own), whose
items, concatenated, agree one-to-one with ``L``'s items in order; an item
of ``L`` that is itself a list may be spliced (its items take its place),
and the alignment must be the only one. A fit is kept only when:

* it has evidence beyond one list of the same length: two parts or more (a
  list cut), a spliced item, or numbered labels of another form on either
  side (the list moved whole); a plain list that fits another plain list is
  left to the name-based solvers, but still counts as a rival;
* it has no rival: no other run fits ``L``, no other list fits any of its
  parts (two equal lists side by side, or a part that could belong to two
  lists), and it shares no key with another fit;
* names do not point elsewhere: ``L``'s namesake on the other side, if
  any, is a part or holds the parts (``layer3`` cut into ``layer3`` and
  ``layer3_tail``), and no item has a namesake that agrees with it whole
  other than its partner.

Registration order is the evidence for the order of the parts: parts of
equal blocks registered in another order than they run are beyond what
keys and shapes can tell.

A module may also move under a *joined* name: timm's ``features_only``
models register ``stages.0`` as ``stages_0``, and torchvision's densenet
once registered a dense layer's ``norm1`` as ``norm.1``. A label that is
the ``_``-join of a path of several levels on the other side, or a word
and a number written together, below the same parent path, is that path
when the two agree whole and nothing else explains the label.

Shapes must be known on both sides (with names only, a list of the same
length would pass for the same list). Everything is sought both ways: a
checkpoint of the whole list into a model of parts, and a checkpoint of
parts into a model of the whole list. Pairs that two fits give
differently are left out, both fits whole.

Notes:
    Cost: ``O(N)`` to build the signatures of ``N`` keys, plus, per node,
    ``O(m * MAX_PARTS)`` runs of its ``m`` list children, each looked up by
    its key count and concatenated signatures; a splice is aligned by an
    ``O(n * n')`` count of alignments only against lists of the same number
    of keys; a joined label of ``w`` words tries ``2 ** (w - 1)`` paths.

Example:
    >>> from torch_liberator.keytree import KeyTree
    >>> from torch_liberator.movedparts import moved_part_pairs
    >>> def block(prefix, width):
    ...     return {prefix + '.conv.weight': (width, width, 3, 3),
    ...             prefix + '.norm.weight': (width,)}
    >>> src = {}
    >>> for i, w in enumerate([8, 8, 16, 16, 16]):
    ...     src.update(block(f'blocks.{i}', w))
    >>> dst = {}
    >>> for i, w in enumerate([8, 8, 16]):
    ...     dst.update(block(f'early.{i}', w))
    >>> for i, w in enumerate([16, 16]):
    ...     dst.update(block(f'late.{i}', w))
    >>> pairs = moved_part_pairs(KeyTree(src, shapes=src), KeyTree(dst, shapes=dst))
    >>> pairs['blocks.3.conv.weight'], pairs['blocks.2.norm.weight']
    ('late.0.conv.weight', 'early.2.norm.weight')
"""
import itertools
import os
import re
from typing import Dict, List, Optional, Tuple

from torch_liberator.keytree import KeyTree
from torch_liberator.shapes import squeeze_units

__all__ = ['MAX_ALIGNED', 'MAX_JOINED', 'MAX_PARTS', 'MAX_PERMUTED', 'ORDINAL_WORDS',
           'labels_in_order', 'moved_part_pairs', 'numbered_items']

#: a run holds at most this many consecutive parts
MAX_PARTS = 8

#: parts of a run whose labels do not give their order are tried in every
#: other order (to see whether only the registration order fits) up to
#: this many parts
MAX_PERMUTED = 5

#: a splice is aligned only when (items of the list) * (items of the flat
#: list) is at most this
MAX_ALIGNED = 1 << 18

#: words that give the order of parts, in order
ORDINAL_WORDS = (('first', 'second', 'third', 'fourth', 'fifth', 'sixth'),
                 ('early', 'mid', 'middle', 'late'), ('low', 'mid', 'middle', 'high'),
                 ('head', 'tail'), ('front', 'back'))

#: a label joins at most this many ``_``-separated words (``stages_0``: 2)
MAX_JOINED = 6

_NUMBERED = re.compile(r'^(.*?)(\d+)$')


def numbered_items(tree: KeyTree, node: int) -> Optional[Tuple[List[int], bool]]:
    """
    ``(items in order, renumbered)`` when ``node`` of ``tree`` is a list,
    else None: every child has submodules or tensors below it and a
    numbered label (a number, or one stem and a number: ``encoder_layer_3``,
    whose items then hold submodules); items in the order of their numbers;
    ``renumbered`` when the labels carry a stem.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.movedparts import numbered_items
        >>> tree = KeyTree(['layers.encoder_layer_1.ln.w', 'layers.encoder_layer_0.ln.w',
        ...                 'se.fc1.w', 'se.fc2.w'])
        >>> items, renumbered = numbered_items(tree, tree.child(0, 'layers'))
        >>> [tree.label[n] for n in items], renumbered
        (['encoder_layer_0', 'encoder_layer_1'], True)
        >>> numbered_items(tree, tree.child(0, 'se')) is None  # two named layers
        True
    """
    kids = tree.children[node]
    if not kids or tree.key[node] is not None:
        return None
    stems, numbered = set(), []
    for kid in kids:
        if not tree.children[kid]:
            return None  # a tensor directly below: a module, not a list
        found = _NUMBERED.match(tree.label[kid])
        if found is None:
            return None
        stems.add(found.group(1))
        numbered.append((int(found.group(2)), kid))
    if len(stems) != 1 or len({n for n, _ in numbered}) != len(numbered):
        return None
    numbered.sort()
    renumbered = stems != {''}
    if renumbered and not all(
            any(tree.children[g] for g in tree.children[kid]) for _, kid in numbered):
        # numbered names of modules (fc1, fc2; conv1, conv2) are names,
        # not items: an item of a list of that form is a block that holds
        # submodules (encoder_layer_3.ln_1)
        return None
    return [kid for _, kid in numbered], renumbered


class _Side:
    """
    One tree's lists and the signatures of their items. On the model's side
    (``model``) the registration order is the model's own: a list whose
    items are registered in another order than their numbers (``stack2``
    before ``stack1``) is no list, its order is in doubt. A checkpoint's
    key order is not evidence (files sort their keys): numbers decide.
    """

    def __init__(self, tree, sig_ids, model):
        self.tree = tree
        self.sig_ids = sig_ids  # shared by both sides
        self.sig = {}      # node -> signature id (None: a shape unknown)
        self.lists = {}    # node -> (items, renumbered)
        self.squeezed = {}  # shape -> shape without its size-1 dimensions
        children = tree.children
        for node in range(tree.num_nodes):
            if not children[node] or not children[children[node][0]]:
                continue  # a tensor, or a module with a tensor first
            found = numbered_items(tree, node)
            if found is not None and not (
                    model and found[0] != [k for k in tree.children[node]]):
                self.lists[node] = found

    def signature(self, node):
        """An id shared by the nodes whose subtrees agree whole."""
        if node in self.sig:
            return self.sig[node]
        tree = self.tree
        cut = len(tree.path(node)) + len(tree.sep)
        parts = []
        for key in tree.keys_below(node):
            shape = tree.shape[key]
            if shape is None or key == node:
                self.sig[node] = None
                return None
            squeezed = self.squeezed.get(shape)
            if squeezed is None:
                squeezed = self.squeezed[shape] = squeeze_units(shape)
            parts.append((tree.key[key][cut:], squeezed))
        parts.sort()
        found = self.sig_ids.setdefault((tree.sep, tuple(parts)), len(self.sig_ids))
        self.sig[node] = found
        return found

    def item_sigs(self, node):
        sigs = [self.signature(item) for item in self.lists[node][0]]
        return None if None in sigs else tuple(sigs)


def _runs(side):
    """
    ``(parent, parts)`` for every run of consecutive lists (at most
    :data:`MAX_PARTS`) among one node's children. With the keys sorted by
    name, neighbours in the listing are not neighbours in the model: a run
    of several parts is then only all the lists below their parent (``a``,
    ``b`` of parts ``a``, ``c``, ``b`` registered so would be a run).
    """
    tree = side.tree
    if tree.root in side.lists:
        yield None, (tree.root,)  # the model itself is a list
    parents = sorted({tree.parent[node] for node in side.lists if node != tree.root})
    for parent in parents:
        kids = [k for k in tree.children[parent] if tree.children[k]]
        every = None if tree.ordered else sum(k in side.lists for k in kids)
        for start, kid in enumerate(kids):
            parts = []
            for part in kids[start:start + MAX_PARTS]:
                if part not in side.lists:
                    break
                parts.append(part)
                if every is None or len(parts) in (1, every):
                    yield parent, tuple(parts)


def _align(whole, node, items, sigs):
    """
    The item pairs of the only alignment of list ``node`` of ``whole``
    (items spliced or not) with the concatenated ``items`` (signatures
    ``sigs``) of the other side; ``(pairs, spliced)`` or None when there is
    none or more than one.
    """
    own = whole.lists[node][0]
    forms = []  # per item of node: (its signature, its items' signatures)
    for item in own:
        inner = whole.lists.get(item)
        spliced = whole.item_sigs(item) if inner is not None else None
        forms.append((whole.signature(item), spliced))
    n, m = len(own), len(items)
    if n * m > MAX_ALIGNED:
        return None
    # count[i][j]: alignments (capped at 2) of the first i items with the
    # first j
    count = [[0] * (m + 1) for _ in range(n + 1)]
    count[0][0] = 1
    for i, (sig, spliced) in enumerate(forms, 1):
        for j in range(1, m + 1):
            ways = 0
            if sig is not None and sigs[j - 1] == sig:
                ways += count[i - 1][j - 1]
            if spliced and j >= len(spliced) and sigs[j - len(spliced):j] == spliced:
                ways += count[i - 1][j - len(spliced)]
            count[i][j] = min(ways, 2)
    if count[n][m] != 1:
        return None
    pairs, used_splice = [], False
    j = m
    for i in range(n, 0, -1):
        sig, spliced = forms[i - 1]
        if sig is not None and sigs[j - 1] == sig and count[i - 1][j - 1]:
            pairs.append((own[i - 1], items[j - 1]))
            j -= 1
        else:
            subitems = whole.lists[own[i - 1]][0]
            pairs.extend(zip(subitems, items[j - len(spliced):j]))
            j -= len(spliced)
            used_splice = True
    pairs.reverse()
    return pairs, used_splice


def _cores(labels):
    """What differs between ``labels`` once their common prefix and
    suffix are cut (``stack1``, ``stack2`` -> ``1``, ``2``)."""
    prefix = os.path.commonprefix(labels)
    rest = [label[len(prefix):] for label in labels]
    suffix = os.path.commonprefix([r[::-1] for r in rest])[::-1]
    return [r[:len(r) - len(suffix)] for r in rest]


def labels_in_order(labels: List[str], list_label: str) -> bool:
    """
    Whether the part labels, in registration order, say they are in order:
    numbers or letters that increase (``stack1``, ``stack2``;
    ``blocks_a``, ``blocks_b``; ``blocks``, ``blocks2``; the items
    ``features.5.0``, ``features.5.1``), words of one of
    :data:`ORDINAL_WORDS` in its order (``early``, ``late``), or two parts
    of which the first keeps the list's own label (``layer3``,
    ``layer3_tail``).

    Example:
        >>> from torch_liberator.movedparts import labels_in_order
        >>> labels_in_order(['first', 'second'], 'layers'), labels_in_order(['second', 'first'], 'layers')
        (True, False)
        >>> labels_in_order(['stack1', 'stack2'], 'blocks'), labels_in_order(['a', 'b'], 'x')
        (True, True)
    """
    if len(labels) == 2 and labels[0] == list_label:
        return True
    cores = _cores(labels)
    if all(c.isdigit() for c in cores[1:]) and (cores[0].isdigit() or not cores[0]):
        numbers = [int(c) if c else -1 for c in cores]
        return all(a < b for a, b in zip(numbers, numbers[1:]))
    if all(len(c) == 1 and c.isalpha() for c in cores):
        return all(a < b for a, b in zip(cores, cores[1:]))
    for words in ORDINAL_WORDS:
        if all(c in words for c in cores):
            places = [words.index(c) for c in cores]
            return all(a < b for a, b in zip(places, places[1:]))
    return False


def _order_is_known(whole, parts, node, run, sigs):
    """
    Whether the parts of ``run`` (registration order) are known to run in
    that order: no other order of them fits the list (different blocks
    place them), or their labels say so (:func:`labels_in_order`); parts
    of equal blocks with labels that say nothing could have been
    registered in any order.
    """
    t1, t2 = whole.tree, parts.tree
    if labels_in_order([t2.label[p] for p in run], t1.label[node]):
        return True
    if len(run) > MAX_PERMUTED:
        return False
    part_sigs = {p: parts.item_sigs(p) for p in run}
    for order in itertools.permutations(run):
        if order != run and sum((part_sigs[p] for p in order), ()) == sigs:
            return False
    return True


def _fits(whole, parts):
    """
    ``(list node, part nodes, item pairs, has evidence)`` for every list of
    ``whole`` that some run of ``parts`` fits.
    """
    t1, t2 = whole.tree, parts.tree
    by_content = {}  # (keys below, concatenated signatures) -> runs
    flat_by_keys = {}  # keys below -> single lists (candidates to splice into)
    for parent, run in _runs(parts):
        sigs = []
        for part in run:
            found = parts.item_sigs(part)
            if found is None:
                break
            sigs.extend(found)
        else:
            nkeys = sum(t2.num_keys_below(p) for p in run)
            by_content.setdefault((nkeys, tuple(sigs)), []).append(run)
            if len(run) == 1:
                flat_by_keys.setdefault(nkeys, []).append(run)
    found = []
    for node, (items, renumbered) in whole.lists.items():
        sigs = whole.item_sigs(node)
        nkeys = t1.num_keys_below(node)
        seen = set()
        if sigs is not None:
            for run in by_content.get((nkeys, sigs), ()):
                seen.add(run)
                pairs = []
                for part in run:
                    pairs.extend(parts.lists[part][0])
                if len(run) > 1:
                    evidence = _order_is_known(whole, parts, node, run, sigs)
                else:
                    evidence = renumbered or parts.lists[run[0]][1]
                found.append((node, run, list(zip(items, pairs)), evidence))
        if not any(item in whole.lists for item in items):
            continue
        for run in flat_by_keys.get(nkeys, ()):
            if run in seen:
                continue
            target = parts.lists[run[0]][0]
            aligned = _align(whole, node, target, parts.item_sigs(run[0]))
            if aligned is not None:
                found.append((node, run, aligned[0], aligned[1]))
    return found


def _key_pairs(whole, parts, item_pairs):
    """The key pairs below item pairs that agree whole: by relative path."""
    t1, t2 = whole.tree, parts.tree
    pairs = []
    for x, y in item_pairs:
        cut1 = len(t1.path(x)) + len(t1.sep)
        base2 = t2.path(y) + t2.sep
        for key in t1.keys_below(x):
            rel = t1.key[key][cut1:]
            other = t2.node_of_key(base2 + rel.replace(t1.sep, t2.sep))
            pairs.append((key, other))
    return pairs


def _accepted(whole, parts):
    """Key node pairs ``(whole's, parts')`` of the fits without rivals."""
    fits = _fits(whole, parts)
    per_list, per_part = {}, {}
    for node, run, _, _ in fits:
        per_list[node] = per_list.get(node, 0) + 1
        for part in run:
            per_part[part] = per_part.get(part, 0) + 1
    pairs = []
    for node, run, item_pairs, evidence in fits:
        if (evidence and per_list[node] == 1
                and all(per_part[p] == 1 for p in run)
                and not _named_elsewhere(whole, parts, node, run, item_pairs)):
            pairs.append(_key_pairs(whole, parts, item_pairs))
    return pairs


def _namesake(tree, node, other):
    """The node of ``other`` at ``node``'s path in ``tree``, or None."""
    found = other.root
    for label in tree.path(node).split(tree.sep):
        found = other.child(found, label)
        if found is None:
            return None
    return found


def _named_elsewhere(whole, parts, node, run, item_pairs):
    """
    True when names point elsewhere: the list's namesake on the other side
    is neither a part of the run nor above one (``layer3`` cut into
    ``layer3`` and ``layer3_tail``, ``features.5`` into ``features.5.{0,1}``
    are fine), or an item's namesake agrees with it whole and is not its
    partner.
    """
    t1, t2 = whole.tree, parts.tree
    same = _namesake(t1, node, t2)
    if same is not None and not any(
            same == part or same < part < t2.end[same] for part in run):
        return True
    for x, y in item_pairs:
        same = _namesake(t1, x, t2)
        if (same is not None and same != y
                and parts.signature(same) == whole.signature(x)):
            return True
    return False


def _split_joins(tokens):
    """Every way to group ``tokens`` into two components or more, each
    the ``_``-join of consecutive tokens."""
    n = len(tokens)
    for mask in range(1, 2 ** (n - 1)):
        parts, start = [], 0
        for i in range(1, n):
            if mask >> (i - 1) & 1:
                parts.append('_'.join(tokens[start:i]))
                start = i
        parts.append('_'.join(tokens[start:]))
        yield parts


def _node_at(tree, path):
    """The node at ``path`` (``''``: the root), or None."""
    node = tree.root
    for label in (path.split(tree.sep) if path else ()):
        node = tree.child(node, label)
        if node is None:
            return None
    return node


#: a label that is a word and a number written together (``norm1``)
_WORD_NUMBER = re.compile(r'(.*[^\d_])(\d+)')


def _joined(joined, spelled):
    """
    ``[(node of spelled, node of joined)]``: a node of ``joined`` whose
    label is the ``_``-join of a path of several levels of ``spelled``
    below the same parent path (timm's ``features_only`` registers
    ``stages.0`` as ``stages_0``), or a word and a number written together
    (torchvision's densenet once named ``norm1`` as ``norm.1``), when the
    two agree whole and nothing else explains the label: ``spelled`` has
    no node of that label there and ``joined`` none at the spelled path,
    and no other grouping agrees.
    """
    t1, t2 = spelled.tree, joined.tree
    found = []
    anchors = {}  # parent node of joined -> (its path, the node of spelled there)
    for y in range(1, t2.num_nodes):
        label = t2.label[y]
        tokens = label.split('_')
        if (not t2.children[y] or '' in tokens or len(tokens) > MAX_JOINED
                or (len(tokens) == 1 and not label[-1:].isdigit())):
            continue
        parent = t2.parent[y]
        if parent not in anchors:
            path = t2.path(parent)
            anchors[parent] = (path, _node_at(t1, path))
        parent_path, anchor = anchors[parent]
        if anchor is None or t1.child(anchor, label) is not None:
            continue
        numbered = _WORD_NUMBER.fullmatch(label) if len(tokens) == 1 else None
        if len(tokens) == 1 and numbered is None:
            continue
        fits = []
        splits = [list(numbered.groups())] if numbered else _split_joins(tokens)
        for parts in splits:
            x = anchor
            for part in parts:
                x = t1.child(x, part)
                if x is None:
                    break
            else:
                spelled_path = t1.sep.join(filter(None, [parent_path] + parts))
                if (t1.children[x] and _node_at(t2, spelled_path) is None
                        and spelled.signature(x) is not None
                        and spelled.signature(x) == joined.signature(y)):
                    fits.append(x)
        if len(fits) == 1:
            found.append((fits[0], y))
    return found


def moved_part_pairs(tree1: KeyTree, tree2: KeyTree) -> Dict[str, str]:
    """
    Source key -> destination key for the lists moved, cut in parts or
    spliced between two trees, and the modules under joined names (see the
    module docstring).

    Args:
        tree1 (KeyTree): source tree, with shapes.
        tree2 (KeyTree): destination tree, with shapes.

    Returns:
        Dict[str, str]: one-to-one pairs, in no particular order; empty when
        a shape is unknown on either side or nothing fits without a rival.

    Example:
        >>> from torch_liberator.keytree import KeyTree
        >>> from torch_liberator.movedparts import moved_part_pairs
        >>> src = {f'encoder.layers.encoder_layer_{i}.ln.weight': (4,) for i in range(3)}
        >>> dst = {f'blocks.{i}.ln.weight': (4,) for i in range(3)}
        >>> pairs = moved_part_pairs(KeyTree(src, shapes=src), KeyTree(dst, shapes=dst))
        >>> pairs['encoder.layers.encoder_layer_2.ln.weight']
        'blocks.2.ln.weight'
        >>> # two equal lists side by side: either could be the one
        >>> dst2 = {f'{name}.{i}.ln.weight': (4,) for name in ('a', 'b') for i in range(3)}
        >>> moved_part_pairs(KeyTree(src, shapes=src), KeyTree(dst2, shapes=dst2))
        {}
        >>> # timm's features_only names: stages.0 -> stages_0
        >>> src = {'stages.0.conv.weight': (4, 3, 3, 3), 'stages.1.conv.weight': (8, 4, 3, 3)}
        >>> dst = {'stages_0.conv.weight': (4, 3, 3, 3), 'stages_1.conv.weight': (8, 4, 3, 3)}
        >>> pairs = moved_part_pairs(KeyTree(src, shapes=src), KeyTree(dst, shapes=dst))
        >>> for key, value in pairs.items():
        ...     print(key, '->', value)
        stages.0.conv.weight -> stages_0.conv.weight
        stages.1.conv.weight -> stages_1.conv.weight
    """
    if not (any(s is not None for s in tree1.shape)
            and any(s is not None for s in tree2.shape)):
        return {}
    sig_ids = {}
    side1, side2 = _Side(tree1, sig_ids, False), _Side(tree2, sig_ids, True)
    groups = [[(a, b) for a, b in pairs] for pairs in _accepted(side1, side2)]
    groups += [[(a, b) for b, a in pairs] for pairs in _accepted(side2, side1)]
    groups += [_key_pairs(side1, side2, [pair]) for pair in _joined(side2, side1)]
    groups += [[(a, b) for b, a in _key_pairs(side2, side1, [pair])]
               for pair in _joined(side1, side2)]
    # a key in two fits (nested lists, or found both ways differently):
    # neither fit is trusted
    seen1, seen2 = {}, {}
    for index, pairs in enumerate(groups):
        for a, b in pairs:
            seen1.setdefault(a, set()).add((index, b))
            seen2.setdefault(b, set()).add((index, a))
    clash = set()
    for seen in (seen1, seen2):
        for entries in seen.values():
            if len({other for _, other in entries}) > 1:
                clash.update(index for index, _ in entries)
    keys1, keys2 = tree1.key, tree2.key
    return {keys1[a]: keys2[b] for index, pairs in enumerate(groups)
            if index not in clash for a, b in pairs}
