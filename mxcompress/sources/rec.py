"""RecordIO reader: MXNet image records as ``tools/im2rec.py`` or ``mx.recordio`` write them.

A directory with ``train.rec`` + ``train.idx`` and ``test.rec`` + ``test.idx`` (or ``val``;
also im2rec's ``PREFIX_train.rec`` / ``PREFIX_val.rec``). Records are read in the order of the
``.idx`` file with :class:`mx.recordio.MXIndexedRecordIO` and decoded by
:func:`mx.recordio.unpack_img` unchanged (grey stays 1 channel; BGR becomes RGB; alpha is
dropped). Labels are the header's (one per record; an integral float). An optional
``classes.txt`` names the classes (``mxcompress convert-data`` writes it).
"""
import os

import cv2
import mxnet as mx
import numpy as np

from .base import DataError, Source, read_classes_file, split_file, stack_images

__all__ = ['RecSource', 'decode_image']


def decode_image(img, name):
    """A ``cv2.imdecode(..., IMREAD_UNCHANGED)`` result as ``(C, H, W)`` RGB; ``name`` is
    used in errors.

    Raises
    ------
    DataError
        Not decodable (``img`` is None) or an unsupported channel count.
    """
    if img is None:
        raise DataError('%s: not a decodable image (corrupt or truncated)' % name)
    if img.ndim == 2:
        return img[None]
    if img.shape[2] == 1:
        return img.transpose(2, 0, 1)
    if img.shape[2] in (3, 4):
        return np.ascontiguousarray(img[:, :, 2::-1].transpose(2, 0, 1))   # BGR(A) -> RGB
    raise DataError('%s: %d channels; expected 1, 3 or 4' % (name, img.shape[2]))


def _rec_files(directory, split):
    rec = split_file(directory, split, '.rec')
    if rec is None:
        raise DataError('%s: no %s.rec (RecordIO data set: train.rec + train.idx, test.rec + '
                        'test.idx or val.rec + val.idx)' % (directory, split))
    idx = rec[:-4] + '.idx'
    if not os.path.isfile(idx):
        raise DataError('%s: no index %s beside it; make one with mxnet\'s tools/rec2idx.py '
                        '(or write the records with MXIndexedRecordIO)' % (rec, idx))
    return rec, idx


def _label(header, name):
    label = header.label
    if isinstance(label, np.ndarray):
        if label.size != 1:
            raise DataError('%s: %d labels in one record; only single-label classification '
                            'is supported' % (name, label.size))
        label = label.reshape(-1)[0]
    return label


class RecSource(Source):
    """A RecordIO directory (see the module docstring)."""

    format = 'rec'

    def __init__(self, path):
        if not os.path.isdir(path):
            raise DataError('%s: not a directory (a RecordIO data set is a directory holding '
                            'train.rec/.idx and test.rec/.idx)' % path)
        self.files = {split: _rec_files(path, split) for split in ('train', 'test')}
        super().__init__(path, read_classes_file(path))

    def _open(self, rec, idx):
        try:
            reader = mx.recordio.MXIndexedRecordIO(idx, rec, 'r')
        except (ValueError, IndexError) as err:
            raise DataError('%s: malformed index (%s); each line must be KEY<tab>OFFSET'
                            % (idx, err)) from None
        except mx.base.MXNetError as err:
            raise DataError('%s: cannot open (%s)' % (rec, str(err).strip().splitlines()[-1]))
        size = os.path.getsize(rec)
        for key in reader.keys:
            if reader.idx[key] >= size:
                reader.close()
                raise DataError('%s: record %s at offset %d lies past the end of the file (%d '
                                'bytes): truncated, or %s does not belong to it'
                                % (rec, key, reader.idx[key], size, idx))
        return reader

    def _load(self, split, data_shape):
        rec, idx = self.files[split]
        reader = self._open(rec, idx)
        images, labels, names = [], [], []
        try:
            for key in reader.keys:
                name = '%s: record %s (offset %d)' % (rec, key, reader.idx[key])
                try:
                    item = reader.read_idx(key)
                except mx.base.MXNetError as err:
                    raise DataError('%s: unreadable, the file is truncated or corrupt (%s)'
                                    % (name, str(err).strip().splitlines()[-1])) from None
                if item is None or len(item) < 24:
                    raise DataError('%s: missing or short record (truncated file?)' % name)
                header, img = mx.recordio.unpack_img(item, cv2.IMREAD_UNCHANGED)
                images.append(decode_image(img, name))
                labels.append(_label(header, name))
                names.append(name)
        finally:
            reader.close()
        return stack_images(images, names, rec, data_shape), np.array(labels), rec

    def inputs(self):
        return [p for pair in self.files.values() for p in pair]
