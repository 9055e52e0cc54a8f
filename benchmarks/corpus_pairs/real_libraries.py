"""
Other libraries' real models, not their names rebuilt: HuggingFace
``transformers`` (ResNet, ViT, ConvNeXt, Swin, MobileNetV2, and the
composite models that hold them as backbones: UperNet, ``*Backbone``; and
RegNet, BiT, ConvNeXt V2 and MobileNetV1 into timm's, by outputs),
``efficientnet_pytorch`` (lukemelas) and Cadene's ``pretrainedmodels``
(SE-ResNet-50), into torchvision and timm models and their idioms, and back.

The other families build other libraries' names by hand from what those
libraries write (:mod:`corpus_pairs.foreign_names`,
:mod:`corpus_pairs.hunt4_more`); these pairs build the libraries' own
models (random weights, no download), so what the names and order really
are is checked, not assumed. The truth is a hand-written correspondence of
the two libraries' names; where the two compute the same function
(HuggingFace's ResNet and torchvision's) it is checked by equal outputs
(``truth_from='outputs'``), elsewhere (another padding, an attention
whose ``query``, ``key`` and ``value`` are three Linears where torchvision
packs one ``in_proj_weight``: those have no place) it is not
(``'names'``). A library that is not installed registers no pair
(``pip install -e ".[corpus]"`` installs all three).

Example:
    >>> from corpus_pairs.real_libraries import hf_resnet_name
    >>> hf_resnet_name('resnet.encoder.stages.0.layers.0.shortcut.normalization.weight')
    'layer1.0.downsample.1.weight'
    >>> hf_resnet_name('resnet.encoder.stages.2.layers.1.layer.2.convolution.weight')
    'layer3.1.conv3.weight'
"""
import importlib.util
import re

import torch
from torch import nn

from corpus_pairs.models import timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair

__all__ = ['effpt_name', 'hf_bit_name', 'hf_convnext_name', 'hf_convnextv2_name',
           'hf_dinov2_name', 'hf_focalnet_name', 'hf_hiera_name', 'hf_levit_name',
           'hf_mobilenet_v1_name', 'hf_mobilenet_v2_name', 'hf_poolformer_name',
           'hf_regnet_timm_name', 'hf_resnet_name', 'hf_swin_name', 'hf_swinv2_name',
           'hf_vit_name', 'timm_hf_efficientnet_name']


def _have(package):
    return importlib.util.find_spec(package) is not None


def _rules(rules):
    """A name function from ``(pattern, replacement)`` regex rules, the first that matches."""
    def name(key):
        for pattern, replacement in rules:
            if re.fullmatch(pattern, key):
                return re.sub(pattern, replacement, key)
        return None
    return name


def hf_resnet_name(key):
    """HuggingFace ``ResNetForImageClassification`` key -> torchvision resnet key (or None)."""
    m = re.fullmatch(r'resnet\.embedder\.embedder\.(convolution|normalization)\.(.*)', key)
    if m:
        return ('conv1.' if m[1] == 'convolution' else 'bn1.') + m[2]
    m = re.fullmatch(r'resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.(\w+)\.(.*)', key)
    if m:
        return f'layer{int(m[1]) + 1}.{m[2]}.downsample.{int(m[3] != "convolution")}.{m[4]}'
    m = re.fullmatch(r'resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.(\w+)\.(.*)', key)
    if m:
        kind = 'conv' if m[4] == 'convolution' else 'bn'
        return f'layer{int(m[1]) + 1}.{m[2]}.{kind}{int(m[3]) + 1}.{m[5]}'
    m = re.fullmatch(r'classifier\.1\.(.*)', key)
    return 'fc.' + m[1] if m else None


#: HuggingFace ``ViTForImageClassification`` -> torchvision ``VisionTransformer``
#: (``query`` / ``key`` / ``value`` have no place: torchvision packs them)
hf_vit_name = _rules([
    (r'vit\.embeddings\.cls_token', 'class_token'),
    (r'vit\.embeddings\.position_embeddings', 'encoder.pos_embedding'),
    (r'vit\.embeddings\.patch_embeddings\.projection\.(.*)', r'conv_proj.\1'),
    (r'vit\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(.*)',
     r'encoder.layers.encoder_layer_\1.self_attention.out_proj.\2'),
    (r'vit\.encoder\.layer\.(\d+)\.intermediate\.dense\.(.*)', r'encoder.layers.encoder_layer_\1.mlp.0.\2'),
    (r'vit\.encoder\.layer\.(\d+)\.output\.dense\.(.*)', r'encoder.layers.encoder_layer_\1.mlp.3.\2'),
    (r'vit\.encoder\.layer\.(\d+)\.layernorm_before\.(.*)', r'encoder.layers.encoder_layer_\1.ln_1.\2'),
    (r'vit\.encoder\.layer\.(\d+)\.layernorm_after\.(.*)', r'encoder.layers.encoder_layer_\1.ln_2.\2'),
    (r'vit\.layernorm\.(.*)', r'encoder.ln.\1'),
    (r'classifier\.(.*)', r'heads.head.\1'),
])

_CONVNEXT_PARTS = {'dwconv': 'block.0', 'layernorm': 'block.2', 'pwconv1': 'block.3',
                   'pwconv2': 'block.5', 'layer_scale_parameter': 'layer_scale'}


def hf_convnext_name(key):
    """HuggingFace ``ConvNextForImageClassification`` key -> torchvision convnext key."""
    m = re.fullmatch(r'convnext\.embeddings\.(patch_embeddings|layernorm)\.(.*)', key)
    if m:
        return f'features.0.{int(m[1] == "layernorm")}.{m[2]}'
    m = re.fullmatch(r'convnext\.encoder\.stages\.(\d+)\.downsampling_layer\.(\d)\.(.*)', key)
    if m:
        return f'features.{2 * int(m[1])}.{m[2]}.{m[3]}'
    m = re.fullmatch(r'convnext\.encoder\.stages\.(\d+)\.layers\.(\d+)\.(\w+)(\..*)?', key)
    if m:
        return f'features.{2 * int(m[1]) + 1}.{m[2]}.{_CONVNEXT_PARTS[m[3]]}{m[4] or ""}'
    m = re.fullmatch(r'convnext\.layernorm\.(.*)', key)
    if m:
        return 'classifier.0.' + m[1]
    m = re.fullmatch(r'classifier\.(.*)', key)
    return 'classifier.2.' + m[1] if m else None


_SWIN_PARTS = {'layernorm_before': 'norm1', 'attention.output.dense': 'attn.proj',
               'layernorm_after': 'norm2', 'intermediate.dense': 'mlp.0', 'output.dense': 'mlp.3'}


