"""
Tests of the association corpus (benchmarks/corpus.py, benchmarks/corpus_pairs/).

Two jobs: the judge itself works (a perfect loader scores 1.0 / 1.0, every
kind of wrong loader is caught, the hand-written cross-library truths give
equal outputs), and the law every association mode must keep on real pairs:
no tensor in a wrong place (precision 1.0). A fast slice runs by default; the
full corpus runs with ``--run-corpus`` (or ``-m corpus``).

Pairs the current association gets wrong are marked ``xfail(strict=True)``
with the measured numbers, so they pass as soon as the association is fixed.
"""
import functools

import pytest
import torch

from conftest import requires
from corpus import BASE, judge_case, read_back, stamp_source, truth_loader
from corpus_pairs import PAIRS, Case, build_case, verify_truth
from torch_liberator import load_partial_state
from torch_liberator.association import ASSOCIATIONS


@functools.lru_cache(maxsize=3)
def _case(name):
    """A few built pairs at a time (a resnet18 case holds ~150 MB)."""
    for module in _needs(name):
        requires(module)
    return build_case(name)


def _needs(name):
    needs = (('torchvision', 'timm') if 'timm' in name else
             ('torchvision',) if name not in ('mlp-wrapped', 'convbn-renamed') else ())
    # other libraries' own models (the corpus extra), registered only when installed
    return needs + (('transformers',) if name.startswith('real-') and 'hf-' in name else ())


# ---------------------------------------------------------------------------
# the judge


def test_stamp_names_every_tensor_and_read_back_finds_it():
    source = {'a': torch.zeros(2, 3), 'b': torch.zeros(4), 'n': torch.zeros((), dtype=torch.long)}
    stamped = stamp_source(source)
    assert [read_back(v) for v in stamped.values()] == [{0}, {1}, {2}]
    assert stamped['a'].unique().numel() == 6  # distinct inside a tensor too
    assert [int(v.min()) for v in stamped.values()] == [BASE, BASE + 1, BASE + 2]
    # what an initializer writes (zeros, ones, small random) is nobody's data
    mixed = torch.cat([stamped['a'].reshape(-1), stamped['b'], torch.tensor([-1.0, 0.0, 1.0, 2.5])])
    assert read_back(mixed) == {0, 1}
    assert read_back(torch.tensor([-1.0, 0.0, 1.0, 2.0])) == set()


def test_stamp_refuses_what_it_cannot_name():
    with pytest.raises(ValueError, match='cannot stamp a torch.bool tensor'):
        stamp_source({'flag': torch.zeros(1, dtype=torch.bool)})
    with pytest.raises(ValueError, match='torch.float16 cannot hold tensor number 0 exactly'):
        stamp_source({'half': torch.zeros(1, dtype=torch.float16)})


@pytest.mark.parametrize('name, expected', [
    ('mlp-wrapped', 4),
    ('convbn-renamed', 9),
    ('resnet18-renamed', 122),
    ('resnet18->resnet18(10 classes)', 122),  # the fc is shoved: [1000, 512] -> [10, 512]
    ('resnet18x2<-resnet18 (ambiguous)', 0),
    ('timm-vit-small->tv-vit-small', 32),
])
def test_perfect_loader_scores_one(name, expected):
    case = _case(name)
    score = judge_case(case, 'truth', load=truth_loader(case.truth))
    assert (score.correct, score.wrong, score.missing, score.expected) == (expected, 0, 0, expected)
    assert (score.precision, score.recall) == (1.0, 1.0)


def test_judge_catches_every_kind_of_wrong_load():
    case = _case('resnet18-stem-body')
    perfect = truth_loader(case.truth)

    def judged(load):
        s = judge_case(case, 'x', load=load)
        return s.correct, s.wrong, s.missing

    # two same-shape tensors crossed (a running mean and a running var)
    crossed = dict(case.truth)
    crossed['bn1.running_mean'], crossed['bn1.running_var'] = (
        case.truth['bn1.running_var'], case.truth['bn1.running_mean'])
    assert judged(truth_loader(crossed)) == (120, 2, 2)

    # an integer buffer from the wrong BatchNorm
    def wrong_count(model, state, association):
        perfect(model, state, association)
        model.state_dict()['stem.1.num_batches_tracked'].copy_(state['layer1.0.bn1.num_batches_tracked'])
    assert judged(wrong_count) == (121, 1, 1)

    # the right source, garbled (flipped), and only half copied
    def garbled(model, state, association):
        perfect(model, state, association)
        model.stem[0].weight.data.copy_(state['conv1.weight'].flip(0))
        model.head.weight.data[:5] = -1
    assert judged(garbled) == (120, 2, 2)

    # a tensor where the truth says nothing belongs (an ambiguous slot)
    twins = _case('resnet18x2<-resnet18 (ambiguous)')
    score = judge_case(twins, 'x', load=lambda m, s, a: truth_loader(
        {k: f'left.{k}' for k in s})(m, s, a))
    assert (score.correct, score.wrong, score.missing, score.precision) == (0, 122, 0, 0.0)
    assert score.wrong_keys[0] == "left.conv1.weight <- ['conv1.weight'] (truth: None)"


def test_a_shove_is_judged_by_whose_values_it_holds():
    # a 3x3 kernel into a 5x5 one, and a [C] scale into [C, 1, 1]
    src = {'k': torch.zeros(4, 3, 3), 'b': torch.zeros(4), 'g': torch.zeros(4)}
    dst = torch.nn.ParameterDict({n: torch.nn.Parameter(torch.zeros(*s)) for n, s in
                                  [('k', (4, 5, 5)), ('b', (4,)), ('g', (4, 1, 1))]})
    case = Case(src, dst, {'k': 'k', 'b': 'b', 'g': 'g'})

    def shove(place):
        def load(model, state, association):
            with torch.no_grad():
                model['k'][place] = state['k']
                model['b'].copy_(state['b'])
                model['g'].copy_(state['g'].reshape(4, 1, 1))
        return load
    leading, centered = (slice(None), slice(0, 3), slice(0, 3)), (slice(None), slice(1, 4), slice(1, 4))
    assert judge_case(case, 'x', load=shove(leading)).correct == 3
    assert judge_case(case, 'x', load=shove(centered)).correct == 3

    def mixed(model, state, association):  # the right kernel plus a bias inside it
        shove(leading)(model, state, association)
        model['k'].data[0, 4, 4] = state['b'][0]
    score = judge_case(case, 'x', load=mixed)
    assert (score.correct, score.wrong, score.wrong_keys) == (2, 1, ["k <- ['k', 'b'] (truth: k)"])


