"""Atomic writes and detection of corrupt or inconsistent checkpoints."""
import os

import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress import checkpoint


def lenet300_params():
    sym = symbols.get_symbol('lenet300')
    shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    args = {k: mx.nd.array(np.random.RandomState(0).randn(*s))
            for k, s in zip(sym.list_arguments(), shapes) if k not in ('data', 'softmax_label')}
    return sym, args


def test_flipped_byte_fails_the_checksum(tmp_path):
    sym, args = lenet300_params()
    prefix = str(tmp_path / 'm')
    checkpoint.save_checkpoint(prefix, 0, sym, args, {})
    path = prefix + '-0000.params'
    blob = bytearray(open(path, 'rb').read())
    blob[len(blob) // 2] ^= 0x01
    open(path, 'wb').write(bytes(blob))
    with pytest.raises(checkpoint.CheckpointError, match='m-0000.params: checksum mismatch'):
        checkpoint.load_checkpoint(prefix, 0)


def test_truncated_params_fail(tmp_path):
    sym, args = lenet300_params()
    prefix = str(tmp_path / 'm')
    checkpoint.save_checkpoint(prefix, 0, sym, args, {})
    path = prefix + '-0000.params'
    blob = open(path, 'rb').read()
    open(path, 'wb').write(blob[:100])
    os.remove(path + '.sha256')  # even without the sidecar a truncated file is refused
    with pytest.raises(checkpoint.CheckpointError, match='m-0000.params'):
        checkpoint.load_checkpoint(prefix, 0)


def test_params_that_do_not_fit_the_symbol(tmp_path):
    sym, args = lenet300_params()
    prefix = str(tmp_path / 'm')
    args['lenet300_fc2_weight'] = mx.nd.zeros((99, 300))
    checkpoint.save_checkpoint(prefix, 0, sym, args, {})
    with pytest.raises(checkpoint.CheckpointError, match='lenet300_fc2_weight has shape'):
        checkpoint.load_checkpoint(prefix, 0, {'data': (1, 1, 28, 28)})
    del args['lenet300_fc2_weight']
    checkpoint.save_checkpoint(prefix, 0, sym, args, {})
    with pytest.raises(checkpoint.CheckpointError, match='missing.*lenet300_fc2_weight'):
        checkpoint.load_checkpoint(prefix, 0)


def test_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / 'out.bin'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with checkpoint.atomic_path(str(target)) as tmp:
            open(tmp, 'wb').write(b'half')
            raise RuntimeError('crash mid-write')
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['out.bin']