def hf_swin_name(key):
    """HuggingFace ``SwinForImageClassification`` key -> torchvision swin key
    (``query`` / ``key`` / ``value`` and the relative position index, another
    shape, have no place)."""
    m = re.fullmatch(r'swin\.embeddings\.(patch_embeddings\.projection|norm)\.(.*)', key)
    if m:
        return f'features.0.{0 if m[1] != "norm" else 2}.{m[2]}'
    m = re.fullmatch(r'swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.(.*)\.(\w+)', key)
    if m:
        block = f'features.{2 * int(m[1]) + 1}.{m[2]}'
        if m[3] == 'attention.self' and m[4] == 'relative_position_bias_table':
            return f'{block}.attn.relative_position_bias_table'
        return f'{block}.{_SWIN_PARTS[m[3]]}.{m[4]}' if m[3] in _SWIN_PARTS else None
    m = re.fullmatch(r'swin\.encoder\.layers\.(\d+)\.downsample\.(.*)', key)
    if m:
        return f'features.{2 * int(m[1]) + 2}.{m[2]}'
    return _rules([(r'swin\.layernorm\.(.*)', r'norm.\1'), (r'classifier\.(.*)', r'head.\1')])(key)


def hf_swinv2_name(key):
    """HuggingFace ``Swinv2ForImageClassification`` key -> torchvision swin_v2
    key: Swin's names, and the attention's ``logit_scale`` and
    ``continuous_position_bias_mlp`` (``cpb_mlp``)."""
    if not key.startswith('swinv2.'):
        return hf_swin_name(key)
    m = re.fullmatch(r'swinv2\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.'
                     r'(logit_scale|continuous_position_bias_mlp\.(.*))', key)
    if m:
        block = f'features.{2 * int(m[1]) + 1}.{m[2]}'
        return f'{block}.attn.' + ('logit_scale' if m[4] is None else f'cpb_mlp.{m[4]}')
    return hf_swin_name('swin.' + key[len('swinv2.'):])


def hf_hiera_name(depths):
    """
    A name function: HuggingFace ``HieraForImageClassification`` key -> timm
    Hiera key, for stages of ``depths`` layers (HF numbers a layer within
    its stage, timm its block in one list).

    Example:
        >>> from corpus_pairs.real_libraries import hf_hiera_name
        >>> name = hf_hiera_name([2, 3, 16, 3])
        >>> name('hiera.encoder.stages.1.layers.0.layernorm_after.weight')
        'blocks.2.norm2.weight'
    """
    first = [sum(depths[:stage]) for stage in range(len(depths))]
    parts = {'layernorm_before': 'norm1', 'layernorm_after': 'norm2'}

    def name(key):
        m = re.fullmatch(r'hiera\.encoder\.stages\.(\d+)\.layers\.(\d+)\.(\w+)\.(.*)', key)
        if m:
            return f'blocks.{first[int(m[1])] + int(m[2])}.{parts.get(m[3], m[3])}.{m[4]}'
        return _rules([(r'hiera\.embeddings\.position_embeddings', 'pos_embed'),
                       (r'hiera\.embeddings\.patch_embeddings\.projection\.(.*)',
                        r'patch_embed.proj.\1'),
                       (r'hiera\.pooler\.layernorm\.(.*)', r'head.norm.\1'),
                       (r'classifier\.(.*)', r'head.fc.\1')])(key)
    return name


#: HuggingFace ``Dinov2Model`` key -> timm ``vit_*_dinov2`` key (``query``,
#: ``key`` and ``value`` are packed in timm's ``qkv``, HF's ``mask_token``
#: has no place)
hf_dinov2_name = _rules([
    (r'embeddings\.cls_token', 'cls_token'),
    (r'embeddings\.position_embeddings', 'pos_embed'),
    (r'embeddings\.patch_embeddings\.projection\.(.*)', r'patch_embed.proj.\1'),
    (r'encoder\.layer\.(\d+)\.(norm[12]|mlp\.fc[12])\.(.*)', r'blocks.\1.\2.\3'),
    (r'encoder\.layer\.(\d+)\.attention\.output\.dense\.(.*)', r'blocks.\1.attn.proj.\2'),
    (r'encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1', r'blocks.\1.ls\2.gamma'),
    (r'layernorm\.(.*)', r'norm.\1')])


def hf_poolformer_name(key):
    """
    HuggingFace ``PoolFormerForImageClassification`` key -> timm
    ``poolformer_s12`` key: HF lists the four patch embeddings (timm's stem
    and the stages' downsampling) before the blocks, and a block's two
    layer scales are its own parameters, first (timm's ``layer_scale1`` and
    ``layer_scale2`` modules, after the mixer and the MLP).

    Example:
        >>> from corpus_pairs.real_libraries import hf_poolformer_name
        >>> hf_poolformer_name('poolformer.encoder.patch_embeddings.2.projection.weight')
        'stages.2.downsample.conv.weight'
        >>> hf_poolformer_name('poolformer.encoder.block.1.0.layer_scale_2')
        'stages.1.blocks.0.layer_scale2.scale'
    """
    m = re.fullmatch(r'poolformer\.encoder\.patch_embeddings\.(\d+)\.projection\.(.*)', key)
    if m:
        return f'stem.conv.{m[2]}' if m[1] == '0' else f'stages.{m[1]}.downsample.conv.{m[2]}'
    block = r'poolformer\.encoder\.block\.(\d+)\.(\d+)\.'
    return _rules([
        (block + r'layer_scale_([12])', r'stages.\1.blocks.\2.layer_scale\3.scale'),
        (block + r'output\.conv([12])\.(.*)', r'stages.\1.blocks.\2.mlp.fc\3.\4'),
        (block + r'before_norm\.(.*)', r'stages.\1.blocks.\2.norm1.\3'),
        (block + r'after_norm\.(.*)', r'stages.\1.blocks.\2.norm2.\3'),
        (r'norm\.(.*)', r'head.norm.\1'), (r'classifier\.(.*)', r'head.fc.\1')])(key)


def hf_regnet_timm_name(key):
    """
    HuggingFace ``RegNetForImageClassification`` key (a RegNetY) -> timm
    ``regnety_*`` key: HF's ``stages.i.layers.j.layer.k`` is timm's
    ``s{i+1}.b{j+1}``, its four layers ``conv1``, ``conv2``, the
    squeeze-excitation and ``conv3``.

    Example:
        >>> from corpus_pairs.real_libraries import hf_regnet_timm_name
        >>> hf_regnet_timm_name('regnet.encoder.stages.1.layers.0.layer.2.attention.2.bias')
        's2.b1.se.fc2.bias'
        >>> hf_regnet_timm_name('regnet.encoder.stages.0.layers.0.shortcut.normalization.weight')
        's1.b1.downsample.bn.weight'
    """
    kind = {'convolution': 'conv', 'normalization': 'bn'}
    m = re.fullmatch(r'regnet\.embedder\.embedder\.(\w+)\.(.*)', key)
    if m:
        return f'stem.{kind[m[1]]}.{m[2]}'
    block = r'regnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.'
    m = re.fullmatch(block + r'(.*)', key)
    if m:
        where, rest = f's{int(m[1]) + 1}.b{int(m[2]) + 1}', m[3]
        m = re.fullmatch(r'shortcut\.(\w+)\.(.*)', rest)
        if m:
            return f'{where}.downsample.{kind[m[1]]}.{m[2]}'
        m = re.fullmatch(r'layer\.2\.attention\.([02])\.(.*)', rest)
        if m:
            return f'{where}.se.fc{int(m[1]) // 2 + 1}.{m[2]}'
        m = re.fullmatch(r'layer\.([013])\.(\w+)\.(.*)', rest)
        if m:
            return f'{where}.conv{min(int(m[1]), 2) + 1}.{kind[m[2]]}.{m[3]}'
        return None
    m = re.fullmatch(r'classifier\.1\.(.*)', key)
    return 'head.fc.' + m[1] if m else None


