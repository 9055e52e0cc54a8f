"""
Variants of earlier pairs saved or loaded through a wrapper: the checkpoint
under Lightning's ``model.`` (a LightningModule holding ``self.model``), the
model inside ``nn.DataParallel`` (``module.*``). A wrapper's name is no
name: each variant must load what its base pair loads. Imported after the
pairs it builds on.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('timm ModelEmaV3 checkpoint->resnet50 (DataParallel model)')
    >>> sorted(case.truth.items())[0]
    ('model.bn1.bias', 'module.bn1.bias')
"""
from torch import nn

from corpus_pairs.registry import PAIRS, register_pair


def _checkpoint_under(name, prefix):
    """The named pair with every checkpoint key under ``prefix``."""
    def build():
        case = PAIRS[name].build()
        case.source = {prefix + k: v for k, v in case.source.items()}
        case.truth = {prefix + k: v for k, v in case.truth.items()}
        return case
    return build


def _model_in_dataparallel(name):
    """The named pair loaded into ``nn.DataParallel(model)``."""
    def build():
        case = PAIRS[name].build()
        case.destination = nn.DataParallel(case.destination, device_ids=[])
        case.truth = {k: 'module.' + v for k, v in case.truth.items()}
        case.unjudged = frozenset('module.' + k for k in case.unjudged)
        return case
    return build


for _base in ['linear x3: blocks[:1] + tail[1:] registered first',
              'timm-deit_tiny-blocks[:4]+tail first', 'resnet50-children',
              'timm-efficientnet_b0->tv-efficientnet_b0', 'resnet18+resnet34<-resnet34']:
    register_pair(f'{_base} (Lightning model.*)', PAIRS[_base].truth_from,
                  PAIRS[_base].cross_naming,
                  fast=_base.startswith('linear x3'),
                  note=f'{_base} with the checkpoint saved from a LightningModule holding '
                       'self.model (model.*)')(_checkpoint_under(_base, 'model.'))

for _base in ['timm ModelEmaV3 checkpoint->resnet50', 'resnet18-lightning-ema (reversed keys)',
              'resnet18-lightning-ema', 'timm-efficientnet_b0->tv-efficientnet_b0']:
    register_pair(f'{_base} (DataParallel model)', PAIRS[_base].truth_from,
                  PAIRS[_base].cross_naming,
                  note=f'{_base} loaded into nn.DataParallel(model) (module.*): a checkpoint '
                       'holding model_ema.module.* shares the whole suffix module.conv1.weight '
                       'with the model\'s keys, the model copy only conv1.weight')(
        _model_in_dataparallel(_base))
