"""
Shape policies: what to do, key by key, with a checkpoint tensor whose shape
differs from the model tensor it is associated with.

The ``mangle`` option of :func:`torch_liberator.load_partial_state` names a
policy for every model key (:class:`MangleRules`); :meth:`MangleRules.decide`
turns one associated pair of *specs* (shapes and dtypes, no data) into a
:class:`ShoveDecision`, so a whole load, or a dry run from file headers, is
decided and validated before any tensor is touched.
:func:`torch_liberator.preflight.check_copyable` adds the checks that need
the real tensors (memory overlap, expanded views),
:func:`prepare_shove` runs the policies that compute values (and user
callables, which can only be checked by running them), and
:func:`apply_decision` writes one decided pair (a load writes its shoves
with it; a planned copy is a plain ``copy_``, see
:mod:`torch_liberator.transfer`). The tensor surgery itself is
:mod:`torch_liberator.shove`'s.

Policies (:data:`POLICIES`):

* ``'corner'``: copy the leading block both shapes share (``mangle=True``,
  the published behaviour);
* ``'center'``: crop or pad around the centre of each dimension;
* ``'interpolate'``: a position embedding: keep the prefix tokens, resample
  the patch grid (bicubic); :func:`interpolate` gives the layout when it
  cannot be inferred;
* ``'adapt_channels'``: a convolution weight with other input channels;
* ``'reshape'``: equal sizes once unit dimensions are dropped; lossless, so
  it is applied to such pairs unless a rule names the key;
* ``'skip'`` (``mangle=False``) and ``'raise'``;
* any callable ``(src_tensor, dst_tensor, key) -> tensor`` of the
  destination's shape.

Example:
    >>> from torch_liberator.policies import MangleRules
    >>> from torch_liberator.shapes import TensorSpec
    >>> rules = MangleRules({'pos_embed': 'interpolate'}, ['pos_embed', 'head.weight'])
    >>> d = rules.decide('pos_embed', 'pos_embed', TensorSpec((1, 197, 768)), TensorSpec((1, 577, 768)))
    >>> d.action, d.policy, d.outcome
    ('shove', 'interpolate', 'partial_add_all')
    >>> d = rules.decide('head.weight', 'head.weight', TensorSpec((1000, 768)), TensorSpec((10, 768)))
    >>> d.policy, d.outcome, d.hint
    ('corner', 'partial_add_some', None)
"""
import dataclasses
import fnmatch
import re
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

import torch

from torch_liberator import resample, shove
from torch_liberator.errors import PolicyError, ShapeMismatchError
from torch_liberator.preflight import (
    check_copyable, check_spec_copyable, dtype_name)
from torch_liberator.shapes import TensorSpec, shape_relation

__all__ = [
    'ACTIONS',
    'MangleRules',
    'POLICIES',
    'ShoveDecision',
    'apply_decision',
    'interpolate',
    'prepare_shove',
    'suggest_policy',
]

#: The policy names ``mangle`` accepts (besides True, False and callables).
POLICIES = ('corner', 'center', 'interpolate', 'adapt_channels', 'reshape',
            'skip', 'raise')

#: What a :class:`ShoveDecision` says to do with a pair.
ACTIONS = ('copy', 'shove', 'skip')


