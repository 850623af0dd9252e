"""Float reference for ``xnor_conv2d``: MXNet's own Convolution on +-1 tensors.

Used by the tests, the sanitizer check and the benchmark's correctness check: the op must
equal ``Convolution(sign(x), sign(W)) * alpha (+ bias)`` with the same kernel, stride, zero
padding and dilation; with ``input_threshold`` the input is binarised per channel instead,
-1 where ``x * in_scale[c] < in_threshold[c]``; with ``residual`` a float tensor of the
output's shape is added to the result. The bit-packed forms (``output_threshold``,
``packed_input``) are checked against the float op followed by :func:`pack_bits`, the numpy
packer (:func:`mxcompress.ops.pack_activations`).
"""
import mxnet as mx
import numpy as np

from . import pack_activations, pack_weights

__all__ = ['sign', 'threshold_sign', 'reference_conv', 'random_case', 'random_thresholds',
           'run_op', 'pack_bits']

#: the numpy reference packer: float (N, C, H, W) [, scale, threshold (C,)] -> uint8
#: (N, H, W, ceil(C / 8)), bit 1 (-1) where x * scale < threshold (x < 0 without them)
pack_bits = pack_activations


def sign(x):
    """+1 where x >= 0, -1 where x < 0 (the project-wide rule), for NDArrays."""
    return mx.nd.where(x >= 0, mx.nd.ones_like(x), -mx.nd.ones_like(x))


def threshold_sign(x, scale, threshold):
    """-1 where ``x * scale[c] < threshold[c]``, else +1 (NaN: +1), for NDArrays
    (N, C, H, W) and (C,)."""
    shape = (1, -1, 1, 1)
    below = mx.nd.broadcast_lesser(x * scale.reshape(shape), threshold.reshape(shape))
    return 1 - 2 * below


def reference_conv(x, weight, alpha, bias=None, kernel=(3, 3), stride=(1, 1), pad=(0, 0),
                   dilate=(1, 1), in_scale=None, in_threshold=None, residual=None):
    """``Convolution(b(x), sign(weight)) * alpha[o] (+ bias[o]) (+ residual)`` in fp32,
    ``b = sign`` or, with ``in_scale`` / ``in_threshold``, :func:`threshold_sign`.

    Parameters
    ----------
    x : NDArray (N, C, H, W);  weight : NDArray (O, C, KH, KW);  alpha, bias : NDArray (O,)
    in_scale, in_threshold : NDArray (C,) or None
    residual : NDArray (N, O, OH, OW) or None
    """
    binary = sign(x) if in_scale is None else threshold_sign(x, in_scale, in_threshold)
    out = mx.nd.Convolution(binary, sign(weight), kernel=kernel, stride=stride, pad=pad,
                            dilate=dilate, num_filter=weight.shape[0], no_bias=True)
    out = out * alpha.reshape((1, -1, 1, 1))
    if bias is not None:
        out = out + bias.reshape((1, -1, 1, 1))
    if residual is not None:
        out = out + residual
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


def random_thresholds(rng, c):
    """Per-channel ``(in_scale, in_threshold)``: scales +-1, thresholds around 0 with the
    gamma = 0 constants (+inf, -inf) on the first channels, float32 (C,)."""
    scale = rng.choice([-1.0, 1.0], size=c).astype(np.float32)
    threshold = (0.5 * rng.randn(c)).astype(np.float32)
    threshold[:min(c, 2)] = [np.inf, -np.inf][:min(c, 2)]
    return scale, threshold


def run_op(x, weight, alpha, bias=None, kernel=(3, 3), stride=(1, 1), pad=(0, 0),
           dilate=(1, 1), in_scale=None, in_threshold=None, residual=None, out_scale=None,
           out_threshold=None):
    """``mx.nd.xnor_conv2d`` on numpy inputs (weights packed here); returns numpy.

    ``x`` float32 (N, C, H, W), or uint8 (N, H, W, ceil(C / 8)) bit-packed activations
    (``packed_input=True``, C = ``weight.shape[1]``). With ``out_scale`` / ``out_threshold``
    the op's output is bit-packed (``output_threshold=True``): uint8 (N, OH, OW,
    ceil(O / 8))."""
    packed_input = np.asarray(x).dtype == np.uint8
    args = [mx.nd.array(x, dtype=np.asarray(x).dtype),
            mx.nd.array(pack_weights(weight), dtype='uint8'), mx.nd.array(alpha)]
    if bias is not None:
        args.append(mx.nd.array(bias))
    if in_scale is not None:
        args += [mx.nd.array(in_scale), mx.nd.array(in_threshold)]
    if out_scale is not None:
        args += [mx.nd.array(out_scale), mx.nd.array(out_threshold)]
    if residual is not None:
        args.append(mx.nd.array(residual))
    extra = dict(packed_input=True, in_channels=weight.shape[1]) if packed_input else {}
    out = mx.nd.xnor_conv2d(*args, kernel=kernel, stride=stride, pad=pad, dilate=dilate,
                            num_filter=weight.shape[0], no_bias=bias is None,
                            input_threshold=in_scale is not None,
                            output_threshold=out_scale is not None,
                            residual=residual is not None, **extra)
    return out.asnumpy()


def reference_numpy(x, weight, alpha, bias=None, in_scale=None, in_threshold=None,
                    residual=None, **conv):
    """:func:`reference_conv` on numpy inputs; returns numpy."""
    def nd(a):
        return None if a is None else mx.nd.array(a)
    return reference_conv(mx.nd.array(x), mx.nd.array(weight), mx.nd.array(alpha), nd(bias),
                          in_scale=nd(in_scale), in_threshold=nd(in_threshold),
                          residual=nd(residual), **conv).asnumpy()
