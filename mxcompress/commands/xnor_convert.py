"""``mxcompress xnor-convert``: binary training checkpoint -> xnor_conv2d inference checkpoint."""
import json

import numpy as np

from ..binary import convert as binary_convert
from ..checkpoint import load_checkpoint, save_checkpoint
from ..fit import add_data_args, data_split
from ..measure import predict
from . import check_outputs, checkpoint_files


def add_parser(sub):
    parser = sub.add_parser(
        'xnor-convert', help='replace binary convolutions by the C++ xnor_conv2d op',
        description='Convert a binary-network training checkpoint (symbols/bnn.py contract: '
        '__binary_weight__, __binary_input__, __latent_weight__ node attributes) into an '
        'inference checkpoint where every binary convolution with a binary input runs on '
        'the xnor-popcount op with 1-bit packed weights and a per-channel alpha. The fused '
        'forms are picked automatically: the straight-through sign in front of the op is '
        'dropped (the op binarises its input) and an inference BatchNorm before it is folded '
        'into per-channel thresholds of that binarisation (input_threshold), so no float '
        'BatchNorm or sign pass runs between binary layers; a residual add that is the only '
        'reader of a converted conv is done in the op\'s epilogue (residual); a converted conv '
        'whose only reader is the next binary conv (through that folded BatchNorm) emits its '
        'binarisation as packed bits the next one reads (output_threshold, packed_input), so '
        'no float activation passes between them. The result '
        'loads after `import mxcompress.ops; mxcompress.ops.load()`.')
    parser.add_argument('prefix', help='training checkpoint prefix (PREFIX-symbol.json)')
    parser.add_argument('output', help='prefix of the converted checkpoint')
    parser.add_argument('--epoch', type=int, default=0, help='epoch of the input checkpoint')
    parser.add_argument('--check', action='store_true',
                        help='compare predictions with the training graph on the test set of '
                             'the data options (MNIST by default); fails if any differs')
    parser.add_argument('--no-fold-bn', dest='fold_bn', action='store_false',
                        help='keep the BatchNorm before each binary convolution as a float op '
                             '(default: folded into the op\'s input thresholds)')
    parser.add_argument('--no-fuse-add', dest='fuse_add', action='store_false',
                        help='keep residual adds as separate float ops (default: added in the '
                             'epilogue of the binary convolution that feeds them)')
    parser.add_argument('--no-packed-output', dest='packed_output', action='store_false',
                        help='keep float activations between consecutive binary convolutions '
                             '(default: a conv read only by the next binary conv emits bit-packed '
                             'activations, binarised with that conv\'s folded thresholds)')
    add_data_args(parser)
    parser.set_defaults(func=run)


def run(args):
    check_outputs(args, prefixes=['output'], inputs=checkpoint_files(args.prefix, args.epoch))
    symbol, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch)
    conv_sym, conv_args, conv_aux, layers = binary_convert.convert(symbol, arg_params,
                                                                   aux_params,
                                                                   fold_bn=args.fold_bn,
                                                                   fuse_add=args.fuse_add,
                                                                   packed_output=args.packed_output)
    if not layers:
        raise ValueError('%s: no binary convolution with a binary input (__binary_input__ = '
                         'true) to convert' % args.prefix)
    report = binary_convert.size_report(layers, arg_params, conv_args)
    report['batchnorms_folded'] = sorted({r['batchnorm_folded'] for r in layers
                                          if r['batchnorm_folded']})
    report['residual_adds_fused'] = sorted(r['residual_add_fused'] for r in layers
                                           if r['residual_add_fused'])
    report['packed_outputs'] = {r['layer']: r['packed_output'] for r in layers
                                if r['packed_output']}
    if args.check:
        images, labels = data_split(args, 'test')
        want = predict(symbol, arg_params, aux_params, images).argmax(1)
        got = predict(conv_sym, conv_args, conv_aux, images).argmax(1)
        report['predictions_equal_count'] = int(np.sum(want == got))
        report['test_images'] = int(len(labels))
        report['test_error_xnor'] = float(np.mean(got != labels))
        if report['predictions_equal_count'] != len(labels):
            raise ValueError('converted model disagrees with the training graph on %d of %d '
                             'test images; nothing written'
                             % (len(labels) - report['predictions_equal_count'], len(labels)))
    save_checkpoint(args.output, 0, conv_sym, conv_args, conv_aux)
    print(json.dumps(report, indent=2))
