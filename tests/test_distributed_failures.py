"""The parameter-server launcher when things go wrong, and the worker-side helpers.

Every process binds and connects to 127.0.0.1 only; every wait is bounded.
"""
import io
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from mxcompress import distributed
from mxcompress.distributed import (PSConnectError, barrier, checkpoint_writer,
                                    create_dist_kvstore, free_port, launch_local, rank0_only,
                                    server_interpreter)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(ROOT, 'scripts', 'launch_local.sh')


def base_env(**extra):
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['OMP_NUM_THREADS'] = '1'
    for name in list(env):
        if name.startswith('DMLC_'):
            del env[name]
    env.update(extra)
    return env


def alive(pid):
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as dead)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != 'Z'


def descendants(pid):
    """Every process below ``pid``, read from /proc."""
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_dead(pids, limit=10.0):
    deadline = time.time() + limit
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def sleeper(pidfile, seconds=60):
    """A worker that records its pid and sleeps (it would wait forever for dead servers)."""
    return [sys.executable, '-c', 'import os, time; open(%r, "a").write("%%d\\n" %% os.getpid());'
            ' time.sleep(%d)' % (str(pidfile), seconds)]


def pids_in(path):
    return [int(p) for p in path.read_text().split()] if path.exists() else []


# ---------------------------------------------------------------------------------------------
# (b) any role that fails stops the group at once


def test_failing_scheduler_and_servers_stop_the_group_naming_the_role(tmp_path):
    pidfile = tmp_path / 'pids'
    dead_server = [sys.executable, '-c', 'import sys; sys.stderr.write("Traceback ...\\n'
                   'ModuleNotFoundError: No module named \'mxnet\'\\n"); sys.exit(1)']
    log = io.StringIO()
    start = time.time()
    code = launch_local(2, 2, sleeper(pidfile), timeout=60, env=base_env(),
                        server_command=dead_server, log=log)
    elapsed = time.time() - start
    text = log.getvalue()
    assert code == 1 and elapsed < 15, (code, elapsed, text)
    assert 'the scheduler (pid' in text or 'the server 0 (pid' in text, text
    assert "No module named 'mxnet'" in text and 'stopping the group' in text
    assert not wait_dead(pids_in(pidfile), 5)


def test_server_leaving_early_with_code_0_fails_after_the_grace(tmp_path):
    pidfile = tmp_path / 'pids'
    log = io.StringIO()
    start = time.time()
    code = launch_local(1, 1, sleeper(pidfile), timeout=60, env=base_env(),
                        server_command=[sys.executable, '-c', 'pass'], log=log,
                        server_exit_grace=1.0)
    assert code == 1 and time.time() - start < 15, log.getvalue()
    assert 'exited with code 0 while 1 worker(s) still ran' in log.getvalue()
    assert not wait_dead(pids_in(pidfile), 5)


