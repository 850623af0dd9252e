"""Format detection and :func:`open_source`.

Rules for a path (``data_format`` overrides them):

* a file ending in ``.npz`` -> ``npz``;
* a directory holding the four IDX files (MNIST's names, raw or ``.gz``) -> ``idx``;
* a directory holding ``train.rec`` and ``test.rec`` or ``val.rec`` (or im2rec's
  ``PREFIX_train.rec`` ...) -> ``rec``;
* a directory with ``train/`` and ``test/`` (or ``val/``) sub-folders -> ``folder``.

A directory that is complete for several formats is ambiguous (an error asking for
``data_format``); one complete for none but partly like one (a ``.rec`` or ``-ubyte`` file,
a ``train/`` folder) is opened as that format, whose reader then names what is missing.
"""
import os

from .base import DataError, split_file
from .folder import FolderSource, split_dirs
from .idx import IdxSource, find_idx_files
from .npz import NpzSource
from .rec import RecSource

__all__ = ['FORMATS', 'READERS', 'detect_format', 'open_source']

#: format name -> reader class
READERS = {'idx': IdxSource, 'rec': RecSource, 'folder': FolderSource, 'npz': NpzSource}
#: the format names
FORMATS = tuple(READERS)


def _complete(path):
    found = []
    if find_idx_files(path) is not None:
        found.append('idx')
    if split_file(path, 'train', '.rec') and split_file(path, 'test', '.rec'):
        found.append('rec')
    if split_dirs(path) is not None:
        found.append('folder')
    return found


def _partial(path):
    entries = os.listdir(path)
    found = []
    if any('-ubyte' in e for e in entries):
        found.append('idx')
    if any(e.endswith('.rec') for e in entries):
        found.append('rec')
    if os.path.isdir(os.path.join(path, 'train')):
        found.append('folder')
    return found


def detect_format(path):
    """The format of the data set at ``path`` (see the module docstring).

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    DataError
        Missing path, no format recognised, or several.
    """
    if not os.path.exists(path):
        raise DataError('%s: no such file or directory' % path)
    if not os.path.isdir(path):
        if path.lower().endswith('.npz'):
            return 'npz'
        raise DataError('%s: a data set file must be a .npz (x_train, y_train, x_test, y_test); '
                        'other formats are directories' % path)
    found = _complete(path)
    if len(found) > 1:
        raise DataError('%s: holds several data sets (%s); choose one with --data-format'
                        % (path, ', '.join(found)))
    found = found or _partial(path)
    if len(found) != 1:
        raise DataError('%s: %s; expected the four IDX files (idx), train.rec/.idx + test.rec/.idx '
                        '(rec), train/ + test/ class folders (folder) or a .npz file'
                        % (path, 'several partial data sets (%s)' % ', '.join(found) if found
                               else 'no data set recognised'))
    return found[0]


def open_source(path, data_format=None):
    """Open the data set at ``path``.

    Parameters
    ----------
    path : str
        A directory (idx, rec, folder) or a ``.npz`` file.
    data_format : {'idx', 'rec', 'folder', 'npz'} or None
        None detects it from the path (see the module docstring).

    Returns
    -------
    Source
        ``.load(split, data_shape=None)`` -> ``(images (N, C, H, W) uint8/float32,
        labels int64 (N,))``; ``.classes``; ``.format``.

    Raises
    ------
    DataError
    """
    if data_format is None:
        data_format = detect_format(path)
    elif data_format not in READERS:
        raise ValueError('data format must be one of %s, got %r' % (', '.join(FORMATS),
                                                                    data_format))
    elif not os.path.exists(path):
        raise DataError('%s: no such file or directory' % path)
    return READERS[data_format](path)
