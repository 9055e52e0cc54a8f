"""
Pairs of detection and segmentation models: a classification backbone's
checkpoint into the torchvision detector or segmenter whose builder built it,
and a whole detector's checkpoint back into that backbone. Truth by identity:
the builder's backbone factory is intercepted and its model kept.

Example:
    >>> from corpus_pairs import PAIRS
    >>> PAIRS['resnet50->fasterrcnn'].truth_from
    'identity'
"""
import contextlib
import importlib

from torch import nn

from corpus_pairs.models import Slots, Wrap, keep, tv_detector, tv_model, tv_segmenter
from corpus_pairs.registry import Case, register_pair, truth_by_names


@contextlib.contextmanager
def _capture(module_name, factory_name, override=None):
    """Intercept ``module.factory`` (as a builder calls it); yield the models it built."""
    module = importlib.import_module(module_name)
    real = getattr(module, factory_name)
    built = []

    def factory(*args, **kwargs):
        kwargs.update(override or {})
        model = real(*args, **kwargs)
        built.append(model)
        return model

    setattr(module, factory_name, factory)
    try:
        yield built
    finally:
        setattr(module, factory_name, real)


def _captured_case(module_name, factory_name, build, override=None):
    """The destination built by ``build()``; the source = the backbone it built inside."""
    with _capture(module_name, factory_name, override) as built:
        destination = build()
    if len(built) != 1:
        raise RuntimeError(f'expected one {factory_name} built inside, got {len(built)}')
    return Case(keep(built[0]), destination, None)


# --- detection and segmentation backbones (the backbone built inside the builder)


for _name, _module, _factory, _build, _override in [
    ('resnet50->fasterrcnn', 'torchvision.models.detection.faster_rcnn', 'resnet50', tv_detector('fasterrcnn_resnet50_fpn'), None),
    ('resnet50->retinanet', 'torchvision.models.detection.retinanet', 'resnet50', tv_detector('retinanet_resnet50_fpn'), None),
    ('resnet50->deeplabv3', 'torchvision.models.segmentation.deeplabv3', 'resnet50', tv_segmenter('deeplabv3_resnet50'), None),
    ('resnet50->fcn', 'torchvision.models.segmentation.fcn', 'resnet50', tv_segmenter('fcn_resnet50'), None),
    ('vgg16->ssd300', 'torchvision.models.detection.ssd', 'vgg16', tv_detector('ssd300_vgg16'), None),
    ('mobilenet_v3->fasterrcnn_mobilenet', 'torchvision.models.detection.faster_rcnn', 'mobilenet_v3_large',
     tv_detector('fasterrcnn_mobilenet_v3_large_fpn'), None),
    ('mobilenet_v3->ssdlite320', 'torchvision.models.detection.ssdlite', 'mobilenet_v3_large',
     tv_detector('ssdlite320_mobilenet_v3_large'), {'reduced_tail': False}),
    ('mobilenet_v3->deeplabv3', 'torchvision.models.segmentation.deeplabv3', 'mobilenet_v3_large',
     tv_segmenter('deeplabv3_mobilenet_v3_large'), None),
    ('mobilenet_v3->lraspp', 'torchvision.models.segmentation.lraspp', 'mobilenet_v3_large',
     tv_segmenter('lraspp_mobilenet_v3_large'), None),
]:
    register_pair(_name, 'identity', note=f'{_factory} checkpoint into the model whose builder built it')(
        lambda m=_module, f=_factory, b=_build, o=_override: _captured_case(m, f, b, o))


# --- a detector's or segmenter's checkpoint back into the plain backbone


def _captured_reverse(module_name, factory_name, build, override=None):
    """The source = a whole detector's state; the destination = the backbone built inside it."""
    with _capture(module_name, factory_name, override) as built:
        whole = build()
    if len(built) != 1:
        raise RuntimeError(f'expected one {factory_name} built inside, got {len(built)}')
    return Case(keep(whole), built[0], None)


