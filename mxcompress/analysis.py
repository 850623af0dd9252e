"""Counting a model: parameters, nonzeros, fp32 bytes and multiply-accumulates per layer.

MACs are counted per example: a FullyConnected layer of an (n -> m) weight costs m*n, a
Convolution ``C_out x C_in/g x kh x kw`` producing an ``H x W`` map costs
``C_out * C_in/g * kh * kw * H * W``. Remaining MACs scale the dense count by the layer's
weight density (what an ideal sparse kernel would do).
"""
import numpy as np

from .checkpoint import model_input_shape
from .graph import find_layers

__all__ = ['layer_table', 'model_summary', 'count_params', 'count_macs', 'input_shape']

_WEIGHTED_OPS = ('FullyConnected', 'Convolution')


def count_params(arg_params, exclude=('data', 'softmax_label')):
    """Total number of elements of ``arg_params``."""
    return int(sum(v.size for k, v in arg_params.items() if k not in exclude))


def input_shape(symbol, arg_params, aux_params=None, data_shape=None):
    """``data_shape`` (one example, with its batch axis of 1, e.g. ``(1, 1, 28, 28)``), or the
    input shape the checkpoint implies when it is None
    (:func:`mxcompress.checkpoint.model_input_shape`): never a constant."""
    if data_shape is not None:
        return tuple(data_shape)
    return model_input_shape(symbol, arg_params, aux_params)


def _layer_macs(symbol, layer, weight_size, data_shape):
    """Dense MACs per example of one layer: weight elements x output pixels (convolutions)."""
    if layer.op == 'FullyConnected':
        return int(weight_size)
    internals = symbol.get_internals()
    out = internals[internals.list_outputs().index(layer.name + '_output')]
    _, out_shapes, _ = out.infer_shape_partial(data=data_shape)
    return int(weight_size * np.prod(out_shapes[0][2:]))


def count_macs(symbol, data_shape):
    """Dense multiply-accumulates per example of every Convolution / FullyConnected layer.

    Weight shapes are inferred from the graph (no params needed); layers are found by op type
    and their weights by wiring (:func:`~mxcompress.graph.find_layers`), so gluoncv graphs
    count too.
    """
    arg_shapes, _, _ = symbol.infer_shape_partial(data=data_shape)
    shapes = dict(zip(symbol.list_arguments(), arg_shapes))
    internals = symbol.get_internals()
    outputs = internals.list_outputs()

    def weight_size(layer):
        if layer.weight in shapes:
            return np.prod(shapes[layer.weight])
        # a weight computed in the graph (a binary layer's sign(latent) * alpha): its node's shape
        node = internals[outputs.index(layer.weight + '_output')]
        known = {n: shapes[n] for n in node.list_arguments() if shapes.get(n)}
        return np.prod(node.infer_shape_partial(**known)[1][0])
    return sum(_layer_macs(symbol, layer, weight_size(layer), data_shape)
               for layer in find_layers(symbol, _WEIGHTED_OPS))


def layer_table(symbol, arg_params, data_shape=None):
    """One row per FullyConnected / Convolution layer.

    Returns
    -------
    list of dict
        ``layer``, ``op``, ``weight_shape``, ``params`` (weight + bias), ``nonzeros``
        (weight), ``sparsity`` (weight), ``dense_macs``, ``remaining_macs``.
    """
    data_shape = input_shape(symbol, arg_params, None, data_shape)
    rows = []
    for layer in find_layers(symbol, _WEIGHTED_OPS):
        weight = arg_params.get(layer.weight)  # the variable wired to the weight input
        if weight is None:
            continue
        weight = weight.asnumpy()
        bias = arg_params.get(layer.bias) if layer.bias else None
        macs = _layer_macs(symbol, layer, weight.size, data_shape)
        nonzeros = int(np.count_nonzero(weight))
        density = nonzeros / weight.size
        rows.append({'layer': layer.name, 'op': layer.op, 'weight_shape': list(weight.shape),
                     'params': int(weight.size + (bias.size if bias is not None else 0)),
                     'nonzeros': nonzeros, 'sparsity': 1.0 - density,
                     'dense_macs': macs, 'remaining_macs': int(round(macs * density))})
    return rows


def model_summary(symbol, arg_params, aux_params=None, data_shape=None):
    """Totals over the whole model: params, fp32 bytes, weight nonzeros, MACs."""
    rows = layer_table(symbol, arg_params, input_shape(symbol, arg_params, aux_params,
                                                       data_shape))
    params = count_params(arg_params) + count_params(aux_params or {})
    weights = sum(int(np.prod(r['weight_shape'])) for r in rows)
    nonzeros = sum(r['nonzeros'] for r in rows)
    return {'params': params, 'fp32_bytes': 4 * params, 'weights': weights,
            'weight_nonzeros': nonzeros,
            'weight_density': nonzeros / weights if weights else 0.0,
            'dense_macs': sum(r['dense_macs'] for r in rows),
            'remaining_macs': sum(r['remaining_macs'] for r in rows), 'layers': rows}
