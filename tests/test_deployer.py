"""
Tests for torch_liberator.deployer and the deploy file format: round trips,
reproducibility, integrity checks before any code runs, temp-dir hygiene,
module naming and pickling, ``__main__`` classes, 0.2 zips.
"""
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import VersionedNet
import torch_liberator
from torch_liberator.deployer import DeployedModel, deploy
from torch_liberator.deployer import read_deploy_state_dict
from torch_liberator.errors import DeployError, IntegrityError

REPO = Path(__file__).resolve().parent.parent


class TiedNet(torch.nn.Module):
    def __init__(self, dim=3):
        super().__init__()
        self.dim = dim
        self.enc = torch.nn.Linear(dim, dim, bias=False)
        self.dec = torch.nn.Linear(dim, dim, bias=False)
        self.dec.weight = self.enc.weight

    def forward(self, x):
        return self.dec(self.enc(x))


class BufferNet(torch.nn.Module):
    """Has a non-persistent buffer, so it cannot be built on meta."""

    def __init__(self, dim=3):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)
        self.register_buffer('scale', torch.full((dim,), 2.0), persistent=False)

    def forward(self, x):
        return self.lin(x) * self.scale


class AttrTensorNet(torch.nn.Module):
    """Keeps a tensor as a plain attribute (neither parameter nor buffer)."""

    def __init__(self, dim=3):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)
        self.offset = torch.arange(dim, dtype=torch.float32)
        self.extras = [torch.ones(dim)]

    def forward(self, x):
        return self.lin(x) + self.offset + self.extras[0]


class ConvBN(torch.nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.width = width
        self.conv = torch.nn.Conv2d(3, width, 3)
        self.bn = torch.nn.BatchNorm2d(width)

    def forward(self, x):
        return self.bn(self.conv(x))


@pytest.fixture
def isolated_tmp(tmp_path, monkeypatch):
    """Point the temp dir at an empty folder so leaks can be listed exactly."""
    tmpdir = tmp_path / 'tmpdir'
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(tmpdir))
    monkeypatch.setenv('TMPDIR', str(tmpdir))
    return tmpdir


