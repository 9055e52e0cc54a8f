"""
Pairs of the model-surgery idioms: ``nn.Sequential(*model.children())`` (with
and without the head), ``IntermediateLayerGetter``, ``create_feature_extractor``,
``BackboneWithFPN``, truncated backbones; plus the tiny pairs that test the
judge itself. Truth by identity: the destination holds the source's modules.

Example:
    >>> from corpus_pairs import build_case
    >>> build_case('resnet18-children').truth['layer1.0.conv1.weight']
    '4.0.conv1.weight'
"""
import copy
from collections import OrderedDict

from torch import nn

from corpus_pairs.models import NO_AUX, Wrap, image, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair


# --- tiny ones first (tests of the judge itself)


@register_pair('mlp-wrapped', 'identity', fast=True, note='a tiny Sequential under module.')
def _mlp_wrapped():
    src = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    return Case(keep(src), Wrap('module', src, 'extra'), None)


@register_pair('convbn-renamed', 'identity', cross_naming=True, fast=True,
               note='Conv-BN-Linear with every module renamed; BN buffers and num_batches_tracked')
def _convbn_renamed():
    src = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    ref = copy.deepcopy(src)
    dst = nn.Sequential(OrderedDict(conv=src[0], norm=src[1], flat=src[2], fc=src[3]))
    return Case(keep(src), dst, None, ref, image(3))


# --- children-Sequential and IntermediateLayerGetter idioms


def _children_case(arch, drop, **kw):
    """``nn.Sequential(*list(model.children())[:-drop])``: names become indices."""
    src = tv_model(arch, **kw)
    children = list(src.children())
    return Case(keep(src), nn.Sequential(*children[:len(children) - drop]), None)


def _timm_children(arch, drop):
    src = timm_module().create_model(arch, pretrained=False)
    children = list(src.children())
    return Case(keep(src), nn.Sequential(*children[:len(children) - drop]), None)


register_pair('resnet18-children', 'identity', fast=True,
              note='nn.Sequential(*list(resnet18().children())[:-2])')(lambda: _children_case('resnet18', 2))
register_pair('resnet50-children', 'identity',
              note='nn.Sequential(*list(resnet50().children())[:-2])')(lambda: _children_case('resnet50', 2))


@register_pair('resnet18-layergetter', 'identity', fast=True,
               note='torchvision IntermediateLayerGetter(resnet18, layer1..layer4)')
def _layergetter():
    from torchvision.models._utils import IntermediateLayerGetter
    src = torchvision_module().models.resnet18(weights=None)
    return Case(keep(src), IntermediateLayerGetter(
        src, {'layer1': 'c2', 'layer2': 'c3', 'layer3': 'c4', 'layer4': 'c5'}), None)


@register_pair('resnet18-fpn', 'identity', fast=True,
               note='BackboneWithFPN(resnet18): backbone.body.* plus a new FPN')
def _resnet18_fpn():
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    src = torchvision_module().models.resnet18(weights=None)
    dst = BackboneWithFPN(src, {'layer1': '0', 'layer2': '1', 'layer3': '2', 'layer4': '3'},
                          [64, 128, 256, 512], 64)
    return Case(keep(src), Wrap('backbone', dst, 'head'), None)


@register_pair('resnet18-fx-feature-extractor', 'identity',
               note='torchvision create_feature_extractor(resnet18, layer2..layer4)')
def _fx_extractor():
    from torchvision.models.feature_extraction import create_feature_extractor
    src = torchvision_module().models.resnet18(weights=None)
    dst = create_feature_extractor(src, {'layer2': 'c3', 'layer3': 'c4', 'layer4': 'c5'})
    return Case(keep(src), dst, None)


@register_pair('efficientnet_b0-truncated-features', 'identity', fast=True,
               note='nn.Sequential(*list(efficientnet_b0().features)[:5]): a truncated backbone')
def _truncated():
    src = torchvision_module().models.efficientnet_b0(weights=None)
    return Case(keep(src), nn.Sequential(*list(src.features)[:5]), None)


@register_pair('efficientnet_b0-children', 'identity',
               note='nn.Sequential(*list(efficientnet_b0().children())[:-2])')
def _effnet_children():
    src = torchvision_module().models.efficientnet_b0(weights=None)
    return Case(keep(src), nn.Sequential(*list(src.children())[:-2]), None)


@register_pair('mobilenet_v3-children', 'identity',
               note='nn.Sequential(*list(mobilenet_v3_large().children())[:-2])')
def _mobilenet_children():
    src = torchvision_module().models.mobilenet_v3_large(weights=None)
    return Case(keep(src), nn.Sequential(*list(src.children())[:-2]), None)


# --- more idioms (the hunt for wrong placements)


