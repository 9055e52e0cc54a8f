"""
Tests for torch_liberator.checkpoint: reading state dicts from files.
"""
import collections
import copy
import os
import sys

import pytest
import torch

from torch_liberator import checkpoint
from torch_liberator.checkpoint import (
    EMA_KEYS, WRAPPER_KEYS, read_state_dict, unwrap_state_dict)
from torch_liberator.errors import (
    CheckpointFormatError, CheckpointNotFoundError, LiberatorError,
    UnsafeCheckpointError)


class CustomConfig:
    """Something weights_only=True refuses to unpickle."""
    def __init__(self, lr=0.1):
        self.lr = lr


def _tiny():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))


def _assert_same(a, b):
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_all_is_sorted_and_complete():
    assert checkpoint.__all__ == sorted(checkpoint.__all__)
    for name in checkpoint.__all__:
        assert hasattr(checkpoint, name)


# --- read_state_dict: formats ------------------------------------------------

@pytest.mark.parametrize('suffix', ['.pt', '.pth', '.ckpt', '.bin', '.weights'])
def test_torch_save_round_trip(tmp_path, suffix):
    state = _tiny().state_dict()
    fpath = tmp_path / f'model{suffix}'
    torch.save(state, fpath)
    got = read_state_dict(fpath)
    _assert_same(got, state)
    assert type(got) is dict
    assert not hasattr(got, '_metadata')


def test_str_path_and_device(tmp_path):
    state = _tiny().state_dict()
    fpath = tmp_path / 'model.pt'
    torch.save(state, fpath)
    got = read_state_dict(str(fpath), device='cpu')
    _assert_same(got, state)
    got = read_state_dict(fpath, device=torch.device('meta'))
    assert all(v.is_meta for v in got.values())


def test_legacy_torch_format(tmp_path):
    state = _tiny().state_dict()
    fpath = tmp_path / 'legacy.pth'
    torch.save(state, fpath, _use_new_zipfile_serialization=False)
    _assert_same(read_state_dict(fpath), state)


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file
    state = {k: v.contiguous() for k, v in _tiny().state_dict().items()}
    fpath = tmp_path / 'model.safetensors'
    save_file(state, fpath)
    got = read_state_dict(fpath)
    assert sorted(got) == sorted(state)
    for key in state:
        assert torch.equal(got[key], state[key])
        assert got[key].dtype == state[key].dtype
    got = read_state_dict(fpath, device='cpu')
    assert all(v.device.type == 'cpu' for v in got.values())


def test_safetensors_without_suffix_is_sniffed(tmp_path):
    from safetensors.torch import save_file
    fpath = tmp_path / 'model.bin'
    save_file({'w': torch.arange(3.)}, fpath)
    assert read_state_dict(fpath)['w'].tolist() == [0.0, 1.0, 2.0]


def test_corrupt_safetensors(tmp_path):
    from safetensors.torch import save_file
    fpath = tmp_path / 'model.safetensors'
    save_file({'w': torch.arange(100.)}, fpath)
    data = fpath.read_bytes()
    fpath.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFormatError, match=r"cannot read safetensors file .*model\.safetensors.*corrupt or truncated") as info:
        read_state_dict(fpath)
    assert info.value.__cause__ is not None


def test_torch_saved_zip_suffix_is_not_a_deploy_file(tmp_path):
    fpath = tmp_path / 'weights.zip'
    torch.save({'w': torch.ones(1)}, fpath)
    assert read_state_dict(fpath)['w'].tolist() == [1.0]


# --- read_state_dict: finding the file ----------------------------------------

def test_glob_one_match(tmp_path):
    (tmp_path / 'runs' / 'a').mkdir(parents=True)
    torch.save({'w': torch.ones(1)}, tmp_path / 'runs' / 'a' / 'best.pt')
    torch.save({'w': torch.ones(1)}, tmp_path / 'runs' / 'a' / 'other.txt')
    got = read_state_dict(os.path.join(tmp_path, 'runs', '*', '*.pt'))
    assert got['w'].tolist() == [1.0]
    got = read_state_dict(tmp_path / '**' / 'best.pt')
    assert got['w'].tolist() == [1.0]


