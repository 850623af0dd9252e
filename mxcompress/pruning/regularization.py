"""Sparsity regularisation in the Module loop: L1 on weights and network slimming.

Implemented as an **optimizer wrapper**, not an extra loss term: :class:`SparseSGD` is SGD
(with momentum and weight decay, as ``sgd``) that adds the L1 subgradient to the gradient of the
chosen parameters before the usual update::

    g <- rescale_grad * grad + lambda_p * sign(w)        (only for penalised params p)

which is the gradient of ``loss + sum_p lambda_p * ||w_p||_1``. So no change to the symbol is
needed and any checkpoint can be trained with it through :func:`mxcompress.fit.fit`
(``optimizer='sparsesgd'`` plus :func:`l1_optimizer_params`).

- L1 on weights (``--l1``): drives many weights towards 0 so magnitude pruning removes them
  with less damage.
- Network slimming (Liu et al., "Learning Efficient Convolutional Networks through Network
  Slimming", ICCV 2017, ``--slim``): L1 on BatchNorm ``gamma`` only; channels whose
  ``|gamma|`` ends near 0 are then removed physically
  (:func:`mxcompress.pruning.filters.slimming_plan` + ``thin_network``).
"""
import mxnet as mx

from ..graph import find_layers, graph_nodes

__all__ = ['SparseSGD', 'l1_targets', 'l1_optimizer_params', 'OPTIMIZER_NAME']

#: name of the registered optimizer (``mx.optimizer.create(OPTIMIZER_NAME, ...)``)
OPTIMIZER_NAME = 'sparsesgd'


@mx.optimizer.register
class SparseSGD(mx.optimizer.SGD):
    """SGD with momentum, weight decay and per-parameter L1 penalties.

    Parameters
    ----------
    l1 : dict of str -> float
        Parameter name -> penalty ``lambda`` (per example, like ``wd``). Parameters not listed
        are updated exactly as by ``sgd``.
    momentum : float
    **kwargs
        Any :class:`mx.optimizer.SGD` option (``learning_rate``, ``wd``, ``rescale_grad``,
        ``lr_scheduler``, ...).

    Notes
    -----
    Needs ``param_idx2name`` (``mx.mod.Module`` passes it when the optimizer is given by
    name). The subgradient ``sign(0) = 0`` leaves exact zeros at 0.
    """

    def __init__(self, l1=None, **kwargs):
        super().__init__(**kwargs)
        self.l1 = dict(l1 or {})
        for name, value in self.l1.items():
            if not value >= 0:
                raise ValueError('L1 penalty of %s must be >= 0, got %s' % (name, value))

    def _update_impl(self, indices, weights, grads, states, multi_precision=False):
        single = not isinstance(indices, (tuple, list))
        for index, weight, grad in zip(*(([indices], [weights], [grads]) if single
                                         else (indices, weights, grads))):
            lam = self.l1.get(self.idx2name.get(index, index), 0.0)
            if lam:
                # the update multiplies grad by rescale_grad, so pre-divide the penalty
                # NDArray's own method, not mx.nd: on a parameter server this runs inside
                # the server loop, which starts while `import mxnet` is still unfinished
                grad += (lam / self.rescale_grad) * weight.sign()
        super()._update_impl(indices, weights, grads, states, multi_precision)


def l1_targets(symbol, weight_l1=0.0, gamma_l1=0.0):
    """Penalties per parameter name: ``weight_l1`` on every FullyConnected / Convolution
    weight, ``gamma_l1`` on every BatchNorm gamma (network slimming).

    Returns
    -------
    dict of str -> float
    """
    penalties = {}
    if weight_l1:
        for layer in find_layers(symbol):
            penalties[layer.weight] = float(weight_l1)
    if gamma_l1:
        nodes = graph_nodes(symbol)
        for node in nodes:
            if node['op'] == 'BatchNorm':
                if node.get('attrs', {}).get('fix_gamma', 'True') in ('True', 'true', '1'):
                    raise ValueError('network slimming needs trainable gamma, but BatchNorm '
                                     '%s has fix_gamma=True' % node['name'])
                penalties[nodes[node['inputs'][1][0]]['name']] = float(gamma_l1)
        if not any(n['op'] == 'BatchNorm' for n in nodes):
            raise ValueError('network slimming (L1 on BatchNorm gamma) needs a network with '
                             'BatchNorm layers; this one has none')
    return penalties


def l1_optimizer_params(symbol, args, weight_l1=0.0, gamma_l1=0.0):
    """``(optimizer name, optimizer_params)`` for :func:`mxcompress.fit.fit`.

    Set ``args.optimizer`` to the returned name and pass the dict as ``optimizer_params``;
    momentum comes from ``args.mom``.
    """
    return OPTIMIZER_NAME, {'momentum': args.mom,
                            'l1': l1_targets(symbol, weight_l1, gamma_l1)}
