"""
Hunt 3's wrong cells and their reductions: a list kept under its name with
its tail registered first, twins split second-half first, a checkpoint of
named parts with sorted keys, foreign names (Keras, HuggingFace) into two
slots of one family, a backbone with a stage or its features cut one level
down beside a sibling of another size; plus the decoys that stayed right
(a slot needing a shove, a spare res5, detector checkpoints across heads).

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('linear x3: blocks[:1] + tail[1:] registered first')
    >>> sorted(case.truth.items())[:2]
    [('blocks.0.bias', 'blocks.0.bias'), ('blocks.0.weight', 'blocks.0.weight')]
"""
import copy

from torch import nn

from corpus_pairs.cross import vit_truth
from corpus_pairs.hunt3 import cut_reindexed, slots_case, vit_tiny_config
from corpus_pairs.hunt3_names import hf_vit_state, keras_resnet
from corpus_pairs.models import Slots, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair, sorted_keys, truth_by_names

__all__ = ['rebuilt']


# --- more decoys: a slot that needs a shove, a spare res5, renamed checkpoints into slots


def _fc10_slots(ten_first, checkpoint_classes):
    ten, full = tv_model('resnet18', num_classes=10), tv_model('resnet18')
    models = {'ten': ten, 'full': full} if ten_first else {'full': full, 'ten': ten}
    return slots_case('ten' if checkpoint_classes == 10 else 'full', **models)


for _first, _classes in [(True, 1000), (False, 1000), (True, 10), (False, 10)]:
    _order = 'resnet18(10 classes)+resnet18' if _first else 'resnet18+resnet18(10 classes)'
    register_pair(f'{_order}<-resnet18({_classes} classes)', 'identity', fast=_first and _classes == 1000,
                  note=f'two resnet18 slots that differ only by the fc (10 or 1000 classes); a '
                       f'{_classes}-class checkpoint fits its own slot whole, the other but for the fc: '
                       'its own slot only')(
        lambda f=_first, c=_classes: _fc10_slots(f, c))


@register_pair('resnet50+spare res5<-resnet50', 'identity',
               note='a resnet50 backbone and roi_heads.res5 = a fresh copy of its layer4 (same shapes, '
                    'a new name): layer4 belongs to backbone.layer4 only')
def _spare_res5():
    r = tv_model('resnet50')
    return Case(keep(r), Slots(backbone=r, roi_heads=Slots(res5=copy.deepcopy(r.layer4))), None)


@register_pair('keras-names->resnet101+resnet50', 'identity', cross_naming=True,
               note='a Keras-named resnet50 checkpoint into resnet101 and resnet50 side by side: '
                    'the resnet50 slot only')
def _keras_slots():
    r = tv_model('resnet50')
    return Case(keep(keras_resnet(r)), Slots(deep=tv_model('resnet101'), plain=r), None)


@register_pair('hf-vit-names->tv-vit(12)+tv-vit(6)', 'names', cross_naming=True,
               note='the HuggingFace-named deit_tiny checkpoint into two torchvision ViTs of its width '
                    '(12 layers, then 6): the 12-layer slot only')
def _hf_vit_slots():
    src = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    state = hf_vit_state(src)
    to_tv = vit_truth(src.state_dict())
    back = {id(v): k for k, v in keep(src).items()}
    shallow = torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=224, patch_size=16, num_layers=6, num_heads=3, hidden_dim=192, mlp_dim=768)
    dst = Slots(deep=vit_tiny_config(), shallow=shallow)
    return Case(state, dst, {k: 'deep.' + to_tv[back[id(v)]] for k, v in state.items()})


def _det(name):
    return getattr(torchvision_module().models.detection, name)(weights=None, weights_backbone=None)


@register_pair('retinanet->fasterrcnn', 'names',
               note='a retinanet_resnet50_fpn checkpoint into fasterrcnn_resnet50_fpn: backbone.body by '
                    'name; the FPNs take other levels (retinanet C3-C5 + P6/P7, faster C2-C5: '
                    'inner_blocks.0 is [256, 512] vs [256, 256]), unjudged; the heads share nothing')
def _retina_to_faster():
    src, dst = _det('retinanet_resnet50_fpn'), _det('fasterrcnn_resnet50_fpn')
    state = keep(src)
    unjudged = [k for k in dst.state_dict() if k.startswith('backbone.fpn.')]
    truth = {k: v for k, v in truth_by_names(state, dst, [('backbone.body.', 'backbone.body.')]).items()}
    return Case(state, dst, truth, unjudged=unjudged)


