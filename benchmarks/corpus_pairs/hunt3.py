"""
Hunt 3: pairs of the kinds the judge names that the other families lacked.

This module: idiom variations (children cut at other points, nested
children, ModuleList and IntermediateLayerGetter truncations, fx extractors
of ViT / densenet, timm's ``feature_cls='getter'`` / ``'hook'`` and
``prune_intermediate_layers``, and the idioms backwards: a view's checkpoint
into the plain model), split backbones (a split part registered before the
first, a cut inside a stage, SSD on vgg16_bn, a U-Net whose decoder blocks
have the encoder's shapes), backbones side by side (same names with other
widths, two-stream with another input, an EMA slot in the model). Truth by
identity where the modules are shared, by names for the published family.
:mod:`corpus_pairs.hunt3_names` holds hunt 3's other libraries' names and
torchvision models, :mod:`corpus_pairs.hunt3_decoys` the pairs that went
wrong and their reductions.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('resnet18-nested-children')
    >>> case.truth['layer1.0.conv1.weight']
    '1.0.0.conv1.weight'
"""
import copy
from collections import OrderedDict

from torch import nn

from corpus_pairs.models import Slots, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair, truth_by_names


__all__ = ['cut_reindexed', 'names_case', 'slots_case', 'vit_tiny_config']


def cut_reindexed(seq, cuts) -> list:
    """
    ``seq`` cut at ``cuts`` into new Sequentials re-indexed from 0 (the same module objects).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt3 import cut_reindexed
        >>> [len(p) for p in cut_reindexed(nn.Sequential(*[nn.ReLU()] * 5), [2])]
        [2, 3]
    """
    items, bounds = list(seq), [0, *cuts, len(seq)]
    return [nn.Sequential(*items[a:b]) for a, b in zip(bounds, bounds[1:])]


def names_case(src, dst, rules=(('', ''),)) -> Case:
    """
    A case whose truth is the same name after the first matching prefix rule (:func:`truth_by_names`).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt3 import names_case
        >>> names_case(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)), [('', '0.')]).truth
        {'weight': '0.weight', 'bias': '0.bias'}
    """
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, rules))


# --- idioms: children cut at other points, nested, lists, getters, fx, timm wrappers


@register_pair('resnet50-children[:-3]', 'identity',
               note='nn.Sequential(*list(resnet50().children())[:-3]): layer4, avgpool and fc dropped')
def _children_3():
    src = tv_model('resnet50')
    return Case(keep(src), nn.Sequential(*list(src.children())[:-3]), None)


@register_pair('resnet18-nested-children', 'identity', fast=True,
               note='children grouped two levels deep: Sequential(Sequential(conv1, bn1, relu, maxpool), '
                    'Sequential(layer1, layer2), Sequential(layer3, layer4)); the fc belongs nowhere')
def _nested_children():
    src = tv_model('resnet18')
    ch = list(src.children())
    return Case(keep(src), nn.Sequential(nn.Sequential(*ch[:4]), nn.Sequential(*ch[4:6]),
                                         nn.Sequential(*ch[6:8])), None)


@register_pair('efficientnet_b0-flat-blocks-no-stem', 'identity',
               note='nn.Sequential of the 16 MBConv blocks of efficientnet_b0 (children of children of '
                    'features[1:8]), no stem, no head conv: every index moves')
def _effnet_blocks_no_stem():
    src = tv_model('efficientnet_b0')
    return Case(keep(src), nn.Sequential(*[b for stage in src.features[1:8] for b in stage]), None)


@register_pair('mobilenet_v3_large-modulelist-features[:13]', 'identity',
               note='nn.ModuleList(list(mobilenet_v3_large().features)[:13]): a truncated list, '
                    'features.N -> N')
def _mbv3_list():
    src = tv_model('mobilenet_v3_large')
    return Case(keep(src), nn.ModuleList(list(src.features)[:13]), None)


@register_pair('vgg16_bn-modulelist-children', 'identity',
               note='nn.ModuleList(list(vgg16_bn().children())[:-1]): features and avgpool, the '
                    'classifier dropped')
