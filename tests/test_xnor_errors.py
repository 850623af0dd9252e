"""xnor_conv2d rejects bad shapes, dtypes and attributes with messages naming them, and a
saved graph using it says what to load when the library is missing."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import mxcompress.ops as ops

ops.load()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _call(data_shape=(1, 3, 5, 5), weight=None, alpha_len=7, **attrs):
    attrs.setdefault('kernel', (3, 3))
    attrs.setdefault('num_filter', 7)
    weight = mx.nd.zeros((7, 3, 3, 1), dtype='uint8') if weight is None else weight
    out = mx.nd.xnor_conv2d(mx.nd.ones(data_shape), weight, mx.nd.ones(alpha_len), **attrs)
    out.wait_to_read()
    return out


@pytest.mark.parametrize('attrs, message', [
    (dict(kernel=(0, 3)), "attribute 'kernel' must be one or two integers >= 1"),
    (dict(kernel='(3, x)'), "attribute 'kernel'"),
    (dict(stride=(0, 1)), "attribute 'stride' must be one or two integers >= 1"),
    (dict(pad=(-1, 1)), "attribute 'pad' must be one or two integers >= 0"),
    (dict(dilate=(1, 0)), "attribute 'dilate' must be"),
    (dict(num_filter=-1), "attribute 'num_filter' must be a positive integer"),
    (dict(num_filter='x'), "attribute 'num_filter' must be a positive integer"),
    (dict(no_bias='maybe'), "attribute 'no_bias' must be True or False"),
    (dict(groups=2), "unknown attribute 'groups'"),
    (dict(dilate=(1, 1), dilation=(1, 1)), "not both"),
    (dict(output_threshold='yes'), "attribute 'output_threshold' must be True or False"),
    (dict(packed_input='1x'), "attribute 'packed_input' must be True or False"),
    (dict(in_channels=3), "attribute 'in_channels' is only valid with packed_input=True"),
    (dict(packed_input=True), "attribute 'in_channels' (the input channels C) is required "
                              "with packed_input=True"),
    (dict(packed_input=True, in_channels=0), "attribute 'in_channels' must be a positive "
                                             "integer, got '0'"),
    (dict(packed_input=True, in_channels='three'), "attribute 'in_channels' must be a "
                                                   "positive integer"),
    (dict(packed_input=True, in_channels=3, input_threshold=True),
     "attributes 'packed_input' and 'input_threshold' cannot both be True"),
])
def test_bad_attributes(attrs, message):
    with pytest.raises(mx.base.MXNetError, match=message.replace('(', r'\(').replace(')', r'\)')):
        _call(**attrs)


def test_missing_kernel():
    with pytest.raises(mx.base.MXNetError, match="'kernel' and 'num_filter' are required"):
        mx.nd.xnor_conv2d(mx.nd.ones((1, 3, 5, 5)), mx.nd.zeros((7, 3, 3, 1), dtype='uint8'),
                          mx.nd.ones(7), num_filter=7).wait_to_read()


def test_bad_weight_shape():
    with pytest.raises(mx.base.MXNetError, match=r"input 'weight' must have shape \(7, 3, 3, 1\)"):
        _call(weight=mx.nd.zeros((7, 3, 3, 8), dtype='uint8'))


def test_bad_alpha_shape():
    with pytest.raises(mx.base.MXNetError, match=r"input 'alpha' must have shape \(7,\)"):
        _call(alpha_len=6)


def test_float_weight_rejected():
    with pytest.raises(mx.base.MXNetError, match="input 'weight' must be uint8"):
        _call(weight=mx.nd.zeros((7, 3, 3, 1)))


def test_data_must_be_4d():
    with pytest.raises(mx.base.MXNetError, match=r"input 'data' must be 4-D"):
        _call(data_shape=(3, 5, 5))


def test_input_smaller_than_kernel():
    with pytest.raises(mx.base.MXNetError, match='smaller than the dilated kernel'):
        _call(data_shape=(1, 3, 2, 5))


def test_padding_bits_must_be_zero():
    weight = np.zeros((7, 3, 3, 1), np.uint8)
    weight[2, 1, 1, 0] = 0x10  # channel 4 of a 3-channel layer
    with pytest.raises(mx.base.MXNetError, match='bits set beyond channel 3'):
        _call(weight=mx.nd.array(weight, dtype='uint8'))


def test_bias_needs_four_inputs():
    with pytest.raises(mx.base.MXNetError):
        _call(no_bias=False)


def _packed_call(data, in_channels=3, **attrs):
    out = mx.nd.xnor_conv2d(data, mx.nd.zeros((7, 3, 3, 1), dtype='uint8'), mx.nd.ones(7),
                            kernel=(3, 3), num_filter=7, packed_input=True,
                            in_channels=in_channels, **attrs)
    out.wait_to_read()
    return out


def test_packed_input_shape_and_dtype():
    """A packed input must be uint8 (N, H, W, ceil(in_channels / 8)); a float tensor with
    packed_input, or packed bits without it, are rejected naming the dtypes."""
    assert _packed_call(mx.nd.zeros((2, 5, 6, 1), dtype='uint8')).shape == (2, 7, 3, 4)
    with pytest.raises(mx.base.MXNetError,
                       match=r"packed_input=True must have shape \(N, H, W, 2\) for "
                             r"in_channels=9 .* got \(1, 5, 5, 1\)"):
        _packed_call(mx.nd.zeros((1, 5, 5, 1), dtype='uint8'), in_channels=9)
    with pytest.raises(mx.base.MXNetError, match=r"input 'data' must be 4-D \(N, H, W, "
                                                 r"ceil\(in_channels / 8\)\)"):
        _packed_call(mx.nd.zeros((5, 5, 1), dtype='uint8'))
    with pytest.raises(mx.base.MXNetError, match="input 'data' must be uint8.*packed_input"):
        _packed_call(mx.nd.zeros((1, 5, 5, 1)))
    with pytest.raises(mx.base.MXNetError,
                       match="input 'data' must be float32.*need packed_input=True"):
        mx.nd.xnor_conv2d(mx.nd.zeros((1, 3, 5, 5), dtype='uint8'),
                          mx.nd.zeros((7, 3, 3, 1), dtype='uint8'), mx.nd.ones(7),
                          kernel=(3, 3), num_filter=7).wait_to_read()


def test_output_threshold_needs_its_inputs_and_shapes():
    x, w, a = mx.nd.ones((1, 3, 5, 5)), mx.nd.zeros((7, 3, 3, 1), dtype='uint8'), mx.nd.ones(7)
    out = mx.nd.xnor_conv2d(x, w, a, mx.nd.ones(7), mx.nd.zeros(7), kernel=(3, 3),
                            num_filter=7, output_threshold=True)
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3, 1)
    with pytest.raises(mx.base.MXNetError, match=r"input 'out_threshold' must have shape "
                                                 r"\(7,\)"):
        mx.nd.xnor_conv2d(x, w, a, mx.nd.ones(7), mx.nd.zeros(3), kernel=(3, 3),
                          num_filter=7, output_threshold=True).wait_to_read()
    with pytest.raises(mx.base.MXNetError):  # the two threshold inputs are missing
        mx.nd.xnor_conv2d(x, w, a, kernel=(3, 3), num_filter=7,
                          output_threshold=True).wait_to_read()


def test_pack_weights_rejects_non_4d():
    with pytest.raises(ValueError, match='must be 4-D'):
        ops.pack_weights(np.ones((3, 3)))


_NO_LIBRARY = r'''
import sys, mxnet as mx
from mxcompress.checkpoint import load_checkpoint, CheckpointError
try:
    mx.sym.load(sys.argv[1] + '-symbol.json')
except mx.base.MXNetError as err:
    assert 'xnor_conv2d' in str(err), err
else:
    raise SystemExit('mx.sym.load read an xnor graph without the library')
symbol, args, _ = load_checkpoint(sys.argv[1], 0)   # loads the op library itself
assert 'xnor_conv2d' in symbol.tojson()
print('OK')
'''


def test_saved_graph_loads_the_library_itself(tmp_path):
    """Plain mx.sym.load needs the library; load_checkpoint (and so the CLI) loads it."""
    from mxcompress.checkpoint import load_checkpoint, save_checkpoint
    sym = mx.sym.xnor_conv2d(mx.sym.var('data'), mx.sym.var('w'), mx.sym.var('a'),
                             kernel=(3, 3), num_filter=2, pad=(1, 1), name='xc')
    prefix = str(tmp_path / 'xnor')
    params = {'w': mx.nd.zeros((2, 3, 3, 1), dtype='uint8'), 'a': mx.nd.ones(2)}
    save_checkpoint(prefix, 0, sym, params, {})
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, '-c', _NO_LIBRARY, prefix], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stdout
    # with the library loaded the same checkpoint reads and fits
    loaded, args, _ = load_checkpoint(prefix, 0, data_shapes={'data': (1, 3, 4, 4)})
    assert loaded.list_arguments() == ['data', 'w', 'a']
