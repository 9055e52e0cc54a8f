"""
Shared test helpers: tiny model factories, and torchvision models that are
slow to build (each is built once per session, only when a test asks).

Tests that load into a shared model must only check what they loaded; build
a fresh tiny model when a test needs to see an untouched destination.
"""
import functools
import importlib
import os

import pytest
import torch
from hypothesis import settings

# the same examples on every run: a property test that fails, fails for
# everyone (random exploration belongs to benchmarks/fuzz_real.py and the
# seed loops of the notes, not to a CI run that must be reproducible)
settings.register_profile('torch_liberator', derandomize=True)
settings.load_profile('torch_liberator')

# each pytest-xdist worker gets its share of the cores: torch's own threads,
# one per core in every worker, would fight over them
if 'PYTEST_XDIST_WORKER_COUNT' in os.environ:
    torch.set_num_threads(max(1, (os.cpu_count() or 1)
                              // int(os.environ['PYTEST_XDIST_WORKER_COUNT'])))


def requires(name):
    """
    Import an optional third-party package (torchvision, timm, ...), or skip
    the calling test (or, at import time, the whole test module) without it.

    Every test that needs such a package skips through here, so all skip the
    same way; the package's own modules are imported directly, never skipped.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(f'needs {name}: pip install "torch_liberator[tests]"',
                    allow_module_level=True)


@pytest.fixture
def models_on_meta(request):
    """
    Build the models of a test on the meta device. The association reads
    keys and shapes only, and initialising real networks' weights took a
    fifth of the time of tests/test_association.py. A test that loads or
    compares tensors is marked ``real_tensors`` and builds them on the CPU
    (a meta tensor fails loudly: it holds no data to copy or compare).
    """
    if request.node.get_closest_marker('real_tensors'):
        yield
        return
    torch.set_default_device('meta')
    try:
        yield
    finally:
        torch.set_default_device(None)


def pytest_addoption(parser):
    parser.addoption('--run-corpus', action='store_true',
                     help='also run the full association corpus (tests marked corpus)')


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """
    Tests marked ``corpus`` run only with ``--run-corpus`` or ``-m corpus``.
    The tests of one corpus pair (or fuzz seed) run one after another on
    one worker (``--dist loadgroup``), so the pair is built once, not once
    per test function and worker.
    """
    first = {}  # pair -> the index of its first test
    order = []
    for index, item in enumerate(items):
        params = item.callspec.params if hasattr(item, 'callspec') else {}
        pair = params.get('name', params.get('seed'))
        if item.path.name == 'test_corpus.py' and pair is not None:
            pair = str(pair)
            item.add_marker(pytest.mark.xdist_group(pair))
            order.append((first.setdefault(pair, index), index))
        else:
            order.append((index, index))
    items[:] = [items[index] for _, index in sorted(order)]
    if config.getoption('--run-corpus') or 'corpus' in (config.getoption('-m') or ''):
        return
    skip = pytest.mark.skip(reason='the full corpus runs with --run-corpus or -m corpus')
    for item in items:
        if item.get_closest_marker('corpus'):
            item.add_marker(skip)


class Embedder(torch.nn.Module):
    """A user model holding a sub-network as ``.module`` plus its own layer.

    It is not a wrapper like DataParallel: its ``module`` attribute is just a
    name and must never be unwrapped.
    """

    def __init__(self, inner, extra_name='extra'):
        super().__init__()
        self.module = inner
        setattr(self, extra_name, torch.nn.Linear(1, 1))


class Backboned(torch.nn.Module):
    """The same sub-network under another name (``backbone``)."""

    def __init__(self, inner, extra_name='head'):
        super().__init__()
        self.backbone = inner
        setattr(self, extra_name, torch.nn.Linear(1, 1))


class Holder(torch.nn.Module):
    """One parameter ``w`` of a given shape (for shape-fitting tests)."""

    def __init__(self, *shape):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(*shape))


class TiedLinears(torch.nn.Module):
    """Two layers sharing one weight tensor (tied weights)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(2, 2, bias=False)
        self.b = torch.nn.Linear(2, 2, bias=False)
        self.b.weight = self.a.weight


def bn(prefix, c, tracked=True):
    """The keys and shapes of a ``c``-channel BatchNorm at ``prefix``
    (``num_batches_tracked`` too, unless ``tracked`` is False)."""
    keys = {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,),
            f'{prefix}.running_mean': (c,), f'{prefix}.running_var': (c,)}
    if tracked:
        keys[f'{prefix}.num_batches_tracked'] = ()
    return keys


def make_mlp(seed=None):
    """Linear(4, 3) -> ReLU -> Linear(3, 2); keys 0.weight ... 2.bias."""
    if seed is not None:
        torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def make_convbn(seed=None):
    """Conv2d -> BatchNorm2d -> Linear, so there are buffers to load too."""
    if seed is not None:
        torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():  # make the buffers distinguishable
        net[1].running_mean.uniform_()
        net[1].running_var.uniform_(1, 2)
        net[1].num_batches_tracked.fill_(int(torch.randint(1, 100, ())))
    return net


def counts(info):
    """The sizes of an ``info`` dict's key lists, by name."""
    out = {key: len(value) for key, value in info['seen'].items()}
    out['self_unset'] = len(info['self_unset'])
    out['other_unused'] = len(info['other_unused'])
    return out


def snapshot(model):
    """Clones of every tensor of ``model.state_dict()``."""
    return {key: value.detach().clone()
            for key, value in model.state_dict().items()}


def assert_unchanged(model, before, keys=None):
    """Every tensor of ``model`` (or only ``keys``) is bit-identical to
    ``before`` (a :func:`snapshot`)."""
    after = model.state_dict()
    assert list(after) == list(before)
    for key in (before if keys is None else keys):
        value = after[key]
        assert value.dtype == before[key].dtype, key
        assert torch.equal(value, before[key]), key


@pytest.fixture(scope='session')
def torchvision():
    return requires('torchvision')


@pytest.fixture(scope='session')
def timm():
    return requires('timm')


@pytest.fixture(scope='session')
def resnet50(torchvision):
    """A resnet50 (weights=None). Do not load foreign state into it."""
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None)


