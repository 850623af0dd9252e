"""Quantisers of binary and low-bit networks: pure functions of ``F`` (``mx.nd`` or ``mx.sym``).

Every function takes the operator namespace ``F`` first, so the same maths runs on NDArrays
(imperative, autograd), on Symbols (a Module graph, a saved ``-symbol.json``) and inside a
HybridBlock's ``hybrid_forward``. Only MXNet built-in operators are used, so a saved training
graph loads with ``mx.sym.load`` and runs without any custom op.

Sign convention (the whole project, including the C++ xnor-popcount op)::

    sign(x) = +1 if x >= 0 else -1          (zero maps to +1)

Straight-through estimators are built from built-in operators in the ``x_clip +
BlockGrad(q(x) - x_clip)`` style, arranged as ``BlockGrad(q(x)) + (x_clip - BlockGrad(x_clip))``
so that the forward value is ``q(x)`` *exactly* (``x_clip - x_clip`` is exactly 0, whereas
``x_clip + (q - x_clip)`` can round to 0.99999994); the backward pass sees only
``clip(x, -c, c)``, whose gradient is 1 where ``|x| <= c`` and 0 elsewhere (MXNet's ``clip``
gradient is inclusive at the bounds).

Quantisers are registered by name with :func:`register_quantizer`; :func:`get_quantizer`
looks one up and raises ``ValueError`` listing the valid names.

References
----------
Courbariaux, Bengio, David (2015). BinaryConnect: Training deep neural networks with binary
weights during propagations. NIPS.
Courbariaux, Hubara, Soudry, El-Yaniv, Bengio (2016). Binarized neural networks: training
neural networks with weights and activations constrained to +1 or -1. arXiv:1602.02830.
Rastegari, Ordonez, Redmon, Farhadi (2016). XNOR-Net. ECCV.
Zhou et al. (2016). DoReFa-Net: training low bitwidth convolutional neural networks with low
bitwidth gradients. arXiv:1606.06160.
"""
import numbers
import warnings

__all__ = ['register_quantizer', 'get_quantizer', 'quantizer_names', 'check_num_bits',
           'check_clip_value', 'sign', 'hard_sigmoid', 'ste_sign', 'stochastic_sign',
           'stochastic_ste_sign', 'htanh', 'quantize_activation', 'bwn_alpha', 'binarize_weight',
           'WEIGHT_MODES', 'MAX_USEFUL_BITS']

_QUANTIZERS = {}

#: binarisation modes of weights: deterministic sign or stochastic (hard-sigmoid) sampling
WEIGHT_MODES = ('deterministic', 'stochastic')
#: activation bit widths above this warn (little accuracy gain for much more compute; cf.
#: DoReFa-Net, Zhou et al. 2016)
MAX_USEFUL_BITS = 4


def register_quantizer(name):
    """Decorator registering a quantiser function under ``name``."""
    def _register(func):
        if name in _QUANTIZERS:
            raise ValueError('quantizer %r is already registered' % name)
        _QUANTIZERS[name] = func
        return func
    return _register


def quantizer_names():
    """Sorted names of the registered quantisers."""
    return sorted(_QUANTIZERS)


def get_quantizer(name):
    """The quantiser registered as ``name``.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    """
    try:
        return _QUANTIZERS[name]
    except (KeyError, TypeError):
        raise ValueError('unknown quantizer %r; valid quantizers: %s'
                         % (name, ', '.join(quantizer_names()))) from None


def check_num_bits(num_bits, argument='num_bits', where=''):
    """Validate an activation bit width: an integer in 1..8; above 4 warns.

    Parameters
    ----------
    num_bits : int
    argument : str
        Argument name used in the messages.
    where : str
        Layer or function name added to the messages.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Not an integer in 1..8.
    """
    place = ' (%s)' % where if where else ''
    if isinstance(num_bits, bool) or not isinstance(num_bits, numbers.Integral) \
            or not 1 <= num_bits <= 8:
        raise ValueError('%s must be an integer in 1..8%s, got %r' % (argument, place, num_bits))
    if num_bits > MAX_USEFUL_BITS:
        warnings.warn('%s=%d%s: activations above %d bits give little accuracy gain for much '
                      'more compute (design note of the binary-network family)'
                      % (argument, num_bits, place, MAX_USEFUL_BITS), UserWarning, stacklevel=3)
    return int(num_bits)


