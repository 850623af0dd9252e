"""Per-layer choices under an accuracy budget or a size target: exact allocation.

Each compressible layer ``l`` has options ``j`` (a sparsity, a codebook width, or both), each
with a size in bytes ``b[l, j]`` and a validation-error increase ``e[l, j]`` measured with
that layer alone changed -- the per-layer sensitivity curves of Han et al. (2015, Fig. 5;
2016, Sec. 3) and of the layer-wise searches of AMC (He et al. 2018). Taking the increases as
additive over layers (the first-order assumption those searches make), choosing one option
per layer is a multiple-choice knapsack:

.. math::

    \\min_{j_1..j_L} \\sum_l b[l, j_l] \\quad \\text{s.t.} \\quad \\sum_l e[l, j_l] \\le E
    \\qquad \\text{(budget mode, ``--max-error-increase``)}

    \\min_{j_1..j_L} \\sum_l e[l, j_l] \\quad \\text{s.t.} \\quad \\sum_l b[l, j_l] \\le B
    \\qquad \\text{(the dual, ``--target-ratio``)}

An error rate on ``N`` validation images moves in steps of ``1/N``, so the increases are
integers (images) and both problems are solved *exactly* by dynamic programming over the
error count ``c = 0 .. C``:

.. math::

    F_0(c) = 0, \\qquad F_l(c) = \\min_{j: e[l, j] \\le c} F_{l-1}(c - e[l, j]) + b[l, j],

``F_L(E)`` being the fewest bytes within budget ``E`` and the smallest ``c`` with
``F_L(c) <= B`` the least error within ``B`` bytes (time ``O(C * sum_l J_l)``, memory
``O(L * C)``). The Lagrangian relaxation of bit allocation (Shoham & Gersho 1988; used by AMC-
style searches), :func:`lagrangian_allocate`, picks per layer ``argmin_j b + lambda * e``: it
only reaches allocations on the lower convex hull of the total (bytes, error) front, which
the exact solution also covers between hull points.

A negative measured increase (the layer changed alone made the validation error *drop*) is
counted as 0: noise of that size does not add up across layers, and the whole allocation is
verified after fine-tuning anyway (:mod:`.auto`).
"""
import collections

import numpy as np

__all__ = ['Option', 'Allocation', 'error_count', 'allocate', 'allocate_for_bytes',
           'lagrangian_allocate', 'total']

#: one choice for one layer: ``value`` (what to apply, e.g. a sparsity or a bit width),
#: ``bytes`` (its size) and ``cost`` (its validation-error increase, in images)
Option = collections.namedtuple('Option', 'value bytes cost')
#: the choice per layer (``{layer: Option}``), its total bytes and cost, and whether it meets
#: the constraint
Allocation = collections.namedtuple('Allocation', 'choice bytes cost feasible')


def error_count(increase, examples):
    """A validation-error increase (fraction) as a whole number of images, at least 0.

    Parameters
    ----------
    increase : float
        Error increase as a fraction (0.001 = 0.1 points).
    examples : int
        Validation images it was measured on.
    """
    if not np.isfinite(increase):
        raise ValueError('error increase must be finite, got %r' % (increase,))
    return max(0, int(round(increase * examples)))


def total(choice):
    """``(bytes, cost)`` of a ``{layer: Option}`` choice."""
    return (sum(o.bytes for o in choice.values()), sum(o.cost for o in choice.values()))


def _check(options):
    if not options:
        raise ValueError('no layers to allocate')
    for layer, opts in options.items():
        if not opts:
            raise ValueError('layer %s has no options' % layer)
        for o in opts:
            if not isinstance(o.cost, (int, np.integer)) or o.cost < 0:
                raise ValueError('layer %s: option %r: cost must be a whole number of images '
                                 '>= 0 (see error_count)' % (layer, o.value))
            if not np.isfinite(o.bytes) or o.bytes < 0:
                raise ValueError('layer %s: option %r: bytes must be finite and >= 0'
                                 % (layer, o.value))


def _table(options, max_cost):
    """``F`` (L+1, C+1) and the argmin option per (layer, c) of the recursion above."""
    layers = list(options)
    size = max_cost + 1
    best = np.zeros(size)
    pick = np.zeros((len(layers), size), np.int64)
    rows = [best]
    for i, layer in enumerate(layers):
        new = np.full(size, np.inf)
        arg = np.full(size, -1, np.int64)
        for j, o in enumerate(options[layer]):
            if o.cost > max_cost:
                continue
            cand = np.full(size, np.inf)
            cand[o.cost:] = best[:size - o.cost] + o.bytes
            # strictly better only: ties keep the earlier (listed first) option
            better = cand < new - 1e-9
            new[better], arg[better] = cand[better], j
        best = new
        pick[i] = arg
        rows.append(best)
    return layers, np.array(rows), pick


def _backtrack(options, layers, pick, c):
    choice = {}
    for i in range(len(layers) - 1, -1, -1):
        o = options[layers[i]][pick[i, c]]
        choice[layers[i]] = o
        c -= o.cost
    return {layer: choice[layer] for layer in layers}


def allocate(options, max_cost):
    """Fewest bytes with a total error increase of at most ``max_cost`` images.

    Parameters
    ----------
    options : dict
        Layer name -> list of :class:`Option` (``cost`` whole images >= 0, see
        :func:`error_count`).
    max_cost : int
        The budget in images (>= 0).

    Returns
    -------
    Allocation
        ``feasible`` False (and the cheapest-error choice) when no combination fits, i.e. when
        even the least costly option of each layer costs more than the budget together.
    """
    _check(options)
    if max_cost < 0:
        raise ValueError('max_cost must be >= 0, got %r' % (max_cost,))
    floor = sum(min(o.cost for o in opts) for opts in options.values())
    if floor > max_cost:
        cheapest = {l: min(opts, key=lambda o: (o.cost, o.bytes)) for l, opts in options.items()}
        return Allocation(cheapest, *total(cheapest), feasible=False)
    layers, table, pick = _table(options, int(max_cost))
    choice = _backtrack(options, layers, pick, int(max_cost))
    return Allocation(choice, *total(choice), feasible=True)


def allocate_for_bytes(options, max_bytes):
    """Least total error increase with at most ``max_bytes`` bytes (the dual of
    :func:`allocate`); among equal errors, the fewest bytes.

    Returns
    -------
    Allocation
        ``feasible`` False (and the smallest choice) when even the smallest option of every
        layer exceeds ``max_bytes`` together.
    """
    _check(options)
    ceiling = sum(max(o.cost for o in opts) for opts in options.values())
    layers, table, pick = _table(options, ceiling)
    final = table[-1]
    ok = np.flatnonzero(final <= max_bytes + 1e-9)
    if not len(ok):
        smallest = {l: min(opts, key=lambda o: (o.bytes, o.cost)) for l, opts in options.items()}
        return Allocation(smallest, *total(smallest), feasible=False)
    choice = _backtrack(options, layers, pick, int(ok[0]))
    return Allocation(choice, *total(choice), feasible=True)


def lagrangian_allocate(options, lam):
    """Per layer ``argmin_j bytes + lam * cost`` (the Lagrangian relaxation): for ``lam`` >= 0,
    an allocation on the lower convex hull of the (bytes, cost) front; larger ``lam`` spends
    fewer errors. Exact solutions lie between hull points: use :func:`allocate`."""
    _check(options)
    choice = {l: min(opts, key=lambda o: (o.bytes + lam * o.cost, o.cost))
              for l, opts in options.items()}
    return Allocation(choice, *total(choice), feasible=True)
