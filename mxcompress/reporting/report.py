"""One report of every method side by side, from ``benchmarks/results/*.json``.

Every benchmark writes records (one per model) into its results file. A record takes part
in the report when it has a ``test_error`` (fraction); it is placed on the accuracy-vs-size
plot of its ``base_network`` (a key of :data:`BASE_NETWORKS`) when it also has ``size_bytes``
(bytes the model needs on disk: 4 x params for a dense fp32 model, the real file for a
compressed one), and on the speed-up plot when it has ``flop_ratio`` (dense MACs of the
baseline / MACs of the model) and ``speedup_b64`` (measured at batch 64).

Outputs: ``REPORT.md`` with the tables, ``pareto_lenet5.png``, ``pareto_lenet300.png`` and
``speedup_vs_flops.png`` beside it, and the published numbers (:mod:`.references`) beside ours.
"""
import glob
import json
import os

from ..checkpoint import atomic_path
from .plots import pyplot, save_figure
from .references import PUBLISHED

__all__ = ['collect_points', 'pareto_front', 'write_report']

BASE_NETWORKS = {'lenet5': 'LeNet-5', 'lenet300': 'LeNet-300-100',
                 'resnet20': 'ResNet-20 (gluoncv cifar_resnet20_v1)',
                 'mobilenetv2': 'MobileNetV2 0.5 (gluoncv mobilenetv2_0.5)'}

#: a record's ``selection``: which images its choices (epochs, ranks, sparsities, T, recipe)
#: were made on (see :func:`mxcompress.fit.data_provenance`)
SELECTIONS = {
    'validation': 'validation split',
    'none': 'no choice (fixed recipe)',
    'test': 'test set (hand-tuned, not re-run)',
    'training': 'held-out training images',
}


def _records(results):
    for name, record in results.items():
        if isinstance(record, dict) and 'test_error' in record:
            yield name, record
        elif isinstance(record, dict):  # one level of grouping, e.g. {"lenet5": {...}}
            for sub, inner in record.items():
                if isinstance(inner, dict) and 'test_error' in inner:
                    yield '%s/%s' % (name, sub), inner


def collect_points(results_dir):
    """Every record with a ``test_error`` in ``results_dir/*.json``.

    Returns
    -------
    list of dict
        ``source`` (file stem), ``name``, ``method``, ``base_network``, ``test_error``,
        ``size_bytes``, ``flop_ratio``, ``speedup_b64``, ``selection`` (which images the
        run's choices were made on: see :data:`SELECTIONS`; None where the record lacks it).
    """
    points = []
    for path in sorted(glob.glob(os.path.join(results_dir, '*.json'))):
        source = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            results = json.load(f)
        for name, record in _records(results):
            points.append({'source': source, 'name': name,
                           'method': record.get('method', source),
                           'base_network': record.get('base_network'),
                           'test_error': float(record['test_error']),
                           'size_bytes': record.get('size_bytes'),
                           'flop_ratio': record.get('flop_ratio'),
                           'speedup_b64': record.get('speedup_b64'),
                           'selection': record.get('selection')})
    return points


def pareto_front(points):
    """Points not beaten on both size and error by another point, sorted by size."""
    ranked = sorted(points, key=lambda p: (p['size_bytes'], p['test_error']))
    front, best = [], float('inf')
    for point in ranked:
        if point['test_error'] < best:
            front.append(point)
            best = point['test_error']
    return front


