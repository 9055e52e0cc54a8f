"""
Project-level checks: the README, CI script, public names and API docs agree.
"""
import importlib
import inspect
import pathlib
import re

import torch_liberator

ROOT = pathlib.Path(__file__).resolve().parent.parent


def quick_start_commands():
    """The commands of the first code block under the README's Quick start."""
    lines = (ROOT / 'README.rst').read_text().splitlines()
    start = lines.index('Quick start')
    block = next(i for i in range(start, len(lines))
                 if lines[i].startswith('.. code'))
    commands = []
    for line in lines[block + 1:]:
        if line and not line.startswith((' ', '\t')):
            break
        if line.strip():
            commands.append(line.strip())
    return commands


def test_readme_quick_start_is_two_commands():
    commands = quick_start_commands()
    assert commands == [
        'pip install -e ".[demo]" && python -m torch_liberator demo',
        'pip install -e ".[tests]" && python -m pytest',
    ]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = quick_start_commands()[1]
    script = (ROOT / '.ci' / 'run').read_text()
    lines = [line.strip() for line in script.splitlines()]
    assert any(line.startswith(test_command) for line in lines), (
        f'.ci/run does not run the README test command {test_command!r}')
    assert 'set -euo pipefail' in lines
    assert 'python -m sphinx -W -b html docs docs/_build/html' in lines


def public_names():
    """``__all__`` less dunder metadata such as ``__version__``."""
    return [name for name in torch_liberator.__all__
            if not name.startswith('__')]


def test_all_is_sorted_and_unique():
    names = public_names()
    assert names == sorted(names)
    assert len(set(torch_liberator.__all__)) == len(torch_liberator.__all__)
    # dunder metadata, if any, comes after the public names
    dunders = torch_liberator.__all__[len(names):]
    assert all(name.startswith('__') for name in dunders)


def test_every_public_name_is_importable_and_has_an_example():
    for name in torch_liberator.__all__:
        value = getattr(torch_liberator, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            doc = inspect.getdoc(value) or ''
            assert 'Example' in doc, f'{name} has no Example in its docstring'


def test_every_module_declares_all():
    for fpath in sorted((ROOT / 'torch_liberator').rglob('*.py')):
        if fpath.name in ('__init__.py', '__main__.py'):
            continue
        modname = '.'.join(fpath.relative_to(ROOT).with_suffix('').parts)
        module = importlib.import_module(modname)
        assert isinstance(getattr(module, '__all__', None), (list, tuple)), (
            f'{fpath.name} has no __all__')
        for name in module.__all__:
            assert hasattr(module, name), f'{fpath.name}: {name} missing'


def test_api_docs_list_exactly_the_public_names():
    text = (ROOT / 'docs' / 'api.rst').read_text()
    documented = re.findall(
        r'^\.\. auto(?:function|class|data|exception):: torch_liberator\.(\w+)\s*$',
        text, flags=re.MULTILINE)
    assert sorted(documented) == sorted(public_names())
    assert len(documented) == len(set(documented))


def test_benchmark_scripts_examples_run():
    # the benchmark scripts are not part of the package, so pytest does not
    # collect them; their (fast) examples still have to work. One process
    # runs them all, apart from this one (they import the corpus, seed torch)
    import os
    import subprocess
    import sys
    bench = ROOT / 'benchmarks'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(bench), str(ROOT)]))
    scripts = sorted(p.name for p in bench.glob('*.py'))
    code = ('import sys, xdoctest\n'
            'failed = [name for name in sys.argv[1:] if xdoctest.doctest_module(\n'
            '    name, command="all", argv=[])["n_failed"]]\n'
            'sys.exit(f"examples failed in {failed}" if failed else 0)\n')
    proc = subprocess.run([sys.executable, '-c', code, *scripts],
                          cwd=bench, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}{proc.stderr[-2000:]}'


def test_no_private_name_is_imported_from_another_module():
    import ast
    for fpath in sorted((ROOT / 'torch_liberator').rglob('*.py')):
        for node in ast.walk(ast.parse(fpath.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('torch_liberator'):
                private = [a.name for a in node.names
                           if a.name.startswith('_') and not a.name.startswith('__')]
                assert not private, f'{fpath.name} imports {private} from {node.module}'


def test_the_package_ships_its_type_marker():
    assert (ROOT / 'torch_liberator' / 'py.typed').is_file()
    text = (ROOT / 'pyproject.toml').read_text()
    assert '"torch_liberator.deployer"' in text and 'py.typed' in text
