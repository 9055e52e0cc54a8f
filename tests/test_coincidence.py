"""
Tests of :mod:`torch_liberator.coincidence`: shapes that unrelated networks
share by chance are no evidence (a resnet50 checkpoint into densenet121:
structure and auto put its stem and 46 BatchNorm and 1x1 convolution
tensors of layer2 into dense layers of block 2; googlenet got densenet's
stem, two BatchNorms and its classifier). Checkpoints of the same network
in other names (Caffe's, Keras's, a renamed resnet) must still align.
"""
import pytest
import torch

from conftest import requires
from torch_liberator import load_partial_state
from torch_liberator.association import associate
from torch_liberator.coincidence import (
    FEW_SHAPES, MIN_SHAPE_SHARE, MIN_SHARE, MIN_SHARE_OF_LARGER, against_shared_names,
    away_from_their_fit, chance_pairs, few_shapes, lone_items, names_agree, parts_left_unfilled,
    split_from_their_fit,
    split_items, thin_unnamed_pairs, too_thin, unattached_pairs)
from torch_liberator.keygroups import KeyGroups

#: models are built on the meta device unless a test is marked real_tensors
pytestmark = pytest.mark.usefixtures('models_on_meta')


def _stem_and_blocks(stem, body, make):
    """A 7x7 stem with its BatchNorm (3 tensors), then 32 convolutions (64 tensors)."""
    keys = {f'{stem[0]}.weight': (64, 3, 7, 7), f'{stem[1]}.weight': (64,), f'{stem[1]}.bias': (64,)}
    keys.update(make(body))
    return keys


def _conv(path, shape):
    return {f'{path}.weight': shape, f'{path}.bias': shape[:1]}


RESNETISH = _stem_and_blocks(('conv1', 'bn1'), 'layer', lambda p: {
    key: shape for i in range(1, 5) for j in range(4) for k in range(1, 3)
    for key, shape in _conv(f'{p}{i}.{j}.conv{k}', (32 * i + k, 32 * i + j, 3, 3)).items()})
DENSEISH = _stem_and_blocks(('features.conv0', 'features.norm0'), 'features.block', lambda p: {
    key: shape for i in range(1, 5) for j in range(8)
    for key, shape in _conv(f'{p}{i}.layer{j}.conv', (16 * i + j, 8 * j + 1, 1, 1)).items()})


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_stem_shared_by_chance_loads_nothing(mode):
    result = associate(RESNETISH, DENSEISH, association=mode)
    assert result.mapping == {}
    if mode == 'structure':  # and it is said: listed with the one place it fits
        assert result.ambiguous['conv1.weight'] == ('features.conv0.weight',)


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_the_same_network_renamed_still_aligns(mode):
    renamed = {k.replace('conv1.', 'c1.').replace('bn1', 'n1').replace('layer', 'stage'): v
               for k, v in RESNETISH.items()}
    result = associate(RESNETISH, renamed, association=mode)
    assert len(result.mapping) == len(RESNETISH)
    assert result.mapping['layer2.1.conv2.weight'] == 'stage2.1.conv2.weight'


def test_a_norm_away_from_its_layer_is_chance():
    # a bottleneck's bn2 (128) lines up with a dense layer's norm2 (128)
    # while the convolutions around both pair with nothing
    src = KeyGroups({'block.conv1.w': (4, 8), 'block.bn1.w': (4,), 'block.conv2.w': (6, 4),
                     'block.bn2.w': (6,), 'block.conv3.w': (9, 6)})
    dst = KeyGroups({'a.norm1.w': (3,), 'a.conv1.w': (4, 8), 'a.norm2.w': (4,),
                     'b.norm1.w': (5,), 'b.conv1.w': (2, 5), 'b.norm2.w': (6,), 'b.conv2.w': (1, 6)})
    found = [(0, 1), (1, 2), (3, 5)]
    assert unattached_pairs(src, dst, found) == {(3, 5)}
    # a norm before its layer (pre-activation) is attached by the layer after it
    assert unattached_pairs(src, dst, [(1, 2), (2, 3)]) == set()


