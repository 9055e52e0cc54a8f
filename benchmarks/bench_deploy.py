"""
Deploy / load speed against plain torch.save / torch.load, in one run.

For torchvision resnet50 and vit_b_16 (weights=None) it times, on CPU:

* write: ``torch.save(model.state_dict(), f)`` vs ``torch_liberator.deploy``
  (first call in the process -- source extraction included -- and repeated
  calls, as a training loop that deploys each epoch makes), over an existing
  file and to a new one;
* load: ``model.load_state_dict(torch.load(f, weights_only=True))`` into a
  model that already exists vs ``DeployedModel(f).load_model()`` (hash check
  of every member + code import + build + strict load): first as the first
  load in a new process (how deploy files are used; the child has imported
  everything, and for the baseline built the model, before its clock
  starts), then repeated in one process, where :func:`torch.load` reuses
  memory it freed the round before; and the baseline plus building the model
  (what a user who only has the checkpoint must do).

Each timing is the median of ``--repeat`` runs, taken round-robin (one run
of every variant per round, so load bursts on a shared machine hit them
alike); the first-call deploy is one run. Ratios are ours / baseline from
the same run; nothing is asserted.

Usage::

    python benchmarks/bench_deploy.py [--repeat 5] [--models resnet50 vit_b_16]
                                      [--json out.json] [--write-docs] [--compare-021]

``--write-docs`` replaces the table between the ``bench_deploy`` markers in
docs/deploy.rst. To settle the targets (deploy <= 2x torch.save, first load
in a new process <= 1.5x torch.load + load_state_dict), run it on a quiet
machine: check ``uptime`` first (load average well below the CPU count), use
``--repeat 7`` or more, and run it twice; the table records the load average
at the start. Rewrite the verdicts in docs/deploy.rst from the new table.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

__all__ = ['main']

_BEGIN = '.. bench_deploy: begin'
_END = '.. bench_deploy: end'


def _factory(name):
    import torchvision
    from torchvision.models.resnet import Bottleneck, ResNet
    from torchvision.models.vision_transformer import VisionTransformer
    if name == 'resnet50':
        return ResNet, dict(block=Bottleneck, layers=[3, 4, 6, 3])
    if name == 'vit_b_16':
        return VisionTransformer, dict(image_size=224, patch_size=16, num_layers=12,
                                       num_heads=12, hidden_dim=768, mlp_dim=3072)
    raise KeyError(f'unknown model {name!r}; use resnet50 or vit_b_16 ({torchvision.__version__})')


def _round_robin(tasks, repeat):
    """
    Median seconds of each task, run in turn ``repeat`` times (one of each
    per round), so a burst of load on a shared machine hits every task
    alike instead of skewing one ratio.

    Example:
        >>> from bench_deploy import _round_robin
        >>> sorted(_round_robin({'a': lambda: 1.0, 'b': lambda: 2.0}, 3).items())
        [('a', 1.0), ('b', 2.0)]
    """
    times = {key: [] for key in tasks}
    for _ in range(repeat):
        for key, run in tasks.items():
            times[key].append(run())
    return {key: statistics.median(values) for key, values in times.items()}


def bench_one(name, dpath, repeat):
    """
    Time one model; returns a dict of seconds and ratios.

    Example:
        >>> # xdoctest: +REQUIRES(--slow)
        >>> import tempfile
        >>> from bench_deploy import bench_one
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     row = bench_one('resnet50', dpath, 1)
        >>> sorted(row)[:2]
        ['deploy_first_s', 'deploy_s']
    """
    import torch
    import torch_liberator
    from torch_liberator.deployer import DeployedModel
    cls, initkw = _factory(name)
    torch.manual_seed(0)
    model = cls(**initkw).eval()
    state = model.state_dict()
    pt_fpath = os.path.join(dpath, f'{name}.pt')
    zip_fpath = os.path.join(dpath, f'{name}.zip')
    row = {'model': name, 'tensors': len(state),
           'mbytes': sum(v.numel() * v.element_size() for v in state.values()) / 2 ** 20}

    start = time.perf_counter()
    torch_liberator.deploy(model, zip_fpath, initkw=initkw, verbose=0)
    row['deploy_first_s'] = time.perf_counter() - start
    torch.save(state, pt_fpath)
    target = cls(**initkw)
    counter = iter(range(10 ** 6))

    def timed(func):
        def run():
            start = time.perf_counter()
            func()
            return time.perf_counter() - start
        return run

    def timed_new(func, suffix):
        # writing to a new path: no old file to replace or truncate
        def run():
            path = os.path.join(dpath, f'{name}_new_{next(counter)}{suffix}')
            start = time.perf_counter()
            func(path)
            elapsed = time.perf_counter() - start
            os.unlink(path)
            return elapsed
        return run

    def build_and_load():
        fresh = cls(**initkw)
        fresh.load_state_dict(torch.load(pt_fpath, weights_only=True))

    tasks = {
        'save_s': timed(lambda: torch.save(state, pt_fpath)),
        'deploy_s': timed(lambda: torch_liberator.deploy(
            model, zip_fpath, initkw=initkw, verbose=0)),
        'save_new_s': timed_new(lambda p: torch.save(state, p), '.pt'),
        'deploy_new_s': timed_new(lambda p: torch_liberator.deploy(
            model, p, initkw=initkw, verbose=0), '.zip'),
        'load_existing_s': timed(lambda: target.load_state_dict(
            torch.load(pt_fpath, weights_only=True))),
        'build_load_s': timed(build_and_load),
        'load_model_s': timed(lambda: DeployedModel(zip_fpath).load_model()),
    }
    row.update(_round_robin(tasks, repeat))
    row.update(_fresh_process_loads(name, pt_fpath, zip_fpath, repeat))

    loaded = DeployedModel(zip_fpath).load_model().eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        row['outputs_equal'] = bool(torch.equal(loaded(x), model(x)))
    row['zip_mbytes'] = os.path.getsize(zip_fpath) / 2 ** 20
    row['write_ratio'] = row['deploy_s'] / row['save_s']
    row['write_first_ratio'] = row['deploy_first_s'] / row['save_s']
    row['write_new_ratio'] = row['deploy_new_s'] / row['save_new_s']
    row['load_ratio_vs_existing'] = row['load_model_s'] / row['load_existing_s']
    row['load_ratio_vs_build'] = row['load_model_s'] / row['build_load_s']
    row['fresh_load_ratio'] = row['fresh_load_model_s'] / row['fresh_load_existing_s']
    return row


_FRESH_SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import torch, torchvision
from bench_deploy import _factory
from torch_liberator.deployer import DeployedModel
mode, name, fpath = sys.argv[2:5]
if mode == 'base':
    cls, initkw = _factory(name)
    model = cls(**initkw)  # built before the clock starts
    start = time.perf_counter()
    model.load_state_dict(torch.load(fpath, weights_only=True))
else:
    start = time.perf_counter()
    DeployedModel(fpath).load_model()
print(time.perf_counter() - start)
"""


