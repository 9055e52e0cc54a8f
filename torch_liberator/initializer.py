"""
Load whatever fits of a checkpoint into a model whose structure differs.

This module only orchestrates; every step is done by another module:

1. open the checkpoint (:mod:`torch_liberator.tensorsource`): a path is read
   (:mod:`torch_liberator.checkpoint`), a dict is checked to be a mapping of
   names to tensors;
2. plan the load (:mod:`torch_liberator.loadplan`): the user's ``rename``
   rules, the key association (:mod:`torch_liberator.association`), a shape
   policy for every pair (:mod:`torch_liberator.policies`), the checks that
   would otherwise fail half-way (:mod:`torch_liberator.preflight`); then
   compute the values shoves write and try the ``leftover`` initializer on
   scratch tensors;
3. only then touch the model: initialize leftovers and write tensor by
   tensor into the model's own parameters and buffers, under one
   :func:`torch.no_grad` (:func:`torch_liberator.transfer.transfer_plan`);
4. report what happened in the ``info`` dictionary, with the plan (and on
   stdout, as much as ``verbose`` asks for, see
   :mod:`torch_liberator.report`).

Every check happens before step 3, so a call that raises leaves the model
exactly as it was.

Direction words: the checkpoint is the *source* ("other"), the model is the
*destination* ("self").
"""
import os
import warnings
from typing import Callable, Dict, Iterable, Mapping, Optional, Union

import torch

from torch_liberator.keyrules import KeyFilter, Patterns
from torch_liberator.loadplan import (DEFAULT_ASSOCIATION, LoadPlan, Mangle,
                                      build_plan, check_plan_options, plan_load,
                                      describe_destination,
                                      unwritable_reason)
from torch_liberator.policies import MangleRules
from torch_liberator.report import print_report
from torch_liberator.tensorsource import SourceLike, open_source
from torch_liberator.transfer import (Destination, prepare_transfer,
                                      settle_meta, transfer_plan,
                                      warn_meta_left)

__all__ = ['Pretrained', 'load_partial_state']


# Only these are unwrapped on the model side. A user module that happens to
# have an attribute called ``module`` is not a wrapper.
_WRAPPERS = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)

Leftover = Union[str, Callable[[torch.Tensor], object]]


