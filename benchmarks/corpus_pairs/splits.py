"""
Pairs of split backbones and moved levels: a backbone cut into stem/body/head
or into slices (re-indexed, or keeping their indices as LPIPS does), stages
under an inserted middle level, a checkpoint whose middle level is removed.
Truth by identity.

Example:
    >>> from corpus_pairs import build_case
    >>> build_case('resnet18-stem-body').truth['layer1.0.conv1.weight']
    'body.0.0.conv1.weight'
"""
import copy
from collections import OrderedDict

import torch
from torch import nn

from corpus_pairs.models import Slots, image, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair


# --- a resnet or convnext cut into stem and body


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


@register_pair('resnet18-stem-body', 'identity', fast=True,
               note='resnet18 split into stem (conv1, bn1) and body (layer1..4), fc as head')
def _stem_body():
    src = torchvision_module().models.resnet18(weights=None)
    return Case(keep(src), _StemBody(src), None, copy.deepcopy(src), image())


@register_pair('convnext_tiny-stem-stages', 'identity',
               note='convnext_tiny features split into stem + stages: every stage index shifts by one')
def _convnext_split():
    src = torchvision_module().models.convnext_tiny(weights=None)
    dst = Slots(stem=src.features[0], stages=nn.Sequential(*list(src.features)[1:]),
                head=src.classifier)
    return Case(keep(src), dst, None)


# --- inserted and removed levels


@register_pair('resnet18-wrapped-blocks', 'identity', fast=True,
               note='every residual block wrapped in an extra Sequential level (layer1.0.block.conv1)')
def _wrapped_blocks():
    src = torchvision_module().models.resnet18(weights=None)
    ref = copy.deepcopy(src)
    state = keep(src)
    for i in range(1, 5):
        layer = getattr(src, f'layer{i}')
        setattr(src, f'layer{i}', nn.Sequential(*[
            nn.Sequential(OrderedDict(block=b)) for b in layer]))
    return Case(state, src, None, ref, image())


@register_pair('resnet50-inserted-level', 'identity',
               note='every resnet50 stage gets a middle level (layer1.blocks.0.conv1)')
def _inserted_level():
    src = torchvision_module().models.resnet50(weights=None)
    state = keep(src)
    for i in range(1, 5):
        setattr(src, f'layer{i}', nn.Sequential(OrderedDict(blocks=getattr(src, f'layer{i}'))))
    return Case(state, src, None)


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


@register_pair('vgg16-perceptual-slices', 'identity',
               note='vgg16.features cut into slice1..slice5 re-indexed from 0, as perceptual losses do')
def _vgg_slices():
    src = tv_model('vgg16')
    parts = _reindexed(src.features, _VGG16_CUTS)
    return Case(keep(src), Slots(**{f'slice{i + 1}': p for i, p in enumerate(parts)}), None)


@register_pair('vgg16-lpips-slices', 'identity',
               note="vgg16.features cut into slice1..slice5 that keep their indices (LPIPS: slice2.4.weight)")
def _vgg_lpips():
    src = tv_model('vgg16')
    parts = _kept_indices(src.features, _VGG16_CUTS)
    return Case(keep(src), Slots(**{f'slice{i + 1}': p for i, p in enumerate(parts)}), None)


@register_pair('resnet50-c4', 'identity',
               note='resnet50 split as a C4 detector: backbone = stem..layer3 re-indexed, '
                    'roi_heads.res5 = layer4, the fc belongs nowhere')
def _resnet_c4():
    r = tv_model('resnet50')
    backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
    return Case(keep(r), Slots(backbone=backbone, roi_heads=Slots(res5=r.layer4)), None)


@register_pair('resnet18-three-way', 'identity', fast=True,
               note='resnet18 as ModuleDict(stem=(conv, bn), stages=ModuleList(layer1..4), head=fc)')
def _three_way():
    r = tv_model('resnet18')
    dst = nn.ModuleDict(dict(
        stem=nn.Sequential(OrderedDict(conv=r.conv1, bn=r.bn1)),
        stages=nn.ModuleList([r.layer1, r.layer2, r.layer3, r.layer4]), head=r.fc))
    return Case(keep(r), dst, None)


