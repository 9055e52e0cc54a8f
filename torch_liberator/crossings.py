"""
Pairs that crossed: two modules of one kind, each sent where the other
belongs.

A solver that reads order and shapes cannot tell apart two modules of one
shape registered in another order; what can is the evidence around them.
Two kinds are read here, and the pairs they contradict are left out:

* **A norm follows its layer** (:func:`crossed_norm_pairs`). A unit is the
  module that holds a layer and the norm after it (timm's ``ConvNormAct``
  as ``conv1.{conv,bn}``, torchvision's ``Conv2dNormActivation`` as
  ``f.a.{0,1}``). The kernel (the layer's weight) says which unit of the
  model a unit of the checkpoint is: its shape is rarely shared. A norm's
  vectors are of one width in many units: in a regnet block whose
  ``conv1`` and ``conv2`` were registered in another order, ``conv1``'s
  kernel went to ``f.a`` and ``conv2``'s to ``f.b``, but ``conv2``'s
  BatchNorm to ``f.a`` and ``conv1``'s to ``f.b`` (mutation fuzz seeds 2737
  and 3648 of ``--cross --wide --reorder``). A key that is no kernel, sent
  into the model unit that another checkpoint unit's kernels went to,
  while that unit holds a key of the same path and shape itself, is left
  out: that unit's own norm is the one that belongs there, whether or not
  the solver placed it. A norm that went where its layer did not, with no
  such twin (a model that keeps its norms in a list of their own), stays.
* **Numbered names that crossed** (:func:`crossed_ordinal_pairs`). Two
  sibling modules numbered by their names (``ln_1``, ``ln_2``) of one
  shape, sent to two siblings numbered the other way round (``norm2``,
  ``norm1``): a ViT block of the model registered its second LayerNorm
  first, and order put torchvision's ``ln_1`` into timm's ``norm2``
  (mutation fuzz seed 4588 of ``--cross --wide --reorder``). The names say
  one thing, the order another: both pairs are left out. Modules of other
  shapes numbered the other way round stay (two libraries may number
  differently; the shapes decided).

Example:
    >>> from torch_liberator.crossings import crossed_norm_pairs
    >>> src = {'c1.conv.weight': (8, 8, 1, 1), 'c1.bn.weight': (8,),
    ...        'c2.conv.weight': (8, 8, 3, 3), 'c2.bn.weight': (8,)}
    >>> dst = {'a.0.weight': (8, 8, 1, 1), 'a.1.weight': (8,),
    ...        'b.0.weight': (8, 8, 3, 3), 'b.1.weight': (8,)}
    >>> crossed = {'c1.conv.weight': 'a.0.weight', 'c1.bn.weight': 'b.1.weight',
    ...            'c2.conv.weight': 'b.0.weight', 'c2.bn.weight': 'a.1.weight'}
    >>> sorted(crossed_norm_pairs(crossed, src, dst))
    ['c1.bn.weight', 'c2.bn.weight']
    >>> crossed.update({'c1.bn.weight': 'a.1.weight', 'c2.bn.weight': 'b.1.weight'})
    >>> crossed_norm_pairs(crossed, src, dst)
    set()
"""
import re
from typing import Mapping, Optional, Sequence, Set

from torch_liberator.shapes import is_kernel

__all__ = ['crossed_norm_pairs', 'crossed_ordinal_pairs']


#: a name that numbers a module: a word, then digits (``norm2``, ``ln_1``)
_NUMBERED = re.compile(r'(.*[A-Za-z])_?(\d+)')


def _unit(key: str, sep: str) -> str:
    """The module above ``key``'s module ('' at the root)."""
    return key.rpartition(sep)[0].rpartition(sep)[0]


