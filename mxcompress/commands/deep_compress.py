"""``mxcompress deep-compress``: prune -> quantise -> Huffman -> ``.mxc`` (Han et al. 2016)."""
import argparse

from ..checkpoint import load_checkpoint, save_checkpoint
from ..deep_compression.container import unpack
from ..deep_compression.pipeline import deep_compress
from ..argtypes import non_negative_int, positive_int
from ..fit import add_data_args, add_fit_args, data_split, seed_everything, train_iterators
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
