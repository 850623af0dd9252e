"""Quantisers side by side: one call per method, the same answer for each.

:func:`quantize_weight` quantises one weight matrix by one method and returns the weight it
reconstructs and what it costs in bits per weight (codebooks and scales included), so scalar
k-means (Gong et al. 2014; Han et al. 2016), product quantisation (Jegou et al. 2011; Gong
et al. 2014), Q-CNN (Wu et al. 2016: codebooks that minimise the layer's *output* error on
calibration inputs) and symmetric fixed point compare on the same axis.

:func:`layer_inputs` gives the calibration inputs Q-CNN needs: the activations that reach
each layer's data input in the original network.
"""
import mxnet as mx

from ..graph import find_layers
from .fixedpoint import fixed_point_bits_per_weight, fixed_point_dequantize, fixed_point_quantize
from .pq import pq_bits_per_weight, pq_reconstruct, product_quantize, qcnn_quantize
from .scalar import dequantize, scalar_quantize

__all__ = ['METHODS', 'layer_inputs', 'subvector_length', 'quantize_weight']

#: the methods :func:`quantize_weight` knows and the settings each takes
METHODS = {'scalar': ('bits',), 'pq': ('d', 'k'), 'qcnn': ('d', 'k'), 'fixed': ('bits',)}


def layer_inputs(symbol, arg_params, aux_params, images, ops=('FullyConnected',)):
    """Input activations of every ``ops`` layer on ``images``, in the original network.

    Parameters
    ----------
    images : numpy.ndarray, float32, shape (N, C, H, W)

    Returns
    -------
    dict of str -> numpy.ndarray, shape (N, features)
        Keyed by the layer's weight name, each flattened per image (what a FullyConnected
        layer multiplies by its weight).
    """
    internals = symbol.get_internals()
    inputs = {}
    for layer in find_layers(symbol, ops):
        node = internals['data'] if layer.input_node == 'data' \
            else internals[layer.input_node + '_output']
        feed = dict(arg_params, data=mx.nd.array(images))
        exe = node.bind(mx.cpu(), {k: v for k, v in feed.items() if k in node.list_arguments()},
                        aux_states=aux_params)
        inputs[layer.weight] = exe.forward()[0].asnumpy().reshape(len(images), -1)
    return inputs


def subvector_length(d, size):
    """The largest sub-vector length <= ``d`` that divides a layer's input ``size``."""
    return max(v for v in range(1, d + 1) if size % v == 0)


def quantize_weight(method, weight, name='layer', inputs=None, **setting):
    """Quantise one (out, in) weight by ``method``; return ``(reconstructed, bits_per_weight)``.

    Parameters
    ----------
    method : {'scalar', 'pq', 'qcnn', 'fixed'}
        ``scalar``: k-means codebook of 2^bits entries; ``pq``: product quantisation with
        sub-vectors of length ``d`` (or the largest divisor of the input size below it) and
        ``k`` centroids each; ``qcnn``: the same codebook sizes fitted to the layer's output
        error on ``inputs``; ``fixed``: symmetric per-channel fixed point of ``bits``.
    weight : numpy.ndarray, float32, shape (out, in)
    name : str
        Layer name for error messages.
    inputs : numpy.ndarray, shape (N, in), or None
        Calibration inputs of the layer (``qcnn`` only, see :func:`layer_inputs`).
    **setting
        ``bits`` (scalar, fixed) or ``d`` and ``k`` (pq, qcnn).

    Returns
    -------
    reconstructed : numpy.ndarray, float32, weight's shape
    bits_per_weight : float
        Storage per weight, codebooks (float32) and scales included.

    Raises
    ------
    ValueError
        Unknown method (the message lists them), missing settings, Q-CNN without inputs.
    """
    if method not in METHODS:
        raise ValueError('unknown quantiser %r; known: %s' % (method, ', '.join(sorted(METHODS))))
    missing = [key for key in METHODS[method] if key not in setting]
    if missing:
        raise ValueError('quantiser %s needs %s' % (method, ', '.join(missing)))
    if method == 'scalar':
        codebook, index = scalar_quantize(weight, setting['bits'], layer=name)
        return (dequantize(codebook, index),
                setting['bits'] + 32.0 * len(codebook) / weight.size)
    if method == 'fixed':
        q, scales = fixed_point_quantize(weight, setting['bits'], layer=name)
        return (fixed_point_dequantize(q, scales),
                fixed_point_bits_per_weight(weight.shape, setting['bits']))
    d = subvector_length(setting['d'], weight.shape[1])
    if method == 'pq':
        codebooks, codes = product_quantize(weight, d, setting['k'], layer=name)
    else:
        if inputs is None:
            raise ValueError('quantiser qcnn needs the calibration inputs of layer %s' % name)
        codebooks, codes = qcnn_quantize(weight, inputs, d, setting['k'], layer=name)
    return pq_reconstruct(codebooks, codes), pq_bits_per_weight(weight.shape, d,
                                                                codebooks.shape[1])
