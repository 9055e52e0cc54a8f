"""
The pairs of the association corpus: real model pairs with a known truth.

Each pair is a checkpoint (the *source*, a state dict) and a model (the
*destination*) built from torchvision or timm with random weights
(``weights=None`` / ``pretrained=False``), plus the ground truth: the
one-to-one ``{source key: destination key}`` correspondence that a perfect
association loads, and nothing else. :mod:`corpus` judges a loader on them.

The truth is built one of three ways (``Pair.truth_from``):

* ``'identity'``: by construction. The destination is built from the very
  module objects of the source model (``nn.Sequential(*children)``, a
  torchvision detector whose backbone factory was intercepted, a wrapper
  that inserts a level ...), so a source tensor belongs exactly where the
  same tensor object sits in the destination.
* ``'outputs'``: a hand-written correspondence between two libraries (timm
  and torchvision), checked by :func:`verify_truth`: after copying the source
  through it, both models give the same outputs (eval mode, same input).
* ``'names'``: the published family (wrappers, prefixes, networks of another
  depth or head size): a source key belongs to the destination key of the
  same name after a prefix change, shoved when the sizes differ. Two
  different heads under one name (deeplabv3's and FCN's ``classifier``) have
  no known right answer: those destination keys are *unjudged*, whatever
  lands there counts neither way.

Ambiguous pairs: when a checkpoint fits two places equally well (one resnet18
checkpoint, a model with two identical resnet18 slots), nothing tells which
slot was meant, so the correct answer loads nothing there: the truth is
empty and every tensor loaded into either slot is wrong.

Cross-naming pairs (``Pair.cross_naming``): the correct mapping renames
modules inside the tree (``layer1`` -> ``stage1``, timm's names ->
torchvision's), not only wrapper levels or prefixes; only a naming-tolerant
association can recover them, but every mode must keep precision 1.0.

Example:
    >>> import corpus_pairs
    >>> case = corpus_pairs.build_case('convbn-renamed')
    >>> case.truth['1.running_mean']
    'norm.running_mean'
    >>> corpus_pairs.PAIRS['convbn-renamed'].truth_from
    'identity'
"""
import contextlib
import copy
import dataclasses
import fnmatch
import importlib
import re
from collections import OrderedDict
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

__all__ = [
    'Case',
    'PAIRS',
    'Pair',
    'build_case',
    'select_pairs',
    'verify_truth',
]


# ---------------------------------------------------------------------------
# cases and pairs


class Case:
    """
    One built pair: the source state, the destination model and the truth.

    Args:
        source (Mapping[str, Tensor]): the checkpoint (only its keys, shapes
            and dtypes matter: the judge stamps its own values).
        destination (nn.Module): the model to load into.
        truth (Mapping[str, str] | None): ``{source key: destination key}``,
            one-to-one. ``None`` builds it by tensor identity: a source tensor
            belongs where the same tensor object is in
            ``destination.state_dict(keep_vars=True)``.
        source_model (nn.Module | None): the model the source came from, for
            :func:`verify_truth`.
        inputs (Tensor | None): an input both models accept.
        unjudged (Iterable[str]): destination keys whose right content is
            unknown (two different heads under one name): whatever lands
            there counts neither as correct nor as wrong.

    Example:
        >>> import torch
        >>> from corpus_pairs import Case
        >>> inner = torch.nn.Linear(2, 2)
        >>> case = Case(inner.state_dict(keep_vars=True),
        ...             torch.nn.ModuleDict({'a': torch.nn.Linear(2, 2), 'b': inner}), None)
        >>> case.truth
        {'weight': 'b.weight', 'bias': 'b.bias'}
    """

    def __init__(self, source: Mapping, destination: nn.Module, truth: Mapping | None,
                 source_model: nn.Module | None = None, inputs: torch.Tensor | None = None,
                 unjudged: Iterable = ()):
        self.source = dict(source)
        self.unjudged = frozenset(unjudged)
        self.destination = destination
        if truth is None:
            truth = _truth_by_identity(self.source, destination)
        self.truth = dict(truth)
        self.source_model = source_model
        self.inputs = inputs
        dst_keys = destination.state_dict().keys()
        bad = [(s, d) for s, d in self.truth.items()
               if s not in self.source or d not in dst_keys]
        if bad or len(set(self.truth.values())) != len(self.truth):
            raise ValueError(f'the truth is not a one-to-one map between existing keys: {bad[:3]}')
        if self.unjudged & set(self.truth.values()):
            raise ValueError('a destination key is both in the truth and unjudged')


def _truth_by_identity(source, destination):
    where = {id(value): key for key, value in destination.state_dict(keep_vars=True).items()}
    return {key: where[id(value)] for key, value in source.items() if id(value) in where}


def _truth_by_names(source, destination, rules, unknown=()):
    """
    The same name after the first matching ``(source prefix, dest prefix)``
    rule; keys under an ``unknown`` prefix (either side) are left out.
    """
    dst = destination.state_dict()
    truth = {}
    for key in source:
        if any(key.startswith(u) for u in unknown):
            continue
        for src_prefix, dst_prefix in rules:
            if key.startswith(src_prefix) and dst_prefix + key[len(src_prefix):] in dst:
                truth[key] = dst_prefix + key[len(src_prefix):]
                break
    return truth


@dataclasses.dataclass
class Pair:
    """
    A registered pair: how to build it and what kind of pair it is.

    Attributes:
        name: the registry key.
        build: ``() -> Case``.
        truth_from: ``'identity'``, ``'outputs'`` or ``'names'`` (see the module doc).
        cross_naming: only a naming-tolerant association can recover it.
        fast: builds and judges one mode in well under a second (the pairs of
            the default test slice).
        note: what the pair exercises.

    Example:
        >>> from corpus_pairs import PAIRS
        >>> PAIRS['resnet18-renamed'].cross_naming
        True
    """
    name: str
    build: Callable[[], Case]
    truth_from: str
    cross_naming: bool = False
    fast: bool = False
    note: str = ''


#: name -> Pair, in report order
PAIRS: 'OrderedDict[str, Pair]' = OrderedDict()


def _pair(name, truth_from, cross_naming=False, fast=False, note=''):
    def register(build):
        PAIRS[name] = Pair(name, build, truth_from, cross_naming, fast, note)
        return build
    return register


def build_case(name: str) -> Case:
    """
    Build the named pair with a fixed seed.

    Example:
        >>> from corpus_pairs import build_case
        >>> case = build_case('mlp-wrapped')
        >>> sorted(case.truth.items())[0]
        ('0.bias', 'module.0.bias')
    """
    if name not in PAIRS:
        raise KeyError(f'pair {name!r} is not one of {list(PAIRS)}')
    torch.manual_seed(0)
    return PAIRS[name].build()


def select_pairs(patterns=None, fast: bool | None = None) -> list:
    """
    Names of the registered pairs matching any glob pattern (all when none).

    Example:
        >>> from corpus_pairs import select_pairs
        >>> select_pairs(['*vit-small->*-small'])
        ['timm-vit-small->tv-vit-small', 'tv-vit-small->timm-vit-small']
    """
    names = [n for n in PAIRS
             if not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if fast is not None:
        names = [n for n in names if PAIRS[n].fast == fast]
    return names


# ---------------------------------------------------------------------------
# model building helpers


def _tv():
    import torchvision
    return torchvision


def _timm():
    import timm
    return timm


def _keep(model):
    """The source state of a model: its own tensor objects (for identity)."""
    return model.state_dict(keep_vars=True)


@contextlib.contextmanager
def _capture(module_name, factory_name, override=None):
    """Intercept ``module.factory`` (as a builder calls it); yield the models it built."""
    module = importlib.import_module(module_name)
    real = getattr(module, factory_name)
    built = []

    def factory(*args, **kwargs):
        kwargs.update(override or {})
        model = real(*args, **kwargs)
        built.append(model)
        return model

    setattr(module, factory_name, factory)
    try:
        yield built
    finally:
        setattr(module, factory_name, real)


def _captured_case(module_name, factory_name, build, override=None):
    """The destination built by ``build()``; the source = the backbone it built inside."""
    with _capture(module_name, factory_name, override) as built:
        destination = build()
    if len(built) != 1:
        raise RuntimeError(f'expected one {factory_name} built inside, got {len(built)}')
    return Case(_keep(built[0]), destination, None)


class _Wrap(nn.Module):
    def __init__(self, name, inner, head_name=None):
        super().__init__()
        self.add_module(name, inner)
        if head_name:
            self.add_module(head_name, nn.Linear(3, 5))


class _Slots(nn.Module):
    """Named sub-networks side by side, in the given order."""

    def __init__(self, **slots):
        super().__init__()
        for name, module in slots.items():
            self.add_module(name, module)


class _StemBody(nn.Module):
    """A resnet split across two submodules (as detectors split backbones)."""

    def __init__(self, resnet):
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.body = nn.Sequential(resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.pool = resnet.avgpool
        self.head = resnet.fc

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.body(self.stem(x))), 1))


