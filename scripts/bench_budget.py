#!/usr/bin/env python
"""Deep Compression to an accuracy budget: the sweep, the committed files, a second data set.

Parts (``--parts``):

* ``lenet300``, ``lenet5``: ``mxcompress deep-compress benchmarks/models/NAME
  --max-error-increase P`` for every budget of ``--budgets`` (default 0.1 0.25 0.5 1.0
  points): per-layer sparsity and bits chosen on the validation split (10 % of the training
  set, seeded), the test error measured once, on the full test set, after the file is
  written. The baseline is ``benchmarks/models/NAME-heldout``, trained here (part
  ``baselines``, or on first use) with the validation split held out: the committed
  ``lenet300`` / ``lenet5`` were trained on all 60,000 images, validation split included.
  The run at the budget given by the rule of :data:`mxcompress.reporting.recipes.BUDGET`
  (what the target error leaves above the baseline's validation error, decided before
  the sweep; :func:`commit_budget`) writes the committed
  ``benchmarks/models/NAME-auto.mxc`` and its ``.recipe.json``; the others go to
  ``out/budget/``.
* ``distorted``: the "second data set" check on data the tool was not tuned on. MNIST with
  every image rotated (+-25 degrees), shifted (+-3 px), contrast-scaled and noised (Gaussian,
  sigma 0.2), made deterministically (seed 0) as an ``.npz`` in ``out/budget/``; a
  LeNet-300-100 trained on it (its own validation split held out), then compressed at budgets
  0.5 and 1.0: the test error increase must stay within the budget + 0.3 points.
* ``plot``: the Pareto plot (ratio vs test error) of the runs beside the hand-tuned recipes
  (``deep_compression.json``), the published points and, when
  ``benchmarks/results/peer_tfmot.json`` exists, the TF-MOT peer.

Results merge into ``benchmarks/results/budget.json`` (command, machine, per run: budget,
chosen recipe, validation error promised, test error, file bytes with the graph, ratio).
Example (2 cores shared: one training at a time)::

    OMP_NUM_THREADS=1 python scripts/bench_budget.py --parts lenet300 plot
"""
import argparse
import json
import logging
import math
import os
import sys
import time

import numpy as np

from mxcompress import cli
from mxcompress.checkpoint import atomic_path, sha256_file
from mxcompress.commands.deep_compress import compress
from mxcompress.logs import setup_logging
from mxcompress.measure import machine_info
from mxcompress.reporting.plots import pyplot, save_figure
from mxcompress.reporting.recipes import BUDGET
from mxcompress.reporting.references import PUBLISHED
from mxcompress.reporting.results import read_results, update_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'benchmarks', 'results', 'budget.json')
MODELS = os.path.join(ROOT, 'benchmarks', 'models')
OUT = os.path.join(ROOT, 'out', 'budget')
PLOT = os.path.join(ROOT, 'benchmarks', 'results', 'budget_pareto.png')
logger = logging.getLogger('bench_budget')


def _label(budget):
    return ('%g' % budget).replace('.', 'p')


def run_budget(network, budget, prefix, output, options, data=None):
    """One deep-compress run at ``budget`` points; returns its record."""
    prefix, output = os.path.relpath(prefix, ROOT), os.path.relpath(output, ROOT)
    argv = ['deep-compress', prefix, '--output', output, '--max-error-increase', '%g' % budget,
            '--disp-batches', '2000'] + list(options)
    if data:
        argv += ['--data', data]
    logger.info('%s budget %g: mxcompress %s', network, budget, ' '.join(argv))
    start = time.time()
    report = compress(cli.build_parser().parse_args(argv))
    record = {k: report[k] for k in (
        'validation_error_base', 'validation_error_promised', 'validation_examples',
        'validation_error_increase_points', 'test_error_base', 'test_error',
        'test_error_increase_points', 'file_bytes', 'graph_bytes', 'param_bytes', 'fp32_bytes',
        'ratio', 'ratio_with_graph', 'sparsity', 'bits', 'rounds', 'options', 'replay',
        'sha256', 'search_log')}
    record.update({
        'method': 'Deep Compression, accuracy budget %g pt' % budget, 'base_network': network,
        'budget_points': budget, 'size_bytes': report['param_bytes'],
        'size_note': 'file bytes without the graph (ratio = 4 x params / size_bytes); '
                     'file_bytes has the graph', 'selection': 'validation',
        'file': os.path.relpath(output, ROOT), 'wall_seconds': time.time() - start,
        'within_budget_on_validation': report['validation_error_increase_points'] <=
        budget + 1e-9,
        'test_increase_within_budget_plus_0.3': report['test_error_increase_points'] <=
        budget + 0.3 + 1e-9,
        'command': 'python scripts/bench_budget.py (= mxcompress %s)' % ' '.join(argv)})
    logger.info('%s budget %g: %.1fx (%d file bytes) at %.2f%% test error (validation %+.2f '
                'points), %.0f s', network, budget, record['ratio'], record['file_bytes'],
                100 * record['test_error'], record['validation_error_increase_points'],
                record['wall_seconds'])
    return record


