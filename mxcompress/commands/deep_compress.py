"""``mxcompress deep-compress``: prune -> quantise -> Huffman -> ``.mxc`` (Han et al. 2016).

With ``--max-error-increase P`` (or ``--target-ratio R``) the per-layer sparsities and widths
are chosen on the validation split (:mod:`mxcompress.deep_compression.auto`), and the choice is
saved beside the file as ``OUTPUT.recipe.json``: the explicit options that replay it
(``--sparsity-rounds``, ``--bits``, ...), the validation error it promised and the test error
it got.
"""
import argparse
import json
import math
import shlex

from ..checkpoint import atomic_path, load_checkpoint, save_checkpoint, sha256_file
from ..deep_compression import auto
from ..deep_compression.container import container_info, unpack
from ..deep_compression.pipeline import deep_compress
from ..argtypes import non_negative_int, positive_int
from ..fit import (add_data_args, add_fit_args, data_split, seed_everything, train_and_validation,
                   train_iterators)
from ..measure import classification_error
from ..graph import find_layers
from ..logs import setup_logging
from ..quantization.kmeans import INITS
from ..reporting.results import update_results
from . import check_outputs, checkpoint_files, script_main
from .layer_options import add_bits_args, bits_overrides, check_layer_names, parse_layer_values


def _fraction(text):
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError('sparsity must be in [0, 1), got %s' % text)
    return value


def budget_points(text):
    """argparse type: a validation-error increase in percentage points, 0..100 (a fraction)."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not (math.isfinite(value) and 0.0 <= value <= 100.0):
        raise argparse.ArgumentTypeError(
            'must be a number of percentage points in [0, 100] (e.g. 0.5), got %r' % text)
    return value / 100.0


def ratio_type(text):
    """argparse type: a compression ratio > 1."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not (math.isfinite(value) and value > 1.0):
        raise argparse.ArgumentTypeError('must be a compression ratio > 1 (e.g. 100), got %r'
                                         % text)
    return value


def parse_rounds(text):
    """``'a=0.5,b=0.8;a=0.9,b=0.9'`` -> ``[{'a': 0.5, 'b': 0.8}, {'a': 0.9, 'b': 0.9}]``."""
    if not text:
        return None
    return [parse_layer_values(part, _fraction, '--sparsity-rounds')
            for part in text.split(';') if part.strip()]


def add_budget_args(parser):
    """``--max-error-increase`` / ``--target-ratio`` and the search's settings."""
    group = parser.add_argument_group(
        'Accuracy budget (per-layer sparsity and bits chosen on the validation split)')
    which = group.add_mutually_exclusive_group()
    which.add_argument('--max-error-increase', type=budget_points, default=None, metavar='P',
                       help='choose every layer\'s sparsity and bits so that the validation '
                            'error rises by at most P percentage points (0..100); layers '
                            'named by --sparsity / --bits keep those values. Writes '
                            'OUTPUT.recipe.json with the options that replay the choice')
    which.add_argument('--target-ratio', type=ratio_type, default=None, metavar='R',
                       help='the dual: the least validation error at a compression ratio of R '
                            '(4 x params / param bytes)')
    group.add_argument('--budget-rounds', type=positive_int, default=8,
                       help='most pruning rounds of the search (each: sensitivity on the '
                            'validation split, allocation, pruning, --prune-epochs epochs)')
    group.add_argument('--round-budget', type=budget_points, default='2', metavar='POINTS',
                       help='no-retraining validation-error increase the first pruning round '
                            'may spend, at most 4x --max-error-increase (later rounds: set '
                            'from what fine-tuning recovered, see '
                            'mxcompress.deep_compression.auto)')
    group.add_argument('--curve-examples', type=positive_int, default=3000,
                       help='validation images the per-layer sensitivity curves are measured '
                            'on (acceptance uses the whole split)')
    return group


