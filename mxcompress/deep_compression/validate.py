"""What a decoded ``.mxc`` file must satisfy before anything is allocated or written.

The container (:mod:`.container`) parses sections; this module checks them against the
graph stored in the file: the graph JSON is well formed and loads in MXNet, every weight
section belongs to a FullyConnected / Convolution weight of the right shape (shapes inferred
from the graph, with probe inputs where they depend on the input size), nothing is missing or
stored twice, and the total number of decoded weights stays within :func:`decode_budget`.
Every failure is a :class:`ContainerError` naming the file and the section.
"""
import json
import os

import mxnet as mx

from ..checkpoint import CheckpointError, check_params_fit, mxnet_reason
from ..graph import find_layers, graph_nodes, parse_tuple

__all__ = ['ContainerError', 'decode_budget', 'check_graph_json', 'load_graph',
           'check_against_graph', 'check_fit', 'MIN_DECODE_WEIGHTS', 'WEIGHTS_PER_BYTE']

#: weights any file may decode to, whatever its size (64 MiB of float32)
MIN_DECODE_WEIGHTS = 1 << 24
#: beyond that, weights per byte of the file
WEIGHTS_PER_BYTE = 256


#: spatial sizes of the probe input used to infer the graph's param shapes
_PROBE_SIZES = (224, 256)
_LIMIT_ENV = 'MXCOMPRESS_MXC_MAX_WEIGHTS'


class ContainerError(ValueError):
    """A truncated, corrupt, inconsistent or unsupported ``.mxc`` file (one-line message)."""

    def __init__(self, message):
        super().__init__(' '.join(str(message).split()))


def decode_budget(file_bytes):
    """Most weights the layers of a ``file_bytes``-byte ``.mxc`` file may decode to.

    ``max(MIN_DECODE_WEIGHTS, WEIGHTS_PER_BYTE * file_bytes)``, or the value of the
    environment variable ``MXCOMPRESS_MXC_MAX_WEIGHTS`` when set. Deep Compression stores
    VGG-16 in 12 weights per byte; a weight costs at least one bit per nonzero and a filler
    entry per ``2^gap_bits`` zeros, so only an all-but-empty or crafted file goes beyond.
    """
    override = os.environ.get(_LIMIT_ENV)
    if override:
        try:
            return int(override)
        except ValueError:
            raise ContainerError('%s=%r is not an integer' % (_LIMIT_ENV, override)) from None
    return max(MIN_DECODE_WEIGHTS, WEIGHTS_PER_BYTE * int(file_bytes))


def check_graph_json(graph, where):
    """The node list must be well formed before MXNet reads it (nodes read earlier nodes)."""
    def bad(what):
        return ContainerError('%s: section graph: %s' % (where, what))

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if not isinstance(graph, dict) or not isinstance(graph.get('nodes'), list) or \
            not graph['nodes']:
        raise bad('not a symbol (no "nodes" list)')
    nodes = graph['nodes']
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get('op'), str) or \
                not isinstance(node.get('name'), str):
            raise bad('node %d is not {"op": ..., "name": ...}' % i)
        inputs = node.get('inputs', [])
        if not isinstance(inputs, list) or (node['op'] == 'null' and inputs):
            raise bad('node %d %r: malformed inputs' % (i, node['name']))
        for entry in inputs:
            if not isinstance(entry, list) or not 2 <= len(entry) <= 3 or \
                    not all(is_int(v) and 0 <= v < (1 << 31) for v in entry) or entry[0] >= i:
                raise bad('node %d %r reads %r (inputs are [node, output, version] of an '
                          'earlier node, 0..%d)' % (i, node['name'], entry, i - 1))
        for key in ('attrs', 'attr', 'param'):
            attrs = node.get(key, {})
            if not isinstance(attrs, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in attrs.items()):
                raise bad('node %d %r: %s must map names to strings' % (i, node['name'], key))
        deps = node.get('control_deps', [])
        if not isinstance(deps, list) or not all(is_int(d) and 0 <= d < i for d in deps):
            raise bad('node %d %r: malformed control_deps' % (i, node['name']))
    args = graph.get('arg_nodes', [])
    if not isinstance(args, list) or not all(is_int(a) and 0 <= a < len(nodes) and
                                             nodes[a]['op'] == 'null' for a in args):
        raise bad('arg_nodes must list variable nodes')
    heads = graph.get('heads')
    if not isinstance(heads, list) or not heads or not all(
            isinstance(h, list) and 2 <= len(h) <= 3 and
            all(is_int(v) and 0 <= v < (1 << 31) for v in h) and h[0] < len(nodes)
            for h in heads):
        raise bad('heads must list [node, output, version] entries of the graph')
    for key in ('node_row_ptr',):
        if key in graph and not (isinstance(graph[key], list) and
                                 all(is_int(v) and v >= 0 for v in graph[key])):
            raise bad('malformed %s' % key)
    if 'attrs' in graph and not isinstance(graph['attrs'], dict):
        raise bad('malformed attrs')


