"""
What :func:`torch_liberator.load_partial_state` prints.

``verbose=1`` is a short summary — a few lines whatever the model size, with
unset and unused keys grouped by prefix (:func:`summarize_keys`) — so a
training log is never flooded; ``verbose>=2`` adds one line per key, and says
why each skipped key was skipped.

Example:
    >>> from torch_liberator.report import summarize_keys
    >>> summarize_keys(['head.fc.weight', 'head.fc.bias'])
    '(head.fc.* 2)'
"""

__all__ = ['SEEN_CATEGORIES', 'print_report', 'summarize_keys']

#: The categories of ``info['seen']``, in the order they are reported.
SEEN_CATEGORIES = ('full_add', 'partial_add_some', 'partial_add_all', 'skipped')


def print_report(info, copies, skips, n_inits, init_failures, leftover,
                 association, src_state, dst_state, verbose):
    """
    Print what a load did, as much as ``verbose`` asks for.

    Args:
        info (dict): the ``info`` returned by ``load_partial_state``.
        copies (Dict[str, Tuple[str, str, bool]]): checkpoint key ->
            ``(model key, how, covers)`` of every copy made.
        skips (Dict[str, str]): checkpoint key -> why it was not copied.
        n_inits (int): how many tensors ``leftover`` initialized.
        init_failures (Dict[str, str]): model key -> why ``leftover`` could
            not initialize it.
        leftover (str | Callable): the ``leftover`` option.
        association (str): the ``association`` option.
        src_state (Dict[str, Tensor]): the checkpoint's tensors.
        dst_state (Dict[str, Tensor]): the model's tensors.
        verbose (int): 1 for a summary, 2 or more for one line per key.

    Example:
        >>> import torch
        >>> from torch_liberator.report import print_report
        >>> src = {'w': torch.zeros(2), 'x': torch.zeros(1)}
        >>> dst = {'w': torch.zeros(2), 'v': torch.zeros(1)}
        >>> info = {'seen': {'full_add': ['w'], 'partial_add_some': [],
        ...                  'partial_add_all': [], 'skipped': ['x']},
        ...         'self_unset': ['v'], 'other_unused': ['x']}
        >>> print_report(info, {'w': ('w', 'full_add', True)},
        ...              {'x': 'no matching model key'}, 0, {}, 'noop',
        ...              'isomorphism', src, dst, verbose=2)
          full_add: w -> w
          skipped: x (no matching model key)
          self_unset: v
        load_partial_state(association='isomorphism'): 1 of 2 checkpoint tensors loaded into a model with 2
          full_add=1, partial_add_some=0, partial_add_all=0, skipped=1
          self_unset=1 (v 1)
          other_unused=1 (x 1)
    """
    seen = info['seen']
    counts = ', '.join(f'{name}={len(seen[name])}' for name in SEEN_CATEGORIES)
    if verbose >= 2:
        for src_key in src_state:
            if src_key in copies:
                dst_key, how, _ = copies[src_key]
                shapes = ''
                if how != 'full_add':
                    shapes = (f' {tuple(src_state[src_key].shape)} -> '
                              f'{tuple(dst_state[dst_key].shape)}')
                print(f'  {how}: {src_key} -> {dst_key}{shapes}')
            else:
                print(f'  skipped: {src_key} ({skips[src_key]})')
        for key in info['self_unset']:
            print(f'  self_unset: {key}')
        for key, reason in init_failures.items():
            print(f'  leftover could not initialize {key}, left as it '
                  f'was ({reason})')
    print(f'load_partial_state(association={association!r}): '
          f'{len(copies)} of {len(src_state)} checkpoint tensors loaded '
          f'into a model with {len(dst_state)}')
    if not (info['self_unset'] or info['other_unused'] or
            seen['partial_add_some'] or seen['partial_add_all']):
        print('  perfect fit')
    else:
        print(f'  {counts}')
        print(f'  self_unset={len(info["self_unset"])} '
              f'{summarize_keys(info["self_unset"])}'.rstrip())
        print(f'  other_unused={len(info["other_unused"])} '
              f'{summarize_keys(info["other_unused"])}'.rstrip())
    if callable(leftover):
        name = getattr(leftover, '__name__', type(leftover).__name__)
        line = f'  leftover={name}: initialized {n_inits} tensors'
        if init_failures:
            line += (f', could not initialize {len(init_failures)} (left as '
                     'they were; verbose=2 lists them)')
        print(line)


def summarize_keys(keys, limit=4):
    """
    Describe many keys in a few words: by shared prefix, else by shared leaf
    name, else by a few examples.

    Example:
        >>> from torch_liberator.report import summarize_keys
        >>> summarize_keys(['fpn.a.weight', 'fpn.a.bias', 'rpn.conv.bias'])
        '(fpn.a.* 2, rpn.conv.* 1)'
        >>> summarize_keys(['a.x.n', 'b.y.n', 'c.z.n', 'd.w.n', 'fc.weight'])
        '(*.n 4, *.weight 1)'
        >>> summarize_keys(['weight', 'bias'])
        '(weight 1, bias 1)'
    """
    if not keys:
        return ''
    for label_of in (_prefix_label, _leaf_label):
        groups = {}
        for key in keys:
            label = label_of(key)
            groups[label] = groups.get(label, 0) + 1
        if len(groups) <= limit:
            return '(' + ', '.join(f'{label} {count}'
                                   for label, count in groups.items()) + ')'
    more = ', ...' if len(keys) > limit else ''
    return '(e.g. ' + ', '.join(keys[:limit]) + more + ')'


def _prefix_label(key, depth=2):
    parts = key.split('.')
    if len(parts) == 1:
        return key
    return '.'.join(parts[:min(depth, len(parts) - 1)]) + '.*'


def _leaf_label(key):
    parts = key.rsplit('.', 1)
    return key if len(parts) == 1 else '*.' + parts[1]
