"""
A load plan: what :func:`~torch_liberator.load_partial_state` would do, worked
out from keys and shapes alone before any tensor is touched.

:func:`plan_load` takes a model (or its state dict, or ``{key: TensorSpec}``)
and a checkpoint (a path, a state dict, or any
:class:`~torch_liberator.tensorsource.TensorSource`), and returns a
:class:`LoadPlan`: every checkpoint key with its action

* ``'copy'``: same shape, copied as it is;
* ``'shove'``: shapes differ, fitted by a shape policy (both shapes and the
  policy are recorded);
* ``'skip'``: not loaded, with the reason;

and the model keys left unset, the ambiguous keys, and the association used.
``load_partial_state`` builds the same plan, applies it, and returns it as
``info['plan']``. Printing a plan gives a table with keys folded by common
pattern (:func:`torch_liberator.report.format_plan`). The plan's types are
:mod:`torch_liberator.plantypes`'s (importable from here too); this module
makes plans.

Steps, in order: the user's ``rename`` rules settle their pairs
(:mod:`torch_liberator.keyrules`); the association places the rest
(:func:`torch_liberator.association.associate`, on keys and shapes); then
each pair is checked: source and model tensors that cannot be written,
``include`` / ``exclude``, and the shapes (``mangle``).

Example:
    >>> import torch
    >>> from torch_liberator.loadplan import plan_load
    >>> src = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 10))
    >>> dst = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)))
    >>> plan = plan_load(dst, src.state_dict())
    >>> [(e.src_key, e.dst_key, e.action) for e in plan.entries]  # doctest: +NORMALIZE_WHITESPACE
    [('0.weight', '0.0.weight', 'copy'), ('0.bias', '0.0.bias', 'copy'),
     ('1.weight', '0.1.weight', 'shove'), ('1.bias', '0.1.bias', 'shove')]
    >>> plan.counts()
    {'copy': 2, 'shove': 2, 'skip': 0}
"""
from typing import Callable, Dict, Mapping, Optional, Tuple, Union

import torch

from torch_liberator.association import ASSOCIATIONS, associate
from torch_liberator.keyrules import KeyFilter, Patterns, rename_keys
from torch_liberator.plantypes import LoadPlan, PlanEntry, unset_model_keys
from torch_liberator.policies import ACTIONS, MangleRules
from torch_liberator.preflight import check_destination, check_pairs
from torch_liberator.shapes import TensorSpec, shape_relation
from torch_liberator.tensorsource import (SourceLike, StateDictSource,
                                          TensorSource, open_source)

__all__ = ['ACTIONS', 'DEFAULT_ASSOCIATION', 'LoadPlan', 'PlanEntry',
           'build_plan', 'check_plan_options', 'check_tensors',
           'describe_destination', 'plan_load', 'unwritable_reason']

#: the ``association=`` of :func:`plan_load`, ``load_partial_state`` and
#: ``Pretrained`` when none is given
DEFAULT_ASSOCIATION = 'auto'

#: what :func:`plan_load` accepts as the model side
Destination = Union[torch.nn.Module, Mapping[str, torch.Tensor],
                    Mapping[str, TensorSpec]]

#: what ``mangle=`` accepts (see :class:`~torch_liberator.policies.MangleRules`)
Mangle = Union[bool, str, Callable, Mapping[str, object]]


