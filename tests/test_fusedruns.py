"""
An attention's query, key and value fused into one Linear on one side
(timm, torchvision) and kept as three on the other (HuggingFace): the
structure solver sets both aside and places the rest of the attention,
judged by values.
"""
import pytest
import torch
from torch import nn

from torch_liberator import load_partial_state
from torch_liberator.association import associate
from torch_liberator.fusedruns import fused_counterparts
from torch_liberator.keygroups import KeyGroups


class _FusedAttention(nn.Module):
    """torchvision's and timm's layout: a position table and its index
    (flattened), then ``qkv`` of 3C outputs and ``proj``."""

    def __init__(self, width, heads, window=3):
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer('relative_position_index',
                             torch.zeros(window ** 4, dtype=torch.long))


class _SelfAttention(nn.Module):
    """HuggingFace's ``attention.self``: the table, the index as a square,
    and three Linears."""

    def __init__(self, width, heads, window=3):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer('relative_position_index',
                             torch.zeros(window ** 2, window ** 2, dtype=torch.long))
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)


class _Output(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.dense = nn.Linear(width, width)


class _SplitAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.self = _SelfAttention(width, heads)
        self.output = _Output(width)


def _block(width, heads, fused):
    block = nn.Module()
    block.norm1 = nn.LayerNorm(width)
    block.attn = _FusedAttention(width, heads) if fused else _SplitAttention(width, heads)
    block.norm2 = nn.LayerNorm(width)
    block.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                              nn.Linear(4 * width, width))
    return block


def _network(fused, widths=(8, 16), depth=2):
    """Stages of Swin-like blocks; the two layouts differ only in their
    attentions' names and whether query, key and value are one Linear."""
    net = nn.Module()
    net.stages = nn.ModuleList(
        nn.Sequential(*[_block(w, 2 ** (s + 1), fused) for _ in range(depth)])
        for s, w in enumerate(widths))
    return net


def _truth(fused_src):
    """source key -> model key for everything that has a place: all but
    query, key, value, qkv and the position index."""
    net = _network(fused=fused_src)
    out = {}
    renames = {'attn.proj.': 'attn.output.dense.',
               'attn.relative_position_bias_table': 'attn.self.relative_position_bias_table'}
    for key in net.state_dict():
        if 'qkv' in key or 'query' in key or '.key.' in key or 'value' in key \
                or 'relative_position_index' in key:
            continue
        other = key
        for a, b in renames.items():
            other = other.replace(a, b) if fused_src else other.replace(b, a)
        out[key] = other
    return out


def _linear(path, out, inp=8):
    return {path + '.weight': (out, inp), path + '.bias': (out,)}


@pytest.mark.parametrize('fused_src', [True, False])
@pytest.mark.parametrize('keys_sorted', [False, True])
def test_the_rest_of_an_attention_loads_beside_a_fused_qkv(fused_src, keys_sorted):
    # HF's Swin into torchvision's left each attention's output Linear
    # out (it tied with query, key and value, of its shape) and its
    # position table (the index beside it is [49, 49] in one, [2401] in
    # the other): 36 of 149 tensors. Now everything with a place loads.
    # With the keys sorted (a safetensors file) the position table sorts
    # between query and value and the groups list their biases first; the
    # run is still the three Linears alone below one module, set aside,
    # and attention.self, holding nothing else, is its table (HF's Swin-T,
    # keys sorted: 13 of 149, now 99; its norms have other names there,
    # one shape and no order)
    torch.manual_seed(0)
    source, model = _network(fused=fused_src), _network(fused=not fused_src)
    items = source.state_dict().items()
    state = {k: torch.randn(v.shape) if v.is_floating_point() else v
             for k, v in (sorted(items) if keys_sorted else items)}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_partial_state(model, state, association='structure', verbose=0)
    after = model.state_dict()
    truth = _truth(fused_src)
    for src_key, dst_key in truth.items():
        assert torch.equal(after[dst_key], state[src_key]), (src_key, dst_key)
    # query, key, value and qkv: no one tensor of the other, untouched
    for key, value in after.items():
        if key not in truth.values():
            assert torch.equal(value, before[key]), key


