"""
Load whatever fits of a checkpoint into a model whose structure differs.

This module only orchestrates; every step is done by another module:

1. read the checkpoint (:mod:`torch_liberator.checkpoint`) when a path is
   given, and check that it is a flat mapping of names to tensors;
2. associate checkpoint keys with model keys
   (:func:`torch_liberator.association.associate_keys`);
3. plan how each source tensor fits its destination
   (:func:`torch_liberator.shove.plan_shove`), and try the ``leftover``
   initializer on scratch tensors;
4. only then touch the model: initialize leftovers and copy tensor by tensor
   into the model's own parameters and buffers
   (:func:`torch_liberator.shove.shove_tensor`);
5. report what happened in the ``info`` dictionary (and on stdout, as much
   as ``verbose`` asks for, see :mod:`torch_liberator.report`).

Every check happens before step 4, so a call that raises leaves the model
exactly as it was.

Direction words: the checkpoint is the *source* ("other"), the model is the
*destination* ("self").
"""
import os

import torch

from torch_liberator.association import ASSOCIATIONS, associate_keys
from torch_liberator.checkpoint import read_state_dict, unwrap_state_dict
from torch_liberator.errors import CheckpointFormatError, ShapeMismatchError
from torch_liberator.report import SEEN_CATEGORIES, print_report
from torch_liberator.shove import plan_shove, shove_tensor

__all__ = ['Pretrained', 'load_partial_state']


# Only these are unwrapped on the model side. A user module that happens to
# have an attribute called ``module`` is not a wrapper.
_WRAPPERS = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)


def load_partial_state(model, model_state_dict, leftover='noop',
                       ignore_unset=False, verbose=1, mangle=True,
                       association='isomorphism',
                       allow_efficiency_tricks=True):
    """
    Copy as much of a state dict as fits into a model, even when the names or
    shapes differ.

    Checkpoint keys are associated with model keys by ``association``; each
    associated tensor is copied into the model's own parameter or buffer.
    Tensors of equal shape are copied as they are; with ``mangle=True`` a
    tensor of the same rank but different sizes has its overlapping leading
    block copied ("shoved"), and a tensor of a different rank is skipped.

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
        mangle (bool): if False, tensors whose shapes differ are skipped
            instead of partially copied.
        association (str): how keys are matched, one of
            :data:`torch_liberator.association.ASSOCIATIONS`:
            ``'strict'``, ``'module-hack'``, ``'prefix-hack'``,
            ``'embedding'``, ``'isomorphism'``.
        allow_efficiency_tricks (bool): if True (default), the key solver is
            not run when every key of the smaller side already exists on the
            other (identity is then the largest mapping any association can
            find). If False, the solver always runs. The result is the same
            either way.

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
        * ``other_unused``: checkpoint keys that were not copied.

    Raises:
        ValueError: an unknown ``association``, a ``leftover`` that is
            neither ``'noop'`` nor callable, or a bad ``ignore_unset``.
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
    ignore_unset = _check_options(leftover, ignore_unset, association)
    model = _unwrap_model(model)
    if isinstance(model_state_dict, (str, os.PathLike)):
        model_state_dict = read_state_dict(
            model_state_dict, device=_model_device(model))
    src_state = _flat_tensor_state(model_state_dict)
    dst_state = {key: value
                 for key, value in model.state_dict(keep_vars=True).items()
                 if isinstance(value, torch.Tensor)}

    mapping = associate_keys(list(src_state), list(dst_state),
                             association=association,
                             shortcut=allow_efficiency_tricks)
    copies, skips = _plan_copies(src_state, dst_state, mapping, mangle)
    inits, init_failures = _plan_leftover(leftover, dst_state, copies)
    n_inits = len(inits)

    # Nothing above touched the model; from here on nothing can fail on
    # account of the inputs.
    with torch.no_grad():
        while inits:  # pop as we go, so scratch memory is freed early
            key, scratch = inits.popitem()
            dst_state[key].copy_(scratch)
        for src_key, (dst_key, _, _) in copies.items():
            shove_tensor(dst_state[dst_key], src_state[src_key])

    info = _make_info(src_state, dst_state, mapping, copies, skips,
                      ignore_unset)
    if verbose:
        print_report(info, copies, skips, n_inits, init_failures, leftover,
                     association, src_state, dst_state, verbose)
    return info


class Pretrained:
    """
    A checkpoint file to initialize models from, with the loading options
    fixed up front.

    Args:
        fpath (str | PathLike): what :func:`~torch_liberator.checkpoint.read_state_dict`
            accepts: ``.pt`` / ``.pth`` / ``.ckpt``, ``.safetensors``, a
            deploy zip (or a path inside one), or a glob matching one file.
        mangle, leftover, ignore_unset, association, verbose: as in
            :func:`load_partial_state`.
        ema (bool): load the EMA weights of a checkpoint that holds them.
        allow_unsafe (bool): allow arbitrary unpickling for checkpoints that
            cannot be read with ``torch.load(weights_only=True)``. Only for
            files you trust.

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

    def __init__(self, fpath, mangle=True, leftover='noop', ignore_unset=False,
                 association='isomorphism', verbose=1, ema=False,
                 allow_unsafe=False):
        self.ignore_unset = _check_options(leftover, ignore_unset, association)
        self.fpath = fpath
        self.mangle = mangle
        self.leftover = leftover
        self.association = association
        self.verbose = verbose
        self.ema = ema
        self.allow_unsafe = allow_unsafe

    def __repr__(self):
        return (f'{type(self).__name__}({os.fspath(self.fpath)!r}, '
                f'association={self.association!r})')

    def forward(self, model):
        """
        Read the checkpoint onto the model's device and load what fits.

        Args:
            model (torch.nn.Module): the destination (modified in place).

        Returns:
            dict: the ``info`` of :func:`load_partial_state`.
        """
        state = read_state_dict(
            self.fpath, device=_model_device(_unwrap_model(model)),
            ema=self.ema, allow_unsafe=self.allow_unsafe)
        return load_partial_state(
            model, state, leftover=self.leftover,
            ignore_unset=self.ignore_unset, verbose=self.verbose,
            mangle=self.mangle, association=self.association)

    __call__ = forward


