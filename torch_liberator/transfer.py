"""
Carry out the copies of a load plan: read the planned tensors from a source
in bounded batches and write them into the model's tensors, wherever those
live: ordinary tensors, tensors on the ``meta`` device (materialised and
assigned), DTensors of a model sharded with FSDP2 (``fully_shard``).

:mod:`torch_liberator.initializer` decides *what* to load (the plan) and
*how* one pair is fitted (:mod:`torch_liberator.policies`); this module
decides *where from and where to*:

* Only the planned tensors are read, and of a shove with the ``'corner'``
  policy only the block the copy keeps (:func:`~torch_liberator.sources.block_of`).
  A source that streams (:meth:`~torch_liberator.sources.LazySource.read_tensors`)
  is read a batch at a time, batches sized from the model
  (:func:`~torch_liberator.sources.read_batch_bytes`: 1/12 of it, 64 MiB at
  least), so memory grows by about one batch, not by the checkpoint.
* A model tensor on the ``meta`` device holds no data: a fresh tensor is
  made on the model's real device (:func:`real_device`), filled, and
  assigned in place of the meta tensor (``load_state_dict(assign=True)``;
  tied parameters stay tied). A shove that would leave part of such a
  tensor without a value is skipped unless ``leftover`` initialises it
  (:func:`settle_meta`); tensors left on ``meta`` are warned about.
* A DTensor is written through :func:`torch_liberator.dcp.write_tensor`;
  from a DCP checkpoint, equal-shape pairs are loaded by DCP itself, shard
  by shard (:func:`torch_liberator.dcp.load_renamed`).
* At ``verbose >= 1``, a load of at least :data:`PROGRESS_MIN_BYTES` shows
  one progress line (tensors and bytes done, rate, time left).

A failed read: everything that depends on the inputs is checked before the
first write, but reading happens while the model is written (a copy of what
is overwritten, kept to undo a failure, would cost a copy of the model), so
an I/O failure in the middle (a disk error, the file removed or replaced
underneath) stops the load with a
:class:`~torch_liberator.errors.CheckpointFormatError` that says how many
model tensors were already overwritten, and names them. Tensors of a model
on the ``meta`` device are assigned only after the last read, so such a
model is left exactly as it was. (A callable ``leftover`` runs before the
reads: :func:`~torch_liberator.initializer.load_partial_state` writes its
values first, to free their memory early.)

Example:
    >>> import torch
    >>> from torch_liberator import load_partial_state
    >>> src = torch.nn.Linear(3, 4)
    >>> with torch.device('meta'):
    ...     model = torch.nn.Sequential(torch.nn.Linear(3, 4))
    >>> info = load_partial_state(model, src.state_dict(), verbose=0)
    >>> model[0].weight.device.type, torch.equal(model[0].weight, src.weight)
    ('cpu', True)
"""
import itertools
import warnings
from typing import Callable, Dict, List, Optional

import torch

from torch_liberator.dcp import (
    DcpSource, is_distributed_tensor, load_renamed, write_tensor)
from torch_liberator.errors import CheckpointFormatError
from torch_liberator.policies import apply_decision, prepare_shove
from torch_liberator.sources import (
    block_of, describe_error, preview_items, read_batch_bytes)

__all__ = [
    'PROGRESS_MIN_BYTES',
    'Destination',
    'prepare_transfer',
    'real_device',
    'settle_meta',
    'transfer_plan',
    'warn_meta_left',
]

#: Loads that move at least this many bytes show a progress line at
#: ``verbose >= 1`` (about a couple of seconds of reading and copying).
PROGRESS_MIN_BYTES = 512 * 2 ** 20


def real_device(model: torch.nn.Module) -> torch.device:
    """
    Where the tensors of a model that is (partly) on the ``meta`` device are
    materialised: the device of its first tensor that is not on ``meta``,
    else the CPU.

    Example:
        >>> import torch
        >>> from torch_liberator.transfer import real_device
        >>> real_device(torch.nn.Linear(1, 1, device='meta'))
        device(type='cpu')
    """
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if not tensor.is_meta:
            return tensor.device
    return torch.device('cpu')


