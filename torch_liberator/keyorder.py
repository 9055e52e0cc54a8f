"""
What the order of a state dict's keys says.

Pure: keys (and shapes) in; no torch needed. ``state_dict()`` lists a
model's tensors in registration order: each module's own tensors together,
then its children, so that neighbours in the listing are neighbours in the
model, the evidence the structure mode aligns by. A checkpoint may list
them otherwise: sorted by name (a safetensors file), back to front, or cut
in two sections (every parameter, then every buffer, as a checkpoint built
from ``named_parameters()`` and ``named_buffers()`` is; buffers first, as
some consolidation tools write). :func:`registration_order` turns a
listing back to front around, and joins the two sections back into
registration order where only one joining is possible;
:func:`order_is_lost` tells the other listings, whose order says nothing,
and :func:`sort_within_modules` then puts each module's tensors in one
order.

Example:
    >>> from torch_liberator.keyorder import order_is_lost, registration_order
    >>> keys = [f'{m}.{n}' for m in ('conv1', 'bn1', 'conv2', 'bn2', 'fc')
    ...         for n in ('weight', 'bias', 'running_mean') if n != 'running_mean' or 'bn' in m]
    >>> params_first = sorted(keys, key=lambda k: k.endswith('running_mean'))
    >>> params_first[3:6]
    ['bn1.bias', 'conv2.weight', 'conv2.bias']
    >>> order_is_lost(params_first, min_keys=8)
    True
    >>> rejoined = registration_order(dict.fromkeys(params_first), min_keys=8)
    >>> list(rejoined) == keys
    True
"""
from typing import Iterable, List, Mapping, Optional

from torch_liberator.keygroups import Shape
from torch_liberator.namenumbers import name_numbers

__all__ = ['FEW_MODULES', 'numbered_order', 'order_is_lost', 'registration_order',
           'sort_within_modules']

#: below ``min_keys``, :func:`order_is_lost` believes a listing whose every
#: module puts ``bias`` before ``weight`` when at least this many modules
#: hold both (a sorted listing of a few Linear layers)
FEW_MODULES = 3

#: the buffers torch's normalization layers register (to tell which of two
#: sections holds the buffers, which a module lists after its parameters)
NORM_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def _sorted_runs(keys):
    """Whether ``keys`` are sorted by name, either way, in at most three runs."""
    down = sum(a > b for a, b in zip(keys, keys[1:]))
    return down <= 2 or len(keys) - 1 - down <= 2


def order_is_lost(keys: Iterable[str], min_keys: int = 32, sep: str = '.') -> bool:
    """
    True when ``keys`` (at least ``min_keys`` of them: a few keys may come
    in any order by chance) are not in a model's registration order, the
    order ``state_dict()`` writes: then the order tells nothing about which
    modules are neighbours. Three signs, each impossible in a state dict:

    * sorted by name, in at most three sorted runs (safetensors files list
      their tensors by dtype, then name), or sorted the other way;
    * one module's tensors in two places (every parameter, then every
      buffer: a checkpoint built from ``named_parameters()`` and
      ``named_buffers()``);
    * most modules listing ``bias`` before ``weight`` (a state dict rebuilt
      back to front). Torch registers ``weight`` first, so with fewer keys
      than ``min_keys`` this sign alone still counts when every module
      (at least :data:`FEW_MODULES` of them, or one in a listing sorted by
      name throughout) lists ``bias`` first.

    Example:
        >>> from torch_liberator.keyorder import order_is_lost
        >>> registered = ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean',
        ...               'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias',
        ...               'layer1.0.bn1.running_mean', 'layer1.0.conv2.weight',
        ...               'layer1.0.bn2.weight', 'layer1.0.bn2.bias',
        ...               'layer1.0.bn2.running_mean', 'fc.weight', 'fc.bias']
        >>> order_is_lost(registered, min_keys=8)
        False
        >>> order_is_lost(sorted(registered), min_keys=8)
        True
        >>> order_is_lost(sorted(registered, reverse=True), min_keys=8)
        True
        >>> order_is_lost(registered[::-1], min_keys=8)
        True
        >>> params_first = [k for k in registered if 'running' not in k] + ['bn1.running_mean']
        >>> order_is_lost(params_first, min_keys=8)
        True
        >>> order_is_lost(['fc.weight', 'conv.weight', 'conv.bias'])  # too few to tell
        False
        >>> order_is_lost(['conv.bias', 'conv.weight', 'fc.weight'])  # sorted, bias first
        True
        >>> linears = ['blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight',
        ...            'blocks.1.bias', 'blocks.2.weight', 'blocks.2.bias']
        >>> order_is_lost(linears), order_is_lost(sorted(linears))
        (False, True)
    """
    keys = list(keys)
    if len(keys) >= min_keys and _sorted_runs(keys):
        return True
    seen, previous = set(), None
    order = {}  # module -> its weight and bias, in the order they come
    for key in keys:
        module, _, name = key.rpartition(sep)
        if module != previous:
            if module in seen and len(keys) >= min_keys:
                return True
            seen.add(module)
            previous = module
        if name in ('weight', 'bias'):
            order.setdefault(module, []).append(name)
    both = [names for names in order.values() if len(names) == 2]
    bias_first = sum(names[0] == 'bias' for names in both)
    if len(keys) < min_keys:
        # few keys: only every module listing bias first, in at least
        # three modules, is not chance (torch registers weight first), or
        # in one module of a listing sorted by name from first to last
        if bias_first != len(both) or not both:
            return False
        return bias_first >= FEW_MODULES or all(a <= b for a, b in zip(keys, keys[1:]))
    return 2 * bias_first > len(both)


