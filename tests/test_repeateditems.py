"""
Equal blocks placed by their positions (torch_liberator.repeateditems):
exact pairs where the lists line up, nothing where they do not.
"""
from torch_liberator.keytree import KeyTree
from torch_liberator.repeateditems import repeated_item_pairs


def _stage(prefix, item, n, width, start=0):
    """A stage of ``n`` blocks named ``item`` + number, each with an se
    module of ``width`` and a body named per library."""
    out = {}
    for i in range(start, start + n):
        out[f'{prefix}.{item}{i}.{"" if item == "b" else "f."}se.fc.weight'] = (width, width)
    return out


def _repeated(src, dst, known):
    return repeated_item_pairs(KeyTree(src, shapes=src), KeyTree(dst, shapes=dst), known)


def test_equal_blocks_repeat_what_the_first_pair_shows_position_by_position():
    src = _stage('s2', 'b', 3, 8, start=1)
    dst = _stage('block2', 'block2-', 3, 8)
    known = {'s2.b1.se.fc.weight': 'block2.block2-0.f.se.fc.weight'}
    assert _repeated(src, dst, known) == {
        's2.b2.se.fc.weight': 'block2.block2-1.f.se.fc.weight',
        's2.b3.se.fc.weight': 'block2.block2-2.f.se.fc.weight'}


def test_repeated_items_refuse_what_positions_do_not_support():
    src = _stage('s2', 'b', 3, 8, start=1)
    dst = _stage('block2', 'block2-', 3, 8)
    # a known pair one position off: the lists do not line up
    off = {'s2.b1.se.fc.weight': 'block2.block2-1.f.se.fc.weight'}
    assert _repeated(src, dst, off) == {}
    # lists of other lengths
    dst4 = _stage('block2', 'block2-', 4, 8)
    first = {'s2.b1.se.fc.weight': 'block2.block2-0.f.se.fc.weight'}
    assert _repeated(src, dst4, first) == {}
    # another tensor at a position: that module stays out, the rest goes
    dst_wide = dict(dst)
    dst_wide['block2.block2-1.f.se.fc.weight'] = (16, 16)
    assert _repeated(src, dst_wide, first) == {
        's2.b3.se.fc.weight': 'block2.block2-2.f.se.fc.weight'}
    # keys without shapes prove nothing
    assert repeated_item_pairs(KeyTree(list(src)), KeyTree(list(dst)), first) == {}
    # one list paired with two: neither is trusted
    two = {**dst, **_stage('other', 'x', 3, 8)}
    both = {**first, 's2.b2.se.fc.weight': 'other.x1.f.se.fc.weight'}
    assert _repeated(src, two, both) == {}
