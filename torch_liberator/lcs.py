"""
Longest common and increasing subsequences that say which pairs *every*
optimum keeps.

Pure and generic: integers in, pairs out. The structure solver
(:mod:`torch_liberator.groupalign`) keeps a pair only when every optimal
alignment makes it; these two routines tell which pairs those are.

* :func:`certain_lis`: the pairs that every longest chain increasing on both
  sides contains (patience sorting, Fredman 1975, O(n log n)).
* :func:`dp_verdicts`: for a score matrix, the Needleman-Wunsch / longest
  common subsequence recurrence run forwards and backwards, which tells for
  each row and column the partners some optimal alignment gives it and
  whether some optimal alignment leaves it out. O(p q).

Example:
    >>> from torch_liberator.lcs import certain_lis
    >>> certain_lis([(0, 0), (1, 2), (2, 1), (3, 3)])
    [(0, 0), (3, 3)]
"""
from bisect import bisect_left
from typing import List, Sequence, Tuple

__all__ = ['certain_lis', 'dp_verdicts']

#: per row (or column): the partners some optimal alignment pairs it with,
#: and whether some optimal alignment leaves it out
Verdict = Tuple[List[int], bool]


def certain_lis(pairs) -> List[Tuple[int, int]]:
    """
    The pairs that every longest chain increasing on both sides contains.

    Args:
        pairs: ``(i, j)`` with distinct ``i`` and distinct ``j``.

    Returns:
        List[Tuple[int, int]]: those pairs, sorted.

    Example:
        >>> from torch_liberator.lcs import certain_lis
        >>> # (1, 2) and (2, 1) cross: each is on some longest chain, not on all
        >>> certain_lis([(2, 1), (0, 0), (1, 2), (3, 3)])
        [(0, 0), (3, 3)]
        >>> certain_lis([])
        []
    """
    pairs = sorted(pairs)
    n = len(pairs)
    if n == 0:
        return []
    ends = [p[1] for p in pairs]

    def lengths(values):
        tails, out = [], []
        for value in values:
            pos = bisect_left(tails, value)
            if pos == len(tails):
                tails.append(value)
            else:
                tails[pos] = value
            out.append(pos + 1)
        return out

    forward = lengths(ends)
    backward = lengths([-v for v in reversed(ends)])[::-1]
    longest = max(forward)
    on_some = [k for k in range(n) if forward[k] + backward[k] - 1 == longest]
    per_level = {}
    for k in on_some:
        per_level[forward[k]] = per_level.get(forward[k], 0) + 1
    return [pairs[k] for k in on_some if per_level[forward[k]] == 1]


def dp_verdicts(score: Sequence[Sequence[int]], p: int,
                q: int) -> Tuple[List[Verdict], List[Verdict]]:
    """
    The optimal alignments of a ``p`` x ``q`` score matrix (0: no pair).

    An alignment pairs rows with columns in increasing order on both sides;
    its value is the sum of the paired scores. Forward and backward longest
    common subsequence tables tell, for every row and column, the partners
    that some optimal alignment gives it and whether some optimal alignment
    leaves it out.

    Returns:
        Tuple[List[Verdict], List[Verdict]]: ``(rows, cols)``; each entry is
        ``(partners, skippable)``.

    Example:
        >>> from torch_liberator.lcs import dp_verdicts
        >>> # one row, two equal columns: either is optimal
        >>> rows, cols = dp_verdicts([[1, 1]], 1, 2)
        >>> rows
        [([0, 1], False)]
        >>> cols
        [([0], True), ([0], True)]
    """
    fwd = [[0] * (q + 1) for _ in range(p + 1)]
    for a in range(p):
        row, nxt, srow = fwd[a], fwd[a + 1], score[a]
        for b in range(q):
            best = nxt[b] if nxt[b] > row[b + 1] else row[b + 1]
            s = srow[b]
            if s and row[b] + s > best:
                best = row[b] + s
            nxt[b + 1] = best
    bwd = [[0] * (q + 1) for _ in range(p + 1)]
    for a in range(p - 1, -1, -1):
        row, nxt, srow = bwd[a], bwd[a + 1], score[a]
        for b in range(q - 1, -1, -1):
            best = nxt[b] if nxt[b] > row[b + 1] else row[b + 1]
            s = srow[b]
            if s and nxt[b + 1] + s > best:
                best = nxt[b + 1] + s
            row[b] = best
    total = fwd[p][q]
    rows = []
    for a in range(p):
        before, after, srow = fwd[a], bwd[a + 1], score[a]
        partners = [b for b in range(q)
                    if srow[b] and before[b] + srow[b] + after[b + 1] == total]
        skippable = any(before[b] + after[b] == total for b in range(q + 1))
        rows.append((partners, skippable))
    cols = []
    for b in range(q):
        partners = [a for a in range(p) if score[a][b] and fwd[a][b]
                    + score[a][b] + bwd[a + 1][b + 1] == total]
        skippable = any(fwd[a][b] + bwd[a][b + 1] == total for a in range(p + 1))
        cols.append((partners, skippable))
    return rows, cols