@register_pair('mobilenet_v2-low-high', 'identity', fast=True,
               note='mobilenet_v2.features cut into low = [:4] and high = [4:] re-indexed (deeplab-style)')
def _mobilenet_split():
    src = tv_model('mobilenet_v2')
    low, high = _reindexed(src.features, [4])
    return Case(keep(src), Slots(low=low, high=high), None)


@register_pair('densenet121-split', 'identity',
               note='densenet121.features cut after denseblock2, both halves re-indexed (names lost)')
def _densenet_split():
    src = tv_model('densenet121')
    first, second = _reindexed(src.features, [6])
    return Case(keep(src), Slots(encoder1=first, encoder2=second, classifier=src.classifier), None)


@register_pair('efficientnet_b0-stem-blocks-head', 'identity',
               note='efficientnet_b0.features as stem = [0], blocks = [1:8] re-indexed, head = [8]')
def _effnet_split():
    src = tv_model('efficientnet_b0')
    f = src.features
    return Case(keep(src), Slots(stem=f[0], blocks=nn.Sequential(*list(f)[1:8]), head=f[8],
                                   fc=src.classifier), None)


@register_pair('swin_t-stem-stages', 'identity',
               note='swin_t.features as stem = [0] and stages = ModuleList([1:]) (every index shifts)')
def _swin_split():
    src = tv_model('swin_t')
    return Case(keep(src), Slots(stem=src.features[0], stages=nn.ModuleList(list(src.features)[1:]),
                                   norm=src.norm, head=src.head), None)


@register_pair('regnet_y_400mf-stem-stages', 'identity', fast=True,
               note='regnet_y_400mf as stem + stages = ModuleList(trunk_output.block1..4) + fc')
def _regnet_split():
    src = tv_model('regnet_y_400mf')
    return Case(keep(src), Slots(stem=src.stem, stages=nn.ModuleList(list(src.trunk_output)),
                                   fc=src.fc), None)


# --- inserted and removed levels in other families


@register_pair('efficientnet_b0-inserted-level', 'identity', fast=True,
               note='every efficientnet_b0 stage gets a middle level (features.1.blocks.0.block...)')
def _effnet_inserted():
    src = tv_model('efficientnet_b0')
    state = keep(src)
    for i in range(1, 8):
        src.features[i] = nn.Sequential(OrderedDict(blocks=src.features[i]))
    return Case(state, src, None)


@register_pair('vgg16_bn-encoder-level', 'identity',
               note='vgg16_bn with features moved under encoder.features and classifier under head.mlp')
def _vgg_levels():
    src = tv_model('vgg16_bn')
    dst = Slots(encoder=Slots(features=src.features, pool=src.avgpool),
                head=Slots(mlp=src.classifier))
    return Case(keep(src), dst, None)


@register_pair('resnet50-removed-level', 'identity',
               note='a checkpoint whose stages had a middle level (layer1.blocks.0.conv1) into plain resnet50')
def _removed_level():
    r = tv_model('resnet50')
    src = copy.copy(r)
    src._modules = OrderedDict(r._modules)
    for i in range(1, 5):
        src._modules[f'layer{i}'] = nn.Sequential(OrderedDict(blocks=getattr(r, f'layer{i}')))
    return Case(keep(src), r, None)


# --- more split backbones (hunt 2): three parts, SSD-like, split transformer stacks


@register_pair('resnet50-three-parts', 'identity',
               note='resnet50 as stem = (conv1, bn1, relu, maxpool), low = (layer1, layer2), '
                    'high = (layer3, layer4) re-indexed, fc')
def _resnet_three_parts():
    r = tv_model('resnet50')
    dst = Slots(stem=nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool),
                low=nn.Sequential(r.layer1, r.layer2), high=nn.Sequential(r.layer3, r.layer4), fc=r.fc)
    return Case(keep(r), dst, None)


@register_pair('vgg16-ssd-three-parts', 'identity',
               note='SSD-style: vgg16.features[:23] (to conv4_3) and [23:30] (conv5) re-indexed, '
                    'new dilated fc6/fc7 convolutions and extras; the vgg classifier belongs nowhere')