class Destination:
    """
    The model's tensors as places to write to.

    Args:
        model (torch.nn.Module): the model (already unwrapped of
            ``DataParallel``).
        tensors (Dict[str, torch.Tensor] | None): its
            ``state_dict(keep_vars=True)`` tensors (computed if None).

    Raises:
        ValueError: a DTensor is on the meta device (a model sharded with
            ``fully_shard`` before ``to_empty``): the message says to call
            ``model.to_empty(device=...)`` first, which gives every rank its
            own shards.

    Example:
        >>> import torch
        >>> from torch_liberator.transfer import Destination
        >>> model = torch.nn.Linear(2, 1, device='meta')
        >>> dst = Destination(model)
        >>> dst.target('bias').fill_(3)
        tensor([3.])
        >>> dst.assign()
        >>> model.bias.tolist(), model.weight.is_meta
        ([3.0], True)
    """

    def __init__(self, model: torch.nn.Module,
                 tensors: Optional[Dict[str, torch.Tensor]] = None):
        self.model = model
        if tensors is None:
            tensors = {key: value for key, value
                       in model.state_dict(keep_vars=True).items()
                       if isinstance(value, torch.Tensor)}
        self.tensors = tensors
        self.device = real_device(model)
        self._fresh = {}  # id(meta tensor) -> its materialised value
        sharded_meta = [key for key, value in tensors.items()
                        if value.is_meta and is_distributed_tensor(value)]
        if sharded_meta:
            raise ValueError(
                f'{len(sharded_meta)} sharded (DTensor) model tensors are on '
                f'the meta device, e.g. {sharded_meta[0]!r}; call '
                "model.to_empty(device='cuda') (or 'cpu') after fully_shard "
                'so that every rank allocates its own shards, then load')

    @property
    def nbytes(self) -> int:
        """Bytes of the model's tensors (a tensor held under several keys
        counted once; meta tensors as they will be materialised; the
        uninitialised parameters of lazy modules, which have no size yet,
        not at all)."""
        unique = {id(value): value for value in self.tensors.values()
                  if not torch.nn.parameter.is_lazy(value)}
        return sum(value.numel() * value.element_size()
                   for value in unique.values())

    def is_meta(self, key: str) -> bool:
        """The model tensor of ``key`` is on the meta device."""
        return self.tensors[key].is_meta

    def target(self, key: str) -> torch.Tensor:
        """
        The tensor to write ``key``'s data into: the model's own, or for a
        meta tensor a fresh one (uninitialised) on :attr:`device` that
        :meth:`assign` puts in its place.
        """
        dst = self.tensors[key]
        if not dst.is_meta:
            return dst
        fresh = self._fresh.get(id(dst))
        if fresh is None:
            fresh = torch.empty(dst.shape, dtype=dst.dtype, device=self.device)
            self._fresh[id(dst)] = fresh
        return fresh

    def scratch(self, key: str) -> torch.Tensor:
        """An uninitialised tensor like ``key``'s, on a real device, for a
        ``leftover`` initialiser to fill."""
        dst = self.tensors[key].detach()
        if dst.is_meta:
            return torch.empty(dst.shape, dtype=dst.dtype, device=self.device)
        return torch.empty_like(dst)

    def write(self, key: str, fill: Callable[[torch.Tensor], object],
              covers: bool = False) -> None:
        """Write into ``key``'s tensor with ``fill(plain_tensor)``; see
        :func:`torch_liberator.dcp.write_tensor` (DTensors). Call it under
        :func:`torch.no_grad` (:func:`transfer_plan` holds one over the
        whole load)."""
        write_tensor(self.target(key), fill, covers=covers)

    def assign(self) -> None:
        """
        Put the materialised tensors in place of the meta ones
        (``load_state_dict(strict=False, assign=True)``); a parameter stays
        a parameter (same ``requires_grad``) and tied tensors stay tied.
        """
        if not self._fresh:
            return
        new, wrapped = {}, {}
        for key, dst in self.tensors.items():
            value = self._fresh.get(id(dst))
            if value is None:
                continue
            if isinstance(dst, torch.nn.Parameter):
                if id(dst) not in wrapped:
                    wrapped[id(dst)] = torch.nn.Parameter(
                        value, requires_grad=dst.requires_grad)
                value = wrapped[id(dst)]
            new[key] = value
        self.model.load_state_dict(new, strict=False, assign=True)
        self._fresh.clear()


