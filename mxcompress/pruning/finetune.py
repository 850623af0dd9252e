"""Prune a checkpoint and fine-tune it with the Module loop; the entry points other methods call.

- :func:`compute_masks`: masks of the chosen layers by one criterion.
- :func:`finetune_with_masks`: insert masks, ``mxcompress.fit.fit`` with the masks fixed, strip.
- :func:`masked_finetune`: fine-tune keeping an existing zero pattern fixed.
- :func:`prune_and_finetune`: one-shot, Han-iterative or AGP-gradual pruning with fine-tuning.

Every function takes and returns standard ``(symbol, arg_params, aux_params)`` checkpoints:
the result has no mask ops and stores pruned weights as exact zeros.
"""
import logging

import numpy as np

from ..fit import fit, fit_options
from .criteria import check_sparsity, global_masks, level_mask, threshold_mask
from .masks import insert_masks, masks_from_zeros, resolve_layers, strip_masks
from .schedules import AGPCallback, iterative_targets

__all__ = ['METHODS', 'compute_masks', 'finetune_options', 'finetune_with_masks',
           'masked_finetune', 'prune_and_finetune', 'per_layer']

#: weight-pruning methods of :func:`prune_and_finetune`
METHODS = ('level', 'threshold', 'global', 'agp')


def per_layer(value, layers, what):
    """``{layer name: value}`` from a single value or a dict (checked against ``layers``)."""
    names = [l.name for l in layers]
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError('%s given for unknown layer(s) %s; chosen layers: %s'
                             % (what, unknown, ', '.join(names)))
        return {n: value[n] for n in names if n in value}
    if value is None:
        raise ValueError('%s is required' % what)
    return {n: value for n in names}


def compute_masks(symbol, arg_params, method='level', sparsity=None, quality=None,
                  layers=None, current=None):
    """Masks of the chosen layers by one criterion.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    arg_params : dict
    method : {'level', 'threshold', 'global'}
        ``level``: per-layer sparsity (``sparsity`` float or dict layer -> float);
        ``threshold``: Han's ``|w| <= quality * std`` (``quality`` float or dict);
        ``global``: one magnitude threshold over all chosen layers (``sparsity`` float).
    layers : list of str or None
        Layer names (all FullyConnected / Convolution layers when None).
    current : dict or None
        Current masks (weight name -> mask) that stay pruned (threshold criterion's std is
        over surviving weights).

    Returns
    -------
    dict of str -> numpy.ndarray
        Weight variable name -> 0/1 mask.
    """
    chosen = resolve_layers(symbol, layers)
    current = current or {}
    weights = {l.weight: arg_params[l.weight].asnumpy() for l in chosen}
    if method == 'global':
        if isinstance(sparsity, dict) or sparsity is None:
            raise ValueError('global pruning needs one sparsity in [0, 1)')
        return global_masks(weights, sparsity)
    if method == 'level':
        targets = per_layer(sparsity, chosen, 'sparsity')
        for name, s in targets.items():
            check_sparsity(s, 'sparsity of layer %s' % name)
        return {l.weight: level_mask(weights[l.weight], targets[l.name])
                for l in chosen if l.name in targets}
    if method == 'threshold':
        qualities = per_layer(quality, chosen, 'quality')
        return {l.weight: threshold_mask(weights[l.weight], qualities[l.name],
                                         current.get(l.weight))
                for l in chosen if l.name in qualities}
    raise ValueError('unknown criterion %r; valid: level, threshold, global' % (method,))


def finetune_options(args, lr_scale):
    """Fine-tuning options: ``args`` at ``lr_scale`` times its rate, no checkpointing."""
    return fit_options(args, lr=args.lr * lr_scale, model_prefix=None, load_epoch=None)


def finetune_with_masks(symbol, arg_params, aux_params, masks, args, train_iter, val_iter=None,
                        lr_scale=1.0, batch_end_callback=None, logger=None):
    """Insert ``masks``, train ``args.num_epochs`` epochs with the masks fixed, strip them.

    Parameters
    ----------
    masks : dict of str -> array
        Weight variable name -> 0/1 mask.
    args : argparse.Namespace
        Fit options (:func:`mxcompress.fit.add_fit_args`); ``args.lr`` is scaled by
        ``lr_scale``; ``num_epochs = 0`` only applies the masks.
    train_iter, val_iter : mx.io.DataIter

    Returns
    -------
    symbol, arg_params, aux_params
        Standard mask-free checkpoint; pruned weights are exact zeros.
    """
    masked_sym, masked_args, fixed = insert_masks(symbol, arg_params, masks)
    if args.num_epochs > 0:
        train_iter.reset()
        module = fit(finetune_options(args, lr_scale), masked_sym, train_iter, val_iter,
                     arg_params=masked_args, aux_params=aux_params, fixed_param_names=fixed,
                     batch_end_callback=batch_end_callback, logger=logger, allow_missing=False)
        masked_args, aux_params = module.get_params()
    return strip_masks(masked_sym, masked_args, aux_params)