def _vgg_ssd_split():
    src = tv_model('vgg16')
    f = list(src.features)
    dst = Slots(conv4_3=nn.Sequential(*f[:23]), conv5=nn.Sequential(*f[23:30]),
                fc=nn.Sequential(nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.ReLU(),
                                 nn.Conv2d(1024, 1024, 1), nn.ReLU()),
                extras=nn.ModuleList([nn.Conv2d(1024, 256, 1), nn.Conv2d(256, 512, 3, 2, 1),
                                      nn.Conv2d(512, 128, 1), nn.Conv2d(128, 256, 3, 2, 1)]))
    return Case(keep(src), dst, None)


@register_pair('swin_t-three-parts', 'identity',
               note='swin_t.features cut into [0:3], [3:5], [5:8], each re-indexed, then norm and head')
def _swin_three_parts():
    src = tv_model('swin_t')
    a, b, c = _reindexed(src.features, [3, 5])
    return Case(keep(src), Slots(early=a, middle=b, late=c, norm=src.norm, head=src.head), None)


@register_pair('efficientnet_b0-low-high', 'identity',
               note='efficientnet_b0.features cut into low = [:4] and high = [4:] re-indexed')
def _effnet_low_high():
    src = tv_model('efficientnet_b0')
    low, high = _reindexed(src.features, [4])
    return Case(keep(src), Slots(low=low, high=high, classifier=src.classifier), None)


class _SplitViT(nn.Module):
    """A torchvision ViT whose encoder layers are two ModuleLists (first half, second half)."""

    def __init__(self, vit, cut):
        super().__init__()
        self.class_token = vit.class_token
        self.conv_proj = vit.conv_proj
        layers = list(vit.encoder.layers)
        self.pos_embedding = vit.encoder.pos_embedding
        self.first = nn.ModuleList(layers[:cut])
        self.second = nn.ModuleList(layers[cut:])
        self.ln = vit.encoder.ln
        self.heads = vit.heads


@register_pair('tv-vit(tiny config)-split-encoder', 'identity',
               note='a 12-layer torchvision ViT (192 wide) with the encoder layers split into '
                    'first = ModuleList(layers[:6]) and second = ModuleList(layers[6:]): 12 '
                    'blocks of equal shapes, the second half re-indexed from 0')
def _vit_split():
    vit = torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768)
    return Case(keep(vit), _SplitViT(vit, 6), None)


class _SplitTimmViT(nn.Module):
    """A timm ViT whose blocks are cut into two Sequentials."""

    def __init__(self, vit, cut):
        super().__init__()
        self.cls_token, self.pos_embed = vit.cls_token, vit.pos_embed
        self.patch_embed = vit.patch_embed
        self.blocks_a = nn.Sequential(*list(vit.blocks)[:cut])
        self.blocks_b = nn.Sequential(*list(vit.blocks)[cut:])
        self.norm, self.head = vit.norm, vit.head


@register_pair('timm-deit_tiny-split-blocks', 'identity',
               note='timm deit_tiny_patch16_224 with blocks cut into blocks_a = [:4] and '
                    'blocks_b = [4:] re-indexed (12 blocks of equal shapes)')
def _timm_vit_split():
    vit = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    return Case(keep(vit), _SplitTimmViT(vit, 4), None)


@register_pair('timm-mixer_s16-split-blocks', 'identity',
               note='timm mixer_s16_224 with its 8 equal blocks cut into two Sequentials at 3')
def _mixer_split():
    m = timm_module().create_model('mixer_s16_224', pretrained=False)
    blocks = list(m.blocks)
    return Case(keep(m), Slots(stem=m.stem, early=nn.Sequential(*blocks[:3]),
                               late=nn.Sequential(*blocks[3:]), norm=m.norm, head=m.head), None)


# --- equal blocks cut into stacks (hunt 2, after the first cut went wrong)


class _StackedTimmViT(nn.Module):
    """A timm ViT whose blocks are cut at ``cuts`` into Sequentials named ``names``."""

    def __init__(self, vit, cuts, names):
        super().__init__()
        self.cls_token, self.pos_embed = vit.cls_token, vit.pos_embed
        self.patch_embed = vit.patch_embed
        for name, part in zip(names, _reindexed(vit.blocks, cuts)):
            self.add_module(name, part)
        self.norm, self.head = vit.norm, vit.head