def test_glob_in_empty_dir(tmp_path):
    pattern = os.path.join(tmp_path, '*.pt')
    with pytest.raises(CheckpointNotFoundError, match=r"no checkpoint matches the pattern '.*\*\.pt'"):
        read_state_dict(pattern)


def test_glob_two_matches(tmp_path):
    torch.save({'w': torch.ones(1)}, tmp_path / 'epoch_1.pt')
    torch.save({'w': torch.ones(1)}, tmp_path / 'epoch_2.pt')
    with pytest.raises(CheckpointNotFoundError, match=r"matches 2 paths, expected exactly one: \[.*epoch_1\.pt', .*epoch_2\.pt'\]; make the pattern more specific"):
        read_state_dict(tmp_path / 'epoch_*.pt')


def test_missing_file(tmp_path):
    fpath = tmp_path / 'nope.pt'
    with pytest.raises(CheckpointNotFoundError, match=r"checkpoint file '.*nope\.pt' does not exist") as info:
        read_state_dict(fpath)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, LiberatorError)


def test_path_below_a_torch_file_is_missing(tmp_path):
    fpath = tmp_path / 'model.pt'
    torch.save({'w': torch.ones(1)}, fpath)
    with pytest.raises(CheckpointNotFoundError, match=r"checkpoint file '.*model\.pt.archive.data\.pkl' does not exist"):
        read_state_dict(fpath / 'archive' / 'data.pkl')


def test_bad_fpath_type():
    with pytest.raises(TypeError, match='fpath must be a str or os.PathLike, got dict'):
        read_state_dict({'w': torch.ones(1)})


def test_literal_brackets_in_existing_name(tmp_path):
    fpath = tmp_path / 'model[v2].pt'
    torch.save({'w': torch.ones(1)}, fpath)
    assert read_state_dict(fpath)['w'].tolist() == [1.0]


# --- read_state_dict: broken files -------------------------------------------

def test_truncated_file(tmp_path):
    fpath = tmp_path / 'model.pt'
    torch.save(_tiny().state_dict(), fpath)
    data = fpath.read_bytes()
    fpath.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFormatError, match=r"cannot read checkpoint '.*model\.pt' \(RuntimeError: .*\); the file is corrupt, truncated") as info:
        read_state_dict(fpath)
    assert info.value.__cause__ is not None
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_truncated_legacy_file_is_not_called_unsafe(tmp_path):
    fpath = tmp_path / 'legacy.pt'
    torch.save(_tiny().state_dict(), fpath, _use_new_zipfile_serialization=False)
    data = fpath.read_bytes()
    for cut in [len(data) // 2, 40, 100, len(data) - 10]:
        fpath.write_bytes(data[:cut])
        with pytest.raises(CheckpointFormatError, match='cannot read checkpoint') as info:
            read_state_dict(fpath)
        assert not isinstance(info.value, UnsafeCheckpointError), cut


def test_empty_file(tmp_path):
    fpath = tmp_path / 'model.pt'
    fpath.write_bytes(b'')
    with pytest.raises(CheckpointFormatError, match=r"'.*model\.pt' is empty \(0 bytes\)"):
        read_state_dict(fpath)


def test_garbage_file(tmp_path):
    fpath = tmp_path / 'model.pt'
    fpath.write_text('this is not a checkpoint')
    with pytest.raises(CheckpointFormatError, match=r"cannot read checkpoint '.*model\.pt'.*not a checkpoint"):
        read_state_dict(fpath)


@pytest.mark.skipif(os.name != 'posix' or os.geteuid() == 0,
                    reason='needs a non-root posix user to make a file unreadable')
def test_unreadable_file(tmp_path):
    fpath = tmp_path / 'model.pt'
    torch.save({'w': torch.ones(1)}, fpath)
    fpath.chmod(0)
    try:
        with pytest.raises(CheckpointFormatError, match='cannot read checkpoint file'):
            read_state_dict(fpath)
    finally:
        fpath.chmod(0o644)


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    fpath = tmp_path / 'model.pt'
    torch.save({'w': torch.ones(1)}, fpath)

    def denied(*args, **kwargs):
        raise PermissionError(13, 'Permission denied', str(fpath))
    monkeypatch.setattr(checkpoint, 'open', denied, raising=False)
    with pytest.raises(CheckpointFormatError, match=r"cannot read checkpoint file '.*model\.pt': .*Permission denied") as info:
        read_state_dict(fpath)
    assert isinstance(info.value.__cause__, PermissionError)


def test_non_deploy_directory(tmp_path):
    with pytest.raises(CheckpointFormatError, match='is not a deploy directory'):
        read_state_dict(tmp_path)


# --- read_state_dict: unsafe pickles -----------------------------------------

def test_unsafe_pickle_refused_then_allowed(tmp_path):
    state = _tiny().state_dict()
    fpath = tmp_path / 'train.pt'
    torch.save({'state_dict': state, 'config': CustomConfig(0.5)}, fpath)
    with pytest.raises(UnsafeCheckpointError, match=r"checkpoint '.*train\.pt' cannot be read safely: it holds objects of .*CustomConfig.*pass allow_unsafe=True") as info:
        read_state_dict(fpath)
    assert isinstance(info.value, CheckpointFormatError)
    assert info.value.__cause__ is not None
    _assert_same(read_state_dict(fpath, allow_unsafe=True), state)


def test_unsafe_legacy_pickle(tmp_path):
    fpath = tmp_path / 'train.pt'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'config': CustomConfig()},
               fpath, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match='allow_unsafe=True'):
        read_state_dict(fpath)
    assert read_state_dict(fpath, allow_unsafe=True)['w'].tolist() == [1.0]


