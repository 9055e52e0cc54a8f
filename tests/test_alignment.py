"""
The structure solver (torch_liberator.alignment) and the 'structure' and
'auto' associations.

Pure cases use key -> shape dicts. Real pairs are judged by values: every
source tensor gets its own constant value, the mapping copies it, and the
value read back from each model tensor names the source tensor it holds;
that is compared with a ground truth built from parameter identity, or,
across libraries, with equal outputs (eval mode, same input).
"""
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import bn
from torch_liberator import alignment
from torch_liberator.alignment import (
    StructureSides, align_structure, find_name_conflicts)
from torch_liberator.association import associate


def conv(prefix, o, i, k=3, bias=False):
    keys = {f'{prefix}.weight': (o, i, k, k)}
    if bias:
        keys[f'{prefix}.bias'] = (o,)
    return keys


def linear(prefix, o, i):
    return {f'{prefix}.weight': (o, i), f'{prefix}.bias': (o,)}


# --- pure cases ------------------------------------------------------------

def test_renamed_modules_pair_by_order_and_shape():
    src = {**conv('conv1', 8, 3), **bn('bn1', 8), **conv('layer1.0.conv1', 8, 8),
           **bn('layer1.0.bn1', 8), **linear('fc', 10, 8)}
    dst = {**conv('c1', 8, 3), **bn('n1', 8), **conv('stage1.0.c1', 8, 8),
           **bn('stage1.0.n1', 8), **linear('head', 10, 8)}
    result = align_structure(src, dst)
    assert result.mapping == dict(zip(src, dst))
    assert result.ambiguous == {}


def test_two_equally_good_places_are_ambiguous_not_guessed():
    src = {**conv('conv', 4, 3), **bn('bn', 4)}
    dst = {**conv('a.conv', 4, 3), **bn('a.bn', 4),
           **conv('b.conv', 4, 3), **bn('b.bn', 4)}
    result = align_structure(src, dst)
    assert result.mapping == {}
    assert result.ambiguous['conv.weight'] == ('a.conv.weight', 'b.conv.weight')
    assert result.ambiguous['bn.running_var'] == ('a.bn.running_var',
                                                  'b.bn.running_var')


def test_frozen_batchnorm_gets_the_four_tensors_it_has():
    src = {**conv('conv1', 8, 3), **bn('bn1', 8), **linear('fc', 10, 8)}
    dst = {**conv('backbone.body.conv1', 8, 3),
           **bn('backbone.body.bn1', 8, tracked=False),
           **conv('rpn.conv', 8, 8)}
    result = align_structure(src, dst)
    assert result.mapping == {
        'conv1.weight': 'backbone.body.conv1.weight',
        'bn1.weight': 'backbone.body.bn1.weight',
        'bn1.bias': 'backbone.body.bn1.bias',
        'bn1.running_mean': 'backbone.body.bn1.running_mean',
        'bn1.running_var': 'backbone.body.bn1.running_var'}


def test_a_module_never_gets_tensors_of_another_kind_of_module():
    # a Linear's bias has a BatchNorm's shape; the groups do not fit
    src = {'proj.weight': (4, 4), 'proj.bias': (4,)}
    dst = bn('norm', 4)
    assert align_structure(src, dst).mapping == {}


def test_a_norm_tied_between_two_places_follows_the_layer_before_it():
    # Keras names one unit per convolution (conv2_block1_0_conv, _0_bn: the
    # shortcut, registered first) where torchvision nests the block; the two
    # 8-channel BatchNorms tie by shape and order, and no parent module says
    # which is which: the convolution registered just before each does
    src = {'stem_conv.weight': (4, 3, 7, 7), **bn('stem_bn', 4, tracked=False),
           'b_0_conv.weight': (8, 4, 1, 1), **bn('b_0_bn', 8, tracked=False),
           'b_1_conv.weight': (2, 4, 1, 1), **bn('b_1_bn', 2, tracked=False),
           'b_2_conv.weight': (2, 2, 3, 3), **bn('b_2_bn', 2, tracked=False),
           'b_3_conv.weight': (8, 2, 1, 1), **bn('b_3_bn', 8, tracked=False)}
    dst = {'conv1.weight': (4, 3, 7, 7), **bn('bn1', 4, tracked=False),
           'layer1.0.conv1.weight': (2, 4, 1, 1), **bn('layer1.0.bn1', 2, tracked=False),
           'layer1.0.conv2.weight': (2, 2, 3, 3), **bn('layer1.0.bn2', 2, tracked=False),
           'layer1.0.conv3.weight': (8, 2, 1, 1), **bn('layer1.0.bn3', 8, tracked=False),
           'layer1.0.downsample.0.weight': (8, 4, 1, 1), **bn('layer1.0.downsample.1', 8, tracked=False)}
    order = ['stem_conv', 'stem_bn', 'b_1_conv', 'b_1_bn', 'b_2_conv', 'b_2_bn', 'b_3_conv',
             'b_3_bn', 'b_0_conv', 'b_0_bn']
    truth = dict(zip([k for m in order for k in src if k.startswith(m + '.')], dst))
    for mode in ('structure', 'auto'):
        result = associate(src, dst, association=mode)
        assert result.mapping == {k: truth[k] for k in src}
        # and the other way round: the model's BatchNorms tied
        result = associate(dst, src, association=mode)
        assert result.mapping == {v: k for k, v in truth.items()}
    # with the shortcut's convolution of the block's shape, nothing tells
    # the two apart: both units stay ties
    src['b_0_conv.weight'] = dst['layer1.0.downsample.0.weight'] = (8, 2, 1, 1)
    result = associate(src, dst, association='structure')
    assert not any(k.startswith(('b_0_', 'b_3_')) for k in result.mapping)


def test_a_layer_with_a_bias_is_not_one_without():
    # a squeeze-excitation's fc1 (a 1x1 convolution with a bias) lined up
    # with mnasnet's pointwise convolution (no bias) by order and shape:
    # its weight went there and its bias nowhere
    src = {**conv('stem', 8, 3), **bn('stem_bn', 8), **conv('se.fc1', 4, 8, 1, bias=True),
           **conv('se.fc2', 8, 4, 1, bias=True), **linear('head', 10, 8)}
    dst = {**conv('c0', 8, 3), **bn('n0', 8), **conv('pw', 4, 8, 1), **bn('pw_bn', 4),
           **linear('classifier', 10, 8)}
    mapping = align_structure(src, dst).mapping
    assert 'se.fc1.weight' not in mapping
    assert mapping['stem.weight'] == 'c0.weight'
    # under its own name it is the same layer (an FPN's convolution, biased
    # in fasterrcnn's and followed by a BatchNorm instead in fasterrcnn_v2's)
    dst = {**conv('stem', 8, 3), **bn('stem_bn', 8), **conv('se.fc1', 4, 8, 1),
           **conv('se.fc2', 8, 4, 1, bias=True), **linear('head', 10, 8)}
    assert align_structure(src, dst).mapping['se.fc1.weight'] == 'se.fc1.weight'


def test_order_is_a_hint_unique_shapes_pair_out_of_order():
    # timm puts pos_embed before the patch conv, torchvision after it
    src = {'cls_token': (1, 1, 4), 'pos_embed': (1, 5, 4),
           **conv('patch_embed.proj', 4, 3, 2, bias=True),
           **linear('blocks.0.fc1', 8, 4), **linear('head', 10, 4)}
    dst = {'class_token': (1, 1, 4), **conv('conv_proj', 4, 3, 2, bias=True),
           'encoder.pos_embedding': (1, 5, 4),
           **linear('encoder.layers.0.mlp.0', 8, 4),
           **linear('heads.head', 10, 4)}
    result = align_structure(src, dst)
    assert result.mapping == dict(zip(['cls_token', 'pos_embed'],
                                      ['class_token', 'encoder.pos_embedding'])) | {
        'patch_embed.proj.weight': 'conv_proj.weight',
        'patch_embed.proj.bias': 'conv_proj.bias',
        'blocks.0.fc1.weight': 'encoder.layers.0.mlp.0.weight',
        'blocks.0.fc1.bias': 'encoder.layers.0.mlp.0.bias',
        'head.weight': 'heads.head.weight', 'head.bias': 'heads.head.bias'}


def test_layer_scale_matches_across_unit_dimensions():
    src = {'blocks.0.gamma': (8,), **conv('blocks.0.conv_dw', 8, 1, 7)}
    dst = {'features.0.layer_scale': (8, 1, 1),
           **conv('features.0.block.0', 8, 1, 7)}
    assert align_structure(src, dst).mapping == {
        'blocks.0.gamma': 'features.0.layer_scale',
        'blocks.0.conv_dw.weight': 'features.0.block.0.weight'}


def test_a_new_layer_under_a_shared_naming_scheme_is_not_the_old_one():
    # the README's custom models: names agree everywhere else, so a layer
    # whose name is another word is another layer, whatever its shape
    body = {**conv('conv1', 8, 3), **bn('bn1', 8), **conv('layer1.0.conv1', 8, 8)}
    src = {**{'backbone.' + k: v for k, v in body.items()},
           **linear('custom_model2_layer', 1, 1)}
    dst = {**{'module.' + k: v for k, v in body.items()},
           **linear('custom_model1_layer', 1, 1)}
    mapping = align_structure(src, dst).mapping
    assert mapping == {'backbone.' + k: 'module.' + k for k in body}


def test_an_inserted_level_is_not_a_disagreement():
    # timm swin's head.fc is torchvision swin's head
    src = {**linear('layers.0.mlp.fc1', 8, 4), **bn('norm', 4),
           **linear('head.fc', 10, 4)}
    dst = {**linear('features.0.mlp.fc1', 8, 4), **bn('norm', 4),
           **linear('head', 10, 4)}
    mapping = align_structure(src, dst).mapping
    assert mapping['head.fc.weight'] == 'head.weight'
    assert len(mapping) == len(src)


def test_siblings_decide_between_equal_places():
    # the stem's conv could go to either backbone; its sibling fc went to b
    src = {**conv('conv1', 4, 3), **conv('layer1.0.conv1', 4, 4),
           **linear('fc', 10, 4)}
    dst = {**conv('a.conv1', 4, 3), **conv('b.conv1', 4, 3),
           **conv('b.layer1.0.conv1', 4, 4), **linear('b.fc', 10, 4)}
    mapping = align_structure(src, dst).mapping
    assert mapping == {'conv1.weight': 'b.conv1.weight',
                       'layer1.0.conv1.weight': 'b.layer1.0.conv1.weight',
                       'fc.weight': 'b.fc.weight', 'fc.bias': 'b.fc.bias'}


def test_batchnorms_do_not_slide_past_their_convolutions():
    # detectron2 registers a block's shortcut first and keeps each norm
    # inside its conv; torchvision lists the downsample last. Counting
    # tensors, the BatchNorms (five each) line up one place off; counting
    # modules, the convolutions keep them in place: the solver must not pick
    # the first. Two stages of two blocks, the first block with a shortcut.
    src, dst, truth = {}, {}, {}
    for stage, (c_in, c) in enumerate([(4, 8), (8, 16)]):
        for b in range(2):
            s, d = f'res{stage + 2}.{b}.', f'layer{stage + 1}.{b}.'
            parts = [('shortcut', 'downsample.0', 1)] if b == 0 else []
            parts += [('conv1', 'conv1', 3), ('conv2', 'conv2', 3)]
            for name, _, k in parts:
                src.update({**conv(s + name, c, c_in if name != 'conv2' else c, k=k),
                            **bn(s + name + '.norm', c)})
            for name, new, k in sorted(parts, key=lambda part: part[0] == 'shortcut'):
                norm = 'downsample.1' if name == 'shortcut' else 'bn' + name[-1]
                dst.update({**conv(d + new, c, c_in if name != 'conv2' else c, k=k),
                            **bn(d + norm, c)})
                truth[s + name + '.weight'] = d + new + '.weight'
                for t in bn('', c):
                    truth[s + name + '.norm' + t] = d + norm + t
            c_in = c
    assert set(truth) == set(src) and set(truth.values()) == set(dst)
    for a, b, want in ((src, dst, truth), (dst, src, {v: k for k, v in truth.items()})):
        result = align_structure(a, b)
        assert {k: v for k, v in result.mapping.items() if want[k] != v} == {}


def test_a_list_cut_in_two_and_renumbered_is_recovered():
    # deeplab-style: features[:1] as low.0 and features[1:] as high.0..4;
    # high.1.conv shares its name with features.1.conv but not its shapes
    src, truth = {}, {}
    widths = [4, 8, 8, 16, 16, 32]
    c_in = 3
    for n, c in enumerate(widths):
        side, m = ('low', n) if n < 1 else ('high', n - 1)
        for k, v in {**conv(f'features.{n}.conv', c, c_in), **bn(f'features.{n}.bn', c)}.items():
            src[k] = v
            truth[k] = k.replace(f'features.{n}.', f'{side}.{m}.')
        c_in = c
    dst = {truth[k]: v for k, v in src.items()}
    result = align_structure(src, dst)
    assert result.mapping == truth


def test_keys_without_shapes_are_never_paired():
    src = {'a.weight': None, 'b.weight': (3,)}
    dst = {'x.weight': (2,), 'y.weight': (3,)}
    assert align_structure(src, dst).mapping == {'b.weight': 'y.weight'}


