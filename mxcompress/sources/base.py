"""What every reader shares: the error type, the :class:`Source` base, array checks.

Images leave a reader as ``(N, C, H, W)`` arrays, ``uint8`` (0..255) or ``float32`` (as
stored, not rescaled), channels in RGB order; labels as ``int64`` ``(N,)``.
"""
import abc
import os

import numpy as np

from .shape import to_shape

__all__ = ['DataError', 'Source', 'SPLITS', 'CLASSES_FILE', 'check_labels', 'check_images',
           'to_nchw', 'stack_images', 'read_classes_file', 'split_file']


#: the splits every source holds
SPLITS = ('train', 'test')
#: optional sidecar of the directory formats (idx, rec): one class name per line, label order
CLASSES_FILE = 'classes.txt'


class DataError(ValueError):
    """A data set file that is missing, malformed or inconsistent; the message names it."""


class Source(abc.ABC):
    """A data set on disk with a train and a test split.

    Attributes
    ----------
    path : str
        The file or directory it was opened from.
    format : str
        One of ``'idx'``, ``'rec'``, ``'folder'``, ``'npz'``.
    classes : list of str or None
        Class names in label order, when the format records them.
    """

    format = None

    def __init__(self, path, classes=None):
        self.path = path
        self.classes = classes

    def load(self, split, data_shape=None):
        """Read one split.

        Parameters
        ----------
        split : {'train', 'test'}
        data_shape : tuple of int (C, H, W) or None
            Convert every image to this shape (see :func:`mxcompress.sources.to_shape`);
            needed when the images of a split differ in size.

        Returns
        -------
        images : numpy.ndarray, uint8 or float32, shape (N, C, H, W), as stored
        labels : numpy.ndarray, int64, shape (N,), each in 0..len(classes) - 1 when
            ``classes`` is known

        Raises
        ------
        DataError
            Naming the bad file.
        """
        if split not in SPLITS:
            raise ValueError('split must be one of %s, got %r' % (SPLITS, split))
        images, labels, where = self._load(split, data_shape)
        if data_shape is not None and images.shape[1:] != tuple(data_shape):
            images = to_shape(images, data_shape)
        labels = check_labels(labels, len(images), where, self.classes)
        return images, labels

    @abc.abstractmethod
    def _load(self, split, data_shape):
        """``(images (N, C, H, W), raw labels, file naming both)``; each format implements it."""

    def inputs(self):
        """The files this source reads (an output must never overwrite one)."""
        return [self.path]

    def __repr__(self):
        return '<%s source %s>' % (self.format, self.path)