@pytest.fixture(scope='session')
def resnet50_other(torchvision):
    """A second resnet50 with different random weights, as a source."""
    torch.manual_seed(1)
    model = torchvision.models.resnet50(weights=None)
    with torch.no_grad():  # BN buffers are constant at init; vary them
        for name, buf in model.named_buffers():
            if name.endswith('running_mean'):
                buf.uniform_()
            elif name.endswith('num_batches_tracked'):
                buf.fill_(7)
    return model


@pytest.fixture(scope='session')
def faster_rcnn_frozen(torchvision):
    """Faster R-CNN whose resnet50 backbone uses FrozenBatchNorm2d, as
    ``fasterrcnn_resnet50_fpn`` builds it for a pretrained backbone."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d
    torch.manual_seed(2)
    backbone = resnet_fpn_backbone(
        backbone_name='resnet50', weights=None, norm_layer=FrozenBatchNorm2d,
        trainable_layers=3)
    return FasterRCNN(backbone, num_classes=91)


@pytest.fixture(scope='session')
def faster_rcnn_plain(torchvision):
    """Today's ``fasterrcnn_resnet50_fpn(weights=None)`` (plain BatchNorm2d)."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    torch.manual_seed(3)
    return fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)


class VersionedNet(torch.nn.Module):
    """Refuses states without its module version, as torchvision's MNASNet does."""

    _version = 2

    def __init__(self, dim=2):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        if local_metadata.get('version') != 2:
            raise ValueError(f'version should be 2, got {local_metadata.get("version")}')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)


def scale_by(x, factor):
    return x * factor


class Scaled(torch.nn.Module):
    """``scale`` changes the outputs but no shape; it lives in a partial."""

    def __init__(self, dim, scale=1.0):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)
        self.post = functools.partial(scale_by, factor=scale)

    def forward(self, x):
        return self.post(self.lin(x))


class OddName(torch.nn.Linear):
    """A class whose name no file name may carry (a factory may make one)."""


OddName.__name__ = '../odd name'


def make_odd_name():
    """A factory of OddName models, importable as ``conftest:make_odd_name``."""
    return OddName(2, 2)