def crossed_norm_pairs(mapping: Mapping[str, str], src: Mapping[str, Optional[Sequence[int]]],
                       dst: Mapping[str, Optional[Sequence[int]]], sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` that are not kernels and went into the
    unit of the model that another checkpoint unit's kernels all went to,
    while that unit holds a key of the same path and shape itself (see the
    module docstring). Only a model unit that got kernels of that one
    checkpoint unit, and all of them, counts (not a flat list of layers).

    Args:
        mapping: source key -> destination key.
        src, dst: key -> shape of each side.
        sep: separator between path components.
    """
    pairs = []  # (checkpoint unit, model unit, source keys, whether kernels)
    kernels = {}  # checkpoint unit -> the model units its kernels went to
    owners = {}  # model unit -> the checkpoint units whose kernels went there
    kind = {}  # shape -> whether a kernel
    for (a, b), keys in _module_pairs(mapping, sep).items():
        p, q = a.rpartition(sep)[0], b.rpartition(sep)[0]
        for key in keys:
            shape = src[key]
            if shape not in kind:
                kind[shape] = is_kernel(shape)
            if kind[shape]:
                kernels.setdefault(p, set()).add(q)
                owners.setdefault(q, set()).add(p)
        pairs.append((p, q, keys))
    home = {p: next(iter(qs)) for p, qs in kernels.items() if len(qs) == 1}
    out = set()
    for p, q, keys in pairs:
        others = owners.get(q, ())
        if len(others) != 1 or home.get(p) == q:
            continue
        other = next(iter(others))
        if other == p or home.get(other) != q:
            continue
        for s in keys:
            if kind[src[s]]:
                continue
            rest = s[len(p) + len(sep):] if p else s  # the key's path in its unit
            twin = other + sep + rest if other else rest
            if twin in src and src[twin] == src[s]:
                out.add(s)
    return out


def _module_pairs(mapping, sep):
    """``{(checkpoint module, model module): source keys}`` of ``mapping``."""
    modules = {}
    for s, d in mapping.items():
        modules.setdefault((s.rpartition(sep)[0], d.rpartition(sep)[0]), []).append(s)
    return modules


def crossed_ordinal_pairs(mapping: Mapping[str, str],
                          src: Mapping[str, Optional[Sequence[int]]],
                          dst: Mapping[str, Optional[Sequence[int]]], sep: str = '.') -> Set[str]:
    """
    The source keys of ``mapping`` in two sibling modules numbered by their
    names (one word, two numbers) that went to two siblings of the model
    numbered the other way round, the two modules of one shape (see the
    module docstring).

    Example:
        >>> from torch_liberator.crossings import crossed_ordinal_pairs
        >>> src = {'b.ln_1.weight': (8,), 'b.ln_2.weight': (8,), 'b.fc.weight': (8, 8)}
        >>> dst = {'k.norm1.weight': (8,), 'k.norm2.weight': (8,), 'k.mlp.weight': (8, 8)}
        >>> mapping = {'b.ln_1.weight': 'k.norm2.weight', 'b.ln_2.weight': 'k.norm1.weight',
        ...            'b.fc.weight': 'k.mlp.weight'}
        >>> sorted(crossed_ordinal_pairs(mapping, src, dst))
        ['b.ln_1.weight', 'b.ln_2.weight']
    """
    numbered = {}  # (parents, words) -> {(number, number): source keys}
    for (a, b), keys in _module_pairs(mapping, sep).items():
        pa, _, la = a.rpartition(sep)
        pb, _, lb = b.rpartition(sep)
        if not (la[-1:].isdigit() and lb[-1:].isdigit()):
            continue  # (the cheap test first)
        ma, mb = _NUMBERED.fullmatch(la), _NUMBERED.fullmatch(lb)
        if ma and mb:
            numbered.setdefault((pa, pb, ma[1], mb[1]), {})[int(ma[2]), int(mb[2])] = keys
    out = set()
    for by_numbers in numbered.values():
        for (x, y), keys in by_numbers.items():
            other = by_numbers.get((y, x))
            if x != y and other is not None and _shapes(keys, src, sep) == _shapes(other, src, sep):
                out.update(keys)
    return out


def _shapes(keys, shapes, sep):
    """The shapes of ``keys`` by their tensor names."""
    return sorted((key.rpartition(sep)[2], tuple(shapes[key] or ())) for key in keys)
