"""
Where do the tensors land? Association accuracy on real model pairs.

For each pair of torchvision models (weights=None) whose correct
correspondence is known — a backbone moved between wrappers, into a detector
or a segmenter, a network of another depth, a renamed wrapper — this loads the
source state into the destination with ``load_partial_state`` and counts the
tensors placed in the right place (the known target) and in a wrong place
(another target, or a key that has no counterpart). Keys whose correct target
is unknown (different heads) are not counted.

Run ``python benchmarks/accuracy.py [--baseline-dir /tmp/tl021] [--rst
docs/accuracy.rst]``; with a baseline dir holding the published
torch-liberator 0.2.1 (see benchmarks/README.md), its numbers are printed side
by side, computed in a child process; ``--rst`` also writes the table as a
docs page.
"""
import argparse
import json
import os
import subprocess
import sys

import torch
import torchvision
from torchvision.models import detection, segmentation
from torchvision.ops.misc import FrozenBatchNorm2d

MODES = ('embedding', 'isomorphism')


class _Wrap(torch.nn.Module):
    def __init__(self, name, inner, head_name=None):
        super().__init__()
        self.add_module(name, inner)
        if head_name:
            self.add_module(head_name, torch.nn.Linear(3, 5))


def _frozen_frcnn():
    backbone = detection.backbone_utils.resnet_fpn_backbone(
        backbone_name='resnet50', weights=None, norm_layer=FrozenBatchNorm2d,
        trainable_layers=3)
    return detection.FasterRCNN(backbone, num_classes=91)


M = torchvision.models

#: name -> (source factory, destination factory, [(src prefix, dst prefix)],
#:          source prefixes whose target is unknown)
PAIRS = {
    'resnet50->wrapper': (M.resnet50, lambda: _Wrap('module', M.resnet50(), 'extra'), [('', 'module.')], []),
    'resnet50->fasterrcnn': (M.resnet50, lambda: detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None), [('', 'backbone.body.')], []),
    'resnet50->fasterrcnn(frozen bn)': (M.resnet50, _frozen_frcnn, [('', 'backbone.body.')], []),
    'resnet50->retinanet': (M.resnet50, lambda: detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None), [('', 'backbone.body.')], []),
    'resnet50->deeplabv3': (M.resnet50, lambda: segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, aux_loss=False), [('', 'backbone.')], []),
    'resnet101->resnet50': (M.resnet101, M.resnet50, [('', '')], []),
    'resnet50->resnet101': (M.resnet50, M.resnet101, [('', '')], []),
    'resnet18->resnet34': (M.resnet18, M.resnet34, [('', '')], []),
    'efficientnet_b1->b0': (M.efficientnet_b1, M.efficientnet_b0, [('', '')], []),
    'efficientnet_b0->b1': (M.efficientnet_b0, M.efficientnet_b1, [('', '')], []),
    'maskrcnn->fasterrcnn': (lambda: detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None), lambda: detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None), [('', '')], []),
    'fasterrcnn->maskrcnn': (lambda: detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None), lambda: detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None), [('', '')], []),
    'mobilenet_v3->fasterrcnn_mobilenet': (M.mobilenet_v3_large, lambda: detection.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None), [('features.', 'backbone.body.')], []),
    'deeplabv3->fcn': (lambda: segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None), lambda: segmentation.fcn_resnet50(weights=None, weights_backbone=None), [('backbone.', 'backbone.')], ['classifier.', 'aux_classifier.']),
    'vit_b_16->wrapper': (M.vit_b_16, lambda: _Wrap('backbone', M.vit_b_16()), [('', 'backbone.')], []),
    'vit_b_16->vit_l_16': (M.vit_b_16, M.vit_l_16, [('', '')], []),
    'swin_t->wrapper': (M.swin_t, lambda: _Wrap('encoder', M.swin_t(), 'head2'), [('', 'encoder.')], []),
    'convnext_tiny->wrapper': (M.convnext_tiny, lambda: _Wrap('model', M.convnext_tiny()), [('', 'model.')], []),
    'renamed wrapper': (lambda: _Wrap('module', M.resnet50(), 'head_a'), lambda: _Wrap('backbone', M.resnet50(), 'head_b'), [('module.', 'backbone.')], ['head_a.']),
    'unwrap DataParallel prefix': (lambda: _Wrap('module', M.resnet18()), M.resnet18, [('module.', '')], []),
    'densenet121->densenet169': (M.densenet121, M.densenet169, [('', '')], []),
    'regnet_y_400mf->wrapper': (M.regnet_y_400mf, lambda: _Wrap('net', M.regnet_y_400mf()), [('', 'net.')], []),
}


