"""
Checkpoints under other libraries' names (HuggingFace transformers' ConvNext,
mmpretrain's VisionTransformer and ConvNeXt), made by renaming a timm (or
torchvision) model's own tensors:
into that timm model the truth is by identity; into torchvision it goes
through the timm <-> torchvision correspondence verified by outputs in
:mod:`corpus_pairs.cross`.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('mmpretrain-vit-names->timm-deit_tiny')
    >>> case.truth['backbone.layers.0.ffn.layers.0.0.weight']
    'blocks.0.mlp.fc1.weight'
"""
import re

from corpus_pairs.cross import vit_truth
from corpus_pairs.models import in_order, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair


def _renamed_state(model, rules):
    """The model's own tensors under names rewritten by the first matching ``(regex, replacement)``."""
    out = {}
    for key, value in keep(model).items():
        for pattern, repl in rules:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            raise KeyError(f'no rule renames {key!r}')
    return out


_HF_CONVNEXT = [  # timm convnext key -> HuggingFace ConvNextForImageClassification key
    (r'stem\.0\.(\w+)', r'convnext.embeddings.patch_embeddings.\1'),
    (r'stem\.1\.(\w+)', r'convnext.embeddings.layernorm.\1'),
    (r'stages\.(\d)\.downsample\.(\d)\.(\w+)', r'convnext.encoder.stages.\1.downsampling_layer.\2.\3'),
    (r'stages\.(\d)\.blocks\.(\d+)\.gamma', r'convnext.encoder.stages.\1.layers.\2.layer_scale_parameter'),
    (r'stages\.(\d)\.blocks\.(\d+)\.conv_dw\.(\w+)', r'convnext.encoder.stages.\1.layers.\2.dwconv.\3'),
    (r'stages\.(\d)\.blocks\.(\d+)\.norm\.(\w+)', r'convnext.encoder.stages.\1.layers.\2.layernorm.\3'),
    (r'stages\.(\d)\.blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'convnext.encoder.stages.\1.layers.\2.pwconv1.\3'),
    (r'stages\.(\d)\.blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'convnext.encoder.stages.\1.layers.\2.pwconv2.\3'),
    (r'head\.norm\.(\w+)', r'convnext.layernorm.\1'),
    (r'head\.fc\.(\w+)', r'classifier.\1'),
]

_MM_VIT = [  # timm ViT key -> mmpretrain VisionTransformer (ImageClassifier) key
    (r'cls_token', 'backbone.cls_token'),
    (r'pos_embed', 'backbone.pos_embed'),
    (r'patch_embed\.proj\.(\w+)', r'backbone.patch_embed.projection.\1'),
    (r'blocks\.(\d+)\.norm1\.(\w+)', r'backbone.layers.\1.ln1.\2'),
    (r'blocks\.(\d+)\.attn\.(qkv|proj)\.(\w+)', r'backbone.layers.\1.attn.\2.\3'),
    (r'blocks\.(\d+)\.norm2\.(\w+)', r'backbone.layers.\1.ln2.\2'),
    (r'blocks\.(\d+)\.mlp\.fc1\.(\w+)', r'backbone.layers.\1.ffn.layers.0.0.\2'),
    (r'blocks\.(\d+)\.mlp\.fc2\.(\w+)', r'backbone.layers.\1.ffn.layers.1.\2'),
    (r'norm\.(\w+)', r'backbone.ln1.\1'),
    (r'head\.(\w+)', r'head.layers.head.\1'),
]


def _renamed_timm_case(arch, rules, to_torchvision=None):
    """A checkpoint of a timm model under another library's names, into the timm model (identity)
    or into torchvision through a truth verified by outputs elsewhere (``to_torchvision``)."""
    src = timm_module().create_model(arch, pretrained=False)
    state = _renamed_state(src, rules)
    if to_torchvision is None:
        return Case(state, src, None)
    dst, timm_to_tv = to_torchvision()
    back = {id(v): k for k, v in keep(src).items()}
    return Case(state, dst, {k: timm_to_tv[back[id(v)]] for k, v in state.items()})


def _tv_convnext_tiny():
    timm_keys = timm_module().create_model('convnext_tiny', pretrained=False).state_dict()
    dst = tv_model('convnext_tiny')
    return dst, dict(zip(timm_keys, dst.state_dict()))


def _tv_vit_tiny():
    dst = torchvision_module().models.vision_transformer.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768)
    timm_keys = timm_module().create_model('deit_tiny_patch16_224', pretrained=False).state_dict()
    return dst, vit_truth(timm_keys)


_MM_CONVNEXT_PARTS = {'0': 'depthwise_conv', '2': 'norm', '3': 'pointwise_conv1',
                      '5': 'pointwise_conv2'}


def _mm_convnext_name(key):
    """(place in mmpretrain's order, mmpretrain ConvNeXt key) of a torchvision convnext key."""
    m = re.fullmatch(r'features\.(\d)\.(\d)\.(\w+)', key)
    if m and int(m[1]) % 2 == 0:  # the stem and the downsampling layers, all registered first
        return (0, int(m[1]) // 2), f'backbone.downsample_layers.{int(m[1]) // 2}.{m[2]}.{m[3]}'
    m = re.fullmatch(r'features\.(\d)\.(\d+)\.(layer_scale|block\.(\d)\.(\w+))', key)
    if m:
        stage, block = (int(m[1]) - 1) // 2, int(m[2])
        if m[4] is None:
            return (1, stage, block), f'backbone.stages.{stage}.{block}.gamma'
        part = _MM_CONVNEXT_PARTS[m[4]]
        return (1, stage, block), f'backbone.stages.{stage}.{block}.{part}.{m[5]}'
    m = re.fullmatch(r'classifier\.(\d)\.(\w+)', key)
    return (2, int(m[1])), ('backbone.norm3.' if m[1] == '0' else 'head.fc.') + m[2]


def mmpretrain_convnext_state(model) -> dict:
    """
    A torchvision ConvNeXt's own tensors under mmpretrain's ConvNeXt names and
    order: the stem and the three downsampling layers
    (``backbone.downsample_layers.N``) all registered before the four stages
    (``backbone.stages.N.M``), where torchvision interleaves them in
    ``features``.

    Example:
        >>> from corpus_pairs.models import tv_model
        >>> from corpus_pairs.foreign_names import mmpretrain_convnext_state
        >>> keys = list(mmpretrain_convnext_state(tv_model('convnext_tiny')))
        >>> keys[15], keys[16]
        ('backbone.downsample_layers.3.1.bias', 'backbone.stages.0.0.gamma')
    """
    named = []
    for n, (key, value) in enumerate(keep(model).items()):
        place, name = _mm_convnext_name(key)
        named.append(((place, n), name, value))
    return in_order(named)


@register_pair('mmpretrain-convnext-names->tv-convnext_tiny', 'identity', cross_naming=True,
               fast=True,
               note="a torchvision convnext_tiny checkpoint under mmpretrain's ConvNeXt names, "
                    'its four downsampling layers registered before its four stages: the '
                    'downsampling layers aligned by their unique shapes and the stages fell in '
                    'crossed gaps (47 of 182); each is the one free module of its widths')
def _mm_convnext_tv():
    model = tv_model('convnext_tiny')
    return Case(mmpretrain_convnext_state(model), model, None)


register_pair('hf-convnext-names->timm-convnext_tiny', 'identity', cross_naming=True,
              note='a convnext_tiny checkpoint under HuggingFace ConvNext names '
                   '(convnext.encoder.stages.N.layers.M.dwconv, downsampling_layer, '
                   'layer_scale_parameter) into timm convnext_tiny')(
    lambda: _renamed_timm_case('convnext_tiny', _HF_CONVNEXT))
register_pair('hf-convnext-names->tv-convnext_tiny', 'names', cross_naming=True,
              note='the same checkpoint into torchvision convnext_tiny: the truth goes through timm '
                   '(verified by outputs in timm-convnext_tiny->tv-convnext_tiny)')(
    lambda: _renamed_timm_case('convnext_tiny', _HF_CONVNEXT, _tv_convnext_tiny))
register_pair('mmpretrain-vit-names->timm-deit_tiny', 'identity', cross_naming=True,
              note='a deit_tiny checkpoint under mmpretrain names (backbone.layers.N.ln1, attn.qkv, '
                   'ffn.layers.0.0, backbone.ln1, head.layers.head) into timm deit_tiny_patch16_224')(
    lambda: _renamed_timm_case('deit_tiny_patch16_224', _MM_VIT))
register_pair('mmpretrain-vit-names->tv-vit(tiny config)', 'names', cross_naming=True,
              note='the same checkpoint into a torchvision ViT configured alike: the truth goes '
                   'through timm (verified by outputs in timm-deit_tiny->tv-vit(tiny config))')(
    lambda: _renamed_timm_case('deit_tiny_patch16_224', _MM_VIT, _tv_vit_tiny))


def clip_state(vit, text_width=128, text_layers=4, embed=64):
    """
    A CLIP checkpoint (OpenAI's and open_clip's names and registration
    order) whose image tower is the torchvision ViT ``vit``'s own tensors,
    beside a text tower of ``text_width`` and the heads CLIP adds, with the
    truth into ``vit``. CLIP's image tower registers its own parameters
    first (``class_embedding`` as a vector, ``positional_embedding``,
    ``proj``), then ``conv1`` (no bias), a ``ln_pre`` torchvision has no
    place for, the residual blocks (``attn`` an ``nn.MultiheadAttention``,
    ``ln_1``, ``mlp.c_fc``, ``mlp.c_proj``, ``ln_2``) and ``ln_post``.

    Example:
        >>> from corpus_pairs.hunt3 import vit_tiny_config
        >>> from corpus_pairs.foreign_names import clip_state
        >>> state, truth = clip_state(vit_tiny_config())
        >>> list(state)[:4]
        ['positional_embedding', 'text_projection', 'logit_scale', 'visual.class_embedding']
        >>> truth['visual.transformer.resblocks.11.mlp.c_proj.weight']
        'encoder.layers.encoder_layer_11.mlp.3.weight'
    """
    torch = torchvision_module().models.vision_transformer.torch
    own = keep(vit)
    width = vit.hidden_dim
    state, truth = {}, {}

    def put(key, value, place=None):
        state[key] = value
        if place is not None:
            truth[key] = place

    put('positional_embedding', torch.zeros(77, text_width))
    put('text_projection', torch.zeros(text_width, embed))
    put('logit_scale', torch.zeros(()))
    put('visual.class_embedding', torch.zeros(width), 'class_token')
    put('visual.positional_embedding', own['encoder.pos_embedding'], 'encoder.pos_embedding')
    put('visual.proj', torch.zeros(width, embed))
    put('visual.conv1.weight', own['conv_proj.weight'], 'conv_proj.weight')
    put('visual.ln_pre.weight', torch.zeros(width))
    put('visual.ln_pre.bias', torch.zeros(width))
    clip_block = {'self_attention.in_proj_weight': 'attn.in_proj_weight',
                  'self_attention.in_proj_bias': 'attn.in_proj_bias',
                  'self_attention.out_proj.weight': 'attn.out_proj.weight',
                  'self_attention.out_proj.bias': 'attn.out_proj.bias',
                  'ln_1.weight': 'ln_1.weight', 'ln_1.bias': 'ln_1.bias',
                  'mlp.0.weight': 'mlp.c_fc.weight', 'mlp.0.bias': 'mlp.c_fc.bias',
                  'mlp.3.weight': 'mlp.c_proj.weight', 'mlp.3.bias': 'mlp.c_proj.bias',
                  'ln_2.weight': 'ln_2.weight', 'ln_2.bias': 'ln_2.bias'}
    for n in range(len(vit.encoder.layers)):
        for tv_name, clip_name in clip_block.items():
            place = f'encoder.layers.encoder_layer_{n}.{tv_name}'
            put(f'visual.transformer.resblocks.{n}.{clip_name}', own[place], place)
    put('visual.ln_post.weight', own['encoder.ln.weight'], 'encoder.ln.weight')
    put('visual.ln_post.bias', own['encoder.ln.bias'], 'encoder.ln.bias')
    text = {'attn.in_proj_weight': (3 * text_width, text_width),
            'attn.in_proj_bias': (3 * text_width,), 'attn.out_proj.weight': (text_width, text_width),
            'attn.out_proj.bias': (text_width,), 'ln_1.weight': (text_width,),
            'ln_1.bias': (text_width,), 'mlp.c_fc.weight': (4 * text_width, text_width),
            'mlp.c_fc.bias': (4 * text_width,), 'mlp.c_proj.weight': (text_width, 4 * text_width),
            'mlp.c_proj.bias': (text_width,), 'ln_2.weight': (text_width,),
            'ln_2.bias': (text_width,)}
    for n in range(text_layers):
        for name, shape in text.items():
            put(f'transformer.resblocks.{n}.{name}', torch.zeros(shape))
    put('token_embedding.weight', torch.zeros(1000, text_width))
    put('ln_final.weight', torch.zeros(text_width))
    put('ln_final.bias', torch.zeros(text_width))
    return state, truth


def _clip_case(image_only=False, sort=False):
    from corpus_pairs.hunt3 import vit_tiny_config
    vit = vit_tiny_config()
    state, truth = clip_state(vit)
    if image_only:
        state = {key[len('visual.'):]: value for key, value in state.items()
                 if key.startswith('visual.')}
        truth = {key[len('visual.'):]: place for key, place in truth.items()}
    if sort:
        state = dict(sorted(state.items()))
    return Case(state, vit, truth)


register_pair('openai-clip-names->tv-vit(tiny config)', 'names', cross_naming=True,
              note="a CLIP checkpoint (OpenAI's names and order: text tower 128 wide, image "
                   "tower a 192-wide ViT under visual.*) into torchvision's ViT of that "
                   'configuration: class_embedding a vector for class_token, ln_pre and proj '
                   'without a place, nn.MultiheadAttention on both sides')(_clip_case)
register_pair('openai-clip-visual-names->tv-vit(tiny config)', 'names', cross_naming=True,
              note="CLIP's image tower alone (its visual.* keys without the prefix) into the "
                   'same ViT')(lambda: _clip_case(image_only=True))
register_pair('openai-clip-names (sorted keys)->tv-vit(tiny config)', 'names',
              cross_naming=True,
              note='the CLIP checkpoint with its keys sorted, as a safetensors file lists '
                   'them')(lambda: _clip_case(sort=True))
