"""
Child process of ``run_benchmarks.py``: measure one case on one side.

Each case runs in its own process so that its peak RSS is its own, and so that
the published 0.2.1 (which also imports as ``torch_liberator``) can be put
first on ``sys.path``. Every result is printed as soon as it exists, one JSON
object per line after the :data:`MARK` prefix, so a child that is killed
still reports what it finished.

Measures (names used in the JSON):

* ``floor``: ``dst_model.load_state_dict(state)`` where ``state`` is a cloned
  copy of the destination's own state dict (same size, strict).
* ``assoc/<mode>``: ``associate(src_shapes, dst_shapes, association=mode)``
  (ours only; ``{key: shape}`` in, as ``load_partial_state`` passes them;
  the record keeps the mode ``auto`` chose as ``used``).
* ``mcos/<mode>``: ``maximum_common_ordered_subpaths(src_keys, dst_keys,
  sep='.', mode=mode)``.
* ``e2e/<mode>``: ``load_partial_state(dst_model, src_state,
  association=mode, verbose=0)``, with the peak RSS delta of each call and
  the mode ``info['association']`` names (``used``).

Timing: the first call is a warm-up when it takes under 1 s, followed by
``repeats`` timed calls; a slower first call counts (plus two more when it is
under 5 s). The floor and the end-to-end calls are repeated in round robin
(floor, embedding, isomorphism, structure, auto, floor, ...) so that a
change in the load of the shared machine affects their ratios as little as
possible. Every sample is kept twice: wall time (``samples``) and the
process's CPU time (``cpu_samples``, ``time.process_time``; with one torch
thread it is what the call costs when it has a core). Each call runs under a
``SIGALRM`` time limit; a call that hits it is reported as ``timeout`` and
the measure stops there.

Example:
    >>> import bench_worker
    >>> mem = bench_worker.read_memory_kib()
    >>> mem['VmHWM'] >= mem['VmRSS'] > 0
    True
"""
import argparse
import gc
import hashlib
import json
import os
import re
import signal
import statistics
import sys
import time

__all__ = ['BASELINE_E2E_MODES', 'E2E_MODES', 'MARK', 'main', 'read_memory_kib']

#: prefix of the result lines on stdout
MARK = '@@BENCH@@ '

_DEFAULT_ASSOCIATIONS = (
    'strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism')

