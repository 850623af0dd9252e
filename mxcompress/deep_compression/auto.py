"""Deep Compression to an accuracy budget (or a size target): per-layer sparsity and bits
chosen on the validation split, refined after every fine-tuning round.

The user gives the validation-error increase they accept, ``P`` (``--max-error-increase``,
points), or a compression ratio (``--target-ratio``); nothing per layer. Then:

1. **Pruning rounds** (Han et al. 2015's iterative pruning, with the targets chosen at each
   round instead of fixed in advance). At round ``k`` the current model's per-layer pruning
   sensitivity is measured on validation images (each layer alone level-pruned to every
   sparsity of :data:`SPARSITY_GRID` above its current one, no fine-tuning), each option's
   size is estimated (:func:`estimate_layer_bytes`), and
   :func:`~mxcompress.deep_compression.budget.allocate` picks the per-layer targets that save
   the most bytes for a *round budget* of no-retraining error (``round_budget``; the
   fine-tuning recovers most of it). The model is pruned to those targets and fine-tuned
   (masked, ``epochs`` epochs); the round is **accepted** only if the validation error after
   fine-tuning stays within ``base + (1 - quant_share) * P`` (if it does not, it is fine-tuned
   once more at the same targets first). Each round measures how much of the curves'
   predicted increase fine-tuning left (``kept``), and the next round budget is set so that
   the same share fits what is left of the budget (x 0.8): the steps shrink as the model
   nears the limit. When no room is left, the model is fine-tuned once more at the same
   targets (kept if the validation error drops, which makes room again; at most
   ``max_polish`` times). A rejected round is undone; three rejections in a row end the
   pruning (as does a round with nothing left to prune, or ``max_rounds``). In the dual
   (size) mode each round minimises the error for a byte target moving geometrically to the
   final one (:func:`~mxcompress.deep_compression.budget.allocate_for_bytes`), and every
   round is kept.
2. **Bits**: on the pruned model, each layer alone is k-means quantised at every width of
   :data:`BITS_GRID` (no fine-tuning) and Huffman coded as in the file: the error increase and
   the real bytes of each width. The widths are allocated exactly within what is left of the
   budget, ``base + P - error now`` (or within the byte target).
3. **Quantise, fine-tune the centroids, write**: the file is decoded and its validation error
   measured; over budget, the layer whose next width gives the lowest validation error with
   every layer k-means quantised together (:func:`joint_bits`, one step) gets it and the
   stage is redone from the pruned model (at most ``quant_attempts`` times). Last, the dense
   params are written as float16 when that costs no validation error.

Every random stream is seeded from ``args.seed`` and the number of *accepted* rounds (and a
fixed offset for the quantisation stage), so :func:`replay` with the chosen per-round targets
and widths (``--sparsity-rounds``, ``--bits``) writes the same file, byte for byte.

Layers given explicitly (``fixed_sparsity``, ``fixed_bits``) keep those values; the search
spends the budget on the others. The test set is not read here.
"""
import functools
import logging
import math
import time

import numpy as np

from ..data import iterators
from ..fit import fit_options
from ..graph import find_layers
from ..measure import classification_error
from ..pruning import prune_and_finetune
from ..pruning.criteria import level_mask
from ..quantization.scalar import default_bits, scalar_quantize
from .budget import Option, allocate, allocate_for_bytes, error_count
from .container import AUTO_GAP_BITS, decode_model, encode_model
from .pipeline import quantize_stage
from .sparse_codec import encode_layer

__all__ = ['SPARSITY_GRID', 'BITS_GRID', 'estimate_layer_bytes', 'prune_options',
           'bits_options', 'joint_bits', 'prune_round', 'quantize_and_encode', 'search', 'replay',
           'QUANT_SEED_OFFSET']

#: sparsities a layer may be pruned to in a round (above its current one)
SPARSITY_GRID = (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97,
                 0.975, 0.98, 0.985, 0.99)