def _fresh_process_loads(name, pt_fpath, zip_fpath, repeat):
    """
    Median seconds of the first load in a new process (imports done, and
    for the baseline the model built, before the clock starts): the
    baseline and ``load_model`` alternate, one child process per run.
    """
    import subprocess
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / 'benchmarks'), str(REPO), os.environ.get('PYTHONPATH', '')]))
    times = {'fresh_load_existing_s': [], 'fresh_load_model_s': []}
    for _ in range(repeat):
        for key, mode, fpath in [('fresh_load_existing_s', 'base', pt_fpath),
                                 ('fresh_load_model_s', 'ours', zip_fpath)]:
            out = subprocess.run(
                [sys.executable, '-c', _FRESH_SCRIPT, str(REPO), mode, name, fpath],
                env=env, capture_output=True, text=True, check=True).stdout
            times[key].append(float(out.strip().splitlines()[-1]))
    return {key: statistics.median(values) for key, values in times.items()}


_TL021_SCRIPT = r"""
import json, sys, time, warnings
sys.path.insert(0, sys.argv[2])
warnings.simplefilter('ignore')
import torch, torch_liberator
from torch_liberator.deployer import DeployedModel
from torchvision import models
torch.manual_seed(0)
model = models.alexnet(weights=None)
model._initkw = dict(num_classes=1000)
start = time.perf_counter()
fpath = torch_liberator.deploy(model, sys.argv[1])
deploy_s = time.perf_counter() - start
start = time.perf_counter()
DeployedModel(fpath).load_model()
load_s = time.perf_counter() - start
print(json.dumps({'version': torch_liberator.__version__, 'deploy_s': deploy_s,
                  'load_s': load_s}))
"""


