"""
Flat keys of other frameworks, spelled as torch spells them, for the
``structure`` association.

A torch state dict names a tensor by its module path and its own name,
``layer1.0.bn1.running_mean``; the structure solver reads the module path to
cut the keys into modules (:mod:`torch_liberator.keygroups`), and the
tensor's own name to tell the tensors of one module apart (a BatchNorm's
four vectors of one shape). Checkpoints converted from other frameworks
often hold no dot at all:

* Keras and TensorFlow separate the path with ``/`` and call the tensors
  ``kernel``, ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``
  (``block_1_expand_BN/moving_variance:0``); Flax calls a norm's ``scale``;
* Caffe2 and Detectron 1 join everything with ``_`` and end in ``_w``,
  ``_b``, ``_s`` (``res2_0_branch2a_bn_s``), MXNet in ``_weight``,
  ``_gamma``, ``_moving_mean`` (``stage1_unit1_bn1_gamma``).

Read as torch keys, such a checkpoint is one module holding every tensor,
and the structure solver finds no module to align. :func:`torch_spelling`
spells each key of such a *flat* side the torch way: the path split at
``/`` (a dot inside a ``/`` path is no separator), or the tensor's own
name split off at its last ``_`` when it is a
name that frameworks give tensors (:data:`TENSOR_NAMES`), and that name
translated to torch's (``gamma`` -> ``weight``, ``moving_variance`` ->
``running_var``). A key that ends in no such name stays a tensor of the
top-level module. A side with a ``sep`` in any key (unless every key is a
``/`` path) is torch's already and is never respelled, and the published
modes never respell: torch checkpoints read as before. A flat side has no module tree to hold the alignment
together (only the order of its modules), so what aligns is believed only
when it is most of a network (:func:`enough_for_flat`): a Detectron 1
resnet18's three stage-opening convolutions line up with three of a
vgg11_bn's by their channels alone. Tensor layouts are not changed: a Keras kernel stored
``[H, W, in, out]`` still has another shape than torch's ``[out, in, H, W]``
and is not matched.

Example:
    >>> from torch_liberator.flatnames import torch_spelling
    >>> torch_spelling(['conv1_w', 'res_conv1_bn_s', 'res_conv1_bn_b'])
    {'conv1_w': 'conv1.weight', 'res_conv1_bn_s': 'res_conv1_bn.weight', 'res_conv1_bn_b': 'res_conv1_bn.bias'}
    >>> torch_spelling(['bn/gamma', 'bn/moving_variance:0'])
    {'bn/gamma': 'bn.weight', 'bn/moving_variance:0': 'bn.running_var'}
    >>> print(torch_spelling(['weight', 'bias', 'running_mean']))  # a bare BatchNorm: torch's own
    None
"""
import re
from typing import Dict, Iterable, Optional

__all__ = ['FLAT_MIN_SHARE', 'TENSOR_NAMES', 'enough_for_flat', 'torch_spelling']

#: an alignment with a flat side must hold at least this share of the
#: smaller side's tensors (:func:`enough_for_flat`)
FLAT_MIN_SHARE = 0.5

#: a tensor's own name in other frameworks -> torch's name for it (names
#: torch shares map to themselves); the names an ``_``-joined key may end in
TENSOR_NAMES: Dict[str, str] = {
    'weight': 'weight', 'bias': 'bias', 'running_mean': 'running_mean',
    'running_var': 'running_var', 'num_batches_tracked': 'num_batches_tracked',
    'kernel': 'weight', 'depthwise_kernel': 'weight', 'pointwise_kernel': 'weight',
    'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean',
    'moving_var': 'running_var', 'moving_variance': 'running_var',
    'w': 'weight', 'b': 'bias', 's': 'weight', 'rm': 'running_mean', 'rv': 'running_var',
}

#: the last component of a ``/``-separated key may also be one of these
#: (Flax's norms; its batch statistics)
_PATH_TENSOR_NAMES = {**TENSOR_NAMES, 'scale': 'weight', 'mean': 'running_mean',
                      'var': 'running_var', 'embeddings': 'weight'}

