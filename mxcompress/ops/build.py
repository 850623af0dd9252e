"""Compile the C++ operator library against the installed MXNet wheel.

The wheel ships ``include/mxnet/lib_api.h`` and ``src/lib_api.cc`` beside ``mxnet/__init__.py``;
they are located from the ``mxnet`` package at build time (no fixed paths). The library is one
``.so`` built from ``src/*.cc`` here plus ``lib_api.cc``, with OpenMP. The AVX-512 (VPOPCNTQ),
AVX2 and POPCNT code (the portable kernel's popcount) is compiled per function (``target``
attributes) and chosen at run time with ``__builtin_cpu_supports``, so the library runs on any
x86-64 CPU.

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

__all__ = ['OpsBuildError', 'mxnet_dir', 'source_files', 'compile_commands',
           'build_library', 'find_compiler', 'LIBRARY_NAME']

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.join(HERE, 'src')
LIBRARY_NAME = 'libmxcompress_ops.so'
BASE_FLAGS = ['-std=c++17', '-O3', '-fPIC', '-shared', '-fopenmp', '-ffp-contract=off',
              '-Wall', '-Wno-unused-parameter']
SANITIZE_FLAGS = ['-fsanitize=address,undefined', '-fno-omit-frame-pointer',
                  '-fno-sanitize-recover=undefined', '-O1', '-g']


class OpsBuildError(RuntimeError):
    """The operator library cannot be built (no compiler, no MXNet headers, compile error)."""


_PROBE = ('import importlib.util, os; s = importlib.util.find_spec("mxnet"); '
          'print(os.path.dirname(os.path.abspath(s.origin)) if s and s.origin else "")')


def _probe_interpreter():
    """mxnet's directory as the interpreter sees it outside pip's isolated build environment
    (which hides site-packages through PYTHONPATH / PYTHONNOUSERSITE)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'PYTHONNOUSERSITE', 'PYTHONHOME')}
    try:
        out = subprocess.run([sys.executable, '-c', _PROBE], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ''
    return out.stdout.strip()


def mxnet_dir():
    """Directory of the installed ``mxnet`` package (holds ``include/`` and ``src/``).

    Looked up in this interpreter first, then (for pip's isolated build environments) in the
    same interpreter without the isolation.
    """
    spec = importlib.util.find_spec('mxnet')
    root = os.path.dirname(os.path.abspath(spec.origin)) if spec and spec.origin else ''
    root = root or _probe_interpreter()
    if not root:
        raise OpsBuildError('cannot build the xnor_conv2d library: the mxnet package is not '
                            'installed in this Python (%s); pip install mxnet==1.9.1 first'
                            % sys.executable)
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


def compile_commands(output, workdir, sanitize=False, compiler=None):
    """Compiler command lines: one per source (to objects in ``workdir``, run in parallel)
    and the final link into ``output``."""
    root = mxnet_dir()
    cxx = find_compiler(compiler)
    flags = BASE_FLAGS + (SANITIZE_FLAGS if sanitize else [])
    includes = ['-I' + os.path.join(root, 'include'), '-I' + SRC_DIR]
    sources = [f for f in source_files() if f.endswith('.cc')]
    sources.append(os.path.join(root, 'src', 'lib_api.cc'))
    compiles, objects = [], []
    for i, src in enumerate(sources):
        obj = os.path.join(workdir, '%d_%s.o' % (i, os.path.basename(src)[:-3]))
        extra = ['-O0'] if sanitize and src.endswith('lib_api.cc') else []  # glue: fast build
        compiles.append([cxx] + flags + extra + includes + ['-c', src, '-o', obj])
        objects.append(obj)
    link = [cxx] + flags + objects + ['-o', output]
    return compiles, link


def _run(commands, quiet):
    procs = []
    for cmd in commands:
        if not quiet:
            print(' '.join(cmd), file=sys.stderr)
        procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT,
                                            universal_newlines=True)))
    for cmd, proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise OpsBuildError('compiling the xnor_conv2d library failed (exit %d):\n%s\n%s'
                                % (proc.returncode, ' '.join(cmd), out[-4000:]))


def build_library(output=None, sanitize=False, compiler=None, quiet=True):
    """Compile the library to ``output`` (default: ``LIBRARY_NAME`` beside this file).

    Sources compile in parallel; the file appears atomically (linked to a temporary name,
    then renamed), so a crash or a concurrent build never leaves a half-written library.
    Returns the absolute path.

    Raises
    ------
    OpsBuildError
        No compiler, no MXNet headers, or the compiler failed (its output is included).
    """
    output = os.path.abspath(output or os.path.join(HERE, LIBRARY_NAME))
    os.makedirs(os.path.dirname(output), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix='.build-', dir=os.path.dirname(output))
    try:
        tmp = os.path.join(workdir, os.path.basename(output))
        compiles, link = compile_commands(tmp, workdir, sanitize=sanitize, compiler=compiler)
        _run(compiles, quiet)
        _run([link], quiet)
        os.replace(tmp, output)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
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