def rewrite_zip(src, dst, replace=(), add=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for info in zin.infolist():
            data = dict(replace).get(info.filename, zin.read(info))
            zout.writestr(info.filename, data)
        for name, data in add:
            zout.writestr(name, data)
    return dst


def test_readme_alexnet_example(tmp_path, monkeypatch, isolated_tmp, capsys, torchvision):
    # The published README's example, as written (weights=None through the
    # legacy pretrained=False flag), in a temporary working directory.
    models = torchvision.models
    from torch_liberator.deployer import DeployedModel  # NOQA: F811
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        model = models.alexnet(pretrained=False)
    initkw = dict(num_classes=1000)
    model._initkw = initkw
    before = sorted(os.listdir(isolated_tmp))  # torchvision's import may add a cache dir
    zip_fpath = torch_liberator.deploy(model, 'test-deploy.zip')
    assert '[DEPLOYER] Deployed zipfpath=test-deploy.zip' in capsys.readouterr().out
    loader = DeployedModel(zip_fpath)
    loaded = loader.load_model()
    x = torch.rand(2, 3, 224, 224)
    model.eval()
    loaded.eval()
    assert torch.equal(loaded(x), model(x))
    assert type(loaded).__name__ == 'AlexNet' and type(loaded) is not type(model)
    assert sorted(os.listdir(tmp_path)) == ['test-deploy.zip', 'tmpdir']
    assert sorted(os.listdir(isolated_tmp)) == before


def test_local_package_loads_where_it_is_not_importable(tmp_path, monkeypatch):
    from test_exporter import PKG_FILES, write_package
    src = tmp_path / 'src'
    write_package(src, 'tl_pkg_deploy', PKG_FILES)
    monkeypatch.syspath_prepend(str(src))
    try:
        from tl_pkg_deploy.model import TinyNet
        torch.manual_seed(0)
        model = TinyNet(3, 2, hidden=5, depth=3)
        fpath = deploy(model, tmp_path / 'tiny.zip', export_modules=['tl_pkg_deploy'], verbose=0)
    finally:
        for mod in [m for m in sys.modules if m.startswith('tl_pkg_deploy')]:
            del sys.modules[mod]
    manifest = DeployedModel(fpath).info['manifest']
    assert manifest['initkw'] == {'in_dim': 3, 'out_dim': 2, 'hidden': 5, 'depth': 3}
    assert manifest['initkw_source'] == 'inferred'
    assert list(manifest['requires']) == ['torch']
    x = torch.rand(4, 3)
    torch.save({'x': x, 'y': model(x).detach()}, tmp_path / 'io.pt')
    script = textwrap.dedent('''
        import sys, torch
        from torch_liberator.deployer import DeployedModel
        try:
            import tl_pkg_deploy
        except ImportError:
            pass
        else:
            sys.exit('the package must not be importable here')
        io = torch.load(sys.argv[2])
        model = DeployedModel(sys.argv[1]).load_model()
        sys.exit(0 if torch.equal(model(io['x']), io['y']) else 'outputs differ')
    ''')
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, '-c', script, str(fpath), str(tmp_path / 'io.pt')],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_resnet18_block_class_and_identical_redeploy(tmp_path, isolated_tmp, torchvision):
    from torchvision.models.resnet import BasicBlock, ResNet
    initkw = dict(block=BasicBlock, layers=[2, 2, 2, 2], num_classes=10)
    torch.manual_seed(0)
    model = ResNet(**initkw).eval()
    before = sorted(os.listdir(isolated_tmp))
    first = deploy(model, tmp_path / 'r18.zip', initkw=initkw, verbose=0)
    data = Path(first).read_bytes()
    second = deploy(model, tmp_path / 'r18.zip', initkw=initkw, verbose=0)
    assert Path(second).read_bytes() == data
    loaded = DeployedModel(second).load_model().eval()
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(loaded(x), model(x))
    manifest = DeployedModel(second).info['manifest']
    assert manifest['initkw']['block'] == {'__ref__': 'torchvision.models.resnet:BasicBlock', 'exported': True}
    assert sorted(manifest['members']) == sorted(
        [manifest['model']['code'], 'weights.safetensors'])
    for entry in manifest['members'].values():
        assert len(entry['sha256']) == 64 and entry['size'] > 0
    assert set(manifest['versions']) == {'python', 'torch', 'torch_liberator'}
    with zipfile.ZipFile(second) as zfile:
        assert zfile.testzip() is None  # every CRC-32 is right
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zfile.infolist())
    assert sorted(os.listdir(isolated_tmp)) == before


def test_tampered_code_never_runs(tmp_path):
    from torch_liberator.cli import main
    fpath = deploy(torch.nn.Linear(2, 2), tmp_path / 'ok.zip', verbose=0)
    code_member = 'ok/' + DeployedModel(fpath).info['manifest']['model']['code']
    marker = tmp_path / 'marker'
    evil = f'open({str(marker)!r}, "w").write("ran")\n'.encode()
    with zipfile.ZipFile(fpath) as zfile:
        original = zfile.read(code_member)
    # same size (only the hash can tell) and larger (the size tells first)
    same_size = evil + b'#' * (len(original) - len(evil))
    appended = original + b'\n' + evil
    for tampered, match in ((same_size, 'has sha256 .* but the manifest records'),
                            (appended, 'bytes but the manifest records')):
        bad = rewrite_zip(fpath, tmp_path / 'bad.zip', replace={code_member: tampered})
        loader = DeployedModel(bad)
        for call in (loader.load_model, loader.model_definition,
                     lambda: read_deploy_state_dict(bad)):
            with pytest.raises(IntegrityError, match=match + '.*Nothing in it was executed'):
                call()
        assert main(['inspect', str(bad)]) == 0
        assert loader.info['members']
    assert not marker.exists()
    exec(compile(same_size, 'check', 'exec'), {})  # the tampered code does run if executed
    assert marker.exists()


def test_tampered_weights_and_extra_members_are_refused(tmp_path):
    fpath = deploy(torch.nn.Linear(2, 2), tmp_path / 'ok.zip', verbose=0)
    with zipfile.ZipFile(fpath) as zfile:
        weights = bytearray(zfile.read('ok/weights.safetensors'))
    weights[-1] ^= 1
    bad = rewrite_zip(fpath, tmp_path / 'w.zip', replace={'ok/weights.safetensors': bytes(weights)})
    with pytest.raises(IntegrityError, match="member 'weights.safetensors'"):
        DeployedModel(bad).load_model()
    extra = rewrite_zip(fpath, tmp_path / 'x.zip', add=[('ok/extra.py', b'print(1)')])
    with pytest.raises(IntegrityError, match=r"unlisted members \['extra.py'\]"):
        DeployedModel(extra).load_model()


