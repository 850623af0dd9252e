"""Converting images to a network's input shape, and to float32 in [0, 1].

:func:`to_shape` makes ``(N, C, H, W)`` images ``(N, C', H', W')``:

* channels: 4 (RGBA) drops alpha first; 1 -> 3 repeats the grey plane; 3 -> 1 takes the
  luminance ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, as ``cv2.COLOR_RGB2GRAY``;
  rounded for uint8);
* size, ``mode='resize'`` (default): ``cv2.resize`` to exactly H' x W' (aspect ratio not
  kept), ``INTER_AREA`` when shrinking, ``INTER_LINEAR`` when enlarging;
  ``mode='crop'``: per axis, a centred crop where the image is larger and centred zero
  padding where it is smaller (the extra pixel of an odd difference goes after).

The pixel type is kept.
"""
import cv2
import numpy as np

__all__ = ['to_shape', 'to_float', 'LUMINANCE']

#: RGB weights of the luminance (ITU-R BT.601)
LUMINANCE = (0.299, 0.587, 0.114)
#: channels cv2.resize takes in one call (INTER_AREA at a non-integer scale: 4)
_CV_CHANNELS = {cv2.INTER_AREA: 4, cv2.INTER_LINEAR: 512}


def _channels(images, channels):
    have = images.shape[1]
    if have == 4:
        images, have = images[:, :3], 3
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if have == 3 and channels == 1:
        grey = np.tensordot(np.asarray(LUMINANCE, np.float32), images.astype(np.float32),
                            axes=([0], [1]))[:, None]
        if images.dtype == np.uint8:
            return np.clip(np.round(grey), 0, 255).astype(np.uint8)
        return grey.astype(images.dtype)
    raise ValueError('cannot convert %d-channel images to %d channels (1, 3 or 4 -> 1 or 3)'
                     % (images.shape[1], channels))


def _resize(images, height, width):
    n, c, h, w = images.shape
    interp = cv2.INTER_AREA if height <= h and width <= w else cv2.INTER_LINEAR
    planes = images.reshape(n * c, h, w).transpose(1, 2, 0)    # (H, W, N*C) for cv2
    out = np.empty((height, width, n * c), images.dtype)
    step = _CV_CHANNELS[interp]
    for start in range(0, n * c, step):
        part = np.ascontiguousarray(planes[:, :, start:start + step])
        resized = cv2.resize(part, (width, height), interpolation=interp)
        out[:, :, start:start + step] = resized.reshape(height, width, -1)
    return out.transpose(2, 0, 1).reshape(n, c, height, width)


def _crop_or_pad(images, height, width):
    n, c, h, w = images.shape
    out = np.zeros((n, c, height, width), images.dtype)
    src_y, dst_y = max(0, (h - height) // 2), max(0, (height - h) // 2)
    src_x, dst_x = max(0, (w - width) // 2), max(0, (width - w) // 2)
    rows, cols = min(h, height), min(w, width)
    out[:, :, dst_y:dst_y + rows, dst_x:dst_x + cols] = \
        images[:, :, src_y:src_y + rows, src_x:src_x + cols]
    return out


def to_shape(images, data_shape, mode='resize'):
    """Convert images to ``data_shape`` (see the module docstring for the rules).

    Parameters
    ----------
    images : numpy.ndarray, uint8 or float32, shape (N, C, H, W), C in 1, 3, 4
    data_shape : tuple of int (C', H', W'), C' in 1, 3
    mode : {'resize', 'crop'}

    Returns
    -------
    numpy.ndarray, same dtype, shape (N, C', H', W')
    """
    channels, height, width = (int(v) for v in data_shape)
    if images.ndim != 4:
        raise ValueError('images must be (N, C, H, W), got shape %s' % (images.shape,))
    if min(height, width) < 1 or channels not in (1, 3):
        raise ValueError('data shape must be (C, H, W) with C in 1, 3 and H, W >= 1, got %s'
                         % (tuple(data_shape),))
    if mode not in ('resize', 'crop'):
        raise ValueError("mode must be 'resize' or 'crop', got %r" % mode)
    images = _channels(images, channels)
    if images.shape[2:] != (height, width) and len(images):
        images = (_resize if mode == 'resize' else _crop_or_pad)(images, height, width)
    return images


def to_float(images):
    """Images as float32 in [0, 1] for training: uint8 / 255; float images are taken as
    already scaled and returned as float32.

    Parameters
    ----------
    images : numpy.ndarray, uint8 or float, shape (N, C, H, W)

    Returns
    -------
    numpy.ndarray, float32, same shape
    """
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0    # as load_mnist: bit for bit
    return images.astype(np.float32, copy=False)
