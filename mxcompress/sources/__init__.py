"""Image classification data sets in MXNet's standard formats: readers, shapes, writers.

Formats (one reader module each; :func:`open_source` detects them, rules in
:mod:`mxcompress.sources.detect`):

* ``idx``: a directory with MNIST's four IDX files, raw or gzipped, any image size
  (:mod:`.idx`);
* ``rec``: ``train.rec``/``.idx`` and ``test.rec``/``.idx`` (or ``val``) as im2rec writes
  them (:mod:`.rec`);
* ``folder``: ``train/`` and ``test/`` (or ``val/``) with one sub-folder of PNG/JPEG images per
  class, as ``gluon.data.vision.ImageFolderDataset`` reads them (:mod:`.folder`);
* ``npz``: one file with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (:mod:`.npz`).

``open_source(path).load(split)`` gives ``(images, labels)``: images ``(N, C, H, W)`` uint8
(or float32 as stored), RGB; labels int64 ``(N,)``. A bad file raises :class:`DataError`
(a ``ValueError``) naming it. :func:`to_shape` converts images to a network's ``(C, H, W)``,
:func:`to_float` scales them to float32 [0, 1]; :func:`load_split` does all three like
:func:`mxcompress.data.load_mnist`. :func:`write_dataset` writes rec, folder or npz.
"""
from .base import DataError, Source
from .dataset import Dataset, load_data, load_dataset, load_split
from .detect import FORMATS, READERS, detect_format, open_source
from .shape import to_float, to_shape
from .writers import TARGETS, check_output, write_dataset

__all__ = ['DataError', 'Source', 'FORMATS', 'READERS', 'TARGETS', 'detect_format',
           'open_source', 'to_shape', 'to_float', 'Dataset', 'load_data', 'load_dataset', 'load_split',
           'check_output', 'write_dataset']
