"""
What loads is what was deployed: deploy refuses, before writing anything,
init arguments (explicit, inferred or a factory's) that would rebuild a
different model, models whose tensors hold no data, and the 0.2 flag form's
weights when they do not load strictly into the model file
(torch_liberator.deployer._check, and its use by deploy / deploy_files).
"""
import os
import re

import pytest
import torch

from conftest import Scaled, VersionedNet
from torch_liberator.deployer import DeployedModel, deploy, deploy_files, export_model_code
from torch_liberator.deployer._check import check_rebuild, describe_layout_difference
from torch_liberator.errors import DeployError, ExportError


class Heads(torch.nn.Module):
    """Stores ``dim`` but not ``heads``: the attention module records it."""

    def __init__(self, dim, heads=4):
        super().__init__()
        self.dim = dim
        self.attn = torch.nn.MultiheadAttention(dim, heads)

    def forward(self, x):
        return self.attn(x, x, x)[0]


class Activated(torch.nn.Module):
    """Stores ``width``; ``act`` is only visible as the submodule's class."""

    def __init__(self, width, act=torch.nn.ReLU):
        super().__init__()
        self.width = width
        self.lin = torch.nn.Linear(width, width)
        self.act = act()

    def forward(self, x):
        return self.act(self.lin(x))


class Closure(torch.nn.Module):
    """``scale`` hidden in a closure: nothing to compare, so never guessed."""

    def __init__(self, dim, scale=1.0):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)
        self.post = lambda x: x * scale

    def forward(self, x):
        return self.post(self.lin(x))


class MetaBuffer(torch.nn.Module):
    def __init__(self, dim=3):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)
        self.register_buffer('stats', torch.empty(dim, device='meta'))


def test_explicit_initkw_that_cannot_build_resnet50_is_refused(tmp_path, torchvision):
    model = torchvision.models.resnet50(weights=None)
    with pytest.raises(DeployError, match=r"initkw \{'num_classes': 1000\} \(from argument\) cannot "
                       r"build ResNet: it requires \['block', 'layers'\], which initkw does "
                       r"not give; .*factory="):
        deploy(model, tmp_path / 'r50.zip', initkw={'num_classes': 1000}, verbose=0)
    assert os.listdir(tmp_path) == []


def test_vit_tiny_inferred_initkw_is_refused_naming_num_heads(tmp_path, timm):
    model = timm.create_model('vit_tiny_patch16_224', pretrained=False)
    with pytest.raises(DeployError, match=r"cannot tell the init arguments of VisionTransformer: "
                       r"the model does not store \['img_size', .*'num_heads', .*\], so their "
                       r"defaults would be used, and rebuilt that way it differs \(likely "
                       r"\['num_heads'\]\) at blocks\.0\.attn\.head_dim \(64 in the model, 16 "
                       r"rebuilt; 36 difference\(s\)\); pass initkw= .*assume_defaults=True"):
        deploy(model, tmp_path / 'vit.zip', verbose=0)
    assert os.listdir(tmp_path) == []


def test_unstored_argument_seen_in_a_submodule_is_refused(tmp_path):
    model = Heads(8, heads=2)
    with pytest.raises(DeployError, match=r"does not store \['heads'\], .* differs \(likely "
                       r"\['heads'\]\) at attn\.head_dim \(4 in the model, 2 rebuilt; 2 "
                       r"difference\(s\)\)"):
        deploy(model, tmp_path / 'h.zip', verbose=0)
    x = torch.rand(5, 1, 8)
    fpath = deploy(model, tmp_path / 'h.zip', initkw={'dim': 8, 'heads': 2}, verbose=0)
    loaded = DeployedModel(fpath).load_model().eval()
    assert torch.equal(loaded(x), model.eval()(x))
    # the default is confirmed when the model was built with it
    same = Heads(8)
    fpath = deploy(same, tmp_path / 'd.zip', verbose=0)
    assert DeployedModel(fpath).info['manifest']['initkw'] == {'dim': 8}
    assert DeployedModel(fpath).load_model().attn.num_heads == 4


