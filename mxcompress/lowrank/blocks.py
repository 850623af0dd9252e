"""Gluon HybridBlocks for factorised layers: :class:`SVDDense` and :class:`LowRankConv2D`.

``hybrid_forward`` calls the scheme's ``build`` (see :mod:`mxcompress.lowrank.schemes`), the
same function the checkpoint rewrite uses, so a block computes exactly what a rewritten
graph computes, imperatively or hybridised.
"""
import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from ..graph import pair
from .schemes import LowRankError, conv_geometry, dense_geometry, get_scheme

__all__ = ['SVDDense', 'LowRankConv2D']


def _check_rank(rank, max_rank, what):
    if not isinstance(rank, (int, np.integer)) or not 1 <= rank <= max_rank:
        raise LowRankError('%s: rank must be an integer in 1..%d, got %r' % (what, max_rank, rank))


class _FactorisedBlock(HybridBlock):
    """Shared parts of the factorised layers: the two factors ``v_weight`` (applied first) and
    ``u_weight`` (with the original bias), a rank, and a scheme that builds the two ops."""

    def _make_params(self, v_shape, u_shape, out_units, use_bias):
        with self.name_scope():
            self.v_weight = self.params.get('v_weight', shape=v_shape, allow_deferred_init=True)
            self.u_weight = self.params.get('u_weight', shape=u_shape, allow_deferred_init=True)
            self.bias = (self.params.get('bias', shape=(out_units,), init='zeros',
                                         allow_deferred_init=True) if use_bias else None)

    def _set_factors(self, v, u, bias):
        """Initialise with the factors ``v``, ``u`` (numpy) and ``bias`` (array-like or None);
        returns the block."""
        self.initialize(mx.init.Zero())
        self.v_weight.set_data(mx.nd.array(v))
        self.u_weight.set_data(mx.nd.array(u))
        if bias is not None:
            self.bias.set_data(mx.nd.array(np.asarray(bias.asnumpy() if hasattr(bias, 'asnumpy')
                                                      else bias)))
        return self

    @property
    def rank(self):
        return self._rank

    def hybrid_forward(self, F, x, v_weight, u_weight, bias=None):
        return self._scheme.build(F, x, v_weight, u_weight, bias, self._geom, self._rank)


class SVDDense(_FactorisedBlock):
    """A Dense layer ``y = W x + b`` with ``W (units x in_units)`` stored as ``U V``.

    ``y = u_weight (v_weight x) + b``: a FullyConnected ``in_units -> rank`` without bias,
    then ``rank -> units`` with the bias (Denton et al. 2014). Parameters
    ``rank (units + in_units) + units`` instead of ``units in_units + units``.

    Parameters
    ----------
    units : int
        Output size ``m``.
    rank : int
        Inner size ``r``, ``1 <= r <= min(m, n)`` (checked when ``in_units`` is known).
    in_units : int
        Input size ``n`` (0: inferred on first call).
    use_bias : bool
    flatten : bool
        As ``gluon.nn.Dense``: flatten all but the first input axis.

    Inputs:
        - **data**: (batch, in_units), or (batch, ...) flattened when ``flatten``.
    Outputs:
        - **out**: (batch, units).
    """

    def __init__(self, units, rank, in_units=0, use_bias=True, flatten=True, **kwargs):
        super().__init__(**kwargs)
        if in_units:
            _check_rank(rank, min(units, in_units), self.name)
        self._geom = dense_geometry((units, in_units), flatten=flatten, no_bias=not use_bias)
        self._rank = int(rank)
        self._scheme = get_scheme('svd')
        self._make_params((rank, in_units), (units, rank), units, use_bias)

    @classmethod
    def from_weights(cls, weight, bias, rank, flatten=True, **kwargs):
        """A block initialised with the rank-``rank`` SVD of ``weight`` (m, n) and ``bias`` (m,)."""
        weight = np.asarray(weight.asnumpy() if hasattr(weight, 'asnumpy') else weight)
        m, n = weight.shape
        block = cls(m, rank, in_units=n, use_bias=bias is not None, flatten=flatten, **kwargs)
        v, u = get_scheme('svd').factors(weight, rank)
        return block._set_factors(v, u, bias)


class LowRankConv2D(_FactorisedBlock):
    """A 2-D convolution factorised into two convolutions.

    ``scheme='channel'``: ``kh x kw`` conv ``C -> rank`` (stride, padding, dilation of the
    original) then ``1 x 1`` conv ``rank -> channels`` with the bias. ``scheme='spatial'``
    (Jaderberg et al. 2014): ``kh x 1`` conv ``C -> rank`` then ``1 x kw`` conv
    ``rank -> channels`` with the bias. See :mod:`mxcompress.lowrank.schemes`.

    Parameters
    ----------
    channels : int
        Output channels ``N``.
    kernel_size : int or (int, int)
    rank : int
        Intermediate channels.
    scheme : {'channel', 'spatial'}
    strides, padding, dilation : int or (int, int)
    in_channels : int
        ``C`` (0: inferred on first call).
    use_bias : bool

    Inputs:
        - **data**: (batch, C, H, W).
    Outputs:
        - **out**: (batch, channels, H', W'), the size the original convolution gives.
    """

    def __init__(self, channels, kernel_size, rank, scheme='channel', strides=1, padding=0,
                 dilation=1, in_channels=0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self._scheme = get_scheme(scheme)
        if self._scheme.name not in ('channel', 'spatial'):
            raise ValueError("LowRankConv2D scheme must be 'channel' or 'spatial', got %r"
                             % scheme)
        kh, kw = pair(kernel_size, 'kernel_size')
        self._geom = conv_geometry((channels, in_channels, kh, kw), (kh, kw),
                                   pair(strides, 'strides'), pair(padding, 'padding'),
                                   pair(dilation, 'dilation'), no_bias=not use_bias)
        if in_channels:
            _check_rank(rank, self._scheme.max_rank(self._geom), self.name)
        self._rank = int(rank)
        v_kernel, u_kernel = ((kh, kw), (1, 1)) if scheme == 'channel' else ((kh, 1), (1, kw))
        self._make_params((rank, in_channels) + v_kernel, (channels, rank) + u_kernel,
                          channels, use_bias)

    @classmethod
    def from_weights(cls, weight, bias, rank, scheme='channel', strides=1, padding=0,
                     dilation=1, **kwargs):
        """A block initialised from a conv kernel ``weight`` (N, C, kh, kw) and ``bias`` (N,)."""
        weight = np.asarray(weight.asnumpy() if hasattr(weight, 'asnumpy') else weight)
        n, c, kh, kw = weight.shape
        block = cls(n, (kh, kw), rank, scheme=scheme, strides=strides, padding=padding,
                    dilation=dilation, in_channels=c, use_bias=bias is not None, **kwargs)
        v, u = block._scheme.factors(weight, rank)
        return block._set_factors(v, u, bias)
