"""
Turn the results of ``run_benchmarks.py`` into text: a one-line summary per
case, the check against the targets of issue 4, and the reST report written to
``docs/benchmarks.rst``.

Example:
    >>> import bench_report
    >>> round(bench_report.log_slope([(10, 1.0), (100, 10.0), (1000, 100.0)]), 3)
    1.0
    >>> bench_report.format_seconds({'median': 0.01234}), bench_report.format_seconds({'timeout': 30})
    ('12.3 ms', '> 30 s')
"""
import math
import os

__all__ = [
    'format_seconds', 'log_slope', 'summarize_case', 'check_targets',
    'render_rst', 'write_report',
]

_MODES = ('embedding', 'isomorphism')
_ASSOCIATIONS = ('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism')
_TARGET_E2E = 1.3
_TARGET_SPEEDUP = 150.0
_TARGET_100K_S = 3.0
_TARGET_SLOPE = 1.2


def format_seconds(rec):
    """
    Format a measure record's median time.

    Args:
        rec (dict | None): a record with ``median``, ``timeout`` or ``error``.

    Returns:
        str
    """
    if not rec:
        return 'n/a'
    if 'median' in rec:
        sec = rec['median']
        if sec >= 1:
            return f'{sec:.2f} s'
        ms = sec * 1e3
        return f'{ms:.3g} ms' if ms >= 1 else f'{ms:.2f} ms'
    if 'timeout' in rec:
        return f'> {rec["timeout"]:g} s'
    if 'error' in rec:
        return 'error'
    return 'n/a'


def log_slope(points):
    """
    Least-squares slope of ``log(y)`` against ``log(x)``.

    Args:
        points (List[Tuple[float, float]]): ``(x, y)`` with positive values.

    Returns:
        float | None: None with fewer than two points.
    """
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    var = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / var if var else None


def _rec(entry, side, name):
    return entry.get(side, {}).get('measures', {}).get(name)


def _median(entry, side, name):
    rec = _rec(entry, side, name)
    return rec.get('median') if rec else None


def _ratio(entry, side, name):
    num, den = _median(entry, side, name), _median(entry, side, 'floor')
    return num / den if num is not None and den else None


def _best_ratio(entry, side, name):
    """Ratio of the fastest samples: robust to load from other work."""
    num, den = _rec(entry, side, name), _rec(entry, side, 'floor')
    if not num or not den or not num.get('samples') or not den.get('samples'):
        return None
    return min(num['samples']) / min(den['samples'])


def _speedup(entry, name):
    """(ratio, is_lower_bound) of 0.2.1 time over ours for one measure."""
    ours, base = _median(entry, 'ours', name), _rec(entry, 'baseline', name)
    if not ours or not base:
        return None, False
    if 'median' in base:
        return base['median'] / ours, False
    if 'timeout' in base:
        return base['timeout'] / ours, True
    return None, False


def _fmt_ratio(ratio):
    return f'{ratio:.0f}x' if ratio >= 100 else f'{ratio:.3g}x'


def _fmt_speedup(entry, name):
    ratio, lower = _speedup(entry, name)
    if ratio is None:
        return 'n/a'
    return ('> ' if lower else '') + _fmt_ratio(ratio)


def _mapped(entry, name, key='mapped'):
    ours, base = _rec(entry, 'ours', name) or {}, _rec(entry, 'baseline', name) or {}
    text = f'{ours.get(key, "n/a")} / {base.get(key, "n/a")}'
    if ours.get('digest') and base.get('digest'):
        text += ' (same)' if ours['digest'] == base['digest'] else ' (differs)'
    return text


def _info(entry, key, default=None):
    for side in ('ours', 'baseline'):
        value = entry.get(side, {}).get('info', {}).get(key)
        if value is not None:
            return value
    return default


def summarize_case(case, entry):
    """One line per case for the console while the suite runs."""
    parts = [f'[{case}] keys {_info(entry, "n_src", "?")}->{_info(entry, "n_dst", "?")}']
    if _rec(entry, 'ours', 'floor'):
        parts.append(f'floor {format_seconds(_rec(entry, "ours", "floor"))}')
    for mode in _MODES:
        name = f'e2e/{mode}'
        if _rec(entry, 'ours', name):
            ratio = _ratio(entry, 'ours', name)
            parts.append(f'{mode[:3]} {format_seconds(_rec(entry, "ours", name))}'
                         + (f' ({ratio:.2f}x floor)' if ratio else ''))
        name = f'mcos/{mode}'
        parts.append(f'mcos-{mode[:3]} {format_seconds(_rec(entry, "ours", name))}'
                     f' vs {format_seconds(_rec(entry, "baseline", name))}')
    for side in ('ours', 'baseline'):
        sub = entry.get(side, {})
        if 'stderr_tail' in sub or 'wrong_library' in sub:
            parts.append(f'{side} FAILED: {sub.get("wrong_library") or sub["stderr_tail"][-300:]}')
    return ', '.join(parts)