# --- checks (nothing here touches the model) --------------------------------

def _check_options(leftover, ignore_unset, association):
    """Raise ValueError for a bad option; return ``ignore_unset`` as a bool
    or a frozenset of keys."""
    if not isinstance(association, str) or association not in ASSOCIATIONS:
        raise ValueError(
            f'association={association!r} is not one of {ASSOCIATIONS}')
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


def _flat_tensor_state(state):
    """Return ``state`` as a ``{str: Tensor}`` dict, or raise."""
    if isinstance(state, torch.nn.Module):
        raise CheckpointFormatError(
            f'model_state_dict is a {type(state).__name__} module, not a '
            'state dict; pass module.state_dict() instead')
    if not hasattr(state, 'items'):
        raise CheckpointFormatError(
            f'model_state_dict is a {type(state).__name__}, not a mapping of '
            'names to tensors; pass a state dict or a checkpoint path')
    if not all(isinstance(value, torch.Tensor) for value in state.values()):
        # maybe a nested checkpoint ({'state_dict': {...}, 'epoch': 3})
        state = unwrap_state_dict(state)
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointFormatError(
                f'checkpoint key {key!r} is a {type(key).__name__}, not a '
                'str; state dict keys must be strings')
        if not isinstance(value, torch.Tensor):
            raise CheckpointFormatError(
                f'checkpoint value for key {key!r} is a '
                f'{type(value).__name__}, not a tensor; remove non-tensor '
                'entries or pass the nested state dict')
    return state


# --- planning (nothing here touches the model) ------------------------------

