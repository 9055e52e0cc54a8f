"""
Judge key association by values on the corpus of real pairs.

The judge never reads the loader's report. It stamps every source tensor
with distinct values (tensor number ``i`` holds random values in
``[BASE + i + 0.25, BASE + i + 0.75)``, an integer buffer such as
``num_batches_tracked`` holds ``BASE + i``; ``BASE = 1024``, far from any
value an initializer writes), fills every destination tensor with ``-1``,
loads, and reads back which source tensor each destination tensor holds.
Values below ``BASE`` are no source's data (the loader's ``leftover``
initializer may write them). Per pair it counts:

* **correct**: the destination tensor holds its true source and nothing
  else: element for element when the shapes agree up to unit dimensions (a
  copy, ``[C]`` <-> ``[C, 1, 1]``); when they differ (a shove, whatever
  block it places), some values and only values of its true source;
* **wrong**: it holds data of any other source tensor, data where the truth
  says nothing belongs, or its true source garbled;
* **missing**: the truth names a source for it and it did not get it.

``precision = correct / (correct + wrong)`` (1.0 when nothing was loaded)
and ``recall = correct / len(truth)`` (1.0 when the truth is empty). The
pairs and their truth live in :mod:`corpus_pairs`.

Run ``python benchmarks/corpus.py [--pairs GLOB ...] [--modes MODE ...]
[--fast] [-v]`` (with ``export PYTHONPATH=$PWD``) to print the table for
this checkout; ``benchmarks/accuracy.py`` runs it beside 0.2.1 and writes
docs/accuracy.rst.

Example:
    >>> import torch
    >>> from corpus import Case, judge_case
    >>> src = torch.nn.Linear(2, 3)
    >>> case = Case(source=src.state_dict(keep_vars=True),
    ...             destination=torch.nn.Sequential(src), truth=None)
    >>> case.truth
    {'weight': '0.weight', 'bias': '0.bias'}
    >>> score = judge_case(case, 'embedding')
    >>> (score.correct, score.wrong, score.missing, score.precision, score.recall)
    (2, 0, 0, 1.0, 1.0)
"""
import argparse
import contextlib
import dataclasses
import signal
import sys
import time
import weakref
from typing import Callable, Mapping

import torch

from corpus_pairs import PAIRS, Case, build_case, select_pairs

__all__ = [
    'BASE',
    'Case',
    'PAIRS',
    'Score',
    'build_case',
    'format_table',
    'judge',
    'judge_case',
    'read_back',
    'run',
    'select_pairs',
    'stamp_source',
    'truth_loader',
]


# ---------------------------------------------------------------------------
# the judge


def stamp_source(source: Mapping) -> dict:
    """
    New tensors like ``source`` whose values name their tensor.

    Tensor number ``i`` (in order) holds values in ``[BASE + i + 0.25,
    BASE + i + 0.75)`` (random, so a permuted copy is caught); integer
    tensors hold ``BASE + i``. Only float32 / float64 hold these exactly.

    Example:
        >>> import torch
        >>> from corpus import BASE, stamp_source
        >>> out = stamp_source({'a': torch.zeros(3), 'b': torch.zeros((), dtype=torch.long)})
        >>> (torch.floor(out['a']) - BASE).tolist(), int(out['b']) - BASE
        ([0.0, 0.0, 0.0], 1)
    """
    gen = torch.Generator().manual_seed(0)
    out = {}
    for index, (key, value) in enumerate(source.items()):
        if value.dtype.is_floating_point:
            if torch.finfo(value.dtype).eps * (BASE + index + 1) > 0.1:
                raise ValueError(f'{key}: {value.dtype} cannot hold tensor number {index} exactly')
            frac = torch.rand(value.shape, generator=gen, dtype=value.dtype)
            out[key] = frac.mul_(0.5).add_(BASE + index + 0.25)
        elif value.dtype in (torch.int32, torch.int64):
            out[key] = torch.full(value.shape, BASE + index, dtype=value.dtype)
        else:
            raise ValueError(f'{key}: cannot stamp a {value.dtype} tensor')
    return out


#: source tensor number ``i`` holds values in ``[BASE + i, BASE + i + 1)``
BASE = 1024

#: case -> its stamped source
_STAMPED = weakref.WeakKeyDictionary()


def _stamp_destination(model):
    with torch.no_grad():
        for value in model.state_dict(keep_vars=True).values():
            value.fill_(-1)


