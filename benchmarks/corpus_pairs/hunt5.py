"""
Hunt 5: video and optical-flow models, transformers of the second
generation, and timm variant neighbours.

This module: torchvision's video networks (r2plus1d_18, r3d_18 / mc3_18,
s3d, mvit, swin3d_t) under the idioms (children-Sequential, wrapped, split
backbones) and two of one family side by side (r3d_18 beside mc3_18 share
every name and the stem's and layer1's shapes; swin3d_t beside swin_t share
the block shapes, one feature index apart); swin_v2_t beside swin_t, maxvit_t
split; raft_small, whose feature and context encoders are two encoders of one
family side by side (the same keys, only the last conv's width differs),
alone, regrouped in the other order and under the original RAFT names; a
network's children-Sequential beside a sibling of its names (regnet_x_800mf,
mc3_18, r2plus1d_18, swin_t, timm resnet50d: the sibling holds the
checkpoint's names, the copy its tensors); timm variant neighbours (resnet26
-> resnet50, resnet50 -> resnet50d with its deep stem, convnext_tiny ->
convnext_small, efficientnet_b0 -> b1, levit_128s -> levit_128, a shallower
beit, swinv2_tiny -> swinv2_small, swinv2 / coatnet split, maxvit and
coatnet side by side); and checkpoints that are the model's own backbone
under another library's names plus an extra head. Truth by identity, or by
names where the published family says so.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('h5-raft-original-names->raft_small')
    >>> case.truth['fnet.layer2.0.downsample.0.weight']
    'feature_encoder.layer2.0.downsample.0.weight'
    >>> build_case('h5-mc3_18+r3d_18<-r3d_18').truth['stem.0.weight']
    'b.stem.0.weight'
"""
import re

import torch
from torch import nn

from corpus_pairs.hunt3 import names_case, slots_case
from corpus_pairs.hunt4 import getter
from corpus_pairs.hunt4_names import hf_regnet_name, renamed_state, through_view
from corpus_pairs.models import Slots, Wrap, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import PAIRS, Case, register_pair, sorted_keys

__all__ = ['beside_sibling', 'raft_original_name']


def _video(arch, **kw):
    return getattr(torchvision_module().models.video, arch)(weights=None, **kw)


def _timm(arch, **kw):
    return timm_module().create_model(arch, pretrained=False, **kw)


def _view(model, make, wrap=None):
    """A case: ``model``'s checkpoint (under ``wrap.`` when given) into ``make(model)``."""
    state = keep(Wrap(wrap, model)) if wrap else keep(model)
    return Case(state, make(model), None)


# --- video models under the idioms


for _name, _arch, _make, _wrap, _note in [
    ('h5-r2plus1d_18-children[:-1]', 'r2plus1d_18',
     lambda m: nn.Sequential(*list(m.children())[:-1]), None,
     'nn.Sequential(*list(r2plus1d_18().children())[:-1]): stem -> 0, layerN -> N, fc dropped '
     '(the (2+1)D convs are Sequentials one level deeper than r3d_18)'),
    ('h5-r2plus1d_18-low-high', 'r2plus1d_18',
     lambda m: Slots(low=nn.Sequential(m.stem, m.layer1, m.layer2),
                     high=nn.Sequential(m.layer3, m.layer4), fc=m.fc), None,
     'r2plus1d_18 split: low = (stem, layer1, layer2), high = (layer3, layer4), re-indexed'),
    ('h5-s3d (model.*)->features-children', 's3d',
     lambda m: nn.Sequential(*list(m.features.children())), 'model',
     's3d checkpoint under model.* into nn.Sequential(*s3d().features.children()): '
     'model.features.N -> N, the classifier dropped'),
    ('h5-swin3d_t-children[:-1]', 'swin3d_t',
     lambda m: nn.Sequential(*list(m.children())[:-1]), None,
     'nn.Sequential(*list(swin3d_t().children())[:-1]): patch_embed -> 0, features -> 2, '
     'norm -> 3, head dropped'),
    ('h5-swin3d_t-stages-split', 'swin3d_t',
     lambda m: Slots(embed=m.patch_embed, low=nn.Sequential(*list(m.features)[:4]),
                     high=nn.Sequential(*list(m.features)[4:]), norm=m.norm, head=m.head), None,
     'swin3d_t features split after the second merge: low = features[:4], high = features[4:] '
     're-indexed (the blocks of stage 3 and 4 have the same names in both halves)'),
    ('h5-mvit_v2_s-blocks-split', 'mvit_v2_s',
     lambda m: Slots(conv_proj=m.conv_proj, low=nn.ModuleList(list(m.blocks)[:8]),
                     high=nn.ModuleList(list(m.blocks)[8:]), norm=m.norm, head=m.head), None,
     'mvit_v2_s blocks split in two ModuleLists of 8 (the second re-indexed from 0); '
     'pos_encoding has no tensors in v2'),
    ('h5-mvit_v1_b (module.*)->children[:-1]', 'mvit_v1_b',
     lambda m: nn.Sequential(*list(m.children())[:-1]), 'module',
     'a DataParallel mvit_v1_b checkpoint into nn.Sequential(*children[:-1]): conv_proj -> 0, '
     'pos_encoding -> 1, blocks -> 2, norm -> 3, head dropped'),
]:
    register_pair(_name, 'identity', note=_note)(
        lambda a=_arch, f=_make, w=_wrap: _view(_video(a), f, w))


