"""
What a load plan looks like to a person: the table of :func:`format_plan`
(``print(plan)``, ``python -m torch_liberator map``) and what
:func:`torch_liberator.load_partial_state` prints (:func:`print_report`).

The table folds keys that differ only in their numbers (and then in their
last component) into one row, so a 300-key model fits on a screen:
``layer1.{0..2}.conv{1..3}.weight -> backbone.body.layer1.{0..2}.conv{1..3}.weight  copy  9``.

``verbose=1`` prints a short summary: a few lines whatever the model size
(every shoved tensor is named, with both shapes and the policy), and a
one-line warning when under half of the model received data;
``verbose>=2`` adds one line per key, and says why each skipped key was
skipped.

This module reads plans by their attributes only (see
:class:`torch_liberator.plantypes.LoadPlan`); it imports no other part of the
library.

Example:
    >>> from torch_liberator.report import fold_keys, summarize_keys
    >>> summarize_keys(['head.fc.weight', 'head.fc.bias'])
    '(head.fc.* 2)'
    >>> fold_keys(['layer1.0.conv1.weight', 'layer1.0.conv2.weight', 'layer1.1.conv1.weight', 'layer1.1.conv2.weight'])
    [('layer1.{0,1}.conv{1,2}.weight', 4)]
"""
import re
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # for annotations only; plantypes imports this module
    from torch_liberator.plantypes import LoadPlan

__all__ = ['SEEN_CATEGORIES', 'fold_keys', 'format_plan', 'little_loaded',
           'print_report', 'summarize_keys']

#: The categories of ``info['seen']``, in the order they are reported.
SEEN_CATEGORIES = ('full_add', 'partial_add_some', 'partial_add_all', 'skipped')

_DIGITS = re.compile(r'(\d+)')


# --- folding keys into patterns ---------------------------------------------

def _split(key):
    """``'layer1.0.conv1'`` -> (('layer', '.', '.conv', ''), (1, 0, 1)).
    Numbers with a leading zero stay text (their spelling matters)."""
    if key is None:
        return None, ()
    parts = _DIGITS.split(key)
    texts, values = [parts[0]], []
    for number, text in zip(parts[1::2], parts[2::2]):
        if len(number) > 1 and number[0] == '0':
            texts[-1] += number + text
        else:
            values.append(int(number))
            texts.append(text)
    return tuple(texts), tuple(values)


def _fold(rows, depth=0):
    """
    Fold equally long tuples of numbers into patterns: tuples of frozensets
    whose cartesian products are exactly ``rows``. Values at one position
    merge when what follows them folds identically.
    """
    if not rows or depth == len(rows[0]):
        return [()]
    by_value = {}
    for row in rows:
        by_value.setdefault(row[depth], []).append(row)
    merged = {}
    for value, sub in by_value.items():
        tail = tuple(_fold(sub, depth + 1))
        merged.setdefault(tail, []).append(value)
    return [(frozenset(values),) + pattern
            for tail, values in merged.items() for pattern in tail]


def _format_numbers(values):
    values = sorted(values)
    if len(values) == 1:
        return str(values[0])
    runs, start = [], values[0]
    for prev, value in zip(values, values[1:] + [None]):
        if value != prev + 1:
            runs.append((start, prev))
            start = value
    parts = []
    for lo, hi in runs:
        if hi - lo >= 2:
            parts.append(f'{lo}..{hi}')
        else:
            parts.extend(str(v) for v in range(lo, hi + 1))
    return '{' + ','.join(parts) + '}'


def _render(texts, sets):
    out = [texts[0]]
    for text, values in zip(texts[1:], sets):
        out.append(_format_numbers(values))
        out.append(text)
    return ''.join(out)


def _fold_rows(rows):
    """
    Fold ``(src_key, dst_key, label)`` rows into
    ``(src_pattern, dst_pattern, label, count)``, in order of first
    appearance. Either key may be None. A number of the model key that
    always equals one of the checkpoint key is folded with it.
    """
    groups = {}
    for src_key, dst_key, label in rows:
        (s_texts, s_vals), (d_texts, d_vals) = _split(src_key), _split(dst_key)
        groups.setdefault((s_texts, d_texts, label), []).append(
            (s_vals, d_vals))
    folded = []
    for (s_texts, d_texts, label), members in groups.items():
        n_src = len(members[0][0])
        n_dst = len(members[0][1])
        # a model-side number equal to a checkpoint-side one in every row
        links = {}
        for j in range(n_dst):
            same = [i for i in range(n_src)
                    if all(s[i] == d[j] for s, d in members)]
            if same:
                links[j] = j if j in same else same[0]
        free = [j for j in range(n_dst) if j not in links]
        vectors = [s + tuple(d[j] for j in free) for s, d in members]
        for pattern in _fold(vectors):
            src_sets = pattern[:n_src]
            free_sets = dict(zip(free, pattern[n_src:]))
            dst_sets = [src_sets[links[j]] if j in links else free_sets[j]
                        for j in range(n_dst)]
            count = 1
            for values in pattern:
                count *= len(values)
            folded.append((
                None if s_texts is None else _render(s_texts, src_sets),
                None if d_texts is None else _render(d_texts, dst_sets),
                label, count))
    return _fold_leaves(folded)


