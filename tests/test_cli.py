"""
Tests for the ``python -m torch_liberator`` command line (torch_liberator.cli).
"""
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from torch_liberator.cli import main
from torch_liberator.deployer import DeployedModel, deploy
from torch_liberator.exporter import export_model_code

REPO = Path(__file__).resolve().parent.parent


class Gated(torch.nn.Module):
    def __init__(self, width=3):
        super().__init__()
        self.width = width
        self.lin = torch.nn.Linear(width, width)

    def forward(self, x):
        return torch.tanh(self.lin(x))


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('torch_liberator: error: '), err
    return err[0]


def test_published_flag_form(tmp_path, capsys):
    model = torch.nn.Linear(3, 2)
    code = export_model_code(tmp_path, model)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'w.pt')
    (tmp_path / 'info.json').write_text(json.dumps({'epoch': 7}))
    dst = tmp_path / 'my_custom_deployfile.zip'
    assert main(['--model', str(code), '--weights', str(tmp_path / 'w.pt'),
                 '--info', str(tmp_path / 'info.json'), '--dst', str(dst)]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    loader = DeployedModel(dst)
    assert loader.train_info() == {'epoch': 7}
    assert loader.info['manifest']['initkw'] == {'in_features': 3, 'out_features': 2}
    assert torch.equal(loader.load_model().weight, model.weight)
    # a directory destination gets a generated name
    out = tmp_path / 'out'
    out.mkdir()
    assert main(['--model', str(code), '--weights', str(tmp_path / 'w.pt'), '--dst', str(out)]) == 0
    made = Path(capsys.readouterr().out.strip())
    assert made.parent == out and made.suffix == '.zip'


def test_published_form_rejects_a_file_without_the_contract(tmp_path, capsys):
    (tmp_path / 'plain.py').write_text('import torch\n')
    torch.save(torch.nn.Linear(1, 1).state_dict(), tmp_path / 'w.pt')
    assert main(['--model', str(tmp_path / 'plain.py'), '--weights', str(tmp_path / 'w.pt'),
                 '--dst', str(tmp_path / 'x.zip')]) == 1
    assert 'defines no get_model_cls() or get_initkw()' in one_error_line(capsys)


def test_export_subcommand(tmp_path, capsys):
    model = torch.nn.Linear(2, 3)
    torch.save(model.state_dict(), tmp_path / 'w.pt')
    dst = tmp_path / 'lin.zip'
    assert main(['export', 'torch.nn:Linear', '--initkw', '{"in_features": 2, "out_features": 3}',
                 '--weights', str(tmp_path / 'w.pt'), '--dst', str(dst)]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    assert torch.equal(DeployedModel(dst).load_model().weight, model.weight)


def test_export_from_a_file_path(tmp_path, monkeypatch, capsys):
    (tmp_path / 'mynet.py').write_text(
        'import torch\n\n\nclass Net(torch.nn.Module):\n'
        '    def __init__(self, width=2):\n'
        '        super().__init__()\n'
        '        self.width = width\n'
        '        self.lin = torch.nn.Linear(width, 1)\n')
    monkeypatch.chdir(tmp_path)
    assert main(['export', 'mynet.py:Net', '--initkw', '{"width": 3}', '--dst', 'net.zip']) == 0
    assert 'no --weights given' in capsys.readouterr().err
    loaded = DeployedModel(tmp_path / 'net.zip').load_model()
    assert loaded.lin.weight.shape == (1, 3)


@pytest.mark.parametrize('args, match', [
    (['export', 'torch.nn:Linear', '--initkw', '{bad', '--dst', 'x.zip'], '--initkw is not valid JSON'),
    (['export', 'torch.nn:Nope', '--dst', 'x.zip'], "module 'torch.nn' has no 'Nope'"),
    (['export', 'no_such_module_xyz:Net', '--dst', 'x.zip'], "cannot import module 'no_such_module_xyz'"),
    (['export', 'torch.nn:Linear', '--initkw', '{"in_features": 2}', '--dst', 'x.zip'], 'fix --initkw'),
    (['inspect', 'missing.zip'], 'does not exist'),
    (['verify', 'missing.zip'], 'does not exist'),
])
def test_errors_are_one_line(args, match, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 1
    assert match in one_error_line(capsys)


@pytest.mark.parametrize('args', [[], ['--model', 'x.py'], ['bogus-command'],
                                  ['export', 'torch.nn:Linear']])
def test_usage_errors_exit_2(args, capsys):
    assert main(args) == 2
    assert 'usage:' in capsys.readouterr().err


@pytest.mark.parametrize('args', [['--help'], ['export', '--help'], ['inspect', '--help'],
                                  ['verify', '--help'], ['demo', '--help']])
def test_help_everywhere(args, capsys):
    assert main(args) == 0
    assert 'usage:' in capsys.readouterr().out


def test_inspect_and_verify(tmp_path, capsys):
    fpath = deploy(torch.nn.Linear(2, 2), tmp_path / 'v.zip', train_info={'a': 1}, verbose=0)
    assert main(['inspect', str(fpath)]) == 0
    out = capsys.readouterr().out
    assert 'model:       Linear (from torch.nn.modules.linear.Linear)' in out
    assert 'initkw:      {"in_features": 2, "out_features": 2} (inferred)' in out
    assert 'check:' not in out
    assert 'requires:    {"torch":' in out and 'train_info.json' in out
    assert main(['inspect', '--json', str(fpath)]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc['manifest']['model']['class'] == 'Linear'
    assert set(desc['members']) == {'manifest.json', 'train_info.json', 'weights.safetensors',
                                    desc['manifest']['model']['code']}
    assert main(['verify', str(fpath)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('OK: hashes match; Linear 2 tensors')
    assert out.strip().endswith('; no example inputs stored to check outputs')


def test_verify_fails_on_tampering_and_on_unloadable_code(tmp_path, capsys):
    fpath = deploy(torch.nn.Linear(2, 2), tmp_path / 'v.zip', verbose=0)
    bad = tmp_path / 'bad.zip'
    with zipfile.ZipFile(fpath) as zin, zipfile.ZipFile(bad, 'w') as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith('.safetensors'):
                data = data[:-1] + bytes([data[-1] ^ 1])
            zout.writestr(info.filename, data)
    assert main(['verify', str(bad)]) == 1
    assert 'weights.safetensors' in one_error_line(capsys)


NEEDY_HELPERS = """
import torch


def make_layer(width):
    return torch.nn.Linear(width, width)
"""

NEEDY_MODEL = """
import torch

from tl_needy_helpers import make_layer


class NeedyNet(torch.nn.Module):
    def __init__(self, width=3):
        super().__init__()
        self.width = width
        self.layer = make_layer(width)

    def forward(self, x):
        return self.layer(x)
"""


@pytest.fixture
def needy_model(tmp_path, monkeypatch):
    """A model whose code imports a local module that sits next to the zip."""
    (tmp_path / 'tl_needy_helpers.py').write_text(NEEDY_HELPERS)
    (tmp_path / 'tl_needy_model.py').write_text(NEEDY_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    from tl_needy_model import NeedyNet
    yield NeedyNet(3)
    for name in ('tl_needy_helpers', 'tl_needy_model'):
        sys.modules.pop(name, None)


def test_verify_runs_from_a_clean_folder(tmp_path, monkeypatch, capsys, needy_model):
    # the zip works only where tl_needy_helpers is importable: next to it
    # (where verify used to run) it is, anywhere else it is not
    with pytest.warns(UserWarning, match=r"imports tl_needy_helpers \(.*tl_needy_helpers.py\), which "
                      r"is not an installed package: .* pass export_modules=\['tl_needy_helpers'\]"):
        fpath = deploy(needy_model, tmp_path / 'needy.zip', verbose=0)
    assert main(['inspect', fpath]) == 0
    assert '"tl_needy_helpers": null' in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main(['verify', 'needy.zip']) == 1
    line = one_error_line(capsys)
    assert 'did not load in a fresh process' in line
    assert "No module named 'tl_needy_helpers'" in line
    # exported with its helper, it loads anywhere
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        fpath = deploy(needy_model, tmp_path / 'whole.zip', export_modules=['tl_needy_helpers'],
                       verbose=0)
    assert main(['verify', fpath]) == 0
    assert capsys.readouterr().out.startswith('OK: hashes match; NeedyNet 2 tensors loaded strictly '
                                              'in a fresh process from an empty folder')


def test_verify_never_runs_modules_planted_next_to_the_zip(tmp_path, monkeypatch, capsys):
    dl = tmp_path / 'downloads'
    dl.mkdir()
    deploy(torch.nn.Linear(2, 2), dl / 'model.zip', verbose=0)
    marker = tmp_path / 'planted.log'
    for name in ('torch', 'torch_liberator', 'safetensors', 'sitecustomize'):
        (dl / f'{name}.py').write_text(
            f'open({str(marker)!r}, "a").write({name!r} + "\\n")\n'
            f'raise SystemExit("planted {name} ran")\n')
    monkeypatch.chdir(dl)  # the zip's folder is also the current one
    assert main(['verify', 'model.zip']) == 0
    assert capsys.readouterr().out.startswith('OK: hashes match; Linear 2 tensors')
    assert not marker.exists()


def test_verify_runs_the_stored_example_check(tmp_path, capsys):
    model = Gated(3)
    fpath = deploy(model, tmp_path / 'ex.zip', example_inputs=torch.rand(2, 3), verbose=0)
    assert main(['inspect', fpath]) == 0
    assert ('check:       example inputs and outputs stored (rtol=0.0001, atol=1e-05)'
            in capsys.readouterr().out)
    assert main(['verify', fpath]) == 0
    out = capsys.readouterr().out
    assert out.startswith('OK: hashes match; Gated 2 tensors loaded strictly in a fresh process '
                          'from an empty folder; outputs on the stored example inputs match '
                          '(1 tensor(s), max abs diff 0)'), out


def test_demo_subcommand_calls_the_demo(monkeypatch):
    from torch_liberator import demo
    calls = []
    monkeypatch.setattr(demo, 'main', lambda verbose=1: calls.append(verbose) or 0)
    assert main(['demo', '--verbose', '0']) == 0
    assert calls == [0]


def test_real_subprocess(tmp_path):
    fpath = deploy(torch.nn.Linear(2, 2), tmp_path / 'sub.zip', verbose=0)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ok = subprocess.run([sys.executable, '-m', 'torch_liberator', 'inspect', str(fpath)],
                        env=env, capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0 and 'weights.safetensors' in ok.stdout, ok.stderr
    bad = subprocess.run([sys.executable, '-m', 'torch_liberator', 'verify', 'missing.zip'],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.count('\n') == 1 and 'Traceback' not in bad.stderr


def test_export_a_factory(tmp_path, capsys, torchvision):
    dst = tmp_path / 'r18.zip'
    assert main(['export', 'torchvision.models:resnet18', '--initkw', '{"num_classes": 5}',
                 '--dst', str(dst)]) == 0
    assert capsys.readouterr().out.strip() == str(dst)
    loader = DeployedModel(dst)
    assert loader.info['manifest']['model']['factory'] == 'torchvision.models:resnet18'
    loaded = loader.load_model()
    assert type(loaded) is torchvision.models.ResNet and loaded.fc.out_features == 5


def test_export_class_valued_initkw(tmp_path, capsys, torchvision):
    from torchvision.models.resnet import Bottleneck
    initkw = {'block': 'torchvision.models.resnet:Bottleneck', 'layers': [1, 1, 1, 1],
              'num_classes': 3}
    torch.manual_seed(0)
    model = torchvision.models.resnet.ResNet(Bottleneck, [1, 1, 1, 1], num_classes=3).eval()
    torch.save(model.state_dict(), tmp_path / 'w.pt')
    dst = tmp_path / 'rb.zip'
    assert main(['export', 'torchvision.models.resnet:ResNet', '--initkw', json.dumps(initkw),
                 '--weights', str(tmp_path / 'w.pt'), '--dst', str(dst)]) == 0
    loader = DeployedModel(dst)
    assert loader.info['manifest']['initkw']['block'] == {
        '__ref__': 'torchvision.models.resnet:Bottleneck', 'exported': True}
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loader.load_model().eval()(x), model(x))


def test_export_errors_that_used_to_be_tracebacks_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / 'tl_raising_module.py').write_text('raise RuntimeError("boom\\nsecond line")\n')
    assert main(['export', 'tl_raising_module:Net', '--dst', 'x.zip']) == 1
    assert one_error_line(capsys) == ("torch_liberator: error: cannot import module 'tl_raising_module': "
                                      "RuntimeError: boom second line")
    torch.save(torch.nn.Linear(3, 3).state_dict(), tmp_path / 'w.pt')
    assert main(['export', 'torch.nn:Linear', '--initkw', '{"in_features": 3, "out_features": 4}',
                 '--weights', 'w.pt', '--dst', 'x.zip']) == 1
    assert one_error_line(capsys) == (
        "torch_liberator: error: --weights 'w.pt' do not load strictly into torch.nn:Linear: "
        "shapes: weight (3, 3) instead of (4, 3), bias (3,) instead of (4,)")
    assert main(['export', 'torch.nn:Linear', '--initkw', '{"in_features": "tl_nope_xyz:Thing"}',
                 '--dst', 'x.zip']) == 1
    assert "cannot import 'tl_nope_xyz' (for 'tl_nope_xyz:Thing')" in one_error_line(capsys)
    # the 0.2 flag form: the weights must fit the model file
    code = export_model_code(tmp_path, torch.nn.Linear(2, 2))
    assert main(['--model', str(code), '--weights', 'w.pt', '--dst', 'y.zip']) == 1
    assert 'do not load strictly into Linear' in one_error_line(capsys)
    assert sorted(os.listdir(tmp_path)) == sorted([Path(code).name, 'tl_raising_module.py', 'w.pt'])

