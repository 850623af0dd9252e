"""The benchmark recipes and targets, in one place.

Every committed model of ``benchmarks/models`` was made by one recipe here; every target a
benchmark checks is here. ``scripts/bench_*.py`` import these tables and ``scripts/run_main.sh``
asks for its deep-compress options with::

    python -m mxcompress.reporting.recipes deep-compress lenet300    # one option per line

A target is what the benchmark must reach; the published figure it comes from is in
:mod:`.references` (``published_error``).
"""
import argparse
import sys

from .references import PUBLISHED

__all__ = ['published_error', 'LENET300_ERROR', 'LENET5_ERROR', 'BASELINE', 'PRUNING', 'DEEP_COMPRESSION', 'BUDGET', 'LOWRANK',
           'LOWRANK_MAX_ERROR_INCREASE', 'BINARY_COMMON', 'BINARY', 'XNOR_LAYERS', 'XNOR_TARGETS',
           'DISTILLATION', 'ZOO_SCALE_TARGETS', 'deep_compress_options']


def published_error(method, network):
    """The published test error (fraction) of ``method`` on ``network`` in :data:`PUBLISHED`."""
    for entry in PUBLISHED:
        if entry['method'] == method and entry['network'] == network:
            return entry['error']
    raise KeyError('no published %s result for %s' % (method, network))


#: the errors Han et al. (2015) report for the fp32 LeNets: the error target of every
#: compressed LeNet below
LENET300_ERROR = published_error('baseline', 'LeNet-300-100')
LENET5_ERROR = published_error('baseline', 'LeNet-5')

#: fp32 baselines (``bench_baseline.py``): SGD momentum 0.9, cosine decay, +-2 px jitter
BASELINE = {
    'lenet300': {'recipe': dict(num_epochs=40, batch_size=64, lr=0.05, wd=1e-4, jitter=2),
                 'target_error': LENET300_ERROR},
    'lenet5': {'recipe': dict(num_epochs=30, batch_size=64, lr=0.02, wd=5e-4, jitter=2),
               'target_error': LENET5_ERROR},
    # gluoncv model-zoo networks on 1 x 28 x 28 inputs (symbols/gluoncv_backbones.py), trained
    # with the validation split held out so thinning choices never see the test set
    'resnet20': {'network': 'cifar_resnet20_v1',
                 'recipe': dict(num_epochs=5, batch_size=128, lr=0.1, wd=1e-4, jitter=2,
                                initializer='msra'),
                 'target_error': 0.0060},
    'mobilenetv2': {'network': 'mobilenetv2_0.5',
                    'recipe': dict(num_epochs=8, batch_size=128, lr=0.1, wd=4e-5, jitter=2,
                                   initializer='msra'),
                    'target_error': None},
}

#: pruning (``bench_pruning.py``); fine-tuning uses the baseline's data recipe.
PRUNING = {
    # Han et al. (2015) Table 1/2 kept ~8 % of the weights; per-layer targets slightly tighter
    'lenet300-pruned': {'network': 'lenet300', 'method': 'level',
                        'sparsity': {'lenet300_fc1': 0.93, 'lenet300_fc2': 0.91,
                                     'lenet300_fc3': 0.75},
                        'target_error': LENET300_ERROR, 'target_density': 0.08},
    'lenet5-pruned': {'network': 'lenet5', 'method': 'agp',
                      'sparsity': {'lenet5_conv1': 0.4, 'lenet5_conv2': 0.88, 'lenet5_fc1': 0.93,
                                   'lenet5_fc2': 0.85},
                      'target_error': LENET5_ERROR, 'target_density': 0.08},
    # Li et al. (2017) filter pruning: filters removed per conv layer (of 20 and 50)
    'lenet5-thinned': {'network': 'lenet5', 'filters': {'lenet5_conv1': 8, 'lenet5_conv2': 22},
                       'targets': {'mac_reduction': 0.5, 'error_increase_points': 0.10,
                                   'speedup_b64': 1.5}},
    # dependency-group thinning of the gluoncv baselines (L1 filter norm, kept channels
    # rounded to multiples of 8 so oneDNN's blocked kernels stay full). Candidates: one
    # fraction for every group ('all'), or one for the groups whose channels meet at a residual
    # add ('shared') and one for the groups of a single conv ('private'); every candidate
    # meets the MAC target, the validation split chooses between them after fine-tuning.
    'resnet20-thinned': {'network': 'resnet20', 'channel_multiple': 8,
                         'candidates': ({'all': 0.3}, {'shared': 0.25, 'private': 0.5}),
                         'fine_tune': dict(num_epochs=3, lr=0.02),
                         'targets': {'mac_reduction': 0.5, 'error_increase_points': 0.15,
                                     'speedup_b64': 1.6}},
    # attempt 1 (all 0.3 / private 0.5, 4 epochs at lr 0.02) missed the target on the
    # validation split (+0.78 / +0.51 points); attempt 2 (private 0.4, 8 epochs at lr 0.05)
    # met it on validation (1.35 % vs 1.42 %) and missed on the test set by one image (+0.21
    # points). Attempt 3, these candidates: a longer fine-tune (the baseline itself trained only
    # 8 epochs), with 40 % or 37 % of the private channels removed (44.9 % / 40.2 % fewer
    # MACs). Rule fixed before the run: its choice replaces attempt 2's model only if its
    # validation error is not above attempt 2's 1.35 %.
    'mobilenetv2-thinned': {'network': 'mobilenetv2', 'channel_multiple': 8,
                            'candidates': ({'shared': 0.0, 'private': 0.4,
                                            'fine_tune': {'num_epochs': 16}},
                                           {'shared': 0.0, 'private': 0.37,
                                            'fine_tune': {'num_epochs': 16}}),
                            'fine_tune': dict(num_epochs=8, lr=0.05),
                            'targets': {'mac_reduction': 0.4, 'error_increase_points': 0.20}},
}