def settle_meta(plan, destination: Destination, leftover) -> object:
    """
    Skip the shoves that would leave part of a meta tensor without a value
    (it has none to keep): those that do not cover the whole model tensor
    when ``leftover`` is not callable.

    Args:
        plan (LoadPlan): the plan (not modified).
        destination (Destination): the model's tensors.
        leftover (str | Callable): the ``leftover`` option.

    Returns:
        LoadPlan: ``plan`` itself, or a copy with those entries skipped (and
        their model keys in ``self_unset``).

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> from torch_liberator.transfer import Destination, settle_meta
        >>> model = torch.nn.Linear(2, 5, device='meta')
        >>> plan = plan_load(model, torch.nn.Linear(2, 3).state_dict())
        >>> plan = settle_meta(plan, Destination(model), 'noop')
        >>> plan.counts(), plan.self_unset
        ({'copy': 0, 'shove': 0, 'skip': 2}, ['weight', 'bias'])
    """
    if callable(leftover):
        return plan
    reasons = {
        entry.src_key: (f'the model tensor {entry.dst_key!r} is on the meta '
                        'device and this shove would set only part of it; '
                        'pass a callable leftover= to initialise the rest')
        for entry in plan.loaded
        if not entry.covers and destination.is_meta(entry.dst_key)}
    return plan.skipping(reasons) if reasons else plan


def prepare_transfer(plan, source, destination: Destination):
    """
    The values of the shoves whose policy computes them
    (:func:`torch_liberator.policies.prepare_shove`), before the first
    write. Only the shoved source tensors are read for it, whole (they are
    few: heads, stems, position embeddings). A model tensor on the meta
    device is given as the fresh tensor that will take its place. (The
    checks on a source held in memory, such as memory shared with the model,
    are :func:`torch_liberator.loadplan.build_plan`'s.)

    Args:
        plan (LoadPlan): the plan.
        source (TensorSource): the source.
        destination (Destination): the model's tensors.

    Returns:
        Dict[str, torch.Tensor]: ``{checkpoint key: prepared value}``.

    Raises:
        ShapeMismatchError: a shove policy (a user callable) failed.

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> from torch_liberator.tensorsource import open_source
        >>> from torch_liberator.transfer import Destination, prepare_transfer
        >>> model = torch.nn.Linear(3, 1)
        >>> src = {'weight': torch.ones(1, 2), 'bias': torch.ones(1)}
        >>> plan = plan_load(model, src, mangle={'weight': lambda s, d, k: torch.zeros(1, 3)})
        >>> prepared = prepare_transfer(plan, open_source(src), Destination(model))
        >>> {key: value.tolist() for key, value in prepared.items()}
        {'weight': [[0.0, 0.0, 0.0]]}
    """
    shoves = [e for e in plan.loaded if e.action == 'shove']
    tensors = source.read([e.src_key for e in shoves]) if shoves else {}
    prepared = {}
    for entry in shoves:
        dst = destination.tensors[entry.dst_key]
        if dst.is_meta:
            dst = destination.target(entry.dst_key)
        value = prepare_shove(entry.decision, tensors.pop(entry.src_key),
                              dst, entry.dst_key)
        if value is not None:
            prepared[entry.src_key] = value
    return prepared


