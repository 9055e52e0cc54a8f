"""
Tests for the deploy file format's integrity data: the manifest's sha256 of
every member matches what an outside tool computes, and the reader (which
hashes while it reads, in pieces) catches a change anywhere in a member
larger than one read.
"""
import hashlib
import json
import zipfile

import pytest
import torch

from conftest import TiedLinears

from torch_liberator.deployer import _weights as weightsfile
from torch_liberator.deployer import DeployedModel, deploy
from torch_liberator.errors import IntegrityError


class LinearBN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64, 32)
        self.bn = torch.nn.BatchNorm1d(32)


#: the most bytes the weights reader reads (and hands to its hashing thread) at once
CHUNK_BYTES = weightsfile._CHUNK


@pytest.fixture(scope='module')
def big_zip(tmp_path_factory):
    """A deploy zip whose weights (~21 MiB) span two reads."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2400, 2300)
    fpath = deploy(model, tmp_path_factory.mktemp('big') / 'big.zip', verbose=0)
    return model, fpath


def members_of(fpath):
    with zipfile.ZipFile(fpath) as zfile:
        return {info.filename.split('/', 1)[1]: zfile.read(info)
                for info in zfile.infolist()}


def rewrite(src, dst, changes):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for info in zin.infolist():
            rel = info.filename.split('/', 1)[1]
            zout.writestr(info, changes.get(rel, zin.read(info)))
    return dst


def test_manifest_digests_match_an_outside_sha256(big_zip):
    _, fpath = big_zip
    members = members_of(fpath)
    manifest = json.loads(members.pop('manifest.json'))
    assert sorted(manifest['members']) == sorted(members)
    for rel, data in members.items():
        entry = manifest['members'][rel]
        assert entry['size'] == len(data)
        assert entry['sha256'] == hashlib.sha256(data).hexdigest()
    assert len(members['weights.safetensors']) > CHUNK_BYTES


def test_round_trip_of_a_multi_read_member(big_zip):
    model, fpath = big_zip
    loaded = DeployedModel(fpath).load_model()
    x = torch.rand(3, 2400)
    assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize('offset', [0, CHUNK_BYTES - 1, CHUNK_BYTES + 5, -1])
def test_a_changed_byte_in_any_piece_is_refused(big_zip, tmp_path, offset):
    _, fpath = big_zip
    weights = bytearray(members_of(fpath)['weights.safetensors'])
    weights[offset] ^= 0x40
    bad = rewrite(fpath, tmp_path / 'big.zip', {'weights.safetensors': bytes(weights)})
    with pytest.raises(IntegrityError, match="member 'weights.safetensors'"):
        DeployedModel(bad).load_model()


def test_unzipped_directory_is_checked_too(big_zip, tmp_path):
    model, fpath = big_zip
    with zipfile.ZipFile(fpath) as zfile:
        zfile.extractall(tmp_path)
    loaded = DeployedModel(tmp_path / 'big').load_model()
    assert torch.equal(loaded.weight, model.weight)
    wpath = tmp_path / 'big' / 'weights.safetensors'
    data = bytearray(wpath.read_bytes())
    data[CHUNK_BYTES + 1] ^= 1
    wpath.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="member 'weights.safetensors'"):
        DeployedModel(tmp_path / 'big').load_model()


def test_loaded_tensors_own_their_memory(tmp_path):
    # each tensor gets its own storage (as torch.load gives): saving one
    # parameter later must not drag the whole model's bytes along
    model = LinearBN()
    loaded = DeployedModel(deploy(model, tmp_path / 'own.zip', verbose=0)).load_model()
    for key, value in loaded.state_dict().items():
        assert value.untyped_storage().nbytes() == value.numel() * value.element_size(), key
        assert torch.equal(value, model.state_dict()[key])


def test_read_state_dict_to_a_device_keeps_aliases(tmp_path):
    from torch_liberator.deployer._format import DeployFile
    fpath = deploy(TiedLinears(), tmp_path / 'tied.zip', verbose=0)
    with DeployFile(fpath) as dfile:
        state = dfile.read_state_dict(device='meta')
    assert state['a.weight'] is state['b.weight'] and state['a.weight'].is_meta


def test_malformed_weights_with_matching_hashes_are_a_format_error(tmp_path):
    from torch_liberator.errors import CheckpointFormatError
    fpath = deploy(TiedLinears(), tmp_path / 'm.zip', verbose=0)
    garbage = b'\x10' + b'\x00' * 7 + b'{"w": 1}' + b'\x00' * 8
    manifest = json.loads(members_of(fpath)['manifest.json'])
    manifest['members']['weights.safetensors'] = {
        'sha256': hashlib.sha256(garbage).hexdigest(), 'size': len(garbage)}
    bad = rewrite(fpath, tmp_path / 'bad.zip', {
        'weights.safetensors': garbage, 'manifest.json': json.dumps(manifest).encode()})
    with pytest.raises(CheckpointFormatError, match='not valid safetensors'):
        DeployedModel(bad).load_model()


def test_writing_over_a_directory_fails_and_keeps_it(tmp_path):
    from torch_liberator.deployer._format import write_deploy_zip
    from torch_liberator.errors import DeployError
    target = tmp_path / 'taken.zip'
    target.mkdir()
    (target / 'keep.txt').write_text('mine')
    with pytest.raises(DeployError, match='cannot write deploy file'):
        write_deploy_zip(target, {'a.txt': b'a'}, {})
    assert (target / 'keep.txt').read_text() == 'mine'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['taken.zip']
