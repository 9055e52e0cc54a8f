"""
Tests of :mod:`torch_liberator.rivalsources`: a module filled from a rival
copy of the module that fills it (mutation fuzz seed 9005: a resnext50
without its fc beside a whole resnet50, into a resnext50; the resnet50's fc
went to the resnext50's head in embedding, structure and auto), and the
mirror on the model's side (seed 9477: an efficientnet_b0's classifier into a
mobilenet_v2's beside the b0 as ``nn.Sequential(*children)``).
"""
import pytest

from conftest import requires
from torch_liberator.association import associate
from torch_liberator.rivalsources import lone_namesakes, lone_shoves, rival_pairs, rival_places


def _net(width, prefix='', head=True):
    keys = {'conv.weight': (width, 3, 3, 3), 'conv.bias': (width,), 'bn.weight': (width,),
            'bn.bias': (width,), 'bn.running_mean': (width,), 'bn.running_var': (width,),
            'mid.weight': (16, width, 1, 1), 'mid.bias': (16,)}
    if head:
        keys.update({'fc.weight': (5, 16), 'fc.bias': (5,)})
    return {prefix + k: v for k, v in keys.items()}


@pytest.mark.parametrize('mode', ['prefix-hack', 'isomorphism', 'embedding', 'structure', 'auto'])
def test_a_head_from_another_network_beside_a_headless_one_is_left_out(mode):
    src = {**_net(8, 'stage.', head=False), **_net(12, 'body.')}
    result = associate(src, _net(8), association=mode)
    assert not any(k.startswith('body.') for k in result.mapping), result.mapping
    assert {result.mapping[k] for k in _net(8, 'stage.', head=False)} == set(_net(8, head=False))


@pytest.mark.parametrize('mode', ['embedding', 'structure', 'auto'])
def test_a_split_checkpoint_keeps_its_head(mode):
    # the parts of one network share no name: both fill the model
    src = {**_net(8, 'backbone.', head=False), 'head.fc.weight': (5, 16), 'head.fc.bias': (5,)}
    result = associate(src, _net(8), association=mode)
    assert result.mapping['head.fc.weight'] == 'fc.weight'
    assert len(result.mapping) == len(src)


def test_positions_are_no_names():
    # a list cut in two parts, each renumbered from 0: both fill the list
    src = ['a.0.weight', 'a.1.weight', 'b.0.weight', 'b.1.weight']
    mapping = {'a.0.weight': 'layer.0.weight', 'a.1.weight': 'layer.1.weight',
               'b.0.weight': 'layer.2.weight', 'b.1.weight': 'layer.3.weight'}
    assert rival_pairs(mapping, src) == {}
    # ... and kept whole (split_keep): the shared suffix starts at the item
    mapping = {'a.0.weight': 'layer.0.weight', 'a.1.weight': 'layer.1.weight',
               'b.2.weight': 'layer.2.weight'}
    assert rival_pairs(mapping, ['a.0.weight', 'a.1.weight', 'b.2.weight']) == {}


def test_nested_sources_are_no_rivals():
    src = ['conv.weight', 'extra.conv.weight', 'extra.fc.weight']
    mapping = {'conv.weight': 'conv.weight', 'extra.fc.weight': 'fc.weight'}
    assert rival_pairs(mapping, src) == {}


def _features_head(prefix='', width=8, classes=5):
    return {prefix + 'features.0.weight': (width, 3, 3, 3), prefix + 'features.1.weight': (width, width),
            prefix + 'features.2.weight': (16, width), prefix + 'classifier.weight': (classes, 16)}


@pytest.mark.parametrize('mode', ['embedding', 'structure', 'auto'])
@pytest.mark.parametrize('own_first', [False, True])
def test_a_head_into_another_network_of_its_names_is_left_out(mode, own_first):
    # the checkpoint's features go to `main.0` (the network as
    # nn.Sequential(*children)); `body` is another network with a
    # `features` of its own and a classifier of the same shape
    src = _features_head()
    own = {'main.0.0.weight': (8, 3, 3, 3), 'main.0.1.weight': (8, 8), 'main.0.2.weight': (16, 8),
           'main.1.weight': (5, 16)}
    other = _features_head('body.', width=4)
    dst = {**own, **other} if own_first else {**other, **own}
    result = associate(src, dst, association=mode)
    assert not any(v.startswith('body.') for v in result.mapping.values()), result.mapping


