"""Codebook layers: the weight is ``take(codebook * codemask, index)``.

Deep Compression's centroid fine-tuning (Han et al. 2016, section 3.3): the gradient of every
weight is gathered by its cluster index and summed into the cluster's centroid,

    dL/dc_k = sum_{i : I_i = k} dL/dW_i ,

which is exactly the backward pass of ``take(codebook, index)`` (a scatter-add). The index is a
fixed param (``fixed_param_names`` in Module, ``grad_req='null'`` in Gluon) and only the codebook
trains. ``codemask`` is a fixed 0/1 vector with ``codemask[0] = 0``: entry 0 is the reserved
zero of pruned weights, so however its codebook slot moves, those weights stay exactly zero.

Three forms share :func:`codebook_weight`:

* :class:`CodebookDense` / :class:`CodebookConv2D`, Gluon HybridBlocks;
* :func:`codebook_rewrite`, which splices the same maths into any checkpoint's symbol through
  :func:`mxcompress.graph.rewrite` (names: ``W_codebook``, ``W_codemask``, ``W_index`` for a
  weight variable ``W``);
* :func:`fold_codebooks`, which turns the trained params back into a standard checkpoint
  whose weights equal ``(codebook * codemask)[index]`` exactly.
"""
import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..graph import build_op, find_layers, rewrite
from .scalar import check_bits, default_bits, dequantize, scalar_quantize

__all__ = ['codebook_weight', 'CodebookDense', 'CodebookConv2D', 'codebook_rewrite',
           'fold_codebooks', 'codebook_names', 'quantize_params']

_OPS = ('FullyConnected', 'Convolution')


def codebook_weight(F, codebook, codemask, index):
    """The shared weight ``take(codebook * codemask, index)``.

    Parameters
    ----------
    F : mx.sym or mx.nd
    codebook : (k,) trained centroids
    codemask : (k,) fixed, 0 for the reserved zero entry, 1 elsewhere
    index : float32 array of the weight's shape, integer values in 0..k-1 (fixed)

    Returns
    -------
    The weight, shape of ``index``.
    """
    return F.take(F.broadcast_mul(codebook, codemask), index, mode='clip')


def codebook_names(weight):
    """``(codebook, codemask, index)`` param names for weight variable ``weight``."""
    return weight + '_codebook', weight + '_codemask', weight + '_index'


def _mask_for(codebook):
    mask = np.ones(len(codebook), np.float32)
    mask[0] = 0.0
    return mask


