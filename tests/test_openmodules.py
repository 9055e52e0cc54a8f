"""
Tests of :mod:`torch_liberator.openmodules`: modules the structure alignment
left open (two of one shape, registered in another order on each side) are
placed by the pairs around them, and never by a region that is mostly open.
"""
import pytest
import torch

from conftest import requires
from torch_liberator import load_partial_state
from torch_liberator.association import associate
from torch_liberator.keygroups import KeyGroups
from torch_liberator.openmodules import fill_open_modules as _fill


def fill_open_modules(src, dst, mapping, sep):
    return _fill(KeyGroups(src, sep), KeyGroups(dst, sep), mapping, sep)


def _block(side, i, width, shortcut, layers):
    """A bottleneck's shortcut then three layers; the middle one has the shortcut's shape."""
    shapes = [(width, 4), (4, 4), (width, 4), (4, width)]
    return {f'{side}.{i}.{name}.weight': shape for name, shape in zip([shortcut, *layers], shapes)}


def _two_blocks(side, shortcut, layers):
    return {**_block(side, 0, 8, shortcut, layers), **_block(side, 1, 9, shortcut, layers)}


SRC = _two_blocks('stages', 'shortcut', ['layer.0', 'layer.1', 'layer.2'])
DST = _two_blocks('layer1', 'downsample', ['conv1', 'conv2', 'conv3'])
PAIRED = {'stages.0.layer.0.weight': 'layer1.0.conv1.weight',
          'stages.0.layer.2.weight': 'layer1.0.conv3.weight',
          'stages.1.shortcut.weight': 'layer1.1.downsample.weight',
          'stages.1.layer.0.weight': 'layer1.1.conv1.weight',
          'stages.1.layer.1.weight': 'layer1.1.conv2.weight',
          'stages.1.layer.2.weight': 'layer1.1.conv3.weight'}


def test_two_open_modules_of_one_shape_are_placed_by_analogy():
    assert fill_open_modules(SRC, DST, PAIRED, '.') == {
        'stages.0.shortcut.weight': 'layer1.0.downsample.weight',
        'stages.0.layer.1.weight': 'layer1.0.conv2.weight'}


def test_without_an_analogy_two_open_modules_of_one_shape_stay_open():
    # block 1's shortcut and middle layer are open too, and the model's
    # middle layer has a name of its own: nothing says which is which
    dst = {k.replace('conv2', 'mid'): v for k, v in DST.items()}
    paired = {s: d for s, d in PAIRED.items() if 'layer.1' not in s and 'shortcut' not in s}
    assert fill_open_modules(SRC, dst, paired, '.') == {}
    # nor do names alike: layer.1 is conv2 only where a block says so
    assert fill_open_modules(SRC, DST, paired, '.') == {}