def _fpn_one_level_on(src_name, dst_name, shift):
    """A detector checkpoint into another whose FPN starts ``shift`` levels
    later (``-1``: earlier): the body by name, the FPN's blocks one level on."""
    src, dst = _det(src_name), _det(dst_name)
    state = keep(src)
    dst_keys = dst.state_dict()
    truth = truth_by_names(state, dst, [('backbone.body.', 'backbone.body.')])
    for key in state:
        parts = key.split('.')
        if key.startswith(('backbone.fpn.inner_blocks.', 'backbone.fpn.layer_blocks.')):
            parts[3] = str(int(parts[3]) + shift)
            if '.'.join(parts) in dst_keys:
                truth[key] = '.'.join(parts)
    return Case(state, dst, truth)


@register_pair('retinanet->fasterrcnn (FPN judged)', 'names',
               note="the same, the FPN judged: retinanet's FPN takes C3-C5, faster's C2-C5, so "
                    "each of retinanet's inner and layer blocks is faster's one level on (the "
                    'three layer blocks are alike: every mode put them in their namesakes, '
                    '6 wrong)')
def _retina_to_faster_fpn():
    return _fpn_one_level_on('retinanet_resnet50_fpn', 'fasterrcnn_resnet50_fpn', 1)


@register_pair('fasterrcnn->retinanet (FPN judged)', 'names',
               note='the same, back: the first level of faster\'s FPN has no place')
def _faster_to_retina_fpn():
    return _fpn_one_level_on('fasterrcnn_resnet50_fpn', 'retinanet_resnet50_fpn', -1)


@register_pair('keypointrcnn->maskrcnn', 'names',
               note='a keypointrcnn_resnet50_fpn checkpoint into maskrcnn_resnet50_fpn: backbone, rpn, '
                    'box head by name, the 2-class box predictor shoved into 91 classes; the keypoint '
                    'head and the mask head share nothing')
def _kp_to_mask():
    src, dst = _det('keypointrcnn_resnet50_fpn'), _det('maskrcnn_resnet50_fpn')
    state = keep(src)
    truth = truth_by_names(state, dst, [('', '')])
    return Case(state, dst, {k: v for k, v in truth.items() if 'keypoint' not in k})


# --- a list kept under its name with its tail re-indexed and registered first (hunt 3's wrong cells)


def rebuilt(model, children):
    """
    A module holding ``model``'s own parameters and buffers, then ``children`` (``[(name, module)]``).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.hunt3_decoys import rebuilt
        >>> list(rebuilt(nn.Linear(2, 2), [('extra', nn.Linear(2, 1))]).state_dict())
        ['weight', 'bias', 'extra.weight', 'extra.bias']
    """
    out = nn.Module()
    for name, p in model._parameters.items():
        if p is not None:
            out.register_parameter(name, p)
    for name, b in model._buffers.items():
        if b is not None:
            out.register_buffer(name, b)
    for name, child in children:
        out.add_module(name, child)
    return out


def _cut_case(model, list_name, count, first_name, keeps='head'):
    """``model``'s list cut at ``count`` into two lists, both re-indexed,
    the one under ``first_name`` registered before the one that keeps the
    list's name: ``keeps='head'``, the list keeps ``[:count]`` (its tail
    moved out); ``keeps='tail'``, it keeps ``[count:]`` (its head moved
    out)."""
    state = keep(model)
    items = list(getattr(model, list_name))
    head, tail = nn.Sequential(*items[:count]), nn.Sequential(*items[count:])
    moved, kept = (tail, head) if keeps == 'head' else (head, tail)
    children = []
    for name, child in model.named_children():
        if name == list_name:
            children += [(first_name, moved), (list_name, kept)]
        else:
            children.append((name, child))
    return Case(state, rebuilt(model, children), None)


@register_pair('linear x3: blocks[:1] + tail[1:] registered first', 'identity', fast=True,
               note='the smallest of the kind: blocks = ModuleList of 3 Linear(4, 4); the model keeps '
                    'blocks = [:1] under its name and blocks_b = [1:] re-indexed, registered first: '
                    'blocks.0 belongs to blocks.0 (same name), blocks.1-2 to blocks_b.0-1')
