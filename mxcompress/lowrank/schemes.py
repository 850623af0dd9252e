"""Low-rank factorisation schemes: the maths of each, in one place.

A scheme turns one weighted layer into two thinner layers through a truncated SVD of a
2-D matrix made from its weight. Each scheme gives

* ``matrix(W)``: the matrix whose SVD is taken,
* ``factors(W, rank)``: the two layers' weights, with ``sqrt(S)`` on each side
  (``A = U_r sqrt(S_r)``, ``B = sqrt(S_r) V_r^T``; balanced factors fine-tune better than
  ``U_r`` / ``S_r V_r^T``),
* ``build(F, x, v_weight, u_weight, bias, geom, rank, name)``: the two layers with ``F`` =
  ``mx.sym`` or ``mx.nd`` (so one function serves the Gluon blocks and the checkpoint
  rewrite); the first layer is named ``NAME_v`` (no bias), the second ``NAME_u`` (carries the
  original bias),
* ``params(geom, rank)`` / ``macs(geom, rank)``: weight parameters and per-example
  multiply-accumulates of the two layers (bias excluded), linear in the rank.

Schemes
-------
``svd`` (Denton et al. 2014, FullyConnected): ``W (m x n) ~ U_r S_r V_r^T``;
``x -> FC(n -> r, weight sqrt(S_r) V_r^T) -> FC(r -> m, weight U_r sqrt(S_r), bias b)``.
Params ``r (m + n)`` instead of ``m n``.

``channel`` (filter / channel SVD, Denton et al. 2014; Zhang et al. 2015): the kernel
``W (N, C, kh, kw)`` as an ``N x (C kh kw)`` matrix; ``k x k`` conv with ``r`` filters (the
rows of ``sqrt(S_r) V_r^T``, same stride, pad and dilation) followed by a ``1 x 1`` conv
``r -> N`` (``U_r sqrt(S_r)``, original bias). Params ``r (C kh kw + N)``.

``spatial`` (Jaderberg et al. 2014, scheme 2, closed form): ``W`` rearranged as the
``(C kh) x (N kw)`` matrix ``M[(c, i), (n, j)] = W[n, c, i, j]``; with ``M ~ U_K S_K V_K^T``
a ``kh x 1`` conv ``C -> K`` (vertical filters ``U_K sqrt(S_K)``, stride ``(sh, 1)``, pad
``(ph, 0)``) followed by a ``1 x kw`` conv ``K -> N`` (horizontal filters
``sqrt(S_K) V_K^T``, stride ``(1, sw)``, pad ``(0, pw)``, original bias). Params
``K (C kh + N kw)``. Zero padding commutes with the bias-free vertical conv, so at
``K = min(C kh, N kw)`` it is exact.
"""
import numpy as np

__all__ = ['LowRankError', 'SCHEMES', 'get_scheme', 'conv_geometry', 'dense_geometry']


class LowRankError(ValueError):
    """A layer, rank or scheme that cannot be factorised; the message names the layer."""


def _kw(name, suffix):
    return {'name': name + suffix} if name else {}


def dense_geometry(weight_shape, flatten=True, no_bias=False):
    """Geometry of a FullyConnected layer: ``m`` outputs, ``n`` inputs."""
    m, n = (int(v) for v in weight_shape)
    return {'m': m, 'n': n, 'flatten': bool(flatten), 'no_bias': bool(no_bias)}


def conv_geometry(weight_shape, kernel, stride=(1, 1), pad=(0, 0), dilate=(1, 1),
                  num_group=1, in_hw=None, out_hw=None, no_bias=False):
    """Geometry of a 2-D Convolution: ``N, C, kh, kw``, stride, pad, dilation, map sizes.

    ``in_hw`` / ``out_hw`` (input and output ``(H, W)``) are needed for MAC counts only.
    """
    n, c, kh, kw = (int(v) for v in weight_shape)
    return {'N': n, 'C': c, 'kernel': (kh, kw), 'stride': tuple(stride) or (1, 1),
            'pad': tuple(pad) or (0, 0), 'dilate': tuple(dilate) or (1, 1),
            'num_group': int(num_group), 'in_hw': in_hw, 'out_hw': out_hw,
            'no_bias': bool(no_bias)}


def _truncated_svd(matrix, rank):
    u, s, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    return u[:, :rank] * root[None, :], root[:, None] * vt[:rank]


class _Scheme:
    name = None
    ops = ()

    def check(self, geom, layer):
        """Raise :class:`LowRankError` if the scheme cannot factorise this layer."""

    def max_rank(self, geom):
        rows, cols = self.matrix_shape(geom)
        return min(rows, cols)

    def singular_values(self, weight):
        return np.linalg.svd(self.matrix(np.asarray(weight, np.float64)), compute_uv=False)

    def original_params(self, geom):
        return int(np.prod(self.matrix_shape(geom)))


class SVDScheme(_Scheme):
    """FullyConnected ``W (m, n)`` -> ``FC(n -> r)`` then ``FC(r -> m)`` (Denton et al.)."""
    name = 'svd'
    ops = ('FullyConnected',)

    def matrix_shape(self, geom):
        return geom['m'], geom['n']

    def matrix(self, weight):
        return weight

    def factors(self, weight, rank):
        """``(v_weight (r, n), u_weight (m, r))`` with ``u_weight @ v_weight ~ W``."""
        a, b = _truncated_svd(weight, rank)
        return b.astype(np.float32), a.astype(np.float32)

    def params(self, geom, rank):
        return rank * (geom['m'] + geom['n'])

    def macs(self, geom, rank):
        return self.params(geom, rank)

    def original_macs(self, geom):
        return geom['m'] * geom['n']

    def build(self, F, x, v_weight, u_weight, bias, geom, rank, name=None):
        """``FC(FC(x, v_weight), u_weight, bias)``; x (batch, n) -> (batch, m)."""
        h = F.FullyConnected(x, v_weight, num_hidden=rank, no_bias=True,
                             flatten=geom['flatten'], **_kw(name, '_v'))
        if bias is None:
            return F.FullyConnected(h, u_weight, num_hidden=geom['m'], no_bias=True,
                                    flatten=geom['flatten'], **_kw(name, '_u'))
        return F.FullyConnected(h, u_weight, bias, num_hidden=geom['m'],
                                flatten=geom['flatten'], **_kw(name, '_u'))


