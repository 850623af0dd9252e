"""MNIST: reading the standard IDX files and building iterators for Module training.

The four files of LeCun's MNIST (``train-images-idx3-ubyte`` ... ``t10k-labels-idx1-ubyte``,
raw or gzipped) are looked for in, in order:

1. an explicit ``data_dir`` (``--data-dir`` on the command line),
2. the ``MXCOMPRESS_DATA`` environment variable,
3. gluon's usual ``~/.mxnet/datasets/mnist``.

Every file is validated (magic number, item count, image size, exact byte length) and a
bad file raises :class:`MNISTError` naming it.
"""
import gzip
import os
import struct
import zlib

import mxnet as mx
import numpy as np

__all__ = ['MNISTError', 'find_mnist_dir', 'read_idx', 'load_mnist', 'mnist_iterators',
           'MNIST_FILES', 'ShuffledIter']

#: split -> (images file stem, labels file stem, number of examples)
MNIST_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 60000),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', 10000),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: '>i2', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}


class MNISTError(ValueError):
    """A missing, truncated or malformed MNIST file."""


def _gluon_default_dir():
    return os.path.join(os.path.expanduser('~'), '.mxnet', 'datasets', 'mnist')


def _file_in(directory, stem):
    for name in (stem + '.gz', stem):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def find_mnist_dir(data_dir=None):
    """Return the first directory holding all four MNIST files.

    Parameters
    ----------
    data_dir : str or None
        Explicit directory, searched first. If given and incomplete, that is an error
        (an explicit choice is never silently replaced by another directory).

    Raises
    ------
    MNISTError
        No candidate directory holds the four files; the message lists where it looked.
    """
    stems = [s for imgs, labels, _ in MNIST_FILES.values() for s in (imgs, labels)]
    if data_dir is not None:
        candidates = [('--data-dir', data_dir)]
    else:
        candidates = []
        if os.environ.get('MXCOMPRESS_DATA'):
            candidates.append(('$MXCOMPRESS_DATA', os.environ['MXCOMPRESS_DATA']))
        candidates.append(('gluon default', _gluon_default_dir()))
    looked = []
    for origin, directory in candidates:
        missing = [s for s in stems if _file_in(directory, s) is None]
        if not missing:
            return directory
        looked.append('%s %s (missing %s)' % (origin, directory, ', '.join(missing)))
    raise MNISTError('MNIST files not found; looked in: %s. Fetch them with scripts/get_mnist.sh '
                     'or pass --data-dir / set MXCOMPRESS_DATA.' % '; '.join(looked))


def read_idx(path, expected_shape=None):
    """Read one IDX file (raw or gzipped) into a numpy array.

    Parameters
    ----------
    path : str
        File path; a name ending in ``.gz`` is decompressed.
    expected_shape : tuple of int or None
        If given, the header's dimensions must equal it.

    Returns
    -------
    numpy.ndarray
        Array of the header's shape and dtype (uint8 for MNIST).

    Raises
    ------
    MNISTError
        Bad magic number, unexpected dimensions, truncated or over-long payload, corrupt gzip.
    """
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # corrupt / truncated gzip streams
        raise MNISTError('%s: cannot read (%s: %s)' % (path, type(err).__name__, err)) from None
    if len(raw) < 4:
        raise MNISTError('%s: truncated header (%d bytes)' % (path, len(raw)))
    zero, dtype_code, ndim = struct.unpack('>HBB', raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or ndim == 0:
        raise MNISTError('%s: bad IDX magic number 0x%s' % (path, raw[:4].hex()))
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise MNISTError('%s: truncated header' % path)
    shape = struct.unpack('>' + 'I' * ndim, raw[4:header_len])
    if expected_shape is not None and tuple(shape) != tuple(expected_shape):
        raise MNISTError('%s: dimensions %s, expected %s' % (path, shape, tuple(expected_shape)))
    dtype = np.dtype(_IDX_DTYPES[dtype_code])
    expected_bytes = int(np.prod(shape)) * dtype.itemsize
    payload = len(raw) - header_len
    if payload != expected_bytes:
        raise MNISTError('%s: %s payload: %d bytes, expected %d for shape %s' % (
            path, 'truncated' if payload < expected_bytes else 'over-long', payload,
            expected_bytes, shape))
    return np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)


