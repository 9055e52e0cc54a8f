"""
The easy pairs of the published README family (truth by names): wrappers,
prefixes, networks of another depth or head size, detectors of one family.

Example:
    >>> from corpus_pairs import build_case
    >>> build_case('resnet18->resnet34').truth['layer1.0.conv1.weight']
    'layer1.0.conv1.weight'
"""
from corpus_pairs.models import Wrap, keep, torchvision_module, tv_detector, tv_model, tv_segmenter
from corpus_pairs.registry import Case, register_pair, truth_by_names


# --- the easy pairs of the published README family (truth by names)


def _names_case(make_src, make_dst, rules, unknown=()):
    src = make_src()
    dst = make_dst()
    state = keep(src)
    unjudged = [k for k in dst.state_dict() if k.startswith(tuple(unknown))] if unknown else ()
    return Case(state, dst, truth_by_names(state, dst, rules, unknown), unjudged=unjudged)


def _frozen_frcnn():
    tv = torchvision_module()
    from torchvision.ops.misc import FrozenBatchNorm2d
    backbone = tv.models.detection.backbone_utils.resnet_fpn_backbone(
        backbone_name='resnet50', weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3)
    return tv.models.detection.FasterRCNN(backbone, num_classes=91)


def _m(name, **kw):
    return lambda: tv_model(name, **kw)


_EASY = [
    ('resnet50->wrapper', _m('resnet50'), lambda: Wrap('module', _m('resnet50')(), 'extra'), [('', 'module.')], ()),
    ('resnet50->fasterrcnn(frozen bn)', _m('resnet50'), _frozen_frcnn, [('', 'backbone.body.')], ()),
    ('resnet101->resnet50', _m('resnet101'), _m('resnet50'), [('', '')], ()),
    ('resnet50->resnet101', _m('resnet50'), _m('resnet101'), [('', '')], ()),
    ('resnet18->resnet34', _m('resnet18'), _m('resnet34'), [('', '')], ()),
    ('resnet18->resnet18(10 classes)', _m('resnet18'), _m('resnet18', num_classes=10), [('', '')], ()),
    ('efficientnet_b1->b0', _m('efficientnet_b1'), _m('efficientnet_b0'), [('', '')], ()),
    ('efficientnet_b0->b1', _m('efficientnet_b0'), _m('efficientnet_b1'), [('', '')], ()),
    ('maskrcnn->fasterrcnn', tv_detector('maskrcnn_resnet50_fpn'), tv_detector('fasterrcnn_resnet50_fpn'), [('', '')], ()),
    ('fasterrcnn->maskrcnn', tv_detector('fasterrcnn_resnet50_fpn'), tv_detector('maskrcnn_resnet50_fpn'), [('', '')], ()),
    ('deeplabv3->fcn', lambda: torchvision_module().models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, aux_loss=False),
     tv_segmenter('fcn_resnet50'), [('backbone.', 'backbone.')], ('classifier.', 'aux_classifier.')),
    ('vit_b_16->wrapper', _m('vit_b_16'), lambda: Wrap('backbone', _m('vit_b_16')()), [('', 'backbone.')], ()),
    ('vit_b_16->vit_l_16', _m('vit_b_16'), _m('vit_l_16'), [('', '')], ()),
    ('swin_t->wrapper', _m('swin_t'), lambda: Wrap('encoder', _m('swin_t')(), 'head2'), [('', 'encoder.')], ()),
    ('convnext_tiny->wrapper', _m('convnext_tiny'), lambda: Wrap('model', _m('convnext_tiny')()), [('', 'model.')], ()),
    ('renamed wrapper', lambda: Wrap('module', _m('resnet50')(), 'head_a'),
     lambda: Wrap('backbone', _m('resnet50')(), 'head_b'), [('module.', 'backbone.')], ('head_a.', 'head_b.')),
    ('unwrap DataParallel prefix', lambda: Wrap('module', _m('resnet18')()), _m('resnet18'), [('module.', '')], ()),
    ('densenet121->densenet169', _m('densenet121'), _m('densenet169'), [('', '')], ()),
    ('regnet_y_400mf->wrapper', _m('regnet_y_400mf'), lambda: Wrap('net', _m('regnet_y_400mf')()), [('', 'net.')], ()),
]
for _name, _src, _dst, _rules, _unknown in _EASY:
    register_pair(_name, 'names', fast=_name in ('resnet18->resnet34', 'resnet18->resnet18(10 classes)',
                                                 'unwrap DataParallel prefix'),
                  note='published family: same names after a prefix change')(
        lambda s=_src, d=_dst, r=_rules, u=_unknown: _names_case(s, d, r, u))


_EXTRA = [
    ('resnet34->resnet18', _m('resnet34'), _m('resnet18')),
    ('resnet50->resnet152', _m('resnet50'), _m('resnet152')),
    ('densenet169->densenet121', _m('densenet169'), _m('densenet121')),
]
for _name, _src, _dst in _EXTRA:
    register_pair(_name, 'names', note='published family: another depth, the same names')(
        lambda s=_src, d=_dst: _names_case(s, d, [('', '')]))

for _name, _wrapper in [('densenet169 (DataParallel)->densenet121', 'module'),
                        ('densenet169 (Lightning model.*)->densenet121', 'model')]:
    register_pair(_name, 'names',
                  note=f'densenet169->densenet121 saved under {_wrapper}.: the names decide, '
                       'block 4 is shoved by name as without the prefix (not its denselayer1 '
                       'into denselayer5, of its input width)')(
        lambda w=_wrapper: _names_case(lambda: Wrap(w, _m('densenet169')()), _m('densenet121'),
                                       [(w + '.', '')]))


def _vit(layers):
    return lambda: torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=64, patch_size=16, num_layers=layers, num_heads=3, hidden_dim=96, mlp_dim=192)


for _name, _src, _dst in [('vit(12 layers)->vit(6 layers)', _vit(12), _vit(6)),
                          ('vit(6 layers)->vit(12 layers)', _vit(6), _vit(12))]:
    register_pair(_name, 'names', note='a torchvision ViT of another depth, one width: the same names '
                                       '(encoder_layer_N of equal shapes)')(
        lambda s=_src, d=_dst: _names_case(s, d, [('', '')]))
