"""
Where do the tensors land? Association accuracy on the corpus of real pairs.

For every pair of :mod:`corpus_pairs` and every association mode, this loads
a stamped source into the destination and judges by values
(:mod:`corpus`): precision (correct / loaded) and recall (correct / truth),
for this checkout and for the published torch-liberator 0.2.1 as a black box.
Each side runs in its own child process with its library first on
``sys.path`` (the two at once); 0.2.1 gets a time limit per load (shown as
``> N s``).

Run::

    python benchmarks/accuracy.py --baseline-dir /tmp/tl021 --rst docs/accuracy.rst
    python benchmarks/accuracy.py --fast --no-baseline          # the fast pairs only
    python benchmarks/accuracy.py --pairs 'resnet18-*' --modes embedding

The modes are ``strict``, ``module-hack``, ``prefix-hack``, ``embedding``,
``isomorphism`` and any of ``structure``, ``auto`` that this checkout's
``torch_liberator.association.ASSOCIATIONS`` holds. Every score (with the
first wrong and missing keys) is kept in ``--json``.

Example:
    >>> from accuracy import format_cell
    >>> format_cell({'correct': 42, 'wrong': 18, 'missing': 78, 'expected': 120,
    ...              'precision': 0.7, 'recall': 0.35, 'error': ''})
    '0.700/0.35'
    >>> format_cell({'correct': 120, 'wrong': 0, 'missing': 0, 'expected': 120,
    ...              'precision': 1.0, 'recall': 1.0, 'error': ''})
    '1/1'
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

import corpus_pairs

__all__ = ['format_cell', 'main', 'write_rst']

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
#: the modes judged, in report order (those the library under test offers)
MODES = ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism', 'structure', 'auto')
#: the modes of the published 0.2.1
BASELINE_MODES = MODES[:5]


def _child(lib_dir, names, modes, out_fpath, time_limit):
    """Judge in this process with ``lib_dir`` first on sys.path; one JSON line per score."""
    sys.path.insert(0, lib_dir)
    import torch
    torch.set_num_threads(1)
    import torch_liberator
    where = os.path.abspath(torch_liberator.__file__)
    if not where.startswith(os.path.abspath(lib_dir) + os.sep):
        raise RuntimeError(f'imported {where}, not the torch_liberator under {lib_dir}')
    import corpus
    try:
        from torch_liberator.association import ASSOCIATIONS
        modes = [m for m in modes if m in ASSOCIATIONS]
    except ImportError:  # 0.2.1
        pass

    def load(model, state, association):
        return torch_liberator.load_partial_state(model, state, association=association, verbose=0)

    with open(out_fpath, 'w') as file:
        file.write(json.dumps({'library': where, 'version': torch_liberator.__version__,
                               'modes': list(modes)}) + '\n')
        file.flush()

        def keep(score):
            file.write(json.dumps(score.as_dict()) + '\n')
            file.flush()
            print(corpus.format_table([score]).split('\n')[1], flush=True)
        corpus.run(names, modes, load=load, time_limit=time_limit, progress=keep)


def _start_side(lib_dir, names, modes, out_fpath, time_limit):
    cmd = [sys.executable, os.path.abspath(__file__), '--child', lib_dir, out_fpath,
           '--time-limit', str(time_limit or 0), '--pairs', *names, '--modes', *modes]
    env = dict(os.environ, PYTHONPATH=HERE)  # only the corpus; the library comes first in the child
    return subprocess.Popen(cmd, env=env, cwd=HERE)


def _read_side(out_fpath):
    with open(out_fpath) as file:
        head, *rows = [json.loads(line) for line in file]
    return head, {(r['pair'], r['association']): r for r in rows}


def _floor(value, digits):
    return f'{math.floor(value * 10 ** digits) / 10 ** digits:.{digits}f}'


def format_cell(score: dict | None) -> str:
    """
    ``precision/recall`` of one score; ``1`` only when exactly right (never rounded up).

    Timeouts and build failures show their message; a load that raised gets ``(error)``.
    """
    if score is None:
        return ''
    if score['error'].startswith(('timeout', 'build')):
        return score['error'].replace('timeout ', '')
    precision = '1' if score['wrong'] == 0 else _floor(score['precision'], 3)
    recall = '1' if score['correct'] == score['expected'] else _floor(score['recall'], 2)
    return f'{precision}/{recall}' + (' (error)' if score['error'] else '')


def _summary(scores, modes, names):
    """Per mode: pairs with a wrong tensor, wrong tensors, mean recall (all pairs, the
    pairs of one naming, the pairs across namings)."""
    rows = []
    for mode in modes:
        got = [scores[n, mode] for n in names if (n, mode) in scores
               and not scores[n, mode]['error'].startswith(('timeout', 'build'))]
        if not got:
            continue
        same = [s['recall'] for s in got if not corpus_pairs.PAIRS[s['pair']].cross_naming]
        cross = [s['recall'] for s in got if corpus_pairs.PAIRS[s['pair']].cross_naming]
        rows.append([mode, str(len(got)), str(sum(1 for s in got if s['wrong'])),
                     str(sum(s['wrong'] for s in got)),
                     f'{sum(same + cross) / len(got):.3f}',
                     f'{sum(same) / len(same):.3f}' if same else '',
                     f'{sum(cross) / len(cross):.3f}' if cross else ''])
    return rows


def _table(header, rows):
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    rule = '  '.join('=' * w for w in widths)
    line = lambda r: '  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # NOQA: E731
    return [rule, line(header), rule] + [line(r) for r in rows] + [rule, '']


def write_rst(fpath, names, sides, note=''):
    """Write the report page: a summary per mode, then pair x mode for each side."""
    import torch
    lines = [
        'Accuracy on real model pairs',
        '============================',
        '',
        '.. Generated by benchmarks/accuracy.py --rst; do not edit by hand.',
        '',
        'Where the tensors land when a checkpoint is loaded with',
        '``load_partial_state(model, state, association=mode)`` into a model whose',
        'correct correspondence is known (benchmarks/corpus_pairs/: built by',
        'construction from the same module objects, or written by hand across',
        'libraries and checked by equal outputs). Judged by values, never by the',
        'returned report: every source tensor is stamped with distinct values and',
        'each model tensor is read back (benchmarks/corpus.py).',
        '',
        'Each cell is *precision/recall*: precision = correct / loaded, recall =',
        'correct / tensors that belong. ``1`` means exactly right; a precision',
        'below 1 means tensors in wrong places. *cross* marks pairs whose names',
        'differ inside the tree (only a naming-tolerant mode can recover them);',
        'in an *ambiguous* pair the correct answer loads nothing. ``> N s``: the',
        'load was stopped after N seconds. The summary gives the mean recall over',
        'all pairs, then over the pairs of one naming and over the *cross* pairs.',
        'Many pairs are built to be hard (keys sorted, lists cut and renumbered,',
        'equal blocks that only order tells apart), so the mean over all pairs is',
        'lower than a user with an ordinary pair sees.',
        '',
        f'Run on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, '
        f'Python {platform.python_version()}, torch {torch.__version__}, '
        f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. {note}'.rstrip(),
        '',
    ]
    for title, (head, scores) in sides.items():
        modes = [m for m in head['modes'] if any((n, m) in scores for n in names)]
        lines += [title, '-' * len(title), '', f'torch_liberator {head["version"]}.', '']
        lines += _table(['mode', 'pairs', 'pairs with wrong', 'wrong tensors',
                         'mean recall', 'mean recall (one naming)', 'mean recall (cross)'],
                        _summary(scores, modes, names))
        rows = []
        for name in names:
            pair = corpus_pairs.PAIRS[name]
            expected = next((scores[name, m]['expected'] for m in modes if (name, m) in scores), '')
            rows.append([name, 'cross' if pair.cross_naming else '', str(expected)]
                        + [format_cell(scores.get((name, m))) for m in modes])
        lines += _table(['pair', 'naming', 'truth'] + modes, rows)
    with open(fpath, 'w') as file:
        file.write('\n'.join(lines))


def main(argv=None):
    """The command line (``python benchmarks/accuracy.py --help``)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--pairs', nargs='*', default=None, help='glob patterns (default: all)')
    parser.add_argument('--fast', action='store_true', help='only the fast pairs')
    parser.add_argument('--modes', nargs='*', default=list(MODES))
    parser.add_argument('--ours-path', default=REPO, help='folder holding the torch_liberator under test')
    parser.add_argument('--baseline-dir', default='/tmp/tl021',
                        help='folder holding the published torch-liberator 0.2.1')
    parser.add_argument('--no-baseline', action='store_true')
    parser.add_argument('--baseline-json', default=None,
                        help='reuse the 0.2.1 side of an earlier --json file instead of '
                             'running 0.2.1 again (it does not change between runs)')
    parser.add_argument('--time-limit', type=float, default=120,
                        help='seconds per 0.2.1 load (default 120)')
    parser.add_argument('--rst', default=None, help='write the report page here (reST)')
    parser.add_argument('--json', default=os.path.join(HERE, 'results', 'accuracy.json'))
    parser.add_argument('--child', nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child[0], args.pairs, args.modes, args.child[1], args.time_limit or None)
    names = corpus_pairs.select_pairs(args.pairs, fast=True if args.fast else None)
    args.json = os.path.abspath(args.json)  # the children run elsewhere
    start = time.time()
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    jobs = {'This checkout': (args.ours_path, args.modes, None, args.json + '.ours.jsonl')}
    reused = {}
    if args.baseline_json:
        with open(args.baseline_json) as file:
            old = json.load(file)['Published 0.2.1']
        reused['Published 0.2.1'] = (old['head'], {(r['pair'], r['association']): r
                                                   for r in old['scores']})
    elif not args.no_baseline and os.path.isdir(args.baseline_dir):
        jobs['Published 0.2.1'] = (args.baseline_dir, [m for m in args.modes if m in BASELINE_MODES],
                                   args.time_limit, args.json + '.021.jsonl')
    # the two sides run side by side: only where tensors land is compared, not time
    procs = {title: _start_side(lib, names, modes, out, limit)
             for title, (lib, modes, limit, out) in jobs.items()}
    for title, proc in procs.items():
        if proc.wait():
            raise SystemExit(f'{title}: the child failed (exit {proc.returncode})')
    sides = {title: _read_side(job[3]) for title, job in jobs.items()}
    sides.update(reused)
    note = f'Whole run {time.time() - start:.0f} s.'
    commit = subprocess.run(['git', '-C', args.ours_path, 'rev-parse', '--short', 'HEAD'],
                            capture_output=True, text=True).stdout.strip()
    if commit:
        note += f' This checkout: commit {commit}.'
    if reused:
        note += (f' The 0.2.1 side is reused from {os.path.basename(args.baseline_json)}'
                 ' (an earlier run; 0.2.1 does not change).')
    with open(args.json, 'w') as file:
        json.dump({title: {'head': head, 'scores': list(scores.values())}
                   for title, (head, scores) in sides.items()}, file, indent=1)
    for title, (head, scores) in sides.items():
        print(f'\n{title}: pairs with a wrong tensor, per mode')
        for row in _summary(scores, head['modes'], names):
            print('   ', row)
    if args.rst:
        write_rst(args.rst, names, sides, note)
    return 0


if __name__ == '__main__':
    sys.exit(main())