#: Deep Compression (``bench_deep_compression.py`` and ``run_main.sh``): deep-compress options
#: (fine-tuning: SGD momentum 0.9, +-2 px jitter as the baseline) and targets (Han et al. 2016).
#: ``--val-split 0``: the committed files were made on all 60,000 training images, before the
#: validation split existed; the main job reproduces them byte for byte.
DEEP_COMPRESSION = {
    'lenet300': {
        'options': ['--val-split', '0',
                    '--sparsity', 'lenet300_fc1=0.96,lenet300_fc2=0.9,lenet300_fc3=0.7',
                    '--prune-steps', '4', '--prune-epochs', '3', '--quant-epochs', '3',
                    '--lr', '0.005', '--quant-lr', '0.002', '--jitter', '2',
                    '--gap-bits-fc', 'auto'],
        'target': {'ratio': 40.0, 'error': LENET300_ERROR, 'aim_ratio': 60.0},
        'published': 'Han et al. 2016: 1.64% -> 1.58%, 40x (P 12x / P+Q 32x / P+Q+H 40x)'},
    'lenet5': {
        'options': ['--val-split', '0', '--sparsity',
                    'lenet5_conv1=0.5,lenet5_conv2=0.88,lenet5_fc1=0.975,lenet5_fc2=0.85',
                    '--prune-steps', '3', '--prune-epochs', '2', '--quant-epochs', '2',
                    '--lr', '0.005', '--quant-lr', '0.002', '--jitter', '2',
                    '--gap-bits-fc', 'auto', '--gap-bits-conv', 'auto'],
        'target': {'ratio': 39.0, 'error': LENET5_ERROR, 'aim_ratio': 100.0},
        'published': 'Han et al. 2016: 0.80% -> 0.74%, 39x (P 12x / P+Q 33x / P+Q+H 39x)'},
}

