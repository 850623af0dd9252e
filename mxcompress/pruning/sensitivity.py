"""Sensitivity analysis: prune each layer alone over a sweep of sparsities, measure accuracy.

For each FullyConnected / Convolution layer ``l`` and sparsity ``s`` in the sweep, layer ``l``
alone is level-pruned to ``s`` (no fine-tuning) and the error on a held-out set is measured
(Han et al. 2015, Fig. 5; Li et al. 2017, Fig. 2). Layers whose accuracy holds up at high
sparsity can be pruned harder. :func:`targets_from_sensitivity` turns the curves into
per-layer sparsity targets: the largest swept sparsity whose accuracy drop stays within a
tolerance.
"""
import csv

import mxnet as mx
import numpy as np

from ..checkpoint import atomic_path
from ..measure import classification_error
from ..reporting.plots import pyplot, save_figure
from .criteria import check_sparsity, level_mask
from .masks import resolve_layers

__all__ = ['sensitivity_sweep', 'targets_from_sensitivity', 'write_sensitivity_csv',
           'plot_sensitivity', 'DEFAULT_SWEEP']

DEFAULT_SWEEP = (0.0, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)


def sensitivity_sweep(symbol, arg_params, aux_params, images, labels, sparsities=DEFAULT_SWEEP,
                      layers=None, batch_size=500):
    """Error of the model with one layer level-pruned, for each layer and sparsity.

    Parameters
    ----------
    symbol, arg_params, aux_params : standard checkpoint
    images : numpy.ndarray, float32, (N, C, H, W)
    labels : numpy.ndarray, (N,)
    sparsities : sequence of float in [0, 1)
    layers : list of str or None
        Layer names (all prunable layers when None).

    Returns
    -------
    list of dict
        Rows ``layer``, ``sparsity``, ``error``, ``accuracy``, ``accuracy_drop`` (vs the
        unpruned model, in accuracy points as a fraction).
    """
    sparsities = [check_sparsity(s) for s in sparsities]
    base = classification_error(symbol, arg_params, aux_params, images, labels, batch_size)
    rows = []
    for layer in resolve_layers(symbol, layers):
        weight = arg_params[layer.weight].asnumpy()
        for s in sparsities:
            params = dict(arg_params)
            params[layer.weight] = mx.nd.array(weight * level_mask(weight, s))
            error = classification_error(symbol, params, aux_params, images, labels, batch_size)
            rows.append({'layer': layer.name, 'sparsity': s, 'error': error,
                         'accuracy': 1.0 - error, 'accuracy_drop': error - base})
    return rows


def targets_from_sensitivity(rows, max_drop):
    """Per-layer sparsity targets: the largest swept sparsity with ``accuracy_drop <= max_drop``.

    Parameters
    ----------
    rows : list of dict
        From :func:`sensitivity_sweep`.
    max_drop : float
        Tolerated accuracy drop as a fraction (0.002 = 0.2 points).

    Returns
    -------
    dict of str -> float
        Layer name -> target sparsity (0.0 when even the smallest swept sparsity costs more).
    """
    targets = {}
    for row in rows:
        best = targets.setdefault(row['layer'], 0.0)
        if row['accuracy_drop'] <= max_drop and row['sparsity'] > best:
            targets[row['layer']] = row['sparsity']
    return targets


def write_sensitivity_csv(rows, path):
    """Write the sweep as CSV (atomically): layer, sparsity, error, accuracy, accuracy_drop."""
    fields = ['layer', 'sparsity', 'error', 'accuracy', 'accuracy_drop']
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row[k] for k in fields})
    return path


def plot_sensitivity(rows, path, title='Pruning sensitivity', max_drop=None):
    """PNG plot (matplotlib Agg): accuracy against sparsity, one line per layer."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for layer in dict.fromkeys(r['layer'] for r in rows):
        pts = [(r['sparsity'], 100 * r['accuracy']) for r in rows if r['layer'] == layer]
        ax.plot(*zip(*pts), marker='o', markersize=3, label=layer)
    if max_drop is not None and rows:
        base = 100 * (rows[0]['accuracy'] - rows[0]['accuracy_drop'])
        ax.axhline(base - 100 * max_drop, color='grey', linestyle='--', linewidth=0.8,
                   label='tolerated drop (%.2f pt)' % (100 * max_drop))
    ax.set_xlabel('sparsity of the layer (fraction of weights pruned)')
    ax.set_ylabel('accuracy (%)')
    accs = [100 * r['accuracy'] for r in rows]
    if accs:
        ax.set_ylim(max(min(accs) - 1, np.percentile(accs, 10) - 5), 100)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path
