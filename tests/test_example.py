"""
The behavioural check kept in a deploy file: ``deploy(..., example_inputs=)``
stores inputs and outputs, ``load_model(check=True)`` re-runs and compares
within the stored tolerance (torch_liberator.deployer._check).
"""
import io
import json
import os
import warnings
import zipfile

import pytest
import torch

from conftest import Scaled
from torch_liberator.deployer import DeployedModel, deploy
from torch_liberator.deployer._check import (
    EXAMPLE_ATOL, EXAMPLE_FNAME, EXAMPLE_RTOL, check_example, record_example)
from torch_liberator.errors import DeployError


class Multi(torch.nn.Module):
    """Takes two inputs (one a dict) and returns a nesting of values."""

    def __init__(self, dim=3):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x, extra):
        y = self.drop(self.lin(x)) + extra['bias']
        return {'y': y, 'parts': (y.argmax(dim=1), [y.sum()]), 'n': 2, 'note': None}


class Odd(torch.nn.Module):
    """Returns something a deploy file cannot store."""

    def __init__(self, dim=2):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)

    def forward(self, x):
        return {'y': self.lin(x), 'when': object()}


def test_nested_inputs_and_outputs_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Multi(3).train()
    inputs = (torch.rand(4, 3), {'bias': torch.ones(3)})
    fpath = deploy(model, tmp_path / 'm.zip', example_inputs=inputs, verbose=0)
    assert model.training and model.drop.training  # flags restored after the run
    loader = DeployedModel(fpath)
    entry = loader.info['manifest']['example']
    assert entry == {
        'file': EXAMPLE_FNAME, 'rtol': EXAMPLE_RTOL, 'atol': EXAMPLE_ATOL,
        'inputs': {'tuple': [{'tensor': 'inputs.0'}, {'dict': {'bias': {'tensor': 'inputs.1.bias'}}}]},
        'outputs': {'dict': {'y': {'tensor': 'outputs.y'},
                             'parts': {'tuple': [{'tensor': 'outputs.parts.0'},
                                                 {'list': [{'tensor': 'outputs.parts.1.0'}]}]},
                             'n': {'value': 2}, 'note': {'value': None}}}}
    assert EXAMPLE_FNAME in loader.info['members']
    loaded = loader.load_model(check=True)
    assert loader.check_info == {'tensors': 3, 'max_abs_diff': 0.0}
    assert loaded.training  # the check ran in eval mode and restored the flags


def test_without_check_the_example_is_not_run(tmp_path, monkeypatch):
    from torch_liberator.deployer import _check
    fpath = deploy(torch.nn.Linear(2, 2), tmp_path / 'l.zip', example_inputs=torch.ones(1, 2),
                   verbose=0)
    monkeypatch.setattr(_check, 'check_example', None)  # would fail if called
    loader = DeployedModel(fpath)
    loader.load_model()
    assert loader.check_info is None


def test_tolerance_is_stored_and_used(tmp_path):
    model = Scaled(3, scale=1.001)
    x = torch.ones(2, 3)
    strict = deploy(model, tmp_path / 'a.zip', example_inputs=x, assume_defaults=True, verbose=0)
    with pytest.raises(DeployError, match=r"outputs by up to .* \(tolerance rtol=0.0001, "
                       r"atol=1e-05\); the file does not rebuild the deployed model"):
        DeployedModel(strict).load_model(check=True)
    loose = deploy(model, tmp_path / 'b.zip', example_inputs=x, assume_defaults=True,
                   example_tolerance=(0.01, 0.0), verbose=0)
    assert DeployedModel(loose).info['manifest']['example']['rtol'] == 0.01
    loader = DeployedModel(loose)
    loader.load_model(check=True)
    assert 0 < loader.check_info['max_abs_diff'] < 0.01


@pytest.mark.parametrize('tolerance', [(-1, 0), (float('nan'), 0), ('1', 0)])
def test_bad_tolerance_is_refused(tmp_path, tolerance):
    with pytest.raises(DeployError, match=r'example tolerance .* must be \(rtol, atol\), two '
                       r'finite numbers >= 0'):
        deploy(torch.nn.Linear(2, 2), tmp_path / 'x.zip', example_inputs=torch.ones(1, 2),
               example_tolerance=tolerance, verbose=0)
    assert os.listdir(tmp_path) == []


