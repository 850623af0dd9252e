"""The xnor op's threads (``src/xnor_team.h``), both ways a call is shared: on the op's own
helper threads (``MXCOMPRESS_XNOR_THREADS=team``, the default engine's choice) and in an OpenMP
region of the caller (``openmp``, NaiveEngine's choice), each with work stealing. Results
equal the reference with more threads than cores (uneven shares, helpers late or descheduled,
their items taken by others), with two Python threads calling the op at once (one of them runs
alone), and in a child process forked after the threads started (no inherited helpers to wait
for, and no OpenMP team: libgomp's parent team does not exist in the child). Each check runs
in a subprocess with a time limit, so a hang fails the test instead of stalling the suite."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent('''
    import os, sys, threading
    import mxnet as mx
    import mxcompress.ops as ops
    from mxcompress.ops.selfcheck import CASES, check_case
    ops.load()
    mode = sys.argv[1]
    if mode == 'threads':  # every case on the team of OMP_NUM_THREADS members
        for i, case in enumerate(CASES):
            check_case(case, seed=i)
    elif mode == 'concurrent':  # two callers at once, each checked against the reference
        errors = []
        def worker(offset):
            try:
                for i, case in enumerate(CASES[offset::2] * 3):
                    check_case(case, seed=offset + i)
            except Exception as exc:  # reported by the main thread
                errors.append(repr(exc))
        threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    elif mode == 'fork':  # the team runs in the parent, then a forked child uses the op
        import numpy as np
        from mxcompress.ops.reference import random_case, reference_numpy, run_op
        n, c, h, w, o, k, s, p, d = CASES[12]
        x, weight, alpha, bias = random_case(np.random.RandomState(0), n, c, h, w, o, k, True)
        conv = dict(kernel=k, stride=s, pad=p, dilate=d)
        want = reference_numpy(x, weight, alpha, bias, **conv)
        np.testing.assert_array_equal(run_op(x, weight, alpha, bias, **conv), want)
        pid = os.fork()
        if pid == 0:  # only the op and copies here: MXNet's own OpenMP ops hang after fork
            try:
                np.testing.assert_array_equal(run_op(x, weight, alpha, bias, **conv), want)
            except BaseException:
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    print('ok')
''')


def run_script(mode, threads, dispatch, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_ENGINE_TYPE='NaiveEngine',
               MXCOMPRESS_XNOR_THREADS=dispatch,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', SCRIPT, mode], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and proc.stdout.strip().endswith('ok'), proc.stderr[-3000:]


DISPATCH = ['team', 'openmp']


@pytest.mark.parametrize('dispatch', DISPATCH)
@pytest.mark.parametrize('threads', [3, 5])
def test_more_threads_than_cores_match_the_reference(threads, dispatch):
    run_script('threads', threads, dispatch)


@pytest.mark.parametrize('dispatch', DISPATCH)
def test_concurrent_callers_match_the_reference(dispatch):
    run_script('concurrent', 3, dispatch)


@pytest.mark.parametrize('dispatch', DISPATCH)
def test_forked_child_runs_the_op(dispatch):
    run_script('fork', 3, dispatch)
