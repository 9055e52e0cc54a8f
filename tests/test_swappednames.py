"""
Tests of :mod:`torch_liberator.swappednames`: a shove that a swap of names
explains is left out in every mode (mutation fuzz seed 13419: a resnet18
checkpoint whose layer3 was saved as ``body2``, into a resnet18 whose layer4
is named ``body2``: the exact modes cropped layer3 into layer4, 30 tensors).
"""
import pytest

from conftest import requires
from torch_liberator.association import associate
from torch_liberator.swappednames import swapped_shoves

MODES = ['strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism', 'structure', 'auto']


def _resnet18(renamed, classes=1000):
    model = requires('torchvision').models.resnet18(weights=None, num_classes=classes)
    return {(k.replace(renamed + '.', 'body2.', 1) if k.startswith(renamed + '.') else k): tuple(v.shape)
            for k, v in model.state_dict().items()}


@pytest.mark.parametrize('mode', MODES)
def test_a_name_that_means_two_modules_shoves_nothing(mode):
    src, dst = _resnet18('layer3'), _resnet18('layer4')
    result = associate(src, dst, association=mode)
    shoved = [(s, d) for s, d in result.mapping.items() if src[s] != dst[d]]
    assert shoved == []
    assert result.mapping['layer2.0.conv1.weight'] == 'layer2.0.conv1.weight'


@pytest.mark.parametrize('mode', MODES)
def test_a_head_of_another_size_is_still_shoved(mode):
    src, dst = _resnet18('layer3'), _resnet18('layer3', classes=10)
    result = associate(src, dst, association=mode)
    assert result.mapping['fc.weight'] == 'fc.weight'
    assert len(result.mapping) == len(src)


def test_an_exact_fit_on_one_side_only_is_no_swap():
    src = {'stem.w': (8, 3), 'body2.0.w': (16, 8), 'layer4.0.w': (32, 16)}
    dst = {'stem.w': (8, 3), 'layer3.0.w': (16, 8), 'body2.0.w': (32, 16)}
    mapping = {'stem.w': 'stem.w', 'body2.0.w': 'body2.0.w'}
    assert swapped_shoves(mapping, src, dst) == {'body2.0.w': 'body2.0.w'}
    # the checkpoint has no unused module fitting the model's body2
    assert swapped_shoves(mapping, {k: v for k, v in src.items() if k != 'layer4.0.w'}, dst) == {}
    # the model has no empty module fitting the checkpoint's body2
    assert swapped_shoves(mapping, src, {k: v for k, v in dst.items() if k != 'layer3.0.w'}) == {}


def test_a_module_of_shoves_beside_a_copy_is_judged_alone():
    # a BatchNorm's count of batches (one value) fits anywhere: it neither
    # makes the module a copy nor stays when the module's shoves go
    src = {'b.w': (4,), 'b.n': (), 'x.w': (8,), 'x.n': ()}
    dst = {'b.w': (8,), 'b.n': (), 'y.w': (4,), 'y.n': ()}
    mapping = {'b.w': 'b.w', 'b.n': 'b.n'}
    assert swapped_shoves(mapping, src, dst) == mapping
    assert swapped_shoves({'b.w': 'b.w'}, src, {'b.w': (8,), 'y.w': (4,)}) == {}


def test_a_swap_is_sought_at_the_module_before_the_levels_above_it():
    # mutation fuzz seed 15300 (reduced): a ConvNeXt flattened under `features`
    # in the checkpoint, so its classifier is `features.2` there, while the
    # model's `features.2` is a downsampling stage; their first norms share
    # the key `features.2.0.weight`. Everything mapped below `features` is that
    # one shove, so the level above is no part to compare: the norm is
    norm = lambda p, c: {p + '.weight': (c,), p + '.bias': (c,)}
    src = {**norm('features.0.2.0', 192), 'features.0.2.1.weight': (384, 192, 2, 2),
           **norm('features.2.0', 768), 'features.2.2.weight': (1000, 768)}
    dst = {**norm('features.2.0', 192), 'features.2.1.weight': (384, 192, 2, 2),
           **norm('classifier.0', 768), 'classifier.2.weight': (1000, 768)}
    mapping = {'features.2.0.weight': 'features.2.0.weight', 'features.2.0.bias': 'features.2.0.bias'}
    assert swapped_shoves(mapping, src, dst) == mapping
    for mode in ('strict', 'module-hack'):
        assert associate(src, dst, association=mode).mapping == {}, mode
