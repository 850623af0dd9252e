#!/usr/bin/env python
"""Deep Compression benchmark: the .mxc files, the quantiser table and MXNet int8 vs fp32.

Parts (``--parts``, default all but ``int8``, which times and so runs under the lock):

* ``lenet300``, ``lenet5``: ``mxcompress deep-compress`` of the baseline model
  (``benchmarks/models/NAME``) into ``benchmarks/models/NAME.mxc``; ratio = 4 x params /
  (total_bytes - graph_bytes) of the real file, error on the full MNIST test set after
  unpacking; stage ratios P, P+Q, P+Q+H; per layer the theoretical log2(k)/32 next to the real
  bytes. Targets (Han et al. 2016): LeNet-300-100 >= 40x at <= 1.64 %, LeNet-5 >= 39x at
  <= 0.80 %.
* ``table``: LeNet-300-100's three fc layers quantised (no fine-tuning) by scalar k-means, PQ,
  Q-CNN and fixed point: bits per weight (codebooks / scales included) vs test error, plus a
  PNG plot.
* ``int8``: LeNet-5 fp32 vs MXNet's int8 (``quantize_model_mkldnn``, naive and entropy
  calibration): test error and interleaved inference time in one process.

Results merge into ``benchmarks/results/deep_compression.json``. Example::

    OMP_NUM_THREADS=1 python scripts/bench_deep_compression.py --parts lenet300 table
    OMP_NUM_THREADS=1 flock /tmp/mxcompress-timing.lock \\
        python scripts/bench_deep_compression.py --parts int8
"""
import argparse
import os
import sys
import time

import mxnet as mx
import numpy as np

from mxcompress import cli
from mxcompress import data as mnist_data
from mxcompress.checkpoint import load_checkpoint, sha256_file
from mxcompress.commands.deep_compress import compress
from mxcompress.deep_compression.container import container_info, encode_model, unpack
from mxcompress.graph import find_layers
from mxcompress.logs import setup_logging
from mxcompress.measure import TIMING_LOCK, classification_error, machine_info, time_inference
from mxcompress.quantization.compare import layer_inputs, quantize_weight
from mxcompress.quantization.int8 import fuse_fp32, quantize_int8
from mxcompress.reporting.plots import pyplot, save_figure
from mxcompress.reporting.recipes import DEEP_COMPRESSION
from mxcompress.reporting.results import update_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'benchmarks', 'results', 'deep_compression.json')
MODELS = os.path.join(ROOT, 'benchmarks', 'models')

def run_deep(name, data_dir, extra, baseline_dir=MODELS):
    output = os.path.join(MODELS, name + '.mxc')
    argv = ['deep-compress', os.path.join(baseline_dir, name), '--output', output,
            '--disp-batches', '400'] + DEEP_COMPRESSION[name]['options'] + list(extra)
    if data_dir:
        argv += ['--data-dir', data_dir]
    args = cli.build_parser().parse_args(argv)
    start = time.time()
    report = compress(args)
    final = report['stages']['P+Q+H']
    target = DEEP_COMPRESSION[name]['target']
    layers = {}
    for weight, m in report['info']['layers'].items():
        layers[weight] = {
            'weights': m['weights'], 'nonzeros': m['nonzeros'], 'bits': m['bits'],
            'k': m['k'], 'fillers': m['fillers'],
            'theoretical_log2k_over_32': m['theoretical_q_fraction'],
            'theoretical_bytes_dense_codebook': m['weights'] * m['bits'] / 8.0,
            'real_bytes': m['total'], 'real_fraction_of_fp32': m['real_fraction_of_fp32'],
            'real_bits_per_weight': m['real_bits_per_weight'],
            'real_bits_per_nonzero': m['real_bits_per_nonzero'],
            'components': {c: m[c] for c in ('codebook', 'indices', 'gaps', 'huffman_tables',
                                             'layer_header')}}
    # the same weights with Han et al.'s fixed gap widths (8 conv / 5 fc), for comparison
    symbol, params, aux = unpack(output)
    han_blob, _ = encode_model(symbol, params, aux, quantize='never')
    han_bytes = container_info(han_blob)['param_bytes']
    record = {
        'method': 'Deep Compression (P+Q+H)', 'base_network': name,
        'size_bytes': final['param_bytes'],
        'size_note': 'file bytes without the graph JSON (total_bytes - graph_bytes)',
        'ratio_with_han_gap_bits_8conv_5fc': report['fp32_bytes'] / han_bytes,
        'param_bytes_with_han_gap_bits': han_bytes,
        'file': 'benchmarks/models/%s.mxc' % name, 'ratio': final['ratio'],
        'test_error': final['test_error'], 'test_error_measured_after': 'unpack of the file',
        'total_bytes': report['info']['total_bytes'],
        'graph_bytes': report['info']['graph_bytes'], 'param_bytes': final['param_bytes'],
        'fp32_bytes': report['fp32_bytes'], 'stages': report['stages'], 'layers': layers,
        'dense_bytes': report['info']['dense_bytes'], 'sparsity': report['sparsity'],
        'bits': report['bits'], 'prune': report['prune_implementation'],
        'target': target, 'target_met': final['ratio'] >= target['ratio']
        and final['test_error'] <= target['error'],
        'aim_met': final['ratio'] >= target['aim_ratio'] and final['test_error'] <= target['error'],
        'published': DEEP_COMPRESSION[name]['published'], 'wall_seconds': time.time() - start,
        'baseline': 'benchmarks/models/%s (sha256 %s)' % (name, sha256_file(
            os.path.join(baseline_dir, name + '-0000.params'))),
        'command': 'python scripts/bench_deep_compression.py --parts %s  (= mxcompress %s)'
                   % (name, ' '.join(argv))}
    print('%s: %.1fx at %.2f%% error (target >= %.0fx at <= %.2f%%): %s'
          % (name, final['ratio'], 100 * final['test_error'], target['ratio'],
             100 * target['error'], 'met' if record['target_met'] else 'NOT met'), flush=True)
    return {name: record}