def _fold_leaves(rows):
    """Merge rows that differ only in the last key component, when it is
    the same on both sides (``bn1.weight``, ``bn1.bias`` -> ``bn1.{weight,bias}``)."""
    def parts(pattern):
        if pattern is None:
            return None, None
        head, dot, leaf = pattern.rpartition('.')
        return (head + dot, leaf) if '{' not in leaf else (pattern, '')
    merged = {}
    for src, dst, label, count in rows:
        (s_head, s_leaf), (d_head, d_leaf) = parts(src), parts(dst)
        leaf = s_leaf if s_leaf is not None else d_leaf
        if (s_leaf is not None and d_leaf is not None and s_leaf != d_leaf) \
                or not leaf:
            merged[(src, dst, label, None)] = [[leaf], count, src, dst]
            continue
        slot = merged.setdefault((s_head, d_head, label, 'leaf'),
                                 [[], 0, src, dst])
        slot[0].append(leaf)
        slot[1] += count
    out = []
    for (s_head, d_head, label, kind), (leaves, count, src, dst) in merged.items():
        if kind is not None and len(leaves) > 1:
            tail = '{' + ','.join(leaves) + '}'
            src = None if s_head is None else s_head + tail
            dst = None if d_head is None else d_head + tail
        out.append((src, dst, label, count))
    return out


def fold_keys(keys: Sequence[str]) -> List[Tuple[str, int]]:
    """
    Fold keys that differ only in their numbers (then in their last
    component) into patterns, with how many keys each stands for.

    Example:
        >>> from torch_liberator.report import fold_keys
        >>> keys = [f'layer{i}.{j}.bn1.{leaf}' for i in (1, 2) for j in range(3 if i == 1 else 2)
        ...         for leaf in ('weight', 'bias')]
        >>> for pattern, count in fold_keys(keys):
        ...     print(pattern, count)
        layer1.{0..2}.bn1.{weight,bias} 6
        layer2.{0,1}.bn1.{weight,bias} 4
    """
    return [(src, count) for src, _, _, count
            in _fold_rows([(key, None, '') for key in keys])]


# --- the plan table ---------------------------------------------------------

def _short(reason):
    return reason.split(';')[0]


