"""
Tests for torch_liberator.shove: fitting one tensor into another.
"""
import itertools

import pytest
import torch

from conftest import requires
from torch_liberator import shove
from torch_liberator.errors import ShapeMismatchError
from torch_liberator.shove import (
    SHOVE_OUTCOMES, check_center, check_reshape, plan_shove, shove_center,
    shove_outcome, shove_reshape, shove_tensor)


def test_all_is_sorted_and_complete():
    assert shove.__all__ == sorted(shove.__all__)
    public = {name for name in vars(shove)
              if not name.startswith('_') and callable(getattr(shove, name))
              and getattr(getattr(shove, name), '__module__', None) == shove.__name__}
    assert public <= set(shove.__all__)


def test_full_add_copies_every_element():
    dst = torch.zeros(3, 4)
    src = torch.arange(12.).reshape(3, 4)
    assert shove_tensor(dst, src) == 'full_add'
    assert torch.equal(dst, src)
    # the source is only read and the two do not share memory
    assert dst.data_ptr() != src.data_ptr()
    assert torch.equal(src, torch.arange(12.).reshape(3, 4))


def test_partial_add_all_copies_leading_block_and_keeps_the_rest():
    dst = torch.full((4, 5), -1.0)
    src = torch.arange(6.).reshape(2, 3)
    assert shove_tensor(dst, src) == 'partial_add_all'
    expected = torch.full((4, 5), -1.0)
    expected[:2, :3] = src
    assert torch.equal(dst, expected)
    for i in range(4):
        for j in range(5):
            want = src[i, j] if (i < 2 and j < 3) else -1.0
            assert dst[i, j] == want


def test_partial_add_some_cuts_the_source():
    dst = torch.full((2, 5), -1.0)
    src = torch.arange(12.).reshape(4, 3)
    assert shove_tensor(dst, src) == 'partial_add_some'
    assert dst.tolist() == [[0.0, 1.0, 2.0, -1.0, -1.0],
                            [3.0, 4.0, 5.0, -1.0, -1.0]]


def test_partial_add_some_when_source_is_larger_everywhere():
    dst = torch.zeros(2, 2, 1)
    src = torch.arange(27.).reshape(3, 3, 3)
    assert shove_tensor(dst, src) == 'partial_add_some'
    assert torch.equal(dst, src[:2, :2, :1])


def test_conv_weight_with_more_output_channels():
    dst = torch.nn.Conv2d(3, 8, 3).weight
    before = dst.detach().clone()
    src = torch.randn(4, 3, 3, 3)
    assert shove_tensor(dst, src) == 'partial_add_all'
    assert torch.equal(dst.detach()[:4], src)
    assert torch.equal(dst.detach()[4:], before[4:])
    assert dst.requires_grad and dst.grad_fn is None


def test_rank_mismatch_raises_and_leaves_dst_unchanged():
    dst = torch.arange(6.).reshape(2, 3)
    with pytest.raises(ShapeMismatchError, match=r'shape \(6,\) into one of shape \(2, 3\): ranks differ'):
        shove_tensor(dst, torch.zeros(6))
    assert torch.equal(dst, torch.arange(6.).reshape(2, 3))


def test_zero_dim():
    dst = torch.tensor(0.0)
    assert shove_tensor(dst, torch.tensor(7.0)) == 'full_add'
    assert dst.item() == 7.0
    with pytest.raises(ShapeMismatchError, match=r'shape \(\) into one of shape \(1,\)'):
        shove_tensor(torch.zeros(1), torch.tensor(1.0))
    with pytest.raises(ShapeMismatchError, match=r'ranks differ \(1 vs 0\)'):
        shove_tensor(torch.tensor(1.0), torch.zeros(1))


def test_num_batches_tracked_style_int_scalar():
    dst = torch.tensor(0, dtype=torch.long)
    assert shove_tensor(dst, torch.tensor(5, dtype=torch.long)) == 'full_add'
    assert dst.item() == 5


