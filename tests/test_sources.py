"""The data set readers (idx, rec, folder, npz), format detection, to_shape, and every bad
file giving a DataError that names it."""
import gzip
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import write_idx
from mxcompress.data import load_mnist
from mxcompress.sources import (DataError, detect_format, load_dataset, load_split, open_source,
                                to_float, to_shape, write_dataset)

RNG = np.random.RandomState(0)


def _images(n, shape=(1, 8, 8)):
    return RNG.randint(0, 256, (n,) + shape).astype(np.uint8)


def _npz(path, x_train, y_train, x_test, y_test, **extra):
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **extra)
    np.savez(str(path), **arrays)
    return str(path)


def _small(tmp_path, shape=(3, 8, 6), classes=('ant', 'bee', 'cat')):
    """A small uint8 data set as npz, every class in both splits."""
    y_train, y_test = np.arange(12) % 3, np.array([2, 0, 1, 1, 0, 2])
    extra = {'classes': np.array(classes)} if classes else {}
    return _npz(tmp_path / 'small.npz', _images(12, shape), y_train, _images(6, shape), y_test,
                **extra)


def _convert(src, to, out):
    write_dataset(str(out), load_dataset(src), to)
    return str(out)


# -- readers ---------------------------------------------------------------------------------

def test_idx_reads_mnist_like_load_mnist(mnist_dir):
    source = open_source(mnist_dir)
    assert source.format == 'idx' and source.classes is None
    images, labels = source.load('test')
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and images.flags.writeable
    x, y = load_split(mnist_dir, 'test', num_examples=500)
    x_ref, y_ref = load_mnist('test', mnist_dir, 500)
    assert np.array_equal(x, x_ref) and np.array_equal(y, y_ref) and x.dtype == np.float32


@pytest.mark.parametrize('gz', [False, True])
def test_idx_other_sizes_from_the_header(tmp_path, gz):
    ext = '.gz' if gz else ''
    x_train, x_test = _images(20, (32, 24)), _images(7, (32, 24))
    y_train, y_test = np.arange(20) % 5, np.arange(7) % 5
    for stem, array in (('train-images-idx3-ubyte', x_train), ('train-labels-idx1-ubyte', y_train),
                        ('t10k-images-idx3-ubyte', x_test), ('t10k-labels-idx1-ubyte', y_test)):
        write_idx(str(tmp_path / (stem + ext)), array)
    source = open_source(str(tmp_path))
    images, labels = source.load('train')
    assert images.shape == (20, 1, 32, 24) and np.array_equal(images[:, 0], x_train)
    assert np.array_equal(labels, y_train)
    # EMNIST-style names are found too
    for name in os.listdir(tmp_path):
        os.rename(tmp_path / name, tmp_path / ('emnist-letters-' + name.replace('t10k', 'test')))
    assert np.array_equal(open_source(str(tmp_path)).load('test')[0][:, 0], x_test)


def test_npz_layouts_and_dtypes(tmp_path):
    x = _images(5, (8, 6, 3))                                     # NHWC
    path = _npz(tmp_path / 'a.npz', x, np.arange(5), x[:, :, :, :1].astype(np.int32),
                np.arange(5), classes=np.array(list('abcde')))
    source = open_source(path)
    train, test = source.load('train'), source.load('test')
    assert np.array_equal(train[0], x.transpose(0, 3, 1, 2))
    assert test[0].dtype == np.uint8 and test[0].shape == (5, 1, 8, 6)
    assert source.classes == list('abcde')
    floats = _npz(tmp_path / 'f.npz', x[..., 0] / 255.0, np.arange(5), x[..., 0] / 255.0,
                  np.arange(5))
    images = open_source(floats).load('train')[0]
    assert images.dtype == np.float32 and images.shape == (5, 1, 8, 6)


def test_folder_keeps_class_names_and_imagefolder_order(tmp_path):
    folder = _convert(_small(tmp_path), 'folder', tmp_path / 'f')
    source = open_source(folder)
    assert source.format == 'folder' and source.classes == ['ant', 'bee', 'cat']
    images, labels = source.load('train')
    assert list(labels) == sorted(labels)           # grouped by class, as ImageFolderDataset
    from mxnet.gluon.data.vision import ImageFolderDataset
    gluon = ImageFolderDataset(os.path.join(folder, 'train'))
    assert gluon.synsets == source.classes
    assert [label for _, label in gluon.items] == list(labels)


def test_rec_is_readable_by_image_record_iter(tmp_path):
    import mxnet as mx
    rec = _convert(_small(tmp_path, shape=(3, 8, 8)), 'rec', tmp_path / 'r')
    images, labels = open_source(rec).load('train')
    it = mx.io.ImageRecordIter(path_imgrec=os.path.join(rec, 'train.rec'), data_shape=(3, 8, 8),
                               batch_size=12, shuffle=False, preprocess_threads=1)
    batch = next(iter(it))
    assert np.array_equal(batch.data[0].asnumpy().astype(np.uint8), images)   # RGB both
    assert np.array_equal(batch.label[0].asnumpy(), labels)