# --- two of one family side by side


for _name, _a, _b, _belongs, _note in [
    ('h5-mc3_18+r3d_18<-r3d_18', 'mc3_18', 'r3d_18', 'b',
     'an r3d_18 checkpoint into Slots(a = mc3_18, b = r3d_18): every name is in both slots, the stem '
     'and layer1 have one shape in both (mc3 keeps 3x3x3 kernels there): b only'),
    ('h5-mvit_v2_s+mvit_v1_b<-mvit_v1_b', 'mvit_v2_s', 'mvit_v1_b', 'b',
     'an mvit_v1_b checkpoint into Slots(a = mvit_v2_s, b = mvit_v1_b): one family, 16 blocks each, '
     'many shapes shared: b only'),
]:
    register_pair(_name, 'identity', note=_note)(
        lambda a=_a, b=_b, k=_belongs: slots_case(k, a=_video(a), b=_video(b)))


def _image_video(belongs, order):
    models = {'image': tv_model('swin_t'), 'video': _video('swin3d_t')}
    return slots_case(belongs, **{k: models[k] for k in order})


register_pair('h5-swin_t+swin3d_t<-swin3d_t', 'identity',
              note="a swin3d_t checkpoint into Slots(image = swin_t, video = swin3d_t): the blocks' "
                   'tensors have one shape in both, one features index apart (swin3d_t keeps '
                   'patch_embed apart): video only')(
    lambda: _image_video('video', ('image', 'video')))
register_pair('h5-swin_t+swin_v2_t<-swin_v2_t', 'identity',
              note='a swin_v2_t checkpoint into Slots(a = swin_t, b = swin_v2_t): the same names and '
                   'shapes but for the v2 attention (cpb_mlp, logit_scale): b only')(
    lambda: slots_case('b', a=tv_model('swin_t'), b=tv_model('swin_v2_t')))


def beside_sibling(own: nn.Module, sibling: nn.Module, cut=None) -> Case:
    """
    ``own``'s checkpoint into ``Slots(a = sibling, b = nn.Sequential(*list(own.children())[:cut]))``.

    The sibling (another network of the family) holds the checkpoint's own
    names, the children-Sequential its tensors renamed by position: ``b``
    only (truth by identity; what ``cut`` drops has no home, not even the
    sibling's tensor of its name and shape).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt5 import beside_sibling
        >>> own = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3))
        >>> beside_sibling(own, nn.Sequential(nn.Linear(2, 2)), cut=-1).truth
        {'0.weight': 'b.0.weight', '0.bias': 'b.0.bias'}
    """
    return Case(keep(own), Slots(a=sibling, b=nn.Sequential(*list(own.children())[:cut])), None)