def check_labels(labels, count, where, classes=None):
    """Validate labels and return them as int64 ``(N,)``.

    Parameters
    ----------
    labels : array-like, shape (N,) or (N, 1)
        Integer values (an integral float is accepted, as RecordIO stores float labels).
    count : int
        Number of images: the labels must match it.
    where : str
        File named in errors.
    classes : list or None
        When given, labels must be below ``len(classes)``.

    Raises
    ------
    DataError
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError('%s: labels must be one integer per image, got shape %s'
                        % (where, labels.shape))
    if len(labels) != count:
        raise DataError('%s: %d labels for %d images' % (where, len(labels), count))
    if labels.dtype.kind == 'f':
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            raise DataError('%s: label %r (item %d) is not an integer'
                            % (where, labels[bad][0], int(np.argmax(bad))))
    elif labels.dtype.kind not in 'iub':
        raise DataError('%s: labels must be integers, got dtype %s' % (where, labels.dtype))
    labels = labels.astype(np.int64)
    if count and labels.min() < 0:
        raise DataError('%s: label %d (item %d) is negative'
                        % (where, labels.min(), int(np.argmin(labels))))
    if count and classes is not None and labels.max() >= len(classes):
        raise DataError('%s: label %d (item %d) out of range 0..%d (%d classes)'
                        % (where, labels.max(), int(np.argmax(labels)), len(classes) - 1,
                           len(classes)))
    return labels


def check_images(images, where):
    """Return images as uint8 or float32, refusing other pixel types and non-finite values.

    Integer images whose values all lie in 0..255 become uint8; ``uint16`` becomes float32
    in [0, 1] (/ 65535); floats become float32 (values kept).

    Raises
    ------
    DataError
    """
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.uint16:
        return images.astype(np.float32) / 65535.0
    if images.dtype.kind in 'iub':
        if images.size and (images.min() < 0 or images.max() > 255):
            raise DataError('%s: integer pixel values must lie in 0..255, found %d..%d'
                            % (where, images.min(), images.max()))
        return images.astype(np.uint8)
    if images.dtype.kind == 'f':
        images = images.astype(np.float32)
        if not np.isfinite(images).all():
            raise DataError('%s: images hold NaN or infinite values' % where)
        return images
    raise DataError('%s: unsupported pixel type %s' % (where, images.dtype))


def to_nchw(array, where):
    """Put an image array in ``(N, C, H, W)`` layout.

    ``(N, H, W)`` gains a channel axis. A 4-d array is ``(N, C, H, W)`` when its axis 1 has
    1, 3 or 4 entries, else ``(N, H, W, C)`` when its last axis has (so ``(N, 3, H, 3)`` is
    read as NCHW).

    Raises
    ------
    DataError
        Any other rank or channel count.
    """
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 4:
        if array.shape[1] in (1, 3, 4):
            return array
        if array.shape[3] in (1, 3, 4):
            return array.transpose(0, 3, 1, 2)
    raise DataError('%s: images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C in '
                    '1, 3, 4; got shape %s' % (where, array.shape))


def stack_images(images, names, where, data_shape=None):
    """Stack decoded ``(C, H, W)`` images of one split into ``(N, C, H, W)``.

    Parameters
    ----------
    images : list of numpy.ndarray, each (C, H, W)
    names : list of str
        What to call each image in an error (file path or record).
    where : str
        The split, for an empty one.
    data_shape : tuple (C, H, W) or None
        Convert each image to it first; without it all images must have one shape.

    Raises
    ------
    DataError
        Mixed sizes without ``data_shape``, no images.
    """
    if not images:
        raise DataError('%s: no images' % where)
    if data_shape is not None:
        images = [to_shape(img[None], data_shape)[0] for img in images]
    first = images[0].shape
    for img, name in zip(images, names):
        if img.shape != first:
            raise DataError('%s: image of shape %s (C, H, W), but %s is %s: mixed image sizes; '
                            'give a data shape (e.g. --data-shape %s) to convert them'
                            % (name, img.shape, names[0], first, ','.join(map(str, first))))
    if len({img.dtype for img in images}) > 1:   # 16-bit among 8-bit images: all to [0, 1]
        images = [img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img
                  for img in images]
    return np.stack(images)


def read_classes_file(directory):
    """Class names from ``directory/classes.txt`` (one per line), or None if absent."""
    path = os.path.join(directory, CLASSES_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as handle:
            names = [line.rstrip('\r\n') for line in handle]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError('%s: cannot read (%s)' % (path, err)) from None
    while names and not names[-1]:
        names.pop()
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        raise DataError('%s: class names must be non-empty, unique, one per line' % path)
    return names


def split_file(directory, split, suffix, aliases=None):
    """The file of ``split`` in ``directory``: ``NAME + suffix`` for NAME in the split's
    names (``test`` also ``val``), else the one file ending in ``_NAME + suffix`` or
    ``-NAME + suffix`` (im2rec's ``prefix_train.rec``). None if there is none.

    Raises
    ------
    DataError
        Several candidates.
    """
    names = aliases or {'train': ('train',), 'test': ('test', 'val')}[split]
    for name in names:
        path = os.path.join(directory, name + suffix)
        if os.path.isfile(path):
            return path
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return None
    for name in names:
        found = [e for e in entries if e.endswith(('_' + name + suffix, '-' + name + suffix))]
        if len(found) > 1:
            raise DataError('%s: several %s files for the %s split: %s'
                            % (directory, suffix, split, ', '.join(found)))
        if found:
            return os.path.join(directory, found[0])
    return None
