"""
Tests of torch_liberator.report: keys fold into patterns that expand back to
exactly the keys, the plan table reads back to exactly the plan, and it stays
short on real models.
"""
import re

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Embedder, make_mlp
from torch_liberator.loadplan import plan_load
from torch_liberator.report import fold_keys, format_plan


def expand(pattern):
    """All keys a folded pattern stands for, in order."""
    match = re.search(r'\{([^{}]*)\}', pattern)
    if match is None:
        return [pattern]
    items = []
    for part in match.group(1).split(','):
        lo, dots, hi = part.partition('..')
        if dots and lo.isdigit() and hi.isdigit():
            items.extend(str(n) for n in range(int(lo), int(hi) + 1))
        else:
            items.append(part)
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [key for item in items for key in expand(head + item + tail)]


def read_table(text):
    """The table of format_plan back as sorted (src, dst, action) triples,
    plus the counts line."""
    lines = text.splitlines()
    assert lines[0].split() == ['checkpoint', '->', 'model', 'action', 'n']
    triples, prefix = [], None
    end = next(i for i, line in enumerate(lines) if line.startswith('copy '))
    body = lines[1:end]
    for line in body:
        cells = re.split(r'\s{2,}', line.strip())
        if len(cells) == 1:  # a block header 'A* -> B*'
            src, dst = cells[0].split(' -> ')
            prefix = (src[:-1], dst[:-1])
            continue
        name, action, count = cells[:3]
        if line.startswith('  '):
            keys = expand(name)
            pairs = [(prefix[0] + k, prefix[1] + k) for k in keys]
        else:
            prefix = None
            src, dst = name.split(' -> ')
            srcs = expand(src) if src != '-' else None
            dsts = expand(dst) if dst != '-' else None
            n = len(srcs or dsts)
            pairs = list(zip(srcs or [None] * n, dsts or [None] * n))
        assert len(pairs) == int(count), line
        triples.extend((s, d, action) for s, d in pairs)
    return sorted(triples, key=str), lines[end:end + 2]


def plan_triples(plan):
    triples = [(e.src_key, e.dst_key, e.action) for e in plan.entries]
    triples += [(None, key, 'unset') for key in plan.self_unset]
    return sorted(triples, key=str)


# --- folding ----------------------------------------------------------------

def test_fold_keys_of_resnet50_expand_back_exactly(resnet50):
    keys = list(resnet50.state_dict())
    folded = fold_keys(keys)
    assert len(folded) <= 12
    expanded = [key for pattern, count in folded for key in expand(pattern)]
    assert sorted(expanded) == sorted(keys)
    for pattern, count in folded:
        assert len(expand(pattern)) == count


def test_numbers_with_leading_zeros_stay_text():
    assert fold_keys(['blk01.w', 'blk02.w']) == [('blk01.w', 1), ('blk02.w', 1)]
    assert fold_keys(['b0.w', 'b1.w', 'b2.w', 'b5.w']) == [('b{0..2,5}.w', 4)]


_component = st.one_of(
    st.sampled_from(['conv', 'bn', 'layer', 'fc', 'weight', 'bias']),
    st.integers(0, 12).map(str),
    st.tuples(st.sampled_from(['conv', 'layer', 'blk']), st.integers(0, 4)).map(
        lambda t: f'{t[0]}{t[1]}'))
_keys = st.lists(st.lists(_component, min_size=1, max_size=4).map('.'.join),
                 min_size=1, max_size=40, unique=True)


@settings(max_examples=150, deadline=None)
@given(_keys)
def test_fold_keys_expand_back_to_exactly_the_keys(keys):
    folded = fold_keys(keys)
    expanded = [key for pattern, _ in folded for key in expand(pattern)]
    assert sorted(expanded) == sorted(keys)
    assert sum(count for _, count in folded) == len(keys)


# --- the table ----------------------------------------------------------------

def test_table_reads_back_to_the_plan_on_a_detector(resnet50, faster_rcnn_plain):
    plan = plan_load(faster_rcnn_plain, resnet50.state_dict(),
                     association='isomorphism')
    text = format_plan(plan)
    triples, counts = read_table(text)
    assert triples == plan_triples(plan)
    assert counts == ['copy 318, shove 0, skip 2 of 320 checkpoint tensors',
                      "318 of 348 model tensors set, 30 unset; "
                      "association='isomorphism'"]
    lines = text.splitlines()
    assert len(lines) <= 25  # 320 + 348 keys on one screen
    # the columns fit a terminal; a skip's reason may run past them
    assert max(len(line.split('  no matching')[0]) for line in lines) <= 100
    assert lines[1] == '* -> backbone.body.*'
    assert lines[2].split() == ['conv1.weight', 'copy', '1']


def test_table_reads_back_with_shoves_skips_and_renames():
    src = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)],
                              torch.nn.Linear(4, 9)).state_dict()
    src['aux.w'] = torch.zeros(5)
    dst = Embedder(torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)],
                                       torch.nn.Linear(4, 2)))
    plan = plan_load(dst, src, rename={'aux.w': 'extra.bias'},
                     association='isomorphism')
    text = format_plan(plan)
    triples, counts = read_table(text)
    assert triples == plan_triples(plan)
    assert counts == ['copy 6, shove 3, skip 0 of 9 checkpoint tensors',
                      "9 of 10 model tensors set, 1 unset; "
                      "association='isomorphism'"]
    assert ('aux.w -> extra.bias     shove   1  (5,) -> (1,) corner (rename)'
            in text.splitlines())


def test_plan_str_is_the_table():
    plan = plan_load(make_mlp(), make_mlp().state_dict(),
                     association='isomorphism')
    assert str(plan) == format_plan(plan)
    assert str(plan).splitlines()[1:] == [
        '{0,2}.{weight,bias} -> {0,2}.{weight,bias}  copy    4',
        'copy 4, shove 0, skip 0 of 4 checkpoint tensors',
        "4 of 4 model tensors set, 0 unset; association='isomorphism'"]


@settings(max_examples=60, deadline=None)
@given(_keys, st.data())
def test_table_reads_back_to_the_plan_for_random_keys(keys, data):
    from torch_liberator.shapes import TensorSpec
    from torch_liberator.tensorsource import SpecSource
    kept = data.draw(st.lists(st.sampled_from(keys), unique=True))
    extra = data.draw(st.lists(_keys.map(lambda ks: ks[0]), max_size=3))
    dst = {f'm.{key}': TensorSpec((2,)) for key in kept}
    dst.update({f'x.{key}': TensorSpec((3,)) for key in extra})
    src = SpecSource({key: TensorSpec((2,) if i % 3 else (4,))
                      for i, key in enumerate(keys)})
    plan = plan_load(dst, src, association='strict', rename={'^': 'm.'})
    triples, counts = read_table(format_plan(plan))
    assert triples == plan_triples(plan)