#: codebook widths tried per layer (FullyConnected; Convolution from 3 bits)
BITS_GRID = (2, 3, 4, 5, 6, 7, 8)
#: the quantisation stage is seeded with ``args.seed + QUANT_SEED_OFFSET``
QUANT_SEED_OFFSET = 1000
#: share of a round's no-retraining error increase assumed to remain after fine-tuning
#: before any round has measured it
KEPT_PRIOR = 0.25


def _np(v):
    return v.asnumpy() if hasattr(v, 'asnumpy') else np.asarray(v)


def _copy(params):
    return {k: v.copy() for k, v in params.items()}


def estimate_layer_bytes(size, nonzeros, bits):
    """Bytes of a pruned layer of ``size`` weights with ``nonzeros`` kept, ``bits``-wide
    codebook, Huffman coded (an estimate for the pruning rounds; the bits stage uses real
    encodings).

    Positions cost the entropy of the gaps between nonzeros, a geometric variable for a
    random mask of density ``d``: ``H(d) / d`` bits per nonzero (``H`` the binary entropy);
    indices about ``0.85 * bits`` after Huffman coding; plus the float32 codebook.
    """
    if nonzeros <= 0:
        return 16.0
    d = min(1.0, nonzeros / float(size))
    h = 0.0 if d >= 1.0 else -(d * math.log2(d) + (1 - d) * math.log2(1 - d)) / d
    return nonzeros * (0.85 * bits + h) / 8.0 + 4.0 * (2 ** bits) + 16.0


def _sparsity(weight):
    return 1.0 - np.count_nonzero(weight) / float(weight.size)


def prune_options(symbol, params, aux, images, labels, layers, current, nominal_bits,
                  examples, grid=SPARSITY_GRID):
    """Per-layer pruning options of the current model, measured on validation images.

    Parameters
    ----------
    layers : list of graph layers (``find_layers``) to search
    current : dict layer name -> current target sparsity
    nominal_bits : dict layer name -> bits assumed for the size estimate
    examples : int
        Images the error costs are counted in (the whole validation split).

    Returns
    -------
    dict layer name -> list of :class:`~mxcompress.deep_compression.budget.Option`
        ``value`` the sparsity (the current one first, cost 0), ``bytes`` estimated, ``cost``
        the error increase over the current model in images of ``examples``.
    """
    base = classification_error(symbol, params, aux, images, labels)
    out = {}
    for layer in layers:
        w = _np(params[layer.weight])
        now = current.get(layer.name, 0.0)
        opts = [Option(now, estimate_layer_bytes(w.size, np.count_nonzero(w),
                                                 nominal_bits[layer.name]), 0)]
        for s in grid:
            if s <= now + 1e-9:
                continue
            pruned = w * level_mask(w, s)
            trial = dict(params)
            trial[layer.weight] = pruned
            err = classification_error(symbol, _as_nd(trial), aux, images, labels)
            opts.append(Option(s, estimate_layer_bytes(w.size, np.count_nonzero(pruned),
                                                       nominal_bits[layer.name]),
                               error_count(err - base, examples)))
        out[layer.name] = opts
    return out


def _as_nd(params):
    import mxnet as mx
    return {k: v if hasattr(v, 'asnumpy') else mx.nd.array(v) for k, v in params.items()}


def _gap_candidates(op, gap_bits_conv, gap_bits_fc):
    g = gap_bits_conv if op == 'Convolution' else gap_bits_fc
    return AUTO_GAP_BITS if g == 'auto' else (g,)


def bits_options(symbol, params, aux, images, labels, layers, examples, gap_bits_conv=8,
                 gap_bits_fc=5, init='linear', grid=BITS_GRID, fixed=None):
    """Per-layer codebook widths of a pruned model: error increase (layer alone k-means
    quantised, no fine-tuning) and the real Huffman-coded bytes of the layer's section.

    ``fixed`` (layer -> bits) gives a layer one option only.
    """
    base = classification_error(symbol, params, aux, images, labels)
    fixed = fixed or {}
    out = {}
    for layer in layers:
        w = _np(params[layer.weight])
        widths = [fixed[layer.name]] if layer.name in fixed else \
            [b for b in grid if layer.op != 'Convolution' or b >= 3]
        opts = []
        for b in widths:
            codebook, index = scalar_quantize(w, b, init=init, layer=layer.name)
            trial = dict(params)
            trial[layer.weight] = codebook[index]
            err = classification_error(symbol, _as_nd(trial), aux, images, labels)
            size = min(len(encode_layer(index, b, g, True, codebook=codebook, name=layer.name))
                       for g in _gap_candidates(layer.op, gap_bits_conv, gap_bits_fc))
            opts.append(Option(b, float(size), error_count(err - base, examples)))
        out[layer.name] = opts
    return out