def test_a_norm_after_one_module_pair_is_attached():
    # a ViT's final norm: after the last block's norms on one side (HF
    # registers them last), after its MLP on the other, the heads unpaired
    hf = KeyGroups({'layer.0.fc1.w': (16, 4), 'layer.0.fc2.w': (4, 16), 'layer.0.ln_a.w': (4,),
                    'layer.0.ln_b.w': (4,), 'norm.w': (4,), 'classifier.w': (2, 4)})
    timm = KeyGroups({'blocks.0.norm1.w': (4,), 'blocks.0.norm2.w': (4,), 'blocks.0.fc1.w': (16, 4),
                      'blocks.0.fc2.w': (4, 16), 'norm.w': (4,), 'head.w': (1000, 4)})
    pairs = [(0, 2), (1, 3), (2, 0), (3, 1), (4, 4)]
    assert unattached_pairs(hf, timm, pairs) == set()
    # a norm inside the module its neighbours were paired into is not after it
    inside = KeyGroups({'blocks.0.norm1.w': (4,), 'blocks.0.norm2.w': (4,),
                        'blocks.0.fc1.w': (16, 4), 'blocks.0.fc2.w': (4, 16),
                        'blocks.0.norm.w': (4,), 'head.w': (1000, 4)})
    assert unattached_pairs(hf, inside, pairs) == {(4, 4)}


def test_too_thin_counts_tensors_of_either_side():
    assert (MIN_SHARE, MIN_SHARE_OF_LARGER) == (0.1, 0.05)
    assert too_thin(1, 10, 20) is False  # a tenth of 10, a twentieth of 20
    assert too_thin(1, 11, 20) is True
    assert too_thin(1, 10, 21) is True  # under a twentieth of the larger side
    assert too_thin(0, 0, 0) is False


def test_a_name_anchor_spares_a_thin_alignment():
    # one block of 12 named alike on both sides: kept although thin
    src = {**{f'other{i}.weight': (i + 1, 7) for i in range(40)},
           'neck.fuse.weight': (8, 8, 3, 3), 'neck.fuse.bias': (8,)}
    dst = {**{f'z{i}.weight': (i + 60, 5) for i in range(40)},
           'fpn.neck.fuse.weight': (8, 8, 3, 3), 'fpn.neck.fuse.bias': (8,)}
    result = associate(src, dst, association='structure')
    assert result.mapping == {'neck.fuse.weight': 'fpn.neck.fuse.weight',
                              'neck.fuse.bias': 'fpn.neck.fuse.bias'}


def test_names_agree_needs_two_module_names_one_a_word():
    assert names_agree('layer1.0.conv1.weight', 'body.layer1.0.conv1.weight')
    assert names_agree('x.head.fc.bias', 'head.fc.bias')
    assert names_agree('fc.weight', 'fc.weight')  # identical keys
    assert not names_agree('features.conv0.weight', 'conv1.weight')
    assert not names_agree('transition1.conv.weight', 'inception3b.branch1.conv.weight')
    assert not names_agree('a.3.1.weight', 'b.3.1.weight')  # positions only
    assert not names_agree('head.fc.weight', 'head.fc.bias')


def test_thin_unnamed_pairs():
    assert thin_unnamed_pairs({'conv1.weight': 'features.conv0.weight'}, 320, 727) == {'conv1.weight'}
    assert thin_unnamed_pairs({'fc.weight': 'fc.weight'}, 320, 727) == set()
    assert thin_unnamed_pairs({}, 320, 727) == set()
    many = {f's{i}': f'd{i}' for i in range(40)}
    assert thin_unnamed_pairs(many, 320, 727) == set()
    # names vouch for their own pairs only: a block by shapes beside a shared classifier
    mixed = {'classifier.1.weight': 'classifier.1.weight',
             'features.14.conv.0.0.weight': 'layers.13.0.layers.0.weight'}
    assert thin_unnamed_pairs(mixed, 314, 262) == {'features.14.conv.0.0.weight'}


