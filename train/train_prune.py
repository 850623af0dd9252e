#!/usr/bin/env python
"""Prune a checkpoint and fine-tune it on MNIST (the same options as ``mxcompress prune``).

Example::

    python train/train_prune.py benchmarks/models/lenet300 --method level --sparsity 0.92 \
        --steps 4 --num-epochs 3 --lr 0.05 --jitter 2 --output out/lenet300-pruned
"""
import sys

from mxcompress.commands.prune import main

if __name__ == '__main__':
    sys.exit(main())
