"""
Pairs where one checkpoint has several candidate places, or several copies:
backbones side by side (one belongs, or none when they tie: the ambiguous
pairs), siamese branches, EMA copies (Lightning, timm, AveragedModel), and the
prefixes a checkpoint gets from the way it was saved (torch.compile,
DataParallel). Truth by identity or by names.

Example:
    >>> from corpus_pairs import build_case
    >>> build_case('resnet18x2<-resnet18 (ambiguous)').truth
    {}
"""
import copy

import torch
from torch import nn

from corpus_pairs.models import RenamedResNet, Slots, Wrap, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair, truth_by_names


# --- one checkpoint, several candidate places


@register_pair('resnet18-closer-slot', 'identity',
               note='a resnet18 checkpoint, a model with a resnet18 backbone and another one a '
                    'level deeper (aux.0): the closer slot is right, the deeper gets nothing')
def _closer_slot():
    tv = torchvision_module()
    src = tv.models.resnet18(weights=None)
    return Case(keep(src), Slots(backbone=src, aux=nn.Sequential(tv.models.resnet18(weights=None))),
                None)


@register_pair('resnet18+resnet34<-resnet34', 'identity',
               note='two backbones of one family side by side; a resnet34 checkpoint '
                    'belongs to the resnet34 slot only')
def _side_by_side():
    tv = torchvision_module()
    src = tv.models.resnet34(weights=None)
    return Case(keep(src), Slots(small=tv.models.resnet18(weights=None), large=src), None)


@register_pair('resnet34+resnet18<-resnet34', 'identity',
               note='the same with the resnet34 slot first')
def _side_by_side_reversed():
    tv = torchvision_module()
    src = tv.models.resnet34(weights=None)
    return Case(keep(src), Slots(large=src, small=tv.models.resnet18(weights=None)), None)


@register_pair('resnet18x2<-resnet18 (ambiguous)', 'identity', fast=True,
               note='two identical resnet18 slots: which one is meant is unknowable, '
                    'the truth is empty and anything loaded is wrong')
def _twins():
    tv = torchvision_module()
    src = tv.models.resnet18(weights=None)
    dst = Slots(left=tv.models.resnet18(weights=None), right=tv.models.resnet18(weights=None))
    return Case(keep(src), dst, {})


@register_pair('resnet18-lightning-ema', 'identity', fast=True,
               note='a Lightning-style checkpoint holding model.* and ema_model.module.*: the model copy belongs')
def _lightning():
    src = torchvision_module().models.resnet18(weights=None)
    ema = copy.deepcopy(src)
    state = {f'model.{k}': v for k, v in keep(src).items()}
    state.update({f'ema_model.module.{k}': v for k, v in keep(ema).items()})
    return Case(state, src, None)


@register_pair('resnet18-lightning-ema-first', 'identity',
               note='the same with the EMA copy first in the checkpoint')
def _lightning_ema_first():
    src = torchvision_module().models.resnet18(weights=None)
    ema = copy.deepcopy(src)
    state = {f'ema_model.module.{k}': v for k, v in keep(ema).items()}
    state.update({f'model.{k}': v for k, v in keep(src).items()})
    return Case(state, src, None)


# --- backbones side by side (one belongs, or none when they tie)


def _side_case(src_arch, slots, belongs):
    """``slots``: ``[(name, arch)]``; the source is the slot named ``belongs`` (None: a fresh model, ambiguous)."""
    models = {name: tv_model(arch) for name, arch in slots}
    src = models[belongs] if belongs else tv_model(src_arch)
    return Case(keep(src), Slots(**models), None if belongs else {})


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
    register_pair(_name, 'identity', fast=_name.startswith('mobilenet'),
                  note=f'{_src} checkpoint, slots {_slots}: ' + (
                      f'it belongs to {_belongs!r} only' if _belongs else 'the slots tie: nothing belongs'))(
        lambda s=_src, sl=_slots, b=_belongs: _side_case(s, sl, b))


@register_pair('vgg11+vgg13 features<-vgg11', 'identity',
               note='vgg11.features and vgg13.features side by side; a vgg11.features checkpoint '
                    '(its first conv fits both)')
