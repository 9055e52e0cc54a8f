"""
Tests for torch_liberator.exporter: source extraction, the contract, initkw
inference and encoding, and the liberator pitfalls turned into errors.
"""
import functools
import math
import sys
import textwrap
import types

import pytest
import torch

from conftest import requires
from torch_liberator.errors import ExportError
from torch_liberator.deployer._export import build_model_code, export_model_code
from torch_liberator.deployer._export import find_code_imports
from torch_liberator.deployer._initkw import resolve_initkw

PKG_FILES = {
    '__init__.py': '',
    'helpers.py': '''
        import torch

        SCALE = 2.0
        OFFSET = 0.5


        def make_block(width, depth):
            layers = []
            for _ in range(depth):
                layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
            return torch.nn.Sequential(*layers)
        ''',
    'model.py': '''
        import torch

        from . import helpers
        from .helpers import SCALE, make_block

        HIDDEN_DEFAULT = 8


        class TinyNet(torch.nn.Module):
            def __init__(self, in_dim, out_dim, hidden=HIDDEN_DEFAULT, depth=2, act='relu'):
                super().__init__()
                self.in_dim = in_dim
                self.out_dim = out_dim
                self.hidden = hidden
                self.depth = depth
                self.stem = torch.nn.Linear(in_dim, hidden)
                self.body = make_block(hidden, depth)
                self.head = torch.nn.Linear(hidden, out_dim)

            def forward(self, x):
                return self.head(self.body(self.stem(x))) * SCALE + helpers.OFFSET
        ''',
}


def write_package(root, name, files):
    pkg = root / name
    pkg.mkdir(parents=True)
    for fname, text in files.items():
        (pkg / fname).write_text(textwrap.dedent(text).lstrip())
    return pkg


@pytest.fixture
def make_pkg(tmp_path, monkeypatch):
    """Write a package under tmp_path, make it importable, forget it after."""
    created = []

    def make(name, files):
        root = tmp_path / 'src'
        write_package(root, name, files)
        monkeypatch.syspath_prepend(str(root))
        created.append(name)
        return root

    yield make
    for name in created:
        for mod in [m for m in sys.modules if m == name or m.startswith(name + '.')]:
            del sys.modules[mod]


def run_code(code):
    namespace = {}
    exec(compile(code.text, code.fname, 'exec'), namespace)
    return namespace


def test_local_package_is_inlined(make_pkg):
    make_pkg('tl_pkg_inline', PKG_FILES)
    from tl_pkg_inline.model import TinyNet
    model = TinyNet(3, 2, hidden=5, depth=3)
    code = build_model_code(model, export_modules=['tl_pkg_inline'])
    assert 'tl_pkg_inline' not in find_code_imports(code.text)[0]
    assert 'import tl_pkg_inline' not in code.text.replace('# ', '#')
    assert code.initkw == {'in_dim': 3, 'out_dim': 2, 'hidden': 5, 'depth': 3}
    assert code.requires == {'torch': torch.__version__.split('+')[0]}
    ns = run_code(code)
    built = ns['get_model_cls']()(**ns['get_initkw']())
    assert built.state_dict().keys() == model.state_dict().keys()
    built.load_state_dict(model.state_dict())
    x = torch.rand(4, 3)
    assert torch.equal(built(x), model(x))


def test_without_export_modules_the_package_is_required(make_pkg):
    root = make_pkg('tl_pkg_keep', PKG_FILES)
    from tl_pkg_keep.model import TinyNet
    with pytest.warns(UserWarning, match=r"the exported code of TinyNet imports tl_pkg_keep \(.*"
                      r"tl_pkg_keep/__init__.py\), which is not an installed package: the deploy "
                      r"file will not load where it is missing; pass export_modules="
                      r"\['tl_pkg_keep'\]"):
        code = build_model_code(TinyNet(3, 2))
    assert 'tl_pkg_keep' in code.requires
    assert code.local_imports == {'tl_pkg_keep': str(root / 'tl_pkg_keep' / '__init__.py')}


def test_requires_lists_only_imports_that_run_with_the_module(make_pkg):
    make_pkg('tl_pkg_lazy', {'__init__.py': '', 'model.py': '''
        import numpy as np
        import torch


        def optional_jax():
            import no_such_optional_dep_xyz
            return no_such_optional_dep_xyz


        class LazyNet(torch.nn.Module):
            def __init__(self, dim=2):
                super().__init__()
                self.dim = dim
                self.lin = torch.nn.Linear(dim, dim)

            def forward(self, x):
                if np.isnan(float(x.sum())):
                    optional_jax()
                return self.lin(x)
        '''})
    from tl_pkg_lazy.model import LazyNet
    code = build_model_code(LazyNet(2))
    assert 'import no_such_optional_dep_xyz' in code.text
    assert sorted(code.requires) == ['numpy', 'torch']
    assert code.local_imports == {}


