"""
Do two models share a naming scheme, and which pairs go against it?

Pure: two :class:`~torch_liberator.keygroups.KeyGroups` and tensor pairs in,
the pairs whose names disagree out. When more paired tensors sit in modules
of the same name than of two different names, the two models share a naming
scheme, and a pair whose names are two different words (``fc`` and
``head``; a container's own tensors by their own names) is a conflict: in a
shared scheme, a different name means a different module. Integer names
(Sequential positions), a name found in the other path (an inserted
level: ``head.fc`` and ``head``) and a path flattened into one name
(``features_conv0``) never count against a pair. In a shared
scheme, a pair whose names agree is a conflict too when the paths, the same
below, first differ in two words that each name a module beside the other:
the namesake is there, and only order chose the other. A rename is no
conflict: two words that the other model never uses, paired with each
other only, in two or more module pairs (HF's ``layernorm_before`` for
timm's ``norm1`` in every block); a word used once stays one (the
README's ``custom_model2_layer`` is no ``custom_model1_layer``). Nor is a
word and the word numbered (``conv`` and ``conv2``) a conflict when the
two modules around them hold other pairs between them: one library numbers
a layer the other does not.

Example:
    >>> from torch_liberator.keygroups import KeyGroups
    >>> from torch_liberator.namevotes import NameVotes
    >>> src = KeyGroups({'x.conv.w': (2,), 'x.bn.w': (3,), 'fc.w': (4,)})
    >>> dst = KeyGroups({'y.conv.w': (2,), 'y.bn.w': (3,), 'head.w': (4,)})
    >>> # (src group, src position, dst group, dst position) per tensor pair
    >>> NameVotes(src, dst).conflicts([(0, 0, 0, 0), (1, 0, 1, 0), (2, 0, 2, 0)])
    {2}
"""
from collections import Counter
from typing import Dict, Sequence, Set, Tuple

from torch_liberator.keygroups import KeyGroups, is_word, joined_length
from torch_liberator.nameanchors import module_children

__all__ = ['NameVotes', 'compare_names']


def compare_names(name1: str, comps1: Tuple[str, ...], name2: str,
                  comps2: Tuple[str, ...]) -> int:
    """
    How two names compare: +1 they agree, -1 two different words, 0 no
    evidence (an empty name, an integer, or one name appears in the other's
    path: a level was inserted, as ``head.fc`` and ``head``; or one name is
    the other's path flattened, as ``features_conv0`` and
    ``features.conv0``; or one abbreviates the other, as ``conv`` and
    HuggingFace's ``convolution``, ``norm`` and its ``layernorm``,
    ``pos_embed`` and its ``position_embeddings``).

    Example:
        >>> from torch_liberator.namevotes import compare_names
        >>> compare_names('fc', ('fc',), 'head', ('head',))
        -1
        >>> compare_names('fc', ('head', 'fc'), 'head', ('head',))
        0
        >>> compare_names('bn1', ('bn1',), 'bn1', ('body', 'bn1'))
        1
        >>> compare_names('conv0', ('features', 'conv0'), 'features_conv0', ('features_conv0',))
        0
        >>> compare_names('conv', ('stem', 'conv'), 'convolution', ('embedder', 'convolution'))
        0
        >>> compare_names('norm', ('norm',), 'layernorm', ('layernorm',))
        0
        >>> compare_names('pos_embed', ('pos_embed',), 'position_embeddings',
        ...               ('embeddings', 'position_embeddings'))
        0
        >>> compare_names('fc_norm', ('fc_norm',), 'norm', ('norm',))
        -1
    """
    if not name1 or not name2:
        return 0  # the root has no name
    if name1 == name2:
        return 1 if is_word(name1) else 0
    if not (is_word(name1) and is_word(name2)):
        return 0
    if name1 in comps2 or name2 in comps1:
        return 0
    if joined_length(name1, comps2) or joined_length(name2, comps1):
        return 0
    if _abbreviates(name1, name2) or _abbreviates(name2, name1):
        return 0
    return -1