def _linear_tail_first():
    src = nn.Module()
    src.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    return _cut_case(src, 'blocks', 1, 'blocks_b')


@register_pair('timm-deit_tiny-blocks[:4]+tail first', 'identity',
               note='timm deit_tiny with blocks = [:4] kept under its name and blocks_tail = [4:] '
                    're-indexed, registered before blocks (12 blocks of equal shapes)')
def _deit_tail_first():
    return _cut_case(timm_module().create_model('deit_tiny_patch16_224', pretrained=False),
                     'blocks', 4, 'blocks_tail')


@register_pair('timm-deit_tiny-blocks[:4]+tail first (sorted keys)', 'identity',
               note='the same, the checkpoint keys sorted by name (a .safetensors file): the '
                    "checkpoint's block numbers are no guide to the model's two lists, registered "
                    'tail first (48 wrong while they were taken for one)')
def _deit_tail_first_sorted():
    return sorted_keys(_deit_tail_first())


@register_pair('resnet34-layer3[:2]+tail first', 'identity',
               note='resnet34 with layer3 = [:2] kept under its name and layer3_tail = [2:] re-indexed '
                    '(4 blocks of the shapes of layer3.1), registered before layer3')
def _resnet34_tail_first():
    return _cut_case(tv_model('resnet34'), 'layer3', 2, 'layer3_tail')


# --- the mirror: a list's first items moved under a new name, registered first, the rest
# kept under the list's name and re-indexed (every tree mode paired them by the name)


@register_pair('linear x3: early[:2] registered first + blocks[2:]', 'identity', fast=True,
               note='the smallest of the kind: blocks = ModuleList of 3 Linear(4, 4); the model '
                    'holds early = [:2], then blocks = [2:] re-indexed: blocks.0 belongs to '
                    'blocks.2, not to its namesake (the mirror of the tail-first pair, which '
                    'a head moved into blocks_b makes of the same keys: a correct answer '
                    'leaves them out)')
def _linear_head_moved():
    src = nn.Module()
    src.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    return _cut_case(src, 'blocks', 2, 'early', keeps='tail')


def _head_moved(model, list_name, count, first_name, sort):
    case = _cut_case(model, list_name, count, first_name, keeps='tail')
    return sorted_keys(case) if sort else case


for _sorted in (False, True):
    register_pair('timm-deit_tiny-early[:4] first+blocks[4:]'
                  + (' (sorted keys)' if _sorted else ''), 'identity',
                  note='timm deit_tiny with early = blocks[:4] registered first and blocks = '
                       '[4:] re-indexed (12 blocks of equal shapes): every tree mode paired '
                       'blocks.i with blocks.i, 96 wrong; 0.2.1: embedding 120 wrong, '
                       'isomorphism 96')(
        lambda s=_sorted: _head_moved(
            timm_module().create_model('deit_tiny_patch16_224', pretrained=False),
            'blocks', 4, 'early', s))
    for _count in (1, 3):
        register_pair(f'resnet50-layer3[:{_count}] first+layer3[{_count}:]'
                      + (' (sorted keys)' if _sorted else ''), 'identity',
                      note=f'resnet50 with layer3_first = layer3[:{_count}] registered first '
                           f'and layer3 = [{_count}:] re-indexed: sorted, the name modes filled '
                           'layer3.0 from the block with the downsample (17 wrong) and '
                           'layer3.1-4 by number (up to 89 wrong); 0.2.1: 54 to 108 wrong')(
            lambda s=_sorted, c=_count: _head_moved(
                tv_model('resnet50'), 'layer3', c, 'layer3_first', s))


@register_pair('linear x4: layers -> second=[2:] + first=[:2]', 'identity', fast=True,
               note='the smallest of the second-first split: layers = 4 Linear(4, 4), the model holds '
                    'second = [2:] then first = [:2], both re-indexed: nothing tells the halves apart '
                    'but registration order, which misleads: a correct answer leaves them out')
def _linear_second_first():
    src = nn.Module()
    src.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(4)])
    dst = nn.Module()
    dst.second, dst.first = nn.ModuleList(src.layers[2:]), nn.ModuleList(src.layers[:2])
    return Case(keep(src), dst, None)



# --- foreign names into slots, reduced (hunt 3's wrong cells in structure and auto)