def _synthetic(results):
    return sorted(((int(c.split('-')[1]), e) for c, e in results['cases'].items()
                   if c.startswith('synth-')), key=lambda t: t[0])


def _series_slopes(results, side, name):
    points = [(e['ours']['info']['n_src'], _median(e, side, name))
              for _, e in _synthetic(results)
              if 'info' in e.get('ours', {}) and _median(e, side, name)]
    full = log_slope(points)
    last = log_slope(points[-2:]) if len(points) >= 2 else None
    return full, last, points


def check_targets(results):
    """
    Compare the results with the targets of issue 4.

    Returns:
        List[Dict]: ``target``, ``met`` (True, False or None when not
        measured) and a ``text`` line.
    """
    checks = []

    def add(target, met, detail):
        word = {True: 'met', False: 'NOT met', None: 'not measured'}[met]
        checks.append({'target': target, 'met': met,
                       'text': f'{target}: {word} ({detail})'})

    tv = {c: e for c, e in results['cases'].items() if not c.startswith('synth-')}
    for mode in _MODES:
        ratios = {c: _ratio(e, 'ours', f'e2e/{mode}') for c, e in tv.items()}
        got = [r for r in ratios.values() if r is not None]
        worst = max(ratios, key=lambda c: ratios[c] or 0) if got else None
        met = (all(r is not None for r in ratios.values()) and max(got) <= _TARGET_E2E) if got else None
        best = {c: _best_ratio(e, 'ours', f'e2e/{mode}') for c, e in tv.items()}
        best = {c: r for c, r in best.items() if r is not None}
        detail = f'medians: worst {ratios[worst]:.2f}x on {worst}' if got else 'no data'
        if best:
            worst_best = max(best, key=best.get)
            detail += (f'; fastest samples: worst {best[worst_best]:.2f}x '
                       f'on {worst_best}')
        add(f'end-to-end {mode} <= {_TARGET_E2E}x floor on every torchvision pair',
            met, detail)
    kib = {}
    for c, e in tv.items():
        for m in _MODES:
            delta = (_rec(e, 'ours', f'e2e/{m}') or {}).get('rss_delta_kib')
            if delta is not None:
                kib[c] = max(kib.get(c, 0), delta)
    fracs = {c: kib[c] * 1024 / tv[c]['ours']['info']['src_bytes']
             for c in kib if kib[c] is not None and tv[c]['ours'].get('info', {}).get('src_bytes')}
    if fracs:
        worst = max(fracs, key=fracs.get)
        add('no second full copy of the checkpoint during load_partial_state',
            fracs[worst] < 1.0,
            f'largest peak RSS delta {fracs[worst]:.1%} of the checkpoint, on {worst}')
    else:
        add('no second full copy of the checkpoint during load_partial_state', None, 'no data')
    synth = dict(_synthetic(results))
    entry = synth.get(100)
    for mode in _MODES:
        name = f'mcos/{mode}'
        ratio, lower = _speedup(entry, name) if entry else (None, False)
        ours, base = (_rec(entry, 'ours', name) or {}, _rec(entry, 'baseline', name) or {}) if entry else ({}, {})
        # mapped counts: on synth-100, else on every synthetic case where
        # both sides finished (the series has the same structure throughout)
        fewer = [f'synth-{n}: {_rec(e, "ours", name)["mapped"]} vs {_rec(e, "baseline", name)["mapped"]}'
                 for n, e in _synthetic(results)
                 if 'mapped' in (_rec(e, 'ours', name) or {})
                 and 'mapped' in (_rec(e, 'baseline', name) or {})
                 and _rec(e, 'ours', name)['mapped'] < _rec(e, 'baseline', name)['mapped']]
        met = None if ratio is None else (ratio >= _TARGET_SPEEDUP and not fewer)
        detail = ('no data' if ratio is None else
                  f'{"> " if lower else ""}{_fmt_ratio(ratio)} on synth-100, mapped '
                  f'{ours.get("mapped", "?")} vs {base.get("mapped", "timed out")}')
        if fewer:
            detail += '; maps fewer keys than 0.2.1 on ' + ', '.join(fewer)
        add(f'maximum_common_ordered_subpaths {mode} >= {_TARGET_SPEEDUP:g}x 0.2.1 '
            'on ~1k keys, mapping at least as many', met, detail)
    big = synth.get(10000)
    for mode in _MODES:
        rec = (_rec(big, 'ours', f'assoc/{mode}') if big else None) or {}
        target = f'~100k keys associate ({mode}) in <= {_TARGET_100K_S:g} s'
        if 'median' in rec:
            add(target, rec['median'] <= _TARGET_100K_S,
                f'{rec["median"]:.2f} s on synth-10000')
        elif 'timeout' in rec:
            add(target, False, f'> {rec["timeout"]:g} s (time limit) on synth-10000')
        else:
            add(target, None, rec.get('error', 'no data'))
    for mode in _MODES:
        full, last, _ = _series_slopes(results, 'ours', f'assoc/{mode}')
        add(f'log-log slope of the synthetic series ({mode}) <= {_TARGET_SLOPE}',
            None if full is None else max(full, last) <= _TARGET_SLOPE,
            'no data' if full is None else f'fit {full:.2f}, largest step {last:.2f}')
    return checks


