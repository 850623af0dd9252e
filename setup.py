"""Install mxcompress (the library, the Symbol builders and the ``mxcompress`` command)."""
from setuptools import find_packages, setup

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
    install_requires=INSTALL_REQUIRES,
    extras_require={'test': ['pytest>=7', 'hypothesis>=6']},
    entry_points={'console_scripts': ['mxcompress = mxcompress.cli:main']},
)