def test_whole_module_pickle(tmp_path):
    model = _tiny()
    fpath = tmp_path / 'model.pt'
    torch.save(model, fpath)
    with pytest.raises(UnsafeCheckpointError, match=r'holds objects of torch\.nn\.modules\.container\.Sequential'):
        read_state_dict(fpath)
    _assert_same(read_state_dict(fpath, allow_unsafe=True), model.state_dict())


def test_allow_unsafe_with_missing_code(tmp_path, monkeypatch):
    import types
    fake = types.ModuleType('tl_vanished_module')

    class Gone:
        pass
    Gone.__module__ = fake.__name__
    Gone.__qualname__ = 'Gone'
    fake.Gone = Gone
    fpath = tmp_path / 'train.pt'
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, fake.__name__, fake)
        torch.save({'state_dict': {'w': torch.ones(1)}, 'config': Gone()}, fpath)
    with pytest.raises(UnsafeCheckpointError, match='holds objects of tl_vanished_module.Gone'):
        read_state_dict(fpath)
    with pytest.raises(CheckpointFormatError, match=r"ModuleNotFoundError: .*tl_vanished_module.*cannot be imported here"):
        read_state_dict(fpath, allow_unsafe=True)


# --- read_state_dict: contents -----------------------------------------------

def test_nested_checkpoint_file(tmp_path):
    state = _tiny().state_dict()
    fpath = tmp_path / 'lightning.ckpt'
    torch.save({'epoch': 3, 'global_step': 10, 'state_dict': state,
                'optimizer_states': [], 'hyper_parameters': {'lr': 0.1}}, fpath)
    _assert_same(read_state_dict(fpath), state)


def test_file_without_weights_names_the_file(tmp_path):
    fpath = tmp_path / 'opt.pt'
    torch.save({'epoch': 3, 'optimizer': {'lr': 0.1}}, fpath)
    with pytest.raises(CheckpointFormatError, match=r"'.*opt\.pt': checkpoint holds no tensors .*keys found: \['epoch', 'optimizer'\]"):
        read_state_dict(fpath)