def test_gaps_above_max_cells():
    src = {**linear('x', 4, 4), **linear('y', 4, 4), **linear('head', 9, 4)}
    dst = {**linear('p', 4, 4), **linear('q', 4, 4), **linear('r', 4, 4),
           **linear('out', 9, 4)}
    # only inserted modules: exact without the dynamic programming; each
    # source module lies between its leftmost and rightmost embedding
    result = align_structure(src, dst, max_cells=0)
    assert result.mapping == {'head.weight': 'out.weight',
                              'head.bias': 'out.bias'}
    assert result.ambiguous['x.weight'] == ('p.weight', 'q.weight')
    assert result.ambiguous['y.bias'] == ('q.bias', 'r.bias')
    # inserted and removed modules: left out, listed with the candidates
    src = {**linear('x', 4, 4), **linear('z', 5, 5), **linear('head', 9, 4)}
    result = align_structure(src, dst, max_cells=0)
    assert result.mapping == {'head.weight': 'out.weight',
                              'head.bias': 'out.bias'}
    assert result.ambiguous['x.weight'] == ('p.weight', 'q.weight', 'r.weight')
    assert 'z.weight' not in result.ambiguous
    with pytest.raises(ValueError, match=r'max_cells=-1 must be >= 0'):
        align_structure(src, dst, max_cells=-1)


def test_empty_sides():
    assert align_structure({}, {'a.w': (1,)}) == ({}, {})
    assert align_structure({'a.w': (1,)}, {}) == ({}, {})


def test_association_structure_needs_shapes():
    with pytest.raises(ValueError, match=r"association='structure' needs "
                       r'tensor shapes, but dst gives keys only'):
        associate({'a.w': (1,)}, ['b.w'], association='structure')


def test_auto_takes_an_exact_mode_when_it_explains_everything():
    src = {'module.' + k: v for k, v in bn('bn', 4).items()}
    dst = bn('bn', 4)
    result = associate(src, dst, association='auto')
    assert result.association == 'module-hack'
    assert result.mapping == {'module.' + k: k for k in dst}
    assert associate(dst, dst, association='auto').association == 'strict'


def _vit_like():
    src = {'cls_token': (1, 1, 4), 'pos_embed': (1, 5, 4),
           **conv('patch_embed.proj', 4, 3, 2, bias=True),
           **linear('blocks.0.mlp.fc1', 8, 4), **linear('blocks.0.mlp.fc2', 4, 8),
           **linear('head', 10, 4)}
    dst = {'class_token': (1, 1, 4), **conv('conv_proj', 4, 3, 2, bias=True),
           'encoder.pos_embedding': (1, 5, 4),
           **linear('encoder.layers.0.mlp.0', 8, 4),
           **linear('encoder.layers.0.mlp.3', 4, 8), **linear('heads.head', 10, 4)}
    return src, dst


@pytest.mark.parametrize('case', ['names', 'structure'])
def test_auto_takes_the_mode_placing_most_fitting_tensors(case):
    if case == 'names':
        body = {**conv('conv1', 8, 3), **bn('bn1', 8)}
        src = {**body, **linear('fc', 10, 8)}
        dst = {**{'backbone.' + k: v for k, v in body.items()},
               **linear('classifier', 5, 8)}
    else:
        src, dst = _vit_like()
    result = associate(src, dst, association='auto')
    placed = {mode: associate(src, dst, association=mode).mapping
              for mode in ('prefix-hack', 'isomorphism', 'embedding', 'structure')}
    if case == 'names':
        # every mode places the 6 backbone tensors and the head has no
        # place of its shape: the exact prefix-hack already places all
        # that can be placed, and auto stops there
        assert result.association == 'prefix-hack'
        assert result.mapping == {k: 'backbone.' + k for k in body}
        assert placed['structure'] == placed['isomorphism'] == result.mapping
    else:
        assert result.association == 'structure'
        assert len(result.mapping) == len(src)
        assert all(len(placed[mode]) < len(src)
                   for mode in ('isomorphism', 'embedding'))
    assert result.mapping == placed[result.association]


def test_auto_without_shapes_compares_the_name_modes():
    src, dst = _vit_like()
    result = associate(list(src), list(dst), association='auto')
    assert result.association in ('isomorphism', 'embedding')
    assert result.mapping == associate(list(src), list(dst),
                                       association=result.association).mapping


# --- property tests: random trees, fresh names ------------------------------

def _random_tree(rng, depth=0, unique=None, ids=None):
    """A module: (own tensors [(name, shape, id)], children [(name, module)]).
    Every tensor gets an id (the ground truth survives renaming); new
    modules (``ids`` None) get id None. With ``unique`` (a counter), every
    module gets its own sizes."""
    def size():
        if unique is not None:
            unique[0] += 1
            return unique[0] + 1
        return rng.choice((4, 8))

    def tensors(*named):
        out = []
        for name, shape in named:
            out.append((name, shape, None if ids is None else len(ids)))
            if ids is not None:
                ids.append(None)
        return out

    if depth >= 3 or (depth and rng.random() < 0.35):
        kind = rng.choice(('conv', 'bn', 'linear', 'ln'))
        c = size()
        if kind == 'conv':
            return (tensors(('weight', (c, c, 3, 3))), [])
        if kind == 'bn':
            return (tensors(('weight', (c,)), ('bias', (c,)),
                            ('running_mean', (c,)), ('running_var', (c,)),
                            ('num_batches_tracked', ())), [])
        if kind == 'linear':
            fan_in = size() if unique is not None else c
            return (tensors(('weight', (c, fan_in)), ('bias', (c,))), [])
        return (tensors(('weight', (c,)), ('bias', (c,))), [])
    own = tensors(('gamma', (size(),))) if rng.random() < 0.2 else []
    sequential = rng.random() < 0.5
    children = [(str(k) if sequential else f'm{k}',
                 _random_tree(rng, depth + 1, unique, ids))
                for k in range(rng.randint(1, 4))]
    return (own, children)


def _renamed(tree, rng, insert=0.0, permute=False, counter=None):
    """The same tensors under fresh module names (Sequential indices stay
    integers, shifted); optionally new modules inserted (no counterpart)
    and siblings permuted."""
    counter = counter if counter is not None else [0]
    own, children = tree
    out = []
    for name, child in children:
        counter[0] += 1
        out.append((name.isdigit(), f'r{counter[0]}',
                    _renamed(child, rng, insert, permute, counter)))
    if insert and children and rng.random() < insert:
        counter[0] += 1
        new = _random_tree(rng, depth=3)
        out.insert(rng.randint(0, len(out)), (out[0][0], f'new{counter[0]}', new))
    if permute:
        rng.shuffle(out)
    # Sequential-style children are numbered again, from 3: positions shift
    return (own, [(str(k + 3) if digit else fresh, child)
                  for k, (digit, fresh, child) in enumerate(out)])


def _flatten(tree, prefix, out):
    """State-dict order: own tensors, then children."""
    own, children = tree
    for name, shape, ident in own:
        out.append((prefix + name, shape, ident))
    for name, child in children:
        _flatten(child, f'{prefix}{name}.', out)
    return out


def _pair(seed, insert=0.0, permute=False, unique=False):
    rng = random.Random(seed)
    tree = _random_tree(rng, unique=[0] if unique else None, ids=[])
    src = _flatten(tree, '', [])
    dst = _flatten(_renamed(tree, rng, insert, permute), '', [])
    dst_of = {ident: key for key, _, ident in dst if ident is not None}
    truth = {key: dst_of[ident] for key, _, ident in src}
    return ({k: s for k, s, _ in src}, {k: s for k, s, _ in dst}, truth)


def _assert_never_wrong(mapping, truth):
    assert len(set(mapping.values())) == len(mapping)
    wrong = {k: v for k, v in mapping.items() if truth.get(k) != v}
    assert wrong == {}


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_property_renamed_trees_are_recovered_completely(seed):
    src, dst, truth = _pair(seed)
    result = align_structure(src, dst)
    _assert_never_wrong(result.mapping, truth)
    assert result.mapping == truth


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.booleans())
def test_property_inserted_modules_never_cause_a_wrong_pair(seed, reverse):
    # modules with no counterpart on one side, shapes drawn from two sizes:
    # every optimal alignment contains the truth, so a kept pair is true
    src, dst, truth = _pair(seed, insert=0.5)
    if reverse:
        src, dst, truth = dst, src, {v: k for k, v in truth.items()}
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


@pytest.mark.parametrize('seed', [264, 892, 3650, 5720, 143521454])
@pytest.mark.parametrize('reverse', [False, True])
def test_a_module_of_the_same_shapes_but_another_tree_is_no_fit(seed, reverse):
    # seeds of the property above. 892: the source's last conv is a
    # top-level sibling ('1') while the model's module '3' of the same
    # shapes holds its last conv inside its second child (the nestings
    # cross); 264: a two-group source fits an inserted module as well as
    # the right one (too short to tell); 3650 and 5720: the same depths,
    # but the source's first two BatchNorms share a parent that the
    # model's do not (not the same tree); 143521454 (reversed): the
    # model's linear and conv sit three levels below its root, under
    # modules of one child ('0.0.0', '1.m0.0'), the checkpoint module
    # 'r6''s directly below it: the same spans, but not the same tree.
    # Each put one module in a wrong place through whole_fit
    src, dst, truth = _pair(seed, insert=0.5)
    if reverse:
        src, dst, truth = dst, src, {v: k for k, v in truth.items()}
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


@pytest.mark.parametrize('seed, reverse', [
    (2530494479, True), (1803954443, True), (1333814097, True), (1340870464, True),
    (1907382449, False), (2472547440, True)])
def test_a_module_the_order_leaves_is_not_placed_by_a_few_coinciding_shapes(seed, reverse):
    # seeds of the property above, drawn at random: the order-free
    # alignment, tried when the order leaves a tenth out, paired a module
    # of two to four groups with one holding an inserted level of the same
    # shapes; only modules of NESTING_FIT_MIN groups may add pairs now
    src, dst, truth = _pair(seed, insert=0.5)
    if reverse:
        src, dst, truth = dst, src, {v: k for k, v in truth.items()}
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


def test_a_free_norm_is_proposed_for_one_place_only():
    # a seed of the property above, drawn at random: the checkpoint's
    # '5.3' (a BatchNorm and a Linear that pair into '2.0') and its '5'
    # both reach the model's '2', whose one free norm '2.2' each proposed
    # for its own free norm ('5.3.5' and '5.5', both named '5', which made
    # the name pair '5' -> '2' look like it recurred): '2.2' was given
    # twice, and the mapping was not one to one. Two proposals for one
    # place are a tie: neither is made
    src, dst, truth = _pair(2907331711, insert=0.5)
    src, dst, truth = dst, src, {v: k for k, v in truth.items()}
    mapping = align_structure(src, dst).mapping
    _assert_never_wrong(mapping, truth)
    assert '2.2.weight' not in mapping.values()


def _sorted_pair(seed, reverse, side, insert=0.5):
    # a pair of _pair, perhaps reversed, with 'src', 'dst', 'both' or
    # 'none' of its sides' keys sorted by name
    src, dst, truth = _pair(seed, insert=insert)
    if reverse:
        src, dst, truth = dst, src, {v: k for k, v in truth.items()}
    if side in ('src', 'both'):
        src = dict(sorted(src.items()))
    if side in ('dst', 'both'):
        dst = dict(sorted(dst.items()))
    return src, dst, truth


@pytest.mark.parametrize('seed, reverse, side', [
    # three, six and nine keys sorted by name, their modules listing bias
    # first: taken for registration order, too few to tell, the order sent
    # a BatchNorm's weight and bias to a norm's, two gammas each into the
    # other's module, and a conv to the wrong one of two (2, 2 and 1 wrong)
    (3620677283, True, 'dst'), (1934010636, False, 'src'), (969517475, False, 'dst'),
    # a norm of a weight and a bias, beside its conv in a module of two,
    # sent to the group registered after the conv's partner: a BatchNorm
    # inserted there, not the norm after it (2 wrong)
    (4141564112, False, 'src'),
])
def test_sorted_keys_a_few_keys_or_a_norm_is_not_misplaced(seed, reverse, side):
    # seeds of the property with one side's keys sorted, wrong before
    src, dst, truth = _sorted_pair(seed, reverse, side)
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


@pytest.mark.parametrize('seed, reverse, side', [
    # the module of one side's shapes is, on the other, a module that lost
    # a level, or one with a module inserted; the one below it holds the
    # same shapes. 2453425757: the checkpoint's 3.4 (a conv, BatchNorms of
    # 4 and 8, two norms) holds what the model's 0 does (a BatchNorm of 8
    # beside a block, 0.0 and 0.1), but the truth is 3 -> 0: its BatchNorm
    # 3.3 is the model's 0.0, and 3.4.5 is inserted (5 wrong); 2068700927:
    # the checkpoint's 3.3 holds the model's 0 (a conv and a linear), and
    # its sibling 3.4 the model's 0.1 (2 wrong); 3687639875 and 154963813:
    # the true partner lies elsewhere, with a module inserted (2 and 3
    # wrong); 3473353854: the same, a conv inserted (1 wrong)
    (2453425757, True, 'src'), (2068700927, True, 'src'), (3687639875, True, 'src'),
    (154963813, False, 'src'), (3473353854, True, 'src'),
    # two norms of 8 hold the shapes of one BatchNorm of 8: the checkpoint's
    # 4.4 (a conv, a linear, two norms) is not the model's 0 (a BatchNorm,
    # a conv, a linear), whose conv and linear are inserted (3 wrong)
    (405969005, True, 'src'),
])
def test_sorted_keys_a_module_of_the_same_shapes_one_level_off_is_doubted(seed, reverse, side):
    # seeds of the property below, wrong before; 2453425757 was a strict
    # xfail (as many pairs either way, only the nesting tells)
    src, dst, truth = _sorted_pair(seed, reverse, side)
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


