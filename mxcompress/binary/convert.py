"""Convert a trained binary training graph into an inference graph on ``xnor_conv2d``.

Input: a checkpoint of the binary-network family (the contract of :mod:`.contract`). Every
binary ``Convolution`` node carries ``__binary_weight__`` ('sign' or 'sign_alpha'),
``__binary_input__`` ('true' when its data input is sign-binarised) and
``__latent_weight__`` (the float latent weight ``W``, shape (O, C, KH, KW); the node's weight
input is ``sign(W)`` or ``alpha_o * sign(W)``, ``alpha_o = mean |W[o]|``, computed in-graph).

Output: the same graph where each such node with a binary input is replaced by
``xnor_conv2d(x, pack_weights(W), alpha[, bias])`` with the node's kernel, stride, pad,
dilate and num_filter (same node name): 1 bit per weight (8 * ceil(C / 64) bytes per tap) plus
one float32 alpha per output channel; the latent ``W`` leaves the params. Since the op
binarises its input itself (sign(x) = +1 for x >= 0, -1 for x < 0, as the training graph's
straight-through sign does), the converter also skips the straight-through sign in front of
the convolution (both graph forms, see :func:`_strip_ste_sign`) when it finds it. Fused
forms, on by default: an inference BatchNorm before the sign becomes per-channel thresholds
of the op's binarisation (:func:`batchnorm_threshold`, ``input_threshold=True``), an
element-wise add that is the only reader of a converted conv is done in the op's epilogue
(``residual=True``), and a converted conv whose only reader is another converted conv with
input thresholds (conv -> BatchNorm -> sign -> conv, the BatchNorm folded) emits the
consumer's binarisation bit-packed (``output_threshold=True`` with the consumer's
thresholds) which the consumer reads as is (``packed_input=True``): no float activations
between the two (:func:`pack_between`). Zero padding is reproduced exactly by the op
(border correction), so the converted graph
computes ``alpha * Convolution(sign(x), sign(W))``: the training graph's value up to float
rounding of its ``+-alpha`` products (the predictions are checked on MNIST by
``scripts/bench_xnor.py`` / ``mxcompress xnor-convert --check``).

Binary convolutions whose input is not binary (``__binary_input__ = 'false'``, e.g. the
first layer or multi-bit activations) and binary FullyConnected layers are left as they are.
"""
import json
import logging

import mxnet as mx
import numpy as np

from .. import ops
from ..graph import Node, build_op, parse_tuple, rewrite
from .contract import BINARY_INPUT, BINARY_WEIGHT, LATENT_WEIGHT, check_attrs
from .quantizers import bwn_alpha

__all__ = ['convert', 'pack_between', 'float_graph', 'size_report']

_ADD_OPS = ('elemwise_add', '_plus', '_Plus', 'broadcast_add', '_add')
#: node attribute of every converted layer telling a reader of the saved graph what plain
#: ``mx.sym.load`` needs first (MXNet itself only says "Operator xnor_conv2d is not registered")
REQUIRES_ATTR = '__requires__'
REQUIRES_HINT = ('the xnor_conv2d op library: import mxcompress.ops; mxcompress.ops.load() '
                 '(mxcompress.checkpoint.load_checkpoint and the mxcompress command do it)')
log = logging.getLogger(__name__)


def _check_contract(name, attrs, arg_params):
    check_attrs(name, attrs, arg_params)
    mode, flag = attrs.get(BINARY_WEIGHT, 'sign'), attrs.get(BINARY_INPUT, 'false')
    latent = attrs[LATENT_WEIGHT]
    weight = arg_params[latent]
    if len(weight.shape) != 4:
        raise ValueError('layer %s: latent weight %s must be 4-D (O, C, KH, KW), got %s'
                         % (name, latent, weight.shape))
    if int(attrs.get('num_group', '1')) != 1:
        raise ValueError('layer %s: grouped binary convolutions (num_group=%s) are not '
                         'supported by xnor_conv2d' % (name, attrs['num_group']))
    return mode, flag == 'true', weight


def _top(symbol):
    """The JSON node that outputs ``symbol``, the node table by name and the node list."""
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    return nodes[graph['heads'][0][0]], {n['name']: n for n in nodes}, nodes


def _is_clip_around_zero(node):
    return (node['op'] == 'clip' and
            float(node['attrs']['a_min']) < 0 < float(node['attrs']['a_max']))


