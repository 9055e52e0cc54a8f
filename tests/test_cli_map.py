"""
Tests of ``python -m torch_liberator map SRC DST``: the load plan of a
checkpoint into another checkpoint's keys or into a MODULE:FACTORY model.
"""
import json

import pytest
import torch

from conftest import Embedder, make_convbn, make_mlp
from torch_liberator.cli import main


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('torch_liberator: error: '), err
    return err[0]


@pytest.fixture
def ckpts(tmp_path):
    src = tmp_path / 'src.pt'
    dst = tmp_path / 'dst.pt'
    torch.save({'state_dict': make_mlp(seed=0).state_dict()}, src)
    torch.save(Embedder(make_mlp(seed=1)).state_dict(), dst)
    return src, dst


def test_map_two_checkpoints(ckpts, capsys):
    src, dst = ckpts
    assert main(['map', str(src), str(dst), '--association', 'isomorphism']) == 0
    assert capsys.readouterr().out.splitlines() == [
        'checkpoint -> model                                action  n',
        '{0,2}.{weight,bias} -> module.{0,2}.{weight,bias}  copy    4',
        '- -> extra.{weight,bias}                           unset   2',
        'copy 4, shove 0, skip 0 of 4 checkpoint tensors',
        "4 of 6 model tensors set, 2 unset; association='isomorphism'",
    ]


def test_map_json_is_the_plan(ckpts, capsys):
    src, dst = ckpts
    assert main(['map', str(src), str(dst), '--json', '--exclude', '2.*',
                 '--association', 'embedding']) == 0
    data = json.loads(capsys.readouterr().out)
    assert data['association'] == 'embedding'
    assert data['counts'] == {'copy': 2, 'shove': 0, 'skip': 2}
    assert [(e['src'], e['dst'], e['action']) for e in data['entries']] == [
        ('0.weight', 'module.0.weight', 'copy'),
        ('0.bias', 'module.0.bias', 'copy'),
        ('2.weight', 'module.2.weight', 'skip'),
        ('2.bias', 'module.2.bias', 'skip')]
    assert data['entries'][2]['reason'] == "excluded by exclude='2.*'"
    assert data['self_unset'] == ['module.2.weight', 'module.2.bias',
                                  'extra.weight', 'extra.bias']


def test_map_rename_and_mangle(ckpts, capsys):
    src, dst = ckpts
    assert main(['map', str(src), str(dst), '--rename',
                 '{"2.bias": "extra.bias"}', '--mangle', 'false', '--json']) == 0
    data = json.loads(capsys.readouterr().out)
    entry = data['entries'][3]
    assert (entry['src'], entry['dst'], entry['action'], entry['given']) == (
        '2.bias', 'extra.bias', 'skip', True)
    assert entry['reason'] == (
        "shape (2,) != model 'extra.bias' (1,) and the policy is 'skip'")


def test_map_into_a_factory_model(tmp_path, capsys):
    pytest.importorskip('torchvision')
    fpath = tmp_path / 'r18.pt'
    import torchvision
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), fpath)
    assert main(['map', str(fpath), 'torchvision.models:resnet18',
                 '--association', 'isomorphism']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ['copy 122, shove 0, skip 0 of 122 checkpoint tensors',
                        "122 of 122 model tensors set, 0 unset; "
                        "association='isomorphism'"]
    assert main(['map', str(fpath), 'torchvision.models.detection:fasterrcnn_resnet50_fpn',
                 '--json']) == 0
    data = json.loads(capsys.readouterr().out)
    assert data['n_model_keys'] > 300


def test_map_factory_as_source_plans_without_data(tmp_path, capsys):
    dst = tmp_path / 'dst.safetensors'
    from safetensors.torch import save_file
    save_file(make_convbn(seed=0).state_dict(), str(dst))
    assert main(['map', 'torch.nn:Identity', str(dst), '--json']) == 0
    data = json.loads(capsys.readouterr().out)
    assert data['entries'] == [] and len(data['self_unset']) == 9


@pytest.mark.parametrize('args, match', [
    (['map', 'missing.pt', 'torch.nn:Linear'], 'missing.pt'),
    (['map', 'no_such_module_xyz:net', 'x.pt'], "cannot import module 'no_such_module_xyz'"),
    (['map', 'SRC', 'torch.nn:NoSuchThing'], "module 'torch.nn' has no 'NoSuchThing'"),
    (['map', 'SRC', 'DST', '--association', 'isomorphsm'], "association='isomorphsm' is not one of"),
    (['map', 'SRC', 'DST', '--rename', '{bad'], '--rename is not valid JSON'),
    (['map', 'SRC', 'DST', '--rename', '{"^zz": ""}'], "rename rule '^zz' matches no checkpoint key"),
    (['map', 'SRC', 'DST', '--include', 'nothing.*'], "include pattern 'nothing.*' matches no"),
    (['map', 'SRC', 'DST', '--mangle', 'squash'], "mangle='squash' is not a policy"),
])
def test_map_errors_are_one_line(args, match, ckpts, capsys):
    src, dst = ckpts
    args = [str(src) if a == 'SRC' else str(dst) if a == 'DST' else a
            for a in args]
    assert main(args) == 1
    assert match in one_error_line(capsys)


def test_map_help(capsys):
    assert main(['map', '--help']) == 0
    out = capsys.readouterr().out
    assert 'usage:' in out and 'MODULE:FACTORY' in out


def test_map_mangle_rules_as_json(tmp_path, capsys):
    src, dst = tmp_path / 'a.pt', tmp_path / 'b.pt'
    torch.save(torch.nn.Conv2d(3, 4, 7).state_dict(), src)
    torch.save(torch.nn.Conv2d(3, 4, 3).state_dict(), dst)
    assert main(['map', str(src), str(dst), '--json', '--association', 'strict',
                 '--mangle', '{"weight": "center"}']) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(e['src'], e['action'], e['policy'], e['src_shape'], e['dst_shape'])
            for e in data['entries']] == [
        ('weight', 'shove', 'center', [4, 3, 7, 7], [4, 3, 3, 3]),
        ('bias', 'copy', None, [4], [4])]
    assert main(['map', str(src), str(dst), '--mangle', '{"nope.*": "center"}']) == 1
    assert "mangle pattern 'nope.*' matches no model key" in one_error_line(capsys)


def test_map_in_a_real_process(ckpts):
    import os
    import subprocess
    import sys
    from pathlib import Path
    src, dst = ckpts
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    proc = subprocess.run(
        [sys.executable, '-m', 'torch_liberator', 'map', str(src), str(dst),
         '--json'], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['counts'] == {'copy': 4, 'shove': 0, 'skip': 0}
    proc = subprocess.run(
        [sys.executable, '-m', 'torch_liberator', 'map', str(src), 'nope.pt'],
        capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stdout == ''
    assert proc.stderr.startswith('torch_liberator: error: ') and 'nope.pt' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