def add_deep_args(parser):
    """Every option of the pipeline (also used by ``train/train_deep_compress.py``)."""
    parser.add_argument('prefix', help='checkpoint to compress (PREFIX-symbol.json)')
    parser.add_argument('--epoch', type=int, default=0, help='checkpoint epoch')
    parser.add_argument('--output', required=True, help='the .mxc file to write')
    parser.add_argument('--save-prefix', default=None,
                        help='also save the final (pruned + quantised) standard checkpoint')
    parser.add_argument('--report-json', default=None,
                        help='merge the stage report into this JSON file under --report-name')
    parser.add_argument('--report-name', default='deep_compress', help='key in --report-json')
    prune = parser.add_argument_group('Pruning stage')
    prune.add_argument('--sparsity', action='append', metavar='LAYER=S',
                       help='target sparsity of one layer, e.g. lenet300_fc1=0.96 (repeat or '
                            'comma-separate); overrides the defaults below')
    prune.add_argument('--sparsity-rounds', default=None, metavar='L=S,..;L=S,..',
                       help='per-round targets (what a budget search chose; see '
                            'OUTPUT.recipe.json): round k prunes to the k-th list and '
                            'fine-tunes --prune-epochs epochs, seeded with --seed + k')
    prune.add_argument('--sparsity-fc', type=_fraction, default=0.92,
                       help='default sparsity of FullyConnected layers')
    prune.add_argument('--sparsity-conv', type=_fraction, default=0.6,
                       help='default sparsity of Convolution layers')
    prune.add_argument('--prune-method', choices=('level', 'agp'), default='level',
                       help='level: per-layer magnitude targets in --prune-steps rounds; '
                            'agp: gradual (Zhu & Gupta) during --prune-steps x --prune-epochs '
                            'epochs')
    prune.add_argument('--prune-steps', type=positive_int, default=3,
                       help="Han's iterative pruning: prune -> fine-tune rounds (cubic ramp)")
    prune.add_argument('--prune-epochs', type=non_negative_int, default=2,
                       help='masked fine-tuning epochs after each step')
    quant = parser.add_argument_group('Quantisation stage')
    quant.add_argument('--init', choices=INITS, default='linear',
                       help='k-means initialisation (Han et al.: linear)')
    quant.add_argument('--quant-epochs', type=non_negative_int, default=2,
                       help='centroid fine-tuning epochs (0 = none)')
    quant.add_argument('--quant-lr', type=float, default=None,
                       help='learning rate of centroid fine-tuning (default: --lr)')
    add_bits_args(parser)
    add_budget_args(parser)
    add_data_args(parser)
    add_fit_args(parser)
    parser.set_defaults(lr=0.005, lr_schedule='none', jitter=2, num_epochs=1)
    return parser