def test_a_split_model_keeps_its_head():
    # the bulk in `backbone`, whose `fc` is another shape; the head's fc is
    # the checkpoint's: `head` has no child named like the bulk
    mapping = {'conv.weight': 'backbone.conv.weight', 'mid.weight': 'backbone.mid.weight',
               'fc.weight': 'head.fc.weight'}
    dst = list(mapping.values()) + ['backbone.fc.weight']
    assert rival_places(mapping, dst) == {}


@pytest.mark.parametrize('mode', ['embedding', 'structure', 'auto'])
def test_a_head_beside_the_bulk_with_an_empty_place_for_it_is_left_out(mode):
    # no name but the classifier's is shared: the features go to main.0,
    # main.1 is an empty place of the classifier's shapes (seed 9650)
    src = {'stem.weight': (8, 3, 3, 3), 'blocks.0.weight': (8, 8), 'blocks.1.weight': (16, 8),
           'classifier.weight': (5, 16), 'classifier.bias': (5,)}
    dst = {'main.0.0.weight': (8, 3, 3, 3), 'main.0.1.0.weight': (8, 8), 'main.0.1.1.weight': (16, 8),
           'main.1.weight': (5, 16), 'main.1.bias': (5,),
           'body.features.weight': (4, 3, 3, 3), 'body.classifier.1.weight': (5, 16),
           'body.classifier.1.bias': (5,)}
    result = associate(src, dst, association=mode)
    assert not any(v.startswith('body.') for v in result.mapping.values()), result.mapping


def test_a_head_beside_a_bulk_without_a_place_for_it_stays():
    from torch_liberator.rivalsources import stray_parts
    dst = {'backbone.conv.weight': (8, 3), 'backbone.mid.weight': (16, 8),
           'backbone.fc.weight': (10, 16), 'head.fc.weight': (5, 16)}
    mapping = {'conv.weight': 'backbone.conv.weight', 'mid.weight': 'backbone.mid.weight',
               'fc.weight': 'head.fc.weight'}
    assert stray_parts(mapping, dst) == {}
    assert stray_parts(mapping, {k: None for k in dst}) == {}


def test_a_part_most_of_which_fits_empty_places_of_the_bulk_is_left_out_whole():
    # mc3_18 beside r3d_18's children[:-1], an r3d_18 checkpoint: the stem
    # went by name into the sibling `a` (its empty place b.0 has the same
    # tensors), and so did the fc, which `b` has no place for; the part is
    # one mistake, left out whole
    from torch_liberator.rivalsources import stray_parts
    dst = {'a.stem.0.weight': (8, 3, 3), 'a.stem.1.weight': (8,), 'a.layer1.0.weight': (4, 8),
           'a.fc.weight': (5, 16),
           'b.0.0.weight': (8, 3, 3), 'b.0.1.weight': (8,), 'b.1.0.weight': (16, 8),
           'b.2.0.weight': (16, 16), 'b.3.0.weight': (16, 16), 'b.4.0.weight': (16, 16)}
    mapping = {'stem.0.weight': 'a.stem.0.weight', 'stem.1.weight': 'a.stem.1.weight',
               'fc.weight': 'a.fc.weight', 'layer1.0.weight': 'b.1.0.weight',
               'layer2.0.weight': 'b.2.0.weight', 'layer3.0.weight': 'b.3.0.weight',
               'layer4.0.weight': 'b.4.0.weight'}
    assert stray_parts(mapping, dst) == {'stem.0.weight': 'a.stem.0.weight',
                                         'stem.1.weight': 'a.stem.1.weight',
                                         'fc.weight': 'a.fc.weight'}
    # without the stem's empty place in b, the part is where it belongs
    del dst['b.0.0.weight'], dst['b.0.1.weight']
    assert stray_parts(mapping, dst) == {}


def _deep(prefix='', head=True):
    keys = {f'blocks.{i}.conv.weight': (8, 8, 3, 3) for i in range(4)}
    keys.update({f'blocks.{i}.bn.weight': (8,) for i in range(4)})
    keys['stem.weight'] = (8, 3, 3, 3)
    if head:
        keys['classifier.weight'] = (5, 8)
    return {prefix + k: v for k, v in keys.items()}