def plan_load(model_or_state_dict: Destination, source: SourceLike,
              association: str = DEFAULT_ASSOCIATION, mangle: Mangle = True,
              *, rename: Optional[Mapping[str, str]] = None,
              include: Patterns = None, exclude: Patterns = None,
              allow_efficiency_tricks: bool = True, ema: bool = False,
              allow_unsafe: bool = False) -> LoadPlan:
    """
    Work out what loading ``source`` into a model would do; touch nothing.

    Args:
        model_or_state_dict: the destination: a model (``DataParallel`` /
            ``DistributedDataParallel`` are looked through), its state dict,
            or ``{key: TensorSpec}``. Only keys, shapes and dtypes are used
            (a model on the ``meta`` device works).
        source: the checkpoint: a path (read with
            :func:`~torch_liberator.checkpoint.read_state_dict`), a state dict
            (nested checkpoint dicts are unwrapped), or a
            :class:`~torch_liberator.tensorsource.TensorSource`.
        association: how keys are matched, one of
            :data:`~torch_liberator.association.ASSOCIATIONS`.
        mangle: what to do with pairs whose shapes differ: True (copy the
            leading corner), False (skip), a policy name, a callable, or
            ``{model key pattern: policy}`` (see
            :class:`torch_liberator.policies.MangleRules`).
        rename: your own pairs ``{checkpoint key: model key}`` and/or rules
            ``{regex: replacement}`` over checkpoint keys, applied before the
            association, which never overrides them (see
            :mod:`torch_liberator.keyrules`). A rule that matches nothing is
            an error.
        include: glob pattern(s); only pairs with a key (checkpoint or
            model side) matching one of them may load.
        exclude: glob pattern(s); pairs with a key matching one never load.
        allow_efficiency_tricks: as in ``load_partial_state``.
        ema: read the EMA copy of a checkpoint that holds one.
        allow_unsafe: allow arbitrary unpickling (trusted files only).

    Returns:
        LoadPlan: see its attributes; ``print(plan)`` shows it as a table.

    Raises:
        ValueError: an unknown association.
        PolicyError: a malformed ``mangle``.
        KeyRuleError: a bad ``rename``, ``include`` or ``exclude`` rule, or
            one that matches nothing.
        ShapeMismatchError: ``mangle`` says ``'raise'`` for a pair, or a
            policy a pattern chose cannot fit its pair.
        CheckpointFormatError, CheckpointNotFoundError: ``source`` cannot
            be read.

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> src = {'module.conv.weight': torch.zeros(8, 3, 3, 3), 'module.fc.weight': torch.zeros(5, 8)}
        >>> dst = torch.nn.ModuleDict({'conv': torch.nn.Conv2d(3, 8, 3, bias=False),
        ...                            'head': torch.nn.Linear(8, 5, bias=False)})
        >>> plan = plan_load(dst, src, association='isomorphism',
        ...                  rename={'module.fc.weight': 'head.weight'})
        >>> plan.mapping
        {'module.conv.weight': 'conv.weight', 'module.fc.weight': 'head.weight'}
        >>> print(plan)  # doctest: +NORMALIZE_WHITESPACE
        checkpoint -> model                action  n
        module.conv.weight -> conv.weight  copy    1
        module.fc.weight -> head.weight    copy    1  (rename)
        copy 2, shove 0, skip 0 of 2 checkpoint tensors
        2 of 2 model tensors set, 0 unset; association='isomorphism'
    """
    check_plan_options(association, mangle)
    keyfilter = KeyFilter(include, exclude)
    dst_specs, dst_tensors = describe_destination(model_or_state_dict)
    rules = MangleRules(mangle, dst_specs)
    src = open_source(source, device='cpu', ema=ema,
                      allow_unsafe=allow_unsafe)
    return build_plan(src, dst_specs, dst_tensors, association=association,
                      rules=rules, rename=rename, keyfilter=keyfilter,
                      shortcut=allow_efficiency_tricks)


def check_plan_options(association: str, mangle: Mangle) -> None:
    """
    Raise for an ``association`` or ``mangle`` that is not accepted, before
    anything is read (``mangle`` patterns are checked against the model's
    keys later, by :class:`~torch_liberator.policies.MangleRules`).

    Example:
        >>> from torch_liberator.loadplan import check_plan_options
        >>> check_plan_options('isomorphsm', True)
        Traceback (most recent call last):
        ...
        ValueError: association='isomorphsm' is not one of ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism', 'structure', 'auto')
    """
    if not isinstance(association, str) or association not in ASSOCIATIONS:
        raise ValueError(
            f'association={association!r} is not one of {ASSOCIATIONS}')
    MangleRules(mangle, None)  # patterns are checked once the keys are known


def describe_destination(model_or_state_dict: Destination
                         ) -> Tuple[Dict[str, TensorSpec],
                                    Optional[Dict[str, torch.Tensor]]]:
    """
    The model side as ``{key: TensorSpec}``, plus its live tensors when it
    has them (None for a mapping of specs).

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import describe_destination
        >>> specs, tensors = describe_destination(torch.nn.Linear(2, 1))
        >>> specs['weight'].shape, list(tensors)
        ((1, 2), ['weight', 'bias'])
    """
    dst = model_or_state_dict
    while isinstance(dst, (torch.nn.DataParallel,
                           torch.nn.parallel.DistributedDataParallel)):
        dst = dst.module
    if isinstance(dst, torch.nn.Module):
        dst = dst.state_dict(keep_vars=True)
    if not isinstance(dst, Mapping):
        raise ValueError(
            f'the model is a {type(dst).__name__}; pass a torch.nn.Module, '
            'its state dict, or a {key: TensorSpec} mapping')
    specs, tensors = {}, {}
    for key, value in dst.items():
        if isinstance(value, TensorSpec):
            specs[key] = value
            tensors = None
        elif isinstance(value, torch.Tensor):
            if isinstance(value, torch.nn.parameter.UninitializedTensorMixin):
                specs[key] = TensorSpec(None, None)  # lazy: no shape yet
            else:
                specs[key] = TensorSpec.of(value)
            if tensors is not None:
                tensors[key] = value
        # other entries of a state dict (extra state) are not tensors to load
    return specs, tensors


