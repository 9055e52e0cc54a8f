"""
Tests for torch_liberator.sources and torch_liberator.safesources: checkpoints read header-first, tensors on
request, in bounded batches; sharded safetensors checked before any read.
"""
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from torch_liberator import sources
from torch_liberator.checkpoint import open_checkpoint, read_state_dict
from torch_liberator.errors import CheckpointFormatError, CheckpointNotFoundError
from torch_liberator.shapes import TensorSpec
from torch_liberator import safesources
from torch_liberator.safesources import (
    SafetensorsSource, ShardedSafetensorsSource)
from torch_liberator.sources import (
    MappedStateSource, RenamedSource, block_of)


def _state(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(4, 5))
    return {key: value.clone() for key, value in net.state_dict().items()}


def write_sharded(dpath, state, n_shards=2, name='model'):
    """Save ``state`` as ``n_shards`` safetensors shards plus an index, the
    way Hugging Face lays them out; returns the index path."""
    os.makedirs(dpath, exist_ok=True)
    keys = list(state)
    weight_map = {}
    for i in range(n_shards):
        part = keys[
            i * len(keys) // n_shards:(i + 1) * len(keys) // n_shards]
        shard = f'{name}-{i + 1:05d}-of-{n_shards:05d}.safetensors'
        save_file({k: state[k].contiguous() for k in part},
                  os.path.join(dpath, shard))
        weight_map.update(dict.fromkeys(part, shard))
    index = os.path.join(dpath, f'{name}.safetensors.index.json')
    with open(index, 'w') as file:
        json.dump({'metadata': {'total_size': 0},
                   'weight_map': dict(sorted(weight_map.items()))}, file)
    return index


def _assert_same(got, want):
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key


@pytest.mark.parametrize('module', [sources, safesources])
def test_all_is_sorted_and_complete(module):
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name)


# --- single files -------------------------------------------------------------

def test_safetensors_specs_in_file_order_and_slices(tmp_path):
    state = _state()
    fpath = tmp_path / 'm.safetensors'
    save_file(state, fpath)
    source = SafetensorsSource(fpath)
    assert source.specs == {k: TensorSpec(tuple(v.shape), v.dtype)
                            for k, v in state.items()}
    block = block_of(state['3.weight'].shape, (2, 3))
    got = dict(source.read_tensors({'3.weight': block, '1.running_var': None}))
    assert list(got) == ['1.running_var', '3.weight']  # source order
    assert torch.equal(got['3.weight'], state['3.weight'][:2, :3])
    assert torch.equal(got['1.running_var'], state['1.running_var'])


def test_torch_file_is_memory_mapped_and_unwrapped(tmp_path):
    state = _state()
    fpath = tmp_path / 'last.ckpt'
    torch.save({'epoch': 2, 'state_dict': state}, fpath)
    source = open_checkpoint(fpath)
    assert isinstance(source, MappedStateSource)
    assert list(source.specs) == list(state)
    got = dict(source.read_tensors(dict.fromkeys(state)))
    _assert_same(got, state)


def test_legacy_torch_file_is_read_whole(tmp_path):
    state = _state()
    fpath = tmp_path / 'old.pth'
    torch.save(state, fpath, _use_new_zipfile_serialization=False)
    source = open_checkpoint(fpath)
    assert isinstance(source, MappedStateSource)
    _assert_same(dict(source.read_tensors(dict.fromkeys(state))), state)


def test_mapped_source_notices_a_changed_file(tmp_path):
    fpath = tmp_path / 'm.pt'
    torch.save({'w': torch.zeros(3)}, fpath)
    source = open_checkpoint(fpath)
    torch.save({'w': torch.zeros(4)}, fpath)  # rewritten in place
    with pytest.raises(CheckpointFormatError, match=r"m\.pt' changed while it was being read \(it was removed"):
        list(source.read_tensors({'w': None}))


def test_mapped_source_checks_the_specs_of_every_reopen():
    states = iter([{'w': torch.zeros(3)}, {'w': torch.zeros(4)}])
    source = MappedStateSource(lambda: next(states), 'm.pt')
    with pytest.raises(CheckpointFormatError, match=(
            r"^'m\.pt' changed while it was being read: 'w' is no longer a "
            r"TensorSpec\(shape=\(3,\), dtype=torch\.float32\); load again$")):
        list(source.read_tensors({'w': None}))


def _save_as(fpath, state):
    if str(fpath).endswith('.pt'):
        torch.save(state, fpath)
    else:
        save_file(state, fpath)


@pytest.mark.parametrize('suffix', ['.pt', '.safetensors'])
def test_a_file_replaced_between_batches_is_refused(tmp_path, monkeypatch, suffix):
    # a training job saving the same path again (write and rename, the safe
    # way): same keys and shapes, other values; one load must not mix them
    fpath = tmp_path / f'm{suffix}'
    _save_as(fpath, {'a': torch.zeros(3), 'b': torch.zeros(3)})
    source = open_checkpoint(fpath)
    batches = source.read_tensors({'a': None, 'b': None}, batch_bytes=1)
    key, tensor = next(batches)
    assert (key, tensor.tolist()) == ('a', [0.0, 0.0, 0.0])
    _save_as(tmp_path / f'new{suffix}', {'a': torch.ones(3), 'b': torch.ones(3)})
    os.replace(tmp_path / f'new{suffix}', fpath)
    with pytest.raises(CheckpointFormatError, match=(
            r"m\.(pt|safetensors)' changed while it was being read \(it was "
            r"removed, replaced or rewritten since its header was read\); one "
            r"load must not mix two saves")):
        next(batches)


