"""
What a listing's order says (torch_liberator.keyorder): registration order
told from other listings, and a listing of every parameter, then every
buffer (or buffers first), joined back into registration order.
"""
import random

import pytest
import torch

from conftest import requires
from torch_liberator import load_partial_state
from torch_liberator.association import associate
from torch_liberator.keyorder import (numbered_order, order_is_lost, registration_order,
                                      sort_within_modules)


def split_listing(model, first):
    """``model``'s tensors as a checkpoint built from ``named_parameters()``
    and ``named_buffers()`` lists them: ``first`` ('parameters' or
    'buffers') first."""
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    return {**params, **buffers} if first == 'parameters' else {**buffers, **params}


def split_models():
    tvm, timm = requires('torchvision').models, requires('timm')
    return {'resnet18': tvm.resnet18(weights=None),
            'mobilenet_v3_small': tvm.mobilenet_v3_small(weights=None),
            'timm efficientnet_b0': timm.create_model('efficientnet_b0'),
            'swin_t': tvm.swin_t(weights=None)}


@pytest.mark.parametrize('first', ['parameters', 'buffers'])
def test_a_listing_cut_in_parameters_and_buffers_is_joined_back(first):
    for name, model in split_models().items():
        listed = split_listing(model, first)
        assert order_is_lost(listed), name
        # exactly the order state_dict() writes, every key once
        assert list(registration_order(listed)) == list(model.state_dict()), name


def test_a_listing_back_to_front_is_turned_around():
    for name, model in split_models().items():
        keys = list(model.state_dict())
        backwards = dict.fromkeys(keys[::-1])
        assert order_is_lost(backwards), name
        assert list(registration_order(backwards)) == keys, name
        # each module's tensors sorted by name, the modules in registration
        # order: bias before weight too, but the lists run forwards
        sorted_within = dict.fromkeys(sort_within_modules(dict.fromkeys(keys)))
        assert registration_order(sorted_within) is sorted_within, name


def test_listings_that_are_no_such_cut_are_left_as_they_are():
    tvm = requires('torchvision').models
    state = tvm.resnet18(weights=None).state_dict()
    assert registration_order(state) is state  # registration order already
    ordered = dict(sorted(state.items()))
    assert registration_order(ordered) is ordered  # sorted by name (a safetensors file)
    keys = list(state)
    random.Random(0).shuffle(keys)
    shuffled = {k: state[k] for k in keys}
    assert registration_order(shuffled) is shuffled  # modules in many places
    # nothing tells which section holds the parameters: no normalization
    # buffers, and a weight in neither
    plain = torch.nn.Sequential(*[torch.nn.Module() for _ in range(20)])
    for layer in plain:
        layer.kernel = torch.nn.Parameter(torch.ones(4, 4))
        layer.register_buffer('scale', torch.ones(1))
    split = split_listing(plain, 'parameters')
    assert registration_order(split) is split
    # a weight on one side only tells
    for layer in plain:
        layer.weight = torch.nn.Parameter(torch.ones(4))
    split = split_listing(plain, 'buffers')
    assert list(registration_order(split)) == list(plain.state_dict())


def test_a_module_of_buffers_alone_beside_one_of_parameters_alone_is_left_unjoined():
    # torchvision's FrozenBatchNorm2d holds buffers only: listed after every
    # parameter, nothing tells whether it came before or after the
    # convolution listed between the same two BatchNorms
    ops = requires('torchvision').ops

    def block():
        return [torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4),
                torch.nn.Conv2d(4, 4, 1), ops.FrozenBatchNorm2d(4)]

    model = torch.nn.Sequential(*[layer for _ in range(6) for layer in block()])
    split = split_listing(model, 'parameters')
    assert registration_order(split) is split


def _timm_efficientnet_b0():
    """timm's efficientnet_b0 in eval mode, its BatchNorm statistics drawn
    (so that a norm loaded in the wrong place changes the output)."""
    timm = requires('timm')
    torch.manual_seed(0)
    src = timm.create_model('efficientnet_b0').eval()
    for module in src.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(1, 2)
    return src


def _assert_loads_whole_into_torchvisions(src, load):
    """``load(model)`` fills every tensor of torchvision's efficientnet_b0,
    whose outputs are then ``src``'s."""
    dst = requires('torchvision').models.efficientnet_b0(weights=None).eval()
    info = load(dst)
    assert len(info['seen']['full_add']) == len(dst.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))


