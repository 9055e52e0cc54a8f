"""
Tests for torch_liberator.preflight: the checks that keep a load from
failing half-way.
"""
import torch

from torch_liberator import preflight
from torch_liberator.preflight import check_copyable, check_spec_copyable
from torch_liberator.shapes import TensorSpec


def test_all_is_sorted_and_complete():
    assert preflight.__all__ == sorted(preflight.__all__)
    public = {name for name in vars(preflight)
              if not name.startswith('_')
              and getattr(getattr(preflight, name), '__module__', None) == preflight.__name__}
    assert public <= set(preflight.__all__)


def test_check_copyable_accepts_ordinary_pairs_and_self():
    t = torch.arange(4.)
    assert check_copyable(torch.ones(4, dtype=torch.float64), torch.zeros(4)) is None
    assert check_copyable(t, t) is None  # a model's own state dict loaded back
    assert check_copyable(torch.ones(3, 4).t(), torch.zeros(4, 3)) is None
    assert check_copyable(torch.ones(1).expand(4), torch.zeros(4)) is None  # reading is fine


def test_check_copyable_refuses_what_would_fail_half_way():
    assert 'expanded view' in check_copyable(torch.ones(4, 3), torch.zeros(1, 3).expand(4, 3))
    base = torch.arange(10.)
    assert 'shares memory' in check_copyable(base[:6], base[4:])
    nested = torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(3, 3)])
    assert check_copyable(nested, torch.zeros(2, 3)).startswith(
        'the checkpoint tensor is a nested tensor')
    jagged = torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(3, 3)],
                                        layout=torch.jagged)
    assert check_copyable(jagged, torch.zeros(2, 3)).startswith(
        'the checkpoint tensor is a nested tensor')
    bits = torch.zeros(4, dtype=torch.uint8).view(torch.bits8)
    assert check_copyable(bits, torch.zeros(4)) == (
        'the checkpoint tensor is bits8, which torch cannot copy; convert it to '
        'a supported dtype first')
    assert 'the model tensor is bits8' in check_copyable(torch.zeros(4), bits.clone())
    assert check_copyable(torch.zeros(2, device='meta'), torch.zeros(2)) == 'meta tensors hold no data'


def test_uncopyable_dtypes_match_this_torch():
    """Every dtype torch has either copies into float32 or is listed."""
    listed = set(preflight.UNCOPYABLE_DTYPES)
    for dtype in {getattr(torch, name) for name in dir(torch)
                  if isinstance(getattr(torch, name), torch.dtype)}:
        name = str(dtype).rsplit('.', 1)[-1]
        if dtype.is_complex:
            continue  # complex -> real is refused for another reason
        try:
            src = torch.empty(4, dtype=dtype)
            torch.zeros(4).copy_(src)
            fails = False
        except (RuntimeError, TypeError):
            fails = True
        assert fails == (name in listed), name


def test_check_spec_copyable_from_dtype_names_and_dtypes():
    for name in ('bits8', 'uint4', 'int4', 'float4_e2m1fn_x2'):
        assert check_spec_copyable(TensorSpec((4,), name), TensorSpec((4,), 'float32')) == (
            f'the checkpoint tensor is {name}, which torch cannot copy; convert '
            'it to a supported dtype first')
        assert check_spec_copyable(TensorSpec((4,), torch.float32),
                                   TensorSpec((4,), getattr(torch, name))).startswith(
            f'the model tensor is {name}')
    assert 'imaginary part' in check_spec_copyable(
        TensorSpec((4,), torch.complex64), TensorSpec((4,), torch.float32))
    assert check_spec_copyable(TensorSpec((4,), torch.float32),
                               TensorSpec((4,), torch.complex64)) is None
    assert check_spec_copyable(TensorSpec((4,), torch.complex64), TensorSpec((4,))) is None


def test_meta_destinations_pass_for_dry_runs():
    assert check_copyable(torch.ones(3), torch.empty(3, device='meta')) is None


def test_check_pairs_only_flags_reads_after_writes():
    from torch_liberator.preflight import check_pairs
    model = torch.nn.ModuleDict({'a': torch.nn.Linear(2, 2), 'b': torch.nn.Linear(2, 2)})
    state = model.state_dict()
    fresh = torch.randn(2, 2)
    # b's memory is read first, then written: fine
    assert check_pairs([('x', 'a.weight', state['b.weight'], model.a.weight),
                        ('y', 'b.weight', fresh, model.b.weight)]) == {}
    # a is written, then its memory read: refused
    assert list(check_pairs([('x', 'a.weight', fresh, model.a.weight),
                             ('y', 'b.weight', state['a.weight'], model.b.weight)])) == ['y']
    # a self-copy is a no-op write: nothing after it is refused
    assert check_pairs([('a', 'a.weight', state['a.weight'], model.a.weight),
                        ('y', 'b.weight', state['a.weight'], model.b.weight)]) == {}