def test_judge_reads_values_not_reports():
    case = _case('mlp-wrapped')

    def liar(model, state, association):  # claims everything, loads nothing
        return {'mapping': {k: f'module.{k}' for k in state}, 'seen': {'full_add': list(state)}}
    assert judge_case(case, 'x', load=liar).missing == 4

    def failing(model, state, association):
        model.module[0].bias.data.copy_(state['0.bias'])
        raise RuntimeError('boom')
    score = judge_case(case, 'x', load=failing)
    assert (score.correct, score.missing, score.error) == (1, 3, 'RuntimeError: boom')

    def initializing(model, state, association):  # a leftover initializer, nothing loaded
        for value in model.parameters():
            torch.nn.init.uniform_(value.data, 0, 3)
    score = judge_case(case, 'x', load=initializing)
    assert (score.correct, score.wrong, score.missing) == (0, 0, 4)


def test_the_destination_is_stamped_afresh_for_each_load():
    case = _case('mlp-wrapped')
    assert judge_case(case, 'x', load=truth_loader(case.truth)).correct == 4
    assert judge_case(case, 'x', load=lambda m, s, a: None).correct == 0


@pytest.mark.parametrize('name', [  # hand-written truths, and the corpus' own forward()s
    'convbn-renamed', 'resnet18-renamed',
    'timm-vit-small->tv-vit-small', 'tv-vit-small->timm-vit-small', 'timm-resnet18->tv-resnet18',
])
def test_truth_gives_equal_outputs(name):
    assert verify_truth(_case(name)) <= 1e-4


def test_a_wrong_truth_gives_other_outputs():
    requires('timm')
    case = build_case('timm-vit-small->tv-vit-small')
    truth = dict(case.truth)
    a, b = 'blocks.0.norm1.weight', 'blocks.0.norm2.weight'
    truth[a], truth[b] = truth[b], truth[a]
    bad = Case(case.source, case.destination, truth, case.source_model, case.inputs)
    with pytest.raises(ValueError, match=r'outputs differ by .* \(relative\): the truth is wrong'):
        verify_truth(bad)  # both norms are ones at init: the perturbation tells them apart
    untouched = Case({}, case.source_model, {}, case.source_model, case.inputs)
    with pytest.raises(ValueError, match='equal before the copy: the check cannot tell'):
        verify_truth(untouched)


def test_truth_must_be_one_to_one():
    src = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match='not a one-to-one map'):
        Case(src.state_dict(keep_vars=True), torch.nn.Sequential(src),
             {'weight': '0.weight', 'bias': '0.weight'})


def test_a_pair_name_is_registered_once():
    from corpus_pairs.registry import register_pair
    count = len(PAIRS)
    with pytest.raises(ValueError, match="the pair 'mlp-wrapped' is registered twice"):
        register_pair('mlp-wrapped', 'identity', note='a second pair under a taken name')
    assert len(PAIRS) == count


def test_every_pair_is_documented():
    for pair in PAIRS.values():
        assert pair.note and pair.truth_from in ('identity', 'outputs', 'names'), pair.name


# ---------------------------------------------------------------------------
# the law: no tensor in a wrong place, in every mode


#: (pair, mode) -> what the association still does wrong: correct/truth, wrong
KNOWN_WRONG: dict = {
    # The first hunt's 54 cells, hunt 2's 44 and hunt 3's 75 (and the
    # two VGG cells of structure found after it) were fixed in the solvers; a
    # new failure goes here as a strict xfail with its measured numbers.
    # Left (hunt 4, all value-judged):
    #
    # (mutation fuzz seed 9387, reduced: a list cut short whose keys come sorted, into the
    # children idiom, where an item anchor features.10 -> 0.11 of equal blocks won in the name
    # modes, 22 wrong each, was fixed: an item is no start for another number when its
    # namesake item fits as well)
    # (mutation fuzz seed 9627, reduced: stage2 cut in parts on both sides, the names colliding
    # (base.0 is block 2 in the checkpoint, block 0 in the model), was fixed in every mode:
    # block 2's branch2 went to block 0's by its full name in strict, module-hack and
    # prefix-hack, 18 wrong each, until a part keeping a name in runs cut otherwise counted
    # for nothing by that name)
    # (mutation fuzz seed 9719, reduced: layer1.part.0 into layer1.stage whose block 2 is a
    # level down, which embedding and auto gave stage.2 by renaming part <-> stage.2 and
    # 0 <-> blocks, was fixed: a named module renamed to one of equal items is a tie)
    # networks of other families (nothing belongs; same-named keys unjudged).
    # (fixed: mobilenet_v2 <-> efficientnet_b0 and mobilenet_v2 -> mnasnet, whose blocks
    # are one design but for the squeeze-excitation, or a block or two by chance beside a
    # shared stem; mobilenet_v3_small -> mnasnet0_5 in structure and auto, 36 wrong, where a
    # squeeze-excitation's fc1, with a bias, went into a pointwise convolution without one)
    # (fixed: the published name modes' meaning on unrelated networks, a
    # pair that shares a tensor name, a module name or list positions, and a
    # shape -- a stem renamed by shape, densenet's transition1.conv into
    # googlenet's inception3b.branch1.conv, 12 cells; 0.2.1 loads such pairs
    # too: in a mapping that thin, the name modes keep an unnamed pair only
    # where the structure mode makes it too)
    # (fixed: VGG took AlexNet's classifier (Linear 4096 -> 4096 between dropouts) and its
    # 256-channel 3x3 convolution, both ways; embedding paired features.8 -> features.10 by
    # suffix and shape, structure and auto the classifier's middle Linear by order and shape,
    # 2 or 4 wrong in 6 cells; the names the two share, features.{0,3,6,8}, differ in shapes
    # the other network holds nowhere: coincidence.against_shared_names)
    # (found last, the unrelated-network probe, 29 classifiers, and fixed the
    # same way: ConvNeXt's stem norm into Swin's by suffix and shape in
    # embedding, both ways; structure and auto, where each stage's last block
    # paired its MLP with the other's, 20/22 wrong, were fixed by
    # coincidence.lone_items)
    # hunt 5: a network's children-Sequential (b, names gone) beside a sibling of the
    # checkpoint's names (a). (Fixed: prefix-hack loaded resnet50d's blocks, 295 of resnet50's
    # 320 tensors having their name and shape there, as 0.2.1 does, until it took
    # isomorphism's checks of a run beside it and of other networks; embedding
    # and auto leave out a part that has room in the bulk's module and what the modes dispute;
    # structure takes the run that b is over name partners into a sibling that holds it in part;
    # isomorphism leaves its mapping out beside such a run; structure with the keys sorted
    # keeps no pair that is alone in a module of more than four groups either: mc3_18's stem
    # and layer1, 50 wrong.)
}