def test_timm_requires_no_optional_imports(timm):
    model = timm.create_model('vit_tiny_patch16_224', pretrained=False)
    code = build_model_code(model, initkw={'embed_dim': 192, 'depth': 12, 'num_heads': 3})
    assert 'import jax' in code.text  # inside a function of timm's helpers
    # timm binds Literal in a try: typing's, which ran here, not typing_extensions'
    assert 'from typing import Literal' in code.text
    assert sorted(code.requires) == ['timm', 'torch']


def test_conditional_bindings_keep_what_ran(make_pkg):
    make_pkg('tl_pkg_cond', {'__init__.py': '', 'model.py': '''
        import sys

        import torch

        try:
            import numpy as np
        except ImportError:
            np = None

        if sys.version_info >= (3, 0):
            SCALE = 2.0
        else:
            SCALE = 3.0


        class CondNet(torch.nn.Module):
            def __init__(self, dim=2):
                super().__init__()
                self.dim = dim
                self.lin = torch.nn.Linear(dim, dim)

            def forward(self, x):
                y = self.lin(x) * SCALE
                return y if np is None else y + 1
        '''})
    from tl_pkg_cond.model import CondNet
    model = CondNet(2)
    code = build_model_code(model)
    assert 'import numpy as np' in code.text and 'np = None' not in code.text
    assert 'SCALE = 2.0' in code.text and 'SCALE = 3.0' not in code.text
    assert sorted(code.requires) == ['numpy', 'torch']
    ns = run_code(code)
    built = ns['get_model_cls']()(**ns['get_initkw']())
    built.load_state_dict(model.state_dict())
    x = torch.rand(3, 2)
    assert torch.equal(built(x), model(x))


def test_conditional_binding_that_cannot_be_told_is_refused(make_pkg):
    make_pkg('tl_pkg_cond2', {'__init__.py': '', 'model.py': '''
        import os

        import torch

        if os.environ.get('TL_NO_SUCH_VAR_XYZ'):
            WIDTH = int(os.environ['TL_NO_SUCH_VAR_XYZ'])
        else:
            WIDTH = len('abc')


        class EnvNet(torch.nn.Module):
            def __init__(self, dim=2):
                super().__init__()
                self.dim = dim
                self.lin = torch.nn.Linear(dim, WIDTH)
        '''})
    from tl_pkg_cond2.model import EnvNet
    with pytest.raises(ExportError, match=r"cannot export EnvNet: tl_pkg_cond2.model binds 'WIDTH' "
                       r"conditionally or more than once \(lines \[6, 8\]\), and which binding ran "
                       r"cannot be told from the code; liberator would keep \"WIDTH = len\('abc'\)\"\. "
                       r"Bind it once, unconditionally, at module level"):
        build_model_code(EnvNet(2))


def test_same_input_same_text_and_name():
    model = torch.nn.Conv2d(2, 3, 3)
    first, second = build_model_code(model), build_model_code(model)
    assert first.text == second.text and first.fname == second.fname
    assert first.fname.startswith('Conv2d_') and len(first.fname) == len('Conv2d_') + 16 + 3


