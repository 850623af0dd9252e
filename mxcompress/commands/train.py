"""``mxcompress train`` and ``train/train_mnist.py``: train a network of ``symbols`` on MNIST."""
import argparse

import symbols

from ..argtypes import positive_int
from ..fit import (add_data_args, add_fit_args, data_split, seed_everything, train_iterators,
                   train_model)
from ..measure import classification_error
from . import check_outputs, script_main
from .train_bnn import BINARY_NETWORKS

__all__ = ['add_train_args', 'add_parser', 'run_train', 'main']


def add_train_args(parser):
    """Options of ``train``: the network plus every data and fit option."""
    parser.add_argument('--network', default='lenet5',
                        help='network name (see `mxcompress networks`), e.g. lenet5, lenet300, '
                             'mlp, kd-teacher, mobilenetv2_0.25')
    parser.add_argument('--num-classes', type=positive_int, default=None,
                        help='number of classes (default: from the training labels)')
    add_data_args(parser)
    add_fit_args(parser)
    return parser


def run_train(args):
    """Train ``args.network`` and return ``(module, test_error)`` on the test iterator's images."""
    if args.network in BINARY_NETWORKS:
        raise ValueError('%s is a binary network: train it with `mxcompress train-bnn --network '
                         '%s` (Adam, latent weights clipped to [-1, 1])'
                         % (args.network, args.network))
    check_outputs(args, prefixes=['model_prefix'])
    seed_everything(args.seed)
    data = train_iterators(args)   # read once: the class count comes from its labels
    if args.num_classes is None:
        args.num_classes = int(data[1].labels.max()) + 1
    symbol = symbols.get_symbol(args.network, num_classes=args.num_classes)
    module, _ = train_model(args, symbol, data=data)
    arg_params, aux_params = module.get_params()
    images, labels = data_split(args, 'test')
    error = classification_error(symbol, arg_params, aux_params, images, labels)
    return module, error


def add_parser(sub):
    parser = sub.add_parser('train', help='train a network on MNIST or your data (--data)',
                            description='Train a network on MNIST (or --data) with mx.mod.Module.fit, '
                            'checkpointing each epoch, and print its test error.',
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_args(parser)
    parser.set_defaults(func=run)


def run(args):
    _, error = run_train(args)
    print('test error: %.2f%% (%s)' % (100 * error, args.network))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a network on MNIST (or --data) with mx.mod.Module and print its '
                    'test error.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_args(parser)
    return script_main(parser, run, argv)
