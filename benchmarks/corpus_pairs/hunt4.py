"""
Hunt 4: more pairs of the kinds the judge names, on models the corpus used less.

This module: idioms on shufflenet, squeezenet, mnasnet, googlenet, regnet,
maxvit and efficientnet_v2 (layer getters on a sub-module, children cut
inside a sub-module, nested cuts), renamed internals made by regrouping the
same modules (regnet's dashed block names, densenet's dense layers,
shufflenet's stages), inserted levels, split halves, siblings side by side
(other widths or other families whose first layers have one name and one
shape), a U-Net on a mobilenet_v2 encoder, checkpoints with an extra head of
the head's shape. Truth by identity. :mod:`corpus_pairs.hunt4_names` holds
hunt 4's other libraries' names, cross-library compositions and
detector <-> segmenter pairs.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('h4-regnet_y_400mf-stages-renamed')
    >>> case.truth['trunk_output.block2.block2-1.f.a.0.weight']
    'stages.1.1.f.a.0.weight'
"""
import copy
from collections import OrderedDict

from torch import nn

from corpus_pairs.hunt3 import cut_reindexed, names_case, slots_case
from corpus_pairs.models import NO_AUX, Slots, keep, tv_detector, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['getter']


def getter(model, layers) -> nn.Module:
    """
    torchvision's ``IntermediateLayerGetter(model, layers)`` (the same module objects).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt4 import getter
        >>> list(getter(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), {'0': 'out'}).state_dict())
        ['0.weight', '0.bias']
    """
    from torchvision.models._utils import IntermediateLayerGetter
    return IntermediateLayerGetter(model, layers)


def _view(arch, make, **kw):
    """A case: the checkpoint of ``arch`` into ``make(model)`` (shares modules)."""
    model = tv_model(arch, **kw)
    return Case(keep(model), make(model), None)


# --- idioms on less used models


for _name, _arch, _make, _kw, _note in [
    ('h4-shufflenet_v2_x1_0-layergetter(stage3)', 'shufflenet_v2_x1_0',
     lambda m: getter(m, {'stage3': 'out'}), {},
     "IntermediateLayerGetter(shufflenet_v2_x1_0, {'stage3': 'out'}): stage4, conv5, fc cut off"),
    ('h4-googlenet-layergetter(inception4e)', 'googlenet',
     lambda m: getter(m, {'inception4e': 'c4'}), NO_AUX,
     "IntermediateLayerGetter(googlenet, {'inception4e': 'c4'}): inception5a/5b and fc cut off"),
    ('h4-regnet_y_400mf-trunk-layergetter', 'regnet_y_400mf',
     lambda m: getter(m.trunk_output, {'block3': 'c4'}), {},
     "IntermediateLayerGetter(regnet_y_400mf.trunk_output, {'block3': 'c4'}): no stem, block4 and fc "
     'cut off; trunk_output.blockN -> blockN'),
    ('h4-swin_t-features-layergetter', 'swin_t',
     lambda m: getter(m.features, {'5': 'c4'}), {},
     "IntermediateLayerGetter(swin_t.features, {'5': 'c4'}): features.6/7, norm, head cut off"),
    ('h4-squeezenet1_0-features-nested-cut', 'squeezenet1_0',
     lambda m: nn.Sequential(*cut_reindexed(list(m.features)[:10], [3, 7])), {},
     'squeezenet1_0 features[:10] cut into three re-indexed Sequentials (features.N -> I.J); '
     'the last fires and the classifier dropped'),
    ('h4-mnasnet0_5-layers-split', 'mnasnet0_5',
     lambda m: Slots(stem=nn.Sequential(*list(m.layers)[:8]),
                     blocks=nn.Sequential(*cut_reindexed(list(m.layers)[8:14], [3])),
                     head=nn.Sequential(*list(m.layers)[14:]), classifier=m.classifier), {},
     'mnasnet0_5 layers cut into stem = [:8], blocks = two re-indexed halves of [8:14], '
     'head = [14:] re-indexed'),
    ('h4-efficientnet_v2_s-children-of-features[:5]', 'efficientnet_v2_s',
     lambda m: nn.Sequential(*list(m.features.children())[:5]), {},
     'nn.Sequential(*list(efficientnet_v2_s().features.children())[:5]): features.N -> N, '
     'the later stages and the classifier dropped'),
    ('h4-maxvit_t-children[:2]', 'maxvit_t',
     lambda m: nn.Sequential(*list(m.children())[:2]), {},
     'nn.Sequential(*list(maxvit_t().children())[:2]): stem -> 0, blocks -> 1, classifier dropped'),
    ('h4-densenet121-features-halves', 'densenet121',
     lambda m: Slots(low=nn.Sequential(*list(m.features)[:6]),
                     high=nn.Sequential(*list(m.features)[6:])), {},
     'densenet121 features cut after transition2 into low and high, re-indexed (no names left)'),
    ('h4-mobilenet_v3_large-backbone-extra', 'mobilenet_v3_large',
     lambda m: Slots(backbone=nn.Sequential(*list(m.features)[:13]),
                     extra=nn.Sequential(*list(m.features)[13:])), {},
     'mobilenet_v3_large features split at 13 (as ssdlite does), the second part re-indexed; '
     'the classifier dropped'),
]:
    register_pair(_name, 'identity', note=_note)(lambda a=_arch, f=_make, k=_kw: _view(a, f, **k))