def masked_finetune(symbol, arg_params, aux_params, args, train_iter, val_iter=None,
                    layers=None, lr_scale=1.0, logger=None):
    """Fine-tune a (pruned) checkpoint keeping its existing zero weights exactly zero.

    Masks ``M = (W != 0)`` are put on the chosen layers, the network trains for
    ``args.num_epochs`` epochs at ``args.lr * lr_scale`` (through :func:`mxcompress.fit.fit`,
    masks fixed), and a standard checkpoint comes back with the same zero pattern: every weight
    that was 0 is still exactly 0, every other weight is trained.

    Parameters
    ----------
    symbol, arg_params, aux_params : a standard checkpoint (e.g. a pruned model)
    args : argparse.Namespace
        Fit options (``num_epochs``, ``lr``, ``wd``, ``mom``, ``batch_size`` ...).
    train_iter, val_iter : mx.io.DataIter
    layers : list of str or None
        Layers whose zeros are kept (default: every FullyConnected / Convolution layer).
    lr_scale : float
        Multiplies ``args.lr``.

    Returns
    -------
    symbol, arg_params, aux_params
    """
    masks = masks_from_zeros(symbol, arg_params, layers)
    return finetune_with_masks(symbol, arg_params, aux_params, masks, args, train_iter,
                               val_iter, lr_scale=lr_scale, logger=logger)


def prune_and_finetune(symbol, arg_params, aux_params, args, train_iter, val_iter=None,
                       method='level', sparsity=None, quality=None, layers=None, steps=1,
                       lr_scale=0.1, agp_frequency=50, logger=None):
    """Prune a checkpoint by magnitude and fine-tune it; returns a standard checkpoint.

    Parameters
    ----------
    symbol, arg_params, aux_params : standard checkpoint
    args : argparse.Namespace
        Fit options; ``args.num_epochs`` epochs of fine-tuning per step (0 = prune only).
    train_iter, val_iter : mx.io.DataIter
    method : {'level', 'threshold', 'global', 'agp'}
        ``level`` (per-layer sparsity), ``threshold`` (Han: ``|w| <= quality * std``),
        ``global`` (one threshold over all chosen layers), ``agp`` (Zhu & Gupta's gradual
        schedule during the ``args.num_epochs`` epochs, from 0 to the target sparsity by 3/4
        of training, masks updated every ``agp_frequency`` batches).
    sparsity : float or dict layer -> float
        Target fraction of zero weights (level, global, agp), in [0, 1).
    quality : float or dict layer -> float
        Han's quality parameter (threshold).
    layers : list of str or None
        Layers to prune (default: every FullyConnected / Convolution layer).
    steps : int
        Han's iterative pruning: ``steps`` rounds of prune -> fine-tune with targets rising
        on a cubic ramp to the final one (:func:`iterative_targets`); 1 = one shot.
    lr_scale : float
        Fine-tune learning rate = ``args.lr * lr_scale`` (Han: retrain at 1/10).

    Returns
    -------
    symbol, arg_params, aux_params
        Mask-free checkpoint, pruned weights stored as exact zeros; the symbol computes what
        the input symbol does.
    """
    logger = logger or logging.getLogger('mxcompress')
    if method not in METHODS:
        raise ValueError('unknown pruning method %r; valid: %s' % (method, ', '.join(METHODS)))
    chosen = resolve_layers(symbol, layers)
    if method == 'agp':
        return _agp(symbol, arg_params, aux_params, args, train_iter, val_iter, chosen,
                    sparsity, lr_scale, agp_frequency, logger)
    final = quality if method == 'threshold' else sparsity
    if final is None:
        raise ValueError('method %s needs %s' % (method, 'quality' if method == 'threshold'
                                                 else 'sparsity'))
    if method != 'threshold':  # validate before any training
        for value in (final.values() if isinstance(final, dict) else [final]):
            check_sparsity(value)
    current = None
    for k, target in enumerate(iterative_targets(final, steps), start=1):
        kw = {'quality': target} if method == 'threshold' else {'sparsity': target}
        masks = compute_masks(symbol, arg_params, method, layers=[l.name for l in chosen],
                              current=current, **kw)
        logger.info('pruning step %d/%d (%s %s)', k, steps, method, target)
        symbol, arg_params, aux_params = finetune_with_masks(
            symbol, arg_params, aux_params, masks, args, train_iter, val_iter,
            lr_scale=lr_scale, logger=logger)
        current = masks
    return symbol, arg_params, aux_params


def _agp(symbol, arg_params, aux_params, args, train_iter, val_iter, chosen, sparsity,
         lr_scale, frequency, logger):
    targets = per_layer(sparsity, chosen, 'sparsity')
    by_name = {l.name: l for l in chosen}
    if args.num_epochs < 1:
        raise ValueError('agp prunes during training: --num-epochs must be >= 1')
    batches = max(1, (getattr(train_iter, 'num_data', None) or 60000) // args.batch_size)
    total = batches * args.num_epochs
    callback = AGPCallback({by_name[n].weight: s for n, s in targets.items()},
                           begin_step=0, end_step=max(1, int(0.75 * total)),
                           frequency=frequency, logger=logger)
    ones = {by_name[n].weight: np.ones(arg_params[by_name[n].weight].shape, np.float32)
            for n in targets}
    return finetune_with_masks(symbol, arg_params, aux_params, ones, args, train_iter, val_iter,
                               lr_scale=lr_scale, batch_end_callback=callback, logger=logger)
