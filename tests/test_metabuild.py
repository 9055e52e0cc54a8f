"""
Tests for building on meta at load (torch_liberator.deployer._check): a meta
build has a normal build's tensor layout; adopting a state keeps its tensors
(no copy); and wherever adopting could give another model than a normal build
(non-persistent buffers and tensor attributes made in ``__init__``, tied
weights, a dtype a normal load would cast to) ``load_model`` builds normally
and gives exactly the normally built model.
"""
import pytest
import torch

from conftest import TiedLinears, requires
from torch_liberator.deployer import DeployedModel, deploy
from torch_liberator.deployer._check import build_assigned, build_on_meta

torchvision = requires('torchvision')


class ScaledInit(torch.nn.Module):
    """Initializes with in-place ops and nn.init calls of every kind."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.emb = torch.nn.Embedding(5, 2)
        torch.nn.init.orthogonal_(self.lin.weight)
        torch.nn.init.trunc_normal_(self.emb.weight, std=0.02)
        with torch.no_grad():
            self.lin.weight.mul_(0.5).add_(1.0)
            self.lin.bias.zero_()
        self.register_buffer('table', torch.empty(3, 4).t())  # non-contiguous
        self.table.fill_(2.0)


class NonPersistent(torch.nn.Module):
    """A non-persistent buffer computed in __init__ (not in the state dict)."""

    def __init__(self, dim=4):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)
        self.register_buffer('freqs', torch.arange(dim) / dim * 3.0, persistent=False)

    def forward(self, x):
        return self.lin(x) * self.freqs


class TensorAttribute(torch.nn.Module):
    """A plain tensor attribute made in __init__ (neither parameter nor buffer)."""

    def __init__(self, dim=4):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)
        self.scale = torch.linspace(0.5, 2.0, dim)

    def forward(self, x):
        return self.lin(x) * self.scale


class NestedAttribute(torch.nn.Module):
    """A tensor made in __init__ inside a dict of lists."""

    def __init__(self, dim=4):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)
        self.consts = {'scale': [torch.linspace(0.5, 2.0, dim)]}

    def forward(self, x):
        return self.lin(x) * self.consts['scale'][0]


def layout(model):
    return {key: (tuple(t.shape), t.dtype, t.stride())
            for key, t in model.state_dict().items()}


@pytest.mark.parametrize('name', ['scaled-init', 'resnet18', 'vit_b_16', 'mobilenet_v3_small'])
def test_meta_build_keeps_the_layout(name, request):
    if name == 'scaled-init':
        factory = ScaledInit
    else:
        models = request.getfixturevalue('torchvision').models
        factory = lambda: getattr(models, name)(weights=None)  # NOQA: E731
    meta = build_on_meta(lambda: factory(), {})
    assert all(t.is_meta for t in meta.state_dict().values())
    assert layout(meta) == layout(factory())


def test_build_assigned_adopts_the_tensors_and_matches_outputs(torchvision):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    initkw = {'block': torchvision.models.resnet.BasicBlock, 'layers': [2, 2, 2, 2]}
    built = build_assigned(torchvision.models.resnet.ResNet, initkw, state).eval()
    assert all(built.state_dict()[k].data_ptr() == v.data_ptr() for k, v in state.items())
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(built(x), model(x))


def test_build_assigned_declines_tied_weights():
    state = TiedLinears().state_dict()
    assert build_assigned(TiedLinears, {}, state) is None


def _all_tensors(model):
    out = {f'{where}.{k}': v for where, module in model.named_modules()
           for k, v in vars(module).items() if isinstance(v, torch.Tensor)}
    out.update(model.state_dict(keep_vars=True))
    out.update(model.named_buffers())
    return out


@pytest.mark.parametrize('cls', [NonPersistent, TensorAttribute, NestedAttribute])
def test_what_a_meta_build_would_miss_falls_back_to_the_normal_build(tmp_path, cls):
    torch.manual_seed(0)
    model = cls()
    assert build_assigned(cls, {'dim': 4}, model.state_dict()) is None
    loaded = DeployedModel(deploy(model, tmp_path / 'm.zip', verbose=0)).load_model()
    normal = cls(dim=4)
    normal.load_state_dict(model.state_dict())
    got, want = _all_tensors(loaded), _all_tensors(normal)
    assert sorted(got) == sorted(want) and len(want) == (2 if cls is NestedAttribute else 3)
    if cls is NestedAttribute:
        assert torch.equal(loaded.consts['scale'][0], normal.consts['scale'][0])
    for key, value in want.items():
        assert not got[key].is_meta and got[key].dtype == value.dtype, key
        assert torch.equal(got[key], value), key
    x = torch.rand(2, 4)
    assert torch.equal(loaded(x), model(x))


def test_a_dtype_a_normal_load_casts_falls_back(tmp_path):
    model = torch.nn.Linear(2, 2).half()
    state = model.state_dict()
    assert build_assigned(torch.nn.Linear, {'in_features': 2, 'out_features': 2}, state) is None
    loaded = DeployedModel(deploy(model, tmp_path / 'h.zip', verbose=0)).load_model()
    normal = torch.nn.Linear(2, 2)
    normal.load_state_dict(state)
    for key, value in normal.state_dict().items():
        assert loaded.state_dict()[key].dtype == value.dtype == torch.float32
        assert torch.equal(loaded.state_dict()[key], value)

