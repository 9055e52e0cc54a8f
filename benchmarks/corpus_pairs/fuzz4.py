"""
The mutation fuzz's wrong cells (``benchmarks/fuzz_real.py``, seeds 9000
on) reduced to real pairs: a headless network beside another whole one of
the same names, whose head has the shape of the model's (seed 9005: the
resnet50's fc went to the resnext50's head in embedding, structure and
auto); and a split checkpoint whose parts share no name, which keeps its
head.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('resnext50 (no fc)+resnet50->resnext50')
    >>> 'body.fc.weight' in case.source, 'body.fc.weight' in case.truth
    (True, False)
"""
from torch import nn

from corpus_pairs.models import Slots, keep, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['headless']


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