#: the pairs of the default run: small, and each hard for some mode
FAST_SLICE = [
    'mlp-wrapped', 'convbn-renamed', 'resnet18-children', 'resnet18-stem-body',
    'resnet18x2<-resnet18 (ambiguous)', 'resnet18-renamed',
    'timm-vit-small->tv-vit-small', 'tv-vit-small->timm-vit-small',
    # were known wrong (shortcut-first names, sorted keys, sorted twins)
    'hf-names->resnet18', 'resnet18-renamed (sorted keys)',
    'resnet18x2<-resnet18 (ambiguous) (sorted keys)',
    # hunt 2: names agree but order does not, a checkpoint fitting a bigger slot too,
    # twins one level down (ambiguous), reversed keys, equal blocks cut in two (known wrong)
    'resnet18-moduledict-reversed', 'vit(12 layers)+vit(6 layers)<-vit(6 layers)',
    'moco checkpoint->resnet18 (ambiguous)', 'resnet18-renamed (reversed keys)',
    'timm-mixer_s16-split-blocks',
    # hunt 3: the smallest of its wrong kinds (known wrong), a two-stream model
    'linear x3: blocks[:1] + tail[1:] registered first',
    # ... and its mirror, the first items moved out (every mode but prefix-hack: 2 wrong)
    'linear x3: early[:2] registered first + blocks[2:]',
    'linear x4: layers -> second=[2:] + first=[:2]', 'two-stream rgb+flow<-resnet18',
    'linear x3 parts main/head (sorted keys)->linear x3',
    # mutation fuzz seeds 9252, 9477, 9236 (reduced): a shorter network of the model's names
    # beside the model itself, a classifier by name into another network, a module child
    # that is no wrapper
    'resnet34 children+resnet18->resnet34', 'efficientnet_b0->efficientnet_b0 children+mobilenet_v2',
    'resnet18->resnet34 (module.*)+resnet18 (head.*)',
    # unrelated networks: a stem and a conv shared by chance, a last stage of one shape,
    # blocks of one design but for a squeeze-excitation
    'u-resnet18->vgg11 (unrelated)', 'u-resnet18->vgg11_bn (unrelated)',
    'u-mobilenet_v2->efficientnet_b0 (unrelated)',
    # flat names of other frameworks (Keras's /, Detectron 1's _): whole, and a run by chance
    'h4-keras-mobilenet_v2-names->tv-mobilenet_v2', 'h5-detectron1-names(resnet18)->vgg11_bn (unrelated)',
    # list positions after an inserted layer name other layers
    'h4-vgg11->vgg11_bn(convs shared)',
    # hunt 5: a network's children-Sequential beside a sibling of its names: a trunk moved into
    # the children left a stem and fc that took the sibling's by name (isomorphism, auto; fixed),
    # BatchNorms of the sibling's names (structure; fixed by the run b is)
    'h5-regnet_x_800mf+regnet_x_400mf children[:-1]<-regnet_x_400mf',
    'h5-r2plus1d_18+r3d_18 children[:-1]<-r3d_18',
    # ... mc3_18's stem, layer1 and fc by name (embedding, auto; fixed)
    'h5-mc3_18+r3d_18 children[:-1]<-r3d_18',
    # HF's and timm's Swin V2 order: norms registered after their layers (structure, auto; fixed)
    'hf-swinv2-names->tv-swin_v2_t', 'timm-swinv2_tiny->tv-swin_v2_t',
    # HF's BEiT: layer scales and attention biases taken for norms and layer scales (fixed)
    'hf-beit-like->timm-beit', 'timm-beit->hf-beit-like',
    # timm's MaxViT: stem, blocks and head each short of a place (loaded nothing; fixed)
    'timm-maxvit_tiny->tv-maxvit_t',
    # HF's Hiera: its norms renamed in a scheme that shares every other name (left out; fixed)
    'hf-hiera-names->timm-hiera_tiny',
    # mmpretrain's ConvNeXt: downsampling layers registered before the stages (47 of 182 by
    # the order; 128 with the third stage placed by what it holds; 182 with every stage
    # placed by the kernels it alone holds)
    'mmpretrain-convnext-names->tv-convnext_tiny',
    # a CLIP checkpoint, text tower and all, into torchvision's ViT: nothing was wrong on
    # the first try; kept as a guard (OpenAI's names, nn.MultiheadAttention on both sides)
    'openai-clip-names->tv-vit(tiny config)',
]


def _params(names):
    out = []
    for name in names:
        for mode in ASSOCIATIONS:
            marks = ()
            if (name, mode) in KNOWN_WRONG:
                marks = pytest.mark.xfail(strict=True, reason=(
                    f'known wrong, measured: {KNOWN_WRONG[name, mode]}'))
            out.append(pytest.param(name, mode, marks=marks, id=f'{name}|{mode}'))
    return out


def _assert_nothing_wrong(name, mode):
    score = judge_case(_case(name), mode, pair=name)
    assert not score.error, score.error
    assert score.wrong == 0, (
        f'{score.wrong} wrong, {score.correct}/{score.expected} correct: {score.wrong_keys[:5]}')


@pytest.mark.parametrize('name, mode', _params(FAST_SLICE))
def test_no_tensor_in_a_wrong_place(name, mode):
    _assert_nothing_wrong(name, mode)


@pytest.mark.parametrize('name, mode', [
    ('resnet18-layergetter', 'isomorphism'), ('resnet18-wrapped-blocks', 'embedding'),
    ('resnet18-lightning-ema', 'embedding'), ('unwrap DataParallel prefix', 'module-hack'),
])
def test_everything_where_the_names_agree(name, mode):
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong) == (score.expected, 0)


