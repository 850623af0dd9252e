#!/usr/bin/env python3
"""Peer benchmark: TensorFlow Model Optimization's documented pipeline on LeNet-300-100.

This script is an OPTIONAL step of the benchmark. It does not import mxnet or mxcompress and
runs in its own virtual environment, kept out of the project's dependencies (setup.py and the
requirements are not touched). It measures what a user of the tool people would pick instead
(TF-MOT) gets on the same network, data and per-layer sparsity as ``mxcompress deep-compress``:

1. train LeNet-300-100 (784-300-100-10, ReLU) in Keras on MNIST less a held-out validation
   split (the same 6,000 images mxcompress holds out: ``mxcompress.data.holdout_split`` with
   ``--val-split 0.1`` and seed 0 is pure numpy and is reproduced here line by line, so the
   indices are identical; the sha256 of the validation indices is recorded);
2. magnitude pruning, ``tfmot.sparsity.keras.prune_low_magnitude`` with one
   ``PolynomialDecay`` schedule per layer to its target sparsity (``--sparsity``), 30 epochs
   with Adam (the schedule was chosen on the validation split), then ``strip_pruning``;
3. sparsity-preserving clustering, ``--clusters`` (32) per layer
   (``tfmot.clustering.keras.experimental.cluster.cluster_weights(..., preserve_sparsity=True)``,
   k-means++ initialisation), fine-tuned with Adam (issue 18 saw SGD with momentum diverge
   here), then ``strip_clustering``;
4. conversion to TFLite with post-training int8 quantisation, as the "collaborative
   optimization" guide does: dynamic-range (int8 weights, ``Optimize.DEFAULT``; the default
   headline) and full-integer (int8 weights and activations, calibrated on 1,000 training
   images); the float32 TFLite file of the clustered model is measured too;
5. ``gzip -9 -n`` of each .tflite (the gzip program; Python's zlib at level 9 when there is
   none, its size is recorded too: zlib's deflate is a few % larger on these files) and, for
   reference, the zip size the TF-MOT tutorials print (``get_gzipped_model_size``).

Every choice (the epoch kept in each stage) is made on the validation split; the test set is
read once, at the end, by the TFLite interpreter on all 10,000 images. Results go to
``benchmarks/results/peer_tfmot.json`` (one entry per ``--key``; other entries are kept),
artefacts (.tflite, .tflite.gz, the trained base model) to ``--out-dir``.

Set-up (Python 3.11, outside the repository)::

    python3.11 -m venv /work/peer-venv
    /work/peer-venv/bin/pip install --upgrade pip
    /work/peer-venv/bin/pip install tensorflow==2.16.2 tf_keras==2.16.0 \\
        tensorflow-model-optimization==0.8.0

Run (from the repository root; MNIST IDX files, raw or .gz, in --data)::

    TF_USE_LEGACY_KERAS=1 /work/peer-venv/bin/python scripts/peer_tfmot.py \\
        --data /work/shared/data/mnist
    # the budget mode's per-layer sparsities (its recipe sidecar), reusing the dense model:
    TF_USE_LEGACY_KERAS=1 /work/peer-venv/bin/python scripts/peer_tfmot.py \\
        --sparsity-from benchmarks/models/lenet300-auto.mxc.recipe.json --key auto_sparsity
    # explicit per-layer sparsities:
    TF_USE_LEGACY_KERAS=1 /work/peer-venv/bin/python scripts/peer_tfmot.py \\
        --sparsity fc1=0.97,fc2=0.92,fc3=0.7 --clusters 8 --key my_run

``TF_USE_LEGACY_KERAS=1`` (Keras 2 through ``tf_keras``, which TF-MOT 0.8 needs) is set by the
script itself when missing. The script pins TensorFlow, OpenMP and the TFLite interpreter to
one thread (the benchmark machine's 2 cores are shared with other jobs), and seeds numpy and
TensorFlow, so a rerun on the same machine repeats the figures.
"""
import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import platform
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