#: HuggingFace ``BitForImageClassification`` -> timm ``resnetv2_50x1_bit``
#: (pre-activation blocks of the same names)
hf_bit_name = _rules([
    (r'bit\.embedder\.convolution\.(.*)', r'stem.conv.\1'),
    (r'bit\.encoder\.stages\.(\d+)\.layers\.(\d+)\.(.*)', r'stages.\1.blocks.\2.\3'),
    (r'bit\.norm\.(.*)', r'norm.\1'), (r'classifier\.1\.(.*)', r'head.fc.\1')])

#: HuggingFace ``ConvNextV2ForImageClassification`` -> timm ``convnextv2_*``
hf_convnextv2_name = _rules([
    (r'convnextv2\.embeddings\.patch_embeddings\.(.*)', r'stem.0.\1'),
    (r'convnextv2\.embeddings\.layernorm\.(.*)', r'stem.1.\1'),
    (r'convnextv2\.encoder\.stages\.(\d+)\.downsampling_layer\.(.*)',
     r'stages.\1.downsample.\2'),
    (r'convnextv2\.encoder\.stages\.(\d+)\.layers\.(\d+)\.dwconv\.(.*)',
     r'stages.\1.blocks.\2.conv_dw.\3'),
    (r'convnextv2\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layernorm\.(.*)',
     r'stages.\1.blocks.\2.norm.\3'),
    (r'convnextv2\.encoder\.stages\.(\d+)\.layers\.(\d+)\.pwconv([12])\.(.*)',
     r'stages.\1.blocks.\2.mlp.fc\3.\4'),
    (r'convnextv2\.encoder\.stages\.(\d+)\.layers\.(\d+)\.grn\.(.*)',
     r'stages.\1.blocks.\2.mlp.grn.\3'),
    (r'convnextv2\.layernorm\.(.*)', r'head.norm.\1'), (r'classifier\.(.*)', r'head.fc.\1')])


def hf_mobilenet_v1_name(depths):
    """
    A name function: HuggingFace ``MobileNetV1ForImageClassification`` key
    -> timm ``mobilenetv1_*`` key, for stages of ``depths`` blocks (timm's
    ``mobilenetv1_100``: ``[1, 2, 2, 6, 2]``). HF lists each block's
    depthwise and pointwise convolutions as two layers of one flat list;
    timm groups its blocks by stage (``blocks.{stage}.{block}``).

    Example:
        >>> from corpus_pairs.real_libraries import hf_mobilenet_v1_name
        >>> name = hf_mobilenet_v1_name([1, 2])
        >>> name('mobilenet_v1.layer.3.normalization.running_var')
        'blocks.1.0.bn2.running_var'
        >>> name('mobilenet_v1.conv_stem.convolution.weight')
        'conv_stem.weight'
    """
    blocks = [f'blocks.{stage}.{block}' for stage, depth in enumerate(depths)
              for block in range(depth)]

    def name(key):
        m = re.fullmatch(r'mobilenet_v1\.conv_stem\.(\w+)\.(.*)', key)
        if m:
            return ('conv_stem.' if m[1] == 'convolution' else 'bn1.') + m[2]
        m = re.fullmatch(r'mobilenet_v1\.layer\.(\d+)\.(\w+)\.(.*)', key)
        if m:
            block, pointwise = divmod(int(m[1]), 2)
            if m[2] == 'convolution':
                return f'{blocks[block]}.conv_{"pw" if pointwise else "dw"}.{m[3]}'
            return f'{blocks[block]}.bn{pointwise + 1}.{m[3]}'
        m = re.fullmatch(r'classifier\.(.*)', key)
        return 'classifier.' + m[1] if m else None
    return name


def hf_levit_name(depths):
    """
    A name function: HuggingFace ``LevitForImageClassificationWithTeacher``
    key -> timm LeViT key, for stages of ``depths`` blocks. HF numbers a
    block's attention and MLP as two layers of its stage and ends a stage
    with the next one's subsampling (an attention, then an MLP), timm
    begins the next stage with it (``downsample``).

    Example:
        >>> from corpus_pairs.real_libraries import hf_levit_name
        >>> name = hf_levit_name([2, 3, 4])
        >>> name('levit.encoder.stages.0.layers.3.module.linear_up.batch_norm.weight')
        'stages.0.blocks.1.mlp.ln1.bn.weight'
        >>> name('levit.encoder.stages.0.layers.4.queries.linear.weight')
        'stages.1.downsample.attn_downsample.q.ln.linear.weight'
    """
    words = [('queries_keys_values', 'qkv'), ('keys_values', 'kv'), ('linear_up', 'ln1'),
             ('linear_down', 'ln2'), ('batch_norm', 'bn')]

    def inner(rest, attention):
        for a, b in words:
            rest = re.sub(rf'(^|\.){a}(\.|$)', rf'\1{b}\2', rest)
        if attention:
            rest = re.sub(r'^projection\.', 'proj.ln.', rest)
        return re.sub(r'^queries\.', 'q.ln.', rest)

    def name(key):
        m = re.fullmatch(r'levit\.patch_embeddings\.embedding_layer_(\d)\.'
                         r'(convolution|batch_norm)\.(.*)', key)
        if m:
            return f'stem.conv{m[1]}.{"linear" if m[2] == "convolution" else "bn"}.{m[3]}'
        m = re.fullmatch(r'levit\.encoder\.stages\.(\d+)\.layers\.(\d+)\.(module\.)?(.*)', key)
        if m:
            stage, layer, rest = int(m[1]), int(m[2]), m[4]
            if layer < 2 * depths[stage]:
                part = 'attn' if layer % 2 == 0 else 'mlp'
                return f'stages.{stage}.blocks.{layer // 2}.{part}.' + inner(rest, part == 'attn')
            if layer == 2 * depths[stage]:
                return f'stages.{stage + 1}.downsample.attn_downsample.' + inner(rest, True)
            return f'stages.{stage + 1}.downsample.mlp.' + inner(rest, False)
        m = re.fullmatch(r'classifier(_distill)?\.(linear|batch_norm)\.(.*)', key)
        if m:
            head = 'head_dist' if m[1] else 'head'
            return f'{head}.{"linear" if m[2] == "linear" else "bn"}.{m[3]}'
        return None
    return name


