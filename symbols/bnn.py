"""Binary-network Symbol API: ``bnn.BatchNorm`` and ``bnn.Convolution`` (as in BMXNet,
Yang et al. 2017).

XNOR-Net's binary module (Rastegari et al. 2016) is ``BNorm -> BinActiv -> BinConv -> Pool``: BatchNorm centres
the input, the activation is binarised to +-1 (or quantised to ``num_bits``), then a
binary-weight convolution follows. ``bnn.BatchNorm(data=..., num_bits=...)`` is the first two
steps, ``bnn.Convolution(data=..., num_filter=, kernel=, stride=, pad=)`` the third, with the
keyword arguments the binary ``residual_unit`` uses. Both build MXNet built-in operators
only (the maths of :mod:`mxcompress.binary.quantizers` and :mod:`mxcompress.binary.layers`),
so a saved ``-symbol.json`` loads with ``mx.sym.load`` and runs without custom ops.

Every binary node carries the attributes of the binary-graph contract
(:mod:`mxcompress.binary.contract`): ``__binary_weight__``, ``__binary_input__`` and
``__latent_weight__``, read by the xnor-popcount converter and the latent-clipping optimizer.

The output of ``bnn.BatchNorm`` carries ``__act_bits__`` (its ``num_bits``); that is how
``bnn.Convolution`` knows whether its input is binary.
"""
import warnings

import mxnet as mx

from mxcompress.binary.layers import BinaryConnectConv2D, BWNConv2D
from mxcompress.binary.quantizers import check_num_bits, quantize_activation

__all__ = ['BatchNorm', 'Convolution', 'BinActiv']


def _auto_name(name, hint):
    """The current NameManager's name for ``name`` (or next name for ``hint`` when None), as
    MXNet's own operators are named (an ``mx.name.Prefix`` applies)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return mx.name.NameManager.current.get(name, hint)


def BinActiv(data, num_bits=1, name=None, clip_value=1.0):
    """XNOR-Net's BinActiv: activations quantised to ``num_bits`` (1 = sign).

    Straight-through Htanh gradient; 2..8 bits are uniform on [-1, 1]
    (:func:`mxcompress.binary.quantizers.quantize_activation`). Above 4 bits warns.

    Returns
    -------
    mx.sym.Symbol, same shape as ``data``; its node carries ``__act_bits__``.
    """
    bits = check_num_bits(num_bits, where=name or 'bnn.BinActiv')
    name = _auto_name(name, 'bnn_binactiv')
    with mx.name.Prefix(name + '_'), mx.AttrScope(__act_bits__=str(bits)):
        return quantize_activation(mx.sym, data, bits, clip_value)


def BatchNorm(data, num_bits=1, name=None, fix_gamma=False, momentum=0.9, eps=1e-5,
              **kwargs):
    """BatchNorm followed by activation quantisation to ``num_bits``: BNorm -> BinActiv.

    Parameters
    ----------
    data : mx.sym.Symbol, (N, C, H, W) or (N, C)
    num_bits : int
        1 (sign, +-1) .. 8; above 4 warns (little accuracy gain, much more compute).
    name : str or None
        BatchNorm node name (auto-named, respecting ``mx.name.Prefix``, when None); the
        quantiser ops are named ``name + '_...'``.
    fix_gamma, momentum, eps, **kwargs
        ``mx.sym.BatchNorm`` options (gamma is learned by default).

    Returns
    -------
    mx.sym.Symbol, same shape as ``data``, values in {-1, +1} for ``num_bits=1``.

    Raises
    ------
    ValueError
        ``num_bits`` outside 1..8.
    """
    check_num_bits(num_bits, where=name or 'bnn.BatchNorm')
    bn = mx.sym.BatchNorm(data=data, fix_gamma=fix_gamma, momentum=momentum, eps=eps,
                          name=name, **kwargs)
    with warnings.catch_warnings():  # the bits were checked (and warned about) above
        warnings.simplefilter('ignore', UserWarning)
        with mx.name.Prefix(''):  # bn.name is complete: no second prefix
            return BinActiv(bn, num_bits, name=bn.name + '_binact')


def Convolution(data, num_filter, kernel, stride=(1, 1), pad=(0, 0), name=None, alpha=True,
                mode='deterministic', dilate=(1, 1), num_group=1, binary_input=None):
    """Binary-weight convolution (BinConv), zero padding, no bias.

    Parameters
    ----------
    data : mx.sym.Symbol, (N, C, H, W)
    num_filter : int
    kernel, stride, pad, dilate : pair of int
    name : str or None
        Layer name; the latent weight is ``name + '_weight'`` (auto-named when None).
    alpha : bool
        True: weights alpha_o * sign(W) (XNOR-Net / BWN scaling, ``'sign_alpha'``); False:
        sign(W) (BNN of Courbariaux et al. 2016, ``'sign'``).
    mode : {'deterministic', 'stochastic'}
        Weight binarisation.
    binary_input : bool or None
        ``__binary_input__``; None: true when ``data`` comes from ``bnn.BatchNorm`` /
        ``BinActiv`` with ``num_bits=1``.

    Returns
    -------
    mx.sym.Symbol, (N, num_filter, H', W')

    Warns
    -----
    UserWarning
        1x1 kernel: binary 1x1 convolutions lose too much expressiveness.
    """
    name = _auto_name(name, 'bnn_conv')
    if binary_input is None:
        binary_input = data.attr('__act_bits__') == '1'
    layer_class = BWNConv2D if alpha else BinaryConnectConv2D
    layer = layer_class(num_filter, kernel, strides=stride, padding=pad, dilation=dilate,
                        groups=num_group, mode=mode, input_is_binary=binary_input,
                        prefix=name + '_')
    return layer(data)
