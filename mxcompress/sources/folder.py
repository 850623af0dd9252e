"""Image-folder reader: ``train/`` and ``test/`` (or ``val/``), one sub-folder per class.

As :class:`gluon.data.vision.ImageFolderDataset`: the classes are the sub-folders of
``train/`` sorted by name (label = position), the images of a class its ``.png``, ``.jpg``,
``.jpeg`` files (any case) sorted by name; other files are skipped with a warning. Unlike
it, hidden entries (``.name``) are ignored, and both splits must have the same class folders,
each holding at least one image: a class folder missing from ``test/`` (or extra there) or an
empty one is an error naming it, because a silently missing class would renumber the labels
of every class after it. Images are decoded unchanged (grey stays 1 channel, colour becomes
RGB, alpha is dropped, 16-bit becomes float32 in [0, 1]).
"""
import logging
import os

import cv2
import numpy as np

from .base import DataError, Source, stack_images
from .rec import decode_image

__all__ = ['FolderSource', 'IMAGE_EXTENSIONS', 'split_dirs', 'class_dirs']

log = logging.getLogger(__name__)

#: file extensions read as images (lower case)
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def split_dirs(path):
    """``{'train': dir, 'test': dir}`` (``test`` may be ``val/``), or None if absent."""
    train = os.path.join(path, 'train')
    for name in ('test', 'val'):
        test = os.path.join(path, name)
        if os.path.isdir(train) and os.path.isdir(test):
            return {'train': train, 'test': test}
    return None


def class_dirs(split_dir):
    """Sorted class folder names of one split (hidden entries skipped)."""
    try:
        entries = sorted(e for e in os.listdir(split_dir) if not e.startswith('.'))
    except OSError as err:
        raise DataError('%s: cannot list (%s)' % (split_dir, err.strerror)) from None
    names = []
    for entry in entries:
        if os.path.isdir(os.path.join(split_dir, entry)):
            names.append(entry)
        else:
            log.warning('%s: not a folder, ignored', os.path.join(split_dir, entry))
    return names


def _image_files(folder):
    files = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith('.'):
            continue
        if os.path.splitext(entry)[1].lower() in IMAGE_EXTENSIONS:
            files.append(os.path.join(folder, entry))
        else:
            log.warning('%s: not a .png/.jpg/.jpeg image, ignored', os.path.join(folder, entry))
    if not files:
        raise DataError('%s: empty class folder (no .png/.jpg/.jpeg image); remove it or add '
                        'images' % folder)
    return files


def _read(path):
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as err:
        raise DataError('%s: cannot read (%s)' % (path, err.strerror)) from None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    return decode_image(img, path)


class FolderSource(Source):
    """An image-folder directory (see the module docstring)."""

    format = 'folder'

    def __init__(self, path):
        dirs = split_dirs(path) if os.path.isdir(path) else None
        if dirs is None:
            raise DataError('%s: an image-folder data set needs train/ and test/ (or val/) '
                            'sub-folders, one folder per class in each' % path)
        classes = class_dirs(dirs['train'])
        if not classes:
            raise DataError('%s: no class folders' % dirs['train'])
        test = class_dirs(dirs['test'])
        for name in classes:
            if name not in test:
                raise DataError('%s: missing class folder (train/ has %s); both splits need '
                                'the same classes' % (os.path.join(dirs['test'], name), name))
        for name in test:
            if name not in classes:
                raise DataError('%s: class folder not in %s; both splits need the same classes'
                                % (os.path.join(dirs['test'], name), dirs['train']))
        super().__init__(path, classes)
        self.dirs = dirs

    def _load(self, split, data_shape):
        images, labels, names = [], [], []
        for label, name in enumerate(self.classes):
            for path in _image_files(os.path.join(self.dirs[split], name)):
                images.append(_read(path))
                labels.append(label)
                names.append(path)
        return (stack_images(images, names, self.dirs[split], data_shape),
                np.array(labels, np.int64), self.dirs[split])

    def inputs(self):
        return list(self.dirs.values())