def joint_bits(symbol, params, aux, images, labels, layers, options, bits, limit,
               init='linear', max_steps=None):
    """Widen codebooks until the layers quantised *together* keep the validation error
    within ``limit`` (the per-layer costs of :func:`bits_options` need not add up).

    Each step tries every layer one width wider (the next of its options) and keeps the
    change with the lowest joint error (then the fewest bytes). Returns ``(bits, error)``;
    the error may still exceed ``limit`` when every layer is at its widest option or after
    ``max_steps`` steps.
    """
    bits = dict(bits)
    cache = {}

    def quantised(layer, b):
        if (layer.name, b) not in cache:
            w = _np(params[layer.weight])
            codebook, index = scalar_quantize(w, b, init=init, layer=layer.name)
            cache[layer.name, b] = codebook[index]
        return cache[layer.name, b]

    def error(choice):
        trial = dict(params)
        for layer in layers:
            trial[layer.weight] = quantised(layer, choice[layer.name])
        return classification_error(symbol, _as_nd(trial), aux, images, labels)

    err = error(bits)
    steps = 0
    while err > limit + 1e-12 and (max_steps is None or steps < max_steps):
        steps += 1
        trials = []
        for layer in layers:
            wider = [o for o in options[layer.name] if o.value > bits[layer.name]]
            if wider:
                choice = dict(bits, **{layer.name: wider[0].value})
                extra = wider[0].bytes - min(o.bytes for o in options[layer.name]
                                             if o.value == bits[layer.name])
                trials.append((error(choice), extra, layer.name, choice))
        if not trials:
            break
        err, _, _, bits = min(trials, key=lambda t: t[:3])
    return bits, err


def prune_round(args, symbol, params, aux, train, val, targets, index, epochs, lr_scale=1.0,
                logger=None):
    """Prune to ``targets`` (layer -> sparsity, level) and fine-tune ``epochs`` epochs, seeded
    by ``args.seed + index`` (``index``: the accepted rounds before this one)."""
    seed = args.seed + index
    r_args = fit_options(args, num_epochs=epochs, seed=seed, load_epoch=None,
                         model_prefix=None)
    train_iter, val_iter = iterators(train, val, args.batch_size, jitter=args.jitter,
                                     seed=seed)
    _, p, a = prune_and_finetune(symbol, _copy(params), _copy(aux), r_args, train_iter,
                                 val_iter, method='level', sparsity=dict(targets),
                                 layers=list(targets), steps=1, lr_scale=lr_scale,
                                 logger=logger)
    return p, a