def train_baseline(network, data_dir=None):
    """The baseline of the sweep: trained with the validation split held out, saved as
    ``benchmarks/models/NAME-heldout`` (epoch 0). Returns its record."""
    from mxcompress.checkpoint import load_checkpoint, save_checkpoint
    from mxcompress.fit import data_split, fit_options, validation_data
    from mxcompress.measure import classification_error
    spec = BUDGET[network]
    prefix = os.path.join(MODELS, spec['baseline'])
    epochs = int(spec['train'][spec['train'].index('--num-epochs') + 1])
    work = os.path.join(OUT, spec['baseline'])
    argv = ['train', '--model-prefix', work, '--disp-batches', '2000'] + spec['train']
    if data_dir:
        argv += ['--data', data_dir]
    start = time.time()
    if not os.path.exists(prefix + '-0000.params'):
        os.makedirs(OUT, exist_ok=True)
        if not os.path.exists(work + '-%04d.params' % epochs):
            logger.info('mxcompress %s', ' '.join(argv))
            assert cli.main(argv) == 0
        save_checkpoint(prefix, 0, *load_checkpoint(work, epochs))
    model = load_checkpoint(prefix, 0)
    options = fit_options(data_dir=data_dir)
    record = {'method': 'baseline, validation split held out', 'base_network': network,
              'file': os.path.relpath(prefix, ROOT), 'selection': 'none',
              'validation_error': classification_error(*model, *validation_data(options)),
              'test_error': classification_error(*model, *data_split(options, 'test')),
              'size_bytes': 4 * sum(v.size for v in model[1].values()),
              'command': 'mxcompress ' + ' '.join(argv).replace(ROOT + os.sep, ''),
              'wall_seconds': time.time() - start}
    update_results(RESULTS, {'%s/baseline' % network: record},
                   machine=dict(machine_info(), shared=True))
    return record


#: the budgets of the sweep (points)
BUDGETS = (0.1, 0.25, 0.5, 1.0)


#: the committed budget is a multiple of this (points)
COMMIT_STEP = 0.05


def commit_budget(network, baseline):
    """The budget whose file is committed: what the strictest target error leaves above the
    baseline's validation error, rounded down to :data:`COMMIT_STEP` points (at least one
    step). Decided before any run; the test set plays no part.

    Parameters
    ----------
    network : str
        A key of :data:`~mxcompress.reporting.recipes.BUDGET`.
    baseline : dict
        The baseline's record (``validation_error``, a fraction).
    """
    target = BUDGET[network]['target']
    strictest = min(target['error'], target.get('file_bytes_error', target['error']))
    headroom = 100.0 * (strictest - baseline['validation_error'])
    steps = int(math.floor(headroom / COMMIT_STEP + 1e-6))
    return round(max(1, steps) * COMMIT_STEP, 2)


