"""``mxcompress lowrank``: factorise the FullyConnected / Convolution layers of a checkpoint."""
import argparse
import json

from ..analysis import model_summary
from ..argtypes import chw_shape, non_negative_int
from ..checkpoint import load_checkpoint, model_input_shape, save_checkpoint
from ..fit import add_data_args, add_fit_args, data_split, train_iterators
from ..logs import setup_logging
from ..lowrank import choose_ranks, describe_layers, factorize
from ..lowrank.finetune import finetune
from ..measure import classification_error
from . import check_outputs, checkpoint_files
from .layer_options import parse_layer_values

DESCRIPTION = """\
Replace layers of a checkpoint by low-rank factorisations, optionally fine-tune, and save a
standard checkpoint OUTPUT-symbol.json + OUTPUT-0000.params.

FullyConnected layers use the SVD W ~ U_r S_r V_r^T (Denton et al. 2014): layer NAME becomes
NAME_v (n -> r, no bias) and NAME_u (r -> m, the original bias). Convolution layers use
--conv-scheme: 'channel' (k x k conv with r filters, then a 1 x 1 conv to N) or 'spatial'
(Jaderberg et al. 2014: k x 1 conv with r filters, then a 1 x k conv). Grouped and depthwise
convolutions (num_group > 1, e.g. MobileNet's) are skipped, with a message naming each: they
have no useful low-rank form.

Ranks: exactly one of --rank (every layer), --ratio (kept fraction of each layer's weight
params or MACs), --energy (kept fraction of each layer's squared singular values) or
--compression (overall factor over the chosen layers, same kept energy in every layer); --ranks
NAME=R,... overrides single layers. Ranks must be in 1..min(rows, cols) of the layer's matrix.

--num-epochs is the number of fine-tuning epochs (0: none) with the Training options below;
fine-tuning reads MNIST or --data (Data options) and prints the test error before and after.
Everything is checked before anything is written.

example:
  mxcompress lowrank benchmarks/models/lenet300 --output out/lenet300-svd \\
      --layers lenet300_fc1,lenet300_fc2 --ranks lenet300_fc1=40,lenet300_fc2=20 \\
      --num-epochs 10 --lr 0.01 --lr-schedule cosine --jitter 2
"""


