"""The AddressSanitizer + UBSan build of the library runs every test shape with no report."""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from mxcompress.ops import build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _runtime(name):
    cxx = build.find_compiler()
    path = subprocess.run([cxx, '-print-file-name=' + name], stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


def _asan_library():
    """Build (once per source version) the sanitized library under mxcompress/ops/build/."""
    digest = hashlib.sha256()
    for path in build.source_files():
        with open(path, 'rb') as f:
            digest.update(f.read())
    out = os.path.join(build.HERE, 'build', 'libmxcompress_ops_asan-%s.so'
                       % digest.hexdigest()[:12])
    if not os.path.exists(out):
        build.build_library(out, sanitize=True)
    return out


needs_compiler = pytest.mark.skipif(shutil.which('g++') is None and shutil.which('c++') is None,
                                    reason='no C++ compiler')

SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:', 'SUMMARY: UndefinedBehavior')


def _run_sanitized(args):
    """Run ``python args`` with the sanitized library; returns (exit code, output)."""
    libasan = _runtime('libasan.so')
    if libasan is None:
        pytest.skip('compiler has no libasan')
    # libstdc++ preloaded too, so that ASan's __cxa_throw interceptor finds it (MXNet throws
    # C++ exceptions for errors)
    preload = ' '.join(p for p in (libasan, _runtime('libstdc++.so')) if p)
    library = _asan_library()
    env = dict(os.environ, PYTHONPATH=ROOT, MXCOMPRESS_OPS_LIB=library, LD_PRELOAD=preload,
               ASAN_OPTIONS='detect_leaks=0:abort_on_error=1:halt_on_error=1',
               UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable] + args, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    return proc.returncode, proc.stdout


def _assert_clean(returncode, output, done):
    assert returncode == 0, output[-6000:]
    assert done in output, output[-6000:]
    for marker in SANITIZER_MARKERS:
        assert marker not in output, output[-6000:]


@needs_compiler
def test_sanitized_library_runs_all_cases_cleanly():
    """The selfcheck: shape families, border edge cases (pad > kernel, strides / dilations 3,
    1-pixel sides, outputs of size 1), rejected empty outputs and random geometries, on every
    kernel the CPU runs."""
    _assert_clean(*_run_sanitized(['-m', 'mxcompress.ops.selfcheck', '--seeds', '1']),
                  done='selfcheck OK')


# The minimal case of the heap-buffer-overflow (border_rows read past the `pre` prefix sums
# when a window lay entirely in the padding, pad >= 2 with a 1x1 kernel), on every kernel.
_MINIMAL_SCRIPT = """
import os
import mxcompress.ops as ops
from mxcompress.ops.selfcheck import check_case
ops.load(build=False)
kernels = ops.available_kernels()
for kernel in kernels:
    os.environ['MXCOMPRESS_XNOR_KERNEL'] = kernel
    for bias in (True, False):
        check_case((1, 1, 4, 4, 1, (1, 1), (1, 1), (2, 0), (1, 1)), seed=0, with_bias=bias)
        check_case((1, 1, 4, 4, 1, (1, 1), (1, 1), (0, 2), (1, 1)), seed=1, with_bias=bias)
print('minimal OK', ' '.join(kernels))
"""


@needs_compiler
def test_sanitized_minimal_pad_beyond_kernel():
    _assert_clean(*_run_sanitized(['-c', _MINIMAL_SCRIPT]), done='minimal OK')


# The bit-packed forms: packed output (tile masks, then the transpose into the output),
# packed input (copied into the kernel layout), both at once and chained, on the border edge
# cases (pad beyond kernel, 1-pixel sides, strides and dilations 3) and odd channel counts,
# on every kernel variant (the selfcheck runs them on its families too).
_PACKED_SCRIPT = """
import mxcompress.ops as ops
from mxcompress.ops.selfcheck import (CHAINS, EDGE_CASES, check_chain, check_packed,
                                      kernel_env, kernel_variants, set_env)
ops.load(build=False)
variants = kernel_variants()
for variant in variants:
    set_env(kernel_env(variant))
    for i, case in enumerate(EDGE_CASES):
        check_packed(case, seed=i, with_bias=bool(i % 2), thresholds=bool(i % 3 == 0),
                     residual=bool(i % 4 == 1))
    for i, chain in enumerate(CHAINS):
        check_chain(chain, seed=i)
print('packed OK', ' '.join(variants))
"""


@needs_compiler
def test_sanitized_packed_input_and_output():
    _assert_clean(*_run_sanitized(['-c', _PACKED_SCRIPT]), done='packed OK')
