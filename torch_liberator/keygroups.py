"""
A state dict's keys cut into module groups, the units the structure solver
aligns.

Pure: keys and shapes in; no torch needed. A state dict lists each module's
own tensors together, then its children, in registration order, so the keys
fall into *groups*: the tensors that one module holds directly (a
BatchNorm's weight, bias and running statistics). :class:`KeyGroups` holds
one side's groups; :func:`group_tensor_pairs` says which tensor of one group
goes to which tensor of another when the two are paired (a module's tensors
go to one module or to none). What a listing's order says is
:mod:`torch_liberator.keyorder`'s.

Example:
    >>> from torch_liberator.keygroups import KeyGroups, group_tensor_pairs
    >>> src = KeyGroups({'bn.weight': (4,), 'bn.bias': (4,), 'fc.weight': (2, 4)})
    >>> dst = KeyGroups({'norm.weight': (4, 1, 1), 'norm.bias': (4,)})
    >>> src.path, src.keys[0]
    (('bn', 'fc'), ('bn.weight', 'bn.bias'))
    >>> group_tensor_pairs(src, 0, dst, 0)
    [(0, 0), (1, 1)]
    >>> print(group_tensor_pairs(src, 1, dst, 0))
    None
"""
from bisect import bisect_left
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from torch_liberator.shapes import squeeze_units

__all__ = ['KeyGroups', 'Shape', 'WRAPPER_PREFIXES', 'common_module', 'enclosing_modules',
           'group_tensor_pairs', 'is_word', 'joined_length', 'key_span', 'module_pairs',
           'module_signatures']

#: a shape as the solver sees it: sizes, or None when unknown
Shape = Optional[Tuple[int, ...]]

#: prefixes that wrappers add in front of every key (DataParallel and
#: DistributedDataParallel, torch.compile): no names of the model's
WRAPPER_PREFIXES = ('module.', '_orig_mod.')


def is_word(component: str) -> bool:
    """
    True when a path component is a name rather than a position in a list.

    Example:
        >>> from torch_liberator.keygroups import is_word
        >>> is_word('layer1'), is_word('0')
        (True, False)
    """
    return not component.isdigit()


def joined_length(name: str, comps: Sequence[str]) -> int:
    """
    How many trailing components of the path ``comps`` the one name
    ``name`` joins with ``_`` (two or more), else 0: a path flattened into
    one name, as timm's ``features_only`` networks name ``stem.bn`` as
    ``stem_bn``.

    Example:
        >>> from torch_liberator.keygroups import joined_length
        >>> joined_length('features_conv0', ('body', 'features', 'conv0'))
        2
        >>> joined_length('conv_dw', ('conv', 'bn'))
        0
    """
    if '_' not in name:
        return 0
    for start in range(len(comps) - 2, -1, -1):
        joined = '_'.join(comps[start:])
        if len(joined) >= len(name):
            return len(comps) - start if joined == name else 0
    return 0


def module_pairs(mapping: Mapping[str, str], sep: str = '.') -> dict:
    """
    ``{(source module, destination module): source keys}`` of a key
    mapping, the keys in the mapping's order.

    Example:
        >>> from torch_liberator.keygroups import module_pairs
        >>> module_pairs({'a.w': 'x.w', 'a.b': 'x.b', 'c.w': 'y.w'})
        {('a', 'x'): ['a.w', 'a.b'], ('c', 'y'): ['c.w']}
    """
    modules = {}
    for s, d in mapping.items():
        modules.setdefault((s.rpartition(sep)[0], d.rpartition(sep)[0]), []).append(s)
    return modules


def module_signatures(shapes: Mapping[str, Shape], sep: str = '.') -> Dict[str, tuple]:
    """
    ``{module path: its sorted (tensor name, shape) pairs}`` of the modules
    that hold tensors directly: what a module holds, to compare modules by.

    Example:
        >>> from torch_liberator.keygroups import module_signatures
        >>> module_signatures({'fc.weight': (2, 3), 'fc.bias': (2,), 'gamma': None})
        {'fc': (('bias', (2,)), ('weight', (2, 3))), '': (('gamma', None),)}
    """
    modules = {}
    for key, shape in shapes.items():
        module, _, leaf = key.rpartition(sep)
        modules.setdefault(module, []).append((leaf, None if shape is None else tuple(shape)))
    return {m: tuple(sorted(leaves)) for m, leaves in modules.items()}