def build_plan(src: TensorSource, dst_specs: Mapping[str, TensorSpec],
               dst_tensors: Optional[Mapping[str, torch.Tensor]] = None, *,
               association: str = DEFAULT_ASSOCIATION,
               rules: Optional[MangleRules] = None,
               rename: Optional[Mapping[str, str]] = None,
               keyfilter: Optional[KeyFilter] = None,
               shortcut: bool = True) -> LoadPlan:
    """
    The plan of :func:`plan_load` for an opened source and a described
    model (see :func:`describe_destination`), from specs alone; when the
    source's tensors are already in memory (a
    :class:`~torch_liberator.tensorsource.StateDictSource`) and the model's
    tensors are given, also :func:`check_tensors` (tensors read from a file
    are new, so they cannot share memory with the model).

    Example:
        >>> from torch_liberator.loadplan import build_plan
        >>> from torch_liberator.tensorsource import SpecSource
        >>> from torch_liberator.shapes import TensorSpec, shape_relation
        >>> plan = build_plan(SpecSource({'w': TensorSpec((3,))}), {'w': TensorSpec((2,))})
        >>> plan.entries[0].action, plan.entries[0].outcome, plan.entries[0].policy
        ('shove', 'partial_add_some', 'corner')
    """
    keyfilter = keyfilter or KeyFilter()
    rules = rules or MangleRules(True, dst_specs)
    src_specs = src.specs
    keyfilter.check_used(src_specs, dst_specs)
    names, given = rename_keys(src_specs, dst_specs, rename)

    taken = set(given.values())
    rest_src = {names[key]: spec for key, spec in src_specs.items()
                if key not in given}
    back = {names[key]: key for key in src_specs if key not in given}
    rest_dst = {key: spec for key, spec in dst_specs.items()
                if key not in taken}
    found = associate(rest_src, rest_dst, association=association,
                      shortcut=shortcut)
    mapping = dict(given)
    mapping.update((back[s], d) for s, d in found.mapping.items())
    ambiguous = {back[s]: tuple(d) for s, d in found.ambiguous.items()}

    problems = src.problems
    # a copy (equal shapes) depends on the two specs alone: decided once
    # per pair of specs, and the one immutable decision shared
    copies = {}
    entries = []
    for key, spec in src_specs.items():
        dst_key = mapping.get(key)
        if dst_key is None:
            reason = 'no matching model key'
            if key in ambiguous:
                reason = ('ambiguous: could go to ' +
                          ' or '.join(repr(k) for k in ambiguous[key]) +
                          '; give the pair in rename= to load it')
            entries.append(PlanEntry(key, None, 'skip', 'skipped', spec,
                                     reason=reason))
            continue
        dst_spec = dst_specs[dst_key]
        reason = (problems.get(key)
                  or (dst_tensors is not None
                      and (unwritable_reason(dst_tensors[dst_key])
                           or check_destination(dst_tensors[dst_key])))
                  or (keyfilter.reason(key, dst_key) if keyfilter else None))
        if not reason and (spec.shape is None or dst_spec.shape is None):
            reason = 'the shape is unknown'
        if reason:
            entries.append(PlanEntry(key, dst_key, 'skip', 'skipped', spec, dst_spec,
                                     reason=reason, given=key in given))
            continue
        specs = (tuple(spec.shape), spec.dtype,
                 tuple(dst_spec.shape), dst_spec.dtype)
        decision = copies.get(specs)
        if decision is None:
            decision = rules.decide(key, dst_key, spec, dst_spec)
            if decision.action == 'copy':
                copies[specs] = decision
        entries.append(PlanEntry(
            key, dst_key, decision.action, decision.outcome, spec, dst_spec,
            policy=decision.policy, reason=decision.reason or '',
            given=key in given, decision=decision))

    entries = _drop_other_kinds(entries)
    tied = _tied_keys(dst_tensors) if dst_tensors is not None else {}
    hints = []
    for e in entries:
        hint = e.decision.hint if e.decision else None
        if hint and hint not in hints:
            hints.append(hint)
    plan = LoadPlan(entries, unset_model_keys(list(dst_specs), tied, entries),
                    ambiguous, found.association, list(dst_specs), tied,
                    hints)
    if isinstance(src, StateDictSource) and dst_tensors is not None:
        plan = check_tensors(plan, src.read(e.src_key for e in plan.loaded),
                             dst_tensors)
    return plan


