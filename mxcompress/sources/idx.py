"""IDX reader: a directory with MNIST's four files, raw or gzipped, any image size.

Files, per split (``.gz`` or raw, the ``.gz`` one first as in :mod:`mxcompress.data`):
MNIST's names (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), else the one file ending in
``train-images-idx3-ubyte`` / ``t10k-`` or ``test-images-idx3-ubyte`` (e.g. EMNIST's
``emnist-digits-train-images-idx3-ubyte``). Images are ``(N, H, W)`` (idx3) or 4-d (idx4,
layout as :func:`~mxcompress.sources.base.to_nchw`); dimensions come from each header.
An optional ``classes.txt`` names the classes.
"""
import os
import re

from ..data import MNIST_FILES, MNISTError, read_idx
from .base import DataError, Source, check_images, read_classes_file, to_nchw

__all__ = ['IdxSource', 'find_idx_files']

_SPLIT_NAMES = {'train': ('train',), 'test': ('t10k', 'test')}


def _find(directory, exact, kind, split):
    for name in (exact + '.gz', exact):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    pattern = re.compile(r'(^|.*[-_.])(%s)-%s-idx%s-ubyte(\.gz)?$' % (
        '|'.join(_SPLIT_NAMES[split]), kind, '[34]' if kind == 'images' else '1'))
    try:
        found = sorted(e for e in os.listdir(directory) if pattern.match(e))
    except OSError:
        return None
    stems = sorted({e[:-3] if e.endswith('.gz') else e for e in found})
    if len(stems) > 1:
        raise DataError('%s: several %s %s IDX files: %s' % (directory, split, kind,
                                                              ', '.join(stems)))
    if not stems:
        return None
    gz = stems[0] + '.gz'
    return os.path.join(directory, gz if gz in found else stems[0])


def find_idx_files(directory):
    """``{split: (images path, labels path)}`` of an IDX directory, or None if a file is
    missing."""
    files = {}
    for split, (img_stem, lbl_stem, _) in MNIST_FILES.items():
        images = _find(directory, img_stem, 'images', split)
        labels = _find(directory, lbl_stem, 'labels', split)
        if images is None or labels is None:
            return None
        files[split] = (images, labels)
    return files


class IdxSource(Source):
    """An IDX directory (see the module docstring)."""

    format = 'idx'

    def __init__(self, path):
        if not os.path.isdir(path):
            raise DataError('%s: not a directory (an IDX data set is a directory of the four '
                            'IDX files)' % path)
        files = find_idx_files(path)
        if files is None:
            raise DataError('%s: missing IDX files; expected %s (raw or .gz)' % (path, ', '.join(
                s for imgs, lbls, _ in MNIST_FILES.values() for s in (imgs, lbls))))
        super().__init__(path, read_classes_file(path))
        self.files = files

    def _load(self, split, data_shape):
        img_path, lbl_path = self.files[split]
        try:
            images = read_idx(img_path)
            labels = read_idx(lbl_path)
        except MNISTError as err:
            raise DataError(str(err)) from None
        images = check_images(to_nchw(images, img_path), img_path)
        if images.base is not None and not images.flags.writeable:
            images = images.copy()    # read_idx gives a read-only view of the file's bytes
        if len(labels) != len(images):
            raise DataError('%s: %d labels, but %s holds %d images'
                            % (lbl_path, len(labels), img_path, len(images)))
        return images, labels, lbl_path

    def inputs(self):
        return [p for pair in self.files.values() for p in pair]
