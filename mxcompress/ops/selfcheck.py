"""Run xnor_conv2d over the test shape families and compare with the float reference.

``python -m mxcompress.ops.selfcheck`` loads the library (``$MXCOMPRESS_OPS_LIB`` or the
default), runs every case in :data:`CASES` and :data:`EDGE_CASES` plus random geometries
(:func:`random_cases`) with each kernel the CPU runs (``MXCOMPRESS_XNOR_KERNEL``), requires
bit-exact agreement with the float reference (or, for an empty output, the op's error) and
exits non-zero on a mismatch. The bit-packed forms (``output_threshold``, ``packed_input``)
are checked against the float op on the same cases (:func:`check_packed`), and chains of a
conv emitting bits into a conv reading them against the float chain (:func:`check_chain`).
The sanitizer test runs it against the AddressSanitizer/UBSan build.
"""
import argparse
import os
import sys

import numpy as np

#: (batch, C, H, W, O, kernel, stride, pad, dilate): batch 1..4, C in 1, 3, 63, 65, 130,
#: odd sizes, kernel 1/3/5, stride 1/2, pad 0/1/2, dilation 1/2 (the shape families).
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
    (1, 96, 6, 7, 160, (3, 3), (1, 1), (1, 1), (1, 1)),  # AVX2: a block of 4 groups + 1
    (2, 200, 9, 8, 224, (3, 3), (2, 2), (1, 1), (2, 2)),  # AVX2: 4 groups + 2 + 1
]


#: Border edge cases, (batch, C, H, W, O, kernel, stride, pad, dilate): padding as large as
#: or larger than the kernel (whole rows / columns of windows entirely in the padding), strides
#: and dilations up to 3, 1x1 / 1xW / Hx1 inputs and outputs of size 1.
EDGE_CASES = [
    (1, 1, 4, 4, 1, (1, 1), (1, 1), (2, 0), (1, 1)),    # the minimal pad > kernel case
    (1, 1, 4, 4, 1, (1, 1), (1, 1), (0, 2), (1, 1)),
    (2, 3, 5, 6, 7, (1, 1), (1, 1), (3, 3), (1, 1)),
    (1, 65, 4, 5, 17, (2, 2), (1, 1), (3, 2), (1, 1)),  # even kernel, AVX-512 block + tail
    (1, 9, 6, 5, 4, (3, 3), (2, 3), (3, 3), (1, 1)),    # pad == kernel, stride 3
    (2, 130, 3, 4, 5, (3, 1), (3, 1), (3, 3), (3, 1)),
    (1, 8, 7, 7, 6, (3, 3), (1, 1), (3, 3), (3, 3)),    # pad == dilation: empty border windows
    (1, 64, 5, 9, 3, (5, 3), (1, 2), (3, 1), (2, 3)),
    (1, 2, 9, 9, 2, (7, 7), (3, 3), (3, 3), (1, 1)),
    (1, 1, 2, 3, 1, (7, 5), (1, 1), (3, 2), (1, 1)),    # kernel larger than the image
    (1, 513, 3, 3, 3, (7, 7), (1, 2), (3, 3), (1, 1)),
    (1, 5, 1, 1, 3, (1, 1), (1, 1), (0, 0), (1, 1)),    # 1x1 input, 1x1 output
    (2, 5, 1, 1, 3, (3, 3), (1, 1), (1, 1), (1, 1)),    # 1x1 input, every tap but one padded
    (1, 3, 1, 1, 2, (1, 1), (2, 3), (3, 3), (1, 1)),    # 1x1 input, pad 3 on a 1x1 kernel
    (1, 7, 1, 1, 4, (7, 7), (1, 1), (3, 3), (1, 1)),    # 1x1 input, 7x7 kernel
    (1, 1, 1, 1, 1, (3, 3), (3, 3), (3, 3), (3, 3)),    # 1x1 input, only the centre tap valid
    (1, 5, 4, 4, 3, (1, 3), (1, 1), (3, 3), (2, 2)),    # dilated 1-tap axis, pad > kernel
    (1, 6, 1, 11, 5, (1, 3), (1, 1), (0, 1), (1, 1)),   # 1xW input
    (2, 70, 1, 13, 3, (3, 5), (1, 2), (1, 3), (1, 2)),
    (1, 6, 11, 1, 5, (3, 1), (1, 1), (1, 0), (1, 1)),   # Hx1 input
    (1, 33, 12, 1, 9, (5, 3), (3, 1), (2, 1), (3, 1)),
    (1, 4, 5, 5, 3, (5, 5), (1, 1), (0, 0), (1, 1)),    # output 1x1, no padding
    (1, 4, 2, 2, 3, (3, 3), (3, 3), (1, 1), (1, 1)),    # output 1x1 with stride 3
    (1, 4, 3, 8, 2, (7, 3), (2, 1), (2, 0), (1, 3)),    # output 1xW
    (1, 4, 8, 3, 2, (3, 7), (1, 2), (0, 2), (3, 1)),    # output Hx1
    (1, 9, 3, 11, 12, (1, 11), (1, 1), (0, 5), (1, 1)),  # 11 column classes: AVX2 border
    # table channel by channel (its 8-channel form takes up to 8), 12 channels: 8 + a tail
]