def transfer_plan(plan, source, destination: Destination,
                  prepared: Optional[Dict[str, torch.Tensor]] = None,
                  verbose: int = 1) -> None:
    """
    Read the tensors ``plan`` loads from ``source`` and write them into
    ``destination``, all under one :func:`torch.no_grad`.

    The plan has already checked every pair (shapes, dtypes, memory shared
    with the model), so a ``'copy'`` is a plain :meth:`torch.Tensor.copy_`;
    a ``'shove'`` is written by
    :func:`torch_liberator.policies.apply_decision`. A tensor whose shape
    is not the one its source announced (a file changed underneath, a
    source that misreports) stops the load with a
    :class:`~torch_liberator.errors.CheckpointFormatError`.

    Args:
        plan (LoadPlan): what to load (its ``loaded`` entries).
        source (TensorSource): where from (any source a plan takes); one
            with ``read_tensors`` is streamed in bounded batches, reading
            only the blocks of ``'corner'`` shoves; any other is asked
            ``read(keys)``.
        destination (Destination): the model's tensors.
        prepared (Dict[str, torch.Tensor] | None): the shove values of
            :func:`prepare_transfer`.
        verbose (int): >= 1 shows a progress line for large loads.

    Raises:
        CheckpointFormatError: reading the source failed part way; the
            message says which model tensors were already overwritten (none,
            for tensors on the meta device: they are assigned at the end).

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> from torch_liberator.tensorsource import open_source
        >>> from torch_liberator.transfer import Destination, transfer_plan
        >>> src = {'w': torch.arange(6.).reshape(3, 2)}
        >>> model = torch.nn.Module()
        >>> model.w = torch.nn.Parameter(torch.zeros(2, 2))
        >>> plan = plan_load(model, src)
        >>> transfer_plan(plan, open_source(src), Destination(model), verbose=0)
        >>> model.w.tolist()
        [[0.0, 1.0], [2.0, 3.0]]
    """
    entries = {entry.src_key: entry for entry in plan.loaded}
    with torch.no_grad():
        _transfer(entries, source, destination, prepared or {}, verbose)


def _transfer(entries, source, destination, prepared, verbose):
    n_planned = len(entries)
    written = []  # model keys overwritten in place so far
    if isinstance(source, DcpSource):
        shardwise = {key: entry for key, entry in entries.items()
                     if entry.action == 'copy'}
        if shardwise:
            _progress_note(source, shardwise, verbose)
            in_place = [entry.dst_key for entry in shardwise.values()
                        if not destination.is_meta(entry.dst_key)]
            try:
                load_renamed(source, {key: destination.target(entry.dst_key)
                                      for key, entry in shardwise.items()})
            except Exception as err:
                raise _read_failed(err, source, in_place, n_planned,
                                   some=True) from err
            written += in_place
            entries = {key: entry for key, entry in entries.items()
                       if key not in shardwise}
    requests = {key: _block(entry) for key, entry in entries.items()}
    stream = _read_stream(source, requests, destination)
    total = _nbytes(source, requests)
    if verbose >= 1 and total >= PROGRESS_MIN_BYTES:
        stream = _with_progress(stream, source, requests, total)
    stream = iter(stream)
    while True:
        try:
            key, tensor = next(stream)
        except StopIteration:
            break
        except Exception as err:
            raise _read_failed(err, source, written, n_planned) from err
        entry = entries[key]
        destination.write(
            entry.dst_key,
            lambda full: _fit(full, tensor, entry, prepared.get(key)),
            covers=entry.covers)
        if not destination.is_meta(entry.dst_key):
            written.append(entry.dst_key)


def warn_meta_left(plan, destination: Destination) -> List[str]:
    """
    Warn, naming them, about model tensors that are still on the meta device
    after a load (they got no data and no ``leftover``); return their keys.

    Example:
        >>> import torch, warnings
        >>> from torch_liberator.loadplan import plan_load
        >>> from torch_liberator.transfer import Destination, warn_meta_left
        >>> model = torch.nn.Linear(2, 1, device='meta')
        >>> plan = plan_load(model, {'weight': torch.zeros(1, 2)})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter('always')
        ...     warn_meta_left(plan, Destination(model))
        ['bias']
        >>> print(caught[0].message)
        1 model tensors are still on the meta device (no checkpoint data and leftover='noop'): [bias]; they are in info['self_unset']: pass leftover= (an initializer such as torch.nn.init.normal_) to initialise them
    """
    left = [key for key in plan.self_unset
            if destination.tensors[key].is_meta]
    if left:
        warnings.warn(
            f'{len(left)} model tensors are still on the meta device (no '
            f"checkpoint data and leftover='noop'): {preview_items(left)}; "
            "they are in info['self_unset']: pass leftover= (an initializer "
            'such as torch.nn.init.normal_) to initialise them',
            stacklevel=3)
    return left