def _vgg_side():
    a, b = tv_model('vgg11').features, tv_model('vgg13').features
    return Case(keep(a), Slots(vgg13=b, vgg11=a), None)


@register_pair('siamese rgb/depth swapped order', 'names',
               note='a two-branch checkpoint (rgb.*, depth.*) into the same model with the branches '
                    'registered in the other order: names decide, order must not')
def _siamese_swapped():
    src = Slots(rgb=tv_model('resnet18'), depth=tv_model('resnet18'))
    dst = Slots(depth=tv_model('resnet18'), rgb=tv_model('resnet18'))
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


# --- prefixes and levels from the way a checkpoint was saved


@register_pair('resnet18 compiled checkpoint', 'identity',
               note='a state dict saved from torch.compile(model) (_orig_mod.*) into the plain model')
def _compiled_src():
    r = tv_model('resnet18')
    return Case(torch.compile(r).state_dict(keep_vars=True), r, None)


@register_pair('resnet18 into compiled model', 'identity',
               note='a plain checkpoint into a torch.compile(model) (whose keys are _orig_mod.*)')
def _compiled_dst():
    r = tv_model('resnet18')
    return Case(keep(r), torch.compile(r), None)


@register_pair('DataParallel at another depth', 'identity',
               note='a checkpoint of DataParallel(Wrap(backbone=resnet50)) (module.backbone.*) into '
                    'Wrap(backbone=DataParallel(resnet50)) (backbone.module.*)')
def _dp_depth():
    r = tv_model('resnet50')
    src = nn.DataParallel(Wrap('backbone', r), device_ids=[])
    return Case(keep(src), Wrap('backbone', nn.DataParallel(r, device_ids=[]), 'head'), None)


@register_pair('resnet18 + model_ema.module (timm flat)', 'identity', fast=True,
               note='a flat checkpoint with the model at the root and its EMA under model_ema.module.*: '
                    'the root copy belongs')
def _timm_flat_ema():
    r = tv_model('resnet18')
    state = dict(keep(r))
    state.update({f'model_ema.module.{k}': v for k, v in keep(copy.deepcopy(r)).items()})
    return Case(state, r, None)


@register_pair('resnet18 + model_ema.module under DataParallel', 'identity',
               note='the timm-flat checkpoint saved from DataParallel: module.* beside '
                    'module.model_ema.module.*, where only the EMA copy is a module of its own; '
                    'the model copy (closer) belongs')
def _dp_flat_ema():
    r = tv_model('resnet18')
    state = {f'module.{k}': v for k, v in keep(r).items()}
    state.update({f'module.model_ema.module.{k}': v for k, v in keep(copy.deepcopy(r)).items()})
    return Case(state, r, None)


@register_pair('mobilenet_v2 + model_ema.module under DataParallel (EMA first)', 'identity',
               note='the same for mobilenet_v2, the EMA copy listed first')
def _dp_flat_ema_first():
    r = tv_model('mobilenet_v2')
    state = {f'module.model_ema.module.{k}': v for k, v in keep(copy.deepcopy(r)).items()}
    state.update({f'module.{k}': v for k, v in keep(r).items()})
    return Case(state, r, None)


@register_pair('resnet18->renamed resnet34+resnet18', 'identity', cross_naming=True,
               note='a torchvision resnet18 checkpoint into two renamed backbones side by side '
                    '(RenamedResNet of resnet34, then of resnet18): only the resnet18 slot')
def _renamed_slots():
    src = tv_model('resnet18')
    return Case(keep(src), Slots(big=RenamedResNet(tv_model('resnet34')),
                                   small=RenamedResNet(src)), None)


@register_pair('lightning ema -> model + AveragedModel', 'identity',
               note='a flat checkpoint (model.*, ema_model.module.*) into a training wrapper holding '
                    'model and ema = AveragedModel(model) (ema.module.*, ema.n_averaged)')
def _ema_into_wrapper():
    from torch.optim.swa_utils import AveragedModel
    r = tv_model('resnet18')
    ema = AveragedModel(copy.deepcopy(r))
    state = {f'model.{k}': v for k, v in keep(r).items()}
    state.update({f'ema_model.module.{k}': v for k, v in keep(ema.module).items()})
    return Case(state, Slots(model=r, ema=ema), None)


