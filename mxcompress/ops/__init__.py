"""The C++ operator library: ``xnor_conv2d``, a bit-packed xnor-popcount convolution.

Load it once per process, then use the op as ``mx.nd.xnor_conv2d``, ``mx.sym.xnor_conv2d``
or ``F.xnor_conv2d`` in a HybridBlock::

    import mxcompress.ops
    mxcompress.ops.load()          # mx.library.load(<absolute path>/libmxcompress_ops.so)

A saved ``-symbol.json`` containing ``xnor_conv2d`` can only be read after this call.

Semantics (see ``src/xnor_kernel.h``)::

    xnor_conv2d(data, weight, alpha[, bias], kernel, num_filter, stride, pad, dilate, no_bias)
      = alpha[o] * Convolution(sign(data), sign(W))[n, o, y, x] (+ bias[o])

with sign(v) = +1 for v >= 0 and -1 for v < 0 (the project-wide rule), zero padding exactly as
a float ``Convolution`` on +-1 inputs (the padded taps contribute 0; the kernel corrects its
popcount for them), and ``weight = pack_weights(W)``: the sign bits of W packed along the
input channels, 1 bit per weight: ceil(C / 8) bytes per tap (XNOR-Net, Rastegari et al.,
ECCV 2016).

With ``input_threshold=True`` two more inputs follow, ``in_scale`` and ``in_threshold``
(float32, shape (C,)), and the input is binarised per channel instead: -1 where
``data * in_scale[c] < in_threshold[c]``, else +1. An inference ``BatchNorm`` followed by
sign folds into them (:func:`mxcompress.binary.convert.batchnorm_threshold`), so the
converter feeds the op the BatchNorm's input and the BatchNorm pass over the activations
disappears. With ``residual=True`` a last input ``residual`` (float32, the output's shape)
is added to the output in the epilogue (a residual block's shortcut).

Bit-packed activations between binary layers: with ``output_threshold=True`` two more inputs
``out_scale``, ``out_threshold`` (float32, (O,)) follow and the op returns, instead of its
float output ``y`` (N, O, OH, OW), the binarisation of ``y`` a following conv would apply,
bit-packed: uint8 (N, OH, OW, ceil(O / 8)), bit 1 (-1) where
``y * out_scale[o] < out_threshold[o]`` (NaN: 0), channel o at bit o % 8 of byte o // 8 of
a pixel (the weights' tap layout), unused high bits 0. With ``packed_input=True`` and
``in_channels=C`` the op reads such bits, ``data`` uint8 (N, H, W, ceil(C / 8)), instead of a
float input (no ``input_threshold`` then: the bits are already binarised). A conv emitting
bits into a conv reading them equals the float chain conv -> conv(input_threshold) exactly,
with no float activations in between (:func:`pack_activations` /
:func:`unpack_activations` convert in numpy). Give the param
variables their shapes (``mx.sym.var(name, shape=...)``) when
building a graph by hand: MXNet 1.9 sizes a library op's shape buffer by the sum of its
inputs' known dimensions, and several inputs of unknown shape overrun it.
"""
import ctypes
import os
import threading

import numpy as np

from ..graph import pair
from .build import LIBRARY_NAME, OpsBuildError, build_library, source_files

__all__ = ['load', 'is_loaded', 'library_path', 'kernel_name', 'pack_weights',
           'unpack_weights', 'pack_activations', 'unpack_activations',
           'packed_channels_bytes', 'workspace_bytes', 'OpsBuildError']

_LOCK = threading.Lock()
_LOADED = {}


def library_path():
    """Absolute path of the library: ``$MXCOMPRESS_OPS_LIB`` or the one beside this file."""
    env = os.environ.get('MXCOMPRESS_OPS_LIB')
    if env:
        return os.path.abspath(env)
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)


def _stale(path):
    try:
        built = os.path.getmtime(path)
        return any(os.path.getmtime(src) > built for src in source_files())
    except OSError:
        return False