def _plot_pareto(points, title, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    methods = sorted({p['method'] for p in points})
    cmap = plt.get_cmap('tab10')
    for i, method in enumerate(methods):
        mine = [p for p in points if p['method'] == method]
        ax.scatter([p['size_bytes'] / 1024 for p in mine], [100 * p['test_error'] for p in mine],
                   label=method, color=cmap(i % 10), s=40, zorder=3)
        for p in mine:
            ax.annotate(p['name'].split('/')[-1], (p['size_bytes'] / 1024, 100 * p['test_error']),
                        fontsize=7, xytext=(4, 3), textcoords='offset points')
    front = pareto_front(points)
    ax.plot([p['size_bytes'] / 1024 for p in front], [100 * p['test_error'] for p in front],
            'k--', lw=1, label='Pareto front', zorder=2)
    ax.set_xscale('log')
    ax.set_xlabel('size on disk (KiB, log scale)')
    ax.set_ylabel('MNIST test error (%)')
    ax.set_title(title)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _plot_speedup(points, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for p in points:
        ax.scatter(p['flop_ratio'], p['speedup_b64'], s=40, zorder=3)
        ax.annotate(p['name'].split('/')[-1], (p['flop_ratio'], p['speedup_b64']), fontsize=7,
                    xytext=(4, 3), textcoords='offset points')
    top = max([p['flop_ratio'] for p in points] + [p['speedup_b64'] for p in points] + [2])
    ax.plot([1, top], [1, top], 'k--', lw=1, label='speed-up = FLOP reduction')
    ax.set_xlabel('FLOP (MAC) reduction vs baseline (x)')
    ax.set_ylabel('measured speed-up at batch 64 (x)')
    ax.set_title('Measured speed-up vs FLOP reduction')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _selection(point):
    return SELECTIONS.get(point['selection'], 'not recorded')


def _fmt(value, pattern):
    return '-' if value is None else pattern % value


def write_report(results_dir, output):
    """Write ``output`` (Markdown) and its PNG figures beside it; returns the figure paths."""
    points = collect_points(results_dir)
    out_dir = os.path.dirname(os.path.abspath(output))
    figures, lines = [], ['# mxcompress: every method side by side', '',
                          'Generated by `mxcompress report` from `benchmarks/results/*.json`; '
                          'each number was measured by the benchmark script named in its '
                          'results file (see the `command` fields there). Every test error is '
                          'on the full MNIST test set; "choices made on" says which images '
                          'the run\'s choices (epochs, ranks, sparsities, T, recipe) were made '
                          'on: the validation split held out of the training set, or, for '
                          'runs made before it existed and not re-run, the test set (their '
                          'errors are then optimistic); the `choices_made_on` field of each '
                          'record says more.', '']
    for key, title in BASE_NETWORKS.items():
        mine = [p for p in points if p['base_network'] == key and p['size_bytes']]
        if not mine:
            continue
        figure = os.path.join(out_dir, 'pareto_%s.png' % key)
        _plot_pareto(mine, '%s on MNIST: accuracy vs size' % title, figure)
        figures.append(figure)
        lines += ['## %s' % title, '', '![%s](%s)' % (title, os.path.basename(figure)), '',
                  '| model | method | test error | size on disk | vs fp32 baseline | choices made on |',
                  '| --- | --- | --- | --- | --- | --- |']
        base = [p for p in mine if p['source'] == 'baseline']
        base_size = base[0]['size_bytes'] if base else None
        for p in sorted(mine, key=lambda q: -q['size_bytes']):
            ratio = base_size / p['size_bytes'] if base_size else None
            lines.append('| %s | %s | %.2f %% | %s | %s | %s |' % (
                p['name'], p['method'], 100 * p['test_error'],
                '%.1f KiB' % (p['size_bytes'] / 1024), _fmt(ratio, '%.1fx'), _selection(p)))
        lines.append('')
    speed = [p for p in points if p['flop_ratio'] and p['speedup_b64']]
    if speed:
        figure = os.path.join(out_dir, 'speedup_vs_flops.png')
        _plot_speedup(speed, figure)
        figures.append(figure)
        lines += ['## Speed-up vs FLOP reduction', '',
                  '![speed-up vs FLOPs](%s)' % os.path.basename(figure), '',
                  '| model | FLOP reduction | measured speed-up (batch 64) |', '| --- | --- | --- |']
        lines += ['| %s | %.2fx | %.2fx |' % (p['name'], p['flop_ratio'], p['speedup_b64'])
                  for p in speed]
        lines.append('')
    by_key = {(p['source'], p['name']): p for p in points}
    lines += ['## Published results beside ours', '',
              '| method | network | paper | published error | ours | our error |',
              '| --- | --- | --- | --- | --- | --- |']
    for ref in PUBLISHED:
        ours = by_key.get(tuple(ref['ours']))
        lines.append('| %s | %s | %s | %.2f %% | %s | %s |' % (
            ref['method'], ref['network'], ref['paper'], 100 * ref['error'],
            '/'.join(ref['ours']), _fmt(ours and 100 * ours['test_error'], '%.2f %%')))
    others = [p for p in points if not p['size_bytes'] or p['base_network'] not in BASE_NETWORKS]
    if others:
        lines += ['', '## Other measured models', '',
                  '| source | model | test error | choices made on |', '| --- | --- | --- | --- |']
        lines += ['| %s | %s | %.2f %% | %s |' % (p['source'], p['name'], 100 * p['test_error'],
                                                  _selection(p)) for p in others]
    with atomic_path(output) as tmp:
        with open(tmp, 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return figures