def load_mnist(split, data_dir=None, num_examples=None):
    """Load one MNIST split as float32 images in [0, 1] and float32 labels.

    Parameters
    ----------
    split : {'train', 'test'}
    data_dir : str or None
        See :func:`find_mnist_dir`.
    num_examples : int or None
        Keep only the first ``num_examples`` (a deterministic subset).

    Returns
    -------
    images : numpy.ndarray, float32, shape (N, 1, 28, 28), values in [0, 1]
    labels : numpy.ndarray, float32, shape (N,)
    """
    if split not in MNIST_FILES:
        raise ValueError('split must be one of %s, got %r' % (sorted(MNIST_FILES), split))
    directory = find_mnist_dir(data_dir)
    img_stem, lbl_stem, count = MNIST_FILES[split]
    images = read_idx(_file_in(directory, img_stem), (count, 28, 28))
    labels = read_idx(_file_in(directory, lbl_stem), (count,))
    if labels.max() > 9:
        raise MNISTError('%s: label %d out of range 0..9' % (_file_in(directory, lbl_stem),
                                                            labels.max()))
    if num_examples is not None:
        if not 1 <= num_examples <= count:
            raise ValueError('num_examples must be in 1..%d for the %s split, got %d'
                             % (count, split, num_examples))
        images, labels = images[:num_examples], labels[:num_examples]
    images = images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return images, labels.astype(np.float32)


class ShuffledIter(mx.io.DataIter):
    """Training iterator that reshuffles (and optionally jitters) deterministically each epoch.

    Epoch ``e`` uses ``numpy.random.RandomState(seed + e)`` for its order and its shifts, so a
    run is repeatable whatever the global random state. With ``max_shift > 0`` every image
    is shifted by a random integer offset in [-max_shift, max_shift] pixels on each axis,
    zero-filled (Hinton et al.'s +-2 px jitter). The last incomplete batch is dropped.

    Parameters
    ----------
    images : numpy.ndarray, float32, shape (N, C, H, W) or (N, features)
    labels : numpy.ndarray, shape (N,)
    batch_size : int
    max_shift : int
        Jitter in pixels (0 = none; needs image-shaped data).
    seed : int
    label_name : str
    """

    def __init__(self, images, labels, batch_size, max_shift=0, seed=0,
                 label_name='softmax_label'):
        super().__init__(batch_size)
        if max_shift and images.ndim != 4:
            raise ValueError('jitter needs image-shaped data (N, C, H, W), got %d dimensions'
                             % images.ndim)
        self._images, self._labels = images, labels
        self._max_shift, self._seed, self._epoch = max_shift, seed, 0
        self._label_name = label_name
        self.num_data = len(images)
        self._inner = self._make_inner()

    def _make_inner(self):
        rng = np.random.RandomState(self._seed + self._epoch)
        order = rng.permutation(self.num_data)
        images, labels = self._images[order], self._labels[order]
        if self._max_shift:
            images = _shift_images(images, self._max_shift, rng)
        return mx.io.NDArrayIter(images, labels, self.batch_size, shuffle=False,
                                 last_batch_handle='discard', label_name=self._label_name)

    @property
    def labels(self):
        """The training labels, shape (N,), in their stored order."""
        return self._labels

    @property
    def provide_data(self):
        return self._inner.provide_data

    @property
    def provide_label(self):
        return self._inner.provide_label

    def reset(self):
        self._epoch += 1
        self._inner = self._make_inner()

    def set_epoch(self, epoch):
        """Continue with the order (and shifts) of ``epoch``: a resumed run sees the data of
        the epoch it resumes at, not epoch 0's again."""
        if epoch != self._epoch:
            self._epoch = int(epoch)
            self._inner = self._make_inner()

    def next(self):
        return self._inner.next()


