"""
Benchmark suite runner: association, end-to-end ``load_partial_state`` and the
``load_state_dict`` floor, for this checkout and (when installed in its own
folder) the published torch-liberator 0.2.1, side by side; then the
``structure`` scaling series of ``bench_structure.py``.

Each case runs in its own child process (``bench_worker.py``), first for this
checkout, then for 0.2.1 with ``--baseline-dir`` first on ``sys.path``; the
structure series runs in one more child. Results go to ``<out>/full.json``
(or ``quick.json``) and a reST report to ``docs/benchmarks.rst`` (quick runs:
``<out>/quick.rst``).

Usage:
    python benchmarks/run_benchmarks.py --quick
    python benchmarks/run_benchmarks.py --time-limit 30   # -> docs/benchmarks.rst
    python benchmarks/run_benchmarks.py --cases 'resnet*' synth-100
    python benchmarks/run_benchmarks.py --report-only benchmarks/results/full.json

The published package is installed for comparison with::

    pip install --no-deps --target /tmp/tl021 torch-liberator==0.2.1 networkx_algo_common_subtree==0.2.2
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time

import bench_cases
import bench_report
import bench_worker

__all__ = ['main', 'run_case', 'machine_info']

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)
_MCOS = ['mcos/embedding', 'mcos/isomorphism']
_E2E = [f'e2e/{mode}' for mode in bench_worker.E2E_MODES]
_BASELINE_E2E = [f'e2e/{mode}' for mode in bench_worker.BASELINE_E2E_MODES]


def cpu_model():
    """
    The processor's model name (from /proc/cpuinfo where there is one).

    Example:
        >>> import run_benchmarks
        >>> isinstance(run_benchmarks.cpu_model(), str)
        True
    """
    try:
        with open('/proc/cpuinfo') as file:
            for line in file:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def machine_info():
    """
    Describe the machine and the software versions.

    Returns:
        Dict[str, object]

    Example:
        >>> import run_benchmarks
        >>> info = run_benchmarks.machine_info()
        >>> info['cores'] >= 1 and 'torch' in info
        True
    """
    cpu = cpu_model()
    versions = {}
    for dist in ('torch', 'torchvision', 'numpy', 'networkx'):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        commit = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], cwd=_REPO,
            capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    mem_kib = None
    try:
        with open('/proc/meminfo') as file:
            mem_kib = int(file.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        'cpu': cpu, 'cores': os.cpu_count(),
        'cores_usable': len(os.sched_getaffinity(0)),
        'mem_gib': None if mem_kib is None else round(mem_kib / 2 ** 20, 1),
        'python': platform.python_version(), 'platform': platform.platform(),
        'commit': commit,
        'date': datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        'loadavg_start': os.getloadavg(), **versions,
    }


def run_case(case, side, lib_path, measures, repeats, time_limit, threads=1):
    """
    Run one case on one side in a child process.

    Args:
        case (str): case name.
        side (str): ``'ours'`` or ``'baseline'``.
        lib_path (str): folders put first on the child's ``sys.path``.
        measures (List[str]): measure names (``'assoc/*'`` expands in the child).
        repeats (int): timed repeats of each fast call.
        time_limit (float): seconds allowed for one call.
        threads (int): ``torch.set_num_threads`` in the child.

    Returns:
        Dict[str, object]: ``info``, ``measures`` (name -> record), ``done``,
        ``returncode``, ``wall_s`` and, on failure, ``stderr_tail``.
    """
    cmd = [sys.executable, os.path.join(_HERE, 'bench_worker.py'),
           '--case', case, '--side', side, '--lib-path', lib_path,
           '--measures', ','.join(measures), '--repeats', str(repeats),
           '--time-limit', str(time_limit), '--threads', str(threads)]
    # a hard stop in case a call ignores the alarm (e.g. stuck in C code)
    backstop = 300 + time_limit * (len(measures) + 6) * 3
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True,
                              timeout=backstop)
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as err:
        stdout = (err.stdout or b'').decode() if isinstance(err.stdout, bytes) else (err.stdout or '')
        stderr, code = f'killed after the {backstop:.0f} s backstop', None
    out = {'measures': {}, 'returncode': code,
           'wall_s': round(time.perf_counter() - start, 2)}
    for line in stdout.splitlines():
        if not line.startswith(bench_worker.MARK):
            continue
        record = json.loads(line[len(bench_worker.MARK):])
        kind = record.pop('type')
        if kind == 'measure':
            out['measures'][record.pop('measure')] = record
        else:
            out[kind] = record
    if code != 0 or 'done' not in out:
        out['stderr_tail'] = stderr[-2000:]
    lib_file = out.get('info', {}).get('lib_file') or ''
    if not any(lib_file.startswith(os.path.abspath(p) + os.sep)
               for p in lib_path.split(os.pathsep)):
        out['wrong_library'] = (
            f'torch_liberator came from {lib_file!r}, not from {lib_path!r}')
    return out


def _inferred_timeouts(results, case, limit):
    """Baseline measures already over the limit on a smaller synthetic case."""
    if not case.startswith('synth-'):
        return {}
    blocks = int(case.split('-')[1])
    inferred = {}
    for other, entry in results['cases'].items():
        if not other.startswith('synth-') or int(other.split('-')[1]) >= blocks:
            continue
        for name, rec in entry.get('baseline', {}).get('measures', {}).items():
            if 'timeout' in rec:
                inferred[name] = {'timeout': limit, 'inferred_from': other}
    return inferred


def _parse(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='3 repeats, synthetic cases up to 1000 blocks, '
                             '10 s baseline limit; writes quick.json/quick.rst')
    parser.add_argument('--cases', nargs='+', default=None,
                        help=f'names or patterns out of {bench_cases.CASES}')
    parser.add_argument('--baseline-dir', default='/tmp/tl021',
                        help='folder holding the published 0.2.1; '
                             'skipped when missing (default: %(default)s)')
    parser.add_argument('--no-baseline', action='store_true')
    parser.add_argument('--time-limit', type=float, default=None,
                        help='seconds per baseline call (default 30; quick 10)')
    parser.add_argument('--baseline-case-limit', nargs='+', default=[],
                        metavar='CASE=S',
                        help='a longer 0.2.1 limit for some cases, e.g. '
                             'synth-100=120 to see how many keys 0.2.1 maps '
                             'on the ~1k-key pair')
    parser.add_argument('--ours-time-limit', type=float, default=120.0)
    parser.add_argument('--repeats', type=int, default=None,
                        help='timed repeats of fast calls (default 7; quick 3)')
    parser.add_argument('--e2e-max-blocks', type=int, default=10000,
                        help='largest synthetic case also run end-to-end')
    parser.add_argument('--floor-max-blocks', type=int, default=1000,
                        help='largest synthetic case with a floor: torch\'s '
                             'load_state_dict is quadratic in the children of '
                             'one module (> 30 s at 10000 blocks)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads in each child (default 1)')
    parser.add_argument('--ours-path', default=_REPO,
                        help='folder(s) holding the torch_liberator under test')
    parser.add_argument('--out', default=os.path.join(_HERE, 'results'))
    parser.add_argument('--docs', default=None,
                        help='reST report path (default docs/benchmarks.rst; '
                             'quick: <out>/quick.rst)')
    parser.add_argument('--report-only', metavar='JSON', default=None,
                        help='only re-render the report from a results file')
    parser.add_argument('--structure-repeats', type=int, default=None,
                        help='repeats of the structure scaling series '
                             '(bench_structure.py; default 5, quick 3); '
                             '0 skips it')
    return parser.parse_args(argv)


def run_structure_series(repeats, max_blocks, out_dir, lib_path=_REPO):
    """
    Run ``bench_structure.py`` in a child process (``lib_path``, the
    checkout under test, first on its path); returns its results dict, or
    ``{'error': ...}``.
    """
    blocks = [str(b) for b in bench_cases.SYNTHETIC_BLOCKS if b <= max_blocks]
    cmd = [sys.executable, os.path.join(_HERE, 'bench_structure.py'),
           '--repeats', str(repeats), '--out', out_dir, '--blocks', *blocks]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        lib_path.split(os.pathsep) + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {'error': proc.stderr[-2000:]}
    with open(os.path.join(out_dir, 'structure.json')) as file:
        return json.load(file)


def main(argv=None):
    """Run the suite (or re-render a report); returns an exit code."""
    args = _parse(argv)
    label = 'quick' if args.quick else 'full'
    docs = args.docs or (os.path.join(args.out, 'quick.rst') if args.quick
                         else os.path.join(_REPO, 'docs', 'benchmarks.rst'))
    if args.report_only:
        with open(args.report_only) as file:
            results = json.load(file)
        bench_report.write_report(results, docs)
        print(f'wrote {docs}')
        return 0

    repeats = args.repeats or (3 if args.quick else 7)
    limit = args.time_limit or (10.0 if args.quick else 30.0)
    baseline = None
    if not args.no_baseline and os.path.isdir(args.baseline_dir):
        baseline = os.path.abspath(args.baseline_dir)
    cases = bench_cases.select_cases(args.cases, quick=args.quick)
    case_limits = {}
    for item in args.baseline_case_limit:
        name, sep, value = item.partition('=')
        try:
            case_limits[name] = float(value)
        except ValueError:
            raise SystemExit(f'--baseline-case-limit {item!r} is not CASE=SECONDS, '
                             'e.g. synth-100=120') from None
        if not sep or name not in bench_cases.CASES:
            raise SystemExit(f'--baseline-case-limit {item!r}: {name!r} is not '
                             f'one of {bench_cases.CASES}')
    results = {'label': label, 'machine': machine_info(), 'config': {
        'repeats': repeats, 'baseline_time_limit': limit,
        'ours_time_limit': args.ours_time_limit, 'threads': args.threads,
        'ours_path': args.ours_path, 'baseline_dir': baseline,
        'baseline_case_limits': case_limits, 'round_robin': True,
        'e2e_max_blocks': args.e2e_max_blocks,
        'floor_max_blocks': args.floor_max_blocks}, 'cases': {}}
    structure_repeats = (args.structure_repeats if args.structure_repeats is not None
                         else (3 if args.quick else 5))
    os.makedirs(args.out, exist_ok=True)
    json_fpath = os.path.join(args.out, f'{label}.json')

    for case in cases:
        blocks = int(case.split('-')[1]) if case.startswith('synth-') else 0
        tensor_measures = (['floor'] if blocks <= args.floor_max_blocks else [])
        tensor_measures += _E2E if blocks <= args.e2e_max_blocks else []
        entry = results['cases'][case] = {}
        print(f'[{case}] ours ...', flush=True)
        entry['ours'] = run_case(
            case, 'ours', args.ours_path, ['assoc/*'] + _MCOS + tensor_measures,
            repeats, args.ours_time_limit, args.threads)
        if baseline is not None:
            case_limit = case_limits.get(case, limit)
            inferred = {} if case in case_limits else _inferred_timeouts(
                results, case, limit)
            todo = [m for m in _MCOS + tensor_measures if m not in inferred
                    and (not m.startswith('e2e/') or m in _BASELINE_E2E)]
            if todo:
                print(f'[{case}] 0.2.1 ...', flush=True)
                entry['baseline'] = run_case(case, 'baseline', baseline, todo,
                                             repeats, case_limit, args.threads)
            else:  # every measure already timed out on a smaller case
                entry['baseline'] = {'measures': {}, 'not_run': True}
            entry['baseline']['measures'].update(inferred)
        entry['loadavg'] = os.getloadavg()
        print(bench_report.summarize_case(case, entry), flush=True)
        with open(json_fpath + '.tmp', 'w') as file:
            json.dump(results, file, indent=1)

    if structure_repeats > 0:
        print('[structure series] ...', flush=True)
        results['structure'] = run_structure_series(
            structure_repeats, 1000 if args.quick else max(bench_cases.SYNTHETIC_BLOCKS),
            os.path.join(args.out, 'quick-structure' if args.quick else ''),
            args.ours_path)
    results['machine']['loadavg_end'] = os.getloadavg()
    with open(json_fpath, 'w') as file:
        json.dump(results, file, indent=1)
    if os.path.exists(json_fpath + '.tmp'):
        os.remove(json_fpath + '.tmp')
    bench_report.write_report(results, docs)
    print(f'wrote {json_fpath} and {docs}')
    for line in bench_report.check_targets(results):
        print(line['text'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
