"""``mxcompress export``: a checkpoint as a Gluon-loadable inference graph."""
import json

from ..checkpoint import load_checkpoint, save_checkpoint
from ..deploy import deploy_graph, deploy_params, max_relative_difference
from . import check_outputs, checkpoint_files
from .fold_bn import TOLERANCE, fold_checked


def add_parser(sub):
    parser = sub.add_parser(
        'export', help='write an inference graph that gluon.SymbolBlock.imports loads',
        description='Write OUTPUT-symbol.json + OUTPUT-0000.params. With --deploy every loss '
        'head is replaced by its inference output under the same name (SoftmaxOutput -> '
        'softmax, LogisticRegressionOutput -> sigmoid, Linear/MAE regression and SVMOutput -> '
        'identity; a MakeLoss reading a label is dropped), so no label input is left, and the '
        'params are only those the graph reads: gluon.SymbolBlock.imports(OUTPUT-symbol.json, '
        "['data'], OUTPUT-0000.params) loads it. --fold-bn also folds BatchNorm as fold-bn "
        'does. The first output is compared with the input checkpoint on random inputs.')
    parser.add_argument('prefix', help='checkpoint prefix (PREFIX-symbol.json)')
    parser.add_argument('output', help='prefix of the exported checkpoint (epoch 0)')
    parser.add_argument('--deploy', action='store_true',
                        help='replace loss heads by their inference outputs, drop labels')
    parser.add_argument('--fold-bn', action='store_true',
                        help='fold BatchNorm into the Convolution / FullyConnected before it')
    parser.add_argument('--epoch', type=int, default=0, help='epoch of the input checkpoint')
    parser.set_defaults(func=run)


def run(args):
    check_outputs(args, prefixes=['output'], inputs=checkpoint_files(args.prefix, args.epoch))
    original = load_checkpoint(args.prefix, args.epoch)
    symbol, arg_params, aux_params = original
    report = {}
    if args.fold_bn:
        (symbol, arg_params, aux_params), report = fold_checked(args.prefix, *original)
    if args.deploy:
        symbol = deploy_graph(symbol)
        arg_params, aux_params = deploy_params(symbol, arg_params, aux_params)
    difference = None
    if symbol.list_outputs()[0] == original[0].list_outputs()[0]:
        difference = max_relative_difference(original, (symbol, arg_params, aux_params))
        if difference is not None and difference > TOLERANCE:
            raise ValueError('%s: the exported graph differs from the original by %.3g '
                             '(relative) on random inputs; nothing written'
                             % (args.prefix, difference))
    save_checkpoint(args.output, 0, symbol, arg_params, aux_params)
    report.update({'output': args.output, 'outputs': symbol.list_outputs(),
                   'inputs': [a for a in symbol.list_arguments() if a not in arg_params],
                   'max_relative_difference': difference})
    print(json.dumps(report, indent=2))
