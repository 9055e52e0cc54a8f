"""
The pairs of the association corpus: real model pairs with a known truth.

Each pair is a checkpoint (the *source*, a state dict) and a model (the
*destination*) built from torchvision or timm with random weights
(``weights=None`` / ``pretrained=False``), plus the ground truth: the
one-to-one ``{source key: destination key}`` correspondence that a perfect
association loads, and nothing else. :mod:`corpus` judges a loader on them.

The truth is built one of three ways (``Pair.truth_from``):

* ``'identity'``: by construction. The destination is built from the very
  module objects of the source model (``nn.Sequential(*children)``, a
  torchvision detector whose backbone factory was intercepted, a wrapper
  that inserts a level ...), so a source tensor belongs exactly where the
  same tensor object sits in the destination.
* ``'outputs'``: a hand-written correspondence between two libraries (timm
  and torchvision), checked by :func:`verify_truth`: after copying the source
  through it, both models give the same outputs (eval mode, same input).
* ``'names'``: the published family (wrappers, prefixes, networks of another
  depth or head size): a source key belongs to the destination key of the
  same name after a prefix change, shoved when the sizes differ. Two
  different heads under one name (deeplabv3's and FCN's ``classifier``) have
  no known right answer: those destination keys are *unjudged*, whatever
  lands there counts neither way.

Ambiguous pairs: when a checkpoint fits two places equally well (one resnet18
checkpoint, a model with two identical resnet18 slots), nothing tells which
slot was meant, so the correct answer loads nothing there: the truth is
empty and every tensor loaded into either slot is wrong.

Cross-naming pairs (``Pair.cross_naming``): the correct mapping renames
modules inside the tree (``layer1`` -> ``stage1``, timm's names ->
torchvision's), not only wrapper levels or prefixes; only a naming-tolerant
association can recover them, but every mode must keep precision 1.0.

The pairs live in one module per family (imported here in report order):
:mod:`corpus_pairs.idioms` (children-Sequential, layer getters, feature
extractors), :mod:`corpus_pairs.detection` (detector and segmenter
backbones), :mod:`corpus_pairs.splits` (split backbones, inserted and
removed levels), :mod:`corpus_pairs.slots` (backbones side by side, EMA
copies, saved-with prefixes), :mod:`corpus_pairs.renamed` (renamed
internals, HuggingFace and detectron2 names), :mod:`corpus_pairs.cross`
(timm <-> torchvision), :mod:`corpus_pairs.foreign_names` (HuggingFace and
mmpretrain names), :mod:`corpus_pairs.published` (the published
family), :mod:`corpus_pairs.surgery` (blocks deleted, heads replaced,
checkpoints with extra keys, quantizable models),
:mod:`corpus_pairs.sorted_keys` (checkpoints with sorted or reversed keys),
:mod:`corpus_pairs.hunt3` (idiom variations, more splits, slots),
:mod:`corpus_pairs.hunt3_names` (HuggingFace ViT, mmdet / mmseg and Keras
names, more timm <-> torchvision, segmentation, video and quantizable
models), :mod:`corpus_pairs.hunt3_decoys` (hunt 3's wrong cells reduced),
:mod:`corpus_pairs.hunt4` (idioms on less used models, regrouped internals,
siblings side by side, extra heads), :mod:`corpus_pairs.hunt4_names`
(HuggingFace RegNet / EfficientNet and Keras names, timm checkpoints into
torchvision idioms, detector <-> segmenter), :mod:`corpus_pairs.hunt4_flat`
(Caffe, MXNet and Detectron 1 flat names, in model order or sorted),
:mod:`corpus_pairs.hunt4_more` (efficientnet_pytorch names, neighbours
whose names collide, converted checkpoints into detectors and beside a
sibling, an unrelated network), :mod:`corpus_pairs.hunt5` (video and
optical-flow models, second-generation transformers side by side, timm
variant neighbours, backbones under other names plus an extra head),
:mod:`corpus_pairs.rivals` (a shorter
network beside a longer sibling of its family and itself, nested, rebuilt
by an idiom or with another head), :mod:`corpus_pairs.fuzz4` (the mutation
fuzz's wrong cells from seed 9000 reduced), :mod:`corpus_pairs.fuzz5` (those
of seeds 9236, 9252 and 9477: a ``module`` child that is no wrapper, a
network of the model's names beside the model itself, a classifier by name
into another network), :mod:`corpus_pairs.unrelated`
(networks of other families: nothing belongs), :mod:`corpus_pairs.saved_otherwise`
(checkpoints under Lightning's ``model.``, models in DataParallel, checkpoints
without ``num_batches_tracked`` or of parameters only),
:mod:`corpus_pairs.real_libraries`
(HuggingFace, efficientnet_pytorch and Cadene's models themselves, when
installed: the ``corpus`` extra).
:mod:`corpus_pairs.registry` holds the cases and the registry,
:mod:`corpus_pairs.models` the shared model building blocks.

Example:
    >>> import corpus_pairs
    >>> case = corpus_pairs.build_case('convbn-renamed')
    >>> case.truth['1.running_mean']
    'norm.running_mean'
    >>> corpus_pairs.PAIRS['convbn-renamed'].truth_from
    'identity'
"""

from corpus_pairs.registry import PAIRS, Case, Pair, build_case, select_pairs, verify_truth

# the families register their pairs on import, in this order (sorted_keys
# makes variants of the pairs before it)
from corpus_pairs import idioms
from corpus_pairs import detection
from corpus_pairs import splits
from corpus_pairs import slots
from corpus_pairs import renamed
from corpus_pairs import cross
from corpus_pairs import foreign_names
from corpus_pairs import published
from corpus_pairs import surgery
from corpus_pairs import sorted_keys
from corpus_pairs import hunt3
from corpus_pairs import hunt3_names
from corpus_pairs import hunt3_decoys
from corpus_pairs import hunt4
from corpus_pairs import hunt4_names
from corpus_pairs import hunt4_flat
from corpus_pairs import hunt4_more
from corpus_pairs import hunt5
from corpus_pairs import rivals
from corpus_pairs import fuzz4
from corpus_pairs import fuzz5
from corpus_pairs import unrelated
from corpus_pairs import saved_otherwise
from corpus_pairs import real_libraries

#: the family modules; importing them registered their pairs, in report order
FAMILIES = (idioms, detection, splits, slots, renamed, cross, foreign_names, published,
            surgery, sorted_keys, hunt3, hunt3_names, hunt3_decoys, hunt4, hunt4_names,
            hunt4_flat, hunt4_more, hunt5, rivals, fuzz4, fuzz5, unrelated, saved_otherwise,
            real_libraries)

__all__ = [
    'Case',
    'FAMILIES',
    'PAIRS',
    'Pair',
    'build_case',
    'select_pairs',
    'verify_truth',
]
