"""
Unrelated networks: a checkpoint of one architecture into a model of
another, where some layers share shapes by chance (a 7x7 stem and its
BatchNorm, a 1x1 convolution of 256 to 128 channels, an inverted residual
block of one width). Nothing belongs: every tensor loaded is wrong, except
at keys the two models share by name, which the published same-name rule
loads (shoved when the shapes differ) and which are left unjudged.

Found by loading every ordered pair of 17 torchvision classifiers of
different families in every mode: before the evidence rule
(:mod:`torch_liberator.evidence`), ``structure`` and ``auto`` put up to 73
tensors in wrong places (mobilenet_v2 -> efficientnet_b0) and the name
modes one or a few (``transition1.conv`` -> ``inception3b.branch1.conv``).
resnet18 -> vgg11_bn and vgg13_bn (added later): ``structure`` and ``auto``
put resnet18's last stage (512-channel 3x3 convolutions and BatchNorms, 19
tensors) into the vgg's last convolutions before the few-shapes rule
(:func:`torch_liberator.coincidence.few_shapes`). alexnet <-> vgg11 and
convnext_tiny <-> swin_t (added later): ``structure`` and ``auto`` aligned
AlexNet's classifier with VGG's, and ConvNeXt's stem and MLPs (``[384,
96]``, ``[96, 384]``, ...) with Swin's patch embedding and MLPs, which
ConvNeXt was designed after (fixed by
:func:`torch_liberator.coincidence.lone_items` and
:func:`torch_liberator.coincidence.against_shared_names`). Every pair again
with the checkpoint keys sorted (a .safetensors file) and reversed (added
last): with no order to read, ``structure`` and ``auto`` put up to 31
tensors in wrong places (mobilenet_v2 <-> efficientnet_b0: 124 of the 32
cells together, ``embedding`` 12), where the only evidence was shapes the
two designs share (fixed by
:func:`torch_liberator.coincidence.design_share`).

Example:
    >>> from corpus_pairs.unrelated import unrelated_case
    >>> import torch
    >>> case = unrelated_case(torch.nn.Linear(2, 3), torch.nn.Sequential(torch.nn.Linear(2, 3)))
    >>> case.truth, sorted(case.unjudged)
    ({}, [])
"""
from torch import nn

from corpus_pairs.models import keep, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['unrelated_case']


def unrelated_case(source: nn.Module, destination: nn.Module) -> Case:
    """
    Nothing belongs; the destination keys that the source also holds are unjudged.

    Example:
        >>> import torch
        >>> from corpus_pairs.unrelated import unrelated_case
        >>> case = unrelated_case(torch.nn.Linear(2, 3), torch.nn.Linear(4, 3))
        >>> sorted(case.unjudged)
        ['bias', 'weight']
    """
    state = keep(source)
    same = [k for k in destination.state_dict() if k in state]
    return Case(state, destination, {}, unjudged=same)


def _reordered_case(source, destination, order):
    """:func:`unrelated_case` with the checkpoint keys sorted by name (as a
    .safetensors file lists them) or in reverse order."""
    case = unrelated_case(source, destination)
    items = list(case.source.items())
    case.source = dict(sorted(items) if order == 'sorted' else reversed(items))
    return case


def _tv(arch):
    kw = {'aux_logits': False, 'init_weights': False} if arch == 'googlenet' else {}
    return tv_model(arch, **kw)


for _src, _dst in [('resnet18', 'vgg11'), ('vgg11', 'resnet18'), ('resnet18', 'densenet121'),
                   ('densenet121', 'googlenet'), ('densenet121', 'resnext50_32x4d'),
                   ('mobilenet_v2', 'efficientnet_b0'), ('efficientnet_b0', 'mobilenet_v2'),
                   ('mobilenet_v3_small', 'mnasnet0_5'), ('mobilenet_v2', 'mnasnet0_5'),
                   ('regnet_y_400mf', 'efficientnet_b0'), ('vgg11', 'alexnet'),
                   ('resnet18', 'vgg11_bn'), ('resnet18', 'vgg13_bn'), ('alexnet', 'vgg11'),
                   ('convnext_tiny', 'swin_t'), ('swin_t', 'convnext_tiny')]:
    register_pair(f'u-{_src}->{_dst} (unrelated)', 'names',
                  note=f'a {_src} checkpoint into {_dst}: nothing belongs but the same-named keys '
                       '(unjudged)')(lambda s=_src, d=_dst: unrelated_case(_tv(s), _tv(d)))
    for _order in ('sorted', 'reversed'):
        register_pair(f'u-{_src}->{_dst} (unrelated, {_order} keys)', 'names',
                      note=f'u-{_src}->{_dst} with the checkpoint keys {_order}: no registration '
                           'order to read')(
            lambda s=_src, d=_dst, o=_order: _reordered_case(_tv(s), _tv(d), o))


def _later_part(source, destination, share=0.6):
    """:func:`unrelated_case` with the checkpoint cut to the last ``share``
    of its keys, in registration order (later stages and the head)."""
    case = unrelated_case(source, destination)
    items = list(case.source.items())
    case.source = dict(items[len(items) - int(len(items) * share):])
    return case


for _src, _dst in [('mobilenet_v2', 'mnasnet0_5'), ('swin_t', 'convnext_tiny')]:
    register_pair(f'u-{_src}->{_dst} (unrelated, later 60 %)', 'names',
                  note=f'the last 60 % of a {_src} checkpoint (in order) into {_dst}: an inverted '
                       'residual block and a BatchNorm, or MLPs, of shapes both designs hold')(
        lambda s=_src, d=_dst: _later_part(_tv(s), _tv(d)))
