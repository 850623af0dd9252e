"""Binary networks: quantisers, binary Gluon layers, latent-clipping optimizers, footprint,
and the converter to the xnor-popcount op.

- :mod:`.quantizers`: sign, stochastic sign, straight-through Htanh, activation quantisation.
- :mod:`.layers`: BinaryConnect / BWN / XNOR Dense and Conv2D HybridBlocks.
- :mod:`.optimizer`: ``latentclipadam`` / ``latentclipsgd`` (registered on import of that
  module) clipping latent weights to [-1, 1] after each update.
- :mod:`.footprint`: bytes of the binarised weights at 1 bit vs fp32.
- :mod:`.contract`: the node attributes every binary layer carries (written by the layers,
  read by the optimizer, the footprint and the converter).
- :mod:`.convert`: a trained binary graph -> an inference graph on ``xnor_conv2d``.

Training runs in the ``train-bnn`` command (:mod:`mxcompress.commands.train_bnn`).

Symbol builders: ``symbols/bnn.py`` (``bnn.BatchNorm`` / ``bnn.Convolution`` of the binary
residual unit), ``symbols/bnn_resnet.py``, ``symbols/binary_lenet5.py``,
``symbols/binaryconnect_mlp.py``.
"""
