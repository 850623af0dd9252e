"""scripts/bench_budget.py without training: the rule that picks the committed budget."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'bench_budget.py')

_spec = importlib.util.spec_from_file_location('bench_budget', SCRIPT)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.parametrize('network,validation_error,expected', [
    # LeNet-300-100: the file target (<= 1.36 %) is stricter than the ratio's (<= 1.64 %)
    ('lenet300', 0.0090, 0.45), ('lenet300', 0.0105, 0.3), ('lenet300', 0.01311, 0.05),
    # LeNet-5: <= 0.80 %; headroom rounded down to 0.05 points, never below one step
    ('lenet5', 0.0060, 0.2), ('lenet5', 0.00717, 0.05), ('lenet5', 0.0079, 0.05),
    ('lenet5', 0.0095, 0.05)])
def test_commit_budget_is_the_headroom_under_the_strictest_target(network, validation_error,
                                                                    expected):
    assert bench.commit_budget(network, {'validation_error': validation_error}) == expected


def _run(budget, committed):
    return {'budget_points': budget, 'committed': committed, 'validation_error_base': 0.0085,
            'validation_error_promised': 0.0121, 'test_error_base': 0.0082,
            'test_error': 0.0127, 'test_error_increase_points': 0.45,
            'sparsity': {'lenet300_fc2': 0.9, 'lenet300_fc1': 0.97},
            'bits': {'lenet300_fc1': 3, 'lenet300_fc2': 4}, 'file_bytes': 12345,
            'ratio': 95.04, 'wall_seconds': 321.4}


def test_readme_table_shows_each_run_from_its_record(tmp_path):
    rows = bench.budget_table([_run(1.0, False), _run(0.5, True)], 'LeNet-300-100').split('\n')
    assert rows[0].startswith('| model | budget (pt) |') and 'sparsity fc1, fc2 |' in rows[0]
    assert len(rows) == 4                        # header, rule, one row per run, by budget
    assert rows[2] == ('| LeNet-300-100 | **0.5** | 0.85 -> 1.21 % | 0.82 -> **1.27** % (+0.45) '
                       '| 0.97, 0.9 | 3, 4 | **12,345** | **95.0x** | 321 s |')
    assert rows[3].startswith('| LeNet-300-100 | 1 | ') and '**' not in rows[3]
    # the section between the markers is replaced, the text around it kept
    readme = tmp_path / 'README.md'
    readme.write_text('before\n<!-- budget-lenet300 -->\nold\n<!-- /budget-lenet300 -->\nafter\n')
    results = tmp_path / 'budget.json'
    bench.update_results(str(results), {'lenet300/budget-0p5': _run(0.5, True)})
    bench.readme_tables(str(readme), str(results))
    text = readme.read_text()
    assert text.startswith('before\n<!-- budget-lenet300 -->\n| model |') and 'old' not in text
    assert text.endswith('12,345** | **95.0x** | 321 s |\n<!-- /budget-lenet300 -->\nafter\n')
