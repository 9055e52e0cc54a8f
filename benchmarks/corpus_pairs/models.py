"""
Model building blocks shared by the pair families of :mod:`corpus_pairs`.

Everything here builds with random weights (``weights=None``,
``pretrained=False``); torchvision and timm are imported only when a pair
needs them.

Example:
    >>> from corpus_pairs.models import Slots, keep
    >>> import torch
    >>> model = Slots(a=torch.nn.Linear(2, 2))
    >>> list(keep(model))
    ['a.weight', 'a.bias']
"""
import torch
from torch import nn

__all__ = [
    'NO_AUX',
    'RenamedBlock',
    'RenamedResNet',
    'Slots',
    'Wrap',
    'image',
    'in_order',
    'keep',
    'timm_module',
    'torchvision_module',
    'tv_detector',
    'tv_model',
    'tv_segmenter',
]

#: googlenet / inception_v3 without auxiliary heads or their slow init
NO_AUX = dict(aux_logits=False, init_weights=False)


def torchvision_module():
    """
    torchvision, imported when a pair needs it.

    Example:
        >>> from corpus_pairs.models import torchvision_module
        >>> torchvision_module().__name__
        'torchvision'
    """
    import torchvision
    return torchvision


def timm_module():
    """
    timm, imported when a pair needs it.

    Example:
        >>> from corpus_pairs.models import timm_module
        >>> timm_module().__name__
        'timm'
    """
    import timm
    return timm


def in_order(named) -> dict:
    """
    A state dict from ``(place, key, value)`` entries, in the order of their
    places: another library's registration order.

    Example:
        >>> from corpus_pairs.models import in_order
        >>> in_order([((1, 0), 'b', 2), ((0, 5), 'a', 1)])
        {'a': 1, 'b': 2}
    """
    return {key: value for _, key, value in sorted(named, key=lambda entry: entry[0])}


def keep(model: nn.Module) -> dict:
    """
    The source state of a model: its own tensor objects (for a truth by identity).

    Example:
        >>> import torch
        >>> from corpus_pairs.models import keep
        >>> layer = torch.nn.Linear(2, 2)
        >>> keep(layer)['weight'] is layer.weight
        True
    """
    return model.state_dict(keep_vars=True)


def tv_model(arch: str, **kw) -> nn.Module:
    """
    A torchvision classification model with random weights.

    Example:
        >>> from corpus_pairs.models import tv_model
        >>> tv_model('squeezenet1_1', num_classes=10).classifier[1].out_channels
        10
    """
    return getattr(torchvision_module().models, arch)(weights=None, **kw)


def tv_detector(name: str):
    """
    A factory of the named torchvision detector (no weights, no backbone weights).

    Example:
        >>> from corpus_pairs.models import tv_detector
        >>> callable(tv_detector('fasterrcnn_resnet50_fpn'))
        True
    """
    return lambda: getattr(torchvision_module().models.detection, name)(
        weights=None, weights_backbone=None)


def tv_segmenter(name: str):
    """
    A factory of the named torchvision segmentation model.

    Example:
        >>> from corpus_pairs.models import tv_segmenter
        >>> callable(tv_segmenter('fcn_resnet50'))
        True
    """
    return lambda: getattr(torchvision_module().models.segmentation, name)(
        weights=None, weights_backbone=None)


def image(size: int = 64, batch: int = 1) -> torch.Tensor:
    """
    A fixed random image batch (for the output checks).

    Example:
        >>> from corpus_pairs.models import image
        >>> image(8).shape
        torch.Size([1, 3, 8, 8])
    """
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


class Wrap(nn.Module):
    """
    ``inner`` under the attribute ``name``, plus an optional new ``Linear(3, 5)`` head.

    Example:
        >>> import torch
        >>> from corpus_pairs.models import Wrap
        >>> list(Wrap('module', torch.nn.Linear(2, 2), 'extra').state_dict())
        ['module.weight', 'module.bias', 'extra.weight', 'extra.bias']
    """

    def __init__(self, name, inner, head_name=None):
        super().__init__()
        self.add_module(name, inner)
        if head_name:
            self.add_module(head_name, nn.Linear(3, 5))


class Slots(nn.Module):
    """
    Named sub-networks side by side, in the given order.

    Example:
        >>> import torch
        >>> from corpus_pairs.models import Slots
        >>> list(Slots(b=torch.nn.Linear(1, 1), a=torch.nn.Linear(1, 1)).state_dict())
        ['b.weight', 'b.bias', 'a.weight', 'a.bias']
    """

    def __init__(self, **slots):
        super().__init__()
        for name, module in slots.items():
            self.add_module(name, module)


class RenamedBlock(nn.Module):
    """
    A torchvision BasicBlock / Bottleneck with every submodule renamed.

    Example:
        >>> from corpus_pairs.models import RenamedBlock, tv_model
        >>> list(RenamedBlock(tv_model('resnet18').layer2[0]).state_dict())[:2]
        ['c1.weight', 'n1.weight']
    """

    def __init__(self, block):
        super().__init__()
        self.c1, self.n1 = block.conv1, block.bn1
        self.c2, self.n2 = block.conv2, block.bn2
        self.deep = hasattr(block, 'conv3')
        if self.deep:
            self.c3, self.n3 = block.conv3, block.bn3
        self.proj = block.downsample
        self.act = nn.ReLU()

    def forward(self, x):
        out = self.act(self.n1(self.c1(x)))
        out = self.n2(self.c2(out))
        if self.deep:
            out = self.n3(self.c3(self.act(out)))
        return self.act(out + (x if self.proj is None else self.proj(x)))


class RenamedResNet(nn.Module):
    """
    A torchvision resnet renamed: ``conv1->c1, bn1->n1, layerN->stageN, downsample->proj, fc->head``.

    Example:
        >>> from corpus_pairs.models import RenamedResNet, tv_model
        >>> list(RenamedResNet(tv_model('resnet18')).state_dict())[-1]
        'head.bias'
    """

    def __init__(self, resnet):
        super().__init__()
        self.c1, self.n1 = resnet.conv1, resnet.bn1
        self.act = nn.ReLU()
        self.pool = resnet.maxpool
        for i in range(1, 5):
            layer = getattr(resnet, f'layer{i}')
            setattr(self, f'stage{i}', nn.Sequential(*map(RenamedBlock, layer)))
        self.gap = resnet.avgpool
        self.head = resnet.fc

    def forward(self, x):
        x = self.pool(self.act(self.n1(self.c1(x))))
        for i in range(1, 5):
            x = getattr(self, f'stage{i}')(x)
        return self.head(torch.flatten(self.gap(x), 1))
