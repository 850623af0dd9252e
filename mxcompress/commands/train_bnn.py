"""``mxcompress train-bnn`` and ``train/train_bnn.py``: train a binary network on MNIST.

The usual recipe of binary networks: Adam with a decaying learning rate (cosine by default),
latent weights clipped to [-1, 1] after every update (``latentclipadam``), no weight decay on
latent weights (``wd_mult=0``), BatchNorm everywhere, +-2 px jitter. Training runs through
:func:`mxcompress.fit.fit` and saves standard checkpoints whose ``-symbol.json`` holds MXNet
built-in operators only.
"""
import argparse
import logging

import symbols

from ..binary.footprint import binary_footprint
from ..binary.optimizer import LATENT_OPTIMIZERS
from ..binary.quantizers import WEIGHT_MODES, check_clip_value, check_num_bits
from ..fit import add_data_args, add_fit_args, data_split, fit_options, train_model
from ..measure import classification_error
from . import check_outputs, standalone_main

__all__ = ['BINARY_NETWORKS', 'add_bnn_args', 'network_options', 'run_bnn', 'add_parser',
           'main']

#: binary networks of ``symbols`` and the options of ``network_options`` each accepts
BINARY_NETWORKS = ('bnn-resnet', 'binaryconnect-mlp', 'bwn-lenet5', 'xnor-lenet5')


def _widths(text):
    try:
        values = tuple(int(v) for v in str(text).split(',') if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError('must be comma-separated integers, got %r' % text)
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError('must be positive widths, got %r' % text)
    return values


def add_bnn_args(parser):
    """Options of binary training: network, its shape, the latent clip, plus data and fit."""
    net = parser.add_argument_group('Binary network')
    net.add_argument('--network', choices=BINARY_NETWORKS, default='bnn-resnet',
                     help='binary network of symbols/')
    net.add_argument('--num-bits', type=int, default=None,
                     help='bnn-resnet: activation bits of the residual units (1 = binary; '
                          '2..4 uniform on [-1, 1]; 1..8 accepted, above 4 warns)')
    net.add_argument('--num-layers', type=int, default=None,
                     help='bnn-resnet: depth 6n+2 (8, 14, 20, ...)')
    net.add_argument('--widths', type=_widths, default=None,
                     help='comma-separated widths: bnn-resnet the 3 stage channels; '
                          'bwn/xnor-lenet5 conv1,conv2,fc1; binaryconnect-mlp the hidden layers')
    net.add_argument('--binarization', choices=WEIGHT_MODES, default=None,
                     help='binaryconnect-mlp: deterministic sign or stochastic sampling')
    net.add_argument('--latent-clip', type=float, default=1.0,
                     help='latent weights are clipped to [-c, c] after every update')
    net.add_argument('--no-val', action='store_true',
                     help='skip the test-set evaluation after each epoch (saves time; the '
                          'final test error is still measured)')
    add_data_args(parser)
    add_fit_args(parser)
    parser.set_defaults(optimizer='adam', lr=0.005, lr_schedule='cosine', num_epochs=20,
                        batch_size=100, wd=1e-5, jitter=2, initializer='xavier')
    return parser


def network_options(args):
    """Builder keyword arguments from ``args`` (only those given), validated.

    Raises
    ------
    ValueError
        An option the network does not take, or a bad value (naming the option).
    """
    opts = {}
    net = args.network
    if args.num_bits is not None:
        if net != 'bnn-resnet':
            raise ValueError('--num-bits applies to bnn-resnet only, not %s' % net)
        opts['num_bits'] = check_num_bits(args.num_bits, '--num-bits')
    if args.num_layers is not None:
        if net != 'bnn-resnet':
            raise ValueError('--num-layers applies to bnn-resnet only, not %s' % net)
        opts['num_layers'] = args.num_layers
    if args.binarization is not None:
        if net != 'binaryconnect-mlp':
            raise ValueError('--binarization applies to binaryconnect-mlp only, not %s' % net)
        opts['mode'] = args.binarization
    if args.widths is not None:
        widths = tuple(args.widths)
        if net == 'bnn-resnet':
            if len(widths) != 3:
                raise ValueError('--widths for bnn-resnet needs 3 stage widths, got %r'
                                 % (widths,))
            opts['filter_list'] = widths
        elif net == 'binaryconnect-mlp':
            opts['hidden'] = widths
        else:
            if len(widths) != 3:
                raise ValueError('--widths for %s needs conv1,conv2,fc1, got %r' % (net, widths))
            opts['conv_filters'], opts['fc_hidden'] = widths[:2], widths[2]
    return opts


def run_bnn(args, logger=None):
    """Train ``args.network``; return ``(symbol, arg_params, aux_params, test_error, footprint)``.

    The test error is measured on the test images of ``args`` (all 10,000 by default) with the
    trained params in inference mode.
    """
    logger = logger or logging.getLogger('mxcompress')
    check_outputs(args, prefixes=['model_prefix'])
    check_clip_value(args.latent_clip, '--latent-clip')
    symbol = symbols.get_symbol(args.network, **network_options(args))
    if args.optimizer not in LATENT_OPTIMIZERS:
        raise ValueError('--optimizer for binary training must be one of %s, got %r'
                         % (', '.join(sorted(LATENT_OPTIMIZERS)), args.optimizer))
    fit_args = fit_options(args, optimizer=LATENT_OPTIMIZERS[args.optimizer])
    opt = {'latent_clip': args.latent_clip}
    if args.optimizer == 'sgd':
        opt['momentum'] = args.mom
    module, _ = train_model(fit_args, symbol, validate=not args.no_val, optimizer_params=opt,
                            logger=logger)
    arg_params, aux_params = module.get_params()
    images, labels = data_split(args, 'test')
    error = classification_error(symbol, arg_params, aux_params, images, labels)
    return symbol, arg_params, aux_params, error, binary_footprint(symbol, arg_params,
                                                                   aux_params)


def add_parser(sub):
    parser = sub.add_parser(
        'train-bnn', help='train a binary network (BinaryConnect, BWN, XNOR, BNN ResNet)',
        description='Train a binary network on MNIST (or --data) with Adam, a cosine learning rate and '
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


def main(argv=None):
    """``train/train_bnn.py``: the ``mxcompress train-bnn`` command as a script."""
    return standalone_main('train-bnn', argv)
