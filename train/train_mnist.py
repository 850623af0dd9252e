#!/usr/bin/env python
"""Train a network of ``symbols/`` on MNIST and print its test error.

Example::

    python train/train_mnist.py --network lenet5 --num-epochs 20 --model-prefix out/lenet5
"""
import sys

from mxcompress.commands.train import main

if __name__ == '__main__':
    sys.exit(main())