def run_table(data_dir):
    symbol, arg_params, aux_params = load_checkpoint(os.path.join(MODELS, 'lenet300'), 0)
    images, labels = mnist_data.load_mnist('test', data_dir)
    calib, _ = mnist_data.load_mnist('train', data_dir, num_examples=4000)
    inputs = layer_inputs(symbol, arg_params, aux_params, calib)
    weights = {w: arg_params[w].asnumpy() for w in inputs}
    total = sum(w.size for w in weights.values())

    def quantizer(method, **setting):
        return lambda w, name: quantize_weight(method, w, name, inputs.get(name), **setting)

    settings = [('scalar k-means', 'bits=%d' % b, quantizer('scalar', bits=b))
                for b in (1, 2, 3, 4, 5, 6, 8)]
    for d, k in ((8, 16), (8, 64), (4, 8), (4, 16), (4, 32), (2, 8), (2, 16)):
        settings.append(('PQ', 'd=%d k=%d' % (d, k), quantizer('pq', d=d, k=k)))
        settings.append(('Q-CNN', 'd=%d k=%d' % (d, k), quantizer('qcnn', d=d, k=k)))
    settings += [('fixed point', 'bits=%d' % b, quantizer('fixed', bits=b))
                 for b in (2, 3, 4, 5, 6, 8)]
    rows = []
    base_error = classification_error(symbol, arg_params, aux_params, images, labels)
    for method, setting, fn in settings:
        start = time.time()
        params, bits = dict(arg_params), 0.0
        out_err = 0.0
        for name, w in weights.items():
            q, b = fn(w, name)
            params[name] = mx.nd.array(q)
            bits += b * w.size
            x = inputs[name][:1000]
            out_err += float(np.mean((x @ (q - w).T) ** 2))
        error = classification_error(symbol, params, aux_params, images, labels)
        rows.append({'method': method, 'setting': setting, 'bits_per_weight': bits / total,
                     'test_error': error, 'layer_output_mse_sum': out_err,
                     'seconds': time.time() - start})
        print('%-15s %-12s %6.3f bits/weight  error %.2f%%' % (method, setting, bits / total,
                                                               100 * error), flush=True)
    plot = os.path.join(ROOT, 'benchmarks', 'results', 'deep_compression_quantizers.png')
    _plot_table(rows, base_error, plot)
    return {'quantizer_table_lenet300': {
        'baseline_test_error': base_error, 'rows': rows, 'fine_tuning': 'none',
        'layers': sorted(weights),
        'pq_note': 'd = sub-vector length, or the largest divisor of the input size below it '
                   '(d=8 -> 4 for the 300- and 100-input layers); k capped at the row count',
        'calibration': 'Q-CNN: fc inputs of 4000 training images',
        'bits_per_weight_includes': 'codebooks (float32) / per-channel scales',
        'plot': os.path.relpath(plot, ROOT),
        'command': 'python scripts/bench_deep_compression.py --parts table'}}


