"""Symmetric per-channel fixed point: a weight stored as n-bit integers and one scale per
output channel.

For output channel ``c`` (axis 0 of an FC or conv weight)::

    scale_c = max_i |W[c, i]| / (2^(n-1) - 1)
    q[c, i] = round(W[c, i] / scale_c)            in  -(2^(n-1) - 1) .. 2^(n-1) - 1
    W'[c, i] = q[c, i] * scale_c

Zero maps to zero exactly (pruned weights stay pruned); the error per weight is at most
``scale_c / 2``. Storage: ``n`` bits per weight plus 32 bits per channel. This is the storage
format; MXNet's own int8 inference path (``mx.contrib.quantization``) is compared in
``scripts/bench_deep_compression.py``.
"""
import numpy as np

__all__ = ['fixed_point_quantize', 'fixed_point_dequantize', 'fixed_point_bits_per_weight']


def fixed_point_quantize(weight, bits, layer='layer'):
    """Quantise ``weight`` (C, ...) to ``bits``-bit signed integers with per-channel scales.

    Parameters
    ----------
    weight : numpy.ndarray, shape (C, ...)
    bits : int, 2..16
        (1 bit leaves no nonzero symmetric level.)

    Returns
    -------
    q : numpy.ndarray, int32, weight's shape
    scales : numpy.ndarray, float32, shape (C,)
        0 for an all-zero channel.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ValueError('%s: fixed-point bits must be an integer in 2..16, got %r'
                         % (layer, bits))
    w = np.asarray(weight, np.float32)
    flat = w.reshape(w.shape[0], -1)
    levels = (1 << (bits - 1)) - 1
    scales = (np.abs(flat).max(axis=1) / levels).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0).astype(np.float32)
    q = np.clip(np.round(flat / safe[:, None]), -levels, levels).astype(np.int32)
    return q.reshape(w.shape), scales


def fixed_point_dequantize(q, scales):
    """``q * scale_c`` as float32, weight's shape."""
    q = np.asarray(q)
    s = np.asarray(scales, np.float32).reshape((-1,) + (1,) * (q.ndim - 1))
    return (q.astype(np.float32) * s).astype(np.float32)


def fixed_point_bits_per_weight(weight_shape, bits):
    """``bits + 32 * C / size``."""
    size = int(np.prod(weight_shape))
    return bits + 32.0 * weight_shape[0] / size
