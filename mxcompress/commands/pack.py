"""``mxcompress pack``: write a checkpoint as a compressed ``.mxc`` file."""
import os
import re
import sys

from ..checkpoint import load_checkpoint, params_path
from ..deep_compression.container import pack
from ..fit import add_data_args
from ..graph import find_layers
from .deep_compress import budget_points
from .layer_options import add_bits_args, bits_overrides, check_layer_names


def add_parser(sub):
    parser = sub.add_parser(
        'pack', help='write a checkpoint as a compressed .mxc file',
        description='Store a checkpoint in the Deep Compression format: per weight layer the '
        'nonzeros as relative indices (gaps, filler zeros on overflow) and codebook indices, '
        'Huffman coded; other params as float32; the graph as JSON; CRC32 per section. '
        'Layers with at most 2^bits - 1 distinct nonzero values are stored losslessly; others '
        'are k-means quantised here (lossy, reported) unless --quantize never.')
    parser.add_argument('prefix', help='checkpoint prefix (PREFIX-symbol.json)')
    parser.add_argument('output', help='the .mxc file to write (atomically)')
    parser.add_argument('--epoch', type=int, default=0, help='checkpoint epoch')
    add_bits_args(parser)
    parser.add_argument('--no-huffman', action='store_true',
                        help='bit-pack index and gap streams instead of Huffman coding them')
    parser.add_argument('--storage', choices=('codebook', 'float'), default='codebook',
                        help='codebook: indices + codebook; float: sparse float32 values '
                             '(lossless, pruning only)')
    parser.add_argument('--quantize', choices=('auto', 'never'), default='auto',
                        help='what to do with a layer that has more distinct values than its '
                             'codebook holds: k-means it (auto) or stop with an error (never)')
    parser.add_argument('--dense-float16', action='store_true',
                        help='store biases, BatchNorm and other dense params as float16 '
                             '(restored as float32; lossy, relative error <= 2^-11): 2 bytes '
                             'a value instead of 4')
    parser.add_argument('--max-error-increase', type=budget_points, default=None, metavar='P',
                        help='choose each layer\'s codebook width (the smallest file) so that '
                             'the validation error of the packed model rises by at most P '
                             'percentage points (0..100), judged on the --val-split of --data; '
                             'layers named by --bits keep their width')
    add_data_args(parser)
    parser.set_defaults(func=run)


def budget_bits(args, symbol, arg_params, aux_params, fixed):
    """``--max-error-increase``: per-layer widths by exact allocation over each layer's
    measured (bits -> validation error increase, real bytes) curve, no fine-tuning."""
    from ..deep_compression.auto import bits_options, joint_bits
    from ..measure import classification_error
    from ..deep_compression.budget import allocate, error_count
    from ..fit import train_and_validation
    _, val = train_and_validation(args)
    if val is None:
        raise ValueError('--max-error-increase judges on the validation split: give '
                         '--val-split > 0')
    layers = [l for l in find_layers(symbol) if l.weight in arg_params]
    options = bits_options(symbol, arg_params, aux_params, val[0][:3000], val[1][:3000], layers,
                           len(val[1]), args.gap_bits_conv, args.gap_bits_fc, fixed=fixed)
    chosen = allocate(options, error_count(args.max_error_increase, len(val[1])))
    bits = {name: o.value for name, o in chosen.choice.items()}
    base = classification_error(symbol, arg_params, aux_params, *val)
    bits, error = joint_bits(symbol, arg_params, aux_params, val[0], val[1], layers, options,
                             bits, base + args.max_error_increase)
    print('widths for a %.2f-point budget: %s (validation error %.2f%% -> %.2f%% on %d images)'
          % (100 * args.max_error_increase, ', '.join('%s=%d' % kv for kv in sorted(bits.items())),
             100 * base, 100 * error, len(val[1])), file=sys.stderr)
    return bits


def _same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output, prefix, epoch):
    """Refuse an output path that is a directory or a file of the input checkpoint.

    The checkpoint's files are ``PREFIX-symbol.json``, ``PREFIX-NNNN.params``, ``.states``,
    ``.manifest.json`` and their sidecars (``.sha256``, ...) -- of any epoch, so that packing
    never overwrites a checkpoint, whatever path (link, ``..``) names it.

    Raises
    ------
    ValueError
    """
    if os.path.isdir(output) or output.endswith(('/', os.sep)):
        raise ValueError('output %r is a directory; give the .mxc file to write, e.g. %s'
                         % (output, os.path.join(output, os.path.basename(prefix) + '.mxc')))
    inputs = [prefix + '-symbol.json', params_path(prefix, epoch)]
    inputs += [params_path(prefix, epoch) + '.sha256']
    for path in inputs:
        if _same_file(output, path):
            raise ValueError('output %s is the input checkpoint file %s; give another name, '
                             'e.g. %s.mxc' % (output, path, prefix))
    directory, base = os.path.split(os.path.realpath(os.path.abspath(prefix)))
    out_dir, out_name = os.path.split(os.path.realpath(os.path.abspath(output)))
    pattern = (r'%s-(symbol\.json|\d{4,}\.(params|states|manifest\.json))(\..*)?$'
               % re.escape(base))
    if out_dir == directory and re.match(pattern, out_name):
        raise ValueError('output %s would overwrite a file of the checkpoint %s; give another '
                         'name, e.g. %s.mxc' % (output, prefix, prefix))


def run(args):
    check_output(args.output, args.prefix, args.epoch)
    symbol, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch)
    bits = check_layer_names(bits_overrides(args.bits), [l.name for l in find_layers(symbol)],
                             '--bits')
    if args.max_error_increase is not None:
        if args.quantize == 'never':
            raise ValueError('--max-error-increase chooses k-means (lossy) widths within the '
                             'budget; --quantize never keeps every layer exact: give one')
        bits = budget_bits(args, symbol, arg_params, aux_params, bits)
    info, lossy = pack(args.output, symbol, arg_params, aux_params, conv_bits=args.conv_bits,
                       fc_bits=args.fc_bits, bits=bits,
                       gap_bits_conv=args.gap_bits_conv, gap_bits_fc=args.gap_bits_fc,
                       huffman=not args.no_huffman, storage=args.storage,
                       quantize=args.quantize, dense_float16=args.dense_float16)
    if lossy or args.dense_float16:
        lossy = lossy + (['dense params (float16)'] if args.dense_float16 else [])
    if lossy:
        print('note: k-means quantised (lossy) layers: %s' % ', '.join(lossy), file=sys.stderr)
    fp32 = 4 * (sum(v.size for v in arg_params.values()) + sum(v.size for v in
                                                               aux_params.values()))
    print('%s: %d bytes (graph %d, params %d); fp32 params %d bytes: %.1fx'
          % (args.output, info['total_bytes'], info['graph_bytes'], info['param_bytes'], fp32,
             fp32 / info['param_bytes']))
