"""``mxcompress train``: train a network on MNIST."""
import argparse

from ..train import add_train_args, run_train


def add_parser(sub):
    parser = sub.add_parser('train', help='train a network on MNIST',
                            description='Train a network on MNIST with mx.mod.Module.fit, '
                            'checkpointing each epoch, and print its test error.',
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_args(parser)
    parser.set_defaults(func=run)


def run(args):
    _, error = run_train(args)
    print('test error: %.2f%% (%s)' % (100 * error, args.network))