def _is_sign_of(node, nodes, source):
    """Whether ``node`` computes ``2 * (source >= 0) - 1`` (the project's sign rule);
    ``nodes`` is the graph's node list, ``source`` a node name."""
    chain = (('_minus_scalar', 1.0), ('_mul_scalar', 2.0), ('_greater_equal_scalar', 0.0))
    for op, scalar in chain:
        if node['op'] != op or float(node['attrs'].get('scalar', 'nan')) != scalar:
            return False
        node = nodes[node['inputs'][0][0]]
    return node['name'] == source


def _strip_ste_sign(data):
    """``x`` when ``data`` is the straight-through sign of ``x``, else ``data``.

    Two forms are recognised: ``clip(x) + BlockGrad(sign(x) - clip(x))`` and the form of
    :mod:`.quantizers` (1-bit ``ste_sign``), ``BlockGrad(2 (x >= 0) - 1) + (clip(x) -
    BlockGrad(clip(x)))``, with a clip range around 0. Safe for binary inputs: the op takes
    sign(x) itself (+1 for x >= 0, as both forms)."""
    try:
        node, nodes, order = _top(data)
        children = data.get_children()
        if node['op'] not in _ADD_OPS or children is None or len(children) != 2:
            return data
        first, second = nodes[children[0].name], nodes[children[1].name]
        if _is_clip_around_zero(first) and second['op'] == 'BlockGrad':
            return children[0].get_children()[0]
        if first['op'] != 'BlockGrad' or second['op'] not in ('elemwise_sub', '_minus', '_sub'):
            return data
        clip_sym, held = children[1].get_children()
        clip = nodes[clip_sym.name]
        if (not _is_clip_around_zero(clip) or nodes[held.name]['op'] != 'BlockGrad' or
                held.get_children()[0].name != clip_sym.name):
            return data
        source = clip_sym.get_children()[0]
        sign = nodes[children[0].get_children()[0].name]
        if not _is_sign_of(sign, order, source.name):
            return data
        return source
    except (KeyError, IndexError, ValueError, TypeError, mx.base.MXNetError):
        return data


def batchnorm_threshold(gamma, beta, mean, var, eps, fix_gamma=False):
    """Fold an inference BatchNorm followed by sign into per-channel compare constants.

    ``y = gamma (x - mean) / s + beta`` with ``s = sqrt(var + eps)`` and ``sign(y) = -1`` iff
    ``y < 0``. For ``gamma > 0`` that is ``x < t`` with ``t = mean - beta s / gamma``; for
    ``gamma < 0`` the inequality flips, ``x > t``, i.e. ``-x < -t``; for ``gamma = 0`` the
    sign is the constant ``sign(beta)``. ``xnor_conv2d(..., input_threshold=True)`` takes
    the -1 bit where ``x * scale < threshold``.

    Parameters
    ----------
    gamma, beta, mean, var : numpy.ndarray, shape (C,)
    eps : float
    fix_gamma : bool
        MXNet's ``fix_gamma`` (gamma taken as 1).

    Returns
    -------
    scale, threshold : numpy.ndarray of float32, shape (C,)
        ``scale`` is +1 or -1 per channel; ``threshold`` may be +-inf (gamma = 0).
    """
    gamma = np.ones_like(beta, np.float64) if fix_gamma else np.asarray(gamma, np.float64)
    beta, mean = np.asarray(beta, np.float64), np.asarray(mean, np.float64)
    std = np.sqrt(np.asarray(var, np.float64) + float(eps))
    with np.errstate(divide='ignore', invalid='ignore'):
        t = mean - beta * std / gamma
    scale = np.where(gamma < 0, -1.0, 1.0)
    threshold = np.where(gamma > 0, t, -t)
    threshold = np.where(gamma == 0, np.where(beta < 0, np.inf, -np.inf), threshold)
    return scale.astype(np.float32), threshold.astype(np.float32)


def _true(text):
    return str(text) in ('True', 'true', '1')


def _fold_batchnorm(data, arg_params, aux_params):
    """``(x, scale, threshold, bn name)`` when ``data`` is an inference ``BatchNorm(x)`` over
    axis 1 with its statistics in the params, else None."""
    try:
        node = _top(data)[0]
        if node['op'] != 'BatchNorm' or _true(node['attrs'].get('output_mean_var', 'False')):
            return None
        if int(node['attrs'].get('axis', '1')) != 1:
            return None
        x, gamma, beta, mean, var = data.get_children()
        values = [(arg_params.get(v.name) if v.name in arg_params else aux_params.get(v.name))
                  for v in (gamma, beta, mean, var)]
        if any(v is None for v in values):
            return None
        values = [v.asnumpy() if hasattr(v, 'asnumpy') else np.asarray(v) for v in values]
        scale, threshold = batchnorm_threshold(
            *values, eps=float(node['attrs'].get('eps', '1e-3')),
            fix_gamma=_true(node['attrs'].get('fix_gamma', 'True')))
        return x, scale, threshold, node['name']
    except (KeyError, IndexError, ValueError, TypeError, mx.base.MXNetError):
        return None