class _RenamedBlock(nn.Module):
    """A torchvision BasicBlock / Bottleneck with every submodule renamed."""

    def __init__(self, block):
        super().__init__()
        self.c1, self.n1 = block.conv1, block.bn1
        self.c2, self.n2 = block.conv2, block.bn2
        self.deep = hasattr(block, 'conv3')
        if self.deep:
            self.c3, self.n3 = block.conv3, block.bn3
        self.proj = block.downsample
        self.act = nn.ReLU()

    def forward(self, x):
        out = self.act(self.n1(self.c1(x)))
        out = self.n2(self.c2(out))
        if self.deep:
            out = self.n3(self.c3(self.act(out)))
        return self.act(out + (x if self.proj is None else self.proj(x)))


class _RenamedResNet(nn.Module):
    """``conv1->c1, bn1->n1, layerN->stageN, downsample->proj, fc->head``."""

    def __init__(self, resnet):
        super().__init__()
        self.c1, self.n1 = resnet.conv1, resnet.bn1
        self.act = nn.ReLU()
        self.pool = resnet.maxpool
        for i in range(1, 5):
            layer = getattr(resnet, f'layer{i}')
            setattr(self, f'stage{i}', nn.Sequential(*map(_RenamedBlock, layer)))
        self.gap = resnet.avgpool
        self.head = resnet.fc

    def forward(self, x):
        x = self.pool(self.act(self.n1(self.c1(x))))
        for i in range(1, 5):
            x = getattr(self, f'stage{i}')(x)
        return self.head(torch.flatten(self.gap(x), 1))


def _image(size=64, batch=1):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------------------
# the pairs: tiny ones first (tests of the judge itself)


@_pair('mlp-wrapped', 'identity', fast=True, note='a tiny Sequential under module.')
def _mlp_wrapped():
    src = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    return Case(_keep(src), _Wrap('module', src, 'extra'), None)


@_pair('convbn-renamed', 'identity', cross_naming=True, fast=True,
       note='Conv-BN-Linear with every module renamed; BN buffers and num_batches_tracked')
def _convbn_renamed():
    src = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    ref = copy.deepcopy(src)
    dst = nn.Sequential(OrderedDict(conv=src[0], norm=src[1], flat=src[2], fc=src[3]))
    return Case(_keep(src), dst, None, ref, _image(3))


# --- children-Sequential and IntermediateLayerGetter idioms


def _children(arch):
    src = getattr(_tv().models, arch)(weights=None)
    state = _keep(src)
    return Case(state, nn.Sequential(*list(src.children())[:-2]), None)


_pair('resnet18-children', 'identity', fast=True,
      note='nn.Sequential(*list(resnet18().children())[:-2])')(lambda: _children('resnet18'))
_pair('resnet50-children', 'identity',
      note='nn.Sequential(*list(resnet50().children())[:-2])')(lambda: _children('resnet50'))


@_pair('resnet18-layergetter', 'identity', fast=True,
       note='torchvision IntermediateLayerGetter(resnet18, layer1..layer4)')
def _layergetter():
    from torchvision.models._utils import IntermediateLayerGetter
    src = _tv().models.resnet18(weights=None)
    return Case(_keep(src), IntermediateLayerGetter(
        src, {'layer1': 'c2', 'layer2': 'c3', 'layer3': 'c4', 'layer4': 'c5'}), None)


@_pair('resnet18-fpn', 'identity', fast=True,
       note='BackboneWithFPN(resnet18): backbone.body.* plus a new FPN')
def _resnet18_fpn():
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    src = _tv().models.resnet18(weights=None)
    dst = BackboneWithFPN(src, {'layer1': '0', 'layer2': '1', 'layer3': '2', 'layer4': '3'},
                          [64, 128, 256, 512], 64)
    return Case(_keep(src), _Wrap('backbone', dst, 'head'), None)


# --- detection and segmentation backbones (the backbone built inside the builder)


def _det(name):
    return lambda: getattr(_tv().models.detection, name)(weights=None, weights_backbone=None)


def _seg(name):
    return lambda: getattr(_tv().models.segmentation, name)(weights=None, weights_backbone=None)


for _name, _module, _factory, _build, _override in [
    ('resnet50->fasterrcnn', 'torchvision.models.detection.faster_rcnn', 'resnet50', _det('fasterrcnn_resnet50_fpn'), None),
    ('resnet50->retinanet', 'torchvision.models.detection.retinanet', 'resnet50', _det('retinanet_resnet50_fpn'), None),
    ('resnet50->deeplabv3', 'torchvision.models.segmentation.deeplabv3', 'resnet50', _seg('deeplabv3_resnet50'), None),
    ('resnet50->fcn', 'torchvision.models.segmentation.fcn', 'resnet50', _seg('fcn_resnet50'), None),
    ('vgg16->ssd300', 'torchvision.models.detection.ssd', 'vgg16', _det('ssd300_vgg16'), None),
    ('mobilenet_v3->fasterrcnn_mobilenet', 'torchvision.models.detection.faster_rcnn', 'mobilenet_v3_large',
     _det('fasterrcnn_mobilenet_v3_large_fpn'), None),
    ('mobilenet_v3->ssdlite320', 'torchvision.models.detection.ssdlite', 'mobilenet_v3_large',
     _det('ssdlite320_mobilenet_v3_large'), {'reduced_tail': False}),
    ('mobilenet_v3->deeplabv3', 'torchvision.models.segmentation.deeplabv3', 'mobilenet_v3_large',
     _seg('deeplabv3_mobilenet_v3_large'), None),
    ('mobilenet_v3->lraspp', 'torchvision.models.segmentation.lraspp', 'mobilenet_v3_large',
     _seg('lraspp_mobilenet_v3_large'), None),
]:
    _pair(_name, 'identity', note=f'{_factory} checkpoint into the model whose builder built it')(
        lambda m=_module, f=_factory, b=_build, o=_override: _captured_case(m, f, b, o))


# --- split backbones, backbones side by side, inserted levels, renamed internals


@_pair('resnet18-stem-body', 'identity', fast=True,
       note='resnet18 split into stem (conv1, bn1) and body (layer1..4), fc as head')
def _stem_body():
    src = _tv().models.resnet18(weights=None)
    return Case(_keep(src), _StemBody(src), None, copy.deepcopy(src), _image())


@_pair('convnext_tiny-stem-stages', 'identity',
       note='convnext_tiny features split into stem + stages: every stage index shifts by one')
def _convnext_split():
    src = _tv().models.convnext_tiny(weights=None)
    dst = _Slots(stem=src.features[0], stages=nn.Sequential(*list(src.features)[1:]),
                 head=src.classifier)
    return Case(_keep(src), dst, None)


@_pair('resnet18-closer-slot', 'identity',
       note='a resnet18 checkpoint, a model with a resnet18 backbone and another one a '
            'level deeper (aux.0): the closer slot is right, the deeper gets nothing')
def _closer_slot():
    tv = _tv()
    src = tv.models.resnet18(weights=None)
    return Case(_keep(src), _Slots(backbone=src, aux=nn.Sequential(tv.models.resnet18(weights=None))),
                None)


@_pair('resnet18+resnet34<-resnet34', 'identity',
       note='two backbones of one family side by side; a resnet34 checkpoint '
            'belongs to the resnet34 slot only')
def _side_by_side():
    tv = _tv()
    src = tv.models.resnet34(weights=None)
    return Case(_keep(src), _Slots(small=tv.models.resnet18(weights=None), large=src), None)


@_pair('resnet34+resnet18<-resnet34', 'identity',
       note='the same with the resnet34 slot first')
def _side_by_side_reversed():
    tv = _tv()
    src = tv.models.resnet34(weights=None)
    return Case(_keep(src), _Slots(large=src, small=tv.models.resnet18(weights=None)), None)


@_pair('resnet18x2<-resnet18 (ambiguous)', 'identity', fast=True,
       note='two identical resnet18 slots: which one is meant is unknowable, '
            'the truth is empty and anything loaded is wrong')
def _twins():
    tv = _tv()
    src = tv.models.resnet18(weights=None)
    dst = _Slots(left=tv.models.resnet18(weights=None), right=tv.models.resnet18(weights=None))
    return Case(_keep(src), dst, {})


@_pair('resnet18-wrapped-blocks', 'identity', fast=True,
       note='every residual block wrapped in an extra Sequential level (layer1.0.block.conv1)')
def _wrapped_blocks():
    src = _tv().models.resnet18(weights=None)
    ref = copy.deepcopy(src)
    state = _keep(src)
    for i in range(1, 5):
        layer = getattr(src, f'layer{i}')
        setattr(src, f'layer{i}', nn.Sequential(*[
            nn.Sequential(OrderedDict(block=b)) for b in layer]))
    return Case(state, src, None, ref, _image())


@_pair('resnet50-inserted-level', 'identity',
       note='every resnet50 stage gets a middle level (layer1.blocks.0.conv1)')