@pytest.mark.parametrize('cls, kwargs, likely, where', [
    (Activated, {'act': torch.nn.GELU}, "likely \\['act'\\]", "act \\('GELU' in the model, 'ReLU' rebuilt"),
    (Scaled, {'scale': 2.0}, None, 'post \\(functools.partial'),
    (Closure, {'scale': 1.0}, None, 'post \\(<function Closure'),
])
def test_unstored_defaults_that_change_the_model_are_refused(tmp_path, cls, kwargs, likely, where):
    model = cls(3, **kwargs)
    with pytest.raises(DeployError, match=r'cannot tell the init arguments of ' + cls.__name__) as info:
        deploy(model, tmp_path / 'm.zip', verbose=0)
    assert ('(likely' in str(info.value)) == (likely is not None)
    if likely:
        assert re.search(likely, str(info.value))
    assert re.search(where, str(info.value)), str(info.value)
    assert os.listdir(tmp_path) == []


def test_assume_defaults_deploys_and_the_example_check_catches_the_difference(tmp_path):
    model = Scaled(3, scale=2.0)
    x = torch.rand(2, 3)
    fpath = deploy(model, tmp_path / 's.zip', assume_defaults=True, example_inputs=x, verbose=0)
    loader = DeployedModel(fpath)
    assert loader.info['manifest']['initkw'] == {'dim': 3}
    with pytest.raises(DeployError, match=r"the loaded model's outputs differ from those stored "
                       r"at deploy: outputs by up to .* \(tolerance rtol=0.0001, atol=1e-05\)"):
        loader.load_model(check=True)
    # the same model deployed with its real arguments passes the check
    fpath = deploy(model, tmp_path / 'ok.zip', initkw={'dim': 3, 'scale': 2.0},
                   example_inputs=x, verbose=0)
    loaded = DeployedModel(fpath).load_model(check=True)
    assert torch.equal(loaded(x), model(x))


def test_assume_defaults_still_checks_the_layout(tmp_path):
    model = torch.nn.Linear(3, 2, bias=False)
    with pytest.raises(DeployError, match=r"rebuilt: unexpected \['bias'\]\); the model does not "
                       r"store \['bias', 'device', 'dtype'\], so their defaults were used"):
        deploy(model, tmp_path / 'l.zip', assume_defaults=True, verbose=0)


def test_plain_torch_layers_still_deploy_by_inference(tmp_path):
    # their unstored arguments (bias, device, dtype) rebuild the same model
    for model in (torch.nn.Linear(3, 2), torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm1d(5),
                  torch.nn.LayerNorm(4), torch.nn.Embedding(10, 3),
                  torch.nn.MultiheadAttention(8, 2)):
        fpath = deploy(model, tmp_path / 'p.zip', verbose=0)
        loaded = DeployedModel(fpath).load_model()
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key


def test_meta_device_tensors_are_refused_clearly(tmp_path):
    with pytest.raises(DeployError, match=r"cannot deploy MetaBuffer: its tensors \['stats'\] are "
                       r"on the meta device and hold no values; give them values first"):
        deploy(MetaBuffer(), tmp_path / 'meta.zip', verbose=0)
    assert os.listdir(tmp_path) == []


def test_factory_deploys_torchvision_resnet18(tmp_path, torchvision):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=7).eval()
    fpath = deploy(model, tmp_path / 'r18.zip', factory='torchvision.models:resnet18',
                   initkw={'num_classes': 7}, verbose=0)
    manifest = DeployedModel(fpath).info['manifest']
    assert manifest['model']['factory'] == 'torchvision.models:resnet18'
    assert manifest['initkw_source'] == 'factory'
    assert manifest['initkw'] == {'num_classes': 7}
    assert list(manifest['requires']) == ['torchvision']
    loaded = DeployedModel(fpath).load_model().eval()
    assert type(loaded) is type(model)  # built by the installed torchvision
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))


def test_factory_arguments_are_checked(tmp_path, torchvision):
    model = torchvision.models.resnet18(weights=None)
    with pytest.raises(DeployError, match=r"initkw \{\} \(from factory\) builds ResNet \(via "
                       r"resnet34\) whose state dict differs from the model's \(rebuilt: "
                       r"unexpected \['layer1.2"):
        deploy(model, tmp_path / 'x.zip', factory='torchvision.models:resnet34', verbose=0)
    with pytest.raises(DeployError, match=r"makes alexnet build a AlexNet, not the model's ResNet"):
        deploy(model, tmp_path / 'x.zip', factory=torchvision.models.alexnet, verbose=0)
    with pytest.raises(ExportError, match=r"initkw \{'weights': 'DEFAULT'\} would make "
                       r"torchvision.models:resnet18 fetch pretrained weights at every load"):
        deploy(model, tmp_path / 'x.zip', factory='torchvision.models:resnet18',
               initkw={'weights': 'DEFAULT'}, verbose=0)
    with pytest.raises(ExportError, match=r"cannot import 'no_such_pkg_xyz' \(for "
                       r"'no_such_pkg_xyz:make'\): ModuleNotFoundError"):
        deploy(model, tmp_path / 'x.zip', factory='no_such_pkg_xyz:make', verbose=0)
    with pytest.raises(DeployError, match=r"export_modules=\['torchvision'\] has no effect with "
                       r"factory="):
        deploy(model, tmp_path / 'x.zip', factory='torchvision.models:resnet18',
               export_modules=['torchvision'], verbose=0)
    assert os.listdir(tmp_path) == []


