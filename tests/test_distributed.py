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


def lenet300_start(seed=0):
    import symbols
    sym = symbols.get_symbol('lenet300')
    shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    args = {}
    for name, shape in zip(sym.list_arguments(), shapes):
        if name in ('data', 'softmax_label'):
            continue
        args[name] = mx.nd.zeros(shape)
        mx.init.Xavier(magnitude=2)(mx.init.InitDesc(name), args[name])
    return sym, args


def test_dist_sync_keeps_pruned_weights_at_zero(tmp_path, mnist_dir):
    from mxcompress.checkpoint import save_checkpoint
    from mxcompress.pruning import insert_masks, level_mask
    mx.random.seed(0)
    sym, args = lenet300_start()
    masks = {w: level_mask(args[w], 0.9) for w in args if w.endswith('_weight')}
    sym, args, mask_names = insert_masks(sym, args, masks)
    save_checkpoint(str(tmp_path / 'pruned'), 0, sym, args, {})
    params, logs = run_group(tmp_path, '--init', str(tmp_path / 'pruned'),
                             '--fixed', ','.join(mask_names))
    for name in params[0]:
        np.testing.assert_array_equal(params[0][name].asnumpy(), params[1][name].asnumpy())
    for weight, mask in masks.items():
        final = params[0][weight].asnumpy()
        assert np.all(final[mask == 0] == 0)            # pruned weights exactly zero
        assert np.count_nonzero(final) == mask.sum()    # and every kept one still alive
        np.testing.assert_array_equal(params[0][weight + '_mask'].asnumpy(), mask)
    for log in logs:
        assert np.mean(log['losses'][-5:]) < np.mean(log['losses'][:5])


def test_dist_sync_keeps_codebook_indices_fixed(tmp_path, mnist_dir):
    from mxcompress.checkpoint import save_checkpoint
    from mxcompress.quantization import codebook_rewrite, quantize_params
    mx.random.seed(0)
    sym, args = lenet300_start()
    plan = quantize_params(sym, args, fc_bits=4)
    sym, args, fixed = codebook_rewrite(sym, args, plan)
    save_checkpoint(str(tmp_path / 'coded'), 0, sym, args, {})
    params, _ = run_group(tmp_path, '--init', str(tmp_path / 'coded'), '--fixed', ','.join(fixed))
    for name in params[0]:
        np.testing.assert_array_equal(params[0][name].asnumpy(), params[1][name].asnumpy())
    for name in fixed:
        np.testing.assert_array_equal(params[0][name].asnumpy(), args[name].asnumpy())
    codebooks = [n for n in args if n.endswith('_codebook')]
    assert codebooks and any(not np.array_equal(params[0][n].asnumpy(), args[n].asnumpy())
                             for n in codebooks)  # the shared centroids were trained


def test_dist_sync_keeps_binary_latent_weights_clipped(tmp_path, mnist_dir):
    import symbols
    from mxcompress.binary.optimizer import latent_weight_names
    from mxcompress.checkpoint import save_checkpoint
    sym = symbols.get_symbol('binaryconnect-mlp', hidden=(64, 64))
    shapes, _, aux_shapes = sym.infer_shape(data=(1, 1, 28, 28))
    rng = np.random.RandomState(0)
    # latent weights start just inside the bound, so training pushes many of them against it
    args = {n: mx.nd.array(rng.choice([-1.0, 1.0], s) * rng.uniform(0.9, 0.999, s))
            for n, s in zip(sym.list_arguments(), shapes) if n not in ('data', 'softmax_label')}
    aux = {n: mx.nd.ones(s) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    save_checkpoint(str(tmp_path / 'bc'), 0, sym, args, aux)
    params, _ = run_group(tmp_path, '--init', str(tmp_path / 'bc'), '--optimizer',
                          'latentclipsgd')
    latent = latent_weight_names(sym)
    assert latent
    for name in latent:
        np.testing.assert_array_equal(params[0][name].asnumpy(), params[1][name].asnumpy())
        final = params[0][name].asnumpy()
        assert np.abs(final).max() == 1.0  # some updates hit the bound and were clipped
        assert not np.array_equal(final, args[name].asnumpy())


def test_dist_sync_only_rank_0_writes_the_checkpoint_and_the_others_wait(tmp_path, mnist_dir):
    """4 workers, 2 servers: the epoch-end checkpoint wrapped in ``rank0_only`` is written once,
    by rank 0, and every worker sees it complete after the barrier (rank 0 writes slowly)."""
    out = tmp_path / 'out'
    code = launch_local(4, 2, worker_cmd(out, '--rank0-checkpoint'), timeout=240,
                        env=env_with_path())
    assert code == 0
    logs = [json.load(open(out / ('worker-%d.json' % r))) for r in range(4)]
    assert sorted(l['rank'] for l in logs) == [0, 1, 2, 3]
    assert [l['num_data'] for l in logs] == [400] * 4
    assert sorted(p.name for p in out.glob('ckpt-*')) == [
        'ckpt-0001.params', 'ckpt-0001.params.sha256', 'ckpt-written-by-0']
    assert [l['saw_checkpoint'] for l in logs] == [[True]] * 4