# Threads and Keras flavour must be fixed before TensorFlow is imported.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
             'TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS'):
    os.environ.setdefault(_var, '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RESULTS = os.path.join(REPO, 'benchmarks', 'results', 'peer_tfmot.json')
DEFAULT_SPARSITY = 'fc1=0.96,fc2=0.9,fc3=0.7'
LAYERS = ('fc1', 'fc2', 'fc3')
MNIST_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 60000),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', 10000),
}
#: the seed of mxcompress.fit's validation split (SPLIT_SEED)
SPLIT_SEED = 0


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


# ----------------------------------------------------------------------------- data

def _file_in(directory, stem):
    for name in (stem + '.gz', stem):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path, expected_shape):
    """One IDX file (raw or gzipped) as a numpy array, validated like mxcompress.data."""
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise SystemExit('%s: cannot read (%s)' % (path, err))
    if len(raw) < 4:
        raise SystemExit('%s: truncated header' % path)
    zero, code, ndim = struct.unpack('>HBB', raw[:4])
    if zero != 0 or code != 0x08 or ndim != len(expected_shape):
        raise SystemExit('%s: bad IDX magic number 0x%s' % (path, raw[:4].hex()))
    shape = struct.unpack('>' + 'I' * ndim, raw[4:4 + 4 * ndim])
    if tuple(shape) != tuple(expected_shape):
        raise SystemExit('%s: dimensions %s, expected %s' % (path, shape, expected_shape))
    if len(raw) - 4 - 4 * ndim != int(np.prod(shape)):
        raise SystemExit('%s: payload length does not match %s' % (path, shape))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(directory, split):
    """(images float32 (N, 784) in [0, 1], labels int64 (N,), {file: sha256})."""
    img_stem, lbl_stem, count = MNIST_FILES[split]
    paths = [_file_in(directory, img_stem), _file_in(directory, lbl_stem)]
    if None in paths:
        raise SystemExit('MNIST %s files not found in %s (set --data or $MXCOMPRESS_DATA)'
                         % (split, directory))
    images = read_idx(paths[0], (count, 28, 28))
    labels = read_idx(paths[1], (count,))
    if labels.max() > 9:
        raise SystemExit('%s: label out of range' % paths[1])
    digests = {}
    for p in paths:
        with open(p, 'rb') as f:
            digests[os.path.basename(p)] = hashlib.sha256(f.read()).hexdigest()
    return (images.reshape(count, 784).astype(np.float32) / 255.0,
            labels.astype(np.int64), digests)


def holdout_split(labels, size, seed=0):
    """mxcompress.data.holdout_split, reproduced verbatim (pure numpy): stratified, seeded.

    Returns sorted, disjoint ``train_index, val_index``; class c holds out
    ``floor(size * n_c / N)`` examples, the remainder going to the largest fractional parts.
    """
    labels = np.asarray(labels).astype(np.int64)
    total = len(labels)
    count = int(round(size * total)) if isinstance(size, float) else int(size)
    if not 0 <= count < total:
        raise SystemExit('--val-split must hold out 0..%d of the %d training examples, got %r'
                         % (total - 1, total, size))
    classes, counts = np.unique(labels, return_counts=True)
    exact = count * counts / float(total)
    take = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - take), kind='stable')[:count - int(take.sum())]:
        take[i] += 1
    rng = np.random.RandomState(seed)
    held = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    val_index = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    mask = np.ones(total, bool)
    mask[val_index] = False
    return np.flatnonzero(mask), val_index


def shift_images(images, max_shift, rng):
    """Shift each 28x28 image by a random offset in [-max_shift, max_shift]^2, zero fill
    (the jitter of mxcompress.data.ShuffledIter)."""
    n = images.shape[0]
    square = images.reshape(n, 28, 28)
    padded = np.pad(square, ((0, 0), (max_shift,) * 2, (max_shift,) * 2))
    dy, dx = rng.randint(0, 2 * max_shift + 1, size=(2, n))
    rows = dy[:, None] + np.arange(28)[None, :]
    cols = dx[:, None] + np.arange(28)[None, :]
    shifted = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return shifted.reshape(n, 784).astype(np.float32)


# ----------------------------------------------------------------------------- arguments

def split_size(text):
    value = float(text)
    if value >= 1:
        if value != int(value):
            raise argparse.ArgumentTypeError('a count must be an integer: %r' % text)
        return int(value)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError('a fraction must be in [0, 1): %r' % text)
    return value


