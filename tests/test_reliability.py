"""Nothing silent, nothing lost: each reported failure reproduced, and now refused loudly.

Divergence stops the fit (no checkpoint of non-finite weights); a checkpoint is one unit (a
crash between its files, a second writer or a new symbol beside old params is detected);
outputs are checked before any work; bad options and files are one-line errors with exit
status 2, runtime failures status 1, no traceback without --verbose.
"""
import os
import subprocess
import sys
import threading

import mxnet as mx
import numpy as np
import pytest

import symbols
from conftest import random_params
from mxcompress import checkpoint
from mxcompress.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mxcompress.cli import main
from mxcompress.fit import TrainingDiverged, fit_options, train_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'benchmarks', 'models')


def _lenet300(seed=0):
    symbol = symbols.get_symbol('lenet300')
    arg_params, aux_params = random_params(symbol, seed)
    return symbol, arg_params, aux_params


# 1. divergence -------------------------------------------------------------------------------

def test_divergence_stops_the_fit_and_saves_nothing(tmp_path, mnist_dir):
    prefix = str(tmp_path / 'diverged')
    args = fit_options(num_examples=640, num_test_examples=100, batch_size=64, lr=1e6,
                       num_epochs=1, model_prefix=prefix, disp_batches=1000)
    with pytest.raises(TrainingDiverged, match=r'diverged at (epoch 0, batch \d+|the end of '
                                               r'epoch 0)'):
        train_model(args, symbols.get_symbol('lenet5'))
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.params')]


def test_divergence_is_a_runtime_failure_on_the_command_line(tmp_path, mnist_dir, capsys):
    code = main(['train', '--network', 'lenet5', '--num-epochs', '1', '--num-examples', '640',
                 '--num-test-examples', '100', '--lr', '1e6', '--model-prefix',
                 str(tmp_path / 'm')])
    err = capsys.readouterr().err
    assert code == 1 and 'training diverged' in err and 'Traceback' not in err
    assert not os.path.exists(str(tmp_path / 'm-0001.params'))


@pytest.mark.parametrize('argv,message', [
    (['--lr', 'inf'], 'argument --lr: must be a finite number'),
    (['--lr', '-1'], 'argument --lr: must be > 0'),
    (['--mom', '-5'], r'argument --mom: must be in \[0, 1\)'),
    (['--jitter', '100'], 'argument --jitter: must be in 0..8'),
    (['--lr-step-epochs', 'a'], 'argument --lr-step-epochs: must be comma-separated epochs'),
    (['--num-classes', '0'], 'argument --num-classes: must be a positive integer'),
    (['--num-epochs', '-1'], 'argument --num-epochs: must be a positive integer'),
])
def test_bad_training_options_are_refused(argv, message):
    proc = subprocess.run([sys.executable, '-m', 'mxcompress', 'train'] + argv,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 2
    assert __import__('re').search(message, proc.stderr), proc.stderr


def test_checkpoint_refuses_non_finite_weights(tmp_path):
    symbol, arg_params, aux_params = _lenet300()
    arg_params['lenet300_fc2_weight'][0, 0] = float('nan')
    with pytest.raises(CheckpointError, match='lenet300_fc2_weight holds 1 non-finite'):
        save_checkpoint(str(tmp_path / 'm'), 0, symbol, arg_params, aux_params)
    assert os.listdir(tmp_path) == [] or all(f.startswith('.') for f in os.listdir(tmp_path))


# 3. a checkpoint is one unit ------------------------------------------------------------------

def test_new_symbol_beside_old_params_is_refused(tmp_path):
    prefix = str(tmp_path / 'm')
    symbol, arg_params, aux_params = _lenet300()
    save_checkpoint(prefix, 1, symbol, arg_params, aux_params)
    symbols.get_symbol('lenet300', num_classes=10, name='other').save(prefix + '-symbol.json')
    with pytest.raises(CheckpointError, match='m-symbol.json: checksum mismatch with its '
                                              'manifest'):
        load_checkpoint(prefix, 1)


@pytest.mark.parametrize('fail_at', [1, 2, 3, 4])
def test_crash_at_any_rename_leaves_the_old_checkpoint_or_the_new_one(tmp_path, monkeypatch,
                                                                       fail_at):
    """Fault injection: the k-th os.replace of a save fails (a crash there); the prefix still
    loads as the complete old checkpoint, or is refused -- never a mix read silently."""
    prefix = str(tmp_path / 'm')
    old = _lenet300(0)
    save_checkpoint(prefix, 1, *old)
    new = _lenet300(1)
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError(28, 'No space left on device', dst)
        return real_replace(src, dst)
    monkeypatch.setattr(checkpoint.os, 'replace', failing_replace)
    with pytest.raises(OSError):
        save_checkpoint(prefix, 1, *new)
    monkeypatch.setattr(checkpoint.os, 'replace', real_replace)
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]  # no temporaries left
    try:
        _, got, _ = load_checkpoint(prefix, 1)
    except CheckpointError as err:
        assert 'checksum mismatch' in str(err)
        return
    np.testing.assert_array_equal(got['lenet300_fc1_weight'].asnumpy(),
                                  old[1]['lenet300_fc1_weight'].asnumpy())


