"""Inference graphs: BatchNorm folded into the layer before it, loss heads without labels.

Two rewrites of a trained ``(symbol, arg_params, aux_params)`` for deployment:

* :func:`fold_batchnorm` merges every ``Convolution -> BatchNorm`` or
  ``FullyConnected -> BatchNorm`` pair into one layer. In inference a BatchNorm computes, per
  channel ``c`` of its ``axis``, ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with the
  moving statistics (whatever ``use_global_stats`` says: that flag only changes training),
  and ``x = w * input + b`` is linear, so with ``s = gamma / sqrt(var + eps)``::

      w' = w * s          (output channel c of the weight scaled by s[c])
      b' = (b - mean) * s + beta      (b = 0 for a layer with no_bias)

  The folded graph computes what the original does *in inference*; trained further it would
  not behave like a BatchNorm any more (no batch statistics), so it is a deploy graph.
* :func:`deploy_graph` replaces each loss head by its inference equivalent so the graph has
  no label input and loads with ``gluon.SymbolBlock.imports(..., ['data'], ...)``.

:func:`deploy_params` keeps the params a deploy graph reads. Saved with
:func:`mxcompress.checkpoint.save_checkpoint` (``arg:`` / ``aux:`` keys), they load with
``SymbolBlock.imports``: MXNet 1.9's ``ParameterDict.load`` strips those prefixes.
"""
import collections
import json

import mxnet as mx
import numpy as np

from .checkpoint import infer_data_shapes
from .graph import Node, build_op, rewrite
from .measure import predict

__all__ = ['fold_batchnorm', 'deploy_graph', 'deploy_params', 'max_relative_difference',
           'INFERENCE_HEADS', 'Fold']

#: One BatchNorm of the graph as :func:`fold_batchnorm` saw it: ``layer`` is the node feeding
#: it (None for a graph input), ``folded`` whether it was merged into that layer, ``reason``
#: why not ('' when folded).
Fold = collections.namedtuple('Fold', 'batchnorm layer folded reason')

#: loss head op -> the op computing its inference output from its data
INFERENCE_HEADS = {'SoftmaxOutput': 'softmax', 'Softmax': 'softmax',
                   'LogisticRegressionOutput': 'sigmoid',
                   'LinearRegressionOutput': 'identity', 'MAERegressionOutput': 'identity',
                   'SVMOutput': 'identity'}

_FOLDABLE = ('Convolution', 'FullyConnected')


def _flag(attrs, key, default):
    value = attrs.get(key)
    return default if value is None else str(value).strip().lower() in ('true', '1')


def _consumers(graph):
    """How many node inputs and graph outputs read each node."""
    count = collections.Counter(entry[0] for node in graph['nodes'] for entry in node['inputs'])
    count.update(entry[0] for entry in graph['heads'])
    return count


def _channel_axes(layer):
    """BatchNorm ``axis`` values that name ``layer``'s output channel axis."""
    attrs = layer.get('attrs', {})
    if layer['op'] == 'FullyConnected':
        return (1, -1) if _flag(attrs, 'flatten', True) else (-1,)
    ndim = len(str(attrs.get('kernel', '(1, 1)')).strip('()[] ').split(',')) + 2
    layout = attrs.get('layout') or 'NC' + 'DHW'[3 - (ndim - 2):]
    channel = layout.index('C')
    return (channel, channel - ndim)