def common_module(keys: Iterable[str], sep: str = '.') -> str:
    """
    The longest module path that every key lies under ('' for none, or
    for no keys).

    Example:
        >>> from torch_liberator.keygroups import common_module
        >>> common_module(['net.layer1.0.conv1.weight', 'net.layer1.1.bn1.bias'])
        'net.layer1'
        >>> common_module(['fc.weight', 'layer1.0.conv1.weight'])
        ''
    """
    common = None
    for key in keys:
        comps = key.split(sep)[:-1]
        if common is None:
            common = comps
        else:
            n = 0
            while n < len(common) and n < len(comps) and common[n] == comps[n]:
                n += 1
            del common[n:]
        if not common:
            return ''
    return sep.join(common or ())


def enclosing_modules(path: str, sep: str = '.') -> Iterator[str]:
    """
    The module paths above ``path`` (a key, or a module's path), nearest
    first, the root excluded.

    Example:
        >>> from torch_liberator.keygroups import enclosing_modules
        >>> list(enclosing_modules('layer1.0.conv1.weight'))
        ['layer1.0.conv1', 'layer1.0', 'layer1']
    """
    while sep in path:
        path = path.rpartition(sep)[0]
        yield path


def key_span(sorted_keys: Sequence[str], module: str, sep: str = '.') -> Tuple[int, int]:
    """
    ``(lo, hi)``: where the keys below ``module`` lie in the sorted list
    ``sorted_keys`` (``sorted_keys[lo:hi]``).

    Example:
        >>> from torch_liberator.keygroups import key_span
        >>> keys = sorted(['fc.weight', 'layer1.0.weight', 'layer1.1.weight', 'layer10.weight'])
        >>> key_span(keys, 'layer1')
        (1, 3)
    """
    prefix = module + sep
    bound = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return bisect_left(sorted_keys, prefix), bisect_left(sorted_keys, bound)


class KeyGroups:
    """
    One state dict cut into groups, the tensors that one module holds
    directly in state-dict order, as parallel tuples indexed by group
    number: ``path``, ``comps`` (its components), ``keys``, ``names`` (the
    tensors' own names), ``shapes``, ``squeezed`` (without size-1
    dimensions), ``leaf`` (no child module holds tensors) and ``kind`` (one
    id for groups of equal names, shapes and leafness). (Tuples of strings
    and ints, unlike one object per group, stay out of the way of Python's
    garbage collector, which otherwise walks 100k groups again and again.)

    Args:
        side: keys -> shapes, in state-dict order. Keys whose shape is None
            are left out (without a shape there is no structural evidence).
        sep: separator between path components (kept as ``sep``).

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> groups = KeyGroups({'cls_token': (1, 1, 4), 'blocks.0.norm.weight': (4,),
        ...                     'blocks.0.norm.bias': (4,), 'head.weight': None})
        >>> len(groups), groups.path, groups.leaf
        (2, ('', 'blocks.0.norm'), (False, True))
        >>> groups.names[1], groups.squeezed[0]
        (('weight', 'bias'), ((4,),))
    """

    __slots__ = ('path', 'comps', 'keys', 'names', 'shapes', 'squeezed',
                 'leaf', 'kind', 'sep', '_spans')

    def __init__(self, side: Mapping[str, Shape], sep: str = '.'):
        self.sep = sep
        paths, starts, keys, names, shapes = [], [], [], [], []
        sep_len = len(sep)
        for key, shape in side.items():
            if shape is None:
                continue  # without a shape there is no structural evidence
            cut = key.rfind(sep)
            if cut >= 0:
                path, name = key[:cut], key[cut + sep_len:]
            else:
                path, name = '', key
            if not paths or paths[-1] != path:
                paths.append(path)
                starts.append(len(keys))
            keys.append(key)
            names.append(name)
            shapes.append(tuple(shape))
        inner = set()
        for path in paths:
            while path:
                cut = path.rfind(sep)
                path = path[:cut] if cut >= 0 else ''
                if path in inner:
                    break
                inner.add(path)
        squeezed_of = {}
        for shape in shapes:
            if shape not in squeezed_of:
                squeezed_of[shape] = squeeze_units(shape)
        ends = starts[1:] + [len(keys)]
        self.path = tuple(paths)
        self.comps = tuple(tuple(path.split(sep)) if path else ()
                           for path in paths)
        self.keys = tuple(tuple(keys[a:b]) for a, b in zip(starts, ends))
        self.names = tuple(tuple(names[a:b]) for a, b in zip(starts, ends))
        self.shapes = tuple(tuple(shapes[a:b]) for a, b in zip(starts, ends))
        self.squeezed = tuple(tuple(squeezed_of[shape] for shape in group)
                              for group in self.shapes)
        self.leaf = tuple(path not in inner for path in paths)
        kinds = {}
        self.kind = tuple(kinds.setdefault(kind, len(kinds)) for kind in
                          zip(self.names, self.shapes, self.leaf))
        self._spans = None

    def __len__(self):
        return len(self.path)

    def module_spans(self) -> Tuple[Tuple[Tuple[int, int], ...], ...]:
        """
        For each group, the spans ``(first, end)`` of the modules around
        it, innermost first (the group's own module, its parent, ... the
        root), leaving out modules whose groups are not one contiguous run
        and repeating none (a wrapper level spans what its only child
        spans). Worked out once.

        Example:
            >>> from torch_liberator.keygroups import KeyGroups
            >>> KeyGroups({'a.x.w': (1,), 'a.y.w': (2,), 'b.w': (3,)}).module_spans()
            (((0, 1), (0, 2), (0, 3)), ((1, 2), (0, 2), (0, 3)), ((2, 3), (0, 3)))
        """
        if self._spans is None:
            self._spans = self._worked_out_spans()
        return self._spans

    def _worked_out_spans(self):
        # one pass in state-dict order: a module opens at its first group and
        # closes at the first group outside it; a path that opens again was
        # not one contiguous run
        starts, ends = [], []
        first_of, split = {}, set()
        open_ids, chains, previous = [], [], None
        for g, comps in enumerate(self.comps):
            keep = 0
            if previous is not None:
                keep = 1  # the root stays open
                for c1, c2 in zip(previous, comps):
                    if c1 != c2:
                        break
                    keep += 1
            for occurrence in open_ids[keep:]:
                ends[occurrence] = g
            del open_ids[keep:]
            for depth in range(keep, len(comps) + 1):
                occurrence = len(starts)
                starts.append(g)
                ends.append(len(self))
                path = comps[:depth]
                if path in first_of:
                    split.update((first_of[path], occurrence))
                else:
                    first_of[path] = occurrence
                open_ids.append(occurrence)
            chains.append(tuple(open_ids))
            previous = comps
        out = []
        for chain in chains:
            spans = []
            for occurrence in reversed(chain):
                if occurrence in split:
                    continue
                span = (starts[occurrence], ends[occurrence])
                if not spans or spans[-1] != span:
                    spans.append(span)
            out.append(tuple(spans))
        return tuple(out)

    def vectors_only(self, g: int) -> bool:
        """
        Whether group ``g`` holds vectors only, size-1 dimensions aside (a
        norm, a layer scale).

        Example:
            >>> from torch_liberator.keygroups import KeyGroups
            >>> groups = KeyGroups({'conv.weight': (8, 3, 3, 3), 'bn.weight': (8,),
            ...                     'scale.gamma': (1, 8, 1, 1)})
            >>> [groups.vectors_only(g) for g in range(len(groups))]
            [False, True, True]
        """
        return all(len(shape) <= 1 for shape in self.squeezed[g])