for _arch, _drop, _kw in [
    ('vgg16', 1, {}), ('vgg16_bn', 2, {}), ('densenet121', 1, {}), ('mobilenet_v2', 1, {}),
    ('mobilenet_v3_small', 2, {}), ('regnet_y_400mf', 2, {}), ('convnext_tiny', 2, {}),

    ('swin_t', 3, {}), ('shufflenet_v2_x1_0', 1, {}), ('mnasnet1_0', 1, {}),
    ('googlenet', 3, NO_AUX), ('inception_v3', 3, NO_AUX), ('squeezenet1_1', 1, {}),
    ('resnext50_32x4d', 2, {}), ('efficientnet_v2_s', 2, {}),
]:
    register_pair(f'{_arch}-children', 'identity',
                  fast=_arch in ('squeezenet1_1', 'mobilenet_v3_small'),
                  note=f'nn.Sequential(*list({_arch}().children())[:-{_drop}])')(
        lambda a=_arch, d=_drop, k=_kw: _children_case(a, d, **k))


@register_pair('vgg16_bn-features', 'identity',
               note='vgg16_bn().features alone as the model: features.N -> N')
def _vgg_features():
    src = tv_model('vgg16_bn')
    return Case(keep(src), src.features, None)


@register_pair('resnet50-children-newhead', 'identity',
               note='nn.Sequential(nn.Sequential(*children[:-1]), nn.Flatten(), nn.Linear(2048, 10)): '
                    'the old fc belongs nowhere (the new head is unjudged)')
def _children_newhead():
    src = tv_model('resnet50')
    dst = nn.Sequential(nn.Sequential(*list(src.children())[:-1]), nn.Flatten(), nn.Linear(2048, 10))
    return Case(keep(src), dst, None, unjudged=['2.weight', '2.bias'])


@register_pair('vit-small-children', 'identity',
               note="nn.Sequential(*list(torchvision ViT().children())[:-1]): the root's class_token "
                    'is lost, conv_proj -> 0, encoder -> 1')
def _vit_children():
    src = torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=32, patch_size=8, num_layers=4, num_heads=2, hidden_dim=32, mlp_dim=64)
    return Case(keep(src), nn.Sequential(*list(src.children())[:-1]), None)


@register_pair('densenet121-layergetter', 'identity',
               note='IntermediateLayerGetter(densenet121().features, denseblock1..4)')
def _densenet_getter():
    from torchvision.models._utils import IntermediateLayerGetter
    src = tv_model('densenet121')
    layers = {f'denseblock{i}': str(i) for i in range(1, 5)}
    return Case(keep(src), IntermediateLayerGetter(src.features, layers), None)


@register_pair('mobilenet_v2-layergetter', 'identity', fast=True,
               note="IntermediateLayerGetter(mobilenet_v2().features, {'3': 'low', '17': 'high'})")
def _mobilenet_getter():
    from torchvision.models._utils import IntermediateLayerGetter
    src = tv_model('mobilenet_v2')
    return Case(keep(src), IntermediateLayerGetter(src.features, {'3': 'low', '17': 'high'}), None)


def _fx_case(arch, nodes, **kw):
    from torchvision.models.feature_extraction import create_feature_extractor
    src = tv_model(arch, **kw)
    return Case(keep(src), create_feature_extractor(src, nodes), None)


register_pair('mobilenet_v3_large-fx-extractor', 'identity',
              note="create_feature_extractor(mobilenet_v3_large, features.3/6/12)")(
    lambda: _fx_case('mobilenet_v3_large', {'features.3': 'a', 'features.6': 'b', 'features.12': 'c'}))
register_pair('regnet_y_400mf-fx-extractor', 'identity',
              note='create_feature_extractor(regnet_y_400mf, trunk_output.block2/block4)')(
    lambda: _fx_case('regnet_y_400mf', {'trunk_output.block2': 'a', 'trunk_output.block4': 'b'}))
register_pair('convnext_tiny-fx-extractor', 'identity',
              note='create_feature_extractor(convnext_tiny, features.3/features.5)')(
    lambda: _fx_case('convnext_tiny', {'features.3': 'a', 'features.5': 'b'}))


# --- timm models through children()


register_pair('timm-efficientnet_b0-children', 'identity',
              note="nn.Sequential(*list(timm efficientnet_b0.children())[:-2]) (conv_stem, bn1, "
                   'blocks, conv_head, bn2)')(lambda: _timm_children('efficientnet_b0', 2))
register_pair('timm-convnext_tiny-children', 'identity',
              note='nn.Sequential(*list(timm convnext_tiny.children())[:-1]) (stem, stages, norm_pre)')(
    lambda: _timm_children('convnext_tiny', 1))
register_pair('timm-resnet50-children', 'identity',
              note='nn.Sequential(*list(timm resnet50.children())[:-2])')(
    lambda: _timm_children('resnet50', 2))


