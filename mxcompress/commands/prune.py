"""``mxcompress prune`` / ``train/train_prune.py``: prune a checkpoint, fine-tune, report.

Every input is validated before anything is trained or written: sparsity in [0, 1), known
layer names (the error lists the prunable ones), at least one filter left per layer, params
that fit the symbol. Outputs (``OUTPUT-symbol.json``, ``OUTPUT-0000.params`` + sha256,
``OUTPUT-report.md`` / ``.json``, optional sensitivity CSV / PNG) are written atomically at the end.
"""
import argparse
import logging

from ..argtypes import non_negative_int, positive_int
from ..checkpoint import CheckpointError, load_checkpoint, model_input_shape, save_checkpoint
from ..fit import (add_data_args, add_fit_args, data_split, fit, fit_options,
                   seed_everything, train_iterators, validation_data)
from ..measure import classification_error
from ..pruning.criteria import check_sparsity
from ..pruning.filters import plan_groups, thin_network
from ..pruning.finetune import compute_masks, finetune_options, prune_and_finetune
from ..pruning.masks import prunable_layers, resolve_layers
from ..pruning.regularization import l1_optimizer_params
from ..pruning.report import plan_markdown, pruning_report, report_markdown, write_report
from ..pruning.sensitivity import (DEFAULT_SWEEP, plot_sensitivity, sensitivity_sweep,
                          targets_from_sensitivity, write_sensitivity_csv)
from . import check_outputs, checkpoint_files, data_example_shape, script_main
from .layer_options import number_or_layer_values
from .deep_compress import budget_points

__all__ = ['add_prune_args', 'run_prune', 'main', 'PRUNE_METHODS']

PRUNE_METHODS = ('level', 'threshold', 'global', 'agp', 'filter', 'slim')

DESCRIPTION = '''Prune a checkpoint (PREFIX-symbol.json + PREFIX-NNNN.params) and fine-tune it on
MNIST (or --data) with mx.mod.Module.fit. Methods:
  level      per-layer magnitude pruning to --sparsity (one value or layer=value,...)
  threshold  Han et al.: prune |w| <= --quality x std(layer weights)
  global     one magnitude threshold across the chosen layers, --sparsity overall
  agp        Zhu & Gupta gradual pruning to --sparsity during the fine-tune epochs
  filter     Li et al.: remove the --sparsity fraction of each chosen channel group's filters
             with the smallest L1/L2 norm; the network becomes physically smaller (dense).
             Channels coupled by residual adds, depthwise convs and Concat are pruned together
             (one group: --sparsity NAME=VALUE names any conv of it); what cannot be followed
             (Reshape, transpose, ...) is left dense and reported. --dry-run prints the plan
  slim       network slimming: remove the --sparsity fraction of conv channels with the smallest
             BatchNorm |gamma| (train first with --l1-gamma and --regularize-epochs)
Weight pruning keeps pruned weights at exactly 0 during fine-tuning (fixed masks) and saves a
standard checkpoint with zeros and no mask ops. --steps N repeats prune -> fine-tune N times
(Han's iterative pruning). Writes OUTPUT-symbol.json, OUTPUT-0000.params and
OUTPUT-report.md/.json (per-layer shape, params, nonzeros, sparsity, MACs). The training options
below apply to fine-tuning and regularised training (--lr is the original training rate: the
regularised epochs use it, fine-tuning multiplies it by --lr-scale); --model-prefix and
--load-epoch are not used here.'''