def test_file_ema(tmp_path):
    fpath = tmp_path / 'timm.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)},
                'state_dict_ema': {'w': torch.ones(1)}}, fpath)
    assert read_state_dict(fpath)['w'].item() == 0
    assert read_state_dict(fpath, ema=True)['w'].item() == 1
    fpath = tmp_path / 'plain.pth'
    torch.save({'w': torch.zeros(1)}, fpath)
    with pytest.raises(CheckpointFormatError, match=r"plain\.pth': ema=True but the checkpoint holds no EMA weights"):
        read_state_dict(fpath, ema=True)


# --- deploy files --------------------------------------------------------------

def _check_deploy_reads(fpath, name, state, tmp_path):
    """A deploy zip, a path inside it, its unzipped folder and a glob."""
    import zipfile
    _assert_same(dict(sorted(read_state_dict(fpath).items())), state)
    inner = os.path.join(fpath, name)
    _assert_same(dict(sorted(read_state_dict(inner).items())), state)
    dpath = tmp_path / 'unzipped'
    with zipfile.ZipFile(fpath) as zfile:
        zfile.extractall(dpath)
    _assert_same(dict(sorted(read_state_dict(dpath).items())), state)
    _assert_same(dict(sorted(read_state_dict(tmp_path / '*.zip').items())), state)
    with pytest.raises(CheckpointFormatError, match='ema=True but the checkpoint holds no EMA weights'):
        read_state_dict(fpath, ema=True)


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.bn = torch.nn.BatchNorm2d(2)


def test_deploy_zip(tmp_path):
    from torch_liberator.deployer import deploy
    torch.manual_seed(0)
    model = TinyNet()
    state = dict(sorted(model.state_dict().items()))
    fpath = deploy(model, tmp_path / 'model.zip', verbose=0)
    _check_deploy_reads(fpath, 'model', state, tmp_path)


@pytest.mark.filterwarnings('ignore:.*cannot be verified')
def test_legacy_deploy_zip(tmp_path):
    # the torch_liberator 0.2 layout: <name>/deploy_snapshot.pt next to the code
    import io
    import zipfile
    state = dict(sorted(_tiny().state_dict().items()))
    buf = io.BytesIO()
    torch.save({'model_state_dict': state}, buf)
    fpath = tmp_path / 'old.zip'
    with zipfile.ZipFile(fpath, 'w') as zfile:
        zfile.writestr('old/deploy_snapshot.pt', buf.getvalue())
        zfile.writestr('old/Tiny_0123456789abcdef.py', 'import torch\n')
    _check_deploy_reads(fpath, 'old/deploy_snapshot.pt', state, tmp_path)


# --- unwrap_state_dict ---------------------------------------------------------

def test_unwrap_flat_state_is_a_new_dict():
    state = _tiny().state_dict()
    assert hasattr(state, '_metadata')
    got = unwrap_state_dict(state)
    assert got is not state and type(got) is dict
    assert not hasattr(got, '_metadata')
    assert all(got[k] is state[k] for k in state)


@pytest.mark.parametrize('key', WRAPPER_KEYS)
def test_unwrap_each_wrapper_key(key):
    state = {'a.weight': torch.ones(2)}
    assert unwrap_state_dict({key: state, 'epoch': 1}) == state


def test_unwrap_nested_levels():
    state = {'a.weight': torch.ones(2)}
    ckpt = {'state_dict': {'model': {'weights': state}}, 'meta': 'x'}
    assert unwrap_state_dict(ckpt) == state


def test_unwrap_wrapper_priority():
    first = {'w': torch.zeros(1)}
    second = {'w': torch.ones(1)}
    got = unwrap_state_dict({'model': second, 'model_state_dict': first})
    assert got['w'].item() == 0


def test_unwrap_skips_wrapper_keys_that_are_not_dicts():
    state = {'w': torch.ones(1)}
    assert unwrap_state_dict({'model': 'resnet50', 'state_dict': state}) == state
    # a flat state dict with a tensor called 'weights' is not a wrapper
    flat = {'weights': torch.ones(1), 'bias': torch.zeros(1)}
    assert unwrap_state_dict(flat) == flat


