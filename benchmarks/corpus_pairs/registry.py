"""
The registry of the corpus: cases, pairs, building and selecting them, and
the check of a hand-written truth by outputs.

Example:
    >>> from corpus_pairs.registry import PAIRS, build_case
    >>> build_case('mlp-wrapped').truth['0.weight']
    'module.0.weight'
"""
import dataclasses
import fnmatch
from collections import OrderedDict
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

__all__ = [
    'Case',
    'PAIRS',
    'Pair',
    'build_case',
    'register_pair',
    'select_pairs',
    'sorted_keys',
    'truth_by_names',
    'verify_truth',
]


class Case:
    """
    One built pair: the source state, the destination model and the truth.

    Args:
        source (Mapping[str, Tensor]): the checkpoint (only its keys, shapes
            and dtypes matter: the judge stamps its own values).
        destination (nn.Module): the model to load into.
        truth (Mapping[str, str] | None): ``{source key: destination key}``,
            one-to-one. ``None`` builds it by tensor identity: a source tensor
            belongs where the same tensor object is in
            ``destination.state_dict(keep_vars=True)``.
        source_model (nn.Module | None): the model the source came from, for
            :func:`verify_truth`.
        inputs (Tensor | None): an input both models accept.
        unjudged (Iterable[str]): destination keys whose right content is
            unknown (two different heads under one name): whatever lands
            there counts neither as correct nor as wrong.

    Example:
        >>> import torch
        >>> from corpus_pairs import Case
        >>> inner = torch.nn.Linear(2, 2)
        >>> case = Case(inner.state_dict(keep_vars=True),
        ...             torch.nn.ModuleDict({'a': torch.nn.Linear(2, 2), 'b': inner}), None)
        >>> case.truth
        {'weight': 'b.weight', 'bias': 'b.bias'}
    """

    def __init__(self, source: Mapping, destination: nn.Module, truth: Mapping | None,
                 source_model: nn.Module | None = None, inputs: torch.Tensor | None = None,
                 unjudged: Iterable = ()):
        self.source = dict(source)
        self.unjudged = frozenset(unjudged)
        self.destination = destination
        if truth is None:
            truth = _truth_by_identity(self.source, destination)
        self.truth = dict(truth)
        self.source_model = source_model
        self.inputs = inputs
        dst_keys = destination.state_dict().keys()
        bad = [(s, d) for s, d in self.truth.items()
               if s not in self.source or d not in dst_keys]
        if bad or len(set(self.truth.values())) != len(self.truth):
            raise ValueError(f'the truth is not a one-to-one map between existing keys: {bad[:3]}')
        if self.unjudged & set(self.truth.values()):
            raise ValueError('a destination key is both in the truth and unjudged')


def _truth_by_identity(source, destination):
    where = {id(value): key for key, value in destination.state_dict(keep_vars=True).items()}
    return {key: where[id(value)] for key, value in source.items() if id(value) in where}


def sorted_keys(case: 'Case') -> 'Case':
    """
    ``case`` with its checkpoint's keys sorted by name, as a safetensors
    file lists them (the case itself, changed).

    Example:
        >>> from corpus_pairs.registry import build_case, sorted_keys
        >>> list(sorted_keys(build_case('mlp-wrapped')).source)
        ['0.bias', '0.weight', '2.bias', '2.weight']
    """
    case.source = dict(sorted(case.source.items()))
    return case


def truth_by_names(source: Mapping, destination: nn.Module, rules, unknown=()) -> dict:
    """
    The same name after the first matching ``(source prefix, dest prefix)``
    rule; keys under an ``unknown`` prefix (either side) are left out.

    Example:
        >>> import torch
        >>> from corpus_pairs.registry import truth_by_names
        >>> dst = torch.nn.Sequential(torch.nn.Linear(2, 2))
        >>> truth_by_names({'module.0.weight': 1, 'head.w': 2}, dst, [('module.', '')])
        {'module.0.weight': '0.weight'}
    """
    dst = destination.state_dict()
    truth = {}
    for key in source:
        if any(key.startswith(u) for u in unknown):
            continue
        for src_prefix, dst_prefix in rules:
            if key.startswith(src_prefix) and dst_prefix + key[len(src_prefix):] in dst:
                truth[key] = dst_prefix + key[len(src_prefix):]
                break
    return truth