def load_graph(payload, where):
    try:
        text = payload.decode('utf-8')
        graph = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ContainerError('%s: section graph: unreadable symbol (not JSON: %s)'
                             % (where, mxnet_reason(err))) from None
    check_graph_json(graph, where)
    try:
        symbol = mx.sym.load_json(text)
        symbol.list_arguments()
        symbol.list_auxiliary_states()
        loaded = json.loads(symbol.tojson())
    except (mx.base.MXNetError, UnicodeDecodeError) as err:
        raise ContainerError('%s: section graph: unreadable symbol (%s)'
                             % (where, mxnet_reason(err))) from None
    _check_outputs(loaded, where)
    return symbol


def _check_outputs(graph, where):
    """Every input and head must name an output its node has (MXNet does not check this and
    crashes in shape inference): ``node_row_ptr`` of MXNet's own serialisation counts them."""
    nodes, rows = graph.get('nodes', []), graph.get('node_row_ptr')
    if not isinstance(rows, list) or len(rows) != len(nodes) + 1:
        raise ContainerError('%s: section graph: MXNet gives no output count per node'
                             % where)
    entries = [(node['name'], e) for node in nodes for e in node.get('inputs', [])]
    entries += [('the graph\'s heads', e) for e in graph.get('heads', [])]
    for reader, (nid, index) in ((r, e[:2]) for r, e in entries):
        outputs = rows[nid + 1] - rows[nid]
        if not 0 <= index < outputs:
            raise ContainerError('%s: section graph: %s reads output %d of node %r, which has %d'
                                 % (where, reader, index, nodes[nid]['name'], outputs))


def _infer(symbol, shapes):
    """``symbol.infer_shape_partial(**shapes)``; MXNet's complaints as :class:`_InferError`."""
    try:
        return symbol.infer_shape_partial(**shapes)
    except mx.base.MXNetError as err:
        raise _InferError(mxnet_reason(err)) from None
    except Exception as err:  # pylint: disable=broad-except
        if type(err) is Exception:   # mxnet raises a bare Exception for > 2^31 elements
            raise _InferError(mxnet_reason(err)) from None
        raise


class _InferError(Exception):
    """MXNet's shape inference refused the shapes."""


def _is_true(text):
    return str(text).strip().lower() in ('true', '1')


def _layer_shapes(layer, shapes):
    """Shapes a FullyConnected / Convolution layer's attributes give its weight and bias."""
    attrs = layer.attrs
    try:
        if layer.op == 'FullyConnected':
            hidden = int(attrs['num_hidden'])
            weight = (hidden, None)
            out = hidden
        else:
            kernel = parse_tuple(attrs['kernel'])
            out = int(attrs['num_filter'])
            if attrs.get('layout', 'None') in ('None', 'NCW', 'NCHW', 'NCDHW'):
                weight = (out, None) + tuple(kernel)
            else:                  # channels-last layouts keep the filters first only
                weight = (out,) + (None,) * (len(kernel) + 1)
    except (KeyError, ValueError):
        return {}
    result = {layer.weight: weight}
    if layer.bias and not _is_true(attrs.get('no_bias', 'False')):
        result[layer.bias] = (out,)
    return {k: v for k, v in result.items() if k in shapes}


def _probe_inputs(symbol, nodes, layers, shapes, size):
    """Input shapes that fit the first layers' weights (spatial dims ``size``), or None.

    Only for inputs read by one layer and nothing else (a FullyConnected that flattens, or a
    channels-first Convolution): then the rest of the graph sees what it would see with the
    real input, but for the spatial size."""
    inputs, arguments = {}, set(symbol.list_arguments())
    readers = {}
    for node in nodes:
        for entry in node.get('inputs', []):
            readers[entry[0]] = readers.get(entry[0], 0) + 1
    index = {node['name']: i for i, node in enumerate(nodes)}
    for layer in layers:
        source, weight = layer.input_node, shapes.get(layer.weight)
        if source not in arguments or source in inputs or source in shapes or weight is None:
            continue
        if readers.get(index.get(source), 0) != 1:
            return None
        if layer.op == 'FullyConnected' and len(weight) == 2:
            if not _is_true(layer.attrs.get('flatten', 'True')):
                return None
            inputs[source] = (1, weight[1])
        elif layer.op == 'Convolution' and len(weight) >= 3:
            layout = layer.attrs.get('layout', 'None')
            try:
                groups = int(layer.attrs.get('num_group', '1'))
            except ValueError:
                return None
            if layout not in ('None', 'NCW', 'NCHW', 'NCDHW'):
                return None
            inputs[source] = (1, weight[1] * groups) + (size,) * (len(weight) - 2)
    for name in symbol.list_arguments():
        if name not in shapes and name not in inputs and not name.endswith('label'):
            return None   # an input the layers do not describe
    return inputs or None