def _components(pattern):
    """Split a pattern on the dots that are not inside ``{...}``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(pattern):
        if char == '{':
            depth += 1
        elif char == '}':
            depth -= 1
        elif char == '.' and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _prefix_rule(src, dst):
    """``('', 'backbone.body.', 'layer1.conv.weight')`` for
    ``layer1.conv.weight -> backbone.body.layer1.conv.weight``: the
    prefixes that change and the common tail; None when the last
    components differ."""
    s, d = _components(src), _components(dst)
    k = 0
    while k < min(len(s), len(d)) and s[-1 - k] == d[-1 - k]:
        k += 1
    if k == 0:
        return None

    def head(parts):
        return ''.join(part + '.' for part in parts[:len(parts) - k])
    return head(s), head(d), '.'.join(s[len(s) - k:])


def format_plan(plan: 'LoadPlan') -> str:
    """
    A load plan as a table: pairs grouped by how their names change, keys
    folded into patterns, then the counts per action.

    Rows under a header ``A* -> B*`` load checkpoint key ``A<row>`` into
    model key ``B<row>``; other rows say ``checkpoint -> model`` in full
    (``-``: no key on that side).

    Args:
        plan (LoadPlan): a :class:`torch_liberator.plantypes.LoadPlan`.

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> src = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)], torch.nn.Linear(4, 9))
        >>> class Net(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.body = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)], torch.nn.Linear(4, 2))
        ...         self.extra = torch.nn.Linear(1, 1)
        >>> print(plan_load(Net(), src.state_dict(), association='isomorphism'))
        checkpoint -> model          action  n
        * -> body.*
          {0..2}.{weight,bias}       copy    6
          3.weight                   shove   1  (9, 4) -> (2, 4) corner
          3.bias                     shove   1  (9,) -> (2,) corner
        - -> extra.{weight,bias}     unset   2
        copy 6, shove 2, skip 0 of 8 checkpoint tensors
        8 of 10 model tensors set, 2 unset; association='isomorphism'
    """
    rows = []
    for e in plan.entries:
        if e.action == 'shove':
            detail = f'{e.src_spec.shape} -> {e.dst_spec.shape} {e.policy}'
        elif e.src_key in plan.ambiguous:  # the places are listed below
            detail = (f'ambiguous: {len(plan.ambiguous[e.src_key])} equally '
                      'good places')
        else:
            detail = _short(e.reason)
        if e.given:
            detail = (detail + ' (rename)').lstrip()
        rows.append((e.src_key, e.dst_key, (e.action, detail)))
    rows.extend((None, key, ('unset', '')) for key in plan.self_unset)

    # group the folded rows by the prefix change of their names
    blocks = {}
    for src, dst, label, count in _fold_rows(rows):
        rule = None
        if src is not None and dst is not None:
            rule = _prefix_rule(src, dst)
        if rule is None:
            name = f'{src or "-"} -> {dst or "-"}'
            blocks[(src, dst, label)] = [(name, label, count)]
        else:
            blocks.setdefault(rule[:2], []).append((rule[2], label, count))
    table = [('checkpoint -> model', 'action', 'n', '')]
    for key, members in blocks.items():
        if len(key) == 3:
            table.extend((name, action, str(count), detail)
                         for name, (action, detail), count in members)
            continue
        if len(members) == 1:
            tail, (action, detail), count = members[0]
            table.append((f'{key[0]}{tail} -> {key[1]}{tail}', action,
                          str(count), detail))
            continue
        table.append((f'{key[0]}* -> {key[1]}*', '', '', ''))
        table.extend((f'  {tail}', action, str(count), detail)
                     for tail, (action, detail), count in members)
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    lines = []
    for row in table:
        line = '  '.join(cell.ljust(width) for cell, width
                         in zip(row[:3], widths))
        if row[3]:
            line += '  ' + row[3]
        lines.append(line.rstrip())
    lines.append(_counts_line(plan))
    if plan.ambiguous:
        key, places = next(iter(plan.ambiguous.items()))
        lines.append(f'ambiguous {len(plan.ambiguous)}: left out, e.g. {key} '
                     f'could go to {" or ".join(places)}; give the pairs in '
                     'rename= to load them')
    lines.extend(f'hint: {hint}' for hint in plan.hints)
    return '\n'.join(lines)


def _counts_line(plan):
    counts = plan.counts()
    n_model = len(plan.model_keys)
    n_unset = len(plan.self_unset)
    return (', '.join(f'{action} {n}' for action, n in counts.items()) +
            f' of {len(plan.entries)} checkpoint tensors\n'
            f'{n_model - n_unset} of {n_model} model tensors set, {n_unset} '
            f'unset; association={plan.association!r}')


# --- what load_partial_state prints -----------------------------------------

def little_loaded(plan: 'LoadPlan') -> Optional[str]:
    """
    A one-line warning when no tensor or under half of the model received
    data, with the likely cause; None otherwise.

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> src = {'encoder.w': torch.zeros(3), 'decoder.w': torch.zeros(4)}
        >>> plan = plan_load(torch.nn.Linear(2, 5), src)
        >>> print(little_loaded(plan))
        0 of 2 model tensors loaded: no checkpoint key found a place (the checkpoint looks like a different architecture); see `python -m torch_liberator map`
    """
    n_model = len(plan.model_keys)
    n_set = n_model - len(plan.self_unset)
    if n_model == 0 or 2 * n_set >= n_model and n_set > 0:
        return None
    head = f'{n_set} of {n_model} model tensors loaded: '
    n_unset = n_model - n_set
    n_src = len(plan.entries)
    paired = [e for e in plan.entries if e.dst_key is not None]
    refused = [e for e in paired if not e.loads]
    if n_src == 0:
        cause = 'the checkpoint holds no tensors'
    elif refused and 2 * len(refused) >= n_unset:
        cause = (f'{len(refused)} matched pairs were not loaded (e.g. '
                 f'{refused[0].src_key!r}: {_short(refused[0].reason)})')
    elif plan.ambiguous and 2 * len(plan.ambiguous) >= n_unset:
        cause = (f'{len(plan.ambiguous)} checkpoint keys are ambiguous and '
                 'were left out; give their pairs in rename=')
    elif not paired:
        cause = ('no checkpoint key found a place (the checkpoint looks like '
                 'a different architecture)')
    elif 2 * n_src < n_model:
        cause = (f'the checkpoint has only {n_src} tensors (a part of this '
                 'model, or another architecture)')
    else:
        cause = (f'{n_src - len(paired)} of {n_src} checkpoint tensors found '
                 'no place (the checkpoint looks like a different '
                 'architecture)')
    return head + cause + '; see `python -m torch_liberator map`'


def print_report(plan: 'LoadPlan', info: Dict, verbose: int,
                 leftover: object = None,
                 n_inits: int = 0,
                 init_failures: Optional[Dict[str, str]] = None) -> None:
    """
    Print what a load did, as much as ``verbose`` asks for.

    Args:
        plan (LoadPlan): the plan that was applied.
        info (dict): the ``info`` returned by ``load_partial_state``.
        verbose (int): 1 for a summary, 2 or more for one line per key.
        leftover (str | Callable | None): the ``leftover`` option.
        n_inits (int): how many tensors ``leftover`` initialized.
        init_failures (Dict[str, str] | None): model key -> why ``leftover``
            could not initialize it.

    Example:
        >>> import torch
        >>> from torch_liberator.loadplan import plan_load
        >>> from torch_liberator.report import print_report
        >>> plan = plan_load({'w': torch.zeros(2), 'v': torch.zeros(1)},
        ...                  {'w': torch.zeros(3), 'x': torch.zeros(1)}, association='strict')
        >>> info = {'seen': plan.seen(), 'self_unset': plan.self_unset, 'other_unused': plan.other_unused}
        >>> print_report(plan, info, verbose=2)
          partial_add_some: w -> w (3,) -> (2,) corner
          skipped: x (no matching model key)
          self_unset: v
        load_partial_state(association='strict'): 1 of 2 checkpoint tensors loaded into a model with 2
          full_add=0, partial_add_some=1, partial_add_all=0, skipped=1
          shoved 1: w (3,) -> (2,) corner
          self_unset=1 (v 1)
          other_unused=1 (x 1)
    """
    init_failures = init_failures or {}
    seen = info['seen']
    if verbose >= 2:
        for e in plan.entries:
            if e.loads:
                shapes = ''
                if e.action == 'shove':
                    shapes = f' {e.src_spec.shape} -> {e.dst_spec.shape} {e.policy}'
                print(f'  {e.outcome}: {e.src_key} -> {e.dst_key}{shapes}')
            else:
                print(f'  skipped: {e.src_key} ({e.reason})')
        for key in info['self_unset']:
            print(f'  self_unset: {key}')
        for key, reason in init_failures.items():
            print(f'  leftover could not initialize {key}, left as it '
                  f'was ({reason})')
    loaded = plan.loaded
    warning = little_loaded(plan)
    if warning:
        print(f'warning: {warning}')
    print(f'load_partial_state(association={plan.association!r}): '
          f'{len(loaded)} of {len(plan.entries)} checkpoint tensors loaded '
          f'into a model with {len(plan.model_keys)}')
    shoved = [e for e in loaded if e.action == 'shove']
    if not (info['self_unset'] or info['other_unused'] or shoved):
        print('  perfect fit')
    else:
        print('  ' + ', '.join(f'{name}={len(seen[name])}'
                               for name in SEEN_CATEGORIES))
        if shoved:
            print(f'  shoved {len(shoved)}: ' + ', '.join(
                f'{e.dst_key} {e.src_spec.shape} -> {e.dst_spec.shape} '
                f'{e.policy}' for e in shoved))
        print(f'  self_unset={len(info["self_unset"])} '
              f'{summarize_keys(info["self_unset"])}'.rstrip())
        print(f'  other_unused={len(info["other_unused"])} '
              f'{summarize_keys(info["other_unused"])}'.rstrip())
    for hint in plan.hints:
        print(f'  hint: {hint}')
    if plan.ambiguous:
        print(f'  ambiguous={len(plan.ambiguous)} '
              f'{summarize_keys(list(plan.ambiguous))}: left out; give the '
              'pairs in rename= to load them')
    if callable(leftover):
        name = getattr(leftover, '__name__', type(leftover).__name__)
        line = f'  leftover={name}: initialized {n_inits} tensors'
        if init_failures:
            line += (f', could not initialize {len(init_failures)} (left as '
                     'they were; verbose=2 lists them)')
        print(line)


def summarize_keys(keys: Sequence[str], limit: int = 4) -> str:
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