def test_export_model_code_writes_one_file(tmp_path):
    fpath = export_model_code(tmp_path, torch.nn.Linear(2, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [fpath.name]
    ns = {}
    exec(compile(fpath.read_text(), str(fpath), 'exec'), ns)
    assert ns['get_initkw']() == {'in_features': 2, 'out_features': 2}


def test_initkw_priority():
    model = torch.nn.Linear(2, 3)
    assert resolve_initkw(model, None)[0] == {'in_features': 2, 'out_features': 3}
    model._initkw = {'in_features': 2, 'out_features': 3, 'bias': True}
    assert resolve_initkw(model, None)[0]['bias'] is True
    given = {'in_features': 2, 'out_features': 3, 'bias': False}
    assert resolve_initkw(model, given)[0]['bias'] is False


class VersionArgNet(torch.nn.Module):
    def __init__(self, version='1_0'):
        super().__init__()  # torch.nn.Module has a class attribute _version


def test_class_attributes_are_not_init_arguments():
    assert resolve_initkw(VersionArgNet('1_1'), None)[0] == {}


def test_initkw_missing_names_the_arguments():
    class Net(torch.nn.Module):
        def __init__(self, width, depth, flag=True):
            super().__init__()
            self.width = width

    with pytest.raises(ExportError, match=r"\['depth'\] are required by Net.__init__"):
        resolve_initkw(Net(3, 4), None)


def test_initkw_unknown_names():
    with pytest.raises(ExportError, match=r"arguments \['nope'\] that Linear.__init__ does not take"):
        resolve_initkw(torch.nn.Linear(1, 1), {'in_features': 1, 'out_features': 1, 'nope': 1})


def test_initkw_values_round_trip_through_code():
    requires('torchvision')
    from torchvision.models.resnet import BasicBlock, ResNet
    initkw = {
        'block': BasicBlock,                       # exported with the code
        'layers': [1, 1, 1, 1],
        'num_classes': 7,
        'replace_stride_with_dilation': (False, False, True),
        'norm_layer': functools.partial(torch.nn.BatchNorm2d, eps=1e-3),
    }
    model = ResNet(**initkw)
    code = build_model_code(model, initkw=initkw)
    assert code.initkw['block'] == {'__ref__': 'torchvision.models.resnet:BasicBlock', 'exported': True}
    assert code.initkw['replace_stride_with_dilation'] == {'__tuple__': [False, False, True]}
    ns = run_code(code)
    got = ns['get_initkw']()
    assert got['block'] is ns['BasicBlock']  # the exported copy, not torchvision's
    assert got['replace_stride_with_dilation'] == (False, False, True)
    assert got['norm_layer'].func is torch.nn.BatchNorm2d and got['norm_layer'].keywords == {'eps': 1e-3}


class KwNet(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()


class ValueNet(torch.nn.Module):
    def __init__(self, value=None):
        super().__init__()


def test_literal_encodings():
    kw = {'inf': math.inf, 'dtype': torch.float16, 'nested': {'a': (1,), 'b': [None, 'x']},
          'act': torch.nn.functional.relu}
    code = build_model_code(KwNet, initkw=kw)
    assert code.initkw['dtype'] == {'__dtype__': 'float16'}
    assert run_code(code)['get_initkw']() == kw


@pytest.mark.parametrize('value, match', [
    (lambda x: x, 'has no importable name'),
    (torch.zeros(1), 'is Tensor .* which a deploy file cannot store'),
    ({1: 2}, 'dict with keys'),
])
def test_unstorable_initkw_values(value, match):
    with pytest.raises(ExportError, match=match):
        build_model_code(ValueNet, initkw={'value': value})


def test_class_inside_function_is_refused():
    class Local(torch.nn.Module):
        pass

    with pytest.raises(ExportError, match='defined inside a function or class; define it at module level'):
        build_model_code(Local())


def test_class_without_source_file_is_refused():
    module = types.ModuleType('tl_no_source_module')
    exec('import torch\nclass Ghost(torch.nn.Module):\n    pass\n', module.__dict__)
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(ExportError, match='has no Python source file'):
            build_model_code(module.Ghost())
    finally:
        del sys.modules[module.__name__]


def test_future_annotations_are_kept(make_pkg):
    make_pkg('tl_pkg_future', {'__init__.py': '', 'net.py': '''
        from __future__ import annotations

        import torch


        class Net(torch.nn.Module):
            def __init__(self, width=2):
                super().__init__()
                self.lin = torch.nn.Linear(width, width)

            def forward(self, x: torch.Tensor) -> Later:
                return self.lin(x)


        class Later:
            pass
        '''})
    from tl_pkg_future.net import Net
    code = build_model_code(Net())
    assert 'from __future__ import annotations' in code.text.split('"""')[2].split('\n')[1]
    ns = run_code(code)
    assert ns['Net'].forward.__annotations__['x'] == 'torch.Tensor'


def test_unresolvable_name_is_reported(make_pkg):
    make_pkg('tl_pkg_dynamic', {'__init__.py': '', 'net.py': '''
        import torch

        globals()['WIDTH'] = 3


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(WIDTH, WIDTH)  # NOQA
        '''})
    from tl_pkg_dynamic.net import Net
    with pytest.raises(ExportError, match='WIDTH'):
        build_model_code(Net())


def test_nested_import_of_exported_package_is_reported(make_pkg):
    make_pkg('tl_pkg_nested', {'__init__.py': '', 'consts.py': 'WIDTH = 3\n', 'net.py': '''
        import torch


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                from tl_pkg_nested.consts import WIDTH
                self.lin = torch.nn.Linear(WIDTH, WIDTH)
        '''})
    from tl_pkg_nested.net import Net
    with pytest.raises(ExportError, match='imports that will not work standalone'):
        build_model_code(Net(), export_modules=['tl_pkg_nested'])


def test_find_code_imports():
    text = 'import os\nimport numpy as np\nfrom torch import nn\nfrom . import x\nfrom __main__ import y\n'
    assert find_code_imports(text) == (['numpy', 'torch'], ['from . import x', 'from __main__ import y'])


def test_liberator_oscillation_is_stopped():
    # liberator alternates between two sets of undefined names forever on
    # torch.nn.Sequential; the export must stop with a clear error instead
    with pytest.raises(ExportError, match='liberator cannot order its definitions'):
        build_model_code(torch.nn.Sequential, initkw={})
