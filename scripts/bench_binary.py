#!/usr/bin/env python
"""Binary-network benchmark: train each binary model on MNIST and measure it.

Writes ``benchmarks/results/binary.json`` (per model: test error on the 10,000 test images vs
its target, the bytes of the binarised weights at 1 bit each vs fp32, the whole model's bytes,
epochs, wall seconds, the recipe and the exact command) and the trained models as standard
checkpoints ``benchmarks/models/NAME`` at epoch 0 (input ``data`` (N, 1, 28, 28) in [0, 1],
probabilities as the first output). Each saved ``-symbol.json`` is reloaded with
``mx.sym.load`` and must reproduce the predictions with MXNet's built-in operators only.

Models can run as separate processes (e.g. in parallel on a shared machine); they merge their
records into the JSON under a file lock.

Example::

    OMP_NUM_THREADS=1 python scripts/bench_binary.py --models bwn-lenet5 xnor-lenet5
    python scripts/bench_binary.py --models bnn-resnet --num-epochs 1 --no-save   # a quick look
"""
import argparse
import json
import os
import sys
import time

import mxnet as mx
import numpy as np

from mxcompress import data as mnist_data
from mxcompress.binary.footprint import binary_footprint
from mxcompress.commands.train_bnn import add_bnn_args, run_bnn
from mxcompress.fit import data_provenance
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.logs import setup_logging
from mxcompress.measure import classification_error, machine_info, predict
from mxcompress.reporting.recipes import BINARY, BINARY_COMMON
from mxcompress.reporting.results import update_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: operators of MXNet itself (no custom library is loaded in this process)
BUILTIN_OPS = set(mx.operator.get_all_registered_operators()) | {'null'}


def _graph_ops(symbol):
    return sorted({node['op'] for node in json.loads(symbol.tojson())['nodes']})


def check_reload(prefix, images, expected):
    """Reload ``prefix`` with ``mx.sym.load`` and compare its predictions with ``expected``."""
    symbol = mx.sym.load(prefix + '-symbol.json')
    _, arg_params, aux_params = load_checkpoint(prefix, 0)
    probs = predict(symbol, arg_params, aux_params, images)
    return {'ops': _graph_ops(symbol),
            'builtin_ops_only': all(op in BUILTIN_OPS for op in _graph_ops(symbol)),
            'reload_max_abs_diff': float(np.abs(probs - expected).max()),
            'reload_same_predictions': bool((probs.argmax(1) == expected.argmax(1)).all())}


def evaluate_checkpoint(args, prefix, epoch):
    """Test error and footprint of a checkpoint saved during an interrupted run."""
    symbol, arg_params, aux_params = load_checkpoint(prefix, epoch)
    images, labels = mnist_data.load_mnist('test', args.data_dir, args.num_test_examples)
    error = classification_error(symbol, arg_params, aux_params, images, labels)
    return symbol, arg_params, aux_params, error, binary_footprint(symbol, arg_params,
                                                                   aux_params)


def bench_one(name, extra_argv, data_dir, models_dir, save, work_dir=None, resume_epoch=None):
    options, target, source = BINARY[name]
    parser = argparse.ArgumentParser()
    add_bnn_args(parser)
    argv = options + BINARY_COMMON + extra_argv
    if data_dir:
        argv += ['--data-dir', data_dir]
    if work_dir:   # per-epoch checkpoints, so an interrupted run can still be evaluated
        argv += ['--model-prefix', os.path.join(work_dir, name)]
    args = parser.parse_args(argv)
    start = time.time()
    if resume_epoch is None:
        symbol, arg_params, aux_params, error, footprint = run_bnn(args)
    else:
        symbol, arg_params, aux_params, error, footprint = evaluate_checkpoint(
            args, args.model_prefix, resume_epoch)
    wall = time.time() - start
    images, labels = mnist_data.load_mnist('test', data_dir, args.num_test_examples)
    record = {
        'network': args.network, 'test_error': error,
        'test_errors_of_%d' % len(labels): int(round(error * len(labels))),
        'target_error': target, 'target_source': source,
        'target_met': None if target is None else bool(error <= target),
        'epochs': args.num_epochs if resume_epoch is None else resume_epoch,
        'wall_seconds': None if resume_epoch is not None else wall,
        'train_samples_per_s': None if resume_epoch is not None else
        (args.num_examples or 60000) * args.num_epochs / wall,
        'footprint': footprint,
        'recipe': {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
                   if k not in ('data_dir', 'model_prefix', 'load_epoch', 'kv_store')},
        'command': 'OMP_NUM_THREADS=%s python %s' % (os.environ.get('OMP_NUM_THREADS', ''),
                                                     ' '.join(sys.argv)),
        **data_provenance(args),
    }
    if resume_epoch is not None:
        record['note'] = ('training interrupted (time limit on a shared machine): evaluated '
                          'the checkpoint after epoch %d of %d; the cosine schedule had not '
                          'finished' % (resume_epoch, args.num_epochs))
    if save:
        prefix = os.path.join(models_dir, name)
        save_checkpoint(prefix, 0, symbol, arg_params, aux_params)
        expected = predict(symbol, arg_params, aux_params, images)
        record.update(check_reload(prefix, images, expected))
        record['model'] = os.path.relpath(prefix, ROOT)
    return record


def record_results(path, entries):
    """Merge ``entries`` into ``path`` (processes running in parallel merge safely)."""
    update_results(path, entries, machine=dict(
        machine_info(), shared_machine='2 cores shared with other jobs while training'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', choices=sorted(BINARY), default=sorted(BINARY))
    parser.add_argument('--data-dir', default=None, help='MNIST directory (default: search)')
    parser.add_argument('--num-epochs', type=int, default=None,
                        help='override the recipes (a quick look: nothing is written)')
    parser.add_argument('--no-save', action='store_true', help='write neither models nor JSON')
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                         'binary.json'))
    parser.add_argument('--models-dir', default=os.path.join(ROOT, 'benchmarks', 'models'))
    parser.add_argument('--work-dir', default=None,
                        help='save per-epoch training checkpoints WORK_DIR/NAME-NNNN.params')
    parser.add_argument('--evaluate-epoch', type=int, default=None,
                        help='do not train: record the checkpoint of --work-dir at this epoch '
                             '(an interrupted run; the record says so)')
    args = parser.parse_args(argv)
    if args.evaluate_epoch is not None and not args.work_dir:
        parser.error('--evaluate-epoch needs --work-dir')
    setup_logging()
    save = not args.no_save and args.num_epochs is None
    extra = ['--num-epochs', str(args.num_epochs)] if args.num_epochs else []
    for name in args.models:
        record = bench_one(name, extra, args.data_dir, args.models_dir, save, args.work_dir,
                           args.evaluate_epoch)
        print('%s: test error %.2f%% (target %s), binarised weights %d B at 1 bit vs %d B fp32'
              % (name, 100 * record['test_error'],
                 '-' if record['target_error'] is None else '%.2f%%' % (
                     100 * record['target_error']),
                 record['footprint']['binary_weight_bytes_1bit'],
                 record['footprint']['binary_weight_bytes_fp32']))
        if save:
            record_results(args.output, {name: record})
    return 0


if __name__ == '__main__':
    sys.exit(main())
