"""
Which corpus cells does a change move? The association's mappings on every
corpus pair, for two checkouts, compared cell by cell.

The value judge (``accuracy.py``) builds every model and loads stamped
tensors: about 12 minutes for the corpus in seven modes on two cores. Most
changes to a solver only need to know *which* cells moved, and equal
mappings load equal values. This script builds each pair once and keeps
its keys, shapes, truth and unjudged keys in a JSON cache; then, per
checkout, it runs ``associate(src, dst, association=mode)`` on the cache
(about a minute for 640 pairs x 7 modes) and compares two runs: the cells
whose mapping changed, scored against the truth (correct / wrong pairs),
and the wrong cells per mode. Judge the final answer by values
(``accuracy.py``); use this between edits.

Run (from the repository root)::

    python benchmarks/mapping_diff.py cache /tmp/corpus-keys.json
    python benchmarks/mapping_diff.py run /tmp/corpus-keys.json /tmp/old.json --repo /tmp/old
    python benchmarks/mapping_diff.py run /tmp/corpus-keys.json /tmp/new.json --repo .
    python benchmarks/mapping_diff.py diff /tmp/corpus-keys.json /tmp/old.json /tmp/new.json

``--repo`` is a folder holding the ``torch_liberator`` to run (``/tmp/old``:
a ``git archive`` of another commit); ``--modes`` and ``--pairs`` (glob
patterns) narrow the run.

Example:
    >>> from mapping_diff import score, compare
    >>> case = {'truth': {'a': 'x', 'b': 'y'}, 'unjudged': []}
    >>> score(case, {'a': 'x', 'b': 'z'})
    (1, 1)
    >>> cache = {'p': case}
    >>> old = {'p|embedding': {'a': 'x', 'b': 'z'}}
    >>> new = {'p|embedding': {'a': 'x', 'b': 'y'}}
    >>> changed, wrong = compare(cache, old, new)
    >>> changed
    [('p', 'embedding', (1, 1), (2, 0))]
    >>> wrong
    {'embedding': (0, 0, 2)}
"""
import argparse
import fnmatch
import json
import os
import subprocess
import sys
import time

__all__ = ['build_cache', 'compare', 'main', 'run_mappings', 'score']

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism', 'structure', 'auto')


def build_cache(fpath, patterns=None):
    """Build every corpus pair once; write its keys, shapes, truth and unjudged keys."""
    import torch
    torch.set_num_threads(1)
    import corpus_pairs
    out = {}
    for name in corpus_pairs.select_pairs(patterns):
        try:
            case = corpus_pairs.build_case(name)
        except Exception as err:  # a pair whose library is missing: say so, go on
            print(f'{name}: not built ({err})', flush=True)
            continue
        out[name] = {
            'src': [[k, list(v.shape)] for k, v in case.source.items()],
            'dst': [[k, list(v.shape)] for k, v in case.destination.state_dict().items()],
            'truth': dict(case.truth), 'unjudged': sorted(case.unjudged)}
    with open(fpath, 'w') as file:
        json.dump(out, file)
    return out


def run_mappings(cache, modes, patterns=None):
    """``{'pair|mode': mapping or 'error: ...'}`` for the ``torch_liberator`` first on sys.path."""
    from torch_liberator.association import associate
    out = {}
    for name, case in cache.items():
        if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        src = {k: tuple(s) for k, s in case['src']}
        dst = {k: tuple(s) for k, s in case['dst']}
        for mode in modes:
            try:
                out[f'{name}|{mode}'] = dict(associate(src, dst, association=mode).mapping)
            except Exception as err:
                out[f'{name}|{mode}'] = f'error: {err!r}'[:200]
    return out


def score(case, mapping):
    """``(correct, wrong)`` pairs of ``mapping`` against the case's truth
    (a place whose right content is unknown counts as neither)."""
    if isinstance(mapping, str):
        return mapping
    truth, unjudged = case['truth'], set(case['unjudged'])
    correct = sum(truth.get(s) == d for s, d in mapping.items())
    wrong = sum(truth.get(s) != d and d not in unjudged for s, d in mapping.items())
    return correct, wrong


def compare(cache, old, new):
    """The cells whose mapping differs, ``(pair, mode, old score, new score)``,
    and per mode in ``new``: (cells with a wrong pair, wrong pairs, correct pairs)."""
    changed, wrong = [], {}
    for cell in sorted(new):
        name, mode = cell.rsplit('|', 1)
        after = score(cache[name], new[cell])
        if isinstance(after, tuple):
            cells, bad, good = wrong.get(mode, (0, 0, 0))
            wrong[mode] = (cells + bool(after[1]), bad + after[1], good + after[0])
        if old.get(cell) != new[cell]:
            changed.append((name, mode, score(cache[name], old.get(cell, {})), after))
    return changed, wrong


def main(argv=None):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('cache')
    p.add_argument('cache')
    p.add_argument('--pairs', nargs='*', default=None)
    p = sub.add_parser('run')
    p.add_argument('cache')
    p.add_argument('out')
    p.add_argument('--repo', default=os.path.dirname(HERE))
    p.add_argument('--modes', nargs='*', default=list(MODES))
    p.add_argument('--pairs', nargs='*', default=None)
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    p = sub.add_parser('diff')
    p.add_argument('cache')
    p.add_argument('old')
    p.add_argument('new')
    args = parser.parse_args(argv)
    if args.command == 'cache':
        sys.path.insert(0, HERE)
        print(f'{len(build_cache(args.cache, args.pairs))} pairs cached in {args.cache}')
    elif args.command == 'run' and not args.child:
        # a child with only that checkout first on sys.path (no editable install in the way)
        repo = os.path.abspath(args.repo)
        cmd = [sys.executable, os.path.abspath(__file__), 'run', args.cache, args.out,
               '--repo', repo, '--modes', *args.modes, '--child']
        if args.pairs:
            cmd += ['--pairs', *args.pairs]
        return subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=repo)).returncode
    elif args.command == 'run':
        import torch_liberator
        where = os.path.abspath(torch_liberator.__file__)
        if not where.startswith(os.path.abspath(args.repo) + os.sep):
            raise SystemExit(f'imported {where}, not the torch_liberator under {args.repo}')
        with open(args.cache) as file:
            cache = json.load(file)
        start = time.time()
        out = run_mappings(cache, args.modes, args.pairs)
        with open(args.out, 'w') as file:
            json.dump(out, file)
        print(f'{len(out)} cells in {time.time() - start:.0f} s -> {args.out}')
    else:
        with open(args.cache) as file:
            cache = json.load(file)
        with open(args.old) as file:
            old = json.load(file)
        with open(args.new) as file:
            new = json.load(file)
        changed, wrong = compare(cache, old, new)
        for name, mode, before, after in changed:
            print(f'{name} | {mode}: {before} -> {after}')
        print(f'{len(changed)} of {len(new)} cells changed')
        for mode, (cells, bad, good) in wrong.items():
            print(f'{mode}: {cells} cells with a wrong pair, {bad} wrong, {good} correct')
    return 0


if __name__ == '__main__':
    sys.exit(main())
