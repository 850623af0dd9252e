"""The command line: errors, help, and the train and summary commands."""
import os
import subprocess
import sys

from mxcompress.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_unknown_network_is_a_clear_error(capsys, mnist_dir):
    assert main(['train', '--network', 'nope', '--num-epochs', '1']) == 2
    err = capsys.readouterr().err
    assert "unknown network 'nope'" in err and 'lenet5' in err


def test_missing_data_names_the_directory(capsys, tmp_path):
    code = main(['train', '--network', 'lenet300', '--data-dir', str(tmp_path),
                 '--num-epochs', '1'])
    assert code == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, '-m', 'mxcompress.cli', 'train', '--help'],
                         capture_output=True, text=True, check=True).stdout
    for option in ('--network', '--data-dir', '--lr-schedule', '--load-epoch', '--kv-store',
                   '--seed'):
        assert option in out


def test_train_script_end_to_end_and_summary(tmp_path, mnist_dir, capsys):
    prefix = str(tmp_path / 'lenet300')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'train', 'train_mnist.py'),
                           '--network', 'lenet300', '--num-epochs', '2', '--num-examples', '2000',
                           '--num-test-examples', '500', '--lr', '0.1', '--disp-batches', '5',
                           '--model-prefix', prefix],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    error = float(proc.stdout.split('test error:')[1].split('%')[0])
    assert error < 25.0  # chance is 90 %
    assert 'Speed' in proc.stderr  # Speedometer progress
    assert main(['summary', prefix, '--epoch', '2']) == 0
    out = capsys.readouterr().out
    assert 'lenet300_fc1' in out and '266610' in out
