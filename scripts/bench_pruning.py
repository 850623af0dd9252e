#!/usr/bin/env python
"""Pruning benchmark: prune the baseline LeNets, fine-tune, measure; write pruning.json.

Tasks (``--tasks``, default all but timing):

- ``lenet300-pruned``: Han's iterative magnitude pruning of LeNet-300-100 (per-layer level
  targets, ``--steps`` prune -> fine-tune rounds at 1/10 of the training rate).
  Target: <= 8 % of weights nonzero (biases excluded), test error <= 1.64 %.
- ``lenet5-pruned``: LeNet-5 with Zhu & Gupta's gradual (AGP) schedule.
  Target: <= 8 % nonzero, test error <= 0.80 %.
- ``lenet5-thinned``: Li et al. filter pruning with physical removal (L1 norm) of LeNet-5's two
  conv layers, then fine-tuning. Target: >= 50 % fewer conv+fc MACs, error <= baseline + 0.10
  points, >= 1.5x measured speed-up at batch 64 (task ``timing``).
- ``resnet20-thinned`` / ``mobilenetv2-thinned``: the gluoncv ``cifar_resnet20_v1`` /
  ``mobilenetv2_0.5`` baselines (``bench_baseline.py``, validation split held out) thinned in
  dependency channel groups (residual adds, depthwise convs), kept channels rounded to
  multiples of 8; each candidate of the recipe is fine-tuned and the validation split picks
  one; the test set is read once, for the baseline and the chosen model. Targets: ResNet-20
  >= 50 % fewer MACs at <= +0.15 points and >= 1.6x at batch 64; MobileNetV2 >= 40 % fewer
  MACs at <= +0.20 points.
- ``zoo-packed``: the thinned gluoncv models written as Deep Compression files
  (``benchmarks/models/NAME.mxc``, Han's 8-bit conv / 5-bit fc codebooks, Huffman coded),
  unpacked again and measured on the test set: thinned + packed end to end.
- ``sensitivity``: LeNet-5 per-layer sensitivity sweep (CSV + PNG under benchmarks/pruning/).
- ``timing``: batch 1 and 64 inference time of each baseline vs its thinned (and pruned)
  versions, interleaved in one process (run it under ``flock /tmp/mxcompress-timing.lock``).

Fine-tuning uses the data recipe that trained the baselines (+-2 px jitter, SGD momentum 0.9,
batch 64, cosine decay); recipes and targets are those of ``mxcompress/reporting/recipes.py``. Models are written as
standard checkpoints ``benchmarks/models/NAME`` at epoch 0.

Example::

    OMP_NUM_THREADS=1 python scripts/bench_pruning.py --tasks lenet300-pruned
    python scripts/bench_pruning.py --tasks resnet20-thinned mobilenetv2-thinned
    OMP_NUM_THREADS=1 flock /tmp/mxcompress-timing.lock python scripts/bench_pruning.py --tasks timing
"""
import argparse
import os
import sys
import time

from mxcompress import data as mnist_data
from mxcompress.analysis import model_summary
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.fit import (data_provenance, fit, fit_options, seed_everything, train_iterators,
                            validation_data)
from mxcompress.logs import setup_logging
from mxcompress.measure import TIMING_LOCK, classification_error, machine_info, time_inference
from mxcompress.pruning import (analyse, plan_filters, plan_groups, plot_sensitivity,
                                prune_and_finetune,
                                report_markdown, sensitivity_sweep, targets_from_sensitivity,
                                thin_network, write_sensitivity_csv)
from mxcompress.pruning.finetune import finetune_options
from mxcompress.reporting.recipes import BASELINE, PRUNING
from mxcompress.reporting.results import read_results, update_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_SHAPE = {'data': (1, 1, 28, 28)}
TASKS = ('lenet300-pruned', 'lenet5-pruned', 'lenet5-thinned', 'sensitivity', 'resnet20-thinned',
         'mobilenetv2-thinned', 'zoo-packed', 'timing')
#: baseline -> the models the timing task compares with it
TIMED = {'lenet5': ('lenet5-thinned', 'lenet5-pruned'), 'resnet20': ('resnet20-thinned',),
         'mobilenetv2': ('mobilenetv2-thinned',)}