#: Deep Compression to an accuracy budget (``bench_budget.py``): ``deep-compress
#: --max-error-increase P`` of a baseline trained with the validation split held out (the
#: committed ``lenet300`` / ``lenet5`` saw all 60,000 training images, so their validation
#: error is a training error); every per-layer choice is made on that split. The baselines
#: are trained with the recipes of :data:`BASELINE` (same epochs), less the split. Commit
#: rule: the committed ``NAME-auto.mxc`` is the run at the budget the target leaves, P =
#: (strictest target error - baseline validation error), rounded down to 0.05 points and at
#: least 0.05 (decided from the baseline's validation error alone, before any run; the test
#: set plays no part).
BUDGET = {
    'lenet300': {
        'baseline': 'lenet300-heldout',
        'train': ['--network', 'lenet300', '--num-epochs', '40', '--lr', '0.05',
                  '--lr-schedule', 'cosine', '--jitter', '2', '--wd', '1e-4',
                  '--batch-size', '64', '--val-split', '0.1'],
        'options': ['--gap-bits-fc', 'auto', '--prune-epochs', '2', '--quant-epochs', '2',
                    '--lr', '0.005', '--quant-lr', '0.002', '--jitter', '2',
                    '--budget-rounds', '8'],
        # issue 18: >= 80x at <= 1.64 %; and, against the TF-MOT peer (19,481 bytes at
        # 1.36 %), a file (graph included) <= 13,000 bytes at <= 1.36 %
        'target': {'ratio': 80.0, 'error': LENET300_ERROR, 'aim_ratio': 100.0,
                   'file_bytes': 13000, 'file_bytes_error': 0.0136}},
    'lenet5': {
        'baseline': 'lenet5-heldout',
        'train': ['--network', 'lenet5', '--num-epochs', '30', '--lr', '0.02',
                  '--lr-schedule', 'cosine', '--jitter', '2', '--wd', '5e-4',
                  '--batch-size', '64', '--val-split', '0.1'],
        # fine-tuning per round: 3 epochs, cosine from 0.02 (chosen on the validation split:
        # conv2 85 % / fc1 95 % pruned at once, 0.58 % before -> 0.93 % after 2 epochs at a
        # constant 0.005, 0.75 % at cosine 0.02, 0.65 % after 3 epochs at cosine 0.02)
        'options': ['--gap-bits-fc', 'auto', '--gap-bits-conv', 'auto', '--prune-epochs', '3',
                    '--quant-epochs', '1', '--lr', '0.02', '--lr-schedule', 'cosine',
                    '--quant-lr', '0.002', '--jitter', '2', '--budget-rounds', '8',
                    '--curve-examples', '1500'],
        'target': {'ratio': 100.0, 'error': LENET5_ERROR, 'aim_ratio': 150.0}},
    # the second data set (made by bench_budget.py): test increase <= budget + 0.3 point
    'distorted': {
        'train_epochs': 10,
        'train_options': ['--network', 'lenet300', '--lr', '0.05', '--lr-schedule', 'cosine',
                          '--wd', '1e-4', '--batch-size', '64', '--val-split', '0.1'],
        'options': ['--gap-bits-fc', 'auto', '--prune-epochs', '2', '--quant-epochs', '2',
                    '--lr', '0.005', '--quant-lr', '0.002', '--jitter', '0',
                    '--budget-rounds', '6'],
        'tolerance_points': 0.3},
}

#: low rank (``bench_lowrank.py``): model -> how it is made; ``recipe``: fine-tune options.
LOWRANK = {
    'lenet300-svd': dict(
        base='lenet300', layers=['lenet300_fc1', 'lenet300_fc2'], schemes={},
        compression=5.3, cost='params',
        recipe=dict(num_epochs=20, batch_size=64, lr=0.02, wd=1e-4, jitter=2),
        # the ranks and fine-tune settings: the candidate with the lowest validation error
        candidates=[dict(compression=5.3, recipe=dict(lr=0.01, num_epochs=20)),
                    dict(compression=5.3, recipe=dict(lr=0.01, num_epochs=30)),
                    dict(ranks={'lenet300_fc1': 40, 'lenet300_fc2': 20},
                         recipe=dict(lr=0.01, num_epochs=15)),
                    dict(ranks={'lenet300_fc1': 40, 'lenet300_fc2': 20},
                         recipe=dict(lr=0.02, num_epochs=20))],
        tuning_history=('before the validation split existed, these 4 candidates were compared '
                        'on the test set (ranks 38/22 lr 0.01 x 20 epochs 0.97%, x 30 epochs '
                        '0.94%; ranks 40/20 lr 0.01 x 15 epochs 0.93%, lr 0.02 x 20 epochs '
                        '0.92%); the committed model is now the one the validation split '
                        'chooses'),
        sweep=[('lenet300_fc1', 'svd', [5, 10, 20, 40, 80, 160, 300])],
        target={'fc_params_reduction_min': 5.0}),
    'lenet5-lowrank': dict(
        base='lenet5', layers=['lenet5_conv1', 'lenet5_conv2'],
        schemes={'lenet5_conv1': 'channel', 'lenet5_conv2': 'spatial'},
        compression=2.2, cost='macs', sweep_examples=10000,
        recipe=dict(num_epochs=10, batch_size=64, lr=0.005, wd=5e-4, jitter=2),
        prune_layers=['lenet5_fc1'],   # low rank cuts conv FLOPs, pruning the FC size
        sweep=[('lenet5_conv2', 'spatial', [2, 5, 10, 20, 40, 100]),
               ('lenet5_conv2', 'channel', [2, 5, 10, 20, 50])],
        target={'conv_macs_reduction_min': 2.0}),
}
#: the most a low-rank model may lose against its baseline: 0.10 percentage points
LOWRANK_MAX_ERROR_INCREASE = 0.0010

#: binary networks (``bench_binary.py``): options of every model -- Adam, cosine decay from
#: 0.005, batch 200, +-2 px jitter (few epochs: the 2 cores are shared by several jobs)
BINARY_COMMON = ['--optimizer', 'adam', '--lr', '0.005', '--lr-schedule', 'cosine',
                 '--batch-size', '200', '--jitter', '2', '--disp-batches', '50', '--no-val']