def add_parser(sub):
    parser = sub.add_parser('lowrank', help='low-rank factorisation of FC / conv layers',
                            description=DESCRIPTION, conflict_handler='resolve',
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('prefix', help='input checkpoint prefix (PREFIX-symbol.json)')
    parser.add_argument('--epoch', type=int, default=0, help='input checkpoint epoch (default 0)')
    parser.add_argument('--output', required=True, help='output checkpoint prefix (epoch 0)')
    low = parser.add_argument_group('Low rank')
    low.add_argument('--layers', default=None, help='comma-separated layer names (default: '
                     'every FullyConnected and Convolution layer)')
    low.add_argument('--conv-scheme', choices=('channel', 'spatial'), default='channel',
                     help='scheme of Convolution layers (default channel)')
    low.add_argument('--schemes', default='', help='per-layer schemes NAME=SCHEME,... '
                     '(svd, channel, spatial)')
    low.add_argument('--rank', type=int, default=None, help='one rank for every layer')
    low.add_argument('--ranks', default='', help='per-layer ranks NAME=R,...')
    low.add_argument('--ratio', type=float, default=None,
                     help='keep this fraction (0, 1] of each layer\'s --cost')
    low.add_argument('--energy', type=float, default=None,
                     help='keep this fraction (0, 1] of each layer\'s singular-value energy')
    low.add_argument('--compression', type=float, default=None,
                     help='overall compression factor (> 1) of the chosen layers\' --cost')
    low.add_argument('--cost', choices=('params', 'macs'), default='params',
                     help='what --ratio / --compression count (default params)')
    low.add_argument('--input-shape', default=None,
                     help='per-example input shape C,H,W for feature-map sizes (same as '
                          '--data-shape; default: inferred from the checkpoint)')
    low.add_argument('--json', action='store_true', help='print the report as JSON')
    add_data_args(parser)
    add_fit_args(parser)
    parser.add_argument('--num-epochs', type=non_negative_int, default=0,
                        help='fine-tuning epochs (0: none, the rewrite needs no data)')
    parser.set_defaults(func=run, lr=0.01, lr_schedule='cosine')


def plan(args, symbol, arg_params, skipped=None):
    """Check the options against the checkpoint: ``(ranks, schemes, data_shape)``.

    Grouped / depthwise convolutions are left out; ``(name, reason)`` of each is appended to
    ``skipped`` when given. Raises ValueError (LowRankError) naming the layer or option at
    fault.
    """
    skipped = [] if skipped is None else skipped
    explicit = parse_layer_values(args.ranks, int, '--ranks')
    schemes = parse_layer_values(args.schemes, str, '--schemes')
    criteria = [o for o, v in (('--rank', args.rank), ('--ratio', args.ratio),
                               ('--energy', args.energy), ('--compression', args.compression))
                if v is not None]
    if len(criteria) > 1:
        raise ValueError('give only one of --rank, --ratio, --energy, --compression (got %s)'
                         % ', '.join(criteria))
    if args.layers:
        names = [n.strip() for n in args.layers.split(',') if n.strip()]
    elif explicit and not criteria:
        names = list(explicit)
    else:
        names = None
    data_shape = model_input_shape(symbol, arg_params, None, args.data_shape or (
        chw_shape(args.input_shape) if args.input_shape else None), args.prefix)
    specs = describe_layers(symbol, arg_params, names, schemes, args.conv_scheme, data_shape,
                            skipped=skipped)
    known = {s.name for s in specs}
    for name in list(explicit):
        if name not in known:  # names the problem: not a layer, wrong op, or not selected
            left_out = []
            describe_layers(symbol, arg_params, [name], schemes, args.conv_scheme, data_shape,
                            skipped=left_out)
            if left_out:     # grouped / depthwise: skipped, not refused
                del explicit[name]
                if name not in [n for n, _ in skipped]:
                    skipped.extend(left_out)
    if args.rank is not None:
        explicit = dict({s.name: args.rank for s in specs}, **explicit)
    ranks = choose_ranks(specs, ranks=explicit or None, ratio=args.ratio, energy=args.energy,
                         compression=args.compression, cost=args.cost)
    return ranks, {s.name: s.scheme.name for s in specs}, data_shape


def run(args):
    check_outputs(args, prefixes=['output'], inputs=checkpoint_files(args.prefix, args.epoch))
    if args.num_epochs > 0:  # fine-tuning reports progress (Speedometer, epoch metrics)
        setup_logging()
    symbol, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch)
    skipped = []
    ranks, schemes, data_shape = plan(args, symbol, arg_params, skipped)
    new_sym, new_args, new_aux, report = factorize(symbol, arg_params, aux_params, ranks,
                                                  schemes, args.conv_scheme, data_shape)
    errors = {}
    if args.num_epochs > 0:
        images, labels = data_split(args, 'test')
        errors['original'] = classification_error(symbol, arg_params, aux_params, images, labels)
        errors['factorised'] = classification_error(new_sym, new_args, new_aux, images, labels)
        _, train_iter, test_iter = train_iterators(args)  # sharded per worker if dist
        new_args, new_aux = finetune(new_sym, new_args, new_aux, args, train_iter, test_iter)
        errors['fine_tuned'] = classification_error(new_sym, new_args, new_aux, images, labels)
    save_checkpoint(args.output, 0, new_sym, new_args, new_aux)
    before = model_summary(symbol, arg_params, aux_params, data_shape)
    after = model_summary(new_sym, new_args, new_aux, data_shape)
    summary = {'layers': report, 'skipped': [{'layer': n, 'reason': r} for n, r in skipped],
               'params': [before['params'], after['params']],
               'macs': [before['dense_macs'], after['dense_macs']], 'test_error': errors,
               'output': args.output}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print('%-20s %-8s %6s %6s %10s %10s %8s' % ('layer', 'scheme', 'rank', 'max', 'params',
                                                'factored', 'energy'))
    for r in report:
        print('%-20s %-8s %6d %6d %10d %10d %7.2f%%' % (
            r['layer'], r['scheme'], r['rank'], r['max_rank'], r['params'],
            r['factored_params'], 100 * r['kept_energy']))
    for name, reason in skipped:
        print('skipped %s: %s' % (name, reason))
    print('model params %d -> %d (%.2fx), MACs %d -> %d (%.2fx)' % (
        before['params'], after['params'], before['params'] / after['params'],
        before['dense_macs'], after['dense_macs'], before['dense_macs'] / after['dense_macs']))
    for key, value in errors.items():
        print('test error %-10s %.2f%%' % (key, 100 * value))
    print('saved %s-symbol.json, %s-0000.params' % (args.output, args.output))
