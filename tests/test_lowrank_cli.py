"""``mxcompress lowrank``: output against the library, bad input, help."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.cli import main
from mxcompress.measure import predict


@pytest.fixture
def lenet5_ckpt(tmp_path):
    sym = symbols.get_symbol('lenet5')
    arg_shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    rng = np.random.RandomState(0)
    args = {k: mx.nd.array(rng.randn(*s) * 0.1) for k, s in zip(sym.list_arguments(), arg_shapes)
            if k not in ('data', 'softmax_label')}
    prefix = str(tmp_path / 'in' / 'lenet5')
    save_checkpoint(prefix, 0, sym, args, {})
    return prefix


def test_cli_writes_a_checkpoint_exact_at_full_rank(lenet5_ckpt, tmp_path, capsys):
    out = str(tmp_path / 'out' / 'lr')
    code = main(['lowrank', lenet5_ckpt, '--output', out, '--conv-scheme', 'spatial',
                 '--ranks', 'lenet5_conv1=5,lenet5_conv2=100,lenet5_fc1=500'])
    assert code == 0
    text = capsys.readouterr().out
    assert 'lenet5_conv2' in text and 'spatial' in text
    sym, args, aux = load_checkpoint(lenet5_ckpt)
    new_sym, new_args, new_aux = load_checkpoint(out, 0, {'data': (1, 1, 28, 28)})
    assert 'lenet5_conv2_v_weight' in new_args and 'lenet5_fc2_weight' in new_args
    x = np.random.RandomState(1).rand(8, 1, 28, 28).astype(np.float32)
    np.testing.assert_allclose(predict(new_sym, new_args, new_aux, x, 8),
                               predict(sym, args, aux, x, 8), rtol=1e-3, atol=1e-5)


def test_cli_ratio_and_compression(lenet5_ckpt, tmp_path, capsys):
    out = str(tmp_path / 'c')
    assert main(['lowrank', lenet5_ckpt, '--output', out, '--layers',
                 'lenet5_conv1,lenet5_conv2', '--compression', '2', '--cost', 'macs',
                 '--json']) == 0
    import json
    report = json.loads(capsys.readouterr().out)
    layers = report['layers']
    assert sum(r['factored_macs'] for r in layers) * 2 <= sum(r['macs'] for r in layers)
    assert main(['lowrank', lenet5_ckpt, '--output', out, '--layers', 'lenet5_fc1',
                 '--ratio', '0.1']) == 0


@pytest.mark.parametrize('argv,message', [
    (['--ranks', 'lenet5_fc1=0'], r'layer lenet5_fc1: rank must be an integer in 1..500'),
    (['--rank', '11', '--layers', 'lenet5_fc2'], r'layer lenet5_fc2: rank .*1..10.*got 11'),
    (['--rank', '2', '--layers', 'lenet5_pool1'], 'layer lenet5_pool1 is a Pooling'),
    (['--ranks', 'lenet5_fc1=2', '--schemes', 'lenet5_fc1=channel'],
     "lenet5_fc1: scheme 'channel' does not apply"),
    (['--ranks', 'lenet5_fc1'], '--ranks: expected NAME=VALUE'),
    (['--rank', '2', '--ratio', '0.5'], 'only one of --rank, --ratio'),
    (['--energy', '1.5'], r'energy must be in \(0, 1\]'),
    (['--layers', 'lenet5_fc1'], 'no rank given'),
])
def test_cli_bad_input_is_a_clear_error_and_writes_nothing(lenet5_ckpt, tmp_path, capsys,
                                                           argv, message):
    out = tmp_path / 'bad' / 'x'
    assert main(['lowrank', lenet5_ckpt, '--output', str(out)] + argv) == 2
    import re
    assert re.search(message, capsys.readouterr().err)
    assert not out.parent.exists() or not os.listdir(out.parent)


def test_cli_fine_tunes(lenet5_ckpt, tmp_path, capsys, mnist_dir):
    out = str(tmp_path / 'ft')
    assert main(['lowrank', lenet5_ckpt, '--output', out, '--ranks', 'lenet5_fc1=8',
                 '--num-epochs', '1', '--num-examples', '300', '--num-test-examples', '100',
                 '--batch-size', '50']) == 0
    text = capsys.readouterr().out
    assert 'test error fine_tuned' in text
    load_checkpoint(out, 0)


def test_cli_help_explains():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, '-m', 'mxcompress.cli', 'lowrank', '--help'],
                         capture_output=True, text=True, check=True, cwd=root).stdout
    for option in ('--layers', '--rank', '--ranks', '--ratio', '--energy', '--compression',
                   '--conv-scheme', '--num-epochs', '--output', 'Jaderberg', 'Denton'):
        assert option in out


def test_cli_skips_depthwise_convolutions_of_a_mobilenet(tmp_path, capsys):
    """A MobileNetV2 (committed, gluoncv architecture): every depthwise conv is skipped with
    its reason, the other layers are factorised, exactly at full ratio."""
    prefix = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'benchmarks', 'models', 'kd-light-mobilenetv2_0.25-alone')
    out = str(tmp_path / 'out' / 'lr')
    assert main(['lowrank', prefix, '--output', out, '--energy', '1.0', '--json']) == 0
    import json
    summary = json.loads(capsys.readouterr().out)
    sym, args, aux = load_checkpoint(prefix)
    depthwise = [n for n in json.loads(sym.tojson())['nodes'] if n['op'] == 'Convolution'
                 and n['attrs'].get('num_group', '1') != '1']
    assert len(depthwise) == 17
    assert sorted(s['layer'] for s in summary['skipped']) == sorted(n['name'] for n in depthwise)
    assert all('depthwise convolution' in s['reason'] for s in summary['skipped'])
    assert len(summary['layers']) > 30
    new_sym, new_args, new_aux = load_checkpoint(out, 0)
    x = np.random.RandomState(1).rand(4, 1, 28, 28).astype(np.float32)
    np.testing.assert_allclose(predict(new_sym, new_args, new_aux, x, 4),
                               predict(sym, args, aux, x, 4), rtol=1e-3, atol=1e-4)