def _table(header, rows):
    """A reST simple table."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    rule = '  '.join('=' * w for w in widths)
    fmt = lambda r: '  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # NOQA
    return '\n'.join([rule, fmt(header), rule] + [fmt(r) for r in rows] + [rule, ''])


def _e2e_rows(results):
    rows = []
    for case, e in results['cases'].items():
        if not any(_rec(e, 'ours', f'e2e/{m}') for m in _MODES):
            continue
        info = e['ours'].get('info', {})
        row = [case, f'{info.get("n_src")} / {info.get("n_dst")}',
               f'{info.get("src_bytes", 0) / 2 ** 20:.3g}']
        for side in ('ours', 'baseline'):
            row.append(format_seconds(_rec(e, side, 'floor')))
            for mode in _MODES:
                ratio = _ratio(e, side, f'e2e/{mode}')
                row.append(format_seconds(_rec(e, side, f'e2e/{mode}'))
                           + (f' ({ratio:.2f}x)' if ratio else ''))
        best = [_best_ratio(e, 'ours', f'e2e/{m}') for m in _MODES]
        row.append(' / '.join('n/a' if b is None else f'{b:.2f}x' for b in best))
        row += [_mapped(e, f'e2e/{m}', 'loaded') for m in _MODES]
        deltas = [(_rec(e, 'ours', f'e2e/{m}') or {}).get('rss_delta_kib') for m in _MODES]
        row.append(' / '.join('n/a' if d is None else f'{d / 1024:.1f}' for d in deltas))
        rows.append(row)
    header = ['pair', 'keys src / dst', 'ckpt MiB', 'floor', 'embedding', 'isomorphism',
              '0.2.1 floor', '0.2.1 embedding', '0.2.1 isomorphism',
              'fastest emb / iso', 'loaded emb (ours / 0.2.1)', 'loaded iso (ours / 0.2.1)',
              'peak dRSS MiB emb / iso']
    return header, rows


def render_rst(results):
    """
    Render the full reST report.

    Args:
        results (dict): the JSON written by ``run_benchmarks.py``.

    Returns:
        str
    """
    m, cfg = results['machine'], results['config']
    out = ['Benchmarks', '==========', '',
           '.. Generated by benchmarks/run_benchmarks.py; do not edit by hand.', '',
           'Association and partial loading of torch_liberator against the '
           'plain ``load_state_dict`` floor and the published 0.2.1. '
           'See ``benchmarks/README.md`` for how to run the suite and what '
           'each column means. All ratios come from this one run.', '',
           'Machine', '-------', '',
           f'* CPU: {m["cpu"]}, {m["cores"]} cores ({m["cores_usable"]} usable, '
           f'shared with other work; load average {m["loadavg_start"][0]:.2f} at start'
           + (f', {m["loadavg_end"][0]:.2f} at end' if m.get('loadavg_end') else '') + ')',
           f'* memory: {m["mem_gib"]} GiB; Python {m["python"]}; torch {m["torch"]}; '
           f'torchvision {m["torchvision"]}; numpy {m["numpy"]}; networkx {m["networkx"]}',
           f'* date: {m["date"]}; commit {m["commit"]}; run: {results["label"]}',
           f'* medians of {cfg["repeats"]} repeats after a warm-up (calls over 1 s: '
           f'1-3 runs); torch threads {cfg["threads"]}; 0.2.1 limit '
           f'{cfg["baseline_time_limit"]:g} s per call'
           + ('' if cfg.get('baseline_dir') else ' (0.2.1 not installed: not run)')
           + ''.join(f'; 0.2.1 limit on {c}: {s:g} s'
                     for c, s in cfg.get('baseline_case_limits', {}).items()),
           '* floor and end-to-end calls of a case: '
           + ('repeated in round robin (floor, embedding, isomorphism, ...)'
              if cfg.get('round_robin') else 'timed one measure after the other'),
           '']
    out += ['Targets', '-------', '']
    out += [f'* {c["text"]}' for c in check_targets(results)] + ['']

    header, rows = _e2e_rows(results)
    out += ['End-to-end ``load_partial_state``', '---------------------------------', '',
            'Times are medians; ``(Nx)`` is the ratio to the same side\'s floor '
            '(``load_state_dict`` of the destination\'s own cloned state, in the '
            'same process). "fastest" is the ratio of the fastest samples '
            '(ours), which load from other work on the machine disturbs least. '
            'Synthetic pairs hold tiny tensors, so their floor is '
            'almost pure Python overhead.', '', _table(header, rows)]

    rows = []
    for case, e in results['cases'].items():
        info = e.get('ours', {}).get('info', {})
        row = [case, info.get('n_src', 'n/a')]
        for assoc in _ASSOCIATIONS:
            rec = _rec(e, 'ours', f'assoc/{assoc}')
            row.append(format_seconds(rec) + (f' ({rec["mapped"]})' if rec and 'mapped' in rec else ''))
        rows.append(row)
    out += ['Association alone', '-----------------', '',
            '``associate_keys(src_keys, dst_keys, association=mode)`` on keys only; '
            'time (number of keys mapped).', '',
            _table(['pair', 'src keys'] + list(_ASSOCIATIONS), rows)]

    rows = []
    for case, e in results['cases'].items():
        row = [case, _info(e, 'n_src', 'n/a')]
        for mode in _MODES:
            name = f'mcos/{mode}'
            row += [format_seconds(_rec(e, 'ours', name)),
                    format_seconds(_rec(e, 'baseline', name)),
                    _fmt_speedup(e, name), _mapped(e, name)]
        rows.append(row)
    out += ['``maximum_common_ordered_subpaths`` against 0.2.1',
            '--------------------------------------------------', '',
            'Speedup = 0.2.1 time / ours; ``> N s`` means the call hit the time '
            'limit (on a larger synthetic case: inferred from a smaller one). '
            'mapped = pairs returned, ours / 0.2.1, and whether the two '
            'mappings are identical.', '',
            _table(['pair', 'src keys', 'emb ours', 'emb 0.2.1', 'emb speedup',
                    'emb mapped', 'iso ours', 'iso 0.2.1', 'iso speedup',
                    'iso mapped'], rows)]

    rows = []
    names = [('ours', f'assoc/{a}') for a in _ASSOCIATIONS] + [
        (side, f'mcos/{mode}') for side in ('ours', 'baseline') for mode in _MODES]
    for side, name in names:
        full, last, points = _series_slopes(results, side, name)
        if not points:
            continue
        rows.append([('0.2.1 ' if side == 'baseline' else '') + name,
                     'n/a' if full is None else f'{full:.2f}',
                     'n/a' if last is None else f'{last:.2f}',
                     f'{points[-1][0]} keys: {points[-1][1]:.3g} s'])
    out += ['Scaling on the synthetic series', '-------------------------------', '',
            'Slope of log(time) against log(keys) over the synthetic cases '
            '(``synth-N``: N blocks of 10 keys); "largest step" uses the two '
            'largest cases only, where fixed costs matter least.', '',
            _table(['measure', 'slope (fit)', 'slope (largest step)', 'largest case'], rows)]

    rows = []
    for case, e in results['cases'].items():
        row = [case]
        for side in ('ours', 'baseline'):
            done = e.get(side, {}).get('done')
            row.append(f'{done["peak_rss_kib"] / 1024:.0f}' if done else 'n/a')
        for side in ('ours', 'baseline'):
            row.append(f'{e[side]["wall_s"]:.0f}' if 'wall_s' in e.get(side, {}) else 'n/a')
        rows.append(row)
    out += ['Peak memory per case', '--------------------', '',
            'Peak RSS of the child process that ran the case (model building '
            'included), and its wall time.', '',
            _table(['pair', 'peak RSS MiB ours', 'peak RSS MiB 0.2.1',
                    'wall s ours', 'wall s 0.2.1'], rows)]
    # the 'structure' scaling section, from its own run (bench_structure.py)
    structure = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             'results', 'structure.rst')
    if os.path.exists(structure):
        with open(structure) as file:
            out += ['', file.read().rstrip('\n')]
    return '\n'.join(out)


def write_report(results, fpath):
    """Write :func:`render_rst` to ``fpath``."""
    with open(fpath, 'w') as file:
        file.write(render_rst(results))