def run_network(network, budgets, data=None, commit_run='with'):
    spec = BUDGET[network]
    baseline = train_baseline(network, data)
    chosen = commit_budget(network, baseline)
    logger.info('%s: baseline validation error %.2f%%: the file at budget %g is committed',
                network, 100 * baseline['validation_error'], chosen)
    records = {}
    os.makedirs(OUT, exist_ok=True)
    budgets = {'only': [chosen], 'with': sorted(set(budgets) | {chosen}),
               'without': sorted(set(budgets) - {chosen})}[commit_run]
    for budget in budgets:
        committed = abs(budget - chosen) < 1e-9
        output = (os.path.join(MODELS, network + '-auto.mxc') if committed else
                  os.path.join(OUT, '%s-b%s.mxc' % (network, _label(budget))))
        record = run_budget(network, budget, os.path.join(MODELS, spec['baseline']), output,
                            spec['options'], data)
        record['committed'] = committed
        t = spec['target']
        record['target'] = t
        record['target_met'] = record['ratio'] >= t['ratio'] and record['test_error'] <= t['error']
        record['aim_met'] = (record['ratio'] >= t['aim_ratio'] and
                             record['test_error'] <= t['error'])
        if 'file_bytes' in t:
            record['file_target_met'] = (record['file_bytes'] <= t['file_bytes'] and
                                         record['test_error'] <= t['file_bytes_error'])
        records['%s/budget-%s' % (network, _label(budget))] = record
        update_results(RESULTS, {'%s/budget-%s' % (network, _label(budget)): record},
                       machine=dict(machine_info(), shared=True))
    return records


