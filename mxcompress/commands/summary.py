"""``mxcompress summary``: per-layer params, nonzeros and MACs of a checkpoint."""
import json

from ..analysis import model_summary
from ..argtypes import chw_shape
from ..checkpoint import load_checkpoint, model_input_shape


def add_parser(sub):
    parser = sub.add_parser('summary', help='params, sparsity and MACs of a checkpoint',
                            description='Print a per-layer table (weight shape, params, '
                            'nonzeros, sparsity, dense and remaining MACs) of a checkpoint.')
    parser.add_argument('prefix', help='checkpoint prefix (PREFIX-symbol.json)')
    parser.add_argument('--epoch', type=int, default=0, help='checkpoint epoch')
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    parser.add_argument('--data-shape', type=chw_shape, default=None, metavar='C,H,W',
                        help='input shape of one example (default: inferred from the '
                             'checkpoint, e.g. 1,28,28 or 3,224,224)')
    parser.set_defaults(func=run)


def run(args):
    symbol, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch)
    shape = model_input_shape(symbol, arg_params, aux_params, args.data_shape, args.prefix)
    summary = model_summary(symbol, arg_params, aux_params, shape)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print('%-24s %-16s %10s %10s %8s %12s %12s' % ('layer', 'weight', 'params', 'nonzeros',
                                                 'sparsity', 'dense MACs', 'remain MACs'))
    for r in summary['layers']:
        print('%-24s %-16s %10d %10d %7.1f%% %12d %12d' % (
            r['layer'], 'x'.join(map(str, r['weight_shape'])), r['params'], r['nonzeros'],
            100 * r['sparsity'], r['dense_macs'], r['remaining_macs']))
    print('input %s (%s)' % ('x'.join(map(str, shape[1:])),
                             'from --data-shape' if args.data_shape else
                             'inferred from the checkpoint; give --data-shape if the network '
                             'takes another size'))
    print('total params %d (%d fp32 bytes), weight density %.2f%%, MACs %d -> %d' % (
        summary['params'], summary['fp32_bytes'], 100 * summary['weight_density'],
        summary['dense_macs'], summary['remaining_macs']))