def bench_alexnet_vs_021(dpath, tl021='/tmp/tl021'):
    """
    AlexNet deploy/load with the published 0.2.1 (black box, child process)
    and with this version; also loads 0.2.1's zip with this version.

    Returns None when 0.2.1 is not installed at ``tl021``.

    Example:
        >>> # xdoctest: +REQUIRES(--slow)
        >>> import tempfile
        >>> from bench_deploy import bench_alexnet_vs_021
        >>> with tempfile.TemporaryDirectory() as dpath:
        ...     row = bench_alexnet_vs_021(dpath)
    """
    import subprocess
    import warnings
    import torch
    import torch_liberator
    from torch_liberator.deployer import DeployedModel
    from torchvision import models
    if not os.path.isdir(os.path.join(tl021, 'torch_liberator')):
        return None
    old_zip = os.path.join(dpath, 'alexnet-021.zip')
    # 0.2.1 leaves a copy of the weights in the temp dir: keep it in dpath
    env = dict(os.environ, TMPDIR=dpath)
    proc = subprocess.run([sys.executable, '-c', _TL021_SCRIPT, old_zip, tl021],
                          capture_output=True, text=True, cwd=dpath, env=env)
    if proc.returncode != 0:
        return {'error': proc.stderr.strip().splitlines()[-1:]}
    old = json.loads(proc.stdout.strip().splitlines()[-1])
    torch.manual_seed(0)
    model = models.alexnet(weights=None)
    model._initkw = dict(num_classes=1000)
    new_zip = os.path.join(dpath, 'alexnet-new.zip')
    start = time.perf_counter()
    torch_liberator.deploy(model, new_zip, verbose=0)
    deploy_s = time.perf_counter() - start
    start = time.perf_counter()
    DeployedModel(new_zip).load_model()
    load_s = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        start = time.perf_counter()
        DeployedModel(old_zip).load_model()
        load_old_zip_s = time.perf_counter() - start
    return {'old_version': old['version'], 'old_deploy_s': old['deploy_s'],
            'old_load_s': old['load_s'], 'deploy_s': deploy_s, 'load_s': load_s,
            'load_021_zip_s': load_old_zip_s}


def machine_info():
    """
    A short description of where the numbers come from.

    Example:
        >>> from bench_deploy import machine_info
        >>> 'python' in machine_info()
        True
    """
    import torch
    from run_benchmarks import cpu_model
    cpu = cpu_model()
    try:
        load = f', load average {os.getloadavg()[0]:.1f} at the start'
    except OSError:
        load = ''
    return (f'{cpu}, {os.cpu_count()} CPUs{load}, torch {torch.__version__} '
            f'({torch.get_num_threads()} threads), python {platform.python_version()}, '
            f'{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC')