def _abbreviates(short: str, name: str) -> bool:
    """Whether ``short`` names what ``name`` names in fewer letters: a word
    of three letters or more that begins the longer word (``conv`` and
    ``convolution``, ``norm`` and ``normalization``, ``proj`` and
    ``projection``), or of four letters or more that ends it (``norm`` and
    HuggingFace's ``layernorm``), letters only; or, word by word between
    underscores, as many words each its namesake or abbreviating it
    (timm's ``pos_embed`` and HuggingFace's ``position_embeddings``)."""
    parts1, parts2 = short.split('_'), name.split('_')
    if len(parts1) > 1 and len(parts1) == len(parts2):
        return short != name and all(a == b or _abbreviates(a, b)
                                     for a, b in zip(parts1, parts2))
    if not (short.isalpha() and name.isalpha() and len(short) < len(name)):
        return False
    return (len(short) >= 3 and name.startswith(short)) or (
        len(short) >= 4 and name.endswith(short))


class NameVotes:
    """
    Judges the names of tensor pairs between two grouped sides.

    Args:
        src: the source's groups.
        dst: the destination's groups.

    Example:
        >>> from torch_liberator.keygroups import KeyGroups
        >>> from torch_liberator.namevotes import NameVotes
        >>> votes = NameVotes(KeyGroups({'fc.w': (4,)}), KeyGroups({'head.w': (4,)}))
        >>> votes.conflicts([(0, 0, 0, 0)])  # no shared scheme: no conflict
        set()
    """

    def __init__(self, src: KeyGroups, dst: KeyGroups):
        self.src, self.dst = src, dst
        self._children = None  # each side's module_children, once needed
        self._words = None  # each side's path components and tensor names, once needed
        self._above: Dict[Tuple[int, int], bool] = {}  # namesakes_above, once per group pair

    @staticmethod
    def _name_of(side, g, pos):
        """The name a tensor is known by: its module's for a leaf module,
        its own for a container's tensor; with the path's components."""
        comps = side.comps[g]
        if side.leaf[g] and comps:
            return comps[-1], comps
        name = side.names[g][pos]
        return name, comps + (name,)

    def _verdict(self, i, a, j, b):
        """How the names of one tensor pair compare (see compare_names)."""
        return compare_names(*self._name_of(self.src, i, a),
                             *self._name_of(self.dst, j, b))

    def _module_vote(self, i, j):
        """How the names of two paired modules compare."""
        comps1, comps2 = self.src.comps[i], self.dst.comps[j]
        if not comps1 or not comps2:
            return 0
        return compare_names(comps1[-1], comps1, comps2[-1], comps2)

    def conflicts(self, tensor_pairs: Sequence[Tuple[int, int, int, int]]) -> Set[int]:
        """
        Positions in ``tensor_pairs`` (``(src group, src position, dst
        group, dst position)`` each) whose names are two different words
        while the models share a naming scheme: more of the paired tensors
        sit in modules of one name than of two different names. Renames
        (see the module docstring) are left out.

        Example:
            >>> from torch_liberator.keygroups import KeyGroups
            >>> from torch_liberator.namevotes import NameVotes
            >>> votes = NameVotes(KeyGroups({'a.conv.w': (2,), 'fc.w': (4,)}),
            ...                   KeyGroups({'b.conv.w': (2,), 'head.w': (4,)}))
            >>> votes.conflicts([(0, 0, 0, 0)])
            set()
            >>> votes.conflicts([(0, 0, 0, 0), (0, 0, 0, 0), (1, 0, 1, 0)])
            {2}
            >>> # one rename in every block: neither name is the other model's
            >>> block = lambda p, n: {f'{p}.conv.w': (2,), f'{p}.{n}.w': (3,)}
            >>> votes = NameVotes(KeyGroups({**block('a', 'norm1'), **block('b', 'norm1')}),
            ...                   KeyGroups({**block('x', 'ln_1'), **block('y', 'ln_1')}))
            >>> votes.conflicts([(0, 0, 0, 0), (1, 0, 1, 0), (2, 0, 2, 0), (3, 0, 3, 0)])
            set()
        """
        vote_of = {}
        votes = []
        for i, _, j, _ in tensor_pairs:
            vote = vote_of.get((i, j))
            if vote is None:
                vote = vote_of[(i, j)] = self._module_vote(i, j)
            votes.append(vote)
        if votes.count(1) <= votes.count(-1):
            return set()
        src, dst = self.src, self.dst
        out = set()
        disagree = {}  # (src name, dst name) -> positions, of the pairs of two words
        numbered = []  # positions of pairs of a word and the word numbered
        for n, (pair, vote) in enumerate(zip(tensor_pairs, votes)):
            i, a, j, b = pair
            if src.leaf[i] and dst.leaf[j] and src.comps[i] and dst.comps[j]:
                verdict = vote  # both tensors go by their modules' names
            else:
                verdict = self._verdict(i, a, j, b)
            if verdict < 0:
                names = (self._name_of(src, i, a)[0], self._name_of(dst, j, b)[0])
                if _numbered(*names) or _numbered(*names[::-1]):
                    numbered.append(n)
                    continue
                out.add(n)
                disagree.setdefault(names, []).append(n)
            else:
                if self.namesakes_above(i, j):
                    out.add(n)
        if numbered:
            out.update(self._numbered_apart(tensor_pairs, numbered))
        return out - self._renamed(tensor_pairs, disagree)

    def _known_words(self):
        """Each side's path components and tensor names."""
        if self._words is None:
            self._words = tuple({c for g in range(len(side)) for c in side.comps[g]}
                                | {name for names in side.names for name in names}
                                for side in (self.src, self.dst))
        return self._words

    def _numbered_apart(self, tensor_pairs, positions) -> Set[int]:
        """The ``positions`` of ``tensor_pairs`` (pairs of a word and the
        word numbered, ``conv`` and ``conv2``) that disagree: their two
        parent modules hold no other pair between them (two modules of
        other kinds met by their shapes: a densenet169's
        ``denselayer25.norm1`` into a densenet121's ``transition3.norm``),
        or their paths cross two sibling namesakes
        (:meth:`namesakes_above`). Two parents that hold other pairs
        correspond, and one library numbers a layer the other does not
        (RAFT's original ``fnet`` and torchvision's ``feature_encoder`` end
        in ``conv2`` and ``conv``)."""
        src, dst = self.src, self.dst
        group_pairs = {(i, j) for i, _, j, _ in tensor_pairs}
        below = {}  # src module -> the dst groups of the group pairs below it
        for i, j in group_pairs:
            comps = src.comps[i]
            for depth in range(1, len(comps)):
                below.setdefault(comps[:depth], []).append(j)
        counts = {}  # (src parent, dst parent) -> group pairs between them
        out = set()
        for n in positions:
            i, _, j, _ = tensor_pairs[n]
            parent1, parent2 = src.comps[i][:-1], dst.comps[j][:-1]
            if (parent1, parent2) not in counts:
                counts[parent1, parent2] = sum(
                    1 for g in below.get(parent1, ()) if dst.comps[g][:len(parent2)] == parent2)
            if (not parent1 or not parent2 or counts[parent1, parent2] < 2
                    or self.namesakes_above(i, j)):
                out.add(n)
        return out

    def _renamed(self, tensor_pairs, disagree):
        """The positions of ``disagree`` (``(source name, destination name)
        -> positions``) that a rename explains: each name is unknown to the
        other model, the two pair with each other only, in two or more
        module pairs (HF's Hiera calls timm's ``norm1`` and ``norm2``
        ``layernorm_before`` and ``layernorm_after`` in a scheme that
        shares every other name)."""
        if not disagree:
            return set()
        src_words, dst_words = self._known_words()
        partners_of_src, partners_of_dst = Counter(), Counter()
        for name1, name2 in disagree:
            partners_of_src[name1] += 1
            partners_of_dst[name2] += 1
        out = set()
        for (name1, name2), positions in disagree.items():
            if (name1 in dst_words or name2 in src_words or partners_of_src[name1] > 1
                    or partners_of_dst[name2] > 1):
                continue
            modules = {(tensor_pairs[n][0], tensor_pairs[n][2]) for n in positions}
            if len(modules) >= 2:
                out.update(positions)
        return out

    def namesakes_above(self, i: int, j: int) -> bool:
        """
        Whether the paths of source group ``i`` and destination group
        ``j``, the same below, first differ in two words each of which
        names a module beside the other (``Mixed_7b.branch3x3_2a.bn``
        against the model's ``Mixed_7b.branch3x3dbl_2.bn`` while its
        ``Mixed_7b.branch3x3_2a`` exists: the model's branches registered
        in another order, mutation fuzz seed 649 of ``--reorder``;
        positions against names below them are passed over, a level
        flattened on one side, seed 828). A path that runs out on a level
        both name, while the other goes on with a word, is a namesake of
        that word when its side holds a module of that word at its top
        that holds the path less its first level (seed 6417 of ``--cross
        --wide --reorder``: the model's ``main.branch3x3dbl_1`` against the
        checkpoint's ``Mixed_6a.main.branch3x3dbl_1``, the model's
        ``Mixed_6a.branch3x3dbl_1`` beside it).

        Example:
            >>> from torch_liberator.keygroups import KeyGroups
            >>> from torch_liberator.namevotes import NameVotes
            >>> keys = {'block.layer1.bn.w': (4,), 'block.layer5.bn.w': (8,)}
            >>> votes = NameVotes(KeyGroups(keys), KeyGroups(keys))
            >>> votes.namesakes_above(0, 1), votes.namesakes_above(0, 0)
            (True, False)
        """
        found = self._above.get((i, j))
        if found is None:
            found = self._above[i, j] = self._namesakes_above(i, j)
        return found

    def _namesakes_above(self, i, j):
        comps1, comps2 = self.src.comps[i], self.dst.comps[j]
        src_words, dst_words = self._known_words()
        k1 = k2 = 1
        # (a position against a name below is a level flattened on one
        # side: ``branch3x3_2a.0`` is ``branch3x3_2a.conv``; a word the
        # other model never uses is a level inserted on one side:
        # ``branch7x7dbl_3.main.bn`` is ``branch7x7dbl_3.bn``, seed 6059)
        while k1 <= len(comps1) and k2 <= len(comps2):
            x1, x2 = comps1[-k1], comps2[-k2]
            if x1 == x2 or x1.isdigit() or x2.isdigit():
                k1, k2 = k1 + 1, k2 + 1
            elif x1 not in dst_words and is_word(x1) and x2 in src_words:
                k1 += 1
            elif x2 not in src_words and is_word(x2) and x1 in dst_words:
                k2 += 1
            else:
                break
        if self._children is None:
            self._children = (module_children(self.src), module_children(self.dst))
        if k1 > len(comps1) and k2 > len(comps2):
            return False
        # (a path that ran out on a level both name, the other going on)
        if k2 > len(comps2):
            return (k1 > 1 and comps1[1 - k1] == comps2[0]
                    and _namesake_at_the_top(comps1[-k1], comps2, self._children[1]))
        if k1 > len(comps1):
            return (k2 > 1 and comps2[1 - k2] == comps1[0]
                    and _namesake_at_the_top(comps2[-k2], comps1, self._children[0]))
        x1, x2 = comps1[-k1], comps2[-k2]
        if (_joined_namesake(x1, comps2[:-k2], x2, self._children[1])
                or _joined_namesake(x2, comps1[:-k1], x1, self._children[0])):
            return True
        if not (is_word(x1) and is_word(x2)):
            return False
        return (x1 in self._children[1].get(comps2[:-k2], ())
                and x2 in self._children[0].get(comps1[:-k1], ()))


