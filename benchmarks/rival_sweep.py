"""
A systematic sweep of the rival-network family: the model's own network,
renamed, beside a namesake of another depth or width, on either side.

For each torchvision pair (``MODEL``, ``RIVAL``) of one naming scheme and
each combination of: head in the checkpoint or not, head in the model or
not, rival registered first or last, keys sorted (a safetensors listing)
or not, two cases are built from key shapes alone (meta device):

* ``ck``: the checkpoint holds ``MODEL`` renamed (``base.*``) beside
  ``RIVAL`` under its own names (``backbone.*``); the model is ``MODEL``.
* ``mirror``: the checkpoint is ``MODEL``; the model holds it renamed
  beside ``RIVAL`` under the checkpoint's names.

The truth is by construction (each tensor's renamed key), and every tree
mode's mapping must hold no pair outside it: the rival's names are the
model's, the renamed copy is the model's network. Three renaming schemes
(``--scheme``): ``parts`` cuts the longest numbered list in two renamed
parts (``layer3.part.i``, ``layer3.body.i``) and renames item 1 of another
list (``layer2.trunk``); ``children`` is ``nn.Sequential(*model.children())``
(each top-level child named by its index); ``nested`` inserts a level below
each top-level child that holds modules (``layer1.main.0``).

This judges mappings, not loaded values: a mapping of keys is what decides
the values, and the corpus (``accuracy.py``) judges the values.

Run (from the repository root; about 8 minutes per scheme on one core)::

    python benchmarks/rival_sweep.py                       # every pair, scheme 'parts'
    python benchmarks/rival_sweep.py --scheme children resnet50 vgg16

Example:
    >>> from rival_sweep import cut_in_parts
    >>> rename = cut_in_parts(['a.0.w', 'a.1.w', 'a.2.w', 'a.3.w', 'b.0.w', 'b.1.w'])
    >>> [rename(k) for k in ['a.0.w', 'a.3.w', 'b.1.w']]
    ['base.a.part.0.w', 'base.a.body.1.w', 'base.b.trunk.w']
"""
import argparse
import collections
import functools
import sys

import torch
import torchvision.models as tvm

from torch_liberator.association import associate

#: (model, rival): torchvision networks of one naming scheme
PAIRS = [('resnet101', 'resnet50'), ('resnet34', 'resnet18'), ('resnet50', 'resnet101'),
         ('resnet18', 'resnet34'), ('wide_resnet50_2', 'resnet50'), ('resnet50', 'wide_resnet50_2'),
         ('resnext50_32x4d', 'resnet50'), ('densenet169', 'densenet121'),
         ('densenet121', 'densenet169'), ('vgg16', 'vgg11'), ('vgg11', 'vgg16'),
         ('convnext_small', 'convnext_tiny'), ('convnext_tiny', 'convnext_small'),
         ('efficientnet_b1', 'efficientnet_b0'), ('efficientnet_b0', 'efficientnet_b1'),
         ('mobilenet_v3_large', 'mobilenet_v3_small'), ('regnet_y_800mf', 'regnet_y_400mf'),
         ('swin_s', 'swin_t'), ('swin_t', 'swin_s'), ('efficientnet_b2', 'efficientnet_b1')]

#: the top-level names of the pairs' heads
HEADS = ('fc.', 'classifier.', 'head.')

MODES = ['prefix-hack', 'embedding', 'isomorphism', 'structure', 'auto']


@functools.lru_cache(maxsize=None)
def build(name):
    """A torchvision model, built on the meta device where it can be
    (torchvision's RegNets read numbers back while they are built)."""
    try:
        with torch.device('meta'):
            return getattr(tvm, name)()
    except NotImplementedError:
        return getattr(tvm, name)()


def shapes(name):
    """``{key: shape}`` of a torchvision model's state dict."""
    return {k: tuple(v.shape) for k, v in build(name).state_dict().items()}