def test_same_path_redeploy_in_one_process(tmp_path):
    # over an existing file the new one is os.replace'd: each load sees one
    # whole file, and nothing else is left in the folder
    fpath = tmp_path / 'same.zip'
    x = torch.rand(1, 4)
    torch.manual_seed(0)
    first = torch.nn.Linear(4, 2)
    deploy(first, fpath, verbose=0)
    assert torch.equal(DeployedModel(fpath).load_model()(x), first(x))
    second = torch.nn.Linear(4, 2)
    deploy(second, fpath, verbose=0)
    assert torch.equal(DeployedModel(fpath).load_model()(x), second(x))
    conv = torch.nn.Conv1d(4, 2, 1)
    deploy(conv, fpath, verbose=0)
    loaded = DeployedModel(fpath).load_model()
    assert type(loaded).__name__ == 'Conv1d'
    assert torch.equal(loaded(x[..., None]), conv(x[..., None]))
    assert os.listdir(tmp_path) == ['same.zip']


def test_strict_load_adopts_the_stored_tensors(tmp_path, monkeypatch):
    # the fast path: built on meta, then the loaded tensors are assigned
    fpath = deploy(ConvBN(4), tmp_path / 's.zip', verbose=0)
    model = ConvBN(4)
    deploy(model, fpath, verbose=0)
    calls = []
    real = torch.nn.Module.load_state_dict

    def spy(self, state, *args, **kwargs):
        calls.append((type(self).__name__, kwargs.get('assign')))
        return real(self, state, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, 'load_state_dict', spy)
    loaded = DeployedModel(fpath).load_model()
    assert calls == [('ConvBN', True)]
    assert not any(t.is_meta for t in loaded.state_dict().values())
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(loaded.eval()(x), model.eval()(x))


def test_loaded_model_pickles_and_torch_saves(tmp_path):
    model = TiedNet(3)
    fpath = deploy(model, tmp_path / 'tied.zip', verbose=0)
    loaded = DeployedModel(fpath).load_model()
    assert loaded.dec.weight is loaded.enc.weight
    modname = type(loaded).__module__
    assert modname.isidentifier() and modname in sys.modules
    x = torch.rand(2, 3)
    again = pickle.loads(pickle.dumps(loaded))
    assert torch.equal(again(x), model(x))
    buf = io.BytesIO()
    torch.save(loaded, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf, weights_only=False)(x), model(x))


@pytest.mark.parametrize('cls', [BufferNet, AttrTensorNet])
def test_models_that_cannot_be_built_on_meta(tmp_path, cls):
    model = cls(3)
    loaded = DeployedModel(deploy(model, tmp_path / 'buf.zip', verbose=0)).load_model()
    x = torch.rand(2, 3)
    assert torch.equal(loaded(x), model(x))


def test_main_script_class_is_not_rerun(tmp_path):
    marker = tmp_path / 'imports.log'
    script = tmp_path / 'train_script.py'
    script.write_text(textwrap.dedent(f'''
        import torch
        import torch_liberator

        with open({str(marker)!r}, 'a') as file:
            file.write('ran\\n')

        SIZE = 3


        class ScriptNet(torch.nn.Module):
            def __init__(self, width=SIZE):
                super().__init__()
                self.width = width
                self.lin = torch.nn.Linear(width, 2)

            def forward(self, x):
                return self.lin(x)


        if __name__ == '__main__':
            torch.manual_seed(0)
            model = ScriptNet(4)
            torch_liberator.deploy(model, {str(tmp_path / 'script.zip')!r}, verbose=0)
            x = torch.ones(1, 4)
            torch.save({{'x': x, 'y': model(x).detach()}}, {str(tmp_path / 'io.pt')!r})
    '''))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == 'ran\n'
    loader = DeployedModel(tmp_path / 'script.zip')
    assert loader.info['manifest']['model']['origin'] == '__main__.ScriptNet'
    data = torch.load(tmp_path / 'io.pt')
    assert torch.equal(loader.load_model()(data['x']), data['y'])
    assert marker.read_text() == 'ran\n'