def check_clip_value(clip_value, argument='clip_value', where=''):
    """Validate a clipping bound: a finite number > 0. Returns it as float."""
    place = ' (%s)' % where if where else ''
    try:
        value = float(clip_value)
    except (TypeError, ValueError):
        raise ValueError('%s must be a positive number%s, got %r'
                         % (argument, place, clip_value)) from None
    if not value > 0 or value == float('inf'):
        raise ValueError('%s must be a positive finite number%s, got %r'
                         % (argument, place, clip_value))
    return value


@register_quantizer('sign')
def sign(F, x):
    """Deterministic sign, no gradient.

    Forward: ``sign(x) = +1 if x >= 0 else -1`` (zero maps to +1).
    Gradient: 0 everywhere (comparison operators have no gradient); use :func:`ste_sign` to
    train through it.
    Paper: Courbariaux et al. (2015), eq. 1 (deterministic binarisation).

    Parameters
    ----------
    F : module
        ``mx.nd`` or ``mx.sym``.
    x : NDArray or Symbol, any shape

    Returns
    -------
    Same type and shape as ``x``, values in {-1, +1}.
    """
    return (x >= 0) * 2 - 1


def hard_sigmoid(F, x):
    """``clip((x + 1) / 2, 0, 1)`` (Courbariaux et al. 2015, eq. 3)."""
    return F.clip((x + 1) * 0.5, 0, 1)


@register_quantizer('stochastic_sign')
def stochastic_sign(F, x):
    """Stochastic binarisation, no gradient.

    Forward: +1 with probability ``p = hard_sigmoid(x) = clip((x + 1) / 2, 0, 1)``, else -1.
    Implemented as ``sign(p - u)`` with ``u ~ U[0, 1)`` drawn afresh on every call (so
    ``P(+1) = P(u <= p) = p``).
    Gradient: 0 (see :func:`stochastic_ste_sign`).
    Paper: Courbariaux et al. (2015), eq. 2-3.
    """
    u = F.random.uniform_like(x, low=0.0, high=1.0)
    return sign(F, hard_sigmoid(F, x) - u)


@register_quantizer('htanh')
def htanh(F, x, clip_value=1.0):
    """Hard tanh ``clip(x, -c, c)``: the surrogate whose gradient the STE uses.

    Forward: ``max(-c, min(c, x))``. Gradient: 1 where ``|x| <= c``, else 0.
    """
    c = check_clip_value(clip_value)
    return F.clip(x, -c, c)


def _straight_through(F, x, q, clip_value):
    """``q`` forward, the gradient of ``clip(x, -c, c)`` backward."""
    x_clip = F.clip(x, -clip_value, clip_value)
    return F.BlockGrad(q) + (x_clip - F.BlockGrad(x_clip))


@register_quantizer('ste_sign')
def ste_sign(F, x, clip_value=1.0):
    """Deterministic sign with the straight-through Htanh gradient.

    Forward: ``sign(x)`` (+1 for x >= 0, -1 for x < 0).
    Gradient: ``dL/dx = dL/dy * 1{|x| <= clip_value}`` (the gradient of Htanh; Courbariaux et
    al. 2016, section 1.3, "straight-through estimator" with cancellation for large |x|).
    Graph: ``BlockGrad(sign(x)) + (clip(x, -c, c) - BlockGrad(clip(x, -c, c)))``.

    Parameters
    ----------
    F : module
        ``mx.nd`` or ``mx.sym``.
    x : NDArray or Symbol, any shape
    clip_value : float
        ``c > 0``; the gradient is cancelled where ``|x| > c``.
    """
    c = check_clip_value(clip_value)
    return _straight_through(F, x, sign(F, x), c)


@register_quantizer('stochastic_ste_sign')
def stochastic_ste_sign(F, x, clip_value=1.0):
    """Stochastic binarisation with the straight-through Htanh gradient.

    Forward: +1 with probability ``hard_sigmoid(x)``, else -1 (fresh noise per call).
    Gradient: 1 where ``|x| <= clip_value``, else 0.
    Paper: Courbariaux et al. (2015), BinaryConnect stochastic.
    """
    c = check_clip_value(clip_value)
    return _straight_through(F, x, stochastic_sign(F, x), c)


