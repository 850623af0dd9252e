#!/usr/bin/env python
"""Low-rank benchmark: factorise the baseline LeNets, fine-tune, measure error, size, FLOPs, time.

For each model (``lenet300-svd``: SVD of the fully connected layers; ``lenet5-lowrank``:
low-rank convolutions) the script

1. loads the baseline checkpoint ``benchmarks/models/<base>`` (from ``bench_baseline.py``),
2. picks per-layer ranks for a target compression (same kept singular-value energy in every
   layer, :func:`mxcompress.lowrank.ranks_for_target`) and rewrites the checkpoint,
3. fine-tunes with the baseline's data recipe (+-2 px jitter, SGD momentum, cosine decay)
   through ``mxcompress.fit.fit``,
4. measures test error (full 10,000 images) of baseline, factorised and fine-tuned models;
   params, FC params, conv MACs; for every factorised layer the MAC ratio beside the measured
   speed-up of the layer alone (batch 1 and 64, median of --repeats interleaved runs, under
   the timing lock ``/tmp/mxcompress-timing.lock``) and the whole-model speed-up,
5. optionally (--prune) prunes the factors by magnitude (``mxcompress.pruning``) and
   fine-tunes again, to see what pruning adds on top of low rank,
6. optionally (--sweep) sweeps the rank of single layers: error before / after a short
   fine-tune and measured layer time, written as CSV + PNG.

Results go to ``benchmarks/results/lowrank.json`` (merged by model name), models to
``benchmarks/models/<name>`` (epoch 0), sweeps to ``benchmarks/results/lowrank_sweep_*``.

Example::

    OMP_NUM_THREADS=1 python scripts/bench_lowrank.py --models lenet300-svd --prune --sweep
"""
import argparse
import logging
import os
import sys
import time

from mxcompress import data as mnist_data
from mxcompress.analysis import count_params, layer_table
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.fit import data_provenance, fit_options, train_iterators, validation_data
from mxcompress.logs import setup_logging
from mxcompress.lowrank import describe_layers, factorize, ranks_for_target
from mxcompress.lowrank.finetune import finetune
from mxcompress.lowrank.sweep import plot_sweep, rank_sweep, time_layer, write_csv
from mxcompress.measure import (TIMING_LOCK, classification_error, machine_info, time_inference,
                                timing_lock)
from mxcompress.pruning import prune_and_finetune
from mxcompress.reporting.recipes import LOWRANK, LOWRANK_MAX_ERROR_INCREASE
from mxcompress.reporting.results import read_results, update_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def recipe_options(recipe, data_dir, **overrides):
    """Fine-tuning options of a low-rank recipe: cosine schedule, progress every 300 batches."""
    return fit_options(data_dir=data_dir, lr_schedule='cosine', disp_batches=300,
                       **dict(recipe, **overrides))


def iterators(args):
    """The training and test iterators of ``args``."""
    return train_iterators(args)[1:]


def totals(symbol, arg_params):
    rows = layer_table(symbol, arg_params)
    return {'params': count_params(arg_params),
            'fc_params': sum(r['params'] for r in rows if r['op'] == 'FullyConnected'),
            'conv_macs': sum(r['dense_macs'] for r in rows if r['op'] == 'Convolution'),
            'macs': sum(r['dense_macs'] for r in rows),
            'weight_nonzeros': sum(r['nonzeros'] for r in rows)}


def measure_speed(specs, ranks, base, model, repeats):
    """Per-layer and whole-model timing, batch 1 and 64, under the timing lock."""
    per_layer = {}
    with timing_lock():
        for spec in specs:
            per_layer[spec.name] = time_layer(spec, base[1], [ranks[spec.name]], (1, 64),
                                              repeats)
        whole = {b: time_inference({'baseline': base, 'lowrank': model}, b, repeats)
                 for b in (1, 64)}
    return per_layer, whole