class _CodebookBase(HybridBlock):
    def __init__(self, weight_shape, k, use_bias, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        with self.name_scope():
            self.codebook = self.params.get('weight_codebook', shape=(k,), init=mx.init.Zero())
            self.codemask = self.params.get('weight_codemask', shape=(k,), grad_req='null',
                                            init=mx.init.Constant(_mask_for(np.zeros(k))))
            self.index = self.params.get('weight_index', shape=weight_shape, grad_req='null',
                                         init=mx.init.Zero(), differentiable=False)
            self.bias = self.params.get('bias', shape=(weight_shape[0],), init=mx.init.Zero()) \
                if use_bias else None

    def set_quantized(self, codebook, index, bias=None):
        """Load a codebook (k,) and an index array (weight shape) from :func:`scalar_quantize`."""
        k = self.codebook.shape[0]
        if len(codebook) > k:
            raise ValueError('%s: codebook has %d entries, the block holds %d'
                             % (self.name, len(codebook), k))
        full = np.zeros(k, np.float32)
        full[:len(codebook)] = codebook
        self.codebook.set_data(mx.nd.array(full))
        self.codemask.set_data(mx.nd.array(_mask_for(full)))
        self.index.set_data(mx.nd.array(np.asarray(index, np.float32)))
        if bias is not None and self.bias is not None:
            self.bias.set_data(mx.nd.array(bias))

    def quantized_weight(self):
        """The current weight ``(codebook * codemask)[index]`` as numpy float32."""
        cb = self.codebook.data().asnumpy() * self.codemask.data().asnumpy()
        return dequantize(cb, self.index.data().asnumpy())


class CodebookDense(_CodebookBase):
    """Fully connected layer with a k-entry shared-weight codebook.

    ``y = x W^T + b`` with ``W = take(codebook * codemask, index)``.

    Parameters
    ----------
    units, in_units : int
        Output and input sizes; the weight is (units, in_units).
    bits : int
        Index width 1..16; k = 2^bits codebook entries (entry 0 = the fixed zero).
    use_bias : bool
    flatten : bool
        As in ``nn.Dense``.

    Inputs: ``data`` (N, in_units) (or (N, ...) with ``flatten``). Outputs: (N, units).
    """

    def __init__(self, units, in_units, bits=5, use_bias=True, flatten=True, **kwargs):
        self._units, self._flatten = units, flatten
        super().__init__((units, in_units), 1 << check_bits(bits), use_bias, **kwargs)

    def hybrid_forward(self, F, x, codebook, codemask, index, bias=None):
        weight = codebook_weight(F, codebook, codemask, index)
        return F.FullyConnected(x, weight, bias, num_hidden=self._units, no_bias=bias is None,
                                flatten=self._flatten, name='fwd')


class CodebookConv2D(_CodebookBase):
    """2-D convolution with a k-entry shared-weight codebook.

    Parameters
    ----------
    channels, in_channels : int
    kernel_size : tuple of 2 ints
    strides, padding, dilation : tuple of 2 ints
    groups : int
    bits : int
        Index width 1..16 (k = 2^bits, entry 0 = the fixed zero).
    use_bias : bool

    Inputs: ``data`` (N, in_channels, H, W). Outputs: (N, channels, H', W').
    """

    def __init__(self, channels, in_channels, kernel_size, strides=(1, 1), padding=(0, 0),
                 dilation=(1, 1), groups=1, bits=8, use_bias=True, **kwargs):
        self._kw = dict(kernel=tuple(kernel_size), stride=tuple(strides), pad=tuple(padding),
                        dilate=tuple(dilation), num_group=groups, num_filter=channels)
        shape = (channels, in_channels // groups) + tuple(kernel_size)
        super().__init__(shape, 1 << check_bits(bits), use_bias, **kwargs)

    def hybrid_forward(self, F, x, codebook, codemask, index, bias=None):
        weight = codebook_weight(F, codebook, codemask, index)
        return F.Convolution(x, weight, bias, no_bias=bias is None, name='fwd', **self._kw)


def quantize_params(symbol, arg_params, conv_bits=8, fc_bits=5, bits=None, init='linear',
                    iters=50, seed=0):
    """k-means quantise every FullyConnected / Convolution weight of a checkpoint.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    arg_params : dict of str -> NDArray
    conv_bits, fc_bits : int
        Default index widths by op (Han et al.: 8 conv, 5 fc).
    bits : dict or None
        Per-layer override, layer (op) name or weight name -> bits.
    init, iters, seed
        See :func:`scalar_quantize`.

    Returns
    -------
    dict
        weight name -> ``{'layer', 'op', 'bits', 'codebook' (k,), 'index' (weight shape)}``.
    """
    bits = dict(bits or {})
    plan = {}
    for layer in find_layers(symbol, _OPS):
        if layer.weight not in arg_params:
            continue
        b = bits.get(layer.name, bits.get(layer.weight, default_bits(layer.op, conv_bits,
                                                                    fc_bits)))
        codebook, index = scalar_quantize(arg_params[layer.weight].asnumpy(), b, init=init,
                                          iters=iters, seed=seed, layer=layer.name)
        plan[layer.weight] = {'layer': layer.name, 'op': layer.op, 'bits': check_bits(b),
                              'codebook': codebook, 'index': index}
    unknown = set(bits) - {p['layer'] for p in plan.values()} - set(plan)
    if unknown:
        raise ValueError('--bits names no FullyConnected/Convolution layer: %s (layers: %s)'
                         % (sorted(unknown), [p['layer'] for p in plan.values()]))
    return plan


def codebook_rewrite(symbol, arg_params, plan):
    """Replace each planned layer's weight by ``take(codebook * codemask, index)``.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    arg_params : dict of str -> NDArray
    plan : dict
        From :func:`quantize_params`.

    Returns
    -------
    new_symbol : mx.sym.Symbol
        Same layer names and outputs; the weight variables are gone, replaced by
        ``W_codebook`` (trained), ``W_codemask`` and ``W_index`` (fixed).
    new_params : dict of str -> NDArray
    fixed_param_names : list of str
        Pass to Module (``fit(..., fixed_param_names=...)``).
    """
    def replace(node, inputs):
        if node.op not in _OPS or len(node.input_names) < 2 or node.input_names[1] not in plan:
            return None
        p = plan[node.input_names[1]]
        cb, mask, idx = codebook_names(node.input_names[1])
        k = len(p['codebook'])
        weight = codebook_weight(mx.sym, mx.sym.Variable(cb, shape=(k,)),
                                 mx.sym.Variable(mask, shape=(k,)),
                                 mx.sym.Variable(idx, shape=p['index'].shape, dtype='float32'))
        return build_op(node, [inputs[0], weight] + list(inputs[2:]))

    new_symbol = rewrite(symbol, replace)
    new_params = {k: v for k, v in arg_params.items() if k not in plan}
    fixed = []
    for weight, p in plan.items():
        cb, mask, idx = codebook_names(weight)
        new_params[cb] = mx.nd.array(p['codebook'])
        new_params[mask] = mx.nd.array(_mask_for(p['codebook']))
        new_params[idx] = mx.nd.array(p['index'].astype(np.float32))
        fixed += [mask, idx]
    return new_symbol, new_params, fixed


def fold_codebooks(arg_params, plan=None):
    """Turn codebook params back into standard weights ``(codebook * codemask)[index]``.

    Parameters
    ----------
    arg_params : dict of str -> NDArray
        Params of a :func:`codebook_rewrite` graph (e.g. after Module fine-tuning).
    plan : dict or None
        If given, its ``codebook`` entries are updated in place with the trained values
        (masked), so the plan describes the folded weights exactly.

    Returns
    -------
    dict of str -> NDArray
        Standard params for the original symbol.
    """
    out = {}
    weights = [k[:-len('_codebook')] for k in arg_params if k.endswith('_codebook')
               and k[:-len('_codebook')] + '_index' in arg_params]
    skip = set()
    for weight in weights:
        cb, mask, idx = codebook_names(weight)
        codebook = arg_params[cb].asnumpy() * arg_params[mask].asnumpy()
        codebook = np.where(arg_params[mask].asnumpy() > 0, codebook, 0).astype(np.float32)
        index = arg_params[idx].asnumpy().astype(np.int64)
        out[weight] = mx.nd.array(dequantize(codebook, index))
        if plan is not None and weight in plan:
            plan[weight]['codebook'] = codebook
            plan[weight]['index'] = index.astype(np.int32)
        skip.update((cb, mask, idx))
    out.update({k: v for k, v in arg_params.items() if k not in skip})
    return out
