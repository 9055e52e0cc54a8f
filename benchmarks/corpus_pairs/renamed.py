"""
Pairs whose names differ inside the tree (cross-naming), built from
torchvision modules so the truth is by identity: a resnet with every
submodule renamed, HuggingFace-transformers and detectron2 ResNet names
(shortcut registered first), a renamed densenet.

Example:
    >>> from corpus_pairs import build_case
    >>> build_case('resnet18-renamed').truth['layer1.0.bn1.weight']
    'stage1.0.n1.weight'
"""
import copy

from torch import nn

from corpus_pairs.models import RenamedResNet, image, keep, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair


# --- every submodule renamed


@register_pair('resnet18-renamed', 'identity', cross_naming=True, fast=True,
               note='every submodule renamed: conv1->c1, bn1->n1, layerN->stageN, downsample->proj, fc->head')
def _renamed18():
    src = torchvision_module().models.resnet18(weights=None)
    return Case(keep(src), RenamedResNet(src), None, copy.deepcopy(src), image())


@register_pair('resnet50-renamed', 'identity', cross_naming=True,
               note='resnet50 with every submodule renamed')
def _renamed50():
    src = torchvision_module().models.resnet50(weights=None)
    return Case(keep(src), RenamedResNet(src), None)


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


register_pair('resnet50->hf-names', 'identity', cross_naming=True,
              note='torchvision resnet50 -> the same weights under HuggingFace ResNet names '
                   '(embedder.embedder.convolution, stages.N.layers.M.shortcut first, layer.K)')(
    lambda: (lambda r: Case(keep(r), _hf_resnet(r), None))(tv_model('resnet50')))
register_pair('hf-names->resnet50', 'identity', cross_naming=True,
              note='the reverse: a HuggingFace-named resnet50 checkpoint into torchvision resnet50')(
    lambda: (lambda r: Case(keep(_hf_resnet(r)), r, None))(tv_model('resnet50')))
register_pair('resnet50->detectron2-names', 'identity', cross_naming=True,
              note='torchvision resnet50 -> detectron2 names (backbone.bottom_up.res2.0.conv1.norm.weight, '
                   'shortcut before conv1, the fc belongs nowhere)')(
    lambda: (lambda r: Case(keep(r), _d2_resnet(r), None))(tv_model('resnet50')))
register_pair('detectron2-names->resnet18', 'identity', cross_naming=True, fast=True,
              note='a detectron2-named resnet18 checkpoint into torchvision resnet18 (its fc gets nothing)')(
    lambda: (lambda r: Case(keep(_d2_resnet(r)), r, None))(tv_model('resnet18')))


@register_pair('densenet121-renamed', 'identity', cross_naming=True,
               note='densenet121 with denseblockN -> stageN, denselayerM -> unitM, normK -> bnK, convK -> cK')
def _densenet_renamed():
    src = tv_model('densenet121')
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
    return Case(keep(src), _Named(('body', _Named(*items)), ('fc', src.classifier)), None)


register_pair('hf-names->resnet18', 'identity', cross_naming=True, fast=True,
              note='a HuggingFace-named resnet18 checkpoint (shortcut first) into torchvision resnet18')(
    lambda: (lambda r: Case(keep(_hf_resnet(r)), r, None))(tv_model('resnet18')))
register_pair('detectron2-names->resnet50', 'identity', cross_naming=True,
              note='a detectron2-named resnet50 checkpoint (shortcut first, no fc) into torchvision resnet50')(
    lambda: (lambda r: Case(keep(_d2_resnet(r)), r, None))(tv_model('resnet50')))
register_pair('resnet18->detectron2-names', 'identity', cross_naming=True, fast=True,
              note='torchvision resnet18 -> detectron2 names (shortcut before conv1; the fc belongs nowhere)')(
    lambda: (lambda r: Case(keep(r), _d2_resnet(r), None))(tv_model('resnet18')))


# --- more naming schemes (hunt 2): HuggingFace MobileNetV2 and ConvNext, mmpretrain ViT


def _hf_mobilenet_v2(m):
    """HuggingFace MobileNetV2 names (conv_stem holds the first block; layer.N.expand_1x1 ...)."""
    f = m.features

    def head(seq):  # a Conv2dNormActivation's conv and norm (slicing it would rebuild the class)
        return seq[0], seq[1]

    def block(b):
        return _Named(('expand_1x1', _hf_conv(*head(b.conv[0]))), ('conv_3x3', _hf_conv(*head(b.conv[1]))),
                      ('reduce_1x1', _hf_conv(b.conv[2], b.conv[3])))

    stem = _Named(('first_conv', _hf_conv(*head(f[0]))), ('conv_3x3', _hf_conv(*head(f[1].conv[0]))),
                  ('reduce_1x1', _hf_conv(f[1].conv[1], f[1].conv[2])))
    body = _Named(('conv_stem', stem), ('layer', nn.ModuleList([block(b) for b in list(f)[2:18]])),
                  ('conv_1x1', _hf_conv(*head(f[18]))))
    return _Named(('mobilenet_v2', body), ('classifier', m.classifier[1]))


register_pair('mobilenet_v2->hf-names', 'identity', cross_naming=True,
              note='torchvision mobilenet_v2 -> the same modules under HuggingFace MobileNetV2 names '
                   '(mobilenet_v2.conv_stem.{first_conv,conv_3x3,reduce_1x1}, layer.N.expand_1x1.convolution)')(
    lambda: (lambda m: Case(keep(m), _hf_mobilenet_v2(m), None))(tv_model('mobilenet_v2')))
register_pair('hf-names->mobilenet_v2', 'identity', cross_naming=True,
              note='the reverse: a HuggingFace-named mobilenet_v2 checkpoint into torchvision mobilenet_v2')(
    lambda: (lambda m: Case(keep(_hf_mobilenet_v2(m)), m, None))(tv_model('mobilenet_v2')))
