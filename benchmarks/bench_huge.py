"""
Huge checkpoints: peak memory and time of loading a ~1 GB checkpoint into a
wrapped model of the same architecture, and what ``map`` reads of a sharded
one, side by side in one run.

The model is a stack of ``Linear(2048, 2048)`` layers (~16 MiB each) sized to
``--gib``; the destination holds it under ``body.`` (a wrapped model, so the
keys differ by a prefix and the association has work to do). Variants, each
in a fresh child process that has built the model (every page of it
resident) before its clock starts:

* ``read-all .pt``: ``model.body.load_state_dict(torch.load(f, weights_only=True))``,
  read everything, then copy (the ~1x memory baseline);
* ``mmap .pt`` (the time reference): the same with ``torch.load(mmap=True)``;
* ``read-all .safetensors``: ``load_state_dict(safetensors.torch.load_file(f))``;
* ``ours .pt`` / ``ours .safetensors``: ``load_partial_state(model, f)``;
* ``ours .pt, 64 MiB batches``: the same with
  ``torch_liberator.sources.READ_BATCH_FRACTION = 0``, so batches are the
  fixed 64 MiB floor (``READ_BATCH_BYTES``) instead of 1/12 of the model:
  what the batch size costs in time;
* ``ours .pt, one batch``: the same with
  ``torch_liberator.sources.READ_BATCH_BYTES`` raised above the checkpoint's
  size (one ``torch.load(mmap=True)`` for all tensors): the other end of the
  time / memory trade-off.

CPU time (user + system, page faults included) is reported beside the wall
time: on a shared machine it counts the work done, not the waits for a core,
and is the steadier of the two.

Peak RSS growth: the child resets its high-water mark
(``/proc/self/clear_refs``) after building the model, and reports ``VmHWM``
after the load minus ``VmRSS`` before it, as a fraction of the model's size
(the largest of the rounds). Times: the median and the best of ``--repeat``
rounds, each against the same statistic of ``mmap .pt``; the variants run
round-robin (one of each per round) on a warm page cache. On a shared,
busy machine the best is the steadier of the two.

``map`` on a sharded copy (``--shards`` safetensors files plus
``model.safetensors.index.json``): the shards are dropped from the page cache
(``posix_fadvise(DONTNEED)``), then a child runs
``plan_load(model_on_meta, index)`` (what ``python -m torch_liberator map``
does) and reports the bytes it read from disk (``read_bytes`` and ``rchar``
of ``/proc/self/io``); for scale, reading every tensor afterwards is
measured the same way.

The files (~2x ``--gib`` at the most at once) are written to ``--dir`` and
deleted at the end. Nothing is asserted; the targets are printed beside the
measures, with the load average (times on a busy machine vary by 2-5x
between rounds: run it on a quiet one).

Usage::

    python benchmarks/bench_huge.py [--gib 1.0] [--repeat 3] [--shards 4]
                                    [--dir /tmp] [--json out.json] [--write-docs]

To reproduce the figures of docs/huge.rst (about 10 minutes on 2 cores,
~2.2 GiB of disk under ``--dir`` and ~3 GiB of memory)::

    python benchmarks/bench_huge.py --gib 1.0 --repeat 5 --json benchmarks/results/huge.json --write-docs

``--write-docs`` replaces the block between the ``bench_huge`` markers in
docs/huge.rst (the table, the verdicts against the targets, the ``map``
figures); the explanations after it are prose to re-read against the new
figures.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

__all__ = ['main']

WIDTH = 2048
VARIANTS = ('read-all .pt', 'mmap .pt', 'read-all .safetensors',
            'ours .pt', 'ours .safetensors', 'ours .pt, 64 MiB batches',
            'ours .pt, one batch')
_BEGIN = '.. bench_huge: begin'
_END = '.. bench_huge: end'


def n_layers(gib):
    """
    How many ``Linear(WIDTH, WIDTH)`` layers make ``gib`` GiB of float32.

    Example:
        >>> n_layers(1.0)
        64
    """
    per_layer = (WIDTH * WIDTH + WIDTH) * 4
    return max(1, round(gib * 2 ** 30 / per_layer))


def build(n, wrapped, device=None):
    """
    The stack of ``n`` layers, as ``layers.*`` or wrapped as ``body.layers.*``.

    Example:
        >>> sorted(build(1, wrapped=True, device='meta').state_dict())
        ['body.layers.0.bias', 'body.layers.0.weight']
    """
    import torch

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(
                torch.nn.Linear(WIDTH, WIDTH, device=device) for _ in range(n))

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = Stack()

    return Wrapped() if wrapped else Stack()


def _status(field):
    with open('/proc/self/status') as file:
        for line in file:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    return 0


def _io():
    with open('/proc/self/io') as file:
        return {line.split(':')[0]: int(line.split(':')[1]) for line in file}


def _drop_cache(paths):
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _child_load(variant, dpath, n):
    import torch
    torch.set_num_threads(1)
    from torch_liberator import load_partial_state
    model = build(n, wrapped=True, device='meta').to_empty(device='cpu')
    with torch.no_grad():
        for value in model.parameters():
            value.fill_(0)  # every page resident before the clock starts
    size = sum(v.numel() * v.element_size() for v in model.parameters())
    pt, st = os.path.join(dpath, 'model.pt'), os.path.join(dpath, 'model.safetensors')
    _warm_up(variant, dpath)
    with open('/proc/self/clear_refs', 'w') as file:
        file.write('5')  # reset VmHWM
    base = _status('VmRSS')
    start, cpu_start = time.perf_counter(), time.process_time()
    if variant == 'read-all .pt':
        model.body.load_state_dict(torch.load(pt, weights_only=True))
    elif variant == 'mmap .pt':
        model.body.load_state_dict(torch.load(pt, mmap=True, weights_only=True))
    elif variant == 'read-all .safetensors':
        from safetensors.torch import load_file
        model.body.load_state_dict(load_file(st))
    elif variant == 'ours .pt':
        info = load_partial_state(model, pt, verbose=0)
    elif variant == 'ours .safetensors':
        info = load_partial_state(model, st, verbose=0)
    elif variant == 'ours .pt, 64 MiB batches':
        from torch_liberator import sources
        sources.READ_BATCH_FRACTION = 0
        info = load_partial_state(model, pt, verbose=0)
    elif variant == 'ours .pt, one batch':
        from torch_liberator import sources
        sources.READ_BATCH_BYTES = 2 * size
        info = load_partial_state(model, pt, verbose=0)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    growth = _status('VmHWM') - base
    if variant.startswith('ours'):
        assert not info['self_unset'] and not info['other_unused'], info
    last = model.body.layers[n - 1].weight
    assert float(last.abs().sum()) > 0, 'nothing was loaded'
    return {'seconds': seconds, 'cpu': cpu, 'growth': growth / size,
            'size': size}


def _warm_up(variant, dpath):
    """Call the variant's functions once on a tiny model (lazy imports,
    first-call costs) before the clock starts."""
    import torch
    from safetensors.torch import load_file, save_file
    from torch_liberator import load_partial_state
    tiny = build(1, wrapped=False, device='meta').to_empty(device='cpu')
    tiny.layers[0] = torch.nn.Linear(2, 2)
    for suffix in ('.pt', '.safetensors'):
        fpath = os.path.join(dpath, f'tiny-{os.getpid()}{suffix}')
        if suffix == '.pt':
            torch.save(tiny.state_dict(), fpath)
            tiny.load_state_dict(torch.load(fpath, mmap=True, weights_only=True))
            tiny.load_state_dict(torch.load(fpath, weights_only=True))
        else:
            save_file(tiny.state_dict(), fpath)
            tiny.load_state_dict(load_file(fpath))
        wrapped = torch.nn.Module()
        wrapped.body = tiny
        load_partial_state(wrapped, fpath, verbose=0)
        os.remove(fpath)


def _read_ahead_kb(path):
    """The readahead window of the device holding ``path`` (KiB), or None."""
    dev = os.stat(path).st_dev
    base = f'/sys/dev/block/{os.major(dev)}:{os.minor(dev)}'
    for cand in (f'{base}/queue/read_ahead_kb', f'{base}/../queue/read_ahead_kb'):
        try:
            with open(cand) as file:
                return int(file.read())
        except (OSError, ValueError):
            continue
    return None


def _child_map(dpath, n):
    from torch_liberator.checkpoint import read_state_dict
    from torch_liberator.loadplan import plan_load
    index = os.path.join(dpath, 'model.safetensors.index.json')
    shards = [os.path.join(dpath, name) for name in os.listdir(dpath)
              if name.endswith('.safetensors')]
    total = sum(os.path.getsize(path) for path in shards)
    import resource
    model = build(n, wrapped=True, device='meta')
    plan_load(build(1, wrapped=True, device='meta'),
              build(1, wrapped=False).state_dict())  # lazy imports
    _drop_cache(shards)
    before, usage = _io(), resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    plan = plan_load(model, index)
    seconds = time.perf_counter() - start
    after, usage_after = _io(), resource.getrusage(resource.RUSAGE_SELF)
    assert plan.counts()['copy'] == 2 * n, plan.counts()
    faults = ((usage_after.ru_minflt - usage.ru_minflt)
              + (usage_after.ru_majflt - usage.ru_majflt))
    _drop_cache(shards)
    io0 = _io()
    state = read_state_dict(index)
    io1 = _io()
    assert len(state) == 2 * n
    return {'seconds': seconds, 'size': total, 'n_shards': len(shards),
            'read_ahead_kb': _read_ahead_kb(index), 'page_faults': faults,
            'read_bytes': after['read_bytes'] - before['read_bytes'],
            'rchar': after['rchar'] - before['rchar'],
            'read_all_read_bytes': io1['read_bytes'] - io0['read_bytes']}


def _run_child(args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, __file__, '--child', *args],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'child {args} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _source_state(n):
    import torch
    torch.manual_seed(0)
    return build(n, wrapped=False).state_dict()


def _write_files(dpath, n):
    import torch
    from safetensors.torch import save_file
    state = _source_state(n)
    torch.save(state, os.path.join(dpath, 'model.pt'))
    save_file(state, os.path.join(dpath, 'model.safetensors'))


def _write_sharded(dpath, n, shards):
    from safetensors.torch import save_file
    state = _source_state(n)
    sharded = os.path.join(dpath, 'sharded')
    os.makedirs(sharded)
    keys = list(state)
    weight_map = {}
    for i in range(shards):
        part = keys[i * len(keys) // shards:(i + 1) * len(keys) // shards]
        name = f'model-{i + 1:05d}-of-{shards:05d}.safetensors'
        save_file({k: state[k] for k in part}, os.path.join(sharded, name))
        weight_map.update(dict.fromkeys(part, name))
    with open(os.path.join(sharded, 'model.safetensors.index.json'), 'w') as file:
        json.dump({'metadata': {}, 'weight_map': weight_map}, file)
    return sharded


def _warm(dpath):
    for name in ('model.pt', 'model.safetensors'):
        with open(os.path.join(dpath, name), 'rb') as file:
            while file.read(2 ** 24):
                pass


def report(results):
    """
    The reST block of a run: what was run, the table, the verdicts against
    the targets and what ``map`` read.

    Example:
        >>> runs = {v: [{'seconds': 2.0 if v.startswith('ours .pt') else 1.0,
        ...              'cpu': 1.5 if v.startswith('ours .pt') else 1.0,
        ...              'growth': 0.08 if v.startswith('ours') else 1.0,
        ...              'size': 2 ** 30}] for v in VARIANTS}
        >>> mapped = {'seconds': 0.03, 'size': 2 ** 30, 'rchar': 10, 'page_faults': 5,
        ...           'read_bytes': 2 ** 25, 'read_ahead_kb': 8192,
        ...           'read_all_read_bytes': 2 ** 30}
        >>> text = report({'n_layers': 64, 'size': 2 ** 30, 'repeat': 1, 'runs': runs,
        ...                'map': mapped, 'when': 'now', 'load': (1.0, 2.0), 'shards': 4})
        >>> print('\\n'.join(line for line in text.splitlines() if line.startswith('* ')))
        * memory: met for ``.pt`` (0.08x) and for ``.safetensors`` (0.08x).
        * time from ``.pt``: **NOT met**, 2.00x (median) / 2.00x (best); CPU time 1.50x.
        * time from ``.safetensors``: met, 1.00x (median) / 1.00x (best); CPU time 1.00x.
    """
    runs, mapped = results['runs'], results['map']
    ref = statistics.median(r['seconds'] for r in runs['mmap .pt'])
    ref_min = min(r['seconds'] for r in runs['mmap .pt'])
    ref_cpu = statistics.median(r['cpu'] for r in runs['mmap .pt'])
    rows, table = [], {}
    for variant in VARIANTS:
        seconds = statistics.median(r['seconds'] for r in runs[variant])
        best = min(r['seconds'] for r in runs[variant])
        cpu = statistics.median(r['cpu'] for r in runs[variant])
        growth = max(r['growth'] for r in runs[variant])
        table[variant] = {'seconds': seconds, 'ratio': seconds / ref,
                          'best': best, 'best_ratio': best / ref_min,
                          'cpu': cpu, 'cpu_ratio': cpu / ref_cpu,
                          'growth': growth}
        name = variant.replace('.pt', '``.pt``').replace(
            '.safetensors', '``.safetensors``')
        if variant == 'mmap .pt':
            name += ' (reference)'
        rows.append([name, f'{seconds:.2f}', f'{seconds / ref:.2f}',
                     f'{best:.2f}', f'{best / ref_min:.2f}', f'{cpu:.2f}',
                     f'{cpu / ref_cpu:.2f}', f'{growth:.2f}x'])
    head = ['variant', 'median s', 'x mmap', 'best s', 'x mmap',
            'CPU s', 'x mmap', 'peak RSS growth']
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    rule = '  '.join('=' * w for w in widths)
    lines = [rule, '  '.join(h.ljust(w) for h, w in zip(head, widths)), rule]
    lines += ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
              for r in rows]
    lines.append(rule)
    load = results['load']

    def verdict(*ratios, bound=1.2):  # met only if every statistic is
        if all(ratio <= bound for ratio in ratios):
            return 'met'
        if all(ratio > bound for ratio in ratios):
            return '**NOT met**'
        return '**not shown to be met**'
    ours_pt, ours_st = table['ours .pt'], table['ours .safetensors']
    text = [
        f'Run of {results["when"]} ({results["repeat"]} rounds; load average '
        f'{load[0]:.1f} at the start and {load[1]:.1f} at the end). '
        f'{results["n_layers"]} x ``Linear({WIDTH}, {WIDTH})`` = '
        f'{results["size"] / 2 ** 30:.2f} GiB float32, loaded into the same '
        'layers wrapped under ``body.``.',
        '', *lines, '',
        'Against the targets (peak RSS growth <= 0.1x of the model, time <= '
        '1.2x of ``load_state_dict`` from an mmapped file):', '',
        f'* memory: {verdict(ours_pt["growth"], ours_st["growth"], bound=0.1)} '
        f'for ``.pt`` ({ours_pt["growth"]:.2f}x) '
        f'and for ``.safetensors`` ({ours_st["growth"]:.2f}x).',
    ]
    for name, row in (('.pt', ours_pt), ('.safetensors', ours_st)):
        text.append(
            f'* time from ``{name}``: '
            f'{verdict(row["ratio"], row["best_ratio"])}, '
            f'{row["ratio"]:.2f}x (median) / {row["best_ratio"]:.2f}x (best); '
            f'CPU time {row["cpu_ratio"]:.2f}x.')
    text += [
        '',
        f'``map`` on the same checkpoint in {results["shards"]} shards, after '
        'dropping the shards from the page cache '
        '(``posix_fadvise(DONTNEED)``), running what ``map`` runs '
        f'(:func:`torch_liberator.plan_load` on the index): '
        f'{mapped["seconds"]:.2f} s; the process asked for '
        f'{mapped["rchar"]:,} bytes with ``read()`` and took '
        f'{mapped["page_faults"]:,} page faults (the headers, read through '
        f"``safe_open``'s mapping); the disk delivered "
        f'{mapped["read_bytes"] / 2 ** 20:,.0f} MiB (the readahead window, '
        f'``read_ahead_kb`` = {mapped["read_ahead_kb"]}, around each header), '
        f'against {mapped["read_all_read_bytes"] / 2 ** 20:,.0f} MiB when '
        'every tensor is read.',
    ]
    return '\n'.join(text)


def write_docs(block):
    """
    Replace the block between the ``bench_huge`` markers in docs/huge.rst.

    Example:
        >>> # xdoctest: +SKIP
        >>> write_docs('text')
    """
    fpath = REPO / 'docs' / 'huge.rst'
    text = fpath.read_text()
    begin = text.index(_BEGIN) + len(_BEGIN)
    end = text.index(_END)
    fpath.write_text(text[:begin] + '\n\n' + block + '\n\n' + text[end:])


def main(argv=None):
    """Run the benchmark; print the report; return the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gib', type=float, default=1.0,
                        help='checkpoint size in GiB (default 1.0)')
    parser.add_argument('--repeat', type=int, default=3,
                        help='rounds of every variant (default 3)')
    parser.add_argument('--shards', type=int, default=4,
                        help='shards of the copy that map reads (default 4)')
    parser.add_argument('--dir', default=tempfile.gettempdir(),
                        help='where the files are written (and deleted)')
    parser.add_argument('--json', default=None,
                        help='write every measure here')
    parser.add_argument('--write-docs', action='store_true',
                        help='replace the bench_huge block of docs/huge.rst')
    parser.add_argument('--child', nargs='+', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, dpath, n = args.child[0], args.child[1], int(args.child[2])
        result = _child_map(dpath, n) if kind == 'map' else _child_load(kind, dpath, n)
        print(json.dumps(result))
        return result

    n = n_layers(args.gib)
    when = datetime.datetime.now(datetime.timezone.utc).strftime(
        '%H:%M UTC, %b %d').replace(' 0', ' ')
    load_start = os.getloadavg()[0]
    dpath = tempfile.mkdtemp(prefix='bench_huge_', dir=args.dir)
    try:
        _write_files(dpath, n)
        _warm(dpath)
        runs = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeat):
            for variant in VARIANTS:
                runs[variant].append(_run_child([variant, dpath, str(n)]))
        for name in ('model.pt', 'model.safetensors'):
            os.remove(os.path.join(dpath, name))  # keep the disk use down
        sharded = _write_sharded(dpath, n, args.shards)
        mapped = _run_child(['map', sharded, str(n)])
    finally:
        shutil.rmtree(dpath, ignore_errors=True)

    results = {'n_layers': n, 'size': runs['mmap .pt'][0]['size'],
               'repeat': args.repeat, 'shards': args.shards, 'when': when,
               'load': (load_start, os.getloadavg()[0]), 'runs': runs,
               'map': mapped}
    block = report(results)
    print(block)
    if args.json:
        with open(args.json, 'w') as file:
            json.dump(results, file, indent=2)
    if args.write_docs:
        write_docs(block)
    return results


if __name__ == '__main__':
    main()