def _exact_lcs(shapes1, shapes2):
    """Longest common subsequence of two short lists of exact shapes."""
    n, m = len(shapes1), len(shapes2)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if shapes1[i] == shapes2[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if shapes1[i] == shapes2[j] and table[i][j] == table[i + 1][j + 1] + 1:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _bias_left_over(names1, names2, pairs) -> bool:
    """True when a group's ``weight`` is paired and a ``bias`` of either
    group is not: a layer with a bias and one without compute different
    things."""
    if not any(names1[i] == 'weight' for i, _ in pairs):
        return False
    left1 = set(names1) - {names1[i] for i, _ in pairs}
    left2 = set(names2) - {names2[j] for _, j in pairs}
    return 'bias' in left1 or 'bias' in left2


def group_tensor_pairs(side1: KeyGroups, g1: int, side2: KeyGroups,
                       g2: int) -> Optional[List[Tuple[int, int]]]:
    """
    Which tensor of group ``g1`` of ``side1`` goes to which tensor of group
    ``g2`` of ``side2`` when the two groups are paired, or None when they
    cannot be.

    Two groups pair when their tensors' shapes agree position by position
    (shapes that differ only by size-1 dimensions agree; same names in
    another order are followed), or, when their sizes differ (a BatchNorm2d
    and a FrozenBatchNorm2d, which has no ``num_batches_tracked``), when
    every tensor of the smaller group has a same-named, shape-compatible
    tensor in the other, and a paired ``weight`` does not leave a ``bias``
    behind unless the two groups have the same path (a layer with a bias
    and one without compute different things). Containers' own tensors
    (class tokens, layer scales) stand alone: their longest common
    subsequence of exact shapes pairs when it covers the smaller group
    (vectors count only between containers of one size; a same-named
    tensor of as many elements in another layout, Swin's
    ``relative_position_index`` as ``[49, 49]`` and as ``[2401]``, pairs
    with nothing and keeps nothing out), and a container's
    own vectors never pair with a module's of other names that has no
    module below (timm's BEiT ``gamma_1`` and ``gamma_2`` are no
    LayerNorm's ``weight`` and ``bias``).

    Returns:
        List[Tuple[int, int]] | None: ``(position in g1, position in g2)``
        pairs, or None.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups, group_tensor_pairs
        >>> bn = {'weight': (4,), 'bias': (4,), 'running_mean': (4,),
        ...       'running_var': (4,), 'num_batches_tracked': ()}
        >>> tracked = KeyGroups({f'bn.{k}': v for k, v in bn.items()})
        >>> frozen = KeyGroups({f'n.{k}': v for k, v in bn.items()
        ...                     if k != 'num_batches_tracked'})
        >>> group_tensor_pairs(tracked, 0, frozen, 0)
        [(0, 0), (1, 1), (2, 2), (3, 3)]
        >>> biased = KeyGroups({'se.fc1.weight': (8, 16, 1, 1), 'se.fc1.bias': (8,)})
        >>> print(group_tensor_pairs(biased, 0, KeyGroups({'pw.weight': (8, 16, 1, 1)}), 0))
        None
        >>> # a container's index buffer laid out as a square and flattened
        >>> hf = KeyGroups({'attn.table': (169, 3), 'attn.index': (49, 49),
        ...                 'attn.q.weight': (4, 4)})
        >>> tv = KeyGroups({'attn.table': (169, 3), 'attn.index': (2401,),
        ...                 'attn.qkv.weight': (12, 4)})
        >>> group_tensor_pairs(hf, 0, tv, 0)
        [(0, 0)]
    """
    names1, names2 = side1.names[g1], side2.names[g2]
    squeezed1, squeezed2 = side1.squeezed[g1], side2.squeezed[g2]
    if (side1.leaf[g1] != side2.leaf[g2] and set(names1) != set(names2)
            and side1.vectors_only(g1) and side2.vectors_only(g2)):
        return None  # a block's own layer scales are no norm's weight and bias
    if squeezed1 == squeezed2:
        if names1 != names2 and set(names1) == set(names2):
            index = {name: j for j, name in enumerate(names2)}
            pairs = [(i, index[name]) for i, name in enumerate(names1)]
            if all(squeezed1[i] == squeezed2[j] for i, j in pairs):
                return pairs
        return [(i, i) for i in range(len(names1))]
    smaller = min(len(names1), len(names2))
    index = {name: j for j, name in enumerate(names2)}
    pairs = [(i, index[name]) for i, name in enumerate(names1)
             if name in index and squeezed1[i] == squeezed2[index[name]]]
    if len(pairs) == smaller and (side1.path[g1] == side2.path[g2]
                                  or not _bias_left_over(names1, names2, pairs)):
        return pairs
    if not side1.leaf[g1] and not side2.leaf[g2]:
        # containers' own tensors (class tokens, layer scales) stand alone;
        # in containers of unequal sizes a vector found in the other is no
        # evidence (timm's BEiT attention holds q_bias and v_bias beside its
        # position table, HF's layer lambda_1 and lambda_2)
        shapes1, shapes2 = side1.shapes[g1], side2.shapes[g2]
        pairs = _exact_lcs(shapes1, shapes2)
        if len(shapes1) != len(shapes2):
            pairs = [(a, b) for a, b in pairs if len(shapes1[a]) > 1]
        if len(pairs) + _relaid(names1, shapes1, names2, shapes2, pairs) == smaller:
            return pairs
    return None


def _relaid(names1, shapes1, names2, shapes2, pairs) -> int:
    """How many same-named tensors of two containers, both left out of
    ``pairs``, hold as many elements in another layout: a table of indices
    one library keeps as ``[49, 49]`` and another flattened to ``[2401]``
    (Swin's ``relative_position_index``, a buffer each model computes),
    which is no tensor of the other and no reason to leave the rest."""
    taken1, taken2 = {a for a, _ in pairs}, {b for _, b in pairs}
    index = {name: b for b, name in enumerate(names2)}
    count = 0
    for a, name in enumerate(names1):
        b = index.get(name)
        if (a in taken1 or b is None or b in taken2 or shapes1[a] is None
                or shapes2[b] is None or shapes1[a] == shapes2[b]):
            continue
        if _numel(shapes1[a]) == _numel(shapes2[b]):
            count += 1
    return count


def _numel(shape):
    out = 1
    for size in shape:
        out *= size
    return out