def sparsity_spec(text):
    """``fc1=0.96,fc2=0.9,fc3=0.7`` (a ``lenet300_`` prefix is accepted) -> dict."""
    out = {}
    for item in text.split(','):
        if not item.strip():
            continue
        if '=' not in item:
            raise argparse.ArgumentTypeError('expected LAYER=SPARSITY, got %r' % item)
        name, value = item.split('=', 1)
        name = name.strip()
        for prefix in ('lenet300_',):
            if name.startswith(prefix):
                name = name[len(prefix):]
        if name.endswith('_weight'):
            name = name[:-len('_weight')]
        if name not in LAYERS:
            raise argparse.ArgumentTypeError('unknown layer %r (layers: %s)'
                                             % (name, ', '.join(LAYERS)))
        try:
            value = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError('sparsity of %s is not a number: %r' % (name, value))
        if not 0.0 <= value < 1.0:
            raise argparse.ArgumentTypeError('sparsity of %s must be in [0, 1), got %r'
                                             % (name, value))
        out[name] = value
    return out


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be >= 1, got %r' % text)
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError('must be >= 0, got %r' % text)
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    pass


EPILOG = '''set-up (once, outside the repository; not a dependency of mxcompress):
  python3.11 -m venv /work/peer-venv
  /work/peer-venv/bin/pip install --upgrade pip
  /work/peer-venv/bin/pip install tensorflow==2.16.2 tf_keras==2.16.0 \\
      tensorflow-model-optimization==0.8.0
run (from the repository root):
  TF_USE_LEGACY_KERAS=1 /work/peer-venv/bin/python scripts/peer_tfmot.py
  TF_USE_LEGACY_KERAS=1 /work/peer-venv/bin/python scripts/peer_tfmot.py \\
      --sparsity-from benchmarks/models/lenet300-auto.mxc.recipe.json --key auto_sparsity
output: --results gets runs[KEY] = {command, flags, versions, machine, data, stages (val
errors, kept epochs, seconds, sparsity), tflite {float32, dynamic, int8: bytes, gzip -9
bytes, val and test error, per-layer sparsity}, headline}; other keys are kept.'''