for _name, _module, _factory, _build, _override in [
    ('fasterrcnn->resnet50', 'torchvision.models.detection.faster_rcnn', 'resnet50',
     tv_detector('fasterrcnn_resnet50_fpn'), None),
    ('retinanet->resnet50', 'torchvision.models.detection.retinanet', 'resnet50',
     tv_detector('retinanet_resnet50_fpn'), None),
    ('deeplabv3->resnet50', 'torchvision.models.segmentation.deeplabv3', 'resnet50',
     tv_segmenter('deeplabv3_resnet50'), None),
    ('ssd300->vgg16', 'torchvision.models.detection.ssd', 'vgg16', tv_detector('ssd300_vgg16'), None),
    ('lraspp->mobilenet_v3_large', 'torchvision.models.segmentation.lraspp', 'mobilenet_v3_large',
     tv_segmenter('lraspp_mobilenet_v3_large'), None),
    ('fasterrcnn_mobilenet->mobilenet_v3_large', 'torchvision.models.detection.faster_rcnn',
     'mobilenet_v3_large', tv_detector('fasterrcnn_mobilenet_v3_large_fpn'), None),
]:
    register_pair(_name, 'identity',
                  note=f'a whole {_name.split("->")[0]} checkpoint into the {_factory} it was built on: '
                       'its backbone belongs, nothing else (the classifier gets nothing)')(
        lambda m=_module, f=_factory, b=_build, o=_override: _captured_reverse(m, f, b, o))


for _name, _module, _factory, _build in [
    ('resnet50->fcos', 'torchvision.models.detection.fcos', 'resnet50', tv_detector('fcos_resnet50_fpn')),
    ('resnet50->keypointrcnn', 'torchvision.models.detection.keypoint_rcnn', 'resnet50',
     tv_detector('keypointrcnn_resnet50_fpn')),
    ('resnet50->maskrcnn_v2', 'torchvision.models.detection.mask_rcnn', 'resnet50',
     tv_detector('maskrcnn_resnet50_fpn_v2')),
]:
    register_pair(_name, 'identity', note=f'{_factory} checkpoint into the model whose builder built it')(
        lambda m=_module, f=_factory, b=_build: _captured_case(m, f, b))


@register_pair('resnet50->detr-backbone(frozen bn)', 'names',
               note='resnet50 -> a DETR-style Joiner: backbone.0.body = IntermediateLayerGetter(resnet50 '
                    'with FrozenBatchNorm2d) + a position embedding; num_batches_tracked belongs nowhere')
def _detr():
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.ops.misc import FrozenBatchNorm2d
    src = tv_model('resnet50')
    body = IntermediateLayerGetter(tv_model('resnet50', norm_layer=FrozenBatchNorm2d), {'layer4': '0'})
    joiner = nn.Sequential(Wrap('body', body), nn.Embedding(50, 128))
    dst = Slots(backbone=joiner, input_proj=nn.Conv2d(2048, 256, 1),
                 class_embed=nn.Linear(256, 92), query_embed=nn.Embedding(100, 256))
    state = keep(src)
    truth = truth_by_names(state, dst, [('', 'backbone.0.body.')])
    return Case(state, dst, truth)


# --- more detectors and segmenters (hunt 2): v2 builders, reverses, a U-Net encoder


_DET, _SEG = 'torchvision.models.detection.', 'torchvision.models.segmentation.'
for _name, _module, _factory, _build, _override in [
    ('resnet50->retinanet_v2', _DET + 'retinanet', 'resnet50', tv_detector('retinanet_resnet50_fpn_v2'), None),
    ('resnet50->fasterrcnn_v2', _DET + 'faster_rcnn', 'resnet50', tv_detector('fasterrcnn_resnet50_fpn_v2'), None),
    ('mobilenet_v3->fasterrcnn_mobilenet_320', _DET + 'faster_rcnn', 'mobilenet_v3_large',
     tv_detector('fasterrcnn_mobilenet_v3_large_320_fpn'), None),
]:
    register_pair(_name, 'identity', note=f'{_factory} checkpoint into the model whose builder built it')(
        lambda m=_module, f=_factory, b=_build, o=_override: _captured_case(m, f, b, o))


