"""Scalar (k-means) weight sharing of one layer, with pruned zeros reserved.

Deep Compression (Han et al. 2016) stores a layer as a codebook of k = 2^bits shared values and
a ``bits``-bit index per stored weight. Here index 0 is reserved for an exact zero that never
trains (so weights removed by pruning stay removed, and the container's filler entries have a
code), and the layer's *nonzero* weights are clustered into the remaining ``2^bits - 1``
centroids. ``codebook[index]`` is the quantised weight.

Edge cases (documented fallbacks, never silently wrong):

* ``bits`` outside 1..16: ``ValueError`` naming the layer.
* the layer has no more distinct nonzero values than clusters (includes "k larger than the
  number of weights" and an already-quantised layer): the codebook is exactly those distinct
  values, so quantisation is lossless and the codebook is shorter than ``2^bits``.
* an all-zero layer: codebook ``[0]``, every index 0.
"""
import numpy as np

from .kmeans import _kmeans_1d

__all__ = ['MIN_BITS', 'MAX_BITS', 'check_bits', 'scalar_quantize', 'dequantize',
           'default_bits']

MIN_BITS, MAX_BITS = 1, 16


def check_bits(bits, layer='layer'):
    """Raise ``ValueError`` unless ``bits`` is an int in 1..16."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) \
            or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError('%s: bits must be an integer in %d..%d, got %r'
                         % (layer, MIN_BITS, MAX_BITS, bits))
    return int(bits)


def default_bits(op, conv_bits=8, fc_bits=5):
    """Han et al.'s defaults: 8 bits for ``Convolution`` layers, 5 for ``FullyConnected``."""
    return conv_bits if op in ('Convolution', 'Deconvolution') else fc_bits


def scalar_quantize(weight, bits, init='linear', iters=50, seed=0, layer='layer'):
    """Cluster a layer's nonzero weights into ``2^bits - 1`` shared values plus a reserved zero.

    Parameters
    ----------
    weight : numpy.ndarray, any shape
        Pruned weights are exact zeros.
    bits : int
        Index width, 1..16; the codebook has at most ``2^bits`` entries.
    init : str
        k-means initialisation (see :data:`mxcompress.quantization.kmeans.INITS`).
    iters, seed : int
        Lloyd iterations and the seed of random initialisations.
    layer : str
        Name used in error messages.

    Returns
    -------
    codebook : numpy.ndarray, float32, shape (k,), k <= 2^bits
        ``codebook[0] == 0``; the rest sorted ascending.
    index : numpy.ndarray, uint8 (bits <= 8) or uint16, same shape as ``weight``
        0 exactly where ``weight == 0``; ``codebook[index]`` is the quantised weight.
    """
    bits = check_bits(bits, layer)
    w = np.asarray(weight, dtype=np.float32)
    nonzero = w != 0
    values = w[nonzero]
    index = np.zeros(w.shape, dtype=np.uint8 if bits <= 8 else np.uint16)
    if values.size == 0:
        return np.zeros(1, np.float32), index
    clusters = (1 << bits) - 1
    distinct = np.unique(values)
    if len(distinct) <= clusters:  # lossless: the codebook is the distinct values
        codebook = np.concatenate([[0.0], distinct]).astype(np.float32)
        index[nonzero] = 1 + np.searchsorted(distinct, values)
        return codebook, index
    del distinct
    centroids, labels = _kmeans_1d(values, clusters, init=init, iters=iters, seed=seed)
    order = np.argsort(centroids, kind='stable')
    code = np.empty(len(order), index.dtype)    # centroid -> index (1 + its rank)
    code[order] = np.arange(1, len(order) + 1)
    codebook = np.concatenate([[0.0], centroids[order]]).astype(np.float32)
    index[nonzero] = code[labels]
    del labels
    # a centroid can round to 0 in float32 only if all its members were ~0; keep them nonzero
    zero_codes = np.flatnonzero(codebook[1:] == 0) + 1
    for zero_code in zero_codes:
        members = values[index[nonzero] == zero_code]
        codebook[zero_code] = members[np.argmax(np.abs(members))]
    return codebook, index


def dequantize(codebook, index):
    """``codebook[index]`` as float32 (the quantised weight, same shape as ``index``)."""
    return np.asarray(codebook, dtype=np.float32)[np.asarray(index, dtype=np.int64)]