def _ema_deep_copy():
    r = tv_model('convnext_tiny')
    return Case(keep(Slots(model=r, ema_model=copy.deepcopy(r))), r, None)


register_pair('ema deep copy beside model -> model', 'identity',
              note='self.ema_model = copy.deepcopy(self.model): model.* and ema_model.* at one '
                   'depth into the bare convnext_tiny; the model copy belongs (a tie before, '
                   'nothing loaded)')(_ema_deep_copy)


def _student_teacher(student_first):
    student, teacher = tv_model('resnet18'), tv_model('resnet34')
    parts = {'student': student, 'teacher': teacher}
    names = ('student', 'teacher') if student_first else ('teacher', 'student')
    return Case(keep(Slots(**{name: parts[name] for name in names})), student, None)


for _first in (True, False):
    register_pair('distillation student+teacher -> student'
                  + ('' if _first else ' (teacher first)'), 'identity',
                  note='a distillation checkpoint: the resnet18 student beside the resnet34 '
                       'teacher, which holds every name and shape of the student, into '
                       'resnet18: the student belongs (the name modes placed nothing with the '
                       'student first; 0.2.1\'s embedding loaded the teacher)')(
        lambda f=_first: _student_teacher(f))


@register_pair('compiled DataParallel checkpoint', 'identity',
               note='a state dict of torch.compile(DataParallel(resnet18)) (_orig_mod.module.*) into resnet18')
def _compiled_dp():
    r = tv_model('resnet18')
    return Case(torch.compile(nn.DataParallel(r, device_ids=[])).state_dict(keep_vars=True), r, None)


# --- more side by side (hunt 2): a checkpoint that fits a bigger slot too, twins renamed


def _vit(layers):
    return torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=64, patch_size=16, num_layers=layers, num_heads=3, hidden_dim=96, mlp_dim=192)


def _slots_case(makers, belongs, unjudged_slots=()):
    """``makers``: ``[(name, () -> model)]``; the source is the slot ``belongs``."""
    models = {name: make() for name, make in makers}
    dst = Slots(**models)
    unjudged = [k for k in dst.state_dict() if k.split('.')[0] in unjudged_slots]
    return Case(keep(models[belongs]), dst, None, unjudged=unjudged)


def _m(arch):
    return lambda: tv_model(arch)


for _name, _makers, _belongs, _note in [
    ('resnet34+resnet18<-resnet18', [('large', _m('resnet34')), ('small', _m('resnet18'))], 'small',
     'every resnet18 key also fits the resnet34 slot (same names, same shapes): the resnet18 slot '
     'is complete, the other is not'),
    ('resnet18+resnet34<-resnet18', [('small', _m('resnet18')), ('large', _m('resnet34'))], 'small',
     'the same with the resnet18 slot first'),
    ('convnext_small+convnext_tiny<-convnext_tiny',
     [('small', _m('convnext_small')), ('tiny', _m('convnext_tiny'))], 'tiny',
     'convnext_tiny fits convnext_small (stage 3 has 27 blocks instead of 9, same shapes)'),
    ('convnext_tiny+convnext_small<-convnext_small',
     [('tiny', _m('convnext_tiny')), ('small', _m('convnext_small'))], 'small',
     'a convnext_small checkpoint: the tiny slot can hold 9 of its 27 stage-3 blocks'),
    ('swin_s+swin_t<-swin_t', [('s', _m('swin_s')), ('t', _m('swin_t'))], 't',
     'swin_t fits swin_s (18 blocks in stage 3 instead of 6)'),
    ('vit(12 layers)+vit(6 layers)<-vit(6 layers)', [('deep', lambda: _vit(12)), ('shallow', lambda: _vit(6))],
     'shallow', 'two small torchvision ViTs of one width: the 6-layer checkpoint fits both'),
    ('resnet50 encoder + resnet18-block decoder<-resnet50',
     [('encoder', _m('resnet50')),
      ('decoder', lambda: Slots(**{f'up{i}': getattr(tv_model('resnet18'), f'layer{i}') for i in (4, 3, 2, 1)}))],
     'encoder', "a decoder built of resnet18 stages (its 3x3 64-channel convs have the shapes of "
     "resnet50's layer1 conv2)"),
]:
    register_pair(_name, 'identity', note=_note)(lambda mk=_makers, b=_belongs: _slots_case(mk, b))