@pytest.mark.parametrize('name, expected', [
    # the shortcut registered before the convs (each BatchNorm in its conv's
    # module): the shortcut's BatchNorm goes with its conv (was 75/120, 77/122)
    ('detectron2-names->resnet18', 120),
    ('hf-names->resnet18', 122),
    # the one module the checkpoint fills whole (was 0/122: all ambiguous)
    ('resnet18->renamed resnet34+resnet18', 122),
    # HF's shortcut registered before the layer list, of conv3's shape in
    # layer1.0; timm's downsample after conv1, torchvision's proj before f,
    # of one shape in every first block: placed by the other blocks
    # (openmodules.fill_open_modules; were 308/320 and 336/384, the rest left out)
    ('hf-names->resnet50', 320),
    ('timm-regnety_004->tv-regnet_y_400mf', 384),
    # HF registers each layer's layernorm_before and layernorm_after last,
    # timm's norm1 and norm2 open the attention and the MLP: the two
    # layers' norms are paired in order (were 102/152: 50 left out)
    ('hf-vit-names->timm-deit_tiny', 152),
    # RAFT's original encoders end in conv2, torchvision's in conv; that
    # pair was a name conflict, and both encoders, short of it, were left
    # out as alternatives (was 18/106)
    ('h5-raft-original-names->raft_small', 106),
    # the model keeps a list's first items under its name and the rest in a
    # list named after it (layer3_tail), registered first: the order has
    # no place for the rest, and the list of the model that holds as many
    # items, named after the list, does (openmodules, rule 4; was 170/218);
    # the block with the downsample says the first part is the head
    ('resnet34-layer3[:2]+tail first', 218),
    # HF's EfficientNet: its expansion and depthwise norms, one shape, are
    # timm's bn1 and bn2 by their numbers against HF's registration order,
    # and back by HF's modules against timm's order (were 210/360, the
    # first with 150 wrong before f5f23f6)
    ('real-timm-efficientnet_b0 (sorted keys)->hf-efficientnet', 360),
    ('real-hf-efficientnet (sorted keys)->timm-efficientnet_b0', 360),
    # HF keeps an attention's query, key and value apart, timm and
    # torchvision pack them: set aside, they no longer tie with the output
    # Linear, and Swin's index buffer ([49, 49] against [2401]) no longer
    # keeps the position table out (were 113/149, 40/48, 40/48, 109/145,
    # 109/145; keys sorted, 0/48)
    ('real-hf-swin_t->tv-swin_t', 149),
    ('real-hf-vit(small)->tv-vit(small)', 48),
    ('real-tv-vit(small)->hf-vit(small)', 48),
    ('real-tv-swin_t->hf-upernet(swin)', 145),
    ('real-hf-swin-backbone->tv-swin_t', 145),
    ('real-tv-vit(small) (sorted keys)->hf-vit(small)', 48),
])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_structure_and_auto_load_these_pairs_whole(name, expected, mode):
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong, score.expected) == (expected, 0, expected)


@pytest.mark.parametrize('name, expected', [
    # a list's first items kept under its name, the rest re-indexed in a
    # list named after it (blocks_tail), registered first: all of it was
    # placed by the name and by the rest's list named after it (openmodules,
    # rule 4), but a model that moved the first items into blocks_head,
    # registered first, holds the same keys in the same order (48 to 96
    # wrong in every mode); both are left out
    ('linear x3: blocks[:1] + tail[1:] registered first', (0, 6)),
    ('timm-deit_tiny-blocks[:4]+tail first', (8, 152)),
    ('timm-deit_tiny-blocks[:4]+tail first (sorted keys)', (8, 152)),
    # the first items moved under a new name, registered first, the rest
    # kept under the list's name (were 96 wrong in every mode)
    ('linear x3: early[:2] registered first + blocks[2:]', (0, 6)),
    ('timm-deit_tiny-early[:4] first+blocks[4:]', (8, 152)),
    # ... where a block of its own kind places the lists: whole, or
    # nothing wrong with the keys sorted (were 17 to 89 wrong)
    ('resnet50-layer3[:1] first+layer3[1:]', (320, 320)),
    ('resnet50-layer3[:3] first+layer3[3:] (sorted keys)', (230, 320)),
])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_part_keeping_a_lists_name_is_placed_by_its_place_not_its_name(name, expected, mode):
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong, score.expected) == (*expected[:1], 0, expected[1])


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_the_final_norm_follows_the_last_block_beside_another_head(mode):
    # the same checkpoint (1000 classes) into a deit_tiny of 10 classes: the
    # final layernorm follows the last layer's layernorm_after in the
    # checkpoint, the last block's mlp.fc2 in the model, and the heads pair
    # with nothing; both follow the one block (it was left out, 148 of 150)
    from corpus_pairs.hunt3_names import hf_vit_state
    timm = requires('timm')
    torch.manual_seed(0)
    model = timm.create_model('deit_tiny_patch16_224', pretrained=False, num_classes=10)
    checkpoint = timm.create_model('deit_tiny_patch16_224', pretrained=False)
    own = {k: torch.randn(v.shape) for k, v in checkpoint.state_dict().items()}
    checkpoint.load_state_dict(own)
    info = load_partial_state(model, hf_vit_state(checkpoint), association=mode, verbose=0)
    after = model.state_dict()
    loaded = [k for k, v in own.items() if not k.startswith('head.')]
    assert all(torch.equal(after[k], own[k]) for k in loaded)
    assert len(info['plan'].mapping) == len(loaded) == 150


@pytest.mark.parametrize('name, expected', [
    ('hf-swinv2-names->tv-swin_v2_t', (209, 209)), ('timm-swinv2_tiny->tv-swin_v2_t', (197, 197)),
    ('tv-swin_v2_t->timm-swinv2_tiny', (197, 197))])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_norms_registered_after_their_layers_are_not_crossed(name, expected, mode):
    # HF's and timm's Swin V2 register a block's first norm after the
    # attention and its second after the MLP, torchvision's norm1 and norm2
    # before them (all apply them after): order put the first into norm2 and
    # the second into the next block's norm1, and HF's final layernorm into
    # the last stage's first norm1 (40 to 42 wrong; timm's: 40 in structure,
    # 18 in auto). Unpaired, each block's norms pair in their order. timm's
    # attention registers its position MLP before qkv and proj, torchvision's
    # after them: the names inside the two blocks place what order crossed
    # (was 137 of 197). HF's logit_scale, its attention's own tensor, loads
    # by its name in the two attentions (was 161 of 209), and its position
    # MLP, other names than torchvision's, as the one layer of its shapes
    # left in the two attentions (was 173).
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong, score.expected) == (expected[0], 0, expected[1])