def _plot_table(rows, base_error, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, style in (('scalar k-means', 'o-'), ('fixed point', 's-'), ('PQ', '^'),
                          ('Q-CNN', 'v')):
        pts = sorted((r['bits_per_weight'], 100 * r['test_error'], r['setting']) for r in rows
                     if r['method'] == method)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=method)
        if method in ('PQ', 'Q-CNN'):  # settings differ in d and k: label the points
            for x, y, setting in pts:
                ax.annotate(setting, (x, y), fontsize=6, xytext=(3, 2),
                            textcoords='offset points')
    ax.axhline(100 * base_error, color='grey', ls='--', label='fp32 baseline')
    ax.set_xlabel('bits per weight (codebooks included)')
    ax.set_ylabel('MNIST test error (%)')
    ax.set_yscale('log')
    ax.set_title('LeNet-300-100 fc layers, quantised without fine-tuning')
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def run_int8(data_dir, batch_size, repeats, baseline_dir=MODELS):
    symbol, arg_params, aux_params = load_checkpoint(os.path.join(baseline_dir, 'lenet5'), 0)
    images, labels = mnist_data.load_mnist('test', data_dir)
    calib_x, calib_y = mnist_data.load_mnist('train', data_dir, num_examples=1000)
    models = {'fp32': (symbol, arg_params, aux_params),
              'fp32_onednn_fused': (fuse_fp32(symbol), arg_params, aux_params)}
    for mode in ('naive', 'entropy'):
        models['int8_' + mode] = quantize_int8(symbol, arg_params, aux_params, calib_x,
                                               calib_y, calib_mode=mode)
    errors = {n: classification_error(*m, images, labels) for n, m in models.items()}
    weights = {l.weight for l in find_layers(symbol)}
    int8_bytes = sum(v.size if k in weights else 4 * v.size for k, v in arg_params.items())
    timing = time_inference(models, batch_size, repeats=repeats)
    for n in models:
        timing[n]['test_error'] = errors[n]
        timing[n]['speedup_vs_fp32'] = timing['fp32']['median_ms'] / timing[n]['median_ms']
        print('%-18s error %.2f%%  %.2f ms / batch of %d  (%.2fx)' % (
            n, 100 * errors[n], timing[n]['median_ms'], batch_size,
            timing[n]['speedup_vs_fp32']), flush=True)
    records = {}
    for n in models:
        if n.startswith('int8'):
            records['lenet5-' + n.replace('_', '-')] = {
                'method': 'MXNet int8 (%s calibration)' % n.split('_')[1],
                'base_network': 'lenet5', 'test_error': errors[n], 'flop_ratio': 1.0,
                'size_bytes': int8_bytes,
                'size_note': '1 byte per FC/conv weight (int8) + 4 per other param',
                'speedup_b%d' % batch_size: timing[n]['speedup_vs_fp32']}
    return dict(records, int8_vs_fp32_lenet5={
        'models': timing, 'batch_size': batch_size, 'calibration_examples': 1000,
        'omp_num_threads': os.environ.get('OMP_NUM_THREADS'),
        'note': 'interleaved in one process, median of repeats; machine shared with other '
                'jobs (2 cores)',
        'command': 'OMP_NUM_THREADS=%s flock %s python '
                   'scripts/bench_deep_compression.py --parts int8 --batch-size %d'
                   % (os.environ.get('OMP_NUM_THREADS'), TIMING_LOCK, batch_size)})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--parts', nargs='+', default=['lenet300', 'lenet5', 'table'],
                        choices=['lenet300', 'lenet5', 'table', 'int8'])
    parser.add_argument('--data-dir', default=None, help='MNIST directory')
    parser.add_argument('--batch-size', type=int, default=64, help='int8 timing batch')
    parser.add_argument('--repeats', type=int, default=30, help='int8 timing repeats')
    parser.add_argument('--output', default=RESULTS)
    parser.add_argument('--extra', default='', help='extra deep-compress options (quoted)')
    parser.add_argument('--baseline-dir', default=MODELS,
                        help='where the baseline checkpoints NAME-symbol.json / NAME-0000.params '
                             'are read from (default benchmarks/models)')
    args = parser.parse_args(argv)
    setup_logging()
    for part in args.parts:
        if part in DEEP_COMPRESSION:
            entries = run_deep(part, args.data_dir, args.extra.split(), args.baseline_dir)
        elif part == 'table':
            entries = run_table(args.data_dir)
        else:
            entries = run_int8(args.data_dir, args.batch_size, args.repeats, args.baseline_dir)
        update_results(args.output, entries, machine=dict(machine_info(), shared=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