def _inserted_level():
    src = _tv().models.resnet50(weights=None)
    state = _keep(src)
    for i in range(1, 5):
        setattr(src, f'layer{i}', nn.Sequential(OrderedDict(blocks=getattr(src, f'layer{i}'))))
    return Case(state, src, None)


@_pair('resnet18-renamed', 'identity', cross_naming=True, fast=True,
       note='every submodule renamed: conv1->c1, bn1->n1, layerN->stageN, downsample->proj, fc->head')
def _renamed18():
    src = _tv().models.resnet18(weights=None)
    return Case(_keep(src), _RenamedResNet(src), None, copy.deepcopy(src), _image())


@_pair('resnet50-renamed', 'identity', cross_naming=True,
       note='resnet50 with every submodule renamed')
def _renamed50():
    src = _tv().models.resnet50(weights=None)
    return Case(_keep(src), _RenamedResNet(src), None)


@_pair('resnet18-lightning-ema', 'identity', fast=True,
       note='a Lightning-style checkpoint holding model.* and ema_model.module.*: the model copy belongs')
def _lightning():
    src = _tv().models.resnet18(weights=None)
    ema = copy.deepcopy(src)
    state = {f'model.{k}': v for k, v in _keep(src).items()}
    state.update({f'ema_model.module.{k}': v for k, v in _keep(ema).items()})
    return Case(state, src, None)


@_pair('resnet18-lightning-ema-first', 'identity',
       note='the same with the EMA copy first in the checkpoint')
def _lightning_ema_first():
    src = _tv().models.resnet18(weights=None)
    ema = copy.deepcopy(src)
    state = {f'ema_model.module.{k}': v for k, v in _keep(ema).items()}
    state.update({f'model.{k}': v for k, v in _keep(src).items()})
    return Case(state, src, None)


@_pair('resnet18-fx-feature-extractor', 'identity',
       note='torchvision create_feature_extractor(resnet18, layer2..layer4)')
def _fx_extractor():
    from torchvision.models.feature_extraction import create_feature_extractor
    src = _tv().models.resnet18(weights=None)
    dst = create_feature_extractor(src, {'layer2': 'c3', 'layer3': 'c4', 'layer4': 'c5'})
    return Case(_keep(src), dst, None)


@_pair('efficientnet_b0-truncated-features', 'identity', fast=True,
       note='nn.Sequential(*list(efficientnet_b0().features)[:5]): a truncated backbone')
def _truncated():
    src = _tv().models.efficientnet_b0(weights=None)
    return Case(_keep(src), nn.Sequential(*list(src.features)[:5]), None)


@_pair('efficientnet_b0-children', 'identity',
       note='nn.Sequential(*list(efficientnet_b0().children())[:-2])')
def _effnet_children():
    src = _tv().models.efficientnet_b0(weights=None)
    return Case(_keep(src), nn.Sequential(*list(src.children())[:-2]), None)


@_pair('mobilenet_v3-children', 'identity',
       note='nn.Sequential(*list(mobilenet_v3_large().children())[:-2])')
def _mobilenet_children():
    src = _tv().models.mobilenet_v3_large(weights=None)
    return Case(_keep(src), nn.Sequential(*list(src.children())[:-2]), None)


# --- cross-library pairs (truth written by hand, checked by equal outputs)


_VIT_RULES = [  # timm name -> torchvision name (regex over full keys)
    (r'cls_token', 'class_token'),
    (r'pos_embed', 'encoder.pos_embedding'),
    (r'patch_embed\.proj\.(\w+)', r'conv_proj.\1'),
    (r'blocks\.(\d+)\.norm1\.(\w+)', r'encoder.layers.encoder_layer_\1.ln_1.\2'),
    (r'blocks\.(\d+)\.attn\.qkv\.(\w+)', r'encoder.layers.encoder_layer_\1.self_attention.in_proj_\2'),
    (r'blocks\.(\d+)\.attn\.proj\.(\w+)', r'encoder.layers.encoder_layer_\1.self_attention.out_proj.\2'),
    (r'blocks\.(\d+)\.norm2\.(\w+)', r'encoder.layers.encoder_layer_\1.ln_2.\2'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'encoder.layers.encoder_layer_\1.mlp.0.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'encoder.layers.encoder_layer_\1.mlp.3.\2'),
    (r'norm\.(\w+)', r'encoder.ln.\1'),
    (r'head\.(\w+)', r'heads.head.\1'),
]


def _vit_truth(timm_keys):
    truth = {}
    for key in timm_keys:
        for pattern, repl in _VIT_RULES:
            if re.fullmatch(pattern, key):
                truth[key] = re.sub(pattern, repl, key)
                break
        else:
            raise KeyError(f'no torchvision name for the timm ViT key {key!r}')
    return truth


def _vits(small):
    timm, tv = _timm(), _tv()
    if small:
        cfg = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                   mlp_dim=128, num_classes=10)
        a = timm.models.vision_transformer.VisionTransformer(
            img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4,
            num_classes=10)
        b = tv.models.vision_transformer.VisionTransformer(**cfg)
        return a, b, _image(32)
    return (timm.create_model('vit_base_patch16_224', pretrained=False),
            tv.models.vit_b_16(weights=None), _image(224))


def _vit_case(small, timm_to_tv):
    a, b, x = _vits(small)
    truth = _vit_truth(a.state_dict())
    if timm_to_tv:
        return Case(_keep(a), b, truth, a, x)
    return Case(_keep(b), a, {v: k for k, v in truth.items()}, b, x)


_pair('timm-vit-small->tv-vit-small', 'outputs', cross_naming=True, fast=True,
      note='a 2-layer ViT configured alike in timm and torchvision')(lambda: _vit_case(True, True))
_pair('tv-vit-small->timm-vit-small', 'outputs', cross_naming=True, fast=True,
      note='the same, torchvision to timm')(lambda: _vit_case(True, False))
_pair('timm-vit_base->tv-vit_b_16', 'outputs', cross_naming=True,
      note='timm vit_base_patch16_224 -> torchvision vit_b_16')(lambda: _vit_case(False, True))
_pair('tv-vit_b_16->timm-vit_base', 'outputs', cross_naming=True,
      note='torchvision vit_b_16 -> timm vit_base_patch16_224')(lambda: _vit_case(False, False))


def _zip_case(src, dst, x):
    """Truth = the two state dicts zipped in order (checked by shapes here, by outputs in the tests)."""
    s, d = _keep(src), dst.state_dict()
    if len(s) != len(d) or any(a.numel() != b.numel() for a, b in zip(s.values(), d.values())):
        raise RuntimeError('the two state dicts do not zip')
    return Case(s, dst, dict(zip(s, d)), src, x)


@_pair('timm-efficientnet_b0->tv-efficientnet_b0', 'outputs', cross_naming=True,
       note='timm efficientnet_b0 -> torchvision efficientnet_b0 (same order, other names)')
def _effnet():
    return _zip_case(_timm().create_model('efficientnet_b0', pretrained=False),
                     _tv().models.efficientnet_b0(weights=None), _image(64))


@_pair('timm-convnext_tiny->tv-convnext_tiny', 'outputs', cross_naming=True,
       note="timm convnext_tiny -> torchvision convnext_tiny; timm's gamma [C] is "
            "torchvision's layer_scale [C, 1, 1]")
def _convnext():
    return _zip_case(_timm().create_model('convnext_tiny', pretrained=False),
                     _tv().models.convnext_tiny(weights=None), _image(64))


def _timm_resnet(arch):
    return _zip_case(_timm().create_model(arch, pretrained=False),
                     getattr(_tv().models, arch)(weights=None), _image(64))


_pair('timm-resnet18->tv-resnet18', 'outputs', fast=True,
      note='timm resnet18 -> torchvision resnet18 (same names)')(lambda: _timm_resnet('resnet18'))
@_pair('timm-resnet18->timm-features_only', 'names', fast=True,
       note="timm resnet18 -> timm.create_model('resnet18', features_only=True)")
def _features_only():
    timm = _timm()
    src = timm.create_model('resnet18', pretrained=False)
    dst = timm.create_model('resnet18', pretrained=False, features_only=True)
    state = _keep(src)
    return Case(state, dst, _truth_by_names(state, dst, [('', '')]))


_pair('timm-resnet50->tv-resnet50', 'outputs',
      note='timm resnet50 -> torchvision resnet50 (same names)')(lambda: _timm_resnet('resnet50'))


# --- the easy pairs of the published README family (truth by names)


def _names_case(make_src, make_dst, rules, unknown=()):
    src = make_src()
    dst = make_dst()
    state = _keep(src)
    unjudged = [k for k in dst.state_dict() if k.startswith(tuple(unknown))] if unknown else ()
    return Case(state, dst, _truth_by_names(state, dst, rules, unknown), unjudged=unjudged)


