"""
A mutation fuzz on real models: two random views of one torchvision or timm
model that share its module objects, judged by values in every mode.

Each seed builds a model (``weights=None``) and, independently for the
checkpoint and for the model, rearranges its module tree without copying a
tensor: levels kept, wrapped under a new name, a child renamed or given an
inserted level, a list split in place into named parts (renumbered, or
keeping its indices), a container flattened into ``nn.Sequential``, the
last children dropped; sometimes another model is put beside either side,
and sometimes the checkpoint's keys come sorted (a safetensors file). The
truth is tensor identity (``corpus.Case`` with ``truth=None``), so every
pair of views has an exact answer; ``corpus.judge_case`` loads stamped
values and reads back where each tensor landed. A (seed, mode) that puts a
tensor in a wrong place is appended to the output as one JSON line with the
operations on both sides and example keys; the rest is printed.

Found this way (and fixed, with tests): resnet50's ``layer4`` split in place
into renumbered parts (36 tensors one block off in embedding and auto), an
exact mode that shoved a checkpoint into a wider network under ``module.``,
a headless network beside another whole one that lent the model its head
(seeds 9005, 9160), a ViT's two blocks swapped in structure when each had
a level inserted, one in the checkpoint, one in the model (seed 9171), a
top-level ``module`` child beside another network taken for DataParallel's
wrapper in module-hack (seed 9236), a resnet18 of the model's names loaded
beside the resnet34 itself saved as ``nn.Sequential(*children)`` (seed
9252), a classifier by name into another network of the checkpoint's names
(seed 9477), a wide_resnet50_2 under resnet50's names beside the resnet50
itself as a children-Sequential in the checkpoint, which embedding shoved
into a resnet50 (seed 10141), a timm resnet18 with one child renamed beside
a torchvision resnet34 of its names, keys sorted (seed 10681: the resnet34
loaded in the name modes), a googlenet's inception3b saved as ``body``
beside the model's inception4c wrapped as ``inception4c.body``, keys sorted
(seed 10714: one BatchNorm by its name in structure), a network's
classifier by name and shape into another network of the model beside the
headless one (seeds 10819, 10981, and 11346 on the checkpoint's side), a
ViT block's MLP given to the next block, its own a level deeper (seed
11418, structure), two equal blocks renamed on both sides, where the tie
made embedding skip their level and place them one module at a time (seed
12178), an item of a list started at another number while its namesake
item fits as well (seeds 11416, 12302, 12561, 12867: equal blocks of a
list split keeping its numbers, in the name modes), a head by name into
another network where structure found nothing else, and that network's
stem granted by order before its rival's in embedding (seeds 12659,
13322), a name swapped between two stages, the checkpoint's ``layer3``
saved as ``body2`` and the model's ``layer4`` named ``body2`` (seed 13419:
30 shoves in the name modes; seed 15300, the same one module deep: a
flattened ConvNeXt's classifier norm as ``features.2.0``, the model's
downsampling norm of that key), a resnet18 saved under the name of the
model's wrapper, lending a resnext50 its stem and head (seed 13978: name
modes), a wide_resnet50_2's ``fc`` taken as a name anchor though only the
headless resnet50 beside it lacked one (seeds 14133, 14940: structure
aligned the wide network, 109 wrong), a list cut in parts, a later one
named like the list itself (seeds 12097, 12523: ``blocks.blocks.0``, the
fifth item, taken for the model's ``blocks.0`` once ``blocks.`` was
stripped, in every tree mode), a head by its unique shape alone into
another network of the model, keys sorted, where structure placed nothing
else (seed 14339), a wide_resnet50_2's shortcut by its name and shape into
the resnext50 beside the model's own truncated network, keys sorted (seed
15824, structure; embedding had paired two equal parts of a list by the
order of their sorted names), a resnext50 into a wide_resnet50_2 of its
very names beside its own renamed copy, every conv2 shoved (seed 16495:
320 wrong in embedding, 291 in structure, 174 in auto), a timm resnet18,
keys sorted, into a resnet34 of its names beside its own copy with a stage
and the head renamed (seed 17245: 120 wrong in the name modes). Seeds
9720-17342 and 17400-17728 found nothing else but adversarial names (seeds
11587, 12068, 12814: the checkpoint holds the model's exact key on another
network's tensor, which the strict modes shove as published; 14384: the
model's exact key ``stage.classifier.weight`` on another network's head)
and prefix-hack's published meaning (seed 17649: a resnet34 into a
resnet18 of its names beside its own children-Sequential, 92 wrong, the
family of the corpus's resnet50d cell; fixed since). Seeds 17729-19999
found (and fixed): an item renumbered because its namesake renames a
layer (17803), a whole list cut short against a later part of the
model's (18033), a headless own copy beside a longer network of its names
(18519), a head whose shape a copy beside lacks as a shape anchor (18862),
identical keys below a wrapper and a part both named ``blocks`` (19398);
seed 18409 is the strict modes' exact key on another network's head.
Seeds 17343-17399 and 20000-21399 found (and fixed): a wide_resnet50 saved
as ``main`` beside a flattened regnet, into a model whose ``main`` is that
regnet: strict and module-hack shoved the resnet's ``main.fc`` into the
regnet's, the one name the two share (20518); a mixer's ``blocks`` cut to
seven, into the mixer as ``nn.Sequential``: embedding skipped ``blocks``
and put ``blocks.1``'s norms into the model's ``1.7`` (20979). Seeds
21400-21781 and 21800-22199 found a mobilenet_v3_small whose
``features.11`` is renamed inside, into a model whose ``features`` is split
keeping its numbers: prefix-hack and isomorphism took ``features.10`` for
the model's ``features.part.11``, its renamed twin not counted as the
namesake (22139, fixed); and 21679, the strict modes' exact key on another
network's head of the same shape. Seeds 22200-23399 found timm's
mobilenet_v2 cut in place into ``stem``/``layers``/``base`` parts keeping
its numbers, into a model whose ``features.5`` is wrapped as
``features.5.base`` (22633: embedding took the part for the wrapper by
name, fixed); a resnet50 wrapped as ``module`` into a model whose
``module`` is a timm resnet18 beside the resnet50 flattened (23012: the
strict modes and isomorphism load the exact keys, the published meaning);
and a shufflenet stage cut into parts keeping their numbers, into the same
stage cut into parts renumbered from 0 (23131: embedding put block 1 into
the model's ``core.1``, block 2, on a correspondence the moved parts
contradicted; fixed).
With ``--cross`` (one architecture in timm and in torchvision), seeds
0-699 found, in embedding: timm's ``blocks.0`` (``blocks`` skipped) taken
for torchvision's ``features`` as ``0`` (3), and the reverse (67, 121,
125, 149); two stems of one design side by side, the closer one taken
(52); mobilenet_v3's ``features.15.block.0`` as mobilenet_v2's
``features.15.conv.0`` (109): all fixed. The rest put a classifier, a stem
or a BatchNorm of another network by its name and shape (the published
name modes' meaning, as in the corpus's unrelated pairs), or (605) a
regnet's stem, clean, for a timm mnasnet's flattened one whose exact keys
(``layers.{0,1}``) the model happens to use, in prefix-hack and
isomorphism; auto was never wrong. Seeds 700-1900 found more of that
family, the largest timm's mnasnet_100 into torchvision's mnasnet1_0
beside timm's efficientnet_b0, whose names and many shapes are the
checkpoint's (1237: 194-199 wrong in the name modes); a network whole, in
the other library's nesting, on one side now outweighs names into another
network (fixed there and in 206, 228, 232, 277, 327, 345, 363, 411, 433,
493, 648, 766, 864, 900, 928, 965, 989, 1027, 1064, 1195); and a stem's
BatchNorm renamed by number beside a conv that placed nothing (1686,
fixed). Left: a stem taken by its position numbers (235, 605, 1089, 1305,
1541, 1625: 6 wrong in prefix-hack and isomorphism, 1305 in embedding
too; keys sorted, or a regnet's proj registered first, so no whole fit)
and a timm resnet18's ``bn1`` by name beside a mobilenet_v3 (371: 5
wrong in the name modes). Seeds 1900-2399 found a regnet's stem into a
flattened mnasnet's exact keys (605's kind, fixed), a model without its
head whose names another network of the checkpoint has (2315: 143 wrong
in the name modes and auto, fixed), more of the stem family (1935, 2175),
a stem norm by suffix in embedding (2254: 2; 2333, ConvNeXt into Swin, as
in the corpus: 4), and a torchvision resnet18 without its head into a
model holding timm's resnet18 (renamed inside) beside a resnet34 of the
checkpoint's very names (2276: 120 wrong in every tree mode and auto; the
resnet34 holds every key by name, its lists in part). All of these are
fixed since (2276 left out: a whole fit against names that skip parts of
a longer network; the stem family and 2254/2333/371 by the thin-mapping
witness). Cross seeds 2400-3099 found the stem family again (2477, 2488,
2590), timm's mobilenetv3_large_100 without its classifier beside a
torchvision mobilenet_v3_small, for a torchvision mobilenet_v3_large
(2837: 41-47 wrong in the name modes and auto), a DeiT's MLPs into a
ConvNeXt's second stage by timm's shared names (2847, 2910: 12 each) and
an efficientnet's stem saved as ``stem`` taken for a regnet's while the
regnet's own went unused (2861: 6 in embedding); all fixed. Ordinary
seeds 24700-25399 found a mixer's blocks cut 7 + 1 against 5 + 1 + 2,
two later parts of one item paired by their number (25363: 12 in
embedding, fixed). Cross seeds 3100-3399 found nothing; ordinary seeds
25400-25699 found a shufflenet's stage3 (keys sorted, its last block
renamed) paired by number with the model's stage3 cut into ``encoder.0``
and ``backbone.{0..6}`` (25601: 126 wrong in prefix-hack, 108 in
embedding, isomorphism and auto; fixed), and 11587 above is fixed (a
shove into ``head.fc`` while an unused module of the checkpoint fits it).
On the code after those fixes, ordinary seeds 25700-25899 found nothing
and cross seeds 3400-3599 one case, left open: a torchvision
efficientnet_b0, keys sorted, into timm's beside a torchvision
mobilenet_v2, whose stem BatchNorm ``features.0.1`` embedding fills by
its full name (3585: 5 wrong, 14 before these fixes; fixed since: the
structure mode puts its neighbour ``features.0.0`` in timm's
``conv_stem``). Then ordinary seeds 25900-26514 and cross seeds
3600-4099 found one case: a torchvision mobilenet_v2 with levels inserted
and wrapped, into a timm mobilenetv2_100 without its head beside a
torchvision mnasnet0_5 (3955: structure and auto align 33 scattered
tensors, 13 into the mobilenet and 20 into the mnasnet's blocks of the
same design, turn about; fixed: one network does not go to two). After
that fix, ordinary seeds 26515-27599 and cross seeds 4100-4899 found
nothing. On the session's final code, ordinary seeds 27600-27899 and
cross seeds 4900-5199 found two cases, left open: a mixer into a model
whose ``blocks`` is wrapped as ``blocks.main`` and cut into parts
renumbered from 0, the middle one named ``blocks`` (27733: blocks 0-2
into the model's ``blocks.main.blocks.{0,1,2}``, blocks 3-5, by name, 36
wrong in prefix-hack, embedding, isomorphism, structure and auto); and a
torchvision regnet_y_400mf (a stage renamed, a swin_t beside it) into
timm's, whose first block's shortcut projection has the shape of its
first convolution (5131: 12 wrong in embedding, the shortcut-first
family). Both fixed the next session, which also fixed the exact modes'
cases left open as their published meaning (21679, 23012: a module of the
model holding the whole checkpoint now outweighs exact names elsewhere)
and added ``--wide`` (42 more models: other families, other libraries'
blocks, detection and segmentation models; 8 more architectures with
``--cross``). Ordinary seeds 27900-28239 and cross seeds 5200-5499 found
nothing; ``--wide`` seeds 0-699 found a VGG's head shoved into a namesake
mobilenet (157, strict), a cut list's remaining parts placed by numbers
(561, embedding), and with ``--cross`` a suffix crossing two namesakes
(179, an inception_v3 in structure) and a regnet shoved whole into a
namesake network of other widths while timm's, of its very shapes, sat
beside (393, 635: up to 296 wrong in the name modes and auto); all fixed.
``--wide`` seeds 700-1099, with and without ``--cross``, found nothing;
1100-1499 found a poolformer's MLPs by name and shape in a tiny_vit, keys
sorted (1304, every tree mode and auto) and, with ``--cross``, the mirror
of 5131 (1485, embedding); both fixed. On that session's final code,
``--wide`` seeds 1500-1799 found three cases, left open: a res2net50 whose
layer1 blocks are flattened or renamed in the checkpoint, into its own
layer1 cut short (1554: structure took ``layer1.2`` for the model's
``layer1.1`` by the names the flattened ``layer1.1`` lost, 25 wrong; auto
right); with ``--cross``, a torchvision efficientnet_b0's stem BatchNorm
by its full name ``features.0.1`` into a torchvision mobilenet_v2, the
checkpoint's timm mobilenetv2 beside it, keys sorted (1525: embedding, 5
wrong, the family of 3585); and a torchvision resnext50, keys sorted,
block 3 of layer3 a level deeper, into timm's whose layer3 is
split into ``backbone.{0..4}`` and ``core.0`` (1747: embedding and
auto put block 3 in ``core.0``, 18 wrong). All three were fixed the next
session. ``--wide`` seeds 1800-2999 then found a mobilenet_v3_small's
``features`` cut in parts in other places on the two sides, both called
``encoder`` (2729: every tree mode and auto), and with ``--cross`` a
module of the checkpoint that is the model less its head beside a
network of the model's names (2548: the name modes, structure and auto);
both fixed. ``--reorder`` (children registered in another order, keys
reversed or parameters first) found, in seeds 0-799 and cross seeds
0-499, the model's shapes in one module of the checkpoint that no order
finds (cross 54: 360 wrong in the name modes; fixed) and an inception
block whose branches the model registers in another order (649:
structure; fixed); and, left as the structure mode's nature, pairs that
only a falsified order places: a regnet block registered shortcut-like
in the checkpoint (cross 105: 12 wrong in structure and auto) and an
hrnet's children shuffled against the model flattened to numbers (199:
6 wrong in structure; auto right). No names agree there, and the order
is the only evidence left. ``--reorder`` seeds 800-1399 and cross seeds
500-1099 found a resnet50d saved deeper beside a res2net50 under the
model's wrapper name (1321: 199 wrong in strict and module-hack), a
convnext whose layer scales the shapes fit did not count as one shape
(cross 876: 160 wrong in the name modes) and the inception case again
with the checkpoint's branches flattened (cross 828: structure), all
fixed; left open: a googlenet flattened against one shuffled (1188: 10
wrong in structure, order only, auto right), a resnext50's classifier
by name and shape into a headless inception_v3's place (cross 820: 2
wrong in embedding, structure and auto, the head-beside-a-headless-network
family) and, in cross seeds 1100-1699 on the final code, a swin_t saved
under ``head`` whose ``head.norm`` is the model's key and shape (cross
1163: 2 wrong in strict and module-hack: identical keys, and the model's
own network in the checkpoint in another library's nesting and order,
which no fit finds), and a regnet in structure by order alone (cross
1697: 5 wrong, auto right). On the final code, ``--wide --reorder``
2000-2699, ``--cross --wide --reorder`` 1700-2099, ``--cross --wide``
3000-3299, ordinary seeds 28240-28539 and cross seeds 5500-5799 found
nothing. The next session fixed cross 820 (a head that is a sliver of
its network, the rest of which went nowhere) and found, in ``--wide
--reorder`` 2700-3299, a rexnet into its headless copy beside a
resnet50d named ``head`` (3256: the rexnet's classifier shoved into the
resnet's ``head.fc`` by strict and module-hack; fixed); ``--cross --wide
--reorder`` 2100-2699 found nothing. ``--split`` (each checkpoint listed
parameters first and buffers first, which the modes now join back into
registration order) found only 105 and 199 again. ``--cross`` seeds
5800-6299 found a resnet34 of the model's names beside the resnet18
itself with ``bn1`` renamed, into a headless resnet18 (6128: 120 wrong in
the name modes and auto; fixed); ``--cross`` 6300-6799, ordinary seeds
28540-29005 with ``--split`` and ``--wide --reorder`` 3300-3799 (keys
back to front now turned around) found nothing. ``--cross --wide
--reorder`` 2700-3199 found two more of structure's order-only family,
both there before this session's changes and auto right: a regnet
block registered otherwise and flattened (2737: 5 wrong) and an
inception_v3 whose children the checkpoint registers in another order
against the model flattened to numbers (3002: ``Mixed_6c`` and
``Mixed_6d``, equal blocks, swapped, 60 wrong). The session after found,
in ``--wide`` 3900-4399, a rexnet's stem, keys sorted, between a rexnet
cut to its stem and a regnet, whose stems are of one shape (4159: the
regnet's taken in embedding; fixed, left out as a tie); in ``--cross``
6800-7299, a ConvNeXt stage cut into ``body`` and ``blocks`` against
timm's ``stages.2.blocks`` (7274: 56 wrong in structure and auto; fixed)
and a timm ConvNeXt's head, keys sorted, into a Swin beside the model's
headless ConvNeXt (7185: 4 wrong in structure and auto by unique shapes,
open); in ``--wide --reorder`` 3800-4299 a tiny_vit's downsampling
convolution and BatchNorm into a resnet18 (4213; fixed) and in ``--wide``
4900-5399 the same again (5034), a tiny_vit's head shoved into a repvgg's
(4952) and a distilled LeViT's head into ``head_dist`` (5286), all fixed;
``--cross --wide --reorder`` 3200-3699 found two more of structure's
order-only family (3310, 3648: a regnet block registered otherwise, 12
and 10 wrong, auto too, present before). On the final code ``--wide``
5400-5899 found a mobilenet_v3_small block's squeeze-excitation, keys
sorted and the block renamed, in the next block in prefix-hack and
isomorphism (5876: 4 wrong, present before, open); ``--cross --wide``
4400-4899 found a timm mobilenet_v3_large cut short beside a torchvision
mobilenet_v3_small, keys sorted, into a torchvision mobilenet_v3_large:
the small one's features, of the model's names, taken in part (4510: 40
wrong in the name modes, 12 in structure and auto, present before,
open). ``--cross --wide`` 3900-4399, ``--cross`` 7300-7799 and ordinary
seeds 29006-30505 found nothing. The session after fixed 5876 (an anchor
inside items renumbered is unsupported), 4510 (a network of another
design beside the model's own gives nothing), 7185 (pairs by shapes alone
go only to a network of the checkpoint's design) and found, in
``--cross`` 7800-8599, an mnasnet0_5 under the model's own names beside a
timm mnasnet_100, into torchvision's mnasnet1_0 (7800: 314 wrong in
every mode but strict: identical names all shoved beat the copy that
fits) and a wide_resnet50 as ``head`` beside a swin_t (8598: its
``head.fc`` shoved into the model's by strict and module-hack), both
fixed; ``--wide`` 5900-6699, ``--cross --wide`` 4900-5199 and ``--cross
--wide --reorder`` 3700-3999 found nothing. Of the order-only family,
2737, 3002, 3310 and 3648 still fail in structure (auto too for 3310
and 3648); 199, 1188, cross 105, cross 1697 and cross 1163 no longer
build the case they were recorded for (the zoo grew) and pass. The
session after (wrappers, EMA copies and missing buffers, found by hunts
over the corpus rather than here) ran ``--cross`` 8600-8799, ``--cross
--wide`` 5200-5599, ``--wide`` 6700-7099, ``--cross --wide --reorder``
4000-4299 and ordinary seeds 30506-30999, which found nothing but two
cases present before it, left open: ``--wide`` 6950 (a shufflenet_v2_x0_5 flattened
into a truncated one beside a shufflenet_v2_x1_0: its ``conv5.1`` and
classifier, of the shapes the two share, into the new head, 7 wrong in
structure and auto), ``--cross --wide --reorder`` 4264 (a timm
mobilenetv2, truncated, into a torchvision mobilenet_v2 whose children are
reordered, beside a timm efficientnet_b0 of the checkpoint's names: the
stem and first blocks, of one shape in both designs, go to the
efficientnet by name, 63-73 wrong in every general mode). The session
after fixed both (a model holding a network of the checkpoint's design
beside one of another: nothing goes to the other, and ``structure``
aligns the one of its design) and found nothing in ``--wide`` 7100-7399,
``--cross`` 8800-9099, ``--cross --wide --reorder`` 4300-4499 and
``--wide --reorder`` 4300-4599. It added ``--joined``: a module's
children lifted one level under joined names (``stem_0`` for ``stem.0``),
as timm's ``features_only`` networks name them, but at any depth. Its
first runs (on code that drew a wrapper's name after the wrapped view, so
their seeds with a wrap op built other cases) found three cases, which
build the same now and are fixed: a rexnet, joined, beside an lraspp,
into a rexnet cut to its stem, the first block's ``conv_dw.bn`` taken
for ``stem.bn`` by its word ``bn`` beside the joined ``stem_bn`` (656 of
``--joined --wide --reorder``: 5 wrong in structure; a joined name is a
name bonus now); a torchvision regnet into timm's whose one block has its
``conv1`` joined (``conv1_conv``, ``conv1_bn``), where embedding, starting
at the torchvision block's ``f`` (an anchor), put ``f.a`` into
``downsample``, the one module of its shapes left (210 of ``--joined
--cross --wide``: 6 wrong; the split module is a place too, a tie); and
a googlenet flattened, into one whose children are registered in another
order, two BatchNorms of one width swapped between blocks whose convs
stayed (1188 of ``--joined --wide --reorder``: 10 wrong in structure; the
norm follows its layer). On the final code ``--joined --cross`` 0-399 and
``--joined --wide`` 0-399 found nothing. The order-only family (2737,
3002, 3310, 3648: a regnet block or inception_v3's children registered
otherwise, no name shared across the libraries) stays open. Then ordinary
seeds 31000-31550 found a resnet50 whose ``layer1`` is cut into
``features.0`` and ``model.{0,1}``, into a model holding a resnet50 with
``layer1`` cut short to two blocks beside a resnet34: ``model.1`` taken
for ``layer1.1`` by its number, the two lists of one length (31127: 18
wrong in structure and auto; fixed, a list beside a list may be a later
part whatever its length); ``--cross --wide`` 5847-6099 found a timm
inception_v3 whose ``Mixed_6b`` is flattened and ``Mixed_6d`` wrapped as
``Mixed_6d.head``, into torchvision's flattened: embedding gave
``Mixed_6d``'s ``branch1x1`` (of every InceptionC's shape) to the model's
``11``, which is ``Mixed_6b`` (6009: 22 wrong in embedding; fixed since,
a source sought inside a subtree that a tie took meets the tie). The
session after fixed 6009 and, of the order-only family, 2737 and 3648
(a norm follows its layer: the BatchNorms of a regnet block's ``conv1``
and ``conv2``, registered in another order, crossed between torchvision's
``f.a`` and ``f.b``); 3002 (inception_v3's top-level children shuffled,
``Mixed_6c`` into the flattened model's ``13``) and 3310 (a regnet block's
``downsample`` and ``conv1``, of one shape, registered in another order)
stay open. Its ``--joined --cross --wide`` 0-399 found nothing (before
those fixes); ``--cross --wide --reorder`` 4500-5049 found a torchvision
ViT into timm's whose block 4 registered its norms after their layers,
``ln_1`` into ``norm2`` and ``ln_2`` into ``norm1`` (4588: 4 wrong in
structure and auto; fixed, numbered names that crossed are left out);
``--wide --reorder`` 4600-4749 found nothing. It added ``--wider``: 54
timm families and 8 torchvision models neither the corpus nor ``--wide``
drew from; ``--wider`` 0-1477 and ``--wider --reorder`` 0-999 found
nothing (seven seeds of the latter drew timm's coat_lite_tiny, which
shares modules under two names: its truth by identity is not one to one,
and the seed is skipped as unbuilt). On the final code (the first two
before auto's tie rule for reshaped kernels), ``--joined --wider``
0-599, ``--cross`` 9100-9499 and ordinary seeds 31550-31849 found
nothing; ``--wide`` 7400-7599 found one case, left open: a checkpoint of
timm's caformer_s18 cut to its stem (``head.stem``) beside a whole
poolformer_s12 (``features``, the same MetaFormer names and widths),
into a caformer_s18 with one child renamed: prefix-hack, isomorphism and
auto take ``features.`` as the prefix that explains most and load the
poolformer's norms, MLPs and layer scales into the caformer (7453: 56
wrong, 54 in auto); embedding and structure load the stem alone, right.
Then ``--wide`` 7600-7799 and ``--cross --wide`` 6100-6299 found nothing;
``--wider`` 1478-1749 found a LeViT whose ``head`` has a level inserted
(``head.stage.bn``) beside ``head_dist.bn``, into one cut to ``head``:
structure took ``head_dist`` (1625: 7 wrong; the two are equally good, a
tie); ``--joined --wide --reorder`` 4300-4499 found a googlenet whose
inception3b has its branches joined (``branch1_conv``, ``branch2_0``) and
reordered, where embedding put ``branch2_0`` (of ``branch1``'s shapes) into
the flattened model's ``branch1`` (4498: 6 wrong). Both left open, and
fixed the session after (a partner holding more of the path's words beats
depth; a module split under joined names beside the source is as good a
source), with 3002 and 3310 of the order-only family (a module sent against
a free twin pair's numbers; twin units that took each other's places
against their peers). That session's runs: ``--wider`` 1750-2499 found a
resnext50 block, its layer cut in parts, taken for the flattened model's
shortcut conv by its one child ``conv3`` of that shape beside its
``downsample.0`` (1988: 1 wrong in embedding; fixed, a deeper node alike is
a tie); ``--cross --wide --reorder`` 5050-5399 found nothing;
``--joined --cross --wide --reorder`` 0-299 found a timm regnet block
registered in another order (105, of 3310's kind, fixed by then) and an
inception whose ``Mixed_6a`` fit its namesake in nothing, branches nested
against joined, and was skipped, its branches going into ``Mixed_5d``
(85: 36 wrong in embedding; fixed, a block with a free namesake is not
skipped). Then ``--joined --cross --wide --reorder`` 300-699,
``--wider --reorder`` 2500-2899, ``--wide --reorder`` 5150-5549 and
``--cross --wide`` 6300-6799 found torchvision's regnet_y_1_6gf into
timm's whose ``s3.b1.conv1`` is flattened to ``conv1.{0,1}``, where
embedding renamed ``proj`` (a conv and a BatchNorm, ``proj.{0,1}``) to
``conv1`` rather than ``downsample`` of the same shapes, because the item
numbers below agree, and ``f.a`` went to ``downsample`` (6720: 12 wrong;
fixed, a place only shapes found counts its tensors, not its positions);
``--wide --reorder`` 4750-5149
found an hrnet whose ``stage3``, registered first, sent its first two
branches into ``stage2``'s place (4959: 48 wrong in structure; fixed, a
free twin pair need only hold the entry's tensors); ``--wide`` 7800-8299
found a mixer whose eight equal blocks the model cuts into
``blocks.stem.0`` and ``blocks.blocks.{0..6}``: the first part was taken
for a counterpart of the mixer's top-level ``stem`` and so not seen as an
earlier part, and every mode put block k + 1 into block k (8068: 72-84
wrong, also in the mirror; fixed, only a list of its name is a part's
counterpart). On that session's final code ``--cross --wide`` 6800-7149
and ``--wider`` 2900-3249 found nothing. The session after added norms
placed by their block and Swin V2's order (found on real HuggingFace and
timm pairs, not by this fuzzer); its runs, ``--wide`` 8300-8699,
``--wider --reorder`` 2900-3299, ``--cross --wide --reorder``
5400-6099, ``--joined --cross --wide --reorder`` 700-1049, ``--cross
--wide`` 7150-7549, ``--cross`` 9500-9899 and ``--wider`` 3250-3599,
found nothing but, in ``--cross --wide --reorder`` 6100-6449, adversarial
names again (6417: the checkpoint's ``Mixed_6a`` wrapped as
``Mixed_6a.main`` and the model's ``Mixed_5d`` renamed ``main``, of the
same branch shapes, keys sorted: 30 wrong in structure, present before,
left). The session after (renames, namesakes in corresponding modules
and parts short of a place, found on real HuggingFace, timm and
torchvision pairs, not by this fuzzer) ran, in structure and auto,
``--cross --wide`` 7550-7899 and 8100-8399, ``--wider --reorder``
3300-3599, ``--wide`` 8700-8999, ``--cross --wide --reorder`` 7200-7449,
``--wider`` 3600-3899, ``--joined --cross --wide --reorder`` 1050-1349
and ``--wide --reorder`` 5550-5849, and ``--cross`` 9900-10199 in every
mode. They found 7759 of ``--cross --wide`` (12 wrong in structure,
adversarial names, present before, left) and one of its own making: an
hrnet_w18_small with its children reordered into one flattened beside a
convnext_tiny, where an incre module's block went into a stage3 branch's
place (5848 of ``--wide --reorder``: 22 wrong in structure). Two of its
steps let it through: parts left short judged by their open places only,
and a free module sent whole to the one free module of its shapes. The
first now counts as short only the open groups the other side could
fill; the second was taken out.
The session after taught structure to read a checkpoint whose key order
is lost by what its modules hold (:mod:`torch_liberator.unordered`) and
added ``--sorted`` (every checkpoint's keys sorted by name). Its runs:
``--wide --reorder`` 5850-6199 (on the code before) found an inception_v3
whose ``branch7x7dbl_3`` is wrapped as ``branch7x7dbl_3.main`` beside a
flattened ``branch7x7dbl_2``: structure gave dbl_3's bn to the model's
``branch7x7dbl_2.bn`` (6059: 5 wrong; fixed, a level only one side names
is passed over when two paths are checked for sibling namesakes);
``--cross --wide --reorder`` 7450-7799 found a timm regnety_016
flattened, into torchvision's whose ``block1`` registers its blocks in
another order (7574: 24 wrong in structure and auto, the order-only
family, present before, open). ``--wide --reorder`` 6200-6799,
``--sorted`` 0-599, ``--cross --wide --sorted`` 0-1399, ``--wide
--sorted`` 0-799, ``--wider --sorted`` 0-699, ``--cross --reorder
--sorted`` 0-399, ``--joined --wide --sorted`` 0-399, ``--cross
--sorted`` 10200-10499 and ``--joined --cross --wide --sorted`` 0-299
found nothing.
The session after added an order-free pass where two registration orders
disagree, a rule for a block left out whole (openmodules), a fit of the
checkpoint whole but for its classifier's sizes, and a rival check in
auto. On its code as it grew it ran, in structure and auto, ``--wide
--reorder`` 6800-7699 (6800-7099 in every mode), ``--cross --wide``
7800-9000, ``--cross --wide --reorder`` 7800-8099, ordinary seeds
28240-28839 and 31000-31299 (the latter in every mode), ``--cross --wide
--sorted`` 1400-1699, ``--wide --sorted`` 800-1099, ``--wide`` 9000-9299
and ``--wider`` 3900-4199. One case was of its own making and fixed
before it landed: a first version of the block rule put a timm
mobilenetv3's ``blocks.5.2`` into ``features.14``, tied with its equal
neighbour (8349 of ``--cross --wide``: 22 wrong). 7453 of ``--wide`` (a
caformer cut to its stem beside a poolformer, into a caformer) no longer
loads the poolformer's blocks in auto (was 54 wrong); isomorphism, a
published mode, still takes the poolformer as the model (56). 7574 is
still open. On its final code ``--cross --wide`` 9000-9199, ``--wide
--reorder`` 7700-7899, ``--cross --wide --sorted`` 1700-1899, ``--wide``
9300-9499 (every mode), ``--cross`` 10500-10699 and ``--wider --sorted``
4200-4399 found nothing, and ``--joined --cross --wide --reorder``
1350-1499 one case present before it: torchvision's inception_v3, names
joined, into timm's whose ``Mixed_6d`` registers its branches in another
order: ``Mixed_6d_branch7x7dbl_3`` into ``Mixed_6d.branch7x7_2`` beside
its namesake once joined (1388: 6 wrong in structure and auto; fixed, a
name joined from a path is that path's namesake). After that fix
``--joined --cross --wide --reorder`` 1500-1649 and ``--joined --wide
--reorder`` 400-549 (every mode) found nothing.
The session after fixed three cases left open: 7574 (pairs that cross two
blocks the order swapped go where the order-free alignment puts them),
7759 (no name anchor across two sibling namesakes above the shared suffix)
and 6417 (a path that runs out beside a namesake of the other's word
above); it also placed the rest of a list cut in two, named after it and
registered first, and took a word and the word numbered (``conv`` and
``conv2``) for one layer between modules that correspond. On its code as
it grew, in structure and auto, ``--cross --wide --reorder`` 8300-8649,
``--wide --reorder`` 7900-8249, ``--cross --wide`` 9200-9599,
``--joined --cross --wide --reorder`` 1650-1799 and ``--wider``
4400-4599 found nothing. 7453 in isomorphism (a published mode) stays
open. The session after, in structure and auto: ``--cross --wide``
10850-10999, ``--cross --wide --sorted`` 2050-2599 and ``--wide --reorder
--sorted`` 9750-9949 found nothing; ``--joined --cross --wide --reorder``
1900-1999 (every tree mode) found a timm regnet block registered in
another order whose ``conv3`` kernel went to ``f.c`` and its BatchNorm to
``f.b``, ``conv2`` unplaced (1956: 5 wrong in structure, present before;
fixed, a norm away from its layer's unit of one layer and one norm that
could hold it is left out). The session after, which made the order-free
alignment doubt a module matched by shapes where a rival could match as
well, found nothing in structure and auto, on its code as it grew, in
``--cross --wide --sorted`` 2600-2759, ``--wide --reorder --sorted``
9950-10099, ``--wide --reorder`` 10100-10219, ``--cross --wide``
11000-11119, ``--joined --cross --wide --reorder`` 2350-2449 and
``--wider --sorted`` 4600-4699. The session after (auto's name modes
vouched for by names or the structure mode, list offsets witnessed) found
nothing in auto and embedding in ``--wider --sorted`` 4700-4799, and on
its final code (a module follows its siblings, lists read by their
kernels) nothing in structure, auto, embedding and isomorphism in
``--cross`` 9100-9249 and ``--wide --reorder`` 7400-7549. The next
session (parts left short judged by what they got; HuggingFace's
composite models in the corpus) found in ``--wide`` 9500-9699 a resnet101,
keys sorted, into its own copy with ``layer2`` cut to two blocks beside
an fcn_resnet50, whose ``layer2.2-3`` went by name into the fcn's backbone
(9693: 36 wrong in structure and auto, there before; fixed), and nothing
in structure and auto in ``--wide --reorder`` 5800-5949 (5848 among
them, which an earlier reading of that change got wrong again) and
``--cross --wide`` 9300-9449. ``--wider`` 29302: a visformer's stage2
of four alike blocks cut in the checkpoint into parts of 1, 1 and 2,
keys sorted (the two-block part first), and of 1, 2 and 1 in the model,
a pit beside it:
every tree mode paired the two-block parts (28 wrong; fixed, with the
same stage cut in halves against a whole list, the name modes' kind).
``--wider --sorted`` 35070: a crossvit's ``blocks`` wrapped as
``blocks.stage.{0,1,2}`` against a model's
``blocks.{features,stem,stage}.0``: the name modes paired the two
``stage.0`` (96 wrong in auto and embedding; fixed: a part keeping the
list's name is no proof of its place, and the fuzzer's parts, registered
in order, with one named like the list, are left out since).
Cases it still reports are discussed in the notes of issue 8 (a head taken
from another model beside a headless one; two identical networks side by
side, where the closer copy wins by design).

Usage (from the repository root)::

    export PYTHONPATH=$PWD
    python benchmarks/fuzz_real.py 0 200 /tmp/fuzz-wrong.jsonl [strict,embedding,...]
"""
import copy
import functools
import json
import os
import random
import sys
import time

