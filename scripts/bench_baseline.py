#!/usr/bin/env python
"""Baseline benchmark: train LeNet-300-100 and LeNet-5 on MNIST to convergence.

Writes ``benchmarks/results/baseline.json`` (per network: test error on the full 10,000
test images, params, fp32 bytes, epochs, wall seconds, training samples/s, the recipe and
the command) and the final models as standard checkpoints ``benchmarks/models/NAME`` at
epoch 0. Recipes and targets (Han et al. 2015: LeNet-300-100 <= 1.64 %, LeNet-5 <= 0.80 %
error) are those of ``mxcompress/reporting/recipes.py``.

Example::

    python scripts/bench_baseline.py            # both networks, their recipes
    python scripts/bench_baseline.py --networks lenet5 --num-epochs 2   # a quick look
"""
import argparse
import os
import sys

import symbols
from mxcompress import data as mnist_data
from mxcompress.analysis import count_params
from mxcompress.checkpoint import save_checkpoint
from mxcompress.fit import data_provenance, fit_options, train_model
from mxcompress.logs import setup_logging
from mxcompress.measure import classification_error, machine_info
from mxcompress.reporting.recipes import BASELINE
from mxcompress.reporting.results import update_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_one(name, data_dir, quick_epochs=None):
    """Train baseline ``name`` with its recipe; returns the checkpoint and its record."""
    recipe, target = BASELINE[name]['recipe'], BASELINE[name]['target_error']
    args = fit_options(data_dir=data_dir, lr_schedule='cosine', disp_batches=200, **recipe)
    if quick_epochs:
        args.num_epochs = quick_epochs
    symbol = symbols.get_symbol(BASELINE[name].get('network', name))
    module, wall = train_model(args, symbol)
    arg_params, aux_params = module.get_params()
    images, labels = mnist_data.load_mnist('test', data_dir)
    error = classification_error(symbol, arg_params, aux_params, images, labels)
    return symbol, arg_params, aux_params, {
        'base_network': name, 'architecture': BASELINE[name].get('network', name),
        'method': 'fp32 baseline',
        'size_bytes': 4 * count_params(arg_params),
        'test_error': error, 'test_errors_of_10000': int(round(error * len(labels))),
        'target_error': target, 'target_met': None if target is None else error <= target,
        'params': count_params(arg_params), 'fp32_bytes': 4 * count_params(arg_params),
        'epochs': args.num_epochs, 'wall_seconds': wall,
        'train_samples_per_s': 60000 * args.num_epochs / wall,
        'recipe': dict(recipe, optimizer=args.optimizer, momentum=args.mom,
                       lr_schedule='cosine', initializer=args.initializer, seed=args.seed),
        **data_provenance(args)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--networks', nargs='+', choices=sorted(BASELINE),
                        default=sorted(BASELINE))
    parser.add_argument('--data-dir', default=None, help='MNIST directory (default: search)')
    parser.add_argument('--num-epochs', type=int, default=None,
                        help='override the recipes (quick look; results are then not written)')
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                         'baseline.json'))
    parser.add_argument('--models-dir', default=os.path.join(ROOT, 'benchmarks', 'models'))
    args = parser.parse_args(argv)
    setup_logging()
    for name in args.networks:
        symbol, arg_params, aux_params, record = train_one(name, args.data_dir, args.num_epochs)
        target = record['target_error']
        print('%s: test error %.2f%% (target %s), %d params, %.0f s'
              % (name, 100 * record['test_error'],
                 'none' if target is None else '%.2f%%' % (100 * target),
                 record['params'], record['wall_seconds']), flush=True)
        if args.num_epochs:
            continue
        save_checkpoint(os.path.join(args.models_dir, name), 0, symbol, arg_params, aux_params)
        record['model'] = 'benchmarks/models/%s' % name
        record['command'] = 'python scripts/bench_baseline.py --networks %s' % name
        update_results(args.output, {name: record}, machine=machine_info())
    return 0


if __name__ == '__main__':
    sys.exit(main())