@pytest.mark.xfail(strict=True, reason=(
    'open: an exact match of a small module against the one whose partner had '
    'modules inserted (parsimony is wrong here by construction). 4095301784 '
    "(insert=0.3, 1 seed of 1500 drawn): the checkpoint's 6.r17 (a conv inserted "
    "beside a BatchNorm of 8) holds the shapes of the model's 2, a module the model "
    "inserted whole; 6 wrong of 9 placed. 707 (found by hypothesis): the "
    "checkpoint's m3 (two linears) is the model's r13 exactly, r13's second linear "
    "inserted, while its partner r21 has two norms inserted; 6 wrong of 24"))
@pytest.mark.parametrize('seed, insert', [(4095301784, 0.3), (707, 0.5)])
def test_sorted_keys_an_exact_match_beside_a_partner_with_modules_inserted(seed, insert):
    src, dst, truth = _sorted_pair(seed, seed == 4095301784, 'src', insert=insert)
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.booleans(), st.sampled_from(['src', 'dst']))
def test_property_sorted_keys_with_inserted_modules_never_cause_a_wrong_pair(seed, reverse,
                                                                             side):
    # one side's keys sorted by name (a safetensors file): the order says
    # nothing, modules pair by what they hold, and where a module one
    # level up, or elsewhere, holds the same shapes with a module inserted,
    # the groups it could give as well are left out
    src, dst, truth = _sorted_pair(seed, reverse, side)
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


@pytest.mark.xfail(strict=True, reason='known: a module with a layer added elsewhere takes '
                   "another module's place by its signature (issue 8 note)")
@pytest.mark.parametrize('seed, reverse, side', [
    # found by the property above at 2500 examples, wrong at ddacdde too:
    # 3478243791: the checkpoint's m3 (a norm, then a 4-channel conv) holds
    # the shapes of the model's r1.r2 exactly, a conv added there beside the
    # norm that belongs to m0; m3's own place, r23, holds a linear inserted
    # and a conv added besides, so the signature pairs m3 with r1.r2 and the
    # rival one level up is no rival (3 wrong); 1344041105: the model's r18.3,
    # a BatchNorm added beside a conv and a linear, is the checkpoint's m2
    # by its signature, and m3.0 goes to m2's place (11 wrong)
    (3478243791, False, 'src'), (1344041105, False, 'dst'),
])
def test_sorted_keys_a_module_with_a_layer_added_is_not_another_modules_twin(
        seed, reverse, side):
    src, dst, truth = _sorted_pair(seed, reverse, side)
    _assert_never_wrong(align_structure(src, dst).mapping, truth)


@pytest.mark.parametrize('seed, insert, side', [
    # the structure mode, keys sorted: the alignment left these open, and
    # the open modules rule "the last of its shapes" placed one alone in
    # its region into a module outside it, that open modules of another
    # region (itself more open than paired) fit as well. 1839787044: the
    # checkpoint's 5.5.3, a norm inserted, into the model's 2.0, which is
    # 5.3's (2 wrong); 1110113623: 1.4.new7 into 0.0, which is 1.3's
    (1839787044, 0.5, 'src'), (1110113623, 0.3, 'src'), (117091761, 0.3, 'both'),
    (692641983, 0.3, 'dst'), (3503204199, 0.5, 'both'),
])
def test_the_last_of_its_shapes_in_its_region_is_not_the_last_around(seed, insert, side):
    src, dst, truth = _sorted_pair(seed, True, side, insert=insert)
    _assert_never_wrong(associate(src, dst, association='structure').mapping, truth)


@pytest.mark.parametrize('seed, insert, reverse', [
    # 2693233350: the checkpoint's 1.1.2, a conv, was left open between two
    # convs of its shape (4.4.5, inserted, and 4.4.6); the analogy of the
    # list item beside (1.0 -> 4.3), whose 2 went to 5, sent it to 4.4.5,
    # but 1.0.2 is a norm: the items of a list differ
    (2693233350, 0.3, False),
    # 2658653147 and 2017727998: three linears of one shape in r3.r4, one
    # inserted, for two places; the analogy came from a list that pairs
    # none of the region's other paths (r15.r21), or not all of them
    # (r1.3 -> m0.0 lacks r1.4's 6), and sent the inserted one (2 wrong)
    (2658653147, 0.3, True), (2017727998, 0.5, True),
])
def test_an_analogy_comes_from_a_module_of_the_same_kind(seed, insert, reverse):
    src, dst, truth = _sorted_pair(seed, reverse, 'none', insert=insert)
    _assert_never_wrong(associate(src, dst, association='structure').mapping, truth)


def test_a_few_keys_of_a_few_shapes_tell_no_other_design():
    # seed 3264529179: the model's part 6 (of 37 keys) was taken for a
    # network of another design than the checkpoint (22 keys, four kernel
    # shapes) and the structure solved without it: the checkpoint's 2.m2,
    # whose place is 6.r20, went to an inserted linear of its shape
    src, dst, truth = _pair(3264529179, insert=0.5)
    _assert_never_wrong(associate(src, dst, association='structure').mapping, truth)


@pytest.mark.parametrize('seed, insert, reverse, side', [
    # the name modes' whole answer is a BatchNorm (or a linear) put by its
    # shape into a module of no agreeing name, whose own tensor of that
    # shape is elsewhere in the checkpoint; the structure mode placed
    # other modules, or nothing: 5 wrong each, auto took the name mode
    (3494647475, 0.5, True, 'none'), (1367776518, 0.5, True, 'dst'),
    (3538542405, 0.3, True, 'src'),
    # the same beside two tensors at the same list positions ('3.weight'
    # and '3.bias' on both sides, lists numbered from 0 and from 3): 7 wrong
    (3696566596, 0.5, False, 'dst'),
    # a list renumbered: the checkpoint's top-level items 3..6 are the
    # model's 0..3, and its item 3 went to the model's item 3 by the name
    # (2 wrong), while the structure mode paired items 4 and 5 with 1
    # and 2
    (2669262275, 0.0, True, 'dst'), (1515349197, 0.0, True, 'dst'),
    (196663602, 0.3, True, 'dst'),
])
def test_auto_takes_no_name_mode_pair_that_names_do_not_vouch_for(seed, insert, reverse, side):
    # seeds of random trees (every module renamed, lists renumbered),
    # wrong in auto before
    src, dst, truth = _sorted_pair(seed, reverse, side, insert=insert)
    _assert_never_wrong(associate(src, dst, association='auto').mapping, truth)


@pytest.mark.parametrize('mode', ['embedding', 'isomorphism'])
@pytest.mark.parametrize('seed, insert, reverse, side', [
    (317664674, 0.3, True, 'dst'), (162903482, 0.3, False, 'both'),
    (1066635570, 0.0, True, 'both'), (1821348724, 0.3, True, 'src')])
def test_name_modes_take_no_list_position_the_structure_mode_refutes(mode, seed, insert,
                                                                     reverse, side):
    # seeds of random trees (every module renamed, lists renumbered) where
    # a name mode paired items of two lists at an offset that every pair
    # the structure mode makes between those lists contradicts (1 to 5
    # wrong in embedding, isomorphism or both)
    src, dst, truth = _sorted_pair(seed, reverse, side, insert=insert)
    _assert_never_wrong(associate(src, dst, association=mode).mapping, truth)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.sampled_from([0.3, 0.5]), st.booleans(),
       st.sampled_from(['none', 'src', 'dst', 'both']))
def test_property_the_structure_mode_adds_no_wrong_pair_to_the_alignment(
        seed, insert, reverse, side):
    # the steps after the alignment (open modules, the checks), in any
    # order of the keys, place nothing wrong: every wrong pair of the mode
    # is the alignment's (whose open cases are the xfails above)
    src, dst, truth = _sorted_pair(seed, reverse, side, insert=insert)
    mapping = associate(src, dst, association='structure').mapping
    aligned = align_structure(src, dst).mapping
    assert len(set(mapping.values())) == len(mapping)
    wrong = {k: v for k, v in mapping.items() if truth.get(k) != v}
    assert all(aligned.get(k) == v for k, v in wrong.items())


def test_sorted_keys_of_a_module_path_deeper_than_the_recursion_limit():
    # a file's key may nest 3,000 modules deep: what the modules hold is
    # counted without recursion
    deep = '.'.join(f'm{i}' for i in range(3000))
    src = dict(sorted({deep + '.a.weight': (4, 4), deep + '.b.weight': (8, 8),
                       'x.weight': (3,)}.items()))
    dst = {'q.' + deep + '.a.weight': (4, 4), 'q.' + deep + '.b.weight': (8, 8)}
    assert align_structure(src, dst).mapping == {
        deep + '.a.weight': 'q.' + deep + '.a.weight',
        deep + '.b.weight': 'q.' + deep + '.b.weight'}


def test_a_group_paired_by_its_shape_alone_is_owed_nothing_more():
    # siblings permuted, shapes repeated: a norm owed a pair (every
    # optimum of its gap pairs it) was paired by its siblings, which
    # dropped its candidates but left it owed, then unpaired as crossed;
    # resolving by siblings again looked its candidates up (KeyError)
    src, dst, truth = _pair(98013366, permute=True)
    result = align_structure(src, dst)
    assert len(set(result.mapping.values())) == len(result.mapping)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.booleans())
def test_property_permuted_siblings_of_repeated_shapes_give_a_mapping(seed, insert):
    # the order misleads and shapes repeat: little can be known, but the
    # alignment returns a one-to-one mapping of keys the two sides have
    src, dst, _ = _pair(seed, insert=0.5 if insert else 0.0, permute=True)
    result = align_structure(src, dst)
    assert len(set(result.mapping.values())) == len(result.mapping)
    assert set(result.mapping) <= set(src) and set(result.mapping.values()) <= set(dst)


@pytest.mark.parametrize('seed, insert, reverse', [
    (537425047, 0.5, False), (858882631, 0.5, False), (1957895163, 0.5, True),
    (731488007, 0.3, True)])
def test_permuted_siblings_a_module_follows_its_siblings_to_a_free_slot(seed, insert, reverse):
    # siblings permuted, every module's shapes its own but for modules
    # inserted: order sent a norm (537425047: the checkpoint's m2.0.2) to a
    # norm of its width the model inserted elsewhere (new11, at the top),
    # while its siblings went into the model's r3.4, which holds a free
    # norm of its tensors (1-2 wrong each, in structure and auto)
    src, dst, truth = _pair(seed, insert=insert, permute=True, unique=True)
    if reverse:
        src, dst, truth = dst, src, {v: k for k, v in truth.items()}
    for mode in ('structure', 'auto'):
        _assert_never_wrong(associate(src, dst, association=mode).mapping, truth)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_property_permuted_siblings_with_telling_shapes(seed):
    # order is gone; every module's shapes are its own: shapes alone decide
    src, dst, truth = _pair(seed, permute=True, unique=True)
    result = align_structure(src, dst)
    _assert_never_wrong(result.mapping, truth)
    assert result.mapping == truth


# --- the published README numbers under 'auto' -------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.booleans())
def test_property_one_structure_sides_serves_every_call(seed, insert):
    # 'auto' builds the groups once and shares them between the structure
    # solver and the name-conflict check of every mode: a call leaves
    # nothing behind that changes the next one
    src, dst, truth = _pair(seed, insert=0.3 if insert else 0.0)
    fresh = align_structure(src, dst)
    reversed_truth = dict(zip(truth, reversed(list(truth.values()))))
    sides = StructureSides(src, dst)
    for mapping in (truth, reversed_truth, fresh.mapping):
        assert sides.name_conflicts(mapping) == find_name_conflicts(src, dst, mapping)
        assert sides.align() == fresh
        assert list(sides.align().mapping.items()) == list(fresh.mapping.items())


def _shapes(module):
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def test_readme_mappings_are_the_same_under_auto(resnet50, faster_rcnn_frozen,
                                                 faster_rcnn_plain):
    # load_partial_state's counts follow from the mapping alone, so equal
    # mappings keep the README's 320/2/0, 320/2/2/2, 265/55/55/30, 318/2/2/30
    from conftest import Backboned, Embedder
    cases = [
        (resnet50, Embedder(resnet50), 'isomorphism', 320),
        (Backboned(resnet50, 'custom_model2_layer'),
         Embedder(resnet50, 'custom_model1_layer'), 'isomorphism', 320),
        (resnet50, faster_rcnn_frozen, 'embedding', 265),
        (resnet50, faster_rcnn_frozen, 'isomorphism', 265),
        (resnet50, faster_rcnn_plain, 'embedding', 318),
        (resnet50, faster_rcnn_plain, 'isomorphism', 318),
    ]
    for src, dst, mode, count in cases:
        auto = associate(_shapes(src), _shapes(dst), association='auto')
        explicit = associate(_shapes(src), _shapes(dst), association=mode)
        assert auto.mapping == explicit.mapping
        assert len(auto.mapping) == count
        assert auto.ambiguous == {}


