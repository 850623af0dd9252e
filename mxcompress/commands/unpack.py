"""``mxcompress unpack``: restore a standard checkpoint from an ``.mxc`` file.

The whole file is decoded and verified before anything is written: a bad file leaves no
output behind.
"""
import os

from ..checkpoint import params_path, save_checkpoint
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


def check_output(prefix, epoch, source):
    """Refuse an output prefix that names a directory or whose files would replace ``source``.

    Raises
    ------
    ValueError
    """
    if not prefix or prefix.endswith(('/', os.sep)) or os.path.isdir(prefix):
        raise ValueError('--output %r names a directory; give a checkpoint prefix such as %s'
                         % (prefix, os.path.join(prefix or '.', 'model')))
    for path in (prefix + '-symbol.json', params_path(prefix, epoch),
                 params_path(prefix, epoch) + '.sha256',
                 '%s-%04d.manifest.json' % (prefix, epoch)):
        if os.path.realpath(path) == os.path.realpath(source) or (
                os.path.exists(path) and os.path.exists(source) and os.path.samefile(path,
                                                                                     source)):
            raise ValueError('--output %s would overwrite the input %s' % (prefix, source))


def run(args):
    check_output(args.output, args.epoch, args.file)
    symbol, arg_params, aux_params = unpack(args.file)
    save_checkpoint(args.output, args.epoch, symbol, arg_params, aux_params)
    print('%s -> %s-symbol.json, %s-%04d.params' % (args.file, args.output, args.output,
                                                     args.epoch))