def add_prune_args(parser):
    """Add the prune options (plus the data and fit options) to ``parser``."""
    parser.add_argument('prefix', help='input checkpoint prefix (PREFIX-symbol.json)')
    parser.add_argument('--epoch', type=int, default=0, help='input checkpoint epoch')
    parser.add_argument('--output', default=None,
                        help='output prefix: OUTPUT-symbol.json, OUTPUT-0000.params, '
                             'OUTPUT-report.md/.json (required unless --dry-run)')
    add_data_args(parser)
    add_fit_args(parser)  # its --num-epochs is replaced below (needs conflict_handler='resolve')
    group = parser.add_argument_group('Pruning')
    group.add_argument('--method', choices=PRUNE_METHODS, default='level',
                       help='pruning method (see above)')
    group.add_argument('--sparsity', default=None,
                       help='fraction in [0, 1) to prune: of weights (level, global, agp) or of '
                            'filters / channels (filter, slim); one number for every chosen '
                            'layer or layer=value,... per layer')
    group.add_argument('--quality', default=None,
                       help='threshold method: quality parameter q, prune |w| <= q * std(w) '
                            '(one number or layer=value,...)')
    group.add_argument('--layers', default=None,
                       help='comma-separated layer (op) names to prune; default: every '
                            'FullyConnected/Convolution layer (filter: every Convolution)')
    group.add_argument('--steps', type=int, default=1,
                       help='iterative pruning: prune -> fine-tune this many times with rising '
                            'targets (Han et al.); 1 = one shot')
    group.add_argument('--lr-scale', type=float, default=0.1,
                       help='fine-tune learning rate = --lr x this (Han: retrain at 1/10)')
    group.add_argument('--filter-norm', choices=('l1', 'l2'), default='l1',
                       help='filter method: rank filters by this norm (Li et al. use l1)')
    group.add_argument('--channel-multiple', type=positive_int, default=1, metavar='M',
                       help='filter / slim: round each thinned group\'s kept channels to the '
                            'nearest multiple of M (at least M), e.g. 8 or 16 so oneDNN\'s '
                            'blocked conv kernels stay full and the MAC saving shows in time; '
                            '1: no rounding')
    group.add_argument('--dry-run', action='store_true',
                       help='filter / slim: print the plan (channel groups, their members, '
                            'channels kept / removed, groups left dense and why, MACs before / '
                            'after) and write nothing')
    group.add_argument('--agp-frequency', type=int, default=50,
                       help='agp: update the masks every N batches')
    group.add_argument('--num-epochs', type=non_negative_int, default=0,
                       help='fine-tune epochs per pruning step (0: prune without fine-tuning; '
                            'agp needs >= 1)')
    reg = parser.add_argument_group('Sparsity regularisation (training before pruning)')
    reg.add_argument('--regularize-epochs', type=int, default=0,
                     help='train this many epochs with the L1 penalties below before pruning')
    reg.add_argument('--l1-weight', type=float, default=0.0,
                     help='L1 penalty on FullyConnected/Convolution weights (SparseSGD)')
    reg.add_argument('--l1-gamma', type=float, default=0.0,
                     help='L1 penalty on BatchNorm gamma (network slimming, Liu et al. 2017)')
    sens = parser.add_argument_group('Sensitivity analysis')
    sens.add_argument('--sensitivity', action='store_true',
                      help='before pruning, prune each layer alone over a sparsity sweep, write '
                           'OUTPUT-sensitivity.csv and .png')
    sens.add_argument('--tolerance', type=float, default=None,
                      help='with --sensitivity and no --sparsity: prune each layer to the largest '
                           'swept sparsity whose accuracy drop <= this fraction (0.002 = 0.2 pt)')
    sens.add_argument('--sensitivity-examples', type=positive_int, default=5000,
                      help='validation images for the sweep (the first N of the --val-split; '
                           'with --val-split 0 the last N training images)')
    sens.add_argument('--max-error-increase', type=budget_points, default=None, metavar='P',
                      help='level method, no --sparsity needed: choose each layer\'s sparsity '
                           'so that the validation error rises by at most P percentage points '
                           '(0..100): rounds of per-layer sensitivity on the validation split, '
                           'exact allocation, pruning and --num-epochs of fine-tuning, each '
                           'kept only within the budget (as deep-compress --max-error-increase)')
    parser.set_defaults(lr=0.02, lr_schedule='cosine', disp_batches=200)  # lr: the original
    # training rate; fine-tuning runs at --lr x --lr-scale
    return parser