def add_parser(sub):
    parser = sub.add_parser(
        'deep-compress', help='prune, quantise and Huffman-code a checkpoint into an .mxc file',
        description='Deep Compression (Han et al. 2016) of a checkpoint: magnitude pruning '
        'with masked fine-tuning, k-means weight sharing with centroid fine-tuning, Huffman '
        'coding, written as an .mxc file. Prints the test error and the compression ratio '
        '(4 x params / non-graph file bytes) after each stage (P, P+Q, P+Q+H); the final '
        'error is measured on the weights read back from the file. The training options '
        'set the fine-tuning (SGD momentum, --lr for pruning, --quant-lr for centroids); the '
        'epochs of each stage are --prune-epochs and --quant-epochs (--num-epochs, '
        '--model-prefix and --load-epoch are not used).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_deep_args(parser)
    parser.set_defaults(func=run)


def layer_sparsity(symbol, args):
    """Layer name -> target sparsity from ``--sparsity`` and the per-op defaults."""
    explicit = parse_layer_values(args.sparsity, _fraction, '--sparsity')
    layers = find_layers(symbol)
    unknown = set(explicit) - {l.name for l in layers}
    if unknown:
        raise ValueError('--sparsity names unknown layers %s (layers: %s)'
                         % (sorted(unknown), [l.name for l in layers]))
    return {l.name: explicit.get(l.name, args.sparsity_conv if l.op == 'Convolution'
                                 else args.sparsity_fc) for l in layers}


def run(args):
    compress(args)


#: ``train/train_deep_compress.py --help``
SCRIPT_DESCRIPTION = """Deep Compression of a checkpoint: prune -> quantise -> Huffman -> .mxc.

The same pipeline as ``mxcompress deep-compress`` (see ``--help``). Example::

    python train/train_deep_compress.py benchmarks/models/lenet300 --output out/lenet300.mxc \
        --sparsity lenet300_fc1=0.96,lenet300_fc2=0.9,lenet300_fc3=0.7
"""


def main(argv=None):
    """Entry point of ``train/train_deep_compress.py``."""
    parser = argparse.ArgumentParser(description=SCRIPT_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_deep_args(parser)
    return script_main(parser, run, argv)


def compress(args):
    """Run the pipeline for parsed ``args``; returns the stage report (dict)."""
    setup_logging(logger='mxcompress')  # stage progress always; MXNet's only with -v
    check_outputs(args, prefixes=['save_prefix'], files=['output', 'report_json'],
                  inputs=checkpoint_files(args.prefix, args.epoch))
    symbol, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch)
    sparsity = layer_sparsity(symbol, args)
    bits = bits_overrides(args.bits)
    check_layer_names(bits, [l.name for l in find_layers(symbol)], '--bits')
    rounds = parse_rounds(getattr(args, 'sparsity_rounds', None))
    for targets in rounds or []:
        check_layer_names(targets, [l.name for l in find_layers(symbol)], '--sparsity-rounds')
    budgeted = args.max_error_increase is not None or args.target_ratio is not None
    if budgeted and rounds:
        raise ValueError('--sparsity-rounds replays a choice; it cannot be combined with '
                         '--max-error-increase / --target-ratio')
    if budgeted or rounds:
        return _compress_chosen(args, symbol, arg_params, aux_params, bits, rounds)
    seed_everything(args.seed)
    try:
        _, train_iter, val_iter = train_iterators(args)  # sharded per worker if dist
        test = data_split(args, 'test')
    except ValueError:   # no data set: a rewrite (no fine-tuning) needs none
        if args.prune_epochs or args.quant_epochs:
            raise
        train_iter = val_iter = test = None
    report = deep_compress(args, symbol, arg_params, aux_params, train_iter, val_iter, test,
                           sparsity, args.output, prune_steps=args.prune_steps,
                           prune_epochs=args.prune_epochs, quant_epochs=args.quant_epochs,
                           quant_lr=args.quant_lr, conv_bits=args.conv_bits,
                           fc_bits=args.fc_bits, bits=bits, init=args.init,
                           gap_bits_conv=args.gap_bits_conv, gap_bits_fc=args.gap_bits_fc,
                           prune_method=args.prune_method,
                           echo=lambda line: print(line, flush=True))
    if args.save_prefix:
        save_checkpoint(args.save_prefix, 0, *unpack(args.output))
    if args.report_json:
        update_results(args.report_json, {args.report_name: report})
    return report


def _explicit_sparsity(args):
    return parse_layer_values(args.sparsity, _fraction, '--sparsity')


def replay_options(args, rounds, bits):
    """The explicit deep-compress options that redo a search's choice (same file bytes)."""
    def num(v):
        return repr(float(v)) if isinstance(v, float) else str(v)
    opts = ['--val-split', num(args.val_split),
            '--sparsity-rounds', ';'.join(','.join('%s=%s' % (l, num(s)) for l, s in
                                                   sorted(r.items())) for r in rounds),
            '--bits', ','.join('%s=%d' % kv for kv in sorted(bits.items())),
            '--prune-epochs', str(args.prune_epochs), '--quant-epochs', str(args.quant_epochs),
            '--lr', num(args.lr), '--lr-schedule', args.lr_schedule,
            '--optimizer', args.optimizer, '--mom', num(args.mom), '--wd', num(args.wd),
            '--batch-size', str(args.batch_size), '--jitter', str(args.jitter),
            '--seed', str(args.seed), '--init', args.init,
            '--gap-bits-conv', str(args.gap_bits_conv), '--gap-bits-fc', str(args.gap_bits_fc)]
    if args.quant_lr is not None:
        opts += ['--quant-lr', num(args.quant_lr)]
    for option, value in (('--data', args.data_dir), ('--data-format', args.data_format),
                          ('--num-examples', args.num_examples),
                          ('--num-test-examples', args.num_test_examples)):
        if value is not None:
            opts += [option, str(value)]
    if args.data_shape is not None:
        opts += ['--data-shape', ','.join(str(d) for d in args.data_shape)]
    return opts


def _compress_chosen(args, symbol, arg_params, aux_params, bits, rounds):
    """The budget search (or the replay of one): choices on the validation split, the file,
    the test error measured once at the end, the recipe sidecar."""
    echo = lambda line: print(line, flush=True)   # noqa: E731
    train, val = train_and_validation(args)
    if val is None:
        raise ValueError('--max-error-increase / --target-ratio / --sparsity-rounds choose on '
                         'the validation split: give --val-split > 0 (not 0)')
    kw = dict(epochs=args.prune_epochs, quant_epochs=args.quant_epochs,
              quant_lr=args.quant_lr)
    if rounds is not None:
        blob, _, _ = auto.replay(args, symbol, arg_params, aux_params, train, val, rounds,
                                 bits, **kw)
        result = {'rounds': rounds, 'bits': bits, 'validation_error': None, 'log': [],
                  'validation_error_base': None, 'validation_examples': len(val[1])}
        mode = 'replay'
    else:
        result = auto.search(args, symbol, arg_params, aux_params, train, val,
                             max_error_increase=args.max_error_increase,
                             target_ratio=args.target_ratio,
                             fixed_sparsity=_explicit_sparsity(args), fixed_bits=bits,
                             max_rounds=args.budget_rounds, round_budget=args.round_budget,
                             curve_examples=args.curve_examples, echo=echo, **kw)
        blob = result['blob']
        mode = 'max_error_increase' if args.max_error_increase is not None else 'target_ratio'
    with atomic_path(args.output) as tmp:
        with open(tmp, 'wb') as f:
            f.write(blob)
    sym2, arg2, aux2 = unpack(args.output)
    info = container_info(blob)
    fp32 = 4 * (sum(v.size for v in arg_params.values()) +
                sum(v.size for v in aux_params.values()))
    test = data_split(args, 'test')
    test_base = classification_error(symbol, arg_params, aux_params, *test)
    test_error = classification_error(sym2, arg2, aux2, *test)
    val_error = classification_error(sym2, arg2, aux2, *val)
    val_base = classification_error(symbol, arg_params, aux_params, *val)
    sparsity = {l.name: 1.0 - float((arg2[l.weight].asnumpy() != 0).mean())
                for l in find_layers(sym2) if l.weight in arg2}
    weight_layer = {l.weight: l.name for l in find_layers(sym2)}
    chosen_bits = {weight_layer[w]: int(m['bits']) for w, m in info['layers'].items()}
    options = replay_options(args, result['rounds'], chosen_bits)
    report = {
        'mode': mode, 'input': args.prefix, 'epoch': args.epoch, 'output': args.output,
        'max_error_increase_points': None if args.max_error_increase is None
        else 100 * args.max_error_increase,
        'target_ratio': args.target_ratio,
        'validation_examples': len(val[1]), 'validation_error_base': val_base,
        'validation_error_promised': val_error,
        'validation_error_increase_points': 100 * (val_error - val_base),
        'budget_met_on_validation': None if args.max_error_increase is None
        else bool(val_error <= val_base + args.max_error_increase + 1e-12),
        'test_error_base': test_base, 'test_error': test_error,
        'test_error_increase_points': 100 * (test_error - test_base),
        'file_bytes': info['total_bytes'], 'graph_bytes': info['graph_bytes'],
        'param_bytes': info['param_bytes'], 'fp32_bytes': fp32,
        'ratio': fp32 / float(info['param_bytes']),
        'ratio_with_graph': fp32 / float(info['total_bytes']),
        'sparsity': sparsity, 'bits': chosen_bits, 'rounds': result['rounds'],
        'search_log': result['log'], 'seconds': result.get('seconds'),
        'sha256': sha256_file(args.output), 'options': options,
        'replay': 'mxcompress deep-compress %s --epoch %d --output %s %s' % (
            shlex.quote(args.prefix), args.epoch, shlex.quote(args.output),
            ' '.join(shlex.quote(o) for o in options)),
        'note': 'choices made on the validation split only; the test set was read once, '
                'after the file was written'}
    if mode != 'replay':
        with atomic_path(args.output + '.recipe.json') as tmp:
            with open(tmp, 'w') as f:
                json.dump(report, f, indent=2, sort_keys=True)
                f.write('\n')
        report['recipe_file'] = args.output + '.recipe.json'
    echo('validation error %.2f%% -> %.2f%% (%+.2f points%s) on %d held-out images' % (
        100 * val_base, 100 * val_error, 100 * (val_error - val_base),
        '' if args.max_error_increase is None else ', budget %.2f'
        % (100 * args.max_error_increase), len(val[1])))
    echo('test error %.2f%% -> %.2f%%  file %d bytes (graph %d)  params %d bytes  ratio %.1fx'
         % (100 * test_base, 100 * test_error, info['total_bytes'], info['graph_bytes'],
            info['param_bytes'], report['ratio']))
    if mode != 'replay':
        echo('recipe: %s' % report['recipe_file'])
    if args.save_prefix:
        save_checkpoint(args.save_prefix, 0, sym2, arg2, aux2)
    if args.report_json:
        update_results(args.report_json, {args.report_name: report})
    return report
