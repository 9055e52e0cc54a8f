"""
Turn the results of ``run_benchmarks.py`` into text: a one-line summary per
case, the check against the targets (issues 4 and 8), and the reST report
written to ``docs/benchmarks.rst``, including the ``structure`` scaling
section of ``bench_structure.py``.

Example:
    >>> import bench_report
    >>> round(bench_report.log_slope([(10, 1.0), (100, 10.0), (1000, 100.0)]), 3)
    1.0
    >>> bench_report.format_seconds({'median': 0.01234}), bench_report.format_seconds({'timeout': 30})
    ('12.3 ms', '> 30 s')
"""
import math

__all__ = [
    'REGENERATE', 'STRUCTURE_BEGIN', 'STRUCTURE_END', 'check_targets', 'format_seconds',
    'log_slope', 'render_rst', 'render_structure_section', 'summarize_case',
    'write_report',
]

#: the tree problems of ``maximum_common_ordered_subpaths`` (0.2.1 has both)
_MODES = ('embedding', 'isomorphism')
#: end-to-end modes (ours); 0.2.1 runs ``_MODES`` only
_E2E_MODES = ('embedding', 'isomorphism', 'structure', 'auto')
_ASSOCIATIONS = ('strict', 'module-hack', 'prefix-hack', 'embedding',
                 'isomorphism', 'structure', 'auto')
#: modes held to the 100k-keys and slope targets
_SCALED = ('embedding', 'isomorphism', 'structure')
_TARGET_E2E = 1.5

#: the command that regenerates docs/benchmarks.rst (printed on the page)
REGENERATE = 'python benchmarks/run_benchmarks.py --time-limit 30'

#: the markers around the structure section (``bench_structure.py
#: --write-docs`` replaces what lies between them)
STRUCTURE_BEGIN = '.. structure-benchmark-begin'
STRUCTURE_END = '.. structure-benchmark-end'
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


def _ratio(entry, side, name, field='median'):
    num, den = _rec(entry, side, name), _rec(entry, side, 'floor')
    num, den = (num or {}).get(field), (den or {}).get(field)
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
    for mode in _E2E_MODES:
        name = f'e2e/{mode}'
        if _rec(entry, 'ours', name):
            ratio = _ratio(entry, 'ours', name)
            parts.append(f'{mode[:4]} {format_seconds(_rec(entry, "ours", name))}'
                         + (f' ({ratio:.2f}x floor)' if ratio else ''))
    for mode in _MODES:
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
    Compare the results with the targets of issues 4 and 8 (end to end
    within 1.5x of the floor for every end-to-end mode, on medians of wall
    time; the CPU-time ratios are in the detail).

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
    for mode in _E2E_MODES:
        ratios = {c: _ratio(e, 'ours', f'e2e/{mode}') for c, e in tv.items()}
        got = [r for r in ratios.values() if r is not None]
        worst = max(ratios, key=lambda c: ratios[c] or 0) if got else None
        met = (all(r is not None for r in ratios.values()) and max(got) <= _TARGET_E2E) if got else None
        detail = f'medians: worst {ratios[worst]:.2f}x on {worst}' if got else 'no data'
        for label, ratio_of in (
                ('CPU medians', lambda e: _ratio(e, 'ours', f'e2e/{mode}', 'cpu_median')),
                ('fastest samples', lambda e: _best_ratio(e, 'ours', f'e2e/{mode}'))):
            other = {c: ratio_of(e) for c, e in tv.items()}
            other = {c: r for c, r in other.items() if r is not None}
            if other:
                worst_other = max(other, key=other.get)
                detail += f'; {label}: worst {other[worst_other]:.2f}x on {worst_other}'
        add(f'end-to-end {mode} <= {_TARGET_E2E}x floor on every torchvision pair',
            met, detail)
    kib = {}
    for c, e in tv.items():
        for m in _E2E_MODES:
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
    for mode in _SCALED:
        rec = (_rec(big, 'ours', f'assoc/{mode}') if big else None) or {}
        target = f'~100k keys associate ({mode}) in <= {_TARGET_100K_S:g} s'
        if 'median' in rec:
            add(target, rec['median'] <= _TARGET_100K_S,
                f'{rec["median"]:.2f} s on synth-10000')
        elif 'timeout' in rec:
            add(target, False, f'> {rec["timeout"]:g} s (time limit) on synth-10000')
        else:
            add(target, None, rec.get('error', 'no data'))
    for mode in _SCALED:
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
    """This checkout: the floor and every end-to-end mode, side by side."""
    rows = []
    for case, e in results['cases'].items():
        if not any(_rec(e, 'ours', f'e2e/{m}') for m in _E2E_MODES):
            continue
        info = e['ours'].get('info', {})
        row = [case, f'{info.get("n_src")} / {info.get("n_dst")}',
               f'{info.get("src_bytes", 0) / 2 ** 20:.3g}',
               format_seconds(_rec(e, 'ours', 'floor'))]
        for mode in _E2E_MODES:
            ratio = _ratio(e, 'ours', f'e2e/{mode}')
            row.append(format_seconds(_rec(e, 'ours', f'e2e/{mode}'))
                       + (f' ({ratio:.2f}x)' if ratio else ''))
        for ratio_of in (lambda m: _ratio(e, 'ours', f'e2e/{m}', 'cpu_median'),
                         lambda m: _best_ratio(e, 'ours', f'e2e/{m}')):
            row.append(' / '.join('n/a' if r is None else f'{r:.2f}'
                                  for r in map(ratio_of, _E2E_MODES)))
        row.append(' / '.join(str((_rec(e, 'ours', f'e2e/{m}') or {}).get('loaded', 'n/a'))
                              for m in _E2E_MODES))
        row.append((_rec(e, 'ours', 'e2e/auto') or {}).get('used') or 'n/a')
        deltas = [(_rec(e, 'ours', f'e2e/{m}') or {}).get('rss_delta_kib')
                  for m in _E2E_MODES]
        deltas = [d for d in deltas if d is not None]
        row.append(f'{max(deltas) / 1024:.1f}' if deltas else 'n/a')
        rows.append(row)
    header = ['pair', 'keys src / dst', 'ckpt MiB', 'floor'] + list(_E2E_MODES) + [
        'CPU ratio emb / iso / str / auto', 'fastest emb / iso / str / auto',
        'loaded emb / iso / str / auto', 'auto used', 'peak dRSS MiB']
    return header, rows


