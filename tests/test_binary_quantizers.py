"""Quantisers: forward values, gradients against the analytic rules, bad input."""
import warnings

import mxnet as mx
import numpy as np
import pytest

from mxcompress.binary import quantizers as q

POINTS = np.array([-3.0, -1.5, -1.0, -0.999, -0.5, -1e-7, 0.0, 1e-7, 0.5, 0.999, 1.0, 1.5, 3.0],
                  dtype=np.float32)


def _value_and_grad(func, x, head=None, **kwargs):
    x = mx.nd.array(x)
    x.attach_grad()
    with mx.autograd.record():
        y = func(mx.nd, x, **kwargs)
    y.backward(mx.nd.array(head) if head is not None else None)
    return y.asnumpy(), x.grad.asnumpy()


def _symbol_forward(func, x, **kwargs):
    data = mx.sym.var('x')
    out = func(mx.sym, data, **kwargs)
    return out.eval(x=mx.nd.array(x))[0].asnumpy()


def test_sign_maps_zero_to_plus_one_for_ndarray_and_symbol():
    expected = np.where(POINTS >= 0, 1.0, -1.0)
    np.testing.assert_array_equal(q.sign(mx.nd, mx.nd.array(POINTS)).asnumpy(), expected)
    np.testing.assert_array_equal(_symbol_forward(q.sign, POINTS), expected)
    assert q.sign(mx.nd, mx.nd.zeros((3,))).asnumpy().tolist() == [1, 1, 1]


@pytest.mark.parametrize('clip_value', [1.0, 0.5, 2.0])
def test_ste_sign_forward_is_sign_and_gradient_is_htanh_rule(clip_value):
    head = np.random.RandomState(0).randn(len(POINTS)).astype(np.float32)
    value, grad = _value_and_grad(q.ste_sign, POINTS, head, clip_value=clip_value)
    np.testing.assert_array_equal(value, np.where(POINTS >= 0, 1.0, -1.0))
    # analytic rule: dL/dx = dL/dy * 1{|x| <= c}, inclusive at the bounds
    np.testing.assert_array_equal(grad, head * (np.abs(POINTS) <= clip_value))
    np.testing.assert_array_equal(_symbol_forward(q.ste_sign, POINTS, clip_value=clip_value),
                                  value)


def test_straight_through_forward_is_exact():
    """BlockGrad(q) + (x_clip - BlockGrad(x_clip)): no 0.99999994 from float rounding."""
    x = mx.nd.array(np.random.RandomState(5).uniform(-1, 1, 200000))
    for func in (q.ste_sign, q.stochastic_ste_sign):
        assert set(np.unique(func(mx.nd, x).asnumpy())) == {-1.0, 1.0}
    w = q.binarize_weight(mx.nd, x.reshape((400, 500)), alpha=True).asnumpy()
    assert all(len(np.unique(np.abs(row))) == 1 for row in w)


def test_ste_sign_gradient_equals_numeric_gradient_of_htanh():
    """The STE backward is the gradient of Htanh; check Htanh numerically away from kinks."""
    rng = np.random.RandomState(1)
    x = rng.uniform(-2, 2, size=(4, 5)).astype(np.float32)
    x[np.abs(np.abs(x) - 1) < 0.05] = 0.3   # finite differences are undefined at the kinks
    mx.test_utils.check_numeric_gradient(q.htanh(mx.sym, mx.sym.var('x')), [x],
                                         numeric_eps=1e-3, rtol=1e-2, atol=1e-3)
    _, grad = _value_and_grad(q.ste_sign, x)
    expected = np.zeros_like(x)
    eps = 1e-3
    for idx in np.ndindex(x.shape):  # central differences of htanh
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        expected[idx] = (np.clip(up, -1, 1).sum() - np.clip(down, -1, 1).sum()) / (2 * eps)
    np.testing.assert_allclose(grad, expected, atol=1e-2)


def test_stochastic_sign_probability_is_hard_sigmoid():
    mx.random.seed(3)
    for value, prob in ((-2.0, 0.0), (-0.6, 0.2), (0.0, 0.5), (0.4, 0.7), (1.5, 1.0)):
        x = mx.nd.full((40000,), value)
        out = q.stochastic_sign(mx.nd, x).asnumpy()
        assert set(np.unique(out)) <= {-1.0, 1.0}
        assert abs((out > 0).mean() - prob) < 0.01, (value, (out > 0).mean())
    sym_out = _symbol_forward(q.stochastic_sign, np.full((1000,), 0.4, np.float32))
    assert set(np.unique(sym_out)) <= {-1.0, 1.0}


def test_stochastic_ste_sign_gradient():
    head = np.arange(len(POINTS), dtype=np.float32) + 1
    value, grad = _value_and_grad(q.stochastic_ste_sign, POINTS, head)
    assert set(np.unique(value)) <= {-1.0, 1.0}
    assert value[0] == -1 and value[-1] == 1   # |x| >= 1: deterministic
    np.testing.assert_array_equal(grad, head * (np.abs(POINTS) <= 1))