def cut_in_parts(keys):
    """A renaming (into ``base.*``) that cuts the longest numbered list of
    ``keys`` in two renamed parts at its middle and renames item 1 of the
    longest other list; None when no list has two items."""
    lengths = collections.Counter()
    for key in keys:
        comps = key.split('.')
        for i in range(1, len(comps)):
            if comps[i].isdigit():
                path = '.'.join(comps[:i])
                lengths[path] = max(lengths[path], int(comps[i]) + 1)
    lists = {path: n for path, n in lengths.items() if n >= 2}
    if not lists:
        return None
    longest = max(lists, key=lambda path: (lists[path], -path.count('.')))
    cut = lists[longest] // 2
    others = [path for path in lists if not path.startswith(longest + '.')
              and not longest.startswith(path + '.') and path != longest]
    other = max(others, key=lists.get) if others else None

    def rename(key):
        if key.startswith(longest + '.'):
            i, _, rest = key[len(longest) + 1:].partition('.')
            if i.isdigit():
                i = int(i)
                key = (f'{longest}.part.{i}.{rest}' if i < cut
                       else f'{longest}.body.{i - cut}.{rest}')
        elif other and key.startswith(other + '.1.'):
            key = other + '.trunk.' + key[len(other) + 3:]
        return 'base.' + key
    return rename


def as_children(name):
    """The renaming (into ``base.*``) of ``nn.Sequential(*model.children())``."""
    index = {child: str(i) for i, (child, _) in enumerate(build(name).named_children())}

    def rename(key):
        head, _, rest = key.partition('.')
        return 'base.' + index[head] + ('.' + rest if rest else '')
    return rename


def nested():
    """A renaming (into ``base.*``) that inserts a level (``main``) below
    every top-level child that holds modules (``layer1.0.conv1.weight`` ->
    ``layer1.main.0.conv1.weight``), as a wrapper around each stage does."""
    def rename(key):
        head, _, rest = key.partition('.')
        return 'base.' + (f'{head}.main.{rest}' if '.' in rest else key)
    return rename


def wrong_pairs(src, dst, truth):
    """``[(mode, wrong, mapped, examples)]`` for the modes whose mapping
    holds a pair outside ``truth``."""
    found = []
    for mode in MODES:
        mapping = associate(src, dst, association=mode).mapping
        wrong = {k: v for k, v in mapping.items() if truth.get(k) != v}
        if wrong:
            found.append((mode, len(wrong), len(mapping), list(wrong.items())[:2]))
    return found


def cases(model_name, rival_name, scheme):
    """Yield ``(label, src, dst, truth)`` for one pair."""
    full, rival = shapes(model_name), shapes(rival_name)
    headless = {k: v for k, v in full.items() if not k.startswith(HEADS)}
    rename = (as_children(model_name) if scheme == 'children' else
              nested() if scheme == 'nested' else cut_in_parts(list(full)))
    if rename is None:
        return
    for ck_head, model_head in [(True, False), (False, True), (True, True), (False, False)]:
        both = full if ck_head and model_head else headless
        named = {'backbone.' + k: v for k, v in rival.items()}
        for rival_first in (False, True):
            for sort in (False, True):
                tag = (f'{"+head" if ck_head else "headless"} -> '
                       f'{"+head" if model_head else "headless"}, '
                       f'rival {"first" if rival_first else "last"}'
                       f'{", sorted" if sort else ""}')
                base = {rename(k): v for k, v in (full if ck_head else headless).items()}
                src = {**named, **base} if rival_first else {**base, **named}
                dst = full if model_head else headless
                if sort:
                    src = dict(sorted(src.items()))
                yield (f'ck {model_name} renamed + {rival_name} ({tag})', src, dst,
                       {rename(k): k for k in both})
                src = full if ck_head else headless
                base = {rename(k): v for k, v in (full if model_head else headless).items()}
                dst = {**named, **base} if rival_first else {**base, **named}
                if sort:
                    src, dst = dict(sorted(src.items())), dict(sorted(dst.items()))
                yield (f'mirror {model_name} -> renamed + {rival_name} ({tag})', src, dst,
                       {k: rename(k) for k in both})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('models', nargs='*', help='only the pairs of these models')
    parser.add_argument('--scheme', choices=['parts', 'children', 'nested'], default='parts')
    args = parser.parse_args(argv)
    total = bad = 0
    for model_name, rival_name in PAIRS:
        if args.models and model_name not in args.models:
            continue
        for label, src, dst, truth in cases(model_name, rival_name, args.scheme):
            total += 1
            found = wrong_pairs(src, dst, truth)
            if found:
                bad += 1
                print('WRONG', label, found, flush=True)
    print(f'{total} cases, {bad} with a wrong pair')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