LENET5_FILTERS = PRUNING['lenet5-thinned']['filters']


def recipe_options(network, data_dir, **overrides):
    """Fine-tuning options: the baseline's batch, rate, decay and jitter, cosine schedule."""
    recipe = BASELINE[network]['recipe']
    return fit_options(data_dir=data_dir, lr_schedule='cosine', disp_batches=300,
                       **dict({k: recipe[k] for k in ('batch_size', 'lr', 'wd', 'jitter')},
                              **overrides))


def train_iterator(args):
    """The training iterator of ``args``, seeded (the test error is measured once, at the end)."""
    seed_everything(args.seed)
    return train_iterators(args)[1]


def test_error(model, data_dir):
    images, labels = mnist_data.load_mnist('test', data_dir)
    return classification_error(*model, images, labels)


def summary_fields(model):
    s = model_summary(model[0], model[1], model[2])
    return {'weights': s['weights'], 'weight_nonzeros': s['weight_nonzeros'],
            'weight_density': s['weight_density'], 'params': s['params'],
            'dense_macs': s['dense_macs'], 'remaining_macs': s['remaining_macs'],
            'layers': s['layers']}


def save_model(name, model, models_dir, reports_dir, title):
    """Save the checkpoint and its Markdown report; returns (model path, params file bytes)."""
    prefix = os.path.join(models_dir, name)
    save_checkpoint(prefix, 0, *model)
    summary = model_summary(*model)
    os.makedirs(reports_dir, exist_ok=True)
    with open(os.path.join(reports_dir, name + '-report.md'), 'w') as f:
        f.write(report_markdown(summary, title))
    return 'benchmarks/models/%s' % name, os.path.getsize(prefix + '-0000.params')


def run_weight_pruning(name, network, cli, baseline_dir, data_dir):
    baseline = load_checkpoint(os.path.join(baseline_dir, network), 0, DATA_SHAPE)
    base_error = test_error(baseline, data_dir)
    recipe = PRUNING[name]
    method, targets = recipe['method'], recipe['sparsity']
    if method == 'level':
        steps, epochs, lr_scale = cli.steps, cli.epochs_lenet300, cli.lr_scale
    else:
        steps, epochs, lr_scale = 1, cli.epochs_lenet5, cli.agp_lr_scale
    args = recipe_options(network, data_dir, num_epochs=epochs, num_examples=cli.num_examples)
    train_iter = train_iterator(args)
    start = time.time()
    model = prune_and_finetune(*baseline, args, train_iter, None, method=method,
                               sparsity=targets, steps=steps, lr_scale=lr_scale,
                               agp_frequency=50)
    wall = time.time() - start
    error = test_error(model, data_dir)
    fields = summary_fields(model)
    target_error, target_density = recipe['target_error'], recipe['target_density']
    record = dict(fields, base_network=network, test_error=error,
                  test_errors_of_10000=int(round(error * 10000)),
                  baseline_error=base_error, target_error=target_error,
                  target_density=target_density,
                  target_met=bool(error <= target_error
                                  and fields['weight_density'] <= target_density),
                  compression_ratio=fields['weights'] / float(fields['weight_nonzeros']),
                  method='pruning-' + method, schedule=('Han iterative, %d steps of %d epochs' %
                                           (steps, args.num_epochs)) if method == 'level'
                  else 'AGP (Zhu & Gupta) over %d epochs, masks every 50 batches, final '
                       'sparsity reached at 3/4 of training' % args.num_epochs,
                  layer_targets=targets, fine_tune_lr=args.lr * lr_scale,
                  fine_tune_epochs=args.num_epochs * steps,
                  data_recipe=dict(BASELINE[network]['recipe'], lr_schedule='cosine',
                                   momentum=args.mom),
                  wall_seconds=wall, **data_provenance(args))
    record['model'], record['size_bytes'] = save_model(
        name, model, cli.models_dir, cli.reports_dir, '%s (%s)' % (name, record['schedule']))
    record['size_note'] = ('size_bytes is the standard dense .params file (zeros stored); the '
                           'sparsity pays off in the packed container of the quantisation '
                           'family')
    return record