def _why_not(graph, index, consumers, arg_params, aux_params):
    """Why BatchNorm node ``index`` cannot be folded ('' if it can)."""
    nodes = graph['nodes']
    bn = nodes[index]
    attrs = bn.get('attrs', {})
    source = nodes[bn['inputs'][0][0]]
    if _flag(attrs, 'output_mean_var', False):
        return 'output_mean_var=True: its mean/var outputs are used'
    if source['op'] not in _FOLDABLE:
        return 'its input %s (%s) is not a Convolution or FullyConnected' % (
            source['name'], 'a graph input' if source['op'] == 'null' else source['op'])
    if consumers[bn['inputs'][0][0]] != 1:
        return 'the output of %s also feeds %d other node(s) or output(s)' % (
            source['name'], consumers[bn['inputs'][0][0]] - 1)
    params = [nodes[entry[0]] for entry in source['inputs'][1:]]
    if any(p['op'] != 'null' or p['name'] not in arg_params for p in params):
        computed = [p for p in params if p['op'] != 'null' or p['name'] not in arg_params][0]
        return 'the weight/bias %s of %s is computed by %s (a binary or quantised layer?), ' \
               'not a parameter' % (computed['name'], source['name'], computed['op'])
    shared = [p['name'] for p, entry in zip(params, source['inputs'][1:])
              if consumers[entry[0]] != 1]
    if shared:
        return 'the parameter(s) %s of %s are shared with other layers' % (
            ', '.join(shared), source['name'])
    stats = [nodes[entry[0]] for entry in bn['inputs'][1:]]
    store = [arg_params, arg_params, aux_params, aux_params]
    if len(stats) != 4 or any(s['op'] != 'null' or s['name'] not in d
                              for s, d in zip(stats, store)):
        return 'its gamma/beta/moving_mean/moving_var are not all parameters'
    axis = int(attrs.get('axis', 1))
    if axis not in _channel_axes(source):
        return 'its axis %d is not the output channel axis of %s' % (axis, source['name'])
    return ''


def _folded_values(layer, bn, arg_params, aux_params, nodes):
    """``(w', b')`` of ``layer`` with ``bn`` merged in (float64 maths, the weight's dtype)."""
    weight = arg_params[nodes[layer['inputs'][1][0]]['name']].asnumpy()
    bias = (arg_params[nodes[layer['inputs'][2][0]]['name']].asnumpy().astype(np.float64)
            if len(layer['inputs']) > 2 else np.zeros(weight.shape[0]))
    gamma, beta, mean, var = (
        (arg_params if i < 2 else aux_params)[nodes[entry[0]]['name']].asnumpy()
        .astype(np.float64) for i, entry in enumerate(bn['inputs'][1:5]))
    attrs = bn.get('attrs', {})
    if _flag(attrs, 'fix_gamma', True):   # MXNet's default: gamma is treated as 1
        gamma = np.ones_like(gamma)
    eps = float(attrs.get('eps', 1e-3))   # MXNet's default eps is 1e-3
    scale = gamma / np.sqrt(var + eps)
    new_weight = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    new_bias = (bias - mean) * scale + beta
    return new_weight.astype(weight.dtype), new_bias.astype(weight.dtype)


