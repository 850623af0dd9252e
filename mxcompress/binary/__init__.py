"""Binary networks: quantisers, binary Gluon layers, latent-clipping optimizers, footprint.

- :mod:`.quantizers`: sign, stochastic sign, straight-through Htanh, activation quantisation.
- :mod:`.layers`: BinaryConnect / BWN / XNOR Dense and Conv2D HybridBlocks.
- :mod:`.optimizer`: ``latentclipadam`` / ``latentclipsgd`` (registered on import of that
  module) clipping latent weights to [-1, 1] after each update.
- :mod:`.footprint`: bytes of the binarised weights at 1 bit vs fp32.
- :mod:`.train`: the binary training command (``train/train_bnn.py``).

Symbol builders: ``symbols/bnn.py`` (the document's ``bnn.BatchNorm`` / ``bnn.Convolution``),
``symbols/bnn_resnet.py``, ``symbols/binary_lenet5.py``, ``symbols/binaryconnect_mlp.py``.
"""