@register_quantizer('uniform')
def quantize_activation(F, x, num_bits=1, clip_value=1.0):
    """Quantise activations to ``num_bits`` with a straight-through gradient.

    Forward:

    - ``num_bits == 1``: ``sign(x)`` in {-1, +1} (BinActiv of XNOR-Net, Rastegari et al.
      2016; BNN, Courbariaux et al. 2016).
    - ``num_bits = k in 2..8``: uniform on the symmetric range [-c, c] with ``2^k`` levels,
      ``q = c * (2 * round((clip(x, -c, c) / c + 1) / 2 * (2^k - 1)) / (2^k - 1) - 1)``.
      The range is [-1, 1] (not [0, 1]) so that every k shares the 1-bit case's range and
      symmetry after BatchNorm; 2 bits give {-1, -1/3, 1/3, 1}. ``round`` rounds halves away
      from zero.

    Gradient: 1 where ``|x| <= c``, else 0 (Htanh straight-through; DoReFa-Net uses the same
    estimator for its uniform quantiser).

    Parameters
    ----------
    F : module
    x : NDArray or Symbol, any shape
    num_bits : int
        1..8; above 4 warns (design note: little gain, much more compute).
    clip_value : float
        ``c > 0``.

    Raises
    ------
    ValueError
        ``num_bits`` outside 1..8 or ``clip_value`` not positive.
    """
    bits = check_num_bits(num_bits)
    c = check_clip_value(clip_value)
    if bits == 1:
        return ste_sign(F, x, c)
    levels = float(2 ** bits - 1)
    x_clip = F.clip(x, -c, c)
    q = (F.round((x_clip / c + 1) * (levels / 2)) * (2.0 / levels) - 1) * c
    return F.BlockGrad(q) + (x_clip - F.BlockGrad(x_clip))


def bwn_alpha(F, weight, keepdims=False):
    """Per-output-channel scale of binary weights: ``alpha_o = mean |W[o, ...]|``.

    Rastegari et al. (2016), BWN / XNOR-Net: the scale that minimises
    ``||W - alpha * sign(W)||^2`` for each output channel ``o`` (first axis).

    Parameters
    ----------
    F : module
        ``mx.nd`` or ``mx.sym``.
    weight : NDArray or Symbol, shape (out, ...)
    keepdims : bool
        Keep the reduced axes (shape (out, 1, ...), ready to broadcast against ``weight``);
        else shape (out,).
    """
    return F.mean(F.abs(weight), axis=0, exclude=True, keepdims=keepdims)


def binarize_weight(F, weight, mode='deterministic', alpha=False, clip_value=1.0):
    """Binary weight from a float latent weight, with the straight-through gradient.

    Forward: ``w_b = s(W)`` or, with ``alpha``, ``w_b = alpha_o * s(W)`` where ``s`` is
    :func:`ste_sign` (``mode='deterministic'``) or :func:`stochastic_ste_sign`, and
    ``alpha_o = mean(|W[o, ...]|)`` per output channel ``o`` (first axis) -- Rastegari et al.
    (2016), BWN, eq. 4-6.
    Gradient: ``dL/dW = dL/dw_b * 1{|W| <= c}`` (times alpha) plus, with ``alpha``, the
    gradient through ``alpha = mean|W|``, as autograd derives it (XNOR-Net's eq. 7 has the same
    two terms).

    Parameters
    ----------
    F : module
    weight : NDArray or Symbol, shape (out, ...) -- (out, in) for Dense, (out, in, kh, kw) for
        Conv2D.
    mode : {'deterministic', 'stochastic'}
    alpha : bool
        Scale by the per-output-channel mean absolute latent weight.
    clip_value : float
        ``c > 0`` of the straight-through gradient.

    Returns
    -------
    Same shape as ``weight``; every row ``o`` takes exactly the values ``+-alpha_o`` (or +-1).

    Raises
    ------
    ValueError
        Unknown ``mode``, non-positive ``clip_value``.
    """
    if mode not in WEIGHT_MODES:
        raise ValueError('mode must be one of %s, got %r' % (', '.join(WEIGHT_MODES), mode))
    quant = ste_sign if mode == 'deterministic' else stochastic_ste_sign
    binary = quant(F, weight, clip_value)
    if not alpha:
        return binary
    # alpha_o = mean |W[o, ...]|: reduce every axis but the first, shape (out, 1, ...)
    # (an elementwise product with ones_like(binary) * alpha, so that shape inference can run
    # backward from the Convolution to a latent weight declared with unknown input channels)
    scale = bwn_alpha(F, weight, keepdims=True)
    return binary * F.broadcast_mul(F.ones_like(binary), scale)
