"""
The user's own say in a load: ``rename=`` rules and ``include=`` /
``exclude=`` globs.

Pure string work, no torch: a plan applies these before (``rename``) and
after (``include`` / ``exclude``) the key association.

* ``rename`` is a dict. An entry whose key is a checkpoint key is an
  explicit pair ``{checkpoint key: model key}``; any other entry is a regular
  expression and its replacement, applied with :func:`re.sub` to every
  checkpoint key that is not an explicit pair, in the order given (as
  mmengine's ``revise_keys`` and HF's ``key_mapping`` do). A rule that
  matches nothing is an error: it is almost always a typo.
* ``include`` / ``exclude`` are glob patterns (:mod:`fnmatch`), matched
  against both keys of a pair: a pair may load when a key of it matches an
  ``include`` pattern (or none is given) and no key of it matches an
  ``exclude`` pattern.

Example:
    >>> from torch_liberator.keyrules import rename_keys
    >>> src = ['module.fc.weight', 'module.fc.bias', 'head.w']
    >>> dst = ['fc.weight', 'fc.bias', 'cls.w']
    >>> names, given = rename_keys(src, dst, {r'^module\\.': '', 'head.w': 'cls.w'})
    >>> names
    {'module.fc.weight': 'fc.weight', 'module.fc.bias': 'fc.bias', 'head.w': 'head.w'}
    >>> given
    {'head.w': 'cls.w', 'module.fc.weight': 'fc.weight', 'module.fc.bias': 'fc.bias'}
"""
import fnmatch
import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

from torch_liberator.errors import KeyRuleError

__all__ = ['KeyFilter', 'Patterns', 'rename_keys']

#: what ``include=`` / ``exclude=`` accept: a glob, several, or None
Patterns = Union[None, str, Iterable[str]]


def rename_keys(src_keys: Iterable[str], dst_keys: Iterable[str],
                rename: Optional[Mapping[str, str]]
                ) -> Tuple[Dict[str, str], Dict[str, str]]:
    """
    Apply ``rename`` to checkpoint keys.

    Args:
        src_keys: the checkpoint's keys.
        dst_keys: the model's keys.
        rename: explicit ``{checkpoint key: model key}`` pairs and/or
            ``{regex: replacement}`` rules (see the module docstring), or
            None.

    Returns:
        ``names``: every checkpoint key -> its name after the regex rules
        (itself when no rule changed it), for the association to place; and
        ``given``: the pairs the user settled, ``{checkpoint key: model
        key}``: the explicit pairs, then every checkpoint key a regex rule
        renamed to an existing model key. The association must not change
        these.

    Raises:
        KeyRuleError: ``rename`` is not a dict of str to str; a rule matches
            no checkpoint key; a regex does not compile; an explicit pair
            names a model key that does not exist; two checkpoint keys would
            go to one model key.

    Example:
        >>> from torch_liberator.keyrules import rename_keys
        >>> rename_keys(['a.w'], ['b.w'], {'^x': 'y'})
        Traceback (most recent call last):
        ...
        torch_liberator.errors.KeyRuleError: rename rule '^x' matches no checkpoint key (e.g. 'a.w'); fix the pattern or drop the rule
    """
    src_keys = list(src_keys)
    names = {key: key for key in src_keys}
    if rename is None:
        return names, {}
    if not isinstance(rename, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in rename.items()):
        raise KeyRuleError(
            f'rename={rename!r} is not a dict of str to str; pass '
            '{checkpoint key: model key} pairs and/or {regex: replacement} '
            'rules')
    dst_set = set(dst_keys)
    src_set = set(src_keys)
    given = {}
    rules = []
    for pattern, target in rename.items():
        if pattern in src_set:
            if target not in dst_set:
                raise KeyRuleError(
                    f'rename pair {pattern!r}: {target!r} names no model key; '
                    'give an existing model key (see map)')
            given[pattern] = target
            continue
        try:
            rules.append((pattern, re.compile(pattern), target))
        except re.error as err:
            raise KeyRuleError(
                f'rename rule {pattern!r} is neither a checkpoint key nor a '
                f'valid regex ({err}); fix the pattern') from err
    hits = {pattern: 0 for pattern, _, _ in rules}
    for key in src_keys:
        if key in given:
            continue
        name = key
        for pattern, regex, target in rules:
            try:
                name, count = regex.subn(target, name)
            except (re.error, IndexError) as err:
                raise KeyRuleError(
                    f'rename rule {pattern!r}: replacement {target!r} is '
                    f'invalid ({err}); fix the replacement') from err
            hits[pattern] += count
        names[key] = name
        if name != key and name in dst_set:
            given[key] = name
    for pattern, count in hits.items():
        if count == 0:
            example = f' (e.g. {src_keys[0]!r})' if src_keys else ''
            raise KeyRuleError(
                f'rename rule {pattern!r} matches no checkpoint key{example}; '
                'fix the pattern or drop the rule')
    owner = {}
    for src_key, name in names.items():
        if src_key in given:
            continue
        if name in owner:
            raise KeyRuleError(
                f'rename turns both {owner[name]!r} and {src_key!r} into '
                f'{name!r}; make the rules one to one')
        owner[name] = src_key
    owner = {}
    for src_key, dst_key in given.items():
        if dst_key in owner:
            raise KeyRuleError(
                f'rename sends both {owner[dst_key]!r} and {src_key!r} to '
                f'model key {dst_key!r}; a model key takes one tensor, make '
                'the rules one to one')
        owner[dst_key] = src_key
    return names, given