@pytest.mark.parametrize('mode', ['isomorphism', 'embedding', 'structure', 'auto'])
@pytest.mark.parametrize('classes', [5, 7])
def test_a_head_into_another_network_beside_the_headless_one_is_left_out(mode, classes):
    # mutation fuzz seed 10819 (reduced): a whole network into a model holding it
    # headless beside another network of other blocks with a head of the same
    # shape and name: the bulk fills the headless one whole, the head would
    # be the other network's only tensor from the checkpoint
    other = {f'other.layers.{i}.weight': (16, 16) for i in range(6)}
    other['other.classifier.1.weight'] = (classes, 8)  # (7: a head to shove, seed 10981)
    dst = {**_deep('main.', head=False), **other}
    result = associate(_deep(), dst, association=mode)
    assert 'classifier.weight' not in result.mapping
    assert result.mapping == {k: 'main.' + k for k in _deep(head=False)}


def test_foreign_parts_need_a_bulk_filled_whole():
    # the bulk's own module half empty: nothing says the part is foreign
    from torch_liberator.rivalsources import foreign_parts
    dst = [f'main.{i}.weight' for i in range(10)] + [
        'other.a.weight', 'other.b.weight', 'other.c.weight', 'other.fc.weight']
    mapping = {f'c{i}.weight': f'main.{i}.weight' for i in range(8)}
    mapping['fc.weight'] = 'other.fc.weight'
    assert foreign_parts(mapping, list(mapping), dst) == {}
    mapping.update({f'c{i}.weight': f'main.{i}.weight' for i in range(8, 10)})
    assert foreign_parts(mapping, list(mapping), dst) == {'fc.weight': 'other.fc.weight'}
    # ... nor more than an eighth of the checkpoint's pairs elsewhere
    mapping['a.weight'] = 'other.a.weight'
    assert foreign_parts(mapping, list(mapping), dst) == {}


@pytest.mark.parametrize('mode', ['isomorphism', 'embedding', 'structure', 'auto'])
def test_a_head_from_another_network_beside_the_headless_one_is_left_out(mode):
    # the mirror, on the checkpoint's side (mutation fuzz seed 11346, reduced):
    # a headless network beside another network of other blocks with a head
    # of the model's shape, into the whole network as nn.Sequential(*children)
    other = {f'extractor.layers.{i}.weight': (16, 16) for i in range(6)}
    other['extractor.classifier.1.weight'] = (5, 8)
    src = {**_deep('model.', head=False), **other}
    dst = {k.replace('blocks.', 'body.').replace('classifier.', 'head.1.'): s
           for k, s in _deep().items()}
    result = associate(src, dst, association=mode)
    assert 'extractor.classifier.1.weight' not in result.mapping
    assert all(k.startswith('model.') for k in result.mapping)


