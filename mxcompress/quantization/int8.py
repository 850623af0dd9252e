"""MXNet's own int8 inference path, for comparison with the storage formats of this package.

``mx.contrib.quantization.quantize_model_mkldnn`` (MXNet 1.9, oneDNN backend) fuses the graph
with the ``MKLDNN_QUANTIZE`` backend, inserts ``quantize_v2`` / ``requantize`` nodes and
calibrates the activation ranges on calibration batches: ``naive`` takes each tensor's
min / max, ``entropy`` picks the threshold minimising the KL divergence between the fp32 and
the quantised activation histograms (TensorRT's method). Weights are int8 per tensor. The
plain ``quantize_model`` graph does not run on this CPU build (its quantised convolution
needs uint8 input), so the oneDNN variant is the one used.
"""
import logging

import mxnet as mx

__all__ = ['CALIB_MODES', 'quantize_int8', 'fuse_fp32']

CALIB_MODES = ('naive', 'entropy')


def quantize_int8(symbol, arg_params, aux_params, calib_images, calib_labels,
                  calib_mode='naive', batch_size=100, label_name='softmax_label'):
    """Quantise a checkpoint to int8 with MXNet's oneDNN path.

    Parameters
    ----------
    symbol, arg_params, aux_params
        A standard fp32 checkpoint.
    calib_images : numpy.ndarray, float32, shape (N, C, H, W)
    calib_labels : numpy.ndarray, shape (N,)
    calib_mode : {'naive', 'entropy'}
    batch_size : int

    Returns
    -------
    (symbol, arg_params, aux_params) of the int8 graph.
    """
    if calib_mode not in CALIB_MODES:
        raise ValueError('calib_mode must be one of %s, got %r' % (CALIB_MODES, calib_mode))
    calib = mx.io.NDArrayIter(calib_images, calib_labels, batch_size, label_name=label_name)
    return mx.contrib.quantization.quantize_model_mkldnn(
        symbol, arg_params, aux_params, ctx=mx.cpu(), calib_mode=calib_mode, calib_data=calib,
        num_calib_examples=len(calib_images), quantized_dtype='auto',
        label_names=(label_name,), logger=logging.getLogger('mxcompress.int8'))


def fuse_fp32(symbol):
    """The fp32 graph fused by the ``MKLDNN`` backend (the fair fp32 reference for timing)."""
    return symbol.get_backend_symbol('MKLDNN')