class KeyFilter:
    """
    ``include`` / ``exclude`` glob patterns over the keys of a pair.

    Args:
        include: a pattern or patterns; None lets every pair in.
        exclude: a pattern or patterns; None keeps none out.

    Raises:
        KeyRuleError: a pattern is not a str.

    Example:
        >>> from torch_liberator.keyrules import KeyFilter
        >>> keep = KeyFilter(include='backbone.*', exclude='*.fc.*')
        >>> keep.reason('layer1.w', 'backbone.layer1.w') is None
        True
        >>> keep.reason('fc.w', 'backbone.fc.w')
        "excluded by exclude='*.fc.*'"
        >>> keep.reason('fc.w', 'head.fc2.w')
        "matches no include pattern ['backbone.*']"
    """

    def __init__(self, include: Patterns = None, exclude: Patterns = None):
        self.include = _as_patterns('include', include)
        self.exclude = _as_patterns('exclude', exclude)

    def __bool__(self) -> bool:
        return self.include is not None or bool(self.exclude)

    def reason(self, src_key: str, dst_key: str) -> Optional[str]:
        """Why the pair may not load, or None when it may."""
        keys = (src_key, dst_key)
        for pattern in self.exclude or ():
            if any(fnmatch.fnmatchcase(key, pattern) for key in keys):
                return f'excluded by exclude={pattern!r}'
        if self.include is not None and not any(
                fnmatch.fnmatchcase(key, pattern)
                for pattern in self.include for key in keys):
            return f'matches no include pattern {list(self.include)}'
        return None

    def check_used(self, src_keys: Iterable[str],
                   dst_keys: Iterable[str]) -> None:
        """
        Raise KeyRuleError for a pattern that matches no key on either side.

        Example:
            >>> from torch_liberator.keyrules import KeyFilter
            >>> KeyFilter(exclude='haed.*').check_used(['head.w'], ['w'])
            Traceback (most recent call last):
            ...
            torch_liberator.errors.KeyRuleError: exclude pattern 'haed.*' matches no checkpoint or model key; fix the pattern or drop it
        """
        keys = list(src_keys) + list(dst_keys)
        for name, patterns in (('include', self.include),
                               ('exclude', self.exclude)):
            for pattern in patterns or ():
                if not any(fnmatch.fnmatchcase(key, pattern) for key in keys):
                    raise KeyRuleError(
                        f'{name} pattern {pattern!r} matches no checkpoint or '
                        'model key; fix the pattern or drop it')


def _as_patterns(name: str, patterns: Patterns) -> Optional[Sequence[str]]:
    if patterns is None:
        return None
    if isinstance(patterns, str):
        return (patterns,)
    try:
        found = tuple(patterns)
    except TypeError:
        found = None
    if found is None or not all(isinstance(p, str) for p in found):
        raise KeyRuleError(
            f'{name} must be a glob pattern or a list of them (e.g. '
            f"{name}=['backbone.*']), got {patterns!r}")
    return found