def consumer_counts(symbol):
    """Node name -> how many node inputs (and graph outputs) read it."""
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    counts = {n['name']: 0 for n in nodes}
    for node in nodes:
        for i, *_ in node['inputs']:
            counts[nodes[i]['name']] += 1
    for i, *_ in graph['heads']:
        counts[nodes[i]['name']] += 1
    return counts


#: element-wise adds of two same-shape tensors (no broadcasting) the op can take over
_SAME_SHAPE_ADDS = ('elemwise_add', '_plus', '_Plus', '_add')


def _input_threshold_at(attrs):
    """Index of ``in_scale`` among an xnor_conv2d's inputs (data, weight, alpha[, bias])."""
    return 3 if _true(attrs.get('no_bias', 'True')) else 4


def pack_between(symbol, records=None):
    """Let consecutive xnor convolutions pass bit-packed activations (a graph pass).

    An edge ``producer -> consumer`` qualifies when both are ``xnor_conv2d``, the consumer
    binarises its data with thresholds (``input_threshold=True``: a folded BatchNorm + sign)
    and the producer's output has no other reader (no residual add, pooling, second conv or
    graph output; its float value is needed nowhere else). The consumer's ``in_scale`` /
    ``in_threshold`` move to the producer as ``out_scale`` / ``out_threshold``
    (``output_threshold=True``): the producer compares its float result ``y`` in registers,
    bit 1 (-1) where ``y * out_scale[c] < out_threshold[c]`` (NaN: +1), exactly the rule the
    consumer applied to the float ``y``, and writes uint8 (N, OH, OW, ceil(O / 8)) bits; the
    consumer reads them (``packed_input=True``, ``in_channels`` = the producer's
    ``num_filter``). The computed values are bit-identical to the float chain; the float
    activation between the two (written, then read and binarised) disappears.

    Parameters
    ----------
    symbol : mx.sym.Symbol
        A converted graph (:func:`convert` with ``packed_output=False``).
    records : dict of str -> dict, or None
        The converter's records by layer name; ``'packed_output'`` (the consumer's name) is
        set on each producer and ``'packed_input'`` (the producer's name) on each consumer.

    Returns
    -------
    mx.sym.Symbol
        The same graph with the fused edges (the same params: the threshold variables keep
        their names and now feed the producers).
    """
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    by_name = {n['name']: n for n in nodes}
    readers = consumer_counts(symbol)
    producers = {}  # producer name -> (consumer name, its scale and threshold variable nodes)
    consumers = {}  # consumer name -> producer name
    for node in nodes:
        attrs = node.get('attrs', {})
        if node['op'] != 'xnor_conv2d' or not _true(attrs.get('input_threshold', 'False')):
            continue
        source, index = node['inputs'][0][:2]
        producer = nodes[source]
        if (producer['op'] != 'xnor_conv2d' or index != 0 or readers[producer['name']] != 1 or
                _true(producer.get('attrs', {}).get('output_threshold', 'False'))):
            continue
        at = _input_threshold_at(attrs)
        scale, threshold = (nodes[i] for i, *_ in node['inputs'][at:at + 2])
        if scale['op'] != 'null' or threshold['op'] != 'null' or any(
                readers[v['name']] != 1 for v in (scale, threshold)):
            continue  # shared with another reader: the variables cannot move
        producers[producer['name']] = (node['name'], scale, threshold)
        consumers[node['name']] = producer['name']

    def replace(node, inputs):
        if node.name not in producers and node.name not in consumers:
            return None
        args, attrs = list(inputs), dict(node.attrs)
        if node.name in consumers:
            producer = consumers[node.name]
            at = _input_threshold_at(attrs)
            del args[at:at + 2]
            attrs.update(input_threshold='False', packed_input='True',
                         in_channels=by_name[producer]['attrs']['num_filter'])
            if records is not None:
                records[node.name]['packed_input'] = producer
        if node.name in producers:
            consumer, scale, threshold = producers[node.name]
            at = len(args) - 1 if _true(attrs.get('residual', 'False')) else len(args)
            args[at:at] = [mx.sym.Variable(v['name'], attr=v.get('attrs') or None)
                           for v in (scale, threshold)]
            attrs['output_threshold'] = 'True'
            if records is not None:
                records[node.name]['packed_output'] = consumer
        return build_op(Node(node.op, node.name, attrs, node.input_names), args)

    return rewrite(symbol, replace) if producers else symbol