def run_thinning(name, cli, baseline_dir, data_dir):
    baseline = load_checkpoint(os.path.join(baseline_dir, 'lenet5'), 0, DATA_SHAPE)
    base_error = test_error(baseline, data_dir)
    targets = PRUNING['lenet5-thinned']['targets']
    keep = plan_filters(baseline[0], baseline[1], LENET5_FILTERS, norm='l1')
    thinned = thin_network(*baseline, keep)
    error_before_ft = test_error(thinned, data_dir)
    args = recipe_options('lenet5', data_dir, num_epochs=cli.epochs_thinned,
                          num_examples=cli.num_examples)
    train_iter = train_iterator(args)
    start = time.time()
    module = fit(finetune_options(args, cli.thin_lr_scale), thinned[0], train_iter, None,
                 arg_params=thinned[1], aux_params=thinned[2], allow_missing=False)
    wall = time.time() - start
    model = (thinned[0],) + module.get_params()
    error = test_error(model, data_dir)
    before, after = summary_fields(baseline), summary_fields(model)
    reduction = 1.0 - after['dense_macs'] / float(before['dense_macs'])
    record = dict(after, base_network='lenet5', method='pruning-filter',
                  test_error=error, test_errors_of_10000=int(round(error * 10000)),
                  test_error_before_finetune=error_before_ft, baseline_error=base_error,
                  error_increase_points=100 * (error - base_error),
                  baseline_macs=before['dense_macs'], baseline_params=before['params'],
                  mac_reduction=reduction, flop_ratio=before['dense_macs'] / after['dense_macs'],
                  filters_removed=LENET5_FILTERS, filter_norm='l1',
                  kept_filters={k: [int(i) for i in v] for k, v in keep.items()},
                  fine_tune_lr=args.lr * cli.thin_lr_scale, fine_tune_epochs=args.num_epochs,
                  data_recipe=dict(BASELINE['lenet5']['recipe'], lr_schedule='cosine',
                                   momentum=args.mom),
                  wall_seconds=wall, targets=targets,
                  speedup_b64=None, target_met=False,  # both set by the timing task
                  accuracy_and_flops_targets_met=bool(
                      reduction >= targets['mac_reduction'] and
                      100 * (error - base_error) <= targets['error_increase_points'] + 1e-10),
                  **data_provenance(args))
    record['model'], record['size_bytes'] = save_model(
        name, model, cli.models_dir, cli.reports_dir,
        '%s (filters removed: %s)' % (name, LENET5_FILTERS))
    return record


def candidate_sparsity(analysis, candidate):
    """A recipe candidate as :func:`plan_groups` sparsity: ``{'all': f}`` -> ``f``;
    ``{'shared': a, 'private': b}`` -> ``a`` for the groups several convs write (their outputs
    meet at a residual add), ``b`` for the groups of one conv. A candidate's ``'fine_tune'``
    entry (its own fine-tuning options, e.g. ``{'num_epochs': 16}``) is not sparsity."""
    if 'all' in candidate:
        return candidate['all']
    return {g.producers[0]: candidate['shared' if len(g.producers) > 1 else 'private']
            for g in analysis.prunable}