def hf_focalnet_name(key):
    """
    HuggingFace ``FocalNetForImageClassification`` key -> timm FocalNet key
    (the modulation's ``projection_in``, ``projection_context`` and
    ``projection_out`` are timm's ``f``, ``h`` and ``proj``).

    Example:
        >>> from corpus_pairs.real_libraries import hf_focalnet_name
        >>> hf_focalnet_name('focalnet.encoder.stages.2.layers.1.modulation.projection_in.bias')
        'layers.2.blocks.1.modulation.f.bias'
        >>> hf_focalnet_name('focalnet.encoder.stages.0.downsample.projection.weight')
        'layers.1.downsample.proj.weight'
    """
    m = re.fullmatch(r'focalnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.(.*)', key)
    if m:
        part = m[3]
        for hf, timm in [('projection_in.', 'f.'), ('projection_context.', 'h.'),
                         ('projection_out.', 'proj.')]:
            part = part.replace('modulation.' + hf, 'modulation.' + timm)
        return f'layers.{m[1]}.blocks.{m[2]}.{part}'
    m = re.fullmatch(r'focalnet\.encoder\.stages\.(\d+)\.downsample\.(projection|norm)\.(.*)', key)
    if m:
        part = 'proj' if m[2] == 'projection' else 'norm'
        return f'layers.{int(m[1]) + 1}.downsample.{part}.{m[3]}'
    return _rules([(r'focalnet\.embeddings\.patch_embeddings\.projection\.(.*)', r'stem.proj.\1'),
                   (r'focalnet\.embeddings\.norm\.(.*)', r'stem.norm.\1'),
                   (r'focalnet\.layernorm\.(.*)', r'norm.\1'),
                   (r'classifier\.(.*)', r'head.fc.\1')])(key)


def hf_mobilenet_v2_name(key):
    """HuggingFace ``MobileNetV2ForImageClassification`` key -> torchvision mobilenet_v2 key."""
    def conv_bn(kind):
        return '0' if kind == 'convolution' else '1'
    m = re.fullmatch(r'mobilenet_v2\.conv_stem\.(\w+)\.(\w+)\.(.*)', key)
    if m:
        place = {'first_conv': f'features.0.{conv_bn(m[2])}',
                 'conv_3x3': f'features.1.conv.0.{conv_bn(m[2])}',
                 'reduce_1x1': f'features.1.conv.{1 if m[2] == "convolution" else 2}'}[m[1]]
        return f'{place}.{m[3]}'
    m = re.fullmatch(r'mobilenet_v2\.layer\.(\d+)\.(\w+)\.(\w+)\.(.*)', key)
    if m:
        block = f'features.{int(m[1]) + 2}.conv'
        place = {'expand_1x1': f'{block}.0.{conv_bn(m[3])}', 'conv_3x3': f'{block}.1.{conv_bn(m[3])}',
                 'reduce_1x1': f'{block}.{2 if m[3] == "convolution" else 3}'}[m[2]]
        return f'{place}.{m[4]}'
    m = re.fullmatch(r'mobilenet_v2\.conv_1x1\.(\w+)\.(.*)', key)
    if m:
        return f'features.18.{conv_bn(m[1])}.{m[2]}'
    m = re.fullmatch(r'classifier\.(.*)', key)
    return 'classifier.1.' + m[1] if m else None


_EFFPT_PARTS = {'_expand_conv': (0, '0'), '_bn0': (0, '1'), '_depthwise_conv': (1, '0'),
                '_bn1': (1, '1'), '_se_reduce': (2, 'fc1'), '_se_expand': (2, 'fc2'),
                '_project_conv': (3, '0'), '_bn2': (3, '1')}


def effpt_name(repeats):
    """
    The name function of ``efficientnet_pytorch``'s EfficientNet (blocks in
    one flat list) into torchvision's, for stages of ``repeats`` blocks (the
    first stage has no expansion convolution).

    Example:
        >>> from corpus_pairs.real_libraries import effpt_name
        >>> name = effpt_name([1, 2, 2, 3, 3, 4, 1])
        >>> name('_blocks.0._depthwise_conv.weight'), name('_blocks.2._se_reduce.bias')
        ('features.1.0.block.0.0.weight', 'features.2.1.block.2.fc1.bias')
    """
    where = [(stage, j) for stage, r in enumerate(repeats, 1) for j in range(r)]
    top = len(repeats) + 1

    def name(key):
        m = re.fullmatch(r'_blocks\.(\d+)\.(\w+)\.(.*)', key)
        if m:
            stage, j = where[int(m[1])]
            index, part = _EFFPT_PARTS[m[2]]
            return f'features.{stage}.{j}.block.{index - (stage == 1)}.{part}.{m[3]}'
        return _rules([(r'_conv_stem\.(.*)', r'features.0.0.\1'), (r'_bn0\.(.*)', r'features.0.1.\1'),
                       (r'_conv_head\.(.*)', rf'features.{top}.0.\1'),
                       (r'_bn1\.(.*)', rf'features.{top}.1.\1'), (r'_fc\.(.*)', r'classifier.1.\1')])(key)
    return name


#: timm's efficientnet block module -> HuggingFace's, in a depthwise-separable
#: first stage and in the inverted residuals after it
_HF_EFF_DS = {'conv_dw': 'depthwise_conv.depthwise_conv', 'bn1': 'depthwise_conv.depthwise_norm',
              'se.conv_reduce': 'squeeze_excite.reduce', 'se.conv_expand': 'squeeze_excite.expand',
              'conv_pw': 'projection.project_conv', 'bn2': 'projection.project_bn'}
_HF_EFF_IR = {'conv_pw': 'expansion.expand_conv', 'bn1': 'expansion.expand_bn',
              'conv_dw': 'depthwise_conv.depthwise_conv', 'bn2': 'depthwise_conv.depthwise_norm',
              'se.conv_reduce': 'squeeze_excite.reduce', 'se.conv_expand': 'squeeze_excite.expand',
              'conv_pwl': 'projection.project_conv', 'bn3': 'projection.project_bn'}


def timm_hf_efficientnet_name(repeats):
    """
    The name function of timm's efficientnet (``blocks.S.B``) into
    HuggingFace's ``EfficientNetForImageClassification`` (blocks in one
    flat list), for stages of ``repeats`` blocks.

    Example:
        >>> from corpus_pairs.real_libraries import timm_hf_efficientnet_name
        >>> name = timm_hf_efficientnet_name([1, 2, 2, 3, 3, 4, 1])
        >>> name('blocks.0.0.bn1.weight')
        'efficientnet.encoder.blocks.0.depthwise_conv.depthwise_norm.weight'
        >>> name('blocks.2.1.bn1.running_var')
        'efficientnet.encoder.blocks.4.expansion.expand_bn.running_var'
    """
    first = [sum(repeats[:stage]) for stage in range(len(repeats))]

    def name(key):
        m = re.fullmatch(r'blocks\.(\d+)\.(\d+)\.(.*)\.(\w+)', key)
        if m:
            stage, block = int(m[1]), int(m[2])
            part = (_HF_EFF_DS if stage == 0 else _HF_EFF_IR).get(m[3])
            return (None if part is None else
                    f'efficientnet.encoder.blocks.{first[stage] + block}.{part}.{m[4]}')
        return _rules([(r'conv_stem\.(.*)', r'efficientnet.embeddings.convolution.\1'),
                       (r'bn1\.(.*)', r'efficientnet.embeddings.batchnorm.\1'),
                       (r'conv_head\.(.*)', r'efficientnet.encoder.top_conv.\1'),
                       (r'bn2\.(.*)', r'efficientnet.encoder.top_bn.\1'),
                       (r'classifier\.(.*)', r'classifier.\1')])(key)
    return name


#: Cadene's se_resnet50 -> timm's seresnet50 (``layer0`` is the stem, ``se_module`` is ``se``)
_cadene_timm = _rules([(r'layer0\.(conv1|bn1)\.(.*)', r'\1.\2'),
                       (r'(layer\d\.\d+)\.se_module\.(.*)', r'\1.se.\2'),
                       (r'last_linear\.(.*)', r'fc.\1'), (r'(layer\d\..*)', r'\1')])