# --- helpers --------------------------------------------------------------------

def _fit(dst, src, entry, prepared):
    """Write one pair into a plain tensor of the model key's shape."""
    if entry.action == 'copy':
        dst.copy_(src)  # shapes, dtypes and memory were checked by the plan
    else:
        apply_decision(entry.decision, dst, src, entry.dst_key, prepared)


def _read_failed(err, source, written, n_planned, some=False):
    """The error of a read that failed part way, saying what state the
    model is in."""
    where = getattr(source, 'fpath', None)
    what = f'reading {where!r}' if where else 'reading the checkpoint'
    cause = describe_error(err)
    if not written:
        return CheckpointFormatError(
            f'{what} failed before any model tensor was overwritten '
            f'({cause}); the tensors the plan loads are as they were: fix '
            'the cause (the file must stay in place and unchanged while it '
            'loads) and load again')
    count = (f'up to {len(written)}' if some else f'{len(written)}')
    return CheckpointFormatError(
        f'{what} failed after {count} of the {n_planned} model tensors the '
        f'plan loads were overwritten ({cause}): the model is partly loaded, '
        f'{preview_items(written, 5)} hold checkpoint values and the others '
        'their old ones (undoing it would need a copy of the model). Fix the '
        'cause (the file must stay in place and unchanged while it loads) '
        'and load again, which writes every planned tensor anew, or rebuild '
        'the model')


def _block(entry):
    """What to read of a source tensor: all, or the block a corner shove
    keeps."""
    if (entry.action == 'shove' and entry.policy == 'corner'
            and len(entry.src_spec.shape) == len(entry.dst_spec.shape)):
        return block_of(entry.src_spec.shape, entry.dst_spec.shape)
    return None


def _read_stream(source, requests, destination):
    """``(key, tensor)`` of every request, a tensor cut to its block. A
    streaming source checks what it reads against its specs; any other is
    read at once and checked here, before anything is written."""
    if hasattr(source, 'read_tensors'):
        return source.read_tensors(requests,
                                   read_batch_bytes(destination.nbytes))
    tensors = source.read(list(requests))
    for key in requests:
        shape, spec = tuple(tensors[key].shape), tuple(source.specs[key].shape)
        if shape != spec:
            raise CheckpointFormatError(
                f'the source read checkpoint tensor {key!r} with shape '
                f'{shape}, but its specs say {spec}; nothing was loaded: '
                'make the source read the tensors its specs describe')
    return ((key, tensors[key][block] if block is not None else tensors[key])
            for key, block in requests.items())


def _nbytes(source, requests):
    if hasattr(source, 'nbytes'):
        return source.nbytes(requests)
    return 0  # an in-memory source: nothing to read


def _with_progress(stream, source, requests, total):
    import ubelt
    done = 0
    prog = ubelt.ProgIter(stream, total=len(requests), desc='loading tensors',
                          time_thresh=1.0, show_wall=False)
    for key, tensor in prog:
        done += source.nbytes({key: requests[key]})
        prog.set_extra(f'{done / 2 ** 20:,.1f} / {total / 2 ** 20:,.1f} MiB')
        yield key, tensor


def _progress_note(source, shardwise, verbose):
    total = source.nbytes(dict.fromkeys(shardwise))
    if verbose >= 1 and total >= PROGRESS_MIN_BYTES:
        print(f'loading {len(shardwise)} tensors '
              f'({total / 2 ** 20:,.0f} MiB in all, each rank its own '
              f'shards) through torch.distributed.checkpoint from '
              f'{source.fpath}')
