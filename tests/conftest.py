"""Shared fixtures: the real MNIST directory and generated IDX files."""
import gzip
import os
import struct

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'mnist')


def pytest_configure(config):
    # mxnet 1.9 and gluoncv use APIs that newer numpy/scipy/distutils mark deprecated
    config.addinivalue_line('filterwarnings', 'ignore::DeprecationWarning')


@pytest.fixture(scope='session')
def mnist_dir():
    """Directory of the real MNIST files (raw or gzipped IDX): $MXCOMPRESS_DATA, else
    ../shared/data/mnist, else gluon's ~/.mxnet/datasets/mnist (where scripts/get_mnist.sh
    puts them)."""
    from mxcompress.data import MNISTError, find_mnist_dir
    candidates = [os.environ.get('MXCOMPRESS_DATA'), SHARED_MNIST, None]
    path = None
    for candidate in candidates:
        if candidate is not None and not os.path.isdir(candidate):
            continue
        try:
            path = find_mnist_dir(candidate)
            break
        except MNISTError:
            continue
    if path is None:
        pytest.fail('MNIST not found (looked in $MXCOMPRESS_DATA, %s and ~/.mxnet/datasets/'
                    'mnist): run scripts/get_mnist.sh (the suite needs real MNIST)' % SHARED_MNIST)
    os.environ['MXCOMPRESS_DATA'] = path
    return path


def write_idx(path, array, dtype_code=0x08, compress=None):
    """Write ``array`` as an IDX file (gzipped when the name ends in .gz)."""
    header = struct.pack('>HBB', 0, dtype_code, array.ndim)
    header += struct.pack('>' + 'I' * array.ndim, *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    compress = path.endswith('.gz') if compress is None else compress
    with (gzip.open if compress else open)(path, 'wb') as f:
        f.write(payload)
    return path


def fit_args(**overrides):
    """Default fit options (as the command line gives them) with ``overrides``."""
    import argparse
    from mxcompress.fit import add_data_args, add_fit_args
    parser = argparse.ArgumentParser()
    add_data_args(parser)
    add_fit_args(parser)
    args = parser.parse_args([])
    args.disp_batches = 1000
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def random_params(sym, seed=0, data_shape=(2, 1, 28, 28)):
    """Random ``(arg_params, aux_params)`` for ``sym`` (inputs excluded; aux kept positive)."""
    import mxnet as mx
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data_shape)
    rng = np.random.RandomState(seed)
    args = {k: mx.nd.array(rng.randn(*s) * 0.1) for k, s in zip(sym.list_arguments(), arg_shapes)
            if k not in ('data', 'softmax_label')}
    aux = {k: mx.nd.array(np.abs(rng.randn(*s)) + 0.5)
           for k, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return args, aux