def load(path=None, build=True):
    """Load the operator library into MXNet once per process (later calls do nothing).

    Parameters
    ----------
    path : str or None
        The ``.so`` to load (default :func:`library_path`).
    build : bool
        Compile the library first when it is missing (or older than its sources), using the
        installed MXNet's ``lib_api`` (see :mod:`mxcompress.ops.build`).

    Returns
    -------
    str
        The absolute path of the loaded library.

    Raises
    ------
    OpsBuildError
        The library is missing and cannot be built (no compiler: the message says what to do).
    FileNotFoundError
        The library is missing and ``build`` is False.
    """
    import mxnet as mx
    path = os.path.abspath(path or library_path())
    with _LOCK:
        if _LOADED:
            if path not in _LOADED:
                raise RuntimeError('the xnor ops library is already loaded from %s; MXNet '
                                   'cannot load a second copy (%s)' % (next(iter(_LOADED)), path))
            return path
        missing = not os.path.isfile(path)
        if build and (missing or (_stale(path) and os.access(os.path.dirname(path), os.W_OK))):
            build_library(path)
        elif missing:
            raise FileNotFoundError('xnor ops library not found: %s (build it with '
                                    '`python -m mxcompress.ops.build` or `pip install .`)' % path)
        mx.library.load(path, verbose=False)
        _LOADED[path] = ctypes.CDLL(path)
    return path


def is_loaded():
    """True once :func:`load` has run in this process."""
    return bool(_LOADED)


def _lib():
    if not _LOADED:
        load()
    return next(iter(_LOADED.values()))


def kernel_name():
    """``'avx512'``, ``'avx2'`` or ``'portable'``: the kernel the op runs on this CPU.

    ``auto`` picks AVX-512 (VPOPCNTQ) when the CPU has AVX512F, AVX512VL, AVX512BW and
    AVX512_VPOPCNTDQ, else AVX2 (vpshufb table popcount) when it has AVX2 and POPCNT, else the
    portable C++ kernel.
    The environment variable ``MXCOMPRESS_XNOR_KERNEL=auto|portable|avx2|avx512`` chooses
    another; a kernel the CPU lacks falls back to the next one down."""
    return KERNEL_NAMES[_lib().mxcompress_xnor_kernel()]


#: kernel codes of the library (xnor::Kernel) -> names
KERNEL_NAMES = {1: 'portable', 2: 'avx2', 3: 'avx512'}


def available_kernels():
    """The kernels this CPU runs, fastest first (each selectable with
    ``MXCOMPRESS_XNOR_KERNEL``)."""
    names = []
    saved = os.environ.get('MXCOMPRESS_XNOR_KERNEL')
    try:
        for name in ('avx512', 'avx2', 'portable'):
            os.environ['MXCOMPRESS_XNOR_KERNEL'] = name
            if kernel_name() == name:
                names.append(name)
    finally:
        if saved is None:
            os.environ.pop('MXCOMPRESS_XNOR_KERNEL', None)
        else:
            os.environ['MXCOMPRESS_XNOR_KERNEL'] = saved
    return names


def _geometry_args(shape, kernel, stride, pad, dilate):
    kh, kw = pair(kernel, 'kernel')
    sh, sw = pair(stride, 'stride')
    ph, pw = pair(pad, 'pad')
    dh, dw = pair(dilate, 'dilate')
    return [ctypes.c_longlong(v) for v in tuple(shape) + (kh, kw, sh, sw, ph, pw, dh, dw)]


def workspace_bytes(data_shape, num_filter, kernel, stride=1, pad=0, dilate=1,
                    packed_output=False):
    """Peak extra bytes of one call: the workspace the op allocates (bit-packed input,
    border table, offsets) plus the private buffers of its threads and, with
    ``packed_output``, the pixel masks of a bit-packed output (N * OH * ceil(OW / 8) * O
    bytes)."""
    lib = _lib()
    lib.mxcompress_xnor_workspace_bytes.restype = ctypes.c_longlong
    args = _geometry_args(data_shape, kernel, stride, pad, dilate)
    return int(lib.mxcompress_xnor_workspace_bytes(*(args[:4] + [ctypes.c_longlong(num_filter)]
                                                     + args[4:]
                                                     + [ctypes.c_int(bool(packed_output))])))


def packed_channels_bytes(channels):
    """Bytes per kernel tap of packed weights: ceil(C / 8)."""
    return (int(channels) + 7) // 8