#: Geometries with an empty output (padded input smaller than the dilated kernel): the op's
#: shape inference rejects them with a message naming the sizes.
EMPTY_CASES = [
    (1, 3, 5, 5, 2, (3, 3), (1, 1), (0, 0), (3, 3)),
    (1, 1, 1, 1, 1, (3, 1), (1, 1), (0, 3), (1, 1)),    # 1x1 input, kernel taller than 1
    (2, 2, 1, 4, 1, (1, 3), (2, 2), (3, 0), (1, 3)),    # 1xW input, dilated too wide
    (1, 65, 2, 9, 4, (7, 3), (1, 1), (2, 1), (1, 1)),   # 2 + 2 * 2 < 7
]

#: Ranges of the random geometries of :func:`random_cases`.
FUZZ_CHANNELS = (1, 2, 7, 8, 9, 31, 63, 64, 65, 127, 128, 129, 255, 257, 511, 512, 513)


def output_size(size, k, s, p, d):
    """Output length of one axis (0 or less: the op rejects the geometry)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1 if size + 2 * p >= d * (k - 1) + 1 else 0


def random_cases(seed, count):
    """``count`` random geometries: batch 1-3, C 1-513, H, W 1-10, O 1-20, kernels 1-7,
    strides 1-3, pads 0-3, dilations 1-3 (both axes independent). Some have an empty output
    (the padded input is smaller than the dilated kernel): the op must reject those."""
    rng = np.random.RandomState(10000 + seed)

    def pair(lo, hi):
        return tuple(int(v) for v in rng.randint(lo, hi + 1, size=2))

    cases = []
    for _ in range(count):
        keep_empty = rng.rand() < 0.15  # else redraw the geometry until the output is not empty
        for _ in range(50):
            c = int(rng.choice(FUZZ_CHANNELS)) if rng.rand() < 0.7 else int(rng.randint(1, 514))
            case = (int(rng.randint(1, 4)), c, int(rng.randint(1, 11)),
                    int(rng.randint(1, 11)), int(rng.randint(1, 21)), pair(1, 7), pair(1, 3),
                    pair(0, 3), pair(1, 3))
            if keep_empty or not is_empty(case):
                break
        cases.append(case)
    return cases


def is_empty(case):
    """True when the op must reject the case (an output axis of length 0)."""
    n, c, h, w, o, k, s, p, d = case
    return (output_size(h, k[0], s[0], p[0], d[0]) < 1 or
            output_size(w, k[1], s[1], p[1], d[1]) < 1)


def check_case(case, seed, with_bias=True, exact=True, thresholds=False, residual=False):
    """Max abs difference op vs reference for one case (raises AssertionError if they differ:
    bit for bit when ``exact``, the sums of +-1 products being exact integers in fp32).
    ``thresholds``: binarise the input per channel (``input_threshold``, random scales and
    thresholds, +-inf included); ``residual``: add a random tensor in the epilogue.

    A case with an empty output must be rejected with the op's clear message instead."""
    from .reference import random_case, random_thresholds, reference_numpy, run_op
    n, c, h, w, o, k, s, p, d = case
    rng = np.random.RandomState(seed)
    x, weight, alpha, bias = random_case(rng, n, c, h, w, o, k, with_bias)
    conv = dict(kernel=k, stride=s, pad=p, dilate=d)
    if thresholds:
        conv['in_scale'], conv['in_threshold'] = random_thresholds(rng, c)
    if residual and not is_empty(case):
        oh = output_size(h, k[0], s[0], p[0], d[0])
        ow = output_size(w, k[1], s[1], p[1], d[1])
        conv['residual'] = rng.randn(n, o, oh, ow).astype(np.float32)
    if is_empty(case):
        check_rejected(x, weight, alpha, bias, conv)
        return 0.0
    got = run_op(x, weight, alpha, bias, **conv)
    want = reference_numpy(x, weight, alpha, bias, **conv)
    assert got.shape == want.shape, (case, got.shape, want.shape)
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=str(case))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5, err_msg=str(case))
    return float(np.abs(got - want).max())


