"""Tests of torch_liberator.demo (the ``python -m torch_liberator demo`` job)."""
import torch

from conftest import make_mlp, requires
from torch_liberator import demo


def test_demo_runs_and_reports_each_load(capsys):
    requires('torchvision')
    assert demo.main(verbose=1) == 0
    lines = capsys.readouterr().out.splitlines()
    # one line per step, then the verdict
    assert len(lines) == len(demo._steps()) + 1, lines
    assert 'full_add=320' in lines[1] and 'self_unset=2' in lines[1]
    assert 'full_add=318' in lines[2] and 'self_unset=30' in lines[2]
    assert lines[-1].startswith('demo ok')


def _tiny_steps(ctx):
    ctx['source_state'] = make_mlp(seed=0).state_dict()


def test_demo_fails_loudly_on_unexpected_numbers(monkeypatch, capsys):
    def load(ctx):
        demo._load_and_check(ctx, 'embedding',
                             demo.EmbeddingModel(make_mlp(seed=1)), 'tiny')
    monkeypatch.setattr(demo, '_steps', lambda: [_tiny_steps, load])
    assert demo.main(verbose=1) == 1
    out = capsys.readouterr().out
    assert '[MISMATCH]' in out
    assert 'demo FAILED: embedding: full_add=4 (expected 320)' in out


def test_demo_needs_torchvision(monkeypatch, capsys):
    real = demo.importlib.util.find_spec
    monkeypatch.setattr(
        demo.importlib.util, 'find_spec',
        lambda name, *a: None if name == 'torchvision' else real(name, *a))
    assert demo.main() == 2
    assert 'pip install -e ".[demo]"' in capsys.readouterr().out


def test_embedding_model_forwards_to_inner():
    model = demo.EmbeddingModel(torch.nn.Linear(2, 3))
    assert model(torch.zeros(1, 2)).shape == (1, 3)