@pytest.mark.parametrize('name, expected', [
    ('hf-vit-names->tv-vit(tiny config)', 152), ('hf-swinv2-names->tv-swin_v2_t', 209)])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_hf_norms_named_before_and_after_load_with_the_keys_sorted(name, expected, mode):
    # a HuggingFace checkpoint read from its safetensors file lists a
    # layer's layernorm_after before its layernorm_before: with the order
    # lost, the two norms of one shape were a tie and left out (102/152,
    # 159/209). The words number them: before is norm1 / ln_1, after is
    # norm2 / ln_2, in HF's Swin V2 too, which registers them after their
    # layers
    case = _case(name)
    ordered = Case(dict(sorted(case.source.items())), case.destination, case.truth,
                   unjudged=case.unjudged)
    score = judge_case(ordered, mode, pair=name)
    assert (score.correct, score.wrong, score.expected) == (expected, 0, expected)


@pytest.mark.parametrize('name, expected', [
    # an HF-named ViT (each layer's norms registered last) into a model
    # holding a torchvision ViT of its depth and one of half of it: by
    # order the run fits both and every tensor was a tie (0); by what the
    # modules hold, the deep one holds it whole (the class token, position
    # table and head, of the shallow one's shapes too, stay out as ties)
    ('hf-vit-names->tv-vit(12)+tv-vit(6)', 148),
    ('hf-vit-names(3 layers)->tv-vit(3)+tv-vit(2)', 40),
    # SSD's VGG cut in conv4 and conv5, conv5 registered first: by order
    # every conv was a tie (0); conv4's six convs of shapes found once on
    # each side, by what the modules hold; the 256-to-256 and 512-to-512
    # convs, each shape held twice or more, stay out. conv4 and conv5 are
    # a list numbered out of turn: read in the order of their numbers too,
    # two more convs (16; keyorder.numbered_order)
    ('vgg16-ssd conv5 registered first', 16),
])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_tie_of_the_order_is_settled_by_what_the_modules_hold(name, expected, mode):
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong) == (expected, 0)


@pytest.mark.parametrize('name', ['timm-maxvit_tiny->tv-maxvit_t', 'tv-maxvit_t->timm-maxvit_tiny'])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_network_short_in_every_part_is_still_one_network(name, mode):
    # torchvision's MaxViT has no bias in its stem convolution and
    # classifier, and a 1x1 shortcut in its first block that timm's lacks:
    # stem, blocks and head are each left short of a place. The head's norm
    # and projection have the shapes of a block's norm and projection, so the
    # parts read as two alternatives and nothing loaded; no group of the
    # checkpoint could fill what they lack, so they are one network: all but
    # the two biasless weights load.
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong, score.expected) == (534, 0, 536)


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_norms_renamed_in_every_block_of_a_shared_scheme_load(mode):
    # HF's Hiera shares timm's names but for layernorm_before and
    # layernorm_after (timm's norm1 and norm2): in a shared scheme two
    # different words were a disagreement and the norms were left out (104
    # of 157); two words the other model never uses, paired with each other
    # in every block, are a rename. The position embedding and the head's
    # pooler.layernorm, each renamed once, load as abbreviations
    # (position_embeddings for pos_embed, layernorm for norm: 152 before);
    # the classifier, renamed once, stays out.
    score = judge_case(_case('hf-hiera-names->timm-hiera_tiny'), mode,
                       pair='hf-hiera-names->timm-hiera_tiny')
    assert (score.correct, score.wrong, score.expected) == (155, 0, 157)


@pytest.mark.parametrize('name', ['hf-beit-like->timm-beit', 'timm-beit->hf-beit-like'])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_layer_scales_are_neither_norms_nor_biases(name, mode):
    # HF's BEiT layer holds its scales lambda_1 and lambda_2 first and its
    # norms last; timm's block its gamma_1 and gamma_2 first, its attention
    # q_bias and v_bias beside the position table. Order put timm's scales
    # into the previous layer's layernorm_before and the attention's biases
    # into HF's lambdas (8 wrong here, 62 for beit_base with HF's own model).
    # Left out then, the scales now pair as the own tensors of two modules
    # that correspond (was 42 of 46).
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong, score.expected) == (46, 0, 46)


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_norms_registered_against_their_peers_are_placed_by_their_words(mode):
    # the same deit_tiny under HF names, one layer's layernorm_after
    # registered before its layernorm_before: the norms' names no longer
    # pair alike in every layer, so no layer's norms are placed by order
    # (the other 102 tensors are). Read without the order, the words number
    # them (before 1, after 2), and the eleven layers whose order agrees
    # load theirs (was 102); the swapped layer's, whose order says the other
    # thing, stayed out while the sorted reading was weighed before the
    # checks only: weighed after them too, it keeps every pair the order
    # made and places those four by their words (was 148)
    case = _case('hf-vit-names->timm-deit_tiny')
    keys = list(case.source)
    after = [k for k in keys if k.startswith('vit.encoder.layer.1.layernorm_after.')]
    rest = [k for k in keys if k not in after]
    at = rest.index('vit.encoder.layer.1.layernorm_before.weight')
    rest[at:at] = after
    swapped = Case({k: case.source[k] for k in rest}, case.destination, case.truth)
    score = judge_case(swapped, mode)
    assert (score.correct, score.wrong, score.expected) == (152, 0, 152)