def _vgg_list():
    src = tv_model('vgg16_bn')
    return Case(keep(src), nn.ModuleList(list(src.children())[:-1]), None)


@register_pair('resnet50-layergetter(layer3)', 'identity',
               note="IntermediateLayerGetter(resnet50, {'layer3': 'out'}): layer4 and fc cut off")
def _getter_layer3():
    from torchvision.models._utils import IntermediateLayerGetter
    src = tv_model('resnet50')
    return Case(keep(src), IntermediateLayerGetter(src, {'layer3': 'out'}), None)


@register_pair('efficientnet_b0-layergetter', 'identity',
               note="IntermediateLayerGetter(efficientnet_b0().features, {'3': 'c3', '5': 'c4'}): "
                    'features.6.. and the classifier cut off')
def _getter_effnet():
    from torchvision.models._utils import IntermediateLayerGetter
    src = tv_model('efficientnet_b0')
    return Case(keep(src), IntermediateLayerGetter(src.features, {'3': 'c3', '5': 'c4'}), None)


def vit_tiny_config():
    """
    A torchvision VisionTransformer configured as timm's deit_tiny (192 wide, 3 heads, 12 layers).

    Example:
        >>> from corpus_pairs.hunt3 import vit_tiny_config
        >>> vit_tiny_config().hidden_dim
        192
    """
    return torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768)


@register_pair('vit(tiny config)-fx-extractor', 'identity',
               note="create_feature_extractor(ViT, {'encoder.layers.encoder_layer_5.add_1': 'mid', "
                    "'encoder.ln': 'out'}): class_token and pos_embedding kept as fx attributes, the head dropped")
def _vit_fx():
    from torchvision.models.feature_extraction import create_feature_extractor
    src = vit_tiny_config()
    return Case(keep(src), create_feature_extractor(
        src, {'encoder.layers.encoder_layer_5.add_1': 'mid', 'encoder.ln': 'out'}), None)


@register_pair('densenet121-fx-extractor', 'identity',
               note="create_feature_extractor(densenet121, {'features.denseblock2': 'c3', "
                    "'features.transition3.pool': 'c4'}): the rest cut off")
def _densenet_fx():
    from torchvision.models.feature_extraction import create_feature_extractor
    src = tv_model('densenet121')
    return Case(keep(src), create_feature_extractor(
        src, {'features.denseblock2': 'c3', 'features.transition3.pool': 'c4'}), None)


@register_pair('resnet50-fx-extractor(relu nodes)', 'identity',
               note="create_feature_extractor(resnet50, {'layer1.0.relu': 'a', 'layer2.3.relu_2': 'b'}): "
                    'nodes inside blocks; layer3, layer4 and fc cut off')
def _resnet_fx_relu():
    from torchvision.models.feature_extraction import create_feature_extractor
    src = tv_model('resnet50')
    return Case(keep(src), create_feature_extractor(
        src, {'layer1.0.relu': 'a', 'layer2.3.relu_2': 'b'}), None)


def _timm_wrapper(arch, prefix, **kw):
    timm = timm_module()
    src = timm.create_model(arch, pretrained=False)
    dst = timm.create_model(arch, pretrained=False, features_only=True, **kw)
    return names_case(src, dst, [('', prefix)])


register_pair('timm-resnet50->features_only(getter)', 'names',
              note="timm resnet50 -> create_model(..., features_only=True, feature_cls='getter'): "
                   'the model under model.*, the fc pruned')(
    lambda: _timm_wrapper('resnet50', 'model.', feature_cls='getter'))
register_pair('timm-efficientnet_b0->features_only(hook)', 'names',
              note="timm efficientnet_b0 -> features_only=True, feature_cls='hook': the model under "
                   'body.*, the classifier dropped')(
    lambda: _timm_wrapper('efficientnet_b0', 'body.', feature_cls='hook'))
register_pair('timm-convnext_tiny->features_only(getter)', 'names',
              note="timm convnext_tiny -> features_only=True, feature_cls='getter' (model.*)")(
    lambda: _timm_wrapper('convnext_tiny', 'model.', feature_cls='getter'))