@pytest.mark.parametrize('first', ['parameters', 'buffers'])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_checkpoint_of_parameters_then_buffers_crosses_naming_schemes(first, mode):
    # timm's efficientnet_b0 saved from named_parameters() and
    # named_buffers(), into torchvision's: with the order lost, structure
    # placed 29 of 360 tensors; joined back, all, with equal outputs
    src = _timm_efficientnet_b0()
    state = {k: v.detach().clone() for k, v in split_listing(src, first).items()}
    _assert_loads_whole_into_torchvisions(src, lambda dst: load_partial_state(
        dst, state, association=mode, verbose=0))


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_keys_sorted_the_other_way_give_order_no_say(mode):
    # timm's convnext_tiny, its keys sorted by name from z to a, into
    # torchvision's: taken for a registration order (a module's weight
    # before its bias), structure aligned neighbours that are none (38
    # tensors in wrong places); now only what names and unique shapes tell
    tvm, timm = requires('torchvision').models, requires('timm')
    src = {k: tuple(v.shape) for k, v in timm.create_model('convnext_tiny').state_dict().items()}
    dst = {k: tuple(v.shape) for k, v in tvm.convnext_tiny(weights=None).state_dict().items()}
    truth = associate(src, dst, association='structure').mapping  # registration order
    assert len(truth) == len(dst)
    backwards = dict(sorted(src.items(), reverse=True))
    assert order_is_lost(backwards)
    mapping = associate(backwards, dst, association=mode).mapping
    assert {s: d for s, d in mapping.items() if truth[s] != d} == {}


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_safetensors_file_from_another_library_loads_whole(tmp_path, mode):
    # a safetensors file lists its tensors by dtype, then name: the keys are
    # sorted and every BatchNorm's num_batches_tracked (int64) comes after
    # all the floats. timm's efficientnet_b0 saved so, into torchvision's:
    # the modules pair by what they hold (torch_liberator.unordered), each
    # BatchNorm whole again (29 of 360 once; 303 with the counters apart)
    from safetensors.torch import save_file
    from torch_liberator import Pretrained
    src = _timm_efficientnet_b0()
    fpath = tmp_path / 'model.safetensors'
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(fpath))
    _assert_loads_whole_into_torchvisions(
        src, Pretrained(fpath, association=mode, verbose=0).forward)


def _numbered_blocks(prefix, numbers, first):
    """A list's blocks of a conv and a norm, the ``first`` taking 4 channels in."""
    out = {}
    for n in numbers:
        out[f'{prefix}.{n}.conv.weight'] = (8, 4 if n == first else 8, 3, 3)
        out[f'{prefix}.{n}.norm.weight'] = (8,)
        out[f'{prefix}.{n}.norm.bias'] = (8,)
    return out


@pytest.mark.parametrize('numbers', [range(3), range(6)])
def test_keys_sorted_pair_blocks_of_another_depth_by_their_numbers(numbers):
    # a stage of four blocks against one of three (or six) under other
    # names: in registration order the blocks a shorter stage keeps pair by
    # their numbers (the first by its shapes); with the keys sorted, the
    # order-free reading pairs them the same way, where it left them out
    src = {'stem.weight': (4, 3, 3, 3), **_numbered_blocks('stages.0', range(4), 0),
           'head.weight': (2, 8)}
    dst = {'stem.weight': (4, 3, 3, 3), **_numbered_blocks('body.blocks', numbers, 0),
           'head.weight': (2, 8)}
    listed = associate(src, dst, association='structure')
    in_sorted_keys = associate(dict(sorted(src.items())), dst, association='structure')
    kept = min(len(numbers), 4)
    expected = {k: k.replace('stages.0.', 'body.blocks.') for k in src
                if not k.startswith('stages') or int(k.split('.')[2]) < kept}
    assert listed.mapping == expected
    assert in_sorted_keys.mapping == expected
    assert in_sorted_keys.ambiguous == {}


def test_keys_sorted_leave_out_blocks_numbered_from_another_start():
    # the shorter stage numbered from 1: its block 2 is not the checkpoint's
    # block 2 by its number; the blocks stay out (the stem and head load)
    src = {'stem.weight': (4, 3, 3, 3), **_numbered_blocks('stages.0', range(4), 0),
           'head.weight': (2, 8)}
    dst = {'stem.weight': (4, 3, 3, 3), **_numbered_blocks('body.blocks', range(1, 4), 1),
           'head.weight': (2, 8)}
    result = associate(dict(sorted(src.items())), dst, association='structure')
    assert result.mapping == {'head.weight': 'head.weight', 'stem.weight': 'stem.weight'}