def load_partial_state(model: torch.nn.Module,
                       model_state_dict: SourceLike,
                       leftover: Leftover = 'noop',
                       ignore_unset: Union[bool, Iterable[str]] = False,
                       verbose: int = 1, mangle: Mangle = True,
                       association: str = DEFAULT_ASSOCIATION,
                       allow_efficiency_tricks: bool = True,
                       initializer: Optional[Leftover] = None, *,
                       rename: Optional[Mapping[str, str]] = None,
                       include: Patterns = None,
                       exclude: Patterns = None) -> Dict:
    """
    Copy as much of a state dict as fits into a model, even when the names or
    shapes differ.

    Checkpoint keys are associated with model keys by ``association`` (after
    your ``rename`` rules); every pair is planned (copy, shove with a shape
    policy, or skip with the reason, see :mod:`torch_liberator.loadplan`)
    before anything is written, then each planned tensor is copied into the
    model's own parameter or buffer. Tensors of equal shape are copied as
    they are; tensors whose shapes differ are fitted ("shoved") as
    ``mangle`` says: with ``mangle=True`` a tensor of the same rank but
    different sizes has its overlapping leading block copied, a tensor of a
    different rank is skipped, and shapes that differ only by size-1
    dimensions are reshaped. A call that raises leaves the model as it was.

    Args:
        model (torch.nn.Module): the destination. ``DataParallel`` and
            ``DistributedDataParallel`` wrappers are looked through (their
            ``.module`` is loaded); nothing else is unwrapped.
        model_state_dict (Mapping[str, Tensor] | str | PathLike): the source:
            a state dict, a nested checkpoint dict (``state_dict``,
            ``model_state_dict``, ... are unwrapped), or a path that
            :func:`torch_liberator.checkpoint.read_state_dict` reads onto the
            model's device (``.pt``, ``.safetensors``, a deploy zip, ...).
        leftover (str | Callable): ``'noop'`` leaves every tensor that gets
            no source data exactly as it was. A callable initializer (such as
            ``torch.nn.init.kaiming_normal_``) is applied to every model
            tensor left unset or only partly set (partly set: the whole
            tensor is initialized, then the overlap is copied over it). A
            tensor the initializer cannot handle (``kaiming_normal_`` on a
            1-D bias raises) is left as it was and reported at verbose >= 2.
        ignore_unset (bool | Iterable[str]): True reports no model key as
            unset; a list of model keys leaves those keys out of
            ``info['self_unset']``. Does not change what is loaded or
            initialized.
        verbose (int): 0 prints nothing; 1 prints a short summary (a few
            lines whatever the model size); 2 or more prints one line per
            key, and says why each skipped key was skipped.
        mangle (bool | str | Callable | Dict[str, object]): what to do with a
            pair whose shapes differ: True copies the overlapping leading
            block, False skips it; a policy name, a callable or
            ``{model key pattern: policy}`` as
            :class:`torch_liberator.policies.MangleRules` accepts.
        association (str): how keys are matched, one of
            :data:`torch_liberator.association.ASSOCIATIONS`:
            ``'strict'``, ``'module-hack'``, ``'prefix-hack'``,
            ``'embedding'``, ``'isomorphism'``, ``'structure'``, or
            ``'auto'`` (default): an exact mode when one explains every key,
            otherwise the one of isomorphism / embedding / structure that
            places the most tensors whose shapes fit
            (``info['association']`` says which).
        allow_efficiency_tricks (bool): if True (default), the key solver is
            not run when every key of the smaller side already exists on the
            other (identity is then the largest mapping any association can
            find). If False, the solver always runs. The result is the same
            either way.
        initializer (Callable | None): the 0.2 name of ``leftover``
            (deprecated; giving both is an error).
        rename (Dict[str, str] | None): your own pairs
            ``{checkpoint key: model key}`` and/or ``{regex: replacement}``
            rules over checkpoint keys, applied before the association,
            which never overrides them (see :mod:`torch_liberator.keyrules`).
        include (str | List[str] | None): glob patterns; only pairs with a
            key (either side) matching one may load.
        exclude (str | List[str] | None): glob patterns; pairs with a key
            matching one never load.

    Returns:
        dict: ``info`` with

        * ``mapping``: ``{checkpoint key: model key}`` as associated (one to
          one), including pairs that were skipped because the shapes do not
          fit;
        * ``seen``: ``{'full_add', 'partial_add_some', 'partial_add_all',
          'skipped'}`` -> lists of keys, all four always present. The three
          ``*_add`` lists name the *model* keys that received data, as in
          0.2: ``full_add``: same shape, copied; ``partial_add_all``: the
          whole source fit into a larger destination;
          ``partial_add_some``: part of the source was cut off.
          ``skipped`` names the *checkpoint* keys that were not copied (no
          destination, or shapes that cannot be fitted);
        * ``self_unset``: model keys that received nothing (minus
          ``ignore_unset``);
        * ``other_unused``: checkpoint keys that were not copied;
        * ``association``: the association mode that was used (what
          ``'auto'`` chose);
        * ``plan``: the :class:`~torch_liberator.plantypes.LoadPlan` that was
          applied (what :func:`~torch_liberator.loadplan.plan_load` returns
          for the same arguments).

    Raises:
        ValueError: an unknown ``association``, a ``leftover`` that is
            neither ``'noop'`` nor callable, or a bad ``ignore_unset``.
        PolicyError: a malformed ``mangle``.
        KeyRuleError: a bad ``rename``, ``include`` or ``exclude`` rule, or
            one that matches no key.
        ShapeMismatchError: ``mangle`` says ``'raise'`` for a pair, or a
            policy it names cannot fit its pair.
        CheckpointFormatError: the source is not a mapping of names to
            tensors.
        CheckpointNotFoundError: a path names no file.

    Example:
        >>> import torch
        >>> from torch_liberator.initializer import load_partial_state
        >>> src = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2))
        >>> class Wrapper(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 5))
        ...         self.head = torch.nn.Linear(5, 1)
        >>> dst = Wrapper()
        >>> info = load_partial_state(dst, src.state_dict(), verbose=0)
        >>> info['mapping']['0.weight']
        'backbone.0.weight'
        >>> {k: len(v) for k, v in info['seen'].items()}
        {'full_add': 2, 'partial_add_some': 0, 'partial_add_all': 2, 'skipped': 0}
        >>> info['seen']['partial_add_all']
        ['backbone.1.weight', 'backbone.1.bias']
        >>> info['self_unset']
        ['head.weight', 'head.bias']
        >>> assert torch.equal(dst.backbone[0].weight, src[0].weight)
        >>> assert torch.equal(dst.backbone[1].weight[:2], src[1].weight)
    """
    leftover = _resolve_initializer(leftover, initializer)
    ignore_unset = _check_options(leftover, ignore_unset)
    check_plan_options(association, mangle)
    keyfilter = KeyFilter(include, exclude)
    model = _unwrap_model(model)
    dst_specs, dst_state = describe_destination(model)
    rules = MangleRules(mangle, dst_specs)
    source = open_source(model_state_dict, device=_model_device(model))
    plan = build_plan(source, dst_specs, dst_state, association=association,
                      rules=rules, rename=rename, keyfilter=keyfilter,
                      shortcut=allow_efficiency_tricks)
    # huge (transfer.py): meta-device tensors are materialised, file sources
    # are streamed; shove values are prepared before anything is written
    destination = Destination(model, dst_state)
    plan = settle_meta(plan, destination, leftover)
    prepared = prepare_transfer(plan, source, destination)
    inits, init_failures = _plan_leftover(leftover, destination, plan)
    n_inits = len(inits)

    # Nothing above touched the model; from here on nothing can fail on
    # account of the inputs (reading a file can still fail on I/O).
    with torch.no_grad():
        while inits:  # pop as we go, so scratch memory is freed early
            key, scratch = inits.popitem()
            destination.target(key).copy_(scratch)
        transfer_plan(plan, source, destination, prepared, verbose=verbose)
        destination.assign()
    if not callable(leftover):
        warn_meta_left(plan, destination)

    info = _make_info(plan, ignore_unset)
    if verbose:
        print_report(plan, info, verbose, leftover=leftover, n_inits=n_inits,
                     init_failures=init_failures)
    return info


