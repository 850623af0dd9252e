"""Finding and describing the layers of a checkpoint that can be factorised.

Layers are matched by op type (:func:`mxcompress.graph.find_layers`); their geometry comes
from the op attributes and from shape inference on the whole graph for a given input shape.
Every problem (no such layer, not a FullyConnected / Convolution, a scheme that does not fit
the op, non-2-D convolutions) raises :class:`LowRankError` naming the layer.

Grouped and depthwise convolutions are *skipped*, with a logged message naming the layer and
why (:func:`grouped_reason`): their weight ``(C_out, C_in / g, kh, kw)`` is already
block-diagonal over the ``g`` groups, so neither the channel nor the spatial SVD applies to the
layer as a whole, and a depthwise ``kh x kw`` filter per channel (``kh kw`` weights) has no
factorisation that saves anything.
"""
import collections
import logging

import numpy as np

from ..analysis import input_shape
from ..graph import find_layers, graph_nodes, parse_tuple
from .schemes import LowRankError, conv_geometry, dense_geometry, get_scheme

__all__ = ['LayerSpec', 'FACTORISABLE_OPS', 'describe_layers', 'default_scheme', 'kept_energy',
           'grouped_reason']

log = logging.getLogger('mxcompress')

FACTORISABLE_OPS = ('FullyConnected', 'Convolution')

#: One layer to factorise: ``name`` (op node), ``op``, ``scheme`` (a scheme object),
#: ``geom`` (see :mod:`.schemes`), ``weight`` / ``bias`` (variable names, bias None when
#: absent), ``singular_values`` of the scheme's matrix (descending; empty without params).
LayerSpec = collections.namedtuple('LayerSpec', 'name op scheme geom weight bias singular_values')


def default_scheme(op, conv_scheme='channel'):
    """``'svd'`` for FullyConnected, ``conv_scheme`` for Convolution."""
    return 'svd' if op == 'FullyConnected' else conv_scheme


def _is_true(text):
    return str(text).strip().lower() in ('true', '1')


def _shapes(symbol, data_shape):
    internals = symbol.get_internals()
    _, out_shapes, _ = internals.infer_shape_partial(data=tuple(data_shape))
    return dict(zip(internals.list_outputs(), out_shapes))


def _output_shape(shapes, node_name):
    for key in (node_name + '_output', node_name, node_name + '_output0'):
        if key in shapes:
            return shapes[key]
    return None


def _geometry(layer, weight_shape, shapes):
    attrs = layer.attrs
    if layer.op == 'FullyConnected':
        return dense_geometry(weight_shape, flatten=_is_true(attrs.get('flatten', 'True')),
                              no_bias=layer.bias is None)
    kernel = parse_tuple(attrs['kernel'])
    if len(kernel) != 2:
        raise LowRankError('layer %s: only 2-D convolutions can be factorised (kernel %s)'
                           % (layer.name, attrs['kernel']))
    if attrs.get('layout', 'NCHW') not in ('NCHW', 'None'):
        raise LowRankError('layer %s: layout %s is not supported (NCHW only)'
                           % (layer.name, attrs['layout']))
    in_shape = _output_shape(shapes, layer.input_node)
    out_shape = _output_shape(shapes, layer.name)
    return conv_geometry(weight_shape, kernel, parse_tuple(attrs.get('stride', '(1, 1)')),
                         parse_tuple(attrs.get('pad', '(0, 0)')),
                         parse_tuple(attrs.get('dilate', '(1, 1)')),
                         int(attrs.get('num_group', 1)),
                         in_hw=tuple(in_shape[2:]) if in_shape else None,
                         out_hw=tuple(out_shape[2:]) if out_shape else None,
                         no_bias=layer.bias is None)