def fold_batchnorm(symbol, arg_params, aux_params):
    """Merge each inference BatchNorm into the Convolution / FullyConnected feeding it.

    A pair ``layer -> BatchNorm`` is folded when the layer's output feeds only that BatchNorm,
    its weight (and bias) are parameters used by no other node, the BatchNorm ``axis`` is the
    layer's output channel axis (1 in NCHW, also -1 after a flattening FullyConnected) and
    ``output_mean_var`` is off. Grouped and depthwise convolutions (``num_group``) fold the
    same way: output channel ``c`` is row ``c`` of the weight ``(C_out, C_in / groups, kh,
    kw)``. Every other BatchNorm is left as it is (e.g. after a Pooling, an add, an
    ``xnor_conv2d``, or a binary layer whose weight is ``sign(W)``) and reported.

    With ``s = gamma / sqrt(moving_var + eps)`` (``gamma`` = 1 when ``fix_gamma``, MXNet's
    default), per output channel::

        w' = w * s                        weight (C_out, ...) scaled along axis 0
        b' = (b - moving_mean) * s + beta   b = 0 when the layer had no_bias

    Parameters
    ----------
    symbol : mx.sym.Symbol
    arg_params, aux_params : dict of str -> mx.nd.NDArray

    Returns
    -------
    symbol : mx.sym.Symbol
        The folded layers keep their name and weight name (the name of the BatchNorm when it
        was a graph output, so output names stay), get ``no_bias=False`` and a bias named
        ``LAYER_bias`` (or the existing one); the folded BatchNorms are gone.
    arg_params, aux_params : dict of str -> mx.nd.NDArray
        The params the new graph reads (the folded ones new CPU arrays).
    folds : list of Fold
        One per BatchNorm, in graph order: folded or left alone, and why.
    """
    graph = json.loads(symbol.tojson())
    nodes, consumers = graph['nodes'], _consumers(graph)
    heads = {entry[0] for entry in graph['heads']}
    names = collections.Counter(node['name'] for node in nodes)
    folds, merged, removed, params = [], {}, set(), {}
    for index, node in enumerate(nodes):
        if node['op'] != 'BatchNorm':
            continue
        source = nodes[node['inputs'][0][0]]
        reason = _why_not(graph, index, consumers, arg_params, aux_params)
        if not reason and (names[source['name']] > 1 or names[node['name']] > 1):
            reason = 'the node name %s is not unique in the graph' % source['name']
        folds.append(Fold(node['name'], source['name'] if source['op'] != 'null' else None,
                          not reason, reason))
        if reason:
            continue
        weight, bias = _folded_values(source, node, arg_params, aux_params, nodes)
        bias_name = (nodes[source['inputs'][2][0]]['name'] if len(source['inputs']) > 2
                     else _fresh_name(source['name'] + '_bias', names))
        params[nodes[source['inputs'][1][0]]['name']] = mx.nd.array(weight, dtype=weight.dtype)
        params[bias_name] = mx.nd.array(bias, dtype=bias.dtype)
        merged[source['name']] = (node['name'] if index in heads else source['name'], bias_name)
        removed.add(node['name'])

    def replace(node, inputs):
        if node.name in removed:
            return inputs[0]        # the folded layer computes the BatchNorm's output
        if node.name not in merged:
            return None
        name, bias_name = merged[node.name]
        bias = inputs[2] if len(inputs) > 2 else mx.sym.Variable(bias_name)
        attrs = dict(node.attrs, no_bias='False')
        return build_op(Node(node.op, name, attrs, node.input_names), inputs[:2] + [bias])

    new_symbol = rewrite(symbol, replace) if merged else symbol
    new_args = {k: params.get(k, arg_params.get(k)) for k in new_symbol.list_arguments()
                if k in params or k in arg_params}
    new_aux = {k: aux_params[k] for k in new_symbol.list_auxiliary_states() if k in aux_params}
    return new_symbol, new_args, new_aux, folds


def _fresh_name(name, taken):
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = '%s%d' % (name, n)
    taken[candidate] += 1
    return candidate


def _reads_label(nodes, index, label_slots):
    """Whether node ``index`` depends on a label: a variable wired to a loss op's label
    input, or one whose name ends in ``label`` (MXNet's convention for label inputs)."""
    todo, seen = [index], set()
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        if nodes[i]['op'] == 'null' and (i in label_slots or nodes[i]['name'].endswith('label')):
            return True
        todo.extend(entry[0] for entry in nodes[i]['inputs'])
    return False