import torch
import torchvision.models as tvm
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import Case, judge_case  # noqa: E402

__all__ = ['CROSS', 'CROSS_WIDE', 'MODELS', 'MODES', 'WIDE', 'ZOO', 'main', 'make_case', 'make_cross_case']

#: the modes judged
MODES = ['strict', 'module-hack', 'prefix-hack', 'embedding', 'isomorphism', 'structure', 'auto']
VOCAB = ['backbone', 'body', 'model', 'net', 'encoder', 'trunk', 'features', 'stem', 'blocks',
         'stage', 'part', 'head', 'module', 'base', 'extractor', 'layers', 'core', 'main']

def _tv(name, **kw):
    return lambda: getattr(tvm, name)(weights=None, **kw)

def _tm(name, **kw):
    def b():
        import timm
        return timm.create_model(name, pretrained=False, **kw)
    return b

#: name -> builder of the real models the views are made of
MODELS = {
    'resnet18': _tv('resnet18'), 'resnet50': _tv('resnet50'), 'mobilenet_v2': _tv('mobilenet_v2'),
    'mobilenet_v3_small': _tv('mobilenet_v3_small'), 'efficientnet_b0': _tv('efficientnet_b0'),
    'vgg11_bn': _tv('vgg11_bn'), 'convnext_tiny': _tv('convnext_tiny'), 'swin_t': _tv('swin_t'),
    'regnet_y_400mf': _tv('regnet_y_400mf'), 'shufflenet_v2_x0_5': _tv('shufflenet_v2_x0_5'),
    'mnasnet0_5': _tv('mnasnet0_5'), 'squeezenet1_0': _tv('squeezenet1_0'),
    'googlenet': _tv('googlenet', aux_logits=False, init_weights=False),
    'resnext50': _tv('resnext50_32x4d'), 'wide_resnet50': _tv('wide_resnet50_2'),
    'timm_resnet18': _tm('resnet18'), 'timm_vit_tiny': _tm('vit_tiny_patch16_224'),
    'timm_effb0': _tm('efficientnet_b0'), 'timm_convnext_atto': _tm('convnext_atto'),
    'timm_mixer': _tm('mixer_s16_224'), 'timm_deit_tiny': _tm('deit_tiny_patch16_224'),
    'vit_small': lambda: tvm.VisionTransformer(224, 16, 6, 6, 384, 1536),
    'resnet34': _tv('resnet34'), 'densenet121': _tv('densenet121'),
}