def test_keys_sorted_by_name_give_order_no_say():
    # a safetensors file lists its tensors sorted by name: 'bn1' before
    # 'conv1', 'layer1.0.bn2' before 'layer1.0.conv1'. Paired by their order,
    # renamed modules cross; only names and unique shapes may speak
    src = {**conv('conv1', 8, 3), **bn('bn1', 8)}
    dst = {**conv('c1', 8, 3), **bn('n1', 8)}
    for b in range(3):  # enough keys for a sorted listing to tell
        src.update({**conv(f'layer1.{b}.conv1', 8, 8), **bn(f'layer1.{b}.bn1', 8),
                    **conv(f'layer1.{b}.conv2', 8, 8), **bn(f'layer1.{b}.bn2', 8)})
        dst.update({**conv(f'stage1.{b}.c1', 8, 8), **bn(f'stage1.{b}.n1', 8),
                    **conv(f'stage1.{b}.c2', 8, 8), **bn(f'stage1.{b}.n2', 8)})
    src.update(linear('fc', 10, 8))
    dst.update(linear('head', 10, 8))
    truth = dict(zip(src, dst))
    assert align_structure(src, dst).mapping == truth  # registration order
    shuffled = {k: src[k] for k in sorted(src)}
    result = align_structure(shuffled, dst)
    assert {k: v for k, v in result.mapping.items() if truth[k] != v} == {}
    # what is unique by shape is still found
    assert result.mapping['conv1.weight'] == 'c1.weight'
    assert result.mapping['fc.weight'] == 'head.weight'
    # and so is what the modules hold: ``layer1`` is the one module of its
    # shapes on each side, its items pair by their numbers, and so do the
    # equal layers inside (``conv1`` and ``c1``, ``bn2`` and ``n2``)
    assert result.mapping == truth
    # only the first was placed without a number
    sides = StructureSides(shuffled, dst)
    sides.align()
    assert sides.unique_modules == {'layer1': 'stage1'}


def test_keys_sorted_by_name_leave_siblings_of_one_shape_out():
    # an attention's q, k and v share a shape: with the order lost and the
    # names differing by more than numbers, nothing tells which is which
    # (sorted, the checkpoint lists k before q); the output projection, the
    # one of its shape in the module, pairs
    src, dst = {}, {}
    for b in range(4):
        for name in 'qkv':
            src.update(linear(f'blocks.{b}.attn.{name}', 8, 8))
        src.update(linear(f'blocks.{b}.attn.o', 16, 8))
        for name in ('query', 'key', 'value'):
            dst.update(linear(f'layers.layer_{b}.sa.{name}', 8, 8))
        dst.update(linear(f'layers.layer_{b}.sa.out', 16, 8))
    result = align_structure({k: src[k] for k in sorted(src)}, dst)
    assert result.mapping == {f'blocks.{b}.attn.o.{t}': f'layers.layer_{b}.sa.out.{t}'
                              for b in range(4) for t in ('bias', 'weight')}
    assert set(result.ambiguous) <= {k for k in src if '.o.' not in k}


@pytest.mark.parametrize('start', [0, 1])
def test_keys_sorted_by_name_pair_a_list_of_another_length_by_its_numbers(start):
    # three equal blocks against two: once the keys are sorted no order
    # tells which two of the three the model's are, but their numbers do,
    # as in the name modes (``body.1`` is ``trunk.blk1``); the third stays
    # out. Numbered from 1 on the model's side, the same number is another
    # place, and nothing pairs
    src = {k: s for b in range(3) for k, s in linear(f'body.{b}.fc', 8, 8).items()}
    src.update({k: s for b in range(3) for k, s in bn(f'body.{b}.norm', 8).items()})
    dst = {}
    for b in range(start, start + 2):
        dst.update({**linear(f'trunk.blk{b}.lin', 8, 8), **bn(f'trunk.blk{b}.ln', 8)})
    result = align_structure({k: src[k] for k in sorted(src)}, dst)
    if start:
        assert result.mapping == {}
        return
    renamed = {'fc': 'lin', 'norm': 'ln'}
    assert result.mapping == {
        k: f'trunk.blk{b}.{renamed[part]}.{t}'
        for k in sorted(src) for _, b, part, t in [k.split('.')] if b != '2'}


def _layernorm(prefix, c):
    return {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,)}


def _convnext_in_two_orders(widths=(8, 16, 32), depth=2):
    """A small ConvNeXt under mmpretrain's names and registration order
    (``downsample_layers.{0..2}``, then ``stages.{0..2}``) and under
    torchvision's (``features``: stem, stage, downsampling, stage, ...),
    and the truth. ``depth``: blocks per stage, one for all or one each."""
    downs, stages, prev = [], [], 3
    depths = (depth,) * len(widths) if isinstance(depth, int) else depth
    for n, (w, depth) in enumerate(zip(widths, depths)):
        if n == 0:
            downs.append(({**conv('downsample_layers.0.0', w, 3, 4, bias=True),
                           **_layernorm('downsample_layers.0.1', w)},
                          {**conv('features.0.0', w, 3, 4, bias=True),
                           **_layernorm('features.0.1', w)}))
        else:
            downs.append(({**_layernorm(f'downsample_layers.{n}.0', prev),
                           **conv(f'downsample_layers.{n}.1', w, prev, 2, bias=True)},
                          {**_layernorm(f'features.{2 * n}.0', prev),
                           **conv(f'features.{2 * n}.1', w, prev, 2, bias=True)}))
        blocks = []
        for b in range(depth):
            p, q = f'stages.{n}.{b}', f'features.{2 * n + 1}.{b}'
            blocks.append((
                {f'{p}.gamma': (w, 1, 1), f'{p}.depthwise_conv.weight': (w, 1, 7, 7),
                 f'{p}.depthwise_conv.bias': (w,), **_layernorm(f'{p}.norm', w),
                 **linear(f'{p}.pointwise_conv1', 4 * w, w),
                 **linear(f'{p}.pointwise_conv2', w, 4 * w)},
                {f'{q}.layer_scale': (w, 1, 1), f'{q}.block.0.weight': (w, 1, 7, 7),
                 f'{q}.block.0.bias': (w,), **_layernorm(f'{q}.block.2', w),
                 **linear(f'{q}.block.3', 4 * w, w), **linear(f'{q}.block.5', w, 4 * w)}))
        stages.append(blocks)
        prev = w
    src, dst, truth = {}, {}, {}
    for s, _ in downs + [block for blocks in stages for block in blocks]:
        src.update(s)
    for (s, d), blocks in zip(downs, stages):
        for s, d in [(s, d)] + blocks:
            dst.update(d)
            truth.update(zip(s, d))
    return src, dst, truth


def test_registration_orders_that_disagree_pair_modules_by_what_they_hold(monkeypatch):
    # mmpretrain registers a ConvNeXt's four downsampling layers before its
    # stages: in registration order only unique shapes and a few gaps pair
    # (75 of 201); each stage, of 7 blocks (35 groups), is the one module
    # of its shapes on each side, and places the rest, keeping every pair
    # the order made
    src, dst, truth = _convnext_in_two_orders(depth=7)
    result = align_structure(src, dst)
    assert result.mapping == truth
    monkeypatch.setattr(alignment, 'ORDER_DOUBT', 2.0)  # the order alone
    by_order = align_structure(src, dst).mapping
    assert len(by_order) == 75
    assert by_order.items() <= truth.items()
    monkeypatch.setattr(alignment, 'ORDER_DOUBT', 0.1)
    # stages of 6 blocks (30 groups) are too small to be told by a few
    # shapes, but each holds every tensor of its three kernel shapes (a
    # depthwise and two pointwise kernels of its width) on both sides
    src, dst, truth = _convnext_in_two_orders(depth=6)
    assert align_structure(src, dst).mapping == truth
    # two stages of one width, 6 and 5 blocks: each is the one module of
    # what it holds, but its kernel shapes are the other's too, and what a
    # few shapes make unique may be chance; the third stage is placed
    src, dst, truth = _convnext_in_two_orders(widths=(8, 8, 16), depth=(6, 5, 6))
    mapping = align_structure(src, dst).mapping
    assert mapping.items() <= truth.items()
    placed = {key.split('.')[1] for key in mapping if key.startswith('stages.')}
    assert placed == {'2'}


def _regnet_blocks_in_two_orders():
    """A regnet stage of two blocks under timm's names (``s1.b1``,
    ``s1.b2``, each unit a ``conv`` and a ``bn``) and torchvision's
    (``block1-0``, ``block1-1``, units ``0`` and ``1``), torchvision's
    blocks registered last first, and the truth. The first block's
    ``conv1`` and its shortcut are of one shape, and so are the two
    blocks' ``conv2`` and ``conv3``; their squeeze-excitations differ."""
    def timm_unit(p, o, i, k=1):
        return {**conv(f'{p}.conv', o, i, k), **bn(f'{p}.bn', o)}

    def tv_unit(p, o, i, k=1):
        return {**conv(f'{p}.0', o, i, k), **bn(f'{p}.1', o)}

    src, truth, blocks = {}, {}, []
    for b, (c_in, squeeze) in enumerate([(8, 2), (16, 4)]):
        s, d = f's1.b{b + 1}', f'block1.block1-{b}'
        other = {}
        if b == 0:  # torchvision registers the shortcut first, timm last
            other.update(tv_unit(f'{d}.proj', 16, c_in))
        one = {**timm_unit(f'{s}.conv1', 16, c_in), **timm_unit(f'{s}.conv2', 16, 8, 3),
               **conv(f'{s}.se.fc1', squeeze, 16, 1, bias=True),
               **conv(f'{s}.se.fc2', 16, squeeze, 1, bias=True),
               **timm_unit(f'{s}.conv3', 16, 16)}
        body = {**tv_unit(f'{d}.f.a', 16, c_in), **tv_unit(f'{d}.f.b', 16, 8, 3),
                **conv(f'{d}.f.se.fc1', squeeze, 16, 1, bias=True),
                **conv(f'{d}.f.se.fc2', 16, squeeze, 1, bias=True),
                **tv_unit(f'{d}.f.c', 16, 16)}
        truth.update(zip(one, body))
        other.update(body)
        if b == 0:
            shortcut = timm_unit(f'{s}.downsample', 16, c_in)
            one.update(shortcut)
            truth.update(zip(shortcut, other))
        src.update(one)
        blocks.append(other)
    dst = {**blocks[1], **blocks[0]}
    return src, dst, truth


def test_blocks_registered_in_another_order_are_not_crossed():
    # fuzz_real --cross --wide --reorder seed 7574, reduced: timm's regnet
    # into torchvision's whose stage registers its blocks last first. The
    # order pairs conv2 and conv3 (one shape in both blocks) across the
    # blocks, while the squeeze-excitations and the first block's conv1
    # and shortcut, of shapes one block has, went straight: 34 wrong
    # tensors. Each block is the one module of its shapes on both sides;
    # pairs that cross two such module pairs go where the order-free
    # alignment puts them
    src, dst, truth = _regnet_blocks_in_two_orders()
    result = align_structure(src, dst)
    assert result.mapping.items() <= truth.items()
    # the first block's conv1.bn: the order-free alignment ties it with the
    # shortcut's, and the order sent it across; it is left out here, and
    # the structure mode's norm rule puts it after its layer
    assert set(truth) - set(result.mapping) == {k for k in src if k.startswith('s1.b1.conv1.bn')}
    for mode in ('structure', 'auto'):
        assert associate(src, dst, association=mode).mapping == truth
        assert associate(dst, src, association=mode).mapping == {v: k for k, v in truth.items()}


def test_an_order_free_alignment_that_places_fewer_is_not_taken(monkeypatch):
    # a list registered in one order on both sides, its items renamed: the
    # order pairs them. Three equal heads against two tie and stay out, a
    # sixth of the model, so the order-free alignment is tried too; with
    # the order gone, the equal items, their names differing by more than
    # numbers, tie and pair nothing: the order's pairs stand
    src, dst, truth = {}, {}, {}
    for b, name in enumerate(['first', 'second', 'third']):
        s = {**linear(f'body.{name}.fc', 8, 8), **bn(f'body.{name}.norm', 8)}
        d = {**linear(f'trunk.item_{"xyz"[b]}.lin', 8, 8), **bn(f'trunk.item_{"xyz"[b]}.ln', 8)}
        src.update(s)
        dst.update(d)
        truth.update(zip(s, d))
    src.update({**linear('head.a', 5, 5), **linear('head.b', 5, 5), **linear('head.c', 5, 5)})
    dst.update({**linear('out1', 5, 5), **linear('out2', 5, 5)})
    tried = []
    order_free = StructureSides.align

    def align(sides, max_cells=alignment.MAX_CELLS):
        result = order_free(sides, max_cells)
        if not sides.ordered:
            tried.append(len(result.mapping))
        return result

    monkeypatch.setattr(StructureSides, 'align', align)
    result = align_structure(src, dst)
    assert tried == [0]
    assert result.mapping == truth
    assert set(result.ambiguous) == {k for k in src if k.startswith('head.')}


# --- module evidence: a module's tensors go to one module ---------------------

