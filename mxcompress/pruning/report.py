"""Per-layer pruning reports as Markdown and JSON (from :func:`mxcompress.analysis.model_summary`).

Columns: layer, op, weight shape, params (weight + bias), weight nonzeros, sparsity, dense MACs
and remaining MACs (dense MACs x weight density: what an ideal sparse kernel would do), per
example of ``data_shape``.
"""
import json

from ..analysis import model_summary
from ..checkpoint import atomic_path

__all__ = ['pruning_report', 'report_markdown', 'write_report']


def pruning_report(symbol, arg_params, aux_params=None, data_shape=None):
    """Summary dict: totals plus ``layers`` rows (see :func:`analysis.layer_table`)."""
    return model_summary(symbol, arg_params, aux_params, data_shape)


def report_markdown(report, title=None):
    """The report as a Markdown table with a totals line."""
    lines = ['### %s' % title, ''] if title else []
    lines += ['| layer | op | weight shape | params | nonzeros | sparsity | dense MACs | '
              'remaining MACs |', '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |']
    for r in report['layers']:
        lines.append('| %s | %s | %s | %d | %d | %.2f%% | %d | %d |' % (
            r['layer'], r['op'], 'x'.join(map(str, r['weight_shape'])), r['params'],
            r['nonzeros'], 100 * r['sparsity'], r['dense_macs'], r['remaining_macs']))
    lines.append('| **total** | | | %d | %d | %.2f%% | %d | %d |' % (
        sum(r['params'] for r in report['layers']), report['weight_nonzeros'],
        100 * (1 - report['weight_density']), report['dense_macs'], report['remaining_macs']))
    return '\n'.join(lines) + '\n'


def write_report(report, prefix, title=None):
    """Write ``PREFIX-report.md`` and ``PREFIX-report.json`` atomically; returns both paths."""
    md, js = prefix + '-report.md', prefix + '-report.json'
    with atomic_path(md) as tmp:
        with open(tmp, 'w') as f:
            f.write(report_markdown(report, title))
    with atomic_path(js) as tmp:
        with open(tmp, 'w') as f:
            json.dump(report, f, indent=2)
            f.write('\n')
    return md, js
