"""Binary Gluon layers: BinaryConnect, BWN and XNOR Dense / Conv2D.

Each block keeps a float *latent* weight (trained; clipped to [-1, 1] after every update by
:mod:`mxcompress.binary.optimizer` or :func:`clip_latent_weights`; ``wd_mult=0`` so weight decay
never pulls it) and computes the binary weight from it in the graph with
:func:`~mxcompress.binary.quantizers.binarize_weight`:

=====================  ===========================  =====================  ==================
class                   weight                       input                  paper
=====================  ===========================  =====================  ==================
BinaryConnectDense/2D   sign(W) (or stochastic)      float                  Courbariaux 2015
BWNDense / BWNConv2D    alpha_o * sign(W)            float                  Rastegari 2016
XNORDense / XNORConv2D  alpha_o * sign(W)            sign(x), STE           Rastegari 2016
=====================  ===========================  =====================  ==================

``alpha_o = mean |W[o, ...]|`` per output channel. ``hybrid_forward`` is the single source of
the maths: the same block runs imperatively, hybridised and as a Symbol (``block(mx.sym.var(
'data'))``), and the Symbol form uses MXNet built-in operators only.

In Symbol form the Convolution / FullyConnected node carries the binary-network contract
attributes (see :mod:`.contract`): ``__binary_weight__`` ('sign' or 'sign_alpha'),
``__binary_input__`` ('true' / 'false') and ``__latent_weight__`` (the latent variable's name).

``_op_name`` selects the operator; ``'Convolution'`` / ``'FullyConnected'`` are MXNet's. A
replacement (e.g. the xnor-popcount ``xnor_conv2d`` of :mod:`mxcompress.ops`, after
``mxcompress.ops.load()``) is called as ``F.<op_name>(data, weight[, bias], **kwargs)`` with
the same keyword arguments.
"""
import warnings

import mxnet as mx
from mxnet.gluon import HybridBlock

from ..graph import pair
from .contract import binary_attrs
from .quantizers import WEIGHT_MODES, binarize_weight, check_clip_value, ste_sign

__all__ = ['BinaryConnectDense', 'BinaryConnectConv2D', 'BWNDense', 'BWNConv2D', 'XNORDense',
           'XNORConv2D', 'clip_latent_weights', 'binary_attrs', 'warn_if_pointwise']


def warn_if_pointwise(kernel, layer):
    """Warn when a binary convolution has a 1x1 kernel (1 bit x 1 tap per weight keeps too
    little of the layer's expressiveness, e.g. in a ResNet bottleneck)."""
    if tuple(kernel) == (1, 1):
        warnings.warn('%s: binary 1x1 convolution; the binary-network design notes advise '
                      'against binarising 1x1 convolutions (including ResNet bottlenecks): keep '
                      'them full precision or use 3x3' % layer, UserWarning, stacklevel=3)


class _BinaryBase(HybridBlock):
    """Shared maths of the binary layers (subclasses fix the idea: scale and input)."""

    _alpha = False           # scale by alpha = mean |W| per output channel
    _binarize_input = False  # sign-binarise the input inside the block (XNOR)

    def __init__(self, mode='deterministic', clip_value=1.0, input_is_binary=None,
                 op_name=None, **kwargs):
        super().__init__(**kwargs)
        if op_name is not None:   # e.g. 'xnor_conv2d' once mxcompress.ops.load() ran
            self._op_name = op_name
        if mode not in WEIGHT_MODES:
            raise ValueError('%s: mode must be one of %s, got %r'
                             % (type(self).__name__, ', '.join(WEIGHT_MODES), mode))
        self._mode = mode
        self._clip = check_clip_value(clip_value, where=type(self).__name__)
        # __binary_input__ of the node: the block binarises itself, or the caller says so
        self._input_is_binary = (self._binarize_input if input_is_binary is None
                                 else bool(input_is_binary))

    def _binary_weight(self, F, weight):
        return binarize_weight(F, weight, self._mode, self._alpha, self._clip)

    def _binary_input(self, F, x):
        return ste_sign(F, x, self._clip) if self._binarize_input else x

    def _op_inputs(self, F, x, weight, bias):
        """The op's inputs: binarised data (when this layer binarises it), binarised weight,
        and the bias if any."""
        args = [self._binary_input(F, x), self._binary_weight(F, weight)]
        return args + [bias] if bias is not None else args

    def _node_kwargs(self, weight):
        """``attr=`` with the contract attributes when building a Symbol."""
        if isinstance(weight, mx.sym.Symbol):
            return {'attr': binary_attrs(self._alpha, self._input_is_binary, weight.name)}
        return {}

    def clip_latent(self):
        """Clip the latent weight to [-clip_value, clip_value] in place."""
        for data in self.weight.list_data():
            mx.nd.clip(data, -self._clip, self._clip, out=data)


