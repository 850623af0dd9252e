"""MXNet's int8 path against the fp32 graph it came from."""
import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress.measure import predict
from mxcompress.quantization.int8 import fuse_fp32, quantize_int8


@pytest.mark.parametrize('mode', ['naive'])  # entropy: in the benchmark (slow calibration)
def test_int8_lenet5_close_to_fp32(mode):
    sym = symbols.get_symbol('lenet5')
    shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    rng = np.random.RandomState(0)
    args = {k: mx.nd.array(rng.randn(*s) * (0.2 if k.endswith('weight') else 0.01))
            for k, s in zip(sym.list_arguments(), shapes) if k not in ('data', 'softmax_label')}
    x = rng.rand(64, 1, 28, 28).astype(np.float32)
    qsym, qargs, qaux = quantize_int8(sym, args, {}, x, np.zeros(64), calib_mode=mode,
                                      batch_size=32)
    ops = {n['op'] for n in __import__('json').loads(qsym.tojson())['nodes']}
    assert '_contrib_quantize_v2' in ops
    ref = predict(sym, args, {}, x, batch_size=32)
    got = predict(qsym, qargs, qaux, x, batch_size=32)
    assert got.shape == ref.shape
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9
    np.testing.assert_allclose(predict(fuse_fp32(sym), args, {}, x, 32), ref, atol=1e-4)
    with pytest.raises(ValueError, match='calib_mode must be one of'):
        quantize_int8(sym, args, {}, x, np.zeros(64), calib_mode='kl')
