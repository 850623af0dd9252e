"""Low-rank approximation: SVD of fully connected layers and low-rank convolutions.

* :mod:`.schemes` -- the maths: ``svd`` (Denton et al. 2014), ``channel`` (filter SVD),
  ``spatial`` (Jaderberg et al. 2014, scheme 2).
* :mod:`.blocks` -- Gluon HybridBlocks :class:`SVDDense`, :class:`LowRankConv2D`.
* :mod:`.layers` -- finding and describing factorisable layers of a checkpoint.
* :mod:`.select` -- ranks by ratio, energy, or a target overall compression.
* :mod:`.factorize` -- the checkpoint rewrite.
* :mod:`.sweep` -- rank sweeps (error before / after fine-tuning, layer time), CSV + PNG.
"""
from .blocks import LowRankConv2D, SVDDense
from .factorize import factor_names, factorize
from .layers import LayerSpec, describe_layers
from .schemes import SCHEMES, LowRankError, get_scheme
from .select import choose_ranks, rank_for_energy, rank_for_ratio, ranks_for_target

__all__ = ['SVDDense', 'LowRankConv2D', 'factorize', 'factor_names', 'describe_layers',
           'LayerSpec', 'SCHEMES', 'LowRankError', 'get_scheme', 'choose_ranks',
           'rank_for_energy', 'rank_for_ratio', 'ranks_for_target']
