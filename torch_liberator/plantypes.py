"""
What a load plan is: :class:`PlanEntry` (one checkpoint key and what
happens to it) and :class:`LoadPlan` (all of them, with the model keys left
unset), as plain data that prints as a table and converts to JSON.

How a plan is made is :mod:`torch_liberator.loadplan`'s job; this module
only holds and reads one.

Example:
    >>> from torch_liberator.plantypes import LoadPlan, PlanEntry
    >>> from torch_liberator.shapes import TensorSpec
    >>> entries = [PlanEntry('w', 'w', 'copy', 'full_add', TensorSpec((2,)), TensorSpec((2,))),
    ...            PlanEntry('x', None, 'skip', 'skipped', TensorSpec((1,)), reason='no matching model key')]
    >>> plan = LoadPlan(entries, ['b'], {}, 'strict', ['w', 'b'])
    >>> plan.mapping, plan.other_unused, plan.counts()
    ({'w': 'w'}, ['x'], {'copy': 1, 'shove': 0, 'skip': 1})
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from torch_liberator.policies import ACTIONS, ShoveDecision
from torch_liberator.report import SEEN_CATEGORIES, format_plan
from torch_liberator.shapes import TensorSpec

__all__ = ['LoadPlan', 'PlanEntry', 'unset_model_keys']


@dataclass(frozen=True)
class PlanEntry:
    """
    What a plan does with one checkpoint key.

    Attributes:
        src_key (str): the checkpoint key.
        dst_key (str | None): the model key it was associated with, or None.
        action (str): one of :data:`ACTIONS`: ``'copy'``, ``'shove'`` or
            ``'skip'``.
        outcome (str): the ``info['seen']`` category it counts in:
            ``'full_add'``, ``'partial_add_all'`` (all of the source fits),
            ``'partial_add_some'`` (part of the source is cut off) or
            ``'skipped'``.
        src_spec (TensorSpec): the checkpoint tensor's shape and dtype.
        dst_spec (TensorSpec | None): the model tensor's, when associated.
        policy (str | None): the shape policy of a ``'shove'``
            (``'corner'``, ``'center'``, ``'interpolate'``, ...).
        reason (str): why a ``'skip'`` is skipped ('' otherwise).
        given (bool): the pair came from the user's ``rename``.
        decision (ShoveDecision | None): the shape policy's full decision
            for an associated pair (see :mod:`torch_liberator.policies`).

    Example:
        >>> from torch_liberator.plantypes import PlanEntry
        >>> from torch_liberator.shapes import TensorSpec
        >>> entry = PlanEntry('fc.weight', None, 'skip', 'skipped', TensorSpec((1000, 8)),
        ...                   reason='no matching model key')
        >>> entry.loads, entry.covers
        (False, False)
    """

    src_key: str
    dst_key: Optional[str]
    action: str
    outcome: str
    src_spec: TensorSpec
    dst_spec: Optional[TensorSpec] = None
    policy: Optional[str] = None
    reason: str = ''
    given: bool = False
    decision: Optional[ShoveDecision] = field(default=None, repr=False,
                                              compare=False)

    @property
    def loads(self) -> bool:
        """The model tensor receives data."""
        return self.action != 'skip'

    @property
    def covers(self) -> bool:
        """Every element of the model tensor is written."""
        if not self.loads:
            return False
        return self.decision is None or self.decision.covers

    def skipped(self, reason: str) -> 'PlanEntry':
        """This pair, skipped for ``reason``."""
        return dataclasses.replace(self, action='skip', outcome='skipped',
                                   policy=None, reason=reason)


@dataclass
class LoadPlan:
    """
    Everything a load will do, decided before any tensor is touched.

    Attributes:
        entries (List[PlanEntry]): one per checkpoint key, in checkpoint
            order.
        self_unset (List[str]): model keys that receive nothing (tied
            tensors count as one: a key is set when its tensor is).
        ambiguous (Dict[str, Tuple[str, ...]]): checkpoint keys with several
            equally good model keys; they are left out.
        association (str): the association mode that was used.
        model_keys (List[str]): every model key, in model order.
        tied (Dict[str, str]): model keys that share their tensor with an
            earlier key -> that key (tied weights).
        hints (List[str]): suggestions (e.g. a shape policy to try).

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> plan = plan_load(torch.nn.Linear(2, 3), {'weight': torch.zeros(3, 2), 'x': torch.zeros(1)})
        >>> plan.mapping, plan.self_unset, plan.other_unused
        ({'weight': 'weight'}, ['bias'], ['x'])
        >>> plan.seen()['full_add']
        ['weight']
    """

    entries: List[PlanEntry]
    self_unset: List[str]
    ambiguous: Dict[str, Tuple[str, ...]]
    association: str
    model_keys: List[str]
    tied: Dict[str, str] = field(default_factory=dict)
    hints: List[str] = field(default_factory=list)

    @property
    def mapping(self) -> Dict[str, str]:
        """``{checkpoint key: model key}`` as associated (skipped pairs
        included), in checkpoint order."""
        return {e.src_key: e.dst_key for e in self.entries
                if e.dst_key is not None}

    @property
    def loaded(self) -> List[PlanEntry]:
        """The entries that write into the model (copies and shoves)."""
        return [e for e in self.entries if e.loads]

    @property
    def other_unused(self) -> List[str]:
        """Checkpoint keys that are not loaded."""
        return [e.src_key for e in self.entries if not e.loads]

    def seen(self) -> Dict[str, List[str]]:
        """The published ``info['seen']``: model keys per ``*_add``
        category, checkpoint keys under ``'skipped'``."""
        seen = {name: [] for name in SEEN_CATEGORIES}
        for e in self.entries:
            seen[e.outcome].append(e.dst_key if e.loads else e.src_key)
        return seen

    def skipping(self, reasons: Mapping[str, str]) -> 'LoadPlan':
        """
        This plan with the pairs of the checkpoint keys in ``reasons``
        skipped, for those reasons.

        Example:
            >>> import torch
            >>> from torch_liberator.loadplan import plan_load
            >>> plan = plan_load(torch.nn.Linear(2, 1), torch.nn.Linear(2, 1).state_dict())
            >>> plan.skipping({'bias': 'not wanted'}).self_unset
            ['bias']
        """
        entries = [e.skipped(reasons[e.src_key])
                   if e.loads and e.src_key in reasons else e
                   for e in self.entries]
        return dataclasses.replace(
            self, entries=entries,
            self_unset=unset_model_keys(self.model_keys, self.tied, entries))

    def counts(self) -> Dict[str, int]:
        """How many checkpoint keys each action has."""
        counts = dict.fromkeys(ACTIONS, 0)
        for e in self.entries:
            counts[e.action] += 1
        return counts

    def to_dict(self) -> dict:
        """
        The plan as plain JSON-able data (``map --json`` prints it).

        Example:
            >>> import json, torch
            >>> from torch_liberator.loadplan import plan_load
            >>> plan = plan_load(torch.nn.Linear(2, 1), torch.nn.Linear(2, 1).state_dict())
            >>> data = plan.to_dict()
            >>> data['counts'], data['entries'][0]
            ({'copy': 2, 'shove': 0, 'skip': 0}, {'src': 'weight', 'dst': 'weight', 'action': 'copy', 'outcome': 'full_add', 'src_shape': [1, 2], 'dst_shape': [1, 2], 'policy': None, 'reason': '', 'given': False, 'hint': None})
            >>> _ = json.dumps(data)
        """
        def shape(spec):
            if spec is None or spec.shape is None:
                return None
            return list(spec.shape)
        return {
            'association': self.association,
            'counts': self.counts(),
            'entries': [{
                'src': e.src_key, 'dst': e.dst_key, 'action': e.action,
                'outcome': e.outcome, 'src_shape': shape(e.src_spec),
                'dst_shape': shape(e.dst_spec), 'policy': e.policy,
                'reason': e.reason, 'given': e.given,
                'hint': e.decision.hint if e.decision else None,
            } for e in self.entries],
            'self_unset': list(self.self_unset),
            'other_unused': self.other_unused,
            'ambiguous': {k: list(v) for k, v in self.ambiguous.items()},
            'n_model_keys': len(self.model_keys),
            'hints': list(self.hints),
        }

    def __len__(self) -> int:
        """The number of checkpoint keys planned, so that code that takes
        ``len`` of every ``info`` value (as the 0.2 README does) keeps
        working."""
        return len(self.entries)

    def __str__(self) -> str:
        return format_plan(self)


def unset_model_keys(model_keys: Iterable[str], tied: Mapping[str, str],
                     entries: Iterable[PlanEntry]) -> List[str]:
    """
    Model keys that receive nothing from ``entries``; a tied tensor is set
    when any of its keys is.

    Args:
        model_keys: every model key, in model order.
        tied: model keys that share their tensor with an earlier key -> that
            key.
        entries: the plan's entries.

    Example:
        >>> from torch_liberator.plantypes import PlanEntry, unset_model_keys
        >>> from torch_liberator.shapes import TensorSpec
        >>> spec = TensorSpec((2,))
        >>> unset_model_keys(['a', 'b', 'c'], {'b': 'a'}, [PlanEntry('x', 'b', 'copy', 'full_add', spec, spec)])
        ['c']
    """
    set_keys = {e.dst_key for e in entries if e.loads}
    set_keys |= {tied.get(key, key) for key in set_keys}
    return [key for key in model_keys
            if key not in set_keys and tied.get(key, key) not in set_keys]
