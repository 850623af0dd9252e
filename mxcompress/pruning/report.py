"""Per-layer pruning reports as Markdown and JSON (from :func:`mxcompress.analysis.model_summary`).

Columns: layer, op, weight shape, params (weight + bias), weight nonzeros, sparsity, dense MACs
and remaining MACs (dense MACs x weight density: what an ideal sparse kernel would do), per
example of ``data_shape``. :func:`plan_markdown` prints a filter-pruning plan
(:meth:`mxcompress.pruning.filters.FilterPlan.to_dict`): channel groups, their members,
channels kept and removed, the groups left dense and why, MACs before and after.
"""
import json

from ..analysis import model_summary
from ..checkpoint import atomic_path

__all__ = ['pruning_report', 'report_markdown', 'write_report', 'plan_markdown']


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


def _members(rows):
    """``'2 filters, 3 batchnorm, 1 conv input'``: a group's members counted by role."""
    counts = {}
    for _, role in rows:
        counts[role] = counts.get(role, 0) + 1
    return ', '.join('%d %s' % (n, role) for role, n in counts.items())


def _names(names, limit=4):
    return ', '.join(names[:limit]) + (', ... %d more' % (len(names) - limit)
                                       if len(names) > limit else '')


def plan_markdown(plan, title=None):
    """A filter-pruning plan (``FilterPlan.to_dict()``) as Markdown.

    One row per planned group (name = its first producer conv, channels, kept, removed,
    members with their roles), then the groups left dense with their reasons, then the dense
    MACs per example before and after.
    """
    lines = ['### %s' % title, ''] if title else []
    lines += ['Filter pruning plan (criterion %s, input %s)' % (
        plan['criterion'], 'x'.join(str(d) for d in plan['data_shape'])), '',
        '| group | channels | kept | removed | producers | members |',
        '| --- | ---: | ---: | ---: | --- | --- |']
    for g in plan['groups']:
        lines.append('| %s | %d | %d | %d | %s | %s |' % (
            g['group'], g['channels'], g['kept'], g['removed'], _names(g['producers']),
            _members(g['members'])))
    if plan['skipped']:
        lines += ['', 'Left dense:', '', '| group | channels | producers | why |',
                  '| --- | ---: | --- | --- |']
        for g in plan['skipped']:
            lines.append('| %s | %d | %s | %s |' % (g['group'], g['channels'],
                                                    _names(g['producers']),
                                                    '; '.join(g['reasons'])))
    before, after = plan['macs_before'], plan['macs_after']
    lines += ['', 'MACs per example: %d -> %d (%.1f%% fewer)' % (
        before, after, 100.0 * (1 - after / before) if before else 0.0)]
    return '\n'.join(lines) + '\n'