def test_legacy_zip_loads_with_a_warning(tmp_path):
    from torch_liberator.deployer._export import build_model_code
    model = torch.nn.Linear(3, 2)
    code = build_model_code(model)
    buf = io.BytesIO()
    torch.save({'model_state_dict': model.state_dict(), 'epoch': 1}, buf)
    fpath = tmp_path / 'old.zip'
    with zipfile.ZipFile(fpath, 'w') as zfile:
        zfile.writestr('old/deploy_snapshot.pt', buf.getvalue())
        zfile.writestr('old/Linear_0123456789abcdef.py', code.text)
        zfile.writestr('old/train_info.json', '{"epoch": 1}')
    loader = DeployedModel(fpath)
    assert loader.info['legacy'] and loader.info['manifest'] is None
    assert loader.train_info() == {'epoch': 1}
    with pytest.warns(UserWarning, match='cannot be verified'):
        loaded = loader.load_model()
    x = torch.rand(1, 3)
    assert torch.equal(loaded(x), model(x))


def test_unzipped_directory_and_extract_snapshot(tmp_path, isolated_tmp):
    from safetensors.torch import load_file
    model = torch.nn.Linear(3, 2)
    fpath = deploy(model, tmp_path / 'unz.zip', train_info={'lr': 0.5}, verbose=0)
    with zipfile.ZipFile(fpath) as zfile:
        zfile.extractall(tmp_path / 'out')
    for path in (tmp_path / 'out', tmp_path / 'out' / 'unz'):
        loaded = DeployedModel(path).load_model()
        assert torch.equal(loaded.weight, model.weight)
    loader = DeployedModel(fpath)
    assert loader.train_info() == {'lr': 0.5}
    snap = loader.extract_snapshot()
    assert snap == str(tmp_path / 'unz_weights.safetensors')
    assert torch.equal(load_file(snap)['weight'], model.weight)
    assert os.listdir(isolated_tmp) == []


def test_partial_load_reports(tmp_path):
    fpath = deploy(torch.nn.Linear(3, 2), tmp_path / 'p.zip', verbose=0)
    loader = DeployedModel(fpath)
    model = loader.load_model(strict=False, verbose=0)
    assert sorted(loader.load_info['seen']['full_add']) == ['bias', 'weight']
    assert isinstance(model, torch.nn.Module)


def test_pretrained_reads_a_deploy_zip(tmp_path):
    from torch_liberator import initializer
    source = torch.nn.Linear(3, 2)
    fpath = deploy(source, tmp_path / 'pre.zip', verbose=0)
    target = torch.nn.Sequential(torch.nn.Linear(3, 2))
    info = initializer.Pretrained(fpath, verbose=0).forward(target)
    assert len(info['seen']['full_add']) == 2
    assert torch.equal(target[0].weight, source.weight)


def test_wrong_initkw_is_caught_at_deploy(tmp_path):
    model = torch.nn.Linear(3, 2)
    model._initkw = {'in_features': 3, 'out_features': 5}
    with pytest.raises(DeployError, match=r"builds a Linear whose state dict differs from the model's \(rebuilt: "
                       r"shapes: weight \(5, 3\) instead of \(2, 3\), bias \(5,\) instead of \(2,\)\)"):
        deploy(model, tmp_path / 'bad.zip', verbose=0)
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_old_file_and_no_partial(tmp_path, monkeypatch, isolated_tmp):
    fpath = deploy(torch.nn.Linear(3, 2), tmp_path / 'keep.zip', verbose=0)
    before = Path(fpath).read_bytes()
    real = zipfile.ZipFile.writestr

    def broken_writestr(self, info, data, *args, **kwargs):
        real(self, info, data[:10], *args, **kwargs)
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(zipfile.ZipFile, 'writestr', broken_writestr)
    with pytest.raises(DeployError, match='cannot write .*keep.zip.*No space left'):
        deploy(torch.nn.Linear(3, 2), fpath, verbose=0)
    assert sorted(os.listdir(tmp_path)) == ['keep.zip', 'tmpdir']
    assert Path(fpath).read_bytes() == before
    assert os.listdir(isolated_tmp) == []