def test_a_block_of_another_design_is_no_analogy():
    # timm's efficientnet: a depthwise-separable first block (conv_dw, bn1,
    # conv_pw, bn2), then inverted residuals (conv_pw, bn1, conv_dw, bn2,
    # conv_pwl, bn3) whose bn1 and bn2 are of one shape; HF's names. The
    # first block's bn1 is its depthwise norm, but there conv_pw is the
    # projection, here the expansion: it says nothing of this bn1
    # (HF's EfficientNet from timm's keys sorted: 150 norms swapped)
    src = {'b.0.bn1.w': (8,), 'b.0.bn2.w': (4,), 'b.0.conv_dw.w': (8, 1, 3, 3),
           'b.0.conv_pw.w': (4, 8),
           'b.1.bn1.w': (16,), 'b.1.bn2.w': (16,), 'b.1.bn3.w': (6,),
           'b.1.conv_dw.w': (16, 1, 3, 3), 'b.1.conv_pw.w': (16, 4), 'b.1.conv_pwl.w': (6, 16)}
    dst = {'e.0.dw.conv.w': (8, 1, 3, 3), 'e.0.dw.norm.w': (8,), 'e.0.proj.conv.w': (4, 8),
           'e.0.proj.bn.w': (4,),
           'e.1.exp.conv.w': (16, 4), 'e.1.exp.bn.w': (16,), 'e.1.dw.conv.w': (16, 1, 3, 3),
           'e.1.dw.norm.w': (16,), 'e.1.proj.conv.w': (6, 16), 'e.1.proj.bn.w': (6,)}
    paired = {'b.0.bn1.w': 'e.0.dw.norm.w', 'b.0.bn2.w': 'e.0.proj.bn.w',
              'b.0.conv_dw.w': 'e.0.dw.conv.w', 'b.0.conv_pw.w': 'e.0.proj.conv.w',
              'b.1.bn3.w': 'e.1.proj.bn.w', 'b.1.conv_dw.w': 'e.1.dw.conv.w',
              'b.1.conv_pw.w': 'e.1.exp.conv.w', 'b.1.conv_pwl.w': 'e.1.proj.conv.w'}
    assert fill_open_modules(src, dst, paired, '.') == {}
    # a first block of the same design, its norms paired, is one
    src.update({'b.2.bn1.w': (24,), 'b.2.bn2.w': (24,), 'b.2.bn3.w': (6,),
                'b.2.conv_dw.w': (24, 1, 3, 3), 'b.2.conv_pw.w': (24, 6),
                'b.2.conv_pwl.w': (6, 24)})
    dst.update({'e.2.exp.conv.w': (24, 6), 'e.2.exp.bn.w': (24,), 'e.2.dw.conv.w': (24, 1, 3, 3),
                'e.2.dw.norm.w': (24,), 'e.2.proj.conv.w': (6, 24), 'e.2.proj.bn.w': (6,)})
    paired.update({f'b.2.{name}.w': f'e.2.{place}.w' for name, place in [
        ('bn1', 'exp.bn'), ('bn2', 'dw.norm'), ('bn3', 'proj.bn'), ('conv_dw', 'dw.conv'),
        ('conv_pw', 'exp.conv'), ('conv_pwl', 'proj.conv')]})
    assert fill_open_modules(src, dst, paired, '.') == {'b.1.bn1.w': 'e.1.exp.bn.w',
                                                        'b.1.bn2.w': 'e.1.dw.norm.w'}


def test_the_last_open_module_of_its_shape_in_a_region_is_placed():
    src = {'s.0.conv1.weight': (8, 4), 's.0.conv2.weight': (8, 8), 's.0.conv3.weight': (9, 8),
           's.0.downsample.weight': (9, 4)}
    dst = {'t.0.proj.weight': (9, 4), 't.0.f.a.weight': (8, 4), 't.0.f.b.weight': (8, 8),
           't.0.f.c.weight': (9, 8)}
    paired = {'s.0.conv1.weight': 't.0.f.a.weight', 's.0.conv2.weight': 't.0.f.b.weight',
              's.0.conv3.weight': 't.0.f.c.weight'}
    assert fill_open_modules(src, dst, paired, '.') == {'s.0.downsample.weight': 't.0.proj.weight'}
    # the shapes differ: no place
    assert fill_open_modules(src, {**dst, 't.0.proj.weight': (9, 5)}, paired, '.') == {}
    # a module of the model takes a module of the checkpoint whole
    extra = {**src, 's.0.downsample.bias': (9,)}
    assert fill_open_modules(extra, dst, paired, '.') == {}


def test_a_region_more_open_than_paired_places_only_the_same_modules():
    # a stem and a classifier paired by name make no region of two networks
    # (a mobilenet_v2's and an efficientnet_b0's: 22 tensors went across)
    src = {'features.0.weight': (8, 3), 'classifier.weight': (10, 8),
           **{f'features.{i}.weight': (8 + i, 8) for i in range(1, 5)}}
    dst = {'features.0.weight': (8, 3), 'classifier.weight': (10, 8),
           **{f'features.{i}.block.weight': (8 + i, 8) for i in range(1, 4)},
           'features.4.block.weight': (20, 8)}
    paired = {'features.0.weight': 'features.0.weight', 'classifier.weight': 'classifier.weight'}
    assert fill_open_modules(src, dst, paired, '.') == {}
    # ... unless the open modules are the same on both sides, as many of each
    dst['features.4.block.weight'] = (12, 8)
    assert fill_open_modules(src, dst, paired, '.') == {
        f'features.{i}.weight': f'features.{i}.block.weight' for i in range(1, 5)}


def _regnet_stage(side, s, c_in, c):
    """One first block of a RegNet stage, timm's names or torchvision's: conv1
    and the shortcut are both [c, c_in]; in a stage whose input is as wide
    as its output, conv3 too."""
    if side == 'timm':
        names = ['conv1', 'conv2', 'conv3', 'downsample']
        block = f's{s}.b1'
    else:
        names = ['f.a', 'f.b', 'f.c', 'proj']
        block = f'trunk.block{s}.block{s}-0'
    shapes = [(c, c_in), (c, c, 3), (c, c), (c, c_in)]
    order = [3, 0, 1, 2] if side == 'tv' else [0, 1, 2, 3]  # torchvision's proj comes first
    return {f'{block}.{names[i]}.weight': shapes[i] for i in order}