def test_a_fused_layer_is_told_apart_only_when_it_is_unmistakable():
    split = {**_linear('a.self.query', 8), **_linear('a.self.key', 8), **_linear('a.self.value', 8),
             **_linear('a.output.dense', 8)}
    fused = {**_linear('a.qkv', 24), **_linear('a.proj', 8)}
    assert fused_counterparts(KeyGroups(split), KeyGroups(fused)) == ({0, 1, 2}, {0})
    # two fused layers of those shapes for one run: which is which is unknown
    two = {**fused, **_linear('b.qkv', 24)}
    assert fused_counterparts(KeyGroups(split), KeyGroups(two)) == (set(), set())
    # a fourth Linear under the same module: not query, key and value alone
    four = {**split, **_linear('a.self.extra', 8)}
    assert fused_counterparts(KeyGroups(four), KeyGroups(fused)) == (set(), set())
    # the run's side holds a layer of the fused shapes as well
    both = {**split, **_linear('c.qkv', 24)}
    assert fused_counterparts(KeyGroups(both), KeyGroups(fused)) == (set(), set())
    # three Linears held by the root itself: a small MLP, no attention's
    root = {**_linear('a', 8), **_linear('b', 8), **_linear('c', 8)}
    assert fused_counterparts(KeyGroups(root), KeyGroups(_linear('abc', 24))) == (set(), set())
    # a Linear without a bias against a fused layer with one: other shapes
    bare = {**_linear('a.qkv', 24), **_linear('a.proj', 8)}
    del bare['a.qkv.bias']
    assert fused_counterparts(KeyGroups(split), KeyGroups(bare)) == (set(), set())


def test_an_output_linear_with_a_rival_stays_out():
    # set aside, query, key and value leave two Linears of the output's
    # shape on the split side: which one is the output is not known
    split = {**_linear('a.self.query', 8), **_linear('a.self.key', 8), **_linear('a.self.value', 8),
             **_linear('a.output.dense', 8), **_linear('a.output.gate', 8)}
    fused = {**_linear('a.qkv', 24), **_linear('a.proj', 8)}
    found = associate(fused, split, association='structure')
    assert 'a.proj.weight' not in found.mapping


def _vit(names, width=16, depth=3):
    """A small ViT's keys and shapes: torchvision's (``'tv'``: query, key
    and value packed in ``in_proj``, ``ln_1`` and ``ln_2``), timm's
    (``'timm'``: a packed ``qkv`` Linear beside ``proj``, ``norm1`` and
    ``norm2``) or HF's (``'hf'``: three Linears, ``layernorm_before`` and
    ``layernorm_after`` registered last in each layer)."""
    w = width
    keys = {}
    for n in range(depth):
        if names == 'timm':
            p = f'blocks.{n}'
            keys.update({f'{p}.norm1.weight': (w,), f'{p}.norm1.bias': (w,),
                         **_linear(f'{p}.attn.qkv', 3 * w, w), **_linear(f'{p}.attn.proj', w, w),
                         f'{p}.norm2.weight': (w,), f'{p}.norm2.bias': (w,),
                         **_linear(f'{p}.mlp.fc1', 4 * w, w), **_linear(f'{p}.mlp.fc2', w, 4 * w)})
        elif names == 'tv':
            p = f'encoder.layers.encoder_layer_{n}'
            keys.update({f'{p}.ln_1.weight': (w,), f'{p}.ln_1.bias': (w,),
                         f'{p}.self_attention.in_proj_weight': (3 * w, w),
                         f'{p}.self_attention.in_proj_bias': (3 * w,),
                         **_linear(f'{p}.self_attention.out_proj', w, w),
                         f'{p}.ln_2.weight': (w,), f'{p}.ln_2.bias': (w,),
                         **_linear(f'{p}.mlp.0', 4 * w, w), **_linear(f'{p}.mlp.3', w, 4 * w)})
        else:
            p = f'vit.encoder.layer.{n}'
            keys.update({**_linear(f'{p}.attention.attention.query', w, w),
                         **_linear(f'{p}.attention.attention.key', w, w),
                         **_linear(f'{p}.attention.attention.value', w, w),
                         **_linear(f'{p}.attention.output.dense', w, w),
                         **_linear(f'{p}.intermediate.dense', 4 * w, w),
                         **_linear(f'{p}.output.dense', w, 4 * w),
                         f'{p}.layernorm_before.weight': (w,), f'{p}.layernorm_before.bias': (w,),
                         f'{p}.layernorm_after.weight': (w,), f'{p}.layernorm_after.bias': (w,)})
    return keys


