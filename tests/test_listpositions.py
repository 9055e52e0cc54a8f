"""
Tests of :mod:`torch_liberator.listpositions`: a list position is a name
only where the two lists agree up to it (hunt 4: a vgg11 checkpoint into
vgg11_bn, where every convolution after the first sits at another index:
the name modes shoved vgg11's convolutions into other convolutions of
vgg11_bn and copied its eighth into the sixth, 6 wrong in strict). Judged by
values on the real pair in tests/test_corpus.py (its fast slice).
"""
import pytest

from conftest import requires
from torch_liberator.association import associate
from torch_liberator.listpositions import (across_other_cuts, against_list_shapes,
                                           free_twin_items, list_positions, positions_disagree,
                                           witnessed_offsets)

#: models are built on the meta device unless a test is marked real_tensors
pytestmark = pytest.mark.usefixtures('models_on_meta')


def test_list_positions_are_the_labels_that_hold_tensors():
    keys = ['features.0.weight', 'features.3.weight', 'features.3.bias', 'layer1.0.conv1.weight',
            'layer1.1.conv1.weight', 'fc.weight']
    assert list_positions(keys) == {'features': {0, 3}, 'layer1': {0, 1}}


def test_list_positions_read_every_level_of_nested_lists():
    # an efficientnet's features.{stage}.{block}.block.{layer}.{0,1}, a
    # top-level list (nn.Sequential(*children)), and a module reached
    # again after its list was read
    keys = ['0.weight', 'features.1.0.block.0.0.weight', 'features.1.0.block.0.1.weight',
            'features.1.0.block.2.0.weight', 'features.2.1.block.0.0.weight',
            'features.1.3.block.1.fc1.weight', '2.fc.weight']
    assert list_positions(keys) == {
        '': {0, 2}, 'features': {1, 2}, 'features.1': {0, 3}, 'features.2': {1},
        'features.1.0.block': {0, 2}, 'features.1.0.block.0': {0, 1},
        'features.1.0.block.2': {0}, 'features.2.1.block': {0}, 'features.2.1.block.0': {0},
        'features.1.3.block': {1}}


def test_a_position_after_an_inserted_layer_names_another_layer():
    # vgg11's convolutions at 0, 3, 6, 8; vgg11_bn's at 0, 4, 8 with norms at 1, 5
    src = ['f.0.weight', 'f.3.weight', 'f.6.weight', 'f.8.weight']
    dst = ['f.0.weight', 'f.1.weight', 'f.4.weight', 'f.5.weight', 'f.8.weight']
    mapping = {'f.0.weight': 'f.0.weight', 'f.8.weight': 'f.8.weight'}
    assert positions_disagree(mapping, src, dst) == {'f.8.weight'}


def test_truncated_sliced_and_renumbered_lists_keep_their_pairs():
    full = [f'features.{i}.weight' for i in (0, 2, 5, 7, 10)]
    # a checkpoint of features[:6] (a prefix), a slice features[2:8] that keeps its labels
    assert positions_disagree({k: k for k in full[:3]}, full[:3], full) == set()
    sliced = [f'slice.{i}.weight' for i in (2, 5, 7)]
    assert positions_disagree({f'features.{i}.weight': f'slice.{i}.weight' for i in (2, 5, 7)},
                              full, sliced) == set()
    # a block removed in place (pruned, delattr) keeps the other labels
    pruned = [k for k in full if k != 'features.5.weight']
    assert positions_disagree({k: k for k in pruned}, pruned, full) == set()
    # renumbered parts: the labels differ, so no pair rests on them
    assert positions_disagree({'features.5.weight': 'second.0.weight'}, full,
                              ['second.0.weight', 'second.1.weight']) == set()


def test_the_moved_convolutions_are_reported_with_their_place():
    src = {'features.0.weight': (8, 3, 3, 3), 'features.3.weight': (16, 8, 3, 3),
           'features.6.weight': (16, 16, 3, 3)}
    dst = {'features.0.weight': (8, 3, 3, 3), 'features.1.weight': (8,),
           'features.4.weight': (16, 8, 3, 3), 'features.6.weight': (16, 16, 3, 3)}
    result = associate(src, dst, association='strict')
    assert result.mapping == {'features.0.weight': 'features.0.weight'}
    assert result.ambiguous == {'features.6.weight': ('features.6.weight',)}