def _regnets():
    widths = [(8, 8), (8, 16), (16, 24), (24, 32)]
    src, dst = {}, {}
    for s, (c_in, c) in enumerate(widths, 1):
        src.update(_regnet_stage('timm', s, c_in, c))
        dst.update(_regnet_stage('tv', s, c_in, c))
    return src, dst


def test_a_block_whose_ties_point_into_one_block_is_placed_like_its_peers():
    # stage 1's first block: conv1, conv3 and the shortcut all [8, 8]. The
    # alignment left all of it out, every candidate in torchvision's
    # block1-0; the other stages' first blocks send conv1 to f.a, conv3 to
    # f.c and downsample to proj: so does this one, whole
    src, dst = _regnets()
    names = {'b1.conv1': 'block{}-0.f.a', 'b1.conv2': 'block{}-0.f.b', 'b1.conv3': 'block{}-0.f.c',
             'b1.downsample': 'block{}-0.proj'}
    paired = {}
    for key in src:
        stage, rest = key.split('.', 1)
        module = rest.rpartition('.')[0]
        paired[key] = f'trunk.block{stage[1:]}.' + names[module].format(stage[1:]) + '.weight'
    truth, paired = paired, {k: v for k, v in paired.items() if not k.startswith('s1.')}
    tied = [k for k in src if k.startswith('s1.')]
    block = [k for k in dst if k.startswith('trunk.block1.')]
    ambiguous = {k: tuple(d for d in block if dst[d] == src[k]) for k in tied}
    found = _fill(KeyGroups(src), KeyGroups(dst), paired, '.', ambiguous)
    assert found == {k: truth[k] for k in tied}
    # no alignment's ties, no place
    assert fill_open_modules(src, dst, paired, '.') == {}
    # ties into two blocks: nothing says which
    two = {k: v + ('trunk.block2.block2-0.f.c.weight',) for k, v in ambiguous.items()}
    assert _fill(KeyGroups(src), KeyGroups(dst), paired, '.', two) == {}
    # another block of the checkpoint tied for the same place: nothing
    rival = {**src, 'extra.b1.conv1.weight': (8, 8)}
    claimed = {**ambiguous, 'extra.b1.conv1.weight': ('trunk.block1.block1-0.f.a.weight',)}
    assert _fill(KeyGroups(rival), KeyGroups(dst), paired, '.', claimed) == {}
    # a block of other names than its peers' has no analogy
    renamed = {k.replace('s1.b1.conv3', 's1.b1.conv9'): v for k, v in src.items()}
    ambiguous = {k.replace('s1.b1.conv3', 's1.b1.conv9'): v for k, v in ambiguous.items()}
    assert _fill(KeyGroups(renamed), KeyGroups(dst), paired, '.', ambiguous) == {}


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_timm_regnetx_first_stage_goes_whole_into_torchvisions(mode):
    # timm's regnetx_004 and torchvision's regnet_x_400mf differ in the last
    # stage's width (and the head); in the first stage's one block conv1, conv3
    # and the shortcut are all [32, 32, 1, 1] and were left out (180 of the
    # 204 that fit): the other first blocks place it
    timm = requires('timm')
    tvm = requires('torchvision').models
    src = timm.create_model('regnetx_004', pretrained=False)
    dst = tvm.regnet_x_400mf(weights=None)
    found = associate({k: tuple(v.shape) for k, v in src.state_dict().items()},
                      {k: tuple(v.shape) for k, v in dst.state_dict().items()},
                      association=mode).mapping
    assert len(found) == 204
    assert found['s1.b1.downsample.conv.weight'] == 'trunk_output.block1.block1-0.proj.0.weight'
    assert found['s1.b1.conv3.bn.bias'] == 'trunk_output.block1.block1-0.f.c.1.bias'


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_timm_regnet_into_torchvision_regnet_gives_equal_outputs(mode):
    # timm registers downsample after conv1..conv3, torchvision proj before f;
    # in each stage's first block they are of one shape: 48 tensors were left
    # out (336 of 384), the stems of four stages
    timm = requires('timm')
    tvm = requires('torchvision').models
    torch.manual_seed(0)
    src = timm.create_model('regnety_004', pretrained=False).eval()
    dst = tvm.regnet_y_400mf(weights=None).eval()
    info = load_partial_state(dst, src.state_dict(), association=mode, verbose=0)
    assert len(info['plan'].mapping) == 384
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(src(x), dst(x), atol=1e-5)


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_module_of_another_name_in_a_shared_scheme_stays_open(mode):
    # a timm ViT that pools the class token (a final norm) into one that
    # pools by average (fc_norm after the pooling; norm is an Identity), both
    # under a wrapper: fc_norm was the last open module of norm's shapes in
    # the wrapper's region, and structure filled it with norm though every
    # other name agrees (in a shared scheme another name is another module)
    timm = requires('timm')
    torch.manual_seed(0)
    src = timm.create_model('vit_tiny_patch16_224', pretrained=False, depth=2)
    dst = timm.create_model('vit_tiny_patch16_224', pretrained=False, depth=2,
                            global_pool='avg', fc_norm=True)
    model = torch.nn.Module()
    model.net = dst
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    own = {k: torch.randn(v.shape) for k, v in src.state_dict().items()}  # (norms start alike)
    load_partial_state(model, {'net.' + k: v for k, v in own.items()}, association=mode,
                       verbose=0)
    after = dst.state_dict()
    for key, value in own.items():
        if key in after:
            assert torch.equal(after[key], value), key
    assert torch.equal(after['fc_norm.weight'], before['fc_norm.weight'])
    assert torch.equal(after['fc_norm.bias'], before['fc_norm.bias'])