@pytest.mark.parametrize('name, mode, expected', [
    # keys sorted by name (a safetensors file): modules pair by the shapes
    # they hold (torch_liberator.unordered), their equal children by their
    # numbers (were 24 and 89 by unique shapes and open modules, 9 and 49
    # before those). In each first block the shortcut (a module of its own
    # shapes) pairs first, and then bn1 and bn2 are the only two of their
    # width and pair by their numbers
    ('resnet18-renamed (sorted keys)', 'structure', 122),
    ('timm-efficientnet_b0->tv-efficientnet_b0 (sorted keys)', 'auto', 360),
    ('timm-vit_small->tv-vit(small config) (sorted keys)', 'structure', 152),
    ('timm-convnext_tiny->tv-convnext_tiny (sorted keys)', 'auto', 182),
    ('hf-convnext-names->tv-convnext_tiny (sorted keys)', 'auto', 182),
    # torchvision saves each window attention's relative_position_index,
    # timm does not: a shape only one side has says nothing of a module
    ('timm-swin_tiny->tv-swin_t (sorted keys)', 'structure', 173),
    # an alignment in registration order that leaves much out (47 and 114):
    # the order-free one pairs modules by the shapes they hold, and where it
    # keeps every pair of the order, what it places inside a module of 32
    # groups or more, paired by its shapes alone, is added, and so is what
    # it places inside a smaller module that holds every tensor of each of
    # its kernel shapes, three shapes or more, on both sides. mmpretrain
    # registers a ConvNeXt's downsampling layers before its stages: its
    # third stage (9 blocks) is of the first kind, the others (3 blocks, 15
    # groups) of the second (was 128)
    ('mmpretrain-convnext-names->tv-convnext_tiny', 'structure', 182),
    ('mmpretrain-convnext-names->tv-convnext_tiny', 'auto', 182),
    # a densenet121 regrouped, every dense block registered before the
    # transitions: whole blocks by what they hold (auto had these already)
    ('h4-densenet121-blocks-renamed', 'structure', 714),
    # HF's ViT and Swin from a safetensors file: query, key and value set
    # aside against the packed qkv, the layers and blocks pair by what they
    # hold; each block's two norms, one shape, other names, by the words
    # that number them, layernorm_before and layernorm_after (were 0 and
    # 13, then 30 and 99 with the norms left out)
    ('real-hf-vit(small) (sorted keys)->tv-vit(small)', 'structure', 48),
    ('real-hf-swin_t (sorted keys)->tv-swin_t', 'structure', 149),
    # HF's Swin V2 registers an attention's logit_scale first, torchvision
    # after qkv and proj: no pair beside it, it was taken for a norm away
    # from its layer; the two attentions correspond and the name is the
    # same (was 149). The output Linear (``attention.output.dense``, after
    # query, key and value, which stay aside against the fused qkv) is the
    # one layer of its shapes left in the two attentions (was 161)
    ('real-hf-swinv2_t->tv-swin_v2_t', 'structure', 185),
    ('real-tv-swin_v2_t->hf-swinv2_t', 'structure', 185),
    # resnet50's stages as a ModuleList registered last first, the stem
    # last: layer1 (3 blocks, 20 groups) holds every tensor of its kernel
    # shapes on both sides and is placed by them now (was 253: layer2 to
    # layer4 and the stem's convolution; its BatchNorm, of layer1's width,
    # stays out)
    ('resnet50 stages in reverse (ModuleList)', 'structure', 313),
    ('resnet50 stages in reverse (ModuleList)', 'auto', 313),
])
def test_modules_pair_by_what_they_hold_where_order_says_little(name, mode, expected):
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong) == (expected, 0)


@pytest.mark.parametrize('name, mode, expected', [
    # a list cut inside, its renumbered items the names never follow: the
    # structure solve's pairs whose keys end in the same names (was 200;
    # 0.2.1: 314)
    ('resnet50-cut-inside-layer3', 'embedding', 314),
    # nn.Sequential(*resnet50().children()): the names place layer-less
    # keys only (was 114)
    ('resnet50-children', 'isomorphism', 312),
    # the checkpoint's network wrapped beside a longer one holding all its
    # names and shapes: the names tie, the structure solve breaks the tie
    # (was 0, all ambiguous; 0.2.1: 360)
    ('efficientnet_b1+b0(wrapped)<-b0', 'embedding', 360),
    # (HF's Swin V2: the logit_scales that the structure solve now places,
    # whose names agree; was 9, 0.2.1: 21)
    ('real-hf-swinv2_t->tv-swin_v2_t', 'embedding', 21),
])
def test_the_name_modes_take_what_the_structure_solve_settles(name, mode, expected):
    score = judge_case(_case(name), mode, pair=name)
    assert (score.correct, score.wrong) == (expected, 0)


@pytest.mark.parametrize('name, expected', [
    # a block of a stage's repeats fits every repeat of the deeper model's
    # stage; registration order and shapes place each stage's first block
    # and the stem and head; read by what the modules hold, the blocks
    # after it pair by the numbers the shorter stage keeps, as the name
    # modes pair ``layer2.1`` in two depths of one library (were 124, 5,
    # 24 and 24: a number was taken for no evidence). The longer stage's
    # other blocks stay out. A list cut from its end and renumbered has
    # these very keys and shapes, and every mode reads it by its numbers
    # too (docs/usage.rst says so)
    pytest.param('timm-efficientnet_b0->tv-efficientnet_b1 (another depth)', (350, 350, 2, 0),
                 marks=pytest.mark.corpus),  # 3 s: with the full corpus
    # 12 blocks of one shape into 6: blocks 0 to 5 by their numbers; the
    # two tensors of the head, whose sizes differ, stay out
    ('timm-deit_tiny->tv-vit(tiny config, 6 layers) (another depth)', (78, 78, 2, 2)),
    # HF's shortcut registered first lined up its last stage against
    # torchvision's longer one, a block split over two (18 wrong before);
    # the stem's norm, of layer1's shapes, stays out of the shorter side
    ('real-hf-resnet18->tv-resnet34 (another depth)', (122, 122, 0, 0)),
    ('real-tv-resnet34->hf-resnet18 (another depth)', (117, 117, 0, 0)),
    # HF's last block of 6 into the last of 18 by its place (6 wrong before)
    ('real-hf-swin_t->tv-swin_s (another depth)', (85, 85, 15, 15)),
])
def test_a_checkpoint_of_another_depth_from_another_library_lands_nowhere_wrong(name, expected):
    case = _case(name)
    scores = [judge_case(case, mode, pair=name)
              for mode in ('structure', 'auto', 'embedding', 'isomorphism')]
    assert [score.wrong for score in scores] == [0, 0, 0, 0]
    assert tuple(score.correct for score in scores) == expected