def test_a_numbered_list_out_of_turn_is_read_in_the_order_of_its_numbers():
    listed = {'stem.weight': (4,), 's.b2.c.weight': (4, 4), 's.b10.c.weight': (4, 4),
              's.b1.c.weight': (4, 2), 's.b1.p.weight': (4, 2), 's.norm.weight': (4,)}
    assert list(numbered_order(listed)) == ['stem.weight', 's.b1.c.weight', 's.b1.p.weight',
                                            's.b2.c.weight', 's.b10.c.weight', 's.norm.weight']
    # a list in order, names whose digits are not their list's (conv1, bn1,
    # conv2: two templates, each in order), a listing sorted by name (the
    # numbers say nothing of its registration) and one that is no module
    # after another (a module's own tensors after its children) stay as given
    for side in [{f'layers.{i}.weight': (4, 4) for i in range(12)},
                 dict.fromkeys(['conv1.weight', 'bn1.weight', 'conv2.weight', 'bn2.weight']),
                 dict.fromkeys(sorted(f'blocks.{i}.{n}' for i in range(20) for n in 'ab')),
                 {'m.b2.weight': (4,), 'm.b1.weight': (4,), 'm.gamma': (4,)}]:
        assert numbered_order(side) is side


@pytest.mark.parametrize('mode', ['structure', 'auto', 'embedding', 'isomorphism'])
def test_a_stage_registering_its_blocks_out_of_turn_puts_nothing_in_a_wrong_block(mode):
    # cross fuzz seed 60006 (timm and torchvision architectures beyond the
    # fuzz's own): torchvision's regnet_x_1_6gf into timm's regnetx_016
    # whose third stage registers its first block (the one of other widths)
    # seventh, b2 to b7 before it. Read in that order, the twins after it
    # paired across their numbers: 115 tensors in wrong blocks in structure
    # and auto. Read in the order of their numbers too, a pair is kept where
    # the other reading makes it as well or says nothing of it: 226 tensors,
    # all home, the stage's twins left out as ambiguous (the model, a
    # Sequential out of turn, cannot run: its values are compared)
    tvm, timm = requires('torchvision').models, requires('timm')
    src = tvm.regnet_x_1_6gf(weights=None).eval()
    dst = timm.create_model('regnetx_016').eval()
    shapes = {k: tuple(v.shape) for k, v in src.state_dict().items()}
    truth = associate(shapes, {k: tuple(v.shape) for k, v in dst.state_dict().items()},
                      association='structure').mapping
    assert len(truth) == len(shapes)
    stage = dst.s3
    names = list(stage._modules)
    stage._modules = {name: stage._modules[name] for name in names[1:7] + names[:1] + names[7:]}
    listed = {k: tuple(v.shape) for k, v in dst.state_dict().items()}
    assert [k for k in listed if k.startswith('s3.') and k.endswith('.conv1.conv.weight')][:7] == [
        f's3.b{i}.conv1.conv.weight' for i in (2, 3, 4, 5, 6, 7, 1)]
    mapping = associate(shapes, listed, association=mode).mapping
    assert {s: d for s, d in mapping.items() if truth[s] != d} == {}
    if mode in ('structure', 'auto'):
        assert len(mapping) == 226
        info = load_partial_state(dst, src.state_dict(), association=mode, verbose=0)
        assert len(info['plan'].ambiguous) == len(shapes) - 226
        loaded = dst.state_dict()
        for s, d in mapping.items():
            torch.testing.assert_close(loaded[d], src.state_dict()[s].to(loaded[d].dtype))


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_numbered_list_registered_top_down_keeps_only_what_both_orders_say(mode):
    # the numbers' order is not sure either: a pyramid registering its
    # outputs top down (p5, p4, p3, twins of one shape), against another
    # library's unnumbered names in that same order. Registration order
    # pairs them right, the numbers' order would cross the ends: only the
    # middle, where both agree, is kept, and the ends are ambiguous
    src = {'stem.weight': (8, 3, 3, 3), 'fpn.p5.weight': (8, 8), 'fpn.p4.weight': (8, 8),
           'fpn.p3.weight': (8, 8), 'head.weight': (2, 8)}
    dst = {'body.weight': (8, 3, 3, 3), 'neck.top.weight': (8, 8), 'neck.mid.weight': (8, 8),
           'neck.low.weight': (8, 8), 'cls.weight': (2, 8)}
    result = associate(src, dst, association=mode)
    assert result.mapping == {'stem.weight': 'body.weight', 'fpn.p4.weight': 'neck.mid.weight',
                              'head.weight': 'cls.weight'}
    assert set(result.ambiguous['fpn.p5.weight']) == {'neck.top.weight', 'neck.low.weight'}