def sort_within_modules(side: Mapping[str, Shape],
                        sep: str = '.') -> dict:
    """
    ``side`` with each module's tensors together, sorted by name, the
    modules where their first tensor was listed, so that two sides whose
    order was lost compare a module's tensors in one order. A safetensors
    file lists its tensors by dtype, then name: a BatchNorm's integer
    ``num_batches_tracked`` comes after every float tensor, and joins its
    module again here.

    Example:
        >>> from torch_liberator.keyorder import sort_within_modules
        >>> list(sort_within_modules({'bn.weight': (4,), 'bn.bias': (4,),
        ...                           'conv.weight': (4, 3), 'bn.num_batches_tracked': ()}))
        ['bn.bias', 'bn.num_batches_tracked', 'bn.weight', 'conv.weight']
    """
    modules = {}
    for key in side:
        modules.setdefault(key.rpartition(sep)[0], []).append(key)
    return {k: side[k] for keys in modules.values() for k in sorted(keys)}


def registration_order(side: Mapping[str, Shape], sep: str = '.',
                       min_keys: int = 32) -> Mapping[str, Shape]:
    """
    ``side`` in registration order when its listing is that order back to
    front (the items of every list last first, and most modules' ``bias``
    before their ``weight``: both impossible in a state dict), turned
    around; or when it is that order cut in two sections (every parameter,
    then every buffer, or buffers first), joined: each module's tensors
    together, its parameters before its buffers, the modules in the one
    order both sections agree with. The section holding
    more of torch's normalization buffers (:data:`NORM_BUFFERS`) is the
    buffers', or, with as many on both sides, the one without a
    ``weight``; the modules at the cut listed once belong to the
    parameters'. ``side`` itself when its listing is already registration
    order, is no such cut, is sorted by name, has fewer than ``min_keys``
    keys, when nothing tells the sections apart, or when they join in more
    than one order (modules listed in one section only between the same
    two modules of both, or normalization buffers at the cut in a module
    listed once).

    Args:
        side: keys -> shapes, as listed.
        sep: separator between path components.
        min_keys: fewer keys are left as they are (too few to tell).

    Returns:
        Mapping[str, Shape]: the same items, perhaps in another order.

    Example:
        >>> from torch_liberator.keyorder import registration_order
        >>> buffers_first = ['bn1.running_mean', 'bn2.running_mean', 'bn3.running_mean',
        ...                  'conv1.weight', 'bn1.weight', 'conv2.weight', 'bn2.weight',
        ...                  'conv3.weight', 'bn3.weight', 'fc.weight']
        >>> for key in registration_order(dict.fromkeys(buffers_first), min_keys=4):
        ...     print(key)
        conv1.weight
        bn1.weight
        bn1.running_mean
        conv2.weight
        bn2.weight
        bn2.running_mean
        conv3.weight
        bn3.weight
        bn3.running_mean
        fc.weight
        >>> # a module listed once among the buffers (x), beside one listed
        >>> # once among the parameters (c), between the same two modules
        >>> odd = ['a.weight', 'c.weight', 'b.weight', 'a.running_mean', 'x.running_mean',
        ...        'b.running_mean']
        >>> list(registration_order(dict.fromkeys(odd), min_keys=4)) == odd
        True
        >>> registered = [f'blocks.{i}.{layer}.{name}' for i in range(4)
        ...               for layer in ('conv', 'bn') for name in ('weight', 'bias')]
        >>> list(registration_order(dict.fromkeys(registered[::-1]), min_keys=8)) == registered
        True
    """
    keys = list(side)
    if len(keys) < min_keys or _sorted_runs(keys):
        return side
    runs = []  # (module, its keys) for each run of one module's keys
    for key in keys:
        module = key.rpartition(sep)[0]
        if runs and runs[-1][0] == module:
            runs[-1][1].append(key)
        else:
            runs.append((module, [key]))
    modules = [module for module, _ in runs]
    again = _first_repeat(modules)
    if again is None:  # each module in one place: registration order, or back to front
        bias = sep + 'bias'
        if not any(a.endswith(bias) and b == a[:-4] + 'weight' for a, b in zip(keys, keys[1:])):
            return side  # (the cheap test first: no bias right before its weight)
        if order_is_lost(keys, min_keys, sep) and _lists_descend(keys, sep):
            forwards = keys[::-1]
            if not order_is_lost(forwards, min_keys, sep):
                return {key: side[key] for key in forwards}
        return side
    # a cut at t lists each module once on either side of it: t in [since, again]
    since = len(modules) - _first_repeat(modules[::-1])
    if since > again:
        return side  # a module in three places: no cut in two
    if _leaves(runs[since:again], NORM_BUFFERS, sep):
        return side  # buffers at the cut: it could be on either side of them
    before, after = runs[:since], runs[again:]
    norms = _leaves(before, NORM_BUFFERS, sep), _leaves(after, NORM_BUFFERS, sep)
    weights = _leaves(before, ('weight',), sep), _leaves(after, ('weight',), sep)
    if norms[0] != norms[1]:
        buffers_first = norms[0] > norms[1]
    elif (weights[0] == 0) != (weights[1] == 0):  # or the one without a weight
        buffers_first = weights[0] == 0
    else:
        return side  # nothing tells the sections apart
    t = since if buffers_first else again  # (the modules at the cut: parameters')
    order = _join(modules[:t], modules[t:])
    if order is None:
        return side
    sections = ({m: k for m, k in runs[:t]}, {m: k for m, k in runs[t:]})
    params, buffers = sections[::-1] if buffers_first else sections
    return {key: side[key] for module in order
            for key in params.get(module, []) + buffers.get(module, [])}