def test_a_renumbered_list_shifts_every_item_the_witness_pairs():
    # nn.Sequential(*features[2:]): the checkpoint's items 2, 3, 5 are the
    # model's 0, 1, 3, as the witness (the structure mode) found by what
    # they hold; the same label '3' on both sides names two layers, and
    # item 4 at 2 keeps the offset
    witness = {'features.2.weight': 'body.0.weight', 'features.5.weight': 'body.3.weight'}
    names = {'features.3.weight': 'body.3.weight', 'features.2.weight': 'body.0.weight',
             'features.4.weight': 'body.2.weight', 'fc.weight': 'head.weight'}
    assert witnessed_offsets(names, witness) == {'features.3.weight': False,
                                                 'features.4.weight': True}
    # a slice that keeps its labels has offset 0 throughout
    kept = {'features.2.weight': 'body.2.weight', 'features.5.weight': 'body.5.weight'}
    assert witnessed_offsets({'features.3.weight': 'body.3.weight'}, kept) == {
        'features.3.weight': True}
    # two offsets (an item deleted in the middle, the rest renumbered): no
    # one offset to judge a pair by
    deleted = {'layer3.0.conv.weight': 'layer3.0.conv.weight',
               'layer3.3.conv.weight': 'layer3.2.conv.weight'}
    assert witnessed_offsets({'layer3.1.conv.weight': 'layer3.1.conv.weight'}, deleted) == {}


def test_a_list_nested_in_an_item_does_not_stand_for_the_outer_list():
    # a mobilenet block's inner list pairs one item with the outer list's
    # item at another offset only by chance: with one item seen, only lists
    # as deep in lists (inner with inner, outer with outer) are compared
    witness = {'features.1.conv.0.weight': 'features.1.conv.0.weight'}
    names = {'features.1.conv.1.weight': 'features.1.conv.1.weight'}
    assert witnessed_offsets(names, witness) == {'features.1.conv.1.weight': True}
    # the inner lists themselves: item 0 with item 0, so item 1 with 2 is refuted
    assert witnessed_offsets({'features.1.conv.1.weight': 'features.1.conv.2.weight'},
                             witness) == {'features.1.conv.1.weight': False}


@pytest.mark.parametrize('mode', ['structure', 'auto', 'embedding', 'isomorphism', 'prefix-hack',
                                  'strict', 'module-hack'])
@pytest.mark.parametrize('reverse', [False, True])
def test_an_fpns_alike_layer_blocks_follow_its_inner_blocks(mode, reverse):
    # a retinanet's FPN starts a level later than a fasterrcnn's: its
    # inner_blocks (one per input width) pair item i with item i + 1, so
    # its layer_blocks (all alike) are not their namesakes (every mode put
    # them there before, 6 tensors, both ways; the exact modes, by their
    # identical keys, until they took the same check)
    requires('torchvision')
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    short = resnet_fpn_backbone(backbone_name='resnet18', weights=None, returned_layers=[2, 3, 4],
                                extra_blocks=LastLevelP6P7(256, 256), trainable_layers=5)
    longer = resnet_fpn_backbone(backbone_name='resnet18', weights=None, trainable_layers=5)
    src, dst = ({k: tuple(v.shape) for k, v in m.state_dict().items()} for m in (short, longer))
    if reverse:
        src, dst = dst, src
    mapping = associate(src, dst, association=mode).mapping
    fpn = {k[4:]: v[4:] for k, v in mapping.items() if k.startswith('fpn.')}
    shift = -1 if reverse else 1
    for k, v in fpn.items():
        i, j = int(k.split('.')[1]), int(v.split('.')[1])
        assert k.split('.')[0] == v.split('.')[0] == 'inner_blocks' and j - i == shift, (k, v)
    if mode in ('structure', 'auto'):
        assert len(fpn) == 6  # the three inner blocks that pair, weight and bias
        assert all(k == v for k, v in mapping.items() if not k.startswith('fpn.'))