def convert(symbol, arg_params, aux_params, strip_sign=True, fold_bn=True, fuse_add=True,
            packed_output=True):
    """Replace the binary-input binary convolutions of a training graph by ``xnor_conv2d``.

    Parameters
    ----------
    symbol : mx.sym.Symbol
        Training graph (loss heads are kept; they output probabilities in inference).
    arg_params, aux_params : dict of str -> NDArray
    strip_sign : bool
        Feed the op the pre-binarisation tensor when the straight-through sign is found.
    fold_bn : bool
        When that tensor is an inference ``BatchNorm(x)``, feed the op ``x`` and fold the
        BatchNorm into per-channel thresholds of its binarisation (:func:`batchnorm_threshold`,
        ``input_threshold=True``): one float pass over the activations less per layer. The
        BatchNorm stays in the graph only where something else reads it.
    fuse_add : bool
        When a converted convolution's output is read only by an element-wise add (a
        residual block's sum), the op adds the other operand in its epilogue
        (``residual=True``) and the add leaves the graph: the same sum, one pass over the
        output less.
    packed_output : bool
        When a converted convolution's output is read only by another converted convolution
        through a folded BatchNorm + sign (``fold_bn``), the first emits the second's
        binarisation as packed bits and the second reads them (:func:`pack_between`): the
        float activation between them is never written.

    Returns
    -------
    (symbol, arg_params, aux_params, layers)
        ``layers``: one record per converted layer (name, shapes, bytes packed vs fp32).

    Raises
    ------
    ValueError
        A node breaks the contract (attribute values, missing latent weight, groups).
    """
    ops.load()
    layers, records = [], {}   # records: conv name -> its entry of layers
    new_params, shared = {}, {}
    made = {}             # converted conv name -> (inputs, attributes) of its xnor_conv2d
    readers = consumer_counts(symbol)

    def fuse(node, inputs):
        """The add of a converted conv's sole output and another tensor, as one op."""
        for mine, other in ((0, 1), (1, 0)):
            name = node.input_names[mine]
            if name in made and readers[name] == 1 and inputs[mine].name == name:
                args, attrs = made.pop(name)
                records[name]['residual_add_fused'] = node.name
                with mx.AttrScope(**{REQUIRES_ATTR: REQUIRES_HINT}):
                    return mx.sym.xnor_conv2d(*args, inputs[other], residual=True, name=name,
                                              **attrs)
        return None

    def replace(node, inputs):
        if (fuse_add and node.op in _SAME_SHAPE_ADDS and len(inputs) == 2 and
                not node.attrs):
            return fuse(node, inputs)
        if node.op != 'Convolution' or LATENT_WEIGHT not in node.attrs:
            return None
        mode, binary_input, latent = _check_contract(node.name, node.attrs, arg_params)
        if not binary_input:
            return None
        attrs = node.attrs
        o, c, kh, kw = latent.shape
        kernel = parse_tuple(attrs['kernel'])
        if kernel != (kh, kw) or int(attrs['num_filter']) != o:
            raise ValueError('layer %s: kernel %s / num_filter %s do not match latent weight '
                             '%s' % (node.name, kernel, attrs['num_filter'], latent.shape))
        if len(kernel) != 2:
            raise ValueError('layer %s: only 2-D convolutions convert, kernel %s'
                             % (node.name, kernel))
        packed = ops.pack_weights(latent)
        if mode == 'sign_alpha':  # the graph's own formula: mean |W| over all but axis 0
            alpha = bwn_alpha(mx.nd, latent).asnumpy()
        else:
            alpha = np.ones(o, np.float32)
        wname, aname = node.name + '_xnor_weight', node.name + '_xnor_alpha'
        new_params[wname] = mx.nd.array(packed, dtype='uint8')
        new_params[aname] = mx.nd.array(alpha.astype(np.float32))
        data = _strip_ste_sign(inputs[0]) if strip_sign else inputs[0]
        stripped = data is not inputs[0]
        folded = _fold_batchnorm(data, arg_params, aux_params) if fold_bn else None
        if folded is not None:
            data, scale, threshold, bn_name = folded
            sname, tname = bn_name + '_in_scale', bn_name + '_in_threshold'
            new_params[sname], new_params[tname] = mx.nd.array(scale), mx.nd.array(threshold)
        no_bias = attrs.get('no_bias', 'False') in ('True', 'true', '1')
        # every new param variable carries its shape: MXNet 1.9 sizes the shape buffer of a
        # library op by the sum of its inputs' ndims, counting -1 for each unknown shape,
        # so a library op with several unknown inputs overruns it (segfault, bad_alloc)
        args = [data, mx.sym.var(wname, dtype='uint8', shape=packed.shape),
                mx.sym.var(aname, shape=(o,))]
        if not no_bias:
            args.append(inputs[2])
        if folded is not None:
            if sname not in shared:  # one variable per BatchNorm, whichever convs read it
                shared[sname] = mx.sym.var(sname, shape=(c,))
                shared[tname] = mx.sym.var(tname, shape=(c,))
            args += [shared[sname], shared[tname]]
        conv = {k: attrs[k] for k in ('stride', 'pad', 'dilate') if k in attrs}
        layers.append({'layer': node.name, 'latent_weight': node.attrs[LATENT_WEIGHT],
                       'weight_shape': [o, c, kh, kw], 'binary_weight': mode,
                       'packed_bytes': int(packed.nbytes), 'alpha_bytes': 4 * o,
                       'fp32_bytes': 4 * o * c * kh * kw, 'sign_stripped': stripped,
                       'batchnorm_folded': folded[3] if folded is not None else None,
                       'residual_add_fused': None, 'packed_output': None,
                       'packed_input': None})
        records[node.name] = layers[-1]
        attrs = dict(conv, kernel=kernel, num_filter=o, no_bias=no_bias,
                     input_threshold=folded is not None)
        made[node.name] = (args, attrs)
        with mx.AttrScope(**{REQUIRES_ATTR: REQUIRES_HINT}):
            return mx.sym.xnor_conv2d(*args, name=node.name, **attrs)

    converted = rewrite(symbol, replace)
    if packed_output:
        converted = pack_between(converted, records)
    names = set(converted.list_arguments())
    arg_out = {k: v for k, v in arg_params.items() if k in names}
    arg_out.update(new_params)
    aux_names = set(converted.list_auxiliary_states())
    aux_out = {k: v for k, v in aux_params.items() if k in aux_names}
    log.info('converted %d binary convolutions to xnor_conv2d (%d with bit-packed outputs)',
             len(layers), sum(r['packed_output'] is not None for r in layers))
    return converted, arg_out, aux_out, layers