# --- nn.Sequential(*model.children()) with nothing dropped (heads included)


for _arch, _kw in [
    ('resnet50', {}), ('vgg16_bn', {}), ('densenet121', {}), ('mobilenet_v3_large', {}),
    ('convnext_tiny', {}), ('swin_t', {}), ('efficientnet_b0', {}), ('regnet_y_400mf', {}),
    ('googlenet', NO_AUX), ('mobilenet_v2', {}), ('shufflenet_v2_x1_0', {}), ('squeezenet1_1', {}),
]:
    register_pair(f'{_arch}-all-children', 'identity', fast=_arch == 'squeezenet1_1',
                  note=f'nn.Sequential(*{_arch}().children()): every child, the head included')(
        lambda a=_arch, k=_kw: _children_case(a, 0, **k))


# --- more timm models through children()


for _arch, _drop in [('mobilenetv2_100', 2), ('mobilenetv3_large_100', 2), ('mnasnet_100', 2),
                     ('mixnet_s', 2), ('efficientnet_b2', 2), ('regnety_004', 1)]:
    register_pair(f'timm-{_arch}-children', 'identity',
                  note=f'nn.Sequential(*list(timm {_arch}.children())[:-{_drop}])')(
        lambda a=_arch, d=_drop: _timm_children(a, d))


# --- more children idioms (hunt 2): flattened, ModuleList, ModuleDict, nested


register_pair('resnet50-children[:-1]', 'identity',
              note='nn.Sequential(*list(resnet50().children())[:-1]): the avgpool kept, the fc dropped')(
    lambda: _children_case('resnet50', 1))


@register_pair('resnet18-flat-blocks', 'identity',
               note='children of children: nn.Sequential(conv1, bn1, relu, maxpool, *layer1, ..., '
                    '*layer4): every block at the top level (layer2.0 -> 6)')
def _flat_blocks():
    r = tv_model('resnet18')
    flat = [r.conv1, r.bn1, r.relu, r.maxpool]
    for i in range(1, 5):
        flat += list(getattr(r, f'layer{i}'))
    return Case(keep(r), nn.Sequential(*flat), None)


@register_pair('resnet18-modulelist-children', 'identity', fast=True,
               note='nn.ModuleList(list(resnet18().children())[:-1])')
def _modulelist_children():
    r = tv_model('resnet18')
    return Case(keep(r), nn.ModuleList(list(r.children())[:-1]), None)


@register_pair('resnet18-moduledict-reversed', 'identity', fast=True,
               note='nn.ModuleDict of resnet18 children under their own names, registered in '
                    'reverse order (fc first, conv1 last): names agree, order does not')
def _moduledict_reversed():
    r = tv_model('resnet18')
    return Case(keep(r), nn.ModuleDict(list(r.named_children())[::-1]), None)


@register_pair('efficientnet_b0-flat-blocks', 'identity',
               note='efficientnet_b0.features with its stages flattened: nn.Sequential(stem, '
                    '*stage1, ..., *stage7, head conv): 16 MBConv blocks re-indexed 1..16')
def _effnet_flat():
    src = tv_model('efficientnet_b0')
    f = src.features
    flat = [f[0]] + [block for stage in list(f)[1:8] for block in stage] + [f[8]]
    return Case(keep(src), nn.Sequential(*flat), None)


@register_pair('convnext_tiny-flat-stages', 'identity',
               note='convnext_tiny.features with the block stages flattened between the '
                    'downsample layers (18 CNBlocks and 4 norm-conv layers re-indexed)')
def _convnext_flat():
    src = tv_model('convnext_tiny')
    flat = []
    for i, part in enumerate(src.features):
        flat += list(part) if i % 2 else [part]
    return Case(keep(src), nn.Sequential(*flat), None)


@register_pair('mobilenet_v2-features[:-1]', 'identity',
               note='nn.Sequential(*list(mobilenet_v2().features.children())[:-1]): the last 1x1 '
                    'conv and the classifier belong nowhere')
def _mobilenet_features_cut():
    src = tv_model('mobilenet_v2')
    return Case(keep(src), nn.Sequential(*list(src.features.children())[:-1]), None)


@register_pair('densenet121-features-children', 'identity',
               note='nn.Sequential(*densenet121().features.children()): denseblock1 -> 4, '
                    'transition1 -> 5, ... (names lost one level down)')
def _densenet_features_children():
    src = tv_model('densenet121')
    return Case(keep(src), nn.Sequential(*src.features.children()), None)


register_pair('timm-vit_small-children', 'identity',
              note="nn.Sequential(*list(timm vit_small_patch16_224.children())[:-1]): the root's "
                   'cls_token and pos_embed are lost; 12 blocks of equal shapes')(
    lambda: _timm_children('vit_small_patch16_224', 1))