def test_full_disk_leaves_no_orphan_symbol(tmp_path, monkeypatch):
    prefix = str(tmp_path / 'm')

    def no_space(path, data):
        raise OSError(28, 'No space left on device', path)
    monkeypatch.setattr(checkpoint.mx.nd, 'save', no_space)
    with pytest.raises(OSError, match='No space left'):
        save_checkpoint(prefix, 0, *_lenet300())
    assert [f for f in os.listdir(tmp_path) if not f.startswith('.')] == []


def test_concurrent_writers_never_leave_a_mismatched_pair(tmp_path):
    prefix = str(tmp_path / 'm')
    models = [_lenet300(i) for i in range(2)]

    def write(i):
        for _ in range(5):
            save_checkpoint(prefix, 1, *models[i])
    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, got, _ = load_checkpoint(prefix, 1)
    assert any(np.array_equal(got['lenet300_fc1_weight'].asnumpy(),
                              m[1]['lenet300_fc1_weight'].asnumpy()) for m in models)


def test_wrong_shape_is_refused_without_a_data_shape(tmp_path):
    prefix = str(tmp_path / 'm')
    symbol, arg_params, aux_params = _lenet300()
    arg_params['lenet300_fc2_weight'] = mx.nd.zeros((100, 301))
    arg_params['lenet300_fc1_weight'] = mx.nd.zeros((300, 784))
    mx.nd.save(prefix + '-0000.params', {'arg:' + k: v for k, v in arg_params.items()})
    symbol.save(prefix + '-symbol.json')
    with pytest.raises(CheckpointError, match='params do not fit|has shape'):
        load_checkpoint(prefix, 0)


# 5. environment errors, 6. checksums ------------------------------------------------------------

@pytest.mark.parametrize('setup,message', [
    ('directory', 'names a directory'),
    ('slash', 'names a directory'),
    ('readonly', 'is not writable'),
    ('input', 'would overwrite the input'),
])
def test_outputs_are_checked_before_any_work(tmp_path, capsys, monkeypatch, setup, message):
    output = {'directory': str(tmp_path), 'slash': str(tmp_path / 'out') + '/',
              'readonly': str(tmp_path / 'ro' / 'm'),
              'input': os.path.join(MODELS, 'lenet300')}[setup]
    if setup == 'readonly':
        readonly = tmp_path / 'ro'
        readonly.mkdir()
        os.chmod(str(readonly), 0o500)
        real_access = os.access   # root may write anyway: answer as for any other user

        def access(path, mode, **kw):
            if os.path.realpath(path) == str(readonly) and mode & os.W_OK:
                return False
            return real_access(path, mode, **kw)
        monkeypatch.setattr(checkpoint.os, 'access', access)
    code = main(['prune', os.path.join(MODELS, 'lenet300'), '--sparsity', '0.5',
                 '--num-epochs', '1', '--output', output])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize('content', ['', 'not-a-hash  m-0000.params\n', None])
def test_empty_or_odd_checksum_file_is_a_clear_error(tmp_path, content):
    prefix = str(tmp_path / 'm')
    save_checkpoint(prefix, 0, *_lenet300())
    os.remove(prefix + '-0000.manifest.json')
    sidecar = prefix + '-0000.params.sha256'
    os.remove(sidecar)
    if content is None:
        os.mkdir(sidecar)
    else:
        open(sidecar, 'w').write(content)
    with pytest.raises(CheckpointError, match='m-0000.params.sha256'):
        load_checkpoint(prefix, 0)