#: the end-to-end modes, in round-robin order (0.2.1 has the first two)
E2E_MODES = ('embedding', 'isomorphism', 'structure', 'auto')
BASELINE_E2E_MODES = E2E_MODES[:2]


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so library code cannot swallow it."""


def read_memory_kib():
    """
    Read the resident set size of this process.

    Returns:
        Dict[str, int]: ``VmRSS`` (now) and ``VmHWM`` (peak since start or
        since the last :func:`_reset_peak`), in KiB.
    """
    with open('/proc/self/status') as file:
        text = file.read()
    return {key: int(re.search(key + r':\s+(\d+)', text).group(1))
            for key in ('VmRSS', 'VmHWM')}


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as file:
            file.write('5')
    except OSError:
        return False
    return True


def _emit(record):
    sys.stdout.write(MARK + json.dumps(record) + '\n')
    sys.stdout.flush()


def _on_alarm(signum, frame):
    raise _Timeout()


def _call(fn, limit, track_rss, state):
    """Run ``fn`` once; return ((wall s, CPU s), result, rss delta KiB or None)."""
    gc.collect()
    if track_rss:
        state['peak_kib'] = max(state['peak_kib'], read_memory_kib()['VmHWM'])
        can_reset = _reset_peak()
        rss0 = read_memory_kib()['VmRSS']
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        seconds = (time.perf_counter() - start, time.process_time() - start_cpu)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    delta = None
    if track_rss and can_reset:
        delta = read_memory_kib()['VmHWM'] - rss0
    return seconds, result, delta


class _Spec:
    """One measure: its name, the call, how to summarize its result."""

    def __init__(self, name, fn, summarize, track_rss=False):
        self.name, self.fn, self.summarize = name, fn, summarize
        self.track_rss = track_rss
        self.record = {'type': 'measure', 'measure': name, 'samples': [],
                       'cpu_samples': [], 'rss_delta_kib': []}
        self.result = None
        self.runs_left = 0
        self.last = None

    def run(self, limit, state, keep=True):
        """One call: its wall time, or False once the measure has stopped
        (timeout or error)."""
        try:
            seconds, self.result, delta = _call(
                self.fn, limit, self.track_rss, state)
        except _Timeout:
            self.record['timeout'] = limit
            return False
        except Exception as err:  # report it and go on with the next measure
            self.record['error'] = f'{type(err).__name__}: {err}'[:500]
            return False
        self.last = seconds, delta
        if keep:
            self.keep(seconds, delta)
        return seconds[0]

    def keep(self, seconds, delta):
        self.record['samples'].append(seconds[0])
        self.record['cpu_samples'].append(seconds[1])
        self.record['rss_delta_kib'].append(delta)

    def finish(self):
        record = self.record
        if self.result is not None and 'error' not in record:
            try:
                record.update(self.summarize(self.result))
            except Exception as err:
                record['error'] = f'summary failed: {type(err).__name__}: {err}'
        if record['samples']:
            record['median'] = statistics.median(record['samples'])
            record['cpu_median'] = statistics.median(record['cpu_samples'])
        deltas = [d for d in record.pop('rss_delta_kib') if d is not None]
        if deltas:
            record['rss_delta_kib'] = max(deltas)
        _emit(record)
        self.result = None


def _measure(specs, args, state):
    """
    Time a group of measures with the policy in the module docstring.

    Fast measures of the group (first call under 1 s) are then repeated in
    round robin, so a change in machine load hits all of them alike; slow
    ones are repeated on their own.
    """
    limit = args.time_limit
    active = []
    for spec in specs:
        seconds = spec.run(limit, state, keep=False)
        if seconds is False:
            continue
        if seconds < 1.0:
            spec.runs_left = args.repeats
            active.append(spec)
        else:  # too slow to throw away: the first call counts
            spec.keep(*spec.last)
            more = 2 if (seconds < 5.0 and args.repeats >= 3) else 0
            for _ in range(more):
                if spec.run(limit, state) is False:
                    break
    while active:
        for spec in list(active):
            if spec.run(limit, state) is False or len(spec.record['samples']) >= spec.runs_left:
                active.remove(spec)
    for spec in specs:
        spec.finish()
    gc.collect()


def _pairs_digest(pairs):
    text = '\n'.join(f'{a}\t{b}' for a, b in sorted(pairs))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _summarize_mapping(mapping):
    mapping = dict(mapping)
    return {'mapped': len(mapping),
            'one_to_one': len(set(mapping.values())) == len(mapping),
            'digest': _pairs_digest(mapping.items())}


def _summarize_subpaths(result):
    list1, list2 = result
    out = _summarize_mapping(zip(list1, list2))
    out['one_to_one'] = out['one_to_one'] and len(list1) == len(list2) == out['mapped']
    return out


def _summarize_association(result):
    out = _summarize_mapping(result.mapping)
    out['used'] = result.association
    return out


def _summarize_info(info, num_dst):
    return {'loaded': num_dst - len(info['self_unset']),
            'other_unused': len(info['other_unused']),
            'used': info.get('association')}


def _load_api(side):
    """The calls under test, from whichever ``torch_liberator`` is first on the path."""
    import torch_liberator
    api = {'file': torch_liberator.__file__,
           'version': getattr(torch_liberator, '__version__', None)}
    if side == 'baseline':
        from torch_liberator.initializer import (
            load_partial_state, maximum_common_ordered_subpaths)
        api.update(load_partial_state=load_partial_state,
                   mcos=maximum_common_ordered_subpaths,
                   associate=None, associations=BASELINE_E2E_MODES)
        return api
    for attr, key in [('load_partial_state', 'load_partial_state'),
                      ('maximum_common_ordered_subpaths', 'mcos')]:
        try:
            api[key] = getattr(torch_liberator, attr)
        except (AttributeError, ImportError) as err:
            api[key] = None
            api.setdefault('missing', []).append(f'{attr}: {err}')
    try:
        from torch_liberator.association import associate
    except ImportError as err:
        associate = None
        api.setdefault('missing', []).append(f'associate: {err}')
    api['associate'] = associate
    api['associations'] = getattr(
        torch_liberator, 'ASSOCIATIONS', _DEFAULT_ASSOCIATIONS)
    return api


def _warm_up(api):
    """Import whatever the calls import lazily, on a tiny pair."""
    import torch
    src = torch.nn.Sequential(torch.nn.Linear(2, 2))
    dst = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    keys1, keys2 = list(src.state_dict()), list(dst.state_dict())
    shapes1 = {k: tuple(v.shape) for k, v in src.state_dict().items()}
    shapes2 = {k: tuple(v.shape) for k, v in dst.state_dict().items()}
    for mode in [m for m in E2E_MODES if m in api['associations']]:
        for key, call in [
                ('mcos', lambda f: f(keys1, keys2, sep='.', mode=mode)),
                ('associate', lambda f: f(shapes1, shapes2, association=mode)),
                ('load_partial_state', lambda f: f(
                    dst, src.state_dict(), association=mode, verbose=0))]:
            if key == 'mcos' and mode not in BASELINE_E2E_MODES:
                continue
            if api.get(key) is not None:
                try:
                    call(api[key])
                except Exception:
                    pass  # the real measure reports the error


def _make_spec(name, api, case, side):
    """The :class:`_Spec` of one measure name; None (and a record) if unavailable."""
    kind, _, mode = name.partition('/')
    src_keys, dst_keys = case['src_keys'], case['dst_keys']
    src_shapes, dst_shapes = case['src_shapes'], case['dst_shapes']
    if kind == 'floor':
        model = case['dst_model']
        own = {k: v.clone() for k, v in model.state_dict().items()}
        return _Spec(name, lambda: model.load_state_dict(own),
                     lambda r: {'loaded': len(own)}, track_rss=True)
    fn_key = {'assoc': 'associate', 'mcos': 'mcos',
              'e2e': 'load_partial_state'}[kind]
    func = api.get(fn_key)
    if func is None:
        _emit({'type': 'measure', 'measure': name,
               'error': f'{fn_key} is unavailable on side {side}'})
        return None
    if kind == 'assoc':
        return _Spec(name, lambda: func(src_shapes, dst_shapes, association=mode),
                     _summarize_association)
    if kind == 'mcos':
        return _Spec(name, lambda: func(src_keys, dst_keys, sep='.', mode=mode),
                     _summarize_subpaths)
    model, src_state = case['dst_model'], case['src_state']
    return _Spec(name, lambda: func(model, src_state, association=mode, verbose=0),
                 lambda r: _summarize_info(r, len(dst_keys)), track_rss=True)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--case', required=True)
    parser.add_argument('--side', choices=['ours', 'baseline'], required=True)
    parser.add_argument('--lib-path', required=True,
                        help='dirs (os.pathsep separated) put first on sys.path')
    parser.add_argument('--measures', required=True,
                        help='comma separated, e.g. floor,assoc/*,mcos/embedding')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--time-limit', type=float, default=30.0)
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    """Run the measures of one case; results go to stdout as MARK lines."""
    args = _parse(argv)
    sys.path[0:0] = args.lib_path.split(os.pathsep)
    signal.signal(signal.SIGALRM, _on_alarm)
    import torch
    torch.set_num_threads(args.threads)
    import bench_cases

    api = _load_api(args.side)
    _warm_up(api)
    measures = []
    for name in filter(None, args.measures.split(',')):
        if name == 'assoc/*':
            measures.extend(f'assoc/{mode}' for mode in api['associations'])
        else:
            measures.append(name)
    need_tensors = any(m == 'floor' or m.startswith('e2e/') for m in measures)
    start = time.perf_counter()
    case = bench_cases.build_case(args.case, tensors=need_tensors)
    src_keys, dst_keys = case['src_keys'], case['dst_keys']
    info = {'type': 'info', 'case': args.case, 'side': args.side,
            'lib_file': api['file'], 'lib_version': api['version'],
            'missing': api.get('missing', []),
            'n_src': len(src_keys), 'n_dst': len(dst_keys),
            'build_s': time.perf_counter() - start,
            'torch_threads': torch.get_num_threads()}
    if need_tensors:
        info['src_bytes'] = sum(t.numel() * t.element_size()
                                for t in case['src_state'].values())
        info['dst_bytes'] = sum(t.numel() * t.element_size()
                                for t in case['dst_model'].state_dict().values())
    _emit(info)
    state = {'peak_kib': 0}

    specs = [_make_spec(name, api, case, args.side) for name in measures]
    tensor_group = [s for s in specs if s and s.track_rss]
    for spec in specs:
        if spec and not spec.track_rss:
            _measure([spec], args, state)
    # floor and end-to-end interleaved: their ratios are the targets
    _measure(tensor_group, args, state)
    del specs, tensor_group
    mem = read_memory_kib()
    _emit({'type': 'done',
           'peak_rss_kib': max(state['peak_kib'], mem['VmHWM']),
           'final_rss_kib': mem['VmRSS']})
    return 0


if __name__ == '__main__':
    sys.exit(main())
