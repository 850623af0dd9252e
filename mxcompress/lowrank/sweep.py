"""Rank sweeps and per-layer timing: error before / after fine-tuning and measured layer time
against the rank, written as CSV and a PNG plot.

Layer time is measured on the layer alone (the original op against its two factor ops, real
weights, the layer's real input shape), interleaved in one process by
:func:`mxcompress.measure.time_inference`, median of the repeats.
"""
import contextlib
import csv

import mxnet as mx

from ..checkpoint import atomic_path
from ..measure import time_inference
from ..reporting.plots import pyplot, save_figure
from .factorize import factorize
from .layers import describe_layers
from .select import layer_cost

__all__ = ['layer_models', 'time_layer', 'rank_sweep', 'write_csv', 'plot_sweep']

SWEEP_FIELDS = ('layer', 'scheme', 'rank', 'max_rank', 'params_ratio', 'macs_ratio',
                'kept_energy', 'error_before', 'error_after', 'batch', 'original_ms',
                'factored_ms', 'speedup')


def _input_shape(spec):
    if spec.op == 'FullyConnected':
        return (spec.geom['n'],)
    if spec.geom['in_hw'] is None:
        raise ValueError('layer %s: input size unknown; cannot time it' % spec.name)
    return (spec.geom['C'],) + tuple(spec.geom['in_hw'])


def _original_symbol(spec, data, bias):
    g = spec.geom
    extra = {'bias': bias} if bias is not None else {'no_bias': True}
    if spec.op == 'FullyConnected':
        return mx.sym.FullyConnected(data, mx.sym.Variable('w'), num_hidden=g['m'],
                                     flatten=g['flatten'], name=spec.name, **extra)
    return mx.sym.Convolution(data, mx.sym.Variable('w'), num_filter=g['N'], kernel=g['kernel'],
                              stride=g['stride'], pad=g['pad'], dilate=g['dilate'],
                              name=spec.name, **extra)


def layer_models(spec, arg_params, ranks):
    """The layer alone, original and factorised at each of ``ranks``, for timing.

    Returns
    -------
    models : dict of str -> (symbol, arg_params, aux_params)
        ``'original'`` and ``'rank R'``; input ``data`` of :func:`_input_shape`.
    data_shape : tuple
        Per-example input shape.
    """
    data = mx.sym.Variable('data')
    weight = arg_params[spec.weight]
    bias = arg_params.get(spec.bias) if spec.bias else None
    bias_var = mx.sym.Variable('b') if bias is not None else None
    params = {'w': weight}
    if bias is not None:
        params['b'] = bias
    models = {'original': (_original_symbol(spec, data, bias_var), params, {})}
    for rank in ranks:
        v, u = spec.scheme.factors(weight.asnumpy(), rank)
        sym = spec.scheme.build(mx.sym, data, mx.sym.Variable('v'), mx.sym.Variable('u'),
                                bias_var, spec.geom, rank, name=spec.name)
        fparams = {'v': mx.nd.array(v), 'u': mx.nd.array(u)}
        if bias is not None:
            fparams['b'] = bias
        models['rank %d' % rank] = (sym, fparams, {})
    return models, _input_shape(spec)


def time_layer(spec, arg_params, ranks, batch_sizes=(1, 64), repeats=20):
    """Median time of the layer, original vs factorised at each rank, per batch size.

    Returns
    -------
    dict of int -> dict of str -> dict
        ``batch -> model name -> time_inference record`` (``median_ms`` ...).
    """
    models, shape = layer_models(spec, arg_params, ranks)
    return {b: time_inference(models, b, repeats=repeats, data_shape=shape) for b in batch_sizes}


