"""Stop-gap prune stage for the Deep Compression pipeline: magnitude pruning + masked fine-tune.

Han et al. (NIPS 2015): remove the smallest-magnitude weights of each layer, retrain the rest,
iterate. Here the per-layer target sparsity is reached in ``steps`` equal increments; after
each, Module fine-tunes the graph in which every weight is ``W * mask`` (``W_mask`` a fixed
param), so pruned weights get no update and stay exactly zero when folded back.

This small module only keeps the quantisation pipeline self-contained; the project's pruning
family (``mxcompress.pruning``) is the full implementation and is used instead when present.
"""
import copy
import logging

import mxnet as mx
import numpy as np

from ..fit import fit
from ..graph import _build_op, find_layers, rewrite

__all__ = ['magnitude_mask', 'masked_rewrite', 'fold_masks', 'prune_finetune']


def magnitude_mask(weight, sparsity):
    """0/1 float32 mask removing the ``floor(sparsity * n)`` smallest ``|w|`` (ties by position)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError('sparsity must be in [0, 1), got %s' % sparsity)
    w = np.abs(np.asarray(weight)).ravel()
    mask = np.ones(w.size, np.float32)
    mask[np.argsort(w, kind='stable')[:int(np.floor(sparsity * w.size + 1e-9))]] = 0
    return mask.reshape(np.asarray(weight).shape)


def masked_rewrite(symbol, masks):
    """Replace each masked layer's weight input by ``elemwise_mul(W, W_mask)``."""
    def replace(node, inputs):
        if node.op not in ('FullyConnected', 'Convolution') or len(node.input_names) < 2:
            return None
        weight = node.input_names[1]
        if weight not in masks:
            return None
        mask = mx.sym.Variable(weight + '_mask', shape=masks[weight].shape)
        return _build_op(node, [inputs[0], mx.sym.elemwise_mul(inputs[1], mask)]
                         + list(inputs[2:]))
    return rewrite(symbol, replace)


def fold_masks(arg_params, masks):
    """Standard params with ``W := W * mask`` (exact zeros) and the mask params dropped."""
    out = {k: v for k, v in arg_params.items() if not (k.endswith('_mask') and k[:-5] in masks)}
    for weight, mask in masks.items():
        out[weight] = mx.nd.array(arg_params[weight].asnumpy() * mask)
    return out


def prune_finetune(args, symbol, arg_params, aux_params, sparsity, train_iter, val_iter,
                   steps=3, epochs_per_step=2, logger=None):
    """Prune to ``sparsity`` (layer name -> fraction) in ``steps`` steps with masked fine-tuning.

    Parameters
    ----------
    args : argparse.Namespace
        Fit options (``lr``, ``batch_size``...); ``num_epochs`` is set per step.
    sparsity : dict of str -> float
        Target per layer (FullyConnected / Convolution names); other layers stay dense.

    Returns
    -------
    arg_params, aux_params : dict
        Standard params, pruned weights exactly zero.
    """
    logger = logger or logging.getLogger('mxcompress')
    layers = {l.name: l for l in find_layers(symbol)}
    unknown = set(sparsity) - set(layers)
    if unknown:
        raise ValueError('sparsity names unknown layers %s (layers: %s)'
                         % (sorted(unknown), sorted(layers)))
    params = dict(arg_params)
    for step in range(1, steps + 1):
        masks = {}
        for name, target in sparsity.items():
            weight = layers[name].weight
            masks[weight] = magnitude_mask(params[weight].asnumpy(), target * step / steps)
        train_sym = masked_rewrite(symbol, masks)
        start = dict(params)
        start.update({w + '_mask': mx.nd.array(m) for w, m in masks.items()})
        step_args = copy.copy(args)
        step_args.num_epochs, step_args.load_epoch, step_args.model_prefix = \
            epochs_per_step, None, None
        logger.info('prune step %d/%d: %s', step, steps,
                    ', '.join('%s %.1f%%' % (n, 100 * s * step / steps)
                              for n, s in sparsity.items()))
        train_iter.reset()
        module = fit(step_args, train_sym, train_iter, val_iter, arg_params=start,
                     aux_params=aux_params, fixed_param_names=[w + '_mask' for w in masks])
        trained, aux_params = module.get_params()
        params = fold_masks(trained, masks)
    return params, aux_params
