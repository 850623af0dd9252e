"""Writing a :class:`~mxcompress.sources.dataset.Dataset` in another format, losslessly.

* ``rec``: ``OUT/train.rec`` + ``train.idx``, ``OUT/test.rec`` + ``test.idx`` (one
  PNG-encoded record per image, as im2rec with ``--encoding .png`` writes; header label =
  class, id = position) and ``OUT/classes.txt`` when the classes have names;
* ``folder``: ``OUT/train/<class>/NNNNN.png`` and ``OUT/test/...``, NNNNN the image's
  position in its split; class folders are the class names, else the label numbers
  zero-padded (``0`` .. ``9``, ``00`` .. ``11``) so that sorting them keeps the labels.
  Read back, a folder gives each split sorted by label, in the original order within a class;
* ``npz``: one file, keys ``x_train``, ``y_train``, ``x_test``, ``y_test`` (images
  ``(N, C, H, W)`` as stored, labels int64), ``classes`` when named; compressed.

PNG holds uint8 images of 1 or 3 channels: float images go to ``npz`` only. A folder needs
every class in both splits and names that sort in label order. All of this is checked by
:func:`check_writable` before anything is written; a directory is written into a hidden
temporary sibling and renamed onto ``OUT`` at the end, a file through
:func:`mxcompress.checkpoint.atomic_path`, so a failure leaves nothing behind.
"""
import os
import shutil
import tempfile

import cv2
import mxnet as mx
import numpy as np

from ..checkpoint import atomic_path, check_output_prefix
from .base import CLASSES_FILE, DataError, SPLITS
from .npz import NPZ_KEYS

__all__ = ['TARGETS', 'check_output', 'check_writable', 'write_dataset', 'folder_class_names']

#: formats convert-data writes
TARGETS = ('rec', 'folder', 'npz')
_PNG_COMPRESSION = 3
_MAX_FSYNCS = 64


def folder_class_names(dataset):
    """Class folder names: the class names, else zero-padded label numbers."""
    if dataset.classes is not None:
        return list(dataset.classes)
    width = len(str(max(dataset.num_classes - 1, 0)))
    return ['%0*d' % (width, label) for label in range(dataset.num_classes)]


def check_writable(dataset, to):
    """Refuse a data set that format ``to`` cannot hold losslessly.

    Raises
    ------
    DataError
    """
    if to not in TARGETS:
        raise ValueError('--to must be one of %s, got %r' % (', '.join(TARGETS), to))
    if to == 'npz':
        return
    for split in SPLITS:
        images = getattr(dataset, split)[0]
        if images.dtype != np.uint8:
            raise DataError('%s: %s images are %s; PNG (rec, folder) stores uint8 losslessly, '
                            'write npz instead' % (dataset.path, split, images.dtype))
        if images.shape[1] not in (1, 3):
            raise DataError('%s: %d-channel images; rec and folder hold 1 or 3 channels (give '
                            'a data shape)' % (dataset.path, images.shape[1]))
    if to == 'folder':
        names = folder_class_names(dataset)
        for name in names:
            if not name or name.startswith('.') or os.sep in name or '\0' in name:
                raise DataError('%s: class name %r cannot be a folder name'
                                % (dataset.path, name))
        if names != sorted(names):
            raise DataError('%s: class names %s are not in sorted order, so an image folder '
                            'would number them differently; write rec or npz' % (
                                dataset.path, ', '.join(names)))
        for split in SPLITS:
            missing = sorted(set(range(dataset.num_classes)) - set(getattr(dataset, split)[1]))
            if missing:
                raise DataError('%s: the %s split has no image of class %s; an image folder '
                                'needs every class in both splits' % (
                                    dataset.path, split, names[missing[0]]))


