"""Low-rank building blocks against the layers they replace."""
import mxnet as mx
import numpy as np
import pytest

from mxcompress.lowrank import LowRankConv2D, LowRankError, SVDDense, get_scheme
from mxcompress.lowrank.schemes import conv_geometry


def _rand(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


@pytest.mark.parametrize('hybridize', [False, True])
def test_svd_dense_full_rank_equals_dense(hybridize):
    w, b, x = _rand(30, 50), _rand(30, seed=1), _rand(8, 50, seed=2)
    block = SVDDense.from_weights(w, b, rank=30)
    if hybridize:
        block.hybridize()
    out = block(mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(out, x @ w.T + b, rtol=1e-4, atol=1e-4)
    assert block.v_weight.shape == (30, 50) and block.u_weight.shape == (30, 30)


def test_svd_dense_truncation_error_is_eckart_young():
    w = _rand(40, 60)
    s = np.linalg.svd(w, compute_uv=False)
    block = SVDDense.from_weights(w, None, rank=10)
    approx = block.u_weight.data().asnumpy() @ block.v_weight.data().asnumpy()
    err = np.linalg.norm(w - approx)
    np.testing.assert_allclose(err, np.sqrt(np.sum(s[10:] ** 2)), rtol=1e-4)
    x = _rand(5, 60, seed=3)
    np.testing.assert_allclose(block(mx.nd.array(x)).asnumpy(), x @ approx.T, rtol=1e-4,
                               atol=1e-4)


def test_svd_dense_hybridised_equals_imperative_and_flattens():
    block = SVDDense.from_weights(_rand(7, 12), _rand(7, seed=1), rank=3)
    x = mx.nd.array(_rand(4, 3, 2, 2, seed=2))
    imperative = block(x).asnumpy()
    block.hybridize()
    np.testing.assert_allclose(block(x).asnumpy(), imperative, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('scheme', ['channel', 'spatial'])
@pytest.mark.parametrize('stride,pad,dilate', [(1, 0, 1), (2, 1, 1), ((1, 2), (2, 1), (2, 1))])
def test_lowrank_conv_full_rank_equals_conv(scheme, stride, pad, dilate):
    n, c, kh, kw = 6, 4, 3, 3
    w, b, x = _rand(n, c, kh, kw), _rand(n, seed=1), _rand(2, c, 11, 10, seed=2)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    geom = conv_geometry(w.shape, (kh, kw), pair(stride), pair(pad), pair(dilate))
    full = get_scheme(scheme).max_rank(geom)
    block = LowRankConv2D.from_weights(w, b, full, scheme=scheme, strides=stride,
                                       padding=pad, dilation=dilate)
    ref = mx.nd.Convolution(mx.nd.array(x), mx.nd.array(w), mx.nd.array(b), num_filter=n,
                            kernel=(kh, kw), stride=pair(stride), pad=pair(pad),
                            dilate=pair(dilate)).asnumpy()
    out = block(mx.nd.array(x)).asnumpy()
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    block.hybridize()
    np.testing.assert_allclose(block(mx.nd.array(x)).asnumpy(), ref, rtol=1e-4, atol=1e-4)


def test_spatial_factors_reconstruct_the_kernel():
    """Jaderberg scheme 2: W[n,c,i,j] ~ sum_k H[n,k,j] V[k,c,i], error = dropped singular values."""
    w = _rand(5, 3, 4, 4)
    scheme = get_scheme('spatial')
    v, u = scheme.factors(w, 4)
    approx = np.einsum('nkj,kci->ncij', u[:, :, 0, :], v[:, :, :, 0])
    s = scheme.singular_values(w)
    np.testing.assert_allclose(np.linalg.norm(w - approx), np.sqrt(np.sum(s[4:] ** 2)),
                               rtol=1e-4)


def test_lowrank_conv_shapes_and_param_count():
    block = LowRankConv2D(50, 5, rank=8, scheme='spatial', in_channels=20)
    block.initialize()
    out = block(mx.nd.zeros((1, 20, 12, 12)))
    assert out.shape == (1, 50, 8, 8)
    assert block.v_weight.shape == (8, 20, 5, 1) and block.u_weight.shape == (50, 8, 1, 5)
    geom = conv_geometry((50, 20, 5, 5), (5, 5))
    assert get_scheme('spatial').params(geom, 8) == 8 * 20 * 5 + 50 * 8 * 5


@pytest.mark.parametrize('rank', [0, -1, 31])
def test_block_rank_out_of_range_is_an_error(rank):
    with pytest.raises(LowRankError, match=r'rank must be an integer in 1\.\.30'):
        SVDDense(30, rank, in_units=50)


def test_unknown_scheme_lists_valid_ones():
    with pytest.raises(ValueError, match='channel, spatial, svd'):
        LowRankConv2D(4, 3, 2, scheme='tucker')