def _det(name, **kw):
    def b():
        import torchvision.models.detection as det
        return getattr(det, name)(weights=None, weights_backbone=None, **kw)
    return b

def _seg(name, **kw):
    def b():
        import torchvision.models.segmentation as seg
        return getattr(seg, name)(weights=None, weights_backbone=None, **kw)
    return b

#: more models for ``--wide`` (added to :data:`MODELS`; without the flag a
#: seed builds what it always built): other families, other libraries'
#: block designs, detection and segmentation models around a backbone
WIDE = {
    'alexnet': _tv('alexnet'), 'inception_v3': _tv('inception_v3', aux_logits=False,
                                                    init_weights=False),
    'mobilenet_v3_large': _tv('mobilenet_v3_large'), 'efficientnet_v2_s': _tv('efficientnet_v2_s'),
    'regnet_x_400mf': _tv('regnet_x_400mf'), 'shufflenet_v2_x1_0': _tv('shufflenet_v2_x1_0'),
    'mnasnet1_0': _tv('mnasnet1_0'), 'maxvit_t': _tv('maxvit_t'), 'swin_v2_t': _tv('swin_v2_t'),
    'resnet101': _tv('resnet101'), 'densenet169': _tv('densenet169'),
    'fasterrcnn_mbv3': _det('fasterrcnn_mobilenet_v3_large_fpn'),
    'deeplabv3_mbv3': _seg('deeplabv3_mobilenet_v3_large'),
    'lraspp_mbv3': _seg('lraspp_mobilenet_v3_large'), 'fcn_resnet50': _seg('fcn_resnet50'),
    'timm_resnet50d': _tm('resnet50d'), 'timm_efficientnet_lite0': _tm('efficientnet_lite0'),
    'timm_mobilenetv3_small': _tm('mobilenetv3_small_100'), 'timm_convnext_nano': _tm('convnext_nano'),
    'timm_swin_tiny': _tm('swin_tiny_patch4_window7_224'), 'timm_cspresnet50': _tm('cspresnet50'),
    'timm_dla34': _tm('dla34'), 'timm_hrnet_w18_small': _tm('hrnet_w18_small'),
    'timm_res2net50': _tm('res2net50_26w_4s'), 'timm_rexnet_100': _tm('rexnet_100'),
    'timm_ghostnet_100': _tm('ghostnet_100'), 'timm_dpn68': _tm('dpn68'),
    'timm_regnetx_002': _tm('regnetx_002'), 'timm_levit_128s': _tm('levit_128s'),
    'timm_poolformer_s12': _tm('poolformer_s12'), 'timm_resmlp_12': _tm('resmlp_12_224'),
    'timm_effv2_b0': _tm('tf_efficientnetv2_b0'), 'timm_mobilevit_xs': _tm('mobilevit_xs'),
    'timm_edgenext_xs': _tm('edgenext_x_small'), 'timm_repvgg_a0': _tm('repvgg_a0'),
    'timm_inception_v3': _tm('inception_v3'), 'timm_xception41': _tm('xception41'),
    'timm_densenet121': _tm('densenet121'), 'timm_caformer_s18': _tm('caformer_s18'),
    'timm_tiny_vit_5m': _tm('tiny_vit_5m_224'), 'timm_eva02_tiny': _tm('eva02_tiny_patch14_224'),
}