#: ... -> torchvision's resnet50, which has no squeeze-excitation
_cadene_tv = _rules([(r'layer0\.(conv1|bn1)\.(.*)', r'\1.\2'), (r'last_linear\.(.*)', r'fc.\1'),
                     (r'(layer\d\.\d+\.(conv|bn|downsample).*)', r'\1')])

#: a resnet's children-Sequential: torchvision / timm child -> its position
_RESNET_CHILDREN = {'conv1': '0', 'bn1': '1', 'layer1': '4', 'layer2': '5', 'layer3': '6', 'layer4': '7'}


def _case(source_model, destination, name, reverse=False, outputs=False, inputs=None):
    """A case from a name function over the source's keys (reversed:
    the destination's checkpoint into the source model)."""
    src = source_model.state_dict(keep_vars=True)
    dst_keys = destination.state_dict().keys()
    truth = {k: name(k) for k in src if name(k) in dst_keys}
    if reverse:
        return Case(destination.state_dict(keep_vars=True), source_model,
                    {d: s for s, d in truth.items()})
    return Case(src, destination, truth, source_model=source_model if outputs else None,
                inputs=inputs if outputs else None)


def _in(prefix, name, table=None):
    """``name`` with its result under ``prefix``, its first component
    replaced by ``table``'s (a position; empty: dropped) when given; None
    for what ``table`` does not name."""
    def renamed(key):
        out = name(key)
        if out is None:
            return None
        if table is None:
            return prefix + out
        head, _, rest = out.partition('.')
        if head not in table:
            return None
        return prefix + (f'{table[head]}.{rest}' if table[head] else rest)
    return renamed


def _logits(model):
    """A HuggingFace model whose call returns the logits tensor (its state dict unchanged)."""
    forward = model.forward
    model.forward = lambda x: forward(x).logits
    return model