def test_alike_items_need_a_sibling_of_as_many_unlike_items():
    src = {'inner.0.w': (4, 8), 'inner.1.w': (4, 16), 'out.0.w': (4, 4), 'out.1.w': (4, 4)}
    dst = {'inner.0.w': (4, 2), 'inner.1.w': (4, 8), 'inner.2.w': (4, 16),
           'out.0.w': (4, 4), 'out.1.w': (4, 4), 'out.2.w': (4, 4)}
    names = {'out.0.w': 'out.0.w', 'out.1.w': 'out.1.w'}
    assert against_list_shapes(names, src, dst) == {'out.0.w', 'out.1.w'}
    # a sibling of another length says nothing of this list's items
    longer = {**dst, 'out.3.w': (4, 4)}
    assert against_list_shapes(names, src, longer) == set()
    # nor a sibling whose items are alike too
    alike = {k: (4, 4) for k in src}
    assert against_list_shapes(names, alike, {k: (4, 4) for k in dst}) == set()
    # lists of one length: no offset to read
    same = {k: v for k, v in dst.items() if '.2.' not in k}
    assert against_list_shapes(names, src, same) == set()


def test_list_items_are_told_by_their_kernels_with_or_without_norms():
    # fasterrcnn's v2 FPN has a BatchNorm in each block, retinanet's v2 none:
    # the blocks' convolutions still show the offset (retinanet's starts a
    # level later), and no block goes to its namesake
    def fpn(widths, norm):
        out = {}
        for i, width in enumerate(widths):
            for part, kernel in (('inner_blocks', (8, width, 1, 1)),
                                 ('layer_blocks', (8, 8, 3, 3))):
                out[f'fpn.{part}.{i}.0.weight'] = kernel
                if norm:
                    out.update({f'fpn.{part}.{i}.1.{name}': (8,) for name in ('weight', 'bias')})
                else:
                    out[f'fpn.{part}.{i}.0.bias'] = (8,)
        return out
    src, dst = fpn([4, 8, 16, 32], norm=True), fpn([8, 16, 32], norm=False)
    names = {k: k for k in src if k in dst and src[k] == dst[k]}
    names.update({'fpn.inner_blocks.1.0.weight': 'fpn.inner_blocks.1.0.weight'})  # a shove
    assert against_list_shapes(names, src, dst) == set(names)
    kept = {'fpn.inner_blocks.1.0.weight': 'fpn.inner_blocks.0.0.weight',
            'fpn.layer_blocks.1.0.weight': 'fpn.layer_blocks.0.0.weight'}
    assert against_list_shapes(kept, src, dst) == set()


def _blocks(prefix, count, names):
    return {f'{prefix}.{b}.{n}.weight': (32, 32) for b in range(count) for n in names}


def test_a_block_placed_where_an_empty_twin_fits_as_well_is_left_out():
    # HF's Swin-T (6 blocks in its third stage) into torchvision's Swin-S
    # (18): order sent HF's block 5 to torchvision's block 17, where
    # blocks 6 to 16, empty and of the same shapes, fit as well
    src = _blocks('layers.2.blocks', 6, ['attention.output.dense', 'output.dense'])
    dst = _blocks('features.5', 18, ['attn.proj', 'mlp.3'])
    guess = {'layers.2.blocks.5.output.dense.weight': 'features.5.17.mlp.3.weight'}
    assert free_twin_items(guess, src, dst) == set(guess)
    # every item of the model's list filled (a list split in two halves
    # that each take six blocks): no twin is free, nothing is a guess
    halves = {**_blocks('first', 3, ['proj']), **_blocks('second', 3, ['proj'])}
    whole = _blocks('blocks', 6, ['attn'])
    split = {f'blocks.{b}.attn.weight': f'{"first" if b < 3 else "second"}.{b % 3}.proj.weight'
             for b in range(6)}
    assert free_twin_items(split, whole, halves) == set()
    # the checkpoint's list the shorter, each block at its own label
    # (timm's Swin-T into torchvision's Swin-S, names below agreeing or
    # not): the label is the item's name, as the name modes read it
    same = {f'layers.2.blocks.{b}.output.dense.weight': f'features.5.{b}.mlp.3.weight'
            for b in range(6)}
    assert free_twin_items(same, src, dst) == set()
    # a free twin on the checkpoint's side is a guess too (12 blocks into 6)
    longer = _blocks('blocks', 12, ['attn'])
    assert free_twin_items({'blocks.11.attn.weight': 'first.2.proj.weight'},
                           longer, halves) == {'blocks.11.attn.weight'}