def test_dtype_conversion():
    dst = torch.zeros(3, dtype=torch.float16)
    src = torch.tensor([1.5, 2.25, -3.0], dtype=torch.float64)
    assert shove_tensor(dst, src) == 'full_add'
    assert dst.dtype == torch.float16
    assert dst.tolist() == [1.5, 2.25, -3.0]

    dst = torch.zeros(2, 2, dtype=torch.float64)
    assert shove_tensor(dst, torch.ones(1, 1, dtype=torch.bfloat16)) == 'partial_add_all'
    assert dst.tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_real_into_complex_is_fine():
    dst = torch.zeros(2, dtype=torch.complex64)
    assert shove_tensor(dst, torch.tensor([1.0, 2.0])) == 'full_add'
    assert dst.tolist() == [1 + 0j, 2 + 0j]


def test_complex_into_real_is_refused():
    dst = torch.zeros(2)
    with pytest.raises(ShapeMismatchError, match='complex64 tensor into a torch.float32 one: the imaginary part would be lost'):
        shove_tensor(dst, torch.ones(2, dtype=torch.complex64))
    assert torch.equal(dst, torch.zeros(2))


def test_non_tensor_arguments():
    with pytest.raises(TypeError, match='src must be a torch.Tensor, got list'):
        shove_tensor(torch.zeros(2), [1.0, 2.0])
    with pytest.raises(TypeError, match='dst must be a torch.Tensor, got ndarray'):
        import numpy as np
        shove_tensor(np.zeros(2), torch.zeros(2))


def test_same_tensor_is_a_noop():
    t = torch.arange(4.)
    assert shove_tensor(t, t) == 'full_add'
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_empty_overlap():
    dst = torch.full((0, 3), 1.0)
    assert shove_tensor(dst, torch.ones(2, 3)) == 'partial_add_some'
    dst = torch.full((2, 3), -1.0)
    assert shove_tensor(dst, torch.ones(0, 3)) == 'partial_add_all'
    assert torch.equal(dst, torch.full((2, 3), -1.0))


def test_non_contiguous_views():
    base = torch.zeros(4, 6)
    dst = base[:, ::2]  # (4, 3) strided view
    src = torch.arange(20.).reshape(5, 4).t()  # (4, 5) transposed
    assert shove_tensor(dst, src) == 'partial_add_some'
    assert torch.equal(base[:, ::2], src[:, :3])
    assert torch.equal(base[:, 1::2], torch.zeros(4, 3))


@pytest.mark.parametrize('dst_shape, src_shape, outcome', [
    ((3,), (3,), 'full_add'),
    ((), (), 'full_add'),
    ((5,), (3,), 'partial_add_all'),
    ((3,), (5,), 'partial_add_some'),
    ((2, 4), (3, 1), 'partial_add_some'),
    ((3, 4), (3, 1), 'partial_add_all'),
    ([3, 4], torch.Size([3, 4]), 'full_add'),
])
def test_plan_shove_outcomes(dst_shape, src_shape, outcome):
    assert plan_shove(dst_shape, src_shape) == outcome
    assert outcome in SHOVE_OUTCOMES


def test_plan_shove_matches_shove_tensor():
    for dst_shape, src_shape in [((3, 3), (3, 3)), ((3, 3), (2, 2)),
                                 ((2, 2), (3, 1)), ((4,), (4,))]:
        dst, src = torch.zeros(dst_shape), torch.ones(src_shape)
        assert plan_shove(dst.shape, src.shape) == shove_tensor(dst, src)


def test_plan_shove_errors():
    with pytest.raises(ShapeMismatchError, match=r'shape \(2, 2\) into one of shape \(4,\): ranks differ \(2 vs 1\)'):
        plan_shove((4,), (2, 2))
    with pytest.raises(ShapeMismatchError, match='the imaginary part would be lost'):
        plan_shove((2,), (2,), torch.float32, torch.complex128)
    with pytest.raises(ShapeMismatchError, match="dst_shape='ab' is not a shape"):
        plan_shove('ab', (2,))
    with pytest.raises(ShapeMismatchError, match=r'src_shape=\(2, -1\) has a negative dimension'):
        plan_shove((2, 2), (2, -1))
    # dtypes are optional
    assert plan_shove((2,), (2,), torch.float32, None) == 'full_add'