for _name, _module, _factory, _build, _override in [
    ('keypointrcnn->resnet50', _DET + 'keypoint_rcnn', 'resnet50', tv_detector('keypointrcnn_resnet50_fpn'), None),
    ('maskrcnn_v2->resnet50', _DET + 'mask_rcnn', 'resnet50', tv_detector('maskrcnn_resnet50_fpn_v2'), None),
    ('fcos->resnet50', _DET + 'fcos', 'resnet50', tv_detector('fcos_resnet50_fpn'), None),
    ('retinanet_v2->resnet50', _DET + 'retinanet', 'resnet50', tv_detector('retinanet_resnet50_fpn_v2'), None),
    ('ssdlite320->mobilenet_v3_large', _DET + 'ssdlite', 'mobilenet_v3_large',
     tv_detector('ssdlite320_mobilenet_v3_large'), {'reduced_tail': False}),
    ('deeplabv3_mobilenet->mobilenet_v3_large', _SEG + 'deeplabv3', 'mobilenet_v3_large',
     tv_segmenter('deeplabv3_mobilenet_v3_large'), None),
]:
    register_pair(_name, 'identity',
                  note=f'a whole {_name.split("->")[0]} checkpoint into the {_factory} it was built on: '
                       'its backbone belongs, nothing else')(
        lambda m=_module, f=_factory, b=_build, o=_override: _captured_reverse(m, f, b, o))


@register_pair('fasterrcnn->keypointrcnn', 'names',
               note='a fasterrcnn_resnet50_fpn checkpoint into keypointrcnn_resnet50_fpn: backbone, '
                    'rpn and box head by name, the 91-class box predictor shoved into the 2-class one, '
                    'the keypoint head new')
def _frcnn_to_keypoint():
    src = tv_detector('fasterrcnn_resnet50_fpn')()
    dst = tv_detector('keypointrcnn_resnet50_fpn')()
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


def _conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class _DecoderBlock(nn.Module):
    def __init__(self, cin, skip, cout):
        super().__init__()
        self.conv1 = _conv_bn_relu(cin + skip, cout)
        self.conv2 = _conv_bn_relu(cout, cout)


def _smp_unet(resnet):
    """segmentation_models_pytorch's Unet names: encoder = the resnet without fc and avgpool."""
    del resnet.fc, resnet.avgpool
    channels = [(512, 256, 256), (256, 128, 128), (128, 64, 64), (64, 64, 32), (32, 0, 16)]
    decoder = Slots(center=nn.Identity(), blocks=nn.ModuleList([_DecoderBlock(*c) for c in channels]))
    return Slots(encoder=resnet, decoder=decoder,
                 segmentation_head=nn.Sequential(nn.Conv2d(16, 2, 3, padding=1)))


@register_pair('resnet34->smp-unet', 'identity',
               note='a resnet34 checkpoint into a segmentation_models_pytorch-style Unet (encoder.* = '
                    'the resnet without fc/avgpool, decoder.blocks.N.convK.{0,1}, segmentation_head)')
def _to_smp():
    r = tv_model('resnet34')
    state = keep(r)
    return Case(state, _smp_unet(r), None)


@register_pair('smp-unet->resnet34', 'identity',
               note='the reverse: an smp-style Unet checkpoint into torchvision resnet34 (its fc gets nothing)')
def _from_smp():
    r = tv_model('resnet34')
    fresh = tv_model('resnet34')
    unet = _smp_unet(r)
    return Case(keep(unet), _with_same_tensors(fresh, unet.encoder), None)


def _with_same_tensors(model, encoder):
    """``model`` whose tensors are the very objects of ``encoder`` where names agree (for identity)."""
    for name, module in encoder.named_children():
        setattr(model, name, module)
    return model
