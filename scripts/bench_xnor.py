#!/usr/bin/env python
"""Benchmark the xnor_conv2d op against MXNet's fp32 Convolution (oneDNN), and end to end.

Writes ``benchmarks/results/xnor.json`` and ``benchmarks/results/xnor_speedup.png``:

* per layer (3x3, stride 1, pad 1, C -> C channels): 64 @ 56x56, 128 @ 28x28, 256 @ 14x14,
  512 @ 7x7, batch 1 and 8, with OMP_NUM_THREADS=1 and 2, under MXNet's default threaded
  engine and under NaiveEngine (``--engines``; each thread count and engine in its own
  subprocess; the threaded engine hands every call to an engine thread and back, which on a
  VM can cost as much as a whole batch-1 xnor layer; each record carries that cost, timed on
  a 1-element add, as ``engine_call_median_ms``). The op and ``mx.nd.Convolution`` run on
  the same input, alternating in blocks of ``--block`` runs in one process; the speed-up is
  the ratio of the medians of ``--repeats`` warm runs after warm-up (the first run of each
  block, with the other layer's data in the caches, is reported apart as cold). Also binary
  and fp32 MAC/s, the op's result checked against ``Convolution(sign(x), sign(W)) * alpha``,
  and memory (the op's workspace vs the bit-packed input plus the output plus an eighth of
  the float weights, for the AVX2 kernel's nibble-row copy of them). Targets: >= 7x at
  256 and 512 channels, >= 4x at 64 (aim 10x).
* end to end: a bnn-resnet converted to xnor_conv2d vs the same network in fp32 and vs the
  binary training graph, images/s at batch 1 and 32 (``mxcompress.measure.time_inference``),
  plus, on the whole MNIST test set, whether the converted model predicts exactly what the
  training graph predicts, and the weight bytes (1 bit each + alpha vs fp32). The trained
  model is ``--model`` (default: benchmarks/models/bnn-resnet); without one, a bnn-resnet
  with random weights is used and the record says so.

* ResNet-18 at ImageNet shape (``--resnet18``): ``symbols.get_symbol('bnn-resnet',
  num_layers=18, image_shape='3,224,224', num_classes=1000, num_bits=1)`` with random weights
  and BatchNorm statistics, converted (binary convs -> xnor_conv2d, the BatchNorm before each
  sign folded into the op's thresholds), against its full-precision twin (``num_bits=32``:
  the same topology, float convs, BatchNorm -> ReLU, no sign) at ``--batches``; targets
  >= 3x at batch 1 and >= 4x at batch 8 on 1 thread. The converted graph's predictions are
  checked against the binary training graph on random images first. With
  ``--packed-output-ablation`` the same conversion without bit-packed activations between
  binary convs (``convert(..., packed_output=False)``) is timed in the same interleaved runs
  (its outputs checked equal to the packed form's first).

Timing holds the timing lock of ``mxcompress.measure`` (one timing run at a time).

Example::

    python scripts/bench_xnor.py --model benchmarks/models/bnn-resnet   # everything
    python scripts/bench_xnor.py --repeats 5 --threads 1 --skip-e2e   # a quick look
    python scripts/bench_xnor.py --skip-layers --skip-e2e --resnet18 --output xnor_resnet18.json
    # ResNet-18 only, four separate runs per configuration, the median of their ratios:
    python scripts/bench_xnor.py --skip-layers --skip-e2e --resnet18 --rounds 4 --threads 1 \
        --kernels avx2 --output benchmarks/results/xnor_resnet18_repeat.json
    # another kernel, with its own JSON and PNG:
    MXCOMPRESS_XNOR_KERNEL=avx2 python scripts/bench_xnor.py --skip-e2e --output xnor_avx2.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from mxcompress.binary.quantizers import bwn_alpha
from mxcompress.measure import machine_info, paired_timing, timing_lock
from mxcompress.reporting.plots import pyplot, save_figure
from mxcompress.reporting.recipes import XNOR_LAYERS, XNOR_TARGETS
from mxcompress.reporting.results import update_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODEL_CANDIDATES = ['benchmarks/models/bnn-resnet']


def _engine_name():
    """'threaded' or 'naive': the MXNet engine of this worker (MXNET_ENGINE_TYPE)."""
    return 'naive' if os.environ.get('MXNET_ENGINE_TYPE') == 'NaiveEngine' else 'threaded'


def layer_weights(rng, channels):
    """A random 3x3 C -> C layer: fp32 weight NDArray (C, C, 3, 3), its packed bits and its
    BWN alpha (C,)."""
    import mxnet as mx
    import numpy as np
    import mxcompress.ops as ops
    weight = rng.randn(channels, channels, 3, 3).astype(np.float32)
    w_fp32 = mx.nd.array(weight)
    return (w_fp32, mx.nd.array(ops.pack_weights(weight), dtype='uint8'),
            bwn_alpha(mx.nd, w_fp32))


def time_layer_pair(x, layer, args):
    """``xnor_conv2d`` and fp32 ``Convolution`` (3x3, pad 1) on the same input ``x``
    (N, C, H, W), alternating in blocks (:func:`mxcompress.measure.paired_timing`).

    Returns
    -------
    max_err : float
        Max abs difference of the op from ``Convolution(sign(x), sign(W)) * alpha``.
    binary, fp32 : (wall list, cpu list, cold list)
    """
    import mxnet as mx
    from mxcompress.ops.reference import reference_conv
    w_fp32, packed, alpha = layer
    channels = x.shape[1]
    conv = dict(kernel=(3, 3), pad=(1, 1), stride=(1, 1), num_filter=channels)
    out_b, out_f = mx.nd.zeros(x.shape), mx.nd.zeros(x.shape)

    def run_binary():
        return mx.nd.xnor_conv2d(x, packed, alpha, out=out_b, **conv)

    def run_fp32():
        return mx.nd.Convolution(x, w_fp32, no_bias=True, out=out_f, **conv)

    check = reference_conv(x, w_fp32, alpha, kernel=(3, 3), pad=(1, 1))
    max_err = float(mx.nd.abs(run_binary() - check).max().asscalar())
    binary, fp32 = paired_timing(run_binary, run_fp32, args.repeats, args.warmup, args.block)
    return max_err, binary, fp32


def engine_call_ms(repeats=300, warmup=30):
    """Median wall time (ms) of one tiny synchronous call, a 1-element ``elemwise_add`` waited
    on: what the engine's hand-off (to its worker thread and back, or none under
    NaiveEngine) adds to every timed call of a layer, fp32 and xnor alike."""
    import mxnet as mx
    a, out = mx.nd.ones((1,)), mx.nd.zeros((1,))
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        mx.nd.elemwise_add(a, a, out=out).wait_to_read()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def layer_worker(args):
    """One thread count: every layer and batch, op vs fp32, printed as JSON."""
    import mxnet as mx
    import numpy as np
    import mxcompress.ops as ops
    ops.load()
    rng = np.random.RandomState(0)
    records = []
    call_ms = engine_call_ms()
    for channels, size in XNOR_LAYERS:
        layer = layer_weights(rng, channels)
        for batch in args.batches:
            x = mx.nd.array(rng.randn(batch, channels, size, size).astype(np.float32))
            max_err, (wall_b, cpu_b, cold_b), (wall_f, cpu_f, cold_f) = time_layer_pair(
                x, layer, args)
            tb, tf = statistics.median(wall_b), statistics.median(wall_f)
            cb, cf = statistics.median(cpu_b), statistics.median(cpu_f)
            threads = int(os.environ.get('OMP_NUM_THREADS', '1'))
            macs = batch * channels * channels * 9 * size * size
            workspace = ops.workspace_bytes(x.shape, channels, (3, 3), 1, 1, 1)
            bit_input = batch * size * size * ((channels + 7) // 8)
            output = 4 * batch * channels * size * size
            float_weights = 4 * channels * channels * 9
            target = XNOR_TARGETS[channels]
            record = {
                'layer': '%dch_%dpx' % (channels, size), 'channels': channels, 'pixels': size,
                'batch': batch, 'macs': macs,
                'binary_median_ms': 1e3 * tb, 'fp32_median_ms': 1e3 * tf,
                'binary_min_ms': 1e3 * min(wall_b), 'fp32_min_ms': 1e3 * min(wall_f),
                'speedup': tf / tb,
                'binary_cold_median_ms': 1e3 * statistics.median(cold_b),
                'fp32_cold_median_ms': 1e3 * statistics.median(cold_f),
                'speedup_cold': statistics.median(cold_f) / statistics.median(cold_b),
                'binary_gmacs_per_s': macs / tb / 1e9, 'fp32_gmacs_per_s': macs / tf / 1e9,
                'binary_cpu_median_ms': 1e3 * cb, 'fp32_cpu_median_ms': 1e3 * cf,
                'speedup_cpu_time': cf / cb,
                'binary_gmacs_per_cpu_s': macs / cb / 1e9, 'fp32_gmacs_per_cpu_s': macs / cf / 1e9,
                'target_speedup': target,
                'target_met': None if target is None else tf / tb >= target,
                'target_met_cpu_time': None if target is None else cf / cb >= target,
                'max_abs_error_vs_reference': max_err,
                'op_extra_bytes': workspace, 'bit_packed_input_bytes': bit_input,
                'output_bytes': output, 'float_weight_bytes': float_weights,
                # the workspace holds the packed input, a nibble-row copy of the weights
                # (1/16 of the float weights), the border table and per-thread counts
                'memory_ok': workspace <= bit_input + output + float_weights // 8,
                'threads': threads, 'engine': _engine_name(),
                'engine_call_median_ms': call_ms,
                'repeats': len(wall_b), 'cold_runs': len(cold_b),
                'warmup': args.warmup, 'block': args.block}
            records.append(record)
            print('%s engine, threads %d %-12s batch %d: xnor %.3f ms (%.0f GMAC/s), fp32 %.3f ms '
                  '(%.1f GMAC/s), speed-up %.2fx wall, %.2fx CPU time'
                  % (_engine_name(), threads, record['layer'], batch, 1e3 * tb, record['binary_gmacs_per_s'],
                     1e3 * tf, record['fp32_gmacs_per_s'], record['speedup'],
                     record['speedup_cpu_time']), file=sys.stderr)
    print(json.dumps({'kernel': ops.kernel_name(), 'layers': records}))


def find_model(explicit):
    for prefix in ([explicit] if explicit else []) + [os.path.join(ROOT, p)
                                                       for p in MODEL_CANDIDATES]:
        if prefix and os.path.exists(prefix + '-symbol.json'):
            return os.path.abspath(prefix)
    if explicit:
        sys.exit('error: --model %s: %s-symbol.json not found' % (explicit, explicit))
    return None


def random_bnn_resnet(seed=0, filter_list=(16, 32, 64)):
    """bnn-resnet (symbols/bnn_resnet.py, 8 layers) with random weights and BN statistics."""
    from symbols import bnn_resnet
    symbol = bnn_resnet.get_symbol(num_classes=10, num_layers=8, filter_list=filter_list)
    return (symbol,) + random_params(symbol, (1, 1, 28, 28), seed)


def e2e_models(args):
    """(name, source record, (symbol, args, aux), test images to check) per configuration."""
    from mxcompress.checkpoint import load_checkpoint
    prefix = find_model(args.model)
    if prefix:
        yield ('bnn-resnet', {'model': os.path.relpath(prefix, ROOT), 'weights': 'trained'},
               load_checkpoint(prefix, 0), None)
    else:
        yield ('bnn-resnet', {'model': 'symbols.bnn_resnet.get_symbol(num_layers=8)',
                              'weights': 'random (no trained bnn-resnet was available)'},
               random_bnn_resnet(), None)
    wide = (128, 256, 512)
    yield ('bnn-resnet-wide', {'model': 'symbols.bnn_resnet.get_symbol(num_layers=8, '
                                        'filter_list=%s)' % (wide,),
                               'weights': 'random (shows the op at wider layers)'},
           random_bnn_resnet(filter_list=wide), 2000)


def e2e_one(name, source, model, num_check, args):
    import numpy as np
    from mxcompress.binary.convert import convert, float_graph, size_report
    from mxcompress.checkpoint import save_checkpoint
    from mxcompress.data import load_mnist
    from mxcompress.measure import predict, time_inference
    symbol, arg_params, aux_params = model
    conv_sym, conv_args, conv_aux, layers = convert(symbol, arg_params, aux_params)
    record = dict(source)
    if args.save_converted and name == 'bnn-resnet' and source['weights'] == 'trained':
        save_checkpoint(args.save_converted, 0, conv_sym, conv_args, conv_aux)
        record['converted_checkpoint'] = os.path.relpath(args.save_converted, ROOT)
    images, labels = load_mnist('test', args.data_dir, num_examples=num_check)
    p_train = predict(symbol, arg_params, aux_params, images)
    p_xnor = predict(conv_sym, conv_args, conv_aux, images)
    same = int(np.sum(p_train.argmax(1) == p_xnor.argmax(1)))
    fp32_sym, fp32_args = float_graph(symbol, arg_params)
    record.update({
        'binary_layers_converted': len(layers),
        'predictions_equal': same == len(labels), 'predictions_equal_count': same,
        'test_images': int(len(labels)),
        'test_error_training_graph': float(np.mean(p_train.argmax(1) != labels)),
        'test_error_xnor': float(np.mean(p_xnor.argmax(1) != labels)),
        'max_abs_prob_diff': float(np.abs(p_train - p_xnor).max()),
        'size': size_report(layers, arg_params, conv_args), 'layers': layers})
    models = {'xnor': (conv_sym, conv_args, conv_aux), 'fp32': (fp32_sym, fp32_args, aux_params),
              'training_graph': (symbol, arg_params, aux_params)}
    record['timing'] = {}
    for batch in (1, 32):
        timing = time_inference(models, batch, repeats=args.repeats, warmup=args.warmup)
        timing['speedup_vs_fp32'] = timing['fp32']['median_ms'] / timing['xnor']['median_ms']
        timing['speedup_vs_training_graph'] = (timing['training_graph']['median_ms'] /
                                               timing['xnor']['median_ms'])
        record['timing']['batch_%d' % batch] = timing
        print('%s engine, threads %s %s batch %d: xnor %.0f img/s, fp32 %.0f img/s, training '
              'graph %.0f img/s' % (_engine_name(), os.environ.get('OMP_NUM_THREADS'), name, batch,
                         timing['xnor']['images_per_s'], timing['fp32']['images_per_s'],
                         timing['training_graph']['images_per_s']), file=sys.stderr)
    return record


def e2e_worker(args):
    """Convert bnn-resnet(s), check predictions on MNIST test, time images/s; print JSON."""
    import mxcompress.ops as ops
    ops.load()
    print(json.dumps({name: e2e_one(name, source, model, num_check, args)
                      for name, source, model, num_check in e2e_models(args)}))


def random_params(symbol, data_shape, seed=0):
    """Uniform(-1, 1) weights and plausible BatchNorm statistics for ``symbol``."""
    import mxnet as mx
    import numpy as np
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=data_shape)
    rng = np.random.RandomState(seed)
    args = {n: mx.nd.array(rng.uniform(-1, 1, s)) for n, s in
            zip(symbol.list_arguments(), arg_shapes) if n not in ('data', 'softmax_label')}
    aux = {n: mx.nd.array(rng.uniform(-0.2, 0.2, s) if n.endswith('mean')
                          else rng.uniform(0.5, 2.0, s))
           for n, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return args, aux


def resnet18_models(packed_output=True):
    """The binary ResNet-18 at 3x224x224 (random weights and BatchNorm statistics), its
    conversion and its fp32 twin.

    Parameters
    ----------
    packed_output : bool
        The converter's ``packed_output`` (bit-packed activations between binary convs).

    Returns
    -------
    binary, converted, twin : (symbol, arg_params, aux_params)
    layers : list of dict
        The converter's per-layer records.
    """
    import mxcompress.ops as ops
    import symbols
    from mxcompress.binary.convert import convert
    ops.load()
    shape = (1, 3, 224, 224)
    spec = dict(num_layers=18, image_shape='3,224,224', num_classes=1000)
    binary = symbols.get_symbol('bnn-resnet', num_bits=1, **spec)
    twin = symbols.get_symbol('bnn-resnet', num_bits=32, **spec)
    b_args, b_aux = random_params(binary, shape)
    converted = convert(binary, b_args, b_aux, packed_output=packed_output)
    return ((binary, b_args, b_aux), converted[:3], (twin,) + random_params(twin, shape, seed=1),
            converted[3])


def resnet18_worker(args):
    """Binary ResNet-18 (ImageNet shape) converted vs its fp32 twin; print JSON."""
    import numpy as np
    import mxcompress.ops as ops
    from mxcompress.measure import predict, time_inference
    from mxcompress.binary.convert import convert
    (binary, b_args, b_aux), (x_sym, x_args, x_aux), twin, layers = resnet18_models()
    images = np.random.RandomState(2).randn(4, 3, 224, 224).astype(np.float32)
    want = predict(binary, b_args, b_aux, images, batch_size=4)
    got = predict(x_sym, x_args, x_aux, images, batch_size=4)
    float_between = None
    if args.packed_output_ablation:
        float_between = convert(binary, b_args, b_aux, packed_output=False)[:3]
        same = predict(*float_between, images, batch_size=4)
        if not np.array_equal(same, got):
            sys.exit('error: packed_output=False gives other outputs than the packed form')
    record = {'model': "symbols.get_symbol('bnn-resnet', num_layers=18, image_shape="
                       "'3,224,224', num_classes=1000, num_bits=1), random weights",
              'fp32_twin': 'the same with num_bits=32', 'kernel': ops.kernel_name(),
              'engine': _engine_name(), 'threads': os.environ.get('OMP_NUM_THREADS'),
              'binary_layers_converted': len(layers),
              'batchnorms_folded': sum(r['batchnorm_folded'] is not None for r in layers),
              'packed_outputs': sum(r['packed_output'] is not None for r in layers),
              'check_images': len(images),
              'predictions_equal': bool(np.all(got.argmax(1) == want.argmax(1))),
              'max_abs_prob_diff': float(np.abs(got - want).max()),
              'targets': {'batch_1': 3.0, 'batch_8': 4.0}, 'timing': {}}
    models = {'xnor': (x_sym, x_args, x_aux), 'fp32_twin': twin}
    if float_between is not None:
        models['xnor_float_between'] = float_between
        record['xnor_float_between'] = ('the same conversion with packed_output=False (float '
                                        'activations between binary convs); outputs equal')
    for batch in args.batches:
        timing = time_inference(models, batch, repeats=args.repeats, warmup=args.warmup)
        timing['speedup_vs_fp32_twin'] = (timing['fp32_twin']['median_ms'] /
                                          timing['xnor']['median_ms'])
        if float_between is not None:
            timing['speedup_packed_vs_float_between'] = (
                timing['xnor_float_between']['median_ms'] / timing['xnor']['median_ms'])
            print('ResNet-18 batch %d: packed %.1f ms, float between %.1f ms, %.3fx'
                  % (batch, timing['xnor']['median_ms'],
                     timing['xnor_float_between']['median_ms'],
                     timing['speedup_packed_vs_float_between']), file=sys.stderr)
        target = record['targets'].get('batch_%d' % batch)
        timing['target_met'] = None if target is None else bool(
            timing['speedup_vs_fp32_twin'] >= target)
        record['timing']['batch_%d' % batch] = timing
        print('%s engine, threads %s, ResNet-18 batch %d: xnor %.1f ms, fp32 twin %.1f ms, '
              '%.2fx' % (_engine_name(), os.environ.get('OMP_NUM_THREADS'), batch,
                         timing['xnor']['median_ms'], timing['fp32_twin']['median_ms'],
                         timing['speedup_vs_fp32_twin']), file=sys.stderr)
    print(json.dumps(record))


def merge_rounds(records):
    """One ResNet-18 record from the records of ``--rounds`` separate runs of a worker.

    A single run is returned as it is. Otherwise the first run's record keeps its fields,
    ``rounds`` holds every run's ``timing``, and ``timing`` per batch the median over the runs
    of the speed-up vs the fp32 twin (each run's own interleaved-median ratio), its range, and
    whether that median meets the target.
    """
    if len(records) == 1:
        return records[0]
    import numpy as np
    merged = dict(records[0], rounds=[r['timing'] for r in records], timing={})
    for batch in records[0]['timing']:
        ratios = [r['timing'][batch]['speedup_vs_fp32_twin'] for r in records]
        row = {'speedup_vs_fp32_twin': float(np.median(ratios)),
               'speedup_each_round': ratios, 'speedup_min': min(ratios),
               'speedup_max': max(ratios),
               'xnor_median_ms_each_round': [r['timing'][batch]['xnor']['median_ms']
                                             for r in records],
               'fp32_twin_median_ms_each_round': [r['timing'][batch]['fp32_twin']['median_ms']
                                                  for r in records]}
        packed = [r['timing'][batch].get('speedup_packed_vs_float_between') for r in records]
        if None not in packed:
            row['speedup_packed_vs_float_between'] = float(np.median(packed))
        target = records[0]['targets'].get(batch)
        row['target_met'] = None if target is None else bool(row['speedup_vs_fp32_twin'] >=
                                                             target)
        merged['timing'][batch] = row
    return merged


def available_kernels_of_this_cpu():
    """The xnor kernels this CPU runs, fastest first (asked in a subprocess, so this process
    does not load the op library)."""
    out = subprocess.run([sys.executable, '-c', 'import mxcompress.ops as o; '
                          'print(" ".join(o.available_kernels()))'],
                         env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    return out.split()


#: --engines choice -> MXNET_ENGINE_TYPE
ENGINES = {'threaded': 'ThreadedEnginePerDevice', 'naive': 'NaiveEngine'}


def run_worker(mode, threads, args, engine='threaded', kernel=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_CPU_WORKER_NTHREADS='1',
               MXNET_ENGINE_TYPE=ENGINES[engine],
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    if kernel:
        env['MXCOMPRESS_XNOR_KERNEL'] = kernel
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', mode,
           '--repeats', str(args.repeats), '--warmup', str(args.warmup),
           '--block', str(args.block),
           '--batches'] + [str(b) for b in args.batches]
    if args.model:
        cmd += ['--model', args.model]
    if args.data_dir:
        cmd += ['--data-dir', args.data_dir]
    if args.packed_output_ablation:
        cmd += ['--packed-output-ablation']
    if (args.save_converted and mode == 'e2e' and threads == args.threads[0]
            and engine == args.engines[0]):
        cmd += ['--save-converted', args.save_converted]
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, universal_newlines=True)
    if out.returncode != 0:
        sys.exit('error: %s worker with %d threads failed (exit %d)' % (mode, threads,
                                                                       out.returncode))
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(records, path):
    """Bar chart of the per-layer speed-ups: one panel per MXNet engine, bars the wall-clock
    ratio of warm medians per (threads, batch), dots the CPU-time ratio."""
    plt = pyplot()
    import numpy as np
    engines = sorted({r.get('engine', 'threaded') for r in records}, reverse=True)
    fig, axes = plt.subplots(1, len(engines), figsize=(7 * len(engines), 4.5), sharey=True,
                             squeeze=False)
    for ax, engine in zip(axes[0], engines):
        mine = [r for r in records if r.get('engine', 'threaded') == engine]
        groups = sorted({(r['threads'], r['batch']) for r in mine})
        layers = [r['layer'] for r in mine if (r['threads'], r['batch']) == groups[0]]
        x = np.arange(len(layers))
        width = 0.8 / len(groups)
        for i, (threads, batch) in enumerate(groups):
            rows = [r for r in mine if (r['threads'], r['batch']) == (threads, batch)]
            pos = x + i * width - 0.4 + width / 2
            ax.bar(pos, [r['speedup'] for r in rows], width,
                   label='%d thread%s, batch %d' % (threads, 's' if threads > 1 else '', batch))
            ax.plot(pos, [r['speedup_cpu_time'] for r in rows], 'k.', ms=5,
                    label='CPU-time ratio' if i == 0 else None)
        for target in (3, 6, 10):
            ax.axhline(target, color='grey', lw=0.8, ls='--')
        ax.set_xticks(x)
        ax.set_xticklabels([l.replace('_', '\n') for l in layers])
        ax.set_title('MXNet %s engine (MXNET_ENGINE_TYPE=%s)' % (engine, ENGINES[engine]),
                     fontsize=10)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel('speed-up vs fp32 Convolution (oneDNN)')
    fig.suptitle('xnor_conv2d vs fp32, 3x3 conv C -> C: bars wall-clock medians of warm runs, '
                 'dots CPU time', fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                        help='OMP_NUM_THREADS values, one subprocess each')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--repeats', type=int, default=40, help='timed runs (median)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--block', type=int, default=5,
                        help='consecutive runs of one layer per round (the op and fp32 '
                             'alternate by blocks; the first run of each block is reported '
                             'apart as cold)')
    parser.add_argument('--kernels', nargs='+', choices=['auto', 'avx512', 'avx2', 'portable'],
                        default=None,
                        help='xnor kernels to time, one subprocess each (MXCOMPRESS_XNOR_KERNEL); '
                             'default: every kernel this CPU runs, so a CPU with AVX-512 '
                             'reports the AVX2 path too')
    parser.add_argument('--engines', nargs='+', choices=sorted(ENGINES),
                        default=['threaded', 'naive'],
                        help='MXNet engines to measure under, one subprocess each: threaded '
                             '(the default ThreadedEnginePerDevice: ops run on an engine '
                             'thread, with a hand-off per call) and naive (NaiveEngine: ops run '
                             'in the calling thread)')
    parser.add_argument('--other-load', default='none known',
                        help='what else ran on the machine during the run (recorded)')
    parser.add_argument('--skip-e2e', action='store_true', help='per-layer benchmark only')
    parser.add_argument('--skip-layers', action='store_true', help='end to end only')
    parser.add_argument('--model', help='trained bnn-resnet checkpoint prefix (epoch 0)')
    parser.add_argument('--save-converted', default=os.path.join(ROOT, 'benchmarks', 'models',
                                                                  'bnn-resnet-xnor'),
                        help='where to save the converted inference checkpoint')
    parser.add_argument('--data-dir', help='MNIST directory (default: $MXCOMPRESS_DATA)')
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                          'xnor.json'))
    parser.add_argument('--resnet18', action='store_true',
                        help='also time the binary ResNet-18 at 3x224x224 against its fp32 twin '
                             '(--batches, --threads, --engines, every --kernels)')
    parser.add_argument('--packed-output-ablation', action='store_true',
                        help='with --resnet18: also time the conversion without bit-packed '
                             'activations between binary convs (packed_output=False) in the '
                             'same interleaved runs, and report the ratio')
    parser.add_argument('--rounds', type=int, default=1,
                        help='with --resnet18: separate runs of every configuration, '
                             'round-robin; the speed-up reported is the median of the runs\' '
                             'ratios, each run\'s in "rounds" (default: %(default)s)')
    parser.add_argument('--worker', choices=['layers', 'e2e', 'resnet18'],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error('--rounds must be at least 1, got %d' % args.rounds)
    if args.worker == 'layers':
        return layer_worker(args)
    if args.worker == 'e2e':
        return e2e_worker(args)
    if args.worker == 'resnet18':
        return resnet18_worker(args)

    if args.kernels is None and (not args.skip_layers or args.resnet18):
        args.kernels = available_kernels_of_this_cpu()
    entries = {}
    with timing_lock():
        load_before = os.getloadavg()
        if not args.skip_layers:
            records, kernels = [], []
            for kernel in args.kernels or [None]:
                for engine in args.engines:
                    for threads in args.threads:
                        result = run_worker('layers', threads, args, engine, kernel)
                        for record in result['layers']:
                            record['kernel'] = result['kernel']
                        kernels.append(result['kernel'])
                        records.extend(result['layers'])
            kernel = ', '.join(dict.fromkeys(kernels))
            met = [r['target_met'] for r in records if r['target_met'] is not None]
            met_cpu = [r['target_met_cpu_time'] for r in records
                       if r['target_met_cpu_time'] is not None]
            by_engine = {engine: all(r['target_met'] for r in records
                                     if r['engine'] == engine and r['target_met'] is not None)
                         for engine in args.engines}
            entries['per_layer'] = {
                'kernel': kernel, 'records': records,
                'targets': '>= 7x at 256 and 512 channels, >= 4x at 64 (1 and 2 threads, '
                           'batch 1 and 8); aim 10x; AVX-512 >= 8x at 256 / 512',
                'all_targets_met': all(met), 'targets_met_count': sum(met),
                'all_targets_met_by_engine': by_engine,
                'all_targets_met_cpu_time': all(met_cpu),
                'targets_met_count_cpu_time': sum(met_cpu),
                'targets_checked': len(met),
                'median_speedup': statistics.median(r['speedup'] for r in records),
                'median_speedup_cpu_time': statistics.median(r['speedup_cpu_time']
                                                             for r in records),
                'note': 'speedup: ratio of wall-clock medians of warm runs (runs 2..block '
                        'of each block of consecutive runs of one layer); speedup_cold: the '
                        'same for the first run of each block, right after the other layer '
                        'ran (cold caches); speedup_cpu_time: ratio of process-CPU-time '
                        'medians of the warm runs, which other jobs do not inflate.',
                'memory_ok_all': all(r['memory_ok'] for r in records)}
            # xnor.json -> xnor_speedup.png (another --output gets its own figure)
            plot(records, os.path.splitext(args.output)[0] + '_speedup.png')
        if not args.skip_e2e:
            entries['end_to_end'] = {'%s_engine_threads_%d' % (engine, t):
                                     run_worker('e2e', t, args, engine)
                                     for engine in args.engines for t in args.threads}
        if args.resnet18:
            configs = [(kernel, engine, t) for kernel in args.kernels
                       for engine in args.engines for t in args.threads]
            runs = {c: [] for c in configs}
            for _ in range(args.rounds):     # round-robin: drift of the machine hits all alike
                for kernel, engine, t in configs:
                    runs[kernel, engine, t].append(run_worker('resnet18', t, args, engine,
                                                              kernel))
            entries['resnet18_end_to_end'] = {'%s_%s_engine_threads_%d' % c: merge_rounds(r)
                                              for c, r in runs.items()}
        load_after = os.getloadavg()
    machine = machine_info()
    machine['load_average_before_after'] = [load_before, load_after]
    machine['other_load'] = args.other_load
    for entry in entries.values():
        entry['command'] = 'python scripts/bench_xnor.py ' + ' '.join(argv or sys.argv[1:])
    update_results(args.output, entries, machine=machine)
    print('wrote %s' % args.output, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
