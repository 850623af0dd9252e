"""NumPy ``.npz`` reader: keys ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` (layout as
:func:`~mxcompress.sources.base.to_nchw`), uint8 or float (other integer types with values in
0..255 become uint8); labels integers ``(N,)``. An optional ``classes`` key (array of str)
names the classes. Pickled (object) arrays are refused.
"""
import os
import zipfile

import numpy as np

from .base import DataError, Source, check_images, to_nchw

__all__ = ['NpzSource', 'NPZ_KEYS']

#: split -> (images key, labels key)
NPZ_KEYS = {'train': ('x_train', 'y_train'), 'test': ('x_test', 'y_test')}


def _open(path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError('%s: not a readable .npz file (%s)' % (path, err)) from None


def _get(archive, path, key):
    try:
        return archive[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise DataError('%s: key %s unreadable (%s)' % (path, key, err)) from None


class NpzSource(Source):
    """A ``.npz`` file (see the module docstring)."""

    format = 'npz'

    def __init__(self, path):
        if not os.path.isfile(path):
            raise DataError('%s: no such .npz file' % path)
        with _open(path) as archive:
            keys = set(archive.files)
            for key in sorted(k for pair in NPZ_KEYS.values() for k in pair):
                if key not in keys:
                    raise DataError('%s: missing key %s (has: %s; needs x_train, y_train, '
                                    'x_test, y_test)' % (path, key, ', '.join(sorted(keys))))
            classes = None
            if 'classes' in keys:
                names = _get(archive, path, 'classes')
                if names.ndim != 1 or names.dtype.kind not in 'US':
                    raise DataError('%s: key classes must be a 1-d array of str' % path)
                classes = [str(n) for n in names]
        super().__init__(path, classes)

    def _load(self, split, data_shape):
        x_key, y_key = NPZ_KEYS[split]
        with _open(self.path) as archive:
            images, labels = _get(archive, self.path, x_key), _get(archive, self.path, y_key)
        where = '%s: %s' % (self.path, x_key)
        images = check_images(to_nchw(images, where), where)
        if len(labels) != len(images):
            raise DataError('%s: %s holds %d labels for the %d images of %s'
                            % (self.path, y_key, len(labels), len(images), x_key))
        return np.ascontiguousarray(images), labels, '%s: %s' % (self.path, y_key)
