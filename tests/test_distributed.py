"""MXNet parameter-server training on loopback: the launcher and dist_sync fine-tuning."""
import json
import os
import socket
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from mxcompress.distributed import LaunchError, launch_local

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def worker_cmd(out, *extra):
    return [sys.executable, os.path.join(HERE, 'dist_worker.py'), '--out', str(out)] + list(extra)


def env_with_path():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['OMP_NUM_THREADS'] = '1'
    return env


def test_zero_workers_is_an_error():
    with pytest.raises(LaunchError, match='num_workers must be >= 1'):
        launch_local(0, 1, ['true'])


def test_port_in_use_is_an_error():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        if port < 1024:
            pytest.fail('kernel gave a privileged port')
        with pytest.raises(LaunchError, match='port %d on 127.0.0.1 is in use' % port):
            launch_local(1, 1, ['true'], port=port)


def test_dead_worker_stops_the_group_and_leaves_no_process(tmp_path):
    marker = tmp_path / 'pids'
    # worker: record our pid, then die; the servers would otherwise wait forever
    script = ('import os, sys; open(%r, "a").write("%%d\\n" %% os.getpid()); sys.exit(3)'
              % str(marker))
    start = time.time()
    code = launch_local(2, 1, [sys.executable, '-c', script], timeout=60, env=env_with_path())
    assert code == 3 and time.time() - start < 60
    for pid in map(int, marker.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_launcher_script_rejects_zero_workers():
    proc = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'launch_local.sh'), '0', '1',
                           'true'], capture_output=True, text=True,
                          env=dict(env_with_path(), PYTHON=sys.executable))
    assert proc.returncode == 2 and 'num_workers must be >= 1' in proc.stderr


def run_group(tmp_path, *extra):
    out = tmp_path / 'out'
    code = launch_local(2, 1, worker_cmd(out, *extra), timeout=240, env=env_with_path())
    assert code == 0
    params = [mx.nd.load(str(out / ('worker-%d.params' % r))) for r in range(2)]
    logs = [json.load(open(out / ('worker-%d.json' % r))) for r in range(2)]
    return params, logs


def test_dist_sync_workers_end_identical_and_learn(tmp_path, mnist_dir):
    params, logs = run_group(tmp_path)
    assert sorted(l['rank'] for l in logs) == [0, 1]
    assert [l['num_data'] for l in logs] == [800, 800]  # each worker its own half
    for name in params[0]:
        np.testing.assert_array_equal(params[0][name].asnumpy(), params[1][name].asnumpy())
    for log in logs:
        losses = log['losses']
        assert np.mean(losses[-5:]) < np.mean(losses[:5])
