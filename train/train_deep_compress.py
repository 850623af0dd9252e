#!/usr/bin/env python
"""Deep Compression of a checkpoint: prune -> quantise -> Huffman -> .mxc.

The same pipeline as ``mxcompress deep-compress`` (see ``--help``). Example::

    python train/train_deep_compress.py benchmarks/models/lenet300 --output out/lenet300.mxc \
        --sparsity lenet300_fc1=0.96,lenet300_fc2=0.9,lenet300_fc3=0.7
"""
import argparse
import logging
import sys

from mxcompress.commands.deep_compress import add_deep_args, compress


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_deep_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    compress(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