#: every model a seed may draw with ``--wide``
ZOO = {**MODELS, **WIDE}


def _video(name):
    def b():
        import torchvision.models.video as video
        return getattr(video, name)(weights=None)
    return b


#: more models for ``--wider`` (added to :data:`ZOO`): timm families and
#: torchvision models that neither the corpus nor ``--wide`` draws from,
#: under 35M parameters each
WIDER = {
    **{f'timm_{n}': _tm(n) for n in [
        'cait_xxs24_224', 'coat_lite_tiny', 'crossvit_tiny_240', 'xcit_nano_12_p16_224',
        'nf_resnet26', 'regnetz_b16', 'efficientformer_l1', 'fastvit_t8', 'mobileone_s0',
        'ghostnetv2_100', 'legacy_seresnet18', 'visformer_tiny', 'gcvit_xxtiny',
        'coatnet_nano_rw_224', 'pvt_v2_b0', 'pit_ti_224', 'deit3_small_patch16_224',
        'gmlp_ti16_224', 'convit_tiny', 'efficientvit_b0', 'hgnetv2_b0', 'lcnet_050', 'mixnet_s',
        'semnasnet_075', 'tinynet_a', 'fbnetc_100', 'spnasnet_100', 'mobilenetv4_conv_small',
        'ese_vovnet19b_dw', 'selecsls42b', 'nest_tiny', 'twins_svt_small', 'maxvit_nano_rw_256',
        'resnet26t', 'seresnext26d_32x4d', 'skresnet18', 'botnet26t_256', 'halonet26t',
        'lambda_resnet26t', 'cs3darknet_s', 'darknet17', 'sebotnet33ts_256',
        'inception_next_tiny', 'convformer_s18', 'mambaout_femto', 'repghostnet_050',
        'efficientnet_es', 'hrnet_w18_small_v2', 'dla46_c', 'resnest14d', 'eca_nfnet_l0',
        'vit_small_patch16_224', 'swinv2_cr_tiny_ns_224', 'vit_relpos_small_patch16_224']},
    **{n: _video(n) for n in ['r3d_18', 'mc3_18', 'r2plus1d_18', 's3d', 'mvit_v2_s', 'swin3d_t']},
    'ssdlite_mbv3': _det('ssdlite320_mobilenet_v3_large'),
    'regnet_x_800mf': _tv('regnet_x_800mf'), 'efficientnet_b2': _tv('efficientnet_b2'),
}

