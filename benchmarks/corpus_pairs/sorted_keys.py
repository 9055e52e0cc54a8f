"""
Variants of earlier pairs whose checkpoint keys come sorted by name (the
order ``safetensors.safe_open(...).keys()`` gives: ``features.10`` before
``features.2``), or in reverse order (a dict rebuilt back to front).
Imported last: it builds on the pairs registered before.

Example:
    >>> from corpus_pairs import build_case
    >>> list(build_case('resnet18-renamed (sorted keys)').source)[:2]
    ['bn1.bias', 'bn1.num_batches_tracked']
"""
from torch import nn

from corpus_pairs.registry import PAIRS, register_pair


# --- a checkpoint read from a .safetensors file: keys sorted by name


def _sorted_keys(name):
    """The named pair with its source in the order safetensors' ``safe_open`` lists keys."""
    def build():
        case = PAIRS[name].build()
        case.source = dict(sorted(case.source.items()))
        return case
    return build


for _base in ['resnet18-renamed', 'resnet50-children', 'efficientnet_b0-children',
              'vgg16-perceptual-slices', 'densenet121-split', 'swin_t-stem-stages',
              'timm-efficientnet_b0->tv-efficientnet_b0', 'timm-convnext_tiny->tv-convnext_tiny',
              'timm-vit-small->tv-vit-small', 'timm-mobilenetv2_100->tv-mobilenet_v2',
              'timm-swin_tiny->tv-swin_t', 'resnet18x2<-resnet18 (ambiguous)',
              'resnet50+resnet50<-resnet50 (ambiguous)', 'resnet18+resnet34<-resnet34',
              'resnet50+resnet18<-resnet18', 'siamese rgb/depth swapped order',
              'resnet18-lightning-ema', 'resnet18-stem-body', 'resnet50-c4', 'vgg16-lpips-slices',
              'timm-regnety_004->tv-regnet_y_400mf', 'timm-vit_small->tv-vit(small config)',
              'mobilenet_v3->ssdlite320', 'resnet18-fpn']:
    register_pair(f'{_base} (sorted keys)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  fast=_base in ('resnet18-renamed', 'timm-vit-small->tv-vit-small'),
                  note=f'{_base} with the checkpoint keys sorted by name, as read from a .safetensors '
                       'file (features.10 before features.2)')(_sorted_keys(_base))


# --- hunt 2: more sorted-key variants, and checkpoints whose keys come in reverse order


for _base in ['tv-vit(tiny config)-split-encoder', 'resnet50-three-parts', 'timm-deit_tiny->tv-vit(tiny config)',
              'timm-regnetx_016->tv-regnet_x_1_6gf', 'resnet34+resnet18<-resnet18', 'hf-names->mobilenet_v2',
              'mmpretrain-vit-names->timm-deit_tiny', 'resnet34->smp-unet', 'resnet50 checkpoint with junk keys',
              'timm-efficientnetv2_s->tv-efficientnet_v2_s', 'resnet18-moduledict-reversed',
              'resnet18-flat-blocks', 'swin_t-three-parts', 'moco checkpoint->resnet18 (ambiguous)',
              'hf-convnext-names->tv-convnext_tiny', 'resnet50-delattr-layer3.2',
              'resnet18 + model_ema.module under DataParallel']:
    register_pair(f'{_base} (sorted keys)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  note=f'{_base} with the checkpoint keys sorted by name, as read from a .safetensors '
                       'file (features.10 before features.2)')(_sorted_keys(_base))


def _reversed_keys(name):
    """The named pair with its source keys in reverse order (a dict rebuilt back to front)."""
    def build():
        case = PAIRS[name].build()
        case.source = dict(reversed(list(case.source.items())))
        return case
    return build


for _base in ['resnet50-children', 'resnet18-renamed', 'timm-efficientnet_b0->tv-efficientnet_b0',
              'timm-deit_tiny->tv-vit(tiny config)', 'resnet18+resnet34<-resnet34',
              'resnet18x2<-resnet18 (ambiguous)', 'hf-names->resnet18', 'swin_t-stem-stages',
              'resnet50-three-parts', 'tv-vit(tiny config)-split-encoder', 'resnet18-lightning-ema',
              'detectron2-names->resnet18', 'mobilenet_v2->hf-names', 'resnet18-stem-body']:
    register_pair(f'{_base} (reversed keys)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  fast=_base in ('resnet18-renamed', 'resnet18x2<-resnet18 (ambiguous)'),
                  note=f'{_base} with the checkpoint keys in reverse order (a state dict rebuilt back '
                       'to front)')(_reversed_keys(_base))


# --- hunt 2: checkpoints built from named_parameters() (then named_buffers(), or alone)


def params_first(name, buffers=True):
    """The named pair with its source rebuilt as ``{**named_parameters(), **named_buffers()}``
    (or the parameters alone), as hand-made checkpoints often are."""
    def build():
        case = PAIRS[name].build()
        params = {k: v for k, v in case.source.items() if isinstance(v, nn.Parameter)}
        rest = {k: v for k, v in case.source.items() if k not in params} if buffers else {}
        case.source = {**params, **rest}
        case.truth = {k: v for k, v in case.truth.items() if k in case.source}
        return case
    return build


for _base in ['resnet18-renamed', 'timm-efficientnet_b0->tv-efficientnet_b0', 'resnet50-children',
              'hf-names->resnet18', 'swin_t-stem-stages', 'resnet18x2<-resnet18 (ambiguous)',
              'timm-convnext_tiny->tv-convnext_tiny', 'mobilenet_v2->hf-names', 'resnet18-lightning-ema',
              'timm-regnety_004->tv-regnet_y_400mf']:
    register_pair(f'{_base} (params then buffers)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  note=f'{_base} with the checkpoint rebuilt as named_parameters() then named_buffers() '
                       '(every running statistic after every weight)')(params_first(_base))
for _base in ['resnet18-renamed', 'timm-efficientnet_b0->tv-efficientnet_b0', 'resnet50-children',
              'timm-mobilenetv3_large_100->tv-mobilenet_v3_large', 'hf-names->resnet18']:
    # a truth checked by outputs, restricted to the parameters, can no longer be checked so
    register_pair(f'{_base} (parameters only)', 'names' if PAIRS[_base].truth_from == 'outputs' else
                  PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  note=f'{_base} from a checkpoint of named_parameters() alone: no running statistics, '
                       'no num_batches_tracked')(params_first(_base, buffers=False))


def _head_first(name, head):
    """The named pair with the keys under ``head`` moved to the front (``{**head_state, **rest}``)."""
    def build():
        case = PAIRS[name].build()
        first = {k: v for k, v in case.source.items() if k.startswith(head)}
        case.source = {**first, **{k: v for k, v in case.source.items() if k not in first}}
        return case
    return build


for _base, _head in [('resnet18-renamed', 'fc.'), ('timm-efficientnet_b0->tv-efficientnet_b0', 'classifier.'),
                     ('timm-convnext_tiny->tv-convnext_tiny', 'head.'), ('resnet50-children', 'fc.')]:
    register_pair(f'{_base} (head first)', PAIRS[_base].truth_from, PAIRS[_base].cross_naming,
                  note=f'{_base} with the head ({_head}*) first in the checkpoint, as '
                       '{**head_state, **backbone_state} writes it')(_head_first(_base, _head))
register_pair('resnet18+renamed resnet18<-resnet18 (sorted keys)', 'identity', True,
              note='resnet18+renamed resnet18<-resnet18 with the checkpoint keys sorted by name')(
    _sorted_keys('resnet18+renamed resnet18<-resnet18'))