for _name, _own, _sibling, _cut, _note in [
    ('h5-regnet_x_800mf+regnet_x_400mf children<-regnet_x_400mf', lambda: tv_model('regnet_x_400mf'),
     lambda: tv_model('regnet_x_800mf'), None,
     'a regnet_x_400mf checkpoint into Slots(a = regnet_x_800mf, b = its children-Sequential): the '
     "800mf's stem has the 400mf's names and shape, its fc the names: b only (stem -> b.0, "
     'trunk_output -> b.1, fc -> b.3)'),
    ('h5-regnet_x_800mf+regnet_x_400mf children[:-1]<-regnet_x_400mf', lambda: tv_model('regnet_x_400mf'),
     lambda: tv_model('regnet_x_800mf'), -1,
     'the same without the fc in b: the 400mf fc has no home'),
    ('h5-mc3_18+r3d_18 children[:-1]<-r3d_18', lambda: _video('r3d_18'), lambda: _video('mc3_18'), -1,
     "an r3d_18 checkpoint into Slots(a = mc3_18, b = r3d_18's children[:-1]): mc3_18's stem and "
     "layer1 have the checkpoint's names and shapes, its fc too; they are the sibling's: b only, "
     'the fc nowhere'),
    ('h5-r2plus1d_18+r3d_18 children[:-1]<-r3d_18', lambda: _video('r3d_18'), lambda: _video('r2plus1d_18'), -1,
     "an r3d_18 checkpoint into Slots(a = r2plus1d_18, b = r3d_18's children[:-1]): r2plus1d_18's "
     "BatchNorms (convN.1) have the checkpoint's names and widths, its convs are a level deeper: b only"),
    ('h5-swin_t+swin_v2_t children[:-1]<-swin_v2_t', lambda: tv_model('swin_v2_t'), lambda: tv_model('swin_t'), -1,
     "a swin_v2_t checkpoint into Slots(a = swin_t, b = swin_v2_t's children[:-1]): swin_t has the "
     "checkpoint's names and shapes but for the v2 attention: b only, the head nowhere"),
    ('h5-timm-resnet50d+resnet50 children[:-1]<-resnet50', lambda: _timm('resnet50'),
     lambda: _timm('resnet50d'), -1,
     "a timm resnet50 checkpoint into Slots(a = resnet50d, b = resnet50's children[:-1]): every block "
     "tensor of resnet50d has the checkpoint's name and shape (the stem and the downsample differ): "
     'b only, the fc nowhere'),
]:
    register_pair(_name, 'identity', note=_note)(
        lambda o=_own, g=_sibling, c=_cut: beside_sibling(o(), g(), c))


register_pair('h5-mc3_18+r3d_18 children[:-1]<-r3d_18 (sorted keys)', 'identity',
              note='h5-mc3_18+r3d_18 children[:-1]<-r3d_18 with the checkpoint keys sorted by name')(
    lambda: sorted_keys(beside_sibling(_video('r3d_18'), _video('mc3_18'), -1)))
# (the rest added later: with keys sorted, prefix-hack, isomorphism and
# structure put 295 of resnet50's tensors into the resnet50d, structure 98
# of r3d_18's into the r2plus1d_18, until the checkpoint less its head was
# found by shapes alone, modulefit.body_shapes_fit)
for _name in ['h5-regnet_x_800mf+regnet_x_400mf children<-regnet_x_400mf',
              'h5-regnet_x_800mf+regnet_x_400mf children[:-1]<-regnet_x_400mf',
              'h5-r2plus1d_18+r3d_18 children[:-1]<-r3d_18',
              'h5-swin_t+swin_v2_t children[:-1]<-swin_v2_t',
              'h5-timm-resnet50d+resnet50 children[:-1]<-resnet50']:
    register_pair(f'{_name} (sorted keys)', 'identity',
                  note=f'{_name} with the checkpoint keys sorted by name')(
        lambda build=PAIRS[_name].build: sorted_keys(build()))


# --- second-generation image transformers under the idioms


for _name, _arch, _make, _note in [
    ('h5-swin_v2_t-features-layergetter', 'swin_v2_t', lambda m: getter(m.features, {'5': 'c4'}),
     "IntermediateLayerGetter(swin_v2_t.features, {'5': 'c4'}): features.6/7, norm, head cut off"),
    ('h5-maxvit_t-blocks-split', 'maxvit_t',
     lambda m: Slots(stem=m.stem, low=nn.Sequential(*list(m.blocks)[:2]),
                     high=nn.Sequential(*list(m.blocks)[2:]), classifier=m.classifier),
     'maxvit_t blocks split in two re-indexed halves (blocks.2/3 -> high.0/1)'),
]:
    register_pair(_name, 'identity', note=_note)(lambda a=_arch, f=_make: _view(tv_model(a), f))


# --- raft_small: two encoders of one family side by side


