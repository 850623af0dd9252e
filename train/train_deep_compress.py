#!/usr/bin/env python
"""Deep Compression of a checkpoint: prune -> quantise -> Huffman -> .mxc.

The same pipeline as ``mxcompress deep-compress`` (see ``--help``). Example::

    python train/train_deep_compress.py benchmarks/models/lenet300 --output out/lenet300.mxc \
        --sparsity lenet300_fc1=0.96,lenet300_fc2=0.9,lenet300_fc3=0.7
"""
import sys

from mxcompress.commands.deep_compress import main

if __name__ == '__main__':
    sys.exit(main())
