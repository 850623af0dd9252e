"""Choosing ranks: given, by parameter ratio, by kept singular-value energy, or for a target
overall compression.

With singular values ``s_1 >= s_2 >= ...`` of a layer's matrix, the rank-``r`` truncation
keeps the energy ``E(r) = sum_{i<=r} s_i^2 / sum_i s_i^2`` and has relative Frobenius error
``sqrt(1 - E(r))`` (Eckart-Young). Factorised cost is linear in the rank (``params`` or
``macs`` of the scheme, see :mod:`.schemes`).
"""
import numpy as np

from .layers import kept_energy
from .schemes import LowRankError

__all__ = ['rank_for_ratio', 'rank_for_energy', 'ranks_for_target', 'choose_ranks',
           'layer_cost', 'check_rank', 'describe_rank']

COSTS = ('params', 'macs')


def check_rank(spec, rank):
    """Raise :class:`LowRankError` unless ``1 <= rank <= max_rank`` of ``spec``'s scheme."""
    top = spec.scheme.max_rank(spec.geom)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= top:
        raise LowRankError('layer %s: rank must be an integer in 1..%d (min of the %dx%d '
                           '%s matrix), got %r' % ((spec.name, top)
                                                   + spec.scheme.matrix_shape(spec.geom)
                                                   + (spec.scheme.name, rank)))
    return int(rank)


def layer_cost(spec, rank=None, cost='params'):
    """Weight params or MACs of ``spec`` factorised at ``rank`` (None: the original layer)."""
    if cost not in COSTS:
        raise ValueError('cost must be one of %s, got %r' % (COSTS, cost))
    if cost == 'macs' and spec.op == 'Convolution' and spec.geom['out_hw'] is None:
        raise LowRankError('layer %s: feature-map size unknown, cannot count MACs' % spec.name)
    if rank is None:
        return (spec.scheme.original_params(spec.geom) if cost == 'params'
                else spec.scheme.original_macs(spec.geom))
    return spec.scheme.params(spec.geom, rank) if cost == 'params' else \
        spec.scheme.macs(spec.geom, rank)


def rank_for_ratio(spec, ratio, cost='params'):
    """Largest rank whose factorised cost is at most ``ratio`` times the original (>= 1).

    ``ratio`` in (0, 1], e.g. 0.2 for 5x fewer parameters in the layer.
    """
    if not 0 < ratio <= 1:
        raise LowRankError('layer %s: ratio must be in (0, 1], got %r' % (spec.name, ratio))
    per_rank = layer_cost(spec, 1, cost)
    rank = int(np.floor(ratio * layer_cost(spec, None, cost) / per_rank + 1e-9))
    return int(min(max(rank, 1), spec.scheme.max_rank(spec.geom)))


def rank_for_energy(spec, energy):
    """Smallest rank keeping at least ``energy`` (in (0, 1]) of the singular-value energy."""
    if not 0 < energy <= 1:
        raise LowRankError('layer %s: energy must be in (0, 1], got %r' % (spec.name, energy))
    s2 = np.square(np.asarray(spec.singular_values, np.float64))
    if s2.sum() == 0:
        return 1
    cumulative = np.cumsum(s2) / s2.sum()
    rank = int(np.searchsorted(cumulative, energy - 1e-12) + 1)
    return int(min(rank, spec.scheme.max_rank(spec.geom)))


def ranks_for_target(specs, compression, cost='params'):
    """Per-layer ranks so the layers' total cost shrinks ``compression`` times.

    Every layer keeps the same fraction ``e`` of its singular-value energy; ``e`` is the
    largest value (found by bisection) for which ``sum_i cost_i(r_i(e)) <= sum_i cost_i /
    compression``. Layers whose spectrum decays fast thus get low ranks, flat ones high.

    Parameters
    ----------
    specs : list of LayerSpec
    compression : float
        > 1, e.g. 5 for 5x fewer weight params (``cost='params'``) or MACs (``'macs'``).
    cost : {'params', 'macs'}

    Returns
    -------
    dict of str -> int
    """
    if not compression > 1:
        raise LowRankError('target compression must be > 1, got %r' % compression)
    budget = sum(layer_cost(s, None, cost) for s in specs) / float(compression)

    def total(energy):
        ranks = {s.name: rank_for_energy(s, energy) for s in specs}
        return sum(layer_cost(s, ranks[s.name], cost) for s in specs), ranks

    floor_cost, ranks = total(1e-12)
    if floor_cost > budget:
        raise LowRankError('target compression %.3gx is out of reach for layers %s: rank 1 '
                           'everywhere costs %d > budget %d %s'
                           % (compression, ', '.join(s.name for s in specs), floor_cost,
                              budget, cost))
    low, high = 1e-12, 1.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        if total(mid)[0] <= budget:
            low = mid
        else:
            high = mid
    return total(low)[1]


def choose_ranks(specs, ranks=None, ratio=None, energy=None, compression=None, cost='params'):
    """Ranks of ``specs`` by exactly one criterion, with explicit ``ranks`` overriding it.

    Parameters
    ----------
    ranks : int or dict of str -> int or None
        One rank for every layer, or ranks of named layers.
    ratio : float or None
        Per-layer cost ratio (:func:`rank_for_ratio`).
    energy : float or None
        Per-layer kept energy (:func:`rank_for_energy`).
    compression : float or None
        Overall compression of the layers (:func:`ranks_for_target`).

    Returns
    -------
    dict of str -> int
        Every rank checked with :func:`check_rank`.
    """
    criteria = [c for c in (ratio, energy, compression) if c is not None]
    if len(criteria) > 1:
        raise ValueError('give at most one of ratio, energy and compression')
    explicit = ranks if isinstance(ranks, dict) else {}
    names = {s.name for s in specs}
    unknown = sorted(set(explicit) - names)
    if unknown:
        raise LowRankError('ranks given for layers that are not being factorised: %s (layers: '
                           '%s)' % (', '.join(unknown), ', '.join(sorted(names))))
    rest = [s for s in specs if s.name not in explicit]
    chosen = {}
    if isinstance(ranks, (int, np.integer)) and not isinstance(ranks, bool):
        chosen = {s.name: ranks for s in rest}
    elif ratio is not None:
        chosen = {s.name: rank_for_ratio(s, ratio, cost) for s in rest}
    elif energy is not None:
        chosen = {s.name: rank_for_energy(s, energy) for s in rest}
    elif compression is not None and rest:
        chosen = ranks_for_target(rest, compression, cost)
    elif rest:
        raise LowRankError('no rank given for layers %s: give ranks, a ratio, an energy or a '
                           'target compression' % ', '.join(s.name for s in rest))
    chosen.update(explicit)
    by_name = {s.name: s for s in specs}
    return {name: check_rank(by_name[name], rank) for name, rank in chosen.items()}


def describe_rank(spec, rank):
    """Kept energy and relative Frobenius error of ``spec`` at ``rank``."""
    energy = kept_energy(spec.singular_values, rank)
    return {'kept_energy': energy, 'relative_error': float(np.sqrt(max(0.0, 1.0 - energy)))}
