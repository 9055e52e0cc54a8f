"""
Tests for torch_liberator.transfer, through load_partial_state / Pretrained:
only the planned tensors (and blocks) are read, meta-device models are
materialised, long loads show one progress line.
"""
import warnings

import pytest
import torch
from safetensors.torch import save_file

from torch_liberator import transfer
from torch_liberator.checkpoint import open_checkpoint
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

    def read_tensors(self, requests):
        self.asked.append(dict(requests))
        return super().read_tensors(requests)


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