def parse_args(argv=None):
    default_data = os.environ.get('MXCOMPRESS_DATA') or os.path.join(
        os.path.dirname(REPO), 'shared', 'data', 'mnist')
    p = argparse.ArgumentParser(
        description='Optional peer benchmark: TF-MOT magnitude pruning -> sparsity-preserving\n'
                    'clustering (32 clusters) -> int8 TFLite -> gzip -9 on LeNet-300-100,\n'
                    'measured on MNIST (choices on the validation split, the test set read once\n'
                    'by the TFLite interpreter). Runs in its own environment: see the module\n'
                    'docstring or benchmarks/PEERS.md.',
        epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument('--data', default=default_data, metavar='DIR',
                   help='directory of the four MNIST IDX files, raw or .gz '
                        '($MXCOMPRESS_DATA, else ../shared/data/mnist beside the repository)')
    p.add_argument('--val-split', type=split_size, default=0.1, metavar='N|FRACTION',
                   help='validation images held out of the training set, stratified, seeded '
                        'like mxcompress.fit (the same indices)')
    p.add_argument('--sparsity', type=sparsity_spec, default=DEFAULT_SPARSITY,
                   metavar='fc1=S,fc2=S,fc3=S',
                   help='per-layer target sparsity of the kernels (a lenet300_ prefix is '
                        'accepted; layers not named stay dense)')
    p.add_argument('--sparsity-from', metavar='RECIPE_JSON', default=None,
                   help='read the per-layer sparsities from an mxcompress recipe sidecar '
                        '(a "sparsity" mapping anywhere in the JSON); wins over --sparsity')
    p.add_argument('--clusters', type=positive_int, default=32,
                   help='clusters per layer (sparsity-preserving clustering)')
    p.add_argument('--quant', choices=('dynamic', 'int8'), default='dynamic',
                   help='the headline TFLite file: dynamic-range (int8 weights) or full-integer '
                        '(int8 weights and activations); both are measured')
    g = p.add_argument_group('training (choices on the validation split)')
    g.add_argument('--batch-size', type=positive_int, default=64,
                   help='every stage; the last incomplete batch of an epoch is dropped')
    g.add_argument('--jitter', type=non_negative_int, default=2,
                   help='shift training images by up to this many pixels (as mxcompress)')
    g.add_argument('--epochs-base', type=non_negative_int, default=40,
                   help='epochs of the dense model (SGD momentum 0.9, cosine, as the '
                        'mxcompress baseline recipe)')
    g.add_argument('--lr-base', type=float, default=0.05,
                   help='initial learning rate of the dense model (cosine decay to 0)')
    g.add_argument('--wd-base', type=float, default=1e-4,
                   help='weight decay of the kernels (not the biases) in the base training '
                        '(Keras decoupled weight_decay of SGD)')
    g.add_argument('--epochs-prune', type=positive_int, default=30,
                   help='pruning epochs: the sparsity ramps up (PolynomialDecay) over the '
                        'first --prune-ramp of them, then fine-tunes at the target')
    g.add_argument('--prune-ramp', type=float, default=0.5,
                   help='fraction of the pruning epochs over which sparsity ramps up')
    g.add_argument('--prune-frequency', type=positive_int, default=100,
                   help='PolynomialDecay frequency (steps between mask updates)')
    g.add_argument('--prune-optimizer', choices=('adam', 'sgd'), default='adam')
    g.add_argument('--lr-prune', type=float, default=1e-3,
                   help='learning rate of the pruning fine-tune (cosine decay)')
    g.add_argument('--epochs-cluster', type=positive_int, default=8,
                   help='fine-tuning epochs of the clustered model (Adam)')
    g.add_argument('--lr-cluster', type=float, default=1e-4,
                   help='Adam learning rate of the clustering fine-tune (cosine decay)')
    g.add_argument('--seed', type=int, default=0,
                   help='initialisation, epoch order and jitter (the validation split is '
                        'always seed 0, as in mxcompress)')
    p.add_argument('--base-model', default=None, metavar='H5',
                   help='the trained dense model: loaded if the file exists, else trained and '
                        'saved there (lets a second sparsity reuse the same base); default '
                        'OUT_DIR/base-seedS-eE.h5')
    p.add_argument('--out-dir', default='/tmp/peer_tfmot', help='artefacts (.tflite, .gz)')
    p.add_argument('--results', default=DEFAULT_RESULTS, help='JSON to update')
    p.add_argument('--key', default=None,
                   help='entry of the JSON to write (default: default_sparsity for the default '
                        'sparsity, else sparsity_<spec>)')
    args = p.parse_args(argv)
    args.sparsity_from_sha256 = None
    if args.sparsity_from:
        args.sparsity = sparsity_from_recipe(args.sparsity_from)
        with open(args.sparsity_from, 'rb') as f:
            args.sparsity_from_sha256 = hashlib.sha256(f.read()).hexdigest()
    if not 0 < args.prune_ramp <= 1:
        p.error('--prune-ramp must be in (0, 1]')
    return args


def sparsity_from_recipe(path):
    """The per-layer sparsities of an mxcompress recipe JSON (first "sparsity" mapping)."""
    with open(path) as f:
        doc = json.load(f)
    stack = [doc]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            sp = node.get('sparsity')
            if isinstance(sp, dict) and sp:
                spec = ','.join('%s=%s' % (k, v) for k, v in sp.items())
                return sparsity_spec(spec)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise SystemExit('%s: no "sparsity" mapping found' % path)


def spec_text(sparsity):
    return ','.join('%s=%g' % (k, sparsity[k]) for k in LAYERS if k in sparsity)


# ----------------------------------------------------------------------------- measuring

def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def zlib_gzip9(data):
    """Python's gzip at level 9 (zlib deflate), no file name, mtime 0."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename='', mode='wb', compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def gzip9(data):
    """``(bytes of gzip -9 -n, tool)``: the gzip program when there is one (its deflate is not
    zlib's: a few % smaller on these files), else Python's zlib at level 9."""
    exe = shutil.which('gzip')
    if exe:
        try:
            out = subprocess.run([exe, '-9', '-n', '-c'], input=data, stdout=subprocess.PIPE,
                                 check=True).stdout
            version = subprocess.run([exe, '--version'], stdout=subprocess.PIPE,
                                     universal_newlines=True).stdout.splitlines()[0]
            return out, version + ' -9 -n'
        except (OSError, subprocess.CalledProcessError):
            pass
    return zlib_gzip9(data), 'python gzip (zlib %s) level 9' % zlib.ZLIB_RUNTIME_VERSION


def docs_zip_bytes(path):
    """The size the TF-MOT tutorials print (get_gzipped_model_size: zipfile, ZIP_DEFLATED)."""
    fd, tmp = tempfile.mkstemp('.zip')
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_DEFLATED) as f:
            f.write(path, arcname=os.path.basename(path))
        return os.path.getsize(tmp)
    finally:
        os.remove(tmp)


def atomic_write_json(path, doc):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.peer_tfmot.', suffix='.json', dir=directory)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write('\n')
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ----------------------------------------------------------------------------- main

def main(argv=None):
    args = parse_args(argv)
    if os.environ.get('TF_USE_LEGACY_KERAS') != '1':
        raise SystemExit('TF_USE_LEGACY_KERAS must be 1 (TF-MOT 0.8 needs Keras 2 / tf_keras)')
    t_start = time.time()
    import tensorflow as tf
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.clustering.keras.experimental import (
        cluster as exp_cluster)

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)

    versions = {
        'python': platform.python_version(), 'tensorflow': tf.__version__,
        'tf_keras': keras.__version__, 'tensorflow_model_optimization': tfmot.__version__,
        'numpy': np.__version__, 'tf.keras': tf.keras.__name__,
    }
    log('versions: %s' % versions)
    sparsity = {k: args.sparsity.get(k, 0.0) for k in LAYERS}
    key = args.key or ('default_sparsity' if spec_text(args.sparsity) == DEFAULT_SPARSITY
                       else 'sparsity_' + spec_text(args.sparsity))
    log('target sparsity %s -> results key %r' % (spec_text(sparsity), key))

    # --- data
    x_all, y_all, digests = load_mnist(args.data, 'train')
    train_index, val_index = holdout_split(y_all, args.val_split, SPLIT_SEED)
    if len(val_index) == 0:
        raise SystemExit('--val-split 0: this benchmark makes its choices on a validation split')
    x_tr, y_tr = x_all[train_index], y_all[train_index]
    x_val, y_val = x_all[val_index], y_all[val_index]
    val_sha = hashlib.sha256(val_index.astype('<i8').tobytes()).hexdigest()
    log('data %s: %d train, %d validation (indices sha256 %s...)'
        % (args.data, len(x_tr), len(x_val), val_sha[:12]))

    def error_of(model, x, y):
        wrong = 0
        for i in range(0, len(x), 2000):
            logits = model(x[i:i + 2000], training=False).numpy()
            wrong += int((logits.argmax(1) != y[i:i + 2000]).sum())
        return wrong / float(len(x))

    steps_per_epoch = len(x_tr) // args.batch_size   # last incomplete batch dropped

    def run_stage(model, name, epochs, callbacks=(), select_from=1):
        """Train ``epochs`` epochs, validate each, restore the best epoch >= select_from."""
        best = (None, None, None)
        history = []
        t0 = time.time()
        for epoch in range(epochs):
            rng = np.random.RandomState(args.seed * 1000 + epoch)
            order = rng.permutation(len(x_tr))[:steps_per_epoch * args.batch_size]
            xb = x_tr[order]
            if args.jitter:
                xb = shift_images(xb, args.jitter, rng)
            te = time.time()
            hist = model.fit(xb, y_tr[order], batch_size=args.batch_size, epochs=1,
                             shuffle=False, verbose=0, callbacks=list(callbacks))
            val_err = error_of(model, x_val, y_val)
            loss = float(hist.history['loss'][-1])
            history.append({'epoch': epoch + 1, 'loss': loss, 'val_error': val_err})
            log('%s epoch %d/%d: loss %.4f, val error %.2f %%, %.1f s'
                % (name, epoch + 1, epochs, loss, 100 * val_err, time.time() - te))
            if not np.isfinite(loss):
                raise SystemExit('%s diverged (loss %s)' % (name, loss))
            if epoch + 1 >= select_from and (best[0] is None or val_err <= best[0]):
                best = (val_err, epoch + 1, model.get_weights())
        model.set_weights(best[2])
        log('%s: kept epoch %d (val error %.2f %%)' % (name, best[1], 100 * best[0]))
        return {'epochs': epochs, 'kept_epoch': best[1], 'val_error': best[0],
                'selected_from_epoch': select_from, 'history': history,
                'seconds': time.time() - t0}

    def kernel_sparsity(model):
        out = {}
        for layer in model.layers:
            if layer.name in LAYERS:
                w = layer.get_weights()[0]
                out[layer.name] = {'zeros': int((w == 0).sum()), 'weights': int(w.size),
                                   'sparsity': float((w == 0).mean()),
                                   'distinct_nonzero_values': int(len(np.unique(w[w != 0])))}
        return out

    stages = {}
    # --- 1. dense base model
    base_path = args.base_model or os.path.join(
        args.out_dir, 'base-seed%d-e%d-val%s.h5' % (args.seed, args.epochs_base, val_sha[:8]))
    if os.path.exists(base_path):
        log('loading the dense model from %s' % base_path)
        model = keras.models.load_model(base_path)
        stages['base'] = {'loaded_from': base_path, 'val_error': error_of(model, x_val, y_val)}
        meta_path = base_path + '.json'
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                stages['base']['trained'] = json.load(f)
    else:
        init = [keras.initializers.GlorotUniform(seed=args.seed + i) for i in range(3)]
        model = keras.Sequential([
            keras.Input((784,), name='data'),
            keras.layers.Dense(300, activation='relu', kernel_initializer=init[0], name='fc1'),
            keras.layers.Dense(100, activation='relu', kernel_initializer=init[1], name='fc2'),
            keras.layers.Dense(10, kernel_initializer=init[2], name='fc3'),
        ], name='lenet300')
        schedule = keras.optimizers.schedules.CosineDecay(
            args.lr_base, max(1, args.epochs_base * steps_per_epoch))
        opt = keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=args.wd_base)
        opt.exclude_from_weight_decay(var_names=['bias'])
        model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=['accuracy'])
        stages['base'] = run_stage(model, 'base', args.epochs_base)
        model.save(base_path)
        with open(base_path + '.json', 'w') as f:
            json.dump(stages['base'], f)
        log('saved the dense model to %s' % base_path)
    stages['base']['val_error'] = error_of(model, x_val, y_val)

    # --- 2. magnitude pruning, one PolynomialDecay schedule per layer
    # end the ramp on a mask update (a multiple of the frequency), so the last update prunes
    # to exactly the target
    ramp_steps = args.prune_frequency * max(1, int(
        args.prune_ramp * args.epochs_prune * steps_per_epoch) // args.prune_frequency)
    ramp_epochs = int(np.ceil(ramp_steps / float(steps_per_epoch)))

    def apply_pruning(layer):
        target = sparsity.get(layer.name, 0.0)
        if isinstance(layer, keras.layers.Dense) and target > 0:
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=tfmot.sparsity.keras.PolynomialDecay(
                    initial_sparsity=0.0, final_sparsity=target, begin_step=0,
                    end_step=ramp_steps, frequency=args.prune_frequency))
        return layer

    pruned = keras.models.clone_model(model, clone_function=apply_pruning)
    # the wrappers hold the trained layers (clone_function gets the originals); copy the
    # weights anyway, so a clone_model that re-initialised could not go unnoticed
    for src, dst in zip(model.layers, pruned.layers):
        target = dst.layer if hasattr(dst, 'layer') else dst
        target.set_weights(src.get_weights())
    schedule = keras.optimizers.schedules.CosineDecay(
        args.lr_prune, args.epochs_prune * steps_per_epoch)
    opt = (keras.optimizers.Adam(schedule) if args.prune_optimizer == 'adam'
           else keras.optimizers.SGD(schedule, momentum=0.9))
    pruned.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=['accuracy'])
    log('pruned model before fine-tuning, val error %.2f %% (masks not yet applied)'
        % (100 * error_of(pruned, x_val, y_val)))
    stages['prune'] = run_stage(
        pruned, 'prune', args.epochs_prune,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], select_from=ramp_epochs + 1
        if ramp_epochs < args.epochs_prune else args.epochs_prune)
    stages['prune'].update({'optimizer': args.prune_optimizer, 'lr': args.lr_prune,
                            'ramp_steps': ramp_steps, 'schedule': 'PolynomialDecay(0 -> target,'
                            ' power 3, frequency %d)' % args.prune_frequency})
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    stages['prune']['sparsity'] = kernel_sparsity(stripped)
    stages['prune']['val_error_stripped'] = error_of(stripped, x_val, y_val)
    log('pruned + stripped: val error %.2f %%, sparsity %s' % (
        100 * stages['prune']['val_error_stripped'],
        {k: round(v['sparsity'], 4) for k, v in stages['prune']['sparsity'].items()}))

    # --- 3. sparsity-preserving clustering
    CI = tfmot.clustering.keras.CentroidInitialization
    clustered = exp_cluster.cluster_weights(
        stripped, number_of_clusters=args.clusters, cluster_centroids_init=CI.KMEANS_PLUS_PLUS,
        preserve_sparsity=True)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.lr_cluster, args.epochs_cluster * steps_per_epoch)
    clustered.compile(keras.optimizers.Adam(schedule),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=['accuracy'])
    before = error_of(clustered, x_val, y_val)
    log('clustered (%d clusters, preserve_sparsity) before fine-tuning: val error %.2f %%'
        % (args.clusters, 100 * before))
    stages['cluster'] = run_stage(clustered, 'cluster', args.epochs_cluster)
    stages['cluster'].update({'val_error_before_finetune': before, 'optimizer': 'adam',
                              'lr': args.lr_cluster, 'clusters': args.clusters,
                              'init': 'KMEANS_PLUS_PLUS', 'preserve_sparsity': True})
    final = tfmot.clustering.keras.strip_clustering(clustered)
    stages['cluster']['sparsity'] = kernel_sparsity(final)
    stages['cluster']['val_error_stripped'] = error_of(final, x_val, y_val)
    log('clustered + stripped: val error %.2f %%, %s' % (
        100 * stages['cluster']['val_error_stripped'],
        {k: (round(v['sparsity'], 4), v['distinct_nonzero_values'])
         for k, v in stages['cluster']['sparsity'].items()}))
    train_seconds = time.time() - t_start

    # --- 4. TFLite conversion
    calib = x_tr[np.random.RandomState(args.seed).permutation(len(x_tr))[:1000]]

    def representative():
        for i in range(len(calib)):
            yield [calib[i:i + 1]]

    tflites = {}
    conv = tf.lite.TFLiteConverter.from_keras_model(final)
    tflites['float32'] = conv.convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(final)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    tflites['dynamic'] = conv.convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(final)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tflites['int8'] = conv.convert()

    def interpreter_of(blob):
        it = tf.lite.Interpreter(model_content=blob, num_threads=1)
        return it

    def tflite_error(blob, x, y):
        it = interpreter_of(blob)
        inp = it.get_input_details()[0]
        it.resize_tensor_input(inp['index'], [len(x), 784])
        it.allocate_tensors()
        it.set_tensor(inp['index'], x.astype(np.float32))
        it.invoke()
        out = it.get_tensor(it.get_output_details()[0]['index'])
        wrong = int((out.argmax(1) != y).sum())
        return wrong / float(len(x)), wrong

    shapes = {(300, 784): 'fc1', (100, 300): 'fc2', (10, 100): 'fc3'}

    def tflite_weights(blob):
        it = interpreter_of(blob)
        it.allocate_tensors()
        out = {}
        for d in it.get_tensor_details():
            name = shapes.get(tuple(d['shape']))
            if name is None or name in out:
                continue
            try:
                w = it.get_tensor(d['index'])
            except ValueError:
                continue
            out[name] = {'dtype': str(w.dtype), 'zeros': int((w == 0).sum()),
                         'weights': int(w.size), 'sparsity': float((w == 0).mean()),
                         'distinct_nonzero_values': int(len(np.unique(w[w != 0])))}
        return out

    files = {}
    for name, blob in tflites.items():
        path = os.path.join(args.out_dir, 'lenet300-%s-%s.tflite' % (key, name))
        with open(path, 'wb') as f:
            f.write(blob)
        gz, gz_tool = gzip9(blob)
        with open(path + '.gz', 'wb') as f:
            f.write(gz)
        val_err, val_wrong = tflite_error(blob, x_val, y_val)
        files[name] = {'tflite_bytes': len(blob), 'gzip9_bytes': len(gz), 'gzip9_tool': gz_tool,
                       'zlib9_gzip_bytes': len(zlib_gzip9(blob)),
                       'docs_zip_bytes': docs_zip_bytes(path), 'val_error': val_err,
                       'val_errors_of': '%d/%d' % (val_wrong, len(y_val)),
                       'weights': tflite_weights(blob), 'file': path + '.gz'}
        log('TFLite %-7s: %7d bytes, gzip -9 %6d bytes, val error %.2f %%'
            % (name, len(blob), len(gz), 100 * val_err))

    # --- 5. the test set, read once, at the end
    x_test, y_test, test_digests = load_mnist(args.data, 'test')
    digests.update(test_digests)
    for name, blob in tflites.items():
        err, wrong = tflite_error(blob, x_test, y_test)
        files[name]['test_error'] = err
        files[name]['test_errors_of_10000'] = wrong
        log('TFLite %-7s: test error %.2f %% (%d/%d)' % (name, 100 * err, wrong, len(y_test)))

    head = files[args.quant]
    result = {
        'peer': 'TensorFlow Model Optimization: prune_low_magnitude -> strip_pruning -> '
                'cluster_weights(preserve_sparsity=True) -> strip_clustering -> TFLite '
                'post-training int8 -> gzip -9',
        'command': ' '.join(shlex.quote(a) for a in
                            ['TF_USE_LEGACY_KERAS=1', sys.executable] + sys.argv),
        'flags': {k: (spec_text(v) if k == 'sparsity' else v) for k, v in vars(args).items()},
        'measured_at': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'versions': versions,
        'machine': {'cpu_model': cpu_model(), 'cpu_count': os.cpu_count(),
                    'threads': 1, 'platform': platform.platform()},
        'data': {'dir': os.path.abspath(args.data), 'sha256': digests,
                 'train_examples': int(len(x_tr)), 'val_examples': int(len(x_val)),
                 'test_examples': int(len(x_test)),
                 'val_index_sha256': val_sha,
                 'split_rule': 'mxcompress.data.holdout_split(labels, %r, seed=%d) reproduced '
                               'verbatim in numpy (same indices as mxcompress.fit)'
                               % (args.val_split, SPLIT_SEED)},
        'target_sparsity': sparsity,
        'stages': stages,
        'tflite': files,
        'headline': {'quant': args.quant, 'gzip9_bytes': head['gzip9_bytes'],
                     'tflite_bytes': head['tflite_bytes'], 'test_error': head['test_error'],
                     'val_error': head['val_error'],
                     'sparsity': {k: v['sparsity'] for k, v in head['weights'].items()}},
        'train_seconds': train_seconds,
        'wall_seconds': time.time() - t_start,
    }
    doc = {}
    if os.path.exists(args.results):
        try:
            with open(args.results) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            doc = {}
    doc.setdefault('runs', {})[key] = result
    doc['note'] = ('Optional peer benchmark (scripts/peer_tfmot.py, own environment; see '
                   'benchmarks/PEERS.md). "headline" = the gzip -9 bytes of the TFLite file and '
                   'its error on the full MNIST test set; every choice made on the validation '
                   'split.')
    atomic_write_json(args.results, doc)
    log('headline (%s): %d bytes gzip -9 (%d tflite), test error %.2f %%, val error %.2f %%; '
        'wrote %s [%s], %.0f s' % (args.quant, head['gzip9_bytes'], head['tflite_bytes'],
                                   100 * head['test_error'], 100 * head['val_error'],
                                   args.results, key, result['wall_seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