def _validate(args, symbol, arg_params):
    """All checks that need no training; returns (layer names, per-layer values)."""
    names = [n.strip() for n in args.layers.split(',') if n.strip()] if args.layers else None
    if args.steps < 1:
        raise ValueError('--steps must be >= 1, got %d' % args.steps)
    if args.num_epochs < 0 or args.regularize_epochs < 0:
        raise ValueError('--num-epochs and --regularize-epochs must be >= 0')
    sparsity = number_or_layer_values(args.sparsity, '--sparsity')
    quality = number_or_layer_values(args.quality, '--quality')
    for value in (sparsity.values() if isinstance(sparsity, dict) else
                  [sparsity] if sparsity is not None else []):
        check_sparsity(value, '--sparsity')
    if args.method in ('filter', 'slim'):
        convs = [l.name for l in prunable_layers(symbol) if l.op == 'Convolution']
        if not convs:
            raise ValueError('--method %s removes convolution filters, but %s has no Convolution '
                             'layer (use --method level or global for FullyConnected layers)'
                             % (args.method, args.prefix))
        if names is not None:
            bad = [n for n in names if n not in convs]
            if bad:
                raise ValueError('unknown conv layer(s) %s for --method %s; Convolution layers '
                                 'of this model: %s' % (', '.join(bad), args.method,
                                                        ', '.join(convs) or 'none'))
    else:
        resolve_layers(symbol, names)
    if isinstance(sparsity, dict):
        resolve_layers(symbol, list(sparsity))
    if args.method in ('filter', 'slim') and sparsity is None:
        raise ValueError('--method %s needs --sparsity (the fraction of filters / channels to '
                         'remove; the sensitivity sweep gives weight sparsities)' % args.method)
    if args.method == 'threshold' and quality is None:
        raise ValueError('--method threshold needs --quality')
    if getattr(args, 'max_error_increase', None) is not None:
        if args.method != 'level' or args.num_epochs < 1:
            raise ValueError('--max-error-increase chooses per-layer sparsities for --method '
                             'level with --num-epochs >= 1 (fine-tuning per round)')
    elif args.method != 'threshold' and sparsity is None and not (args.sensitivity and
                                                                  args.tolerance is not None):
        raise ValueError('--method %s needs --sparsity (or --sensitivity with --tolerance)'
                         % args.method)
    if args.method == 'agp' and args.num_epochs < 1:
        raise ValueError('--method agp prunes while training: --num-epochs must be >= 1')
    return names, sparsity, quality


def _plan(args, symbol, arg_params, names, sparsity, data_shape=None):
    """The :class:`~mxcompress.pruning.filters.FilterPlan` of the filter / slim methods, in
    channel groups (raises before anything is written)."""
    if args.method == 'slim':
        if isinstance(sparsity, dict):
            raise ValueError('--method slim takes one --sparsity (a global channel fraction)')
        return plan_groups(symbol, arg_params, float(sparsity), 'bn', layers=names,
                           data_shape=data_shape, channel_multiple=args.channel_multiple)
    if isinstance(sparsity, dict):
        remove = {n: float(v) for n, v in sparsity.items()}
    else:
        remove = float(sparsity)
    return plan_groups(symbol, arg_params, remove, args.filter_norm, layers=names,
                       data_shape=data_shape, channel_multiple=args.channel_multiple)