def _baseline_rows(results):
    """The published 0.2.1 beside this checkout, for the modes both have."""
    rows = []
    for case, e in results['cases'].items():
        if not any(_rec(e, 'baseline', f'e2e/{m}') for m in _MODES):
            continue
        row = [case, format_seconds(_rec(e, 'baseline', 'floor'))]
        for mode in _MODES:
            ratio = _ratio(e, 'baseline', f'e2e/{mode}')
            row.append(format_seconds(_rec(e, 'baseline', f'e2e/{mode}'))
                       + (f' ({ratio:.2f}x)' if ratio else ''))
        row += [_mapped(e, f'e2e/{m}', 'loaded') for m in _MODES]
        rows.append(row)
    header = ['pair', '0.2.1 floor', '0.2.1 embedding', '0.2.1 isomorphism',
              'loaded emb (ours / 0.2.1)', 'loaded iso (ours / 0.2.1)']
    return header, rows


def _load_note(machine, loads=()):
    """One bullet saying whether other work loaded the machine."""
    loads = [machine['loadavg_start'][0], *loads]
    if machine.get('loadavg_end'):
        loads.append(machine['loadavg_end'][0])
    worst, cores = max(loads), machine['cores']
    if worst >= 0.5 * cores:
        return (f'* **the machine was under load**: 1-minute load average up to '
                f'{worst:.2f} on {cores} cores during the run (sampled after each '
                'case): absolute times are inflated and ratios noisy; the CPU-time '
                'ratios are the steadier ones')
    return (f'* the machine was quiet: 1-minute load average at most {worst:.2f} '
            f'on {cores} cores during the run (sampled after each case)')


