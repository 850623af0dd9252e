"""``mxcompress fold-bn``: merge inference BatchNorms into the Convolution / FC before them."""
import json

from ..checkpoint import load_checkpoint, save_checkpoint
from ..deploy import fold_batchnorm, max_relative_difference
from . import check_outputs, checkpoint_files

#: the largest relative output change a fold may cause (float32 rounding is ~1e-7)
TOLERANCE = 1e-4


def add_parser(sub):
    parser = sub.add_parser(
        'fold-bn', help='fold BatchNorm into the Convolution / FullyConnected before it',
        description='Write an inference checkpoint where every Convolution or FullyConnected '
        'whose output feeds only a BatchNorm is one layer with weight w * s and bias '
        '(b - moving_mean) * s + beta, s = gamma / sqrt(moving_var + eps) (gamma = 1 with '
        'fix_gamma). Other BatchNorms are kept and listed with the reason (input is not a '
        'conv/FC, shared by other nodes, a binary layer with a computed weight, ...). The '
        'outputs are compared with the input checkpoint on random inputs before writing.')
    parser.add_argument('prefix', help='checkpoint prefix (PREFIX-symbol.json)')
    parser.add_argument('output', help='prefix of the folded checkpoint (epoch 0)')
    parser.add_argument('--epoch', type=int, default=0, help='epoch of the input checkpoint')
    parser.set_defaults(func=run)


def fold_checked(prefix, symbol, arg_params, aux_params):
    """:func:`fold_batchnorm` and a report; raises ValueError if the outputs changed."""
    folded = fold_batchnorm(symbol, arg_params, aux_params)
    difference = max_relative_difference((symbol, arg_params, aux_params), folded[:3])
    if difference is not None and difference > TOLERANCE:
        raise ValueError('%s: the folded graph differs from the original by %.3g (relative) '
                         'on random inputs; nothing written' % (prefix, difference))
    report = {'folded': {f.batchnorm: f.layer for f in folded[3] if f.folded},
              'left_alone': {f.batchnorm: f.reason for f in folded[3] if not f.folded},
              'max_relative_difference': difference}
    return folded[:3], report


def run(args):
    check_outputs(args, prefixes=['output'], inputs=checkpoint_files(args.prefix, args.epoch))
    symbol, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch)
    (symbol, arg_params, aux_params), report = fold_checked(args.prefix, symbol, arg_params,
                                                            aux_params)
    save_checkpoint(args.output, 0, symbol, arg_params, aux_params)
    report['output'] = args.output
    print(json.dumps(report, indent=2))