def _bottleneck_pair(style):
    """Two torchvision Bottleneck stages (downsample registered last) and
    the same weights in detectron2's or HuggingFace's layout (the shortcut
    registered first, each BatchNorm inside its conv's module). In the first
    block conv3 and the shortcut have one shape, [16, 4, 1, 1] (c_in ==
    width, as in resnet50's layer1.0); in the second stage's first block
    only their BatchNorms do."""
    src, dst, truth = {}, {}, {}
    c_in = 4
    for stage, (width, out, blocks) in enumerate([(4, 16, 2), (8, 32, 1)]):
        for b in range(blocks):
            s = f'layer{stage + 1}.{b}.'
            parts = [('conv1', (width, c_in, 1, 1)), ('conv2', (width, width, 3, 3)),
                     ('conv3', (out, width, 1, 1))]
            if b == 0:
                parts.append(('downsample', (out, c_in, 1, 1)))
            names = {}
            for name, shape in sorted(parts, key=lambda p: p[0] != 'downsample'):
                if style == 'detectron2':
                    d = f'res{stage + 2}.{b}.' + ('shortcut' if name == 'downsample' else name)
                    names[name] = (d + '.weight', d + '.norm')
                    dst.update({d + '.weight': shape, **bn(d + '.norm', shape[0])})
                else:
                    d = f'stages.{stage}.layers.{b}.' + (
                        'shortcut' if name == 'downsample' else f'layer.{int(name[-1]) - 1}')
                    names[name] = (d + '.convolution.weight', d + '.normalization')
                    dst.update({d + '.convolution.weight': shape,
                                **bn(d + '.normalization', shape[0])})
            for name, shape in parts:
                conv_key, norm_prefix = names[name]
                if name == 'downsample':
                    key, norm = s + 'downsample.0.weight', s + 'downsample.1'
                else:
                    key, norm = s + name + '.weight', s + 'bn' + name[-1]
                src.update({key: shape, **bn(norm, shape[0])})
                truth[key] = conv_key
                for t in bn('', shape[0]):
                    truth[norm + t] = norm_prefix + t
            c_in = out
    assert set(truth) == set(src) and set(truth.values()) == set(dst)
    return src, dst, truth


def test_a_shortcut_registered_first_takes_its_batchnorm_along():
    # detectron2: the shortcut's conv pairs by its unique shape; its module
    # (weight + norm) is the downsample module (conv + bn) around its
    # partner: the norm goes with it, and each conv's norm with its conv
    src, dst, truth = _bottleneck_pair('detectron2')
    for a, b, want in ((src, dst, truth), (dst, src, {v: k for k, v in truth.items()})):
        result = align_structure(a, b)
        assert result.mapping == want
        assert result.ambiguous == {}


def test_huggingface_shortcut_modules_pair_as_modules():
    # the second stage's shortcut conv pairs by its unique shape, and its
    # module (convolution + normalization) is the downsample (conv + bn):
    # the BatchNorm goes with it. In the first block conv3 and the shortcut
    # have one shape, and so do their BatchNorms: only the order around the
    # shortcut that moved could tell them apart, so they stay out
    # (ambiguous), never crossed
    src, dst, truth = _bottleneck_pair('hf')
    first = {k for k in src if k.startswith(('layer1.0.conv3', 'layer1.0.bn3',
                                            'layer1.0.downsample'))}
    for a, b, want, unsure in ((src, dst, truth, first),
                               (dst, src, {v: k for k, v in truth.items()},
                                {truth[k] for k in first})):
        result = align_structure(a, b)
        assert result.mapping == {k: v for k, v in want.items() if k not in unsure}
        assert set(result.ambiguous) <= unsure


def test_a_checkpoint_goes_whole_into_the_one_module_it_fills():
    # a two-block checkpoint into a model holding a renamed three-block
    # network and a renamed two-block one: only the second is filled whole
    def net(prefix, blocks, names=('conv1', 'bn1', 'layer1', 'fc')):
        c, n, layer, fc = names
        out = {**conv(prefix + c, 8, 3), **bn(prefix + n, 8)}
        for b in range(blocks):
            out.update({**conv(f'{prefix}{layer}.{b}.{c}', 8, 8),
                        **bn(f'{prefix}{layer}.{b}.{n}', 8)})
        out.update(linear(prefix + fc, 10, 8))
        return out

    renamed = ('c1', 'n1', 'stage1', 'head')
    src = net('', 2)
    dst = {**net('big.', 3, renamed), **net('small.', 2, renamed)}
    result = align_structure(src, dst)
    assert result.mapping == dict(zip(src, net('small.', 2, renamed)))
    # two slots it fills whole: ambiguous, nothing loaded
    twins = {**net('a.', 2, renamed), **net('b.', 2, renamed)}
    assert align_structure(src, twins).mapping == {}
    # the other way: the model is one module of the checkpoint
    back = align_structure(dst, src)
    assert back.mapping == dict(zip(net('small.', 2, renamed), src))


def _stage_net(prefix, depths, nested):
    """A stem, stages of conv+bn blocks (the first of each stage widens) and
    a head; ``nested`` files them torchvision-style (``features.S.B.block``),
    else timm-style (``blocks.S.B``)."""
    out = {**conv(prefix + ('features.0.0' if nested else 'conv_stem'), 8, 3),
           **bn(prefix + ('features.0.1' if nested else 'bn1'), 8)}
    width = 8
    for s, depth in enumerate(depths):
        for b in range(depth):
            new = width * 2 if b == 0 else width
            path = f'{prefix}features.{s + 1}.{b}.block' if nested else f'{prefix}blocks.{s}.{b}'
            out.update({**conv(path + '.0.0', new, width), **bn(path + '.0.1', new)})
            width = new
    out.update(linear(prefix + ('classifier.1' if nested else 'classifier'), 10, width))
    return out


def test_a_checkpoint_goes_whole_into_the_one_module_of_another_nesting():
    # timm efficientnet_b0 into torchvision's b1 and b0 side by side: the b0
    # checkpoint also fits the deeper b1 as a subsequence, but fills only
    # the b0 module whole, and its shapes occur at that one offset
    src = _stage_net('', [3, 4, 4, 5], nested=False)
    small = _stage_net('small.', [3, 4, 4, 5], nested=True)
    dst = {**_stage_net('big.', [4, 5, 5, 6], nested=True), **small}
    result = align_structure(src, dst)
    assert result.mapping == dict(zip(src, small))
    # the same shapes at two offsets: nothing says which, nothing loaded
    twins = {**_stage_net('a.', [3, 4, 4, 5], nested=True), **small}
    assert align_structure(src, twins).mapping == {}
    # a short network (under NESTING_FIT_MIN groups) is no such evidence
    # (nor are its stages, each the one module of its shapes: too small)
    short = _stage_net('', [1, 2, 2], nested=False)
    dst = {**_stage_net('big.', [2, 3, 3], nested=True),
           **_stage_net('small.', [1, 2, 2], nested=True)}
    assert align_structure(short, dst).mapping == {}


def test_module_evidence_never_moves_a_batchnorm_of_a_flat_block():
    # a block that registers both convs, then both BatchNorms, against one
    # that keeps each pair in a module: nothing says which BatchNorm is
    # whose (the flat side has no module around them), so they stay out
    src = {**conv('b.conv1', 8, 4), **conv('b.conv2', 8, 8), **bn('b.bn1', 8), **bn('b.bn2', 8)}
    dst = {**conv('b.m1.conv', 8, 4), **bn('b.m1.bn', 8),
           **conv('b.m2.conv', 8, 8), **bn('b.m2.bn', 8)}
    result = align_structure(src, dst)
    assert result.mapping == {'b.conv1.weight': 'b.m1.conv.weight',
                              'b.conv2.weight': 'b.m2.conv.weight'}


def _moved(tree, rng, counter):
    """The same tensors under fresh module names, with one child of about
    half the modules registered first (as detectron2 registers a block's
    shortcut)."""
    own, children = tree
    out = []
    for name, child in children:
        counter[0] += 1
        out.append((name.isdigit(), f'r{counter[0]}', _moved(child, rng, counter)))
    if len(out) > 1 and rng.random() < 0.5:
        out.insert(0, out.pop(rng.randrange(1, len(out))))
    return (own, [(str(k + 3) if digit else fresh, child)
                  for k, (digit, fresh, child) in enumerate(out)])


@pytest.mark.parametrize('seed', [1061, 1230])
def test_a_module_pulls_in_no_interchangeable_groups(seed):
    # two siblings of one shape swapped inside a module whose own tensor is
    # paired: only their order could place them, and it is wrong here; the
    # module's evidence must not pair them by position
    rng = random.Random(seed)
    tree = _random_tree(rng, ids=[])
    src = _flatten(tree, '', [])
    dst = _flatten(_moved(tree, rng, [0]), '', [])
    dst_of = {ident: key for key, _, ident in dst if ident is not None}
    truth = {key: dst_of[ident] for key, _, ident in src}
    src, dst = {k: s for k, s, _ in src}, {k: s for k, s, _ in dst}
    _assert_never_wrong(align_structure(src, dst).mapping, truth)
    _assert_never_wrong(align_structure(dst, src).mapping, {v: k for k, v in truth.items()})


def test_a_network_that_did_not_align_lends_no_unique_shape():
    # mutation fuzz seed 7011: a resnext50 with layer2 cut short and a
    # resnet18 beside it, into a whole resnext50. The resnet18's
    # downsample conv [512, 256, 1, 1] was the only leftover of the shape
    # of the missing block's conv3, and was paired with it
    def block(prefix, c_in, c):
        return {**conv(prefix + '.conv1', c, c_in, 1), **bn(prefix + '.bn1', c),
                **conv(prefix + '.conv2', c, c), **bn(prefix + '.bn2', c),
                **conv(prefix + '.conv3', 2 * c, c, 1), **bn(prefix + '.bn3', 2 * c)}
    full = {**conv('conv1', 16, 3), **bn('bn1', 16)}
    for b in range(3):
        full.update(block(f'layer1.{b}', 16 if b == 0 else 32, 16))
    cut = dict(full)
    full.update(block('layer1.3', 32, 16))
    other = {**conv('stem', 8, 3), **bn('stem_bn', 8)}
    for b in range(3):
        other.update({**conv(f'layer.{b}.conv1', 8, 8), **bn(f'layer.{b}.bn1', 8),
                      **conv(f'layer.{b}.conv2', 8, 8), **bn(f'layer.{b}.bn2', 8)})
    other.update(conv('layer.0.downsample.0', 32, 16, 1))  # the shape of layer1.3.conv3
    for first in (True, False):  # a leftover; in the last gap, a unique shape
        parts = [{f'backbone.{k}': s for k, s in other.items()},
                 {f'main.{k}': s for k, s in cut.items()}]
        src = {**parts[1 - first], **parts[first]}
        result = align_structure(src, full)
        assert result.mapping == {f'main.{k}': k for k in cut}


def _named_net(prefix, blocks, shortcut_first, flat):
    """A stem, then stages of blocks (conv, bn, conv, bn, and in each
    stage's first block a shortcut conv + bn), then a head. ``flat`` names
    every module at the top level (Keras style); ``shortcut_first`` lists a
    block's shortcut before its convolutions (Keras and detectron2 do)."""
    out = {**conv(prefix + ('conv1_conv' if flat else 'conv1'), 8, 3),
           **bn(prefix + ('conv1_bn' if flat else 'bn1'), 8)}
    width = 8
    for s, depth in enumerate(blocks):
        for b in range(depth):
            new = width * 2 if b == 0 else width
            name = (lambda part: f'{prefix}s{s}_b{b}_{part}') if flat else (
                lambda part: f'{prefix}layer{s}.{b}.{part}')
            body = {**conv(name('conv1'), new, width), **bn(name('bn1'), new),
                    **conv(name('conv2'), new, new), **bn(name('bn2'), new)}
            short = {**conv(name('down0'), new, width, 1), **bn(name('down1'), new)} if b == 0 else {}
            out.update({**short, **body} if shortcut_first else {**body, **short})
            width = new
    out.update(linear(prefix + ('predictions' if flat else 'fc'), 10, width))
    return out


def test_a_whole_checkpoint_of_other_order_goes_to_the_one_slot_with_its_modules():
    # hunt 3: a Keras-named resnet50 (flat names, each block's shortcut
    # first) into a model holding a resnet101 and a resnet50 (121 tensors
    # wrong: the alignment crossed between the two). The checkpoint holds
    # the same modules as the second slot, in another order, and no other
    # module does: it is aligned with that slot alone
    src = _named_net('', [2, 3, 4], shortcut_first=True, flat=True)
    plain = _named_net('plain.', [2, 3, 4], shortcut_first=False, flat=False)
    dst = {**_named_net('deep.', [2, 5, 4], shortcut_first=False, flat=False), **plain}
    result = align_structure(src, dst)
    assert result.mapping and all(v.startswith('plain.') for v in result.mapping.values())
    truth = dict(zip(_named_net('', [2, 3, 4], shortcut_first=False, flat=True), plain))
    assert {k: v for k, v in result.mapping.items() if truth[k] != v} == {}