for _order in (('deep', 'plain'), ('plain', 'deep')):
    register_pair(f'keras-names(resnet18)->resnet{"34+resnet18" if _order[0] == "deep" else "18+resnet34"}',
                  'identity', cross_naming=True,
                  note='a Keras-named resnet18 checkpoint (flat names, the shortcut first in a block) into '
                       'resnet34 and resnet18 side by side (' + ', then '.join(_order) + '): the resnet18 '
                       'slot only')(
        lambda o=_order: (lambda r: Case(keep(keras_resnet(r)), Slots(**{
            name: (r if name == 'plain' else tv_model('resnet34')) for name in o}), None))(tv_model('resnet18')))


@register_pair('keras-names->wide_resnet50_2+resnet50', 'identity', cross_naming=True,
               note='a Keras-named resnet50 checkpoint into wide_resnet50_2 and resnet50 side by side: the '
                    'resnet50 slot only (the wide one shares the stem shapes and nothing else whole)')
def _keras_wide():
    r = tv_model('resnet50')
    return Case(keep(keras_resnet(r)), Slots(deep=tv_model('wide_resnet50_2'), plain=r), None)


def _small_hf_vit_slots(depth, slots):
    """A ``depth``-layer 32-wide timm ViT under HuggingFace names into torchvision ViTs of the depths
    ``slots`` (``[(name, depth)]``); the slot of ``depth`` layers belongs."""
    timm, tv = timm_module(), torchvision_module()
    src = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=depth, num_heads=2, mlp_ratio=4)
    state = hf_vit_state(src)
    to_tv, back = vit_truth(src.state_dict()), {id(v): k for k, v in keep(src).items()}
    dst = Slots(**{name: tv.models.vision_transformer.VisionTransformer(
        image_size=32, patch_size=8, num_layers=d, num_heads=2, hidden_dim=32, mlp_dim=128) for name, d in slots})
    right = next(name for name, d in slots if d == depth)
    return Case(state, dst, {k: f'{right}.{to_tv[back[id(v)]]}' for k, v in state.items()})


register_pair('hf-vit-names(2 layers)->tv-vit(1)+tv-vit(2)', 'names', cross_naming=True, fast=True,
              note='a 2-layer 32-wide ViT under HuggingFace names (layer norms last in each layer) into '
                   'torchvision ViTs of 1 and 2 layers: the 2-layer slot only (truth through timm, '
                   'verified in timm-vit-small->tv-vit-small)')(
    lambda: _small_hf_vit_slots(2, [('shallow', 1), ('deep', 2)]))
register_pair('hf-vit-names(3 layers)->tv-vit(3)+tv-vit(2)', 'names', cross_naming=True,
              note='the same with 3 layers into ViTs of 3 then 2 layers: the 3-layer slot only')(
    lambda: _small_hf_vit_slots(3, [('deep', 3), ('shallow', 2)]))


# --- a backbone with a split stage beside a deeper one of its family (fuzz seed 5144, reduced)


def _stage_split(model, stage, at, names=('part', 'rest')):
    """A view of ``model`` (its own modules) whose ``stage`` is cut at ``at`` into two named
    re-indexed Sequentials one level down (layer2.part.0, layer2.rest.0, ...)."""
    children = []
    for name, child in model.named_children():
        if name == stage:
            a, b = cut_reindexed(child, [at])
            child = Slots(**{names[0]: a, names[1]: b})
        children.append((name, child))
    return rebuilt(model, children)


def _inserted_stage(model, stage, level='extractor'):
    """A view of ``model`` whose ``stage`` gets a middle level (layer2.extractor.0 ...)."""
    return rebuilt(model, [(n, Slots(**{level: c}) if n == stage else c) for n, c in model.named_children()])


for _arch, _at, _inserted in [('resnet18', 1, False), ('resnet34', 2, False), ('resnet34', 2, True)]:
    register_pair(f'{_arch}{" (layer2 inserted level)" if _inserted else ""}->{_arch}(layer2 split)+resnet50',
                  'identity',
                  note=f'a {_arch} checkpoint' + (' whose layer2 had a middle level (layer2.extractor.N)'
                                                  if _inserted else '')
                       + f' into backbone = the same {_arch} with layer2 cut at {_at} into layer2.part / '
                         'layer2.rest, beside encoder = resnet50 (same names everywhere, other shapes but '
                         'the stem and the layer2 BatchNorms): backbone only (mutation fuzz seed 5144)')(
        lambda a=_arch, t=_at, i=_inserted: (lambda r: Case(
            keep(_inserted_stage(r, 'layer2') if i else r),
            Slots(backbone=_stage_split(r, 'layer2', t), encoder=tv_model('resnet50')), None))(tv_model(a)))


