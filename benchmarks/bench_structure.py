"""
Scaling of ``association='structure'`` on big synthetic state dicts.

Times ``associate(src, dst, association='structure')`` (keys with shapes, the
public API) on transformer-like key sets of 12 to 10,000 blocks (127 to
100,007 keys), in three series:

* ``named``: the pair of ``bench_cases.make_synthetic_pair`` (the same names
  under a new prefix, another head): name anchors everywhere;
* ``renamed``: every module renamed and every block index shifted (as
  between timm and torchvision): no name agrees, order and shapes decide;
* ``renamed+inserted``: the same with one extra module in the middle of the
  destination: the gaps around it are aligned by dynamic programming, which
  is bounded (``alignment.MAX_CELLS``); what it cannot afford is left out and
  listed as ambiguous, never guessed.

Reports the median time, the keys mapped and ambiguous, the least-squares
slope of log(time) against log(keys) and the slope between the two largest
cases. Targets (issue 8): 100k keys in <= 3 s, slope <= 1.2. Results go to
``<out>/structure.json`` and a reST section to ``<out>/structure.rst``
(``--out``, default ``benchmarks/results``). ``run_benchmarks.py`` runs this
script after its cases and puts the section into ``docs/benchmarks.rst``;
``--write-docs`` replaces that section in the current docs without a full
run.

Usage:
    python benchmarks/bench_structure.py [--repeats 5] [--write-docs]

Example:
    >>> import bench_structure
    >>> src, dst = bench_structure.make_series_pair('renamed', 2)
    >>> len(src), len(dst), list(dst)[3]
    (27, 27, 'trunk.stage.b5.ln_a.weight')
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

import bench_cases
import bench_report

__all__ = ['SERIES', 'main', 'make_series_pair', 'measure']

_HERE = os.path.dirname(os.path.abspath(__file__))
_RESULTS = os.path.join(_HERE, 'results')
_DOCS = os.path.join(os.path.dirname(_HERE), 'docs', 'benchmarks.rst')

#: the synthetic series, in report order
SERIES = ('named', 'renamed', 'renamed+inserted')

#: one word for another, for the renamed series
_RENAME = {'embed': 'stem', 'encoder': 'trunk', 'layers': 'stage',
           'norm1': 'ln_a', 'norm2': 'ln_b', 'attn': 'mix', 'qkv': 'in_proj',
           'proj': 'out', 'mlp': 'ffn', 'fc1': 'up', 'fc2': 'down',
           'norm': 'final_ln', 'head': 'classifier', 'pos': 'pos_table'}


def _renamed_key(key, shift=5):
    parts = key.split('.')
    out = []
    for i, part in enumerate(parts):
        if part.isdigit():
            out.append(f'b{int(part) + shift}')
        elif i == len(parts) - 1 and part in ('weight', 'bias'):
            out.append(part)
        else:
            out.append(_RENAME.get(part, part))
    return '.'.join(out)


def make_series_pair(series, num_blocks):
    """
    The source and destination ``{key: shape}`` of one synthetic case.

    Example:
        >>> import bench_structure
        >>> src, dst = bench_structure.make_series_pair('renamed+inserted', 4)
        >>> len(dst) - len(src), [k for k in dst if 'extra' in k]
        (2, ['trunk.stage.extra.weight', 'trunk.stage.extra.bias'])
    """
    if series not in SERIES:
        raise ValueError(f'series={series!r} is not one of {SERIES}')
    src, dst = bench_cases.make_synthetic_pair(num_blocks)
    if series == 'named':
        return dict(src), dict(dst)
    renamed = [(_renamed_key(key), shape) for key, shape in src]
    if series == 'renamed+inserted':
        width = src[3][1][0]
        middle = 3 + 10 * (num_blocks // 2)
        renamed[middle:middle] = [('trunk.stage.extra.weight', (width, width)),
                                  ('trunk.stage.extra.bias', (width,))]
    return dict(src), dict(renamed)


def measure(series, num_blocks, repeats):
    """
    Time one case: median of ``repeats`` runs after one warm-up run (one run
    for cases over 1 s); returns a JSON-able record.

    Example:
        >>> import bench_structure
        >>> rec = bench_structure.measure('named', 2, repeats=1)
        >>> rec['keys'], rec['mapped'], rec['ambiguous']
        (27, 25, 0)
    """
    from torch_liberator.association import associate
    src, dst = make_series_pair(series, num_blocks)
    samples, cpu = [], []
    result = None
    for run in range(repeats + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = associate(src, dst, association='structure')
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if samples[0] > 1.0 and run == 0:
            break
    if len(samples) > 1:
        samples, cpu = samples[1:], cpu[1:]  # the first run was a warm-up
    return dict(series=series, blocks=num_blocks, keys=len(src),
                median=statistics.median(samples), samples=samples,
                cpu=statistics.median(cpu), mapped=len(result.mapping),
                ambiguous=len(result.ambiguous))


def _write_docs(section, fpath=_DOCS):
    with open(fpath) as file:
        text = file.read()
    begin, end = bench_report.STRUCTURE_BEGIN, bench_report.STRUCTURE_END
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip('\n')
        text = head + section + ('\n' + tail if tail else '')
    else:
        text = text.rstrip('\n') + '\n\n' + section
    with open(fpath, 'w') as file:
        file.write(text)


def main(argv=None):
    """Run the series and write the results (``--help`` for options)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--blocks', type=int, nargs='*',
                        default=list(bench_cases.SYNTHETIC_BLOCKS))
    parser.add_argument('--series', nargs='*', default=list(SERIES))
    parser.add_argument('--out', default=_RESULTS)
    parser.add_argument('--write-docs', action='store_true')
    args = parser.parse_args(argv)
    records = []
    for series in args.series:
        for blocks in args.blocks:
            rec = measure(series, blocks, args.repeats)
            print(f'{series:18s} {rec["keys"]:7d} keys  {rec["median"]:.4f} s '
                  f'(CPU {rec["cpu"]:.4f} s)  '
                  f'mapped {rec["mapped"]}  ambiguous {rec["ambiguous"]}', flush=True)
            records.append(rec)
    results = dict(records=records, loadavg=list(os.getloadavg()),
                   date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'structure.json'), 'w') as file:
        json.dump(results, file, indent=1)
    section = bench_report.render_structure_section(results)
    with open(os.path.join(args.out, 'structure.rst'), 'w') as file:
        file.write(section)
    print(section)
    if args.write_docs:
        _write_docs(section)
    return 0


if __name__ == '__main__':
    sys.exit(main())