@dataclasses.dataclass(frozen=True)
class ShoveDecision:
    """
    What a load does with one associated pair, decided from specs alone.

    Attributes:
        action (str): one of :data:`ACTIONS`: ``'copy'`` (equal shapes),
            ``'shove'`` (shapes differ, ``policy`` fits them) or ``'skip'``.
        policy (str | None): the policy name (a callable's ``__name__``);
            None for a plain copy.
        outcome (str): the ``info['seen']`` category: one of
            :data:`torch_liberator.shove.SHOVE_OUTCOMES`, or ``'skipped'``.
        src_shape (Tuple[int, ...] | None): the checkpoint tensor's shape
            (None when unknown).
        dst_shape (Tuple[int, ...] | None): the model tensor's shape.
        reason (str | None): why the pair is skipped.
        hint (str | None): a policy that would likely serve this pair
            better, as a ``mangle=`` value to paste
            (``"mangle={'pos_embed': 'interpolate'}"``).
        covers (bool): the write sets every element of the model tensor.
        needs_data (bool): a user callable: it is only checked by running it
            (:func:`prepare_shove`), which must happen before the model is
            touched.
        fn (Callable | None): the policy's implementation (not compared,
            not printed).

    Example:
        >>> from torch_liberator.policies import ShoveDecision
        >>> d = ShoveDecision('shove', 'corner', 'partial_add_some', (1000, 2048), (10, 2048), covers=True)
        >>> d.as_dict()['outcome']
        'partial_add_some'
    """

    action: str
    policy: Optional[str]
    outcome: str
    src_shape: Tuple[int, ...]
    dst_shape: Tuple[int, ...]
    reason: Optional[str] = None
    hint: Optional[str] = None
    covers: bool = True
    needs_data: bool = False
    fn: Optional[Callable] = dataclasses.field(
        default=None, compare=False, repr=False)

    def as_dict(self) -> Dict[str, Any]:
        """
        The decision as JSON-ready data (without ``fn``).
        """
        data = {field.name: getattr(self, field.name)
                for field in dataclasses.fields(self) if field.name != 'fn'}
        for name in ('src_shape', 'dst_shape'):
            if data[name] is not None:
                data[name] = list(data[name])
        return data


# --- the built-in policies ---------------------------------------------------

class _Builtin:
    """
    A built-in policy: ``check(src_shape, dst_shape) -> outcome`` (raises
    ShapeMismatchError), ``compute(src, dst)`` -> the new value of ``dst``
    (None: ``write`` reads ``src`` itself), ``write(dst, src, value)`` in
    place. ``crops``: it writes only the overlap; ``floating``: it computes,
    so it needs floating point tensors.
    """

    def __init__(self, name, check, write, compute=None, crops=False,
                 floating=False):
        self.__name__ = name
        self.check = check
        self.write = write
        self.compute = compute
        self.crops = crops
        self.floating = floating

    def covers(self, src_shape, dst_shape):
        if not self.crops:
            return True
        return len(src_shape) == len(dst_shape) and all(
            s >= d for s, d in zip(src_shape, dst_shape))

    def __call__(self, src, dst, key=None):
        """The new value of ``dst`` (policies are callables too)."""
        outcome = self.check(tuple(src.shape), tuple(dst.shape))
        decision = ShoveDecision('shove', self.__name__, outcome,
                                 tuple(src.shape), tuple(dst.shape), fn=self)
        out = dst.detach().clone()
        with torch.no_grad():
            self.write(out, src, prepare_shove(decision, src, dst, key))
        return out