def _torchvision_shapes(name, prefix=''):
    from conftest import requires
    model = getattr(requires('torchvision').models, name)(weights=None)
    return {prefix + k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_a_head_by_its_name_alone_is_left_out_when_its_network_fits_nothing():
    # mutation fuzz seed 13322: a resnet50 beside a headless resnext50 in the
    # checkpoint, into a resnext50 whose conv1 is a level down; structure found
    # nothing of the networks and paired the resnet50's fc with the
    # resnext50's by name and shape (seed 12659: the same with the resnet50
    # in the model)
    resnext = _torchvision_shapes('resnext50_32x4d')
    src = {**_torchvision_shapes('resnet50', 'model.'),
           **{'trunk.' + k: s for k, s in resnext.items() if not k.startswith('fc.')}}
    dst = {k.replace('conv1.', 'conv1.extractor.', 1) if k.startswith('conv1.') else k: s
           for k, s in resnext.items()}
    result = associate(src, dst, association='structure')
    assert not [(s, d) for s, d in result.mapping.items() if s.startswith('model.')]


def test_lone_namesakes_needs_another_network_that_fitted_nothing():
    src = {f'net.layer{i}.conv.{t}': (8,) for i in range(4) for t in ('weight', 'bias')}
    src.update({'net.fc.weight': (5, 8), 'net.fc.bias': (5,)})
    dst = {k[4:]: (16,) if 'conv' in k else s for k, s in src.items()}
    head = {'net.fc.weight': 'fc.weight', 'net.fc.bias': 'fc.bias'}
    assert lone_namesakes(head, src, dst) == head
    # one block of the network went to its namesake: the head is its head
    assert lone_namesakes({**head, 'net.layer3.conv.weight': 'layer3.conv.weight'}, src, dst) == {}
    # ... or elsewhere (renamed): the network fitted, and the head with it
    assert lone_namesakes({**head, 'net.layer3.conv.weight': 'layer0.conv.weight'}, src, dst) == {}
    # a part bigger than a quarter of the rest is no lone head
    assert lone_namesakes(head, dict(list(src.items())[2:]), dst) == {}
    # the rest of the same shapes: the same network, only not placed
    assert lone_namesakes(head, src, {k[4:]: s for k, s in src.items()}) == {}


@pytest.mark.parametrize('mode', ['prefix-hack', 'isomorphism', 'auto'])
def test_a_network_saved_under_the_name_of_the_model_s_wrapper_lends_it_nothing(mode):
    # mutation fuzz seed 13978 (reduced): a resnet18 saved as `stage` beside a
    # resnext50 (`core`) in the checkpoint, into a resnext50 wrapped as
    # `stem.stage`: the name modes gave the resnext50 the resnet18's stem by
    # name and shape and shoved its fc (8 wrong), though none of the
    # resnet18's stages fits the resnext50's
    resnext = _torchvision_shapes('resnext50_32x4d')
    src = {**_torchvision_shapes('resnet18', 'stage.'), **{'core.' + k: s for k, s in resnext.items()}}
    dst = {'stem.stage.' + k: s for k, s in resnext.items()}
    result = associate(src, dst, association=mode)
    assert not [s for s in result.mapping if s.startswith('stage.')]


def test_a_lone_shove_is_another_network_s_head():
    # only 'fc' pairs below the root, both sides hold other tensors: the
    # head of another network (its bias, of equal shape, goes with it)
    src = _net(8)
    dst = {'stem.weight': (4, 3, 3, 3), 'fc.weight': (5, 4), 'fc.bias': (5,)}
    mapping = {'fc.weight': 'fc.weight', 'fc.bias': 'fc.bias'}
    assert lone_shoves(mapping, src, dst) == mapping
    # a head of equal shapes is no shove: names alone cannot tell
    dst['fc.weight'] = (5, 16)
    assert lone_shoves(mapping, src, dst) == {}


@pytest.mark.parametrize('mode', ['strict', 'module-hack'])
def test_shoves_into_a_namesake_network_whose_other_parts_pair_nothing_are_left_out(mode):
    # mutation fuzz seed 157 of --wide (reduced): a VGG saved as `trunk`, into
    # a model whose `trunk` is a mobilenet_v3 (the VGG beside it as `base`):
    # both have classifier.0 and classifier.3, of other shapes, and the
    # strict modes shoved the VGG's head into the mobilenet's (4 wrong);
    # both `trunk.features` hold tensors and pair nothing
    vgg = {'features.0.weight': (64, 3, 3, 3), 'features.0.bias': (64,),
           'features.3.weight': (128, 64, 3, 3), 'features.3.bias': (128,),
           'classifier.0.weight': (4096, 25088), 'classifier.0.bias': (4096,),
           'classifier.3.weight': (4096, 4096), 'classifier.3.bias': (4096,)}
    mobile = {'features.0.0.weight': (16, 3, 3, 3), 'features.0.1.weight': (16,),
              'features.1.block.0.0.weight': (16, 1, 3, 3),
              'classifier.0.weight': (1024, 576), 'classifier.0.bias': (1024,),
              'classifier.3.weight': (1000, 1024), 'classifier.3.bias': (1000,)}
    src = {'trunk.' + k: v for k, v in vgg.items()}
    dst = {**{'trunk.' + k: v for k, v in mobile.items()},
           **{'base.' + k: v for k, v in vgg.items()}}
    assert associate(src, dst, association=mode).mapping == {}
    head = {k: k for k in src if '.classifier.' in k}
    assert lone_shoves(head, src, dst) == head
    # a VGG of other widths in `trunk`: its features pair by name, so the
    # shoves are one network's layers of other widths
    wide = {'trunk.' + k: tuple(2 * n for n in v) for k, v in vgg.items()}
    assert lone_shoves({k: k for k in src}, src, wide) == {}
    # ... and so is a head whose model namesake keeps nothing else apart
    assert lone_shoves(head, src, {k: wide[k] for k in head}) == {}


def test_shoves_with_company_or_alone_stay():
    # a wider network of the same names: every layer pairs by name
    src, wide = _net(8), _net(16)
    mapping = {k: k for k in src}
    assert lone_shoves(mapping, src, wide) == {}
    # a classifier alone (nothing else on the checkpoint's side) into a
    # model with fewer classes and more layers
    head = {'fc.weight': (1000, 16), 'fc.bias': (1000,)}
    assert lone_shoves({k: k for k in head}, head, _net(8)) == {}
    # a module's own tensors beside its only child pair too (vit_b_16 into
    # vit_l_16: self_attention.in_proj_weight beside self_attention.out_proj)
    attn = {'blk.attn.in_proj_weight': (24, 8), 'blk.attn.out_proj.weight': (8, 8),
            'blk.mlp.weight': (8, 8)}
    wide_attn = {'blk.attn.in_proj_weight': (48, 16), 'blk.attn.out_proj.weight': (16, 16),
                 'blk.mlp.weight': (16, 16)}
    assert lone_shoves({k: k for k in attn}, attn, wide_attn) == {}
    # under a wrapper the parents are the wrapper's modules
    wrapped = {'module.' + k: v for k, v in _net(16).items()}
    assert lone_shoves({k: 'module.' + k for k in src}, src, wrapped) == {}


@pytest.mark.parametrize('mode', ['prefix-hack', 'embedding', 'isomorphism', 'structure', 'auto'])
def test_a_thin_mapping_through_two_kinds_of_module_is_chance(mode):
    # mutation fuzz seed 1304 of --wide (reduced): a poolformer, keys sorted,
    # into a model holding its stem beside a tiny_vit. The two share
    # stages.1.blocks.{0,1}.mlp.fc{1,2} (one shape, but for unit dimensions)
    # and head.{norm,fc} (other widths): every tree mode and auto loaded the
    # MLPs (8 wrong), prefix-hack and isomorphism shoved the head too. The
    # blocks are of two kinds (norms and layer scales against attn and
    # local_conv), and a head that must be shoved is all that is left
    from conftest import requires
    timm = requires('timm')

    def keys(m, prefix=''):
        return {prefix + k: tuple(v.shape) for k, v in m.state_dict().items()}

    pool = keys(timm.create_model('poolformer_s12', pretrained=False))
    src = dict(sorted(pool.items()))
    dst = {**{'head.' + k: v for k, v in pool.items() if k.startswith('stem.')},
           **keys(timm.create_model('tiny_vit_5m_224', pretrained=False), 'stage.')}
    truth = {k: 'head.' + k for k in pool if k.startswith('stem.')}
    mapping = associate(src, dst, association=mode).mapping
    assert {s: d for s, d in mapping.items() if truth.get(s) != d} == {}
    if mode in ('embedding', 'structure', 'auto'):
        assert mapping == truth


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_part_whose_layer_has_no_room_in_the_bulk_is_no_stray(mode):
    # timm's regnetx_004 into torchvision's regnet_x_400mf: the last stages
    # differ in width, so the bulk is stages 2 and 3 in trunk_output. The
    # stem (a 3x3 convolution from RGB and a BatchNorm of 32) went to the
    # model's stem, beside trunk_output, whose empty first block has
    # BatchNorms of 32: the BatchNorm's five tensors made the stem a stray
    # part, left out (no layer of the bulk has the convolution's shape)
    tvm, timm = requires('torchvision').models, requires('timm')
    from corpus_pairs.cross import regnet_truth

    src = {k: tuple(v.shape) for k, v in timm.create_model('regnetx_004').state_dict().items()}
    dst = {k: tuple(v.shape) for k, v in tvm.regnet_x_400mf(weights=None).state_dict().items()}
    truth = regnet_truth(list(src))
    mapping = associate(src, dst, association=mode).mapping
    assert {k: v for k, v in mapping.items() if truth[k] != v} == {}
    assert mapping['stem.conv.weight'] == 'stem.0.weight'
    assert mapping['stem.bn.running_var'] == 'stem.1.running_var'