def make_candidate(cfg, candidate, base, args):
    """Factorise ``base`` with one candidate's ranks and fine-tune it (validation split held out).

    Parameters
    ----------
    candidate : dict
        ``ranks`` (layer -> rank) or ``compression`` (for :func:`ranks_for_target`), and
        ``recipe``: fine-tune options overriding ``cfg['recipe']``.

    Returns
    -------
    dict
        ``ranks``, ``specs``, ``symbol``, ``factorised`` and ``tuned`` (arg, aux params),
        ``report`` (per-layer rows of :func:`factorize`), ``recipe``, ``fit_args``, ``wall``.
    """
    specs = describe_layers(base[0], base[1], cfg['layers'], cfg['schemes'])
    ranks = candidate.get('ranks') or ranks_for_target(
        specs, candidate.get('compression', cfg.get('compression')), cfg['cost'])
    sym, fargs, faux, report = factorize(*base, ranks, cfg['schemes'])
    recipe = dict(cfg['recipe'], **candidate.get('recipe', {}))
    if args.num_epochs:
        recipe['num_epochs'] = args.num_epochs
    fit_args = recipe_options(recipe, args.data_dir)
    start = time.time()
    train_iter, val_iter = iterators(fit_args)
    tuned = finetune(sym, fargs, faux, fit_args, train_iter, val_iter)
    return {'ranks': ranks, 'specs': specs, 'symbol': sym, 'factorised': (fargs, faux),
            'tuned': tuned, 'report': report, 'recipe': recipe, 'fit_args': fit_args,
            'wall': time.time() - start}


def select_candidate(cfg, base, args):
    """Fine-tune every candidate of ``cfg`` and keep the one with the lowest validation error.

    The test set is not read here: the choice is made on the validation split held out of
    the training set (``--val-split``, :func:`mxcompress.fit.validation_data`).

    Returns
    -------
    best : dict
        :func:`make_candidate`'s result for the chosen candidate, plus ``val_error``.
    tried : list of dict
        Per candidate: its ranks, recipe, validation error and fine-tune seconds.
    """
    log = logging.getLogger('bench_lowrank')
    candidates = cfg.get('candidates') or [{'ranks': cfg.get('ranks')}]
    best, tried = None, []
    for i, candidate in enumerate(candidates):
        made = make_candidate(cfg, candidate, base, args)
        val_images, val_labels = validation_data(made['fit_args'])
        made['val_error'] = classification_error(made['symbol'], *made['tuned'], val_images,
                                                 val_labels)
        tried.append({'ranks': made['ranks'], 'recipe': made['recipe'],
                      'val_error': made['val_error'], 'wall_seconds': made['wall']})
        log.info('candidate %d/%d: ranks %s, %s: validation error %.2f%%', i + 1,
                 len(candidates), made['ranks'], candidate.get('recipe', {}),
                 100 * made['val_error'])
        if best is None or made['val_error'] < best['val_error']:
            best = made
    return best, tried


