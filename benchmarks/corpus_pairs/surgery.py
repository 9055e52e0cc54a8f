"""
Pairs of model surgery and checkpoint contents: a block deleted from the
middle of a stage (re-indexed or not), a layer removed, a head replaced by
``nn.Identity``, a checkpoint holding extra heads, loss buffers and training
counters beside the model, and torchvision's quantizable models (the same
parameters under other module classes). Truth by identity or by names.

Example:
    >>> from corpus_pairs import build_case
    >>> case = build_case('resnet50-delattr-layer3.2')
    >>> case.truth['layer3.3.conv1.weight']
    'layer3.3.conv1.weight'
    >>> 'layer3.2.conv1.weight' in case.truth
    False
"""
import copy
from collections import OrderedDict

import torch
from torch import nn

from corpus_pairs.models import NO_AUX, keep, timm_module, torchvision_module, tv_model
from corpus_pairs.registry import Case, register_pair, truth_by_names


# --- a block or a layer removed


@register_pair('resnet50-del-layer3[2]', 'identity',
               note='del model.layer3[2] (nn.Sequential re-indexes: layer3.3 becomes layer3.2): the '
                    'shifted blocks have the shapes and names of others, which one was meant is '
                    'unknowable from the model, so layer3.2.. are unjudged; the rest must be right')
def _del_block():
    r = tv_model('resnet50')
    state = keep(r)
    del r.layer3[2]
    unjudged = [k for k in r.state_dict() if k.startswith('layer3.') and int(k.split('.')[1]) >= 2]
    truth = {s: d for s, d in Case(state, r, None).truth.items() if d not in unjudged}
    return Case(state, r, truth, unjudged=unjudged)


@register_pair('resnet50-delattr-layer3.2', 'identity',
               note="delattr(model.layer3, '2'): the block is gone, the others keep their names "
                    '(layer3.0, .1, .3, .4, .5)')
def _delattr_block():
    r = tv_model('resnet50')
    state = keep(r)
    delattr(r.layer3, '2')
    return Case(state, r, None)


@register_pair('resnet50 pruned checkpoint->resnet50', 'identity',
               note="a checkpoint of resnet50 with layer3's block 2 removed (delattr, names kept) into "
                    'a full resnet50: layer3.2 gets nothing')
def _pruned_into_full():
    r = tv_model('resnet50')
    pruned = copy.copy(r)
    pruned._modules = OrderedDict(r._modules)
    pruned._modules['layer3'] = nn.Sequential(OrderedDict(
        (name, block) for name, block in r.layer3.named_children() if name != '2'))
    return Case(keep(pruned), r, None)


@register_pair('resnet50-no-layer4', 'identity',
               note='model.layer4 = nn.Identity() (a C4 feature extractor): layer4 belongs nowhere')
def _no_layer4():
    r = tv_model('resnet50')
    state = keep(r)
    r.layer4 = nn.Identity()
    return Case(state, r, None)


@register_pair('resnet18-fc-identity', 'identity', fast=True,
               note='model.fc = nn.Identity() (the common feature-extractor idiom): fc belongs nowhere')
def _fc_identity():
    r = tv_model('resnet18')
    state = keep(r)
    r.fc = nn.Identity()
    return Case(state, r, None)


# --- checkpoints with more than the model


def _junk(r):
    """Training leftovers: a loss' class weights, an auxiliary head of the fc's shape, counters."""
    return {'criterion.weight': torch.zeros(1000), 'aux_head.weight': torch.zeros(1000, 2048),
            'aux_head.bias': torch.zeros(1000), 'ema_decay': torch.zeros(()),
            'global_step': torch.zeros((), dtype=torch.long),
            'proj_head.0.weight': torch.zeros(2048, 2048), 'proj_head.2.weight': torch.zeros(128, 2048)}


@register_pair('resnet50 checkpoint with junk keys', 'identity',
               note='a resnet50 state followed by training leftovers (loss weights, an auxiliary head '
                    'of the fc shape, a projection head, step counters): only the model keys belong')
def _junk_after():
    r = tv_model('resnet50')
    state = dict(keep(r))
    state.update(_junk(r))
    return Case(state, r, None)


@register_pair('resnet50 checkpoint with junk keys first', 'identity',
               note='the same with the leftovers before the model keys')
def _junk_first():
    r = tv_model('resnet50')
    state = _junk(r)
    state.update(keep(r))
    return Case(state, r, None)


# --- torchvision's quantizable models: same parameters, other module classes


def _quantizable(arch, **kw):
    return getattr(torchvision_module().models.quantization, arch)(weights=None, quantize=False, **kw)