def test_a_file_replaced_by_another_kind_is_refused_as_replaced(tmp_path):
    fpath = tmp_path / 'm.pt'
    torch.save({'a': torch.zeros(3)}, fpath)
    source = open_checkpoint(fpath)
    (tmp_path / 'junk').write_bytes(b'not a checkpoint')
    os.replace(tmp_path / 'junk', fpath)
    with pytest.raises(CheckpointFormatError, match="m\\.pt' changed while it was being read"):
        list(source.read_tensors({'a': None}))


def test_missing_safetensors_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=(
            r"^safetensors file '.*nope\.safetensors' does not exist; check the path$")):
        SafetensorsSource(tmp_path / 'nope.safetensors')


def test_a_shard_replaced_is_refused(tmp_path):
    state = _state()
    index = write_sharded(tmp_path, state, n_shards=2)
    source = ShardedSafetensorsSource(index)
    shard = source.shard_of['3.weight']
    save_file({k: torch.zeros_like(v).contiguous() for k, v in state.items()
               if source.shard_of[k] == shard}, tmp_path / 'new')
    os.replace(tmp_path / 'new', shard)
    assert dict(source.read_tensors({'0.weight': None}))['0.weight'].shape == (4, 3, 3, 3)
    with pytest.raises(CheckpointFormatError, match='00002.safetensors\' changed while'):
        list(source.read_tensors({'3.weight': None}))


def test_unknown_key_is_refused():
    source = MappedStateSource(lambda: {'w': torch.zeros(1)})
    with pytest.raises(KeyError, match="'nope'"):
        list(source.read_tensors({'nope': None}))


def test_batches_are_bounded(tmp_path, monkeypatch):
    state = {f'l{i}': torch.full((256,), float(i)) for i in range(10)}  # 1 KiB each
    fpath = tmp_path / 'm.safetensors'
    save_file(state, fpath)
    monkeypatch.setattr(sources, 'READ_BATCH_BYTES', 3 * 1024)
    opened = []
    real = safesources._read_safetensors_batch

    def counting(path, batch, identity):
        opened.append([key for key, _ in batch])
        return real(path, batch, identity)
    monkeypatch.setattr(safesources, '_read_safetensors_batch', counting)
    got = dict(SafetensorsSource(fpath).read_tensors(dict.fromkeys(state)))
    _assert_same(got, state)
    assert opened == [['l0', 'l1', 'l2'], ['l3', 'l4', 'l5'],
                      ['l6', 'l7', 'l8'], ['l9']]


def test_renamed_source():
    inner = MappedStateSource(lambda: {'a': torch.zeros(2), 'b': torch.ones(2)})
    view = RenamedSource(inner, {'x': 'b'})
    assert view.specs == {'x': TensorSpec((2,), torch.float32)}
    assert dict(view.read_tensors({'x': (slice(0, 1),)}))['x'].tolist() == [1.0]


def test_renamed_source_reads_its_batch_in_one_open(monkeypatch):
    monkeypatch.setattr(sources, 'READ_BATCH_BYTES', 1)
    opens = []

    def open_state():
        opens.append(1)
        return {'a': torch.zeros(2), 'b': torch.ones(2), 'c': torch.ones(1)}
    view = RenamedSource(MappedStateSource(open_state), {'x': 'a', 'y': 'b', 'z': 'c'})
    opens.clear()  # the one that read the specs
    got = dict(view.read_tensors(dict.fromkeys('xyz'), batch_bytes=2 ** 20))
    assert [got[key].tolist() for key in 'xyz'] == [[0.0, 0.0], [1.0, 1.0], [1.0]]
    assert len(opens) == 1
    opens.clear()
    assert len(dict(view.read_tensors(dict.fromkeys('xyz')))) == 3
    assert len(opens) == 3  # the default bound, READ_BATCH_BYTES


# --- sharded safetensors --------------------------------------------------------

@pytest.mark.parametrize('as_folder', [False, True])
def test_sharded_index_or_folder(tmp_path, as_folder):
    state = _state()
    index = write_sharded(tmp_path / 'ckpt', state, n_shards=3)
    path = os.path.dirname(index) if as_folder else index
    source = open_checkpoint(path)
    assert isinstance(source, ShardedSafetensorsSource)
    # shard by shard (safetensors orders each shard's own tensors)
    shards = sorted(os.path.join(os.path.dirname(index), name)
                    for name in os.listdir(os.path.dirname(index))
                    if name.endswith('-of-00003.safetensors'))
    assert list(source.specs) == [
        key for shard in shards for key in SafetensorsSource(shard).specs]
    assert sorted(source.specs) == sorted(state)
    got = read_state_dict(path)
    _assert_same(dict(sorted(got.items())), dict(sorted(state.items())))


