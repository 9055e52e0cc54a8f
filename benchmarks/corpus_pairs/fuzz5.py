"""
The mutation fuzz's wrong cells from seed 9236 on (``benchmarks/fuzz_real.py``)
reduced to real pairs: a checkpoint whose top-level ``module`` child is a
network beside another one (seed 9236: module-hack took it for
DataParallel's wrapper and loaded the ``module`` network's ``bn1``), and
a model of that kind; a
resnet34 saved as ``nn.Sequential(*children)`` beside a resnet18 of the
model's names, into the resnet34 (seed 9252: the name modes loaded the
resnet18, 122 wrong), and a resnet18 beside a longer resnet34 of its names
(every name mode and auto wrong); an efficientnet_b0 checkpoint into a model holding
the b0 as ``nn.Sequential(*children)`` beside a mobilenet_v2 (seed 9477:
embedding gave the b0's classifier to the mobilenet_v2's, same name and
shape; seed 9650: the same with timm's b0, whose names the mobilenet_v2
shares but ``classifier``). Left wrong (strict xfails): seed 9627, a
stage cut in parts of colliding names on both sides (``base.0`` is block 2
in the checkpoint, block 0 in the model), and seed 9719, a list cut to its
first block under ``part`` into the list with block 2 a level down, whose
double rename (``part.0`` <-> ``stage.2.blocks``) embedding takes.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('resnet34 children+resnet18->resnet34')
    >>> case.truth['main.4.0.conv1.weight']
    'layer1.0.conv1.weight'
"""
from torch import nn

from corpus_pairs.fuzz4 import item_wrapped
from corpus_pairs.models import Slots, keep, timm_module, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['beside_children', 'with_child']


def beside_children(own: nn.Module, other: nn.Module, own_first: bool = True) -> nn.Module:
    """
    ``Slots(main=nn.Sequential(*own.children()), body=other)`` (the slots the
    other way round unless ``own_first``), of the same module objects.

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.fuzz5 import beside_children
        >>> own = nn.Module(); own.conv = nn.Conv2d(1, 2, 1)
        >>> list(beside_children(own, nn.Linear(1, 1), own_first=False).state_dict())
        ['body.weight', 'body.bias', 'main.0.weight', 'main.0.bias']
    """
    slots = {'main': nn.Sequential(*own.children()), 'body': other}
    if not own_first:
        slots = dict(reversed(list(slots.items())))
    return Slots(**slots)


def _module_beside(module, head):
    """``module`` as ``module.*`` beside ``head`` as ``head.*``, into ``head``."""
    return Case(keep(Slots(module=module, head=head)), head, None)


register_pair('resnet18 (module.*)+resnet34 (head.*)->resnet34', 'identity',
              note='a checkpoint of a resnet18 under module.* beside a resnet34 under head.*, into '
                   'the resnet34: module is no DataParallel wrapper (it has a sibling), the resnet18 '
                   'of the model\'s names is another network (mutation fuzz seed 9236, reduced)')(
    lambda: _module_beside(tv_model('resnet18'), tv_model('resnet34')))
register_pair('resnet50 (module.*)+timm-efficientnet_b0 (head.*)->timm-efficientnet_b0', 'identity',
              note='the seed\'s own networks: a resnet50 under module.* beside a timm efficientnet_b0 '
                   'under head.*, into the efficientnet_b0; both have a bn1 (module-hack loaded the '
                   'resnet50\'s, mutation fuzz seed 9236)')(
    lambda: _module_beside(tv_model('resnet50'),
                           timm_module().create_model('efficientnet_b0', pretrained=False)))


for _short, _long in (('resnet18', 'resnet34'), ('resnet34', 'resnet18')):
    register_pair(f'{_short}->{_long} (module.*)+{_short} (head.*)', 'identity',
                  note=f'the mirror on the model\'s side: a {_short} checkpoint into a model holding '
                       f'a {_long} as module.* beside the {_short} itself as head.*: module is no '
                       'wrapper (module-hack and auto loaded the checkpoint into it, 122 wrong)')(
        lambda s=_short, g=_long: (lambda own: Case(keep(own), Slots(module=tv_model(g), head=own),
                                                    None))(tv_model(s)))


for _first in (True, False):
    _name = ('resnet34 children+resnet18->resnet34' if _first
             else 'resnet18+resnet34 children->resnet34')
    register_pair(_name, 'identity',
                  note='a checkpoint of a resnet34 as nn.Sequential(*children) (main.*) beside a '
                       'resnet18 of the model\'s names (body.*), into the resnet34: the resnet18 '
                       'fills every list in part, the resnet34\'s layer3 fills the model\'s whole; '
                       'being of the model\'s names does not make the resnet18 the model '
                       '(mutation fuzz seed 9252, reduced: torchvision\'s resnet18 for timm\'s)')(
        lambda f=_first: (lambda own: Case(keep(beside_children(own, tv_model('resnet18'), f)),
                                           own, None))(tv_model('resnet34')))


