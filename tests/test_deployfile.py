"""
Tests for the deploy file format as an attacker or a crash would meet it:
the manifest's hashes, then hostile and damaged files (every failure is the
library's error, with bounded memory, and nothing is written outside the
folder asked for), races between a reader and a writer, and the atomic
writer's leftovers.
"""
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import TiedLinears

from torch_liberator import (
    CheckpointFormatError, DeployError, IntegrityError, LiberatorError)
from torch_liberator.cli import main
from torch_liberator.deployer import DeployedModel, deploy, read_deploy_state_dict

REPO = Path(__file__).resolve().parent.parent


class LinearBN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64, 32)
        self.bn = torch.nn.BatchNorm1d(32)

    def forward(self, x):
        return self.bn(self.lin(x))


class Tiny(torch.nn.Module):
    """The smallest model with weights: a small file to fuzz."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(3.0))

    def forward(self, x):
        return x * self.w


def members_of(fpath):
    with zipfile.ZipFile(fpath) as zfile:
        return {info.filename.split('/', 1)[1]: zfile.read(info)
                for info in zfile.infolist()}


def rewrite(src, dst, changes=(), add=(), forge=False):
    """Copy a deploy zip with some members changed (``changes``: relative
    name -> bytes) and entries added (``add``: full name -> bytes); with
    ``forge``, the manifest's hashes are updated too (what someone who
    rewrites the whole file can do)."""
    changes = dict(changes)
    if forge:
        manifest = json.loads(members_of(src)['manifest.json'])
        for rel, data in changes.items():
            manifest['members'][rel] = {'sha256': hashlib.sha256(data).hexdigest(),
                                        'size': len(data)}
        changes.setdefault('manifest.json', json.dumps(manifest).encode())
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for info in zin.infolist():
            rel = info.filename.split('/', 1)[1]
            zout.writestr(info, changes.get(rel, zin.read(info)))
        for name, data in add:
            zout.writestr(name, data)
    return dst


def with_manifest(src, dst, edit):
    manifest = json.loads(members_of(src)['manifest.json'])
    edit(manifest)
    return rewrite(src, dst, {'manifest.json': json.dumps(manifest).encode()})


def patch_central_entry(fpath, name, offset, value, size=4):
    """Overwrite a field of the central directory entry of ``name``."""
    data = bytearray(Path(fpath).read_bytes())
    pos = data.index(b'PK\x01\x02')
    while True:
        nlen = int.from_bytes(data[pos + 28:pos + 30], 'little')
        if data[pos + 46:pos + 46 + nlen] == name.encode():
            break
        pos = data.index(b'PK\x01\x02', pos + 4)
    data[pos + offset:pos + offset + size] = value.to_bytes(size, 'little')
    Path(fpath).write_bytes(bytes(data))


@pytest.fixture(scope='module')
def tiny_zip(tmp_path_factory):
    return Path(deploy(Tiny(), tmp_path_factory.mktemp('tiny') / 'tiny.zip',
                       train_info={'epoch': 1}, verbose=0))


# --- hashes ------------------------------------------------------------------

def test_manifest_digests_match_an_outside_sha256(tmp_path):
    torch.manual_seed(0)
    model = LinearBN()
    fpath = deploy(model, tmp_path / 'lbn.zip', verbose=0)
    members = members_of(fpath)
    manifest = json.loads(members.pop('manifest.json'))
    assert sorted(manifest['members']) == sorted(members)
    for rel, data in members.items():
        assert manifest['members'][rel] == {
            'sha256': hashlib.sha256(data).hexdigest(), 'size': len(data)}
    loaded = DeployedModel(fpath).load_model().eval()
    x = torch.rand(3, 64)
    assert torch.equal(loaded(x), model.eval()(x))


@pytest.mark.parametrize('offset', [0, 9, 1000, -1])
def test_a_changed_weights_byte_is_refused(tmp_path, offset):
    fpath = deploy(LinearBN(), tmp_path / 'lbn.zip', verbose=0)
    weights = bytearray(members_of(fpath)['weights.safetensors'])
    weights[offset] ^= 0x40
    bad = rewrite(fpath, tmp_path / 'bad.zip', {'weights.safetensors': bytes(weights)})
    with pytest.raises(IntegrityError, match="member 'weights.safetensors' has sha256"):
        DeployedModel(bad).load_model()


def test_unzipped_directory_is_checked_too(tmp_path):
    model = LinearBN()
    fpath = deploy(model, tmp_path / 'big.zip', verbose=0)
    with zipfile.ZipFile(fpath) as zfile:
        zfile.extractall(tmp_path)
    loaded = DeployedModel(tmp_path / 'big').load_model()
    assert torch.equal(loaded.lin.weight, model.lin.weight)
    wpath = tmp_path / 'big' / 'weights.safetensors'
    data = bytearray(wpath.read_bytes())
    data[-5] ^= 1
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


def test_tied_weights_stay_tied_also_on_another_device(tmp_path):
    fpath = deploy(TiedLinears(), tmp_path / 'tied.zip', verbose=0)
    manifest = DeployedModel(fpath).info['manifest']
    assert manifest['weights']['aliases'] == {'b.weight': 'a.weight'}
    assert manifest['weights']['tensors'] == 1
    state = read_deploy_state_dict(fpath, device='meta')
    assert state['a.weight'] is state['b.weight'] and state['a.weight'].is_meta
    loaded = DeployedModel(fpath).load_model()
    assert loaded.a.weight is loaded.b.weight


def test_malformed_weights_with_matching_hashes_are_a_format_error(tmp_path):
    fpath = deploy(TiedLinears(), tmp_path / 'm.zip', verbose=0)
    garbage = b'\x10' + b'\x00' * 7 + b'{"w": 1}' + b'\x00' * 8
    bad = rewrite(fpath, tmp_path / 'bad.zip', {'weights.safetensors': garbage}, forge=True)
    with pytest.raises(CheckpointFormatError, match='not valid safetensors'):
        DeployedModel(bad).load_model()


def test_whole_file_sha256_catches_what_the_manifest_cannot(tmp_path, tiny_zip, capsys):
    # a file rewritten whole, manifest included, passes the member hashes
    # but not a sha256 of the whole file published out of band
    published = hashlib.sha256(tiny_zip.read_bytes()).hexdigest()
    forged = rewrite(tiny_zip, tmp_path / 'tiny.zip', {'train_info.json': b'{"epoch": 666}'},
                     forge=True)
    DeployedModel(forged).verify()
    with pytest.raises(IntegrityError, match='not the file that was published'):
        DeployedModel(forged).verify(sha256=published)
    assert main(['verify', str(forged), '--sha256', published]) == 1
    assert 'not the file that was published' in capsys.readouterr().err
    assert main(['verify', str(tiny_zip), '--sha256', published.upper()]) == 0
    assert capsys.readouterr().out.startswith('OK: hashes match;')
    with zipfile.ZipFile(tiny_zip) as zfile:
        zfile.extractall(tmp_path / 'unzipped')
    with pytest.raises(DeployError, match='is a folder, which has no sha256'):
        DeployedModel(tmp_path / 'unzipped').verify(sha256=published)


# --- hostile files -----------------------------------------------------------

def test_single_byte_flips_give_the_library_error(tiny_zip, tmp_path):
    # every offset of a real deploy file: a flip is refused with the
    # library's error, or (zip metadata no hash covers, such as dates)
    # changes nothing that loads
    data = tiny_zip.read_bytes()
    expected = read_deploy_state_dict(tiny_zip)
    bad = tmp_path / 'tiny.zip'
    bad.write_bytes(data)
    outcomes = {'refused': 0, 'same': 0}
    with open(bad, 'r+b', buffering=0) as file:
        for offset in range(len(data)):
            file.seek(offset)
            file.write(bytes([data[offset] ^ 0x5A]))
            try:
                state = read_deploy_state_dict(bad)
            except LiberatorError:
                outcomes['refused'] += 1
            else:
                assert sorted(state) == sorted(expected), offset
                assert all(torch.equal(state[k], expected[k]) for k in state), offset
                outcomes['same'] += 1
            file.seek(offset)
            file.write(data[offset:offset + 1])
    assert outcomes['refused'] > 0.8 * len(data)


def test_extract_snapshot_stays_in_its_folder(tmp_path, tiny_zip):
    # the weights name comes from the manifest; a zip with top folder '_'
    # naming 'pycache__/../../outside/x' beside a real '__pycache__' folder
    members = members_of(tiny_zip)
    manifest = json.loads(members['manifest.json'])
    evil = 'pycache__/../../outside/x'
    manifest['weights']['file'] = evil
    manifest['members'][evil] = manifest['members'].pop('weights.safetensors')
    bad = tmp_path / 'bad.zip'
    with zipfile.ZipFile(bad, 'w') as zfile:
        for rel, data in members.items():
            if rel == 'weights.safetensors':
                rel = evil
            zfile.writestr(f'_/{rel}', json.dumps(manifest) if rel == 'manifest.json' else data)
        zfile.writestr('_/__pycache__/x', b'')
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(IntegrityError, match="plain relative names only"):
        DeployedModel(bad).extract_snapshot(out)
    assert list(out.iterdir()) == [] and not (tmp_path / 'outside').exists()
    # a legal name with folders, in a deploy folder named '..', is reduced
    # to a plain name inside the folder asked for
    manifest = json.loads(members['manifest.json'])
    manifest['weights']['file'] = 'sub/w.safetensors'
    manifest['members']['sub/w.safetensors'] = manifest['members'].pop('weights.safetensors')
    odd = tmp_path / 'odd.zip'
    with zipfile.ZipFile(odd, 'w') as zfile:
        for rel, data in members.items():
            rel = 'sub/w.safetensors' if rel == 'weights.safetensors' else rel
            zfile.writestr(f'../{rel}', json.dumps(manifest) if rel == 'manifest.json' else data)
    with pytest.raises(IntegrityError, match=r"member named '\.\./"):
        DeployedModel(odd)
    legal = tmp_path / 'legal.zip'
    with zipfile.ZipFile(odd) as zin, zipfile.ZipFile(legal, 'w') as zout:
        for info in zin.infolist():
            zout.writestr('legal/' + info.filename[3:], zin.read(info))
    snap = DeployedModel(legal).extract_snapshot(out)
    assert snap == str(out / 'legal_w.safetensors')
    assert sorted(os.listdir(out)) == ['legal_w.safetensors']


@pytest.mark.parametrize('edit, match', [
    (lambda m: m.update(members=[]), "'members' must map names"),
    (lambda m: m['members']['weights.safetensors'].update(sha256=7), "'members' must map names"),
    (lambda m: m['members']['weights.safetensors'].update(size='3'), "'members' must map names"),
    (lambda m: m.update(model='Tiny'), "'model' must name"),
    (lambda m: m['model'].update(code=['x.py']), "'model' must name"),
    (lambda m: m['model'].update(code='manifest.json'), "'model' must name"),
    (lambda m: m['model'].update(code='weights.safetensors'), "'weights' must name"),
    (lambda m: m['weights'].update(file='missing.safetensors'), "'weights' must name"),
    (lambda m: m['weights'].update(aliases=['a']), "'weights' must name"),
    (lambda m: m['weights'].update(aliases={'a': 1}), "'weights' must name"),
    (lambda m: m['weights'].update(module_versions={'': 2}), "'weights' must name"),
    (lambda m: m.update(format_version='2'), 'uses deploy format version'),
    (lambda m: m.update(format_version=1), 'uses deploy format version 1'),
    (lambda m: m.update(format='other'), 'not a torch_liberator.deploy manifest'),
])
def test_wrong_manifest_types_are_refused(tmp_path, tiny_zip, edit, match):
    bad = with_manifest(tiny_zip, tmp_path / 'bad.zip', edit)
    with pytest.raises(LiberatorError, match=match):
        DeployedModel(bad)


def test_aliases_that_name_missing_keys_are_refused(tmp_path, tiny_zip):
    bad = with_manifest(tiny_zip, tmp_path / 'bad.zip',
                        lambda m: m['weights'].update(aliases={'v': 'nope'}))
    with pytest.raises(CheckpointFormatError, match="alias 'v' -> 'nope'"):
        DeployedModel(bad).load_model()


def test_deep_or_huge_json_is_a_clear_error(tmp_path, tiny_zip):
    deep = rewrite(tiny_zip, tmp_path / 'deep.zip',
                   {'train_info.json': b'[' * 20000 + b']' * 20000}, forge=True)
    with pytest.raises(CheckpointFormatError, match='train_info.json .* is not valid JSON'):
        DeployedModel(deep).train_info()
    manifest = json.loads(members_of(tiny_zip)['manifest.json'])
    text = json.dumps({**manifest, 'initkw': 'DEEP'}).replace('"DEEP"', '[' * 20000 + ']' * 20000)
    deep = rewrite(tiny_zip, tmp_path / 'deep_manifest.zip', {'manifest.json': text.encode()})
    with pytest.raises(CheckpointFormatError, match='manifest .* is not valid JSON'):
        DeployedModel(deep)
    # a train_info of 64 MiB in 64 KiB (more than deflate data reaches):
    # refused from the sizes, before anything is inflated
    bomb = rewrite(tiny_zip, tmp_path / 'bomb.zip',
                   {'train_info.json': b' ' * (64 * 2 ** 20)}, forge=True)
    assert os.path.getsize(bomb) < 2 ** 17
    with pytest.raises(IntegrityError, match='declares 67108864 bytes in .* zip bomb'):
        DeployedModel(bomb).train_info()


@pytest.mark.parametrize('field, value, match', [
    (24, 2 ** 32 - 1, 'declares 4294967295 bytes in'),  # size
    (20, 2 ** 32 - 1, 'declares'),  # compressed size
    (10, 99, 'compression method 99'),
    (10, zipfile.ZIP_BZIP2, 'compression method 12'),
    (8, 1, 'is encrypted'),
])
def test_impossible_central_directory_entries(tmp_path, tiny_zip, field, value, match):
    bad = tmp_path / 'bad.zip'
    bad.write_bytes(tiny_zip.read_bytes())
    patch_central_entry(bad, 'tiny/weights.safetensors', field, value,
                        size=2 if field in (8, 10) else 4)
    with pytest.raises(LiberatorError, match=match):
        DeployedModel(bad).load_model()


def test_deflated_member_declaring_an_impossible_ratio(tmp_path, tiny_zip):
    bad = tmp_path / 'bad.zip'
    bad.write_bytes(tiny_zip.read_bytes())
    patch_central_entry(bad, 'tiny/train_info.json', 24, 2 ** 32 - 1)
    with pytest.raises(IntegrityError, match="'train_info.json' declares 4294967295 bytes in .* zip bomb"):
        DeployedModel(bad)


def test_unlisted_duplicate_and_outside_members_are_refused(tmp_path, tiny_zip):
    extra = rewrite(tiny_zip, tmp_path / 'extra.zip', add=[('tiny/sub/evil.py', b'x')])
    with pytest.raises(IntegrityError, match=r"unlisted members \['sub/evil.py'\]"):
        DeployedModel(extra).verify()
    with pytest.warns(UserWarning, match='Duplicate name'):
        dup = rewrite(tiny_zip, tmp_path / 'dup.zip', add=[('tiny/train_info.json', b'{}')])
    with pytest.raises(IntegrityError, match="holds the member 'train_info.json' twice"):
        DeployedModel(dup)
    outside = rewrite(tiny_zip, tmp_path / 'outside.zip', add=[('evil.py', b'x')])
    with pytest.raises(CheckpointFormatError, match='a deploy zip holds exactly one folder'):
        DeployedModel(outside)
    assert main(['verify', str(outside)]) == 1


def test_inspect_escapes_terminal_control_characters(tmp_path, tiny_zip, capsys):
    bad = rewrite(tiny_zip, tmp_path / 'esc.zip', add=[('tiny/a\x1b[2K\rb.txt', b'x')])
    bad = with_manifest(bad, tmp_path / 'esc2.zip',
                        lambda m: m['model'].update({'class': 'Net\x1b]0;owned\x07\u202e'}))
    assert main(['inspect', str(bad)]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in '\x1b\r\x07\u202e')
    assert 'a\\x1b[2K\\rb.txt' in out and 'Net\\x1b]0;owned\\x07\\u202e' in out


def test_legacy_zip_whose_code_does_not_parse(tmp_path, capsys):
    import io
    buf = io.BytesIO()
    torch.save({'w': torch.ones(1)}, buf)
    fpath = tmp_path / 'old.zip'
    with zipfile.ZipFile(fpath, 'w') as zfile:
        zfile.writestr('old/deploy_snapshot.pt', buf.getvalue())
        zfile.writestr('old/Net_0123456789abcdef.py', 'def broken(:\n')
    assert DeployedModel(fpath).info['requires'] is None
    assert main(['inspect', str(fpath)]) == 0
    assert 'torch_liberator 0.2' in capsys.readouterr().out


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / 'pipe.zip'
    os.mkfifo(fifo)
    with pytest.raises(CheckpointFormatError, match='not a regular file'):
        DeployedModel(fifo)


# --- races, crashes and the atomic writer --------------------------------------

def test_a_reader_never_sees_a_redeploy_halfway(tmp_path):
    # load_model reads everything through one open handle; a redeploy
    # replaces the file (a new inode), so each load sees one whole file
    fpath = tmp_path / 'race.zip'
    models = [Tiny(), Tiny()]
    with torch.no_grad():
        models[1].w.add_(10)
    deploy(models[0], fpath, verbose=0)
    errors, stop = [], threading.Event()

    def write():
        for idx in range(40):
            deploy(models[idx % 2], fpath, verbose=0)
        stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    loads = 0
    while not stop.is_set() or loads == 0:
        try:
            got = DeployedModel(fpath).load_model().w
        except LiberatorError as err:
            errors.append(err)
            continue
        assert any(torch.equal(got, m.w) for m in models)
        loads += 1
    writer.join()
    assert errors == [] and loads > 0


def test_redeploy_keeps_the_file_mode_and_removes_stale_parts(tmp_path):
    fpath = Path(deploy(Tiny(), tmp_path / 'mode.zip', verbose=0))
    os.chmod(fpath, 0o600)
    stale = tmp_path / '.mode.zip.999999999-0a0b.tl.part'  # pid of a dead writer
    stale.write_bytes(b'x' * 100)
    alive = tmp_path / f'.mode.zip.{os.getpid()}-0c0d.tl.part'  # a writer still at work
    alive.write_bytes(b'x')
    deploy(Tiny(), fpath, verbose=0)
    assert stat.S_IMODE(os.stat(fpath).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, 'mode.zip'])
    alive.unlink()
    stale.write_bytes(b'x')
    DeployedModel(fpath).verify()
    assert os.listdir(tmp_path) == ['mode.zip']


def test_writing_over_a_directory_fails_and_keeps_it(tmp_path, tiny_zip):
    target = tmp_path / 'tiny_weights.safetensors'
    target.mkdir()
    (target / 'keep.txt').write_text('mine')
    with pytest.raises(DeployError, match='cannot write .*tiny_weights.safetensors'):
        DeployedModel(tiny_zip).extract_snapshot(tmp_path)
    assert (target / 'keep.txt').read_text() == 'mine'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['tiny_weights.safetensors']


_SIGTERM_CHILD = r'''
import sys, time, zipfile
import torch
from torch_liberator.deployer import deploy
sys.path.insert(0, sys.argv[2])
from test_deployfile import Tiny
real = zipfile.ZipFile.writestr
def slow(self, info, data, *args, **kwargs):
    real(self, info, data, *args, **kwargs)
    print('writing', flush=True)
    time.sleep(60)
zipfile.ZipFile.writestr = slow
deploy(Tiny(), sys.argv[1], verbose=0)
'''


def test_sigterm_during_a_deploy_leaves_no_temp_file(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.Popen(
        [sys.executable, '-c', _SIGTERM_CHILD, str(tmp_path / 'term.zip'), str(REPO / 'tests')],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == 'writing', proc.stderr.read()
        assert any(p.name.endswith('.tl.part') for p in tmp_path.iterdir())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert os.listdir(tmp_path) == []


def test_reading_a_file_runs_none_of_its_code(tmp_path, tiny_zip, capsys):
    # even with hashes that match (a file rewritten whole), info, inspect,
    # train_info, verify and extract_snapshot run nothing; only loading the
    # model runs its code, as importing a package would
    marker = tmp_path / 'marker'
    manifest = json.loads(members_of(tiny_zip)['manifest.json'])
    evil = f'open({str(marker)!r}, "w").write("ran")\n'.encode()
    forged = rewrite(tiny_zip, tmp_path / 'forged.zip', {manifest['model']['code']: evil},
                     forge=True)
    loader = DeployedModel(forged)
    assert loader.info['manifest']['model']['class'] == 'Tiny'
    assert loader.train_info() == {'epoch': 1}
    loader.verify()
    loader.extract_snapshot(tmp_path / 'out')
    read_deploy_state_dict(forged)
    assert main(['inspect', str(forged)]) == 0
    assert not marker.exists()
    with pytest.raises(DeployError, match='defines no get_model_cls'):
        loader.load_model()
    assert marker.read_text() == 'ran'