def run_model(name, cfg, args, images, labels):
    log = logging.getLogger('bench_lowrank')
    base = load_checkpoint(os.path.join(args.models_dir, cfg['base']), 0)
    error = lambda s, a, x: classification_error(s, a, x, images, labels)  # noqa: E731
    best, tried = select_candidate(cfg, base, args)
    specs, ranks, sym, report = best['specs'], best['ranks'], best['symbol'], best['report']
    (fargs, faux), (tuned_args, tuned_aux) = best['factorised'], best['tuned']
    recipe, fit_args, wall = best['recipe'], best['fit_args'], best['wall']
    log.info('%s: ranks %s chosen on the validation split (%.2f%%)', name, ranks,
             100 * best['val_error'])
    errors = {'baseline': error(*base), 'factorised': error(sym, fargs, faux),
              'fine_tuned': error(sym, tuned_args, tuned_aux)}
    before, after = totals(base[0], base[1]), totals(sym, tuned_args)
    per_layer, whole = measure_speed(specs, ranks, base, (sym, tuned_args, tuned_aux),
                                     args.repeats)
    for row in report:
        t = per_layer[row['layer']]
        row['mac_ratio'] = row['macs'] / row['factored_macs']
        for b in (1, 64):
            orig, fact = t[b]['original']['median_ms'], t[b]['rank %d' % row['rank']]['median_ms']
            row['batch%d' % b] = {'original_ms': orig, 'factored_ms': fact,
                                  'speedup': orig / fact}
    baseline_json = read_results(os.path.join(ROOT, 'benchmarks', 'results', 'baseline.json'))
    recorded = baseline_json.get(cfg['base'], {}).get('test_error')
    increase = errors['fine_tuned'] - errors['baseline']
    if cfg['cost'] == 'params':
        reduction = before['fc_params'] / after['fc_params']
    else:
        reduction = before['conv_macs'] / after['conv_macs']
    target = dict(cfg['target'], max_error_increase=LOWRANK_MAX_ERROR_INCREASE)
    met = reduction >= min(v for k, v in target.items() if k.endswith('_min')) and \
        increase <= LOWRANK_MAX_ERROR_INCREASE + 1e-12
    record = {
        'base_model': 'benchmarks/models/%s' % cfg['base'], 'model': 'benchmarks/models/%s' % name,
        'ranks': ranks, 'schemes': {s.name: s.scheme.name for s in specs},
        'rank_selection': ('lowest validation error of %d candidates (ranks given or from '
                           'ranks_for_target: same kept energy in every layer)' % len(tried)
                           if len(tried) > 1 else
                           ('given: %s' % cfg['ranks']) if cfg.get('ranks') else
                           'ranks_for_target(compression=%s, cost=%s): same kept energy in '
                           'every layer' % (cfg['compression'], cfg['cost'])),
        'candidates': tried, 'validation_error': best['val_error'],
        'kept_energy': {r['layer']: r['kept_energy'] for r in report},
        'tuning_history': cfg.get('tuning_history'),
        'test_error': errors['fine_tuned'], 'test_errors': errors,
        'baseline_error_recorded': recorded, 'error_increase_points': 100 * increase,
        'before': before, 'after': after,
        'fc_params_reduction': before['fc_params'] / after['fc_params'],
        'conv_macs_reduction': (before['conv_macs'] / after['conv_macs']
                                if after['conv_macs'] else None),
        'params_reduction': before['params'] / after['params'],
        'target': target, 'target_met': bool(met), 'layers': report,
        'whole_model_time': {str(b): {k: v['median_ms'] for k, v in whole[b].items()}
                             for b in whole},
        'whole_model_speedup': {str(b): whole[b]['baseline']['median_ms']
                                / whole[b]['lowrank']['median_ms'] for b in whole},
        'timing': 'median of %d interleaved runs, OMP_NUM_THREADS=%s, under %s; the 2-core '
                  'machine was shared with other jobs\' jobs'
                  % (args.repeats, os.environ.get('OMP_NUM_THREADS'), TIMING_LOCK),
        'fine_tune': dict(recipe, optimizer='sgd', momentum=fit_args.mom, lr_schedule='cosine',
                          wall_seconds=wall),
        'command': 'OMP_NUM_THREADS=%s python scripts/bench_lowrank.py %s'
                   % (os.environ.get('OMP_NUM_THREADS', ''), ' '.join(args.argv))}
    record.update(data_provenance(fit_args, 'ranks and fine-tune settings'
                                  if len(tried) > 1 else None))
    derived_fields(record, cfg['base'])
    save_checkpoint(os.path.join(args.models_dir, name), 0, sym, tuned_args, tuned_aux)
    log.info('%s: error %.2f%% -> %.2f%% -> %.2f%% (baseline %.2f%%), reduction %.2fx, '
             'target met %s', name, 100 * errors['baseline'], 100 * errors['factorised'],
             100 * errors['fine_tuned'], 100 * errors['baseline'], reduction, met)
    if args.prune:
        record['with_pruning'] = combine_with_pruning(name, cfg, (sym, tuned_args, tuned_aux),
                                                      fit_args, args, error)
    return record


def derived_fields(record, base_network):
    """Fields the project report reads (see ``mxcompress.reporting.report``), from measured values."""
    before, after = record['before'], record['after']
    record.update(method='low rank', base_network=base_network,
                  size_bytes=4 * after['params'], flop_ratio=before['macs'] / after['macs'],
                  speedup_b64=record['whole_model_speedup']['64'],
                  speedup_b1=record['whole_model_speedup']['1'])
    return record


def combine_with_pruning(name, cfg, model, fit_args, args, error):
    """Prune by magnitude (per-layer level) and fine-tune with masks.

    Layers: ``cfg['prune_layers']``, by default the factors of the factorised layers.
    """
    layers = cfg.get('prune_layers') or [name + suffix for name in cfg['layers']
                                         for suffix in ('_v', '_u')]
    results = []
    for sparsity in args.prune_sparsities:
        ft = recipe_options(cfg['recipe'], args.data_dir, num_epochs=args.prune_epochs)
        train_iter, test_iter = iterators(ft)
        start = time.time()
        psym, pargs, paux = prune_and_finetune(*model, ft, train_iter, test_iter,
                                               method='level', sparsity=sparsity, layers=layers,
                                               lr_scale=1.0)
        t = totals(psym, pargs)
        results.append({'sparsity': sparsity, 'layers': layers,
                        'test_error': error(psym, pargs, paux),
                        'weight_nonzeros': t['weight_nonzeros'],
                        'fine_tune_epochs': args.prune_epochs,
                        'wall_seconds': time.time() - start})
        logging.getLogger('bench_lowrank').info('%s + pruning %.0f%%: error %.2f%%, %d nonzero '
                                                'weights', name, 100 * sparsity,
                                                100 * results[-1]['test_error'],
                                                t['weight_nonzeros'])
    return results


