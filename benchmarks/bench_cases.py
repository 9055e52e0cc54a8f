"""
The fixed suite of benchmark pairs: a checkpoint (source) and a model
(destination) for each case.

Torchvision pairs build real models with ``weights=None`` (never a hub
download). Synthetic pairs are transformer-like key sets: ``num_blocks``
blocks of 10 tensors each with nested names (``encoder.layers.{i}.attn.qkv.weight``,
``...mlp.fc1.bias``, norms), plus an embedding, a final norm and a head. The
destination is the same set moved under a different prefix with a different
head. For end-to-end runs they are turned into a module tree holding tiny
tensors.

Example:
    >>> import bench_cases
    >>> src, dst = bench_cases.make_synthetic_pair(2)
    >>> len(src), len(dst)
    (27, 27)
    >>> src[3], dst[3]
    (('encoder.layers.0.norm1.weight', (64,)), ('backbone.trunk.encoder.layers.0.norm1.weight', (64,)))
"""
import fnmatch

__all__ = [
    'CASES', 'SYNTHETIC_BLOCKS', 'select_cases', 'make_synthetic_pair',
    'build_case', 'module_from_shapes',
]

#: number of blocks of the synthetic series (about 10 keys per block)
SYNTHETIC_BLOCKS = (12, 100, 1000, 10000)

#: case name -> (source builder, destination builder) for torchvision pairs
_TORCHVISION = {
    'resnet50-wrapped': ('resnet50', 'wrapped:resnet50'),
    'resnet50-fasterrcnn': ('resnet50', 'fasterrcnn_resnet50_fpn'),
    'resnet101-resnet50': ('resnet101', 'resnet50'),
    'efficientnet_b1-b0': ('efficientnet_b1', 'efficientnet_b0'),
    'maskrcnn-fasterrcnn': ('maskrcnn_resnet50_fpn', 'fasterrcnn_resnet50_fpn'),
    'fasterrcnn-maskrcnn': ('fasterrcnn_resnet50_fpn', 'maskrcnn_resnet50_fpn'),
    'vit_b_16-wrapped': ('vit_b_16', 'wrapped:vit_b_16'),
    'swin_t-wrapped': ('swin_t', 'wrapped:swin_t'),
    'convnext_tiny-wrapped': ('convnext_tiny', 'wrapped:convnext_tiny'),
}

#: every case name, in the order the suite runs them
CASES = tuple(_TORCHVISION) + tuple(f'synth-{n}' for n in SYNTHETIC_BLOCKS)

# one transformer block: (relative name, shape as a function of the width d)
_BLOCK = (
    ('norm1.weight', lambda d: (d,)),
    ('norm1.bias', lambda d: (d,)),
    ('attn.qkv.weight', lambda d: (3 * d, d)),
    ('attn.qkv.bias', lambda d: (3 * d,)),
    ('attn.proj.weight', lambda d: (d, d)),
    ('norm2.weight', lambda d: (d,)),
    ('mlp.fc1.weight', lambda d: (4 * d, d)),
    ('mlp.fc1.bias', lambda d: (4 * d,)),
    ('mlp.fc2.weight', lambda d: (d, 4 * d)),
    ('mlp.fc2.bias', lambda d: (d,)),
)


def select_cases(patterns=None, quick=False):
    """
    Pick case names by shell-style patterns, in suite order.

    Args:
        patterns (List[str] | None): e.g. ``['resnet*', 'synth-100']``;
            None selects every case.
        quick (bool): drop synthetic cases above 1000 blocks.

    Returns:
        List[str]

    Example:
        >>> import bench_cases
        >>> bench_cases.select_cases(['synth-*'], quick=True)
        ['synth-12', 'synth-100', 'synth-1000']
    """
    names = [
        name for name in CASES
        if patterns is None or any(fnmatch.fnmatch(name, p) for p in patterns)
    ]
    if patterns is not None:
        unknown = [p for p in patterns
                   if not any(fnmatch.fnmatch(n, p) for n in CASES)]
        if unknown:
            raise ValueError(
                f'cases {unknown!r} match nothing; valid names are {CASES!r}')
    if quick:
        names = [n for n in names
                 if not n.startswith('synth-') or _num_blocks(n) <= 1000]
    return names


def _num_blocks(name):
    return int(name.split('-', 1)[1])