def _drop_other_kinds(entries):
    """
    A module paired with another kind of module sends nothing: when one of
    its tensors is skipped because the ranks differ (a conv's 4-d weight
    against a BatchNorm's 1-d one), the pair's other tensors (the conv's
    bias into the BatchNorm's bias) are skipped too. Pairs the user gave in
    ``rename`` are kept.
    """
    def module(key):
        return key.rpartition('.')[0]

    other = {}
    for e in entries:
        if (e.action == 'skip' and e.dst_key is not None and not e.given and e.dst_spec is not None
                and shape_relation(e.src_spec.shape, e.dst_spec.shape) == 'different_rank'):
            other[module(e.src_key), module(e.dst_key)] = e
    if not other:
        return entries
    out = []
    for e in entries:
        cause = (other.get((module(e.src_key), module(e.dst_key)))
                 if e.loads and not e.given else None)
        if cause is not None:
            e = PlanEntry(e.src_key, e.dst_key, 'skip', 'skipped', e.src_spec, e.dst_spec,
                          reason=f'{cause.src_key!r} {tuple(cause.src_spec.shape)} cannot go to '
                                 f'{cause.dst_key!r} {tuple(cause.dst_spec.shape)}: the two '
                                 'modules are of different kinds')
        out.append(e)
    return out


def check_tensors(plan: LoadPlan, src_tensors: Mapping[str, torch.Tensor],
                  dst_tensors: Mapping[str, torch.Tensor]) -> LoadPlan:
    """
    The plan with every pair skipped whose copy would read memory that the
    load writes: a checkpoint tensor that shares memory with its model
    tensor, or with one written before it
    (:func:`torch_liberator.preflight.check_pairs`). Reads no tensor data.
    The checks of single tensors are :func:`build_plan`'s.

    Args:
        plan: a plan from :func:`build_plan`.
        src_tensors: ``{checkpoint key: tensor}`` of every loading pair.
        dst_tensors: the model's ``{key: tensor}``.

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> model = torch.nn.ModuleDict({'a': torch.nn.Linear(2, 2), 'b': torch.nn.Linear(2, 2)})
        >>> swapped = {'a.weight': model.b.weight.detach(), 'b.weight': model.a.weight.detach()}
        >>> plan = plan_load(model, swapped, rename={'a.weight': 'a.weight', 'b.weight': 'b.weight'})
        >>> [(e.src_key, e.action) for e in plan.entries]
        [('a.weight', 'copy'), ('b.weight', 'skip')]
        >>> plan.entries[1].reason[:60]
        "the checkpoint tensor shares memory with model tensor 'a.wei"
    """
    reasons = check_pairs((e.src_key, e.dst_key, src_tensors[e.src_key],
                           dst_tensors[e.dst_key]) for e in plan.loaded)
    return plan.skipping(reasons) if reasons else plan


def unwritable_reason(dst: torch.Tensor) -> Optional[str]:
    """
    Why a model tensor cannot be written in place, or None.

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import unwritable_reason
        >>> unwritable_reason(torch.zeros(2)) is None
        True
        >>> print(unwritable_reason(torch.nn.UninitializedParameter()))
        the model tensor is not materialized yet (lazy module); run one forward pass before loading
    """
    if isinstance(dst, torch.nn.parameter.UninitializedTensorMixin):
        return ('the model tensor is not materialized yet (lazy module); '
                'run one forward pass before loading')
    if dst.is_inference() and not torch.is_inference_mode_enabled():
        return ('the model tensor was created under torch.inference_mode '
                'and cannot be written outside it; load inside '
                'torch.inference_mode() or build the model outside it')
    return None


def _tied_keys(dst_tensors):
    first, tied = {}, {}
    for key, value in dst_tensors.items():
        owner = first.setdefault(id(value), key)
        if owner != key:
            tied[key] = owner
    return tied
