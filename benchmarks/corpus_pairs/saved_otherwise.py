"""
Variants of earlier pairs saved or loaded another way: the checkpoint under
Lightning's ``model.`` (a LightningModule holding ``self.model``), the
model inside ``nn.DataParallel`` (``module.*``), a checkpoint of torch <
0.4.1 (no ``num_batches_tracked``) or of ``named_parameters()`` alone, and
a timm checkpoint loaded into the network built with ``features_only=True``
(which names ``features.conv0`` as ``features_conv0``). A wrapper's name is
no name, a flattened path is the path, and a buffer missing on one side
changes no place: each variant must load what its base pair loads.
Imported after the pairs it builds on.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('timm ModelEmaV3 checkpoint->resnet50 (DataParallel model)')
    >>> sorted(case.truth.items())[0]
    ('model.bn1.bias', 'module.bn1.bias')
"""
from torch import nn

from corpus_pairs.models import timm_module
from corpus_pairs.registry import PAIRS, Case, register_pair
from corpus_pairs.sorted_keys import params_first


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


def _without_counters(name):
    """The named pair with its source saved by torch < 0.4.1 (or converted):
    no ``num_batches_tracked``."""
    def build():
        case = PAIRS[name].build()
        case.source = {k: v for k, v in case.source.items()
                       if not k.endswith('num_batches_tracked')}
        case.truth = {k: v for k, v in case.truth.items() if k in case.source}
        return case
    return build


for _base in ['resnet34+resnet18(wrapped)<-resnet18', 'resnet101+resnet50(wrapped)<-resnet50',
              'resnet18 children+resnet34->resnet18']:
    register_pair(f'{_base} (no num_batches_tracked)', PAIRS[_base].truth_from,
                  PAIRS[_base].cross_naming,
                  fast=_base == 'resnet34+resnet18(wrapped)<-resnet18',
                  note=f'{_base} from a checkpoint of torch < 0.4.1 (no num_batches_tracked): '
                       'every BatchNorm of the model has one tensor more, and the sibling '
                       'of its names still fits only in part')(_without_counters(_base))
for _base in ['efficientnet_b1+b0(wrapped)<-b0', 'resnet34+resnet18 stem-body<-resnet18']:
    register_pair(f'{_base} (parameters only)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  note=f'{_base} from a checkpoint of named_parameters() alone: every BatchNorm '
                       'of the model has three tensors more')(params_first(_base, buffers=False))


def _timm_features_only(name):
    """A timm network's checkpoint into the same network built with
    ``features_only=True``: every key of the features, its module path
    maybe flattened with ``_`` (``stem_0``, ``features_conv0``)."""
    def build():
        timm = timm_module()
        full = timm.create_model(name, pretrained=False)
        features = timm.create_model(name, pretrained=False, features_only=True)
        source = full.state_dict()
        flat = {key.replace('.', '_'): key for key in source}
        truth = {flat[key.replace('.', '_')]: key for key in features.state_dict()}
        return Case(source, features, truth)
    return build


for _name in ['resnet50', 'densenet121', 'convnext_tiny']:
    register_pair(f'timm-{_name}->timm-{_name}(features_only)', 'names',
                  note=f"timm's {_name} checkpoint into the network built with features_only=True "
                       '(FeatureListNet: module paths flattened with _ where timm cuts the '
                       'network)')(_timm_features_only(_name))