def test_unwrap_module():
    model = _tiny()
    _assert_same(unwrap_state_dict(model), model.state_dict())
    _assert_same(unwrap_state_dict({'model': model, 'epoch': 2}), model.state_dict())


@pytest.mark.parametrize('key', EMA_KEYS)
def test_unwrap_ema_keys(key):
    ckpt = {'model': {'w': torch.zeros(1)}, key: {'w': torch.ones(1)}}
    assert unwrap_state_dict(ckpt)['w'].item() == 0
    assert unwrap_state_dict(ckpt, ema=True)['w'].item() == 1


def test_unwrap_ema_inside_a_wrapper_and_wrapped_ema():
    ckpt = {'state_dict': {'model': {'w': torch.zeros(1)},
                           'ema': {'module': None, 'state_dict': {'w': torch.ones(1)}}}}
    assert unwrap_state_dict(ckpt, ema=True)['w'].item() == 1
    assert unwrap_state_dict(ckpt)['w'].item() == 0
    model = torch.nn.Linear(1, 1)
    got = unwrap_state_dict({'model': torch.nn.Linear(1, 1), 'ema': model}, ema=True)
    _assert_same(got, model.state_dict())


def test_unwrap_ema_missing_lists_the_keys():
    ckpt = {'epoch': 1, 'state_dict': {'w': torch.zeros(1)}, 'ema': None}
    with pytest.raises(CheckpointFormatError, match=(
            r"ema=True but the checkpoint holds no EMA weights \(looked for "
            r"\('ema_state_dict', 'state_dict_ema', 'model_ema', 'ema'\), and for keys under "
            r"\('ema_model', 'ema_state_dict', 'state_dict_ema', 'model_ema', 'ema'\)\); keys found: "
            r"checkpoint: \['epoch', 'state_dict', 'ema'\]; checkpoint\['state_dict'\]: \['w'\]\. "
            r"Pass ema=False")):
        unwrap_state_dict(ckpt, ema=True)
    with pytest.raises(CheckpointFormatError, match=r'ema=True .*checkpoint \(Linear.state_dict\(\)\)'):
        unwrap_state_dict(torch.nn.Linear(1, 1), ema=True)
    with pytest.raises(CheckpointFormatError, match='ema=True'):
        unwrap_state_dict({}, ema=True)


def test_unwrap_unknown_wrapper():
    ckpt = {'epoch': 1, 'net': {'w': 1}, 'model': 'resnet'}
    with pytest.raises(CheckpointFormatError, match=(
            r"checkpoint holds no tensors and none of the recognized wrapper keys "
            r"\('model_state_dict', 'state_dict', 'weights', 'model'\); keys found: "
            r"\['epoch', 'net', 'model'\]; 'model' is present but holds a str, not a dict\. "
            r"If the weights are stored under another key")):
        unwrap_state_dict(ckpt)


def test_unwrap_unknown_wrapper_preview_is_short():
    ckpt = {f'k{i}': i for i in range(25)}
    with pytest.raises(CheckpointFormatError, match=r"'k9', \.\.\. \(15 more\)\]"):
        unwrap_state_dict(ckpt)


def test_unwrap_non_tensor_values():
    ckpt = {'a': torch.ones(1), 'b': [1, 2], 'c': 3, 'd': torch.zeros(1)}
    with pytest.raises(CheckpointFormatError, match=(
            r"checkpoint holds values that are not tensors: \['b' \(list\), 'c' \(int\)\]; "
            r"a state dict maps every key to a tensor")):
        unwrap_state_dict(ckpt)
    with pytest.raises(CheckpointFormatError, match=r"checkpoint\['state_dict'\] holds values that are not tensors: \['x' \(str\)\]"):
        unwrap_state_dict({'state_dict': {'w': torch.ones(1), 'x': 'hello'}})


def test_unwrap_non_string_keys():
    with pytest.raises(CheckpointFormatError, match=r"has keys that are not strings: \[0 \(int\)\]; state dict keys must be strings"):
        unwrap_state_dict({0: torch.ones(1), 'b': torch.ones(1)})