def _frozen_frcnn():
    tv = _tv()
    from torchvision.ops.misc import FrozenBatchNorm2d
    backbone = tv.models.detection.backbone_utils.resnet_fpn_backbone(
        backbone_name='resnet50', weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3)
    return tv.models.detection.FasterRCNN(backbone, num_classes=91)


def _m(name, **kw):
    return lambda: getattr(_tv().models, name)(weights=None, **kw)


_EASY = [
    ('resnet50->wrapper', _m('resnet50'), lambda: _Wrap('module', _m('resnet50')(), 'extra'), [('', 'module.')], ()),
    ('resnet50->fasterrcnn(frozen bn)', _m('resnet50'), _frozen_frcnn, [('', 'backbone.body.')], ()),
    ('resnet101->resnet50', _m('resnet101'), _m('resnet50'), [('', '')], ()),
    ('resnet50->resnet101', _m('resnet50'), _m('resnet101'), [('', '')], ()),
    ('resnet18->resnet34', _m('resnet18'), _m('resnet34'), [('', '')], ()),
    ('resnet18->resnet18(10 classes)', _m('resnet18'), _m('resnet18', num_classes=10), [('', '')], ()),
    ('efficientnet_b1->b0', _m('efficientnet_b1'), _m('efficientnet_b0'), [('', '')], ()),
    ('efficientnet_b0->b1', _m('efficientnet_b0'), _m('efficientnet_b1'), [('', '')], ()),
    ('maskrcnn->fasterrcnn', _det('maskrcnn_resnet50_fpn'), _det('fasterrcnn_resnet50_fpn'), [('', '')], ()),
    ('fasterrcnn->maskrcnn', _det('fasterrcnn_resnet50_fpn'), _det('maskrcnn_resnet50_fpn'), [('', '')], ()),
    ('deeplabv3->fcn', lambda: _tv().models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, aux_loss=False),
     _seg('fcn_resnet50'), [('backbone.', 'backbone.')], ('classifier.', 'aux_classifier.')),
    ('vit_b_16->wrapper', _m('vit_b_16'), lambda: _Wrap('backbone', _m('vit_b_16')()), [('', 'backbone.')], ()),
    ('vit_b_16->vit_l_16', _m('vit_b_16'), _m('vit_l_16'), [('', '')], ()),
    ('swin_t->wrapper', _m('swin_t'), lambda: _Wrap('encoder', _m('swin_t')(), 'head2'), [('', 'encoder.')], ()),
    ('convnext_tiny->wrapper', _m('convnext_tiny'), lambda: _Wrap('model', _m('convnext_tiny')()), [('', 'model.')], ()),
    ('renamed wrapper', lambda: _Wrap('module', _m('resnet50')(), 'head_a'),
     lambda: _Wrap('backbone', _m('resnet50')(), 'head_b'), [('module.', 'backbone.')], ('head_a.', 'head_b.')),
    ('unwrap DataParallel prefix', lambda: _Wrap('module', _m('resnet18')()), _m('resnet18'), [('module.', '')], ()),
    ('densenet121->densenet169', _m('densenet121'), _m('densenet169'), [('', '')], ()),
    ('regnet_y_400mf->wrapper', _m('regnet_y_400mf'), lambda: _Wrap('net', _m('regnet_y_400mf')()), [('', 'net.')], ()),
]
for _name, _src, _dst, _rules, _unknown in _EASY:
    _pair(_name, 'names', fast=_name in ('resnet18->resnet34', 'resnet18->resnet18(10 classes)',
                                         'unwrap DataParallel prefix'),
          note='published family: same names after a prefix change')(
        lambda s=_src, d=_dst, r=_rules, u=_unknown: _names_case(s, d, r, u))



# ---------------------------------------------------------------------------
# more idioms, families and naming schemes (the hunt for wrong placements)


def _tv_model(arch, **kw):
    return getattr(_tv().models, arch)(weights=None, **kw)


def _children_case(arch, drop, **kw):
    """``nn.Sequential(*list(model.children())[:-drop])``: names become indices."""
    src = _tv_model(arch, **kw)
    children = list(src.children())
    return Case(_keep(src), nn.Sequential(*children[:len(children) - drop]), None)


_NO_AUX = dict(aux_logits=False, init_weights=False)
for _arch, _drop, _kw in [
    ('vgg16', 1, {}), ('vgg16_bn', 2, {}), ('densenet121', 1, {}), ('mobilenet_v2', 1, {}),
    ('mobilenet_v3_small', 2, {}), ('regnet_y_400mf', 2, {}), ('convnext_tiny', 2, {}),
    ('swin_t', 3, {}), ('shufflenet_v2_x1_0', 1, {}), ('mnasnet1_0', 1, {}),
    ('googlenet', 3, _NO_AUX), ('inception_v3', 3, _NO_AUX), ('squeezenet1_1', 1, {}),
    ('resnext50_32x4d', 2, {}), ('efficientnet_v2_s', 2, {}),
]:
    _pair(f'{_arch}-children', 'identity',
          fast=_arch in ('squeezenet1_1', 'mobilenet_v3_small'),
          note=f'nn.Sequential(*list({_arch}().children())[:-{_drop}])')(
        lambda a=_arch, d=_drop, k=_kw: _children_case(a, d, **k))


@_pair('vgg16_bn-features', 'identity',
       note='vgg16_bn().features alone as the model: features.N -> N')
def _vgg_features():
    src = _tv_model('vgg16_bn')
    return Case(_keep(src), src.features, None)


@_pair('resnet50-children-newhead', 'identity',
       note='nn.Sequential(nn.Sequential(*children[:-1]), nn.Flatten(), nn.Linear(2048, 10)): '
            'the old fc belongs nowhere (the new head is unjudged)')
def _children_newhead():
    src = _tv_model('resnet50')
    dst = nn.Sequential(nn.Sequential(*list(src.children())[:-1]), nn.Flatten(), nn.Linear(2048, 10))
    return Case(_keep(src), dst, None, unjudged=['2.weight', '2.bias'])


@_pair('vit-small-children', 'identity',
       note="nn.Sequential(*list(torchvision ViT().children())[:-1]): the root's class_token "
            'is lost, conv_proj -> 0, encoder -> 1')
def _vit_children():
    src = _tv().models.vision_transformer.VisionTransformer(
        image_size=32, patch_size=8, num_layers=4, num_heads=2, hidden_dim=32, mlp_dim=64)
    return Case(_keep(src), nn.Sequential(*list(src.children())[:-1]), None)


@_pair('densenet121-layergetter', 'identity',
       note='IntermediateLayerGetter(densenet121().features, denseblock1..4)')
def _densenet_getter():
    from torchvision.models._utils import IntermediateLayerGetter
    src = _tv_model('densenet121')
    layers = {f'denseblock{i}': str(i) for i in range(1, 5)}
    return Case(_keep(src), IntermediateLayerGetter(src.features, layers), None)


@_pair('mobilenet_v2-layergetter', 'identity', fast=True,
       note="IntermediateLayerGetter(mobilenet_v2().features, {'3': 'low', '17': 'high'})")
def _mobilenet_getter():
    from torchvision.models._utils import IntermediateLayerGetter
    src = _tv_model('mobilenet_v2')
    return Case(_keep(src), IntermediateLayerGetter(src.features, {'3': 'low', '17': 'high'}), None)


def _fx_case(arch, nodes, **kw):
    from torchvision.models.feature_extraction import create_feature_extractor
    src = _tv_model(arch, **kw)
    return Case(_keep(src), create_feature_extractor(src, nodes), None)


_pair('mobilenet_v3_large-fx-extractor', 'identity',
      note="create_feature_extractor(mobilenet_v3_large, features.3/6/12)")(
    lambda: _fx_case('mobilenet_v3_large', {'features.3': 'a', 'features.6': 'b', 'features.12': 'c'}))
_pair('regnet_y_400mf-fx-extractor', 'identity',
      note='create_feature_extractor(regnet_y_400mf, trunk_output.block2/block4)')(
    lambda: _fx_case('regnet_y_400mf', {'trunk_output.block2': 'a', 'trunk_output.block4': 'b'}))
_pair('convnext_tiny-fx-extractor', 'identity',
      note='create_feature_extractor(convnext_tiny, features.3/features.5)')(
    lambda: _fx_case('convnext_tiny', {'features.3': 'a', 'features.5': 'b'}))



# --- split backbones (slices re-indexed or keeping their indices)


def _reindexed(seq, cuts):
    """``seq`` cut at ``cuts`` into new Sequentials (their indices restart at 0)."""
    items, bounds = list(seq), [0, *cuts, len(seq)]
    return [nn.Sequential(*items[a:b]) for a, b in zip(bounds, bounds[1:])]


def _kept_indices(seq, cuts):
    """``seq`` cut at ``cuts`` into Sequentials that keep the original indices (LPIPS)."""
    bounds, out = [0, *cuts, len(seq)], []
    for a, b in zip(bounds, bounds[1:]):
        part = nn.Sequential()
        for i in range(a, b):
            part.add_module(str(i), seq[i])
        out.append(part)
    return out