def run_prune(args, logger=None):
    """Run the prune command; returns ``(symbol, arg_params, aux_params, record)``."""
    logger = logger or logging.getLogger('mxcompress')
    if not args.output and not getattr(args, 'dry_run', False):
        raise ValueError('--output is required (only --dry-run writes nothing)')
    check_outputs(args, prefixes=['output'], inputs=checkpoint_files(args.prefix, args.epoch))
    example = data_example_shape(args, needs_data=_needs_data(args))
    symbol, arg_params, aux_params = load_checkpoint(
        args.prefix, args.epoch, None if example is None else {'data': (1,) + example})
    try:
        data_shape = model_input_shape(symbol, arg_params, aux_params, example, args.prefix)
    except CheckpointError:
        example = data_example_shape(args)   # the checkpoint cannot tell: the default data's
        if example is None:
            raise
        # checks every param against that shape (an error names the one that does not fit)
        symbol, arg_params, aux_params = load_checkpoint(args.prefix, args.epoch,
                                                         {'data': (1,) + example})
        data_shape = (1,) + example
    names, sparsity, quality = _validate(args, symbol, arg_params)
    seed_everything(args.seed)
    record = {'input': args.prefix, 'method': args.method,
              'before': pruning_report(symbol, arg_params, aux_params, data_shape)}
    if getattr(args, 'dry_run', False):
        if args.method not in ('filter', 'slim'):
            raise ValueError('--dry-run prints the plan of --method filter or slim')
        record['plan'] = _plan(args, symbol, arg_params, names, sparsity, data_shape).to_dict()
        record['dry_run'] = True
        return symbol, arg_params, aux_params, record
    if args.method in ('filter', 'slim'):
        if args.regularize_epochs == 0 and sparsity is not None:
            _plan(args, symbol, arg_params, names, sparsity, data_shape)  # fail early
    elif sparsity is not None or quality is not None:  # fail early on bad targets
        compute_masks(symbol, arg_params, 'level' if args.method == 'agp' else args.method,
                      sparsity=sparsity, quality=quality, layers=names)
    train_iter = test_iter = None
    if args.num_epochs or args.regularize_epochs:
        _, train_iter, test_iter = train_iterators(args)  # sharded per worker if dist
    if args.regularize_epochs:
        reg = finetune_options(args, 1.0)
        reg.num_epochs = args.regularize_epochs
        reg.optimizer, opt = l1_optimizer_params(symbol, args, args.l1_weight, args.l1_gamma)
        module = fit(reg, symbol, train_iter, test_iter, arg_params=arg_params,
                     aux_params=aux_params, optimizer_params=opt, logger=logger)
        arg_params, aux_params = module.get_params()
    if args.sensitivity:
        held_out = validation_data(args)
        if held_out is None:   # --val-split 0: the last training images, as before the split
            logger.warning('--val-split 0: the sensitivity sweep uses the last %d training '
                           'images, which the model has seen', args.sensitivity_examples)
            images, labels = data_split(fit_options(args, num_examples=None), 'train')
            held_out = images[-args.sensitivity_examples:], labels[-args.sensitivity_examples:]
        images, labels = (a[:args.sensitivity_examples] for a in held_out)
        rows = sensitivity_sweep(symbol, arg_params, aux_params, images, labels, DEFAULT_SWEEP,
                                 None if args.method in ('filter', 'slim') else names)
        record['sensitivity_csv'] = write_sensitivity_csv(rows, args.output + '-sensitivity.csv')
        record['sensitivity_png'] = plot_sensitivity(rows, args.output + '-sensitivity.png',
                                                     max_drop=args.tolerance)
        if sparsity is None and args.tolerance is not None:
            sparsity = targets_from_sensitivity(rows, args.tolerance)
            logger.info('per-layer targets from sensitivity: %s', sparsity)
            record['targets_from_sensitivity'] = sparsity
    if getattr(args, 'max_error_increase', None) is not None:
        symbol, arg_params, aux_params = _prune_to_budget(args, symbol, arg_params, aux_params,
                                                          sparsity, record, logger)
    elif args.method in ('filter', 'slim'):
        keep = _plan(args, symbol, arg_params, names, sparsity, data_shape)
        symbol, arg_params, aux_params = thin_network(symbol, arg_params, aux_params, keep,
                                                      data_shape)
        record['kept_filters'] = {k: [int(i) for i in v] for k, v in keep.layers().items()}
        record['plan'] = keep.to_dict()
        if args.num_epochs:
            module = fit(finetune_options(args, args.lr_scale), symbol, train_iter, test_iter,
                         arg_params=arg_params, aux_params=aux_params, logger=logger,
                         allow_missing=False)
            arg_params, aux_params = module.get_params()
    else:
        symbol, arg_params, aux_params = prune_and_finetune(
            symbol, arg_params, aux_params, args, train_iter, test_iter, method=args.method,
            sparsity=sparsity, quality=quality, layers=names, steps=args.steps,
            lr_scale=args.lr_scale, agp_frequency=args.agp_frequency, logger=logger)
    record['test_error'] = _test_error(args, symbol, arg_params, aux_params, data_shape)
    record['evaluated_on'] = 'test set' if record['test_error'] is not None \
        else 'nothing: no data set that fits the model (rewrite only)'
    record['after'] = pruning_report(symbol, arg_params, aux_params, data_shape)
    save_checkpoint(args.output, 0, symbol, arg_params, aux_params)
    write_report(record['after'], args.output, title='%s (%s)' % (args.output, args.method))
    return symbol, arg_params, aux_params, record