def test_sharded_headers_only_until_asked(tmp_path, monkeypatch):
    state = _state()
    index = write_sharded(tmp_path, state, n_shards=2)

    def refuse(path, batch, identity):
        raise AssertionError('tensor data read')
    monkeypatch.setattr(safesources, '_read_safetensors_batch', refuse)
    source = ShardedSafetensorsSource(index)
    assert source.specs['3.weight'].shape == (5, 4)


def test_sharded_missing_shard(tmp_path):
    index = write_sharded(tmp_path, _state(), n_shards=2)
    os.remove(tmp_path / 'model-00002-of-00002.safetensors')
    with pytest.raises(CheckpointNotFoundError, match=(
            r"sharded index '.*model\.safetensors\.index\.json' names 1 shard files "
            r"that do not exist: \['model-00002-of-00002\.safetensors'\]; download or "
            r"copy every shard next to the index")):
        open_checkpoint(index)


def test_sharded_header_disagrees_with_index(tmp_path):
    state = _state()
    index = write_sharded(tmp_path, state, n_shards=2)
    # the second shard re-saved with one tensor renamed
    shard = tmp_path / 'model-00002-of-00002.safetensors'
    part = read_state_dict(shard)
    part['renamed'] = part.pop('3.bias')
    save_file(part, shard)
    with pytest.raises(CheckpointFormatError, match=(
            r"shard '.*model-00002-of-00002\.safetensors' disagrees with the index "
            r"'.*': the index assigns it 5 tensors, 1 of them are not in its header "
            r"\['3\.bias'\] and it holds 1 tensors the index does not assign to it "
            r"\['renamed'\]; .*save the checkpoint again")):
        open_checkpoint(index)


@pytest.mark.parametrize('text, match', [
    ('not json', 'cannot read sharded index .*JSONDecodeError'),
    ('[1, 2]', 'has no "weight_map"'),
    ('{"weight_map": {"a": 3}}', 'has no "weight_map"'),
    ('{"weight_map": {"a": "../x.safetensors"}}',
     r"names the shard '\.\./x\.safetensors' for 'a': shards must be "
     r"\.safetensors files in the index's own folder"),
    ('{"weight_map": {"a": "/etc/passwd"}}', 'shards must be .safetensors files'),
])
def test_bad_index(tmp_path, text, match):
    index = tmp_path / 'model.safetensors.index.json'
    index.write_text(text)
    with pytest.raises(CheckpointFormatError, match=match):
        open_checkpoint(index)


def test_folder_with_two_indexes(tmp_path):
    write_sharded(tmp_path, _state(), name='a')
    write_sharded(tmp_path, _state(), name='b')
    with pytest.raises(CheckpointNotFoundError, match=(
            r"holds 2 \(a\.safetensors\.index\.json, b\.safetensors\.index\.json\) "
            r"sharded safetensors index files .*pass the index file itself")):
        open_checkpoint(tmp_path)


def test_corrupt_shard_header(tmp_path):
    index = write_sharded(tmp_path, _state(), n_shards=2)
    shard = tmp_path / 'model-00001-of-00002.safetensors'
    shard.write_bytes(b'\xff' * 64)
    with pytest.raises(CheckpointFormatError, match=r"cannot read the header of safetensors file '.*model-00001-of-00002\.safetensors'.*corrupt or truncated"):
        open_checkpoint(index)


def test_sharded_ema(tmp_path):
    state = {'model.w': torch.zeros(2), 'ema_model.module.w': torch.ones(2),
             'ema_model.n_averaged': torch.tensor(3)}
    index = write_sharded(tmp_path, state, n_shards=2)
    source = open_checkpoint(index, ema=True)
    assert list(source.specs) == ['w']
    assert dict(source.read_tensors({'w': None}))['w'].tolist() == [1.0, 1.0]
    assert read_state_dict(index, ema=True)['w'].tolist() == [1.0, 1.0]
    with pytest.raises(CheckpointFormatError, match="ema=True but the checkpoint holds no EMA weights"):
        open_checkpoint(write_sharded(tmp_path / 'plain', _state()), ema=True)


def test_cli_map_on_a_sharded_index_reads_headers_only(tmp_path, monkeypatch, capsys):
    from torch_liberator.cli import main
    state = _state()
    index = write_sharded(tmp_path / 'ckpt', state, n_shards=2)
    other = tmp_path / 'other.safetensors'
    save_file({f'net.{k}': v.contiguous() for k, v in state.items()}, other)

    def refuse(path, batch, identity):
        raise AssertionError('tensor data read')
    monkeypatch.setattr(safesources, '_read_safetensors_batch', refuse)
    assert main(['map', os.path.dirname(index), str(other), '--json']) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan['counts'] == {'copy': len(state), 'shove': 0, 'skip': 0}
    assert {e['src']: e['dst'] for e in plan['entries']} == {
        k: f'net.{k}' for k in state}