def test_rec_from_raw_recordio_with_val_split(tmp_path):
    """Records as mx.recordio writes them by hand (val.rec, JPEG-free grey PNG, packed label)."""
    import mxnet as mx
    x = _images(4, (8, 8))
    for split in ('train', 'val'):
        writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / (split + '.idx')),
                                               str(tmp_path / (split + '.rec')), 'w')
        for i in range(4):
            header = mx.recordio.IRHeader(1, np.array([float(i % 2)]), i, 0)
            writer.write_idx(i, mx.recordio.pack_img(header, x[i], img_fmt='.png'))
        writer.close()
    source = open_source(str(tmp_path))
    assert source.format == 'rec' and source.classes is None
    images, labels = source.load('test')
    assert np.array_equal(images[:, 0], x) and list(labels) == [0, 1, 0, 1]


# -- detection -------------------------------------------------------------------------------

def test_detection(tmp_path, mnist_dir):
    npz = _small(tmp_path)
    rec, folder = _convert(npz, 'rec', tmp_path / 'r'), _convert(npz, 'folder', tmp_path / 'f')
    assert [detect_format(p) for p in (mnist_dir, npz, rec, folder)] == \
        ['idx', 'npz', 'rec', 'folder']
    both = tmp_path / 'both'
    shutil.copytree(folder, both)
    for name in os.listdir(rec):
        shutil.copy(os.path.join(rec, name), both)
    with pytest.raises(DataError, match='several data sets.*rec, folder'):
        detect_format(str(both))
    assert open_source(str(both), 'rec').format == 'rec'
    with pytest.raises(DataError, match='no data set recognised'):
        detect_format(str(tmp_path / 'f' / 'train'))
    with pytest.raises(DataError, match='no such file'):
        open_source(str(tmp_path / 'nope'))
    os.remove(os.path.join(rec, 'test.rec'))
    with pytest.raises(DataError, match='no test.rec'):
        open_source(rec)
    with pytest.raises(DataError, match='missing IDX files'):
        open_source(rec, 'idx')


# -- shapes ----------------------------------------------------------------------------------

def test_to_shape_channels_resize_crop():
    rgb = _images(4, (3, 10, 12))
    grey = to_shape(rgb, (1, 10, 12))
    expected = cv2.cvtColor(rgb[1].transpose(1, 2, 0), cv2.COLOR_RGB2GRAY)
    assert np.abs(grey[1, 0].astype(int) - expected).max() <= 1
    assert np.array_equal(to_shape(grey, (3, 10, 12)), np.repeat(grey, 3, axis=1))
    small = to_shape(rgb, (3, 5, 6))
    assert small.dtype == np.uint8 and np.array_equal(
        small[2], cv2.resize(rgb[2].transpose(1, 2, 0), (6, 5),
                             interpolation=cv2.INTER_AREA).transpose(2, 0, 1))
    assert to_shape(rgb.astype(np.float32), (3, 20, 24)).shape == (4, 3, 20, 24)
    cropped = to_shape(rgb, (3, 6, 16), mode='crop')
    assert np.array_equal(cropped[:, :, :, 2:14], rgb[:, :, 2:8, :])
    assert not cropped[:, :, :, :2].any() and not cropped[:, :, :, 14:].any()
    assert to_float(rgb).max() <= 1.0 and to_float(rgb).dtype == np.float32
    with pytest.raises(ValueError, match='channels'):
        to_shape(_images(2, (2, 4, 4)), (3, 4, 4))


def test_mixed_sizes_need_a_data_shape(tmp_path):
    folder = _convert(_small(tmp_path), 'folder', tmp_path / 'f')
    odd = os.path.join(folder, 'test', 'bee', '00003.png')
    cv2.imwrite(odd, _images(1, (9, 9))[0])
    with pytest.raises(DataError, match='00003.png.*mixed image sizes'):
        open_source(folder).load('test')
    images, labels = open_source(folder).load('test', data_shape=(3, 16, 16))
    assert images.shape == (6, 3, 16, 16) and images.dtype == np.uint8
    dataset = load_dataset(folder, data_shape=(1, 8, 8))
    assert dataset.train[0].shape == (12, 1, 8, 8) and dataset.num_classes == 3


# -- bad data: a DataError naming the file ---------------------------------------------------