class Pretrained:
    """
    A checkpoint file to initialize models from, with the loading options
    fixed up front.

    Args:
        fpath (str | PathLike): what :func:`~torch_liberator.checkpoint.read_state_dict`
            accepts: ``.pt`` / ``.pth`` / ``.ckpt``, ``.safetensors``, a
            deploy zip (or a path inside one), or a glob matching one file.
        mangle, leftover, ignore_unset, association, allow_efficiency_tricks, verbose:
            as in :func:`load_partial_state`, in the published positional
            order.
        ema (bool): load the EMA weights of a checkpoint that holds them.
        allow_unsafe (bool): allow arbitrary unpickling for checkpoints that
            cannot be read with ``torch.load(weights_only=True)``. Only for
            files you trust.
        rename, include, exclude: as in :func:`load_partial_state`.

    Example:
        >>> import pathlib, tempfile
        >>> import torch
        >>> from torch_liberator.initializer import Pretrained
        >>> fpath = pathlib.Path(tempfile.mkdtemp()) / 'mlp.pt'
        >>> src = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        >>> torch.save(src.state_dict(), fpath)
        >>> class Renamed(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.layers = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        >>> model = Renamed()
        >>> info = Pretrained(fpath, verbose=0).forward(model)
        >>> len(info['seen']['full_add']), info['self_unset'], info['other_unused']
        (4, [], [])
        >>> assert torch.equal(model.layers[2].weight, src[2].weight)
    """

    def __init__(self, fpath: Union[str, os.PathLike], mangle: Mangle = True,
                 leftover: Leftover = 'noop',
                 ignore_unset: Union[bool, Iterable[str]] = False,
                 association: str = DEFAULT_ASSOCIATION,
                 allow_efficiency_tricks: bool = True, verbose: int = 1, *,
                 ema: bool = False, allow_unsafe: bool = False,
                 rename: Optional[Mapping[str, str]] = None,
                 include: Patterns = None, exclude: Patterns = None):
        self.ignore_unset = _check_options(leftover, ignore_unset)
        check_plan_options(association, mangle)
        KeyFilter(include, exclude)  # checks the patterns' types up front
        self.fpath = fpath
        self.mangle = mangle
        self.leftover = leftover
        self.association = association
        self.allow_efficiency_tricks = allow_efficiency_tricks
        self.verbose = verbose
        self.ema = ema
        self.allow_unsafe = allow_unsafe
        self.rename = rename
        self.include = include
        self.exclude = exclude

    def __repr__(self):
        return (f'{type(self).__name__}({os.fspath(self.fpath)!r}, '
                f'association={self.association!r})')

    def _open(self, model):
        return open_source(self.fpath, device=_model_device(model),
                           ema=self.ema, allow_unsafe=self.allow_unsafe)

    def plan(self, model: torch.nn.Module) -> LoadPlan:
        """
        What :meth:`forward` would do to ``model``; touches nothing.

        Example:
            >>> import pathlib, tempfile, torch
            >>> from torch_liberator.initializer import Pretrained
            >>> fpath = pathlib.Path(tempfile.mkdtemp()) / 'lin.pt'
            >>> torch.save(torch.nn.Linear(3, 10).state_dict(), fpath)
            >>> plan = Pretrained(fpath).plan(torch.nn.Linear(2, 10))
            >>> plan.counts()
            {'copy': 1, 'shove': 1, 'skip': 0}
        """
        return plan_load(
            _unwrap_model(model), self._open(_unwrap_model(model)),
            association=self.association, mangle=self.mangle,
            rename=self.rename, include=self.include, exclude=self.exclude,
            allow_efficiency_tricks=self.allow_efficiency_tricks)

    def forward(self, model: torch.nn.Module) -> Dict:
        """
        Read the checkpoint onto the model's device and load what fits.

        Args:
            model (torch.nn.Module): the destination (modified in place).

        Returns:
            dict: the ``info`` of :func:`load_partial_state`.
        """
        return load_partial_state(
            model, self._open(_unwrap_model(model)), leftover=self.leftover,
            ignore_unset=self.ignore_unset, verbose=self.verbose,
            mangle=self.mangle, association=self.association,
            allow_efficiency_tricks=self.allow_efficiency_tricks,
            rename=self.rename, include=self.include, exclude=self.exclude)

    __call__ = forward