def _truth(src_keys, dst_keys, rules, unknown):
    dst = set(dst_keys)
    truth = {}
    for key in src_keys:
        if any(key.startswith(u) for u in unknown):
            continue
        target = None
        for sp, dp in rules:
            if key.startswith(sp) and dp + key[len(sp):] in dst:
                target = dp + key[len(sp):]
                break
        truth[key] = target
    return truth


def _placed(info):
    """Source key -> model key of every tensor that was copied."""
    seen = info['seen']
    placed = set()
    for category in ('full_add', 'partial_add_some', 'partial_add_all'):
        placed.update(seen.get(category, ()))
    # the placement categories name model keys
    return {k: v for k, v in info['mapping'].items() if v in placed}


def score(placed, truth):
    right = sum(1 for k, v in placed.items() if k in truth and truth[k] == v)
    wrong = sum(1 for k, v in placed.items() if k in truth and truth[k] != v)
    possible = sum(1 for v in truth.values() if v is not None)
    return right, wrong, possible


def run_pairs(names, load_partial_state):
    results = {}
    for name in names:
        make_src, make_dst, rules, unknown = PAIRS[name]
        torch.manual_seed(0)
        src_state = make_src().state_dict()
        dst_model = make_dst()
        truth = _truth(src_state, dst_model.state_dict(), rules, unknown)
        for mode in MODES:
            info = load_partial_state(dst_model, src_state, association=mode, verbose=0)
            results[f'{name}|{mode}'] = score(_placed(info), truth)
    return results


def _child_main(names, out_fpath):
    from torch_liberator.initializer import load_partial_state
    with open(out_fpath, 'w') as file:
        json.dump(run_pairs(names, load_partial_state), file)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--baseline-dir', default=None,
                        help='folder holding the published torch-liberator 0.2.1')
    parser.add_argument('--pairs', nargs='*', default=list(PAIRS))
    parser.add_argument('--rst', default=None, help='also write the table here (reST)')
    parser.add_argument('--child-out', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_out:
        return _child_main(args.pairs, args.child_out)
    from torch_liberator import load_partial_state
    ours = run_pairs(args.pairs, load_partial_state)
    theirs = {}
    if args.baseline_dir:
        out = os.path.join(os.path.abspath(args.baseline_dir), '_accuracy.json')
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.baseline_dir))
        subprocess.run([sys.executable, os.path.abspath(__file__), '--child-out', out,
                        '--pairs', *args.pairs], check=True, env=env,
                       cwd=os.path.dirname(os.path.abspath(args.baseline_dir)))
        with open(out) as file:
            theirs = json.load(file)
    print(f'{"pair":40s} {"mode":12s} {"possible":>8s} {"right":>6s} {"wrong":>6s}'
          + (f' {"0.2.1 right":>11s} {"0.2.1 wrong":>11s}' if theirs else ''))
    worse = []
    for case, (right, wrong, possible) in ours.items():
        name, mode = case.split('|')
        line = f'{name:40s} {mode:12s} {possible:8d} {right:6d} {wrong:6d}'
        if case in theirs:
            r2, w2, _ = theirs[case]
            line += f' {r2:11d} {w2:11d}'
            if right < r2 or wrong > w2:
                worse.append(case)
        print(line)
    if theirs:
        print('cases worse than 0.2.1:', worse or 'none')
    if args.rst:
        _write_rst(args.rst, ours, theirs, worse)
    return 0


def _write_rst(fpath, ours, theirs, worse):
    import datetime
    import platform
    header = ['pair', 'mode', 'possible', 'right', 'wrong']
    if theirs:
        header += ['0.2.1 right', '0.2.1 wrong']
    rows = []
    for case, (right, wrong, possible) in ours.items():
        row = case.split('|') + [str(possible), str(right), str(wrong)]
        if theirs:
            row += [str(v) for v in theirs.get(case, ('n/a', 'n/a'))[:2]]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    rule = '  '.join('=' * w for w in widths)
    lines = [
        'Accuracy on real model pairs',
        '============================',
        '',
        '.. Generated by benchmarks/accuracy.py --rst; do not edit by hand.',
        '',
        'Where the tensors land when a torchvision model state (weights=None) is',
        'loaded with ``load_partial_state`` into a model whose correct',
        'correspondence is known: *possible* tensors have a known target,',
        '*right* were copied there, *wrong* were copied anywhere else (or where',
        'nothing should go). Keys whose target is unknown (different heads) are',
        'not counted.',
        '',
        f'Run on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, '
        f'Python {platform.python_version()}, torch {torch.__version__}, '
        f'torchvision {torchvision.__version__}.'
        + (f' Cases where ours is worse than 0.2.1: {", ".join(worse) or "none"}.'
           if theirs else ''),
        '',
        rule,
        '  '.join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
        rule,
    ]
    lines += ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines += [rule, '']
    with open(fpath, 'w') as file:
        file.write('\n'.join(lines))


if __name__ == '__main__':
    sys.exit(main())