def read_back(value: torch.Tensor) -> set:
    """
    The numbers of the stamped source tensors whose data ``value`` holds.

    Example:
        >>> import torch
        >>> from corpus import BASE, read_back
        >>> sorted(read_back(torch.tensor([-1.0, 0.3, BASE + 3.4, BASE + 3.6, BASE + 7.3])))
        [3, 7]
    """
    flat = value.detach().reshape(-1).cpu()
    if not flat.numel():
        return set()
    low, high = torch.aminmax(flat)
    if high < BASE:
        return set()
    if low < BASE:
        flat = flat[flat >= BASE]
        low = flat.min()
    if int(low) == int(high):  # one source (the usual case): no sort needed
        return {int(low) - BASE}
    ids = torch.unique(flat.floor() if flat.dtype.is_floating_point else flat)
    return set(int(v) - BASE for v in ids.tolist())


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def _holds(value, source):
    """
    ``value`` holds ``source``: element for element when the shapes agree up to
    unit dimensions; when they differ (a shove, whatever the placement
    policy), some data and only values of ``source``.
    """
    value = value.detach().cpu()
    source = source.to(value.dtype)
    if value.shape == source.shape:
        return torch.equal(value, source)
    if _squeezed(value.shape) == _squeezed(source.shape):
        return torch.equal(value.reshape(-1), source.reshape(-1))
    held = value[value >= BASE]
    return held.numel() > 0 and bool(torch.isin(held, source.reshape(-1)).all())


@dataclasses.dataclass
class Score:
    """
    What one association did on one pair, judged by values.

    Example:
        >>> from corpus import Score
        >>> s = Score('p', 'embedding', correct=3, wrong=1, missing=1, expected=4)
        >>> (s.precision, s.recall)
        (0.75, 0.75)
    """
    pair: str
    association: str
    correct: int = 0
    wrong: int = 0
    missing: int = 0
    expected: int = 0
    seconds: float = 0.0
    error: str = ''
    wrong_keys: list = dataclasses.field(default_factory=list)
    missing_keys: list = dataclasses.field(default_factory=list)

    @property
    def precision(self) -> float:
        loaded = self.correct + self.wrong
        return self.correct / loaded if loaded else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.expected if self.expected else 1.0

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.update(precision=self.precision, recall=self.recall)
        return out