def output_thresholds(rng, y):
    """Per-channel ``(out_scale, out_threshold)`` for a float output ``y`` (N, O, OH, OW):
    scales +-1, thresholds taken from ``y`` itself (so some outputs equal their threshold:
    the strict ``<`` is tested), and on the first channels the gamma = 0 constants +inf /
    -inf of :func:`mxcompress.binary.convert.batchnorm_threshold` and a NaN threshold (no
    output is below it: all +1). float32 (O,) each."""
    o = y.shape[1]
    scale = rng.choice([-1.0, 1.0], size=o).astype(np.float32)
    per_channel = np.moveaxis(y, 1, 0).reshape(o, -1)
    picks = per_channel[np.arange(o), rng.randint(0, per_channel.shape[1], size=o)]
    threshold = (scale * picks).astype(np.float32)
    threshold[:min(o, 3)] = np.array([np.inf, -np.inf, np.nan], np.float32)[:min(o, 3)]
    return scale, threshold


def check_packed(case, seed, with_bias=True, thresholds=False, residual=False):
    """The bit-packed forms of one case equal the float op bit for bit (the empty cases are
    skipped: :func:`check_case` covers them):

    * ``output_threshold``: the op's packed output == :func:`~.reference.pack_bits` of its
      float output ``y`` with the same ``out_scale`` / ``out_threshold``;
    * ``packed_input``: the op on the input binarised and packed in numpy (sign, or the
      ``in_scale`` / ``in_threshold`` rule) == the op on the float input;
    * both at once.

    The input holds NaNs (binarised to +1 by both paths) and, with ``residual``, so does
    the residual (a NaN output: bit 0)."""
    from .reference import pack_bits, random_case, random_thresholds, run_op
    if is_empty(case):
        return
    n, c, h, w, o, k, s, p, d = case
    rng = np.random.RandomState(seed)
    x, weight, alpha, bias = random_case(rng, n, c, h, w, o, k, with_bias)
    x.flat[rng.randint(0, x.size, size=max(1, x.size // 50))] = np.nan
    conv = dict(kernel=k, stride=s, pad=p, dilate=d)
    in_scale = in_threshold = None
    if thresholds:
        in_scale, in_threshold = random_thresholds(rng, c)
    if residual:
        oh = output_size(h, k[0], s[0], p[0], d[0])
        ow = output_size(w, k[1], s[1], p[1], d[1])
        conv['residual'] = rng.randn(n, o, oh, ow).astype(np.float32)
        conv['residual'].flat[0] = np.nan
    y = run_op(x, weight, alpha, bias, in_scale=in_scale, in_threshold=in_threshold, **conv)
    out_scale, out_threshold = output_thresholds(rng, y)
    want = pack_bits(y, out_scale, out_threshold)
    got = run_op(x, weight, alpha, bias, in_scale=in_scale, in_threshold=in_threshold,
                 out_scale=out_scale, out_threshold=out_threshold, **conv)
    assert got.dtype == np.uint8 and got.shape == want.shape, (case, got.dtype, got.shape)
    np.testing.assert_array_equal(got, want, err_msg='output_threshold %s' % (case,))
    bits = pack_bits(x, in_scale, in_threshold)
    np.testing.assert_array_equal(run_op(bits, weight, alpha, bias, **conv), y,
                                  err_msg='packed_input %s' % (case,))
    np.testing.assert_array_equal(run_op(bits, weight, alpha, bias, out_scale=out_scale,
                                         out_threshold=out_threshold, **conv), want,
                                  err_msg='packed_input + output_threshold %s' % (case,))


#: Chains conv1 -> conv2 of :func:`check_chain`: (batch, C, H, W, O1, O2, kernel, stride,
#: pad) of conv1 (conv2: 3x3, stride 1, pad 1 on conv1's output); odd channel counts on both
#: sides of 8 and 64, stride 2, no padding.
CHAINS = [
    (2, 13, 9, 11, 37, 5, (3, 3), (2, 2), (1, 1)),
    (1, 64, 8, 8, 64, 64, (3, 3), (1, 1), (1, 1)),
    (3, 3, 7, 6, 70, 9, (3, 3), (1, 1), (0, 0)),
    (1, 130, 6, 5, 8, 129, (1, 1), (2, 1), (0, 0)),
]


def check_chain(chain, seed):
    """conv1 emitting packed bits (``output_threshold`` with conv2's thresholds) into
    conv2 reading them (``packed_input``) == the float chain conv1 -> conv2
    (``input_threshold``), bit for bit, on conv2's float output."""
    from .reference import random_case, random_thresholds, run_op
    n, c, h, w, o1, o2, k, s, p = chain
    rng = np.random.RandomState(seed)
    x, w1, a1, b1 = random_case(rng, n, c, h, w, o1, k, True)
    conv1 = dict(kernel=k, stride=s, pad=p)
    conv2 = dict(kernel=(3, 3), pad=(1, 1))
    y1 = run_op(x, w1, a1, b1, **conv1)
    _, w2, a2, b2 = random_case(rng, 1, o1, 1, 1, o2, (3, 3), True)
    scale, threshold = output_thresholds(rng, y1)
    scale[3:] = random_thresholds(rng, o1)[0][3:]
    want = run_op(y1, w2, a2, b2, in_scale=scale, in_threshold=threshold, **conv2)
    bits = run_op(x, w1, a1, b1, out_scale=scale, out_threshold=threshold, **conv1)
    got = run_op(bits, w2, a2, b2, **conv2)
    np.testing.assert_array_equal(got, want, err_msg='chain %s' % (chain,))


#: What the op says when the output would be empty.
EMPTY_MESSAGE = 'is smaller than the dilated kernel'


def check_rejected(x, weight, alpha, bias, conv):
    """The op refuses a geometry with an empty output, naming the sizes."""
    import mxnet as mx
    from .reference import run_op
    try:
        run_op(x, weight, alpha, bias, **conv)
    except mx.base.MXNetError as err:
        text = str(err)
        assert EMPTY_MESSAGE in text and 'padded input' in text, text[-2000:]
        return
    raise AssertionError('xnor_conv2d accepted an empty output: %s %s' % (x.shape, conv))


def check_errors():
    """Bad calls raise MXNetError (exercises the error paths); returns how many were tried."""
    import mxnet as mx
    data, alpha = mx.nd.ones((1, 3, 5, 5)), mx.nd.ones(2)
    bits = mx.nd.zeros((1, 5, 5, 1), dtype='uint8')
    good = mx.nd.zeros((2, 3, 3, 1), dtype='uint8')
    bad_calls = [
        dict(weight=mx.nd.zeros((2, 3, 3, 2), dtype='uint8'), kernel=(3, 3)),
        dict(weight=mx.nd.array([[[[8]]]] * 2, dtype='uint8').reshape((2, 1, 1, 1)),
             kernel=(1, 1)),                               # padding bit set
        dict(weight=good, kernel=(0, 3)),
        dict(weight=good, kernel=(7, 7)),                  # larger than the input
        dict(weight=good, kernel=(3, 3), packed_input=True),             # no in_channels
        dict(weight=good, kernel=(3, 3), packed_input=True, in_channels=3,
             data=mx.nd.zeros((1, 5, 5, 2), dtype='uint8')),             # bytes per pixel
        dict(weight=good, kernel=(3, 3), packed_input=True, in_channels=3),  # float data
        dict(weight=good, kernel=(3, 3), data=bits),       # packed data, no packed_input
        dict(weight=good, kernel=(3, 3), output_threshold=True),         # no thresholds
    ]
    for call in bad_calls:
        weight = call.pop('weight')
        try:
            mx.nd.xnor_conv2d(call.pop('data', data), weight, alpha, num_filter=2,
                              **call).wait_to_read()
        except mx.base.MXNetError:
            continue
        raise AssertionError('xnor_conv2d accepted a bad call: %s' % call)
    return len(bad_calls)


#: Pseudo-kernel name: the portable kernel with its SWAR popcount instead of the POPCNT
#: instruction (MXCOMPRESS_XNOR_POPCNT=0), the path CPUs without POPCNT take.
NO_POPCNT = 'portable-nopopcnt'


def kernel_variants(kernels=None):
    """``kernels`` (default: every kernel this CPU runs) plus :data:`NO_POPCNT` when the
    portable kernel is among them: every code path the tests must cover."""
    from . import available_kernels
    kernels = list(kernels or available_kernels())
    return kernels + [NO_POPCNT] if 'portable' in kernels else kernels


def kernel_env(variant):
    """The environment variables selecting ``variant`` (a kernel name or :data:`NO_POPCNT`);
    None means unset."""
    if variant == NO_POPCNT:
        return {'MXCOMPRESS_XNOR_KERNEL': 'portable', 'MXCOMPRESS_XNOR_POPCNT': '0'}
    return {'MXCOMPRESS_XNOR_KERNEL': variant, 'MXCOMPRESS_XNOR_POPCNT': None}


def set_env(values):
    """Sets (None: removes) environment variables; returns their previous values."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return saved


def run_all(seeds, kernels=None, fuzz_per_seed=6, log=None):
    """Every case with every kernel variant (:func:`kernel_variants`: the kernels through
    ``MXCOMPRESS_XNOR_KERNEL``, resolved per call, and the portable one without POPCNT): the
    families of :data:`CASES` with ``seeds`` seeds, :data:`EDGE_CASES`, :data:`EMPTY_CASES`
    (rejected) and ``fuzz_per_seed`` random geometries per seed. Returns the number of cases
    checked."""
    kernels = kernel_variants(kernels)
    saved = set_env(kernel_env(kernels[0]))
    count = 0
    fuzz = [case for seed in range(seeds) for case in random_cases(seed, fuzz_per_seed)]
    try:
        for kernel in kernels:
            set_env(kernel_env(kernel))
            for i, case in enumerate(CASES):
                for seed in range(seeds):
                    check_case(case, seed=100 * i + seed, with_bias=bool(seed % 2 == 0),
                               thresholds=bool((i + seed) % 3 == 1),
                               residual=bool((i + seed) % 2 == 1))
                    check_packed(case, seed=100 * i + seed, with_bias=bool(seed % 2 == 1),
                                 thresholds=bool((i + seed) % 2 == 0),
                                 residual=bool((i + seed) % 3 == 2))
                    count += 2
            for i, chain in enumerate(CHAINS):
                check_chain(chain, seed=300 + i)
                count += 1
            for i, case in enumerate(EDGE_CASES):
                check_case(case, seed=5000 + i, with_bias=bool(i % 2 == 0),
                           thresholds=bool(i % 3 == 1), residual=bool(i % 4 == 3))
                check_packed(case, seed=5500 + i, with_bias=bool(i % 2 == 1),
                             thresholds=bool(i % 3 == 0), residual=bool(i % 4 == 1))
                count += 2
            for i, case in enumerate(EMPTY_CASES):
                check_case(case, seed=6000 + i)
                count += 1
            for i, case in enumerate(fuzz):
                if log:
                    log('%s fuzz %s' % (kernel, case))
                check_case(case, seed=7000 + i, with_bias=bool(i % 3 != 0),
                           thresholds=bool(i % 2 == 1), residual=bool(i % 3 == 1))
                count += 1
                if i % 2 == 0:
                    check_packed(case, seed=7500 + i, with_bias=bool(i % 4 == 0),
                                 thresholds=bool(i % 3 == 0), residual=bool(i % 6 == 2))
                    count += 1
    finally:
        set_env(saved)
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, default=2, help='random seeds per case (each '
                        'seed also adds --fuzz random geometries)')
    parser.add_argument('--fuzz', type=int, default=6, help='random geometries per seed')
    parser.add_argument('--verbose', action='store_true', help='print each fuzz case first')
    args = parser.parse_args(argv)
    from . import load
    print('library', load(build=False))
    kernels = kernel_variants()
    log = (lambda line: print(line, flush=True)) if args.verbose else None
    count = run_all(args.seeds, kernels, args.fuzz, log)
    errors = check_errors()
    print('selfcheck OK: %d cases, kernels %s, %d error paths' % (count, ', '.join(kernels),
                                                                  errors))
    return 0


if __name__ == '__main__':
    sys.exit(main())