if _have('transformers'):
    def _hf(kind, **config):
        import transformers
        config = getattr(transformers, f'{kind}Config')(**config)
        return _logits(getattr(transformers, f'{kind}ForImageClassification')(config))

    def _hf_resnet(depth):
        if depth == 50:
            return _hf('ResNet', layer_type='bottleneck', depths=[3, 4, 6, 3],
                       hidden_sizes=[256, 512, 1024, 2048], num_labels=1000)
        return _hf('ResNet', layer_type='basic', depths=[2, 2, 2, 2],
                   hidden_sizes=[64, 128, 256, 512], num_labels=1000)

    def _beit_case(reverse):
        from corpus_pairs.hunt3_names import hf_beit_name
        from timm.models.beit import Beit
        hf = _hf('Beit', hidden_size=192, num_hidden_layers=4, num_attention_heads=3,
                 intermediate_size=768, image_size=32, patch_size=8, num_labels=10,
                 use_relative_position_bias=True, use_mean_pooling=True,
                 layer_scale_init_value=0.1)
        timm_beit = Beit(img_size=32, patch_size=8, embed_dim=192, depth=4, num_heads=3,
                         num_classes=10, use_abs_pos_emb=False, use_rel_pos_bias=True,
                         init_values=0.1)
        return _case(timm_beit, hf, hf_beit_name, reverse=not reverse)

    _B0_REPEATS = [1, 2, 2, 3, 3, 4, 1]

    def _hf_b0():
        import transformers
        return transformers.EfficientNetForImageClassification(transformers.EfficientNetConfig(
            width_coefficient=1.0, depth_coefficient=1.0, image_size=224, hidden_dim=1280,
            num_labels=1000))

    def _timm_b0():
        return timm_module().create_model('efficientnet_b0', pretrained=False)

    def _sorted(case):
        case.source = dict(sorted(case.source.items()))
        return case

    def _small_vit():
        return _hf('ViT', hidden_size=192, num_hidden_layers=4, num_attention_heads=3,
                   intermediate_size=768, image_size=32, patch_size=8, num_labels=10)

    def _tv_small_vit():
        return torchvision_module().models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=4, num_heads=3, hidden_dim=192, mlp_dim=768,
            num_classes=10)

    for _name, _build, _note in [
        ('real-hf-resnet50->tv-resnet50',
         lambda: _case(_hf_resnet(50), tv_model('resnet50'), hf_resnet_name, outputs=True,
                       inputs=torch.randn(1, 3, 64, 64)),
         "HuggingFace's ResNet-50 (shortcut registered first, stages.N.layers.M.layer.K) into "
         "torchvision's: everything but layer1.0's last convolution and shortcut (one shape, "
         'the order tells them apart only wrongly) can be placed'),
        ('real-hf-resnet18->tv-resnet18',
         lambda: _case(_hf_resnet(18), tv_model('resnet18'), hf_resnet_name, outputs=True,
                       inputs=torch.randn(1, 3, 64, 64)),
         "HuggingFace's ResNet-18 into torchvision's"),
        ('real-tv-resnet50->hf-resnet50',
         lambda: _case(_hf_resnet(50), tv_model('resnet50'), hf_resnet_name, reverse=True),
         "torchvision's resnet50 checkpoint into HuggingFace's ResNet-50"),
        ('real-hf-resnet50->tv-fasterrcnn',
         lambda: _case(_hf_resnet(50), torchvision_module().models.detection.fasterrcnn_resnet50_fpn(
             weights=None, weights_backbone=None), _in('backbone.body.', hf_resnet_name)),
         "HuggingFace's ResNet-50 into torchvision's Faster R-CNN backbone (backbone.body.*)"),
        ('real-hf-resnet50->tv-resnet50-children[:-2]',
         lambda: _case(_hf_resnet(50), nn.Sequential(*list(tv_model('resnet50').children())[:-2]),
                       _in('', hf_resnet_name, _RESNET_CHILDREN)),
         "HuggingFace's ResNet-50 into nn.Sequential(*list(resnet50().children())[:-2])"),
        ('real-hf-vit(small)->tv-vit(small)',
         lambda: _case(_small_vit(), _tv_small_vit(), hf_vit_name),
         "HuggingFace's ViT (4 layers of 192) into torchvision's VisionTransformer of that "
         'config: query, key and value are three Linears there, packed in in_proj here (no '
         'place); the layer norms are registered last in each HuggingFace layer'),
        ('real-tv-vit(small)->hf-vit(small)',
         lambda: _case(_small_vit(), _tv_small_vit(), hf_vit_name, reverse=True),
         'the same, back'),
        ('real-hf-vit(small) (sorted keys)->tv-vit(small)',
         lambda: _sorted(_case(_small_vit(), _tv_small_vit(), hf_vit_name)),
         'the same, the checkpoint keys sorted (a .safetensors file): query, key and value '
         'against the packed in_proj made every layer look like another design (nothing '
         'loaded); the two norms of a layer, one shape, have no order once sorted'),
        ('real-tv-vit(small) (sorted keys)->hf-vit(small)',
         lambda: _sorted(_case(_small_vit(), _tv_small_vit(), hf_vit_name, reverse=True)),
         "the same, back: ln_1 and ln_2 number their order, HF's registration gives its own"),
        ('real-hf-convnext_tiny->tv-convnext_tiny',
         lambda: _case(_hf('ConvNext', num_labels=1000), tv_model('convnext_tiny'), hf_convnext_name),
         "HuggingFace's ConvNeXt-T into torchvision's (the layer scale [C] into [C, 1, 1])"),
        ('real-hf-convnext_tiny->tv-convnext_tiny.features',
         lambda: _case(_hf('ConvNext', num_labels=1000), tv_model('convnext_tiny').features,
                       _in('', hf_convnext_name, {'features': ''})),
         "HuggingFace's ConvNeXt-T into torchvision's convnext_tiny().features"),
        ('real-hf-swin_t->tv-swin_t',
         lambda: _case(_hf('Swin', num_labels=1000), tv_model('swin_t'), hf_swin_name),
         "HuggingFace's Swin-T into torchvision's: query, key and value (three Linears) and "
         'the relative position index (another shape) have no place'),
        ('real-hf-swin_t (sorted keys)->tv-swin_t',
         lambda: _sorted(_case(_hf('Swin', num_labels=1000), tv_model('swin_t'), hf_swin_name)),
         'the same, the checkpoint keys sorted (a .safetensors file)'),
        ('real-hf-swinv2_t->tv-swin_v2_t',
         lambda: _case(_hf('Swinv2', image_size=256, window_size=8, num_labels=1000),
                       tv_model('swin_v2_t'), hf_swinv2_name),
         "HuggingFace's Swin V2-T into torchvision's: HF registers layernorm_before after the "
         'attention and layernorm_after after the MLP, torchvision norm1 and norm2 before them '
         '(both apply them after): order put each norm in the other place, or the next '
         "block's (40 wrong); query, key and value have no place"),
        ('real-tv-swin_v2_t->hf-swinv2_t',
         lambda: _case(_hf('Swinv2', image_size=256, window_size=8, num_labels=1000),
                       tv_model('swin_v2_t'), hf_swinv2_name, reverse=True),
         'the same, back'),
        ('real-hf-beit->timm-beit',
         lambda: _beit_case(False),
         "HuggingFace's BEiT (4 layers of 192, relative position bias per layer) into timm's: "
         "the layer scales lambda_1/lambda_2 against timm's gamma_1/gamma_2, the norms last "
         "in HF's layer; query, key and value have no place in timm's packed qkv"),
        ('real-timm-beit->hf-beit',
         lambda: _beit_case(True),
         'the same, back'),
        ('real-hf-hiera->timm-hiera_base',
         lambda: _case(_hf('Hiera', num_labels=1000), timm_module().create_model(
             'hiera_base_224', pretrained=False), hf_hiera_name([2, 3, 16, 3])),
         "HuggingFace's Hiera-B into timm's: layernorm_before and layernorm_after are timm's "
         'norm1 and norm2 in a scheme that shares every other name (they were left out as '
         "names that disagree: 200 of 299), and HF registers a stage's projection last in "
         'its first layer, timm first'),
        ('real-timm-hiera_base->hf-hiera',
         lambda: _case(_hf('Hiera', num_labels=1000), timm_module().create_model(
             'hiera_base_224', pretrained=False), hf_hiera_name([2, 3, 16, 3]), reverse=True),
         'the same, back'),
        ('real-hf-focalnet->timm-focalnet_tiny_srf',
         lambda: _case(_hf('FocalNet', num_labels=1000), timm_module().create_model(
             'focalnet_tiny_srf', pretrained=False), hf_focalnet_name),
         "HuggingFace's FocalNet-T (SRF) into timm's: the modulation's projection_in, "
         "projection_context and projection_out are timm's f, h and proj (was 136 of 212: "
         "left out as names that disagree), HF's Linears timm's 1x1 convolutions"),
        ('real-timm-focalnet_tiny_srf->hf-focalnet',
         lambda: _case(_hf('FocalNet', num_labels=1000), timm_module().create_model(
             'focalnet_tiny_srf', pretrained=False), hf_focalnet_name, reverse=True),
         'the same, back'),
        ('real-timm-efficientnet_b0->hf-efficientnet',
         lambda: _case(_timm_b0(), _hf_b0(), timm_hf_efficientnet_name(_B0_REPEATS)),
         "timm's efficientnet_b0 into HuggingFace's EfficientNet of b0's config (one flat "
         "list of blocks, the first depthwise-separable: its conv_pw is the projection, "
         "the other blocks' the expansion)"),
        ('real-timm-efficientnet_b0 (sorted keys)->hf-efficientnet',
         lambda: _sorted(_case(_timm_b0(), _hf_b0(), timm_hf_efficientnet_name(_B0_REPEATS))),
         'the same, the checkpoint keys sorted (a .safetensors file): bn1 and bn2 of every '
         'inverted residual, one shape, were swapped by analogy with the first block '
         "(150 wrong in structure and auto); their numbers against HF's registration order "
         'place them now'),
        ('real-hf-efficientnet (sorted keys)->timm-efficientnet_b0',
         lambda: _sorted(_case(_timm_b0(), _hf_b0(), timm_hf_efficientnet_name(_B0_REPEATS),
                               reverse=True)),
         "HuggingFace's EfficientNet checkpoint, keys sorted, into timm's efficientnet_b0: "
         "HF's expand_bn and depthwise_norm, one shape, have neither numbers nor an order; "
         "each goes beside its layer's partner in timm's registration order"),
        ('real-hf-resnet18->tv-resnet34 (another depth)',
         lambda: _case(_hf_resnet(18), tv_model('resnet34'), hf_resnet_name),
         "HuggingFace's ResNet-18 into torchvision's resnet34 (each block where torchvision's "
         "resnet18 names it): HF registers a block's shortcut first, and order lined up its "
         "last stage against torchvision's longer one, block 0's second convolution into "
         'block 1 and block 1 into block 2 (18 wrong in structure)'),
        ('real-tv-resnet34->hf-resnet18 (another depth)',
         lambda: _case(_hf_resnet(18), tv_model('resnet34'), hf_resnet_name, reverse=True),
         "the same, back: torchvision's resnet34 checkpoint into HuggingFace's ResNet-18, "
         "whose block 0 of the last stage took its second convolution from torchvision's "
         'block 1 (18 wrong in structure)'),
        ('real-hf-swin_t->tv-swin_s (another depth)',
         lambda: _case(_hf('Swin', num_labels=1000), tv_model('swin_s'), hf_swin_name),
         "HuggingFace's Swin-T into torchvision's Swin-S (6 blocks into a stage of 18, all of "
         "one shape): order put the MLP of HF's last block into torchvision's block 17 (6 "
         'wrong in structure)'),
        ('real-hf-mobilenet_v2->tv-mobilenet_v2',
         lambda: _case(_hf('MobileNetV2', num_labels=1000), tv_model('mobilenet_v2'),
                       hf_mobilenet_v2_name),
         "HuggingFace's MobileNetV2 (conv_stem holds the first block) into torchvision's"),
    ]:
        # the two ResNets compute one function: those truths are checked by outputs
        _outputs = _name in ('real-hf-resnet50->tv-resnet50', 'real-hf-resnet18->tv-resnet18')
        register_pair(_name, 'outputs' if _outputs else 'names', cross_naming=True,
                      note=_note)(_build)