def numbered_order(side: Mapping[str, Shape], sep: str = '.') -> Mapping[str, Shape]:
    """
    ``side`` (in registration order) with the items of each numbered list
    in the order of their numbers: the children of one module whose names
    differ by their digits alone (``b1`` to ``b10``, ``block3-0``,
    ``conv1`` to ``conv3``), registered in another order, put back in the
    places they took, sorted by their numbers, the other children left
    where they are. Code registers a list's items first to last; a model
    that did otherwise (a stage holding its blocks in a dict filled out of
    turn) gives an order that may not be its network's, and read so, twins
    of one shape pair across their numbers: timm's regnetx_016 with its
    third stage's first block registered seventh, against torchvision's,
    had 115 tensors in the wrong blocks. Nor is the numbers' order sure (a
    pyramid's ``p5`` to ``p3``, top down): :func:`~torch_liberator.
    association.associate` reads both, and keeps a pair where the other
    reading makes it too or says nothing of it. ``side`` itself when every
    list is in order, when its order is lost (:func:`order_is_lost`: sorted by name,
    the numbers say nothing of the registration), or when the listing is
    not one module after another (each module's own tensors, then its
    children, as ``state_dict()`` writes them).

    Example:
        >>> from torch_liberator.keyorder import numbered_order
        >>> keys = ['stem.w', 's.b2.conv.w', 's.b3.conv.w', 's.b1.conv.w', 's.b1.proj.w',
        ...         's.pool.w', 's.b4.conv.w']
        >>> print(*numbered_order(dict.fromkeys(keys)))
        stem.w s.b1.conv.w s.b1.proj.w s.b2.conv.w s.b3.conv.w s.pool.w s.b4.conv.w
        >>> in_order = ['a.conv1.weight', 'a.bn1.weight', 'a.conv2.weight', 'a.bn2.weight']
        >>> numbered_order(dict.fromkeys(in_order)) == dict.fromkeys(in_order)
        True
    """
    keys = list(side)
    own, children = {}, {}  # module -> its own keys; module -> its children, as listed
    for key in keys:
        own.setdefault(key.rpartition(sep)[0], []).append(key)
    for module in own:
        while module and module not in children.get(module.rpartition(sep)[0], ()):
            parent, _, name = module.rpartition(sep)
            children.setdefault(parent, {})[name] = None
            module = parent
    numbers_of = {}  # child name -> (template, numbers), each name read once
    order, moved = {}, False
    for parent, names in children.items():
        places = {}  # template -> [(numbers, position)] of the children it names
        for at, name in enumerate(names):
            if name not in numbers_of:
                numbers_of[name] = name_numbers(name)
            template, numbers = numbers_of[name]
            if numbers and '@' not in template:
                places.setdefault(template, []).append((numbers, at))
        names = list(names)
        for listed in places.values():
            if all(a[0] <= b[0] for a, b in zip(listed, listed[1:])):
                continue
            moved = True
            ranked = [names[at] for _, at in sorted(listed)]
            for (_, at), name in zip(listed, ranked):
                names[at] = name
        order[parent] = names
    if not moved or order_is_lost(keys, sep=sep) or _walk(own, children, sep) != keys:
        return side
    return {key: side[key] for key in _walk(own, order, sep)}


