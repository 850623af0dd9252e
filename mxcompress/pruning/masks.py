"""Weight masks: masked Gluon layers and the mask rewrite of any checkpoint.

A pruned layer computes with the effective weight ``W_eff = W * M`` where ``M`` is a fixed 0/1
mask of W's shape (Han et al., "Learning both Weights and Connections for Efficient Neural
Networks", NIPS 2015). The mask is a parameter the optimizer never updates
(``grad_req='null'`` in Gluon, ``fixed_param_names`` in ``mx.mod.Module``).

Why pruned weights stay exactly zero. The gradient reaching the latent weight is
``dL/dW = dL/dW_eff * M``, exactly 0 where ``M = 0``. :func:`insert_masks` also zeroes the
latent weights there, so SGD with momentum ``m`` and weight decay ``wd``::

    v <- m * v - lr * (rescale * dL/dW + wd * W)      # 0 when v = 0, W = 0, dL/dW = 0
    W <- W + v

keeps ``W = 0`` and ``v = 0`` at every step (the optimizer state starts at 0). The same holds for
any optimizer whose update is zero for a zero weight with a zero gradient and a zero state
(SGD, NAG, Adam, RMSProp).

The maths lives in one function, :func:`masked_weight`, used by the Gluon blocks
(``hybrid_forward``) and by the symbol rewrite, so the imperative, hybridised and spliced
forms compute the same thing.
"""
import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..graph import build_op, find_layers, pair, rewrite

__all__ = ['masked_weight', 'MaskedDense', 'MaskedConv2D', 'mask_name', 'masked_node_name',
           'prunable_layers', 'resolve_layers', 'insert_masks', 'strip_masks',
           'masks_from_zeros', 'mask_names']

PRUNABLE_OPS = ('FullyConnected', 'Convolution')


def masked_weight(F, weight, mask, name=None):
    """The effective weight ``weight * mask`` (elementwise, same shapes).

    Parameters
    ----------
    F : module
        ``mx.nd`` or ``mx.sym``.
    weight, mask : NDArray or Symbol, same shape
    """
    if name is None:
        return F.elemwise_mul(weight, mask)
    return F.elemwise_mul(weight, mask, name=name)


class MaskedDense(HybridBlock):
    """Fully connected layer with a fixed 0/1 weight mask: ``y = x (W * M)^T + b``.

    Parameters
    ----------
    units : int
        Output size.
    in_units : int
        Input size (required: the mask needs W's shape up front).
    use_bias : bool
    activation : str or None
        Activation applied to the output (``'relu'`` ...).

    Inputs:
        - **data**: (batch, in_units), or any shape flattened to (batch, -1).
    Outputs:
        - **out**: (batch, units).

    Parameters of the block: ``weight`` (units, in_units), ``bias`` (units,), ``mask``
    (units, in_units) with ``grad_req='null'`` (initialised to ones: nothing pruned).
    """

    def __init__(self, units, in_units, use_bias=True, activation=None, **kwargs):
        super().__init__(**kwargs)
        self._units, self._in_units, self._act = units, in_units, activation
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(units, in_units))
            self.mask = self.params.get('mask', shape=(units, in_units), init='ones',
                                        grad_req='null', differentiable=False)
            self.bias = self.params.get('bias', shape=(units,), init='zeros') if use_bias \
                else None

    def hybrid_forward(self, F, x, weight, mask, bias=None):
        w = masked_weight(F, weight, mask)
        out = F.FullyConnected(x, w, bias, num_hidden=self._units, no_bias=bias is None,
                               flatten=True)
        return F.Activation(out, act_type=self._act) if self._act else out

    def set_mask(self, mask):
        """Set the mask (array of W's shape, 0/1) and zero the pruned latent weights."""
        _set_block_mask(self, mask)