@register_pair('timm-deit_tiny-three-stacks', 'identity',
               note='timm deit_tiny blocks cut into three stacks of 4 (stack1..3), each re-indexed from 0')
def _timm_vit_three():
    vit = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    return Case(keep(vit), _StackedTimmViT(vit, [4, 8], ['stack1', 'stack2', 'stack3']), None)


@register_pair('timm-deit_tiny-blocks+blocks2', 'identity',
               note='timm deit_tiny blocks cut at 6: blocks keeps [:6] under its name, blocks2 = [6:] '
                    're-indexed from 0')
def _timm_vit_keep_first():
    vit = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    return Case(keep(vit), _StackedTimmViT(vit, [6], ['blocks', 'blocks2']), None)


@register_pair('resnet34-layer3-split', 'identity',
               note='resnet34 with layer3 (6 blocks, 5 of equal shapes) cut into layer3 = [:3] and '
                    'layer3_tail = [3:] re-indexed, registered after layer3')
def _resnet34_layer3_split():
    r = tv_model('resnet34')
    state = keep(r)
    head, tail = _reindexed(r.layer3, [3])
    modules = OrderedDict()
    for name, child in r.named_children():
        modules[name] = head if name == 'layer3' else child
        if name == 'layer3':
            modules['layer3_tail'] = tail
    return Case(state, nn.Sequential(modules), None)


@register_pair('swin_t-stage3-split', 'identity',
               note="swin_t's third stage (features.5, 6 equal blocks) cut into two ModuleLists "
                    'features.5.0 = [:3] and features.5.1 = [3:] re-indexed')
def _swin_stage_split():
    src = tv_model('swin_t')
    state = keep(src)
    src.features[5] = nn.ModuleList([nn.ModuleList(p) for p in _reindexed(src.features[5], [3])])
    return Case(state, src, None)


@register_pair('convnext_small-stage3-split', 'identity',
               note="convnext_small's third stage (features.5, 27 equal blocks) cut into "
                    'features.5.0 = [:9] and features.5.1 = [9:] re-indexed')
def _convnext_stage_split():
    src = tv_model('convnext_small')
    state = keep(src)
    src.features[5] = nn.Sequential(*_reindexed(src.features[5], [9]))
    return Case(state, src, None)


@register_pair('convnext_tiny-stage3-split', 'identity',
               note="convnext_tiny's third stage (features.5, 9 equal blocks) cut into "
                    'features.5.0 = [:3] and features.5.1 = [3:] re-indexed')
def _convnext_tiny_stage_split():
    src = tv_model('convnext_tiny')
    state = keep(src)
    src.features[5] = nn.Sequential(*_reindexed(src.features[5], [3]))
    return Case(state, src, None)


@register_pair('timm-mixer_s16-three-stacks', 'identity',
               note='timm mixer_s16_224 with its 8 equal blocks cut into stacks [0:3], [3:6], [6:8]')
def _mixer_three():
    m = timm_module().create_model('mixer_s16_224', pretrained=False)
    a, b, c = _reindexed(m.blocks, [3, 6])
    return Case(keep(m), Slots(stem=m.stem, s1=a, s2=b, s3=c, norm=m.norm, head=m.head), None)


@register_pair('mobilenet_v3_large-three-parts', 'identity',
               note='mobilenet_v3_large.features cut into [:4], [4:7], [7:] re-indexed (low, mid, high '
                    'feature levels of a segmentation head), the classifier kept')
def _mobilenet_three():
    src = tv_model('mobilenet_v3_large')
    low, mid, high = _reindexed(src.features, [4, 7])
    return Case(keep(src), Slots(low=low, mid=mid, high=high, classifier=src.classifier), None)


@register_pair('efficientnet_b0-named-stages', 'identity',
               note='efficientnet_b0.features as named slots stem, stage1..stage7, head_conv '
                    '(features.N -> stageN.*), the classifier as fc')
def _effnet_named_stages():
    src = tv_model('efficientnet_b0')
    f = src.features
    slots = {'stem': f[0], **{f'stage{i}': f[i] for i in range(1, 8)}, 'head_conv': f[8], 'fc': src.classifier}
    return Case(keep(src), Slots(**slots), None)