def quantize_and_encode(args, symbol, params, aux, train, val, bits, epochs, quant_lr=None,
                        logger=None):
    """k-means to ``bits`` (layer -> width), fine-tune the centroids, encode.

    Centroid fine-tuning sums the gradients of every weight sharing a centroid (Han et al.
    2016), so on a layer left dense it can overshoot; the fine-tuned file is kept only when
    its validation error is no worse than the k-means file's. The dense params (biases,
    BatchNorm) are then written as float16 (``encode_model(dense_float16=True)``: 2 bytes a
    value instead of 4) when that file's validation error is no worse either. Both choices
    are deterministic, so a replay makes the same ones.

    Returns ``(blob, plan)``; seeded with ``args.seed + QUANT_SEED_OFFSET``.
    """
    seed = args.seed + QUANT_SEED_OFFSET
    q_args = fit_options(args, seed=seed, lr=args.lr if quant_lr is None else quant_lr,
                         load_epoch=None, model_prefix=None)
    v_images, v_labels = val
    best = None
    for e in ((0, epochs) if epochs else (0,)):
        train_iter, val_iter = iterators(train, val, args.batch_size, jitter=args.jitter,
                                         seed=seed)
        quantized, q_aux, plan, _ = quantize_stage(q_args, symbol, _copy(params), _copy(aux),
                                                   train_iter, val_iter, bits=dict(bits),
                                                   init=args.init, epochs=e, logger=logger)
        encode = functools.partial(encode_model, symbol, quantized, q_aux, plan=plan,
                                   gap_bits_conv=args.gap_bits_conv,
                                   gap_bits_fc=args.gap_bits_fc, quantize='never')
        blob = encode()[0]
        err = _file_error(blob, v_images, v_labels)
        if best is None or err <= best[2]:
            best = (blob, plan, err, encode)
        elif logger is not None:
            logger.info('centroid fine-tuning raised the validation error to %.2f%%: kept '
                        'the k-means codebooks', 100 * err)
    blob, plan, err, encode = best
    half = encode(dense_float16=True)[0]
    half_err = _file_error(half, v_images, v_labels)
    if logger is not None:
        logger.info('dense params as float16: %d -> %d bytes, validation error %.2f%% -> '
                    '%.2f%% (%s)', len(blob), len(half), 100 * err, 100 * half_err,
                    'kept' if half_err <= err else 'float32 kept')
    return (half if half_err <= err else blob), plan


def _file_error(blob, images, labels):
    sym, arg, aux = decode_model(blob)
    return classification_error(sym, arg, aux, images, labels)


def _weight_layers(symbol, arg_params):
    return [l for l in find_layers(symbol) if l.weight in arg_params]


def _overhead_bytes(symbol, arg_params, aux_params):
    """Non-layer bytes of a file: dense params (float32) and headers (approximately)."""
    weights = {l.weight for l in _weight_layers(symbol, arg_params)}
    dense = sum(4 * v.size + 16 for k, v in arg_params.items() if k not in weights)
    dense += sum(4 * v.size + 16 for v in (aux_params or {}).values())
    return dense + 40 + 30 * (len(weights) + 2)