#: model -> (train-bnn options, target test error or None, where the target comes from)
BINARY = {
    'binaryconnect-mlp': (['--network', 'binaryconnect-mlp', '--widths', '1024,1024,1024',
                           '--binarization', 'deterministic', '--num-epochs', '12'],
                          published_error('BinaryConnect (det.)', 'MLP'),
                          'Courbariaux et al. 2015, deterministic BinaryConnect MLP'),
    'bwn-lenet5': (['--network', 'bwn-lenet5', '--widths', '20,50,500', '--num-epochs', '5'],
                   0.0090, 'BWN LeNet-5 (Rastegari et al. 2016 method), project target'),
    'xnor-lenet5': (['--network', 'xnor-lenet5', '--widths', '20,50,500', '--num-epochs', '4'],
                    0.0150, 'XNOR LeNet-5 (Rastegari et al. 2016 method), project target'),
    'bnn-resnet': (['--network', 'bnn-resnet', '--num-bits', '1', '--num-layers', '8',
                    '--widths', '32,64,128', '--num-epochs', '12'],
                   0.0100, 'BNN residual unit (Courbariaux et al. 2016 binarisation), binary '
                           'activations, project target'),
    'bnn-resnet-2bit': (['--network', 'bnn-resnet', '--num-bits', '2', '--num-layers', '8',
                         '--widths', '16,32,64', '--num-epochs', '2'], None,
                        'recorded only (2-bit activations)'),
    'bnn-resnet-4bit': (['--network', 'bnn-resnet', '--num-bits', '4', '--num-layers', '8',
                         '--widths', '16,32,64', '--num-epochs', '2'], None,
                        'recorded only (4-bit activations)'),
}

#: the xnor-popcount op benchmark (``bench_xnor.py``): 3x3 C -> C layers (channels, pixels)
#: and the speed-up over oneDNN fp32 each must reach (None: recorded only)
XNOR_LAYERS = [(64, 56), (128, 28), (256, 14), (512, 7)]
XNOR_TARGETS = {64: 4.0, 128: None, 256: 7.0, 512: 7.0}   # AVX-512: aim 8x at 256 / 512

#: the scale table (``bench_zoo_scale.py``, issue 15): ResNet-50 (25.6 M params) packs in at
#: most 60 s, unpacks in at most 10 s (2-core machine), and pack's peak resident memory is at
#: most 4x the fp32 params; checked at every sparsity packed (upper bounds)
ZOO_SCALE_TARGETS = {'resnet50_v1': {'pack_wall_s': 60.0, 'unpack_wall_s': 10.0,
                                     'pack_peak_over_fp32': 4.0}}

#: distillation (``bench_distillation.py``): Hinton et al. (2015)'s MNIST experiment
DISTILLATION = {
    #: fit options per run (SGD + momentum, cosine decay)
    'recipes': {
        'kd-teacher': dict(num_epochs=80, batch_size=128, lr=0.1, wd=1e-4, jitter=2),
        'kd-student-alone': dict(num_epochs=15, batch_size=128, lr=0.1, wd=0.0, jitter=0),
        'kd-student-distilled': dict(num_epochs=16, batch_size=128, lr=0.1, wd=0.0, jitter=2),
        'light': dict(batch_size=128, lr=0.05, wd=1e-4, jitter=0),
    },
    'target_error': 0.0080,
    'target_gap_closed': 0.75,
    #: errors of 10,000 that Hinton et al. report
    'paper_errors': {'kd-teacher': 67, 'kd-student-alone': 146, 'kd-student-distilled': 74},
    'light_students': ('shallow-cnn', 'mobilenetv2_0.25', 'shufflenet_v2'),
}


def deep_compress_options(network):
    """The deep-compress options of ``network``'s committed ``.mxc`` recipe.

    Raises
    ------
    ValueError
        ``network`` has no recipe (the message lists those that do).
    """
    if network not in DEEP_COMPRESSION:
        raise ValueError('network must be one of %s, got %r'
                         % (', '.join(sorted(DEEP_COMPRESSION)), network))
    return list(DEEP_COMPRESSION[network]['options'])


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m mxcompress.reporting.recipes',
        description='Print the options of a committed benchmark recipe, one per line.')
    parser.add_argument('kind', choices=['deep-compress'], help='which recipe table')
    parser.add_argument('network', help='e.g. lenet300, lenet5')
    args = parser.parse_args(argv)
    try:
        options = deep_compress_options(args.network)
    except ValueError as err:
        parser.exit(2, 'error: %s\n' % err)
    print('\n'.join(options))
    return 0


if __name__ == '__main__':
    sys.exit(main())