def test_parts_of_a_run_pair_only_at_their_places_in_it():
    # a stage of alike blocks cut in two named parts on both sides, 4 + 2
    # and 2 + 4: pairs that keep each block's place in the run are kept,
    # the two-block parts paired by their size are not
    src = {**_blocks('stage.low', 4, ['fc']), **_blocks('stage.high', 2, ['fc'])}
    dst = {**_blocks('stage.first', 2, ['lin']), **_blocks('stage.rest', 4, ['lin'])}
    by_place = {f'stage.low.{b}.fc.weight': (f'stage.first.{b}.lin.weight' if b < 2 else
                                             f'stage.rest.{b - 2}.lin.weight')
                for b in range(4)}
    assert across_other_cuts(by_place, src, dst) == set()
    by_size = {f'stage.high.{b}.fc.weight': f'stage.first.{b}.lin.weight' for b in range(2)}
    assert across_other_cuts(by_size, src, dst) == set(by_size)
    # parts of one name on both sides: the names decide
    same = {f'stage.high.{b}.fc.weight': f'stage.high.{b}.fc.weight' for b in range(2)}
    dst_same = {**_blocks('stage.high', 2, ['fc']), **_blocks('stage.low', 4, ['fc'])}
    assert across_other_cuts(same, src, dst_same) == set()
    # numbered parts keep their order when the keys come sorted
    # ('stages.10' before 'stages.2'): place 0 of the run is stages.2's block
    numbered = dict(sorted({**_blocks('stages.2', 1, ['fc']),
                            **_blocks('stages.10', 1, ['fc'])}.items()))
    model = {**_blocks('net.a', 1, ['fc']), **_blocks('net.b', 1, ['fc'])}
    assert across_other_cuts({'stages.2.0.fc.weight': 'net.a.0.fc.weight'},
                             numbered, model) == set()
    assert across_other_cuts({'stages.10.0.fc.weight': 'net.a.0.fc.weight'},
                             numbered, model) == {'stages.10.0.fc.weight'}
    # a run that one side cuts, in an order lost (sorted, enough keys to
    # tell), against a list of as many items: the numbers in the parts say
    # nothing; in registration order other checks judge it
    names = ['fc', 'proj', 'out', 'lin', 'up']
    halves = {**_blocks('stage.b', 4, names), **_blocks('stage.a', 4, names)}
    whole = _blocks('stage.all', 8, names)
    by_number = {f'stage.a.{b}.fc.weight': f'stage.all.{b}.fc.weight' for b in range(4)}
    assert across_other_cuts(by_number, dict(sorted(halves.items())), whole) == set(by_number)
    assert across_other_cuts(by_number, halves, whole) == set()
    # a part that holds another layer too is placed by it (VGG's slices)
    anchored = dict(sorted({**halves, 'stage.a.4.fc.weight': (16, 32)}.items()))
    assert across_other_cuts(by_number, anchored, whole) == set()
    # two towers of one module, four and four, against a model's one tower
    # of four: not one run, the check stays out of it
    towers = {**_blocks('head.cls_convs', 4, ['conv']), **_blocks('head.reg_convs', 4, ['conv'])}
    tower = _blocks('head.cls.conv', 4, ['conv'])
    assert across_other_cuts({'head.reg_convs.0.conv.weight': 'head.cls.conv.0.conv.weight'},
                             towers, tower) == set()


