"""Pruning criteria: small pure functions from weights to 0/1 masks.

All criteria rank weights by magnitude ``|w|`` and keep previously pruned weights pruned when
given the current mask (zeros have the smallest magnitude, so they go first anyway).

- :func:`level_mask`: per-layer target sparsity (prune the ``floor(s * n)`` smallest).
- :func:`threshold_mask`: Han et al. (NIPS 2015): prune ``|w| <= q * std(w)`` with a quality
  parameter ``q`` (std over the layer's surviving weights).
- :func:`global_masks`: one magnitude threshold across layers, so the overall sparsity hits
  the target while the per-layer sparsities follow the weight distributions.
"""
import math

import numpy as np

__all__ = ['check_sparsity', 'level_mask', 'threshold_mask', 'global_masks', 'sparsity_of']


def check_sparsity(sparsity, what='sparsity'):
    """Return ``sparsity`` as float; raise ValueError unless it lies in [0, 1)."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError('%s must be a number in [0, 1), got %r' % (what, sparsity)) from None
    if not 0.0 <= value < 1.0 or math.isnan(value):
        raise ValueError('%s must be in [0, 1) (1 would prune every weight), got %s'
                         % (what, sparsity))
    return value


def _np(value):
    return value.asnumpy() if hasattr(value, 'asnumpy') else np.asarray(value)


def sparsity_of(mask):
    """Fraction of zeros in ``mask``."""
    mask = _np(mask)
    return 1.0 - np.count_nonzero(mask) / mask.size


def level_mask(weight, sparsity):
    """Mask pruning exactly ``floor(sparsity * n)`` weights of smallest ``|w|``.

    Parameters
    ----------
    weight : array, any shape, n elements
    sparsity : float in [0, 1)

    Returns
    -------
    numpy.ndarray, float32, weight's shape
        1 = kept, 0 = pruned; ties are broken by position (stable sort), so the count is exact.
    """
    sparsity = check_sparsity(sparsity)
    w = np.abs(_np(weight)).ravel()
    n_prune = int(math.floor(sparsity * w.size + 1e-9))
    mask = np.ones(w.size, dtype=np.float32)
    if n_prune:
        mask[np.argsort(w, kind='stable')[:n_prune]] = 0
    return mask.reshape(_np(weight).shape)


def threshold_mask(weight, quality, mask=None):
    """Han's criterion: prune weights with ``|w| <= quality * std``.

    Parameters
    ----------
    weight : array
    quality : float >= 0
        Quality parameter ``q``; larger prunes more (about 1 - erf(q / sqrt 2) of a Gaussian
        layer survives: q = 1 keeps ~32 %, q = 2 keeps ~5 %).
    mask : array or None
        Current mask; the standard deviation is taken over the surviving weights, and pruned
        weights stay pruned.

    Returns
    -------
    numpy.ndarray, float32, weight's shape
    """
    quality = float(quality)
    if not quality >= 0 or math.isinf(quality):
        raise ValueError('quality must be a finite number >= 0, got %s' % quality)
    w = _np(weight)
    alive = np.ones_like(w, dtype=bool) if mask is None else _np(mask) != 0
    std = float(np.std(w[alive])) if alive.any() else 0.0
    keep = (np.abs(w) > quality * std) & alive
    return keep.astype(np.float32)


def global_masks(weights, sparsity):
    """One magnitude threshold over several layers hitting ``sparsity`` overall.

    Parameters
    ----------
    weights : dict of str -> array
    sparsity : float in [0, 1)
        Fraction of all the given weights (together) to prune: exactly
        ``floor(sparsity * total)`` of smallest magnitude.

    Returns
    -------
    dict of str -> numpy.ndarray (float32)
    """
    sparsity = check_sparsity(sparsity)
    names = list(weights)
    flat = [np.abs(_np(weights[n])).ravel() for n in names]
    everything = np.concatenate(flat) if flat else np.zeros(0)
    n_prune = int(math.floor(sparsity * everything.size + 1e-9))
    keep = np.ones(everything.size, dtype=np.float32)
    if n_prune:
        keep[np.argsort(everything, kind='stable')[:n_prune]] = 0
    masks, start = {}, 0
    for name, f in zip(names, flat):
        masks[name] = keep[start:start + f.size].reshape(_np(weights[name]).shape)
        start += f.size
    return masks