@register_pair('timm-deit_tiny-pruned-intermediates', 'identity',
               note='timm deit_tiny after prune_intermediate_layers([5]) (the forward_intermediates '
                    'API): blocks 6..11, the final norm and the head are gone')
def _timm_pruned():
    m = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    state = keep(m)
    m.prune_intermediate_layers([5], prune_norm=True, prune_head=True)
    return Case(state, m, None)


@register_pair('timm-resnet50-pruned-intermediates', 'identity',
               note='timm resnet50 after prune_intermediate_layers([3]): layer4 and fc gone')
def _timm_resnet_pruned():
    m = timm_module().create_model('resnet50', pretrained=False)
    state = keep(m)
    m.prune_intermediate_layers([3], prune_head=True)
    return Case(state, m, None)


# --- split backbones


@register_pair('resnet50-layer3-split-tail-first', 'identity',
               note='resnet50 with layer3 cut into layer3 = [:3] and layer3_tail = [3:] re-indexed, '
                    'layer3_tail registered BEFORE layer3 (blocks 1..5 of layer3 have equal shapes)')
def _tail_first():
    r = tv_model('resnet50')
    state = keep(r)
    head, tail = cut_reindexed(r.layer3, [3])
    modules = OrderedDict()
    for name, child in r.named_children():
        if name == 'layer3':
            modules['layer3_tail'] = tail
            modules['layer3'] = head
        else:
            modules[name] = child
    return Case(state, nn.Sequential(modules), None)


class _SplitEncoderViT(nn.Module):
    """A torchvision ViT whose encoder layers are cut in two, the second part registered first."""

    def __init__(self, vit, cut):
        super().__init__()
        layers = list(vit.encoder.layers)
        self.class_token, self.conv_proj = vit.class_token, vit.conv_proj
        self.pos_embedding = vit.encoder.pos_embedding
        self.second = nn.ModuleList(layers[cut:])
        self.first = nn.ModuleList(layers[:cut])
        self.ln, self.heads = vit.encoder.ln, vit.heads


@register_pair('tv-vit(tiny config)-split-second-first', 'identity',
               note='a 12-layer torchvision ViT (192 wide) with the encoder layers cut into first = '
                    '[:6] and second = [6:], second registered first (12 layers of equal shapes)')
def _vit_second_first():
    src = vit_tiny_config()
    return Case(keep(src), _SplitEncoderViT(src, 6), None)


@register_pair('resnet50-cut-inside-layer3', 'identity',
               note='resnet50 cut inside a stage: body = (conv1, bn1, relu, maxpool, layer1, layer2, '
                    'layer3[:3]) re-indexed, head = (layer3[3:], layer4) re-indexed, fc kept')
def _cut_inside():
    r = tv_model('resnet50')
    a, b = cut_reindexed(r.layer3, [3])
    body = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, a)
    return Case(keep(r), Slots(body=body, head=nn.Sequential(b, r.layer4), fc=r.fc), None)


@register_pair('vgg16_bn-ssd-split', 'identity',
               note='SSD on vgg16_bn: features[:33] (to relu4_3) and features[33:43] re-indexed, '
                    'new 3x3 extras of 512 channels (the shapes of conv5_x) after them')
def _vgg_bn_ssd():
    src = tv_model('vgg16_bn')
    low, high = cut_reindexed(list(src.features)[:43], [33])
    extras = nn.Sequential(nn.Conv2d(512, 512, 3, padding=1), nn.BatchNorm2d(512), nn.ReLU(),
                           nn.Conv2d(512, 512, 3, padding=1), nn.BatchNorm2d(512), nn.ReLU())
    return Case(keep(src), Slots(features=low, conv5=high, extras=extras), None)