def _vit_truth(n):
    """HF key -> torchvision key of layer ``n``, for what has a place."""
    hf, tv = f'vit.encoder.layer.{n}', f'encoder.layers.encoder_layer_{n}'
    return {f'{hf}.{a}.{t}': f'{tv}.{b}.{t}' for a, b in [
        ('attention.output.dense', 'self_attention.out_proj'), ('intermediate.dense', 'mlp.0'),
        ('output.dense', 'mlp.3'), ('layernorm_before', 'ln_1'), ('layernorm_after', 'ln_2')]
        for t in ('weight', 'bias')}


def test_with_keys_sorted_a_vit_crosses_the_fused_attention():
    # a safetensors file lists its keys sorted: HF's ViT into torchvision's
    # loaded nothing (each layer's query, key and value made it look like
    # another design, and its attention of other shapes than the packed
    # one). Set aside there too, the layers pair by their numbers, and
    # inside them what each holds once; the two norms of one shape, whose
    # order the sorted listing loses (after, before), by the words that
    # number them (before is ln_1, after ln_2; were left out)
    truth = {k: v for n in range(3) for k, v in _vit_truth(n).items()}
    hf = dict(sorted(_vit('hf').items()))
    found = associate(hf, _vit('tv'), association='structure').mapping
    assert found == truth
    # torchvision's, keys sorted, into HF's in registration order: ln_1 and
    # ln_2 number their order, HF registers layernorm_before first
    back = associate(dict(sorted(_vit('tv').items())), _vit('hf'), association='structure')
    assert back.mapping == {v: k for k, v in truth.items()}


def test_with_keys_sorted_a_vit_crosses_timms_fused_attention_too():
    # timm's attention holds its packed qkv (set aside) and proj, as HF's
    # holds query, key and value (set aside, each a module of its own,
    # inside ``attention.attention``) and ``output.dense``: each is the one
    # layer it holds, and the two pair (HF's ViT-B and DINOv2, keys sorted,
    # into timm's: was 104 of 128 and 45 of 54, every proj left out)
    hf = dict(sorted(_vit('hf').items()))
    found = associate(hf, _vit('timm'), association='structure').mapping
    renames = [('vit.encoder.layer.', 'blocks.'), ('attention.output.dense', 'attn.proj'),
               ('intermediate.dense', 'mlp.fc1'), ('output.dense', 'mlp.fc2'),
               ('layernorm_before', 'norm1'), ('layernorm_after', 'norm2')]

    def timm_name(key):
        for a, b in renames:
            key = key.replace(a, b)
        return key
    assert found == {k: timm_name(k) for k in hf if '.attention.attention.' not in k}


def test_a_layer_with_a_scalar_beside_its_weight_is_no_linear_of_a_run():
    # a cosine classifier (weight [C, D] and a learnable scale of one
    # element) beside a Linear of its weight's shape: the scale, once its
    # size-1 dimension is set aside, has no length to stack, and the search
    # for fused runs raised IndexError (property seed, unrelated trees)
    keys = {'head.cos.weight': (2, 2), 'head.cos.scale': (1,), 'head.proj.weight': (2, 2)}
    groups = KeyGroups(keys)
    assert fused_counterparts(groups, KeyGroups({'fc.weight': (4, 2)})) == (set(), set())
    for mode in ('embedding', 'structure', 'auto'):
        result = associate(keys, dict(keys), association=mode)
        assert result.mapping == {k: k for k in keys}
    other = {'a.weight': (1,)}
    result = associate(keys, other, association='structure')
    assert set(result.mapping) <= {'head.cos.scale'}
