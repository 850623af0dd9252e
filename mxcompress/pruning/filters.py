"""Filter pruning with physical removal (Li et al., "Pruning Filters for Efficient ConvNets", 2017).

A conv layer's filters are ranked by their norm ``||F_j||_p`` (p = 1 or 2, Li et al. use L1)
and the weakest are removed. Removing filter ``j`` removes output channel ``j``, so the network
shrinks, not just sparsifies:

- the layer itself: ``num_filter``, weight rows ``W[j]`` and bias ``b[j]``;
- channel-wise ops after it pass through (Activation, Pooling, Dropout, ...);
- a BatchNorm after it: ``gamma, beta, moving_mean, moving_var`` lose entry ``j``;
- the next Convolution: input channel ``j`` of every filter, ``W'[:, j]``;
- the first FullyConnected after a Flatten: the ``H*W`` input columns of channel ``j``.

The result is a smaller dense standard checkpoint computing exactly what the original
computes with those filters (and their BatchNorm scale and shift) set to zero
(:func:`zero_filters`, the test reference). Network slimming (Liu et al. 2017) ranks channels
by the ``|gamma|`` of their BatchNorm instead (:func:`slimming_plan`).
"""
import json

import mxnet as mx
import numpy as np

from ..analysis import input_shape
from ..graph import graph_nodes, rewrite

__all__ = ['filter_norms', 'weakest_filters', 'plan_filters', 'slimming_plan', 'thin_network',
           'zero_filters', 'channel_consumers']

#: ops that keep channels one-to-one (output channel j depends only on input channel j)
CHANNELWISE = ('Activation', 'relu', 'sigmoid', 'tanh', 'LeakyReLU', 'Pooling', 'Dropout',
               'clip', '_copy', 'identity', 'BlockGrad', 'Cast', 'abs', 'square')


def _np(value):
    return value.asnumpy() if hasattr(value, 'asnumpy') else np.asarray(value)


def filter_norms(weight, norm='l1'):
    """Norm of each filter: ``sum |W[j]|`` (l1) or ``sqrt(sum W[j]^2)`` (l2).

    Parameters
    ----------
    weight : array, shape (C_out, C_in, kh, kw)

    Returns
    -------
    numpy.ndarray, shape (C_out,)
    """
    w = _np(weight).reshape(_np(weight).shape[0], -1)
    if norm == 'l1':
        return np.abs(w).sum(axis=1)
    if norm == 'l2':
        return np.sqrt((w.astype(np.float64) ** 2).sum(axis=1))
    raise ValueError('unknown filter norm %r; valid: l1, l2' % (norm,))


def weakest_filters(scores, remove, layer='layer'):
    """Indices to keep after removing the ``remove`` lowest ``scores`` (ties: lowest index).

    Parameters
    ----------
    scores : array, shape (C,)
    remove : int or float
        Number of filters (int) or fraction in [0, 1) (float) to remove.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices of the kept filters.

    Raises
    ------
    ValueError
        ``remove`` would remove every filter of the layer, or is negative.
    """
    scores = np.asarray(scores)
    count = scores.size
    if isinstance(remove, float):
        if not 0.0 <= remove < 1.0:
            raise ValueError('filter ratio of %s must be in [0, 1), got %s' % (layer, remove))
        remove = int(round(remove * count))
    if remove < 0:
        raise ValueError('cannot remove %d filters of %s' % (remove, layer))
    if remove >= count:
        raise ValueError('cannot remove %d of the %d filters of %s: a layer must keep at least '
                         'one filter' % (remove, count, layer))
    order = np.argsort(scores, kind='stable')
    return np.sort(order[remove:])


def plan_filters(symbol, arg_params, remove, norm='l1'):
    """Keep-lists of conv layers by filter norm.

    Parameters
    ----------
    remove : dict of str -> int or float
        Conv layer name -> filters to remove (count) or fraction.
    norm : {'l1', 'l2'}

    Returns
    -------
    dict of str -> numpy.ndarray
        Layer name -> sorted indices of kept filters.
    """
    convs = {n['name']: n for n in graph_nodes(symbol) if n['op'] == 'Convolution'}
    unknown = [k for k in remove if k not in convs]
    if unknown:
        raise ValueError('unknown conv layer(s) %s; Convolution layers of this model: %s'
                         % (', '.join(unknown), ', '.join(convs) or 'none'))
    weights = _weight_names(symbol)
    return {name: weakest_filters(filter_norms(arg_params[weights[name]], norm), count, name)
            for name, count in remove.items()}


def _weight_names(symbol):
    nodes = graph_nodes(symbol)
    return {n['name']: nodes[n['inputs'][1][0]]['name'] for n in nodes
            if n['op'] in ('Convolution', 'FullyConnected') and len(n['inputs']) > 1}