def distorted_mnist(path, data_dir=None, seed=0):
    """MNIST rotated, shifted, contrast-scaled and noised, deterministically, as an .npz."""
    from scipy import ndimage
    from mxcompress.sources import load_data
    rng = np.random.RandomState(seed)
    out = {}
    for split in ('train', 'test'):
        images, labels = load_data(split, data_dir)
        images = images[:, 0]
        made = np.empty(images.shape, np.uint8)
        for i, img in enumerate(images):
            angle = rng.uniform(-25, 25)
            dy, dx = rng.randint(-3, 4, size=2)
            x = ndimage.rotate(img, angle, reshape=False, order=1, mode='constant')
            x = ndimage.shift(x, (dy, dx), order=0, mode='constant')
            x = x * rng.uniform(0.6, 1.0) + rng.normal(0, 0.2, x.shape)
            made[i] = np.clip(np.round(255 * x), 0, 255).astype(np.uint8)
        out['x_' + split], out['y_' + split] = made, labels.astype(np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.savez_compressed(f, **out)
    return path


def run_distorted(budgets, data_dir=None):
    os.makedirs(OUT, exist_ok=True)
    data = os.path.join(OUT, 'mnist-distorted.npz')
    if not os.path.exists(data):
        logger.info('making %s', data)
        distorted_mnist(data, data_dir)
    prefix = os.path.join(OUT, 'distorted-lenet300')
    spec = BUDGET['distorted']
    if not os.path.exists(prefix + '-%04d.params' % spec['train_epochs']):
        argv = ['train', '--network', 'lenet300', '--data', data, '--model-prefix', prefix,
                '--num-epochs', str(spec['train_epochs'])] + spec['train_options']
        logger.info('mxcompress %s', ' '.join(argv))
        assert cli.main(argv) == 0
    # the checkpoint of the last epoch as epoch 0 (what deep-compress reads by default)
    base = os.path.join(OUT, 'distorted-lenet300-base')
    from mxcompress.checkpoint import load_checkpoint, save_checkpoint
    save_checkpoint(base, 0, *load_checkpoint(prefix, spec['train_epochs']))
    records = {}
    for budget in budgets:
        output = os.path.join(OUT, 'distorted-lenet300-b%s.mxc' % _label(budget))
        record = run_budget('lenet300', budget, base, output, spec['options'], data)
        record.update(base_network='distorted-lenet300', data_set={
            'file': os.path.relpath(data, ROOT), 'sha256': sha256_file(data),
            'made_by': 'scripts/bench_budget.py distorted_mnist(seed=0): MNIST rotated '
                       'U(-25, 25) degrees, shifted U{-3..3} px, contrast U(0.6, 1), '
                       'Gaussian noise sigma 0.2, uint8',
            'baseline': 'mxcompress train --network lenet300 %s (--val-split 0.1 held out)'
                        % ' '.join(spec['train_options'])})
        records['distorted-lenet300/budget-%s' % _label(budget)] = record
        update_results(RESULTS, {'distorted-lenet300/budget-%s' % _label(budget): record},
                       machine=dict(machine_info(), shared=True))
    return records


def plot(results_dir=os.path.join(ROOT, 'benchmarks', 'results')):
    """Ratio vs test error: budget runs, hand-tuned recipes, published points, peers."""
    budget = read_results(os.path.join(results_dir, 'budget.json'))
    hand = read_results(os.path.join(results_dir, 'deep_compression.json'))
    peer_path = os.path.join(results_dir, 'peer_tfmot.json')
    peer = read_results(peer_path)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    names = {'lenet300': 'LeNet-300-100', 'lenet5': 'LeNet-5'}
    for ax, network in zip(axes, ('lenet300', 'lenet5')):
        runs = sorted((r for k, r in budget.items() if k.startswith(network + '/budget-')),
                      key=lambda r: r['budget_points'])
        if runs:
            ax.plot([r['ratio'] for r in runs], [100 * r['test_error'] for r in runs], 'o-',
                    color='C0', label='accuracy budget (ours)')
            for r in runs:
                ax.annotate('%g pt' % r['budget_points'], (r['ratio'], 100 * r['test_error']),
                            fontsize=7, xytext=(3, 3), textcoords='offset points')
            ax.plot([r['ratio_with_graph'] for r in runs], [100 * r['test_error'] for r in runs],
                    'o', mfc='none', color='C0', label='accuracy budget, whole file (graph in)')
        if network in hand:
            ax.plot(hand[network]['ratio'], 100 * hand[network]['test_error'], 's', color='C1',
                    label='hand-tuned recipe (ours)')
        for entry in PUBLISHED:
            if entry['network'] == names[network] and entry.get('ratio'):
                ax.plot(entry['ratio'], 100 * entry['error'], '^', color='C2',
                        label='%s (%s)' % (entry['paper'], entry['method']))
        if network == 'lenet5':
            ax.plot(162, 0.97, 'v', color='C3', label='Ullrich et al. 2017, soft weight '
                                                     'sharing (published: 162x, 0.97 %)')
        points = [r for r in _peer_points(peer) if r['network'] == network]
        for p in points:
            ax.plot(p['ratio'], 100 * p['test_error'], 'D', color='C4', label=p['label'])
        if network == 'lenet300' and not points:
            ax.plot([], [], 'D', color='C4', label='TF-MOT peer: not measured '
                                                   '(benchmarks/results/peer_tfmot.json absent)')
        ax.set_xscale('log')
        ax.set_xlabel('compression ratio (4 x params / param bytes of the file)')
        ax.set_ylabel('test error (%)')
        ax.set_title(names[network])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5, loc='upper left')
    fig.tight_layout()
    save_figure(fig, PLOT)
    return {'budget_plot': {'file': os.path.relpath(PLOT, ROOT),
                            'peer_points': _peer_points(peer),
                            'peer_file': os.path.relpath(peer_path, ROOT)
                            if os.path.exists(peer_path) else None,
                            'command': 'python scripts/bench_budget.py --parts plot'}}


#: README sections (between ``<!-- budget-KEY -->`` and ``<!-- /budget-KEY -->``) and the
#: records they show: the prefix of their names in budget.json and the row label
README_TABLES = (('lenet300', 'lenet300/budget-', 'LeNet-300-100'),
                 ('lenet5', 'lenet5/budget-', 'LeNet-5'),
                 ('distorted', 'distorted-lenet300/budget-', 'LeNet-300-100, distorted MNIST'))


def _pct(fraction):
    return '%.2f' % (100 * fraction)