def test_truncated_record(tmp_path):
    rec = _convert(_small(tmp_path), 'rec', tmp_path / 'r')
    path = os.path.join(rec, 'train.rec')
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:-20])
    with pytest.raises(DataError, match=r'train\.rec: record 11 .*truncated'):
        open_source(rec).load('train')
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(DataError, match=r'train\.rec.*truncated'):
        open_source(rec).load('train')


def test_corrupt_record_payload(tmp_path):
    rec = _convert(_small(tmp_path), 'rec', tmp_path / 'r')
    path = os.path.join(rec, 'test.rec')
    data = bytearray(open(path, 'rb').read())
    data[40:60] = b'\0' * 20                          # inside the first PNG
    open(path, 'wb').write(bytes(data))
    with pytest.raises(DataError, match=r'test\.rec: record 0 .*not a decodable image'):
        open_source(rec).load('test')


def test_rec_without_idx(tmp_path):
    rec = _convert(_small(tmp_path), 'rec', tmp_path / 'r')
    os.remove(os.path.join(rec, 'test.idx'))
    with pytest.raises(DataError, match=r'test\.rec: no index .*test\.idx'):
        open_source(rec)


def test_empty_class_folder(tmp_path):
    folder = _convert(_small(tmp_path), 'folder', tmp_path / 'f')
    bee = os.path.join(folder, 'train', 'bee')
    for name in os.listdir(bee):
        os.remove(os.path.join(bee, name))
    with pytest.raises(DataError, match=r'train/bee: empty class folder'):
        open_source(folder).load('train')


def test_missing_or_extra_class_folder_in_test(tmp_path):
    folder = _convert(_small(tmp_path), 'folder', tmp_path / 'f')
    shutil.rmtree(os.path.join(folder, 'test', 'cat'))
    with pytest.raises(DataError, match=r'test/cat: missing class folder'):
        open_source(folder)
    os.makedirs(os.path.join(folder, 'test', 'cat', 'x'))
    shutil.copytree(os.path.join(folder, 'test', 'bee'), os.path.join(folder, 'test', 'dog'))
    with pytest.raises(DataError, match=r'test/dog: class folder not in'):
        open_source(folder)


def test_unreadable_image(tmp_path):
    folder = _convert(_small(tmp_path), 'folder', tmp_path / 'f')
    bad = os.path.join(folder, 'train', 'ant', '00003.png')
    open(bad, 'wb').write(b'not a png at all')
    with pytest.raises(DataError, match=r'ant/00003\.png: not a decodable image'):
        open_source(folder).load('train')
    open(bad, 'wb').close()
    with pytest.raises(DataError, match=r'ant/00003\.png: not a decodable image'):
        open_source(folder).load('train')


@pytest.mark.parametrize('case, message', [
    ('count', r'bad\.npz: y_train holds 11 labels for the 12 images'),
    ('negative', r'bad\.npz: y_train: label -1 \(item 4\) is negative'),
    ('range', r'bad\.npz: y_test: label 3 \(item 2\) out of range 0\.\.2'),
    ('float', r'bad\.npz: y_train: label 0\.5 \(item 0\) is not an integer'),
    ('missing', r'bad\.npz: missing key y_test'),
    ('rank', r'bad\.npz: x_train: images must be'),
])
def test_bad_npz(tmp_path, case, message):
    x, y = _images(12), np.arange(12) % 3
    xt, yt = _images(3), np.array([0, 1, 3 if case == 'range' else 2])
    if case == 'count':
        y = y[:11]
    elif case == 'negative':
        y = y.copy()
        y[4] = -1
    elif case == 'float':
        y = y + 0.5
    elif case == 'rank':
        x = x.reshape(12, -1)
    path = _npz(tmp_path / 'bad.npz', x, y, xt, yt, classes=np.array(['a', 'b', 'c']))
    if case == 'missing':
        np.savez(path, x_train=x, y_train=y, x_test=xt)
    with pytest.raises(DataError, match=message):
        load_dataset(path)


def test_bad_idx_label_count(tmp_path):
    write_idx(str(tmp_path / 'train-images-idx3-ubyte'), _images(5, (4, 4)))
    write_idx(str(tmp_path / 'train-labels-idx1-ubyte'), np.arange(4))
    write_idx(str(tmp_path / 't10k-images-idx3-ubyte'), _images(2, (4, 4)))
    write_idx(str(tmp_path / 't10k-labels-idx1-ubyte'), np.arange(2))
    with pytest.raises(DataError, match=r'train-labels-idx1-ubyte: 4 labels, but .* 5 images'):
        open_source(str(tmp_path)).load('train')
    with gzip.open(str(tmp_path / 't10k-images-idx3-ubyte.gz'), 'wb') as f:
        f.write(b'\0\0\x08')
    with pytest.raises(DataError, match=r't10k-images-idx3-ubyte\.gz: truncated header'):
        open_source(str(tmp_path)).load('test')