# --- checks (nothing here touches the model) --------------------------------

def _resolve_initializer(leftover, initializer):
    """``initializer=`` is the 0.2 spelling of ``leftover=``."""
    if initializer is None:
        return leftover
    if not (isinstance(leftover, str) and leftover == 'noop') \
            and leftover is not initializer:
        raise ValueError(
            f'initializer={initializer!r} and leftover={leftover!r} are both '
            'given; initializer= is the old name of leftover=, pass only '
            'leftover=')
    warnings.warn('initializer= is deprecated; pass leftover= instead',
                  DeprecationWarning, stacklevel=3)
    return initializer


def _check_options(leftover, ignore_unset):
    """Raise ValueError for a bad option; return ``ignore_unset`` as a bool
    or a frozenset of keys."""
    if not (isinstance(leftover, str) and leftover == 'noop') \
            and not callable(leftover):
        raise ValueError(
            f'leftover={leftover!r} is neither \'noop\' nor callable; pass '
            '\'noop\' to leave unset tensors as they are, or an initializer '
            'such as torch.nn.init.kaiming_normal_')
    if isinstance(ignore_unset, bool):
        return ignore_unset
    keys = None
    if not isinstance(ignore_unset, str):
        try:
            keys = frozenset(ignore_unset)
        except TypeError:
            keys = None
    if keys is None or not all(isinstance(key, str) for key in keys):
        raise ValueError(
            f'ignore_unset={ignore_unset!r} must be True, False, or a list '
            'of model keys')
    return keys


def _unwrap_model(model):
    while isinstance(model, _WRAPPERS):
        model = model.module
    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f'model is a {type(model).__name__}, not a torch.nn.Module; '
            'pass the model to load into')
    return model


def _model_device(model):
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


# --- planning (nothing here touches the model) ------------------------------

def _plan_leftover(leftover, destination, plan):
    """
    Run the leftover initializer on scratch tensors for every model tensor
    not fully covered by a copy.

    Returns:
        Tuple[dict, dict]: ``{dst_key: initialized scratch}`` and
        ``{dst_key: reason}`` for tensors the initializer could not handle.
    """
    if not callable(leftover):
        return {}, {}
    dst_state = destination.tensors
    # tied weights: one tensor under several keys counts once
    covered = {id(dst_state[e.dst_key]) for e in plan.loaded if e.covers}
    inits, failures = {}, {}
    done = set()
    for dst_key, dst in dst_state.items():
        if id(dst) in covered or id(dst) in done:
            continue
        reason = unwritable_reason(dst)
        if reason:
            failures[dst_key] = reason
            continue
        done.add(id(dst))
        scratch = destination.scratch(dst_key)
        try:
            with torch.no_grad():
                leftover(scratch)
        except Exception as err:  # any user initializer failure is recorded
            failures[dst_key] = f'{type(err).__name__}: {err}'
            continue
        inits[dst_key] = scratch
    return inits, failures


# --- reporting --------------------------------------------------------------

def _make_info(plan: LoadPlan, ignore_unset):
    if ignore_unset is True:
        self_unset = []
    else:
        ignored = frozenset() if ignore_unset is False else ignore_unset
        self_unset = [key for key in plan.self_unset if key not in ignored]
    return {
        'mapping': plan.mapping,
        'seen': plan.seen(),
        'self_unset': self_unset,
        'other_unused': plan.other_unused,
        'association': plan.association,
        'plan': plan,
    }