def deploy_graph(symbol):
    """``symbol`` with every loss head replaced by its inference output; no label inputs.

    =============================================  ===========================================
    training head                                  deploy graph (same node name, so the output
                                                   is still ``NAME_output``)
    =============================================  ===========================================
    ``SoftmaxOutput(data, label)``                 ``softmax(data)`` over the axis the loss
                                                   uses: axis 1 with ``multi_output``,
                                                   otherwise the last (MXNet 1.9's forward
                                                   flattens the leading axes, with or without
                                                   ``preserve_shape``)
    ``LogisticRegressionOutput(data, label)``      ``sigmoid(data)``
    ``LinearRegressionOutput``,
    ``MAERegressionOutput``, ``SVMOutput``         ``identity(data)`` (their forward output)
    ``MakeLoss(...)`` reading a label              dropped from the outputs (a training loss:
                                                   it cannot be computed without labels)
    ``MakeLoss(...)`` without a label, ``BlockGrad`` kept: their forward is the identity
    =============================================  ===========================================

    A label is a variable wired to a loss op's ``label`` input or whose name ends in
    ``label``. A graph with none of these comes back unchanged (the same object).

    Parameters
    ----------
    symbol : mx.sym.Symbol

    Returns
    -------
    mx.sym.Symbol

    Raises
    ------
    ValueError
        Every output is a MakeLoss reading a label, or a label is still read after the
        rewrite (by an op that is not a loss head).
    """
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    label_slots = {node['inputs'][1][0] for node in nodes
                   if node['op'] in INFERENCE_HEADS and len(node['inputs']) > 1}
    losses = [i for i, entry in enumerate(graph['heads']) if nodes[entry[0]]['op'] == 'MakeLoss'
              and _reads_label(nodes, entry[0], label_slots)]
    if not label_slots and not losses:
        return symbol
    if losses:
        keep = [i for i in range(len(graph['heads'])) if i not in losses]
        if not keep:
            raise ValueError('every output of the graph is a MakeLoss reading a label (%s): '
                             'there is no prediction to deploy'
                             % ', '.join(nodes[graph['heads'][i][0]]['name'] for i in losses))
        outputs = [symbol[i] for i in keep]
        symbol = outputs[0] if len(outputs) == 1 else mx.sym.Group(outputs)

    def replace(node, inputs):
        if node.op not in INFERENCE_HEADS:
            return None
        if INFERENCE_HEADS[node.op] != 'softmax':
            return getattr(mx.sym, INFERENCE_HEADS[node.op])(inputs[0], name=node.name)
        axis = 1 if _flag(node.attrs, 'multi_output', False) else -1
        return mx.sym.softmax(inputs[0], axis=axis, name=node.name)

    deployed = rewrite(symbol, replace)
    left = [nodes[i]['name'] for i in sorted(label_slots)
            if nodes[i]['name'] in deployed.list_arguments()]
    if left:
        raise ValueError('label input(s) %s are still read by the deploy graph (by an op that '
                         'is not a loss head)' % ', '.join(left))
    return deployed


def deploy_params(symbol, arg_params, aux_params, inputs=('data',)):
    """The params ``symbol`` reads, as ``(arg_params, aux_params)`` (the others dropped).

    ``SymbolBlock.imports`` refuses a params file with params its graph does not read, and
    one missing a param the graph reads: so every argument but ``inputs`` must be given.

    Raises
    ------
    ValueError
        An argument of ``symbol`` (not one of ``inputs``) or an auxiliary state has no value:
        the message names them.
    """
    missing = [a for a in symbol.list_arguments() if a not in inputs and a not in arg_params]
    missing += [a for a in symbol.list_auxiliary_states() if a not in aux_params]
    if missing:
        raise ValueError('the deploy graph reads %s, which are neither params nor the inputs '
                         '%s' % (', '.join(missing), ', '.join(inputs)))
    args = {k: arg_params[k] for k in symbol.list_arguments() if k not in inputs}
    aux = {k: aux_params[k] for k in symbol.list_auxiliary_states()}
    return args, aux


def max_relative_difference(before, after, num_images=4, seed=0):
    """``max |p - q| / max |p|`` of two models' first outputs on the same random inputs.

    Parameters
    ----------
    before, after : tuple (symbol, arg_params, aux_params)
        Training graphs may be given as they are (loss heads output their inference value).
    num_images : int
        Inputs drawn uniformly in [0, 1), shape ``(num_images,) + shape`` where ``shape`` is
        the input shape inferred from ``before``'s first layer (MNIST: ``(1, 28, 28)``).

    Returns
    -------
    float or None
        None when no input shape could be inferred.
    """
    shapes = infer_data_shapes(*before)
    if shapes is None:
        return None
    images = np.random.RandomState(seed).uniform(
        size=(num_images,) + tuple(shapes['data'][1:])).astype(np.float32)
    p = predict(*before, images, batch_size=num_images)
    q = predict(*after, images, batch_size=num_images)
    return float(np.abs(p - q).max() / max(np.abs(p).max(), 1e-30))