def raft_original_name(key: str) -> str:
    """
    The original RAFT (princeton-vl) name of a torchvision ``raft_small`` key.

    Example:
        >>> from corpus_pairs.hunt5 import raft_original_name
        >>> raft_original_name('context_encoder.layer1.0.convnormrelu2.0.bias')
        'cnet.layer1.0.conv2.bias'
        >>> raft_original_name('update_block.motion_encoder.convcorr1.0.weight')
        'update_block.encoder.convc1.weight'
    """
    rules = [
        (r'feature_encoder\.(.*)', r'fnet.\1'), (r'context_encoder\.(.*)', r'cnet.\1'),
        (r'(fnet|cnet)\.convnormrelu\.0\.(\w+)', r'\1.conv1.\2'),
        (r'(fnet|cnet)\.(layer\d\.\d)\.convnormrelu(\d)\.0\.(\w+)', r'\1.\2.conv\3.\4'),
        (r'(fnet|cnet)\.conv\.(\w+)', r'\1.conv2.\2'),
        (r'update_block\.motion_encoder\.', 'update_block.encoder.'),
        (r'(update_block\.encoder)\.conv(corr|flow)(\d)\.0\.', lambda m: f'{m[1]}.conv{m[2][0]}{m[3]}.'),
        (r'(update_block\.encoder)\.conv\.0\.', r'\1.conv.'),
        (r'update_block\.recurrent_block\.convgru1\.', 'update_block.gru.'),
    ]
    for pattern, repl in rules:
        key = re.sub('^' + pattern, repl, key)
    return key


def _raft():
    return torchvision_module().models.optical_flow.raft_small(weights=None)


def _raft_encoder(which):
    m = _raft()
    return Case(keep(getattr(m, which)), m, None)


register_pair('h5-raft_small feature_encoder->raft_small', 'identity',
              note="a raft_small feature_encoder's checkpoint (no prefix) into raft_small: the "
                   'context_encoder has the same keys and shapes but its last conv (160 wide, not 128): '
                   'the feature_encoder only')(lambda: _raft_encoder('feature_encoder'))
register_pair('h5-raft_small context_encoder->raft_small', 'identity',
              note="a raft_small context_encoder's checkpoint (no prefix) into raft_small: the "
                   'context_encoder only')(lambda: _raft_encoder('context_encoder'))
register_pair('h5-raft_small->context/feature/update regrouped', 'identity', cross_naming=True,
              note='a raft_small checkpoint into Slots(context = context_encoder, features = '
                   'feature_encoder, update = update_block): the two encoders renamed and registered '
                   'the other way round (the order disagrees, only the last conv tells them apart)')(
    lambda: (lambda m: Case(keep(m), Slots(context=m.context_encoder, features=m.feature_encoder,
                                             update=m.update_block), None))(_raft()))
register_pair('h5-raft-original-names->raft_small', 'identity', cross_naming=True,
              note='raft_small under the original RAFT names (fnet / cnet, conv1 / layerN.M.convK / '
                   'conv2, update_block.encoder.convc1 / convf1 / convf2, update_block.gru) into '
                   "torchvision's raft_small: fnet -> feature_encoder, cnet -> context_encoder")(
    lambda: (lambda m: Case(renamed_state(m, raft_original_name), m, None))(_raft()))
register_pair('h5-raft-original-names (sorted)->raft_small', 'identity', cross_naming=True,
              note='the same, keys sorted (cnet before fnet, update_block last)')(
    lambda: (lambda m: Case(dict(sorted(renamed_state(m, raft_original_name).items())), m, None))(_raft()))
register_pair('h5-raft-original fnet->raft_small', 'identity', cross_naming=True,
              note="the original RAFT small's fnet alone (fnet.conv1 ... fnet.conv2) into raft_small: "
                   'the feature_encoder only (the context_encoder differs in its last conv)')(
    lambda: (lambda m: Case(renamed_state(m.feature_encoder,
                                          lambda k: raft_original_name('feature_encoder.' + k)),
                            m, None))(_raft()))


# --- regnet width variants side by side


register_pair('h5-regnet_y_400mf+regnet_x_400mf<-regnet_x_400mf', 'identity',
              note='a regnet_x_400mf checkpoint into Slots(a = regnet_y_400mf, b = regnet_x_400mf): '
                   'the stems agree: b only')(
    lambda: slots_case('b', a=tv_model('regnet_y_400mf'), b=tv_model('regnet_x_400mf')))


# --- timm variant neighbours: the same names, another depth (truth by names)


