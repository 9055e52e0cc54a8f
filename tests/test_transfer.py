"""
Tests for torch_liberator.transfer, through load_partial_state / Pretrained:
only the planned tensors (and blocks) are read, meta-device models are
materialised, long loads show one progress line.
"""
import warnings

import pytest
import torch
from safetensors.torch import save_file

from torch_liberator import sources, transfer
from torch_liberator.checkpoint import open_checkpoint
from torch_liberator.errors import CheckpointFormatError
from torch_liberator.initializer import Pretrained, load_partial_state
from torch_liberator.sources import MappedStateSource


class Net(torch.nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, classes)


class Wrapped(torch.nn.Module):
    """The same layers under other names, plus a layer of its own."""

    def __init__(self, classes=10):
        super().__init__()
        self.body = Net(classes)
        self.extra = torch.nn.Linear(2, 2)


def _distinct(model, seed=0):
    """Give every tensor distinct values (buffers too)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand(value.shape, generator=gen) + 1)
            else:
                value.fill_(7)
    return model


def _save(model, tmp_path, name='src.safetensors'):
    fpath = tmp_path / name
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, fpath)
    return fpath


class Spy(MappedStateSource):
    """A source that records what is read."""

    def __init__(self, state):
        super().__init__(lambda: state)
        self.asked = []

    def read_tensors(self, requests, batch_bytes=None):
        self.asked.append(dict(requests))
        return super().read_tensors(requests, batch_bytes)


def test_reads_only_planned_keys_and_corner_blocks():
    src = _distinct(Net(classes=1000))
    src_state = src.state_dict()
    src_state['unrelated.weight'] = torch.ones(5, 5, 5)
    spy = Spy(src_state)
    dst = Wrapped(classes=10)
    info = load_partial_state(dst, spy, verbose=0)
    assert info['other_unused'] == ['unrelated.weight']
    asked = {key: block for call in spy.asked for key, block in call.items()}
    assert 'unrelated.weight' not in asked
    assert asked['head.weight'] == (slice(0, 10), slice(0, 4))
    assert asked['head.bias'] == (slice(0, 10),)
    assert asked['stem.weight'] is None
    assert torch.equal(dst.body.head.weight, src.head.weight[:10])
    assert torch.equal(dst.body.stem.weight, src.stem.weight)


def test_meta_model_is_materialised(tmp_path):
    src = _distinct(Net())
    fpath = _save(src, tmp_path)
    with torch.device('meta'):
        dst = Wrapped()
    with pytest.warns(UserWarning, match=(
            r"2 model tensors are still on the meta device \(no checkpoint data and "
            r"leftover='noop'\): \[extra\.weight, extra\.bias\]; they are in "
            r"info\['self_unset'\]")):
        info = Pretrained(fpath, verbose=0).forward(dst)
    assert info['self_unset'] == ['extra.weight', 'extra.bias']
    for key, value in dst.state_dict().items():
        if key.startswith('body.'):
            assert value.device.type == 'cpu', key
            assert torch.equal(value, src.state_dict()[key[len('body.'):]]), key
        else:
            assert value.is_meta, key
    assert isinstance(dst.body.stem.weight, torch.nn.Parameter)
    assert dst.body.stem.weight.requires_grad
    assert not isinstance(dst.body.norm.running_mean, torch.nn.Parameter)
    # the materialised model runs
    assert dst.body.stem(torch.zeros(1, 3, 3, 3)).shape == (1, 4, 1, 1)


def test_meta_model_with_callable_leftover(tmp_path):
    src = _distinct(Net())
    fpath = _save(src, tmp_path)
    with torch.device('meta'):
        dst = Wrapped(classes=12)  # head grows: a partial shove
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # nothing stays on meta: no warning
        info = load_partial_state(dst, fpath, leftover=torch.nn.init.zeros_,
                                  verbose=0)
    assert info['self_unset'] == ['extra.weight', 'extra.bias']
    assert not any(v.is_meta for v in dst.state_dict().values())
    assert torch.equal(dst.extra.weight, torch.zeros(2, 2))
    head = dst.body.head.weight
    assert torch.equal(head[:10], src.head.weight)
    assert torch.equal(head[10:], torch.zeros(2, 4))


def test_meta_partial_shove_without_leftover_is_skipped(tmp_path):
    src = _distinct(Net())
    with torch.device('meta'):
        dst = Wrapped(classes=12)
    with pytest.warns(UserWarning, match='4 model tensors are still on the meta device'):
        info = load_partial_state(dst, src.state_dict(), verbose=0)
    plan = info['plan']
    reasons = {e.src_key: e.reason for e in plan.entries if e.action == 'skip'}
    assert set(reasons) == {'head.weight', 'head.bias'}
    assert "is on the meta device and this shove would set only part of it; pass a callable leftover=" in reasons['head.weight']
    assert info['self_unset'] == ['body.head.weight', 'body.head.bias',
                                  'extra.weight', 'extra.bias']
    assert dst.body.head.weight.is_meta
    assert torch.equal(dst.body.stem.weight, src.stem.weight)


def test_meta_tied_weights_stay_tied():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 3, bias=False)
            self.b = torch.nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight
    src = _distinct(Tied())
    with torch.device('meta'):
        dst = Tied()
    load_partial_state(dst, {'a.weight': src.a.weight.detach()}, verbose=0)
    assert dst.a.weight is dst.b.weight
    assert torch.equal(dst.b.weight, src.a.weight)


def test_partly_meta_model_uses_the_real_device():
    src = _distinct(Net())
    dst = Wrapped()
    dst.body.head = torch.nn.Linear(4, 10, device='meta')
    load_partial_state(dst, src.state_dict(), verbose=0)
    assert dst.body.head.weight.device.type == 'cpu'
    assert torch.equal(dst.body.head.weight, src.head.weight)


def test_meta_load_failure_leaves_model_as_it_was():
    with torch.device('meta'):
        dst = Wrapped()
    before = dst.state_dict(keep_vars=True)
    with pytest.raises(ValueError):
        load_partial_state(dst, {'w': torch.zeros(1)}, association='nope', verbose=0)
    after = dst.state_dict(keep_vars=True)
    assert all(after[k] is before[k] for k in before)


def test_progress_is_one_line(tmp_path, monkeypatch, capsys):
    src = _distinct(Net())
    fpath = _save(src, tmp_path)
    monkeypatch.setattr(transfer, 'PROGRESS_MIN_BYTES', 0)
    load_partial_state(Wrapped(), fpath, verbose=1)
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if 'loading tensors' in line]
    assert progress, out
    assert len(progress) <= 3  # start and end, never one per tensor
    assert '9/9' in progress[-1] and ' / 0.0 MiB' in progress[-1]
    monkeypatch.setattr(transfer, 'PROGRESS_MIN_BYTES', 2 ** 40)
    load_partial_state(Wrapped(), fpath, verbose=1)
    assert 'loading tensors' not in capsys.readouterr().out


@pytest.mark.parametrize('suffix', ['.pt', '.safetensors'])
def test_lazy_file_sources_load_the_same_values(tmp_path, suffix):
    src = _distinct(Net(classes=1000))
    fpath = tmp_path / f'src{suffix}'
    if suffix == '.pt':
        torch.save({'epoch': 1, 'state_dict': src.state_dict()}, fpath)
    else:
        _save(src, tmp_path, fpath.name)
    assert not isinstance(open_checkpoint(fpath), dict)
    dst = Wrapped(classes=10)
    info = Pretrained(fpath, verbose=0).forward(dst)
    assert sorted(info['seen']['partial_add_some']) == ['body.head.bias', 'body.head.weight']
    for key, value in src.state_dict().items():
        got = dst.body.state_dict()[key]
        assert torch.equal(got, value[tuple(slice(0, n) for n in got.shape)]), key


class Flat(torch.nn.Module):
    """``n`` parameters of 1 KiB, each filled with its index."""

    def __init__(self, n):
        super().__init__()
        self.ps = torch.nn.ParameterList(
            torch.nn.Parameter(torch.full((256,), float(i))) for i in range(n))


def _record_batches(monkeypatch, fail_at=None):
    """Record the keys of every batch a MappedStateSource reads; raise an
    OSError instead of reading batch number ``fail_at`` (from 1)."""
    batches = []
    real = MappedStateSource._read_batch

    def recording(self, batch):
        batches.append([key for key, _ in batch])
        if len(batches) == fail_at:
            raise OSError(5, 'Input/output error')
        yield from real(self, batch)
    monkeypatch.setattr(MappedStateSource, '_read_batch', recording)
    return batches


def test_batches_are_sized_from_the_model(tmp_path, monkeypatch):
    fpath = tmp_path / 'flat.pt'
    torch.save(Flat(24).state_dict(), fpath)  # 24 KiB
    monkeypatch.setattr(sources, 'READ_BATCH_BYTES', 512)
    batches = _record_batches(monkeypatch)
    dst = Flat(24)
    with torch.no_grad():
        for value in dst.parameters():
            value.zero_()
    load_partial_state(dst, fpath, verbose=0)
    # 1/12 of the model per batch: 2 KiB, two tensors
    assert batches == [[f'ps.{i}', f'ps.{i + 1}'] for i in range(0, 24, 2)]
    assert [value.detach()[0].item() for value in dst.ps] == list(range(24))


def _two_linears(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))


def test_read_failure_midway_says_what_was_overwritten(tmp_path, monkeypatch):
    src = _two_linears(0)
    fpath = tmp_path / 'src.pt'
    torch.save(src.state_dict(), fpath)
    monkeypatch.setattr(sources, 'READ_BATCH_BYTES', 1)  # one tensor a batch
    batches = _record_batches(monkeypatch, fail_at=3)
    dst = _two_linears(1)
    before = {key: value.clone() for key, value in dst.state_dict().items()}
    with pytest.raises(CheckpointFormatError, match=(
            r"^reading '.*src\.pt' failed after 2 of the 4 model tensors the "
            r"plan loads were overwritten \(OSError: \[Errno 5\] Input/output "
            r"error\): the model is partly loaded, \[0\.weight, 0\.bias\] hold "
            r"checkpoint values and the others their old ones \(undoing it "
            r"would need a copy of the model\)\. Fix the cause")) as caught:
        load_partial_state(dst, fpath, verbose=0)
    assert isinstance(caught.value.__cause__, OSError)
    assert batches == [['0.weight'], ['0.bias'], ['1.weight']]
    after = dst.state_dict()
    for key in ('0.weight', '0.bias'):
        assert torch.equal(after[key], src.state_dict()[key]), key
    for key in ('1.weight', '1.bias'):
        assert torch.equal(after[key], before[key]), key


def test_read_failure_before_any_write_leaves_the_model(tmp_path, monkeypatch):
    fpath = tmp_path / 'src.pt'
    torch.save(_two_linears(0).state_dict(), fpath)
    _record_batches(monkeypatch, fail_at=1)
    dst = _two_linears(1)
    before = {key: value.clone() for key, value in dst.state_dict().items()}
    with pytest.raises(CheckpointFormatError, match=(
            r"failed before any model tensor was overwritten \(OSError: "
            r"\[Errno 5\] Input/output error\); the tensors the plan loads are "
            r"as they were: fix the cause")):
        load_partial_state(dst, fpath, verbose=0)
    for key, value in dst.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_read_failure_leaves_a_meta_model_as_it_was(tmp_path, monkeypatch):
    fpath = tmp_path / 'src.pt'
    torch.save(_two_linears(0).state_dict(), fpath)
    monkeypatch.setattr(sources, 'READ_BATCH_BYTES', 1)
    _record_batches(monkeypatch, fail_at=3)
    with torch.device('meta'):
        dst = _two_linears(1)
    before = dst.state_dict(keep_vars=True)
    with pytest.raises(CheckpointFormatError,
                       match='failed before any model tensor was overwritten'):
        load_partial_state(dst, fpath, leftover=torch.nn.init.zeros_,
                           verbose=0)
    after = dst.state_dict(keep_vars=True)
    assert all(after[key] is before[key] and after[key].is_meta
               for key in before)


class Misreporting:
    """A TensorSource (the protocol, not a library class) whose ``read``
    returns a tensor of another shape than its specs announce."""

    def __init__(self, state, wrong_key):
        from torch_liberator.shapes import TensorSpec
        self.state = dict(state)
        self.specs = {key: TensorSpec.of(value) for key, value in state.items()}
        self.problems = {}
        self.wrong_key = wrong_key

    def read(self, keys):
        out = {key: self.state[key] for key in keys}
        out[self.wrong_key] = torch.ones(1)  # broadcastable into anything
        return out


def test_a_source_misreporting_a_shape_fails_before_any_write():
    src = _distinct(Net(), seed=0)
    dst = _distinct(Net(), seed=1)
    before = {key: value.clone() for key, value in dst.state_dict().items()}
    source = Misreporting(src.state_dict(), 'head.bias')
    with pytest.raises(CheckpointFormatError, match=(
            r"the source read checkpoint tensor 'head.bias' with shape \(1,\), "
            r"but its specs say \(10,\); nothing was loaded")):
        load_partial_state(dst, source, verbose=0)
    for key, value in dst.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_loaded_parameters_stay_leaves_that_require_grad():
    src = _distinct(Net(), seed=0)
    dst = _distinct(Wrapped(), seed=1)
    params = dict(dst.named_parameters())
    info = load_partial_state(dst, src.state_dict(), verbose=0)
    assert len(info['seen']['full_add']) == len(src.state_dict())
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()['body.' + key], value), key
    for name, param in dst.named_parameters():
        assert param is params[name]
        assert param.requires_grad and param.grad_fn is None and param.is_leaf
    assert torch.is_grad_enabled()