def search(args, symbol, arg_params, aux_params, train, val, max_error_increase=None,
           target_ratio=None, fixed_sparsity=None, fixed_bits=None, epochs=2,
           quant_epochs=2, quant_lr=None, max_rounds=8, round_budget=0.02, quant_share=0.1,
           curve_examples=3000, quant_attempts=3, lr_scale=1.0, prune_only=False,
           recovery=True, max_rejections=3, max_polish=2, logger=None, echo=None):
    """Choose and apply per-layer sparsity and bits (see the module docstring).

    Parameters
    ----------
    args : argparse.Namespace
        Fit options (``lr``, ``batch_size``, ``jitter``, ``seed``, ``init``, gap widths,
        ``conv_bits`` / ``fc_bits`` as the nominal widths of the pruning estimates).
    train, val : (images (N, C, H, W), labels (N,))
        The training set less the validation split, and the validation split; every choice
        is judged on ``val``.
    max_error_increase : float or None
        The budget: validation-error increase allowed, as a fraction (0.005 = 0.5 points).
    target_ratio : float or None
        The dual: ``4 * params / param bytes`` to reach with the least validation error.
    fixed_sparsity, fixed_bits : dict or None
        Layer -> value given explicitly: kept, not searched.
    epochs, quant_epochs : int
        Fine-tuning epochs per pruning round; centroid fine-tuning epochs.
    round_budget : float
        No-retraining validation-error increase the first pruning round may spend (fraction);
        in budget mode at most ``max_error_increase / KEPT_PRIOR`` (what would fill the
        budget if fine-tuning left the prior share of it: a small budget starts with a small
        step instead of a round that is undone). Later rounds spend
        ``0.8 * (limit - error now) / kept``, ``kept`` the share of the last round's predicted
        increase that fine-tuning did not recover (measured; at least 0.15 and half the
        previous estimate), at most twice ``round_budget`` and at most half the last one after
        a rejected round.
    recovery : bool
        A round over the limit gets one more fine-tuning round at the same targets before it
        is undone.
    max_rejections : int
        Rejected rounds in a row that end the pruning.
    max_polish : int
        When no room is left, up to this many extra fine-tuning rounds at the same targets,
        each kept if it lowers the validation error (and so makes room for more pruning).
    quant_share : float
        Part of the budget kept for quantisation while pruning (budget mode).
    curve_examples : int
        Validation images the sensitivity curves are measured on (the first N; acceptance
        always uses the whole split).
    prune_only : bool
        Stop after the pruning rounds (``mxcompress prune --max-error-increase``).

    Returns
    -------
    dict
        ``rounds`` (accepted per-round targets), ``sparsity``, ``bits``, ``blob`` (None with
        ``prune_only``), ``params`` / ``aux`` (pruned, before quantisation),
        ``validation_error_base``, ``validation_error`` (of the file, or of the pruned model),
        ``log`` (every round and attempt), ``seconds``.
    """
    logger = logger or logging.getLogger('mxcompress')
    echo = echo or (lambda line: logger.info('%s', line))
    if (max_error_increase is None) == (target_ratio is None):
        raise ValueError('give one of max_error_increase and target_ratio')
    start = time.time()
    fixed_sparsity, fixed_bits = dict(fixed_sparsity or {}), dict(fixed_bits or {})
    layers = _weight_layers(symbol, arg_params)
    free = [l for l in layers if l.name not in fixed_sparsity]
    nominal = {l.name: fixed_bits.get(l.name, default_bits(l.op, args.conv_bits, args.fc_bits))
               for l in layers}
    v_images, v_labels = val
    n_val = len(v_labels)
    c_images, c_labels = v_images[:curve_examples], v_labels[:curve_examples]
    base = classification_error(symbol, arg_params, aux_params, v_images, v_labels)
    budget_mode = max_error_increase is not None
    fp32 = 4 * (sum(v.size for v in arg_params.values()) +
                sum(v.size for v in (aux_params or {}).values()))
    if budget_mode:
        limit_prune = base + (1 - quant_share) * max_error_increase
        limit = base + max_error_increase
        echo('budget: validation error %.2f%% on %d images, may rise %.2f points (to %.2f%%)'
             % (100 * base, n_val, 100 * max_error_increase, 100 * limit))
    else:
        layer_target = fp32 / target_ratio - _overhead_bytes(symbol, arg_params, aux_params)
        echo('target: %.1fx = %d param bytes; validation error %.2f%% on %d images'
             % (target_ratio, fp32 / target_ratio, 100 * base, n_val))
        if layer_target <= 0:
            raise ValueError('--target-ratio %g leaves no bytes for the weights (the other '
                             'params and headers take about %d)' % (
                                 target_ratio, _overhead_bytes(symbol, arg_params, aux_params)))
    params, aux = _copy(arg_params), _copy(aux_params or {})
    current = {l.name: 0.0 for l in layers}
    rounds, log = [], []
    beta, rejected, err_now, polished, kept_last = round_budget, 0, base, 0, KEPT_PRIOR
    caps = {}    # layer -> sparsity an undone round asked for (since the last accepted one)
    if budget_mode:
        # the first step spends at most what, at the prior share, would fill the whole budget
        beta = min(round_budget, max_error_increase / KEPT_PRIOR)
    for attempt in range(max_rounds):
        k = len(rounds)
        opts = prune_options(symbol, params, aux, c_images, c_labels, free, current, nominal,
                             n_val)
        # a round is seeded by the accepted rounds before it, so targets once undone would be
        # undone again: every layer an undone round raised stays below what it asked for
        opts = {name: [o for o in layer_opts if o.value < caps.get(name, 2.0) - 1e-9]
                for name, layer_opts in opts.items()}
        fixed_est = sum(estimate_layer_bytes(
            _np(arg_params[l.weight]).size,
            round((1 - fixed_sparsity[l.name]) * _np(arg_params[l.weight]).size),
            nominal[l.name]) for l in layers if l.name in fixed_sparsity)
        if budget_mode:
            alloc = allocate(opts, error_count(beta, n_val)) if opts else None
        else:
            now_bytes = sum(o[0].bytes for o in opts.values()) + fixed_est
            if now_bytes <= layer_target:
                echo('round %d: estimated %d bytes, within the target: pruning done'
                     % (attempt + 1, now_bytes))
                break
            left = max(1, max_rounds - attempt - 1)
            step = max(layer_target, now_bytes * (layer_target / now_bytes) ** (1.0 / left))
            alloc = allocate_for_bytes(opts, step - fixed_est) if opts else None
        targets = dict(current)
        if alloc is not None:
            targets.update({name: o.value for name, o in alloc.choice.items()})
        targets.update(fixed_sparsity)
        if targets == current:
            if not (budget_mode and rounds and polished < max_polish):
                echo('round %d: nothing more to prune within the round budget: pruning done'
                     % (attempt + 1))
                break
            # no room left: fine-tune once more at the same targets; kept if it lowers the
            # validation error (room for the next round), else the pruning is done
            polished += 1
            new_params, new_aux = prune_round(args, symbol, params, aux, train, val, current,
                                              k, epochs, lr_scale, logger)
            err = classification_error(symbol, new_params, new_aux, v_images, v_labels)
            better = err * n_val <= err_now * n_val - 1 + 1e-9
            log.append({'round': attempt + 1, 'targets': dict(current), 'polish': True,
                        'validation_error': err, 'accepted': better})
            echo('round %d: no room left; fine-tuned once more at the same targets -> '
                 'validation error %.2f%% (%s)' % (attempt + 1, 100 * err,
                                                   'kept' if better else 'pruning done'))
            if not better:
                break
            rounds.append(dict(current))
            params, aux, err_now = new_params, new_aux, err
            beta = min(2 * round_budget, 0.8 * max(limit_prune - err_now, 0.0) / kept_last)
            continue
        new_params, new_aux = prune_round(args, symbol, params, aux, train, val, targets, k,
                                          epochs, lr_scale, logger)
        err = classification_error(symbol, new_params, new_aux, v_images, v_labels)
        ok = (not budget_mode) or err <= limit_prune + 1e-12
        taken = [dict(targets)]
        if not ok and recovery:
            # over the limit: one more fine-tuning round at the same targets (replayed as a
            # repeated entry of ``rounds``) before the round is undone
            echo('round %d: %s -> validation error %.2f%%, over %.2f%%: fine-tuning once more'
                 % (attempt + 1, ', '.join('%s=%g' % kv for kv in sorted(targets.items())),
                    100 * err, 100 * limit_prune))
            new_params, new_aux = prune_round(args, symbol, new_params, new_aux, train, val,
                                              targets, k + 1, epochs, lr_scale, logger)
            err = classification_error(symbol, new_params, new_aux, v_images, v_labels)
            ok = err <= limit_prune + 1e-12
            taken.append(dict(targets))
        entry = {'round': attempt + 1, 'targets': dict(targets), 'validation_error': err,
                 'accepted': ok, 'round_budget': beta, 'fine_tuning_rounds': len(taken),
                 'predicted_bytes': None if alloc is None else alloc.bytes}
        log.append(entry)
        echo('round %d: %s -> validation error %.2f%% (%s)' % (
            attempt + 1, ', '.join('%s=%g' % kv for kv in sorted(targets.items())), 100 * err,
            ('accepted' if ok else 'over %.2f%%: undone' % (100 * limit_prune))
            if budget_mode else 'kept'))
        # what fine-tuning left of the curves' predicted cost, measured: the next round's
        # budget is what keeps the same share within the limit (x 0.8), halved on rejection
        predicted = alloc.cost / float(n_val) if alloc is not None else 0.0
        if budget_mode and predicted > 0:
            kept = max(err - err_now, 0.0) / predicted
            entry['predicted_cost'], entry['kept_after_fine_tuning'] = predicted, kept
        if ok:
            rounds.extend(taken)
            params, aux, current, err_now, rejected = new_params, new_aux, targets, err, 0
            caps = {}
        else:
            rejected += 1
            for name, value in targets.items():
                if value > current[name] + 1e-9:
                    caps[name] = min(caps.get(name, value), value)
        if budget_mode:
            if predicted > 0:
                # a round that cost nothing says little: at least 0.15, and at least half
                # the previous estimate
                kept_last = max(kept, 0.5 * kept_last, 0.15)
                beta_next = 0.8 * max(limit_prune - err_now, 0.0) / kept_last
                beta = min(beta_next, beta / 2.0) if not ok else min(beta_next,
                                                                        2 * round_budget)
            elif not ok:
                beta /= 2.0
        if rejected >= max_rejections:
            break
    result = {'rounds': rounds, 'sparsity': dict(current), 'params': params, 'aux': aux,
              'validation_error_base': base, 'validation_examples': n_val, 'log': log,
              'bits': None, 'blob': None}
    if prune_only:
        result.update(validation_error=err_now, seconds=time.time() - start)
        return result
    # bits: exact allocation on the real bytes, within what is left of the budget
    bopts = bits_options(symbol, params, aux, c_images, c_labels, layers, n_val,
                         args.gap_bits_conv, args.gap_bits_fc, args.init, fixed=fixed_bits)
    if budget_mode:
        slack = max(0, int(math.floor((limit - err_now) * n_val + 1e-9)))
        balloc = allocate(bopts, slack)
    else:
        balloc = allocate_for_bytes(bopts, layer_target)
    bits = {name: o.value for name, o in balloc.choice.items()}
    echo('bits: %s (predicted %d layer bytes)' % (
        ', '.join('%s=%d' % kv for kv in sorted(bits.items())), balloc.bytes))
    best = None
    for attempt in range(quant_attempts if budget_mode else 1):
        blob, plan = quantize_and_encode(args, symbol, params, aux, train, val, bits,
                                         quant_epochs, quant_lr, logger)
        err = _file_error(blob, v_images, v_labels)
        log.append({'quantize': attempt + 1, 'bits': dict(bits), 'validation_error': err,
                    'file_bytes': len(blob)})
        echo('quantised %s: %d bytes, validation error %.2f%%' % (
            ', '.join('%s=%d' % kv for kv in sorted(bits.items())), len(blob), 100 * err))
        if best is None or err < best[1] or (budget_mode and err <= limit and best[1] > limit):
            best = (blob, err, dict(bits))
        if not budget_mode or err <= limit + 1e-12:
            best = (blob, err, dict(bits))
            break
        # over budget: widen the layer whose next width gives the lowest validation error
        # with every layer quantised together (the per-layer curves need not add up)
        wider, _ = joint_bits(symbol, params, aux, v_images, v_labels, layers, bopts, bits,
                              limit=-1.0, init=args.init, max_steps=1)
        if wider == bits:
            break
        bits = wider
    if budget_mode and best[1] > limit + 1e-12:
        logger.warning('budget not met on the validation split: %.2f%% > %.2f%% after %d '
                       'quantisation attempts; writing the best attempt', 100 * best[1],
                       100 * limit, quant_attempts)
    result.update(blob=best[0], validation_error=best[1], bits=best[2],
                  seconds=time.time() - start)
    return result


def replay(args, symbol, arg_params, aux_params, train, val, rounds, bits, epochs=2,
           quant_epochs=2, quant_lr=None, lr_scale=1.0, logger=None):
    """The stages of :func:`search` with its choices given: round ``k`` prunes to
    ``rounds[k]`` and fine-tunes (seed ``args.seed + k``), then ``bits`` are applied.

    Returns ``(blob, pruned params, aux)``: the same bytes :func:`search` wrote for the
    same choices.
    """
    params, aux = _copy(arg_params), _copy(aux_params or {})
    for k, targets in enumerate(rounds):
        params, aux = prune_round(args, symbol, params, aux, train, val, targets, k, epochs,
                                  lr_scale, logger)
    if bits is None:
        return None, params, aux
    full = {l.name: bits.get(l.name, default_bits(l.op, args.conv_bits, args.fc_bits))
            for l in _weight_layers(symbol, arg_params)}
    blob, _ = quantize_and_encode(args, symbol, params, aux, train, val, full, quant_epochs,
                                  quant_lr, logger)
    return blob, params, aux
