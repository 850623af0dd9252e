#!/usr/bin/env python
"""Data readers' speed beside training speed: loading must never be what a fit waits for.

For each format (idx, npz, rec, folder) the script writes the same images with
``mxcompress convert-data`` -- MNIST at 28x28x1 and MNIST resized and tinted to 32x32x3 --
reads the training split back ``--repeats`` times (median, cold process cache excluded) and
reports images/s, beside the LeNet-5 training throughput (images/s of ``mxcompress.fit`` at
batch 64, same machine, same threads). Targets: ``rec`` and ``npz`` >= 5x the training
throughput, ``folder`` >= 2x. Writes ``benchmarks/results/data.json``.

Example::

    OMP_NUM_THREADS=2 python scripts/bench_data.py --images 2000
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from mxcompress.cli import main as cli
from mxcompress.fit import fit_options, train_model
from mxcompress.logs import setup_logging
from mxcompress.measure import machine_info
from mxcompress.reporting.results import update_results
from mxcompress.sources import load_dataset, open_source, to_shape, write_dataset
import symbols

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {'npz': 5.0, 'rec': 5.0, 'folder': 2.0, 'idx': None}


def _tinted_rgb(dataset):
    """MNIST resized to 3x32x32 with a per-image colour: a colour set of the same images."""
    def colour(images):
        rgb = to_shape(images, (3, 32, 32)).astype(np.float32)
        tint = np.random.RandomState(0).uniform(0.4, 1.0, size=(len(images), 3, 1, 1))
        return (rgb * tint).astype(np.uint8)
    return dataset._replace(train=(colour(dataset.train[0]), dataset.train[1]),
                            test=(colour(dataset.test[0]), dataset.test[1]))


def read_speed(path, fmt, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        images, _ = open_source(path, fmt).load('train')
        times.append(time.perf_counter() - start)
    return len(images) / statistics.median(times)


def training_speed(data, images):
    args = fit_options(data_dir=data, num_examples=images, num_test_examples=100, batch_size=64,
                       num_epochs=1, val_split=0, disp_batches=10000)
    _, seconds = train_model(args, symbols.get_symbol('lenet5'), validate=False)
    return (images // 64) * 64 / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--images', type=int, default=2000, help='training images per set')
    parser.add_argument('--repeats', type=int, default=5, help='reads per format (median)')
    parser.add_argument('--data-dir', default=None, help='MNIST (default: search)')
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                         'data.json'))
    args = parser.parse_args(argv)
    setup_logging(verbose=False)
    from mxcompress.data import find_mnist_dir
    mnist = find_mnist_dir(args.data_dir)
    record = {'images': args.images, 'repeats': args.repeats, 'shapes': {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = load_dataset(mnist, num_examples=args.images, num_test_examples=100)
        for label, dataset in (('28x28x1', base), ('32x32x3', _tinted_rgb(base))):
            rows = {}
            npz = os.path.join(tmp, label + '.npz')
            write_dataset(npz, dataset, 'npz')
            paths = {'npz': npz}
            for fmt in ('folder', 'rec'):
                paths[fmt] = os.path.join(tmp, label + '-' + fmt)
                assert cli(['convert-data', npz, '--to', fmt, paths[fmt]]) == 0
            if label == '28x28x1':
                paths['idx'] = mnist   # the real IDX files (all 60,000: read, then counted)
            train = training_speed(npz, args.images)
            for fmt, path in paths.items():
                speed = read_speed(path, fmt, args.repeats)
                ratio = speed / train
                rows[fmt] = {'images_per_s': speed, 'ratio_to_training': ratio,
                             'target_ratio': TARGETS[fmt],
                             'target_met': None if TARGETS[fmt] is None
                             else bool(ratio >= TARGETS[fmt])}
                print('%s %-6s %10.0f images/s  %6.1fx LeNet-5 training (%.0f images/s)'
                      % (label, fmt, speed, ratio, train), flush=True)
            record['shapes'][label] = {'lenet5_training_images_per_s': train, 'readers': rows}
    record['command'] = 'OMP_NUM_THREADS=%s python scripts/bench_data.py %s' % (
        os.environ.get('OMP_NUM_THREADS', ''), ' '.join(argv if argv is not None
                                                       else sys.argv[1:]))
    record['note'] = ('readers decode the whole training split (PNG for folder and rec); '
                      'training: LeNet-5, batch 64, 1 epoch, mxcompress.fit')
    update_results(args.output, {'readers': record}, machine=machine_info())
    return 0


if __name__ == '__main__':
    sys.exit(main())