def render_structure_section(results):
    """
    The reST section of the ``structure`` scaling series
    (``bench_structure.py``), between :data:`STRUCTURE_BEGIN` and
    :data:`STRUCTURE_END`.

    Example:
        >>> import bench_report
        >>> recs = [dict(series='named', blocks=b, keys=10 * b + 7, median=t,
        ...              cpu=t, mapped=10 * b + 5, ambiguous=0)
        ...         for b, t in [(10, 0.001), (100, 0.01)]]
        >>> text = bench_report.render_structure_section(
        ...     dict(records=recs, date='d', loadavg=[1.0]))
        >>> 'slope' in text
        True
    """
    out = [STRUCTURE_BEGIN, '', '``structure`` association at scale',
           '-----------------------------------', '',
           '``associate(src, dst, association=\'structure\')`` on synthetic '
           'transformer-like ``{key: shape}`` pairs (``benchmarks/bench_structure.py``, '
           f'{results["date"]}, load average {results["loadavg"][0]:.2f} at its end). '
           '``named``: same names under a new prefix; ``renamed``: every module '
           'renamed and every index shifted; ``renamed+inserted``: plus one extra module '
           'in the middle of the destination. Targets: 100k keys in <= 3 s, slope <= 1.2. '
           'The CPU time (``time.process_time``) is shown beside the wall time because '
           'the machine is shared: it is what the solver costs when it has a core.',
           '']
    rows = []
    for rec in results['records']:
        rows.append([rec['series'], str(rec['keys']), format_seconds(rec),
                     format_seconds(dict(median=rec['cpu'])),
                     str(rec['mapped']), str(rec['ambiguous'])])
    out += [_table(['series', 'keys', 'wall time', 'CPU time', 'mapped',
                    'ambiguous'], rows)]
    rows = []
    for series in dict.fromkeys(r['series'] for r in results['records']):
        recs = [r for r in results['records'] if r['series'] == series]
        if len(recs) < 2:
            continue
        for clock, field in (('wall', 'median'), ('CPU', 'cpu')):
            points = [(r['keys'], max(r[field], 1e-6)) for r in recs]
            fit = log_slope(points)
            step = log_slope(points[-2:])
            big = recs[-1]
            if fit > _TARGET_SLOPE or (big['keys'] >= 100000
                                       and big[field] > _TARGET_100K_S):
                verdict = 'NOT met'
            else:
                verdict = 'met' if big['keys'] >= 100000 else 'no 100k case'
            rows.append([series, clock, f'{fit:.2f}', f'{step:.2f}',
                         f'{big["keys"]} keys: {big[field]:.3g} s', verdict])
    out += [_table(['series', 'clock', 'slope (fit)', 'slope (largest step)',
                    'largest case', 'targets'], rows), STRUCTURE_END]
    return '\n'.join(out) + '\n'


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
           'each column means. All ratios come from this one run, made with::', '',
           '    ' + REGENERATE, '',
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
           + ('repeated in round robin (floor, embedding, isomorphism, '
              'structure, auto, ...)'
              if cfg.get('round_robin') else 'timed one measure after the other'),
           _load_note(m, [e['loadavg'][0] for e in results['cases'].values()
                          if 'loadavg' in e])]
    # notes added to the JSON by hand (e.g. an interrupted run)
    out += [f'* {note}' for note in results.get('notes', [])] + ['']
    out += ['Targets', '-------', '']
    out += [f'* {c["text"]}' for c in check_targets(results)] + ['']

    header, rows = _e2e_rows(results)
    out += ['End-to-end ``load_partial_state``', '---------------------------------', '',
            '``load_partial_state(model, state, association=mode, verbose=0)`` '
            'for each mode against the floor (``load_state_dict`` of the '
            'destination\'s own cloned state), in one process, round robin. '
            'Times are medians of wall time; ``(Nx)`` is the ratio to the floor. '
            '"CPU ratio" is the same ratio on medians of the process\'s CPU time, '
            '"fastest" the ratio of the fastest samples: both are disturbed less '
            'by other work on the machine. "auto used" is the mode '
            '``info[\'association\']`` names. Synthetic pairs hold tiny tensors, '
            'so their floor is almost pure Python overhead.', '', _table(header, rows)]
    header, rows = _baseline_rows(results)
    if rows:
        out += ['The published 0.2.1 on the same pairs (its own floor, in its own '
                'process):', '', _table(header, rows)]

    rows = []
    for case, e in results['cases'].items():
        info = e.get('ours', {}).get('info', {})
        row = [case, info.get('n_src', 'n/a')]
        for assoc in _ASSOCIATIONS:
            rec = _rec(e, 'ours', f'assoc/{assoc}')
            row.append(format_seconds(rec) + (f' ({rec["mapped"]})' if rec and 'mapped' in rec else ''))
        rec = _rec(e, 'ours', 'assoc/auto') or {}
        row.append(rec.get('used', 'n/a'))
        rows.append(row)
    out += ['Association alone', '-----------------', '',
            '``associate(src_shapes, dst_shapes, association=mode)`` on '
            '``{key: shape}`` (as ``load_partial_state`` passes them); time '
            '(number of keys mapped); "auto used" is the mode ``auto`` chose.', '',
            _table(['pair', 'src keys'] + list(_ASSOCIATIONS) + ['auto used'], rows)]

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
    # the 'structure' scaling series, run by run_benchmarks.py after the cases
    structure = results.get('structure')
    if structure and 'records' in structure:
        out += ['', render_structure_section(structure).rstrip('\n')]
    elif structure:
        out += ['', f'The structure scaling series failed: {structure.get("error")}']
    return '\n'.join(out) + '\n'


def write_report(results, fpath):
    """Write :func:`render_rst` to ``fpath``."""
    with open(fpath, 'w') as file:
        file.write(render_rst(results))
