"""MNIST IDX reading and iterators, against the real files and generated ones."""
import gzip

import numpy as np
import pytest

from conftest import write_idx
from mxcompress import data


def test_real_files_have_standard_counts_and_ranges(mnist_dir):
    x, y = data.load_mnist('test', mnist_dir)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (10000,) and set(np.unique(y)) == set(range(10))
    assert x.min() == 0.0 and x.max() == 1.0
    xt, yt = data.load_mnist('train', mnist_dir, num_examples=100)
    assert xt.shape == (100, 1, 28, 28) and yt.shape == (100,)
    # first training label of MNIST is a 5, first test label a 7
    assert yt[0] == 5 and y[0] == 7


def test_raw_and_gzip_read_the_same(tmp_path):
    rng = np.random.RandomState(1)
    arr = rng.randint(0, 256, (7, 28, 28))
    raw = data.read_idx(write_idx(str(tmp_path / 'a'), arr))
    gz = data.read_idx(write_idx(str(tmp_path / 'a.gz'), arr))
    np.testing.assert_array_equal(raw, arr)
    np.testing.assert_array_equal(gz, arr)


@pytest.mark.parametrize('corruption', ['magic', 'truncated', 'overlong', 'dims'])
def test_bad_idx_files_name_the_file(tmp_path, corruption):
    path = write_idx(str(tmp_path / 'bad-idx'), np.zeros((5, 28, 28)))
    raw = bytearray(open(path, 'rb').read())
    if corruption == 'magic':
        raw[2] = 0x42
    elif corruption == 'truncated':
        raw = raw[:-10]
    elif corruption == 'overlong':
        raw += b'\0'
    open(path, 'wb').write(bytes(raw))
    expected = (4, 28, 28) if corruption == 'dims' else None
    with pytest.raises(data.MNISTError, match='bad-idx'):
        data.read_idx(path, expected)


def test_truncated_gzip_is_detected(tmp_path):
    path = write_idx(str(tmp_path / 'x.gz'), np.zeros((50, 28, 28)))
    blob = open(path, 'rb').read()
    open(path, 'wb').write(blob[:len(blob) // 2])
    with pytest.raises(data.MNISTError, match='x.gz'):
        data.read_idx(path)


def _copy_mnist(source, target, gzipped):
    """The four files of ``source`` (raw or .gz) into ``target``, all raw or all gzipped."""
    target.mkdir(exist_ok=True)
    for stem in ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte',
                 't10k-labels-idx1-ubyte'):
        path = data._file_in(source, stem)
        raw = open(path, 'rb').read()
        raw = gzip.decompress(raw) if path.endswith('.gz') else raw
        name = stem + ('.gz' if gzipped else '')
        (target / name).write_bytes(gzip.compress(raw, 1) if gzipped else raw)
    return str(target)


@pytest.mark.parametrize('gzipped', [True, False])
def test_truncated_real_file_in_a_directory_is_refused(tmp_path, mnist_dir, gzipped):
    _copy_mnist(mnist_dir, tmp_path, gzipped)
    labels = tmp_path / ('t10k-labels-idx1-ubyte' + ('.gz' if gzipped else ''))
    raw = gzip.decompress(labels.read_bytes()) if gzipped else labels.read_bytes()
    labels.write_bytes(gzip.compress(raw[:-1]) if gzipped else raw[:-1])
    with pytest.raises(data.MNISTError, match='t10k-labels.*truncated'):
        data.load_mnist('test', str(tmp_path))


def test_raw_and_gzipped_files_read_the_same(tmp_path, mnist_dir):
    raw = _copy_mnist(mnist_dir, tmp_path / 'raw', gzipped=False)
    packed = _copy_mnist(mnist_dir, tmp_path / 'gz', gzipped=True)
    for split in ('train', 'test'):
        a, b = data.load_mnist(split, raw, 500), data.load_mnist(split, packed, 500)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_corrupt_deflate_stream_is_a_clear_error(tmp_path):
    path = write_idx(str(tmp_path / 'x-idx3-ubyte.gz'),
                     np.arange(50 * 28 * 28).reshape(50, 28, 28))
    blob = bytearray(open(path, 'rb').read())
    blob[len(blob) // 2] ^= 0xff   # a flipped byte in the middle of the deflate stream
    open(path, 'wb').write(bytes(blob))
    with pytest.raises(data.MNISTError, match='x-idx3-ubyte.gz: cannot read'):
        data.read_idx(path)


def test_search_order_explicit_then_env(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv('MXCOMPRESS_DATA', mnist_dir)
    assert data.find_mnist_dir() == mnist_dir
    with pytest.raises(data.MNISTError, match=str(tmp_path)):
        data.find_mnist_dir(str(tmp_path))  # explicit choice is never replaced
    monkeypatch.setenv('MXCOMPRESS_DATA', str(tmp_path))
    monkeypatch.setenv('HOME', str(tmp_path))
    with pytest.raises(data.MNISTError, match='MXCOMPRESS_DATA.*gluon default'):
        data.find_mnist_dir()


def test_iterators_shapes_range_and_determinism(mnist_dir):
    train, test = data.mnist_iterators(32, mnist_dir, num_examples=256, num_test_examples=64,
                                       seed=3)
    batch = next(iter(train))
    x = batch.data[0].asnumpy()
    assert x.shape == (32, 1, 28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert batch.label[0].shape == (32,)
    train2, _ = data.mnist_iterators(32, mnist_dir, num_examples=256, num_test_examples=64,
                                     seed=3)
    np.testing.assert_array_equal(next(iter(train2)).data[0].asnumpy(), x)
    assert sum(1 for _ in test) == 2


def test_sharding_splits_the_training_set(mnist_dir):
    parts = [data.mnist_iterators(10, mnist_dir, num_examples=100, num_test_examples=10,
                                  num_parts=2, part_index=i)[0] for i in range(2)]
    assert [p.num_data for p in parts] == [50, 50]
    with pytest.raises(ValueError, match='part_index'):
        data.mnist_iterators(10, mnist_dir, num_examples=100, num_parts=2, part_index=2)


def test_jitter_shifts_but_keeps_the_pixels(mnist_dir):
    train, _ = data.mnist_iterators(16, mnist_dir, num_examples=16, num_test_examples=16,
                                    jitter=2, seed=0)
    plain, _ = data.mnist_iterators(16, mnist_dir, num_examples=16, num_test_examples=16,
                                    jitter=0, seed=0)
    a = next(iter(train)).data[0].asnumpy()
    b = next(iter(plain)).data[0].asnumpy()
    assert a.shape == b.shape and not np.array_equal(a, b)
    # a shift by <= 2 px keeps almost all ink (MNIST digits sit inside a 20x20 box)
    np.testing.assert_allclose(a.sum(axis=(1, 2, 3)), b.sum(axis=(1, 2, 3)), rtol=0.05)


def test_num_examples_out_of_range(mnist_dir):
    with pytest.raises(ValueError, match='num_examples must be in 1..10000'):
        data.load_mnist('test', mnist_dir, num_examples=10001)