def channel_consumers(symbol, layer, data_shape):
    """What removing output channels of conv ``layer`` touches downstream.

    Returns
    -------
    list of tuple
        ``('batchnorm', node)``, ``('conv', node)`` or ``('fc', node, spatial)`` entries:
        BatchNorms to slice, the conv layers whose input channels shrink, and the
        FullyConnected layers whose columns shrink (``spatial`` = H*W per channel).

    Raises
    ------
    ValueError
        The channels reach an op that mixes them in an unsupported way (Concat, residual
        add, grouped conv, a second input of an op, the graph output).
    """
    nodes = graph_nodes(symbol)
    index = {n['name']: i for i, n in enumerate(nodes)}
    consumers = {i: [] for i in range(len(nodes))}
    for j, n in enumerate(nodes):
        for slot, entry in enumerate(n['inputs']):
            consumers[entry[0]].append((j, slot))
    heads = {h[0] for h in json.loads(symbol.tojson())['heads']}
    found, stack = [], [index[layer]]
    internals = symbol.get_internals()

    def fail(j, why):
        raise ValueError('cannot remove filters of %s: its channels reach %s %r, %s'
                         % (layer, nodes[j]['op'], nodes[j]['name'], why))

    while stack:
        i = stack.pop()
        if i in heads and i != index[layer] or (i == index[layer] and i in heads):
            raise ValueError('cannot remove filters of %s: its channels are a graph output'
                             % layer)
        for j, slot in consumers[i]:
            node = nodes[j]
            op, attrs = node['op'], node.get('attrs', {})
            if slot != 0:
                fail(j, 'as input %d (only the data input can shrink)' % slot)
            if op in CHANNELWISE:
                stack.append(j)
            elif op == 'BatchNorm':
                if int(attrs.get('axis', 1)) != 1:
                    fail(j, 'with axis != 1')
                found.append(('batchnorm', node))
                stack.append(j)
            elif op == 'Convolution':
                if int(attrs.get('num_group', 1)) != 1:
                    fail(j, 'a grouped convolution')
                found.append(('conv', node))
            elif op in ('Flatten', 'flatten', 'FullyConnected'):
                fc_idx = j
                if op != 'FullyConnected':
                    nxt = consumers[j]
                    if len(nxt) != 1 or nodes[nxt[0][0]]['op'] != 'FullyConnected' \
                            or nxt[0][1] != 0:
                        fail(j, 'not followed by exactly one FullyConnected')
                    fc_idx = nxt[0][0]
                elif attrs.get('flatten', 'True') in ('False', 'false', '0'):
                    fail(j, 'with flatten=False')
                out = internals[nodes[i]['name'] + '_output'] if nodes[i]['op'] != 'null' \
                    else internals[nodes[i]['name']]
                shape = out.infer_shape_partial(data=data_shape)[1][0]
                found.append(('fc', nodes[fc_idx], int(np.prod(shape[2:]))))
            else:
                fail(j, 'which is not channel-wise (supported: %s, BatchNorm, Convolution, '
                        'Flatten + FullyConnected)' % ', '.join(CHANNELWISE))
    return found


def _slices(symbol, keep, data_shape):
    """Per-param index operations: name -> list of (axis, indices, spatial)."""
    nodes = graph_nodes(symbol)
    convs = {n['name']: n for n in nodes if n['op'] == 'Convolution'}
    ops = {}
    for layer, kept in keep.items():
        if layer not in convs:
            raise ValueError('unknown conv layer %r; Convolution layers: %s'
                             % (layer, ', '.join(convs)))
        node = convs[layer]
        total = int(node['attrs']['num_filter'])
        kept = np.asarray(kept, dtype=np.int64)
        if kept.size == 0:
            raise ValueError('cannot remove all %d filters of %s: keep at least one'
                             % (total, layer))
        if kept.min() < 0 or kept.max() >= total or len(set(kept.tolist())) != kept.size:
            raise ValueError('kept filters of %s must be distinct indices in 0..%d'
                             % (layer, total - 1))
        kept = np.sort(kept)
        inputs = [nodes[e[0]]['name'] for e in node['inputs']]
        for name in inputs[1:]:
            ops.setdefault(name, []).append((0, kept, 1))
        for kind, other, *rest in channel_consumers(symbol, layer, data_shape):
            names = [nodes[e[0]]['name'] for e in other['inputs']]
            if kind == 'batchnorm':
                for name in names[1:]:
                    ops.setdefault(name, []).append((0, kept, 1))
            else:
                ops.setdefault(names[1], []).append((1, kept, rest[0] if rest else 1))
    return ops


def _apply(value, axis, kept, spatial):
    if spatial > 1:  # FC columns: (out, C*S) -> (out, C, S) -> slice C
        out = value.shape[0]
        value = value.reshape(out, -1, spatial)[:, kept, :]
        return value.reshape(out, -1)
    return np.take(value, kept, axis=axis)


