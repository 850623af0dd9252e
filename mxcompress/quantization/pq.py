"""Product quantisation of a weight matrix (Jegou et al. 2011; Gong et al. 2014) and Q-CNN
(Wu et al., "Quantized Convolutional Neural Networks for Mobile Devices", CVPR 2016).

A weight ``W`` (out x in) is split along its input dimension into ``m = in / d`` sub-spaces
of ``d`` columns. In sub-space ``s`` the ``out`` sub-vectors ``W[j, s*d:(s+1)*d]`` are replaced
by one of ``k`` codewords ``D_s[b_{j,s}]``: the layer stores ``m`` codebooks (k x d, float32)
and ``out * m`` codes of ``log2 k`` bits, i.e. about ``log2(k) / d`` bits per weight plus
``32 k m d / (out * in)`` for the codebooks.

* **PQ** minimises the weight error: k-means of the sub-vectors in each sub-space.
* **Q-CNN** minimises the layer's *output* error on calibration inputs ``X`` (N x in),
  ``|| X W^T - sum_s X_s D_s[B_s]^T ||_F^2``, with Wu et al.'s error correction: sub-spaces are
  updated in turn against the residual ``E`` the others leave. With ``G_s = X_s^T X_s`` and
  ``P_s = X_s^T (E + X_s What_s^T)`` (d x out), one sub-space alternates (plus a small
  weight-error term, see ``ridge``)

  - assignment: ``b_j = argmin_k  c_k^T G_s c_k - 2 c_k^T P_s[:, j]``,
  - codebook (least squares): ``c_k = G_s^{-1} mean_{j: b_j = k} P_s[:, j]``,

  starting from the PQ solution.
"""
import numpy as np

from .kmeans import kmeans

__all__ = ['check_pq', 'product_quantize', 'pq_reconstruct', 'qcnn_quantize',
           'pq_bits_per_weight']


def check_pq(weight_shape, d, k, layer='layer'):
    """Validate a PQ setting; returns the effective ``k`` (at most the number of rows).

    Raises
    ------
    ValueError
        ``d`` does not divide the input size, or ``k < 1``.
    """
    out, inp = weight_shape
    if d < 1 or inp % d:
        raise ValueError('%s: sub-vector length d=%d must divide the input size %d'
                         % (layer, d, inp))
    if k < 1:
        raise ValueError('%s: k must be >= 1, got %d' % (layer, k))
    return min(k, out)  # documented fallback: no more codewords than sub-vectors


def product_quantize(weight, d, k, iters=25, seed=0, init='kmeans++', layer='layer'):
    """PQ of ``weight`` (out, in): k-means per sub-space of ``d`` input columns.

    Returns
    -------
    codebooks : numpy.ndarray, float32, shape (m, k', d)
        ``k' = min(k, out)`` (fewer rows than codewords: one codeword per row, lossless).
    codes : numpy.ndarray, int32, shape (out, m)
    """
    w = np.asarray(weight, np.float64)
    k = check_pq(w.shape, d, k, layer)
    out, inp = w.shape
    m = inp // d
    sub = w.reshape(out, m, d)
    codebooks = np.zeros((m, k, d), np.float64)
    codes = np.zeros((out, m), np.int32)
    for s in range(m):
        c, labels = kmeans(sub[:, s, :], k, init=init, iters=iters, seed=seed + s)
        codebooks[s], codes[:, s] = c, labels
    return codebooks.astype(np.float32), codes


def pq_reconstruct(codebooks, codes):
    """The quantised weight (out, m*d) float32 from codebooks (m, k, d) and codes (out, m)."""
    m = codebooks.shape[0]
    parts = codebooks[np.arange(m)[None, :], codes]  # (out, m, d)
    return parts.reshape(codes.shape[0], -1).astype(np.float32)


def qcnn_quantize(weight, inputs, d, k, passes=4, inner=3, iters=25, seed=0, ridge=0.2,
                  layer='layer'):
    """Q-CNN: PQ codebooks learned to minimise the output error on calibration ``inputs``.

    Parameters
    ----------
    weight : numpy.ndarray, shape (out, in)
    inputs : numpy.ndarray, shape (N, in)
        The layer's input activations on calibration examples.
    d, k : int
        Sub-vector length and codewords per sub-space.
    passes : int
        Sweeps over all sub-spaces (error correction).
    inner : int
        Assignment / codebook alternations per sub-space visit.
    ridge : float
        Adds ``lam * ||w_j - c_{b_j}||^2`` with ``lam = ridge * trace(G_s) / d`` to the
        objective (``G_s -> G_s + lam I``, ``P_s -> P_s + lam W_s^T``): it keeps the least
        squares well posed when an input column is (almost) constant, e.g. MNIST's border
        pixels, and stops codewords over-fitting the calibration set in directions the
        inputs rarely excite.

    Returns
    -------
    codebooks : float32 (m, k', d)
    codes : int32 (out, m)
    """
    w = np.asarray(weight, np.float64)
    x = np.asarray(inputs, np.float64)
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError('%s: calibration inputs must be (N, %d), got %s'
                         % (layer, w.shape[1], x.shape))
    codebooks, codes = product_quantize(w, d, k, iters, seed, layer=layer)
    codebooks, codes = codebooks.astype(np.float64), codes.copy()
    out, inp = w.shape
    m, kk = codebooks.shape[0], codebooks.shape[1]
    w_hat = pq_reconstruct(codebooks, codes).astype(np.float64)
    error = x @ (w - w_hat).T  # E = X W^T - X What^T, (N, out)
    for _ in range(passes):
        for s in range(m):
            cols = slice(s * d, (s + 1) * d)
            xs = x[:, cols]
            g = xs.T @ xs
            lam = ridge * (np.trace(g) / d + 1e-12)
            old = w_hat[:, cols].copy()
            p = xs.T @ error + g @ old.T + lam * w[:, cols].T  # (d, out)
            g += lam * np.eye(d)
            c = codebooks[s]
            for _ in range(inner):
                score = np.einsum('kd,de,ke->k', c, g, c)[:, None] - 2.0 * c @ p  # (k, out)
                b = score.argmin(axis=0)
                counts = np.bincount(b, minlength=kk)
                sums = np.zeros((kk, d))
                np.add.at(sums, b, p.T)
                used = counts > 0
                c = c.copy()
                c[used] = np.linalg.solve(g, (sums[used] / counts[used, None]).T).T
            score = np.einsum('kd,de,ke->k', c, g, c)[:, None] - 2.0 * c @ p
            b = score.argmin(axis=0)
            codebooks[s], codes[:, s] = c, b
            new = c[b]
            w_hat[:, cols] = new
            error -= xs @ (new - old).T
    return codebooks.astype(np.float32), codes.astype(np.int32)


def pq_bits_per_weight(weight_shape, d, k):
    """Storage bits per weight: codes ``out * m * ceil(log2 k)`` + codebooks ``32 * m * k * d``."""
    out, inp = weight_shape
    m = inp // d
    code_bits = max(1, int(np.ceil(np.log2(max(k, 2)))))
    return (out * m * code_bits + 32.0 * m * k * d) / (out * inp)