@pytest.mark.parametrize('name, expected', [
    # the checkpoint's layer2.0 is the model's block 6 of a flat list by
    # what both hold; layer2, one level up, holds it and a block more, but
    # that block (layer2.1) paired with block 7 of its own: no rival, and
    # nothing is doubted
    ('resnet18-flat-blocks (sorted keys)', 120),
    # ShuffleNet's branch2 holds every shape of branch1 and two groups
    # more: a block of another design, no rival of branch1 (taken for one,
    # the branches' pairs were doubted and 18 tensors went to a decoy of
    # their names)
    ('shufflenet_v2_x0_5 stage2 parts (base collides)', 266),
])
def test_a_module_of_the_same_shapes_with_no_rival_keeps_its_pairs(name, expected):
    score = judge_case(_keys_sorted(_case(name)), 'structure')
    assert (score.correct, score.wrong) == (expected, 0)


def _keys_sorted(case):
    # the case with its checkpoint's keys sorted by name, as a .safetensors
    # file lists them
    return Case(dict(sorted(case.source.items())), case.destination, case.truth)


def test_a_named_module_has_an_analogy_in_a_block_of_another_design():
    # inception_v3 into its children-Sequential, keys sorted: Mixed_5b's
    # open branch1x1 and branch3x3dbl_1 take their places by analogy with
    # Mixed_7b, another design that names its branches alike but lacks
    # some of the paths Mixed_5b pairs; only below a list position must
    # the analogy pair every path (were 228 while it had to here too)
    score = judge_case(_keys_sorted(_case('inception_v3-children')), 'structure')
    assert (score.correct, score.wrong) == (258, 0)


@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_a_network_fine_tuned_to_other_classes_is_found_beside_a_longer_sibling(mode):
    # a 1000-class resnet18 into Slots(a = resnet34, b = the resnet18 with a
    # 10-class fc): the resnet34 takes every key by name and shape, blocks
    # skipped; the resnet18 is the checkpoint whole but for its head's sizes
    # (modulefit.resized_head_fit). Was 0: every mode left all 122 out
    score = judge_case(_case('resnet34+resnet18(10 classes)<-resnet18(1000 classes)'), mode)
    assert (score.correct, score.wrong, score.expected) == (120, 0, 120)


@pytest.mark.corpus
@pytest.mark.parametrize('name, mode', _params(list(PAIRS)))
def test_full_corpus_no_tensor_in_a_wrong_place(name, mode):
    _assert_nothing_wrong(name, mode)


@pytest.mark.corpus
@pytest.mark.parametrize('name', [n for n, p in PAIRS.items() if p.truth_from == 'outputs'])
def test_full_corpus_hand_written_truths_give_equal_outputs(name):
    assert verify_truth(_case(name)) <= 1e-4


@functools.lru_cache(maxsize=1)  # the modes of one seed run one after another
def _wide_fuzz_build(seed, cross, wider, options):
    requires('timm')
    import fuzz_real
    if cross:
        wide = {**fuzz_real.CROSS, **fuzz_real.CROSS_WIDE,
                **(fuzz_real.CROSS_WIDER if wider else {})}
        *_, case = fuzz_real.make_cross_case(seed, cross=wide, **dict(options))
    else:
        *_, case = fuzz_real.make_case(seed, zoo=fuzz_real.ZOO, **dict(options))
    return case


@functools.lru_cache(maxsize=2)  # (a seed's case and its sorted reading)
def _wide_fuzz_case(seed, cross=False, wider=False, sorted_keys=False, **options):
    """``benchmarks/fuzz_real.py``'s case ``seed`` of ``--wide``
    (``--cross --wide`` when ``cross``, ``--cross --wider`` when ``wider``
    too), its checkpoint's keys sorted when ``sorted_keys`` (``--sorted``;
    a copy sharing the model: one build serves both readings)."""
    case = _wide_fuzz_build(seed, cross, wider, tuple(sorted(options.items())))
    if not sorted_keys:
        return case
    return Case(dict(sorted(case.source.items())), case.destination, case.truth,
                unjudged=case.unjudged)


def _wide_fuzz_score(mode, seed, cross=False, **options):
    """The judged load of :func:`_wide_fuzz_case` in ``mode``."""
    score = judge_case(_wide_fuzz_case(seed, cross, **options), mode)
    assert not score.error, score.error
    return score


@pytest.mark.parametrize('seed, options, expected', [
    # --wide --reorder 6059: an inception_v3 whose Mixed_6c.branch7x7dbl_2
    # is flattened (``0``, ``1``) and whose branch7x7dbl_3 is wrapped as
    # ``branch7x7dbl_3.main``, conv and bn registered the other way round.
    # Structure gave dbl_3's bn to the model's branch7x7dbl_2.bn (5 wrong):
    # the level ``main``, a word the model never uses, hid that the two
    # paths name two sibling branches
    (6059, dict(reorder=True), (566, 566)),
    # --cross --wide 8349: timm's mobilenetv3_large_100 cut short, into
    # torchvision's wrapped and cut shorter. blocks.5.1 and blocks.5.2 are
    # equal and both tied for features.14; the first version of
    # openmodules' tied-block rule placed blocks.5.2 there by analogy (22
    # wrong) because it looked only at the block's own ties
    (8349, dict(cross=True), (261, 261)),
    # --joined --cross --wide --reorder 1388: torchvision's inception_v3
    # with its names joined (``Mixed_6d_branch7x7dbl_3``) beside a
    # googlenet, into timm's whose Mixed_6d registers its branches in
    # another order: Mixed_6d_branch7x7dbl_3 went into Mixed_6d.branch7x7_2
    # by order (6 wrong), though the model's Mixed_6d.branch7x7dbl_3 is its
    # name joined (namevotes.namesakes_above). The branches numbered out of
    # turn are read in the order of their numbers too, which places 548 and
    # the registration order 542, all right: what one places and the other
    # says nothing of is kept (550)
    (1388, dict(cross=True, reorder=True, joined=True), (550, 550)),
    # --cross --wide --reorder 7574: timm's regnety_016 as children, into
    # torchvision's regnet_y_1_6gf flattened, whose first stage registers
    # block1-1 before block1-0. The order sent conv2 and conv3 (one shape
    # in both blocks) across the blocks, the squeeze-excitations and the
    # first block's own shapes straight (24 wrong)
    (7574, dict(cross=True, reorder=True), (626, 626)),
    # --cross --wide 7759: torchvision's inception_v3 with ``Mixed_6b.trunk``
    # inserted, into timm's whose ``Mixed_6d`` holds its branches as
    # ``Mixed_6d.model.trunk.*``. ``trunk.branch1x1`` named Mixed_6b's
    # branch1x1 and branch_pool into Mixed_6d (12 wrong in structure), the
    # words above naming two blocks both sides hold
    (7759, dict(cross=True), (565, 565)),
    # --cross --wide --reorder 6417, keys sorted: timm's inception_v3 with
    # ``Mixed_6a`` wrapped as ``Mixed_6a.main``, into torchvision's whose
    # ``Mixed_5d`` is renamed ``main``, of the same branch shapes:
    # ``main.branch3x3dbl_1`` named Mixed_6a's branches into the model's
    # main (30 wrong in structure); numbered twins against the model's
    # registration order (unordered._tie_pairs) place 512 of 566 since
    (6417, dict(cross=True, reorder=True), (512, 530)),
    # --wide --reorder 5848: timm's hrnet_w18_small with its children
    # reordered, into one flattened to ``extractor.N`` beside a
    # convnext_tiny. Parts left short judged by their open places only let
    # an incre module's block into a stage3 branch's place (22 wrong in
    # structure); a part is short only of what the checkpoint could fill
    (5848, dict(reorder=True), None),
])
@pytest.mark.parametrize('mode', ['structure', 'auto'])
def test_wide_fuzz_seeds_that_went_wrong(seed, options, expected, mode):
    score = _wide_fuzz_score(mode, seed, **options)
    assert score.wrong == 0, score.wrong_keys[:3]
    if expected is not None:
        assert score.correct == expected[('structure', 'auto').index(mode)]


