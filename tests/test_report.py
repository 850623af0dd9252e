"""The report: points collected from result files, Pareto front, figures written."""
import json

import pytest

from mxcompress.cli import main
from mxcompress.reporting.report import collect_points, pareto_front


def write(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f)


@pytest.fixture
def results(tmp_path):
    d = tmp_path / 'results'
    d.mkdir()
    write(d / 'baseline.json', {
        'machine': {'cpu_count': 2},
        'lenet5': {'base_network': 'lenet5', 'test_error': 0.008, 'size_bytes': 1724320}})
    write(d / 'pruning.json', {
        'lenet5-pruned': {'base_network': 'lenet5', 'method': 'pruning', 'test_error': 0.0075,
                          'size_bytes': 200000, 'selection': 'validation'},
        'lenet5-thinned': {'base_network': 'lenet5', 'method': 'filter pruning',
                           'test_error': 0.0085, 'size_bytes': 900000, 'flop_ratio': 2.5,
                           'speedup_b64': 1.9}})
    return d


def test_points_and_pareto(results):
    points = collect_points(str(results))
    assert {p['name'] for p in points} == {'lenet5', 'lenet5-pruned', 'lenet5-thinned'}
    front = pareto_front(points)
    # the thinned model is larger and worse than the pruned one: not on the front
    assert [p['name'] for p in front] == ['lenet5-pruned']


def test_report_writes_markdown_and_png(results, tmp_path, capsys):
    out = tmp_path / 'REPORT.md'
    assert main(['report', '--results-dir', str(results), '--output', str(out)]) == 0
    text = out.read_text()
    assert 'lenet5-pruned' in text and '0.75 %' in text and 'Han et al. 2015' in text
    assert '| lenet5-pruned | pruning | 0.75 % | 195.3 KiB | 8.6x | validation split |' in text
    assert '| lenet5-thinned | filter pruning | 0.85 % | 878.9 KiB | 1.9x | not recorded |' in text
    for png in ('pareto_lenet5.png', 'speedup_vs_flops.png'):
        blob = (tmp_path / png).read_bytes()
        assert blob[:8] == b'\x89PNG\r\n\x1a\n' and len(blob) > 5000


def test_missing_results_dir_is_an_error(tmp_path, capsys):
    assert main(['report', '--results-dir', str(tmp_path / 'nope')]) == 2
    assert 'nope is not a directory' in capsys.readouterr().err


def test_annotate_results_adds_fields_without_restamping(tmp_path):
    from mxcompress.reporting.results import annotate_results, update_results
    path = str(tmp_path / 'r.json')
    update_results(path, {'a': {'test_error': 0.01}})
    stamp = json.load(open(path))['a']['measured_at']
    annotate_results(path, {'a': {'selection': 'none'}})
    record = json.load(open(path))['a']
    assert record == {'test_error': 0.01, 'measured_at': stamp, 'selection': 'none'}
    with pytest.raises(KeyError, match="no record 'b'"):
        annotate_results(path, {'b': {'selection': 'none'}})
