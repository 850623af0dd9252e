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


@pytest.mark.skipif(shutil.which('g++') is None and shutil.which('c++') is None,
                    reason='no C++ compiler')
def test_sanitized_library_runs_all_cases_cleanly():
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
    proc = subprocess.run([sys.executable, '-m', 'mxcompress.ops.selfcheck', '--seeds', '1'],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600)
    output = proc.stdout
    assert proc.returncode == 0, output[-6000:]
    assert 'selfcheck OK' in output, output[-6000:]
    for marker in ('ERROR: AddressSanitizer', 'runtime error:', 'SUMMARY: UndefinedBehavior'):
        assert marker not in output, output[-6000:]