def test_two_slots_the_alignment_wandered_between_give_nothing():
    # hunt 3: a two-block checkpoint, named otherwise and listing each
    # block's norms last, into a one-block and a two-block network side by
    # side: the alignment put the first block into the one-block network
    # and the rest into the other (23 of 32 tensors wrong); both are left
    # short and either could hold what the other got, so nothing is kept
    def block(prefix, norms_last):
        mlp = {**linear(prefix + 'attn', 24, 8), **linear(prefix + 'out', 8, 8),
               **linear(prefix + 'fc1', 32, 8), **linear(prefix + 'fc2', 8, 32)}
        norms = {f'{prefix}norm1.weight': (8,), f'{prefix}norm2.weight': (8,)}
        return {**mlp, **norms} if norms_last else {**norms, **mlp}

    src = {'embed.proj.weight': (8, 3, 4, 4)}
    for b in range(2):
        src.update(block(f'enc.layer.{b}.', norms_last=True))
    src.update(linear('classifier', 10, 8))
    dst = {}
    for slot, depth in (('shallow', 1), ('deep', 2)):
        dst[f'{slot}.conv_proj.weight'] = (8, 3, 4, 4)
        for b in range(depth):
            dst.update(block(f'{slot}.layers.{b}.', norms_last=False))
        dst.update(linear(f'{slot}.head', 10, 8))
    result = align_structure(src, dst)
    assert not any(v.startswith('shallow.') for v in result.mapping.values())
    assert not any(k.startswith('enc.layer.0.') and not v.startswith('deep.layers.0.')
                   for k, v in result.mapping.items())


def test_run_fit_needs_one_place_and_the_same_tree():
    from torch_liberator.keygroups import KeyGroups
    from torch_liberator.modulefit import run_fit
    net = KeyGroups({'conv.w': (4, 3), 'bn.w': (4,), 'block.c.w': (8, 4), 'block.n.w': (8,),
                     'fc.w': (10, 8)})
    children = KeyGroups({'b.0.w': (4, 3), 'b.1.w': (4,), 'b.2.c.w': (8, 4), 'b.2.n.w': (8,)})
    assert run_fit(children, 0, 4, net) == 0
    # the block flattened: another tree, no run
    flat = KeyGroups({'b.0.w': (4, 3), 'b.1.w': (4,), 'b.2.w': (8, 4), 'b.3.w': (8,)})
    assert run_fit(flat, 0, 4, net) is None
    # the run twice in the checkpoint: no one place
    twice = KeyGroups({f'{p}.{k}': v for p in ('x', 'y') for k, v in
                       {'conv.w': (4, 3), 'bn.w': (4,), 'block.c.w': (8, 4), 'block.n.w': (8,)}.items()})
    assert run_fit(children, 0, 4, twice) is None


def test_layer_scales_pair_with_neither_norms_nor_lone_biases():
    # timm's BEiT block holds gamma_1 and gamma_2 itself; HF's layer lambda_1
    # and lambda_2; a LayerNorm's weight and bias are another thing, and so
    # are the q_bias and v_bias an attention holds beside its position table
    from torch_liberator.keygroups import KeyGroups, group_tensor_pairs
    scales = KeyGroups({'blocks.0.gamma_1': (8,), 'blocks.0.gamma_2': (8,),
                        'blocks.0.norm1.weight': (8,)})
    norm = KeyGroups({'layer.0.ln.weight': (8,), 'layer.0.ln.bias': (8,)})
    assert group_tensor_pairs(scales, 0, norm, 0) is None
    lambdas = KeyGroups({'layer.0.lambda_1': (8,), 'layer.0.lambda_2': (8,),
                         'layer.0.ln.weight': (8,)})
    assert group_tensor_pairs(scales, 0, lambdas, 0) == [(0, 0), (1, 1)]
    attn = KeyGroups({'b.attn.q_bias': (8,), 'b.attn.v_bias': (8,), 'b.attn.table': (13, 2),
                      'b.attn.qkv.weight': (24, 8)})
    assert group_tensor_pairs(attn, 0, lambdas, 0) is None
    # a class token is more than a vector: it still pairs out of a larger root
    root = KeyGroups({'cls_token': (1, 1, 8), 'pos_embed': (1, 5, 8), 'blocks.0.w': (8,)})
    tv_root = KeyGroups({'class_token': (1, 1, 8), 'encoder.w': (8,)})
    assert group_tensor_pairs(root, 0, tv_root, 0) == [(0, 0)]


def _attention_block(prefix, dim, mlp_first):
    # a Swin V2 attention: its own logit scale, a position MLP, qkv and proj;
    # timm registers the MLP first, torchvision last
    mlp = {**linear(f'{prefix}.attn.cpb_mlp.0', 16, 2), f'{prefix}.attn.cpb_mlp.2.weight': (3, 16)}
    rest = {f'{prefix}.attn.qkv.weight': (3 * dim, dim), **linear(f'{prefix}.attn.proj', dim, dim)}
    attn = {f'{prefix}.attn.logit_scale': (3, 1, 1), **(
        {**mlp, **rest} if mlp_first else {**rest, **mlp})}
    return {**bn(f'{prefix}.norm1', dim), **attn, **linear(f'{prefix}.mlp.fc1', 4 * dim, dim),
            **linear(f'{prefix}.mlp.fc2', dim, 4 * dim), **bn(f'{prefix}.norm2', dim)}


def test_an_attention_registered_in_another_order_pairs_by_its_names():
    # the blocks correspond (their norms and MLPs pair), the attention's
    # children cross: order keeps one run, the names inside place the rest
    src, dst, truth = {}, {}, {}
    for b, dim in enumerate((8, 8, 16)):
        block_src = _attention_block(f'layers.{b}', dim, mlp_first=True)
        block_dst = _attention_block(f'features.{b}', dim, mlp_first=False)
        src.update(block_src)
        dst.update(block_dst)
        truth.update({k: 'features' + k[len('layers'):] for k in block_src})
    assert align_structure(src, dst).mapping == truth


def _hf_attention_block(prefix, dim, gate=False):
    # _attention_block under other names inside the attention (HF's Swin V2
    # spells the position MLP and the output Linear otherwise), the MLP
    # registered first; ``gate``: one more Linear of the output's shape
    attn = {f'{prefix}.attention.logit_scale': (3, 1, 1),
            **linear(f'{prefix}.attention.position_mlp.0', 16, 2),
            f'{prefix}.attention.position_mlp.2.weight': (3, 16),
            f'{prefix}.attention.qkv.weight': (3 * dim, dim),
            **linear(f'{prefix}.attention.output.dense', dim, dim)}
    if gate:
        attn.update(linear(f'{prefix}.attention.output.gate', dim, dim))
    return {**bn(f'{prefix}.norm1', dim), **attn, **linear(f'{prefix}.mlp.fc1', 4 * dim, dim),
            **linear(f'{prefix}.mlp.fc2', dim, 4 * dim), **bn(f'{prefix}.norm2', dim)}


def test_a_layer_alone_of_its_shapes_in_corresponding_modules_pairs():
    # the attentions' children cross and their names differ: order keeps
    # the qkv and one of the position MLP and the output Linear. The
    # attentions correspond (their logit scales and qkv pair), and each
    # holds the other layer alone, with its shapes (HF's Swin V2 into
    # torchvision's: the output Linear of every block, 24 tensors, or the
    # position MLP, 36, were left out)
    inside = {'attention.position_mlp': 'attn.cpb_mlp', 'attention.output.dense': 'attn.proj',
              'attention': 'attn'}
    src, dst, truth = {}, {}, {}
    for b, dim in enumerate((8, 8, 16)):
        block = _hf_attention_block(f'layers.{b}', dim)
        src.update(block)
        dst.update(_attention_block(f'features.{b}', dim, mlp_first=False))
        for key in block:
            rest = key[len(f'layers.{b}.'):]
            old = next((o for o in inside if rest.startswith(o + '.')), None)
            truth[key] = f'features.{b}.' + (rest if old is None else inside[old] + rest[len(old):])
    assert align_structure(src, dst).mapping == truth
    # a second Linear of that shape in the source's attention: a tie, left out
    src = {}
    for b, dim in enumerate((8, 8, 16)):
        src.update(_hf_attention_block(f'layers.{b}', dim, gate=True))
    mapping = align_structure(src, dst).mapping
    assert mapping.items() <= truth.items()
    assert not any('.dense.' in key or '.gate.' in key for key in mapping)


def test_a_word_and_the_word_numbered_disagree_only_between_modules_apart():
    # RAFT's original encoders end in ``conv2``, torchvision's in ``conv``
    # (h5-raft-original-names: 18 of 106, every encoder pair left out
    # once the last layer's was): in two modules that correspond (other
    # pairs join them) that is one layer numbered by one library only. A
    # densenet169's ``denselayer25.norm1`` sent alone into a densenet121's
    # ``transition3.norm`` is two modules of other kinds: a disagreement
    src = {'enc.conv1.weight': (8, 3, 3, 3), 'enc.layer1.conv1.weight': (8, 8, 1, 1),
           'enc.layer1.conv2.weight': (8, 8, 3, 3), 'enc.conv2.weight': (16, 8, 1, 1),
           'head.conv1.weight': (4, 16), 'head.conv2.weight': (2, 4),
           'stray.norm1.weight': (5,)}
    dst = {'encoder.stem.weight': (8, 3, 3, 3), 'encoder.layer1.conv1.weight': (8, 8, 1, 1),
           'encoder.layer1.conv2.weight': (8, 8, 3, 3), 'encoder.conv.weight': (16, 8, 1, 1),
           'head.conv1.weight': (4, 16), 'head.conv2.weight': (2, 4),
           'other.norm.weight': (5,)}
    sides = StructureSides(src, dst)
    assert sides.name_conflicts(dict(zip(src, dst))) == {'enc.conv1.weight', 'stray.norm1.weight'}


def test_a_rename_in_every_block_of_a_shared_scheme_is_no_disagreement():
    # HF's Hiera: layernorm_before / layernorm_after for timm's norm1 / norm2,
    # every other name shared; a word used in one module pair only stays a
    # disagreement (the README's custom layers, above)
    def ln(prefix):
        return {f'{prefix}.weight': (8,), f'{prefix}.bias': (8,)}

    src, dst = {}, {}
    for b in range(3):
        for side, before, after in ((src, 'layernorm_before', 'layernorm_after'),
                                    (dst, 'norm1', 'norm2')):
            side.update({**ln(f'blocks.{b}.{before}'), **linear(f'blocks.{b}.attn.qkv', 24, 8),
                         **linear(f'blocks.{b}.attn.proj', 8, 8), **ln(f'blocks.{b}.{after}'),
                         **linear(f'blocks.{b}.mlp.fc1', 32, 8),
                         **linear(f'blocks.{b}.mlp.fc2', 8, 32)})
    mapping = align_structure(src, dst).mapping
    assert mapping == {k: k.replace('layernorm_before', 'norm1').replace('layernorm_after', 'norm2')
                       for k in src}
    # a swap is no rename: each name is the other side's too, and the
    # norms go by their names, not crossed by the order they were registered in
    swapped = {k.replace('layernorm_before', 'X').replace('layernorm_after', 'norm1')
               .replace('X', 'norm2'): v for k, v in src.items()}
    mapping = align_structure(swapped, dst).mapping
    assert {k: v for k, v in mapping.items() if 'norm' in k} == {
        k: k for k in swapped if 'norm' in k}


def test_a_level_inserted_on_one_side_hides_no_sibling_namesake():
    # ``dbl_3.main.bn`` against the model's ``dbl_2.bn``: ``main`` is a level
    # the model never uses, so the two paths first differ in ``dbl_3`` and
    # ``dbl_2``, two branches each model holds (fuzz --wide --reorder 6059)
    src = {**conv('mixed.dbl_2.0', 8, 8), **bn('mixed.dbl_2.1', 8),
           **bn('mixed.dbl_3.main.bn', 8), **conv('mixed.dbl_3.main.conv', 8, 8)}
    dst = {**conv('mixed.dbl_2.conv', 8, 8), **bn('mixed.dbl_2.bn', 8),
           **conv('mixed.dbl_3.conv', 8, 8), **bn('mixed.dbl_3.bn', 8)}
    sides = StructureSides(src, dst)
    crossed = sides.namesakes_crossed({'mixed.dbl_3.main.bn.weight': 'mixed.dbl_2.bn.weight',
                                       'mixed.dbl_3.main.bn.bias': 'mixed.dbl_3.bn.bias',
                                       'mixed.dbl_2.1.weight': 'mixed.dbl_2.bn.weight'})
    assert crossed == {'mixed.dbl_3.main.bn.weight'}


def test_a_shared_suffix_below_two_sibling_namesakes_is_no_name_anchor():
    # fuzz --cross --wide 7759, reduced: the checkpoint's ``Mixed_6b``
    # holds its branches a level deeper (``Mixed_6b.trunk.*``), the model's
    # ``Mixed_6c`` two levels deeper (``Mixed_6c.model.trunk.*``), both
    # inception blocks of one shape. ``trunk.branch1x1`` is a suffix only
    # those two share, but the words above it, past the level only the
    # model names, are ``Mixed_6b`` and ``Mixed_6c``, two blocks each side
    # holds: the checkpoint's Mixed_6b went into the model's Mixed_6c
    # (24 wrong in structure)
    def unit(p, o, i, k):
        return {**conv(f'{p}.conv', o, i, k), **bn(f'{p}.bn', o)}

    src, dst, truth = {}, {}, {}
    for block, src_level, dst_level in [('Mixed_6a', '', ''), ('Mixed_6b', 'trunk.', ''),
                                        ('Mixed_6c', '', 'model.trunk.')]:
        for name, (o, i, k) in [('branch1x1', (8, 16, 1)), ('branch7x7_1', (4, 16, 1)),
                                ('branch7x7_2', (4, 4, 3)), ('branch_pool', (8, 16, 1))]:
            s = unit(f'{block}.{src_level}{name}', o, i, k)
            d = unit(f'{block}.{dst_level}{name}', o, i, k)
            src.update(s)
            dst.update(d)
            truth.update(zip(s, d))
    for mode in ('structure', 'auto'):
        assert associate(src, dst, association=mode).mapping == truth
        assert associate(dst, src, association=mode).mapping == {v: k for k, v in truth.items()}