for _name, _src, _dst, _note in [
    ('h5-timm-resnet26->resnet50', ('resnet26', {}), ('resnet50', {}),
     'timm resnet26 (bottlenecks 2-2-2-2) -> resnet50 (3-4-6-3): the same names, the extra blocks stay'),
    ('h5-timm-convnext_tiny->convnext_small', ('convnext_tiny', {}), ('convnext_small', {}),
     'timm convnext_tiny -> convnext_small: stage 3 has 9 blocks, not 27; the same names'),
    ('h5-timm-efficientnet_b0->b1', ('efficientnet_b0', {}), ('efficientnet_b1', {}),
     'timm efficientnet_b0 -> efficientnet_b1: one more block in most stages, the same names'),
    ('h5-timm-levit_128s->levit_128', ('levit_128s', {}), ('levit_128', {}),
     'timm levit_128s (depths 2-3-4, heads 4-6-8) -> levit_128 (4-4-4, heads 4-8-12): the same '
     'names; the attention of more heads is shoved'),
    ('h5-timm-beit(4 blocks)->beit(2 blocks)', ('beit_base_patch16_224', dict(depth=4, embed_dim=192, num_heads=3)),
     ('beit_base_patch16_224', dict(depth=2, embed_dim=192, num_heads=3)),
     'a timm BEiT of 4 blocks (192 wide) -> one of 2: the same names (relative position tables '
     'per block, gamma_1/2, q_bias/v_bias)'),
    ('h5-timm-swinv2_tiny->swinv2_small', ('swinv2_tiny_window8_256', {}), ('swinv2_small_window8_256', {}),
     'timm swinv2_tiny_window8_256 -> swinv2_small_window8_256: layer 3 has 6 blocks, not 18'),
]:
    register_pair(_name, 'names', note=_note)(
        lambda s=_src, d=_dst: names_case(_timm(s[0], **s[1]), _timm(d[0], **d[1])))


@register_pair('h5-timm-resnet50->resnet50d(blocks shared)', 'identity',
               note="a timm resnet50 checkpoint into a resnet50d whose blocks are resnet50's, the "
                    'downsample = (AvgPool or Identity, conv, bn): downsample.0/.1 -> .1/.2 (resnet50d\'s '
                    'downsample.1 is a conv where resnet50 has its bn); the deep stem and fc unjudged')
def _resnet50_to_d():
    r, d = _timm('resnet50'), _timm('resnet50d')
    for i in range(1, 5):
        for r_block, d_block in zip(getattr(r, f'layer{i}'), getattr(d, f'layer{i}')):
            for name in ('conv1', 'bn1', 'conv2', 'bn2', 'conv3', 'bn3'):
                setattr(d_block, name, getattr(r_block, name))
            if r_block.downsample is not None:
                d_block.downsample = nn.Sequential(d_block.downsample[0], *r_block.downsample)
    unjudged = [k for k in d.state_dict() if k.startswith(('conv1.', 'bn1.', 'fc.'))]
    return Case(keep(r), d, None, unjudged=unjudged)


# --- timm second-generation transformers split, side by side


for _name, _arch, _make, _note in [
    ('h5-timm-swinv2_tiny-layers-split', 'swinv2_tiny_window8_256',
     lambda m: Slots(embed=m.patch_embed, low=nn.Sequential(*list(m.layers)[:2]),
                     high=nn.Sequential(*list(m.layers)[2:]), norm=m.norm, head=m.head),
     'timm swinv2_tiny layers split in two re-indexed halves (layers.2/3 -> high.0/1)'),
    ('h5-timm-coatnet_0_rw-stages-split', 'coatnet_0_rw_224',
     lambda m: Slots(stem=m.stem, conv=nn.Sequential(*list(m.stages)[:2]),
                     attn=nn.Sequential(*list(m.stages)[2:]), norm=m.norm, head=m.head),
     'timm coatnet_0_rw stages split into the conv stages (0, 1) and the attention stages (2, 3 -> 0, 1)'),
]:
    register_pair(_name, 'identity', note=_note)(lambda a=_arch, f=_make: _view(_timm(a), f))


register_pair('h5-timm-maxvit_tiny_rw+coatnet_0_rw<-coatnet_0_rw', 'identity',
              note='a timm coatnet_0_rw checkpoint into Slots(a = maxvit_tiny_rw, b = coatnet_0_rw): '
                   'one family (maxxvit), the stems alike: b only')(
    lambda: slots_case('b', a=_timm('maxvit_tiny_rw_224'), b=_timm('coatnet_0_rw_224')))


# --- the model's own backbone under another library's names, plus an extra head


