#!/usr/bin/env python
"""Train a binary network on MNIST (Adam, cosine learning rate, latent weights in [-1, 1]).

Examples::

    python train/train_bnn.py --network bnn-resnet --num-bits 1 --model-prefix out/bnn
    python train/train_bnn.py --network xnor-lenet5 --num-epochs 15
    python train/train_bnn.py --network binaryconnect-mlp --binarization stochastic
"""
import sys

from mxcompress.commands.train_bnn import main

if __name__ == '__main__':
    sys.exit(main())