@register_pair('resnet18+renamed resnet18<-resnet18', 'identity', cross_naming=True,
               note='a resnet18 checkpoint; the model holds a resnet18 and a RenamedResNet(resnet18): '
                    'the same-named slot belongs, the renamed slot is unjudged (a worse fit by names)')
def _plain_and_renamed():
    return _slots_case([('plain', _m('resnet18')), ('renamed', lambda: RenamedResNet(tv_model('resnet18')))],
                       'plain', ('renamed',))


@register_pair('renamed resnet18+resnet18<-resnet18', 'identity', cross_naming=True,
               note='the same with the renamed slot first')
def _renamed_and_plain():
    return _slots_case([('renamed', lambda: RenamedResNet(tv_model('resnet18'))), ('plain', _m('resnet18'))],
                       'plain', ('renamed',))


@register_pair('moco checkpoint->resnet18 (ambiguous)', 'identity',
               note='a MoCo checkpoint (module.encoder_q.*, module.encoder_k.*, module.queue) of '
                    'resnet18s with MLP heads into a plain resnet18: q and k tie (same depth, same '
                    'shapes), nothing tells which is meant: the truth is empty')
def _moco():
    def encoder():
        r = tv_model('resnet18')
        r.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
        return r
    state = {f'module.encoder_q.{k}': v for k, v in keep(encoder()).items()}
    state.update({f'module.encoder_k.{k}': v for k, v in keep(encoder()).items()})
    state['module.queue'] = torch.zeros(128, 4096)
    state['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return Case(state, tv_model('resnet18'), {})


@register_pair('resnet18->renamed resnet18+resnet34', 'identity', cross_naming=True,
               note='a torchvision resnet18 into two renamed backbones side by side, the resnet18 '
                    'slot first: only that slot')
def _renamed_slots_small_first():
    src = tv_model('resnet18')
    return Case(keep(src), Slots(small=RenamedResNet(src), big=RenamedResNet(tv_model('resnet34'))), None)


register_pair('vit(6 layers)+vit(12 layers)<-vit(12 layers)', 'identity',
              note='a 12-layer ViT checkpoint; the 6-layer slot can hold half of it, the 12-layer '
                   'slot all')(
    lambda: _slots_case([('shallow', lambda: _vit(6)), ('deep', lambda: _vit(12))], 'deep'))


@register_pair('timm-efficientnet_b0->tv-efficientnet_b1+b0', 'names', cross_naming=True,
               note='a timm efficientnet_b0 checkpoint into torchvision efficientnet_b1 and b0 side '
                    'by side: the b0 slot by the timm<->torchvision zip (verified by outputs in '
                    'timm-efficientnet_b0->tv-efficientnet_b0), the b1 slot gets nothing')
def _timm_b0_into_slots():
    src = timm_module().create_model('efficientnet_b0', pretrained=False)
    b0 = tv_model('efficientnet_b0')
    dst = Slots(big=tv_model('efficientnet_b1'), small=b0)
    state = keep(src)
    return Case(state, dst, {s: f'small.{d}' for s, d in zip(state, b0.state_dict())})


@register_pair('distillation checkpoint->resnet18', 'identity',
               note='a distillation checkpoint (teacher.* = resnet50, student.* = resnet18, plus a '
                    'projection) into a resnet18: the student belongs; the teacher shares only shapes '
                    'of a few layers (conv1, layer1 3x3 convs, their BatchNorms)')
def _distillation():
    teacher, student = tv_model('resnet50'), tv_model('resnet18')
    state = {f'teacher.{k}': v for k, v in keep(teacher).items()}
    state.update({f'student.{k}': v for k, v in keep(student).items()})
    state['proj.weight'] = torch.zeros(2048, 512)
    return Case(state, student, None)