#: every model a seed may draw with ``--wider``
ALL = {**ZOO, **WIDER}

def _shadow(m, children):
    s = nn.Module()
    for n, p in m._parameters.items():
        if p is not None:
            s.register_parameter(n, p)
    for n, b in m._buffers.items():
        if b is not None:
            s.register_buffer(n, b, persistent=n not in m._non_persistent_buffers_set)
    for n, c in children:
        s.add_module(n, c)
    return s

def _wrap(name, inner):
    w = nn.Module()
    w.add_module(name, inner)
    return w

def _is_list(m):
    names = [n for n, _ in m.named_children()]
    return len(names) >= 3 and all(n.isdigit() for n in names)


def _view(m, rng, depth, log, top=False, reorder=False, joined=False):
    kids = list(m.named_children())
    if not kids or depth > 3:
        return m
    ops = ['keep', 'recurse', 'recurse', 'wrap', 'insert', 'rename']
    if _is_list(m):
        ops += ['split', 'split_keep']
    elif reorder and len(kids) >= 2:
        ops += ['reorder']
    if len(kids) >= 2 and not m._parameters and not any(b is not None for b in m._buffers.values()):
        ops += ['flatten']
    if (top or _is_list(m)) and len(kids) >= 3 and not m._parameters:
        ops += ['truncate']
    if joined and any(list(c.named_children()) for _, c in kids):
        ops += ['join']  # (at any depth: harsher than timm, which joins the top)
    op = rng.choice(ops)
    log.append(f'{depth}:{type(m).__name__}:{op}')
    if op == 'keep':
        return m
    if op == 'wrap':
        name = rng.choice(VOCAB)  # (drawn first, as every seed always drew it)
        return _wrap(name, _view(m, rng, depth + 1, log, reorder=reorder, joined=joined))
    if op == 'recurse':
        deeper = functools.partial(_view, rng=rng, depth=depth + 1, log=log, reorder=reorder,
                                   joined=joined)
        return _shadow(m, [(n, deeper(c) if rng.random() < 0.4 else c) for n, c in kids])
    if op == 'insert':
        i = rng.randrange(len(kids))
        kids = [(n, _wrap(rng.choice(VOCAB), c) if j == i else c) for j, (n, c) in enumerate(kids)]
        return _shadow(m, kids)
    if op == 'rename':
        i = rng.randrange(len(kids))
        new = rng.choice(VOCAB) + rng.choice(['', '_x', '2'])
        if new in dict(kids):
            return m
        kids = [(new if j == i else n, c) for j, (n, c) in enumerate(kids)]
        return _shadow(m, kids)
    if op in ('split', 'split_keep'):
        cuts = sorted(rng.sample(range(1, len(kids)), min(rng.choice([1, 2]), len(kids) - 1)))
        parts, prev = [], 0
        for c in cuts + [len(kids)]:
            parts.append(kids[prev:c])
            prev = c
        names = rng.sample(VOCAB, len(parts))
        out = []
        for nm, part in zip(names, parts):
            if op == 'split':
                out.append((nm, nn.Sequential(*[c for _, c in part])))
            else:
                out.append((nm, _shadow(nn.Module(), part)))
        return _shadow(m, out)
    if op == 'flatten':
        return nn.Sequential(*[c for _, c in kids])
    if op == 'reorder':
        # the named children registered in another order (a head before
        # its backbone, a shortcut first); children of one shape signature
        # keep their relative order: only order tells them apart
        order = kids[:]
        rng.shuffle(order)
        same = {}
        for n, c in kids:
            same.setdefault(_shapes(c), []).append((n, c))
        left = {sig: iter(group) for sig, group in same.items()}
        return _shadow(m, [next(left[_shapes(c)]) for _, c in order])
    if op == 'truncate':
        k = rng.choice([1, 2])
        return _shadow(m, kids[:-k])
    if op == 'join':
        # timm's features_only networks: a child's children lifted one
        # level under joined names (stem.0 -> stem_0), every such child
        # or one of them
        inner = [i for i, (_, c) in enumerate(kids) if list(c.named_children())]
        chosen = set(inner) if rng.random() < 0.5 else {rng.choice(inner)}
        out = []
        for i, (n, c) in enumerate(kids):
            if i in chosen and not c._parameters and not any(
                    b is not None for b in c._buffers.values()):
                out.extend((f'{n}_{k}', g) for k, g in c.named_children())
            else:
                out.append((n, c))
        return _shadow(m, out)
    raise AssertionError(op)