if _have('transformers'):
    def _under(outer, inner, name):
        """``name`` (a classification model's keys, under ``inner``) for the
        same network under ``outer`` in a composite model; None elsewhere."""
        def renamed(key):
            return name(inner + key[len(outer):]) if key.startswith(outer) else None
        return renamed

    def _backbone_config(kind, **config):
        import transformers
        return getattr(transformers, f'{kind}Config')(
            out_features=['stage1', 'stage2', 'stage3', 'stage4'], **config)

    def _upernet(kind, **config):
        import transformers
        return transformers.UperNetForSemanticSegmentation(transformers.UperNetConfig(
            backbone_config=_backbone_config(kind, **config), num_labels=19))

    def _hf_backbone(kind, **config):
        import transformers
        return getattr(transformers, f'{kind}Backbone')(_backbone_config(kind, **config))

    _R50 = dict(layer_type='bottleneck', depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048])
    for _name, _build, _note in [
        ('real-tv-resnet50->hf-upernet(resnet)',
         lambda: _case(_upernet('ResNet', **_R50), tv_model('resnet50'),
                       _under('backbone.', 'resnet.', hf_resnet_name), reverse=True),
         "torchvision's resnet50 into HuggingFace's UperNet on its ResNet backbone "
         '(backbone.embedder / encoder.stages, beside a PSP decoder and an auxiliary head)'),
        ('real-tv-convnext_tiny->hf-upernet(convnext)',
         lambda: _case(_upernet('ConvNext'), tv_model('convnext_tiny'),
                       _under('backbone.', 'convnext.', hf_convnext_name), reverse=True),
         "torchvision's convnext_tiny into HuggingFace's UperNet on its ConvNeXt backbone: "
         "the backbone's four hidden_states_norms are new (the classifier's norm has no "
         'place there)'),
        ('real-tv-convnext_tiny (sorted keys)->hf-convnext-backbone',
         lambda: _sorted(_case(_hf_backbone('ConvNext'), tv_model('convnext_tiny'),
                               _under('', 'convnext.', hf_convnext_name), reverse=True)),
         'the same into ConvNextBackbone alone, the checkpoint keys sorted: the classifier '
         "norm and hidden_states_norms.stage4 were the only 768-wide norms left on each "
         'side, and paired (2 wrong in structure and auto)'),
        ('real-tv-swin_t->hf-upernet(swin)',
         lambda: _case(_upernet('Swin'), tv_model('swin_t'),
                       _under('backbone.', 'swin.', hf_swin_name), reverse=True),
         "torchvision's swin_t into HuggingFace's UperNet on its Swin backbone: the final "
         'norm went into hidden_states_norms.stage4, which made the encoder look like an '
         'alternative and nothing loaded (0 of 145); query, key and value have no place'),
        ('real-hf-swin-backbone->tv-swin_t',
         lambda: _case(_hf_backbone('Swin'), tv_model('swin_t'),
                       _under('', 'swin.', hf_swin_name)),
         "HuggingFace's SwinBackbone (Mask2Former's, UperNet's) checkpoint into torchvision's "
         'swin_t'),
    ]:
        register_pair(_name, 'names', cross_naming=True, note=_note)(_build)

if _have('transformers'):
    def _hf_dinov2():
        import transformers
        return transformers.Dinov2Model(transformers.Dinov2Config(
            hidden_size=192, num_hidden_layers=4, num_attention_heads=3, image_size=56,
            patch_size=14))

    def _timm_dinov2():
        return timm_module().create_model('vit_small_patch14_dinov2', pretrained=False,
                                          img_size=56, embed_dim=192, depth=4, num_heads=3,
                                          num_classes=0)

    def _hf_levit():
        import transformers
        return transformers.LevitForImageClassificationWithTeacher(transformers.LevitConfig(
            depths=[2, 3, 4], num_attention_heads=[4, 6, 8], num_labels=1000))

    def _timm_levit():
        return timm_module().create_model('levit_128s', pretrained=False)

    def _hf_poolformer():
        import transformers
        return transformers.PoolFormerForImageClassification(
            transformers.PoolFormerConfig(num_labels=1000))

    def _timm_poolformer():
        return timm_module().create_model('poolformer_s12', pretrained=False)

    # (each truth checked by equal outputs once, outside the corpus: LeViT's
    # logits, PoolFormer's features, DINOv2's pooled token with q, k and v
    # packed by hand)
    for _name, _build, _note in [
        ('real-hf-dinov2(small)->timm-vit_dinov2(small)',
         lambda: _case(_hf_dinov2(), _timm_dinov2(), hf_dinov2_name),
         "HuggingFace's DINOv2 (4 layers of 192) into timm's DINOv2 ViT of that config: "
         "query, key and value have no place in timm's qkv; the position table and the last "
         'norm were left out as names that disagree (position_embeddings and pos_embed, '
         'layernorm and norm) in a scheme that shares norm1, norm2 and mlp'),
        ('real-hf-dinov2(small) (sorted keys)->timm-vit_dinov2(small)',
         lambda: _sorted(_case(_hf_dinov2(), _timm_dinov2(), hf_dinov2_name)),
         'the same, the checkpoint keys sorted (a .safetensors file)'),
        ('real-hf-levit_128s->timm-levit_128s',
         lambda: _case(_hf_levit(), _timm_levit(), hf_levit_name([2, 3, 4])),
         "HuggingFace's LeViT-128S (with its distillation head) into timm's: a block's "
         "attention and MLP are two layers of HF's stage, and HF ends a stage with the next "
         "one's subsampling, which timm begins the next stage with"),
        ('real-timm-levit_128s->hf-levit_128s',
         lambda: _case(_hf_levit(), _timm_levit(), hf_levit_name([2, 3, 4]), reverse=True),
         'the same, back'),
        ('real-hf-levit_128s (sorted keys)->timm-levit_128s',
         lambda: _sorted(_case(_hf_levit(), _timm_levit(), hf_levit_name([2, 3, 4]))),
         'the same, the checkpoint keys sorted (a .safetensors file)'),
        ('real-hf-poolformer_s12->timm-poolformer_s12',
         lambda: _case(_hf_poolformer(), _timm_poolformer(), hf_poolformer_name),
         "HuggingFace's PoolFormer-S12 into timm's: HF lists the four patch embeddings before "
         "the blocks (timm's stem and the stages' downsampling), and a block's two layer "
         "scales are one group of its own parameters against timm's two modules; 2 of 132 "
         'placed (recall, not precision)'),
        ('real-hf-poolformer_s12 (sorted keys)->timm-poolformer_s12',
         lambda: _sorted(_case(_hf_poolformer(), _timm_poolformer(), hf_poolformer_name)),
         'the same, the checkpoint keys sorted (a .safetensors file)'),
    ]:
        register_pair(_name, 'names', cross_naming=True, note=_note)(_build)

