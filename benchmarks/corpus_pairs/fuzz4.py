"""
The mutation fuzz's wrong cells (``benchmarks/fuzz_real.py``, seeds 9000
on) reduced to real pairs: a headless network beside another whole one of
the same names, whose head has the shape of the model's (seed 9005: the
resnet50's fc went to the resnext50's head in embedding, structure and
auto); and a split checkpoint whose parts share no name, which keeps its
head; a ViT whose blocks gained a level at one item in the checkpoint and
at another in the model (seed 9171: structure took the two items, alone at
their depth, for one another, 24 wrong); a mobilenet_v3_small checkpoint
of its first 11 feature blocks, keys sorted, into ``nn.Sequential(*children())``
(seed 9387: the tree modes put feature block 10 into the model's 11).

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('resnext50 (no fc)+resnet50->resnext50')
    >>> 'body.fc.weight' in case.source, 'body.fc.weight' in case.truth
    (True, False)
"""
from torch import nn

from corpus_pairs.models import Slots, keep, timm_module, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['headless', 'item_wrapped']


def headless(model: nn.Module, head: str = 'fc') -> nn.Module:
    """
    ``model``'s children but ``head``, in a plain module (the same module objects).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.fuzz4 import headless
        >>> m = nn.Module(); m.conv = nn.Conv2d(1, 2, 1); m.fc = nn.Linear(2, 3)
        >>> list(headless(m).state_dict())
        ['conv.weight', 'conv.bias']
    """
    out = nn.Module()
    for name, child in model.named_children():
        if name != head:
            out.add_module(name, child)
    return out


for _short, _arch in [('resnext50', 'resnext50_32x4d'), ('wide_resnet50_2', 'wide_resnet50_2')]:
    register_pair(f'{_short} (no fc)+resnet50->{_short}', 'identity',
                  note=f'a checkpoint of a {_short} without its fc (stage.*) beside a whole '
                       f'resnet50 (body.*), into the whole {_short}: the resnet50 has a conv1 '
                       'too, not the one the model gets, so its fc (the same shape) is no '
                       "evidence for the model's head; the fc stays unset (mutation fuzz "
                       'seed 9005)')(
        lambda a=_arch: _headless_beside(a))


def _headless_beside(arch):
    model = tv_model(arch)
    return Case(keep(Slots(stage=headless(model), body=tv_model('resnet50'))), model, None)


@register_pair('resnext50 split backbone/head->resnext50', 'identity',
               note='the same resnext50 saved as backbone.* (all but the fc) and head.fc.*: '
                    'the two parts share no name, so the head belongs to the model\'s fc')
def _split_head():
    model = tv_model('resnext50_32x4d')
    return Case(keep(Slots(backbone=headless(model), head=Slots(fc=model.fc))), model, None)


def item_wrapped(blocks: nn.Module, index: int, label: str) -> nn.Module:
    """
    ``blocks`` (a list) with item ``index`` one level down under ``label`` (the same module objects).

    Example:
        >>> from torch import nn
        >>> from corpus_pairs.fuzz4 import item_wrapped
        >>> list(item_wrapped(nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)), 1, 'main').state_dict())
        ['0.weight', '0.bias', '1.main.weight', '1.main.bias']
    """
    out = nn.Module()
    for name, child in blocks.named_children():
        if name == str(index):
            wrapper = nn.Module()
            wrapper.add_module(label, child)
            child = wrapper
        out.add_module(name, child)
    return out


def _vit_items(src_item, dst_item):
    vit = timm_module().create_model('vit_tiny_patch16_224', pretrained=False)
    views = []
    for item, label in ((src_item, 'main'), (dst_item, 'stem')):
        view = nn.Module()
        for name, child in vit.named_children():
            view.add_module(name, item_wrapped(child, item, label) if name == 'blocks' else child)
        views.append(view)
    return Case(keep(views[0]), views[1], None)


for _src_item, _dst_item in [(1, 3), (3, 1)]:
    register_pair(f'timm-vit_tiny blocks.{_src_item}.main->blocks.{_dst_item}.stem', 'identity',
                  note=f'one ViT, its blocks.{_src_item} a level down in the checkpoint and its '
                       f'blocks.{_dst_item} in the model: each alone at its depth, the two are '
                       'not one another (mutation fuzz seed 9171)')(
        lambda a=_src_item, b=_dst_item: _vit_items(a, b))


def _mnv3_small_cut_sorted(cut):
    """A mobilenet_v3_small checkpoint of ``features[:cut]`` and the classifier, keys sorted, into
    the whole network as ``nn.Sequential(*children())`` (mutation fuzz seed 9387, reduced)."""
    model = tv_model('mobilenet_v3_small')
    view = Slots(features=nn.Sequential(*list(model.features)[:cut]), classifier=model.classifier)
    return Case(dict(sorted(keep(view).items())), nn.Sequential(*model.children()), None)


for _cut in (11, 13):
    register_pair(f'mobilenet_v3_small features[:{_cut}] (sorted keys)->children', 'identity',
                  note=f'a mobilenet_v3_small checkpoint of features[:{_cut}] (of 13) and the classifier, '
                       'keys sorted, into nn.Sequential(*children()): the features are the model\'s 0 '
                       '(mutation fuzz seed 9387, reduced)')(lambda c=_cut: _mnv3_small_cut_sorted(c))
