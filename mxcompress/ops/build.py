"""Compile the C++ operator library against the installed MXNet wheel.

The wheel ships ``include/mxnet/lib_api.h`` and ``src/lib_api.cc`` beside ``mxnet/__init__.py``;
they are located from the ``mxnet`` package at build time (no fixed paths). The library is one
``.so`` built from ``src/*.cc`` here plus ``lib_api.cc``, with OpenMP. AVX2/POPCNT code is
compiled per function (``target`` attributes) and chosen at run time with
``__builtin_cpu_supports``, so the library runs on any x86-64 CPU.

Used by ``setup.py`` (``build_py``), ``mxcompress/ops/Makefile`` and by
:func:`mxcompress.ops.load` when the library is missing. Run ``python -m mxcompress.ops.build
--help`` for the command line.
"""
import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

__all__ = ['OpsBuildError', 'mxnet_dir', 'source_files', 'compile_command', 'build_library',
           'LIBRARY_NAME']

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.join(HERE, 'src')
LIBRARY_NAME = 'libmxcompress_ops.so'
BASE_FLAGS = ['-std=c++17', '-O3', '-fPIC', '-shared', '-fopenmp', '-ffp-contract=off',
              '-Wall', '-Wno-unused-parameter']
SANITIZE_FLAGS = ['-fsanitize=address,undefined', '-fno-omit-frame-pointer',
                  '-fno-sanitize-recover=undefined', '-O1', '-g']


class OpsBuildError(RuntimeError):
    """The operator library cannot be built (no compiler, no MXNet headers, compile error)."""


def mxnet_dir():
    """Directory of the installed ``mxnet`` package (holds ``include/`` and ``src/``)."""
    spec = importlib.util.find_spec('mxnet')
    if spec is None or not spec.origin:
        raise OpsBuildError('cannot build the xnor_conv2d library: the mxnet package is not '
                            'installed in this Python (%s); pip install mxnet==1.9.1 first'
                            % sys.executable)
    root = os.path.dirname(os.path.abspath(spec.origin))
    for needed in ('include/mxnet/lib_api.h', 'src/lib_api.cc'):
        if not os.path.isfile(os.path.join(root, needed)):
            raise OpsBuildError('cannot build the xnor_conv2d library: %s is missing from the '
                                'mxnet package at %s (MXNet >= 1.7 wheels ship it)'
                                % (needed, root))
    return root


def source_files():
    """Our C++ sources (``.cc``) and headers, sorted."""
    return sorted(os.path.join(SRC_DIR, f) for f in os.listdir(SRC_DIR)
                  if f.endswith(('.cc', '.h')))


def find_compiler(compiler=None):
    """The C++ compiler to use: ``compiler``, ``$CXX``, then g++ / c++ / clang++."""
    for candidate in (compiler, os.environ.get('CXX'), 'g++', 'c++', 'clang++'):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise OpsBuildError('cannot build the xnor_conv2d library: no C++ compiler found (tried '
                        '$CXX, g++, c++, clang++). Install one (e.g. apt-get install g++) or '
                        'point MXCOMPRESS_OPS_LIB at a prebuilt %s' % LIBRARY_NAME)


def compile_command(output, sanitize=False, compiler=None):
    """The compiler command line (list) that builds the library into ``output``."""
    root = mxnet_dir()
    sources = [f for f in source_files() if f.endswith('.cc')]
    flags = BASE_FLAGS + (SANITIZE_FLAGS if sanitize else [])
    return ([find_compiler(compiler)] + flags +
            ['-I' + os.path.join(root, 'include'), '-I' + SRC_DIR] +
            sources + [os.path.join(root, 'src', 'lib_api.cc'), '-o', output])


def build_library(output=None, sanitize=False, compiler=None, quiet=True):
    """Compile the library to ``output`` (default: ``LIBRARY_NAME`` beside this file).

    The file appears atomically (compiled to a temporary name, then renamed), so a crash or a
    concurrent build never leaves a half-written library. Returns the absolute path.

    Raises
    ------
    OpsBuildError
        No compiler, no MXNet headers, or the compiler failed (its output is included).
    """
    output = os.path.abspath(output or os.path.join(HERE, LIBRARY_NAME))
    os.makedirs(os.path.dirname(output), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(output) + '.', suffix='.so',
                               dir=os.path.dirname(output))
    os.close(fd)
    try:
        cmd = compile_command(tmp, sanitize=sanitize, compiler=compiler)
        if not quiet:
            print(' '.join(cmd), file=sys.stderr)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if proc.returncode != 0:
            raise OpsBuildError('compiling the xnor_conv2d library failed (exit %d):\n%s\n%s'
                                % (proc.returncode, ' '.join(cmd), proc.stdout[-4000:]))
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Build the mxcompress C++ operator library (xnor_conv2d) against the '
                    'installed MXNet.')
    parser.add_argument('-o', '--output', help='library path (default: %s beside the package)'
                        % LIBRARY_NAME)
    parser.add_argument('--sanitize', action='store_true',
                        help='AddressSanitizer + UBSan build (for tests; needs LD_PRELOAD of '
                             'libasan to load into python)')
    parser.add_argument('--cxx', help='C++ compiler (default: $CXX, g++, c++, clang++)')
    args = parser.parse_args(argv)
    try:
        print(build_library(args.output, sanitize=args.sanitize, compiler=args.cxx, quiet=False))
    except OpsBuildError as err:
        sys.exit('error: %s' % err)


if __name__ == '__main__':
    main()
