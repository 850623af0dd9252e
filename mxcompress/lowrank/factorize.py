"""Rewriting any checkpoint with factorised layers (:func:`factorize`).

Each chosen layer ``NAME`` is replaced, through :func:`mxcompress.graph.rewrite`, by the two
layers of its scheme, ``NAME_v`` (weight ``NAME_v_weight``, no bias) and ``NAME_u`` (weight
``NAME_u_weight``, bias ``NAME_u_bias`` = the original bias), built by the same function the
Gluon blocks use. Everything else in the graph (names, attributes, other params) is kept.
"""
import mxnet as mx

from ..graph import rewrite
from .layers import describe_layers
from .select import check_rank, describe_rank, layer_cost

__all__ = ['factorize', 'factor_names']


def factor_names(name):
    """Param names of a factorised layer: ``(v_weight, u_weight, u_bias)``."""
    return name + '_v_weight', name + '_u_weight', name + '_u_bias'


def factorize(symbol, arg_params, aux_params, ranks, schemes=None, conv_scheme='channel',
              data_shape=None, skipped=None):
    """Replace layers by rank-``r`` factorisations.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    arg_params, aux_params : dict of str -> NDArray
    ranks : dict of str -> int
        Layer name -> rank. Every rank is checked (``1 <= r <= max_rank``).
    schemes : dict of str -> str or None
        Scheme per layer (``svd`` for FullyConnected; ``channel`` or ``spatial`` for
        Convolution); default ``svd`` / ``conv_scheme``.
    data_shape : tuple or None
        Input shape for feature-map sizes (MAC counts in the report).
        None: the shape the checkpoint implies (:func:`mxcompress.analysis.input_shape`).
    skipped : list or None
        Grouped / depthwise convolutions in ``ranks`` are not factorised (no useful low-rank
        form): logged, and ``(name, reason)`` appended here.

    Returns
    -------
    symbol : mx.sym.Symbol
    arg_params, aux_params : dict
        Original params minus the replaced weights and biases, plus the factors.
    report : list of dict
        Per layer: ``layer``, ``scheme``, ``rank``, ``max_rank``, ``params`` /
        ``factored_params`` (weights), ``macs`` / ``factored_macs`` (per example, None when
        unknown), ``kept_energy``, ``relative_error`` (Frobenius, of the weight).

    Raises
    ------
    LowRankError
        See :func:`~mxcompress.lowrank.layers.describe_layers` and
        :func:`~mxcompress.lowrank.select.check_rank`. Nothing is built before every layer
        and rank has been checked.
    """
    specs = describe_layers(symbol, arg_params, names=list(ranks), schemes=schemes,
                            conv_scheme=conv_scheme, data_shape=data_shape, skipped=skipped)
    plan = {s.name: (s, check_rank(s, ranks[s.name])) for s in specs}
    new_params = {}
    report = []
    for spec, rank in plan.values():
        v_name, u_name, b_name = factor_names(spec.name)
        v, u = spec.scheme.factors(arg_params[spec.weight].asnumpy(), rank)
        new_params[v_name], new_params[u_name] = mx.nd.array(v), mx.nd.array(u)
        if spec.bias is not None:
            new_params[b_name] = arg_params[spec.bias].copy()
        has_macs = spec.op == 'FullyConnected' or spec.geom.get('out_hw') is not None
        report.append(dict(
            layer=spec.name, op=spec.op, scheme=spec.scheme.name, rank=rank,
            max_rank=spec.scheme.max_rank(spec.geom), params=layer_cost(spec),
            factored_params=layer_cost(spec, rank),
            macs=layer_cost(spec, None, 'macs') if has_macs else None,
            factored_macs=layer_cost(spec, rank, 'macs') if has_macs else None,
            **describe_rank(spec, rank)))

    def replace(node, inputs):
        if node.name not in plan:
            return None
        spec, rank = plan[node.name]
        v_name, u_name, b_name = factor_names(spec.name)
        bias = mx.sym.Variable(b_name) if spec.bias is not None else None
        return spec.scheme.build(mx.sym, inputs[0], mx.sym.Variable(v_name),
                                 mx.sym.Variable(u_name), bias, spec.geom, rank, name=node.name)

    new_symbol = rewrite(symbol, replace)
    arguments = set(new_symbol.list_arguments())
    new_args = {k: v for k, v in arg_params.items() if k in arguments}
    new_args.update(new_params)
    aux_names = set(new_symbol.list_auxiliary_states())
    new_aux = {k: v for k, v in (aux_params or {}).items() if k in aux_names}
    return new_symbol, new_args, new_aux, report