def fake_python(tmp_path):
    """A ``python3`` without mxnet: dies like one as scheduler/server (or on ``-c 'import
    mxnet'``), and as a worker records its pid and sleeps."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    fake = bindir / 'python3'
    fake.write_text('#!/bin/sh\n'
                    'case "${DMLC_ROLE:-}" in\n'
                    '  worker) echo $$ >> %s; exec sleep 60 ;;\n'
                    '  *) echo "ModuleNotFoundError: No module named \'mxnet\'" >&2; exit 1 ;;\n'
                    'esac\n' % (tmp_path / 'pids'))
    fake.chmod(0o755)
    return str(fake)


def test_script_runs_servers_under_the_worker_interpreter_and_stops_when_they_die(tmp_path):
    fake = fake_python(tmp_path)
    start = time.time()
    # the launcher itself runs under this Python; the servers must follow the worker's python3
    proc = subprocess.run(['bash', SCRIPT, '2', '1', fake, 'train.py'], capture_output=True,
                          text=True, timeout=60,
                          env=base_env(PYTHON=sys.executable, LAUNCH_TIMEOUT='40'))
    assert proc.returncode == 1 and time.time() - start < 30, proc.stderr
    assert 'the scheduler (pid' in proc.stderr or 'the server 0 (pid' in proc.stderr
    assert "No module named 'mxnet'" in proc.stderr
    assert not wait_dead(pids_in(tmp_path / 'pids'), 5)


def test_script_refuses_an_interpreter_without_mxnet(tmp_path):
    fake = fake_python(tmp_path)
    unset = base_env()
    unset.pop('PYTHON', None)
    for env in (base_env(PYTHON=fake), unset):  # $PYTHON, or the command's interpreter
        proc = subprocess.run(['bash', SCRIPT, '1', '1', fake, 'train.py'], capture_output=True,
                              text=True, timeout=30, env=env)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "'%s' cannot import mxnet" % fake in lines[0], lines
    assert not (tmp_path / 'pids').exists()  # nothing was started


def test_server_interpreter_follows_the_worker_command(tmp_path):
    assert server_interpreter(['/opt/x/bin/python3.11', 'train.py']) == '/opt/x/bin/python3.11'
    assert server_interpreter(['python', '-m', 'x']) == 'python'
    assert server_interpreter(['sh', '-c', 'true']) == sys.executable
    script = tmp_path / 'mxcompress'
    script.write_text('#!/opt/venv/bin/python3\nprint(1)\n')
    assert server_interpreter([str(script), 'prune']) == '/opt/venv/bin/python3'
    script.write_text('#!/usr/bin/env python3\nprint(1)\n')
    assert server_interpreter([str(script)]) == 'python3'
    script.write_text('#!/bin/sh\n')
    assert server_interpreter([str(script)]) == sys.executable


# ---------------------------------------------------------------------------------------------
# (a) the children die with the launcher


@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_launcher_leaves_no_process(tmp_path, signum):
    pidfile = tmp_path / 'pids'
    # each worker is a shell with a grandchild: PR_SET_PDEATHSIG alone would miss the sleep
    worker = 'echo $$ >> %s; sleep 60 & echo $! >> %s; wait' % (pidfile, pidfile)
    launcher = subprocess.Popen(['bash', SCRIPT, '2', '1', 'sh', '-c', worker],
                                env=base_env(PYTHON=sys.executable, LAUNCH_TIMEOUT='60'),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.time() + 30
        while len(pids_in(pidfile)) < 4 and time.time() < deadline:
            time.sleep(0.1)
        assert len(pids_in(pidfile)) == 4
        started = set(descendants(launcher.pid)) | set(pids_in(pidfile))
        assert len(started) >= 2 + 4 + 1  # scheduler, server, 2 shells + 2 sleeps, watchdog
        os.kill(launcher.pid, signum)  # the bash script exec'd the Python launcher
        code = launcher.wait(15)
        assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum)
        # SIGKILLed MXNet processes (many threads) can take seconds to be torn down on a
        # loaded 2-core machine: allow for it
        assert not wait_dead(sorted(started), 30), 'left behind'
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()


# ---------------------------------------------------------------------------------------------
# (d) a worker never blocks forever joining the group

JOIN = 'from mxcompress.distributed import create_dist_kvstore; create_dist_kvstore("dist_sync")'


def worker_env(port, timeout):
    return base_env(DMLC_ROLE='worker', DMLC_PS_ROOT_URI='127.0.0.1', DMLC_PS_ROOT_PORT=str(port),
                    DMLC_NUM_WORKER='1', DMLC_NUM_SERVER='1', DMLC_NODE_HOST='127.0.0.1',
                    DMLC_INTERFACE='lo', MXCOMPRESS_PS_CONNECT_TIMEOUT=str(timeout))


def test_worker_without_scheduler_fails_in_bounded_time():
    start = time.time()
    proc = subprocess.run([sys.executable, '-c', JOIN], capture_output=True, text=True,
                          timeout=30, env=worker_env(free_port(), 1.5))
    assert proc.returncode != 0 and 1.5 <= time.time() - start < 20
    assert 'PSConnectError: no parameter-server scheduler at 127.0.0.1:' in proc.stderr
    assert 'MXCOMPRESS_PS_CONNECT_TIMEOUT' in proc.stderr


def test_worker_whose_group_never_completes_exits_after_the_timeout():
    with socket.socket() as silent:  # accepts TCP connections (backlog), never answers
        silent.bind(('127.0.0.1', 0))
        silent.listen(8)
        start = time.time()
        proc = subprocess.run([sys.executable, '-c', JOIN], capture_output=True, text=True,
                              timeout=30, env=worker_env(silent.getsockname()[1], 2))
    assert proc.returncode == 1 and time.time() - start < 20, proc.stderr
    assert 'joined no dist_sync group at 127.0.0.1:' in proc.stderr


def test_dist_kvstore_without_launcher_is_a_clear_error(monkeypatch):
    for name in list(os.environ):
        if name.startswith('DMLC_'):
            monkeypatch.delenv(name)
    with pytest.raises(PSConnectError, match='DMLC_ROLE, DMLC_PS_ROOT_URI.*launch_local.sh'):
        create_dist_kvstore('dist_sync', timeout=1)
    monkeypatch.setenv('MXCOMPRESS_PS_CONNECT_TIMEOUT', 'soon')
    with pytest.raises(PSConnectError, match='MXCOMPRESS_PS_CONNECT_TIMEOUT must be a number'):
        create_dist_kvstore('dist_sync')
    with pytest.raises(ValueError):
        create_dist_kvstore('local')


# ---------------------------------------------------------------------------------------------
# (e) rank 0 writes, the others wait (the 4-worker job is in test_distributed.py)

class FakeDistKV:
    type = 'dist_sync'

    def __init__(self, rank):
        self.rank, self.barriers = rank, 0

    def _barrier(self):
        self.barriers += 1


def test_rank0_only_runs_the_callback_on_rank_0_and_every_rank_waits():
    import mxnet as mx
    calls = []
    for rank in (0, 1, 3):
        kv = FakeDistKV(rank)
        assert checkpoint_writer(kv) == (rank == 0)
        rank0_only(kv, lambda epoch, *rest: calls.append((rank, epoch)))(0, None, {}, {})
        assert kv.barriers == 1
    assert calls == [(0, 0)]
    local = mx.kv.create('local')
    assert checkpoint_writer(local) and checkpoint_writer(None)
    barrier(local)
    barrier(None)  # no-ops
    callback = lambda *a: None  # noqa: E731
    assert rank0_only(local, callback) is callback and rank0_only(None, callback) is callback


def test_rank0_only_still_waits_when_the_callback_fails():
    kv = FakeDistKV(0)

    def broken(*args):
        raise OSError('disk full')
    with pytest.raises(OSError):
        rank0_only(kv, broken)(0, None, {}, {})
    assert kv.barriers == 1


def test_exit_status_of_a_signalled_role():
    assert distributed._exit_status(-9) == 137 and distributed._exit_status(3) == 3