def _reference_shove(dst, src):
    """Element by element: dst[idx] = src[idx] wherever idx is in both."""
    out = dst.clone()
    for idx in itertools.product(*[range(n) for n in dst.shape]):
        if all(i < n for i, n in zip(idx, src.shape)):
            out[idx] = src[idx]
    return out


def test_shove_matches_elementwise_reference():
    hypothesis = requires('hypothesis')
    st = hypothesis.strategies

    @hypothesis.given(st.integers(0, 3).flatmap(lambda rank: st.tuples(
        st.lists(st.integers(0, 4), min_size=rank, max_size=rank),
        st.lists(st.integers(0, 4), min_size=rank, max_size=rank))))
    @hypothesis.settings(max_examples=60, deadline=None)
    def check(shapes):
        dst_shape, src_shape = shapes
        dst = -torch.arange(float(torch.Size(dst_shape).numel())).reshape(dst_shape) - 1
        src = torch.arange(float(torch.Size(src_shape).numel())).reshape(src_shape)
        expected = _reference_shove(dst, src)
        outcome = shove_tensor(dst, src)
        assert torch.equal(dst, expected)
        if dst_shape == src_shape:
            assert outcome == 'full_add'
        elif all(s <= d for s, d in zip(src_shape, dst_shape)):
            assert outcome == 'partial_add_all'
        else:
            assert outcome == 'partial_add_some'
    check()


# --- centre --------------------------------------------------------------------

def test_center_keeps_the_middle_of_a_kernel():
    src = torch.randn(4, 3, 7, 7)
    dst = torch.zeros(4, 3, 3, 3)
    assert shove_center(dst, src) == 'partial_add_some'
    assert torch.equal(dst, src[:, :, 2:5, 2:5])


def test_center_pads_a_smaller_kernel_into_the_middle():
    src = torch.randn(4, 3, 3, 3)
    dst = torch.full((4, 3, 7, 7), -1.0)
    assert shove_center(dst, src) == 'partial_add_all'
    expected = torch.full((4, 3, 7, 7), -1.0)
    expected[:, :, 2:5, 2:5] = src
    assert torch.equal(dst, expected)


@pytest.mark.parametrize('src_size, dst_size, src_start, dst_start', [
    (5, 3, 1, 0), (6, 3, 1, 0), (4, 1, 1, 0), (3, 6, 0, 1), (2, 5, 0, 1),
    (4, 4, 0, 0), (0, 3, 0, 1),
])
def test_center_offsets_element_by_element(src_size, dst_size, src_start, dst_start):
    """(larger - smaller) // 2 elements are skipped at the start."""
    src = torch.arange(float(src_size))
    dst = torch.full((dst_size,), -1.0)
    shove_center(dst, src)
    n = min(src_size, dst_size)
    for i in range(dst_size):
        j = i - dst_start + src_start
        inside = dst_start <= i < dst_start + n
        assert dst[i] == (src[j] if inside else -1.0)


def test_center_mixed_dimensions_and_parameter():
    conv = torch.nn.Conv2d(2, 6, 3)
    src = torch.randn(4, 2, 5, 5)
    before = conv.weight.detach().clone()
    assert shove_center(conv.weight, src) == 'partial_add_some'
    expected = before.clone()
    expected[1:5] = src[:, :, 1:4, 1:4]
    assert torch.equal(conv.weight.detach(), expected)
    assert conv.weight.grad_fn is None