class _BinaryDense(_BinaryBase):
    """Fully connected layer with binary weights (see the module docstring).

    Parameters
    ----------
    units : int
        Output size.
    use_bias : bool
    flatten : bool
        Flatten inputs to (batch, -1) like ``gluon.nn.Dense``.
    in_units : int
        Input size (0 = deferred).
    mode : {'deterministic', 'stochastic'}
        Weight binarisation.
    clip_value : float
        Latent weights live in [-c, c]; the straight-through gradient is cut where |W| > c.
    input_is_binary : bool or None
        Value of ``__binary_input__`` (default: whether the block binarises its input).
    op_name : str or None
        Operator of ``F`` to call (default ``'FullyConnected'``).

    Inputs: ``data`` (batch, in_units) or any shape with ``flatten``.
    Outputs: (batch, units).
    """

    _op_name = 'FullyConnected'

    def __init__(self, units, use_bias=True, flatten=True, in_units=0,
                 weight_initializer=None, bias_initializer='zeros', **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError('%s: units must be >= 1, got %r' % (type(self).__name__, units))
        self._units, self._flatten, self._use_bias = int(units), flatten, use_bias
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(self._units, in_units),
                                          init=weight_initializer, wd_mult=0.0,
                                          allow_deferred_init=True)
            self.bias = (self.params.get('bias', shape=(self._units,), init=bias_initializer,
                                         allow_deferred_init=True) if use_bias else None)

    def hybrid_forward(self, F, x, weight, bias=None):
        op = getattr(F, self._op_name)
        return op(*self._op_inputs(F, x, weight, bias), num_hidden=self._units, flatten=self._flatten,
                  no_bias=bias is None, name='fwd', **self._node_kwargs(weight))


class _BinaryConv2D(_BinaryBase):
    """2-D convolution with binary weights (see the module docstring).

    Zero padding as MXNet's ``Convolution``: with binary inputs the padded border holds 0,
    not -1 (the xnor-popcount op reproduces this with a correction term).

    Parameters
    ----------
    channels : int
        Output channels.
    kernel_size, strides, padding, dilation : int or pair of int
    groups : int
    use_bias : bool
        Default False: a BatchNorm normally follows.
    in_channels : int
        0 = deferred.
    mode, clip_value, input_is_binary
        As for the Dense layers.
    op_name : str or None
        Operator of ``F`` to call (default ``'Convolution'``; ``'xnor_conv2d'`` for the C++
        op once loaded).

    Inputs: ``data`` (batch, in_channels, height, width).
    Outputs: (batch, channels, out_height, out_width).

    Warns
    -----
    UserWarning
        1x1 kernel (binary 1x1 convolutions lose too much expressiveness).
    """

    _op_name = 'Convolution'

    def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1,
                 use_bias=False, in_channels=0, weight_initializer=None,
                 bias_initializer='zeros', **kwargs):
        super().__init__(**kwargs)
        if int(channels) < 1:
            raise ValueError('%s: channels must be >= 1, got %r' % (type(self).__name__,
                                                                    channels))
        kernel = pair(kernel_size, 'kernel_size')
        warn_if_pointwise(kernel, '%s %s' % (type(self).__name__, self.prefix.rstrip('_')))
        self._kwargs = {'kernel': kernel, 'stride': pair(strides, 'strides'),
                        'pad': pair(padding, 'padding'), 'dilate': pair(dilation, 'dilation'),
                        'num_filter': int(channels), 'num_group': int(groups)}
        with self.name_scope():
            self.weight = self.params.get(
                'weight', shape=(int(channels), in_channels // int(groups)) + kernel,
                init=weight_initializer, wd_mult=0.0, allow_deferred_init=True)
            self.bias = (self.params.get('bias', shape=(int(channels),), init=bias_initializer,
                                         allow_deferred_init=True) if use_bias else None)

    def hybrid_forward(self, F, x, weight, bias=None):
        op = getattr(F, self._op_name)
        return op(*self._op_inputs(F, x, weight, bias), no_bias=bias is None, name='fwd', **dict(self._kwargs,
                                                                   **self._node_kwargs(weight)))


class BinaryConnectDense(_BinaryDense):
    """BinaryConnect fully connected layer: weights sign(W) (or stochastic), float inputs.

    Courbariaux, Bengio, David (2015), BinaryConnect. See :class:`_BinaryDense` for arguments.
    """


class BinaryConnectConv2D(_BinaryConv2D):
    """BinaryConnect convolution: weights sign(W) (or stochastic), float inputs.

    Courbariaux et al. (2015). See :class:`_BinaryConv2D` for arguments.
    """


class BWNDense(_BinaryDense):
    """Binary-Weight-Network fully connected layer: weights alpha_o * sign(W), float inputs.

    Rastegari et al. (2016), XNOR-Net paper, BWN: ``alpha_o = mean |W[o, :]|``.
    """
    _alpha = True


class BWNConv2D(_BinaryConv2D):
    """Binary-Weight-Network convolution: weights alpha_o * sign(W), float inputs.

    Rastegari et al. (2016): ``alpha_o = mean |W[o, :, :, :]|`` per output channel.
    """
    _alpha = True


class XNORDense(_BinaryDense):
    """XNOR fully connected layer: inputs sign(x) (STE), weights alpha_o * sign(W).

    Rastegari et al. (2016). The input scale K of the paper is left to the BatchNorm that
    follows (as in BNN practice); the weight scale alpha is kept.
    """
    _alpha = True
    _binarize_input = True


class XNORConv2D(_BinaryConv2D):
    """XNOR convolution: inputs sign(x) (STE), weights alpha_o * sign(W); zero padding.

    Rastegari et al. (2016). ``_op_name = 'xnor_conv2d'`` switches to the C++ xnor-popcount op.
    """
    _alpha = True
    _binarize_input = True


def clip_latent_weights(block):
    """Clip the latent weights of every binary layer in ``block`` (call after ``trainer.step``).

    The Gluon counterpart of :class:`mxcompress.binary.optimizer.LatentClipAdam` for Module
    training: BinaryConnect keeps the latent weights in [-1, 1] after each update.

    Returns
    -------
    int
        Number of layers clipped.
    """
    clipped = []

    def _clip(child):
        if isinstance(child, _BinaryBase):
            child.clip_latent()
            clipped.append(child)
    block.apply(_clip)
    return len(clipped)
