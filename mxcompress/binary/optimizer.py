"""Optimizers that clip latent binary weights to [-c, c] after every update (BinaryConnect).

Importing this module registers two optimizers with ``mx.optimizer`` (the documented way to
make them available to ``mx.mod.Module`` by name):

- ``latentclipadam``: Adam (the usual recipe for binary networks),
- ``latentclipsgd``: SGD with momentum.

Which weights are latent is read from the training Symbol the Module passes in: every node
carrying the ``__latent_weight__`` attribute names its latent variable (see
:mod:`.contract`). Those weights are clipped to ``[-latent_clip, latent_clip]`` after each
update; all other parameters are updated as by the base optimizer. Weight decay on latent
weights is already off through their ``wd_mult=0``.

Courbariaux et al. (2015), BinaryConnect, Algorithm 1: ``W <- clip(W - eta * g, -1, 1)``.
"""
import mxnet as mx

from .contract import LATENT_WEIGHT
from .quantizers import check_clip_value

__all__ = ['latent_weight_names', 'LatentClipAdam', 'LatentClipSGD', 'LATENT_OPTIMIZERS']

#: base optimizer name -> registered latent-clipping optimizer name
LATENT_OPTIMIZERS = {'adam': 'latentclipadam', 'sgd': 'latentclipsgd'}


def latent_weight_names(symbol):
    """Names of the latent weights of ``symbol``'s binary layers (``__latent_weight__``).

    Parameters
    ----------
    symbol : mx.sym.Symbol

    Returns
    -------
    list of str, sorted
    """
    names = set()
    for attrs in symbol.attr_dict().values():
        if LATENT_WEIGHT in attrs:
            names.add(attrs[LATENT_WEIGHT])
    return sorted(names)


class _LatentClipMixin:
    """Clip the weights whose names are latent after the base optimizer's update."""

    def _init_latent(self, sym, latent_clip):
        self.latent_clip = check_clip_value(latent_clip, 'latent_clip')
        self.latent_names = frozenset(latent_weight_names(sym)) if sym is not None else \
            frozenset()

    def _clip_latent(self, index, weight):
        indices = index if isinstance(index, (list, tuple)) else [index]
        weights = weight if isinstance(weight, (list, tuple)) else [weight]
        for idx, w in zip(indices, weights):
            # a kvstore updating by name passes the name itself as the index
            name = idx if isinstance(idx, str) else self.idx2name.get(idx)
            if name is None and getattr(self, 'param_dict', None) and idx in self.param_dict:
                name = self.param_dict[idx].name
            if name in self.latent_names:
                # NDArray's own method, not mx.nd: on a parameter server this runs inside
                # the server loop, which starts while `import mxnet` is still unfinished
                w.clip(-self.latent_clip, self.latent_clip, out=w)

    def update(self, index, weight, grad, state):
        super().update(index, weight, grad, state)
        self._clip_latent(index, weight)

    def update_multi_precision(self, index, weight, grad, state):
        super().update_multi_precision(index, weight, grad, state)
        self._clip_latent(index, weight)


@mx.optimizer.register
class LatentClipAdam(_LatentClipMixin, mx.optimizer.Adam):
    """Adam, then latent binary weights clipped to [-latent_clip, latent_clip].

    Parameters
    ----------
    latent_clip : float
        Bound c > 0 (default 1, BinaryConnect's).
    sym : mx.sym.Symbol
        The training graph (passed by ``mx.mod.Module``); its ``__latent_weight__`` attributes
        name the weights to clip.
    **kwargs
        ``mx.optimizer.Adam`` options.
    """

    def __init__(self, latent_clip=1.0, sym=None, **kwargs):
        super().__init__(sym=sym, **kwargs)
        self._init_latent(sym, latent_clip)


@mx.optimizer.register
class LatentClipSGD(_LatentClipMixin, mx.optimizer.SGD):
    """SGD (with momentum), then latent binary weights clipped to [-latent_clip, latent_clip].

    Parameters as :class:`LatentClipAdam`, plus ``mx.optimizer.SGD`` options.
    """

    def __init__(self, latent_clip=1.0, sym=None, **kwargs):
        super().__init__(sym=sym, **kwargs)
        self._init_latent(sym, latent_clip)