class _Unet(nn.Module):
    """A U-Net on resnet34 layers whose decoder blocks have the shapes of encoder blocks."""

    def __init__(self, r, decoder_first):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        enc = OrderedDict(inc=nn.Sequential(r.conv1, r.bn1, r.relu), pool=r.maxpool,
                          enc1=r.layer1, enc2=r.layer2, enc3=r.layer3, enc4=r.layer4)
        dec = OrderedDict(
            up3=nn.ConvTranspose2d(512, 256, 2, 2), dec3=nn.Sequential(BasicBlock(256, 256), BasicBlock(256, 256)),
            up2=nn.ConvTranspose2d(256, 128, 2, 2), dec2=nn.Sequential(BasicBlock(128, 128)),
            up1=nn.ConvTranspose2d(128, 64, 2, 2), dec1=nn.Sequential(BasicBlock(64, 64)),
            out=nn.Conv2d(64, 2, 1))
        parts = [('decoder', dec), ('encoder', enc)] if decoder_first else [('encoder', enc), ('decoder', dec)]
        for name, part in parts:
            self.add_module(name, nn.ModuleDict(part))


for _first in (False, True):
    register_pair('resnet34->unet(decoder of encoder shapes)' + (' decoder first' if _first else ''),
                  'identity',
                  note='a resnet34 checkpoint into a U-Net: encoder.inc/enc1..enc4 are its layers, the '
                       'decoder has BasicBlocks of 256/128/64 channels (the shapes of layer3.1, layer2.1, '
                       'layer1.0)' + (', registered before the encoder' if _first else '')
                       + ': only the encoder belongs')(
        lambda f=_first: (lambda r: Case(keep(r), _Unet(r, f), None))(tv_model('resnet34')))


# --- side by side: same names other shapes, two-stream, EMA in the model


def slots_case(belongs, **models) -> Case:
    """
    ``models`` side by side in :class:`Slots`; the checkpoint is the slot ``belongs`` (truth by identity).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt3 import slots_case
        >>> slots_case('b', a=nn.Linear(2, 2), b=nn.Linear(2, 2)).truth
        {'weight': 'b.weight', 'bias': 'b.bias'}
    """
    return Case(keep(models[belongs]), Slots(**models), None)


for _name, _arch_a, _arch_b, _belongs in [
    ('wide_resnet50_2+resnet50<-resnet50', 'wide_resnet50_2', 'resnet50', 'b'),
    ('resnet50+wide_resnet50_2<-resnet50', 'resnet50', 'wide_resnet50_2', 'a'),
    ('resnext50_32x4d+resnet50<-resnet50', 'resnext50_32x4d', 'resnet50', 'b'),
    ('efficientnet_b0+b1<-b1', 'efficientnet_b0', 'efficientnet_b1', 'b'),
    ('regnet_y_800mf+regnet_y_400mf<-400mf', 'regnet_y_800mf', 'regnet_y_400mf', 'b'),
    ('mobilenet_v2+mobilenet_v3_large<-v3_large', 'mobilenet_v2', 'mobilenet_v3_large', 'b'),
    ('resnet18+resnet34<-resnet34 (second slot)', 'resnet18', 'resnet34', 'b'),
]:
    register_pair(_name, 'identity',
                  note=f'{_arch_a} and {_arch_b} side by side (slots a, b): the checkpoint of slot '
                       f'{_belongs} belongs there only (same names, other shapes in the other slot)')(
        lambda a=_arch_a, b=_arch_b, w=_belongs: slots_case(w, a=tv_model(a), b=tv_model(b)))


def _two_stream(flow_first):
    rgb, flow = tv_model('resnet18'), tv_model('resnet18')
    flow.conv1 = nn.Conv2d(2, 64, 7, 2, 3, bias=False)
    models = {'flow': flow, 'rgb': rgb} if flow_first else {'rgb': rgb, 'flow': flow}
    return slots_case('rgb', **models)


register_pair('two-stream rgb+flow<-resnet18', 'identity', fast=True,
              note='a two-stream model: rgb = resnet18, flow = resnet18 whose conv1 takes 2 channels; '
                   'a resnet18 checkpoint fits rgb whole and flow but for conv1: rgb only')(
    lambda: _two_stream(False))
register_pair('two-stream flow+rgb<-resnet18', 'identity',
              note='the same with the flow stream registered first')(lambda: _two_stream(True))


@register_pair('resnet18->model+ema slots', 'identity', fast=True,
               note='a plain resnet18 checkpoint into a training wrapper holding model and '
                    'ema = AveragedModel(copy): model.* is closer than ema.module.*: model only')