for _arch, _kw in [('resnet18', {}), ('mobilenet_v3_large', {}), ('shufflenet_v2_x1_0', {})]:
    register_pair(f'{_arch}->quantizable {_arch}', 'names',
                  note=f'torchvision {_arch} -> torchvision.models.quantization.{_arch}(quantize=False): '
                       'QuantStub/DeQuantStub and Quantizable* blocks, the same names')(
        lambda a=_arch, k=_kw: (lambda src, dst: Case(keep(src), dst, truth_by_names(keep(src), dst, [('', '')])))(
            tv_model(a, **k), _quantizable(a, **k)))


@register_pair('googlenet->quantizable googlenet(aux)', 'names',
               note='torchvision googlenet without aux heads -> the quantizable googlenet with them: '
                    'aux1/aux2 get nothing')
def _quant_googlenet():
    src = tv_model('googlenet', **NO_AUX)
    dst = _quantizable('googlenet', aux_logits=True, init_weights=False)
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


@register_pair('quantizable mobilenet_v2->mobilenet_v2', 'names',
               note='the reverse: a quantizable mobilenet_v2 checkpoint into torchvision mobilenet_v2')
def _quant_back():
    src = _quantizable('mobilenet_v2')
    dst = tv_model('mobilenet_v2')
    state = keep(src)
    return Case(state, dst, truth_by_names(state, dst, [('', '')]))


@register_pair('resnet50 checkpoint without num_batches_tracked', 'identity',
               note='a resnet50 checkpoint saved before BatchNorm had num_batches_tracked '
                    '(PyTorch < 0.4.1): those model keys get nothing')
def _no_counters():
    r = tv_model('resnet50')
    return Case({k: v for k, v in keep(r).items() if not k.endswith('num_batches_tracked')}, r, None)


# --- LoRA adapters inserted below the layers (HuggingFace PEFT names)


class _LoraLinear(nn.Module):
    """PEFT's LoRA wrapper: the original layer as base_layer, lora_A/lora_B.default beside it."""

    def __init__(self, base, rank=8):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict({'default': nn.Linear(base.in_features, rank, bias=False)})
        self.lora_B = nn.ModuleDict({'default': nn.Linear(rank, base.out_features, bias=False)})


def _with_lora(vit):
    for block in vit.blocks:
        block.attn.qkv, block.attn.proj = _LoraLinear(block.attn.qkv), _LoraLinear(block.attn.proj)
        block.mlp.fc1, block.mlp.fc2 = _LoraLinear(block.mlp.fc1), _LoraLinear(block.mlp.fc2)
    return vit


@register_pair('timm-deit_tiny->peft-lora', 'identity',
               note='a deit_tiny checkpoint into the same model with PEFT LoRA adapters on every '
                    'attention and MLP linear (blocks.N.attn.qkv.base_layer.weight, lora_A.default, '
                    'lora_B.default): a level inserted below the layers; the adapters get nothing')
def _into_lora():
    vit = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    state = keep(vit)
    return Case(state, _with_lora(vit), None)


@register_pair('peft-lora->timm-deit_tiny', 'identity',
               note='the reverse: a LoRA-wrapped deit_tiny checkpoint (base_layer and adapters) into '
                    'the plain model: base_layer belongs, the adapters nowhere')
def _from_lora():
    vit = timm_module().create_model('deit_tiny_patch16_224', pretrained=False)
    plain = copy.copy(vit)
    plain._modules = OrderedDict(vit._modules)
    wrapped = _with_lora(copy.deepcopy(vit))
    # the plain model holds the wrapped model's base layers (same tensors, for identity)
    plain.blocks = nn.Sequential(*[copy.copy(b) for b in wrapped.blocks])
    for pb, wb in zip(plain.blocks, wrapped.blocks):
        pb._modules = OrderedDict(wb._modules)
        pb.attn = copy.copy(wb.attn)
        pb.attn._modules = OrderedDict(qkv=wb.attn.qkv.base_layer, q_norm=wb.attn.q_norm,
                                       k_norm=wb.attn.k_norm, attn_drop=wb.attn.attn_drop,
                                       norm=wb.attn.norm, proj=wb.attn.proj.base_layer,
                                       proj_drop=wb.attn.proj_drop)
        pb.mlp = copy.copy(wb.mlp)
        pb.mlp._modules = OrderedDict((k, m.base_layer if isinstance(m, _LoraLinear) else m)
                                      for k, m in wb.mlp._modules.items())
    for name in ('patch_embed', 'norm', 'head'):
        setattr(plain, name, getattr(wrapped, name))
    plain.cls_token, plain.pos_embed = wrapped.cls_token, wrapped.pos_embed
    return Case(keep(wrapped), plain, None)