def test_a_part_keeping_the_lists_name_is_not_its_head_by_that_name():
    # a list of six alike blocks against the same six cut as early = [:2]
    # and blocks = [2:], numbered from 0 again: blocks.0 is the run's
    # block 2 by its place, block 0 by its name; either may be so (the
    # first blocks kept under the name, the rest registered first)
    whole = _blocks('blocks', 6, ['fc'])
    cut = {**_blocks('early', 2, ['fc']), **_blocks('blocks', 4, ['fc'])}
    by_name = {f'blocks.{b}.fc.weight': f'blocks.{b}.fc.weight' for b in range(4)}
    assert across_other_cuts(by_name, whole, cut) == set(by_name)
    by_place = {f'blocks.{b + 2}.fc.weight': f'blocks.{b}.fc.weight' for b in range(4)}
    assert across_other_cuts(by_place, whole, cut) == set(by_place)
    # a block of its own kind at the stage's start says which: the numbers
    # cannot hold, the place does
    odd = {**whole, 'blocks.0.fc.weight': (32, 64)}
    odd_cut = {**cut, 'early.0.fc.weight': (32, 64)}
    assert across_other_cuts(by_place, odd, odd_cut) == set()
    # the part holding the first blocks under the name: name and place agree
    head = {**_blocks('blocks', 2, ['fc']), **_blocks('tail', 4, ['fc'])}
    assert across_other_cuts({'blocks.1.fc.weight': 'blocks.1.fc.weight'}, whole, head) == set()
    # registered after the rest, its place is another (the names may be
    # right, but nothing else says so)
    last = {**_blocks('tail', 4, ['fc']), **_blocks('blocks', 2, ['fc'])}
    assert across_other_cuts({'blocks.1.fc.weight': 'blocks.1.fc.weight'},
                             whole, last) == {'blocks.1.fc.weight'}
    # ... and so is the part beside it: its place, head or tail, rests on
    # which part the name belongs to
    rest = {f'blocks.{b + 2}.fc.weight': f'tail.{b}.fc.weight' for b in range(4)}
    assert across_other_cuts(rest, whole, last) == set(rest)
    # registered in the run's order, the name and the place agree
    assert across_other_cuts(rest, whole, head) == set()
    # one cut on both sides (two towers of one head, in either order):
    # the names decide
    towers = {**_blocks('head.cls_convs', 4, ['conv']), **_blocks('head.reg_convs', 4, ['conv'])}
    swapped = {**_blocks('head.reg_convs', 4, ['conv']), **_blocks('head.cls_convs', 4, ['conv'])}
    same = {f'head.cls_convs.{b}.conv.weight': f'head.cls_convs.{b}.conv.weight' for b in range(4)}
    assert across_other_cuts(same, towers, swapped) == set()


def test_a_lists_one_odd_item_shows_where_a_shorter_list_lies_in_it():
    # a stage of one block with a shortcut and five alike blocks, against
    # the five alike: they are its blocks 1-5, not 0-4 by number
    def block(conv1, shortcut=False):
        return [('conv1', (8, conv1, 1, 1)), ('conv2', (8, 8, 3, 3))] + (
            [('shortcut', (8, 16, 1, 1))] if shortcut else [])
    stage = {f'layer3.{b}.{n}.weight': shape for b in range(6)
             for n, shape in block(16 if b == 0 else 8, b == 0)}
    rest = {f'layer3.{b}.{n}.weight': shape for b in range(5) for n, shape in block(8)}
    by_number = {f'layer3.{b}.conv2.weight': f'layer3.{b}.conv2.weight' for b in range(1, 5)}
    assert against_list_shapes(by_number, stage, rest) == set(by_number)
    by_place = {f'layer3.{b}.conv2.weight': f'layer3.{b - 1}.conv2.weight' for b in range(1, 6)}
    assert against_list_shapes(by_place, stage, rest) == set()
    # lists of alike items alone, or one offset only possible: no evidence
    alike = {k: v for k, v in stage.items() if not k.startswith('layer3.0.')}
    assert against_list_shapes({'layer3.1.conv2.weight': 'layer3.3.conv2.weight'},
                               alike, rest) == set()