def test_factory_timm_create_model(tmp_path, timm):
    model = timm.create_model('vit_tiny_patch16_224', pretrained=False).eval()
    with pytest.raises(DeployError, match=r"initkw \{\} \(from factory\) cannot build "
                       r"create_model: it requires \['model_name'\], which initkw does not "
                       r"give; pass them in initkw"):
        deploy(model, tmp_path / 'vit.zip', factory='timm:create_model', verbose=0)
    fpath = deploy(model, tmp_path / 'vit.zip', factory='timm.create_model',
                   initkw={'model_name': 'vit_tiny_patch16_224'}, verbose=0)
    loader = DeployedModel(fpath)
    assert loader.info['manifest']['model']['factory'] == 'timm:create_model'
    loaded = loader.load_model().eval()
    assert type(loaded) is type(model) and loaded.blocks[0].attn.num_heads == 3
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_flag_form_refuses_weights_that_do_not_fit_the_model_file(tmp_path, torchvision):
    code = export_model_code(tmp_path, torch.nn.Linear(3, 2))
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, tmp_path / 'r18.pt')
    with pytest.raises(DeployError, match=r"the weights in .*r18.pt do not load strictly into "
                       r"Linear\(\*\*\{'in_features': 3, 'out_features': 2\}\): missing \['weight', "
                       r"'bias'\]; unexpected \['conv1.weight', 'bn1.weight', 'bn1.bias'\] and "
                       + str(len(state) - 3) + ' more'):
        deploy_files(code, tmp_path / 'r18.pt', tmp_path / 'out.zip', verbose=0)
    assert not (tmp_path / 'out.zip').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([code.name, 'r18.pt'])


def test_flag_form_runs_the_model_hooks_of_a_strict_load(tmp_path):
    code = export_model_code(tmp_path, VersionedNet(2))
    state = dict(VersionedNet(2).state_dict())  # a plain dict: no module versions
    torch.save(state, tmp_path / 'v.pt')
    with pytest.raises(DeployError, match=r"do not load strictly into VersionedNet\(\*\*\{'dim': 2\}\): "
                       r"ValueError: version should be 2, got None"):
        deploy_files(code, tmp_path / 'v.pt', tmp_path / 'out.zip', verbose=0)
    assert not (tmp_path / 'out.zip').exists()


def test_describe_layout_difference_limits_and_orders():
    want = {f'k{i}': (i,) for i in range(6)}
    got = {f'k{i}': (i + 1,) for i in range(6)}
    assert describe_layout_difference(want, want) == ''
    assert describe_layout_difference(want, got, limit=2) == (
        'shapes: k0 (1,) instead of (0,), k1 (2,) instead of (1,) and 4 more')


def test_attribute_check_is_never_skipped_by_the_cache(tmp_path):
    # same class, same layout, same inferred initkw: only heads differ
    deploy(Heads(8), tmp_path / 'a.zip', verbose=0)
    with pytest.raises(DeployError, match=r'cannot tell the init arguments of Heads'):
        deploy(Heads(8, heads=2), tmp_path / 'b.zip', verbose=0)
    assert os.listdir(tmp_path) == ['a.zip']


def test_check_rebuild_remembers_what_passed(monkeypatch):
    from torch_liberator.deployer import _check
    calls = []
    real = _check.build_on_meta
    monkeypatch.setattr(_check, 'build_on_meta', lambda *a: calls.append(1) or real(*a))
    model = torch.nn.Linear(5, 7)
    for _ in range(3):
        check_rebuild(model, torch.nn.Linear, {'in_features': 5, 'out_features': 7})
    assert len(calls) == 1