def thin_network(symbol, arg_params, aux_params, keep, data_shape=None):
    """Physically remove conv filters: a smaller dense checkpoint.

    Parameters
    ----------
    symbol, arg_params, aux_params : standard checkpoint
    keep : dict of str -> array of int
        Conv layer name -> indices of the filters to keep (see :func:`plan_filters`).
    data_shape : tuple or None
        Input shape, to size the FullyConnected columns after a Flatten.
        None: the shape the checkpoint implies (:func:`mxcompress.analysis.input_shape`).

    Returns
    -------
    symbol, arg_params, aux_params
        ``num_filter`` of each layer becomes ``len(keep[layer])``; its weight, bias, any
        BatchNorm after it, the next conv's input channels and the first FullyConnected after a
        Flatten are sliced to match. Other params are shared unchanged.
    """
    ops = _slices(symbol, keep, input_shape(symbol, arg_params, aux_params, data_shape))
    new_args, new_aux = dict(arg_params), dict(aux_params or {})
    for name, steps in ops.items():
        target = new_args if name in new_args else new_aux
        if name not in target:
            raise ValueError('param %r of the symbol is missing from the checkpoint' % name)
        value = _np(target[name])
        for axis, kept, spatial in steps:
            value = _apply(value, axis, kept, spatial)
        target[name] = mx.nd.array(value, dtype=value.dtype)
    graph = json.loads(symbol.tojson())
    for node in graph['nodes']:  # fixed shapes on sliced variables would now be wrong
        if node['op'] == 'null' and node['name'] in ops:
            node.get('attrs', {}).pop('__shape__', None)
    sizes = {layer: str(len(k)) for layer, k in keep.items()}

    def replace(node, inputs):
        if node.op != 'Convolution' or node.name not in sizes:
            return None
        from ..graph import op_function
        params = {k: v for k, v in node.attrs.items() if not k.startswith('__')}
        hidden = {k: v for k, v in node.attrs.items() if k.startswith('__')}
        params['num_filter'] = sizes[node.name]
        return op_function('Convolution')(*inputs, name=node.name, attr=hidden or None, **params)

    thinned = rewrite(mx.sym.load_json(json.dumps(graph)), replace)
    return thinned, new_args, new_aux


def zero_filters(symbol, arg_params, aux_params, keep, data_shape=None):
    """Reference for :func:`thin_network`: same shapes, removed filters set to zero.

    Zeroes the removed filters' weights and biases and, for a BatchNorm after them, ``gamma``
    and ``beta``, so the removed channels are exactly 0 wherever they flow.
    """
    nodes = graph_nodes(symbol)
    convs = {n['name']: n for n in nodes if n['op'] == 'Convolution'}
    new_args = {k: _np(v).copy() for k, v in arg_params.items()}
    data_shape = input_shape(symbol, arg_params, aux_params, data_shape)
    for layer, kept in keep.items():
        node = convs[layer]
        removed = np.setdiff1d(np.arange(int(node['attrs']['num_filter'])), kept)
        names = [nodes[e[0]]['name'] for e in node['inputs']][1:]
        for kind, other, *_ in channel_consumers(symbol, layer, data_shape):
            if kind == 'batchnorm':
                names += [nodes[e[0]]['name'] for e in other['inputs']][1:3]
        for name in names:
            new_args[name][removed] = 0
    return symbol, {k: mx.nd.array(v) for k, v in new_args.items()}, dict(aux_params or {})


def slimming_plan(symbol, arg_params, ratio):
    """Network slimming: channels of conv layers ranked by their BatchNorm ``|gamma|``.

    One global threshold over all BatchNorms that directly follow a conv (through
    channel-wise ops) removes the fraction ``ratio`` of their channels with the smallest
    ``|gamma|`` (Liu et al. 2017); each layer keeps at least one channel.

    Returns
    -------
    dict of str -> numpy.ndarray
        Conv layer name -> kept channel indices (for :func:`thin_network`).
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError('slimming ratio must be in [0, 1), got %s' % ratio)
    nodes = graph_nodes(symbol)
    data_shape = input_shape(symbol, arg_params)
    gammas = {}
    for node in nodes:
        if node['op'] != 'Convolution':
            continue
        try:
            found = channel_consumers(symbol, node['name'], data_shape)
        except ValueError:
            continue
        bns = [other for kind, other, *_ in found if kind == 'batchnorm']
        if bns:
            gamma = nodes[bns[0]['inputs'][1][0]]['name']
            gammas[node['name']] = np.abs(_np(arg_params[gamma]))
    if not gammas:
        raise ValueError('no Convolution followed by BatchNorm: nothing to slim')
    everything = np.sort(np.concatenate(list(gammas.values())))
    cut = int(round(ratio * everything.size))
    threshold = everything[cut - 1] if cut else -np.inf
    plan = {}
    for layer, g in gammas.items():
        kept = np.nonzero(g > threshold)[0]
        plan[layer] = kept if kept.size else np.array([int(np.argmax(g))])
    return plan