def run_sweep(name, cfg, args, images, labels):
    """Rank sweeps of single layers: CSV + PNG per model."""
    base = load_checkpoint(os.path.join(args.models_dir, cfg['base']), 0)
    error = lambda s, a, x: classification_error(s, a, x, images, labels)  # noqa: E731
    examples = args.sweep_examples or cfg.get('sweep_examples', 60000)
    ft = recipe_options(cfg['recipe'], args.data_dir, num_epochs=1, lr=cfg['recipe']['lr'] / 2,
                        num_examples=examples)

    def short_finetune(sym, arg_params, aux_params):
        train_iter, _ = iterators(ft)
        return finetune(sym, arg_params, aux_params, ft, train_iter)

    rows = []
    for layer, scheme, ranks in cfg['sweep']:
        rows += rank_sweep(*base, layer, ranks, error, short_finetune, scheme=scheme,
                           repeats=args.repeats, timing_context=timing_lock)
    stem = os.path.join(ROOT, 'benchmarks', 'results', 'lowrank_sweep_%s' % name)
    write_csv(rows, stem + '.csv')
    plot_sweep(rows, stem + '.png', title='%s: rank sweep (short fine-tune: 1 epoch on %d '
               'images)' % (name, examples))
    return {'csv': os.path.relpath(stem + '.csv', ROOT),
            'png': os.path.relpath(stem + '.png', ROOT), 'rows': rows,
            'short_fine_tune': {'lr': ft.lr, 'epochs': 1, 'examples': examples,
                                'jitter': ft.jitter, 'lr_schedule': 'cosine'}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', choices=sorted(LOWRANK), default=sorted(LOWRANK))
    parser.add_argument('--data-dir', default=None, help='MNIST directory (default: search)')
    parser.add_argument('--models-dir', default=os.path.join(ROOT, 'benchmarks', 'models'))
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                         'lowrank.json'))
    parser.add_argument('--num-epochs', type=int, default=None,
                        help='override the fine-tune epochs of the recipes')
    parser.add_argument('--repeats', type=int, default=30, help='timed runs (median; >= 20)')
    parser.add_argument('--prune', action='store_true',
                        help='also prune the factors and fine-tune (low rank + pruning)')
    parser.add_argument('--prune-sparsities', type=float, nargs='+', default=[0.5, 0.75])
    parser.add_argument('--prune-epochs', type=int, default=5)
    parser.add_argument('--prune-only', action='store_true',
                        help='only the pruning combination, on the saved benchmarks/models/NAME; '
                             'added to the existing record')
    parser.add_argument('--sweep', action='store_true', help='run the rank sweeps too')
    parser.add_argument('--sweep-only', action='store_true', help='only the rank sweeps')
    parser.add_argument('--sweep-examples', type=int, default=None,
                        help='training images of the sweep\'s 1-epoch fine-tune (default: '
                             'per model, 60000 for lenet300-svd, 10000 for lenet5-lowrank)')
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.repeats < 20:
        parser.error('--repeats must be >= 20')
    setup_logging()
    images, labels = mnist_data.load_mnist('test', args.data_dir)
    for name in args.models:
        cfg = LOWRANK[name]
        entries = {}
        if args.prune_only:
            record = read_results(args.output)[name]
            record.setdefault('model_measured_at', record.get('measured_at'))
            model = load_checkpoint(os.path.join(args.models_dir, name), 0)
            error = lambda s, a, x: classification_error(s, a, x, images, labels)  # noqa: E731
            record['with_pruning'] = combine_with_pruning(name, cfg, model,
                                                          recipe_options(cfg['recipe'],
                                                                         args.data_dir),
                                                          args, error)
            record['with_pruning_command'] = 'OMP_NUM_THREADS=%s python scripts/' \
                'bench_lowrank.py %s' % (os.environ.get('OMP_NUM_THREADS', ''), ' '.join(args.argv))
            entries[name] = record
        elif not args.sweep_only:
            entries[name] = run_model(name, cfg, args, images, labels)
        if args.sweep or args.sweep_only:
            entries['%s-sweep' % name] = run_sweep(name, cfg, args, images, labels)
            entries['%s-sweep' % name]['command'] = 'OMP_NUM_THREADS=%s python ' \
                'scripts/bench_lowrank.py %s' % (os.environ.get('OMP_NUM_THREADS', ''),
                                                 ' '.join(args.argv))
        update_results(args.output, entries, machine=machine_info())
    return 0


if __name__ == '__main__':
    sys.exit(main())