#: TensorFlow's output index (``kernel:0``)
_OUTPUT_INDEX = re.compile(r':\d+$')

#: longest first: ``sep_depthwise_kernel`` is module ``sep``'s
#: ``depthwise_kernel``, not module ``sep_depthwise``'s ``kernel``
_SUFFIXES = sorted(TENSOR_NAMES, key=len, reverse=True)


def _respelled(key: str, sep: str) -> str:
    bare = _OUTPUT_INDEX.sub('', key)
    if '/' in bare:
        # a TensorFlow path: its components may hold dots (a Keras model
        # named mobilenetv2_1.00_224), which are no separators here
        path, _, name = bare.replace(sep, '_').rpartition('/')
        path = path.replace('/', sep)
        return f'{path}{sep}{_PATH_TENSOR_NAMES.get(name, name)}' if path else bare
    for name in _SUFFIXES:
        if len(bare) > len(name) + 1 and bare.endswith('_' + name):
            return f'{bare[:-len(name) - 1]}{sep}{TENSOR_NAMES[name]}'
    return key


def torch_spelling(keys: Iterable[str], sep: str = '.') -> Optional[Dict[str, str]]:
    """
    ``{key: the key spelled as torch spells it}`` for a flat side (no key
    holds ``sep``, or every key is a ``/`` path) whose keys mostly end in a
    framework's tensor name; None
    for any other side, and when two keys would be spelled alike or a key
    would name a module of another (nothing is guessed: a Keras
    ``SeparableConv2D`` holds a ``depthwise_kernel`` and a
    ``pointwise_kernel``, two torch modules' weights, in one layer).

    Args:
        keys: one side's keys, in order.
        sep: torch's separator.

    Example:
        >>> from torch_liberator.flatnames import torch_spelling
        >>> torch_spelling(['arg:stage1_unit1_conv1_weight', 'arg:stage1_unit1_bn1_gamma'])
        {'arg:stage1_unit1_conv1_weight': 'arg:stage1_unit1_conv1.weight', 'arg:stage1_unit1_bn1_gamma': 'arg:stage1_unit1_bn1.weight'}
        >>> torch_spelling(['mobilenetv2_1.00_224/Conv1/kernel:0'])  # a dot inside a / path
        {'mobilenetv2_1.00_224/Conv1/kernel:0': 'mobilenetv2_1_00_224.Conv1.weight'}
        >>> print(torch_spelling(['layer1.0.conv1.weight', 'fc_w']))  # dotted: torch's already
        None
        >>> print(torch_spelling(['bn/gamma', 'bn/weight']))  # both would be bn.weight
        None
        >>> print(torch_spelling(['a/b/kernel', 'a']))  # 'a' would be a key and a module
        None
    """
    keys = list(keys)
    slashed = bool(keys) and all('/' in key for key in keys)
    if not keys or (not slashed and any(sep in key for key in keys)):
        return None
    spelled = {key: _respelled(key, sep) for key in keys}
    changed = sum(key != new for key, new in spelled.items())
    if 2 * changed < len(keys):
        return None
    names = set(spelled.values())
    if len(names) < len(keys):
        return None
    modules = set()
    for new in names:
        path = new.rpartition(sep)[0]
        while path and path not in modules:
            modules.add(path)
            path = path.rpartition(sep)[0]
    if modules & names:
        return None
    return spelled


def enough_for_flat(held: int, n_src: int, n_dst: int) -> bool:
    """
    True when ``held`` paired tensors are at least :data:`FLAT_MIN_SHARE` of
    the smaller side's: with a flat side, less is a run of shapes that two
    networks share, not one network (see the module docstring).

    Example:
        >>> from torch_liberator.flatnames import enough_for_flat
        >>> enough_for_flat(262, 262, 314)  # a Keras mobilenet_v2, whole
        True
        >>> enough_for_flat(12, 62, 62)     # three convolutions of a resnet18 in a vgg11_bn
        False
    """
    return held >= FLAT_MIN_SHARE * min(n_src, n_dst)