def _plain_into_ema():
    from torch.optim.swa_utils import AveragedModel
    r = tv_model('resnet18')
    return Case(keep(r), Slots(model=r, ema=AveragedModel(copy.deepcopy(r))), None)


@register_pair('timm ModelEmaV3 checkpoint->resnet50', 'identity',
               note='a checkpoint of Slots(model=resnet50, model_ema=timm ModelEmaV3(copy)) '
                    '(model.*, model_ema.module.*) into resnet50: the model copy belongs')
def _timm_ema_v3():
    from timm.utils import ModelEmaV3
    r = tv_model('resnet50')
    holder = Slots(model=r, model_ema=ModelEmaV3(copy.deepcopy(r)))
    return Case(keep(holder), r, None)


@register_pair('teacher(resnet34)+student(resnet18) checkpoint->student slot', 'identity',
               note='a distillation checkpoint (teacher = resnet34, student = resnet18) into a model '
                    'with a new teacher resnet50 and the student slot: the student (same names, same '
                    'shapes) belongs to student.* only; the teacher slot (same names, other blocks: '
                    'shoved as published) is unjudged')
def _distill_slots():
    teacher, student = tv_model('resnet34'), tv_model('resnet18')
    state = {f'teacher.{k}': v for k, v in keep(teacher).items()}
    state.update({f'student.{k}': v for k, v in keep(student).items()})
    dst = Slots(teacher=tv_model('resnet50'), student=student)
    return Case(state, dst, None, unjudged=[k for k in dst.state_dict() if k.startswith('teacher.')])


# --- the idioms backwards: a checkpoint saved from the view into the plain model


def _backwards(make):
    """``make() -> (model, view)`` sharing modules; the checkpoint is the view's state."""
    model, view = make()
    return Case(keep(view), model, None)


def _children_view(arch, drop):
    model = tv_model(arch)
    return model, nn.Sequential(*list(model.children())[:len(list(model.children())) - drop])


def _flat_effnet_view():
    model = tv_model('efficientnet_b0')
    f = model.features
    return model, nn.Sequential(f[0], *[b for stage in f[1:8] for b in stage], f[8])


def _vgg_slices_view():
    model = tv_model('vgg16')
    parts = cut_reindexed(model.features, [4, 9, 16, 23])
    return model, Slots(**{f'slice{i + 1}': p for i, p in enumerate(parts)})


def _resnet_flat_view():
    r = tv_model('resnet50')
    return r, nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool,
                            *[b for i in range(1, 5) for b in getattr(r, f'layer{i}')])


def _swin_stages_view():
    model = tv_model('swin_t')
    return model, Slots(stem=model.features[0], stages=nn.ModuleList(list(model.features)[1:]),
                        norm=model.norm, head=model.head)


for _name, _make, _note in [
    ('resnet50-children checkpoint->resnet50', lambda: _children_view('resnet50', 2),
     'a checkpoint of nn.Sequential(*list(resnet50().children())[:-2]) (0.weight, 4.0.conv1 ...) into resnet50'),
    ('mobilenet_v3-children checkpoint->mobilenet_v3_large', lambda: _children_view('mobilenet_v3_large', 2),
     'a checkpoint of the children-Sequential of mobilenet_v3_large (0.N.block...) into the model'),
    ('efficientnet_b0-flat-blocks checkpoint->efficientnet_b0', _flat_effnet_view,
     'a checkpoint of efficientnet_b0 flattened to Sequential(stem, 16 blocks, head conv) into the model'),
    ('vgg16-perceptual-slices checkpoint->vgg16', _vgg_slices_view,
     'a perceptual-loss checkpoint (slice1..slice5 re-indexed) into vgg16: the classifier gets nothing'),
    ('resnet50-flat-blocks checkpoint->resnet50', _resnet_flat_view,
     'a checkpoint of resnet50 as Sequential(conv1, bn1, relu, maxpool, 16 bottlenecks) into resnet50'),
    ('swin_t-stem-stages checkpoint->swin_t', _swin_stages_view,
     'a checkpoint of swin_t as stem + stages = ModuleList(features[1:]) + norm + head into swin_t'),
]:
    register_pair(_name, 'identity', note=_note)(lambda m=_make: _backwards(m))