def _default_load(model, state, association):
    import torch_liberator
    return torch_liberator.load_partial_state(model, state, association=association, verbose=0)


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    if not seconds:
        yield
        return

    def alarm(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def judge_case(case: Case, association: str, load: Callable | None = None,
               pair: str = '', time_limit: float | None = None,
               keep: int = 20) -> Score:
    """
    Load a stamped copy of ``case.source`` into ``case.destination`` and judge it.

    Args:
        case: a built pair; its destination is overwritten (re-stamped before
            every load, so one case serves several modes).
        association: passed to ``load``.
        load: ``load(model, state, association)``; default
            ``torch_liberator.load_partial_state(model, state,
            association=association, verbose=0)``. Its return value is ignored.
        pair: the name recorded in the score.
        time_limit: seconds (SIGALRM; main thread only); a load that takes
            longer is recorded as ``error='timeout > N s'`` with nothing counted.
        keep: how many wrong / missing keys to record.

    Returns:
        Score: correct, wrong and missing counts, the load time, any error.

    Example:
        >>> import torch
        >>> from corpus import Case, judge_case
        >>> src = torch.nn.Linear(2, 2)
        >>> case = Case(src.state_dict(keep_vars=True), torch.nn.Sequential(src), None)
        >>> def swap(model, state, association):  # a loader that crosses two tensors
        ...     model[0].weight.data[:] = state['bias'][0]
        ...     model[0].bias.data[:] = state['weight'][0]
        >>> s = judge_case(case, 'any', load=swap)
        >>> (s.correct, s.wrong, s.missing)
        (0, 2, 2)
    """
    load = load or _default_load
    if case not in _STAMPED:  # made once per case, reused for every mode
        _STAMPED[case] = stamp_source(case.source)
    stamped = _STAMPED[case]
    names = list(stamped)
    _stamp_destination(case.destination)
    score = Score(pair, association, expected=len(case.truth))
    start = time.perf_counter()
    try:
        with _time_limit(time_limit):
            load(case.destination, {k: v.clone() for k, v in stamped.items()}, association)
    except _Timeout:
        score.seconds = time.perf_counter() - start
        score.error = f'timeout > {time_limit:g} s'
        return score
    except Exception as err:  # the loader's failure is a result, not a crash of the judge
        score.error = f'{type(err).__name__}: {err}'[:300]
    score.seconds = time.perf_counter() - start
    expected_for = {d: s for s, d in case.truth.items()}
    for key, value in case.destination.state_dict().items():
        if key in case.unjudged:
            continue
        want = expected_for.get(key)
        if want is not None and _holds(value, stamped[want]):
            score.correct += 1
            continue
        found = read_back(value)
        if found:
            score.wrong += 1
            if len(score.wrong_keys) < keep:
                score.wrong_keys.append(
                    f'{key} <- {[names[i] for i in sorted(found)][:3]} (truth: {want})')
        if want is not None:
            score.missing += 1
            if len(score.missing_keys) < keep:
                score.missing_keys.append(f'{want} -> {key}')
    return score


def judge(pair: str, association: str, load: Callable | None = None) -> Score:
    """
    Build the named pair and judge one association on it.

    Example:
        >>> from corpus import judge
        >>> judge('mlp-wrapped', 'strict').recall
        0.0
    """
    return judge_case(build_case(pair), association, load, pair=pair)


def run(pairs=None, modes=('strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism'),
        load: Callable | None = None, time_limit: float | None = None,
        progress: Callable | None = None) -> list:
    """
    Judge every mode on every pair (each pair built once).

    Args:
        pairs: names (default: every registered pair).
        modes: associations to judge.
        load: as in :func:`judge_case`.
        time_limit: per load, as in :func:`judge_case`.
        progress: called with each :class:`Score` as it is made.

    Returns:
        list[Score]: in pair-major order; a pair whose build failed gets one
        score per mode with the error.

    Example:
        >>> from corpus import run, format_table
        >>> scores = run(['mlp-wrapped'], modes=['strict', 'embedding'])
        >>> [(s.association, s.correct, s.wrong) for s in scores]
        [('strict', 0, 0), ('embedding', 4, 0)]
    """
    scores = []
    for name in (list(PAIRS) if pairs is None else pairs):
        try:
            case = build_case(name)
        except Exception as err:
            built = [Score(name, mode, error=f'build: {type(err).__name__}: {err}'[:300])
                     for mode in modes]
        else:
            built = [judge_case(case, mode, load, pair=name, time_limit=time_limit)
                     for mode in modes]
            del case
        for score in built:
            if progress:
                progress(score)
            scores.append(score)
    return scores


def format_table(scores) -> str:
    """
    A plain-text table of scores: pair, mode, correct/expected, wrong, precision, recall.

    Example:
        >>> from corpus import Score, format_table
        >>> print(format_table([Score('p', 'strict', correct=2, expected=2)]))
        pair  mode    correct  wrong  missing  precision  recall  seconds
        p     strict  2/2      0      0        1.000      1.000   0.000
    """
    rows = [['pair', 'mode', 'correct', 'wrong', 'missing', 'precision', 'recall', 'seconds']]
    for s in scores:
        if s.error.startswith(('timeout', 'build')):
            rows.append([s.pair, s.association, s.error, '', '', '', '', ''])
            continue
        rows.append([s.pair, s.association, f'{s.correct}/{s.expected}', str(s.wrong),
                     str(s.missing), f'{s.precision:.3f}', f'{s.recall:.3f}',
                     f'{s.seconds:.3f}' + (' (error)' if s.error else '')])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def truth_loader(truth: Mapping) -> Callable:
    """
    A loader that does exactly what ``truth`` says (the perfect score).

    Equal shapes are copied, shapes that differ only by unit dimensions are
    reshaped, tensors of one rank are shoved (the overlapping leading block).

    Example:
        >>> import torch
        >>> from corpus import Case, judge_case, truth_loader
        >>> src, dst = torch.nn.Linear(4, 3), torch.nn.Linear(4, 2)  # a head of another size
        >>> case = Case(src.state_dict(), dst, {'weight': 'weight', 'bias': 'bias'})
        >>> s = judge_case(case, 'truth', load=truth_loader(case.truth))  # shoved
        >>> (s.correct, s.wrong, s.precision, s.recall)
        (2, 0, 1.0, 1.0)
    """
    def load(model, state, association):
        dst = model.state_dict()
        with torch.no_grad():
            for s, d in truth.items():
                src, out = state[s], dst[d]
                if _squeezed(src.shape) == _squeezed(out.shape):
                    out.copy_(src.reshape(out.shape))
                else:
                    region = tuple(slice(0, min(a, b)) for a, b in zip(out.shape, src.shape))
                    out[region] = src[region]
    return load


def main(argv=None) -> int:
    """Print the table for this checkout (``python benchmarks/corpus.py --help``)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--pairs', nargs='*', default=None, help='glob patterns (default: all)')
    parser.add_argument('--modes', nargs='*', default=None)
    parser.add_argument('--fast', action='store_true', help='only the fast pairs')
    parser.add_argument('--time-limit', type=float, default=None)
    parser.add_argument('-v', '--verbose', action='store_true', help='print wrong keys')
    args = parser.parse_args(argv)
    from torch_liberator.association import ASSOCIATIONS
    modes = args.modes or list(ASSOCIATIONS)
    names = select_pairs(args.pairs, fast=True if args.fast else None)

    def show(score):
        print(format_table([score]).split('\n')[1], flush=True)
        if args.verbose:
            for line in score.wrong_keys:
                print('    wrong:', line)
    run(names, modes, time_limit=args.time_limit, progress=show)
    return 0


if __name__ == '__main__':
    sys.exit(main())