def _prune_to_budget(args, symbol, arg_params, aux_params, sparsity, record, logger):
    """``--max-error-increase``: the pruning rounds of
    :func:`mxcompress.deep_compression.auto.search` (explicit ``--sparsity LAYER=S`` kept)."""
    import copy
    from ..deep_compression.auto import search
    from ..fit import train_and_validation
    train, val = train_and_validation(args)
    if val is None:
        raise ValueError('--max-error-increase chooses on the validation split: give '
                         '--val-split > 0')
    fixed = sparsity if isinstance(sparsity, dict) else {}
    options = copy.copy(args)   # the size estimates assume deep-compress's default widths
    for name, value in (('conv_bits', 8), ('fc_bits', 5), ('gap_bits_conv', 8),
                        ('gap_bits_fc', 5), ('init', 'linear')):
        setattr(options, name, getattr(options, name, value))
    result = search(options, symbol, arg_params, aux_params, train, val,
                    max_error_increase=args.max_error_increase, fixed_sparsity=fixed,
                    epochs=args.num_epochs, lr_scale=args.lr_scale, prune_only=True,
                    logger=logger)
    record['budget'] = {'max_error_increase_points': 100 * args.max_error_increase,
                        'sparsity': result['sparsity'], 'rounds': result['rounds'],
                        'validation_error_base': result['validation_error_base'],
                        'validation_error': result['validation_error'],
                        'validation_examples': result['validation_examples'],
                        'log': result['log']}
    logger.info('sparsities chosen for a %.2f-point budget: %s (validation error %.2f%% -> '
                '%.2f%%)', 100 * args.max_error_increase, result['sparsity'],
                100 * result['validation_error_base'], 100 * result['validation_error'])
    return symbol, result['params'], result['aux']


def _needs_data(args):
    """Whether the prune run trains or measures on data (not a rewrite only)."""
    return bool(args.num_epochs or args.regularize_epochs or args.sensitivity or
                getattr(args, 'max_error_increase', None) is not None)


def _test_error(args, symbol, arg_params, aux_params, data_shape):
    """Test error on the data set of ``args``; None for a rewrite-only run (``--num-epochs
    0``) when there is no data set to read, or when no ``--data`` was given and the default
    one (MNIST) does not fit the model's input channels ``data_shape[1]``."""
    try:
        images, labels = data_split(args, 'test')
    except ValueError:   # MNISTError / DataError: no data set there
        if _needs_data(args):
            raise
        return None
    if args.data_dir is None and not _needs_data(args) and len(data_shape) == 4 and \
            images.shape[1] != data_shape[1]:
        return None
    return classification_error(symbol, arg_params, aux_params, images, labels)


def print_summary(record):
    """Print the report table and the headline numbers."""
    print(report_markdown(record['after']))
    before, after = record['before'], record['after']
    error = record['test_error']
    print('weights nonzero: %.2f%% (was %.2f%%); MACs %d -> %d dense, %d remaining; '
          'test error %s' % (100 * after['weight_density'], 100 * before['weight_density'],
                             before['dense_macs'], after['dense_macs'], after['remaining_macs'],
                             'not measured (no data set)' if error is None
                             else '%.2f%%' % (100 * error)))


def add_parser(sub):
    parser = sub.add_parser('prune', help='prune a checkpoint (magnitude, Han threshold, global, '
                            'AGP, filter removal, slimming) and fine-tune it',
                            description=DESCRIPTION, conflict_handler='resolve',
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prune_args(parser)
    parser.set_defaults(func=run)


def run(args):
    *_, record = run_prune(args)
    if record.get('dry_run'):
        print(plan_markdown(record['plan']))
        print('dry run: nothing written')
        return
    print_summary(record)


def main(argv=None):
    """Entry point of ``train/train_prune.py``."""
    parser = argparse.ArgumentParser(description=DESCRIPTION, conflict_handler='resolve',
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prune_args(parser)
    return script_main(parser, run, argv)
