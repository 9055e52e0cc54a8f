"""
Variants of earlier pairs whose checkpoint keys come sorted by name, the
order ``safetensors.safe_open(...).keys()`` gives (``features.10`` before
``features.2``). Imported last: it builds on the pairs registered before.

Example:
    >>> from corpus_pairs import build_case
    >>> list(build_case('resnet18-renamed (sorted keys)').source)[:2]
    ['bn1.bias', 'bn1.num_batches_tracked']
"""
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