_VGG16_CUTS = [4, 9, 16, 23]  # relu1_2, relu2_2, relu3_3, relu4_3 (perceptual losses)


@_pair('vgg16-perceptual-slices', 'identity',
       note='vgg16.features cut into slice1..slice5 re-indexed from 0, as perceptual losses do')
def _vgg_slices():
    src = _tv_model('vgg16')
    parts = _reindexed(src.features, _VGG16_CUTS)
    return Case(_keep(src), _Slots(**{f'slice{i + 1}': p for i, p in enumerate(parts)}), None)


@_pair('vgg16-lpips-slices', 'identity',
       note="vgg16.features cut into slice1..slice5 that keep their indices (LPIPS: slice2.4.weight)")
def _vgg_lpips():
    src = _tv_model('vgg16')
    parts = _kept_indices(src.features, _VGG16_CUTS)
    return Case(_keep(src), _Slots(**{f'slice{i + 1}': p for i, p in enumerate(parts)}), None)


@_pair('resnet50-c4', 'identity',
       note='resnet50 split as a C4 detector: backbone = stem..layer3 re-indexed, '
            'roi_heads.res5 = layer4, the fc belongs nowhere')
def _resnet_c4():
    r = _tv_model('resnet50')
    backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
    return Case(_keep(r), _Slots(backbone=backbone, roi_heads=_Slots(res5=r.layer4)), None)


@_pair('resnet18-three-way', 'identity', fast=True,
       note='resnet18 as ModuleDict(stem=(conv, bn), stages=ModuleList(layer1..4), head=fc)')
def _three_way():
    r = _tv_model('resnet18')
    dst = nn.ModuleDict(dict(
        stem=nn.Sequential(OrderedDict(conv=r.conv1, bn=r.bn1)),
        stages=nn.ModuleList([r.layer1, r.layer2, r.layer3, r.layer4]), head=r.fc))
    return Case(_keep(r), dst, None)


@_pair('mobilenet_v2-low-high', 'identity', fast=True,
       note='mobilenet_v2.features cut into low = [:4] and high = [4:] re-indexed (deeplab-style)')
def _mobilenet_split():
    src = _tv_model('mobilenet_v2')
    low, high = _reindexed(src.features, [4])
    return Case(_keep(src), _Slots(low=low, high=high), None)


@_pair('densenet121-split', 'identity',
       note='densenet121.features cut after denseblock2, both halves re-indexed (names lost)')
def _densenet_split():
    src = _tv_model('densenet121')
    first, second = _reindexed(src.features, [6])
    return Case(_keep(src), _Slots(encoder1=first, encoder2=second, classifier=src.classifier), None)


@_pair('efficientnet_b0-stem-blocks-head', 'identity',
       note='efficientnet_b0.features as stem = [0], blocks = [1:8] re-indexed, head = [8]')
def _effnet_split():
    src = _tv_model('efficientnet_b0')
    f = src.features
    return Case(_keep(src), _Slots(stem=f[0], blocks=nn.Sequential(*list(f)[1:8]), head=f[8],
                                   fc=src.classifier), None)


@_pair('swin_t-stem-stages', 'identity',
       note='swin_t.features as stem = [0] and stages = ModuleList([1:]) (every index shifts)')
def _swin_split():
    src = _tv_model('swin_t')
    return Case(_keep(src), _Slots(stem=src.features[0], stages=nn.ModuleList(list(src.features)[1:]),
                                   norm=src.norm, head=src.head), None)


@_pair('regnet_y_400mf-stem-stages', 'identity', fast=True,
       note='regnet_y_400mf as stem + stages = ModuleList(trunk_output.block1..4) + fc')
def _regnet_split():
    src = _tv_model('regnet_y_400mf')
    return Case(_keep(src), _Slots(stem=src.stem, stages=nn.ModuleList(list(src.trunk_output)),
                                   fc=src.fc), None)


# --- backbones side by side (one belongs, or none when they tie)


def _side_case(src_arch, slots, belongs):
    """``slots``: ``[(name, arch)]``; the source is the slot named ``belongs`` (None: a fresh model, ambiguous)."""
    models = {name: _tv_model(arch) for name, arch in slots}
    src = models[belongs] if belongs else _tv_model(src_arch)
    return Case(_keep(src), _Slots(**models), None if belongs else {})


for _name, _src, _slots, _belongs in [
    ('resnet50+resnet18<-resnet18', 'resnet18', [('teacher', 'resnet50'), ('student', 'resnet18')], 'student'),
    ('resnet18+resnet50<-resnet18', 'resnet18', [('student', 'resnet18'), ('teacher', 'resnet50')], 'student'),
    ('resnet18+resnet50<-resnet50', 'resnet50', [('student', 'resnet18'), ('teacher', 'resnet50')], 'teacher'),
    ('densenet121+densenet169<-densenet121', 'densenet121',
     [('a', 'densenet121'), ('b', 'densenet169')], 'a'),
    ('densenet169+densenet121<-densenet121', 'densenet121',
     [('a', 'densenet169'), ('b', 'densenet121')], 'b'),
    ('efficientnet_b1+b0<-b0', 'efficientnet_b0',
     [('big', 'efficientnet_b1'), ('small', 'efficientnet_b0')], 'small'),
    ('mobilenet_v3_large+small<-small', 'mobilenet_v3_small',
     [('large', 'mobilenet_v3_large'), ('small', 'mobilenet_v3_small')], 'small'),
    ('resnet18x3<-resnet18 (ambiguous)', 'resnet18',
     [('a', 'resnet18'), ('b', 'resnet18'), ('c', 'resnet18')], None),
    ('resnet50+resnet50<-resnet50 (ambiguous)', 'resnet50',
     [('online', 'resnet50'), ('target', 'resnet50')], None),
]:
    _pair(_name, 'identity', fast=_name.startswith('mobilenet'),
          note=f'{_src} checkpoint, slots {_slots}: ' + (
              f'it belongs to {_belongs!r} only' if _belongs else 'the slots tie: nothing belongs'))(
        lambda s=_src, sl=_slots, b=_belongs: _side_case(s, sl, b))


@_pair('vgg11+vgg13 features<-vgg11', 'identity',
       note='vgg11.features and vgg13.features side by side; a vgg11.features checkpoint '
            '(its first conv fits both)')
def _vgg_side():
    a, b = _tv_model('vgg11').features, _tv_model('vgg13').features
    return Case(_keep(a), _Slots(vgg13=b, vgg11=a), None)


@_pair('siamese rgb/depth swapped order', 'names',
       note='a two-branch checkpoint (rgb.*, depth.*) into the same model with the branches '
            'registered in the other order: names decide, order must not')
def _siamese_swapped():
    src = _Slots(rgb=_tv_model('resnet18'), depth=_tv_model('resnet18'))
    dst = _Slots(depth=_tv_model('resnet18'), rgb=_tv_model('resnet18'))
    state = _keep(src)
    return Case(state, dst, _truth_by_names(state, dst, [('', '')]))


# --- other naming schemes built from torchvision modules (truth by identity)


class _Named(nn.Module):
    """A module whose submodules are given as ``(name, module)`` pairs, in that order."""

    def __init__(self, *named):
        super().__init__()
        for name, module in named:
            self.add_module(name, module)


class _ConvWithNorm(nn.Module):
    """detectron2's Conv2d: the kernel as ``weight`` and its norm as ``norm`` (conv1.norm.weight)."""

    def __init__(self, conv, norm):
        super().__init__()
        self.weight = conv.weight
        self.norm = norm


def _hf_conv(conv, bn):
    return _Named(('convolution', conv), ('normalization', bn))


def _hf_resnet(r):
    """HuggingFace transformers' ResNet names: the shortcut is registered before the layers."""
    stages = []
    for i in range(1, 5):
        layers = []
        for b in getattr(r, f'layer{i}'):
            convs = [_hf_conv(getattr(b, f'conv{j}'), getattr(b, f'bn{j}')) for j in (1, 2, 3)
                     if hasattr(b, f'conv{j}')]
            shortcut = _hf_conv(*b.downsample) if b.downsample is not None else nn.Identity()
            layers.append(_Named(('shortcut', shortcut), ('layer', nn.Sequential(*convs))))
        stages.append(_Named(('layers', nn.Sequential(*layers))))
    embedder = _Named(('embedder', _hf_conv(r.conv1, r.bn1)))
    resnet = _Named(('embedder', embedder), ('encoder', _Named(('stages', nn.ModuleList(stages)))))
    return _Named(('resnet', resnet), ('classifier', nn.Sequential(nn.Flatten(), r.fc)))