register_pair('timm-mixer_s16-children', 'identity',
              note='nn.Sequential(*list(timm mixer_s16_224.children())[:-1]): 8 mixer blocks '
                   'of equal shapes')(lambda: _timm_children('mixer_s16_224', 1))


# --- more flattened stages (hunt 2, after convnext_tiny-flat-stages went wrong)


def _flatten_odd(features):
    """``features`` with every odd entry (a stage of blocks) spliced in place."""
    flat = []
    for i, part in enumerate(features):
        flat += list(part) if i % 2 else [part]
    return nn.Sequential(*flat)


register_pair('swin_t-flat-stages', 'identity',
              note='swin_t.features with the block stages flattened between the patch-merging layers')(
    lambda: (lambda m: Case(keep(m), _flatten_odd(m.features), None))(tv_model('swin_t')))
register_pair('convnext_small-flat-stages', 'identity',
              note='convnext_small.features with the block stages flattened (27 equal blocks in stage 3)')(
    lambda: (lambda m: Case(keep(m), _flatten_odd(m.features), None))(tv_model('convnext_small')))


@register_pair('timm-convnext_tiny-flat-stages', 'identity',
               note='timm convnext_tiny as nn.Sequential(stem, then per stage its downsample and '
                    'its blocks spliced in place)')
def _timm_convnext_flat():
    m = timm_module().create_model('convnext_tiny', pretrained=False)
    flat = [m.stem]
    for stage in m.stages:
        flat += [stage.downsample, *stage.blocks]
    return Case(keep(m), nn.Sequential(*flat), None)


@register_pair('regnet_y_400mf-flat-blocks', 'identity',
               note='regnet_y_400mf as nn.Sequential(stem, *block1, ..., *block4): names like '
                    'block2-3 become top-level indices')
def _regnet_flat():
    m = tv_model('regnet_y_400mf')
    flat = [m.stem] + [b for stage in m.trunk_output for b in stage]
    return Case(keep(m), nn.Sequential(*flat), None)


@register_pair('resnet50-grouped-stem-children', 'identity',
               note='nn.Sequential(nn.Sequential(conv1, bn1, relu, maxpool), layer1, ..., layer4): the '
                    'stem grouped one level down, the stages re-indexed 1..4')
def _grouped_stem():
    r = tv_model('resnet50')
    children = list(r.children())
    return Case(keep(r), nn.Sequential(nn.Sequential(*children[:4]), *children[4:8]), None)


@register_pair('vit(tiny config)-layers-as-blocks', 'identity',
               note='a torchvision ViT whose encoder layers are re-registered as blocks = '
                    'ModuleList(encoder.layers) (encoder_layer_N -> blocks.N), the rest in place')
def _vit_layers_as_blocks():
    vit = torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768)
    state = keep(vit)
    vit.blocks = nn.ModuleList(list(vit.encoder.layers))
    vit.encoder.layers = nn.Sequential()
    return Case(state, vit, None)


@register_pair('resnet18-renamed-reversed-dict', 'identity', cross_naming=True,
               note='nn.ModuleDict(head=fc, stage4=layer4, ..., stage1=layer1, norm=bn1, stem=conv1): '
                    'renamed AND registered in reverse order; neither names nor order agree')
def _renamed_reversed():
    r = tv_model('resnet18')
    named = [('stem', r.conv1), ('norm', r.bn1)] + [(f'stage{i}', getattr(r, f'layer{i}')) for i in range(1, 5)]
    return Case(keep(r), nn.ModuleDict([('head', r.fc)] + named[::-1]), None)


def _flat_resnet(model):
    flat = [model.conv1, model.bn1, model.act1 if hasattr(model, 'act1') else model.relu, model.maxpool]
    for i in range(1, 5):
        flat += list(getattr(model, f'layer{i}'))
    return nn.Sequential(*flat)


register_pair('resnet50-flat-blocks', 'identity',
              note='resnet50 as nn.Sequential(conv1, bn1, relu, maxpool, *layer1, ..., *layer4): 16 '
                   'bottlenecks at the top level, runs of equal shapes in each stage')(
    lambda: (lambda m: Case(keep(m), _flat_resnet(m), None))(tv_model('resnet50')))
register_pair('timm-resnet50-flat-blocks', 'identity',
              note='the same for timm resnet50 (act1 instead of relu)')(
    lambda: (lambda m: Case(keep(m), _flat_resnet(m), None))(
        timm_module().create_model('resnet50', pretrained=False)))


@register_pair('densenet121-flat-layers', 'identity',
               note='densenet121.features with every denseblock spliced in place (denselayerN -> an index)')
def _densenet_flat():
    src = tv_model('densenet121')
    flat = []
    for name, child in src.features.named_children():
        flat += list(child.children()) if name.startswith('denseblock') else [child]
    return Case(keep(src), nn.Sequential(*flat), None)