class MaskedConv2D(HybridBlock):
    """2-D convolution with a fixed 0/1 weight mask: ``y = conv(x, W * M) + b``.

    Parameters
    ----------
    channels : int
        Output channels (filters).
    kernel_size : int or tuple of 2 ints
    in_channels : int
        Input channels (required: the mask needs W's shape up front).
    strides, padding, dilation : int or tuple of 2 ints
    groups : int
    use_bias : bool
    activation : str or None

    Inputs:
        - **data**: (batch, in_channels, height, width).
    Outputs:
        - **out**: (batch, channels, out_height, out_width).

    Parameters of the block: ``weight`` (channels, in_channels/groups, kh, kw), ``bias``,
    ``mask`` of W's shape with ``grad_req='null'``.
    """

    def __init__(self, channels, kernel_size, in_channels, strides=1, padding=0, dilation=1,
                 groups=1, use_bias=True, activation=None, **kwargs):
        super().__init__(**kwargs)
        self._kwargs = {'kernel': pair(kernel_size, 'kernel_size'),
                        'stride': pair(strides, 'strides'), 'pad': pair(padding, 'padding'),
                        'dilate': pair(dilation, 'dilation'), 'num_group': groups,
                        'num_filter': channels}
        self._act = activation
        shape = (channels, in_channels // groups) + self._kwargs['kernel']
        with self.name_scope():
            self.weight = self.params.get('weight', shape=shape)
            self.mask = self.params.get('mask', shape=shape, init='ones', grad_req='null',
                                        differentiable=False)
            self.bias = self.params.get('bias', shape=(channels,), init='zeros') if use_bias \
                else None

    def hybrid_forward(self, F, x, weight, mask, bias=None):
        w = masked_weight(F, weight, mask)
        out = F.Convolution(x, w, bias, no_bias=bias is None, **self._kwargs)
        return F.Activation(out, act_type=self._act) if self._act else out

    def set_mask(self, mask):
        """Set the mask (array of W's shape, 0/1) and zero the pruned latent weights."""
        _set_block_mask(self, mask)


def _set_block_mask(block, mask):
    mask = mx.nd.array(np.asarray(mask, dtype=np.float32))
    if mask.shape != block.weight.shape:
        raise ValueError('mask shape %s does not match weight shape %s'
                         % (mask.shape, block.weight.shape))
    block.mask.set_data(mask)
    block.weight.set_data(block.weight.data() * mask)


def mask_name(weight_name):
    """Name of the mask variable of weight ``weight_name``: ``<weight>_mask``."""
    return weight_name + '_mask'


def masked_node_name(weight_name):
    """Name of the ``weight * mask`` node inserted for weight ``weight_name``."""
    return weight_name + '_masked'


def prunable_layers(symbol):
    """FullyConnected / Convolution layers of ``symbol`` (see :func:`graph.find_layers`)."""
    return find_layers(symbol, PRUNABLE_OPS)


def resolve_layers(symbol, names=None):
    """The prunable layers named ``names`` (all when None), in graph order.

    Raises
    ------
    ValueError
        A name is not a prunable layer of the symbol; the message lists the prunable layers.
    """
    layers = prunable_layers(symbol)
    if names is None:
        return layers
    by_name = {l.name: l for l in layers}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError('unknown layer(s) %s; prunable layers (FullyConnected, Convolution) '
                         'of this model: %s' % (', '.join(unknown), ', '.join(by_name) or 'none'))
    if not names:
        raise ValueError('no layers chosen; prunable layers: %s' % ', '.join(by_name))
    return [by_name[n] for n in by_name if n in set(names)]


def _np(value):
    return value.asnumpy() if hasattr(value, 'asnumpy') else np.asarray(value)


def insert_masks(symbol, arg_params, masks):
    """Rewrite a checkpoint so chosen layers compute with ``weight * mask``.

    Parameters
    ----------
    symbol : mx.sym.Symbol
        Any graph; layers are matched by op type (FullyConnected, Convolution) and found by the
        variable wired to their ``weight`` input.
    arg_params : dict of str -> NDArray
    masks : dict of str -> array
        Weight variable name -> 0/1 mask of the weight's shape.

    Returns
    -------
    symbol : mx.sym.Symbol
        The weight input of each chosen layer replaced by
        ``elemwise_mul(weight, <weight>_mask)`` (node ``<weight>_masked``).
    arg_params : dict
        A copy with the masks added and the pruned latent weights set to exactly 0.
    mask_names : list of str
        The new mask variables: pass them as ``fixed_param_names`` when fine-tuning.

    Raises
    ------
    ValueError
        A mask names no layer weight, has the wrong shape, or is not 0/1.
    """
    layers = {l.weight: l for l in prunable_layers(symbol)}
    unknown = [w for w in masks if w not in layers]
    if unknown:
        raise ValueError('masks for %s, which are not weights of FullyConnected/Convolution '
                         'layers; layer weights: %s' % (unknown, ', '.join(layers)))
    new_params = dict(arg_params)
    for weight, mask in masks.items():
        mask = _np(mask).astype(np.float32)
        value = _np(arg_params[weight])
        if mask.shape != value.shape:
            raise ValueError('mask for %s has shape %s, the weight has %s'
                             % (weight, mask.shape, value.shape))
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError('mask for %s must contain only 0 and 1' % weight)
        new_params[weight] = mx.nd.array(value * mask)
        new_params[mask_name(weight)] = mx.nd.array(mask)

    def replace(node, inputs):
        if node.op not in PRUNABLE_OPS or len(node.input_names) < 2:
            return None
        weight = node.input_names[1]
        if weight not in masks:
            return None
        masked = masked_weight(mx.sym, inputs[1], mx.sym.Variable(mask_name(weight)),
                               name=masked_node_name(weight))
        return build_op(node, [inputs[0], masked] + list(inputs[2:]))

    new_symbol = rewrite(symbol, replace)
    return new_symbol, new_params, [mask_name(w) for w in masks]


def mask_names(symbol):
    """``{weight name: mask name}`` of every masked layer of a rewritten symbol."""
    args = set(symbol.list_arguments())
    return {w: mask_name(w) for w in args if mask_name(w) in args}


def strip_masks(symbol, arg_params, aux_params=None):
    """Remove the mask ops: a standard checkpoint whose pruned weights are stored as zeros.

    Parameters
    ----------
    symbol : mx.sym.Symbol
        A graph made by :func:`insert_masks` (graphs without masks pass through unchanged).
    arg_params, aux_params : dict

    Returns
    -------
    symbol, arg_params, aux_params
        The layers read their weight variable directly again; each weight is
        ``weight * mask`` (exact zeros where pruned) and the masks are dropped.
    """
    pairs = mask_names(symbol)
    masked_nodes = {masked_node_name(w): w for w in pairs}

    def replace(node, inputs):
        if node.op == 'elemwise_mul' and node.name in masked_nodes \
                and node.input_names == [masked_nodes[node.name], pairs[masked_nodes[node.name]]]:
            return inputs[0]
        return None

    new_symbol = rewrite(symbol, replace)
    params = {}
    for name, value in arg_params.items():
        if name in pairs.values():
            continue
        if name in pairs and pairs[name] in arg_params:
            value = mx.nd.array(_np(value) * _np(arg_params[pairs[name]]))
        params[name] = value
    return new_symbol, params, dict(aux_params or {})


def masks_from_zeros(symbol, arg_params, layers=None):
    """Masks that keep the existing zero pattern: ``M = (W != 0)`` for each chosen layer.

    Parameters
    ----------
    layers : list of str or None
        Layer names (all prunable layers when None).

    Returns
    -------
    dict of str -> numpy.ndarray (float32)
        Weight name -> mask.
    """
    return {l.weight: (_np(arg_params[l.weight]) != 0).astype(np.float32)
            for l in resolve_layers(symbol, layers)}