def run_zoo_thinning(name, cli, baseline_dir, data_dir):
    """Thin a gluoncv baseline in dependency groups; the validation split picks the candidate."""
    recipe = PRUNING[name]
    network = recipe['network']
    baseline = load_checkpoint(os.path.join(baseline_dir, network), 0, DATA_SHAPE)
    def candidate_options(candidate):   # the recipe's fine-tuning, or the candidate's own
        return recipe_options(network, data_dir, num_examples=cli.num_examples,
                              **dict(recipe['fine_tune'], **candidate.get('fine_tune', {})))
    val_images, val_labels = validation_data(candidate_options({}))
    base_val = classification_error(*baseline, val_images, val_labels)
    analysis = analyse(baseline[0], DATA_SHAPE['data'])
    tried, best = [], None
    start = time.time()
    for candidate in recipe['candidates']:
        args = candidate_options(candidate)
        plan = plan_groups(baseline[0], baseline[1], candidate_sparsity(analysis, candidate),
                           'l1', analysis=analysis, channel_multiple=recipe['channel_multiple'])
        thinned = thin_network(*baseline, plan)
        before_ft = classification_error(*thinned, val_images, val_labels)
        module = fit(args, thinned[0], train_iterator(args), None, arg_params=thinned[1],
                     aux_params=thinned[2], allow_missing=False)
        model = (thinned[0],) + module.get_params()
        row = {'candidate': candidate, 'kept': {r['group']: r['kept'] for r in plan.groups},
               'mac_reduction': 1.0 - plan.macs_after / float(plan.macs_before),
               'validation_error_before_finetune': before_ft,
               'fine_tune_epochs': args.num_epochs, 'fine_tune_lr': args.lr,
               'validation_error': classification_error(*model, val_images, val_labels)}
        print('%s candidate %s: %.1f %% fewer MACs, validation error %.2f %% (baseline %.2f '
              '%%)' % (name, candidate, 100 * row['mac_reduction'],
                       100 * row['validation_error'], 100 * base_val), flush=True)
        tried.append(row)
        key = (row['validation_error'], -row['mac_reduction'])
        if best is None or key < best[0]:
            best = (key, row, model, plan, args)
    wall = time.time() - start
    _, chosen, model, plan, args = best
    base_error, error = test_error(baseline, data_dir), test_error(model, data_dir)
    before, after = summary_fields(baseline), summary_fields(model)
    reduction = 1.0 - after['dense_macs'] / float(before['dense_macs'])
    targets = recipe['targets']
    ok = bool(reduction >= targets['mac_reduction'] and
              100 * (error - base_error) <= targets['error_increase_points'] + 1e-10)
    record = dict(after, base_network=network, method='pruning-filter-groups',
                  test_error=error, test_errors_of_10000=int(round(error * 10000)),
                  baseline_error=base_error, error_increase_points=100 * (error - base_error),
                  baseline_validation_error=base_val,
                  validation_error=chosen['validation_error'],
                  baseline_macs=before['dense_macs'], baseline_params=before['params'],
                  mac_reduction=reduction, flop_ratio=before['dense_macs'] / after['dense_macs'],
                  filter_norm='l1', channel_multiple=recipe['channel_multiple'],
                  chosen=chosen['candidate'], candidates=tried, plan=plan.to_dict(),
                  fine_tune_lr=args.lr, fine_tune_epochs=args.num_epochs,
                  data_recipe=dict(BASELINE[network]['recipe'], lr_schedule='cosine',
                                   momentum=args.mom),
                  wall_seconds=wall, targets=targets, accuracy_and_flops_targets_met=ok,
                  speedup_b64=None, target_met=ok if 'speedup_b64' not in targets else False,
                  **data_provenance(args, 'the thinning candidate (group fractions)'))
    record['model'], record['size_bytes'] = save_model(
        name, model, cli.models_dir, cli.reports_dir,
        '%s (dependency groups, chosen %s)' % (name, chosen['candidate']))
    return record


def run_zoo_packing(cli, baseline_dir, data_dir):
    """Pack each thinned gluoncv model (8-bit conv / 5-bit fc codebooks), unpack it and read
    its test error: the file against the dense fp32 baseline."""
    from mxcompress.deep_compression.container import pack, unpack
    record, thinned = {}, read_results(cli.output)
    for name in ('resnet20-thinned', 'mobilenetv2-thinned'):
        prefix = os.path.join(cli.models_dir, name)
        if not os.path.exists(prefix + '-symbol.json') or name not in thinned:
            continue
        base = PRUNING[name]['network']
        baseline = load_checkpoint(os.path.join(baseline_dir, base), 0, DATA_SHAPE)
        path = prefix + '.mxc'
        start = time.time()
        info, lossy = pack(path, *load_checkpoint(prefix, 0, DATA_SHAPE), conv_bits=8,
                           fc_bits=5)
        error = test_error(unpack(path), data_dir)
        base_error = thinned[name]['baseline_error']   # measured by the thinning task
        fp32 = 4 * sum(v.size for params in baseline[1:] for v in params.values())
        record[name] = {
            'base_network': base, 'method': 'filter groups + 8/5-bit codebooks (.mxc file)',
            'test_error': error, 'size_bytes': os.path.getsize(path),
            'file': os.path.relpath(path, ROOT), 'file_bytes': os.path.getsize(path),
            'graph_bytes': info['graph_bytes'], 'baseline': 'benchmarks/models/%s' % base,
            'baseline_fp32_params_bytes': fp32, 'ratio_vs_baseline_fp32': fp32 /
            float(os.path.getsize(path)), 'lossy_layers': len(lossy),
            'test_error_after_unpack': error, 'baseline_test_error': base_error,
            'error_increase_points': 100 * (error - base_error), 'seconds': time.time() - start,
            'bits': '8-bit conv / 5-bit fc codebooks (Han et al.), Huffman coded',
            'selection': 'none', 'choices_made_on': 'nothing chosen: fixed widths'}
        print('%s: %d bytes, %.1fx the fp32 baseline, test error %.2f %% (baseline %.2f %%)'
              % (path, record[name]['file_bytes'], record[name]['ratio_vs_baseline_fp32'],
                 100 * error, 100 * base_error), flush=True)
    return record


