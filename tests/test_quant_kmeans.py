"""k-means and scalar codebooks against brute-force references."""
import numpy as np
import pytest

from mxcompress.quantization.kmeans import INITS, assign_1d, init_centroids, kmeans, kmeans_1d
from mxcompress.quantization.scalar import check_bits, dequantize, scalar_quantize


def sse(values, centroids, labels):
    return float(((values - centroids[labels]) ** 2).sum())


@pytest.mark.parametrize('init', INITS)
def test_kmeans_1d_lloyd_fixed_point(init):
    rng = np.random.RandomState(1)
    v = np.concatenate([rng.randn(500) * 0.05, rng.randn(30) * 0.5])
    c0 = init_centroids(v, 8, init, np.random.RandomState(0))
    c, labels = kmeans_1d(v, 8, init=init, iters=100)
    # every value sits with its nearest centroid (brute force)
    brute = np.abs(v[:, None] - c[None, :]).argmin(axis=1)
    np.testing.assert_array_equal(c[labels], c[brute])
    # Lloyd never increases the within-cluster sum of squares
    assert sse(v, c, labels) <= sse(v, c0, assign_1d(v, c0)) + 1e-12
    # nonempty centroids are the means of their members
    for k in np.unique(labels):
        assert np.isclose(c[k], v[labels == k].mean())


def test_linear_init_spans_range_and_density_follows_cdf():
    v = np.random.RandomState(0).randn(1000)
    lin = init_centroids(v, 5, 'linear')
    np.testing.assert_allclose(lin, np.linspace(v.min(), v.max(), 5))
    dens = init_centroids(v, 4, 'density')
    np.testing.assert_allclose(dens, np.quantile(v, [0.125, 0.375, 0.625, 0.875]))


def test_unknown_init_and_bad_k():
    with pytest.raises(ValueError, match='linear, density, random, kmeans\\+\\+'):
        kmeans_1d(np.arange(5.0), 2, init='bogus')
    with pytest.raises(ValueError, match='k must be in 1..5'):
        kmeans_1d(np.arange(5.0), 6)


def test_kmeans_vectors_recovers_separated_clusters():
    rng = np.random.RandomState(0)
    centres = np.array([[0, 0], [5, 5], [-5, 5.0]])
    pts = np.concatenate([c + 0.1 * rng.randn(50, 2) for c in centres])
    c, labels = kmeans(pts, 3)
    for centre in centres:
        assert np.min(np.linalg.norm(c - centre, axis=1)) < 0.1
    assert len(np.unique(labels)) == 3


def test_scalar_quantize_reserves_zero():
    rng = np.random.RandomState(0)
    w = rng.randn(40, 30).astype(np.float32)
    w[rng.rand(40, 30) < 0.7] = 0
    codebook, index = scalar_quantize(w, 4)
    assert codebook[0] == 0 and len(codebook) == 16
    np.testing.assert_array_equal(index == 0, w == 0)
    q = dequantize(codebook, index)
    assert np.all(q[w != 0] != 0)
    # each nonzero weight maps to its nearest nonzero centroid
    nearest = np.abs(w[w != 0][:, None] - codebook[None, 1:]).argmin(axis=1) + 1
    np.testing.assert_allclose(codebook[nearest], q[w != 0])


def test_scalar_quantize_fallbacks():
    w = np.array([[0, 1.5, -2.0], [1.5, 0, 3.0]], np.float32)
    codebook, index = scalar_quantize(w, 8)  # fewer distinct values than k: lossless
    np.testing.assert_array_equal(dequantize(codebook, index), w)
    assert len(codebook) == 4
    codebook, index = scalar_quantize(np.zeros((3, 3)), 5)  # all zero
    assert codebook.tolist() == [0.0] and not index.any()
    for bad in (0, 17, 2.5, True):
        with pytest.raises(ValueError, match='fc9: bits must be an integer in 1..16'):
            scalar_quantize(w, bad, layer='fc9')
    assert check_bits(16) == 16
    one = scalar_quantize(np.array([1.0, 2.0, 0.0, 4.0]), 1)  # 1 bit: zero + one centroid
    assert len(one[0]) == 2 and np.isclose(one[0][1], 7 / 3)
