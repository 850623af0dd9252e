"""Install mxcompress (the library, the Symbol builders and the ``mxcompress`` command)."""
import importlib.util
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

HERE = os.path.dirname(os.path.abspath(__file__))


def _build_ops(package_root):
    """Compile the xnor_conv2d library (mxcompress/ops/build.py) against the installed mxnet's
    lib_api into ``package_root``/mxcompress/ops. Without a compiler or mxnet the install goes
    on and mxcompress.ops.load() builds the library on first use."""
    spec = importlib.util.spec_from_file_location(
        '_mxcompress_ops_build', os.path.join(HERE, 'mxcompress', 'ops', 'build.py'))
    ops_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ops_build)
    target = os.path.join(package_root, 'mxcompress', 'ops', ops_build.LIBRARY_NAME)
    try:
        print('built %s' % ops_build.build_library(target, quiet=False))
    except ops_build.OpsBuildError as err:
        print('WARNING: xnor_conv2d library not built (%s); mxcompress.ops.load() will try '
              'again on first use' % err)


class BuildPyWithOps(build_py):
    """build_py, then the C++ op library (into the source tree for editable installs)."""

    def run(self):
        super().run()
        editable = getattr(self, 'editable_mode', False) or getattr(self, 'inplace', False)
        _build_ops(HERE if editable else self.build_lib)


class DevelopWithOps(develop):
    """Legacy editable install (``setup.py develop``): also build the library in place."""

    def run(self):
        super().run()
        _build_ops(HERE)


INSTALL_REQUIRES = [
    'mxnet==1.9.1',
    'numpy>=1.16,<1.24',        # mxnet 1.9.1 does not import with numpy >= 1.24
    'scipy>=1.5,<1.12',
    'pandas<2.1',               # newer pandas / opencv / matplotlib pull numpy 2
    'opencv-python<4.9',
    'matplotlib<3.9',
    'gluoncv==0.10.5.post0',
]

setup(
    name='mxcompress',
    version='0.1.0',
    description='Compression of MXNet convolutional networks: low rank, pruning, quantisation, '
                'binarisation, distillation, light networks',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.8,<3.12',
    packages=find_packages(include=['mxcompress', 'mxcompress.*', 'symbols', 'symbols.*']),
    package_data={'mxcompress.ops': ['src/*.cc', 'src/*.h', 'Makefile']},
    cmdclass={'build_py': BuildPyWithOps, 'develop': DevelopWithOps},
    install_requires=INSTALL_REQUIRES,
    extras_require={'test': ['pytest>=7', 'hypothesis>=6']},
    entry_points={'console_scripts': ['mxcompress = mxcompress.cli:main']},
)
