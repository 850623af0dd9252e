"""The contract of a binary training graph: the node attributes every binary layer carries.

Written by the binary layers (:func:`binary_attrs`, used by :mod:`.layers` and the
``symbols/bnn.py`` builders) and read by the optimizer that clips latent weights
(:mod:`.optimizer`), the footprint report (:mod:`.footprint`) and the xnor-popcount converter
(:mod:`.convert`). Every binary ``Convolution`` or ``FullyConnected`` node carries:

``__binary_weight__``
    ``'sign'`` (weight = sign(W), BinaryConnect, Courbariaux et al. 2015) or ``'sign_alpha'``
    (weight = alpha_o * sign(W) with alpha_o = mean |W[o, ...]| per output channel ``o``:
    BWN / XNOR-Net, Rastegari et al. 2016).
``__binary_input__``
    ``'true'`` if the node's data input is sign-binarised (1-bit activations, values exactly
    +-1), else ``'false'``.
``__latent_weight__``
    Name of the float latent weight variable ``W`` (an argument of the graph, shape
    ``(num_filter, C_in, kh, kw)`` or ``(num_hidden, in)``, kept in [-1, 1], ``__wd_mult__ =
    0``).

The binarised weight fed to the node's ``weight`` input is computed in the graph from the
latent variable (``BlockGrad(sign(W)) + (clip(W) - BlockGrad(clip(W)))``: forward exactly
+-1, straight-through Htanh gradient; times alpha). Sign convention: ``sign(x) = +1 for
x >= 0, -1 for x < 0``. Convolutions zero-pad their +-1 inputs (the padded border contributes
0, not -1). Binary convolutions have no bias (a BatchNorm follows).

A quantised activation (``symbols.bnn.BatchNorm(num_bits=...)``) carries :data:`ACT_BITS`
(its ``num_bits``): that is how the next convolution knows whether its input is binary.
"""
__all__ = ['BINARY_WEIGHT', 'BINARY_INPUT', 'LATENT_WEIGHT', 'ACT_BITS', 'WEIGHT_KINDS',
           'binary_attrs', 'check_attrs', 'latent_weight_of']

BINARY_WEIGHT = '__binary_weight__'
BINARY_INPUT = '__binary_input__'
LATENT_WEIGHT = '__latent_weight__'
ACT_BITS = '__act_bits__'
#: values of :data:`BINARY_WEIGHT`
WEIGHT_KINDS = ('sign', 'sign_alpha')


def binary_attrs(alpha, binary_input, latent_name):
    """The contract attributes of a binary Convolution / FullyConnected node."""
    return {BINARY_WEIGHT: 'sign_alpha' if alpha else 'sign',
            BINARY_INPUT: 'true' if binary_input else 'false',
            LATENT_WEIGHT: latent_name}


def latent_weight_of(attrs):
    """The latent weight's name of a node's attributes, or None for a non-binary node."""
    return attrs.get(LATENT_WEIGHT)


def check_attrs(name, attrs, arg_params):
    """Check one binary node's contract attributes against the checkpoint's params.

    Raises
    ------
    ValueError
        A value outside the contract, or a latent weight missing from ``arg_params`` (the
        message names the layer and the attribute).
    """
    mode = attrs.get(BINARY_WEIGHT, 'sign')
    if mode not in WEIGHT_KINDS:
        raise ValueError('layer %s: %s must be sign or sign_alpha, got %r'
                         % (name, BINARY_WEIGHT, mode))
    flag = attrs.get(BINARY_INPUT, 'false')
    if flag not in ('true', 'false'):
        raise ValueError('layer %s: %s must be true or false, got %r' % (name, BINARY_INPUT, flag))
    latent = attrs[LATENT_WEIGHT]
    if latent not in arg_params:
        raise ValueError('layer %s: latent weight %r (%s) is not in the params'
                         % (name, latent, LATENT_WEIGHT))
