"""
The built-in demonstration behind ``python -m torch_liberator demo``.

It reads the state of a torchvision resnet50 (random weights, nothing is
downloaded) and loads it, with :func:`torch_liberator.load_partial_state`,
into two models whose keys differ from the checkpoint's:

* :class:`EmbeddingModel`, which holds a resnet50 as ``.module`` next to a
  layer of its own (the checkpoint keys gain a ``module.`` prefix);
* torchvision's Faster R-CNN with a resnet50-FPN backbone (the keys gain
  ``backbone.body.``, the classifier ``fc`` has no place to go).

Each load is checked against the numbers the published README gives, and every
loaded tensor is compared with its source. :func:`main` runs a list of small
step functions sharing a context dict, so a step can be added without
touching the others.

Needs torchvision (``pip install -e ".[demo]"``).
"""
import importlib.util
import os

import torch

from torch_liberator.initializer import load_partial_state

__all__ = ['EmbeddingModel', 'main']

# what the published README reports for these loads
_EXPECTED = {
    'embedding': dict(full_add=320, skipped=0, self_unset=2, other_unused=0),
    'faster_rcnn': dict(full_add=318, skipped=2, self_unset=30,
                        other_unused=2),
}


class EmbeddingModel(torch.nn.Module):
    """
    A model that uses another network as a sub-network (``.module``) and adds
    a layer of its own (``.extra``).

    Args:
        inner (torch.nn.Module): the embedded network.

    Example:
        >>> import torch
        >>> from torch_liberator.demo import EmbeddingModel
        >>> model = EmbeddingModel(torch.nn.Linear(2, 2))
        >>> sorted(model.state_dict())
        ['extra.bias', 'extra.weight', 'module.bias', 'module.weight']
    """

    def __init__(self, inner):
        super().__init__()
        self.module = inner
        self.extra = torch.nn.Linear(1, 1)

    def forward(self, inputs):
        return self.module(inputs)


def main(verbose=1):
    """
    Run the demonstration.

    Args:
        verbose (int): 0 prints nothing; 1 one line per step; 2 adds the
            summary of each :func:`~torch_liberator.load_partial_state`
            call; 3 adds its per-key detail.

    Returns:
        int: 0 if every load matched the expected numbers and every loaded
        tensor equals its source; 1 otherwise; 2 if torchvision is missing.

    Example:
        >>> # xdoctest: +REQUIRES(module:torchvision)
        >>> from torch_liberator.demo import main
        >>> main(verbose=0)
        0
    """
    if importlib.util.find_spec('torchvision') is None:
        print('the demo needs torchvision; install it with: '
              'pip install -e ".[demo]"')
        return 2
    ctx = {'verbose': verbose, 'failures': []}
    for step in _steps():
        step(ctx)
    if verbose:
        if ctx['failures']:
            print(f'demo FAILED: {"; ".join(ctx["failures"])}')
        else:
            print('demo ok: every loaded tensor equals its source')
    return 1 if ctx['failures'] else 0


def _steps():
    """The steps :func:`main` runs, in order; each takes the context dict."""
    return [
        _step_read_source,
        _step_load_into_embedding_model,
        _step_load_into_faster_rcnn,
        _step_deploy_round_trip,
    ]


def _say(ctx, text):
    if ctx['verbose']:
        print(text)


def _step_read_source(ctx):
    import torchvision
    torch.manual_seed(0)
    source = torchvision.models.resnet50(weights=None)
    ctx['source_state'] = source.state_dict()
    _say(ctx, f'source: torchvision resnet50 (weights=None), '
              f'{len(ctx["source_state"])} tensors')


def _step_load_into_embedding_model(ctx):
    import torchvision
    torch.manual_seed(1)
    model = EmbeddingModel(torchvision.models.resnet50(weights=None))
    _load_and_check(ctx, 'embedding', model,
                    'EmbeddingModel (resnet50 as .module + Linear extra)')
    ctx['embedding_model'] = model


def _step_load_into_faster_rcnn(ctx):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    torch.manual_seed(2)
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    _load_and_check(ctx, 'faster_rcnn', model,
                    'Faster R-CNN resnet50-FPN (torchvision)')
    ctx['faster_rcnn'] = model


def _step_deploy_round_trip(ctx):
    """Deploy a resnet18 (code + weights) to a zip in a temporary directory,
    load it back with DeployedModel, and check the outputs are identical."""
    import tempfile
    from torchvision.models.resnet import BasicBlock, ResNet
    from torch_liberator.deployer import DeployedModel, deploy
    torch.manual_seed(3)
    initkw = dict(block=BasicBlock, layers=[2, 2, 2, 2])
    model = ResNet(**initkw).eval()
    with tempfile.TemporaryDirectory() as dpath:
        fpath = deploy(model, f'{dpath}/resnet18.zip', initkw=initkw, verbose=0)
        mbytes = os.path.getsize(fpath) / 2 ** 20
        loaded = DeployedModel(fpath).load_model().eval()
    inputs = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        same = torch.equal(loaded(inputs), model(inputs))
    _say(ctx, f'  -> deploy round trip: resnet18 -> {mbytes:.0f} MiB zip -> '
              f'DeployedModel.load_model(): '
              f'{"same outputs [ok]" if same else "outputs differ [MISMATCH]"}')
    if not same:
        ctx['failures'].append('deploy: the loaded model gives other outputs')


def _load_and_check(ctx, name, model, title):
    """Load the source state into ``model``, report it in one line, and
    record a failure if the counts or the loaded values are off."""
    state = ctx['source_state']
    info = load_partial_state(model, state, verbose=max(ctx['verbose'] - 1, 0))
    got = {
        'full_add': len(info['seen']['full_add']),
        'partial_add': (len(info['seen']['partial_add_all']) +
                        len(info['seen']['partial_add_some'])),
        'skipped': len(info['seen']['skipped']),
        'self_unset': len(info['self_unset']),
        'other_unused': len(info['other_unused']),
    }
    problems = [f'{key}={got[key]} (expected {value})'
                for key, value in _EXPECTED[name].items()
                if got[key] != value]
    dst = model.state_dict()
    full = set(info['seen']['full_add'])   # model keys
    wrong = [src_key for src_key, dst_key in info['mapping'].items()
             if dst_key in full and not torch.equal(dst[dst_key], state[src_key])]
    if wrong:
        problems.append(f'{len(wrong)} loaded tensors differ from their '
                        f'source, e.g. {wrong[0]}')
    status = 'ok' if not problems else 'MISMATCH'
    counts = ' '.join(f'{key}={value}' for key, value in got.items())
    _say(ctx, f'  -> {title}: {counts} [{status}]')
    ctx['failures'].extend(f'{name}: {problem}' for problem in problems)