def test_what_cannot_be_stored_or_run_is_refused_before_writing(tmp_path):
    with pytest.raises(DeployError, match=r'example outputs.when is a object, which a deploy '
                       r'file cannot store'):
        deploy(Odd(), tmp_path / 'o.zip', example_inputs=torch.ones(1, 2), verbose=0)
    with pytest.raises(DeployError, match=r'Linear failed on the example inputs at deploy: '
                       r'RuntimeError: mat1 and mat2 shapes cannot be multiplied'):
        deploy(torch.nn.Linear(2, 2), tmp_path / 'l.zip', example_inputs=torch.ones(1, 5),
               verbose=0)
    with pytest.raises(DeployError, match=r'example inputs.0.a.b is named twice'):
        record_example(torch.nn.Identity(), ({'a.b': torch.ones(1), 'a': {'b': torch.ones(1)}},))
    assert os.listdir(tmp_path) == []


class Sparse(torch.nn.Module):
    def forward(self, x):
        return x.to_sparse()


def test_tensors_safetensors_cannot_hold_are_refused():
    with pytest.raises(DeployError, match=r'cannot store the example tensors as safetensors: '):
        record_example(Sparse(), torch.eye(2))


def test_check_without_a_stored_example_says_how(tmp_path):
    fpath = deploy(torch.nn.Linear(2, 2), tmp_path / 'n.zip', verbose=0)
    with pytest.raises(DeployError, match=r"stores no example inputs to check the model with; "
                       r"deploy it with example_inputs="):
        DeployedModel(fpath).load_model(check=True)
    # a torch_liberator 0.2 file has no manifest, so no example either
    from torch_liberator.deployer._export import build_model_code
    model = torch.nn.Linear(2, 2)
    buf = io.BytesIO()
    torch.save({'model_state_dict': model.state_dict()}, buf)
    with zipfile.ZipFile(tmp_path / 'old.zip', 'w') as zfile:
        zfile.writestr('old/deploy_snapshot.pt', buf.getvalue())
        zfile.writestr('old/Linear_0123456789abcdef.py', build_model_code(model).text)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # cannot be verified
        with pytest.raises(DeployError, match=r"stores no example inputs"):
            DeployedModel(tmp_path / 'old.zip').load_model(check=True)


@pytest.mark.parametrize('change, match', [
    (lambda e: e.update(rtol='0.1'), r"example's tolerance '0.1', 1e-05 must be \(rtol, atol\)"),
    (lambda e: e.update(atol=float('inf')), r"example's tolerance 0.0001, inf must be \(rtol, "),
    (lambda e: e.update(inputs={'tensor': 'nope'}), r'spec at inputs is malformed'),
    (lambda e: e.update(inputs={'tuple': [{'eval': 'x'}]}), r'spec at inputs.0 is malformed'),
    (lambda e: e.update(inputs={'tensor': 'inputs.0'}), r'stored example inputs are not a tuple'),
    (lambda e: e.update(outputs={'list': []}), r'differ from those stored at deploy in structure'),
])
def test_malformed_example_entries_give_the_library_error(change, match):
    model = torch.nn.Linear(2, 2)
    data, entry = record_example(model, torch.ones(1, 2))
    entry = json.loads(json.dumps(entry))
    change(entry)
    with pytest.raises(DeployError, match=match):
        check_example(model, data, entry)


def test_corrupt_example_data_gives_the_library_error():
    model = torch.nn.Linear(2, 2)
    data, entry = record_example(model, torch.ones(1, 2))
    with pytest.raises(DeployError, match=r'example.safetensors is not a valid safetensors file'):
        check_example(model, data[:20], entry)


def test_integer_outputs_compare_exactly():
    class Argmax(torch.nn.Module):
        def forward(self, x):
            return x.argmax(dim=1)

    data, entry = record_example(Argmax(), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert check_example(Argmax(), data, entry) == {'tensors': 1, 'max_abs_diff': 0.0}

    class Flipped(Argmax):
        def forward(self, x):
            return 1 - x.argmax(dim=1)

    with pytest.raises(DeployError, match=r"the loaded model's output outputs differs from the "
                       r"one stored at deploy"):
        check_example(Flipped(), data, entry)