def check_output(out, to, inputs, source_path):
    """Check the output path before any work: ``OUT.npz`` for npz, else a new or empty
    directory, writable, not an input and not inside the source.

    Raises
    ------
    ValueError
    """
    if to == 'npz':
        if not out.lower().endswith('.npz'):
            raise ValueError('OUT %r: an npz data set is a file whose name ends in .npz' % out)
        return check_output_prefix(out, inputs, 'OUT', is_file=True)
    out = out.rstrip('/' + os.sep) or out
    if os.path.exists(out) and not (os.path.isdir(out) and not os.listdir(out)):
        raise ValueError('OUT %r exists; give a new (or empty) directory for the %s data set'
                         % (out, to))
    real_out, real_src = os.path.realpath(out), os.path.realpath(source_path)
    if real_out == real_src or real_out.startswith(real_src.rstrip(os.sep) + os.sep):
        raise ValueError('OUT %r lies inside the source %s' % (out, source_path))
    if not os.path.exists(out):
        return check_output_prefix(out, inputs, 'OUT', is_file=True)
    check_output_prefix(os.path.join(out, 'train'), inputs, 'OUT', is_file=True)
    parent = os.path.dirname(os.path.abspath(out))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError('OUT %r: directory %s is not writable' % (out, parent))
    return out


def _hwc_bgr(image):
    """(C, H, W) RGB -> what cv2.imencode takes: (H, W) grey or (H, W, 3) BGR."""
    return image[0] if image.shape[0] == 1 else np.ascontiguousarray(image[::-1].transpose(1, 2, 0))


def _write_rec(directory, dataset):
    for split in SPLITS:
        images, labels = getattr(dataset, split)
        writer = mx.recordio.MXIndexedRecordIO(os.path.join(directory, split + '.idx'),
                                               os.path.join(directory, split + '.rec'), 'w')
        try:
            for i, (image, label) in enumerate(zip(images, labels)):
                header = mx.recordio.IRHeader(0, float(label), i, 0)
                writer.write_idx(i, mx.recordio.pack_img(header, _hwc_bgr(image),
                                                         quality=_PNG_COMPRESSION,
                                                         img_fmt='.png'))
        finally:
            writer.close()
    if dataset.classes is not None:
        with open(os.path.join(directory, CLASSES_FILE), 'w', encoding='utf-8') as handle:
            handle.write(''.join(name + '\n' for name in dataset.classes))


def _write_folder(directory, dataset):
    names = folder_class_names(dataset)
    params = [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION]
    for split in SPLITS:
        images, labels = getattr(dataset, split)
        for name in names:
            os.makedirs(os.path.join(directory, split, name))
        width = max(5, len(str(len(images) - 1)))
        for i, (image, label) in enumerate(zip(images, labels)):
            ok, buf = cv2.imencode('.png', _hwc_bgr(image), params)
            if not ok:
                raise DataError('%s: cannot encode %s image %d as PNG' % (dataset.path, split, i))
            path = os.path.join(directory, split, names[label], '%0*d.png' % (width, i))
            with open(path, 'wb') as handle:
                handle.write(buf.tobytes())


def _write_npz(handle, dataset):
    arrays = {}
    for split in SPLITS:
        x_key, y_key = NPZ_KEYS[split]
        arrays[x_key], arrays[y_key] = getattr(dataset, split)
    if dataset.classes is not None:
        arrays['classes'] = np.array(dataset.classes, dtype=str)
    np.savez_compressed(handle, **arrays)


def _flush_tree(directory):
    """Put every file under ``directory`` on disk before the rename that publishes it: one
    fsync per file for a few files, one ``os.sync()`` for an image folder (70,000 fsyncs
    take 30 s, one sync well under one)."""
    paths = [os.path.join(folder, name) for folder, _, files in os.walk(directory)
             for name in files]
    if len(paths) > _MAX_FSYNCS:
        os.sync()
        return
    for path in paths:
        with open(path, 'rb') as handle:
            os.fsync(handle.fileno())


def write_dataset(out, dataset, to):
    """Write ``dataset`` at ``out`` in format ``to`` (see the module docstring), atomically.

    Parameters
    ----------
    out : str
        ``.npz`` file or directory (new or empty), checked with :func:`check_output`.
    dataset : Dataset
    to : {'rec', 'folder', 'npz'}

    Returns
    -------
    str
        The path written.
    """
    check_writable(dataset, to)
    if to == 'npz':
        with atomic_path(out) as tmp:
            with open(tmp, 'wb') as handle:
                _write_npz(handle, dataset)
        return out
    out = out.rstrip('/' + os.sep) or out
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.%s.' % os.path.basename(out), suffix='.tmp', dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)   # mkdtemp makes 0700; give the usual mode
        (_write_rec if to == 'rec' else _write_folder)(tmp, dataset)
        _flush_tree(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return out