def _shapes(module):
    """The shapes of ``module``'s state, sorted: what tells it from its siblings."""
    return tuple(sorted(tuple(v.shape) for v in module.state_dict().values()))


@functools.lru_cache(maxsize=None)
def _signature(name):
    """The sequence of state-dict shapes of model ``name`` (its names left
    out), once per process. Built on the meta device (shapes only, no weights
    drawn), or where a model reads numbers back while it is built
    (torchvision's RegNets) on the CPU; under a forked torch RNG either
    way, so no seed's values change."""
    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device('meta'):
                model = ALL[name]()
        except NotImplementedError:  # "Cannot copy out of meta tensor"
            model = ALL[name]()
    return tuple(tuple(v.shape) for v in model.state_dict().values())


def _twins(name, zoo=MODELS):
    """
    The models of one architecture as ``name``: those whose sequence of
    key shapes is identical (timm's and torchvision's resnet18, say). A twin
    beside a view is two equally good places, so it is never put there.

    Example:
        >>> import fuzz_real
        >>> sorted(fuzz_real._twins('timm_deit_tiny'))
        ['timm_deit_tiny', 'timm_vit_tiny']
    """
    sig = _signature(name)
    return {n for n in zoo if _signature(n) == sig}


def _beside(view, name, rng, zoo=MODELS):
    """``view`` and another model (never a twin of ``name``: that would be
    ambiguous) side by side under two random names, in random order. A twin
    drawn is drawn again, so a seed whose first draw is no twin builds the
    case it always built."""
    twins, others = _twins(name, zoo), sorted(set(zoo) - {name})
    other = rng.choice(others)
    while other in twins:
        other = rng.choice(others)
    a, b = rng.sample(VOCAB, 2)
    pair = [(a, view), (b, zoo[other]())]
    rng.shuffle(pair)
    return _shadow(nn.Module(), pair), other