def check_against_graph(symbol, layers, dense, where, limit, file_bytes):
    """Names and shapes of the declared params against the graph, and their total size
    against ``limit``, before any decoding."""
    arguments, auxiliary = symbol.list_arguments(), symbol.list_auxiliary_states()
    graph_layers = find_layers(symbol)
    weights = {l.weight for l in graph_layers}
    shapes, label = {}, {}
    for name, head in layers.items():
        if name not in weights:
            raise ContainerError('%s: section %r: %s is not the weight of a FullyConnected or '
                                 'Convolution layer of the graph' % (where, 'w:' + name, name))
        shapes[name], label[name] = head['shape'], 'section %r' % ('w:' + name)
    for kind, name, value, _ in dense:
        if name in shapes:
            raise ContainerError("%s: section 'dense': param %s is stored twice (also in %s)"
                                 % (where, name, label[name]))
        known = auxiliary if kind else arguments
        if name not in known or name == 'data' or (not kind and name.endswith('label')):
            raise ContainerError("%s: section 'dense': param %s is not an %s of the graph"
                                 % (where, name, 'auxiliary state' if kind else
                                    'argument (other than its inputs)'))
        shapes[name], label[name] = tuple(value.shape), "section 'dense' param %s" % name
    missing = [a for a in arguments if a not in shapes and a != 'data'
               and not a.endswith('label')]
    missing += [a for a in auxiliary if a not in shapes]
    if missing:
        raise ContainerError('%s: the graph needs params the file does not hold: %s'
                             % (where, ', '.join(missing)))

    def mismatch(name, want):
        shown = '(%s%s)' % (', '.join('?' if d is None else str(d) for d in want),
                            ',' if len(want) == 1 else '')
        raise ContainerError('%s: %s: shape %s, the graph needs %s%s'
                             % (where, label[name], shapes[name], shown,
                                ' (? = any size)' if None in want else ''))

    for layer in graph_layers:
        for name, want in _layer_shapes(layer, shapes).items():
            have = shapes[name]
            if len(have) != len(want) or any(w is not None and w != h
                                             for w, h in zip(want, have)):
                mismatch(name, want)
    total = sum(head['size'] for head in layers.values())
    if total > limit:
        largest = max(layers, key=lambda n: layers[n]['size'])
        raise ContainerError(
            '%s: the weights declare %d elements (largest: section %r, shape %s), more than '
            'the %d a %d-byte file may decode to (max(%d, %d per byte); set %s to allow more)'
            % (where, total, 'w:' + largest, layers[largest]['shape'], limit, file_bytes,
               MIN_DECODE_WEIGHTS, WEIGHTS_PER_BYTE, _LIMIT_ENV))
    try:
        _infer(symbol, shapes)
    except _InferError as err:
        raise ContainerError('%s: section graph: the params do not fit the graph (%s)'
                             % (where, err)) from None
    inferred, nodes = [], graph_nodes(symbol)
    for size in _PROBE_SIZES:
        probe = _probe_inputs(symbol, nodes, graph_layers, shapes, size)
        if probe is None:
            return
        try:
            arg_shapes, _, aux_shapes = _infer(symbol, probe)
        except _InferError:
            return        # the graph needs another input shape: the checks above stand
        found = dict(zip(arguments, arg_shapes or []))
        found.update(zip(auxiliary, aux_shapes or []))
        inferred.append(found)
    for name in shapes:
        first, second = tuple(inferred[0].get(name) or ()), tuple(inferred[1].get(name) or ())
        if not first or len(first) != len(second):
            continue
        # dims that change with the probe's spatial size depend on the unknown input size
        want = tuple(a if a == b and a else None for a, b in zip(first, second))
        have = shapes[name]
        if len(have) != len(want) or any(w is not None and w != h for w, h in zip(want, have)):
            mismatch(name, want)


def check_fit(symbol, arg_params, aux_params, where):
    """:func:`~mxcompress.checkpoint.check_params_fit` of the decoded params, its complaints
    (and MXNet's, which it may pass on) as :class:`ContainerError`."""
    try:
        check_params_fit(symbol, arg_params, aux_params, where=where)
    except CheckpointError as err:
        raise ContainerError(str(err)) from None
    except (mx.base.MXNetError, ValueError) as err:
        raise ContainerError('%s: the params do not fit the graph (%s)'
                             % (where, mxnet_reason(err))) from None
    except Exception as err:  # pylint: disable=broad-except
        if type(err) is not Exception:   # mxnet raises a bare Exception for > 2^31 elements
            raise
        raise ContainerError('%s: the params do not fit the graph (%s)'
                             % (where, mxnet_reason(err))) from None