register_pair('resnet18->resnet50+resnet18(layer2 split)', 'identity',
              note='the resnet18 pair above with the resnet50 slot registered first')(
    lambda: (lambda r: Case(keep(r), Slots(encoder=tv_model('resnet50'), backbone=_stage_split(r, 'layer2', 1)),
                            None))(tv_model('resnet18')))
register_pair('resnet18->resnet18(layer2 inserted level)+resnet34', 'identity',
              note='a resnet18 checkpoint into backbone = the same resnet18 whose layer2 got a middle level, '
                   'beside encoder = resnet34: the resnet34 slot takes every key by name and shape but is '
                   'not filled whole, the backbone is filled whole with one level added: the backbone '
                   'belongs (debatable: completeness against closeness; loading into encoder is a guess)')(
    lambda: (lambda r: Case(keep(r), Slots(backbone=_inserted_stage(r, 'layer2'), encoder=tv_model('resnet34')),
                            None))(tv_model('resnet18')))


def _features_split(model, at):
    """A view of a torchvision model whose ``features`` are cut at ``at`` into low / high (re-indexed)."""
    f = list(model.features)
    return rebuilt(model, [(n, Slots(low=nn.Sequential(*f[:at]), high=nn.Sequential(*f[at:]))
                             if n == 'features' else c) for n, c in model.named_children()])


for _name, _make, _note in [
    ('resnet50->resnet50(layer3 split)+wide_resnet50_2',
     lambda r: Slots(backbone=_stage_split(r, 'layer3', 3), encoder=tv_model('wide_resnet50_2')),
     'a resnet50 checkpoint into backbone = resnet50 with layer3 cut into layer3.part / layer3.rest, beside '
     'wide_resnet50_2 (same names; bn3, downsample and the stem share shapes)'),
    ('vgg11->vgg11(features split)+vgg16',
     lambda m: Slots(backbone=_features_split(m, 6), aux=tv_model('vgg16')),
     'a vgg11 checkpoint into backbone = vgg11 with features cut into low / high, beside vgg16 (its '
     'features.0 and classifier have the same names and shapes): the complete backbone only'),
    ('vgg11->vgg11(features split)+vgg11_bn',
     lambda m: Slots(backbone=_features_split(m, 6), aux=tv_model('vgg11_bn')),
     'the same beside vgg11_bn (its features.0 and classifier have the same names and shapes)'),
    ('mobilenet_v3_large->mobilenet_v3_large(features split)+mobilenet_v3_small',
     lambda m: Slots(backbone=_features_split(m, 7), aux=tv_model('mobilenet_v3_small')),
     'a mobilenet_v3_large checkpoint into backbone = the same with features cut into low / high, beside '
     'mobilenet_v3_small: the backbone only'),
    ('efficientnet_b0->efficientnet_b0(features split)+efficientnet_v2_s',
     lambda m: Slots(backbone=_features_split(m, 4), aux=tv_model('efficientnet_v2_s')),
     'an efficientnet_b0 checkpoint into backbone = the same with features cut into low / high, beside '
     'efficientnet_v2_s (its classifier has the same shape): the backbone only'),
]:
    register_pair(_name, 'identity', note=_note)(
        lambda mk=_make, a=_name.split('->')[0]: (lambda m: Case(keep(m), mk(m), None))(tv_model(a)))


# --- a cross-naming pair of the corpus with a sibling slot beside its model


def _beside(base, other_arch, other_first):
    """The registered pair ``base`` with its destination put in slot ``b`` beside ``a`` = a fresh
    ``other_arch``; the truth moves to ``b.``."""
    from corpus_pairs.registry import PAIRS
    case = PAIRS[base].build()
    other = tv_model(other_arch)
    dst = Slots(a=other, b=case.destination) if other_first else Slots(b=case.destination, a=other)
    return Case(case.source, dst, {k: f'b.{v}' for k, v in case.truth.items()})


for _first in (True, False):
    register_pair(f'hf-names->resnet18 beside resnet34 ({"resnet34 first" if _first else "resnet34 second"})',
                  'identity', cross_naming=True,
                  note='the HuggingFace-named resnet18 checkpoint (shortcut first) into resnet18 (slot b) '
                       'beside resnet34 (slot a): slot b only')(
        lambda f=_first: _beside('hf-names->resnet18', 'resnet34', f))