def _check_floating(dtype, policy):
    """Raise if ``dtype`` is known and not floating point."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype_name(dtype), None)
    if isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
        raise ShapeMismatchError(
            f'{policy} needs floating point tensors, got {dtype_name(dtype)}')


class _Interpolate(_Builtin):
    """The interpolate policy, with the layout given or left to inference."""

    def __init__(self, prefix_tokens=None, grid=None, dst_grid=None):
        super().__init__('interpolate', self._check, _write_value,
                         self._compute, floating=True)
        self.layout = dict(prefix_tokens=prefix_tokens, grid=grid,
                           dst_grid=dst_grid)

    def _check(self, src_shape, dst_shape):
        resample.infer_pos_embed_layout(src_shape, dst_shape, **self.layout)
        return shove.shove_outcome(src_shape, dst_shape)

    def _compute(self, src, dst):
        return resample.resample_pos_embed(src, tuple(dst.shape), **self.layout)

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in self.layout.items()
                         if v is not None)
        return f'interpolate({args})'


def _write_value(dst, src, value):
    dst.copy_(value)


def _write_corner(dst, src, value):
    shove.shove_tensor(dst, src)


def _write_center(dst, src, value):
    shove.shove_center(dst, src)


def _write_reshape(dst, src, value):
    shove.shove_reshape(dst, src)


def _check_corner(src_shape, dst_shape):
    return shove.plan_shove(dst_shape, src_shape)


def _compute_adapt(src, dst):
    return resample.adapt_channels(src, dst.shape[1])


_BUILTINS = {
    'corner': _Builtin('corner', _check_corner, _write_corner, crops=True),
    'center': _Builtin('center', shove.check_center, _write_center,
                       crops=True),
    'interpolate': _Interpolate(),
    'adapt_channels': _Builtin('adapt_channels', resample.check_adapt_channels,
                               _write_value, _compute_adapt, floating=True),
    'reshape': _Builtin('reshape', shove.check_reshape, _write_reshape),
}


def interpolate(prefix_tokens: Optional[int] = None,
                grid: Optional[Tuple[int, int]] = None,
                dst_grid: Optional[Tuple[int, int]] = None) -> Callable:
    """
    The ``'interpolate'`` policy with the position-embedding layout given,
    for the shapes whose layout cannot be inferred (see
    :func:`torch_liberator.shove.infer_pos_embed_layout`).

    Args:
        prefix_tokens (int | None): tokens before the patch grid (class,
            distillation, registers), the same on both sides.
        grid (Tuple[int, int] | None): the checkpoint's patch grid (rows,
            cols).
        dst_grid (Tuple[int, int] | None): the model's patch grid.

    Returns:
        Callable: a policy for ``mangle``; also callable as
        ``(src_tensor, dst_tensor, key) -> tensor``.

    Example:
        >>> import torch
        >>> from torch_liberator.policies import interpolate
        >>> policy = interpolate(prefix_tokens=1, grid=(2, 3), dst_grid=(4, 6))
        >>> policy
        interpolate(prefix_tokens=1, grid=(2, 3), dst_grid=(4, 6))
        >>> out = policy(torch.randn(1, 7, 8), torch.zeros(1, 25, 8), 'pos_embed')
        >>> tuple(out.shape)
        (1, 25, 8)
    """
    if prefix_tokens is not None and (
            isinstance(prefix_tokens, bool) or not isinstance(prefix_tokens, int)
            or prefix_tokens < 0):
        raise PolicyError(
            f'interpolate(prefix_tokens={prefix_tokens!r}): pass an int >= 0')
    for name, value in (('grid', grid), ('dst_grid', dst_grid)):
        if value is not None:
            try:
                value = tuple(int(n) for n in value)
            except (TypeError, ValueError) as err:
                raise PolicyError(
                    f'interpolate({name}={value!r}): pass (rows, cols)') from err
            if len(value) != 2 or min(value) < 1:
                raise PolicyError(
                    f'interpolate({name}={value!r}): pass (rows, cols), '
                    'both >= 1')
    return _Interpolate(prefix_tokens, grid, dst_grid)


# --- rules --------------------------------------------------------------------

def _policy_name(policy):
    if isinstance(policy, str):
        return policy
    return getattr(policy, '__name__', None) or type(policy).__name__


class MangleRules:
    r"""
    The ``mangle`` option, parsed and checked against the model's keys.

    Args:
        mangle (bool | str | Callable | Mapping[str, bool | str | Callable]):
            ``True`` is ``'corner'``, ``False`` is ``'skip'``; a name from
            :data:`POLICIES` or a callable applies to every key; a dict maps
            patterns over *model* keys to policies: a glob
            (:func:`fnmatch.fnmatchcase`), or a regex (:func:`re.search`) when
            the pattern starts with ``re:``. The first matching pattern wins;
            ``'*'`` sets the default (``'corner'`` when absent).
        dst_keys (Iterable[str] | None): the model's keys; every pattern
            must match at least one. None checks everything else (for
            options given before the model is known).

    Raises:
        PolicyError: an unknown policy, a pattern that is not a string, a
            bad regex, or a pattern matching no model key.

    Example:
        >>> from torch_liberator.policies import MangleRules
        >>> rules = MangleRules({r're:^head\.': 'skip', '*': 'center'}, ['head.weight', 'conv.weight'])
        >>> rules.policy_for('head.weight')
        ('skip', 're:^head\\.')
        >>> rules.policy_for('conv.weight')
        ('center', None)
        >>> import pytest
        >>> with pytest.raises(ValueError, match=r"'fc.\*' matches no model key"):
        ...     MangleRules({'fc.*': 'skip'}, ['head.weight'])
    """

    def __init__(self, mangle, dst_keys: Optional[Iterable[str]]):
        dst_keys = None if dst_keys is None else list(dst_keys)
        self.default = _BUILTINS['corner']
        self.rules = []  # (pattern, match, policy)
        if isinstance(mangle, Mapping):
            for pattern, policy in mangle.items():
                policy = _parse_policy(policy, f'mangle[{pattern!r}]')
                if pattern == '*':
                    self.default = policy
                    continue
                match = _compile_pattern(pattern)
                if dst_keys is not None and not any(
                        match(key) for key in dst_keys):
                    raise PolicyError(
                        f'mangle pattern {pattern!r} matches no model key; '
                        f'model keys look like {dst_keys[:3]}; fix or remove '
                        'the pattern (globs match whole keys, "re:" patterns '
                        'use re.search)')
                self.rules.append((pattern, match, policy))
        else:
            self.default = _parse_policy(mangle, 'mangle')

    def __repr__(self):
        rules = {pattern: _policy_name(policy)
                 for pattern, _, policy in self.rules}
        rules['*'] = _policy_name(self.default)
        return f'MangleRules({rules!r})'

    def policy_for(self, dst_key: str) -> Tuple[str, Optional[str]]:
        """
        The name of the policy for a model key, and the pattern that chose
        it (None for the default).
        """
        policy, pattern = self._lookup(dst_key)
        return _policy_name(policy), pattern

    def _lookup(self, dst_key):
        for pattern, match, policy in self.rules:
            if match(dst_key):
                return policy, pattern
        return self.default, None

    def decide(self, src_key: str, dst_key: str, src_spec: TensorSpec,
               dst_spec: TensorSpec) -> ShoveDecision:
        """
        What to do with one associated pair, from shapes and dtypes alone.

        Equal shapes are copied. Shapes equal up to unit dimensions are
        reshaped, unless a pattern names the key. Otherwise the key's policy
        decides: when it cannot fit the pair, the pair is skipped with the
        reason if the policy is the default, and the call raises if a pattern
        chose it (the user asked for it by name).

        Raises:
            ShapeMismatchError: the policy is ``'raise'``, or a policy chosen
                by a pattern cannot fit the pair; the message names both keys,
                both shapes and the fix.

        Example:
            >>> from torch_liberator.policies import MangleRules
            >>> from torch_liberator.shapes import TensorSpec
            >>> rules = MangleRules(False, ['gamma', 'fc.weight'])
            >>> rules.decide('gamma', 'gamma', TensorSpec((8,)), TensorSpec((8, 1, 1))).policy
            'reshape'
            >>> rules.decide('fc.weight', 'fc.weight', TensorSpec((5, 2)), TensorSpec((3, 2))).reason
            "shape (5, 2) != model 'fc.weight' (3, 2) and the policy is 'skip'"
        """
        src_shape, dst_shape = (None if spec.shape is None else tuple(spec.shape)
                                for spec in (src_spec, dst_spec))

        def skip(reason, hint=None):
            return ShoveDecision('skip', None, 'skipped', src_shape, dst_shape,
                                 reason=reason, hint=hint, covers=False)

        reason = check_spec_copyable(src_spec, dst_spec)
        if reason:
            return skip(reason)
        relation = shape_relation(src_spec.shape, dst_spec.shape)
        if relation == 'unknown':
            unknown = src_key if src_spec.shape is None else dst_key
            return skip(f'the shape of {unknown!r} is unknown; nothing can be '
                        'fitted to it')
        if relation == 'equal':
            return ShoveDecision('copy', None, 'full_add', src_shape, dst_shape)
        policy, pattern = self._lookup(dst_key)
        if relation == 'units' and pattern is None:
            policy = _BUILTINS['reshape']
        name = _policy_name(policy)
        where = (f'checkpoint {src_key!r} {src_shape} -> model {dst_key!r} '
                 f'{dst_shape}')
        if policy == 'raise':
            raise ShapeMismatchError(
                f'{where}: shapes differ and mangle says raise; choose a '
                f'policy for it, e.g. mangle={{{dst_key!r}: '
                f'{suggest_policy(dst_key, src_shape, dst_shape) or "corner"!r}}}'
                f', or exclude the key')
        hint = None if pattern else _hint(dst_key, src_shape, dst_shape, name)
        if policy == 'skip':
            return skip(f'shape {src_shape} != model {dst_key!r} {dst_shape} '
                        "and the policy is 'skip'", hint)
        if not isinstance(policy, _Builtin):
            return ShoveDecision(
                'shove', name, shove.shove_outcome(src_shape, dst_shape),
                src_shape, dst_shape, hint=hint, needs_data=True, fn=policy)
        try:
            if policy.floating:
                _check_floating(src_spec.dtype, name)
            outcome = policy.check(src_shape, dst_shape)
        except ShapeMismatchError as err:
            if pattern is None:
                return skip(f'{name}: {err}', hint)
            raise ShapeMismatchError(
                f'{where}: mangle pattern {pattern!r} chose {name!r}, which '
                f'cannot fit them ({err}); choose another policy for this '
                'key or fix the pattern') from err
        return ShoveDecision('shove', name, outcome, src_shape, dst_shape,
                             hint=hint, fn=policy,
                             covers=policy.covers(src_shape, dst_shape))


def _parse_policy(policy, where):
    if policy is True:
        return _BUILTINS['corner']
    if policy is False:
        return 'skip'
    if isinstance(policy, str):
        if policy in ('skip', 'raise'):
            return policy
        if policy in _BUILTINS:
            return _BUILTINS[policy]
        raise PolicyError(
            f'{where}={policy!r} is not a policy; use one of {POLICIES}, '
            'True, False or a callable (src_tensor, dst_tensor, key) -> tensor')
    if callable(policy):
        return policy
    raise PolicyError(
        f'{where}={policy!r} is a {type(policy).__name__}; use one of '
        f'{POLICIES}, True, False, a callable, or a dict of them by pattern')


def _compile_pattern(pattern):
    if not isinstance(pattern, str):
        raise PolicyError(
            f'mangle pattern {pattern!r} is a {type(pattern).__name__}; '
            'patterns are strings (globs, or regexes starting with "re:")')
    if pattern.startswith('re:'):
        try:
            regex = re.compile(pattern[3:])
        except re.error as err:
            raise PolicyError(
                f'mangle pattern {pattern!r} is not a valid regex: {err}') from err
        return lambda key: regex.search(key) is not None
    return lambda key: fnmatch.fnmatchcase(key, pattern)


# --- hints ---------------------------------------------------------------------

def suggest_policy(dst_key: str, src_shape, dst_shape) -> Optional[str]:
    """
    A policy that likely fits a mismatched pair better than a corner copy:
    ``'interpolate'`` for what looks like a position embedding (``[1, N, D]``
    with a layout that can be inferred, or a ``pos`` key), ``'adapt_channels'``
    for what looks like a stem convolution (only the input channels differ,
    one side has at most 4), ``'reshape'`` for unit dimensions; else None.

    Example:
        >>> from torch_liberator.policies import suggest_policy
        >>> suggest_policy('encoder.pos_embedding', (1, 197, 768), (1, 577, 768))
        'interpolate'
        >>> suggest_policy('conv1.weight', (64, 3, 7, 7), (64, 1, 7, 7))
        'adapt_channels'
        >>> suggest_policy('fc.weight', (1000, 512), (10, 512)) is None
        True
    """
    src_shape, dst_shape = tuple(src_shape), tuple(dst_shape)
    relation = shape_relation(src_shape, dst_shape)
    if relation == 'units':
        return 'reshape'
    if relation == 'equal':
        return None
    looks_pos = (len(src_shape) == 3 and src_shape[0] == 1) or (
        len(src_shape) == 2 and 'pos' in dst_key.lower())
    if looks_pos:
        try:
            resample.infer_pos_embed_layout(src_shape, dst_shape)
            return 'interpolate'
        except ShapeMismatchError:
            pass
    try:
        resample.check_adapt_channels(src_shape, dst_shape)
    except ShapeMismatchError:
        return None
    if min(src_shape[1], dst_shape[1]) <= 4:
        return 'adapt_channels'
    return None


def _hint(dst_key, src_shape, dst_shape, chosen):
    suggestion = suggest_policy(dst_key, src_shape, dst_shape)
    if suggestion is None or suggestion == chosen:
        return None
    return f'mangle={{{dst_key!r}: {suggestion!r}}}'


# --- on real tensors -------------------------------------------------------------

def prepare_shove(decision: ShoveDecision, src: torch.Tensor,
                  dst: torch.Tensor, key: str) -> Optional[torch.Tensor]:
    """
    Compute, before the model is touched, the value a shove writes.

    Policies that compute values (``'interpolate'``, ``'adapt_channels'``,
    callables) return the new full value of ``dst``; those that copy views
    (``'corner'``, ``'center'``, ``'reshape'``) and non-shoves return None.
    A user callable runs here, on a copy of ``dst`` (so whatever it does,
    the model is untouched), and its result is checked: a tensor of
    ``dst``'s shape that can be copied into it.

    Raises:
        ShapeMismatchError: the callable raised, or returned something else;
            the message names the key and both shapes.

    Example:
        >>> import torch
        >>> from torch_liberator.policies import MangleRules, prepare_shove
        >>> from torch_liberator.shapes import TensorSpec
        >>> rules = MangleRules(lambda s, d, k: s[:2], ['w'])
        >>> src, dst = torch.ones(3), torch.zeros(2)
        >>> d = rules.decide('w', 'w', TensorSpec.of(src), TensorSpec.of(dst))
        >>> prepare_shove(d, src, dst, 'w').tolist()
        [1.0, 1.0]
    """
    if decision.action != 'shove':
        return None
    fn = decision.fn
    where = (f'model key {key!r}: {decision.policy} from {decision.src_shape} '
             f'to {decision.dst_shape}')
    if isinstance(fn, _Builtin):
        if fn.compute is None:
            return None
        try:
            with torch.no_grad():
                return fn.compute(src, dst)
        except ShapeMismatchError as err:
            raise ShapeMismatchError(f'{where}: {err}') from err
    try:
        with torch.no_grad():
            value = fn(src.detach(), dst.detach().clone(), key)
    except Exception as err:  # a user callable may raise anything
        raise ShapeMismatchError(
            f'{where}: the policy raised {type(err).__name__}: {err}') from err
    if not isinstance(value, torch.Tensor):
        raise ShapeMismatchError(
            f'{where}: the policy returned a {type(value).__name__}, not a '
            'tensor; return a tensor of the model tensor\'s shape')
    if tuple(value.shape) != tuple(dst.shape):
        raise ShapeMismatchError(
            f'{where}: the policy returned shape {tuple(value.shape)}; return '
            f'a tensor of the model tensor\'s shape {tuple(dst.shape)}')
    reason = check_copyable(value, dst)
    if reason:
        raise ShapeMismatchError(f'{where}: its result cannot be copied: {reason}')
    return value


def apply_decision(decision: ShoveDecision, dst: torch.Tensor,
                   src: torch.Tensor, key: str,
                   prepared: Optional[torch.Tensor] = None) -> None:
    """
    Write what ``decision`` says into ``dst``, in place, under
    :func:`torch.no_grad`.

    Pass the value :func:`prepare_shove` computed for the pair as
    ``prepared`` (it is computed here when omitted, which may raise, so do
    that in the planning phase when a failure must leave the model intact).
    A skip writes nothing.

    Example:
        >>> import torch
        >>> from torch_liberator.policies import MangleRules, apply_decision
        >>> from torch_liberator.shapes import TensorSpec
        >>> rules = MangleRules('center', ['k'])
        >>> src, dst = torch.arange(25.).reshape(5, 5), torch.zeros(3, 3)
        >>> d = rules.decide('k', 'k', TensorSpec.of(src), TensorSpec.of(dst))
        >>> apply_decision(d, dst, src, 'k')
        >>> dst[1].tolist()
        [11.0, 12.0, 13.0]
    """
    if decision.action == 'skip':
        return
    with torch.no_grad():
        if decision.action == 'copy':
            shove.shove_tensor(dst, src)
            return
        if prepared is None:
            prepared = prepare_shove(decision, src, dst, key)
        fn = decision.fn
        if isinstance(fn, _Builtin):
            fn.write(dst, src, prepared)
        else:
            dst.copy_(prepared)