def budget_table(records, label):
    """Markdown rows of the budget runs ``records`` (the committed run in bold)."""
    layers = sorted(records[0]['sparsity'])
    short = ', '.join(name.split('_', 1)[1] for name in layers)
    lines = ['| model | budget (pt) | validation error | test error | sparsity %s | bits | '
             'file bytes | ratio | time |' % short, '| --- ' * 9 + '|']
    for r in sorted(records, key=lambda r: r['budget_points']):
        bold = (lambda text: '**%s**' % text) if r.get('committed') else (lambda text: text)
        lines.append('| %s | %s | %s -> %s %% | %s -> %s %% (%+.2f) | %s | %s | %s | %s | %.0f s |'
                     % (label, bold('%g' % r['budget_points']),
                        _pct(r['validation_error_base']), _pct(r['validation_error_promised']),
                        _pct(r['test_error_base']), bold(_pct(r['test_error'])),
                        r['test_error_increase_points'],
                        ', '.join('%g' % round(r['sparsity'][n], 4) for n in layers),
                        ', '.join(str(r['bits'][n]) for n in layers),
                        bold('{:,}'.format(r['file_bytes'])), bold('%.1fx' % r['ratio']),
                        r['wall_seconds']))
    return '\n'.join(lines)


def readme_tables(readme=os.path.join(ROOT, 'README.md'), results=RESULTS):
    """Rewrite the README's budget tables from budget.json (sections without runs are left)."""
    runs = read_results(results)
    with open(readme) as f:
        text = f.read()
    for key, prefix, label in README_TABLES:
        records = [r for k, r in runs.items() if k.startswith(prefix)]
        start, end = '<!-- budget-%s -->\n' % key, '<!-- /budget-%s -->' % key
        if not records or start not in text:
            continue
        head, rest = text.split(start, 1)
        text = head + start + budget_table(records, label) + '\n' + end + rest.split(end, 1)[1]
    with atomic_path(readme) as tmp:
        with open(tmp, 'w') as f:
            f.write(text)
    return readme


def _peer_points(peer):
    """TF-MOT peer points: ``runs[KEY]['headline']`` of ``scripts/peer_tfmot.py`` (gzip -9
    bytes of the TFLite file and its test error), as ratio = fp32 bytes / file bytes (the
    whole file: TFLite keeps its graph inside), on LeNet-300-100."""
    points = []
    for name, r in sorted((peer.get('runs') or {}).items()):
        head = r.get('headline') if isinstance(r, dict) else None
        if not head or head.get('test_error') is None or not head.get('gzip9_bytes'):
            continue
        points.append({'name': name, 'network': 'lenet300', 'file_bytes': head['gzip9_bytes'],
                       'ratio': 4 * 266610 / float(head['gzip9_bytes']),
                       'test_error': head['test_error'],
                       'label': 'TF-MOT peer %s: %d B gzip -9 (whole file)'
                                % (name, head['gzip9_bytes'])})
    return points


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--parts', nargs='+', default=['lenet300', 'lenet5', 'distorted',
                                                        'plot'],
                        choices=['baselines', 'lenet300', 'lenet5', 'distorted', 'plot',
                                 'readme'],
                        help="'readme' rewrites README.md's budget tables from budget.json")
    parser.add_argument('--budgets', nargs='+', type=float, default=list(BUDGETS),
                        help='budgets of the sweep, points (the committed budget, from the '
                             'commit rule, is always run too)')
    parser.add_argument('--commit-run', choices=['with', 'only', 'without'], default='with',
                        help='the committed budget run with the sweep (default), alone, or '
                             'left out (e.g. to split the work between two processes)')
    parser.add_argument('--distorted-budgets', nargs='+', type=float, default=[0.5, 1.0])
    parser.add_argument('--data-dir', default=None, help='MNIST directory')
    args = parser.parse_args(argv)
    os.chdir(ROOT)   # paths in the records and recipe sidecars relative to the repository
    setup_logging()
    setup_logging(logger='bench_budget')
    for part in args.parts:
        if part == 'baselines':
            for network in ('lenet300', 'lenet5'):
                train_baseline(network, args.data_dir)
        elif part in ('lenet300', 'lenet5'):
            run_network(part, args.budgets, args.data_dir, args.commit_run)
        elif part == 'distorted':
            run_distorted(args.distorted_budgets, args.data_dir)
        elif part == 'readme':
            readme_tables()
        else:
            update_results(RESULTS, plot())
    print(json.dumps({k: (v.get('ratio'), v.get('test_error'), v.get('file_bytes'))
                      for k, v in read_results(RESULTS).items()
                      if isinstance(v, dict) and 'ratio' in v}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