def _namesake_at_the_top(word, path, children) -> bool:
    """Whether ``path``, which ran out where the other side's path goes on
    with ``word``, has a sibling module ``word`` at its top that holds
    ``path`` less its first level (the model's ``main.branch3x3dbl_1``
    beside its ``Mixed_6a.branch3x3dbl_1``, against the checkpoint's
    ``Mixed_6a.main.branch3x3dbl_1``: ``main`` is as well a level that the
    checkpoint inserted, mutation fuzz seed 6417 of ``--cross --wide
    --reorder``)."""
    if (len(path) < 2 or word == path[0] or not is_word(word)
            or word not in children.get((), ())):
        return False
    return path[-1] in children.get((word,) + path[1:-1], ())


def _numbered(numbered: str, name: str) -> bool:
    """Whether ``numbered`` is the word ``name`` with a number after it
    (``conv2`` and ``conv``)."""
    return (name.isalpha() and numbered.startswith(name)
            and numbered[len(name):].isdigit())


def _joined_namesake(joined, parent, name, children) -> bool:
    """Whether ``joined``, one path component, is the other side's path
    ``parent`` (its last levels) and a child of it other than ``name``,
    joined with ``_`` (``Mixed_6d_branch7x7dbl_3`` against
    ``Mixed_6d.branch7x7_2`` while ``Mixed_6d.branch7x7dbl_3`` exists: a
    model flattened by joining its names, mutation fuzz seed 1388 of
    ``--joined --cross --wide --reorder``)."""
    siblings = children.get(parent, ())
    for m in range(1, len(parent) + 1):
        prefix = '_'.join(parent[-m:]) + '_'
        if joined.startswith(prefix):
            child = joined[len(prefix):]
            return child != name and child in siblings
    return False