def make_case(seed, zoo=MODELS, reorder=False, joined=False):
    """
    One random pair: ``(model name, other model or None, source ops, model
    ops, Case)``; the truth is by tensor identity. ``zoo``: the models to
    draw from (:data:`ZOO` for ``--wide``); ``reorder`` (``--reorder``):
    named children may also be registered in another order, and the
    checkpoint's keys may come sorted, reversed, or parameters first;
    ``joined`` (``--joined``): a module's children may be lifted one level
    under joined names (``stem.0`` as ``stem_0``).

    Example:
        >>> import fuzz_real
        >>> name, other, src_ops, dst_ops, case = fuzz_real.make_case(7)
        >>> name, len(case.truth)
        ('resnet50', 266)
        >>> fuzz_real.make_case(7, zoo=fuzz_real.ZOO)[0]  # --wide
        'timm_effv2_b0'
        >>> name, _, src_ops, _, case = fuzz_real.make_case(3, joined=True)  # --joined
        >>> src_ops, [k for k in case.source if '_' in k.split('.')[0]][:2]
        (['0:RegNet:join'], ['stem_0.weight', 'stem_1.weight'])
    """
    rng = random.Random(seed)
    name = rng.choice(sorted(zoo))
    torch.manual_seed(seed)
    m = zoo[name]().eval()
    log_s, log_d = [], []
    src = _view(m, rng, 0, log_s, top=True, reorder=reorder, joined=joined)
    dst = _view(m, rng, 0, log_d, top=True, reorder=reorder, joined=joined)
    other = None
    if rng.random() < 0.15:
        src, other = _beside(src, name, rng, zoo)
        log_s.append('side-by-side ' + other)
    elif rng.random() < 0.25:
        dst, other = _beside(dst, name, rng, zoo)
    state = _key_order(src.state_dict(keep_vars=True), rng, log_s, reorder)
    case = Case(state, dst, None)
    return name, other, log_s, log_d, case

def _zip_truth(a_keys, b_keys):
    return dict(zip(a_keys, b_keys))


def _cross_truth(kind):
    def truth(a_keys, b_keys):
        from corpus_pairs import cross
        return getattr(cross, kind)(a_keys)
    return truth


#: one architecture in two libraries: timm model, torchvision model, and
#: ``truth(timm keys, torchvision keys) -> {timm key: torchvision key}``
CROSS = {
    'efficientnet_b0': (_tm('efficientnet_b0'), _tv('efficientnet_b0'), _zip_truth),
    'mobilenet_v2': (_tm('mobilenetv2_100'), _tv('mobilenet_v2'), _zip_truth),
    'mnasnet1_0': (_tm('mnasnet_100'), _tv('mnasnet1_0'), _zip_truth),
    'mobilenet_v3_large': (_tm('mobilenetv3_large_100'), _tv('mobilenet_v3_large'), _zip_truth),
    'resnet18': (_tm('resnet18'), _tv('resnet18'), _zip_truth),
    'convnext_tiny': (_tm('convnext_tiny'), _tv('convnext_tiny'), _zip_truth),
    'regnet_y_400mf': (_tm('regnety_004'), _tv('regnet_y_400mf'), _cross_truth('regnet_truth')),
    'vit_tiny': (_tm('deit_tiny_patch16_224'),
                 lambda: tvm.VisionTransformer(224, 16, 12, 3, 192, 768), _cross_truth('vit_truth')),
    'swin_t': (_tm('swin_tiny_patch4_window7_224'), _tv('swin_t'), _cross_truth('swin_truth')),
}


#: more architectures for ``--cross --wide`` (added to :data:`CROSS`)
CROSS_WIDE = {
    'efficientnet_b1': (_tm('efficientnet_b1'), _tv('efficientnet_b1'), _zip_truth),
    'efficientnet_v2_s': (_tm('tf_efficientnetv2_s'), _tv('efficientnet_v2_s'), _zip_truth),
    'mnasnet0_5': (_tm('mnasnet_050'), _tv('mnasnet0_5'), _zip_truth),
    'convnext_small': (_tm('convnext_small'), _tv('convnext_small'), _zip_truth),
    'regnet_y_1_6gf': (_tm('regnety_016'), _tv('regnet_y_1_6gf'), _cross_truth('regnet_truth')),
    'resnext50': (_tm('resnext50_32x4d'), _tv('resnext50_32x4d'), _zip_truth),
    'densenet121': (_tm('densenet121'), _tv('densenet121'), _zip_truth),
    'inception_v3': (_tm('inception_v3'), _tv('inception_v3', aux_logits=False,
                                             init_weights=False), _zip_truth),
}


#: more for ``--cross --wider`` (added to :data:`CROSS` and :data:`CROSS_WIDE`;
#: a dict of its own, so that the seeds of ``--wide`` keep their cases)
CROSS_WIDER = {
    'densenet161': (_tm('densenet161'), _tv('densenet161'), _zip_truth),
    'efficientnet_b2': (_tm('efficientnet_b2'), _tv('efficientnet_b2'), _zip_truth),
    'mobilenet_v3_small': (_tm('mobilenetv3_small_100'), _tv('mobilenet_v3_small'), _zip_truth),
    'resnet101': (_tm('resnet101'), _tv('resnet101'), _zip_truth),
    'wide_resnet50_2': (_tm('wide_resnet50_2'), _tv('wide_resnet50_2'), _zip_truth),
    'regnet_x_1_6gf': (_tm('regnetx_016'), _tv('regnet_x_1_6gf'), _cross_truth('regnet_truth')),
    'vit_small': (_tm('vit_small_patch16_224'),
                  lambda: tvm.VisionTransformer(224, 16, 12, 6, 384, 1536), _cross_truth('vit_truth')),
    'swin_s': (_tm('swin_small_patch4_window7_224'), _tv('swin_s'), _cross_truth('swin_truth')),
    'efficientnet_v2_m': (_tm('tf_efficientnetv2_m'), _tv('efficientnet_v2_m'), _zip_truth),
}