def _extra(state, shapes):
    """``state`` with new tensors of the given shapes added at its end."""
    out = dict(state)
    out.update((k, torch.zeros(s)) for k, s in shapes.items())
    return out


@register_pair('h5-hf-regnet backbone+detection head->tv-regnet_y_400mf', 'identity', cross_naming=True,
               note="a torchvision regnet_y_400mf's backbone under HuggingFace names (no classifier) "
                    'plus a detection head (head.cls [80, 440, 1, 1], head.reg [4, 440, 1, 1]) into '
                    'regnet_y_400mf: the backbone only; fc gets nothing')
def _hf_regnet_head():
    m = tv_model('regnet_y_400mf')
    state = renamed_state(m, lambda k: None if k.startswith('fc.') else hf_regnet_name(k))
    return Case(_extra(state, {'head.cls.weight': (80, 440, 1, 1), 'head.cls.bias': (80,),
                               'head.reg.weight': (4, 440, 1, 1), 'head.reg.bias': (4,)}), m, None)


def _timm_convnext_aux(order):
    src, dst = _timm('convnext_tiny'), tv_model('convnext_tiny')
    case = through_view(src, dst, dst)
    aux = {'aux_head.norm.weight': (768,), 'aux_head.norm.bias': (768,),
           'aux_head.fc.weight': (1000, 768), 'aux_head.fc.bias': (1000,)}
    case.source = _extra(case.source, aux)
    if order == 'sorted':
        case.source = dict(sorted(case.source.items()))
    return case


register_pair('h5-timm-convnext_tiny+aux head->tv-convnext_tiny', 'identity', cross_naming=True,
              note='a timm convnext_tiny checkpoint plus an auxiliary head of the main head\'s shapes '
                   "(aux_head.norm, aux_head.fc [1000, 768]) into torchvision convnext_tiny: timm's "
                   'head.norm / head.fc -> classifier.0 / classifier.2; the aux head has no home')(
    lambda: _timm_convnext_aux('model'))
register_pair('h5-timm-convnext_tiny+aux head (sorted keys)->tv-convnext_tiny', 'identity', cross_naming=True,
              note='the same, keys sorted (aux_head first)')(lambda: _timm_convnext_aux('sorted'))


# --- a namesake of another design beside the checkpoint's network renamed


def _namesake_beside(checkpoint, namesake, sort):
    x, y = _timm(checkpoint), _timm(namesake)
    case = Case(keep(x), Slots(a=y, b=nn.Sequential(*x.children())), None)
    return sorted_keys(case) if sort else case


for _name, _args, _note in [
    ('h5-timm-regnetx_002->regnety_002+regnetx_002 children', ('regnetx_002', 'regnety_002', False),
     "timm regnetx_002 into a model holding timm's regnety_002 (the checkpoint's names and "
     'widths, squeeze-excitation in every block) beside the children-Sequential of a '
     'regnetx_002: the names lead to the regnety, the design to the children'),
    ('h5-timm-regnetx_002 (sorted keys)->regnety_002+regnetx_002 children',
     ('regnetx_002', 'regnety_002', True),
     'the same, keys sorted: prefix-hack put every tensor into the regnety, and auto took it '
     '(266 wrong)'),
    ('h5-timm-vit_small->deit3_small+vit_small children',
     ('vit_small_patch16_224', 'deit3_small_patch16_224', False),
     "timm's ViT-S into a model holding a DeiT III-S (its names, layer scales in every "
     "block) beside the ViT's children-Sequential, which drops its tokens: every mode put "
     'the whole checkpoint into the DeiT (152 wrong); a tie now, nothing loaded'),
    ('h5-timm-deit3_small (sorted keys)->vit_small+deit3_small children',
     ('deit3_small_patch16_224', 'vit_small_patch16_224', True),
     "timm's DeiT III-S, keys sorted, into a model holding a ViT-S (its names, no layer "
     "scales) beside the DeiT's children-Sequential: structure put all but the layer "
     'scales into the ViT (151 wrong)'),
    ('h5-timm-resnet26d->resnet26t+resnet26d children', ('resnet26d', 'resnet26t', False),
     "timm's resnet26d into a model holding a resnet26t (its names, a stem of other widths) "
     'beside its children-Sequential: the embedding put the body into the resnet26t by '
     'name and the stem into the children by shape (175 wrong)'),
]:
    register_pair(_name, 'identity', note=_note)(lambda a=_args: _namesake_beside(*a))
