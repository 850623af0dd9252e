"""scripts/bench_peers.py without TensorFlow: --help, option parsing, the record merging and
the message when the peer environment is missing (the timing itself needs the peer env)."""
import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'bench_peers.py')

_spec = importlib.util.spec_from_file_location('bench_peers', SCRIPT)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

TABLE = [(64, 56), (128, 28), (256, 14), (512, 7)]


def test_help_explains_paths_and_options():
    out = subprocess.run([sys.executable, SCRIPT, '--help'], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    for text in ('Larq Compute Engine', 'XNNPACK', 'use_indirect_bgemm', '--peer-python',
                 '--skip-resnet18', '--layers', 'Examples'):
        assert text in out
    assert '--shapes' not in out and '[--worker' not in out   # internal options


def test_select_layers():
    assert bench.select_layers(None, TABLE) == TABLE
    assert bench.select_layers([512, 64], TABLE) == [(64, 56), (512, 7)]
    with pytest.raises(ValueError, match='32'):
        bench.select_layers([32], TABLE)
    assert bench.parse_shape('256:14') == (256, 14)


def test_merge_ratios_and_missing_peer():
    ours = [{'layer': '64ch_56px', 'batch': 1, 'threads': 1, 'binary_ms': 1.0, 'fp32_ms': 8.0},
            {'layer': '64ch_56px', 'batch': 8, 'threads': 1, 'binary_ms': 4.0, 'fp32_ms': 30.0}]
    peer = [{'layer': '64ch_56px', 'batch': 1, 'threads': 1, 'tflite_fp32_copy_ms': 0.1,
             'paths': {'lce_indirect_bgemm': {'median_ms': 3.0},
                       'lce_bgemm': {'median_ms': 12.0},
                       'tflite_fp32': {'median_ms': 4.0}}}]
    first, second = bench.merge(ours, peer, ('layer', 'batch', 'threads'))
    assert first['lce_best_path'] == 'lce_indirect_bgemm'
    assert first['ours_speedup_vs_lce_best'] == pytest.approx(3.0)
    assert first['ours_speedup_vs_tflite_fp32'] == pytest.approx(4.0)
    assert first['tflite_fp32_speedup_vs_mxnet_fp32'] == pytest.approx(2.0)
    assert (second['batch'], second['ours_ms'], second['mxnet_fp32_ms']) == (8, 4.0, 30.0)
    assert second['lce_best_ms'] is None and second['ours_speedup_vs_lce_best'] is None


def test_interleaved_timing_counts_runs():
    calls = []
    times = bench.interleaved({'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')},
                              repeats=3, warmup=2)
    assert calls == ['a', 'b'] * 5
    assert times['a']['runs'] == 3 and times['b']['median_ms'] >= 0


def test_missing_peer_python_says_how_to_create_it(tmp_path):
    with pytest.raises(SystemExit) as err:
        bench.main(['--peer-python', str(tmp_path / 'no-python'),
                    '--output', str(tmp_path / 'peers.json')])
    assert 'pip install larq-compute-engine==0.16.0 larq==0.14.0' in str(err.value)
    assert not (tmp_path / 'peers.json').exists()


def test_peer_side_imports_no_mxnet():
    for fn in (bench.peer_worker, bench.peer_models, bench.peer_time, bench.interleaved,
               bench.median_times):
        source = inspect.getsource(fn)
        assert 'import mx' not in source and 'from mx' not in source, fn.__name__
    top = [line for line in open(SCRIPT) if line.startswith(('import ', 'from '))]
    assert all(line.split()[1] in ('argparse', 'json', 'os', 'statistics', 'subprocess',
                                   'sys', 'time') for line in top)
