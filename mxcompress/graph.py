"""Rewriting a Symbol graph: find layers by op type and attributes, replace nodes, keep names.

Every compression method is a transformation ``(symbol, params) -> (symbol', params')``.
:func:`rewrite` rebuilds a symbol node by node from its JSON, calling a user function on
every operator node; the function returns a replacement symbol (built from the node's
rebuilt inputs, e.g. a masked or factorised layer) or ``None`` to keep the node. Layers are
matched by op type and attributes (:func:`find_layers`), never by name substrings: a weight
is the variable wired to the layer's ``weight`` input, whatever it is called.
"""
import collections
import json

import mxnet as mx
import numpy as np

__all__ = ['pair', 'Node', 'Layer', 'rewrite', 'build_op', 'find_layers', 'op_function', 'parse_tuple',
           'graph_nodes']

#: One operator node of the graph, as :func:`rewrite` passes it.
#: ``attrs``: op parameters (strings, as in the JSON); ``input_names``: names of the nodes
#: feeding it, in input order (``data``, ``weight``, ``bias`` for a layer).
Node = collections.namedtuple('Node', 'op name attrs input_names')

#: A weighted layer: op, name, attributes and the names of its weight and bias variables.
Layer = collections.namedtuple('Layer', 'op name attrs weight bias input_node')

_INPUT_SLOTS = {'FullyConnected': ('data', 'weight', 'bias'),
                'Convolution': ('data', 'weight', 'bias'),
                'Deconvolution': ('data', 'weight', 'bias'),
                'BatchNorm': ('data', 'gamma', 'beta', 'moving_mean', 'moving_var')}


def pair(value, name='value'):
    """``3`` -> ``(3, 3)``; ``(3, 1)`` -> ``(3, 1)``: the kernel / stride / pad / dilation of a
    2-D layer given as one int or a pair (the Gluon convention).

    Raises
    ------
    ValueError
        Not an int or a pair of non-negative ints (the message names ``name``).
    """
    values = (value, value) if np.isscalar(value) else value
    try:
        values = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        values = None
    if values is None or len(values) != 2 or min(values) < 0:
        raise ValueError('%s must be an int or a pair of non-negative ints, got %r'
                         % (name, value))
    return values


def parse_tuple(text):
    """Parse an MXNet tuple attribute such as ``'(3, 3)'`` into a tuple of ints."""
    text = str(text).strip().strip('()[]')
    return tuple(int(v) for v in text.split(',') if v.strip())


def op_function(op):
    """The ``mx.sym`` function that creates operator ``op`` (built-in, internal or contrib).

    Raises
    ------
    ValueError
        No such operator is registered (e.g. a custom-op library not loaded yet).
    """
    for namespace, name in ((mx.sym, op), (mx.sym._internal, op), (mx.sym.op, op),
                            (mx.sym.contrib, op.replace('_contrib_', '', 1))):
        fn = getattr(namespace, name, None)
        if callable(fn):
            return fn
    raise ValueError('operator %r is not registered in this MXNet; if it is xnor_conv2d, '
                     'call mxcompress.ops.load() first' % op)


def graph_nodes(symbol):
    """The JSON node list of ``symbol`` (dicts with ``op``, ``name``, ``attrs``, ``inputs``)."""
    return json.loads(symbol.tojson())['nodes']


def rewrite(symbol, replace=None):
    """Rebuild ``symbol``, letting ``replace`` substitute operator nodes.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    replace : callable or None
        ``replace(node, inputs) -> mx.sym.Symbol or None``. ``node`` is a :class:`Node`;
        ``inputs`` are the rebuilt input symbols in input order (the weight's variable
        among them). Return a symbol with the node's outputs to replace it, or None to keep it.

    Returns
    -------
    mx.sym.Symbol
        The rebuilt graph. With ``replace=None`` it computes exactly what ``symbol`` does,
        with the same names.
    """
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    built = []
    for node in nodes:
        attrs = dict(node.get('attrs', node.get('attr', node.get('param', {}))) or {})
        if node['op'] == 'null':
            built.append(mx.sym.Variable(node['name'], attr=attrs or None))
            continue
        inputs = [_select(built[i], index) for i, index, *_ in node['inputs']]
        info = Node(node['op'], node['name'], attrs, [nodes[i]['name'] for i, *_ in node['inputs']])
        result = replace(info, inputs) if replace is not None else None
        if result is None:
            result = build_op(info, inputs)
        built.append(result)
    heads = [_select(built[i], index) for i, index, *_ in graph['heads']]
    return heads[0] if len(heads) == 1 else mx.sym.Group(heads)


def _select(sym, index):
    return sym if index == 0 and len(sym.list_outputs()) == 1 else sym[index]


def build_op(node, inputs):
    """Create ``node``'s operator (same op, name and attributes) on new ``inputs``.

    Used by rewrites that keep a layer but feed it a new weight (masked, codebook, ...).
    """
    params = {k: v for k, v in node.attrs.items() if not k.startswith('__')}
    hidden = {k: v for k, v in node.attrs.items() if k.startswith('__')}
    fn = op_function(node.op)
    if 'num_args' in params:  # variadic ops (Concat, add_n, ...) count their inputs themselves
        params['num_args'] = str(len(inputs))
    return fn(*inputs, name=node.name, attr=hidden or None, **params)


def find_layers(symbol, ops=('FullyConnected', 'Convolution')):
    """Weighted layers of ``symbol`` in graph order, matched by op type.

    Returns
    -------
    list of Layer
        ``weight`` / ``bias``: names of the variables wired to those inputs (``bias`` None
        when ``no_bias``); ``input_node``: name of the node feeding ``data``.
    """
    nodes = graph_nodes(symbol)
    layers = []
    for node in nodes:
        if node['op'] not in ops:
            continue
        slots = _INPUT_SLOTS.get(node['op'], ('data', 'weight', 'bias'))
        wired = {slot: nodes[entry[0]]['name'] for slot, entry in zip(slots, node['inputs'])}
        layers.append(Layer(node['op'], node['name'], dict(node.get('attrs', {})),
                            wired.get('weight'), wired.get('bias'), wired.get('data')))
    return layers
