"""Both splits of a data set at once, checked against each other, and training arrays."""
import collections

import numpy as np

from .. import data as mnist_data
from .base import DataError, Source
from .detect import open_source
from .shape import to_float

__all__ = ['Dataset', 'load_dataset', 'load_split', 'load_data']

#: ``train``, ``test``: ``(images (N, C, H, W) uint8/float32 as stored, labels int64 (N,))``;
#: ``classes``: names or None; ``num_classes``: ``len(classes)``, else max label + 1;
#: ``format``, ``path``: where it came from.
Dataset = collections.namedtuple('Dataset', 'train test classes num_classes format path')


def load_dataset(path, data_format=None, data_shape=None, num_examples=None,
                 num_test_examples=None):
    """Read and check both splits of a data set.

    Parameters
    ----------
    path : str or Source
        A path, or a source already opened (then ``data_format`` is ignored).
    data_format : {'idx', 'rec', 'folder', 'npz'} or None
        None detects it (:func:`~mxcompress.sources.detect_format`).
    data_shape : tuple (C, H, W) or None
        Convert every image to it (:func:`~mxcompress.sources.to_shape`).
    num_examples, num_test_examples : int or None
        Keep only the first N training / test examples.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        A bad file, or train and test images of different shapes.
    """
    source = path if isinstance(path, Source) else open_source(path, data_format)
    path = source.path
    train = _first(source.load('train', data_shape), num_examples, 'train')
    test = _first(source.load('test', data_shape), num_test_examples, 'test')
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError('%s: train images are %s (C, H, W) but test images %s; give a data '
                        'shape to convert both' % (path, train[0].shape[1:], test[0].shape[1:]))
    if source.classes is not None:
        num_classes = len(source.classes)
    else:
        num_classes = int(max(train[1].max(initial=-1), test[1].max(initial=-1))) + 1
    return Dataset(train, test, source.classes, num_classes, source.format, path)


def _first(split_arrays, count, split):
    images, labels = split_arrays
    if count is None:
        return images, labels
    if not 1 <= count <= len(images):
        raise ValueError('num_examples must be in 1..%d for the %s split, got %d'
                         % (len(images), split, count))
    return images[:count], labels[:count]


def load_split(path, split, data_format=None, data_shape=None, num_examples=None):
    """One split as training arrays, like :func:`mxcompress.data.load_mnist`.

    Parameters
    ----------
    path : str
    split : {'train', 'test'}
    data_format : str or None
    data_shape : tuple (C, H, W) or None
    num_examples : int or None
        Keep only the first ``num_examples``.

    Returns
    -------
    images : numpy.ndarray, float32, shape (N, C, H, W), in [0, 1] (uint8 / 255; float
        images as stored)
    labels : numpy.ndarray, float32, shape (N,)
    """
    images, labels = _first(open_source(path, data_format).load(split, data_shape),
                            num_examples, split)
    return to_float(images), labels.astype(np.float32)


def load_data(split, data_dir=None, num_examples=None, data_format=None, data_shape=None):
    """One split of the data set a command's options name, as training arrays.

    With neither ``data_dir`` nor ``data_format``, MNIST is looked for as it always was
    (``$MXCOMPRESS_DATA``, then gluon's folder: :func:`mxcompress.data.load_mnist`, bit for
    bit); a directory holding MNIST's four IDX files reads the same way. Anything else
    (another format, ``data_format='idx'`` for an IDX data set of other sizes, a
    ``data_shape``) goes through :func:`load_split`.

    Returns
    -------
    images : numpy.ndarray, float32, shape (N, C, H, W), in [0, 1]
    labels : numpy.ndarray, float32, shape (N,)
    """
    if data_format is None and data_shape is None and (data_dir is None or
                                                        _is_mnist_dir(data_dir)):
        return mnist_data.load_mnist(split, data_dir, num_examples)
    if data_dir is None:   # the default MNIST, converted (--data-shape) or read as IDX
        data_dir = mnist_data.find_mnist_dir(None)
    return load_split(data_dir, split, data_format, data_shape, num_examples)


def _is_mnist_dir(path):
    try:
        return mnist_data.find_mnist_dir(path) == path
    except mnist_data.MNISTError:
        return False