@dataclasses.dataclass
class Pair:
    """
    A registered pair: how to build it and what kind of pair it is.

    Attributes:
        name: the registry key.
        build: ``() -> Case``.
        truth_from: ``'identity'``, ``'outputs'`` or ``'names'`` (see the module doc).
        cross_naming: only a naming-tolerant association can recover it.
        fast: builds and judges one mode in well under a second (the pairs of
            the default test slice).
        note: what the pair exercises.

    Example:
        >>> from corpus_pairs import PAIRS
        >>> PAIRS['resnet18-renamed'].cross_naming
        True
    """
    name: str
    build: Callable[[], Case]
    truth_from: str
    cross_naming: bool = False
    fast: bool = False
    note: str = ''


#: name -> Pair, in report order
PAIRS: 'OrderedDict[str, Pair]' = OrderedDict()


def register_pair(name: str, truth_from: str, cross_naming: bool = False, fast: bool = False,
                  note: str = ''):
    """
    A decorator registering ``build`` (``() -> Case``) as the pair ``name`` (see :class:`Pair`).

    Example:
        >>> from corpus_pairs.registry import PAIRS, register_pair
        >>> 'mlp-wrapped' in PAIRS and PAIRS['mlp-wrapped'].truth_from
        'identity'
    """
    if name in PAIRS:
        raise ValueError(f'the pair {name!r} is registered twice: give the new one another name')

    def register(build):
        PAIRS[name] = Pair(name, build, truth_from, cross_naming, fast, note)
        return build
    return register


def build_case(name: str) -> Case:
    """
    Build the named pair with a fixed seed.

    Example:
        >>> from corpus_pairs import build_case
        >>> case = build_case('mlp-wrapped')
        >>> sorted(case.truth.items())[0]
        ('0.bias', 'module.0.bias')
    """
    if name not in PAIRS:
        raise KeyError(f'pair {name!r} is not one of {list(PAIRS)}')
    torch.manual_seed(0)
    return PAIRS[name].build()


def select_pairs(patterns=None, fast: bool | None = None) -> list:
    """
    Names of the registered pairs matching any glob pattern (all when none).

    Example:
        >>> from corpus_pairs import select_pairs
        >>> select_pairs(['*vit-small->*-small'])
        ['timm-vit-small->tv-vit-small', 'tv-vit-small->timm-vit-small']
    """
    names = [n for n in PAIRS
             if not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if fast is not None:
        names = [n for n in names if PAIRS[n].fast == fast]
    return names


def verify_truth(case: Case, atol: float = 1e-4) -> float:
    """
    Check a truth by outputs: copy the source model's tensors into the
    destination along it and compare outputs (eval mode, ``case.inputs``).

    First every floating tensor of the source model is perturbed (seeded), so
    that tensors a fresh init makes equal (norm weights of one, zero biases,
    running statistics) differ and a crossed pair of them changes the output.
    The check also refuses to pass vacuously: the destination's output before
    the copy must differ from the source's.

    Returns:
        float: the largest output difference, relative to the output scale.

    Raises:
        ValueError: no source model or inputs, the outputs differ (the truth
            is wrong), or they were equal before the copy (nothing is checked).

    Example:
        >>> from corpus_pairs import build_case, verify_truth
        >>> verify_truth(build_case('convbn-renamed')) < 1e-4
        True
    """
    if case.source_model is None or case.inputs is None:
        raise ValueError('this case has no source model or inputs to compare')
    gen = torch.Generator().manual_seed(2)
    model, destination = case.source_model.eval(), case.destination.eval()
    src_state, dst_state = model.state_dict(), destination.state_dict()
    with torch.no_grad():
        for key, value in src_state.items():
            if value.dtype.is_floating_point:
                noise = torch.rand(value.shape, generator=gen, dtype=value.dtype)
                if key.endswith('running_var'):
                    value.mul_(noise + 0.5)
                else:
                    value.add_((noise - 0.5) * 0.04)
        before = destination(case.inputs)
        for s, d in case.truth.items():
            dst_state[d].copy_(src_state[s].reshape(dst_state[d].shape))
        want, got = model(case.inputs), destination(case.inputs)
    scale = max(1.0, float(want.abs().max()))
    if float((before - want).abs().max()) <= 100 * atol * scale:
        raise ValueError('the outputs were equal before the copy: the check cannot tell')
    diff = float((want - got).abs().max()) / scale
    if not diff <= atol:
        raise ValueError(f'outputs differ by {diff:.3g} > {atol} (relative): the truth is wrong')
    return diff