def _tie(a, b, truth):
    """
    Put ``a``'s tensor objects into ``b`` where ``truth`` pairs keys of
    equal shapes; the keys of ``b`` left with tensors of their own (a timm
    layer scale ``[C]`` against torchvision's ``[C, 1, 1]``) are returned,
    to be left unjudged.
    """
    a_state, b_state = a.state_dict(keep_vars=True), b.state_dict(keep_vars=True)
    untied = set()
    for ka, kb in truth.items():
        path, _, leaf = kb.rpartition('.')
        owner = b.get_submodule(path) if path else b
        value = a_state[ka]
        if value.shape != b_state[kb].shape or (
                (leaf in owner._parameters) != isinstance(value, nn.Parameter)):
            untied.add(kb)
        elif leaf in owner._parameters:
            owner._parameters[leaf] = value
        else:
            owner._buffers[leaf] = value
    return untied


def _key_order(state, rng, log, reorder):
    """The checkpoint's keys as saved: sometimes sorted (a safetensors
    file); with ``reorder``, also reversed or parameters first."""
    if rng.random() >= 0.2:
        return state
    order = rng.choice(['sorted keys', 'reversed keys', 'parameters first']) if reorder \
        else 'sorted keys'
    log.append(order)
    if order == 'sorted keys':
        return dict(sorted(state.items()))
    if order == 'reversed keys':
        return dict(reversed(state.items()))
    params = {k: v for k, v in state.items() if isinstance(v, nn.Parameter)}
    return {**params, **{k: v for k, v in state.items() if k not in params}}


def make_cross_case(seed, cross=CROSS, reorder=False, joined=False):
    """
    One random pair across libraries: an architecture of ``cross`` in
    timm and in torchvision, the model's tensors tied to the checkpoint's
    by the known name map, then both rearranged as :func:`make_case` does
    (the truth is by tensor identity again). Returns what :func:`make_case`
    returns, the name marked with its direction.

    Example:
        >>> import fuzz_real
        >>> name, other, src_ops, dst_ops, case = fuzz_real.make_cross_case(3)
        >>> name.split(' ')[0] in fuzz_real.CROSS, len(case.truth) > 100
        (True, True)
    """
    rng = random.Random(seed)
    arch = rng.choice(sorted(cross))
    make_timm, make_tv, truth_of = cross[arch]
    torch.manual_seed(seed)
    a, b = make_timm().eval(), make_tv().eval()
    direction = 'timm->tv'
    truth = truth_of(list(a.state_dict()), list(b.state_dict()))
    if rng.random() < 0.5:
        a, b, direction = b, a, 'tv->timm'
        truth = {v: k for k, v in truth.items()}
    untied = _tie(a, b, truth)
    log_s, log_d = [], []
    src = _view(a, rng, 0, log_s, top=True, reorder=reorder, joined=joined)
    dst = _view(b, rng, 0, log_d, top=True, reorder=reorder, joined=joined)
    other = None
    if rng.random() < 0.15:
        src, other = _beside_cross(src, a, b, rng)
        log_s.append('side-by-side ' + other)
    elif rng.random() < 0.25:
        dst, other = _beside_cross(dst, a, b, rng)
    # the untied keys under the views' names: where b's own tensor sits
    own = {id(b.state_dict(keep_vars=True)[k]) for k in untied}
    unjudged = [k for k, v in dst.state_dict(keep_vars=True).items() if id(v) in own]
    state = _key_order(src.state_dict(keep_vars=True), rng, log_s, reorder)
    return f'{arch} {direction}', other, log_s, log_d, Case(state, dst, None, unjudged=unjudged)


def _beside_cross(view, a, b, rng):
    """``view`` and a model of :data:`MODELS` whose shapes are neither
    ``a``'s nor ``b``'s (that would be two equally good places)."""
    sigs = {tuple(tuple(v.shape) for v in m.state_dict().values()) for m in (a, b)}
    others = sorted(n for n in MODELS if _signature(n) not in sigs)
    other = rng.choice(others)
    x, y = rng.sample(VOCAB, 2)
    pair = [(x, view), (y, MODELS[other]())]
    rng.shuffle(pair)
    return _shadow(nn.Module(), pair), other


def main(argv=None):
    """The command line: ``fuzz_real.py FIRST_SEED END_SEED OUT.jsonl [MODES] [--cross]
    [--wide] [--wider] [--reorder] [--split] [--joined] [--sorted]`` (``--cross``:
    :func:`make_cross_case` instead of :func:`make_case`; ``--wide``: :func:`make_case` drawing
    from :data:`ZOO`, or with ``--cross`` from :data:`CROSS` and
    :data:`CROSS_WIDE`; ``--wider``: :func:`make_case` drawing from
    :data:`ALL`, or with ``--cross`` from :data:`CROSS_WIDER` too; ``--reorder``: children and keys in other orders
    too; ``--split``: each case judged twice, its checkpoint listed every
    parameter first, then every buffer first, instead of as built;
    ``--joined``: a module's children may also be lifted one level under
    joined names, ``stem.0`` as ``stem_0``, as timm's ``features_only``
    networks name them; ``--sorted``: every checkpoint's keys sorted by
    name, as a safetensors file lists them)."""
    argv = sys.argv[1:] if argv is None else argv
    flags = {arg for arg in argv if arg.startswith('--')}
    argv = [arg for arg in argv if arg not in flags]
    wide, reorder, split = '--wide' in flags, '--reorder' in flags, '--split' in flags
    joined = '--joined' in flags
    if '--cross' in flags:
        cross = ({**CROSS, **CROSS_WIDE, **CROSS_WIDER} if '--wider' in flags
                 else {**CROSS, **CROSS_WIDE} if wide else CROSS)
        build = functools.partial(make_cross_case, reorder=reorder, joined=joined, cross=cross)
    else:
        build = functools.partial(make_case, reorder=reorder, joined=joined,
                                  zoo=ALL if '--wider' in flags else ZOO if wide else MODELS)
    lo, hi, out = int(argv[0]), int(argv[1]), argv[2]
    modes = argv[3].split(',') if len(argv) > 3 else MODES
    for seed in range(lo, hi):
        t = time.time()
        try:
            name, other, ls, ld, case = build(seed)
        except Exception as err:
            print(seed, 'build failed', err, flush=True)
            continue
        if not case.truth:
            print(seed, name, 'empty truth', flush=True)
            continue
        if '--sorted' in flags and 'sorted keys' not in ls:
            case.source = dict(sorted(case.source.items()))
            ls = ls + ['sorted keys']
        res = {}
        for order, listed in _listings(case, split):
            for mode in modes:
                s = judge_case(listed, mode, time_limit=60)
                res[order, mode] = (s.correct, s.wrong, s.missing, s.error)
                if s.wrong:
                    with open(out, 'a') as f:
                        f.write(json.dumps({'seed': seed, 'model': name, 'other': other,
                                            'mode': mode, 'wrong': s.wrong,
                                            'truth': len(case.truth), 'src_ops': ls,
                                            'dst_ops': ld + ([order] if order else []),
                                            'examples': s.wrong_keys[:6]}) + '\n')
        print(seed, name, other, len(case.truth),
              ' '.join(f'{o[:1] + ":" if o else ""}{m[:4]}={c}/{w}'
                       for (o, m), (c, w, _, e) in res.items()),
              f'{time.time() - t:.1f}s', flush=True)

def _listings(case, split):
    """``(name, case)`` for each listing of the checkpoint to judge: as
    built, or (``split``) parameters first and buffers first."""
    if not split:
        return [('', case)]
    params = {k: v for k, v in case.source.items() if isinstance(v, nn.Parameter)}
    buffers = {k: v for k, v in case.source.items() if k not in params}
    out = []
    for order, source in [('parameters first', {**params, **buffers}),
                          ('buffers first', {**buffers, **params})]:
        listed = copy.copy(case)
        listed.source = source
        out.append((order, listed))
    return out


if __name__ == '__main__':
    sys.exit(main())
