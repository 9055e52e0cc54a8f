"""
A shorter network's checkpoint into a model that holds a longer sibling of
its family (resnet34 beside a resnet18, resnet101 beside a resnet50) and the
network itself one level deeper or with another head.

The longer sibling takes every key by name and shape and is the closer
place; the network itself is filled whole. Neither is the better guess, so a
solver that takes either by rank alone is wrong on half of these pairs: the
right answer is to leave the keys out (ambiguous) or, where registration
order and completeness agree (``structure``), to find the network itself.
The truth is tensor identity (the checkpoint is the slot's own network).

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('resnet34+resnet18(wrapped)<-resnet18')
    >>> case.truth['layer1.0.conv1.weight']
    'b.inner.layer1.0.conv1.weight'
"""
from torch import nn

from corpus_pairs.models import Slots, keep, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['headless_rival_case', 'idiom_rival_case', 'wrapped_rival_case']


def wrapped_rival_case(short: str, long: str, long_first: bool = True) -> Case:
    """
    A ``short`` checkpoint into ``Slots(a=long, b=Slots(inner=short))`` (or
    the slots the other way round): its own network one level deeper.

    Example:
        >>> from corpus_pairs.rivals import wrapped_rival_case
        >>> case = wrapped_rival_case('resnet18', 'resnet34', long_first=False)
        >>> list(case.destination.state_dict())[0]
        'b.inner.conv1.weight'
    """
    own = tv_model(short)
    slots = {'a': tv_model(long), 'b': Slots(inner=own)}
    if not long_first:
        slots = dict(reversed(list(slots.items())))
    return Case(keep(own), Slots(**slots), None)


def headless_rival_case(short: str, long: str, classes: int = 10) -> Case:
    """
    A 1000-class ``short`` checkpoint into ``Slots(a=long, b=short)`` whose
    ``b`` shares every module with the checkpoint's network but the ``fc``
    (``classes`` outputs): the network fine-tuned, beside a longer sibling.

    Example:
        >>> from corpus_pairs.rivals import headless_rival_case
        >>> case = headless_rival_case('resnet18', 'resnet34')
        >>> 'fc.weight' in case.truth, case.truth['conv1.weight']
        (False, 'b.conv1.weight')
    """
    own, tuned = tv_model(short), tv_model(short, num_classes=classes)
    for name, child in own.named_children():
        if name != 'fc':
            setattr(tuned, name, child)
    return Case(keep(own), Slots(a=tv_model(long), b=tuned), None)


def idiom_rival_case(idiom: str, own_first: bool = False) -> Case:
    """
    A resnet18 checkpoint into ``Slots(a=resnet34, b=...)`` whose ``b`` is the
    resnet18 itself rebuilt by a common idiom: ``children`` (``nn.Sequential(
    *children())``), ``children[:-1]`` (headless, registered first when
    ``own_first``), ``stem-body`` (``stem = [conv1, bn1]``, ``body = layers``).

    Example:
        >>> from corpus_pairs.rivals import idiom_rival_case
        >>> case = idiom_rival_case('stem-body')
        >>> case.truth['layer1.0.conv1.weight']
        'b.body.0.0.conv1.weight'
    """
    own = tv_model('resnet18')
    children = list(own.children())
    built = {'children': lambda: nn.Sequential(*children),
             'children[:-1]': lambda: nn.Sequential(*children[:-1]),
             'stem-body': lambda: Slots(stem=nn.Sequential(own.conv1, own.bn1),
                                        body=nn.Sequential(own.layer1, own.layer2, own.layer3, own.layer4),
                                        fc=own.fc)}[idiom]()
    slots = {'b': built, 'a': tv_model('resnet34')} if own_first else {'a': tv_model('resnet34'), 'b': built}
    return Case(keep(own), Slots(**slots), None)


for _idiom, _first in [('children', False), ('children[:-1]', True), ('stem-body', False)]:
    register_pair(f'{"resnet18 " + _idiom + "+resnet34" if _first else "resnet34+resnet18 " + _idiom}<-resnet18',
                  'identity',
                  note=f'a resnet18 checkpoint into a = resnet34 (every key by name and shape) beside '
                       f'b = the resnet18 itself as {_idiom}: the names tie, the order and '
                       'shapes do not')(
        lambda i=_idiom, f=_first: idiom_rival_case(i, f))
register_pair('efficientnet_b1+b0(wrapped)<-b0', 'identity',
              note='an efficientnet_b0 checkpoint into a = efficientnet_b1 (every key by name and shape) '
                   'beside b.inner = the b0 itself: the names tie, the order and shapes '
                   'do not')(
    lambda: (lambda own: Case(keep(own), Slots(a=tv_model('efficientnet_b1'), b=Slots(inner=own)), None))(
        tv_model('efficientnet_b0')))


for _short, _long in [('resnet18', 'resnet34'), ('resnet50', 'resnet101')]:
    register_pair(f'{_long}+{_short}(wrapped)<-{_short}', 'identity',
                  note=f'a {_short} checkpoint into a = {_long} (every key by name and shape, '
                       f'closer) beside b.inner = the {_short} itself (filled whole): the names tie, '
                       'the order and shapes do not')(
        lambda s=_short, g=_long: wrapped_rival_case(s, g))
    register_pair(f'{_short}(wrapped)+{_long}<-{_short}', 'identity',
                  note=f'the pair above with the {_short} slot registered first')(
        lambda s=_short, g=_long: wrapped_rival_case(s, g, long_first=False))
    register_pair(f'{_long}+{_short}(10 classes)<-{_short}(1000 classes)', 'identity',
                  note=f'a 1000-class {_short} checkpoint into a = {_long} (every key by name and '
                       f'shape) beside b = its own network fine-tuned to 10 classes (filled whole, '
                       'the fc shoved): the names tie; structure finds the network whole '
                       'but for its head')(
        lambda s=_short, g=_long: headless_rival_case(s, g))