def run_sensitivity(cli, baseline_dir, data_dir):
    model = load_checkpoint(os.path.join(baseline_dir, 'lenet5'), 0, DATA_SHAPE)
    images, labels = mnist_data.load_mnist('train', data_dir)
    images, labels = images[-5000:], labels[-5000:]
    rows = sensitivity_sweep(*model, images, labels)
    os.makedirs(cli.reports_dir, exist_ok=True)
    csv_path = write_sensitivity_csv(rows, os.path.join(cli.reports_dir,
                                                        'lenet5-sensitivity.csv'))
    png = plot_sensitivity(rows, os.path.join(cli.reports_dir, 'lenet5-sensitivity.png'),
                           title='LeNet-5: accuracy with one layer pruned', max_drop=0.002)
    return {'held_out': 'last 5000 MNIST training images', 'max_drop': 0.002,
            'selection': 'training',
            'choices_made_on': 'targets_for_max_drop judged on the last 5000 training images '
                               '(the baseline trained on all 60,000; the test set is not read)',
            'targets_for_max_drop': targets_from_sensitivity(rows, 0.002),
            'csv': os.path.relpath(csv_path, ROOT), 'png': os.path.relpath(png, ROOT),
            'rows': rows}


def run_timing(cli, baseline_dir):
    """Batch 1 and 64 medians of every baseline of :data:`TIMED` against its compressed
    versions (each family interleaved in one process)."""
    record = {'repeats': cli.repeats, 'warmup': 10,
              'threads': os.environ.get('OMP_NUM_THREADS'),
              'unrounded': 'NAME-unrounded: the plan of NAME with its kept channel counts not '
                           'rounded to a multiple of 8 (not fine-tuned: timing only)',
              'note': 'median of interleaved runs in one process; the machine was shared with '
                      'other jobs (2 cores), under the timing lock'}
    for base, others in TIMED.items():
        if not os.path.exists(os.path.join(baseline_dir, base + '-symbol.json')):
            continue
        models = {base: load_checkpoint(os.path.join(baseline_dir, base), 0, DATA_SHAPE)}
        for name in others:
            prefix = os.path.join(cli.models_dir, name)
            if os.path.exists(prefix + '-symbol.json'):
                models[name] = load_checkpoint(prefix, 0, DATA_SHAPE)
            chosen = read_results(cli.output).get(name, {}).get('chosen')
            if name in models and chosen is not None:   # the same plan, counts not rounded
                analysis = analyse(models[base][0], DATA_SHAPE['data'])
                plan = plan_groups(models[base][0], models[base][1],
                                   candidate_sparsity(analysis, chosen), 'l1',
                                   analysis=analysis)
                models[name + '-unrounded'] = thin_network(*models[base], plan)
        for batch in (1, 64):
            times = time_inference(models, batch, repeats=cli.repeats, warmup=10)
            for name in models:
                if name != base:
                    times[name]['speedup_vs_' + base] = (times[base]['median_ms'] /
                                                         times[name]['median_ms'])
            record.setdefault('batch%d' % batch, {}).update(times)
    return record