def _list_cut_tail_first(tail='blocks_tail', head_items=2, tail_items=3, extra=None):
    """A checkpoint list of five equal blocks, the model's cut into
    ``blocks`` (``head_items``) and ``tail`` (``tail_items``, re-indexed,
    registered first); the head paired by name."""
    def item(p):
        return {f'{p}.fc.weight': (8, 8), f'{p}.fc.bias': (8,), f'{p}.norm.weight': (8,)}

    src = {k: v for i in range(5) for k, v in item(f'blocks.{i}').items()}
    dst = {k: v for i in range(tail_items) for k, v in item(f'{tail}.{i}').items()}
    for name in extra or ():
        dst.update({k: v for i in range(tail_items) for k, v in item(f'{name}.{i}').items()})
    dst.update({k: v for i in range(head_items) for k, v in item(f'blocks.{i}').items()})
    paired = {k: k for k in src if k in dst}
    return src, dst, paired


def test_the_rest_of_a_list_goes_to_the_list_named_after_it_that_holds_it():
    # rule 4: a list cut in two, its tail (named after it, blocks_tail)
    # registered first; the alignment pairs the head by name and has no
    # order for the tail
    src, dst, paired = _list_cut_tail_first()
    assert fill_open_modules(src, dst, paired, '.') == {
        f'blocks.{i + 2}.{name}': f'blocks_tail.{i}.{name}'
        for i in range(3) for name in ('fc.weight', 'fc.bias', 'norm.weight')}
    # with alike items, the final mapping leaves the stage out: the head
    # moved into a list named after it, registered first, would hold the
    # same keys (listpositions.across_other_cuts); where a block of its own
    # kind places the head (a resnet's block with the downsample), the
    # rest stays here (the corpus's resnet34-layer3[:2]+tail first, 218 of
    # 218)
    result = associate(src, dst, association='structure')
    assert result.mapping == {}


@pytest.mark.parametrize('options', [
    dict(tail='rest'),  # not named after the list
    dict(tail='blocks_tail', extra=['blocks_extra']),  # two lists that could be the tail
    dict(tail_items=2),  # the items do not add up
    dict(head_items=3),  # the model's list holds an open item of its own
])
def test_a_list_not_plainly_the_rest_takes_nothing(options):
    src, dst, paired = _list_cut_tail_first(**options)
    if options.get('head_items') == 3:
        paired = {k: v for k, v in paired.items() if not k.startswith('blocks.2.')}
    assert fill_open_modules(src, dst, paired, '.') == {}


def test_keys_only_are_left_alone():
    keys = {k: None for k in SRC}
    assert fill_open_modules(keys, DST, PAIRED, '.') == {}
    assert associate(SRC, DST, association='structure').mapping  # runs end to end