class _ConvScheme(_Scheme):
    ops = ('Convolution',)

    def check(self, geom, layer):
        if geom['num_group'] != 1:
            raise LowRankError('layer %s: grouped convolution (num_group=%d) is not supported '
                               'by the %s scheme' % (layer, geom['num_group'], self.name))

    def original_macs(self, geom):
        oh, ow = geom['out_hw']
        return geom['N'] * geom['C'] * geom['kernel'][0] * geom['kernel'][1] * oh * ow

    @staticmethod
    def _conv(F, x, weight, bias, filters, kernel, stride, pad, dilate, name):
        extra = {'bias': bias} if bias is not None else {'no_bias': True}
        if name:
            extra['name'] = name
        return F.Convolution(x, weight, num_filter=filters, kernel=kernel, stride=stride,
                             pad=pad, dilate=dilate, **extra)


class ChannelScheme(_ConvScheme):
    """``k x k`` conv with ``N`` filters -> ``k x k`` conv with ``r`` filters + ``1 x 1`` conv."""
    name = 'channel'

    def matrix_shape(self, geom):
        kh, kw = geom['kernel']
        return geom['N'], geom['C'] * kh * kw

    def matrix(self, weight):
        return weight.reshape(weight.shape[0], -1)

    def factors(self, weight, rank):
        """``(v_weight (r, C, kh, kw), u_weight (N, r, 1, 1))``."""
        a, b = _truncated_svd(self.matrix(weight), rank)
        return (b.reshape((rank,) + tuple(weight.shape[1:])).astype(np.float32),
                a.reshape(weight.shape[0], rank, 1, 1).astype(np.float32))

    def params(self, geom, rank):
        kh, kw = geom['kernel']
        return rank * (geom['C'] * kh * kw + geom['N'])

    def macs(self, geom, rank):
        oh, ow = geom['out_hw']
        return self.params(geom, rank) * oh * ow

    def build(self, F, x, v_weight, u_weight, bias, geom, rank, name=None):
        """x (batch, C, H, W) -> (batch, N, H', W'), as the original conv."""
        h = self._conv(F, x, v_weight, None, rank, geom['kernel'], geom['stride'], geom['pad'],
                       geom['dilate'], name and name + '_v')
        return self._conv(F, h, u_weight, bias, geom['N'], (1, 1), (1, 1), (0, 0), (1, 1),
                          name and name + '_u')


class SpatialScheme(_ConvScheme):
    """``kh x kw`` conv -> ``kh x 1`` conv with ``K`` filters + ``1 x kw`` conv (Jaderberg)."""
    name = 'spatial'

    def matrix_shape(self, geom):
        kh, kw = geom['kernel']
        return geom['C'] * kh, geom['N'] * kw

    def matrix(self, weight):
        n, c, kh, kw = weight.shape
        return weight.transpose(1, 2, 0, 3).reshape(c * kh, n * kw)

    def factors(self, weight, rank):
        """``(v_weight (K, C, kh, 1), u_weight (N, K, 1, kw))``."""
        n, c, kh, kw = weight.shape
        a, b = _truncated_svd(self.matrix(weight), rank)       # a (C kh, K), b (K, N kw)
        vertical = a.T.reshape(rank, c, kh, 1)
        horizontal = b.reshape(rank, n, 1, kw).transpose(1, 0, 2, 3)
        return vertical.astype(np.float32), np.ascontiguousarray(horizontal, np.float32)

    def params(self, geom, rank):
        kh, kw = geom['kernel']
        return rank * (geom['C'] * kh + geom['N'] * kw)

    def macs(self, geom, rank):
        kh, kw = geom['kernel']
        oh, ow = geom['out_hw']
        width_in = geom['in_hw'][1]           # the vertical conv keeps the input width
        return rank * (geom['C'] * kh * oh * width_in + geom['N'] * kw * oh * ow)

    def build(self, F, x, v_weight, u_weight, bias, geom, rank, name=None):
        """x (batch, C, H, W) -> (batch, K, H', W) -> (batch, N, H', W')."""
        (kh, kw), (sh, sw) = geom['kernel'], geom['stride']
        (ph, pw), (dh, dw) = geom['pad'], geom['dilate']
        h = self._conv(F, x, v_weight, None, rank, (kh, 1), (sh, 1), (ph, 0), (dh, 1),
                       name and name + '_v')
        return self._conv(F, h, u_weight, bias, geom['N'], (1, kw), (1, sw), (0, pw), (1, dw),
                          name and name + '_u')


#: scheme name -> scheme
SCHEMES = {s.name: s for s in (SVDScheme(), ChannelScheme(), SpatialScheme())}


def get_scheme(name):
    """The scheme called ``name``; an unknown name raises ``ValueError`` listing the valid ones."""
    if name not in SCHEMES:
        raise ValueError('unknown low-rank scheme %r; valid schemes: %s'
                         % (name, ', '.join(sorted(SCHEMES))))
    return SCHEMES[name]