def test_center_rank_mismatch():
    dst = torch.zeros(3, 3)
    with pytest.raises(ShapeMismatchError, match=(
            r'cannot fit shape \(9,\) into \(3, 3\): ranks differ \(1 vs 2\); '
            'the centre policy crops or pads each dimension')):
        shove_center(dst, torch.ones(9))
    assert torch.equal(dst, torch.zeros(3, 3))
    assert check_center((7, 7), (3, 3)) == 'partial_add_some'


# --- reshape -------------------------------------------------------------------

@pytest.mark.parametrize('src_shape, dst_shape', [
    ((8,), (8, 1, 1)), ((8, 1, 1), (8,)), ((1, 8), (8, 1)), ((1, 1, 8), (8,)),
    ((2, 1, 3), (2, 3)), ((), (1, 1)), ((1,), ()),
])
def test_reshape_is_lossless(src_shape, dst_shape):
    src = torch.arange(float(torch.Size(src_shape).numel())).reshape(src_shape)
    dst = torch.zeros(dst_shape)
    assert shove_reshape(dst, src) == 'full_add'
    assert dst.flatten().tolist() == src.flatten().tolist()


def test_reshape_refuses_other_shapes():
    dst = torch.zeros(2, 3)
    with pytest.raises(ShapeMismatchError, match=(
            r'cannot fit shape \(3, 2\) into \(2, 3\): the reshape policy only adds '
            r'or drops size-1 dimensions')):
        shove_reshape(dst, torch.ones(3, 2))
    assert torch.equal(dst, torch.zeros(2, 3))
    assert check_reshape((4,), (4, 1)) == 'full_add'


# --- outcomes ------------------------------------------------------------------

@pytest.mark.parametrize('src, dst, outcome', [
    ((3, 4), (3, 4), 'full_add'),
    ((768,), (768, 1, 1), 'partial_add_all'),  # a callable's; reshape says full_add
    ((1, 3), (3, 1), 'partial_add_some'),
    ((1, 197, 768), (1, 577, 768), 'partial_add_all'),
    ((1, 577, 768), (1, 197, 768), 'partial_add_some'),
    ((64, 3, 7, 7), (64, 4, 7, 7), 'partial_add_all'),
    ((64, 3, 7, 7), (64, 1, 7, 7), 'partial_add_some'),
    ((4, 3), (3, 4), 'partial_add_some'),
    ((4, 3), (24,), 'partial_add_all'),
    ((4, 3), (6,), 'partial_add_some'),
])
def test_shove_outcome(src, dst, outcome):
    assert shove_outcome(src, dst) == outcome
    assert outcome in SHOVE_OUTCOMES


def _reference_center(dst, src):
    """Element by element: dst[i] = src[i - dst_start + src_start] inside."""
    out = dst.clone()
    starts = [((max(s, d) - min(s, d)) // 2) for s, d in zip(src.shape, dst.shape)]
    for idx in itertools.product(*[range(n) for n in dst.shape]):
        src_idx = []
        for i, s, d, start in zip(idx, src.shape, dst.shape, starts):
            j = i + start if s > d else i - start
            if not 0 <= j < s or (s < d and not start <= i < start + s):
                break
            src_idx.append(j)
        else:
            out[idx] = src[tuple(src_idx)]
    return out


def test_center_matches_elementwise_reference():
    hypothesis = pytest.importorskip('hypothesis')
    st = hypothesis.strategies

    @hypothesis.given(st.integers(0, 3).flatmap(lambda rank: st.tuples(
        st.lists(st.integers(0, 6), min_size=rank, max_size=rank),
        st.lists(st.integers(0, 6), min_size=rank, max_size=rank))))
    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.example(([1, 3], [3, 1]))
    def check(shapes):
        dst_shape, src_shape = shapes
        dst = -torch.arange(float(torch.Size(dst_shape).numel())).reshape(dst_shape) - 1
        src = torch.arange(float(torch.Size(src_shape).numel())).reshape(src_shape)
        expected = _reference_center(dst, src)
        assert shove_center(dst, src) == shove_outcome(src_shape, dst_shape)
        assert torch.equal(dst, expected)
    check()
