"""Binary training through the Module loop: checkpoints, latent clipping, footprint, bad input."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from conftest import ROOT
from mxcompress.binary.footprint import binary_footprint
from mxcompress.commands.train_bnn import add_bnn_args, main, network_options, run_bnn
from mxcompress.checkpoint import load_checkpoint


def _args(argv):
    import argparse
    return add_bnn_args(argparse.ArgumentParser()).parse_args(argv)


def test_train_saves_a_checkpoint_that_runs_with_builtin_ops(mnist_dir, tmp_path):
    prefix = str(tmp_path / 'xnor')
    args = _args(['--network', 'xnor-lenet5', '--widths', '4,8,16', '--num-epochs', '1',
                  '--num-examples', '400', '--num-test-examples', '200', '--batch-size', '50',
                  '--lr', '0.5', '--lr-schedule', 'none', '--model-prefix', prefix,
                  '--disp-batches', '1000', '--no-val'])
    symbol, arg_params, aux_params, error, footprint = run_bnn(args)
    assert 0.0 <= error <= 1.0
    # latent weights were clipped after every update (the large rate pushes them past 1)
    for layer in footprint['layers']:
        w = arg_params[layer['latent_weight']].asnumpy()
        assert np.abs(w).max() <= 1.0 and np.isclose(np.abs(w).max(), 1.0)
    assert np.abs(arg_params['xnor_lenet5_conv1_weight'].asnumpy()).max() > 1.0
    # the saved graph: mx.sym.load, built-in operators only, same predictions
    loaded = mx.sym.load(prefix + '-symbol.json')
    registered = set(mx.operator.get_all_registered_operators()) | {'null'}
    assert {n['op'] for n in json.loads(loaded.tojson())['nodes']} <= registered
    _, saved_args, saved_aux = load_checkpoint(prefix, 1)
    from mxcompress.measure import predict
    images = np.random.RandomState(0).rand(8, 1, 28, 28).astype(np.float32)
    np.testing.assert_allclose(predict(loaded, saved_args, saved_aux, images),
                               predict(symbol, arg_params, aux_params, images), rtol=1e-5)


def test_footprint_counts_one_bit_per_binary_weight():
    import symbols
    sym = symbols.get_symbol('bwn-lenet5')
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 1, 28, 28))
    args = {n: mx.nd.zeros(s) for n, s in zip(sym.list_arguments(), arg_shapes)
            if n not in ('data', 'softmax_label')}
    aux = {n: mx.nd.zeros(s) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    fp = binary_footprint(sym, args, aux)
    conv2, fc1 = 50 * 20 * 25, 500 * 800
    assert fp['binary_weights'] == conv2 + fc1
    assert fp['binary_weight_bytes_fp32'] == 4 * (conv2 + fc1)
    assert fp['binary_weight_bytes_1bit'] == conv2 // 8 + fc1 // 8 + 4 * (50 + 500)
    others = sum(v.size for k, v in args.items() if k not in ('bwn_lenet5_conv2_weight',
                                                               'bwn_lenet5_fc1_weight'))
    others += sum(v.size for v in aux.values())
    assert fp['other_params'] == others
    assert fp['model_bytes_fp32'] == 4 * (conv2 + fc1 + others)
    assert fp['binary_weight_ratio'] < 1 / 30


@pytest.mark.parametrize('argv,message', [
    (['--network', 'bnn-resnet', '--num-bits', '9'], '--num-bits must be an integer in 1..8'),
    (['--network', 'bnn-resnet', '--num-bits', '0'], '--num-bits must be an integer in 1..8'),
    (['--network', 'xnor-lenet5', '--num-bits', '2'], '--num-bits applies to bnn-resnet only'),
    (['--network', 'bwn-lenet5', '--widths', '4,8'], '--widths for bwn-lenet5 needs'),
    (['--network', 'bwn-lenet5', '--binarization', 'stochastic'], '--binarization applies'),
])
def test_bad_network_options(argv, message):
    with pytest.raises(ValueError, match=message):
        network_options(_args(argv))


def test_bad_latent_clip_and_optimizer_are_reported(mnist_dir, capsys):
    with pytest.raises(ValueError, match='--latent-clip must be a positive'):
        run_bnn(_args(['--latent-clip', '0']))
    with pytest.raises(ValueError, match='--optimizer for binary training must be one of'):
        run_bnn(_args(['--network', 'xnor-lenet5', '--optimizer', 'rmsprop',
                       '--num-examples', '100', '--num-test-examples', '100']))
    assert main(['--network', 'bnn-resnet', '--num-bits', '12']) == 2
    assert 'train-bnn: error: --num-bits must be an integer in 1..8' in capsys.readouterr().err


def test_unknown_binarization_mode_is_rejected_by_the_command_line():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'train', 'train_bnn.py'),
                           '--binarization', 'noisy'], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 2
    assert "--binarization: invalid choice: 'noisy'" in proc.stderr
