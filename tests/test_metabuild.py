"""
Tests for building on meta (torch_liberator.deployer._check): building on meta with initializers
skipped gives the same tensor layout as a normal build, and adopting a
state keeps its tensors (no copy).
"""
import pytest
import torch

from conftest import TiedLinears, requires
from torch_liberator.deployer._check import SkipMetaInit, build_assigned

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


def layout(model):
    return {key: (tuple(t.shape), t.dtype, t.stride())
            for key, t in model.state_dict().items()}


@pytest.mark.parametrize('name', ['scaled-init', 'resnet18', 'vit_b_16', 'mobilenet_v3_small'])
def test_skipped_init_keeps_the_layout(name, request):
    if name == 'scaled-init':
        factory = ScaledInit
    else:
        models = request.getfixturevalue('torchvision').models
        factory = lambda: getattr(models, name)(weights=None)  # NOQA: E731
    torch.manual_seed(0)
    real = factory()
    with torch.device('meta'), SkipMetaInit():
        meta = factory()
    assert all(t.is_meta for t in meta.state_dict().values())
    assert layout(meta) == layout(real)


def test_skip_applies_only_to_meta_tensors():
    with SkipMetaInit():
        lin = torch.nn.Linear(2, 2)
        torch.nn.init.ones_(lin.weight)
        with torch.no_grad():
            lin.bias.fill_(3.0)
    assert lin.weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert lin.bias.tolist() == [3.0, 3.0]


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