def format_table(rows, info):
    """
    The RST tables (write, then load) written into docs/deploy.rst.

    Example:
        >>> from bench_deploy import format_table
        >>> row = dict(model='m', mbytes=1.0, save_s=1.0, deploy_first_s=2.0, deploy_s=1.1,
        ...            save_new_s=1.0, deploy_new_s=1.0, write_new_ratio=1.0,
        ...            fresh_load_existing_s=1.0, fresh_load_model_s=1.1, fresh_load_ratio=1.1,
        ...            load_existing_s=1.0, build_load_s=2.0, load_model_s=1.2,
        ...            write_ratio=1.1, write_first_ratio=2.0, load_ratio_vs_existing=1.2,
        ...            load_ratio_vs_build=0.6, outputs_equal=True)
        >>> text = format_table([row], 'here')
        >>> print(text.splitlines()[0])
        Measured on here.
        >>> 'load ratio (new process)' in text
        True
    """
    write = [['model', 'MiB', 'torch.save', 'deploy', 'write ratio',
              'deploy (first)', 'new file: torch.save', 'deploy', 'ratio']]
    load = [['model', 'torch.load + load_state_dict', 'load_model',
             'load ratio (new process)', 'same process: torch.load + load_state_dict',
             'load_model', 'ratio', 'build + load', 'ratio', 'same output']]
    for row in rows:
        write.append([
            row['model'], f'{row["mbytes"]:.0f}', f'{row["save_s"]:.3f} s',
            f'{row["deploy_s"]:.3f} s', f'{row["write_ratio"]:.2f}x',
            f'{row["deploy_first_s"]:.3f} s ({row["write_first_ratio"]:.1f}x)',
            f'{row["save_new_s"]:.3f} s', f'{row["deploy_new_s"]:.3f} s',
            f'{row["write_new_ratio"]:.2f}x'])
        load.append([
            row['model'], f'{row["fresh_load_existing_s"]:.3f} s',
            f'{row["fresh_load_model_s"]:.3f} s', f'{row["fresh_load_ratio"]:.2f}x',
            f'{row["load_existing_s"]:.3f} s', f'{row["load_model_s"]:.3f} s',
            f'{row["load_ratio_vs_existing"]:.2f}x', f'{row["build_load_s"]:.3f} s',
            f'{row["load_ratio_vs_build"]:.2f}x',
            'yes' if row['outputs_equal'] else 'NO'])
    lines = [f'Measured on {info}.', '', 'Write:', '']
    lines += _rst_table(write) + ['', 'Load:', ''] + _rst_table(load)
    return '\n'.join(lines)


def _rst_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = ' '.join('=' * w for w in widths)
    fmt = [' '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return [rule, fmt[0], rule] + fmt[1:] + [rule]


def write_docs(table):
    """
    Replace the table between the markers in docs/deploy.rst.

    Example:
        >>> # xdoctest: +SKIP
        >>> write_docs('table')
    """
    fpath = REPO / 'docs' / 'deploy.rst'
    text = fpath.read_text()
    begin = text.index(_BEGIN) + len(_BEGIN)
    end = text.index(_END)
    fpath.write_text(text[:begin] + '\n\n' + table + '\n\n' + text[end:])


def main(argv=None):
    """
    Run the benchmark; returns 0.

    Example:
        >>> # xdoctest: +REQUIRES(--slow)
        >>> from bench_deploy import main
        >>> main(['--repeat', '1', '--models', 'resnet50'])
        0
    """
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeat', type=int, default=5,
                        help='runs per timing (median); use 7+ on a quiet machine')
    parser.add_argument('--models', nargs='+', default=['resnet50', 'vit_b_16'])
    parser.add_argument('--json', default=None, help='also write the rows here')
    parser.add_argument('--write-docs', action='store_true',
                        help='replace the table in docs/deploy.rst')
    parser.add_argument('--compare-021', action='store_true',
                        help='also time AlexNet with the published 0.2.1 at /tmp/tl021')
    args = parser.parse_args(argv)
    info = machine_info()
    rows = []
    with tempfile.TemporaryDirectory() as dpath:
        for name in args.models:
            rows.append(bench_one(name, dpath, args.repeat))
            print(json.dumps(rows[-1]), flush=True)
        alexnet = bench_alexnet_vs_021(dpath) if args.compare_021 else None
    info = info.replace(' at the start', f' at the start, {os.getloadavg()[0]:.1f} at the end')
    table = format_table(rows, info)
    if alexnet and 'error' not in alexnet:
        table += (
            f'\n\nAlexNet, first deploy of the class in the process: deploy '
            f'{alexnet["deploy_s"]:.2f} s, load_model {alexnet["load_s"]:.2f} s '
            f'(published {alexnet["old_version"]}, measured in the same run: deploy '
            f'{alexnet["old_deploy_s"]:.2f} s, load_model {alexnet["old_load_s"]:.2f} s; '
            f'its zip loads here in {alexnet["load_021_zip_s"]:.2f} s).')
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({'info': info, 'rows': rows}, indent=2))
    if args.write_docs:
        write_docs(table)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
