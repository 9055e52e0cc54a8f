"""
What a module's name says about its place among its siblings.

Pure: names in, numbers out. Siblings that differ by numbers alone (a
list's ``3`` and ``4``, ``norm1`` and ``norm2``, ``encoder_layer_3``) are
numbered in their model's order, which a checkpoint sorted by name (a
safetensors file) no longer shows. Some libraries number two siblings by
a word instead: HuggingFace's ``layernorm_before`` and ``layernorm_after``
are the first and second norm of a block, timm's ``norm1`` and ``norm2``.
:func:`name_numbers` reads both kinds, so that a word counts as a number
only against a sibling of the same word family.

Example:
    >>> from torch_liberator.namenumbers import name_numbers
    >>> name_numbers('encoder.layer.3.layernorm_after')
    ('encoder.layer.#.layernorm_@0', (3, 2))
    >>> name_numbers('blocks.3.norm1')
    ('blocks.#.norm#', (3, 1))
    >>> name_numbers('prefix.post_norm')  # one word family per template
    ('prefix.@1_norm', (2,))
"""
import re
from typing import Tuple

__all__ = ['ORDINALS', 'name_numbers']

#: words that number two or three siblings, each family in its order (the
#: first norm of a block and the second); a name's last component counts
#: one such word as a number, never a word inside another (``prepare``)
ORDINALS = (('before', 'after'), ('pre', 'post'), ('first', 'second', 'third'))

_DIGITS = re.compile(r'\d+')
_FAMILY = {word: (f, n + 1) for f, family in enumerate(ORDINALS) for n, word in enumerate(family)}
_ORDINAL = re.compile(r'(?<![a-z])(' + '|'.join(_FAMILY) + r')(?![a-z])')


def name_numbers(name: str, sep: str = '.') -> Tuple[str, Tuple[int, ...]]:
    """
    ``(template, numbers)`` of a module path: every run of digits is
    blanked to ``#`` in the template and read as a number, in order; a
    word of :data:`ORDINALS` in the last component (one, not two) is
    blanked to ``@`` and its family's index and counts its place in the
    family, after the digits. Two siblings differ by numbers alone when
    their templates are equal; their numbers then give their order.

    Example:
        >>> from torch_liberator.namenumbers import name_numbers
        >>> name_numbers('layer.0.layernorm_before')
        ('layer.#.layernorm_@0', (0, 1))
        >>> name_numbers('layer.0.first_before')  # two words: neither counts
        ('layer.#.first_before', (0,))
        >>> name_numbers('stage.pre.conv')  # not the last component
        ('stage.pre.conv', ())
    """
    numbers = [int(d) for d in _DIGITS.findall(name)]
    template = _DIGITS.sub('#', name)
    head, cut, last = template.rpartition(sep)
    words = _ORDINAL.findall(last)
    if len(words) == 1:
        family, place = _FAMILY[words[0]]
        template = head + cut + _ORDINAL.sub(f'@{family}', last)
        numbers.append(place)
    return template, tuple(numbers)
