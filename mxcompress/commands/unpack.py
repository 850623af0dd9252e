"""``mxcompress unpack``: restore a standard checkpoint from an ``.mxc`` file."""
from ..checkpoint import save_checkpoint
from ..deep_compression.container import unpack


def add_parser(sub):
    parser = sub.add_parser(
        'unpack', help='restore a standard checkpoint from an .mxc file',
        description='Verify every section checksum of an .mxc file and write '
        'PREFIX-symbol.json + PREFIX-NNNN.params whose weights equal the stored (quantised) '
        'weights exactly.')
    parser.add_argument('file', help='the .mxc file')
    parser.add_argument('--output', required=True, metavar='PREFIX',
                        help='checkpoint prefix to write')
    parser.add_argument('--epoch', type=int, default=0, help='epoch number of the params file')
    parser.set_defaults(func=run)


def run(args):
    symbol, arg_params, aux_params = unpack(args.file)
    save_checkpoint(args.output, args.epoch, symbol, arg_params, aux_params)
    print('%s -> %s-symbol.json, %s-%04d.params' % (args.file, args.output, args.output,
                                                     args.epoch))
