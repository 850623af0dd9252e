"""scripts/bench_xnor.py without timing: how --rounds merges separate runs of a worker."""
import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'bench_xnor.py')

_spec = importlib.util.spec_from_file_location('bench_xnor', SCRIPT)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _record(xnor_ms, fp32_ms):
    timing = {'batch_8': {'xnor': {'median_ms': xnor_ms}, 'fp32_twin': {'median_ms': fp32_ms},
                          'speedup_vs_fp32_twin': fp32_ms / xnor_ms}}
    return {'kernel': 'avx2', 'targets': {'batch_8': 4.0}, 'timing': timing}


def test_merge_rounds_takes_the_median_of_the_runs_ratios():
    runs = [_record(100.0, 350.0), _record(100.0, 450.0), _record(100.0, 420.0)]
    merged = bench.merge_rounds(runs)
    row = merged['timing']['batch_8']
    assert row['speedup_vs_fp32_twin'] == 4.2
    assert row['speedup_each_round'] == [3.5, 4.5, 4.2]
    assert (row['speedup_min'], row['speedup_max']) == (3.5, 4.5)
    assert row['target_met'] is True
    assert merged['rounds'] == [r['timing'] for r in runs] and merged['kernel'] == 'avx2'
    assert bench.merge_rounds(runs[:1]) is runs[0]          # one run: as it is
    low = bench.merge_rounds([_record(100.0, 350.0), _record(100.0, 390.0)])
    assert low['timing']['batch_8']['target_met'] is False


def test_rounds_must_be_positive():
    proc = subprocess.run([sys.executable, SCRIPT, '--rounds', '0'], stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert proc.returncode == 2 and '--rounds must be at least 1' in proc.stderr