def make_synthetic_pair(num_blocks, width=64):
    """
    Build the synthetic source and destination key sets.

    Args:
        num_blocks (int): number of transformer blocks.
        width (int): model width used for the (nominal) shapes.

    Returns:
        Tuple[List[Tuple[str, tuple]], List[Tuple[str, tuple]]]:
            ``(key, shape)`` pairs of the source and the destination, in
            state-dict order; ``10 * num_blocks + 7`` keys each.

    Example:
        >>> import bench_cases
        >>> src, dst = bench_cases.make_synthetic_pair(100)
        >>> len(src), src[-1], dst[-1]
        (1007, ('head.bias', (1000,)), ('heads.classifier.bias', (10,)))
    """
    d = width

    def body(prefix):
        items = [
            (prefix + 'embed.pos', (1, 197, d)),
            (prefix + 'embed.proj.weight', (d, 3, 16, 16)),
            (prefix + 'embed.proj.bias', (d,)),
        ]
        for i in range(num_blocks):
            items.extend((f'{prefix}encoder.layers.{i}.{name}', shape(d))
                         for name, shape in _BLOCK)
        items.append((prefix + 'encoder.norm.weight', (d,)))
        items.append((prefix + 'encoder.norm.bias', (d,)))
        return items

    src = body('') + [('head.weight', (1000, d)), ('head.bias', (1000,))]
    dst = body('backbone.trunk.') + [
        ('heads.classifier.weight', (10, d)), ('heads.classifier.bias', (10,))]
    return src, dst


def module_from_shapes(items):
    """
    Build an ``nn.Module`` tree whose state dict has exactly the given keys.

    Args:
        items (List[Tuple[str, tuple]]): ``(key, shape)`` pairs.

    Returns:
        torch.nn.Module: parameters are zero-filled tensors of those shapes.

    Example:
        >>> import bench_cases
        >>> model = bench_cases.module_from_shapes([('a.c', (1,)), ('a.b.weight', (2, 3))])
        >>> [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        [('a.c', (1,)), ('a.b.weight', (2, 3))]
    """
    import torch
    root = torch.nn.Module()
    for key, shape in items:
        *path, leaf = key.split('.')
        node = root
        for part in path:
            child = node._modules.get(part)
            if child is None:
                child = torch.nn.Module()
                node.add_module(part, child)
            node = child
        node.register_parameter(
            leaf, torch.nn.Parameter(torch.zeros(shape), requires_grad=False))
    return root


def _tiny(items):
    """Shrink every dimension to at most 2 so huge key sets stay small."""
    return [(k, tuple(min(s, 2) for s in shape)) for k, shape in items]


def _wrap(net):
    """Put ``net`` under ``backbone`` of a new module that also has a new head."""
    import torch
    wrapper = torch.nn.Module()
    wrapper.backbone = net
    wrapper.extra_head = torch.nn.Linear(16, 10)
    return wrapper


def _build_torchvision(spec):
    import torchvision
    wrapped = spec.startswith('wrapped:')
    name = spec.split(':', 1)[1] if wrapped else spec
    if name.endswith('_fpn'):
        factory = getattr(torchvision.models.detection, name)
        net = factory(weights=None, weights_backbone=None)
    else:
        net = getattr(torchvision.models, name)(weights=None)
    return _wrap(net) if wrapped else net


def build_case(name, tensors=True):
    """
    Build one case.

    Args:
        name (str): a name from :data:`CASES`.
        tensors (bool): if False only the key lists are built (synthetic
            cases then allocate nothing).

    Returns:
        Dict[str, object]: ``src_keys``, ``dst_keys`` (lists of str),
        ``src_shapes``, ``dst_shapes`` (``{key: shape}``, what association
        sees) and, when ``tensors``, ``src_state`` (the checkpoint, a dict
        of tensors) and ``dst_model`` (an ``nn.Module``). Synthetic
        end-to-end tensors are tiny (at most 2 per dimension); their
        ``*_shapes`` are the nominal ones.

    Example:
        >>> import bench_cases
        >>> case = bench_cases.build_case('synth-12')
        >>> dst_keys = list(case['dst_model'].state_dict())
        >>> len(case['src_keys']), dst_keys == case['dst_keys']
        (127, True)
        >>> case['dst_shapes']['heads.classifier.weight']
        (10, 64)
    """
    if name not in CASES:
        raise ValueError(f'case {name!r} is not one of {CASES!r}')
    case = {}
    if name.startswith('synth-'):
        src, dst = make_synthetic_pair(_num_blocks(name))
        case['src_keys'] = [k for k, _ in src]
        case['dst_keys'] = [k for k, _ in dst]
        case['src_shapes'], case['dst_shapes'] = dict(src), dict(dst)
        if tensors:
            case['src_state'] = module_from_shapes(_tiny(src)).state_dict()
            case['dst_model'] = module_from_shapes(_tiny(dst))
        return case
    src_spec, dst_spec = _TORCHVISION[name]
    src_state = _build_torchvision(src_spec).state_dict()
    dst_model = _build_torchvision(dst_spec)
    dst_state = dst_model.state_dict()
    case['src_keys'] = list(src_state)
    case['dst_keys'] = list(dst_state)
    case['src_shapes'] = {k: tuple(v.shape) for k, v in src_state.items()}
    case['dst_shapes'] = {k: tuple(v.shape) for k, v in dst_state.items()}
    if tensors:
        case['src_state'] = src_state
        case['dst_model'] = dst_model
    return case
