"""Run xnor_conv2d over the test shape families and compare with the float reference.

``python -m mxcompress.ops.selfcheck`` loads the library (``$MXCOMPRESS_OPS_LIB`` or the
default), runs every case in :data:`CASES` with each available kernel and exits non-zero on
a mismatch. The sanitizer test runs it against the AddressSanitizer/UBSan build.
"""
import argparse
import os
import sys

import numpy as np

#: (batch, C, H, W, O, kernel, stride, pad, dilate): batch 1..4, C in 1, 3, 63, 65, 130,
#: odd sizes, kernel 1/3/5, stride 1/2, pad 0/1/2, dilation 1/2.
CASES = [
    (1, 1, 7, 9, 5, (3, 3), (1, 1), (1, 1), (1, 1)),
    (2, 3, 11, 11, 8, (5, 5), (2, 2), (2, 2), (1, 1)),
    (3, 63, 9, 7, 6, (3, 3), (1, 1), (1, 1), (2, 2)),
    (4, 65, 13, 5, 9, (1, 1), (2, 2), (0, 0), (1, 1)),
    (1, 130, 7, 7, 7, (3, 3), (2, 2), (1, 1), (1, 1)),
    (2, 64, 15, 15, 4, (5, 5), (1, 1), (2, 2), (2, 2)),
    (1, 128, 5, 21, 3, (3, 3), (1, 2), (2, 0), (1, 1)),
    (3, 3, 17, 13, 11, (3, 5), (2, 1), (0, 2), (2, 1)),
    (1, 65, 3, 3, 2, (5, 5), (1, 1), (2, 2), (1, 1)),   # every output pixel is a border pixel
    (2, 1, 9, 9, 1, (1, 1), (1, 1), (0, 0), (1, 1)),
    (2, 70, 10, 19, 37, (3, 3), (1, 1), (1, 1), (1, 1)),  # several channel blocks + a tail
]


def check_case(case, seed, with_bias=True):
    """Max abs difference op vs reference for one case (raises AssertionError if not close)."""
    from .reference import random_case, reference_numpy, run_op
    n, c, h, w, o, k, s, p, d = case
    rng = np.random.RandomState(seed)
    x, weight, alpha, bias = random_case(rng, n, c, h, w, o, k, with_bias)
    conv = dict(kernel=k, stride=s, pad=p, dilate=d)
    got = run_op(x, weight, alpha, bias, **conv)
    want = reference_numpy(x, weight, alpha, bias, **conv)
    assert got.shape == want.shape, (case, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5, err_msg=str(case))
    return float(np.abs(got - want).max())


def check_errors():
    """Bad calls raise MXNetError (exercises the error paths); returns how many were tried."""
    import mxnet as mx
    data, alpha = mx.nd.ones((1, 3, 5, 5)), mx.nd.ones(2)
    good = mx.nd.zeros((2, 3, 3, 1), dtype='uint8')
    bad_calls = [
        dict(weight=mx.nd.zeros((2, 3, 3, 2), dtype='uint8'), kernel=(3, 3)),
        dict(weight=mx.nd.array([[[[8]]]] * 2, dtype='uint8').reshape((2, 1, 1, 1)),
             kernel=(1, 1)),                               # padding bit set
        dict(weight=good, kernel=(0, 3)),
        dict(weight=good, kernel=(7, 7)),                  # larger than the input
    ]
    for call in bad_calls:
        weight = call.pop('weight')
        try:
            mx.nd.xnor_conv2d(data, weight, alpha, num_filter=2, **call).wait_to_read()
        except mx.base.MXNetError:
            continue
        raise AssertionError('xnor_conv2d accepted a bad call: %s' % call)
    return len(bad_calls)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, default=2, help='random seeds per case')
    args = parser.parse_args(argv)
    from . import available_kernels, load
    print('library', load(build=False))
    kernels = available_kernels()
    count = 0
    for kernel in kernels:
        os.environ['MXCOMPRESS_XNOR_KERNEL'] = kernel
        for i, case in enumerate(CASES):
            for seed in range(args.seeds):
                check_case(case, seed=100 * i + seed, with_bias=bool(seed % 2 == 0))
                count += 1
    errors = check_errors()
    print('selfcheck OK: %d cases, kernels %s, %d error paths' % (count, ', '.join(kernels),
                                                                  errors))
    return 0


if __name__ == '__main__':
    sys.exit(main())