def pack_weights(weight):
    """Pack the signs of float weights into the op's bit layout.

    Parameters
    ----------
    weight : array-like, shape (O, C, KH, KW)
        Float (latent or binarised) weights; only their signs are kept:
        bit 1 where W < 0 (-1), bit 0 where W >= 0 (+1).

    Returns
    -------
    numpy.ndarray, uint8, shape (O, KH, KW, ceil(C / 8))
        Per tap, channel c is bit c % 8 of byte c // 8 (1 bit per weight; the op reads the
        bytes as little-endian 64-bit words, bit c % 64 of word c // 64); the unused high
        bits of the last byte are zero.
    """
    w = _asnumpy(weight)
    if w.ndim != 4:
        raise ValueError('pack_weights: weight must be 4-D (O, C, KH, KW), got shape %s'
                         % (w.shape,))
    o, c, kh, kw = w.shape
    bits = np.zeros((o, kh, kw, 8 * packed_channels_bytes(c)), dtype=bool)
    bits[..., :c] = np.transpose(w < 0, (0, 2, 3, 1))
    return np.packbits(bits, axis=-1, bitorder='little')


def unpack_weights(packed, channels):
    """Inverse of :func:`pack_weights`: +-1 float32 weights of shape (O, C, KH, KW)."""
    p = _asnumpy(packed)
    if p.ndim != 4 or p.dtype != np.uint8 or p.shape[-1] != packed_channels_bytes(channels):
        raise ValueError('unpack_weights: packed must be uint8 (O, KH, KW, %d) for %d channels,'
                         ' got %s %s' % (packed_channels_bytes(channels), channels, p.dtype,
                                         p.shape))
    bits = np.unpackbits(p, axis=-1, bitorder='little')[..., :channels]
    return np.transpose(np.where(bits, -1.0, 1.0).astype(np.float32), (0, 3, 1, 2))


def pack_activations(x, scale=None, threshold=None):
    """Binarise float activations and bit-pack them: the input of ``xnor_conv2d(...,
    packed_input=True)`` and the layout of its ``output_threshold`` output (numpy reference).

    Parameters
    ----------
    x : array-like, float32, shape (N, C, H, W)
    scale, threshold : array-like, float32, shape (C,), or None
        Per-channel binarisation: -1 where ``x * scale[c] < threshold[c]`` (the op's
        ``input_threshold`` / ``output_threshold`` rule, in float32; NaN gives +1); without
        them -1 where ``x < 0`` (sign, zero is +1).

    Returns
    -------
    numpy.ndarray, uint8, shape (N, H, W, ceil(C / 8))
        Per pixel, channel c is bit c % 8 of byte c // 8, 1 for -1 (the weights' tap layout);
        the unused high bits of the last byte are zero.
    """
    x = np.asarray(_asnumpy(x), np.float32)
    if x.ndim != 4:
        raise ValueError('pack_activations: x must be 4-D (N, C, H, W), got shape %s'
                         % (x.shape,))
    n, c, h, w = x.shape
    if scale is None and threshold is None:
        below = x < 0
    elif scale is None or threshold is None:
        raise ValueError('pack_activations: give both scale and threshold, or neither')
    else:
        shape = (1, c, 1, 1)
        scale = np.asarray(_asnumpy(scale), np.float32).reshape(shape)
        threshold = np.asarray(_asnumpy(threshold), np.float32).reshape(shape)
        with np.errstate(invalid='ignore'):
            below = (x * scale) < threshold
    bits = np.zeros((n, h, w, 8 * packed_channels_bytes(c)), dtype=bool)
    bits[..., :c] = np.transpose(below, (0, 2, 3, 1))
    return np.packbits(bits, axis=-1, bitorder='little')


def unpack_activations(packed, channels):
    """Inverse of :func:`pack_activations` (up to the binarisation): +-1 float32 activations
    of shape (N, C, H, W) from uint8 (N, H, W, ceil(C / 8)); bits beyond ``channels`` are
    ignored, as the op ignores them."""
    p = _asnumpy(packed)
    if p.ndim != 4 or p.dtype != np.uint8 or p.shape[-1] != packed_channels_bytes(channels):
        raise ValueError('unpack_activations: packed must be uint8 (N, H, W, %d) for %d '
                         'channels, got %s %s' % (packed_channels_bytes(channels), channels,
                                                  p.dtype, p.shape))
    bits = np.unpackbits(p, axis=-1, bitorder='little')[..., :channels]
    return np.transpose(np.where(bits, -1.0, 1.0).astype(np.float32), (0, 3, 1, 2))


def _asnumpy(a):
    return a.asnumpy() if hasattr(a, 'asnumpy') else np.asarray(a)