def size_report(layers, arg_params_before, arg_params_after):
    """Bytes of the binary conv weights packed vs fp32, and of all params before / after."""
    def nbytes(params):
        return int(sum(v.size * np.dtype(v.dtype).itemsize for v in params.values()))
    packed = sum(r['packed_bytes'] + r['alpha_bytes'] for r in layers)
    fp32 = sum(r['fp32_bytes'] for r in layers)
    return {'binary_conv_layers': len(layers), 'binary_conv_fp32_bytes': fp32,
            'binary_conv_packed_bytes': packed,
            'binary_conv_ratio': (fp32 / packed) if packed else None,
            'params_bytes_before': nbytes(arg_params_before),
            'params_bytes_after': nbytes(arg_params_after)}


def float_graph(symbol, arg_params):
    """The same network in fp32: every binary Convolution becomes a plain Convolution on its
    latent float weight, fed the input before the straight-through sign (so the sign
    activations disappear). The reference for end-to-end speed-ups (not for accuracy).

    Returns
    -------
    (symbol, arg_params) with the params the float graph uses.
    """
    def replace(node, inputs):
        if node.op != 'Convolution' or LATENT_WEIGHT not in node.attrs:
            return None
        _, binary_input, latent = _check_contract(node.name, node.attrs, arg_params)
        data = _strip_ste_sign(inputs[0]) if binary_input else inputs[0]
        params = {k: v for k, v in node.attrs.items() if not k.startswith('__')}
        args = [data, mx.sym.var(node.attrs[LATENT_WEIGHT])]
        if params.get('no_bias', 'False') not in ('True', 'true', '1'):
            args.append(inputs[2])
        return mx.sym.Convolution(*args, name=node.name, **params)

    fp32 = rewrite(symbol, replace)
    names = set(fp32.list_arguments())
    return fp32, {k: v for k, v in arg_params.items() if k in names}
