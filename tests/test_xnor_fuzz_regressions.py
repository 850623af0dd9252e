"""Regressions from fuzzing xnor_conv2d over wide geometries, on every kernel the CPU runs.

Padding at least 2 with a 1x1 kernel (more generally: an output row or column whose window
lies entirely in the padding, its first valid tap index beyond the kernel) made the border
table read past its prefix-sum buffer. The results stayed exact (the out-of-range terms
cancel), so only the AddressSanitizer build saw it (tests/test_xnor_asan.py); these tests
pin the exact results of those geometries in the normal build.
"""
import os

import mxnet as mx
import numpy as np
import pytest

import mxcompress.ops as ops
from mxcompress.ops.reference import random_case, reference_numpy, run_op
from mxcompress.ops.selfcheck import (EDGE_CASES, EMPTY_CASES, EMPTY_MESSAGE, check_case,
                                      check_packed, kernel_env, kernel_variants, random_cases)

ops.load()

KERNELS = ops.available_kernels()
#: the kernels plus the portable one without POPCNT (selfcheck.NO_POPCNT)
VARIANTS = kernel_variants(KERNELS)

#: The minimal case of the report: N=1, C=1, H=W=4, O=1, kernel 1x1, stride 1, pad (2, 0).
MINIMAL = (1, 1, 4, 4, 1, (1, 1), (1, 1), (2, 0), (1, 1))

#: Padding larger than (or as large as) the kernel on one or both axes.
PAD_BEYOND_KERNEL = [
    MINIMAL,
    (1, 1, 4, 4, 1, (1, 1), (1, 1), (0, 2), (1, 1)),
    (2, 3, 5, 5, 2, (1, 1), (1, 1), (3, 3), (1, 1)),
    (1, 70, 6, 6, 17, (2, 2), (1, 1), (3, 3), (1, 1)),
    (1, 9, 6, 7, 4, (3, 2), (2, 3), (3, 3), (1, 1)),
    (1, 5, 4, 4, 3, (1, 3), (1, 1), (3, 3), (2, 2)),   # dilated: first valid tap beyond k too
    (1, 4, 1, 1, 7, (1, 1), (3, 1), (3, 3), (1, 1)),   # 1x1 input
]


@pytest.fixture(params=VARIANTS)
def kernel(request, monkeypatch):
    for key, value in kernel_env(request.param).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    assert ops.kernel_name() == os.environ['MXCOMPRESS_XNOR_KERNEL']
    return request.param


@pytest.mark.parametrize('with_bias', [True, False], ids=['bias', 'no_bias'])
def test_minimal_case_is_exact(kernel, with_bias):
    n, c, h, w, o, k, s, p, d = MINIMAL
    x, weight, alpha, bias = random_case(np.random.RandomState(0), n, c, h, w, o, k, with_bias)
    conv = dict(kernel=k, stride=s, pad=p, dilate=d)
    got = run_op(x, weight, alpha, bias, **conv)
    assert got.shape == (1, 1, 8, 4)
    np.testing.assert_array_equal(got, reference_numpy(x, weight, alpha, bias, **conv))
    # rows 0, 1, 6, 7 see only padding: the convolution is 0 there, the output the bias
    edge = np.full((4, 4), bias[0] if with_bias else 0.0, np.float32)
    np.testing.assert_array_equal(got[0, 0, [0, 1, 6, 7]], edge)


@pytest.mark.parametrize('case', PAD_BEYOND_KERNEL, ids=[str(i) for i in
                                                         range(len(PAD_BEYOND_KERNEL))])
def test_pad_beyond_kernel_is_exact(case, kernel):
    check_case(case, seed=11, with_bias=True)


@pytest.mark.parametrize('case', PAD_BEYOND_KERNEL, ids=[str(i) for i in
                                                         range(len(PAD_BEYOND_KERNEL))])
def test_pad_beyond_kernel_packed_forms_are_exact(case, kernel):
    """The same geometries with a bit-packed output (whole output rows of border windows)
    and a bit-packed input (copied between the zero borders)."""
    check_packed(case, seed=12, with_bias=True, thresholds=False, residual=True)
    check_packed(case, seed=13, with_bias=False, thresholds=True, residual=False)


def test_edge_cases_are_exact(kernel):
    """Pads >= kernel, strides / dilations 3, 1x1, 1xW, Hx1 inputs, outputs of size 1."""
    for i, case in enumerate(EDGE_CASES):
        check_case(case, seed=5000 + i, with_bias=bool(i % 2 == 0))


def test_random_geometries_are_exact(kernel):
    """The selfcheck's random geometries (batch 1-3, C 1-513, kernels 1-7, strides 1-3, pads
    0-3, dilations 1-3) for a few seeds."""
    for i, case in enumerate(c for seed in range(3) for c in random_cases(seed, 6)):
        check_case(case, seed=7000 + i, with_bias=bool(i % 3 != 0))


@pytest.mark.parametrize('case', EMPTY_CASES, ids=[str(i) for i in range(len(EMPTY_CASES))])
def test_empty_output_is_rejected_clearly(case):
    """No output row / column: the call and the symbol's shape inference both fail with a
    message naming the padded input and the dilated kernel."""
    check_case(case, seed=1)  # asserts the message
    n, c, h, w, o, k, s, p, d = case
    sym = mx.sym.xnor_conv2d(mx.sym.var('data'), mx.sym.var('w'), mx.sym.var('a'), kernel=k,
                             stride=s, pad=p, dilate=d, num_filter=o)
    eh, ew = d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1
    message = 'padded input %dx%d %s %dx%d' % (h + 2 * p[0], w + 2 * p[1], EMPTY_MESSAGE, eh, ew)
    with pytest.raises(mx.base.MXNetError, match=message):
        sym.infer_shape(data=(n, c, h, w))
