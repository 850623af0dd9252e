"""mxcompress: compress MXNet 1.9 / Gluon convolutional networks and measure the result.

Modules: :mod:`.data` (MNIST), :mod:`.fit` (the Module training loop), :mod:`.checkpoint`
(atomic, checked checkpoints), :mod:`.measure` (error, latency), :mod:`.analysis`
(params, sparsity, MACs), :mod:`.cli` (the ``mxcompress`` command).
"""
__version__ = '0.1.0'