def rank_sweep(symbol, arg_params, aux_params, layer, ranks, evaluate, finetune=None,
               scheme=None, batch_sizes=(1, 64), repeats=20, data_shape=None,
               timing_context=None):
    """Factorise one layer at each rank; error before / after fine-tuning; layer time.

    Parameters
    ----------
    layer : str
        Layer name.
    ranks : list of int
    evaluate : callable
        ``evaluate(symbol, arg_params, aux_params) -> error``.
    finetune : callable or None
        ``finetune(symbol, arg_params, aux_params) -> (arg_params, aux_params)``; None skips.
    scheme : str or None
        Default ``svd`` / ``channel``.
    batch_sizes, repeats : timing settings (:func:`time_layer`).
    timing_context : callable or None
        Context manager factory held while timing (e.g. a machine-wide timing lock).

    Returns
    -------
    list of dict
        One row per (rank, batch size) with the fields of :data:`SWEEP_FIELDS`.
    """
    spec = describe_layers(symbol, arg_params, [layer], {layer: scheme} if scheme else None,
                           data_shape=data_shape)[0]
    with (timing_context or contextlib.nullcontext)():
        timing = time_layer(spec, arg_params, ranks, batch_sizes, repeats)
    rows = []
    for rank in ranks:
        sym, args, aux, report = factorize(symbol, arg_params, aux_params, {layer: rank},
                                           schemes={layer: spec.scheme.name},
                                           data_shape=data_shape)
        before = evaluate(sym, args, aux)
        after = None
        if finetune is not None:
            args, aux = finetune(sym, args, aux)
            after = evaluate(sym, args, aux)
        info = report[0]
        for batch in batch_sizes:
            orig = timing[batch]['original']['median_ms']
            fact = timing[batch]['rank %d' % rank]['median_ms']
            rows.append({'layer': layer, 'scheme': spec.scheme.name, 'rank': rank,
                         'max_rank': info['max_rank'],
                         'params_ratio': info['factored_params'] / info['params'],
                         'macs_ratio': (layer_cost(spec, rank, 'macs')
                                        / layer_cost(spec, None, 'macs')),
                         'kept_energy': info['kept_energy'], 'error_before': before,
                         'error_after': after, 'batch': batch, 'original_ms': orig,
                         'factored_ms': fact, 'speedup': orig / fact})
    return rows


def write_csv(rows, path):
    """Write sweep rows as CSV (atomically)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=SWEEP_FIELDS, extrasaction='ignore')
            writer.writeheader()
            writer.writerows(rows)
    return path


def plot_sweep(rows, path, title='rank sweep'):
    """PNG: test error (before / after fine-tune) and layer speed-up against the rank.

    One column per (layer, scheme); top: error in %, bottom: measured speed-up per batch
    size beside the MAC reduction (the ideal speed-up).
    """
    plt = pyplot()
    panels = list(dict.fromkeys((r['layer'], r['scheme']) for r in rows))
    fig, axes = plt.subplots(2, len(panels), figsize=(4.5 * len(panels), 7), squeeze=False)
    for col, (layer, scheme) in enumerate(panels):
        mine = [r for r in rows if r['layer'] == layer and r['scheme'] == scheme]
        batches = sorted({r['batch'] for r in mine})
        first = [r for r in mine if r['batch'] == batches[0]]
        ranks = [r['rank'] for r in first]
        ax = axes[0][col]
        ax.plot(ranks, [100 * r['error_before'] for r in first], 'o-', label='before fine-tune')
        if any(r['error_after'] is not None for r in first):
            ax.plot(ranks, [100 * r['error_after'] for r in first], 's-',
                    label='after fine-tune')
        ax.set_title('%s (%s)' % (layer, first[0]['scheme']))
        ax.set_ylabel('test error (%)')
        ax.set_yscale('log')
        ax.legend()
        ax = axes[1][col]
        for batch in batches:
            sel = [r for r in mine if r['batch'] == batch]
            ax.plot(ranks, [r['speedup'] for r in sel], 'o-', label='measured, batch %d' % batch)
        ax.plot(ranks, [1.0 / r['macs_ratio'] for r in first], 'k--',
                label='MAC reduction (ideal)')
        ax.axhline(1.0, color='grey', lw=0.5)
        ax.set_xlabel('rank')
        ax.set_ylabel('speed-up vs original layer')
        ax.set_yscale('log')
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    return path
