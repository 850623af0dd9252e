"""xnor_conv2d equals Convolution(sign(x), sign(W)) * alpha (+ bias) on every shape family."""
import os

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import mxcompress.ops as ops
from mxcompress.ops.reference import pack_bits, random_case, reference_numpy, run_op
from mxcompress.ops.selfcheck import (CASES, CHAINS, check_case, check_chain, check_packed,
                                      kernel_env, kernel_variants, set_env)

ops.load()

KERNELS = ops.available_kernels()
#: the kernels plus the portable one without POPCNT (selfcheck.NO_POPCNT)
VARIANTS = kernel_variants(KERNELS)

@pytest.fixture(params=VARIANTS)
def kernel(request, monkeypatch):
    for key, value in kernel_env(request.param).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    assert ops.kernel_name() == os.environ['MXCOMPRESS_XNOR_KERNEL']
    return request.param


def _check(case, seed, with_bias=True):
    check_case(case, seed, with_bias)


@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_matches_sign_convolution(case, kernel):
    _check(case, seed=hash(case) % 1000)


@pytest.mark.parametrize('case', CASES[:4], ids=[str(i) for i in range(4)])
def test_without_bias(case, kernel):
    _check(case, seed=3, with_bias=False)


def test_border_correction_is_needed():
    """With all-negative inputs a zero-padded float conv differs from 'pad with +1' or 'pad
    with -1' at the borders; the op must match the zero-padded one exactly."""
    x = -np.ones((1, 5, 4, 4), np.float32)
    weight = np.random.RandomState(0).randn(3, 5, 3, 3).astype(np.float32)
    alpha = np.ones(3, np.float32)
    got = run_op(x, weight, alpha, kernel=(3, 3), pad=(1, 1))
    want = reference_numpy(x, weight, alpha, kernel=(3, 3), pad=(1, 1))
    np.testing.assert_array_equal(got, want)
    plus = reference_numpy(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=1.0),
                           weight, alpha, kernel=(3, 3))
    assert not np.array_equal(got, plus)


def test_long_reduction_overflows_no_count(kernel):
    """C * KH * KW = 65,700 binary MACs per output, more than a 16-bit count holds: the AVX2
    kernel's 16-bit totals are added into its int32 counts every 256 chunks of 63 steps
    (16,128 steps = 64,512 bits), and here it takes 16,560 steps; channel 0's signs are the
    opposite of the input's, so its centre count is all 65,700."""
    rng = np.random.RandomState(5)
    x = rng.randn(1, 7300, 3, 3).astype(np.float32)
    weight = rng.randn(2, 7300, 3, 3).astype(np.float32)
    weight[0] = -np.sign(x[0]) - (x[0] == 0)  # every product -1: count = C * 9 at the centre
    alpha = np.ones(2, np.float32)
    got = run_op(x, weight, alpha, kernel=(3, 3), pad=(1, 1))
    want = reference_numpy(x, weight, alpha, kernel=(3, 3), pad=(1, 1))
    np.testing.assert_array_equal(got, want)
    assert got[0, 0, 1, 1] == -7300 * 9


def test_sign_rule_zero_is_plus_one():
    x = np.zeros((1, 2, 3, 3), np.float32)
    x[0, 1] = -0.0
    weight = np.ones((1, 2, 1, 1), np.float32)
    got = run_op(x, weight, np.ones(1, np.float32), kernel=(1, 1))
    np.testing.assert_array_equal(got, 2 * np.ones((1, 1, 3, 3), np.float32))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.sampled_from([1, 3, 63, 64, 65, 130, 513]),
       h=st.integers(1, 12), w=st.integers(1, 12),
       o=st.one_of(st.integers(1, 20), st.sampled_from([33, 64, 70, 100, 129])),
       kh=st.integers(1, 7), kw=st.integers(1, 7), sh=st.integers(1, 3), sw=st.integers(1, 3),
       ph=st.integers(0, 3), pw=st.integers(0, 3), dh=st.integers(1, 3), dw=st.integers(1, 3),
       bias=st.booleans(), kernel_choice=st.sampled_from(VARIANTS), seed=st.integers(0, 2 ** 16),
       thresholds=st.booleans(), residual=st.booleans(), packed=st.booleans())