@pytest.mark.parametrize('bits', [1, 2, 3, 4])
def test_quantize_activation_levels_and_gradient(bits):
    x = np.linspace(-2, 2, 401).astype(np.float32)
    value, grad = _value_and_grad(q.quantize_activation, x, num_bits=bits)
    if bits == 1:
        expected_levels = np.array([-1.0, 1.0])
        np.testing.assert_array_equal(value, np.where(x >= 0, 1.0, -1.0))
    else:
        expected_levels = -1 + 2 * np.arange(2 ** bits) / (2 ** bits - 1)
        # nearest level of the clipped input
        clipped = np.clip(x, -1, 1)
        dist = np.abs(clipped[:, None] - expected_levels[None])
        nearest = expected_levels[dist.argmin(1)]
        clear = np.diff(np.sort(dist, axis=1)[:, :2], axis=1)[:, 0] > 1e-4   # not a tie
        np.testing.assert_allclose(value[clear], nearest[clear], atol=1e-6)
    np.testing.assert_allclose(np.unique(np.round(value, 5)), np.round(expected_levels, 5))
    np.testing.assert_array_equal(grad, (np.abs(x) <= 1).astype(np.float32))
    np.testing.assert_allclose(_symbol_forward(q.quantize_activation, x, num_bits=bits), value)


def test_binarize_weight_takes_plus_minus_alpha_per_output_channel():
    rng = np.random.RandomState(2)
    w = rng.uniform(-1, 1, size=(6, 3, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = 0.0
    wb = q.binarize_weight(mx.nd, mx.nd.array(w), alpha=True).asnumpy()
    alpha = np.abs(w).reshape(6, -1).mean(axis=1)
    for o in range(6):
        np.testing.assert_allclose(np.unique(np.abs(wb[o])), [alpha[o]], rtol=1e-6)
        np.testing.assert_array_equal(np.sign(wb[o]), np.where(w[o] >= 0, 1, -1))
    assert wb[0, 0, 0, 0] > 0   # sign(0) = +1
    plain = q.binarize_weight(mx.nd, mx.nd.array(w)).asnumpy()
    np.testing.assert_array_equal(plain, np.where(w >= 0, 1.0, -1.0))
    sym = q.binarize_weight(mx.sym, mx.sym.var('w'), alpha=True).eval(w=mx.nd.array(w))[0]
    np.testing.assert_allclose(sym.asnumpy(), wb, rtol=1e-6)


def test_binarize_weight_alpha_gradient_matches_analytic_rule():
    rng = np.random.RandomState(4)
    w = rng.uniform(-1.5, 1.5, size=(4, 7)).astype(np.float32)
    g = rng.randn(4, 7).astype(np.float32)
    _, grad = _value_and_grad(q.binarize_weight, w, g, alpha=True)
    s = np.where(w >= 0, 1.0, -1.0)
    alpha = np.abs(w).mean(axis=1, keepdims=True)
    # d/dW [alpha(W) * sign_ste(W)]: STE term plus the term through alpha = mean |W|
    expected = g * alpha * (np.abs(w) <= 1) + s / w.shape[1] * (g * s).sum(1, keepdims=True)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_registry_and_unknown_names():
    assert {'sign', 'ste_sign', 'stochastic_sign', 'stochastic_ste_sign', 'htanh',
            'uniform'} <= set(q.quantizer_names())
    assert q.get_quantizer('ste_sign') is q.ste_sign
    with pytest.raises(ValueError, match="unknown quantizer 'nope'.*ste_sign"):
        q.get_quantizer('nope')
    with pytest.raises(ValueError, match='already registered'):
        q.register_quantizer('sign')(lambda F, x: x)


@pytest.mark.parametrize('bits', [0, 9, -1, 1.5, True, '2'])
def test_bad_num_bits(bits):
    with pytest.raises(ValueError, match='num_bits must be an integer in 1..8'):
        q.quantize_activation(mx.nd, mx.nd.ones((2,)), num_bits=bits)


@pytest.mark.parametrize('clip', [0, -1.0, float('nan'), float('inf'), 'x'])
def test_bad_clip_value(clip):
    with pytest.raises(ValueError, match='clip_value must be a positive'):
        q.ste_sign(mx.nd, mx.nd.ones((2,)), clip_value=clip)


def test_bad_binarization_mode():
    with pytest.raises(ValueError, match="mode must be one of deterministic, stochastic, got "
                                         "'random'"):
        q.binarize_weight(mx.nd, mx.nd.ones((2, 2)), mode='random')


def test_more_than_four_bits_warns_and_four_does_not():
    with pytest.warns(UserWarning, match='num_bits=5.*little accuracy gain'):
        q.quantize_activation(mx.nd, mx.nd.ones((2,)), num_bits=5)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        q.quantize_activation(mx.nd, mx.nd.ones((2,)), num_bits=4)