def test_flipped_params_byte_is_refused_even_without_the_sidecar(tmp_path):
    prefix = str(tmp_path / 'm')
    save_checkpoint(prefix, 0, *_lenet300())
    os.remove(prefix + '-0000.params.sha256')
    path = prefix + '-0000.params'
    blob = bytearray(open(path, 'rb').read())
    blob[-5] ^= 0x10
    open(path, 'wb').write(bytes(blob))
    with pytest.raises(CheckpointError, match='checksum mismatch'):
        load_checkpoint(prefix, 0)


def test_plain_export_loads_with_a_warning(tmp_path, caplog):
    prefix = str(tmp_path / 'export')
    symbol, arg_params, aux_params = _lenet300()
    mx.model.save_checkpoint(prefix, 0, symbol, arg_params, aux_params)
    with caplog.at_level('WARNING', logger='mxcompress'):
        load_checkpoint(prefix, 0)
    assert 'unverified' in caplog.text


def test_malformed_symbol_json_names_the_file(tmp_path):
    prefix = str(tmp_path / 'm')
    save_checkpoint(prefix, 0, *_lenet300())
    os.remove(prefix + '-0000.manifest.json')
    open(prefix + '-symbol.json', 'wb').write(b'\xff\xfe{ not json')
    with pytest.raises(CheckpointError, match='m-symbol.json: not a symbol file'):
        load_checkpoint(prefix, 0)


def test_batch_larger_than_the_data_is_a_clear_error(mnist_dir, capsys):
    code = main(['train', '--network', 'lenet300', '--num-epochs', '1', '--num-examples', '100',
                 '--batch-size', '128'])
    err = capsys.readouterr().err   # 100 images less the 10 % validation split
    assert code == 2 and '--batch-size 128 is larger than the 90 training' in err


def test_verbose_shows_the_traceback(tmp_path, mnist_dir, capsys):
    argv = ['train', '--network', 'lenet5', '--num-epochs', '1', '--num-examples', '640',
            '--num-test-examples', '100', '--lr', '1e6']
    assert main(argv) == 1
    assert 'Traceback' not in capsys.readouterr().err
    assert main(['--verbose'] + argv) == 1
    assert 'Traceback' in capsys.readouterr().err


# 8. the CLI opens the xnor checkpoints it makes ---------------------------------------------------

def test_cli_summary_of_an_xnor_checkpoint(capsys):
    assert main(['summary', os.path.join(MODELS, 'bnn-resnet-xnor')]) == 0
    assert 'total params' in capsys.readouterr().out


# 10. smaller silent acceptances --------------------------------------------------------------------

def test_deep_compress_refuses_unknown_bits_layer(tmp_path, capsys):
    code = main(['deep-compress', os.path.join(MODELS, 'lenet300'), '--output',
                 str(tmp_path / 'x.mxc'), '--bits', 'nosuch=4'])
    assert code == 2 and '--bits: unknown layer(s) nosuch' in capsys.readouterr().err


def test_pack_refuses_unknown_bits_layer(tmp_path, capsys):
    code = main(['pack', os.path.join(MODELS, 'lenet300'), str(tmp_path / 'x.mxc'),
                 '--bits', 'nosuch=4'])
    assert code == 2 and '--bits: unknown layer(s) nosuch' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_filter_pruning_without_convolutions_is_refused(tmp_path, capsys):
    code = main(['prune', os.path.join(MODELS, 'lenet300'), '--method', 'filter',
                 '--sparsity', '0.5', '--output', str(tmp_path / 'p')])
    assert code == 2 and 'has no Convolution layer' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('command,argv', [
    ('lowrank', ['--num-epochs', '-1', '--rank', '5']),
    ('deep-compress', ['--prune-epochs', '-2']),
    ('deep-compress', ['--quant-epochs', '-1']),
])
def test_negative_epochs_are_refused(tmp_path, command, argv):
    output = ['--output', str(tmp_path / ('x.mxc' if command == 'deep-compress' else 'x'))]
    proc = subprocess.run([sys.executable, '-m', 'mxcompress', command,
                           os.path.join(MODELS, 'lenet300')] + output + argv,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 2 and 'must be an integer >= 0' in proc.stderr, proc.stderr