for _own, _other in (('resnet18', 'resnet34'), ('efficientnet_b0', 'efficientnet_b1')):
    register_pair(f'{_own} children+{_other}->{_own}', 'identity',
                  note=f'the mirror: a checkpoint of a {_own} as nn.Sequential(*children) beside a longer '
                       f'{_other} of the model\'s names, into the {_own}: the {_other} fills the model '
                       f'whole by name (its lists in part), the {_own} fills it whole too; the longer '
                       'network is no better than the model itself (nothing by name, structure finds it)')(
        lambda a=_own, o=_other: (lambda own: Case(keep(beside_children(own, tv_model(o))), own, None))(
            tv_model(a)))


for _arch, _other in (('efficientnet_b0', 'mobilenet_v2'), ('mobilenet_v2', 'efficientnet_b0')):
    for _first in (True, False):
        _slots = f'{_arch} children+{_other}' if _first else f'{_other}+{_arch} children'
        register_pair(f'{_arch}->{_slots}', 'identity',
                      note=f'a {_arch} checkpoint into a model holding the {_arch} as '
                           f'nn.Sequential(*children) (main) beside a {_other} (body), whose '
                           f'classifier has the {_arch}\'s name and shape: the features go to '
                           'main.0, so body.classifier is another network\'s (mutation fuzz '
                           'seed 9477, reduced)')(
            lambda a=_arch, o=_other, f=_first: (lambda own: Case(
                keep(own), beside_children(own, tv_model(o), f), None))(tv_model(a)))


for _first in (True, False):
    _slots = ('timm-efficientnet_b0 children+mobilenet_v2' if _first
              else 'mobilenet_v2+timm-efficientnet_b0 children')
    register_pair(f'timm-efficientnet_b0->{_slots}', 'identity',
                  note='a timm efficientnet_b0 checkpoint into a model holding it as nn.Sequential(*children) '
                       '(main) beside a torchvision mobilenet_v2 (body): the b0\'s classifier has the name and '
                       'shape of body.classifier.1, and main.6 is an empty place for it; no other name of the '
                       'two networks agrees (mutation fuzz seed 9650, reduced)')(
        lambda f=_first: (lambda own: Case(keep(own), beside_children(own, tv_model('mobilenet_v2'), f), None))(
            timm_module().create_model('efficientnet_b0', pretrained=False)))


def with_child(model: nn.Module, name: str, child: nn.Module) -> nn.Module:
    """
    ``model``'s children with ``name`` replaced by ``child``, in a plain module.

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.fuzz5 import with_child
        >>> m = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1))
        >>> list(with_child(m, '1', nn.Module()).state_dict())
        ['0.weight', '0.bias']
    """
    out = nn.Module()
    for label, old in model.named_children():
        out.add_module(label, child if label == name else old)
    return out


def _items(blocks, indices):
    out = nn.Module()
    for i in indices:
        out.add_module(str(i), blocks[i])
    return out


@register_pair('shufflenet_v2_x0_5 stage2 parts (base collides)', 'identity',
               note='one shufflenet_v2_x0_5, its stage2 cut in the checkpoint as extractor=[0, 1], '
                    'base=[2], backbone=[3] (renumbered) and in the model as base={0}, features={1, 2}, '
                    'encoder={3} (indices kept): stage2.base.0.branch2 is block 2\'s in the checkpoint, '
                    'block 0\'s in the model (mutation fuzz seed 9627, reduced)')
def _shufflenet_parts():
    model = tv_model('shufflenet_v2_x0_5')
    b = list(model.stage2)
    src = with_child(model, 'stage2', Slots(extractor=nn.Sequential(b[0], b[1]), base=nn.Sequential(b[2]),
                                            backbone=nn.Sequential(b[3])))
    dst = with_child(model, 'stage2', Slots(base=_items(b, [0]), features=_items(b, [1, 2]),
                                            encoder=_items(b, [3])))
    return Case(keep(src), dst, None)


def _resnet34_layer1_cut(sort):
    model = tv_model('resnet34')
    src = with_child(model, 'layer1', Slots(part=nn.Sequential(model.layer1[0])))
    dst = with_child(model, 'layer1', Slots(stage=item_wrapped(model.layer1, 2, 'blocks')))
    state = keep(src)
    return Case(dict(sorted(state.items())) if sort else state, dst, None)


for _sort in (False, True):
    register_pair('resnet34 layer1.part.0->layer1.stage (item 2 a level down)' + (' (sorted keys)' if _sort else ''),
                  'identity',
                  note='one resnet34, its layer1 cut to block 0 under part in the checkpoint, all of it under '
                       'stage with block 2 one level down (stage.2.blocks) in the model: part.0 is '
                       'stage.0, its three blocks are equal (mutation fuzz seed 9719, reduced)')(
        lambda f=_sort: _resnet34_layer1_cut(f))