if _have('transformers'):
    # HuggingFace's CNNs into timm's: every truth here is checked by equal
    # outputs (MobileNetV1 built without TF padding, so the two compute one
    # function); the sibling pairs put another width or depth of the same
    # timm family beside the checkpoint's network, first, keys sorted too
    def _hf_timm(kind, config, timm_name, name, sibling=None, sort=False, reverse=False):
        hf = _hf(kind, num_labels=1000, **config)
        net = timm_module().create_model(timm_name, pretrained=False)
        if reverse:
            return _case(hf, net, name, reverse=True)
        if sibling is None:
            case = _case(hf, net, name, outputs=True, inputs=torch.randn(1, 3, 64, 64))
        else:
            other = timm_module().create_model(sibling, pretrained=False)
            case = _case(hf, nn.ModuleDict({'a': other, 'b': net}), _in('b.', name))
        return _sorted(case) if sort else case

    _REGNET = ('RegNet', {}, 'regnety_040', hf_regnet_timm_name)
    _BIT = ('Bit', {}, 'resnetv2_50x1_bit', hf_bit_name)
    _CONVNEXTV2 = ('ConvNextV2', {'depths': [2, 2, 6, 2], 'hidden_sizes': [40, 80, 160, 320]},
                   'convnextv2_atto', hf_convnextv2_name)
    for _name, _build, _outputs, _note in [
        ('real-hf-regnety_040->timm-regnety_040', lambda: _hf_timm(*_REGNET), True,
         "HuggingFace's RegNetY-4.0GF (stages.i.layers.j.layer.k, the squeeze-excitation as "
         "the third layer) into timm's regnety_040 (s1.b1.conv1.conv)"),
        ('real-hf-regnety_040 (sorted keys)->timm-regnety_040',
         lambda: _hf_timm(*_REGNET, sort=True), False,
         'the same, the checkpoint keys sorted (a .safetensors file)'),
        ('real-timm-regnety_040->hf-regnety_040', lambda: _hf_timm(*_REGNET, reverse=True), False,
         'the same, back'),
        ('real-hf-regnety_040->timm-regnety_032+regnety_040 (sorted keys)',
         lambda: _hf_timm(*_REGNET, sibling='regnety_032', sort=True), False,
         "the same into a model holding timm's regnety_032 (other widths, one name scheme) "
         "first and regnety_040 second, the checkpoint keys sorted"),
        ('real-hf-bit_50->timm-resnetv2_50x1_bit', lambda: _hf_timm(*_BIT), True,
         "HuggingFace's BiT-50 (pre-activation blocks, weight-standardized convolutions) into "
         "timm's resnetv2_50x1_bit"),
        ('real-hf-bit_50 (sorted keys)->timm-resnetv2_50x1_bit',
         lambda: _hf_timm(*_BIT, sort=True), False,
         'the same, the checkpoint keys sorted (a .safetensors file)'),
        ('real-hf-bit_50->timm-resnetv2_101x1_bit+resnetv2_50x1_bit',
         lambda: _hf_timm(*_BIT, sibling='resnetv2_101x1_bit'), False,
         "the same into a model holding timm's resnetv2_101x1_bit (the same blocks, a longer "
         'third stage) first and resnetv2_50x1_bit second'),
        ('real-hf-convnextv2_atto->timm-convnextv2_atto', lambda: _hf_timm(*_CONVNEXTV2), True,
         "HuggingFace's ConvNeXt V2 (atto widths) into timm's convnextv2_atto: the global "
         'response norms and the last norm (head.norm in timm)'),
        ('real-hf-convnextv2_atto (sorted keys)->timm-convnextv2_atto',
         lambda: _hf_timm(*_CONVNEXTV2, sort=True), False,
         'the same, the checkpoint keys sorted (a .safetensors file)'),
        ('real-hf-mobilenet_v1->timm-mobilenetv1_100',
         lambda: _hf_timm('MobileNetV1', {'tf_padding': False}, 'mobilenetv1_100',
                          hf_mobilenet_v1_name([1, 2, 2, 6, 2])), True,
         "HuggingFace's MobileNetV1 (a flat list of depthwise and pointwise layers) into "
         "timm's mobilenetv1_100 (blocks grouped by stage)"),
        ('real-hf-mobilenet_v1 (sorted keys)->timm-mobilenetv1_100',
         lambda: _hf_timm('MobileNetV1', {'tf_padding': False}, 'mobilenetv1_100',
                          hf_mobilenet_v1_name([1, 2, 2, 6, 2]), sort=True), False,
         'the same, the checkpoint keys sorted (a .safetensors file)'),
    ]:
        register_pair(_name, 'outputs' if _outputs else 'names', cross_naming=True,
                      note=_note)(_build)

if _have('efficientnet_pytorch'):
    def _effpt(variant):
        from efficientnet_pytorch import EfficientNet
        return EfficientNet.from_name(f'efficientnet-{variant}')

    _B0, _B3 = [1, 2, 2, 3, 3, 4, 1], [2, 3, 3, 5, 5, 6, 2]
    for _name, _build, _note in [
        ('real-effpt-b0->tv-efficientnet_b0',
         lambda: _case(_effpt('b0'), tv_model('efficientnet_b0'), effpt_name(_B0)),
         "efficientnet_pytorch's b0 (blocks in one flat list, TF padding) into torchvision's"),
        ('real-effpt-b3->tv-efficientnet_b3',
         lambda: _case(_effpt('b3'), tv_model('efficientnet_b3'), effpt_name(_B3)),
         "efficientnet_pytorch's b3 into torchvision's"),
        ('real-tv-efficientnet_b0->effpt-b0',
         lambda: _case(_effpt('b0'), tv_model('efficientnet_b0'), effpt_name(_B0), reverse=True),
         "torchvision's efficientnet_b0 checkpoint into efficientnet_pytorch's"),
        ('real-effpt-b0->tv-efficientnet_b0.features',
         lambda: _case(_effpt('b0'), tv_model('efficientnet_b0').features,
                       _in('', effpt_name(_B0), {'features': ''})),
         "efficientnet_pytorch's b0 into torchvision's efficientnet_b0().features"),
    ]:
        register_pair(_name, 'names', cross_naming=True, note=_note)(_build)

if _have('pretrainedmodels'):
    def _se_resnet50():
        import pretrainedmodels
        return pretrainedmodels.se_resnet50(num_classes=1000, pretrained=None)

    def _timm_seresnet50():
        return timm_module().create_model('seresnet50', pretrained=False)

    for _name, _build, _note in [
        ('real-cadene-se_resnet50->timm-seresnet50',
         lambda: _case(_se_resnet50(), _timm_seresnet50(), _cadene_timm),
         "Cadene's se_resnet50 (layer0.*, se_module, last_linear) into timm's seresnet50"),
        ('real-cadene-se_resnet50->timm-seresnet50-children[:-1]',
         lambda: _case(_se_resnet50(),
                       nn.Sequential(*list(_timm_seresnet50().children())[:-1]),
                       _in('', _cadene_timm, _RESNET_CHILDREN)),
         "Cadene's se_resnet50 into timm's seresnet50 children[:-1]"),
        ('real-cadene-se_resnet50->tv-resnet50',
         lambda: _case(_se_resnet50(), tv_model('resnet50'), _cadene_tv),
         "Cadene's se_resnet50 into torchvision's resnet50: the squeeze-excitations have no "
         'place'),
        ('real-tv-resnet50->cadene-se_resnet50',
         lambda: _case(_se_resnet50(), tv_model('resnet50'), _cadene_tv, reverse=True),
         "torchvision's resnet50 into Cadene's se_resnet50"),
    ]:
        register_pair(_name, 'names', cross_naming=True, note=_note)(_build)
