#!/usr/bin/env python
"""Distil a student from a teacher on MNIST and save the student alone.

Examples::

    # frozen teacher from its checkpoint (Hinton's MNIST MLPs, T = 20, jittered transfer set)
    python train/train_kd.py --teacher-prefix out/kd-teacher --teacher-epoch 60 \
        --student kd-student --temperature 20 --mimic-weight 1 --t2-scaling --jitter 2 \
        --num-epochs 60 --lr-schedule cosine --output-prefix out/kd-student-distilled
    # teacher and student trained together
    python train/train_kd.py --joint --teacher resnet --resnet-layer-num 8 \
        --student shallow-cnn --temperature 3 --num-epochs 5
"""
import sys

from mxcompress.commands.distill import main

if __name__ == '__main__':
    sys.exit(main())