def _walk(own, children, sep):
    """The keys of the tree ``own`` / ``children`` (module -> its own keys;
    module -> its children's names, in order) as ``state_dict()`` lists
    them: each module's own keys, then its children's, depth first."""
    out, stack = [], ['']
    while stack:
        module = stack.pop()
        out.extend(own.get(module, ()))
        below = [module + sep + name if module else name for name in children.get(module, ())]
        stack.extend(reversed(below))
    return out


def _lists_descend(keys: List[str], sep: str) -> bool:
    """Whether the items of lists come last first in ``keys``, twice at
    least and never the other way: a list registers item 0 first, so
    ``keys`` are listed back to front."""
    last = {}  # a list's path -> the item number seen last under it
    down = up = 0
    for key in keys:
        path = key.split(sep)
        for i, component in enumerate(path[:-1]):
            if component.isdigit():
                parent, item = sep.join(path[:i]), int(component)
                seen = last.get(parent, item)
                down += item < seen
                up += item > seen
                last[parent] = item
    return up == 0 and down >= 2


def _first_repeat(seq: List[str]) -> Optional[int]:
    """The index of the first item of ``seq`` seen before it, or None."""
    seen = set()
    for i, item in enumerate(seq):
        if item in seen:
            return i
        seen.add(item)
    return None


def _leaves(runs, names, sep) -> int:
    """How many keys of ``runs`` end in one of ``names``."""
    return sum(key.rpartition(sep)[2] in names for _, keys in runs for key in keys)


def _join(first: List[str], second: List[str]) -> Optional[List[str]]:
    """
    The modules of two sections (each listing a module once, in
    registration order) in the one order both agree with; None when the
    modules in both come in other orders, or when a stretch between two of
    them holds modules of each section alone (their order is unknown).
    """
    in_second, in_first = set(second), set(first)
    common = [m for m in first if m in in_second]
    if not common or common != [m for m in second if m in in_first]:
        return None
    order, i, j = [], 0, 0
    for module in common + [None]:
        alone_first, alone_second = [], []
        while i < len(first) and first[i] != module:
            alone_first.append(first[i])
            i += 1
        while j < len(second) and second[j] != module:
            alone_second.append(second[j])
            j += 1
        if alone_first and alone_second:
            return None
        order += alone_first + alone_second
        if module is not None:
            order.append(module)
            i, j = i + 1, j + 1
    return order