@pytest.mark.xdist_group('67034')  # one worker builds the case once
@pytest.mark.parametrize('sorted_keys, mode, expected', [
    (True, 'structure', 133), (True, 'auto', 133), (True, 'embedding', 133),
    (True, 'isomorphism', 133), (False, 'structure', 624), (False, 'auto', 624),
    (False, 'embedding', 510)])
def test_a_shallower_network_of_the_models_names_beside_its_renamed_twin_is_no_source(
        sorted_keys, mode, expected):
    # --cross --wider --reorder --sorted 67034: a checkpoint holding timm's
    # resnet101 as ``base.*``, its lists cut in renamed parts
    # (``layer3.body``, ``layer3.part``; 126 of its 626 keys keep the
    # model's names), beside a resnet50 as ``backbone.*`` (318 of its 320
    # keys are the model's names), into torchvision's resnet101 without its
    # fc. The truth, by identity, is ``base``; every tree mode loaded the
    # resnet50's tensors (keys sorted: 194 to 318 wrong of 624). The
    # checkpoint's ``base`` holds the model's shapes and a head: the
    # resnet50's pairs are left out, and the structure solve on ``base``
    # alone places what it can (in registration order, all of it; sorted,
    # the renamed parts leave most of it open)
    case = _wide_fuzz_case(67034, cross=True, wider=True, sorted_keys=sorted_keys,
                           reorder=True)
    score = judge_case(case, mode)
    assert not score.error, score.error
    assert (score.correct, score.wrong) == (expected, 0), score.wrong_keys[:3]


@pytest.mark.parametrize('seed', [2241, 3154, 10681, 10981, 11346, 11416, 11418, 12097, 12178, 13322,
                                  13419, 13978, 14940, 15300, 16495, 11587, 25601])
def test_mutation_fuzz_seeds_that_went_wrong(seed):
    # benchmarks/fuzz_real.py: 2241 put a resnet18 checkpoint into a wider
    # resnet under 'module.' (auto took module-hack's 120 shoves); 3154 paired
    # mobilenet_v3's features.5 with the model's features.model.6, two equal
    # blocks at different places of lists of the same items (22 wrong); 10681
    # loaded a resnet34 of the model's names beside the resnet18 itself with
    # its bn1 renamed, keys sorted (122 wrong in the name modes and auto);
    # 10981 shoved a regnet's fc into a resnext50's beside the headless regnet
    # (isomorphism, auto); 11346 filled an efficientnet_b0's classifier from a
    # mobilenet_v2 beside the headless b0 (embedding, auto); 11418 gave a ViT
    # block's MLP to the next block, its own a level deeper (structure); 12097
    # took a mixer's `blocks.blocks.0`, a later part of its list cut in parts,
    # for the model's `blocks.0` (every tree mode, 36 wrong); 11416
    # started prefix-hack at mobilenet_v2's features.5 -> blocks.6 (equal blocks,
    # the list split keeping its numbers); 12178 took two equal blocks renamed on
    # both sides one module at a time (embedding, auto); 13322 paired a
    # resnet50's fc with a resnext50's beside the other network (structure;
    # 12659 the same with the resnet50 in the model) and took the resnet50's
    # stem for the resnext50's (embedding); 13419 shoved the checkpoint's
    # layer3, saved as body2, into the model's layer4 named body2 (name modes);
    # 13978 gave a resnext50 a resnet18's stem and head, saved under the name
    # of the model's wrapper (prefix-hack, isomorphism); 14940 aligned a
    # resnet50 with a wide_resnet50_2 beside its own headless copy, held by
    # the wide network's fc as a name anchor (structure, 109 wrong); 15300
    # shoved a flattened ConvNeXt's classifier norm, `features.2.0` there, into
    # the model's downsampling norm of that key (strict, module-hack); 16495
    # loaded a resnext50 into a wide_resnet50_2 of its names beside its own
    # renamed copy, shoving every conv2 (embedding 320 wrong, structure, auto);
    # 11587 shoved a regnet's fc, saved under the name of the model's ConvNeXt
    # head, head.fc, into it while the checkpoint's flattened ConvNeXt head fits
    # it exactly (prefix-hack); 25601 paired a shufflenet's stage3.k (keys
    # sorted, its last block renamed) with the model's stage3.backbone.k, a
    # later part after stage3.encoder.0 (126 wrong in prefix-hack, 108 in
    # embedding, isomorphism and auto)
    import fuzz_real
    *_, case = fuzz_real.make_case(seed)
    for mode in fuzz_real.MODES:
        score = judge_case(case, mode)
        assert not score.error, score.error
        assert score.wrong == 0, (mode, score.wrong_keys[:3])