def grouped_reason(layer):
    """Why a Convolution ``layer`` (a :class:`~mxcompress.graph.Layer`) is not factorised, or
    None: depthwise (``num_group`` = input channels) and grouped convs have no useful low-rank
    form."""
    if layer.op != 'Convolution':
        return None
    groups = int(layer.attrs.get('num_group', 1))
    if groups == 1:
        return None
    filters = int(layer.attrs.get('num_filter', 0))
    if groups == filters:
        return ('depthwise convolution (num_group=%d): one %s filter per channel has no useful '
                'low-rank form; left as it is' % (groups, layer.attrs.get('kernel', '')))
    return ('grouped convolution (num_group=%d): its weight is block-diagonal over the groups, '
            'so the channel / spatial SVD of the whole layer does not apply; left as it is'
            % groups)


def describe_layers(symbol, arg_params, names=None, schemes=None, conv_scheme='channel',
                    data_shape=None, skipped=None):
    """Describe the layers ``names`` (default: every FullyConnected / Convolution layer).

    Parameters
    ----------
    symbol : mx.sym.Symbol
    arg_params : dict of str -> NDArray
        Weights (for the singular values and the weight shapes).
    names : list of str or None
        Layer (op node) names, in any order; returned in graph order.
    schemes : dict of str -> str or None
        Scheme per layer name; others get :func:`default_scheme`.
    conv_scheme : {'channel', 'spatial'}
        Default scheme of Convolution layers.
    data_shape : tuple or None
        Input shape used to infer feature-map sizes (for MAC counts).
        None: the shape the checkpoint implies (:func:`mxcompress.analysis.input_shape`).
    skipped : list or None
        Grouped / depthwise convolutions among ``names`` are left out, logged, and appended
        here as ``(name, reason)`` (see :func:`grouped_reason`).

    Returns
    -------
    list of LayerSpec

    Raises
    ------
    LowRankError
        Unknown layer, a layer that is not FullyConnected / Convolution, a scheme that does
        not apply to the layer's op, an unsupported convolution, missing weights.
    """
    schemes = dict(schemes or {})
    layers = {l.name: l for l in find_layers(symbol, FACTORISABLE_OPS)}
    order = [l.name for l in find_layers(symbol, FACTORISABLE_OPS)]
    if names is None:
        names = order
    ops = {n['name']: n['op'] for n in graph_nodes(symbol)}
    for name in list(names) + list(schemes):
        if name not in layers:
            if name in ops and ops[name] != 'null':
                raise LowRankError('layer %s is a %s; only FullyConnected and Convolution '
                                   'layers can be factorised' % (name, ops[name]))
            raise LowRankError('no layer named %r in the graph; FullyConnected / Convolution '
                               'layers are: %s' % (name, ', '.join(order) or 'none'))
    shapes = _shapes(symbol, input_shape(symbol, arg_params, None, data_shape))
    specs = []
    for name in [n for n in order if n in set(names)]:
        layer = layers[name]
        reason = grouped_reason(layer)
        if reason:
            log.info('low rank: skipping layer %s: %s', name, reason)
            if skipped is not None:
                skipped.append((name, reason))
            continue
        scheme = get_scheme(schemes.get(name, default_scheme(layer.op, conv_scheme)))
        if layer.op not in scheme.ops:
            raise LowRankError('layer %s: scheme %r does not apply to a %s layer (use %s)'
                               % (name, scheme.name, layer.op,
                                  'svd' if layer.op == 'FullyConnected' else
                                  'channel or spatial'))
        if layer.weight not in arg_params:
            raise LowRankError('layer %s: weight %s is not in the params'
                               % (name, layer.weight))
        weight = arg_params[layer.weight].asnumpy()
        geom = _geometry(layer, weight.shape, shapes)
        scheme.check(geom, name)
        specs.append(LayerSpec(name, layer.op, scheme, geom, layer.weight, layer.bias,
                               scheme.singular_values(weight)))
    return specs


def kept_energy(singular_values, rank):
    """Fraction of ``sum(s**2)`` kept by the first ``rank`` singular values."""
    energy = np.square(np.asarray(singular_values, np.float64))
    total = energy.sum()
    return float(energy[:rank].sum() / total) if total > 0 else 1.0