def test_unwrap_not_a_mapping():
    with pytest.raises(CheckpointFormatError, match=r"checkpoint is a list, not a state dict: expected a dict of tensors"):
        unwrap_state_dict([torch.ones(1)])
    with pytest.raises(CheckpointFormatError, match=r"checkpoint is a Tensor, not a state dict"):
        unwrap_state_dict(torch.ones(1))


def test_unwrap_cycle():
    ckpt = {}
    ckpt['model'] = ckpt
    with pytest.raises(CheckpointFormatError, match='nested more than 8 wrapper levels'):
        unwrap_state_dict(ckpt)


def test_unwrap_empty():
    assert unwrap_state_dict({}) == {}


def test_unwrap_never_mutates():
    inner = collections.OrderedDict(w=torch.ones(2))
    inner._metadata = {'': {'version': 1}}
    ckpt = {'state_dict': inner, 'ema': {'w': torch.zeros(2)}, 'epoch': 4}
    before = copy.deepcopy(ckpt)
    got = unwrap_state_dict(ckpt)
    got['extra'] = torch.ones(1)
    del got['w']
    assert list(ckpt) == list(before)
    assert list(ckpt['state_dict']) == ['w']
    assert ckpt['state_dict']._metadata == {'': {'version': 1}}
    assert torch.equal(ckpt['state_dict']['w'], before['state_dict']['w'])


# --- special files, EMA-only checkpoints, Lightning EMA (issues 8 and 11) -------

@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='needs os.mkfifo')
def test_fifo_is_refused_without_opening_it(tmp_path):
    fpath = tmp_path / 'model.pt'
    os.mkfifo(fpath)  # opening it for reading would block forever
    with pytest.raises(CheckpointFormatError, match=(
            r"checkpoint path '.*model\.pt' is a FIFO \(named pipe\), not a regular "
            r"file or folder; pass the path of the checkpoint file itself")):
        read_state_dict(fpath)
    with pytest.raises(CheckpointFormatError, match='is a FIFO'):
        checkpoint.open_checkpoint(tmp_path / '*.pt')


def test_device_file_is_refused():
    if not os.path.exists('/dev/null'):
        pytest.skip('needs /dev/null')
    with pytest.raises(CheckpointFormatError, match="'/dev/null' is a character device"):
        read_state_dict('/dev/null')


@pytest.mark.parametrize('key', ['ema', 'model_ema', 'state_dict_ema'])
def test_ema_only_checkpoint_suggests_ema_true(tmp_path, key):
    fpath = tmp_path / 'ema.pt'
    torch.save({'epoch': 3, key: {'w': torch.ones(1)}}, fpath)
    with pytest.raises(CheckpointFormatError, match=(
            rf"'.*ema\.pt': checkpoint holds only EMA weights \(under '{key}'\) and "
            r"none of the regular wrapper keys .*; pass ema=True to load the EMA weights")):
        read_state_dict(fpath)
    assert read_state_dict(fpath, ema=True)['w'].item() == 1


def test_lightning_flat_ema(tmp_path):
    # a LightningModule holding self.model and self.ema_model = AveragedModel(self.model)
    class Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = _tiny()
            self.ema_model = torch.optim.swa_utils.AveragedModel(self.model)
    module = Module()
    with torch.no_grad():
        for value in module.ema_model.module.parameters():
            value.add_(10)
    fpath = tmp_path / 'epoch=1.ckpt'
    torch.save({'epoch': 1, 'state_dict': module.state_dict()}, fpath)
    regular = read_state_dict(fpath)
    assert list(regular) == list(module.state_dict())
    ema = read_state_dict(fpath, ema=True)
    _assert_same(ema, module.ema_model.module.state_dict())
    assert 'n_averaged' not in ema
    lazy = checkpoint.open_checkpoint(fpath, ema=True)
    _assert_same(dict(lazy.read_tensors(dict.fromkeys(lazy.specs))), ema)
    # and through Pretrained, into a fresh model of the inner architecture
    from torch_liberator.initializer import Pretrained
    fresh = _tiny()
    info = Pretrained(fpath, ema=True, verbose=0).forward(fresh)
    assert info['self_unset'] == [] and info['other_unused'] == []
    _assert_same(fresh.state_dict(), module.ema_model.module.state_dict())