def _d2_resnet(r):
    """detectron2's names: bottom_up.stem.conv1(.norm), res2..res5, shortcut first, no fc."""
    stages = []
    for i in range(1, 5):
        blocks = []
        for b in getattr(r, f'layer{i}'):
            named = []
            if b.downsample is not None:
                named.append(('shortcut', _ConvWithNorm(*b.downsample)))
            named += [(f'conv{j}', _ConvWithNorm(getattr(b, f'conv{j}'), getattr(b, f'bn{j}')))
                      for j in (1, 2, 3) if hasattr(b, f'conv{j}')]
            blocks.append(_Named(*named))
        stages.append((f'res{i + 1}', nn.Sequential(*blocks)))
    stem = _Named(('conv1', _ConvWithNorm(r.conv1, r.bn1)))
    return _Named(('backbone', _Named(('bottom_up', _Named(('stem', stem), *stages)))))


_pair('resnet50->hf-names', 'identity', cross_naming=True,
      note='torchvision resnet50 -> the same weights under HuggingFace ResNet names '
           '(embedder.embedder.convolution, stages.N.layers.M.shortcut first, layer.K)')(
    lambda: (lambda r: Case(_keep(r), _hf_resnet(r), None))(_tv_model('resnet50')))
_pair('hf-names->resnet50', 'identity', cross_naming=True,
      note='the reverse: a HuggingFace-named resnet50 checkpoint into torchvision resnet50')(
    lambda: (lambda r: Case(_keep(_hf_resnet(r)), r, None))(_tv_model('resnet50')))
_pair('resnet50->detectron2-names', 'identity', cross_naming=True,
      note='torchvision resnet50 -> detectron2 names (backbone.bottom_up.res2.0.conv1.norm.weight, '
           'shortcut before conv1, the fc belongs nowhere)')(
    lambda: (lambda r: Case(_keep(r), _d2_resnet(r), None))(_tv_model('resnet50')))
_pair('detectron2-names->resnet18', 'identity', cross_naming=True, fast=True,
      note='a detectron2-named resnet18 checkpoint into torchvision resnet18 (its fc gets nothing)')(
    lambda: (lambda r: Case(_keep(_d2_resnet(r)), r, None))(_tv_model('resnet18')))


@_pair('densenet121-renamed', 'identity', cross_naming=True,
       note='densenet121 with denseblockN -> stageN, denselayerM -> unitM, normK -> bnK, convK -> cK')
def _densenet_renamed():
    src = _tv_model('densenet121')
    f = src.features
    items = []
    for name, mod in f.named_children():
        if name.startswith('denseblock'):
            units = []
            for lname, layer in mod.named_children():
                units.append((lname.replace('denselayer', 'unit'), _Named(
                    ('bn1', layer.norm1), ('c1', layer.conv1), ('bn2', layer.norm2), ('c2', layer.conv2))))
            mod = _Named(*units)
            name = name.replace('denseblock', 'stage')
        items.append((name, mod))
    return Case(_keep(src), _Named(('body', _Named(*items)), ('fc', src.classifier)), None)


# --- prefixes and levels from the way a checkpoint was saved


@_pair('resnet18 compiled checkpoint', 'identity',
       note='a state dict saved from torch.compile(model) (_orig_mod.*) into the plain model')
def _compiled_src():
    r = _tv_model('resnet18')
    return Case(torch.compile(r).state_dict(keep_vars=True), r, None)


@_pair('resnet18 into compiled model', 'identity',
       note='a plain checkpoint into a torch.compile(model) (whose keys are _orig_mod.*)')
def _compiled_dst():
    r = _tv_model('resnet18')
    return Case(_keep(r), torch.compile(r), None)


@_pair('DataParallel at another depth', 'identity',
       note='a checkpoint of DataParallel(Wrap(backbone=resnet50)) (module.backbone.*) into '
            'Wrap(backbone=DataParallel(resnet50)) (backbone.module.*)')
def _dp_depth():
    r = _tv_model('resnet50')
    src = nn.DataParallel(_Wrap('backbone', r), device_ids=[])
    return Case(_keep(src), _Wrap('backbone', nn.DataParallel(r, device_ids=[]), 'head'), None)


@_pair('resnet18 + model_ema.module (timm flat)', 'identity', fast=True,
       note='a flat checkpoint with the model at the root and its EMA under model_ema.module.*: '
            'the root copy belongs')
def _timm_flat_ema():
    r = _tv_model('resnet18')
    state = dict(_keep(r))
    state.update({f'model_ema.module.{k}': v for k, v in _keep(copy.deepcopy(r)).items()})
    return Case(state, r, None)


@_pair('resnet50-removed-level', 'identity',
       note='a checkpoint whose stages had a middle level (layer1.blocks.0.conv1) into plain resnet50')
def _removed_level():
    r = _tv_model('resnet50')
    src = copy.copy(r)
    src._modules = OrderedDict(r._modules)
    for i in range(1, 5):
        src._modules[f'layer{i}'] = nn.Sequential(OrderedDict(blocks=getattr(r, f'layer{i}')))
    return Case(_keep(src), r, None)



# --- more cross-library pairs (timm <-> torchvision), checked by equal outputs


def _timm_tv(timm_arch, tv_arch, size=64, timm_to_tv=True, tv_kw=None, prepare=None):
    """timm and torchvision models whose state dicts zip in order."""
    a = _timm().create_model(timm_arch, pretrained=False)
    b = _tv_model(tv_arch, **(tv_kw or {}))
    if prepare:
        prepare(a)
    return _zip_case(a, b, _image(size)) if timm_to_tv else _zip_case(b, a, _image(size))


def _bn_eps(eps):
    def prepare(model):
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = eps
    return prepare


for _name, _args, _kw in [
    ('timm-densenet121->tv-densenet121', ('densenet121', 'densenet121'), {}),
    ('tv-densenet121->timm-densenet121', ('densenet121', 'densenet121'), dict(timm_to_tv=False)),
    ('timm-inception_v3->tv-inception_v3', ('inception_v3', 'inception_v3'),
     dict(size=96, tv_kw=_NO_AUX)),
    ('timm-vgg11->tv-vgg11', ('vgg11', 'vgg11'), dict(size=224)),
    ('timm-mobilenetv2_100->tv-mobilenet_v2', ('mobilenetv2_100', 'mobilenet_v2'), {}),
    ('tv-mobilenet_v2->timm-mobilenetv2_100', ('mobilenetv2_100', 'mobilenet_v2'), dict(timm_to_tv=False)),
    # torchvision's MobileNetV3 BatchNorms use eps=1e-3 (timm's 1e-5): set for the output check
    ('timm-mobilenetv3_large_100->tv-mobilenet_v3_large', ('mobilenetv3_large_100', 'mobilenet_v3_large'),
     dict(prepare=_bn_eps(1e-3))),
    ('timm-efficientnet_b2->tv-efficientnet_b2', ('efficientnet_b2', 'efficientnet_b2'), {}),
    ('timm-resnet34->tv-resnet34', ('resnet34', 'resnet34'), {}),
    ('timm-resnext50_32x4d->tv-resnext50_32x4d', ('resnext50_32x4d', 'resnext50_32x4d'), {}),
    ('timm-mnasnet_100->tv-mnasnet1_0', ('mnasnet_100', 'mnasnet1_0'), {}),
    ('tv-mnasnet1_0->timm-mnasnet_100', ('mnasnet_100', 'mnasnet1_0'), dict(timm_to_tv=False)),
]:
    _pair(_name, 'outputs', cross_naming=not _name.startswith('timm-res'),
          note=f'timm {_args[0]} <-> torchvision {_args[1]} (the state dicts zip in order)')(
        lambda a=_args, k=_kw: _timm_tv(*a, **k))


def _regnet_truth(timm_keys):
    """timm RegNet names -> torchvision's (timm: conv1..3, se, downsample; torchvision: proj first)."""
    parts = {'conv1.conv': 'f.a.0', 'conv1.bn': 'f.a.1', 'conv2.conv': 'f.b.0', 'conv2.bn': 'f.b.1',
             'se.fc1': 'f.se.fc1', 'se.fc2': 'f.se.fc2', 'conv3.conv': 'f.c.0', 'conv3.bn': 'f.c.1',
             'downsample.conv': 'proj.0', 'downsample.bn': 'proj.1'}
    truth = {}
    for key in timm_keys:
        m = re.fullmatch(r's(\d)\.b(\d+)\.(\w+\.\w+)\.(\w+)', key)
        if m:
            stage, block, part, leaf = m.groups()
            truth[key] = f'trunk_output.block{stage}.block{stage}-{int(block) - 1}.{parts[part]}.{leaf}'
        elif key.startswith('stem.'):
            truth[key] = key.replace('stem.conv.', 'stem.0.').replace('stem.bn.', 'stem.1.')
        elif key.startswith('head.fc.'):
            truth[key] = key[len('head.'):]
        else:
            raise KeyError(f'no torchvision name for the timm RegNet key {key!r}')
    return truth


def _regnet_case(timm_arch, tv_arch, timm_to_tv):
    a = _timm().create_model(timm_arch, pretrained=False)
    b = _tv_model(tv_arch)
    truth = _regnet_truth(a.state_dict())
    if timm_to_tv:
        return Case(_keep(a), b, truth, a, _image())
    return Case(_keep(b), a, {v: k for k, v in truth.items()}, b, _image())