def test_fuzz(n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, bias, kernel_choice, seed,
              thresholds, residual, packed):
    """Pads up to 3 with kernels 1..7 (pad > kernel included), strides and dilations up to 3,
    1-pixel sides, with and without per-channel input thresholds; an empty output must be
    rejected with the op's message (check_case); ``packed``: the bit-packed forms too
    (check_packed)."""
    saved = set_env(kernel_env(kernel_choice))
    case = (n, c, h, w, o, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    try:
        check_case(case, seed, bias, thresholds=thresholds, residual=residual)
        if packed:
            check_packed(case, seed, bias, thresholds=thresholds, residual=residual)
    finally:
        set_env(saved)


@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_input_thresholds_match_the_reference(case, kernel):
    """input_threshold: the input binarised per channel (-1 where x * scale < threshold,
    scales +-1, thresholds +-inf included) equals Convolution on those +-1 values, exactly."""
    check_case(case, 11, with_bias=False, thresholds=True)
    check_case(case, 12, with_bias=True, thresholds=True)


@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_residual_is_added_in_the_epilogue(case, kernel):
    """residual=True: the op's output plus a float tensor of its shape, exactly as a separate
    elemwise add, with and without bias and input thresholds."""
    check_case(case, 21, with_bias=False, residual=True)
    check_case(case, 22, with_bias=True, thresholds=True, residual=True)


def test_input_thresholds_need_their_inputs_and_shapes():
    x, w, a = mx.nd.ones((1, 3, 5, 5)), mx.nd.zeros((2, 3, 3, 1), dtype='uint8'), mx.nd.ones(2)
    with pytest.raises(mx.base.MXNetError, match='in_threshold'):
        mx.nd.xnor_conv2d(x, w, a, mx.nd.ones(3), mx.nd.ones(2), kernel=(3, 3), num_filter=2,
                          input_threshold=True).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="input 'residual' must have shape"):
        mx.nd.xnor_conv2d(x, w, a, mx.nd.ones((1, 2, 5, 5)), kernel=(3, 3), num_filter=2,
                          residual=True).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match='input_threshold.*True or False'):
        mx.nd.xnor_conv2d(x, w, a, kernel=(3, 3), num_filter=2,
                          input_threshold='maybe').wait_to_read()


def test_pack_roundtrip():
    rng = np.random.RandomState(1)
    for c in (1, 63, 64, 65, 130):
        weight = rng.randn(4, c, 3, 2).astype(np.float32)
        packed = ops.pack_weights(weight)
        assert packed.dtype == np.uint8 and packed.shape == (4, 3, 2, ops.packed_channels_bytes(c))
        np.testing.assert_array_equal(ops.unpack_weights(packed, c),
                                      np.where(weight >= 0, 1.0, -1.0))


def test_symbol_shape_and_type_inference():
    sym = mx.sym.xnor_conv2d(mx.sym.var('data'), mx.sym.var('w'), mx.sym.var('a'),
                             mx.sym.var('b'), kernel=(3, 3), num_filter=7, pad=(1, 1),
                             stride=(2, 2), no_bias=False)
    args, outs, _ = sym.infer_shape(data=(2, 65, 9, 11))
    assert args == [(2, 65, 9, 11), (7, 3, 3, 9), (7,), (7,)]
    assert outs == [(2, 7, 5, 6)]
    types, out_types, _ = sym.infer_type(data='float32')
    assert types == [np.float32, np.uint8, np.float32, np.float32]
    assert out_types == [np.float32]


