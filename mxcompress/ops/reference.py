"""Float reference for ``xnor_conv2d``: MXNet's own Convolution on +-1 tensors.

Used by the tests, the sanitizer check and the benchmark's correctness check: the op must
equal ``Convolution(sign(x), sign(W)) * alpha (+ bias)`` with the same kernel, stride, zero
padding and dilation.
"""
import mxnet as mx
import numpy as np

from . import pack_weights

__all__ = ['sign', 'reference_conv', 'random_case', 'run_op']


def sign(x):
    """+1 where x >= 0, -1 where x < 0 (the project-wide rule), for NDArrays."""
    return mx.nd.where(x >= 0, mx.nd.ones_like(x), -mx.nd.ones_like(x))


def reference_conv(x, weight, alpha, bias=None, kernel=(3, 3), stride=(1, 1), pad=(0, 0),
                   dilate=(1, 1)):
    """``Convolution(sign(x), sign(weight)) * alpha[o] (+ bias[o])`` in fp32.

    Parameters
    ----------
    x : NDArray (N, C, H, W);  weight : NDArray (O, C, KH, KW);  alpha, bias : NDArray (O,)
    """
    out = mx.nd.Convolution(sign(x), sign(weight), kernel=kernel, stride=stride, pad=pad,
                            dilate=dilate, num_filter=weight.shape[0], no_bias=True)
    out = out * alpha.reshape((1, -1, 1, 1))
    if bias is not None:
        out = out + bias.reshape((1, -1, 1, 1))
    return out


def random_case(rng, n, c, h, w, o, kernel, with_bias=True):
    """Random float input / weights (with exact zeros to test the sign rule), alpha and bias."""
    x = rng.randn(n, c, h, w).astype(np.float32)
    x.flat[rng.randint(0, x.size, size=max(1, x.size // 20))] = 0.0
    weight = rng.randn(o, c, kernel[0], kernel[1]).astype(np.float32)
    weight.flat[rng.randint(0, weight.size, size=max(1, weight.size // 20))] = 0.0
    alpha = (rng.rand(o) + 0.1).astype(np.float32)
    bias = rng.randn(o).astype(np.float32) if with_bias else None
    return x, weight, alpha, bias


def run_op(x, weight, alpha, bias=None, kernel=(3, 3), stride=(1, 1), pad=(0, 0),
           dilate=(1, 1)):
    """``mx.nd.xnor_conv2d`` on numpy inputs (weights packed here); returns numpy."""
    args = [mx.nd.array(x), mx.nd.array(pack_weights(weight), dtype='uint8'),
            mx.nd.array(alpha)]
    if bias is not None:
        args.append(mx.nd.array(bias))
    out = mx.nd.xnor_conv2d(*args, kernel=kernel, stride=stride, pad=pad, dilate=dilate,
                            num_filter=weight.shape[0], no_bias=bias is None)
    return out.asnumpy()


def reference_numpy(x, weight, alpha, bias=None, **conv):
    """:func:`reference_conv` on numpy inputs; returns numpy."""
    return reference_conv(mx.nd.array(x), mx.nd.array(weight), mx.nd.array(alpha),
                          None if bias is None else mx.nd.array(bias), **conv).asnumpy()