def test_directory_destination_and_train_info_file(tmp_path):
    (tmp_path / 'info.json').write_text(json.dumps({'epochs': 3}))
    out = tmp_path / 'out'
    out.mkdir()
    fpath = deploy(torch.nn.Linear(1, 1), out, train_info=tmp_path / 'info.json', verbose=0)
    assert Path(fpath).parent == out and Path(fpath).name.startswith('deploy_Linear_')
    assert DeployedModel(fpath).train_info() == {'epochs': 3}
    with pytest.raises(DeployError, match='must end with .zip'):
        deploy(torch.nn.Linear(1, 1), tmp_path / 'x.tar', verbose=0)
    with pytest.raises(DeployError, match='JSON-serializable'):
        deploy(torch.nn.Linear(1, 1), tmp_path / 'y.zip', train_info={'x': object()}, verbose=0)


def test_redeploy_of_a_loaded_model(tmp_path):
    model = torch.nn.Linear(2, 2)
    loaded = DeployedModel(deploy(model, tmp_path / 'a.zip', verbose=0)).load_model()
    again = DeployedModel(deploy(loaded, tmp_path / 'b.zip', verbose=0)).load_model()
    assert torch.equal(again.weight, model.weight)


def test_sequential_is_refused_quickly_and_clearly(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(DeployError, match=r'takes positional \*args .* deploy a model class of your own'):
        deploy(model, tmp_path / 'seq.zip', verbose=0)
    assert os.listdir(tmp_path) == []


def test_module_versions_survive_the_round_trip(tmp_path):
    model = VersionedNet(2)
    fpath = deploy(model, tmp_path / 'ver.zip', verbose=0)
    state = read_deploy_state_dict(fpath)
    assert state._metadata[''] == {'version': 2}
    for strict in (True, False):
        loaded = DeployedModel(fpath).load_model(strict=strict, verbose=0)
        assert torch.equal(loaded.lin.weight, model.lin.weight)


def test_inferred_initkw_that_misses_names_the_defaulted_arguments(tmp_path, torchvision):
    from torchvision.models import squeezenet1_1
    model = squeezenet1_1(weights=None)  # version='1_1' is not stored
    with pytest.raises(DeployError, match=r"does not store \['version', 'dropout'\], so their defaults were used"):
        deploy(model, tmp_path / 'sq.zip', verbose=0)
    model._initkw = {'version': '1_1'}
    fpath = deploy(model, tmp_path / 'sq.zip', verbose=0)
    assert DeployedModel(fpath).info['manifest']['initkw_source'] == '_initkw'


def test_published_02_deploy_api(tmp_path, capsys):
    # the 0.2 names and forms: submodules as package attributes, deploy
    # positionally returning a str, extract_snapshot(extract_dpath=...)
    assert torch_liberator.deployer.DeployedModel is DeployedModel
    assert torch_liberator.exporter.export_model_code is torch_liberator.export_model_code
    model = torch.nn.Linear(2, 3)
    fpath = torch_liberator.deploy(model, str(tmp_path / 'old-style.zip'))
    assert fpath == str(tmp_path / 'old-style.zip')
    assert capsys.readouterr().out == f'[DEPLOYER] Deployed zipfpath={fpath}\n'
    out = tmp_path / 'snap'
    snap = DeployedModel(fpath).extract_snapshot(extract_dpath=str(out))
    assert snap == str(out / 'old-style_weights.safetensors')
    from safetensors.torch import load_file
    assert torch.equal(load_file(snap)['weight'], model.weight)
    code = torch_liberator.export_model_code(str(tmp_path), model)
    assert Path(code).parent == tmp_path


def test_a_factory_model_with_an_odd_class_name_gets_a_plain_member_name(tmp_path):
    from conftest import make_odd_name
    model = make_odd_name()
    fpath = deploy(model, tmp_path / 'odd.zip', factory='conftest:make_odd_name', verbose=0)
    info = DeployedModel(fpath).info
    assert info['code'].startswith('odd_name_') and '/' not in info['code']
    x = torch.rand(3, 2)
    assert torch.equal(DeployedModel(fpath).load_model()(x), model(x))