def record_speedups(cli, timing, command):
    """Copy the measured speed-ups into the thinned models' records (and their targets)."""
    results = read_results(cli.output)
    for base, others in TIMED.items():
        for name in others:
            if name not in results or name not in timing.get('batch64', {}):
                continue
            thinned = dict(results[name],
                           speedup_b64=timing['batch64'][name]['speedup_vs_' + base],
                           speedup_b1=timing['batch1'][name]['speedup_vs_' + base],
                           timing_command=command)
            if 'accuracy_and_flops_targets_met' in thinned:
                need = thinned['targets'].get('speedup_b64')
                thinned['target_met'] = bool(thinned['accuracy_and_flops_targets_met'] and
                                             (need is None or thinned['speedup_b64'] >= need))
            thinned.pop('measured_at', None)
            update_results(cli.output, {name: thinned})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tasks', nargs='+', choices=TASKS, default=list(TASKS[:4]))
    parser.add_argument('--baseline-dir', default=os.path.join(ROOT, 'benchmarks', 'models'),
                        help='directory of the baseline checkpoints lenet300 / lenet5')
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('--models-dir', default=os.path.join(ROOT, 'benchmarks', 'models'))
    parser.add_argument('--reports-dir', default=os.path.join(ROOT, 'benchmarks', 'pruning'))
    parser.add_argument('--output', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                         'pruning.json'))
    parser.add_argument('--steps', type=int, default=4, help='lenet300: Han iterative steps')
    parser.add_argument('--epochs-lenet300', type=int, default=4,
                        help='lenet300: fine-tune epochs per step')
    parser.add_argument('--epochs-lenet5', type=int, default=10, help='lenet5 AGP epochs')
    parser.add_argument('--epochs-thinned', type=int, default=15,
                        help='lenet5-thinned fine-tune epochs')
    parser.add_argument('--lr-scale', type=float, default=0.1,
                        help='weight pruning: fine-tune lr = recipe lr x this (Han: 1/10)')
    parser.add_argument('--agp-lr-scale', type=float, default=0.25,
                        help='lenet5 AGP: lr = recipe lr x this')
    parser.add_argument('--thin-lr-scale', type=float, default=0.5,
                        help='filter pruning: fine-tune lr = recipe lr x this')
    parser.add_argument('--num-examples', type=int, default=None,
                        help='fine-tune on the first N training images (quick looks only)')
    parser.add_argument('--repeats', type=int, default=200, help='timing repeats (median)')
    cli = parser.parse_args(argv)
    setup_logging()
    command = 'python scripts/bench_pruning.py %s' % ' '.join(argv if argv is not None
                                                          else sys.argv[1:])
    if 'timing' in cli.tasks:
        command = 'flock %s %s' % (TIMING_LOCK, command)
    command = 'OMP_NUM_THREADS=%s %s' % (os.environ.get('OMP_NUM_THREADS', ''), command)
    for task in cli.tasks:
        if task in ('lenet300-pruned', 'lenet5-pruned'):
            record = run_weight_pruning(task, task.split('-')[0], cli, cli.baseline_dir,
                                        cli.data_dir)
        elif task == 'lenet5-thinned':
            record = run_thinning(task, cli, cli.baseline_dir, cli.data_dir)
        elif task == 'sensitivity':
            record = run_sensitivity(cli, cli.baseline_dir, cli.data_dir)
            task = 'lenet5-sensitivity'
        elif task in ('resnet20-thinned', 'mobilenetv2-thinned'):
            record = run_zoo_thinning(task, cli, cli.baseline_dir, cli.data_dir)
        elif task == 'zoo-packed':
            record = run_zoo_packing(cli, cli.baseline_dir, cli.data_dir)
        else:
            record = run_timing(cli, cli.baseline_dir)
            record_speedups(cli, record, command)
        record['command'] = command
        update_results(cli.output, {task: record}, machine=machine_info())
        print('%s: %s' % (task, {k: v for k, v in record.items()
                                 if k in ('test_error', 'weight_density', 'mac_reduction',
                                          'target_met', 'baseline_error', 'chosen')}),
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
