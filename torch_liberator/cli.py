"""
The ``python -m torch_liberator`` command line.

Subcommands::

    export MODULE:CLASS|MODULE:FACTORY [--initkw JSON] [--weights W.pt] [--export-modules PKG ...] --dst X.zip
    inspect X.zip [--json]      manifest, members, initkw, imports; runs nothing
    verify X.zip [--sha256 HEX] hashes (and the whole file's), then a strict load (and
                                the stored example check) in a fresh process from an
                                empty folder
    map SRC DST [--json]        the load plan of checkpoint SRC into DST (a
                                checkpoint or a MODULE:FACTORY model); loads nothing
    demo [--verbose N]          partial loading + a deploy -> load round trip

and the published form, which packages an already-exported model file::

    python -m torch_liberator --model FILE.py --weights W.pt [--info I.json] [--dst DIR_OR_ZIP]

Exit status: 0 success, 1 error (one line on stderr, no traceback), 2 usage.
The CLI only uses the public API and catches
:class:`~torch_liberator.errors.LiberatorError` at this boundary.

Example:
    >>> from torch_liberator.cli import main
    >>> main(['inspect', '/does/not/exist.zip'])
    1
"""
import argparse
import json
import os
import re
import sys

from torch_liberator.errors import DeployError, LiberatorError

__all__ = ['main']


def _build_parser():
    parser = argparse.ArgumentParser(
        prog='python -m torch_liberator',
        description='Single-file model deployments and partial state loading. '
                    'Without a subcommand, package --model and --weights into '
                    'a deploy zip (the torch_liberator 0.2 form).')
    parser.add_argument('--model', help='an exported model .py file '
                        '(defines get_model_cls() and get_initkw())')
    parser.add_argument('--weights', help='a checkpoint (.pt/.pth/.safetensors ...)')
    parser.add_argument('--info', help='a JSON file stored as train_info.json')
    parser.add_argument('--dst', default='.', help='the .zip to write, or a '
                        'directory (a name is generated); default: .')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')

    exp = sub.add_parser('export', help='export a class and its weights to a deploy zip',
                         description='Build MODULE:CLASS(**initkw) (or call a factory, '
                                     'MODULE:FUNCTION(**initkw)), load --weights '
                                     'strictly if given, and deploy it.')
    exp.add_argument('target', metavar='MODULE:NAME',
                     help='a class (torchvision.models.resnet:ResNet, path/to/file.py:Net) '
                          'or a factory (torchvision.models:resnet18, timm:create_model)')
    exp.add_argument('--initkw', default=None,
                     help='JSON object of keyword arguments; a string "MODULE:NAME" '
                          'stands for the class or function it names, e.g. '
                          '{"block": "torchvision.models.resnet:Bottleneck", '
                          '"layers": [3, 4, 6, 3]}')
    exp.add_argument('--weights', default=None, help='a checkpoint to load strictly')
    exp.add_argument('--export-modules', nargs='*', default=[], metavar='PKG',
                     help='packages whose code is inlined')
    exp.add_argument('--info', default=None, help='a JSON file stored as train_info.json')
    exp.add_argument('--dst', required=True, help='the .zip to write (or a directory)')

    ins = sub.add_parser('inspect', help='show what a deploy file holds (runs nothing)')
    ins.add_argument('fpath', help='a deploy zip or directory')
    ins.add_argument('--json', action='store_true', help='print JSON')

    ver = sub.add_parser('verify', help='check hashes, then load strictly (and run the '
                         'stored example check) in a fresh process from an empty folder')
    ver.add_argument('fpath', help='a deploy zip or directory')
    ver.add_argument('--sha256', default=None, metavar='HEX',
                     help="the whole file's sha256, as published by its author")

    demo = sub.add_parser('demo', help='run the built-in demonstration')
    demo.add_argument('--verbose', type=int, default=1)
    _add_map_parser(sub)
    return parser


