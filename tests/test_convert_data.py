"""``mxcompress convert-data``: lossless round trips through every format, output checks, and
bad data refused with one line naming the file and nothing written."""
import glob
import os
import runpy
import shutil
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from mxcompress.cli import main
from mxcompress.sources import open_source

IM2REC = os.path.join(os.path.dirname(mx.__file__), 'tools', 'im2rec.py')


def _convert(src, to, out, *options):
    return main(['convert-data', str(src), '--to', to, str(out)] + list(options))


def _load(path):
    source = open_source(str(path))
    return source.load('train'), source.load('test'), source.classes


def _by_class(split):
    """What an image folder gives back: the split stably sorted by label."""
    order = np.argsort(split[1], kind='stable')
    return split[0][order], split[1][order]


def _assert_same(a, b):
    for (x, y), (x2, y2) in zip(a, b):
        assert x.dtype == x2.dtype and np.array_equal(x, x2) and np.array_equal(y, y2)


def _leftovers(directory):
    return [n for n in os.listdir(directory) if n.startswith('.')]


def test_mnist_round_trip_idx_npz_folder_rec_npz(tmp_path, mnist_dir, capsys):
    assert _convert(mnist_dir, 'npz', tmp_path / 'a.npz', '--num-examples', '300',
                    '--num-test-examples', '100') == 0
    assert 'train 300, test 100 images of 1x28x28 uint8, 10 classes' in capsys.readouterr().out
    source = open_source(mnist_dir)
    reference = [tuple(a[:n] for a in source.load(split)) for split, n in (('train', 300),
                                                                           ('test', 100))]
    train, test, classes = _load(tmp_path / 'a.npz')
    _assert_same([train, test], reference)
    assert classes is None

    assert _convert(tmp_path / 'a.npz', 'folder', tmp_path / 'f') == 0
    train, test, classes = _load(tmp_path / 'f')
    _assert_same([train, test], [_by_class(s) for s in reference])
    assert classes == [str(d) for d in range(10)]
    folder = (train, test)

    assert _convert(tmp_path / 'f', 'rec', tmp_path / 'r') == 0
    train, test, classes = _load(tmp_path / 'r')
    _assert_same([train, test], folder)
    assert classes == [str(d) for d in range(10)]

    assert _convert(tmp_path / 'r', 'npz', tmp_path / 'b.npz') == 0
    train, test, classes = _load(tmp_path / 'b.npz')
    _assert_same([train, test], folder)
    assert classes == [str(d) for d in range(10)]
    assert not _leftovers(tmp_path)


def test_colour_round_trip_keeps_names_and_reads_im2rec(tmp_path, monkeypatch):
    rng = np.random.RandomState(1)
    x, xt = (rng.randint(0, 256, (n, 3, 12, 10)).astype(np.uint8) for n in (30, 9))
    y, yt = np.arange(30) % 3, np.arange(9)[::-1] % 3
    np.savez(str(tmp_path / 'c.npz'), x_train=x, y_train=y, x_test=xt, y_test=yt,
             classes=np.array(['ant', 'bee', 'cat']))
    assert _convert(tmp_path / 'c.npz', 'rec', tmp_path / 'r') == 0
    train, test, classes = _load(tmp_path / 'r')
    _assert_same([train, test], [(x, y), (xt, yt)])                 # rec keeps the order
    assert classes == ['ant', 'bee', 'cat']
    assert _convert(tmp_path / 'r', 'folder', tmp_path / 'f') == 0
    assert sorted(os.listdir(tmp_path / 'f' / 'test')) == ['ant', 'bee', 'cat']
    train, test, classes = _load(tmp_path / 'f')
    _assert_same([train, test], [_by_class((x, y)), _by_class((xt, yt))])
    assert _convert(tmp_path / 'f', 'npz', tmp_path / 'd.npz') == 0
    _assert_same(_load(tmp_path / 'd.npz')[:2], [train, test])

    # MXNet's own tools/im2rec.py on the folder (PNG, unchanged colour) reads back the same
    out = tmp_path / 'im2rec'
    out.mkdir()
    monkeypatch.chdir(out)
    for split in ('train', 'test'):
        root = str(tmp_path / 'f' / split)
        for argv in (['--list', '--recursive', '--no-shuffle', split, root],
                     ['--encoding', '.png', '--color', '-1', '--no-shuffle', split, root]):
            monkeypatch.setattr(sys, 'argv', [IM2REC] + argv)
            names = runpy.run_path(IM2REC, run_name='__main__')
            if 'record' in names:     # im2rec leaves its single-threaded writer to the GC
                names['record'].close()
    _assert_same(_load(out)[:2], [train, test])


@pytest.fixture
def small(tmp_path):
    """A 40 + 20 image grey set as npz, rec and folder (every class in both splits)."""
    rng = np.random.RandomState(2)
    x, xt = (rng.randint(0, 256, (n, 1, 8, 8)).astype(np.uint8) for n in (40, 20))
    np.savez(str(tmp_path / 's.npz'), x_train=x, y_train=np.arange(40) % 4, x_test=xt,
             y_test=np.arange(20) % 4)
    assert _convert(tmp_path / 's.npz', 'rec', tmp_path / 'r') == 0
    assert _convert(tmp_path / 's.npz', 'folder', tmp_path / 'f') == 0
    return tmp_path


def _truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:-30])


def _empty_class(path):
    for name in glob.glob(os.path.join(path, '*')):
        os.remove(name)