class _XnorBlock(mx.gluon.HybridBlock):
    """A HybridBlock calling F.xnor_conv2d, as the converter's graphs do."""

    def __init__(self, packed, alpha, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.weight = self.params.get_constant('weight', mx.nd.array(packed, dtype='uint8'))
            self.alpha = self.params.get_constant('alpha', mx.nd.array(alpha))

    def hybrid_forward(self, F, x, weight, alpha):
        return F.relu(F.xnor_conv2d(x, weight, alpha, kernel=(3, 3), pad=(1, 1),
                                    num_filter=alpha.shape[0] if hasattr(alpha, 'shape') else 4))


def test_hybrid_block_hybridised_equals_imperative():
    rng = np.random.RandomState(2)
    x, weight, alpha, _ = random_case(rng, 2, 5, 6, 6, 4, (3, 3), False)
    block = _XnorBlock(ops.pack_weights(weight), alpha)
    block.initialize()
    imperative = block(mx.nd.array(x)).asnumpy()
    block.hybridize()
    hybrid = block(mx.nd.array(x)).asnumpy()
    np.testing.assert_array_equal(imperative, hybrid)
    want = np.maximum(reference_numpy(x, weight, alpha, kernel=(3, 3), pad=(1, 1)), 0)
    np.testing.assert_allclose(hybrid, want, rtol=1e-6, atol=1e-5)


def test_load_is_idempotent():
    path = ops.load()
    assert ops.load() == path and os.path.isabs(path) and ops.is_loaded()


def _cpu_flags():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return None


def test_auto_picks_the_fastest_kernel_the_cpu_has(monkeypatch):
    """auto = avx512 when /proc/cpuinfo lists AVX512F + VL + VPOPCNTDQ, else avx2 with AVX2 +
    POPCNT, else portable; a forced kernel the CPU lacks falls back the same way."""
    flags = _cpu_flags()
    if flags is None:
        pytest.skip('no /proc/cpuinfo')
    if {'avx512f', 'avx512vl', 'avx512_vpopcntdq'} <= flags:
        best = 'avx512'
    elif {'avx2', 'popcnt'} <= flags:
        best = 'avx2'
    else:
        best = 'portable'
    monkeypatch.setenv('MXCOMPRESS_XNOR_KERNEL', 'auto')
    assert ops.kernel_name() == best
    assert ops.available_kernels()[0] == best
    assert ops.available_kernels()[-1] == 'portable'
    monkeypatch.setenv('MXCOMPRESS_XNOR_KERNEL', 'avx512')
    assert ops.kernel_name() == best  # avx512 itself, or the fallback on CPUs without it


def test_kernels_agree_bit_for_bit():
    """Every kernel (and the portable one without POPCNT) gives the same float output (same
    integer counts, same epilogue rounding) on a layer with several channel blocks, a partial
    block and all border classes."""
    rng = np.random.RandomState(5)
    x, weight, alpha, bias = random_case(rng, 2, 130, 9, 11, 37, (3, 3))
    outputs = {}
    for name in VARIANTS:
        saved = set_env(kernel_env(name))
        try:
            outputs[name] = run_op(x, weight, alpha, bias, pad=(1, 1))
        finally:
            set_env(saved)
    first = next(iter(outputs.values()))
    for name, out in outputs.items():
        np.testing.assert_array_equal(out, first, err_msg=name)


# ---- bit-packed input and output ---------------------------------------------------------

@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_packed_output_and_input_match_the_float_op(case, kernel):
    """output_threshold == the float output binarised and packed in numpy; packed_input ==
    the float input with the same binarisation; both at once (odd C and O, strides,
    padding, dilation, batch > 1; NaN inputs, +-inf / NaN / attained thresholds), bit for
    bit, with and without bias, input thresholds and residual."""
    check_packed(case, 31, with_bias=True, thresholds=False, residual=False)
    check_packed(case, 32, with_bias=False, thresholds=True, residual=True)


@pytest.mark.parametrize('chain', CHAINS, ids=[str(i) for i in range(len(CHAINS))])
def test_packed_chain_equals_the_float_chain(chain, kernel):
    """conv1(output_threshold) -> conv2(packed_input) == conv1 -> conv2(input_threshold)."""
    check_chain(chain, seed=41)


def test_packed_output_layout_and_round_trip():
    """The packed output is uint8 (N, OH, OW, ceil(O / 8)), channel o at bit o % 8 of byte
    o // 8, the unused high bits 0; unpacked it is the +-1 binarisation of the float output,
    and packed again it is unchanged."""
    rng = np.random.RandomState(7)
    x, weight, alpha, bias = random_case(rng, 2, 9, 7, 6, 13, (3, 3))
    conv = dict(stride=(2, 2), pad=(1, 1))
    y = run_op(x, weight, alpha, bias, **conv)
    scale = np.where(np.arange(13) % 2, -1.0, 1.0).astype(np.float32)
    threshold = (0.3 * rng.randn(13)).astype(np.float32)
    bits = run_op(x, weight, alpha, bias, out_scale=scale, out_threshold=threshold, **conv)
    assert bits.dtype == np.uint8 and bits.shape == (2, 4, 3, 2)
    assert not np.any(bits[..., 1] & 0xE0)  # channels 13..15 do not exist
    signs = ops.unpack_activations(bits, 13)
    want = np.where(y * scale[None, :, None, None] < threshold[None, :, None, None], -1, 1)
    np.testing.assert_array_equal(signs, want)
    np.testing.assert_array_equal(pack_bits(signs), bits)
    # bit c % 8 of byte c // 8: channel 10 of pixel (0, 0, 0) is bit 2 of byte 1
    assert ((bits[0, 0, 0, 1] >> 2) & 1) == (want[0, 10, 0, 0] == -1)


def test_packed_input_ignores_bits_beyond_the_channels():
    """Bits set beyond in_channels in a packed input's last byte do not count."""
    rng = np.random.RandomState(8)
    x, weight, alpha, bias = random_case(rng, 1, 5, 6, 6, 4, (3, 3))
    bits = pack_bits(x)
    dirty = bits | np.uint8(0xE0)
    np.testing.assert_array_equal(run_op(dirty, weight, alpha, bias, pad=(1, 1)),
                                  run_op(bits, weight, alpha, bias, pad=(1, 1)))


def test_batchnorm_thresholds_carry_over_exactly():
    """The converter's case: a BatchNorm with gamma > 0, < 0 and = 0 (both signs of beta)
    folded into thresholds (batchnorm_threshold); the producer's packed output equals the
    float output binarised by the consumer, including NaN outputs (+1)."""
    from mxcompress.binary.convert import batchnorm_threshold
    rng = np.random.RandomState(9)
    x, weight, alpha, bias = random_case(rng, 2, 12, 6, 5, 6, (3, 3))
    residual = rng.randn(2, 6, 6, 5).astype(np.float32)
    residual[0, :, 0, 0] = np.nan
    gamma = np.array([1.5, -0.7, 0.0, 0.0, 2.0, -3.0], np.float32)
    beta = np.array([0.3, -0.4, -0.5, 0.6, 0.0, 1.0], np.float32)
    scale, threshold = batchnorm_threshold(gamma, beta, rng.randn(6), rng.rand(6) + 0.5, 1e-5)
    y = run_op(x, weight, alpha, bias, pad=(1, 1), residual=residual)
    bits = run_op(x, weight, alpha, bias, pad=(1, 1), residual=residual, out_scale=scale,
                  out_threshold=threshold)
    np.testing.assert_array_equal(bits, pack_bits(y, scale, threshold))
    signs = ops.unpack_activations(bits, 6)
    assert np.all(signs[0, :, 0, 0] == 1)            # NaN outputs: +1, whatever the threshold
    finite = np.isfinite(y[:, 2])                    # gamma = 0: the constant sign(beta)
    assert np.all(signs[:, 2][finite] == -1) and np.all(signs[:, 3] == 1)


def test_packed_symbol_shape_and_type_inference():
    """packed_input: data uint8 (N, H, W, ceil(C / 8)); output_threshold: the output is
    uint8 (N, OH, OW, ceil(O / 8)); a chain of the two infers end to end."""
    first = mx.sym.xnor_conv2d(mx.sym.var('data', shape=(2, 65, 9, 11)),
                               mx.sym.var('w1', shape=(13, 3, 3, 9), dtype='uint8'),
                               mx.sym.var('a1', shape=(13,)), mx.sym.var('s', shape=(13,)),
                               mx.sym.var('t', shape=(13,)), kernel=(3, 3), num_filter=13,
                               pad=(1, 1), stride=(2, 2), output_threshold=True, name='c1')
    second = mx.sym.xnor_conv2d(first, mx.sym.var('w2', shape=(7, 3, 3, 2), dtype='uint8'),
                                mx.sym.var('a2', shape=(7,)), kernel=(3, 3), num_filter=7,
                                pad=(1, 1), packed_input=True, in_channels=13, name='c2')
    _, outs, _ = first.infer_shape()
    assert outs == [(2, 5, 6, 2)]
    _, out_types, _ = first.infer_type(data='float32')
    assert out_types == [np.uint8]
    _, outs, _ = second.infer_shape()
    assert outs == [(2, 7, 5, 6)]
    types, out_types, _ = second.infer_type(data='float32')
    assert out_types == [np.float32] and types[1] == np.uint8
    packed_in = mx.sym.xnor_conv2d(mx.sym.var('bits', shape=(1, 4, 4, 2)),
                                   mx.sym.var('w', shape=(3, 1, 1, 2), dtype='uint8'),
                                   mx.sym.var('a', shape=(3,)), kernel=(1, 1), num_filter=3,
                                   packed_input=True, in_channels=9)
    types, _, _ = packed_in.infer_type()
    assert types[0] == np.uint8
    assert packed_in.infer_shape()[1] == [(1, 3, 4, 4)]


def test_kernels_agree_bit_for_bit_on_packed_forms():
    """Every kernel gives the same packed output from the same packed input."""
    rng = np.random.RandomState(10)
    x, weight, alpha, bias = random_case(rng, 2, 130, 9, 11, 37, (3, 3))
    bits = pack_bits(x)
    scale = np.ones(37, np.float32)
    threshold = (3.0 * rng.randn(37)).astype(np.float32)
    outputs = {}
    for name in VARIANTS:
        saved = set_env(kernel_env(name))
        try:
            outputs[name] = run_op(bits, weight, alpha, bias, pad=(1, 1), out_scale=scale,
                                   out_threshold=threshold)
        finally:
            set_env(saved)
    first = next(iter(outputs.values()))
    for name, out in outputs.items():
        np.testing.assert_array_equal(out, first, err_msg=name)


def test_workspace_bytes_counts_output_masks():
    """A bit-packed output adds one mask byte per 8 output pixels of a row and channel."""
    plain = ops.workspace_bytes((2, 16, 9, 13), 24, (3, 3), 1, 1, 1)
    packed = ops.workspace_bytes((2, 16, 9, 13), 24, (3, 3), 1, 1, 1, packed_output=True)
    assert packed - plain == 2 * 9 * 2 * 24       # N * OH * ceil(OW / 8) * O