_pair('timm-regnety_004->tv-regnet_y_400mf', 'outputs', cross_naming=True,
      note="timm regnety_004 -> torchvision regnet_y_400mf: torchvision registers the "
           "shortcut (proj, [48, 32, 1, 1]) before f.a (the same shape): order misleads")(
    lambda: _regnet_case('regnety_004', 'regnet_y_400mf', True))
_pair('tv-regnet_y_400mf->timm-regnety_004', 'outputs', cross_naming=True,
      note='the same, torchvision to timm')(
    lambda: _regnet_case('regnety_004', 'regnet_y_400mf', False))


_SWIN_RULES = [  # timm name -> torchvision name
    (r'patch_embed\.proj\.(\w+)', r'features.0.0.\1'),
    (r'patch_embed\.norm\.(\w+)', r'features.0.2.\1'),
    (r'layers\.(\d)\.blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'features.{2s+1}.\2.mlp.0.\3'),
    (r'layers\.(\d)\.blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'features.{2s+1}.\2.mlp.3.\3'),
    (r'layers\.(\d)\.blocks\.(\d+)\.(.+)', r'features.{2s+1}.\2.\3'),
    (r'layers\.(\d)\.downsample\.(\w+)\.(\w+)', r'features.{2s}.\2.\3'),
    (r'norm\.(\w+)', r'norm.\1'),
    (r'head\.fc\.(\w+)', r'head.\1'),
]


def _swin_truth(timm_keys):
    truth = {}
    for key in timm_keys:
        for pattern, repl in _SWIN_RULES:
            m = re.fullmatch(pattern, key)
            if m:
                if '{' in repl:
                    stage = int(m.group(1))
                    repl = repl.replace('{2s+1}', str(2 * stage + 1)).replace('{2s}', str(2 * stage))
                truth[key] = m.expand(repl)
                break
        else:
            raise KeyError(f'no torchvision name for the timm Swin key {key!r}')
    return truth


@_pair('timm-swin_tiny->tv-swin_t', 'outputs', cross_naming=True,
       note="timm swin_tiny_patch4_window7_224 -> torchvision swin_t: timm's downsample opens "
            "a stage, torchvision's PatchMerging is its own features entry; torchvision's "
            'relative_position_index buffers get nothing')
def _swin_cross():
    a = _timm().create_model('swin_tiny_patch4_window7_224', pretrained=False)
    return Case(_keep(a), _tv_model('swin_t'), _swin_truth(a.state_dict()), a, _image(224))


@_pair('tv-resnet50->timm-features_only(1,2)', 'names',
       note="torchvision resnet50 -> timm.create_model('resnet50', features_only=True, "
            'out_indices=(1, 2)): layer3, layer4 and fc belong nowhere')
def _tv_features_only():
    src = _tv_model('resnet50')
    dst = _timm().create_model('resnet50', pretrained=False, features_only=True, out_indices=(1, 2))
    state = _keep(src)
    return Case(state, dst, _truth_by_names(state, dst, [('', '')]))



# --- a detector's or segmenter's checkpoint back into the plain backbone


def _captured_reverse(module_name, factory_name, build, override=None):
    """The source = a whole detector's state; the destination = the backbone built inside it."""
    with _capture(module_name, factory_name, override) as built:
        whole = build()
    if len(built) != 1:
        raise RuntimeError(f'expected one {factory_name} built inside, got {len(built)}')
    return Case(_keep(whole), built[0], None)


for _name, _module, _factory, _build, _override in [
    ('fasterrcnn->resnet50', 'torchvision.models.detection.faster_rcnn', 'resnet50',
     _det('fasterrcnn_resnet50_fpn'), None),
    ('retinanet->resnet50', 'torchvision.models.detection.retinanet', 'resnet50',
     _det('retinanet_resnet50_fpn'), None),
    ('deeplabv3->resnet50', 'torchvision.models.segmentation.deeplabv3', 'resnet50',
     _seg('deeplabv3_resnet50'), None),
    ('ssd300->vgg16', 'torchvision.models.detection.ssd', 'vgg16', _det('ssd300_vgg16'), None),
    ('lraspp->mobilenet_v3_large', 'torchvision.models.segmentation.lraspp', 'mobilenet_v3_large',
     _seg('lraspp_mobilenet_v3_large'), None),
    ('fasterrcnn_mobilenet->mobilenet_v3_large', 'torchvision.models.detection.faster_rcnn',
     'mobilenet_v3_large', _det('fasterrcnn_mobilenet_v3_large_fpn'), None),
]:
    _pair(_name, 'identity',
          note=f'a whole {_name.split("->")[0]} checkpoint into the {_factory} it was built on: '
               'its backbone belongs, nothing else (the classifier gets nothing)')(
        lambda m=_module, f=_factory, b=_build, o=_override: _captured_reverse(m, f, b, o))


for _name, _module, _factory, _build in [
    ('resnet50->fcos', 'torchvision.models.detection.fcos', 'resnet50', _det('fcos_resnet50_fpn')),
    ('resnet50->keypointrcnn', 'torchvision.models.detection.keypoint_rcnn', 'resnet50',
     _det('keypointrcnn_resnet50_fpn')),
    ('resnet50->maskrcnn_v2', 'torchvision.models.detection.mask_rcnn', 'resnet50',
     _det('maskrcnn_resnet50_fpn_v2')),
]:
    _pair(_name, 'identity', note=f'{_factory} checkpoint into the model whose builder built it')(
        lambda m=_module, f=_factory, b=_build: _captured_case(m, f, b))


@_pair('resnet50->detr-backbone(frozen bn)', 'names',
       note='resnet50 -> a DETR-style Joiner: backbone.0.body = IntermediateLayerGetter(resnet50 '
            'with FrozenBatchNorm2d) + a position embedding; num_batches_tracked belongs nowhere')
def _detr():
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.ops.misc import FrozenBatchNorm2d
    src = _tv_model('resnet50')
    body = IntermediateLayerGetter(_tv_model('resnet50', norm_layer=FrozenBatchNorm2d), {'layer4': '0'})
    joiner = nn.Sequential(_Wrap('body', body), nn.Embedding(50, 128))
    dst = _Slots(backbone=joiner, input_proj=nn.Conv2d(2048, 256, 1),
                 class_embed=nn.Linear(256, 92), query_embed=nn.Embedding(100, 256))
    state = _keep(src)
    truth = _truth_by_names(state, dst, [('', 'backbone.0.body.')])
    return Case(state, dst, truth)


# --- inserted levels in other families; timm models through children()


@_pair('efficientnet_b0-inserted-level', 'identity', fast=True,
       note='every efficientnet_b0 stage gets a middle level (features.1.blocks.0.block...)')
def _effnet_inserted():
    src = _tv_model('efficientnet_b0')
    state = _keep(src)
    for i in range(1, 8):
        src.features[i] = nn.Sequential(OrderedDict(blocks=src.features[i]))
    return Case(state, src, None)


@_pair('vgg16_bn-encoder-level', 'identity',
       note='vgg16_bn with features moved under encoder.features and classifier under head.mlp')
def _vgg_levels():
    src = _tv_model('vgg16_bn')
    dst = _Slots(encoder=_Slots(features=src.features, pool=src.avgpool),
                 head=_Slots(mlp=src.classifier))
    return Case(_keep(src), dst, None)


def _timm_children(arch, drop):
    src = _timm().create_model(arch, pretrained=False)
    children = list(src.children())
    return Case(_keep(src), nn.Sequential(*children[:len(children) - drop]), None)


_pair('timm-efficientnet_b0-children', 'identity',
      note="nn.Sequential(*list(timm efficientnet_b0.children())[:-2]) (conv_stem, bn1, "
           'blocks, conv_head, bn2)')(lambda: _timm_children('efficientnet_b0', 2))
_pair('timm-convnext_tiny-children', 'identity',
      note='nn.Sequential(*list(timm convnext_tiny.children())[:-1]) (stem, stages, norm_pre)')(
    lambda: _timm_children('convnext_tiny', 1))
_pair('timm-resnet50-children', 'identity',
      note='nn.Sequential(*list(timm resnet50.children())[:-2])')(
    lambda: _timm_children('resnet50', 2))


@_pair('tv-efficientnet_b0->timm-features_only', 'names', cross_naming=True,
       note="torchvision efficientnet_b0 -> timm efficientnet_b0 features_only: the truth is "
            "the verified timm<->torchvision zip (pair timm-efficientnet_b0->tv-efficientnet_b0) "
            'restricted to the keys features_only keeps (no conv_head, bn2, classifier)')
def _tv_effnet_features_only():
    timm = _timm()
    src = _tv_model('efficientnet_b0')
    full = timm.create_model('efficientnet_b0', pretrained=False)
    dst = timm.create_model('efficientnet_b0', pretrained=False, features_only=True)
    state = _keep(src)
    kept = dst.state_dict().keys()
    zipped = dict(zip(state, full.state_dict()))
    return Case(state, dst, {s: d for s, d in zipped.items() if d in kept})


@_pair('timm-vit_small->tv-vit(small config)', 'outputs', cross_naming=True,
       note='timm vit_small_patch16_224 -> torchvision VisionTransformer configured alike '
            '(384 wide, 6 heads, 12 layers)')
def _vit_small_real():
    a = _timm().create_model('vit_small_patch16_224', pretrained=False)
    b = _tv().models.vision_transformer.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536)
    return Case(_keep(a), b, _vit_truth(a.state_dict()), a, _image(224))



# --- nn.Sequential(*model.children()) with nothing dropped (heads included)


for _arch, _kw in [
    ('resnet50', {}), ('vgg16_bn', {}), ('densenet121', {}), ('mobilenet_v3_large', {}),
    ('convnext_tiny', {}), ('swin_t', {}), ('efficientnet_b0', {}), ('regnet_y_400mf', {}),
    ('googlenet', _NO_AUX), ('mobilenet_v2', {}), ('shufflenet_v2_x1_0', {}), ('squeezenet1_1', {}),
]:
    _pair(f'{_arch}-all-children', 'identity', fast=_arch == 'squeezenet1_1',
          note=f'nn.Sequential(*{_arch}().children()): every child, the head included')(
        lambda a=_arch, k=_kw: _children_case(a, 0, **k))


# --- a checkpoint read from a .safetensors file: keys sorted by name


def _sorted_keys(name):
    """The named pair with its source in the order safetensors' ``safe_open`` lists keys."""
    def build():
        case = PAIRS[name].build()
        case.source = dict(sorted(case.source.items()))
        return case
    return build


for _base in ['resnet18-renamed', 'resnet50-children', 'efficientnet_b0-children',
              'vgg16-perceptual-slices', 'densenet121-split', 'swin_t-stem-stages',
              'timm-efficientnet_b0->tv-efficientnet_b0', 'timm-convnext_tiny->tv-convnext_tiny',
              'timm-vit-small->tv-vit-small', 'timm-mobilenetv2_100->tv-mobilenet_v2',
              'timm-swin_tiny->tv-swin_t', 'resnet18x2<-resnet18 (ambiguous)',
              'resnet50+resnet50<-resnet50 (ambiguous)', 'resnet18+resnet34<-resnet34',
              'resnet50+resnet18<-resnet18', 'siamese rgb/depth swapped order',
              'resnet18-lightning-ema', 'resnet18-stem-body', 'resnet50-c4', 'vgg16-lpips-slices',
              'timm-regnety_004->tv-regnet_y_400mf', 'timm-vit_small->tv-vit(small config)',
              'mobilenet_v3->ssdlite320', 'resnet18-fpn']:
    _pair(f'{_base} (sorted keys)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
          fast=_base in ('resnet18-renamed', 'timm-vit-small->tv-vit-small'),
          note=f'{_base} with the checkpoint keys sorted by name, as read from a .safetensors '
               'file (features.10 before features.2)')(_sorted_keys(_base))



# --- more of the kinds that went wrong: timm children, shortcut-first names, slots


for _arch, _drop in [('mobilenetv2_100', 2), ('mobilenetv3_large_100', 2), ('mnasnet_100', 2),
                     ('mixnet_s', 2), ('efficientnet_b2', 2), ('regnety_004', 1)]:
    _pair(f'timm-{_arch}-children', 'identity',
          note=f'nn.Sequential(*list(timm {_arch}.children())[:-{_drop}])')(
        lambda a=_arch, d=_drop: _timm_children(a, d))


@_pair('timm-mobilenetv2_100->timm-features_only', 'names',
       note="timm mobilenetv2_100 -> the same with features_only=True (same names)")
def _timm_mbv2_features_only():
    timm = _timm()
    src = timm.create_model('mobilenetv2_100', pretrained=False)
    dst = timm.create_model('mobilenetv2_100', pretrained=False, features_only=True)
    state = _keep(src)
    return Case(state, dst, _truth_by_names(state, dst, [('', '')]))


_pair('hf-names->resnet18', 'identity', cross_naming=True, fast=True,
      note='a HuggingFace-named resnet18 checkpoint (shortcut first) into torchvision resnet18')(
    lambda: (lambda r: Case(_keep(_hf_resnet(r)), r, None))(_tv_model('resnet18')))
_pair('detectron2-names->resnet50', 'identity', cross_naming=True,
      note='a detectron2-named resnet50 checkpoint (shortcut first, no fc) into torchvision resnet50')(
    lambda: (lambda r: Case(_keep(_d2_resnet(r)), r, None))(_tv_model('resnet50')))
_pair('resnet18->detectron2-names', 'identity', cross_naming=True, fast=True,
      note='torchvision resnet18 -> detectron2 names (shortcut before conv1; the fc belongs nowhere)')(
    lambda: (lambda r: Case(_keep(r), _d2_resnet(r), None))(_tv_model('resnet18')))


@_pair('resnet18->renamed resnet34+resnet18', 'identity', cross_naming=True,
       note='a torchvision resnet18 checkpoint into two renamed backbones side by side '
            '(_RenamedResNet of resnet34, then of resnet18): only the resnet18 slot')
def _renamed_slots():
    src = _tv_model('resnet18')
    return Case(_keep(src), _Slots(big=_RenamedResNet(_tv_model('resnet34')),
                                   small=_RenamedResNet(src)), None)


@_pair('lightning ema -> model + AveragedModel', 'identity',
       note='a flat checkpoint (model.*, ema_model.module.*) into a training wrapper holding '
            'model and ema = AveragedModel(model) (ema.module.*, ema.n_averaged)')
def _ema_into_wrapper():
    from torch.optim.swa_utils import AveragedModel
    r = _tv_model('resnet18')
    ema = AveragedModel(copy.deepcopy(r))
    state = {f'model.{k}': v for k, v in _keep(r).items()}
    state.update({f'ema_model.module.{k}': v for k, v in _keep(ema.module).items()})
    return Case(state, _Slots(model=r, ema=ema), None)


@_pair('compiled DataParallel checkpoint', 'identity',
       note='a state dict of torch.compile(DataParallel(resnet18)) (_orig_mod.module.*) into resnet18')
def _compiled_dp():
    r = _tv_model('resnet18')
    return Case(torch.compile(nn.DataParallel(r, device_ids=[])).state_dict(keep_vars=True), r, None)


_EXTRA = [
    ('resnet34->resnet18', _m('resnet34'), _m('resnet18')),
    ('resnet50->resnet152', _m('resnet50'), _m('resnet152')),
    ('densenet169->densenet121', _m('densenet169'), _m('densenet121')),
]
for _name, _src, _dst in _EXTRA:
    _pair(_name, 'names', note='published family: another depth, the same names')(
        lambda s=_src, d=_dst: _names_case(s, d, [('', '')]))


def verify_truth(case: Case, atol: float = 1e-4) -> float:
    """
    Check a truth by outputs: copy the source model's tensors into the
    destination along it and compare outputs (eval mode, ``case.inputs``).

    First every floating tensor of the source model is perturbed (seeded), so
    that tensors a fresh init makes equal (norm weights of one, zero biases,
    running statistics) differ and a crossed pair of them changes the output.
    The check also refuses to pass vacuously: the destination's output before
    the copy must differ from the source's.

    Returns:
        float: the largest output difference, relative to the output scale.

    Raises:
        ValueError: no source model or inputs, the outputs differ (the truth
            is wrong), or they were equal before the copy (nothing is checked).

    Example:
        >>> from corpus_pairs import build_case, verify_truth
        >>> verify_truth(build_case('convbn-renamed')) < 1e-4
        True
    """
    if case.source_model is None or case.inputs is None:
        raise ValueError('this case has no source model or inputs to compare')
    gen = torch.Generator().manual_seed(2)
    model, destination = case.source_model.eval(), case.destination.eval()
    src_state, dst_state = model.state_dict(), destination.state_dict()
    with torch.no_grad():
        for key, value in src_state.items():
            if value.dtype.is_floating_point:
                noise = torch.rand(value.shape, generator=gen, dtype=value.dtype)
                if key.endswith('running_var'):
                    value.mul_(noise + 0.5)
                else:
                    value.add_((noise - 0.5) * 0.04)
        before = destination(case.inputs)
        for s, d in case.truth.items():
            dst_state[d].copy_(src_state[s].reshape(dst_state[d].shape))
        want, got = model(case.inputs), destination(case.inputs)
    scale = max(1.0, float(want.abs().max()))
    if float((before - want).abs().max()) <= 100 * atol * scale:
        raise ValueError('the outputs were equal before the copy: the check cannot tell')
    diff = float((want - got).abs().max()) / scale
    if not diff <= atol:
        raise ValueError(f'outputs differ by {diff:.3g} > {atol} (relative): the truth is wrong')
    return diff