def _ssd_conv5_first():
    m = tv_model('vgg16')
    conv4, conv5 = cut_reindexed(list(m.features)[:30], [23])
    return Case(keep(m), Slots(conv5=conv5, conv4=conv4), None)


register_pair('vgg16-ssd conv5 registered first', 'identity',
              note='vgg16.features cut SSD-style into conv4 = [:23] and conv5 = [23:30] re-indexed, conv5 '
                   'registered first')(_ssd_conv5_first)
register_pair('resnet50 stages in reverse (ModuleList)', 'identity',
              note='resnet50 as nn.ModuleList([layer4, layer3, layer2, layer1, Sequential(conv1, bn1)]): '
                   'registration order reversed, names lost')(
    lambda: (lambda r: Case(keep(r), nn.ModuleList([r.layer4, r.layer3, r.layer2, r.layer1,
                                                    nn.Sequential(r.conv1, r.bn1)]), None))(tv_model('resnet50')))


# --- a checkpoint of a list split into named parts whose keys come sorted (fuzz seed 5016, reduced)


def _parts_sorted_case(model, list_name, cut, names=('main', 'head')):
    """A checkpoint of ``model`` whose list ``list_name`` was cut at ``cut`` into two named re-indexed
    parts (``names``: first part, second part), its keys sorted by name (``head`` sorts before ``main``)."""
    items = list(getattr(model, list_name))
    parts = Slots(**{names[0]: nn.Sequential(*items[:cut]), names[1]: nn.Sequential(*items[cut:])})
    view = rebuilt(model, [(n, parts if n == list_name else c) for n, c in model.named_children()])
    return Case(dict(sorted(keep(view).items())), model, None)


@register_pair('linear x3 parts main/head (sorted keys)->linear x3', 'identity', fast=True,
               note='the smallest of the kind: a checkpoint of blocks = 3 Linear(4, 4) cut into '
                    'blocks.main = [:1] and blocks.head = [1:] re-indexed, keys sorted (head first): '
                    'nothing but the lost order tells the parts apart: leaving them out is right')
def _linear_parts_sorted():
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    return _parts_sorted_case(model, 'blocks', 1)


register_pair('timm-deit_tiny parts main/head (sorted keys)->timm-deit_tiny', 'identity',
              note='a deit_tiny checkpoint whose blocks were cut into blocks.main = [:5] and blocks.head '
                   '= [5:] re-indexed, keys sorted (mutation fuzz seed 5016 on a mixer, reduced)')(
    lambda: _parts_sorted_case(timm_module().create_model('deit_tiny_patch16_224', pretrained=False),
                               'blocks', 5))


# --- the same kind that stays right: a split model beside a wider sibling of its family


def _vit_encoder_split(vit, cut):
    """A view of a torchvision ViT whose encoder layers are cut into encoder.low / encoder.high."""
    layers = list(vit.encoder.layers)
    encoder = rebuilt(vit.encoder, [('low', nn.Sequential(*layers[:cut])),
                                    ('high', nn.Sequential(*layers[cut:])), ('ln', vit.encoder.ln)])
    return rebuilt(vit, [('conv_proj', vit.conv_proj), ('encoder', encoder), ('heads', vit.heads)])


@register_pair('vit(tiny config)->vit(encoder split)+vit(small config)', 'identity',
               note='a deit_tiny-configured torchvision ViT checkpoint into backbone = the same with its '
                    'encoder layers cut into encoder.low / encoder.high, beside a 384-wide ViT (same '
                    'names, other shapes): the backbone only')
def _vit_split_beside_wider():
    vit = vit_tiny_config()
    wider = torchvision_module().models.vision_transformer.VisionTransformer(224, 16, 12, 6, 384, 1536)
    return Case(keep(vit), Slots(backbone=_vit_encoder_split(vit, 6), aux=wider), None)


register_pair('convnext_tiny->convnext_tiny(features split)+convnext_base', 'identity',
              note='a convnext_tiny checkpoint into backbone = the same with features cut into low / high, '
                   'beside convnext_base (same names, other widths): the backbone only')(
    lambda: (lambda m: Case(keep(m), Slots(backbone=_features_split(m, 4), aux=tv_model('convnext_base')),
                            None))(tv_model('convnext_tiny')))