# --- renamed internals (the same modules regrouped under new names) and inserted levels


def _regnet_stages(m):
    stages = [nn.Sequential(*block.children()) for block in m.trunk_output.children()]
    return Slots(stem=m.stem, stages=nn.ModuleList(stages), head=m.fc)


def _densenet_blocks(m):
    f = m.features
    blocks = [nn.ModuleList(list(getattr(f, f'denseblock{i}').children())) for i in range(1, 5)]
    trans = [getattr(f, f'transition{i}') for i in range(1, 4)]
    return Slots(stem=nn.Sequential(f.conv0, f.norm0), blocks=nn.ModuleList(blocks),
                 transitions=nn.ModuleList(trans), norm=f.norm5, head=m.classifier)


def _shufflenet_stages(m):
    return Slots(stem=m.conv1, stages=nn.ModuleList([m.stage2, m.stage3, m.stage4]),
                 neck=m.conv5, head=m.fc)


def _mbv2_inserted(m):
    f = m.features
    return Slots(stem=f[0], body=Slots(blocks=nn.ModuleList(list(f)[1:18])), head=f[18],
                 classifier=m.classifier)


def _convnext_inserted(m):
    f = m.features
    return Slots(features=nn.Sequential(*[Slots(stage=s) for s in f]), classifier=m.classifier)


for _name, _arch, _make, _note in [
    ('h4-regnet_y_400mf-stages-renamed', 'regnet_y_400mf', _regnet_stages,
     "regnet_y_400mf regrouped: stem, stages = ModuleList of the blocks' children "
     "(trunk_output.blockN.blockN-M -> stages.N-1.M), head = fc"),
    ('h4-densenet121-blocks-renamed', 'densenet121', _densenet_blocks,
     'densenet121 regrouped: features.denseblockN.denselayerM -> blocks.N-1.M-1, '
     'features.transitionN -> transitions.N-1, conv0/norm0 -> stem.0/1, norm5 -> norm'),
    ('h4-shufflenet_v2_x1_0-stages-renamed', 'shufflenet_v2_x1_0', _shufflenet_stages,
     'shufflenet_v2_x1_0 regrouped: conv1 -> stem, stage2..4 -> stages.0..2, conv5 -> neck, fc -> head'),
    ('h4-mobilenet_v2-inserted-body-level', 'mobilenet_v2', _mbv2_inserted,
     'mobilenet_v2 as stem = features.0, body.blocks = features[1:18] (an inserted level), '
     'head = features.18'),
    ('h4-convnext_tiny-inserted-stage-level', 'convnext_tiny', _convnext_inserted,
     'convnext_tiny with a level inserted under every features item: features.N.* -> '
     'features.N.stage.*'),
]:
    register_pair(_name, 'identity', cross_naming=True, note=_note)(
        lambda a=_arch, f=_make: _view(a, f))


# --- siblings side by side


