#!/usr/bin/env python
"""Benchmark xnor_conv2d side by side with Larq Compute Engine (LCE) and TFLite fp32 (XNNPACK).

Writes ``benchmarks/results/peers.json`` (``--output``): the same layer shapes and networks,
the same thread counts, timed back to back on one machine by

* ours: ``mx.nd.xnor_conv2d`` (the C++ op of ``mxcompress/ops``, NCHW, float input binarised
  inside, float output scaled by the per-channel alpha) and MXNet's fp32 ``mx.nd.Convolution``
  (oneDNN), timed in one process per thread count (``OMP_NUM_THREADS=T``,
  ``MXNET_CPU_WORKER_NTHREADS=1``, default threaded engine) with
  ``mxcompress.measure.paired_timing`` (alternating blocks of ``--block`` runs; warm runs);
* LCE 0.16: a one-layer Keras model ``larq.layers.QuantConv2D(C, 3, padding='same',
  input_quantizer='ste_sign', kernel_quantizer='ste_sign', kernel_constraint='weight_clip',
  use_bias=False)`` on NHWC input, converted with ``lce.convert_keras_model``; the input is
  float and is binarised inside the graph (an LceQuantize op), the output is float, zero
  padding as ours (ours also scales by alpha; LCE would fuse such a per-channel scale into
  its output transform, so it is left out). Two kernels: ``lce_indirect_bgemm``
  (``use_indirect_bgemm=True``: LCE's portable x86 kernel, ALWAYS ONE THREAD whatever
  ``num_threads``) and ``lce_bgemm`` (the default bgemm, multi-threaded; slow on x86;
  ``--skip-lce-bgemm`` drops it). LCE's Python
  interpreter has only ``predict``, so its times include copying the input in and the
  output out; ``tflite_fp32_copy_ms`` (TFLite's ``set_tensor`` + ``get_tensor`` alone)
  estimates that cost;
* TFLite fp32: the same layer as ``tf.keras.layers.Conv2D`` converted with
  ``tf.lite.TFLiteConverter`` (float32), ``tf.lite.Interpreter(num_threads=T)`` (XNNPACK,
  TF 2.16's default delegate), timed by ``invoke()`` on input set once.

Layers: 3x3, stride 1, "same", C -> C channels, the shapes of ``scripts/bench_xnor.py``
(64 @ 56x56, 128 @ 28x28, 256 @ 14x14, 512 @ 7x7), batches ``--batches``, threads
``--threads``. Per (layer, batch, threads) the JSON has the median ms of every path and
``ours_speedup_vs_lce_best`` (best LCE ms / ours ms: above 1 means ours is faster),
``ours_speedup_vs_tflite_fp32`` and ``tflite_fp32_speedup_vs_mxnet_fp32``.

ResNet-18 (3x224x224, 1000 classes; ``--skip-resnet18`` drops it): ours is
``symbols.get_symbol('bnn-resnet', num_layers=18, image_shape='3,224,224', num_classes=1000,
num_bits=1)`` with random weights converted by ``mxcompress.binary.convert.convert``, against
its ``num_bits=32`` twin; the peers are the same topology in Larq (7x7/2 float stem + BN +
ReLU + 3x3/2 max pool; units BN -> binary 3x3 conv -> BN -> binary 3x3 conv plus an identity
shortcut or a binary 3x3 conv of the unit's first binarised activation; BN + ReLU + global
average pool + float FC + softmax), converted by LCE, and its fp32 twin (BN -> ReLU, float
convs) converted for TFLite. TF's "same" pads strided layers bottom/right only where MXNet
pads 1 on every side: the same work, a one-pixel offset.

The peer side runs in its own virtual environment (``--peer-python``; TensorFlow is not a
dependency of mxcompress): this script starts that python on itself with ``--worker peer``,
which imports only numpy, tensorflow, larq and larq_compute_engine. Timing holds the timing
lock of ``mxcompress.measure``. See benchmarks/PEERS.md.

Examples::

    # the full benchmark (quiet machine; see benchmarks/PEERS.md for the time it takes)
    python scripts/bench_peers.py
    # a quick look: one layer, one thread, batch 1, no ResNet-18, scratch output
    python scripts/bench_peers.py --layers 64 --threads 1 --batches 1 --repeats 3 \\
        --warmup 1 --skip-resnet18 --output /tmp/peers.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEER_PYTHON = '/work/peer-venv/bin/python'
PEER_SETUP = ('python3.11 -m venv /work/peer-venv && /work/peer-venv/bin/pip install '
              'tensorflow==2.16.2 tf_keras==2.16.0 && /work/peer-venv/bin/pip install '
              'larq-compute-engine==0.16.0 larq==0.14.0   (benchmarks/PEERS.md)')
RESNET18_STAGES = [(64, 2), (128, 2), (256, 2), (512, 2)]   # as symbols/bnn_resnet.py


# ---------------------------------------------------------------- helpers (no TF, no MXNet)

def parse_shape(text):
    """``'64:56'`` -> ``(64, 56)``: channels and pixels of a layer (worker option)."""
    channels, pixels = text.split(':')
    return int(channels), int(pixels)


def select_layers(channels, table):
    """The layers of ``table`` to time.

    Parameters
    ----------
    channels : list of int or None
        Channel counts asked for (``--layers``); None: every layer.
    table : list of (int, int)
        ``(channels, pixels)`` of the known layers (``XNOR_LAYERS``).

    Returns
    -------
    list of (int, int), in table order

    Raises
    ------
    ValueError
        A channel count not in ``table``.
    """
    known = [c for c, _ in table]
    unknown = sorted(set(channels or ()) - set(known))
    if unknown:
        raise ValueError('--layers %s: the layers are %s channels' % (unknown, known))
    return [(c, p) for c, p in table if channels is None or c in channels]


def ratio(numerator, denominator):
    """``numerator / denominator``, or None when either is missing."""
    if numerator is None or denominator is None:
        return None
    return numerator / denominator


def median_times(wall, cpu=None):
    """``median_ms``, ``min_ms`` (and ``cpu_median_ms``) of samples in seconds."""
    out = {'median_ms': 1e3 * statistics.median(wall), 'min_ms': 1e3 * min(wall),
           'runs': len(wall)}
    if cpu:
        out['cpu_median_ms'] = 1e3 * statistics.median(cpu)
    return out


def compare(ours, peer):
    """One comparison record: every median and the ratios.

    Parameters
    ----------
    ours : dict
        Our worker's record (``binary_ms``: xnor_conv2d, ``fp32_ms``: MXNet fp32).
    peer : dict
        The peer worker's record (``paths``: name -> ``{'median_ms': ...}``), or ``{}``.

    Returns
    -------
    dict
        ``*_ms`` per path (None where missing), ``lce_best_path`` / ``lce_best_ms``, and
        ``ours_speedup_vs_lce_best``, ``ours_speedup_vs_tflite_fp32``,
        ``tflite_fp32_speedup_vs_mxnet_fp32`` (other ms / first ms: above 1, the first is
        faster); the two records under ``ours`` and ``peer``.
    """
    paths = peer.get('paths', {})
    ms = {name: p['median_ms'] for name, p in paths.items()}
    lce = {n: v for n, v in ms.items() if n.startswith('lce_')}
    best = min(lce, key=lce.get) if lce else None
    tflite = ms.get('tflite_fp32')
    return {'ours_ms': ours.get('binary_ms'), 'mxnet_fp32_ms': ours.get('fp32_ms'),
            'lce_indirect_bgemm_ms': ms.get('lce_indirect_bgemm'),
            'lce_bgemm_ms': ms.get('lce_bgemm'), 'tflite_fp32_ms': tflite,
            'tflite_fp32_copy_ms': peer.get('tflite_fp32_copy_ms'),
            'lce_best_path': best, 'lce_best_ms': lce.get(best),
            'ours_speedup_vs_lce_best': ratio(lce.get(best), ours.get('binary_ms')),
            'ours_speedup_vs_tflite_fp32': ratio(tflite, ours.get('binary_ms')),
            'tflite_fp32_speedup_vs_mxnet_fp32': ratio(ours.get('fp32_ms'), tflite),
            'ours': ours, 'peer': peer}


def merge(ours_records, peer_records, key_fields):
    """Pair our records with the peer's and :func:`compare` each pair.

    Parameters
    ----------
    ours_records, peer_records : list of dict
    key_fields : tuple of str
        Fields that identify a measurement (e.g. ``('layer', 'batch', 'threads')``).

    Returns
    -------
    list of dict
        One per record of ours, in order; the peer's figures are None where the peer has no
        record with the same key.
    """
    peers = {tuple(r[k] for k in key_fields): r for r in peer_records}
    merged = []
    for mine in ours_records:
        key = tuple(mine[k] for k in key_fields)
        record = dict(zip(key_fields, key))
        record.update(compare(mine, peers.get(key, {})))
        merged.append(record)
    return merged


def interleaved(runners, repeats, warmup):
    """Time callables round-robin, one run of each per round (drift hits all alike).

    Parameters
    ----------
    runners : dict of str -> callable
    repeats, warmup : int
        Timed rounds, after ``warmup`` untimed ones.

    Returns
    -------
    dict of str -> dict
        :func:`median_times` of each callable (wall clock and process CPU time).
    """
    wall = {n: [] for n in runners}
    cpu = {n: [] for n in runners}
    for i in range(warmup + repeats):
        for name, fn in runners.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            w, c = time.perf_counter() - w, time.process_time() - c
            if i >= warmup:
                wall[name].append(w)
                cpu[name].append(c)
    return {n: median_times(wall[n], cpu[n]) for n in runners}


# ---------------------------------------------------------------- ours (MXNet, main env)

def ours_worker(args):
    """Our side at one thread count (``OMP_NUM_THREADS``), printed as one JSON line.

    Per layer of ``args.shapes`` and batch: ``xnor_conv2d`` and fp32 ``Convolution`` on the
    same input, ``paired_timing`` (warm runs), and the op checked against
    ``reference_conv``; then ResNet-18 (:func:`ours_resnet18`) when ``args.resnet18``.
    """
    import mxnet as mx
    import numpy as np
    import mxcompress.ops as ops
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    from bench_xnor import layer_weights, time_layer_pair   # the per-layer timing of ours
    ops.load()
    threads = int(os.environ.get('OMP_NUM_THREADS', '1'))
    rng = np.random.RandomState(0)
    layers = []
    for channels, size in args.shapes:
        layer = layer_weights(rng, channels)
        for batch in args.batches:
            x = mx.nd.array(rng.randn(batch, channels, size, size).astype(np.float32))
            err, (wall_b, cpu_b, _), (wall_f, cpu_f, _) = time_layer_pair(x, layer, args)
            binary, fp32 = median_times(wall_b, cpu_b), median_times(wall_f, cpu_f)
            layers.append({'layer': '%dch_%dpx' % (channels, size), 'batch': batch,
                           'threads': threads, 'binary_ms': binary['median_ms'],
                           'fp32_ms': fp32['median_ms'], 'binary': binary, 'fp32': fp32,
                           'max_abs_error_vs_reference': err})
            print('ours, %d thread(s), %dch_%dpx batch %d: xnor %.3f ms, MXNet fp32 %.3f ms'
                  % (threads, channels, size, batch, binary['median_ms'], fp32['median_ms']),
                  file=sys.stderr)
    resnet = []
    if args.resnet18:
        resnet = ours_resnet18(args, threads)
    print(json.dumps({'kernel': ops.kernel_name(), 'layers': layers, 'resnet18': resnet}))


def ours_resnet18(args, threads):
    """Converted binary ResNet-18 and its fp32 twin, ``time_inference`` per batch."""
    from mxcompress.measure import time_inference
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    from bench_xnor import resnet18_models   # the same networks as bench_xnor --resnet18
    _, converted, twin, _ = resnet18_models()
    models = {'xnor': converted, 'fp32_twin': twin}
    records = []
    for batch in args.batches:
        timing = time_inference(models, batch, repeats=args.repeats, warmup=args.warmup)
        records.append({'batch': batch, 'threads': threads, 'timing': timing,
                        'binary_ms': timing['xnor']['median_ms'],
                        'fp32_ms': timing['fp32_twin']['median_ms']})
        print('ours, %d thread(s), ResNet-18 batch %d: xnor %.1f ms, fp32 twin %.1f ms'
              % (threads, batch, records[-1]['binary_ms'], records[-1]['fp32_ms']),
              file=sys.stderr)
    return records


# ---------------------------------------------------------------- peers (TF env only)

def peer_models(tf, lq, kind, batch, size, channels):
    """The binary (Larq) and fp32 (Keras) models of one peer measurement.

    Parameters
    ----------
    tf, lq : modules
        ``tensorflow`` (with ``TF_USE_LEGACY_KERAS=1``) and ``larq``.
    kind : {'layer', 'resnet18'}
        One 3x3 "same" convolution C -> C, or ResNet-18 with the topology of
        ``symbols/bnn_resnet.py`` (binary units, or the fp32 twin's BN -> ReLU units).
    batch, size, channels : int
        The input, NHWC ``(batch, size, size, channels)``.

    Returns
    -------
    dict
        ``'binary'`` and ``'fp32'``: ``tf.keras.Model``; random weights, and random BatchNorm
        statistics as ``bench_xnor.random_params`` draws them (so LCE's fused thresholds
        rarely meet exact ties and its output can be checked against Keras).
    """
    import numpy as np
    keras = tf.keras

    def conv(x, filters, kernel=3, stride=1, binary=False):
        if binary:
            return lq.layers.QuantConv2D(filters, kernel, strides=stride, padding='same',
                                         input_quantizer='ste_sign',
                                         kernel_quantizer='ste_sign',
                                         kernel_constraint='weight_clip', use_bias=False)(x)
        return keras.layers.Conv2D(filters, kernel, strides=stride, padding='same',
                                   use_bias=False)(x)

    def bn(x):
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)

    def unit(x, filters, stride, dim_match, binary):   # symbols/bnn_resnet.py's units
        if binary:   # BN -> sign (inside the next QuantConv2D) -> binary conv
            act1 = bn(x)
            body = conv(bn(conv(act1, filters, stride=stride, binary=True)), filters,
                        binary=True)
        else:        # BN -> ReLU -> float conv
            act1 = keras.layers.ReLU()(bn(x))
            body = conv(keras.layers.ReLU()(bn(conv(act1, filters, stride=stride))), filters)
        shortcut = x if dim_match else conv(act1, filters, stride=stride, binary=binary)
        return keras.layers.Add()([body, shortcut])

    result = {}
    for binary in (True, False):
        inp = keras.Input((size, size, channels), batch_size=batch)
        if kind == 'layer':
            out = conv(inp, channels, binary=binary)
        else:
            x = conv(inp, 64, kernel=7, stride=2)
            x = keras.layers.MaxPool2D(3, strides=2, padding='same')(
                keras.layers.ReLU()(bn(x)))
            current = 64
            for i, (filters, units) in enumerate(RESNET18_STAGES):
                for j in range(units):
                    stride = 1 if i == 0 or j > 0 else 2
                    x = unit(x, filters, stride, stride == 1 and current == filters, binary)
                    current = filters
            x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(bn(x)))
            out = keras.layers.Dense(1000, activation='softmax')(x)
        model = keras.Model(inp, out)
        rng = np.random.RandomState(0)
        for layer in model.layers:   # BatchNorm statistics as bench_xnor.random_params's
            if isinstance(layer, keras.layers.BatchNormalization):
                c = layer.gamma.shape[0]
                layer.set_weights([rng.uniform(-1, 1, c), rng.uniform(-1, 1, c),
                                   rng.uniform(-0.2, 0.2, c), rng.uniform(0.5, 2.0, c)])
        result['binary' if binary else 'fp32'] = model
    return result


def peer_time(tf, lce, models, x, args):
    """Convert ``models`` (LCE / TFLite fp32) and time every path at each of ``--threads``.

    Parameters
    ----------
    tf, lce : modules
    models : dict
        :func:`peer_models`'s ``{'binary', 'fp32'}``.
    x : numpy.ndarray, float32, NHWC
        The input (its batch is the models' batch).
    args : argparse.Namespace
        ``threads``, ``repeats``, ``warmup``, ``skip_lce_bgemm``.

    Returns
    -------
    list of dict
        Per thread count: ``paths`` (name -> :func:`median_times`), the copy cost estimate,
        each path's max abs difference from Keras on ``x``, the flatbuffer sizes.
    """
    flat_b = lce.convert_keras_model(models['binary'])
    flat_f = tf.lite.TFLiteConverter.from_keras_model(models['fp32']).convert()
    want, want_fp32 = models['binary'](x).numpy(), models['fp32'](x).numpy()
    records = []
    for threads in args.threads:
        paths = {'lce_indirect_bgemm': dict(use_indirect_bgemm=True)}
        if not args.skip_lce_bgemm:
            paths['lce_bgemm'] = {}
        runners = {}
        errors = {}
        for name, options in paths.items():
            interp = lce.testing.Interpreter(flat_b, num_threads=threads, **options)
            errors[name] = float(abs(interp.interpreter.predict([x])[0] - want).max())
            runners[name] = (lambda i: lambda: i.interpreter.predict([x]))(interp)
        tfl = tf.lite.Interpreter(model_content=flat_f, num_threads=threads)
        tfl.allocate_tensors()
        index_in = tfl.get_input_details()[0]['index']
        index_out = tfl.get_output_details()[0]['index']
        tfl.set_tensor(index_in, x)
        runners['tflite_fp32'] = tfl.invoke

        tfl.invoke()
        errors['tflite_fp32'] = float(abs(tfl.get_tensor(index_out) - want_fp32).max())

        def copies():   # what predict() adds to an invoke: input in, output out
            tfl.set_tensor(index_in, x)
            return tfl.get_tensor(index_out)
        runners['copies'] = copies
        times = interleaved(runners, args.repeats, args.warmup)
        copy = times.pop('copies')
        records.append({'batch': int(x.shape[0]), 'threads': threads, 'paths': times,
                        'tflite_fp32_copy_ms': copy['median_ms'],
                        'max_abs_error_vs_keras': errors,
                        'lce_bytes': len(flat_b), 'tflite_fp32_bytes': len(flat_f)})
        print('peer, %d thread(s), %s batch %d: %s' % (
            threads, models['fp32'].input_shape[1:], x.shape[0],
            ', '.join('%s %.3f ms' % (n, t['median_ms']) for n, t in times.items())),
            file=sys.stderr)
    return records


def peer_worker(args):
    """LCE and TFLite fp32, every layer, batch, thread count (and ResNet-18), as JSON.

    Runs under the peer environment's python: imports only numpy and the TF stack."""
    os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')   # larq / LCE need Keras 2
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import numpy as np
    import tensorflow as tf
    import larq as lq
    import larq_compute_engine as lce
    from importlib import metadata
    tf.random.set_seed(0)
    rng = np.random.RandomState(0)
    result = {'versions': {p: metadata.version(p) for p in
                           ('tensorflow', 'tf_keras', 'larq', 'larq-compute-engine')},
              'layers': [], 'resnet18': []}
    for channels, size in args.shapes:
        for batch in args.batches:
            x = rng.randn(batch, size, size, channels).astype(np.float32)
            for record in peer_time(tf, lce, peer_models(tf, lq, 'layer', batch, size,
                                                         channels), x, args):
                record['layer'] = '%dch_%dpx' % (channels, size)
                result['layers'].append(record)
    if args.resnet18:
        for batch in args.batches:
            x = rng.rand(batch, 224, 224, 3).astype(np.float32)
            models = peer_models(tf, lq, 'resnet18', batch, 224, 3)
            result['resnet18'].extend(peer_time(tf, lce, models, x, args))
    assert 'mxnet' not in sys.modules and 'mxcompress' not in sys.modules
    print(json.dumps(result))


# ---------------------------------------------------------------- driver

def run_json(cmd, env, what):
    """Run a worker; its last stdout line is JSON. Exits with a message on failure."""
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, universal_newlines=True)
    if out.returncode != 0:
        sys.exit('error: %s failed (exit %d)' % (what, out.returncode))
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker_options(args, shapes):
    opts = ['--repeats', str(args.repeats), '--warmup', str(args.warmup), '--block',
            str(args.block), '--batches'] + [str(b) for b in args.batches]
    opts += ['--shapes'] + ['%d:%d' % s for s in shapes]
    if args.skip_lce_bgemm:
        opts.append('--skip-lce-bgemm')
    return opts + ([] if args.skip_resnet18 else ['--resnet18'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                        help='thread counts (ours: OMP_NUM_THREADS, one subprocess each; '
                             'TFLite / LCE: num_threads; default 1 2)')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 8],
                        help='batch sizes (default 1 8)')
    parser.add_argument('--layers', type=int, nargs='+', metavar='CHANNELS',
                        help='layers to time, by channel count among 64 128 256 512 '
                             '(default: all four)')
    parser.add_argument('--repeats', type=int, default=30,
                        help='timed runs per path (the median is reported; default 30)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed runs first (default 5)')
    parser.add_argument('--block', type=int, default=5,
                        help='ours: consecutive runs per block of paired_timing (default 5)')
    parser.add_argument('--skip-resnet18', action='store_true',
                        help='layers only (no ResNet-18 at 3x224x224)')
    parser.add_argument('--skip-lce-bgemm', action='store_true',
                        help="time LCE's indirect bgemm kernel only, not its default bgemm")
    parser.add_argument('--peer-python', default=DEFAULT_PEER_PYTHON,
                        help='python of the TF / Larq / LCE environment (default %(default)s)')
    parser.add_argument('--other-load', default='none known',
                        help='what else ran on the machine during the run (recorded)')
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                          'peers.json'),
                        help='results file, merged into (default: %(default)s)')
    parser.add_argument('--worker', choices=['ours', 'peer'], help=argparse.SUPPRESS)
    parser.add_argument('--shapes', type=parse_shape, nargs='+', help=argparse.SUPPRESS)
    parser.add_argument('--resnet18', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == 'peer':
        return peer_worker(args)
    if args.worker == 'ours':
        return ours_worker(args)

    if not (os.path.isfile(args.peer_python) and os.access(args.peer_python, os.X_OK)):
        sys.exit('error: no peer python at %s (--peer-python). Create the environment with:\n'
                 '  %s' % (args.peer_python, PEER_SETUP))
    from mxcompress.measure import machine_info, timing_lock
    from mxcompress.reporting.recipes import XNOR_LAYERS
    from mxcompress.reporting.results import update_results
    try:
        shapes = select_layers(args.layers, XNOR_LAYERS)
    except ValueError as err:
        parser.error(str(err))
    me = [os.path.abspath(__file__), '--threads'] + [str(t) for t in args.threads]
    ours, theirs = {'layers': [], 'resnet18': []}, None
    with timing_lock():
        load_before = os.getloadavg()
        for threads in args.threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_CPU_WORKER_NTHREADS='1',
                       PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
            env.pop('MXNET_ENGINE_TYPE', None)   # the default threaded engine
            result = run_json([sys.executable] + me + ['--worker', 'ours'] +
                              worker_options(args, shapes), env, 'ours (%d threads)' % threads)
            ours['layers'] += result['layers']
            ours['resnet18'] += result['resnet18']
            ours['kernel'] = result['kernel']
        env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='2',
                   OMP_NUM_THREADS=str(max(args.threads)))
        env.pop('PYTHONPATH', None)
        theirs = run_json([args.peer_python] + me + ['--worker', 'peer'] +
                          worker_options(args, shapes), env,
                          'the peer worker under %s (is the environment complete? %s)'
                          % (args.peer_python, PEER_SETUP))
        load_after = os.getloadavg()
    command = 'python scripts/bench_peers.py ' + ' '.join(argv or sys.argv[1:])
    common = {'command': command, 'peer_versions': theirs['versions'],
              'xnor_kernel': ours['kernel'], 'other_load': args.other_load,
              'load_average_before_after': [load_before, load_after],
              'repeats': args.repeats, 'warmup': args.warmup,
              'paths': {
                  'ours': 'mx.nd.xnor_conv2d (mxcompress/ops, kernel %s), NCHW float in '
                          '(binarised inside), float out x alpha; OMP_NUM_THREADS threads'
                          % ours['kernel'],
                  'mxnet_fp32': 'mx.nd.Convolution fp32 (oneDNN), NCHW',
                  'lce_indirect_bgemm': 'LCE Interpreter(use_indirect_bgemm=True): portable '
                                        'x86 kernel, always 1 thread; NHWC float in, '
                                        'binarised in-graph, float out; time of predict() '
                                        '(includes input/output copies)',
                  'lce_bgemm': 'LCE Interpreter default bgemm kernel, num_threads threads; '
                               'same graph, predict() times',
                  'tflite_fp32': 'tf.lite.Interpreter(num_threads) fp32 (XNNPACK default '
                                 'delegate), NHWC, invoke() only; tflite_fp32_copy_ms: '
                                 'the time of set_tensor + get_tensor alone (estimates the '
                                 'input/output copies included in the LCE times)'},
              'note': 'medians of warm runs; *_speedup_* = other ms / first ms (above 1: '
                      'the first is faster); ours and MXNet fp32 run in one process per '
                      'thread count (MXNET_CPU_WORKER_NTHREADS=1, threaded engine), the '
                      'peers in one process of the peer environment, right after.'}
    entries = {'per_layer': dict(common, records=merge(ours['layers'], theirs['layers'],
                                                       ('layer', 'batch', 'threads')))}
    if not args.skip_resnet18:
        entries['resnet18'] = dict(
            common, records=merge(ours['resnet18'], theirs['resnet18'], ('batch', 'threads')),
            model="ours: symbols.get_symbol('bnn-resnet', num_layers=18, image_shape="
                  "'3,224,224', num_classes=1000, num_bits=1), random weights, converted "
                  "(xnor_conv2d, BatchNorm folded into thresholds, residual adds fused, bit-"
                  "packed activations between consecutive binary convs); mxnet_fp32: its "
                  "num_bits=32 twin; peers: the same topology in Larq / Keras (stride-2 "
                  "'same' pads bottom/right only), random weights")
    for name, entry in entries.items():
        for r in entry['records']:
            print('%-9s %-10s batch %d, %d thr: ours %.2f ms | MXNet fp32 %.2f | LCE best %s '
                  '| TFLite fp32 %s | ours vs LCE %s' % (
                      name, r.get('layer', 'resnet18'), r['batch'], r['threads'], r['ours_ms'],
                      r['mxnet_fp32_ms'], _fmt(r['lce_best_ms']), _fmt(r['tflite_fp32_ms']),
                      _fmt(r['ours_speedup_vs_lce_best'], 'x')), file=sys.stderr)
    update_results(args.output, entries, machine=machine_info())
    print('wrote %s' % args.output, file=sys.stderr)
    return 0


def _fmt(value, unit=' ms'):
    return 'n/a' if value is None else '%.2f%s' % (value, unit)


if __name__ == '__main__':
    sys.exit(main())