def _plan_copies(src_state, dst_state, mapping, mangle):
    """
    Returns:
        Tuple[dict, dict]: ``copies`` {src_key: (dst_key, how, covers)} in
        checkpoint order, and ``skips`` {src_key: reason}.
    """
    copies = {}
    skips = {}
    taken = set()
    for src_key, src in src_state.items():
        dst_key = mapping.get(src_key)
        if dst_key is None:
            skips[src_key] = 'no matching model key'
            continue
        if dst_key not in dst_state:
            skips[src_key] = f'associated model key {dst_key!r} does not exist'
            continue
        if dst_key in taken:
            skips[src_key] = f'model key {dst_key!r} is already set'
            continue
        dst = dst_state[dst_key]
        reason = _unsupported_reason(src) or _unsupported_dst_reason(dst)
        if reason:
            skips[src_key] = reason
            continue
        src_shape, dst_shape = tuple(src.shape), tuple(dst.shape)
        if src_shape != dst_shape and not mangle:
            skips[src_key] = (f'shape {src_shape} != model {dst_key!r} '
                              f'{dst_shape} and mangle=False')
            continue
        try:
            how = plan_shove(dst_shape, src_shape, dst.dtype, src.dtype)
        except ShapeMismatchError as err:
            skips[src_key] = f'cannot fit model {dst_key!r}: {err}'
            continue
        # does the copy overwrite all of the destination?
        covers = len(src_shape) == len(dst_shape) and all(
            s >= d for s, d in zip(src_shape, dst_shape))
        copies[src_key] = (dst_key, how, covers)
        taken.add(dst_key)
    return copies, skips


def _unsupported_reason(src):
    if src.layout != torch.strided:
        return f'{src.layout} tensors are not supported; densify it first'
    if src.is_quantized:
        return 'quantized tensors are not supported; dequantize it first'
    if src.is_meta:
        return 'meta tensors hold no data'
    return None


def _unsupported_dst_reason(dst):
    if isinstance(dst, torch.nn.parameter.UninitializedTensorMixin):
        return ('the model tensor is not materialized yet (lazy module); '
                'run one forward pass before loading')
    if dst.is_inference() and not torch.is_inference_mode_enabled():
        return ('the model tensor was created under torch.inference_mode '
                'and cannot be written outside it; load inside '
                'torch.inference_mode() or build the model outside it')
    return None


def _plan_leftover(leftover, dst_state, copies):
    """
    Run the leftover initializer on scratch tensors for every model tensor
    not fully covered by a copy.

    Returns:
        Tuple[dict, dict]: ``{dst_key: initialized scratch}`` and
        ``{dst_key: reason}`` for tensors the initializer could not handle.
    """
    if not callable(leftover):
        return {}, {}
    # tied weights: one tensor under several keys counts once
    covered = set()
    for dst_key, _, covers in copies.values():
        if covers:
            covered.add(id(dst_state[dst_key]))
    inits, failures = {}, {}
    done = set()
    for dst_key, dst in dst_state.items():
        if id(dst) in covered or id(dst) in done:
            continue
        if _unsupported_dst_reason(dst):
            failures[dst_key] = _unsupported_dst_reason(dst)
            continue
        done.add(id(dst))
        scratch = torch.empty_like(dst.detach())
        try:
            with torch.no_grad():
                leftover(scratch)
        except Exception as err:  # any user initializer failure is recorded
            failures[dst_key] = f'{type(err).__name__}: {err}'
            continue
        inits[dst_key] = scratch
    return inits, failures


# --- reporting --------------------------------------------------------------

def _make_info(src_state, dst_state, mapping, copies, skips, ignore_unset):
    seen = {name: [] for name in SEEN_CATEGORIES}
    for src_key in src_state:
        if src_key in copies:
            dst_key, how, _ = copies[src_key]
            seen[how].append(dst_key)
        else:
            seen['skipped'].append(src_key)
    set_ids = {id(dst_state[dst_key]) for dst_key, _, _ in copies.values()}
    if ignore_unset is True:
        self_unset = []
    else:
        ignored = frozenset() if ignore_unset is False else ignore_unset
        self_unset = [key for key, value in dst_state.items()
                      if id(value) not in set_ids and key not in ignored]
    return {
        'mapping': dict(mapping),
        'seen': seen,
        'self_unset': self_unset,
        'other_unused': list(seen['skipped']),
    }