for _name, _arch_a, _arch_b, _belongs in [
    ('h4-mnasnet0_5+mnasnet1_0<-mnasnet1_0', 'mnasnet0_5', 'mnasnet1_0', 'b'),
    ('h4-shufflenet_v2_x0_5+x1_0<-x0_5', 'shufflenet_v2_x0_5', 'shufflenet_v2_x1_0', 'a'),
    ('h4-squeezenet1_0+squeezenet1_1<-squeezenet1_1', 'squeezenet1_0', 'squeezenet1_1', 'b'),
    ('h4-squeezenet1_1+squeezenet1_0<-squeezenet1_0', 'squeezenet1_1', 'squeezenet1_0', 'b'),
    ('h4-regnet_x_400mf+regnet_y_400mf<-regnet_x_400mf', 'regnet_x_400mf', 'regnet_y_400mf', 'a'),
    ('h4-densenet161+densenet121<-densenet121', 'densenet161', 'densenet121', 'b'),
    ('h4-efficientnet_v2_s+efficientnet_b0<-b0', 'efficientnet_v2_s', 'efficientnet_b0', 'b'),
    ('h4-convnext_tiny+swin_t<-swin_t', 'convnext_tiny', 'swin_t', 'b'),
    ('h4-swin_t+convnext_tiny<-convnext_tiny', 'swin_t', 'convnext_tiny', 'b'),
    ('h4-mobilenet_v3_small+mnasnet0_5<-mnasnet0_5', 'mobilenet_v3_small', 'mnasnet0_5', 'b'),
]:
    register_pair(_name, 'identity',
                  note=f'{_arch_a} and {_arch_b} side by side (slots a, b): the checkpoint of slot '
                       f'{_belongs} belongs there only')(
        lambda a=_arch_a, b=_arch_b, w=_belongs: slots_case(w, a=tv_model(a), b=tv_model(b)))


@register_pair('h4-swin_t->convnext_tiny(features)+swin_t(features) children', 'identity',
               note='a swin_t checkpoint into Slots(a = convnext_tiny features children, b = swin_t '
                    'features children): both start with a 4x4 conv 3->96 under 0.0; b only')
def _swin_convnext_children():
    c, s = tv_model('convnext_tiny'), tv_model('swin_t')
    return Case(keep(s), Slots(a=nn.Sequential(*c.features), b=nn.Sequential(*s.features)), None)


# --- U-Net on a mobilenet_v2 encoder, extra heads


class _MobileUnet(nn.Module):
    """A U-Net on mobilenet_v2 features whose decoder blocks have the shapes of encoder blocks."""

    def __init__(self, m):
        super().__init__()
        from torchvision.models.mobilenetv2 import InvertedResidual
        f = list(m.features)
        self.encoder = nn.ModuleList([nn.Sequential(*f[:2]), nn.Sequential(*f[2:4]),
                                      nn.Sequential(*f[4:7]), nn.Sequential(*f[7:14]),
                                      nn.Sequential(*f[14:18])])
        self.decoder = nn.ModuleList([
            nn.Sequential(nn.ConvTranspose2d(320, 96, 2, 2), InvertedResidual(96, 96, 1, 6)),
            nn.Sequential(nn.ConvTranspose2d(96, 32, 2, 2), InvertedResidual(32, 32, 1, 6)),
            nn.Sequential(nn.ConvTranspose2d(32, 24, 2, 2), InvertedResidual(24, 24, 1, 6)),
            nn.Conv2d(24, 2, 1)])


@register_pair('h4-mobilenet_v2->unet(decoder of encoder shapes)', 'identity',
               note='a mobilenet_v2 checkpoint into a U-Net: encoder.0..4 are re-indexed slices of '
                    'features, the decoder has InvertedResiduals of the shapes of features.13, .6, .3: '
                    'only the encoder belongs')
def _mbv2_unet():
    m = tv_model('mobilenet_v2')
    return Case(keep(m), _MobileUnet(m), None)


@register_pair('h4-efficientnet_b0+aux head checkpoint->efficientnet_b0', 'identity',
               note='a multi-task efficientnet_b0 checkpoint (classifier and classifier_aux of one '
                    'shape, aux registered first) into efficientnet_b0: the classifier only')
