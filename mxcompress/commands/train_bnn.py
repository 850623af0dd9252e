"""``mxcompress train-bnn``: train a binary network on MNIST."""
import argparse

from ..binary.train import add_bnn_args, run_bnn


def add_parser(sub):
    parser = sub.add_parser(
        'train-bnn', help='train a binary network (BinaryConnect, BWN, XNOR, BNN ResNet)',
        description='Train a binary network on MNIST with Adam, a cosine learning rate and '
                    'latent weights clipped to [-1, 1] after every update; checkpoint each '
                    'epoch (standard checkpoints, built-in operators only) and print the test '
                    'error and the bytes of the binarised weights at 1 bit vs fp32.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_bnn_args(parser)
    parser.set_defaults(func=run)


def run(args):
    _, _, _, error, footprint = run_bnn(args)
    print('test error: %.2f%% (%s)' % (100 * error, args.network))
    print('binarised weights: %d bytes at 1 bit (+alpha) vs %d bytes fp32 (%.4f)' % (
        footprint['binary_weight_bytes_1bit'], footprint['binary_weight_bytes_fp32'],
        footprint['binary_weight_ratio']))