def _shift_images(images, max_shift, rng):
    """Shift each (C, H, W) image by a random offset in [-max_shift, max_shift]^2 (the same
    for all its channels), zero fill."""
    n, _, height, width = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (max_shift,) * 2, (max_shift,) * 2))
    dy, dx = rng.randint(0, 2 * max_shift + 1, size=(2, n))
    rows = dy[:, None] + np.arange(height)[None, :]
    cols = dx[:, None] + np.arange(width)[None, :]
    shifted = padded[np.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return np.moveaxis(shifted, -1, 1).astype(np.float32)   # (n, H, W, C) -> (n, C, H, W)


def holdout_split(labels, size, seed=0):
    """Indices of a stratified validation split held out of a training set.

    Parameters
    ----------
    labels : numpy.ndarray, shape (N,)
    size : int or float
        How many examples to hold out: a count, or a fraction in [0, 1) of N.
    seed : int
        Seeds the choice within each class, so the split is the same on every run.

    Returns
    -------
    train_index, val_index : numpy.ndarray of int64, sorted, disjoint, together 0..N-1
        Every class keeps its share: class c holds out ``floor(size * n_c / N)`` examples,
        the remaining ones going to the classes with the largest fractional parts.
    """
    labels = np.asarray(labels).astype(np.int64)
    total = len(labels)
    count = int(round(size * total)) if isinstance(size, float) else int(size)
    if not 0 <= count < total:
        raise ValueError('--val-split must hold out 0..%d of the %d training examples, got %r'
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


def mnist_iterators(batch_size, data_dir=None, num_examples=None, num_test_examples=None,
                    label_name='softmax_label', flatten=False, jitter=0, seed=0,
                    num_parts=1, part_index=0):
    """Training and test iterators of MNIST for ``mx.mod.Module`` (see :func:`iterators`).

    Parameters
    ----------
    data_dir : str or None
        See :func:`find_mnist_dir`.
    num_examples, num_test_examples : int or None
        Deterministic subsets (the first N examples) for quick runs and tests.
    """
    x_train, y_train = load_mnist('train', data_dir, num_examples)
    x_test, y_test = load_mnist('test', data_dir, num_test_examples)
    return iterators((x_train, y_train), (x_test, y_test), batch_size, label_name=label_name,
                     flatten=flatten, jitter=jitter, seed=seed, num_parts=num_parts,
                     part_index=part_index)


def iterators(train, test, batch_size, label_name='softmax_label', flatten=False, jitter=0,
              seed=0, num_parts=1, part_index=0):
    """Training and test iterators for ``mx.mod.Module`` from arrays.

    Parameters
    ----------
    train, test : (images, labels)
        Images float32 (N, C, H, W) in [0, 1], labels float32 (N,).
    batch_size : int
    label_name : str
        Name of the label input (``softmax_label`` for a ``SoftmaxOutput`` named ``softmax``).
    flatten : bool
        Give data as (N, C*H*W) instead of (N, C, H, W).
    jitter : int
        Random shift in pixels applied to training images each epoch (0 = none).
    seed : int
        Seeds the shuffling and jitter, so a run is repeatable.
    num_parts, part_index : int
        Shard the training set for distributed training (one part per worker).

    Returns
    -------
    train_iter, test_iter : mx.io.DataIter
        Data ``data`` float32 (batch, C, H, W); label ``label_name`` (batch,). The training
        iterator shuffles; the test iterator pads its last batch.
    """
    if batch_size < 1:
        raise ValueError('batch_size must be >= 1, got %d' % batch_size)
    if not 0 <= part_index < num_parts:
        raise ValueError('part_index must be in 0..%d, got %d' % (num_parts - 1, part_index))
    (x_train, y_train), (x_test, y_test) = train, test
    if len(x_test) == 0:
        raise ValueError('the validation / test set is empty')
    if num_parts > 1:
        x_train, y_train = x_train[part_index::num_parts], y_train[part_index::num_parts]
    if batch_size > len(x_train):
        raise ValueError('--batch-size %d is larger than the %d training images'
                         % (batch_size, len(x_train)))
    if flatten:
        x_train = x_train.reshape(len(x_train), -1)
        x_test = x_test.reshape(len(x_test), -1)
    train_iter = ShuffledIter(x_train, y_train, batch_size, max_shift=jitter, seed=seed,
                              label_name=label_name)
    test_iter = mx.io.NDArrayIter(x_test, y_test, batch_size, shuffle=False,
                                  last_batch_handle='pad', label_name=label_name)
    return train_iter, test_iter