def _mixed(path):
    cv2.imwrite(path, np.zeros((9, 9), np.uint8))


def _npz(tmp_path, **change):
    arrays = dict(np.load(str(tmp_path / 's.npz')))
    arrays.update(change)
    np.savez(str(tmp_path / 'bad.npz'), **{k: v for k, v in arrays.items() if v is not None})


BAD = {   # case: (source, file to spoil, spoil, what the error names)
    'truncated record': ('r', 'r/train.rec', _truncate, 'r/train.rec: record 39'),
    'rec without idx': ('r', 'r/test.idx', os.remove, 'r/test.rec: no index'),
    'empty class folder': ('f', 'f/train/2', _empty_class, 'f/train/2: empty class folder'),
    'missing class folder': ('f', 'f/test/3', shutil.rmtree, 'f/test/3: missing class folder'),
    'unreadable image': ('f', 'f/test/1/00005.png', lambda p: open(p, 'wb').write(b'x' * 9),
                         'f/test/1/00005.png: not a decodable image'),
    'mixed sizes': ('f', 'f/train/0/00004.png', _mixed, 'f/train/0/00004.png: image of shape'),
    'label out of range': ('bad.npz', None, lambda t: _npz(t, classes=np.array(list('abc'))),
                           'bad.npz: y_train: label 3 (item 3) out of range 0..2'),
    'label count': ('bad.npz', None, lambda t: _npz(t, y_test=np.arange(19) % 4),
                    'bad.npz: y_test holds 19 labels for the 20 images'),
    'npz missing key': ('bad.npz', None, lambda t: _npz(t, x_test=None),
                        'bad.npz: missing key x_test'),
}


@pytest.mark.parametrize('case', sorted(BAD))
@pytest.mark.parametrize('to', ['npz', 'rec'])
def test_bad_data_is_one_line_and_nothing_written(small, capsys, case, to):
    source, spoilt, spoil, message = BAD[case]
    spoil(str(small / spoilt) if spoilt else small)
    out = small / ('out.npz' if to == 'npz' else 'out')
    assert _convert(small / source, to, out) == 2
    err = capsys.readouterr().err
    assert err.startswith('mxcompress convert-data: error: ') and message in err, err
    assert err.count('\n') == 1
    assert not out.exists() and not _leftovers(small)


def test_outputs_are_checked_before_any_work(small, capsys):
    (small / 'full').mkdir()
    (small / 'full' / 'x').write_text('keep')
    assert _convert(small / 'r', 'folder', small / 'full') == 2
    assert 'exists' in capsys.readouterr().err and os.listdir(small / 'full') == ['x']
    assert _convert(small / 'r', 'npz', small / 'out') == 2
    assert 'ends in .npz' in capsys.readouterr().err
    assert _convert(small / 'f', 'rec', small / 'f' / 'train' / 'new') == 2
    assert 'inside the source' in capsys.readouterr().err
    (small / 'empty').mkdir()                                     # an empty directory is fine
    assert _convert(small / 'f', 'rec', small / 'empty') == 0
    assert sorted(os.listdir(small / 'empty')) == ['classes.txt', 'test.idx', 'test.rec',
                                                   'train.idx', 'train.rec']


def test_what_png_cannot_hold_is_refused(small, capsys):
    arrays = dict(np.load(str(small / 's.npz')))
    np.savez(str(small / 'float.npz'), **dict(arrays, x_train=arrays['x_train'] / 255.0,
                                              x_test=arrays['x_test'] / 255.0))
    assert _convert(small / 'float.npz', 'rec', small / 'out') == 2
    assert 'write npz instead' in capsys.readouterr().err
    assert _convert(small / 'float.npz', 'npz', small / 'f2.npz') == 0    # npz keeps floats
    assert open_source(str(small / 'f2.npz')).load('test')[0].dtype == np.float32
    np.savez(str(small / 'names.npz'), **dict(arrays, classes=np.array(['d', 'c', 'b', 'a'])))
    assert _convert(small / 'names.npz', 'folder', small / 'out') == 2
    assert 'not in sorted order' in capsys.readouterr().err
    assert not (small / 'out').exists() and not _leftovers(small)


def test_a_failure_while_writing_leaves_nothing(small, monkeypatch, capsys):
    import mxcompress.sources.writers as writers
    calls = []

    def failing(image):
        calls.append(1)
        if len(calls) > 30:
            raise OSError(28, 'No space left on device')
        return image[0]

    monkeypatch.setattr(writers, '_hwc_bgr', failing)
    assert _convert(small / 's.npz', 'folder', small / 'out') == 1
    assert 'No space left' in capsys.readouterr().err
    assert not (small / 'out').exists() and not _leftovers(small)


def test_data_shape_converts_mixed_sizes(small, capsys):
    _mixed(str(small / 'f' / 'train' / '0' / '00004.png'))
    assert _convert(small / 'f', 'npz', small / 'o.npz', '--data-shape', '3,16,16') == 0
    train, test, classes = _load(small / 'o.npz')
    assert train[0].shape == (40, 3, 16, 16) and test[0].shape == (20, 3, 16, 16)
    assert classes == ['0', '1', '2', '3']
    with pytest.raises(SystemExit):
        _convert(small / 'f', 'npz', small / 'p.npz', '--data-shape', '2,8,8')
    assert 'expected C,H,W' in capsys.readouterr().err
