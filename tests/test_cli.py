"""
Tests for the ``python -m torch_liberator`` command line (torch_liberator.cli).
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from torch_liberator.cli import main
from torch_liberator.deployer import DeployedModel, deploy
from torch_liberator.exporter import export_model_code

REPO = Path(__file__).resolve().parent.parent


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
    assert "defines no ['get_model_cls', 'get_initkw']" in one_error_line(capsys)


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
    (['export', 'torch.nn:Nope', '--dst', 'x.zip'], "defines no 'Nope'"),
    (['export', 'no_such_module_xyz:Net', '--dst', 'x.zip'], "cannot import 'no_such_module_xyz'"),
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
    assert 'initkw:      {"in_features": 2, "out_features": 2}' in out
    assert 'requires:    {"torch":' in out and 'train_info.json' in out
    assert main(['inspect', '--json', str(fpath)]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc['manifest']['model']['class'] == 'Linear'
    assert set(desc['members']) == {'manifest.json', 'train_info.json', 'weights.safetensors',
                                    desc['manifest']['model']['code']}
    assert main(['verify', str(fpath)]) == 0
    assert capsys.readouterr().out.startswith('OK: hashes match; Linear 2 tensors')


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
    # hashes fine, but the code needs a module the fresh process lacks
    code = tmp_path / 'Needy.py'
    code.write_text('import no_such_module_xyz\n\n\ndef get_model_cls():\n    return None\n\n\n'
                    'def get_initkw():\n    return {}\n')
    torch.save(torch.nn.Linear(1, 1).state_dict(), tmp_path / 'w.pt')
    assert main(['--model', str(code), '--weights', str(tmp_path / 'w.pt'),
                 '--dst', str(tmp_path / 'needy.zip')]) == 0
    capsys.readouterr()
    assert main(['inspect', str(tmp_path / 'needy.zip')]) == 0
    assert '"no_such_module_xyz": null' in capsys.readouterr().out
    assert main(['verify', str(tmp_path / 'needy.zip')]) == 1
    assert 'did not load in a fresh process' in one_error_line(capsys)


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