def main(argv=None):
    """
    Run the command line; returns the exit status.

    Args:
        argv (List[str] | None): arguments (default ``sys.argv[1:]``).

    Returns:
        int: 0 success, 1 error, 2 usage error.

    Example:
        >>> from torch_liberator.cli import main
        >>> main(['--model', 'x.py'])  # --weights is missing
        2
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else 2
    try:
        if args.command is None:
            if not args.model or not args.weights:
                parser.print_usage(sys.stderr)
                print('python -m torch_liberator: error: --model and --weights '
                      'are required (or give a COMMAND; see --help)',
                      file=sys.stderr)
                return 2
            return _run_package(args)
        return {'export': _run_export, 'inspect': _run_inspect,
                'verify': _run_verify, 'demo': _run_demo,
                'map': _run_map}[args.command](args)
    except LiberatorError as err:
        print(f'torch_liberator: error: {err}', file=sys.stderr)
        return 1


def _run_package(args):
    from torch_liberator.deployer import deploy_files
    fpath = deploy_files(args.model, args.weights, args.dst,
                         train_info=args.info, verbose=0)
    print(os.fspath(fpath))
    return 0


def _import_target(target, error=DeployError):
    """
    The object ``MODULE:NAME`` names (``NAME`` may be dotted; ``MODULE`` may
    be a ``.py`` file, or a module importable from the current folder);
    failures raise ``error`` with what to write instead.
    """
    import importlib
    modname, sep, name = target.partition(':')
    if not sep or not modname or not name:
        raise error(
            f'{target!r} is not MODULE:NAME (e.g. torchvision.models:resnet18, '
            'torchvision.models.alexnet:AlexNet or net.py:Net)')
    try:
        if modname.endswith('.py'):
            import ubelt as ub
            obj = ub.import_module_from_path(os.path.abspath(modname))
        else:
            if os.getcwd() not in sys.path and '' not in sys.path:
                sys.path.insert(0, os.getcwd())
            obj = importlib.import_module(modname)
    except Exception as err:  # a module may raise anything on import
        raise error(
            f'cannot import module {modname!r}: {type(err).__name__}: '
            f'{" ".join(str(err).split())}') from err
    for part in name.split('.'):
        if not hasattr(obj, part):
            raise error(f'module {modname!r} has no {name!r}')
        obj = getattr(obj, part)
    return obj


def _run_export(args):
    import inspect
    from torch_liberator import deploy
    from torch_liberator.checkpoint import read_state_dict
    from torch_liberator.deployer import describe_layout_difference, parse_initkw
    build = _import_target(args.target)
    if not callable(build):
        raise DeployError(f'export target {args.target!r} is not a class or a factory function')
    initkw = parse_initkw(args.initkw, name='--initkw') if args.initkw else {}
    try:
        model = build(**initkw)
    except Exception as err:  # the model's own code may raise anything
        raise DeployError(
            f'{args.target}(**{initkw}) failed: {type(err).__name__}: '
            f'{" ".join(str(err).split())}; fix --initkw') from err
    if args.weights:
        state = read_state_dict(args.weights)
        diff = describe_layout_difference(model.state_dict(), state)
        try:
            if not diff:
                model.load_state_dict(state, strict=True)
        except Exception as err:  # the model's load hooks may raise anything
            diff = f'{type(err).__name__}: {" ".join(str(err).split())}'
        if diff:
            raise DeployError(
                f'--weights {args.weights!r} do not load strictly into '
                f'{args.target}: {diff}')
    else:
        print('note: no --weights given; deploying freshly initialized weights',
              file=sys.stderr)
    factory = None
    if not inspect.isclass(build):  # a factory: keep the path as written
        factory = build if args.target.split(':')[0].endswith('.py') else args.target
    fpath = deploy(model, args.dst, initkw=initkw, factory=factory,
                   export_modules=args.export_modules, train_info=args.info,
                   verbose=0)
    print(os.fspath(fpath))
    return 0


def _describe(fpath):
    from torch_liberator.deployer import DeployedModel
    desc = DeployedModel(fpath).info
    desc['fpath'] = os.fspath(fpath)
    desc.pop('code', None)
    return desc


def _escape(text):
    """Text from a file, terminal control characters (and bidi overrides,
    which reorder what is shown) escaped."""
    return re.sub(r'[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]',
                  lambda m: m.group().encode('unicode_escape').decode('ascii'), str(text))


def _run_inspect(args):
    desc = _describe(args.fpath)
    if args.json:  # json.dumps escapes control characters
        print(json.dumps(desc, indent=2, sort_keys=True))
        return 0
    manifest = desc['manifest'] or {}
    print(_escape(f'deploy file: {desc["fpath"]}'))
    if desc.get('sha256'):
        print(f'sha256:      {desc["sha256"]}')
    if desc['legacy']:
        print('format:      torch_liberator 0.2 (no manifest: cannot be verified)')
    else:
        print(_escape(f'format:      {manifest.get("format")} v{manifest.get("format_version")}'))
        model = manifest.get('model', {})
        print(_escape(f'model:       {model.get("class")} (from {model.get("origin")})'))
        print(_escape(f'initkw:      {json.dumps(manifest.get("initkw"), sort_keys=True)} '
                      f'({manifest.get("initkw_source")})'))
        example = manifest.get('example')
        if isinstance(example, dict):
            print(_escape(f'check:       example inputs and outputs stored (rtol='
                          f'{example.get("rtol")}, atol={example.get("atol")})'))
        print(_escape(f'versions:    {json.dumps(manifest.get("versions"), sort_keys=True)}'))
    print(_escape(f'requires:    {json.dumps(desc["requires"], sort_keys=True)}'))
    print('members:')
    hashes = manifest.get('members', {})
    for name, size in sorted(desc['members'].items()):
        digest = (hashes.get(name) or {}).get('sha256') or ''
        print(_escape(f'  {size:>12,d}  {name}  {digest[:16]}'))
    return 0


def _run_verify(args):
    from torch_liberator.deployer import DeployedModel, load_in_fresh_process
    import warnings
    loader = DeployedModel(args.fpath)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # a 0.2 file: the OK line says it
        loader.verify(sha256=args.sha256)
    legacy = loader.info['legacy']
    result = load_in_fresh_process(args.fpath)
    note = ' (0.2 file: no hashes to check)' if legacy else ' hashes match;'
    check = result['check']
    checked = ('; no example inputs stored to check outputs' if check is None else
               f'; outputs on the stored example inputs match ({check["tensors"]} '
               f'tensor(s), max abs diff {check["max_abs_diff"]:.3g})')
    print(f'OK:{note} {result["class"]} {result["tensors"]} tensors loaded strictly '
          f'in a fresh process from an empty folder{checked}')
    return 0


def _run_demo(args):
    try:
        from torch_liberator.demo import main as demo_main
    except ImportError as err:
        print(f'torch_liberator: error: the demo needs {err.name!r}; '
              'pip install "torch_liberator[demo]"', file=sys.stderr)
        return 1
    return demo_main(verbose=args.verbose)


# --- map ---------------------------------------------------------------------

class _MapError(LiberatorError, ValueError):
    """A ``map`` argument names nothing that can be planned."""


def _add_map_parser(sub):
    from torch_liberator.loadplan import DEFAULT_ASSOCIATION
    mp = sub.add_parser(
        'map', help='show which checkpoint tensor would go where (loads nothing)',
        description='Print the load plan of checkpoint SRC into DST: every pair '
                    'with its action (copy, shove with both shapes, skip with '
                    'the reason), the model keys left unset, and counts per '
                    'action. SRC and DST are checkpoint files or MODULE:FACTORY '
                    'models (e.g. torchvision.models:resnet50, built with '
                    'weights=None on the meta device when possible).')
    mp.add_argument('src', metavar='SRC', help='the checkpoint (or MODULE:FACTORY)')
    mp.add_argument('dst', metavar='DST', help='the model: MODULE:FACTORY or a checkpoint')
    mp.add_argument('--association', default=DEFAULT_ASSOCIATION,
                    help=f'how keys are matched (default {DEFAULT_ASSOCIATION!r})')
    mp.add_argument('--mangle', default='true',
                    help='what to do with pairs whose shapes differ: true '
                         "(copy the leading block), false (skip), a policy "
                         "name (center, interpolate, adapt_channels, reshape, "
                         'raise) or a JSON object {model key glob: policy}')
    mp.add_argument('--rename', default=None, metavar='JSON',
                    help='JSON object of {checkpoint key: model key} pairs '
                         'and/or {regex: replacement} rules')
    mp.add_argument('--include', action='append', metavar='GLOB',
                    help='only pairs with a key matching GLOB may load (repeatable)')
    mp.add_argument('--exclude', action='append', metavar='GLOB',
                    help='pairs with a key matching GLOB never load (repeatable)')
    mp.add_argument('--ema', action='store_true',
                    help="plan the checkpoint's EMA weights")
    mp.add_argument('--json', action='store_true', help='print the plan as JSON')


def _parse_json_option(name, text):
    try:
        return json.loads(text)
    except ValueError as err:
        raise _MapError(f'{name} is not valid JSON ({err}): {text!r}') from err


def _build_factory(target):
    """A model from ``MODULE:FACTORY`` (``FACTORY`` may be dotted), built
    without pretrained weights, on the meta device when it allows."""
    import inspect
    import torch
    obj = _import_target(target, error=_MapError)
    kwargs = {}
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        params = {}
    if 'weights' in params:
        kwargs['weights'] = None
    if 'weights_backbone' in params:
        kwargs['weights_backbone'] = None
    if 'pretrained' in params:
        kwargs['pretrained'] = False
    try:
        with torch.device('meta'):
            model = obj(**kwargs)
    except Exception:  # some models compute values at build time
        try:
            model = obj(**kwargs)
        except Exception as err:
            raise _MapError(
                f'{target}({kwargs}) failed: {type(err).__name__}: {err}') from err
    if not isinstance(model, torch.nn.Module):
        raise _MapError(f'{target} returned a {type(model).__name__}, '
                        'not a torch.nn.Module')
    return model


def _map_side(spec, ema):
    """The state (or specs) named by a map argument: a file, else MODULE:FACTORY."""
    from torch_liberator.tensorsource import SpecSource, open_source
    if os.path.exists(spec) or ':' not in spec:
        return open_source(spec, device='cpu', ema=ema)
    return SpecSource(_build_factory(spec).state_dict())


def _run_map(args):
    from torch_liberator import plan_load
    mangle = {'true': True, 'false': False}.get(args.mangle.lower(), args.mangle)
    if isinstance(mangle, str) and mangle.startswith('{'):
        mangle = _parse_json_option('--mangle', mangle)
    rename = None
    if args.rename is not None:
        rename = _parse_json_option('--rename', args.rename)
    src = _map_side(args.src, args.ema)
    dst = _map_side(args.dst, False)
    try:
        plan = plan_load(dst.specs, src, association=args.association,
                         mangle=mangle, rename=rename, include=args.include,
                         exclude=args.exclude)
    except ValueError as err:  # an unknown --association
        if isinstance(err, LiberatorError):
            raise
        raise _MapError(str(err)) from err
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print(plan)
    return 0