def _aux_head():
    m = tv_model('efficientnet_b0')
    holder = Slots(features=m.features, classifier_aux=copy.deepcopy(m.classifier),
                   classifier=m.classifier)
    return Case(keep(holder), m, None)


@register_pair('h4-resnet50 simclr checkpoint->resnet50', 'identity',
               note='a SimCLR resnet50 checkpoint (fc = Linear 2048x2048, ReLU, Linear 128x2048) into '
                    'resnet50: the trunk belongs; the fc is unjudged (a projection, not the classifier)')
def _simclr():
    m = tv_model('resnet50')
    src = copy.copy(m)
    src._modules = OrderedDict(m._modules)
    src.fc = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 128))
    return Case(keep(src), m, None, unjudged=['fc.weight', 'fc.bias'])


@register_pair('h4-teacher(resnet50)+student(resnet18) checkpoint->resnet50', 'identity',
               note='a distillation checkpoint (teacher.* = resnet50, student.* = resnet18) into a '
                    'plain resnet50: the teacher only')
def _teacher_into_resnet50():
    teacher, student = tv_model('resnet50'), tv_model('resnet18')
    return Case(keep(Slots(teacher=teacher, student=student)), teacher, None)



# --- published neighbours whose names collide with other meanings


def _vgg_from_bn(bn_model, arch='vgg11'):
    """A plain vgg built from a vgg_bn's own convs and classifier (no batch norms): features indices shift."""
    layers = [m for m in bn_model.features if not isinstance(m, nn.BatchNorm2d)]
    plain = tv_model(arch)
    plain.features = nn.Sequential(*layers)
    plain.classifier = bn_model.classifier
    return plain


@register_pair('h4-vgg11->vgg11_bn(convs shared)', 'identity',
               note="a vgg11 checkpoint into vgg11_bn whose convs are vgg11's: features.N -> the conv's "
                    'index after the inserted BatchNorms; features.0 keeps its name, features.18 names '
                    'another conv of the same shape in each; the BatchNorms get nothing')
def _vgg11_to_bn():
    bn_model = tv_model('vgg11_bn')
    return Case(keep(_vgg_from_bn(bn_model)), bn_model, None)


@register_pair('h4-vgg11_bn->vgg11(convs shared)', 'identity',
               note='the same backwards: a vgg11_bn checkpoint into vgg11 (its BatchNorms belong nowhere)')
def _vgg11_bn_to_plain():
    bn_model = tv_model('vgg11_bn')
    return Case(keep(bn_model), _vgg_from_bn(bn_model), None)


@register_pair('h4-vgg16->vgg16_bn(convs shared)', 'identity',
               note="a vgg16 checkpoint into vgg16_bn whose convs are vgg16's: every conv after the "
                    'first moves to another index; same names name other convs or BatchNorms')
def _vgg16_to_bn():
    bn_model = tv_model('vgg16_bn')
    return Case(keep(_vgg_from_bn(bn_model, 'vgg16')), bn_model, None)


@register_pair('h4-retinanet->fcos', 'names',
               note='a retinanet_resnet50_fpn checkpoint into fcos_resnet50_fpn: backbone and fpn '
                    '(LastLevelP6P7(256, 256) in both) by names; the head towers differ '
                    '(GroupNorm in fcos): unjudged')
def _retinanet_fcos():
    src, dst = tv_detector('retinanet_resnet50_fpn')(), tv_detector('fcos_resnet50_fpn')()
    case = names_case(src, dst, [('backbone.', 'backbone.')])
    head = [k for k in dst.state_dict() if k.startswith('head.')]
    return Case(case.source, dst, case.truth, unjudged=head)


@register_pair('h4-fcos->retinanet', 'names',
               note='an fcos_resnet50_fpn checkpoint into retinanet_resnet50_fpn: backbone and fpn by '
                    'names; the heads unjudged')
def _fcos_retinanet():
    src, dst = tv_detector('fcos_resnet50_fpn')(), tv_detector('retinanet_resnet50_fpn')()
    case = names_case(src, dst, [('backbone.', 'backbone.')])
    head = [k for k in dst.state_dict() if k.startswith('head.')]
    return Case(case.source, dst, case.truth, unjudged=head)

