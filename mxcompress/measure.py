"""Measuring a model: predictions, test error and inference latency.

Latency follows the project's benchmark rule: the models compared run side by side in one
process with the same threads and batch, warm-up first, and the median of repeated runs is
reported.
"""
import contextlib
import fcntl
import os
import platform
import statistics
import sys
import time

import mxnet as mx
import numpy as np

from .analysis import input_shape

__all__ = ['bind_predictor', 'predict', 'classification_error', 'time_inference',
           'paired_timing', 'timing_lock', 'TIMING_LOCK', 'machine_info']

#: the machine-wide lock every timing benchmark holds (``flock`` takes the same file)
TIMING_LOCK = '/tmp/mxcompress-timing.lock'


def bind_predictor(symbol, arg_params, aux_params, batch_size, data_shape=None):
    """Bind ``symbol``'s first output for inference; returns an ``mx.mod.Module``.

    Loss heads (``SoftmaxOutput``) output probabilities in inference, so a training symbol
    can be passed as it is; labels are not needed.
    """
    if data_shape is None:   # one example's shape, from the checkpoint (never a constant)
        data_shape = input_shape(symbol, arg_params, aux_params)[1:]
    out = symbol[0] if len(symbol.list_outputs()) > 1 else symbol
    labels = [a for a in out.list_arguments() if a.endswith('label')]
    module = mx.mod.Module(out, data_names=['data'], label_names=labels, context=mx.cpu())
    module.bind(data_shapes=[('data', (batch_size,) + tuple(data_shape))],
                label_shapes=[(name, (batch_size,)) for name in labels] or None,
                for_training=False)
    module.set_params(arg_params, aux_params, allow_missing=False, allow_extra=True)
    return module


def predict(symbol, arg_params, aux_params, images, batch_size=500):
    """Class probabilities of ``symbol``'s first output.

    Parameters
    ----------
    images : numpy.ndarray, float32, shape (N, C, H, W)

    Returns
    -------
    numpy.ndarray, shape (N, num_classes)
    """
    module = bind_predictor(symbol, arg_params, aux_params, batch_size, images.shape[1:])
    it = mx.io.NDArrayIter(images, batch_size=batch_size, last_batch_handle='pad')
    return module.predict(it).asnumpy()[:len(images)]


def classification_error(symbol, arg_params, aux_params, images, labels, batch_size=500):
    """Fraction of ``images`` misclassified (argmax of the first output vs ``labels``)."""
    probs = predict(symbol, arg_params, aux_params, images, batch_size)
    return float(np.mean(probs.argmax(axis=1) != labels.astype(np.int64)))


def time_inference(models, batch_size, repeats=20, warmup=3, data_shape=None):
    """Median forward time of each model, interleaved in one process.

    Parameters
    ----------
    models : dict of str -> (symbol, arg_params, aux_params)
    batch_size : int
    repeats : int
        Timed runs per model (the median is reported).
    warmup : int
        Untimed runs first.

    Returns
    -------
    dict of str -> dict
        ``median_ms``, ``min_ms``, ``max_ms``, ``images_per_s`` per model.
    """
    if data_shape is None:   # the models compared take the same input: ask the first one
        data_shape = input_shape(*next(iter(models.values())))[1:]
    rng = np.random.RandomState(0)
    batch = mx.io.DataBatch([mx.nd.array(rng.rand(batch_size, *data_shape).astype(np.float32))])
    bound = {name: bind_predictor(*m, batch_size=batch_size, data_shape=data_shape)
             for name, m in models.items()}
    samples = {name: [] for name in models}
    for i in range(warmup + repeats):
        for name, module in bound.items():  # interleaved, so drift hits every model alike
            start = time.perf_counter()
            module.forward(batch, is_train=False)
            module.get_outputs()[0].wait_to_read()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                samples[name].append(elapsed)
    result = {}
    for name, times in samples.items():
        median = statistics.median(times)
        result[name] = {'median_ms': 1e3 * median, 'min_ms': 1e3 * min(times),
                        'max_ms': 1e3 * max(times), 'images_per_s': batch_size / median,
                        'repeats': repeats}
    return result


def paired_timing(fn_a, fn_b, repeats, warmup, block):
    """Interleaved blocks of runs of two callables returning NDArrays (e.g. two layers).

    After ``warmup`` untimed runs of each, rounds alternate a block of ``block`` consecutive
    runs of ``fn_a`` with a block of ``fn_b`` until each has ``repeats`` warm runs. The first
    run of a block follows the other callable (its caches hold the other layer's data) and is
    kept apart as a *cold* run; the others are *warm*, as when a layer runs repeatedly.

    Returns
    -------
    (wall, cpu, cold), (wall, cpu, cold)
        Per callable: wall-clock seconds and process CPU seconds of the warm runs (CPU time
        counts only this process, so other jobs do not inflate it) and wall-clock seconds of
        the cold runs.
    """
    samples = {fn_a: ([], [], []), fn_b: ([], [], [])}
    for fn in (fn_a, fn_b):
        for _ in range(warmup):
            fn().wait_to_read()
    while len(samples[fn_a][0]) < repeats:
        for fn in (fn_a, fn_b):
            for i in range(block):
                wall, cpu = time.perf_counter(), time.process_time()
                fn().wait_to_read()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if i == 0:
                    samples[fn][2].append(wall)
                else:
                    samples[fn][0].append(wall)
                    samples[fn][1].append(cpu)
    return samples[fn_a], samples[fn_b]


@contextlib.contextmanager
def timing_lock(path=TIMING_LOCK):
    """Hold the machine-wide timing lock while timing, so no two benchmarks time at once.

    The lock is ``flock`` on ``path``: ``flock /tmp/mxcompress-timing.lock COMMAND`` in a shell
    waits for the same lock.
    """
    with open(path, 'a') as handle:
        print('waiting for the timing lock %s ...' % path, file=sys.stderr)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: CPU features that decide which xnor kernel runs and how fast fp32 convolutions are
_CPU_FLAGS = ('popcnt', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl',
              'avx512_vpopcntdq', 'avx512_bitalg', 'avx512_vnni')


def machine_info():
    """Processor, cores, thread settings and library versions, for benchmark records."""
    info = {'machine': platform.machine(), 'processor': platform.processor(),
            'cpu_count': os.cpu_count(), 'python': platform.python_version(),
            'mxnet': mx.__version__, 'numpy': np.__version__,
            'omp_num_threads': os.environ.get('OMP_NUM_THREADS'),
            'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY'),
            'mxnet_features_mkldnn': mx.runtime.Features().is_enabled('MKLDNN')}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name') and 'cpu_model' not in info:
                    info['cpu_model'] = line.split(':', 1)[1].strip()
                elif line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    info['cpu_flags'] = [f for f in _CPU_FLAGS if f in flags]
                    break
    except OSError:
        pass
    return info