@pytest.mark.real_tensors
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_resnet50_into_densenet121_loads_nothing(mode):
    tvm = requires('torchvision').models
    torch.manual_seed(0)
    model = tvm.densenet121(weights=None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = tvm.resnet50(weights=None).state_dict()
    info = load_partial_state(model, state, association=mode, verbose=0)
    assert not any(info['seen'][c] for c in ('full_add', 'partial_add_some', 'partial_add_all'))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_mobilenet_v3_small_into_mnasnet_loads_nothing(mode):
    # the two stems and first blocks line up in order and shape (a 3x3
    # convolution to 16 channels, a depthwise one); with the
    # squeeze-excitation's fc1 taken for mnasnet's pointwise convolution the
    # alignment was not thin: 36 tensors went across (corpus, unrelated pairs)
    tvm = requires('torchvision').models
    result = associate(tvm.mobilenet_v3_small(weights=None).state_dict(),
                       tvm.mnasnet0_5(weights=None).state_dict(), association=mode)
    assert result.mapping == {}


def test_few_shapes_needs_few_kernels_and_under_half_of_the_shared():
    assert (FEW_SHAPES, MIN_SHAPE_SHARE) == (3, 0.5)
    shared = {(i, 8, 3, 3) for i in range(1, 8)}  # seven kernel shapes in common
    run = [(5, 8, 3, 3), (6, 8, 3, 3), (6, 8, 3, 3), (6,)]  # two kernel shapes, a vector
    assert few_shapes(run, shared)
    assert not few_shapes(run, {(5, 8, 3, 3), (6, 8, 3, 3), (7, 8, 3, 3)})  # 2 of 3 shared
    four = {(i, 8, 3, 3) for i in range(1, 5)}
    assert not few_shapes(four, shared | {(i, 8, 3, 3) for i in range(8, 20)})  # 4 > FEW_SHAPES
    assert not few_shapes([], set())


@pytest.mark.parametrize('src, dst', [('resnet18', 'vgg11_bn'), ('resnet18', 'vgg13_bn')])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_last_stage_shared_by_chance_loads_nothing(src, dst, mode):
    # resnet18's layer4 (512-channel 3x3 convs and BatchNorms: 19 tensors, a
    # third of the vgg) went into the vgg's last convolutions (before
    # few_shapes); the vgg's own names are unjudged nowhere: none agree
    tvm = requires('torchvision').models
    result = associate(getattr(tvm, src)(weights=None).state_dict(),
                       getattr(tvm, dst)(weights=None).state_dict(), association=mode)
    assert result.mapping == {}


def test_an_inserted_part_is_another_design():
    # a mobilenet_v2 block into an efficientnet_b0 block: the same expand,
    # depthwise and project layers, and a squeeze-excitation (two groups)
    # between them that the other block has nothing for
    from torch_liberator.coincidence import inserted_parts
    mb = KeyGroups({'f.2.conv.0.0.w': (96, 16), 'f.2.conv.0.1.w': (96,), 'f.2.conv.1.0.w': (96, 1, 3, 3),
                    'f.2.conv.1.1.w': (96,), 'f.2.conv.2.w': (24, 96), 'f.2.conv.3.w': (24,),
                    'f.3.w': (7, 24)})
    eff = KeyGroups({'f.2.0.block.0.0.w': (96, 16), 'f.2.0.block.0.1.w': (96,),
                     'f.2.0.block.1.0.w': (96, 1, 3, 3), 'f.2.0.block.1.1.w': (96,),
                     'f.2.0.block.2.fc1.w': (4, 96), 'f.2.0.block.2.fc2.w': (96, 4),
                     'f.2.0.block.3.0.w': (24, 96), 'f.2.0.block.3.1.w': (24,), 'f.3.w': (9, 24)})
    pairs = {0: 0, 1: 1, 2: 2, 3: 3, 4: 6, 5: 7}
    assert inserted_parts(eff, {j: i for i, j in pairs.items()}) == {0, 1, 2, 3, 6, 7}
    assert inserted_parts(mb, pairs) == set()  # nothing between its pairs
    assert chance_pairs(mb, eff, [(i, 0, j, 0) for i, j in pairs.items()]) == set(pairs.items())
    # a BatchNorm after each convolution in one network only (vgg11 into
    # vgg11_bn) is no other design: single groups
    vgg = KeyGroups({'features.0.w': (8, 3), 'features.3.w': (16, 8), 'features.6.w': (32, 16)})
    vgg_bn = KeyGroups({'features.0.w': (8, 3), 'features.1.w': (8,), 'features.4.w': (16, 8),
                        'features.5.w': (16,), 'features.8.w': (32, 16)})
    assert inserted_parts(vgg_bn, {0: 0, 2: 1, 4: 2}) == set()
    assert inserted_parts(vgg, {0: 0, 1: 2, 2: 4}) == set()


def test_a_part_the_other_block_holds_elsewhere_is_no_other_design():
    # HF's ViT layer registers its attention (query, key, value, output)
    # first and its norms last; torchvision's layer its attention (packed
    # in_proj, out_proj) between ln_1 and ln_2. The attentions pair nothing,
    # the norms and the MLP do: the layers' partners are one unbroken run,
    # but HF's layer has an unpaired attention of its own
    from torch_liberator.coincidence import inserted_parts
    hf = KeyGroups({'l.att.q.w': (8, 8), 'l.att.k.w': (8, 8), 'l.att.v.w': (8, 8),
                    'l.att.out.w': (8, 8), 'l.fc1.w': (32, 8), 'l.fc2.w': (8, 32),
                    'l.before.w': (8,), 'l.after.w': (8,)})
    tv = KeyGroups({'e.ln_1.w': (8,), 'e.sa.in_proj_weight': (24, 8), 'e.sa.out_proj.w': (8, 8),
                    'e.ln_2.w': (8,), 'e.mlp.0.w': (32, 8), 'e.mlp.3.w': (8, 32)})
    partner = {0: 6, 3: 7, 4: 4, 5: 5}  # tv group -> hf group
    assert inserted_parts(tv, partner) == {0, 3, 4, 5}  # without the other side: a design
    assert inserted_parts(tv, partner, hf) == set()
    # an efficientnet block against a mobilenet_v2 block that pairs whole
    # is still another design
    mb = KeyGroups({'b.expand.w': (6, 2), 'b.dw.w': (6, 3, 3), 'b.project.w': (3, 6)})
    eff = KeyGroups({'b.expand.w': (6, 2), 'b.dw.w': (6, 3, 3), 'b.se.fc1.w': (2, 6),
                     'b.se.fc2.w': (6, 2), 'b.project.w': (3, 6)})
    assert inserted_parts(eff, {0: 0, 1: 1, 4: 2}, mb) == {0, 1, 4}


def test_names_vouch_only_for_their_own_pairs_in_a_thin_alignment():
    # two networks that share a stem's names and, by order, one block of
    # shapes: the block is chance, the named stem stays
    src = KeyGroups({'stem.w': (8, 3, 3, 3), 'blk.a.w': (16, 8), 'blk.b.w': (16,),
                     **{f'x{i}.w': (i + 100, 7) for i in range(60)}})
    dst = KeyGroups({'stem.w': (8, 3, 3, 3), 'other.a.w': (16, 8), 'other.b.w': (16,),
                     **{f'y{i}.w': (i + 300, 7) for i in range(60)}})
    pairs = [(0, 0, 0, 0), (1, 0, 1, 0), (2, 0, 2, 0)]
    assert chance_pairs(src, dst, pairs, anchored=[(0, 0)]) == {(1, 1), (2, 2)}


@pytest.mark.parametrize('src, dst', [('convnext_tiny', 'swin_t'), ('swin_t', 'convnext_tiny')])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_block_paired_alone_and_in_part_among_its_equals_is_chance(src, dst, mode):
    # ConvNeXt was designed after Swin: the MLP of each stage's last block
    # (two Linears of one shape) paired with the MLP of the other's, and the
    # stem and the classifier beside them (20-22 tensors); the depthwise
    # convolutions and the attention pair nothing, nor do the other blocks;
    # the patchifying stem's convolution (one key, one shape) may go by name
    tvm = requires('torchvision').models
    result = associate(getattr(tvm, src)(weights=None).state_dict(),
                       getattr(tvm, dst)(weights=None).state_dict(), association=mode)
    assert {k: v for k, v in result.mapping.items() if k != v} == {}


def test_lone_items_need_equal_items_and_a_part():
    def block(i, dw=(4, 1, 7, 7)):
        return {f'blocks.{i}.dw.w': dw, f'blocks.{i}.fc.w': (4, 4)}
    side = KeyGroups({**block(0), **block(1), **block(2)})
    assert lone_items(side, {5}) == {5}          # blocks.2.fc alone among equals
    assert lone_items(side, {4, 5}) == set()     # blocks.2 paired whole
    assert lone_items(side, {1, 5}) == set()     # two items hold pairs
    other = KeyGroups({**block(0, (8, 1, 7, 7)), **block(1, (9, 1, 7, 7)), **block(2)})
    assert lone_items(other, {5}) == set()       # items of different shapes


def _vit_blocks(count, deeper=None):
    keys = {}
    for i in range(count):
        for m, shape in (('norm1', (8,)), ('attn.qkv', (24, 8)), ('attn.proj', (8, 8)),
                         ('norm2', (8,)), ('mlp.fc1', (32, 8)), ('mlp.fc2', (8, 32))):
            if i == deeper and m.startswith('mlp.'):
                m = m.replace('mlp.', 'mlp.stem.')
            keys[f'blocks.{i}.{m}.weight'] = shape
            keys[f'blocks.{i}.{m}.bias'] = shape[:1]
    return keys


def test_a_block_goes_to_one_block():
    # mutation fuzz seed 11418 (reduced): a ViT of 11 blocks into one of 12
    # whose block 10 holds its MLP a level deeper; structure gave block 10's
    # MLP to block 11 (of the same names, which the checkpoint has no block for)
    src, dst = _vit_blocks(11), _vit_blocks(12, deeper=10)
    mapping = associate(src, dst, association='structure').mapping
    assert not any(v.startswith('blocks.11.') for v in mapping.values())
    assert all(k.split('.')[:2] == v.split('.')[:2] for k, v in mapping.items())


def test_a_block_goes_to_the_one_block_that_holds_its_shapes():
    # HF's resnet block (shortcut registered first) against torchvision's
    # (downsample last): block 0's shortcut and first convolution in the
    # model's block 0, its second convolution sent to block 1, where the
    # model's block 0 holds a place of its shape
    src = {'layers.0.shortcut.w': (8, 4, 1, 1), 'layers.0.layer.0.w': (8, 4, 3, 3),
           'layers.0.layer.1.w': (8, 8, 3, 3)}
    dst = {'layer4.0.conv1.w': (8, 4, 3, 3), 'layer4.0.conv2.w': (8, 8, 3, 3),
           'layer4.0.downsample.w': (8, 4, 1, 1),
           'layer4.1.conv1.w': (8, 8, 3, 3), 'layer4.1.conv2.w': (8, 8, 3, 3)}
    mapping = {'layers.0.shortcut.w': 'layer4.0.downsample.w',
               'layers.0.layer.0.w': 'layer4.0.conv1.w', 'layers.0.layer.1.w': 'layer4.1.conv2.w'}
    assert split_from_their_fit(mapping, src, dst) == {'layers.0.layer.1.w'}
    # in its place, nothing to leave out
    mapping['layers.0.layer.1.w'] = 'layer4.0.conv2.w'
    assert split_from_their_fit(mapping, src, dst) == set()
    # a stage spread over the model's blocks holds no block's shapes
    stage = {f'stages.0.{k}': v for k, v in src.items()}
    stage.update({'stages.0.layers.1.layer.0.w': (8, 8, 3, 3),
                  'stages.0.layers.1.layer.1.w': (8, 8, 3, 3)})
    spread = {f'stages.0.{k}': v for k, v in mapping.items()}
    spread.update({'stages.0.layers.1.layer.0.w': 'layer4.1.conv1.w',
                   'stages.0.layers.1.layer.1.w': 'layer4.1.conv2.w'})
    assert split_from_their_fit(spread, stage, dst) == set()


def _bottlenecks(cut):
    """A stage of five blocks cut into named parts, block 0 with a shortcut
    and a wider input, the others alike."""
    keys, block = {}, 0
    for part, n in cut:
        for i in range(n):
            p = f'layer3.{part}.{i}' if part else f'layer3.{i}'
            keys.update({f'{p}.conv1.w': (8, 16 if block == 0 else 8, 1, 1),
                         f'{p}.bn1.w': (8,), f'{p}.conv2.w': (8, 8, 3, 3)})
            if block == 0:
                keys[f'{p}.downsample.0.w'] = (8, 16, 1, 1)
            block += 1
    return keys


def test_a_block_goes_to_its_like_not_to_a_namesake_of_another_design():
    # a resnet50's layer3, its keys sorted, into a model that cut it in
    # two, first = [:2] and the rest kept as layer3.rest: the name modes
    # filled the model's rest.0, one of the alike blocks, from the
    # checkpoint's block 0 (with the shortcut), all but its conv1
    src = _bottlenecks([('', 5)])
    dst = _bottlenecks([('first', 2), ('rest', 3)])
    by_name = {'layer3.0.bn1.w': 'layer3.rest.0.bn1.w', 'layer3.0.conv2.w': 'layer3.rest.0.conv2.w'}
    assert away_from_their_fit(by_name, src, dst) == set(by_name)
    # the like filled already, by anything: the names' pair stands
    assert away_from_their_fit({**by_name, 'layer3.1.bn1.w': 'layer3.first.0.bn1.w'},
                               src, dst) == set()
    # a pair into the like itself, or a block of the same shapes, stands
    assert away_from_their_fit({'layer3.0.bn1.w': 'layer3.first.0.bn1.w',
                                'layer3.2.conv2.w': 'layer3.rest.0.conv2.w'}, src, dst) == set()
    # two likes of its shapes: the names may choose between them
    twice = {**dst, **{k.replace('first', 'again'): v for k, v in dst.items() if '.first.0.' in k}}
    assert away_from_their_fit(by_name, src, twice) == set()
    # below a wrapper list, the same
    assert away_from_their_fit({f'0.{k}': f'0.{v}' for k, v in by_name.items()},
                               {f'0.{k}': v for k, v in src.items()},
                               {f'0.{k}': v for k, v in dst.items()}) == {f'0.{k}' for k in by_name}
    # a checkpoint item whose keys' counterparts, as far up, are no list
    # item of the model says nothing (the whole network as item 0 of a
    # list, against the model's layer3)
    assert away_from_their_fit({f'net.0.{k}': v for k, v in by_name.items()},
                               {f'net.0.{k}': v for k, v in src.items()}, dst) == set()


def test_split_items_keeps_a_block_cut_in_two_whole_items():
    # attention and MLP as two items of the other side's list: both filled whole
    first, second = ('attn', 'norm1', 'norm2'), ('fc1', 'fc2')
    src = [f'blocks.{i}.{m}.w' for i in range(2) for m in first + second]
    dst = [f'layers.{2 * i}.{m}.w' for i in range(2) for m in first]
    dst += [f'layers.{2 * i + 1}.{m}.w' for i in range(2) for m in second]
    mapping = {f'blocks.{i}.{m}.w': f'layers.{2 * i}.{m}.w' for i in range(2) for m in first}
    mapping.update({f'blocks.{i}.{m}.w': f'layers.{2 * i + 1}.{m}.w' for i in range(2) for m in second})
    assert split_items(mapping, src, {k: (4, 4) for k in dst}) == set()
    # ... but an MLP item left short, while the larger part's item has empty
    # places of its shapes, is another block's
    dst += ['layers.1.extra.w', 'layers.3.extra.w']
    assert split_items(mapping, src, {k: (4, 4) for k in dst}) == set()
    dst += [f'layers.{2 * i}.{m}.w' for i in range(2) for m in ('fc1b', 'fc2b')]
    out = {f'blocks.{i}.{m}.w' for i in range(2) for m in second}
    assert split_items(mapping, src, {k: (4, 4) for k in dst}) == out
    assert split_items(mapping, src, {k: (6, 6) if k.endswith('b.w') else (4, 4) for k in dst}) == set()


def _meta_state(arch):
    with torch.device('meta'):
        return getattr(requires('torchvision').models, arch)(weights=None).state_dict()


@pytest.mark.parametrize('src, dst', [('vgg11', 'alexnet'), ('alexnet', 'vgg11')])
@pytest.mark.parametrize('mode', ['embedding', 'structure', 'auto'])
def test_vgg_and_alexnet_share_nothing_but_their_same_named_keys(src, dst, mode):
    # features.{0,3,6,8} of both differ in shapes the other holds nowhere;
    # the classifiers' middle Linear ([4096, 4096] at classifier.3 and
    # classifier.4) and vgg11's features.8 -> AlexNet's features.10 ([256,
    # 256, 3, 3]) were paired by order or suffix (2 or 4 wrong each)
    result = associate(_meta_state(src), _meta_state(dst), association=mode)
    assert {s: d for s, d in result.mapping.items() if s != d} == {}


def test_against_shared_names_spares_a_list_renumbered():
    # a vgg16 into a vgg16_bn: the BatchNorms shift every convolution, so
    # the shared names features.7, 10, ... hold other convolutions, each of
    # a shape the other side holds elsewhere
    src, dst = _meta_state('vgg16'), _meta_state('vgg16_bn')
    src, dst = ({k: tuple(v.shape) for k, v in side.items()} for side in (src, dst))
    assert against_shared_names({'features.2.weight': 'features.3.weight'}, src, dst) == set()
    assert associate(src, dst, association='embedding').mapping['features.2.weight'] == (
        'features.3.weight')
    vgg11, alexnet = ({k: tuple(v.shape) for k, v in _meta_state(arch).items()}
                      for arch in ('vgg11', 'alexnet'))
    assert against_shared_names({'classifier.3.weight': 'classifier.4.weight'},
                                vgg11, alexnet) == {'classifier.3.weight'}


def _convnext_like(stages, names):
    """A small ConvNeXt in torchvision's names (``'tv'``: the classifier's
    norm and Linear at the end) or in a HuggingFace backbone's (``'hf'``:
    a norm on each stage's output, ``hidden_states_norms``, and no head)."""
    keys, prev = {}, 3
    for s, width in enumerate(stages):
        if names == 'tv':
            down, block = f'features.{2 * s}', f'features.{2 * s + 1}.0'
        else:
            down = 'embeddings' if s == 0 else f'encoder.stages.{s}.downsampling_layer'
            block = f'encoder.stages.{s}.layers.0'
        conv = {f'{down}.{int(s > 0)}.weight': (width, prev, 2, 2),
                f'{down}.{int(s > 0)}.bias': (width,)}
        norm = {f'{down}.{int(s == 0)}.weight': (prev if s else width,),
                f'{down}.{int(s == 0)}.bias': (prev if s else width,)}
        keys.update({**conv, **norm} if s == 0 else {**norm, **conv})  # stem: conv, norm
        keys.update({f'{block}.dw.weight': (width, 1, 7, 7), f'{block}.norm.weight': (width,),
                     f'{block}.norm.bias': (width,), f'{block}.pw1.weight': (4 * width, width),
                     f'{block}.pw2.weight': (width, 4 * width)})
        prev = width
    if names == 'tv':
        keys.update({'classifier.0.weight': (prev,), 'classifier.0.bias': (prev,),
                     'classifier.2.weight': (10, prev), 'classifier.2.bias': (10,)})
    else:
        for s, width in enumerate(stages):
            keys.update({f'hidden_states_norms.stage{s + 1}.weight': (width,),
                         f'hidden_states_norms.stage{s + 1}.bias': (width,)})
    return keys


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_head_norm_is_not_a_backbone_output_norm_with_keys_sorted(mode):
    # torchvision's convnext_tiny, keys sorted (a .safetensors file), into
    # HuggingFace's ConvNextBackbone: the classifier's norm and the norm
    # the backbone puts on its last stage's output were the only vectors of
    # their width left on each side, and paired (2 wrong); each sits beside
    # siblings that found no partner, so nothing says they are one norm
    src = dict(sorted(_convnext_like([8, 16, 24], 'tv').items()))
    dst = _convnext_like([8, 16, 24], 'hf')
    mapping = associate(src, dst, association=mode).mapping
    assert 'classifier.0.weight' not in mapping and 'classifier.0.bias' not in mapping
    assert mapping['features.5.0.pw1.weight'] == 'encoder.stages.2.layers.0.pw1.weight'
    # in registration order it was left out already (a norm beside no layer)
    assert 'classifier.0.weight' not in associate(dict(_convnext_like([8, 16, 24], 'tv')), dst,
                                                  association=mode).mapping


def _swin_like(names, widths=(8, 16, 32, 64), depth=2):
    """A small Swin in torchvision's names (``'tv'``: ``features.N``, packed
    ``qkv``, a final norm and head) or in a HuggingFace ``SwinBackbone``'s
    (``'hf'``: three Linears for ``qkv``, the patch merging at the end of
    each stage, a norm on each stage's output and no head)."""
    def lin(path, out, inp, bias=True):
        return {f'{path}.weight': (out, inp), **({f'{path}.bias': (out,)} if bias else {})}

    def norm(path, w):
        return {f'{path}.weight': (w,), f'{path}.bias': (w,)}

    if names == 'tv':
        keys = {'features.0.0.weight': (widths[0], 3, 4, 4), 'features.0.0.bias': (widths[0],),
                **norm('features.0.2', widths[0])}
    else:
        keys = {'embeddings.patch_embeddings.projection.weight': (widths[0], 3, 4, 4),
                'embeddings.patch_embeddings.projection.bias': (widths[0],),
                **norm('embeddings.norm', widths[0])}
    for s, w in enumerate(widths):
        for b in range(depth):
            heads = 3 * 2 ** s
            if names == 'tv':
                p = f'features.{2 * s + 1}.{b}'
                keys.update({**norm(f'{p}.norm1', w),
                             f'{p}.attn.relative_position_bias_table': (169, heads),
                             f'{p}.attn.relative_position_index': (2401,),
                             **lin(f'{p}.attn.qkv', 3 * w, w), **lin(f'{p}.attn.proj', w, w),
                             **norm(f'{p}.norm2', w), **lin(f'{p}.mlp.0', 4 * w, w),
                             **lin(f'{p}.mlp.3', w, 4 * w)})
            else:
                p = f'encoder.layers.{s}.blocks.{b}'
                keys.update({**norm(f'{p}.layernorm_before', w),
                             f'{p}.attention.self.relative_position_bias_table': (169, heads),
                             f'{p}.attention.self.relative_position_index': (2401,),
                             **{k: v for part in ('query', 'key', 'value')
                                for k, v in lin(f'{p}.attention.self.{part}', w, w).items()},
                             **lin(f'{p}.attention.output.dense', w, w),
                             **norm(f'{p}.layernorm_after', w),
                             **lin(f'{p}.intermediate.dense', 4 * w, w),
                             **lin(f'{p}.output.dense', w, 4 * w)})
        if s + 1 < len(widths):
            merge = f'features.{2 * s + 2}' if names == 'tv' else f'encoder.layers.{s}.downsample'
            keys.update({**lin(f'{merge}.reduction', 2 * w, 4 * w, bias=False),
                         **norm(f'{merge}.norm', 4 * w)})
    if names == 'tv':
        keys.update({**norm('norm', widths[-1]), **lin('head', 10, widths[-1])})
    else:
        for s, w in enumerate(widths):
            keys.update(norm(f'hidden_states_norms.stage{s + 1}', w))
    return keys


@pytest.mark.parametrize('reverse', [False, True])
def test_a_part_given_one_norm_does_not_unsettle_the_network_beside_it(reverse):
    # torchvision's swin_t into HuggingFace's SwinBackbone (UperNet's and
    # Mask2Former's): the final norm went into hidden_states_norms.stage4,
    # so two parts of the model were left short (the encoder lacks query,
    # key and value, the stage norms all but one), and the encoder could
    # hold that norm: both were taken for alternatives and nothing loaded
    # (0 of 145). Only the part whose pairs the other could hold is in
    # doubt: the encoder's 109 tensors load, the lone norm does not
    src, dst = _swin_like('tv'), _swin_like('hf')
    if reverse:
        src, dst = dst, src
    mapping = associate(src, dst, association='structure').mapping
    # every block's norms and MLP (8 blocks of 8 tensors), the stem and
    # the patch merging (13); the out projection, the position table and
    # its index (8 blocks of 4: query, key and value are set aside against
    # the packed qkv, test_fusedruns); only the packed qkv, the final norm
    # and the head have no place
    tv_side = mapping if not reverse else {v: k for k, v in mapping.items()}
    assert sum('mlp' in k or 'norm' in k for k in tv_side if k.startswith('features.')) >= 64
    assert tv_side['features.7.1.mlp.3.weight'] == 'encoder.layers.3.blocks.1.output.dense.weight'
    assert tv_side['features.7.1.attn.proj.weight'] == (
        'encoder.layers.3.blocks.1.attention.output.dense.weight')
    assert len(mapping) == 109
    assert not any('hidden_states_norms' in k + v for k, v in mapping.items())
    assert 'norm.weight' not in mapping and 'norm.weight' not in mapping.values()


def test_with_keys_sorted_a_final_norm_is_not_one_of_the_stage_output_norms():
    # the same, keys sorted (a .safetensors file): the attention set aside
    # (fusedruns), the blocks pair by what they hold, and the final norm
    # was left the only one of its width beside hidden_states_norms.stage4,
    # whose three siblings found no partner: it went there (2 wrong)
    src, dst = dict(sorted(_swin_like('tv').items())), _swin_like('hf')
    mapping = associate(src, dst, association='structure').mapping
    assert not any('hidden_states_norms' in v for v in mapping.values())
    assert len(mapping) == 109


def test_parts_left_unfilled_doubts_only_a_part_the_other_could_hold():
    side = KeyGroups({'enc.0.w': (4, 3), 'enc.1.w': (5, 4), 'enc.2.w': (4,), 'enc.3.w': (6, 5),
                      'outs.a.w': (4,), 'outs.b.w': (5,)})
    # enc left short (enc.3 open), outs too (outs.b); enc could hold the
    # one norm outs got, outs none of enc's kernels: a norm says nothing of
    # enc, whose pairs stay
    assert parts_left_unfilled(side, {0, 1, 2, 4}) == {4}
    # a kernel that either could hold: two alternatives, both in doubt
    side = KeyGroups({'enc.0.w': (4, 3), 'enc.1.w': (5, 4), 'enc.2.w': (4,), 'enc.3.w': (6, 5),
                      'outs.a.w': (4, 3), 'outs.b.w': (5,)})
    assert parts_left_unfilled(side, {1, 2, 4}) == {1, 2, 4}