def test_a_suffix_that_is_a_whole_path_beside_a_namesake_is_no_name_anchor():
    # fuzz --cross --wide --reorder 6417, reduced, keys sorted: the
    # checkpoint's ``Mixed_6a`` wrapped as ``Mixed_6a.main`` and the model's
    # ``Mixed_5d`` renamed ``main``, of the same branch shapes.
    # ``main.dbl_1`` is the model's whole path and a suffix only the
    # checkpoint's ``Mixed_6a.main.dbl_1`` shares, but the model holds a
    # ``Mixed_6a.dbl_1`` beside it: ``main`` may as well be a level the
    # checkpoint inserted (24 wrong in structure)
    def unit(p, o, i, k):
        return {**conv(f'{p}.conv', o, i, k), **bn(f'{p}.bn', o)}

    src, dst, truth = {}, {}, {}
    for src_block, dst_block, first in [('block5d', 'main', ('b1x1', 'b1x1', (12, 16, 1))),
                                        ('Mixed_6a.main', 'Mixed_6a',
                                         ('core_x', 'branch3x3', (32, 16, 3)))]:
        for src_name, dst_name, (o, i, k) in [first, ('dbl_1', 'dbl_1', (8, 16, 1)),
                                              ('dbl_2', 'dbl_2', (8, 8, 3))]:
            s = unit(f'{src_block}.{src_name}', o, i, k)
            d = unit(f'{dst_block}.{dst_name}', o, i, k)
            src.update(s)
            dst.update(d)
            truth.update(zip(s, d))
    src = dict(sorted(src.items()))
    for mode in ('structure', 'auto'):
        assert associate(src, dst, association=mode).mapping == truth
        assert associate(dst, src, association=mode).mapping == {v: k for k, v in truth.items()}


def test_a_name_joined_from_a_path_is_the_namesake_of_that_path():
    # torchvision's inception_v3 with its names joined by ``_``
    # (``Mixed_6d_branch7x7dbl_3``) into timm's, whose Mixed_6d registers its
    # branches in another order: paired with the model's
    # ``Mixed_6d.branch7x7_2``, while the model's ``Mixed_6d.branch7x7dbl_3``
    # is its name joined (fuzz --joined --cross --wide --reorder 1388)
    src = {**conv('core.Mixed_6d_branch7x7_2.conv', 8, 8), **bn('core.Mixed_6d_branch7x7_2.bn', 8),
           **conv('core.Mixed_6d_branch7x7dbl_3.conv', 8, 8),
           **bn('core.Mixed_6d_branch7x7dbl_3.bn', 8)}
    dst = {**conv('Mixed_6d.branch7x7dbl_3.conv', 8, 8), **bn('Mixed_6d.branch7x7dbl_3.bn', 8),
           **conv('Mixed_6d.branch7x7_2.conv', 8, 8), **bn('Mixed_6d.branch7x7_2.bn', 8)}
    sides = StructureSides(src, dst)
    crossed = sides.namesakes_crossed({
        'core.Mixed_6d_branch7x7dbl_3.conv.weight': 'Mixed_6d.branch7x7_2.conv.weight',
        'core.Mixed_6d_branch7x7_2.bn.bias': 'Mixed_6d.branch7x7_2.bn.bias',
        'core.Mixed_6d_branch7x7dbl_3.bn.bias': 'Mixed_6d.branch7x7dbl_3.bn.bias'})
    assert crossed == {'core.Mixed_6d_branch7x7dbl_3.conv.weight'}
    # and the other way round
    back = StructureSides(dst, src)
    assert back.namesakes_crossed(
        {'Mixed_6d.branch7x7_2.conv.weight': 'core.Mixed_6d_branch7x7dbl_3.conv.weight'}) == {
        'Mixed_6d.branch7x7_2.conv.weight'}


def test_keys_sorted_by_name_pair_equal_items_only_in_lists_of_one_shape():
    # equal blocks numbered in two stages of 2 and 1 against 1 and 2 (each
    # stage holds a scale too, so that no stage holds what another does):
    # in number order the third block would cross a stage boundary, so none
    # pairs by numbers
    def block(prefix):
        return {**linear(prefix + '.fc', 8, 8), **bn(prefix + '.norm', 8)}
    src = {'blocks.0.scale': (3,), **block('blocks.0.0'), **block('blocks.0.1'),
           'blocks.1.scale': (5,), **block('blocks.1.0')}
    dst = {'layers.0.gamma': (3,), **block('layers.0.0'),
           'layers.1.gamma': (5,), **block('layers.1.0'), **block('layers.1.1')}
    result = align_structure({k: src[k] for k in sorted(src)}, dst)
    assert not any('.fc.' in k or '.norm.' in k for k in result.mapping)
    # as two lists of 2 and 1 on both sides they pair in order
    dst = {'layers.0.gamma': (5,), **block('layers.0.0'), **block('layers.0.1'),
           'layers.1.gamma': (3,), **block('layers.1.0')}
    result = align_structure({k: src[k] for k in sorted(src)}, dst)
    assert {k: v for k, v in result.mapping.items() if '.fc.' in k} == {
        f'blocks.{s}.{b}.fc.{t}': f'layers.{s}.{b}.fc.{t}'
        for s, b in ((0, 0), (0, 1), (1, 0)) for t in ('weight', 'bias')}


def test_keys_sorted_by_name_pass_over_shapes_only_one_side_has():
    # the model's attention also saves an index table of a shape the
    # checkpoint has nowhere (torchvision's Swin against timm's): the blocks
    # still hold the same shapes where it matters, and pair whole
    src, dst = {}, {}
    for b in range(3):
        src.update({**bn(f'blocks.{b}.norm', 8), **linear(f'blocks.{b}.attn.qkv', 24, 8),
                    f'blocks.{b}.attn.table': (13, 2), **linear(f'blocks.{b}.fc', 8, 8)})
        dst.update({**bn(f'layers.l{b}.ln', 8), f'layers.l{b}.sa.rel_table': (13, 2),
                    f'layers.l{b}.sa.rel_index': (49,), **linear(f'layers.l{b}.sa.in_proj', 24, 8),
                    **linear(f'layers.l{b}.mlp', 8, 8)})
    result = align_structure({k: src[k] for k in sorted(src)}, dst)
    assert result.mapping['blocks.2.attn.table'] == 'layers.l2.sa.rel_table'
    assert result.mapping['blocks.1.norm.running_var'] == 'layers.l1.ln.running_var'
    assert len(result.mapping) == len(src)


def test_keys_sorted_by_name_read_a_b_c_as_numbers():
    # torchvision's regnet names a block's convolutions f.a, f.b, f.c; timm
    # calls them conv1, conv2, conv3, and a and c share a shape: the letters
    # number them, as they would q, k, v never (not the alphabet's start)
    src, dst = {}, {}
    for b in range(2):
        for n, (o, i) in zip((1, 2, 3), ((8, 8), (8, 4), (8, 8))):
            p = f's1.b{b + 1}.conv{n}'
            src.update({**conv(p + '.conv', o, i, k=1), **bn(p + '.bn', o)})
        for n, (o, i) in zip('abc', ((8, 8), (8, 4), (8, 8))):
            p = f'trunk.block1-{b}.f.{n}'
            dst.update({**conv(p + '.0', o, i, k=1), **bn(p + '.1', o)})
    truth = dict(zip(src, dst))
    result = align_structure({k: src[k] for k in sorted(src)}, dst)
    assert result.mapping == truth
    # and so do single layers named a, b, c
    src = {k: s for b in range(2) for n in (1, 2, 3)
           for k, s in linear(f'blocks.{b}.fc{n}', 8, 8 if n != 2 else 4).items()}
    dst = {k: s for b in range(2) for n in 'abc'
           for k, s in linear(f'layers.layer_{b}.{n}', 8, 8 if n != 'b' else 4).items()}
    result = align_structure({k: src[k] for k in sorted(src)}, dst)
    assert result.mapping == dict(zip(src, dst))


def _inverted_residuals(names, widths):
    """Blocks of an expansion, a depthwise convolution and a projection,
    each followed by a BatchNorm, the first two BatchNorms of one width;
    ``names``: the six module names of a block (timm's or HF's)."""
    keys = {}
    for i, (c_in, c) in enumerate(widths):
        conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3 = (f'blocks.{i}.{name}' for name in names)
        keys.update({f'{conv_pw}.weight': (c * 4, c_in, 1, 1), **bn(bn1, c * 4),
                     f'{conv_dw}.weight': (c * 4, 1, 3, 3), **bn(bn2, c * 4),
                     f'{conv_pwl}.weight': (c, c * 4, 1, 1), **bn(bn3, c)})
    return keys


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_twin_norms_of_a_sorted_checkpoint_follow_the_other_sides_registration(mode):
    # timm's names (bn1, bn2, bn3), keys sorted as a safetensors file lists
    # them, into HF's (expand_bn, depthwise_norm, project_bn) in
    # registration order: bn1 and bn2 are of one shape in every block, and
    # their numbers say which comes first
    widths = [(8, 16), (16, 24), (24, 32)]
    timm_names = ['conv_pw', 'bn1', 'conv_dw', 'bn2', 'conv_pwl', 'bn3']
    hf_names = ['expansion.expand_conv', 'expansion.expand_bn', 'depthwise_conv.depthwise_conv',
                'depthwise_conv.depthwise_norm', 'projection.project_conv',
                'projection.project_bn']
    src = dict(sorted(_inverted_residuals(timm_names, widths).items()))
    dst = _inverted_residuals(hf_names, widths)
    truth = {f'blocks.{i}.{a}.{rest}': f'blocks.{i}.{b}.{rest}'
             for i in range(len(widths)) for a, b in zip(timm_names, hf_names)
             for rest in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
             if f'blocks.{i}.{a}.{rest}' in src}
    assert associate(src, dst, association=mode).mapping == {k: truth[k] for k in src}
    # both sorted: no order on either side, the twins stay out
    mapping = associate(src, dict(sorted(dst.items())), association=mode).mapping
    assert all(truth[k] == v for k, v in mapping.items())
    assert 'blocks.0.bn1.weight' not in mapping
    # HF's keys sorted into timm's in registration order: HF's modules say
    # which layer each norm goes with (the projection's, of a shape of its
    # own, shows timm registers a norm just after its layer), timm's order
    # which norm that is
    back = {v: k for k, v in truth.items()}
    hf_sorted = dict(sorted(dst.items()))
    timm = _inverted_residuals(timm_names, widths)
    assert associate(hf_sorted, timm, association=mode).mapping == {k: back[k] for k in hf_sorted}
    # the same below a module of a checkpoint that holds a head beside it,
    # 36 groups (the sides narrowed to that module keep the model's order)
    six = widths + [(32, 40), (40, 48), (48, 56)]
    hf_six = _inverted_residuals(hf_names, six)
    headed = dict(sorted({**{f'net.{k}': v for k, v in hf_six.items()},
                          'classifier.weight': (10, 56), 'classifier.bias': (10,)}.items()))
    back_six = {f'net.blocks.{i}.{b}.{rest}': f'blocks.{i}.{a}.{rest}'
                for i in range(len(six)) for a, b in zip(timm_names, hf_names)
                for rest in ('weight', 'bias', 'running_mean', 'running_var',
                             'num_batches_tracked')}
    assert associate(headed, _inverted_residuals(timm_names, six), association=mode).mapping == {
        k: back_six[k] for k in headed if k in back_six}
    # the norms registered before their layers: the projection says so,
    # and each norm goes to the group before its layer's partner
    before = {}
    for i in range(len(widths)):
        block = {k: v for k, v in timm.items() if k.startswith(f'blocks.{i}.')}
        for conv, norm in (('conv_pw', 'bn1'), ('conv_dw', 'bn2'), ('conv_pwl', 'bn3')):
            before.update({k: v for k, v in block.items() if f'.{norm}.' in k})
            before.update({k: v for k, v in block.items() if f'.{conv}.' in k})
    assert associate(hf_sorted, before, association=mode).mapping == {
        k: back[k] for k in hf_sorted}