def test_a_deep_copied_ema_beside_the_model_loads_the_model_copy(tmp_path):
    # self.ema_model = copy.deepcopy(self.model): both copies at one depth
    # were a tie and nothing loaded; by default the model copy loads
    class Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = _tiny()
            self.ema_model = copy.deepcopy(self.model)
    module = Module()
    with torch.no_grad():
        for value in module.ema_model.parameters():
            value.add_(10)
    fpath = tmp_path / 'last.ckpt'
    torch.save({'epoch': 1, 'state_dict': module.state_dict()}, fpath)
    from torch_liberator.initializer import Pretrained, load_partial_state
    fresh = _tiny()
    info = Pretrained(fpath, verbose=0).forward(fresh)
    assert info['self_unset'] == []
    _assert_same(fresh.state_dict(), module.model.state_dict())
    fresh = _tiny()
    load_partial_state(fresh, module.state_dict(), verbose=0)
    _assert_same(fresh.state_dict(), module.model.state_dict())
    fresh = _tiny()
    Pretrained(fpath, ema=True, verbose=0).forward(fresh)
    _assert_same(fresh.state_dict(), module.ema_model.state_dict())


def test_flat_ema_saved_from_dataparallel(tmp_path):
    # timm's train loop keeps model_ema beside the model; a module holding
    # both, saved from DataParallel, has module.* and module.model_ema.module.*
    class Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _tiny()
            self.model_ema = torch.optim.swa_utils.AveragedModel(self.net)
    module = Module()
    with torch.no_grad():
        for value in module.model_ema.module.parameters():
            value.add_(10)
    fpath = tmp_path / 'last.pth'
    torch.save(torch.nn.DataParallel(module, device_ids=[]).state_dict(), fpath)
    ema = read_state_dict(fpath, ema=True)
    _assert_same(ema, module.model_ema.module.state_dict())
    from torch_liberator.initializer import Pretrained
    fresh = _tiny()
    info = Pretrained(fpath, ema=True, verbose=0).forward(fresh)
    assert info['self_unset'] == [] and info['other_unused'] == []
    _assert_same(fresh.state_dict(), module.model_ema.module.state_dict())


def test_select_ema_keys_without_module_level():
    keys = ['backbone.w', 'model_ema.backbone.w']
    assert checkpoint.select_ema_keys(keys) == {'backbone.w': 'model_ema.backbone.w'}


# --- open_checkpoint -------------------------------------------------------------

def test_open_checkpoint_kinds(tmp_path):
    from safetensors.torch import save_file
    from torch_liberator.safesources import SafetensorsSource
    from torch_liberator.sources import MappedStateSource
    state = _tiny().state_dict()
    torch.save(state, tmp_path / 'a.pt')
    save_file(state, tmp_path / 'a.safetensors')
    torch.save(state, tmp_path / 'old.pt', _use_new_zipfile_serialization=False)
    for name, kind in [('a.pt', MappedStateSource),
                       ('a.safetensors', SafetensorsSource),
                       ('old.pt', MappedStateSource)]:
        source = checkpoint.open_checkpoint(tmp_path / name)
        assert type(source) is kind, name
        got = dict(source.read_tensors(dict.fromkeys(source.specs)))
        _assert_same(dict(sorted(got.items())), dict(sorted(state.items())))


def test_open_checkpoint_unsafe(tmp_path):
    fpath = tmp_path / 'train.pt'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'config': CustomConfig()}, fpath)
    with pytest.raises(UnsafeCheckpointError, match='allow_unsafe=True'):
        checkpoint.open_checkpoint(fpath)
    source = checkpoint.open_checkpoint(fpath, allow_unsafe=True)
    assert list(source.specs) == ['w']


def test_open_checkpoint_missing(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match='does not exist'):
        checkpoint.open_checkpoint(tmp_path / 'nope.pt')