def _regnet_blocks(names, widths):
    """``{key: shape}`` of regnet-like blocks, each a 1x1 shortcut beside a
    1x1 conv, a grouped 3x3 conv, a squeeze-excite and a 1x1 conv (each
    conv with its BatchNorm), the five modules named ``names`` in the
    order given (shortcut, a, b, se, c)."""
    keys = {}
    for i, (c_in, c) in enumerate(widths):
        short, a, b, se, c3 = (f'blocks.{i}.{name}' for name in names)
        parts = {
            short: {f'{short}.0.weight': (c, c_in, 1, 1), **bn(f'{short}.1', c)},
            a: {f'{a}.0.weight': (c, c_in, 1, 1), **bn(f'{a}.1', c)},
            b: {f'{b}.0.weight': (c, 8, 3, 3), **bn(f'{b}.1', c)},
            se: {f'{se}.fc1.weight': (c // 4, c, 1, 1), f'{se}.fc1.bias': (c // 4,),
                 f'{se}.fc2.weight': (c, c // 4, 1, 1), f'{se}.fc2.bias': (c,)},
            c3: {f'{c3}.0.weight': (c, c, 1, 1), **bn(f'{c3}.1', c)}}
        for name in sorted(parts, key=lambda p: p.rpartition('.')[2].isdigit()):
            keys.update(parts[name])
    return keys


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_numbered_twins_whose_numbers_cross_the_registration_are_left_out(mode):
    # fuzz_real --cross --wide 24322: timm's regnet with a block flattened
    # into numbered children (0 conv1, 1 conv2, 2 se, 3 conv3, 5 the
    # shortcut, as timm registers them), keys sorted, into torchvision's
    # block (proj registered first, then f.a, f.b, f.se, f.c). The shortcut
    # and conv1 have one shape: read against torchvision's registration,
    # the numbers put 0 on proj, but 1..3 on f.b..f.c say 0 comes after
    # proj and 5 after f.c, and no order of the two agrees with both
    widths = [(16, 32), (32, 48)]
    tv = ['proj', 'f.a', 'f.b', 'f.se', 'f.c']
    dst = _regnet_blocks(tv, widths)

    def truth(numbers):
        return {f'blocks.{i}.{n}.{rest}': f'blocks.{i}.{name}.{rest}'
                for i in range(len(widths)) for n, name in zip(numbers, tv)
                for rest in ('0.weight', '1.weight', '1.bias', '1.running_mean',
                             '1.running_var', '1.num_batches_tracked', 'fc1.weight',
                             'fc1.bias', 'fc2.weight', 'fc2.bias')
                if f'blocks.{i}.{name}.{rest}' in dst}

    timm = ['5', '0', '1', '2', '3']
    flat = dict(sorted(_regnet_blocks(timm, widths).items()))
    mapping = associate(flat, dst, association=mode).mapping
    assert mapping == {k: v for k, v in truth(timm).items() if k.split('.')[2] not in '05'}
    # numbered in torchvision's order (the shortcut 0): the numbers agree
    # with the registration, and everything is placed
    ordered = dict(sorted(_regnet_blocks(['0', '1', '2', '3', '4'], widths).items()))
    assert associate(ordered, dst, association=mode).mapping == truth(['0', '1', '2', '3', '4'])


def _hf_stage(blocks, c_in, c):
    """``{key: shape}`` of a stage of HF ResNet basic blocks (the shortcut
    registered first, the two convolutions as ``layer.0`` and ``layer.1``)."""
    keys = {}
    for b in range(blocks):
        p = f'stages.0.layers.{b}'
        if b == 0:
            keys.update({f'{p}.shortcut.convolution.weight': (c, c_in, 1, 1),
                         **bn(f'{p}.shortcut.normalization', c)})
        for n in range(2):
            width = c_in if b == n == 0 else c
            keys.update({f'{p}.layer.{n}.convolution.weight': (c, width, 3, 3),
                         **bn(f'{p}.layer.{n}.normalization', c)})
    return keys


def _tv_stage(blocks, c_in, c):
    """The same stage as torchvision's resnet registers it (the shortcut
    last, as ``downsample``)."""
    keys = {}
    for b in range(blocks):
        p = f'layer1.{b}'
        keys.update({f'{p}.conv1.weight': (c, c_in if b == 0 else c, 3, 3), **bn(f'{p}.bn1', c),
                     f'{p}.conv2.weight': (c, c, 3, 3), **bn(f'{p}.bn2', c)})
        if b == 0:
            keys.update({f'{p}.downsample.0.weight': (c, c_in, 1, 1), **bn(f'{p}.downsample.1', c)})
    return keys


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_shorter_stage_of_another_library_is_not_spread_over_a_longer_one(mode):
    # HF's ResNet-18 into torchvision's resnet34 (real-hf-resnet18->tv-
    # resnet34 in the corpus): the shortcut registered first lined up HF's
    # two blocks against torchvision's three so that block 0's second
    # convolution went to block 1 and block 1 to block 2 (18 wrong). A
    # block goes to the one block that holds its shapes, and a block of a
    # list with an empty twin is a guess
    def hf_name(key):
        key = key.replace('stages.0.layers.', 'layer1.')
        key = key.replace('.shortcut.convolution', '.downsample.0')
        key = key.replace('.shortcut.normalization', '.downsample.1')
        for n in range(2):
            key = key.replace(f'.layer.{n}.convolution', f'.conv{n + 1}')
            key = key.replace(f'.layer.{n}.normalization', f'.bn{n + 1}')
        return key

    stem = {'embedder.convolution.weight': (16, 3, 7, 7), **bn('embedder.normalization', 16)}
    head = {'classifier.1.weight': (10, 32), 'classifier.1.bias': (10,)}
    src = {**stem, **_hf_stage(2, 16, 32), **head}
    dst = {'conv1.weight': (16, 3, 7, 7), **bn('bn1', 16), **_tv_stage(3, 16, 32),
           'fc.weight': (10, 32), 'fc.bias': (10,)}
    mapping = associate(src, dst, association=mode).mapping
    wrong = {k: v for k, v in mapping.items() if k.startswith('stages.') and hf_name(k) != v}
    assert wrong == {}
    # the shortcut and the first convolution, of shapes block 0 alone has,
    # stay in block 0
    block0 = 'stages.0.layers.0'
    assert mapping[f'{block0}.shortcut.convolution.weight'] == 'layer1.0.downsample.0.weight'
    assert mapping[f'{block0}.layer.0.convolution.weight'] == 'layer1.0.conv1.weight'
    # the other way, torchvision's three blocks into HF's two: HF's block 0
    # takes nothing from torchvision's block 1
    back = associate(dst, src, association=mode).mapping
    names = {hf_name(k): k for k in src}
    assert {k: v for k, v in back.items() if k.startswith('layer1.') and names[k] != v} == {}


def _cut_stage(cut, c=8):
    """A stage of alike transformer blocks cut into named parts, ``cut`` as
    ``[(part, number of blocks), ...]``, under a stem and a head."""
    keys = {'stem.weight': (c, 3, 4, 4), 'stem.bias': (c,)}
    for part, n in cut:
        for i in range(n):
            p = f'stage2.{part}.{i}'
            keys.update({**bn(f'{p}.norm1', c), f'{p}.attn.qkv.weight': (3 * c, c, 1, 1),
                         f'{p}.attn.proj.weight': (c, c, 1, 1), **bn(f'{p}.norm2', c),
                         f'{p}.mlp.fc1.weight': (4 * c, c, 1, 1),
                         f'{p}.mlp.fc2.weight': (c, 4 * c, 1, 1)})
    keys.update({'head.weight': (10, c), 'head.bias': (10,)})
    return keys


@pytest.mark.parametrize('mode', ['structure', 'auto', 'embedding', 'isomorphism'])
@pytest.mark.parametrize('src_cut, dst_cut', [
    # fuzz_real --wider 29302: visformer's stage2 of four alike blocks, cut
    # into parts of 1, 1 and 2 whose names a safetensors file sorts
    # (extractor = blocks 2-3 first), into a model cut 1, 2, 1: every tree
    # mode paired the two-block parts, blocks 2 and 3 into 1 and 2 (28 wrong)
    ([('stage', 1), ('model', 1), ('extractor', 2)], [('body', 1), ('net', 2), ('blocks', 1)]),
    # the same stage cut in halves, sorted (a = blocks 2-3 first), into a
    # whole list: the name modes paired a.0 and a.1 with blocks 0 and 1
    ([('b', 2), ('a', 2)], [('blocks', 4)]),
    ([('z', 3), ('a', 1)], [('blocks', 4)]),
])
def test_parts_of_a_stage_cut_otherwise_are_not_paired_by_their_sizes(mode, src_cut, dst_cut):
    src = dict(sorted(_cut_stage(src_cut).items()))
    dst = _cut_stage(dst_cut)
    mapping = associate(src, dst, association=mode).mapping
    assert _off_their_block(mapping, src, src_cut, dst, dst_cut) == {}
    assert mapping['stem.weight'] == 'stem.weight'


def _off_their_block(mapping, src, src_cut, dst, dst_cut):
    """The pairs of ``mapping`` between two stages of ``_cut_stage`` (or
    ``_stage_with_shortcut``) that join keys of two blocks, or of two
    places in a block: the blocks counted through the parts in the order
    of their cut."""
    blocks = []  # per side: key -> (block number, key in the block)
    for side, cut in ((src, src_cut), (dst, dst_cut)):
        starts = dict(zip((p for p, _ in cut), itertools.accumulate([0] + [n for _, n in cut])))
        blocks.append({})
        for k in side:
            if k.startswith('stage2.'):
                _, part, i, rest = k.split('.', 3)
                blocks[-1][k] = (starts[part] + int(i), rest)
    return {k: v for k, v in mapping.items() if blocks[0].get(k) != blocks[1].get(v)}


def _stage_with_shortcut(cut, c=8):
    """A stage of bottleneck blocks cut into named parts, ``cut`` as
    ``[(part, number of blocks), ...]``: block 0 narrows ``2c`` channels to
    ``c`` and holds a shortcut, the others are alike (a resnet's stage)."""
    keys = {'stem.weight': (2 * c, 3, 3, 3)}
    block = 0
    for part, n in cut:
        for i in range(n):
            p = f'stage2.{part}.{i}'
            keys.update({f'{p}.conv1.weight': (c, 2 * c if block == 0 else c, 1, 1),
                         **bn(f'{p}.bn1', c), f'{p}.conv2.weight': (c, c, 3, 3),
                         **bn(f'{p}.bn2', c)})
            if block == 0:
                keys.update({f'{p}.shortcut.0.weight': (c, 2 * c, 1, 1),
                             **bn(f'{p}.shortcut.1', c)})
            block += 1
    return keys


@pytest.mark.parametrize('mode', ['structure', 'auto', 'embedding', 'isomorphism'])
@pytest.mark.parametrize('listing', ['as registered', 'sorted'])
@pytest.mark.parametrize('stage, src_cut, dst_cut', [
    # a stage's first blocks moved under a new name, registered first, the
    # rest kept under the stage's name and numbered from 0 again (timm's
    # deit_tiny with early = blocks[:4]): every tree mode paired blocks.i
    # with blocks.i, four blocks off (96 wrong); here 56 wrong in each
    (_cut_stage, [('blocks', 6)], [('early', 2), ('blocks', 4)]),
    (_cut_stage, [('early', 2), ('blocks', 4)], [('blocks', 6)]),
    # its mirror, the first blocks kept under the name and the rest
    # registered first: the same keys, the names right by luck or not
    # (28 wrong in each mode here, none on deit_tiny)
    (_cut_stage, [('blocks', 6)], [('tail', 4), ('blocks', 2)]),
    # both sides cut, otherwise (fuzz_real --wider --sorted 35070:
    # crossvit's blocks wrapped as blocks.stage.{0,1,2} against a model's
    # blocks.{features,stem,stage}.0; 96 wrong in auto and embedding)
    (_cut_stage, [('blocks', 2), ('tail', 4)], [('early', 4), ('blocks', 2)]),
    (_cut_stage, [('blocks', 2), ('tail', 4)], [('blocks', 3), ('tail', 3)]),
    # a resnet50's layer3 cut so (layer3_first = [:3]), its keys sorted:
    # the name modes filled the model's layer3.0, a block of the alike
    # kind, from the checkpoint's layer3.0, the one with the shortcut (17
    # wrong); here 24 to 60 wrong in each mode
    (_stage_with_shortcut, [('blocks', 6)], [('first', 3), ('blocks', 3)]),
    (_stage_with_shortcut, [('first', 3), ('blocks', 3)], [('blocks', 6)]),
    (_stage_with_shortcut, [('blocks', 6)], [('first', 1), ('blocks', 5)]),
    (_stage_with_shortcut, [('blocks', 6)], [('tail', 4), ('blocks', 2)]),
])
def test_a_part_keeping_the_stages_name_is_not_placed_by_that_name(
        mode, listing, stage, src_cut, dst_cut):
    src, dst = stage(src_cut), stage(dst_cut)
    if listing == 'sorted':
        src = dict(sorted(src.items()))
    mapping = associate(src, dst, association=mode).mapping
    assert _off_their_block(mapping, src, src_cut, dst, dst_cut) == {}
    if stage is _cut_stage:
        assert mapping['stem.weight'] == 'stem.weight'
    else:  # the one block with a shortcut has one place
        (shortcut,) = [k for k in src if k.endswith('.0.shortcut.0.weight')]
        assert mapping[shortcut].endswith('.0.shortcut.0.weight')


@pytest.mark.parametrize('mode', ['structure', 'auto', 'embedding', 'isomorphism'])
@pytest.mark.parametrize('stage', [_cut_stage, _stage_with_shortcut])
def test_a_part_keeping_the_stages_name_and_its_first_blocks_is_placed(mode, stage):
    cut = [('blocks', 2), ('tail', 4)]
    src, dst = stage([('blocks', 6)]), stage(cut)
    mapping = associate(src, dst, association=mode).mapping
    assert _off_their_block(mapping, src, [('blocks', 6)], dst, cut) == {}
    assert sorted(mapping.values()) == sorted(dst)


def test_parts_of_a_stage_in_registration_order_pair_by_their_places():
    ordered = _cut_stage([('a', 1), ('b', 1), ('c', 2)])
    model = _cut_stage([('x', 1), ('y', 2), ('z', 1)])
    mapping = associate(ordered, model, association='structure').mapping
    assert mapping['stage2.c.0.mlp.fc1.weight'] == 'stage2.y.1.mlp.fc1.weight'
    assert mapping['stage2.c.1.mlp.fc1.weight'] == 'stage2.z.0.mlp.fc1.weight'
