"""``mxcompress prune``: outputs, reports, sensitivity files and bad input (nothing written)."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.cli import main
from mxcompress.pruning import (plot_sensitivity, report_markdown, pruning_report,
                                sensitivity_sweep, targets_from_sensitivity,
                                write_sensitivity_csv)
from test_pruning_masks import random_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def lenet5_ckpt(tmp_path):
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    prefix = str(tmp_path / 'in' / 'lenet5')
    save_checkpoint(prefix, 0, sym, args, aux)
    return prefix


def test_level_prune_writes_standard_checkpoint_and_report(lenet5_ckpt, tmp_path, mnist_dir,
                                                           capsys):
    out = str(tmp_path / 'out' / 'pruned')
    assert main(['prune', lenet5_ckpt, '--output', out, '--method', 'level', '--sparsity',
                 '0.8', '--layers', 'lenet5_fc1,lenet5_conv2', '--num-test-examples',
                 '100']) == 0
    sym, args, _ = mx.model.load_checkpoint(out, 0)  # plain MXNet reads it
    assert 'elemwise_mul' not in sym.tojson()
    assert np.mean(args['lenet5_fc1_weight'].asnumpy() == 0) == pytest.approx(0.8, abs=1e-4)
    assert np.count_nonzero(args['lenet5_fc2_weight'].asnumpy() == 0) == 0
    report = json.load(open(out + '-report.json'))
    rows = {r['layer']: r for r in report['layers']}
    assert rows['lenet5_conv2']['sparsity'] == pytest.approx(0.8)
    assert rows['lenet5_fc1']['remaining_macs'] == 80000
    assert '| lenet5_fc1 | FullyConnected | 500x800 |' in open(out + '-report.md').read()
    assert 'weights nonzero' in capsys.readouterr().out


def test_filter_prune_with_finetune(lenet5_ckpt, tmp_path, mnist_dir):
    out = str(tmp_path / 'thin')
    assert main(['prune', lenet5_ckpt, '--output', out, '--method', 'filter', '--sparsity',
                 'lenet5_conv1=0.5,lenet5_conv2=0.6', '--filter-norm', 'l2', '--num-epochs', '1',
                 '--num-examples', '300', '--batch-size', '50', '--num-test-examples',
                 '100']) == 0
    _, args, _ = load_checkpoint(out, 0, {'data': (1, 1, 28, 28)})
    assert args['lenet5_conv1_weight'].shape == (10, 1, 5, 5)
    assert args['lenet5_conv2_weight'].shape == (20, 10, 5, 5)
    assert args['lenet5_fc1_weight'].shape == (500, 320)


@pytest.mark.parametrize('argv,message', [
    (['--sparsity', '1.0'], r'--sparsity must be in \[0, 1\)'),
    (['--sparsity', '-0.2'], r'--sparsity must be in \[0, 1\)'),
    (['--sparsity', '0.5', '--layers', 'conv1'],
     'unknown layer.*conv1.*lenet5_conv1, lenet5_conv2, lenet5_fc1, lenet5_fc2'),
    (['--method', 'filter', '--sparsity', 'lenet5_conv1=0.99'],
     'cannot remove 20 of the 20 filters of lenet5_conv1'),
    (['--method', 'filter', '--sparsity', '0.5', '--layers', 'lenet5_fc1'],
     'unknown conv layer.*lenet5_conv1, lenet5_conv2'),
    (['--method', 'threshold'], 'needs --quality'),
    (['--method', 'filter', '--sensitivity', '--tolerance', '0.01'], 'filter needs --sparsity'),
    (['--method', 'agp', '--sparsity', '0.5'], 'num-epochs must be >= 1'),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(lenet5_ckpt, tmp_path, capsys, argv,
                                                       message):
    out_dir = tmp_path / 'out'
    code = main(['prune', lenet5_ckpt, '--output', str(out_dir / 'x')] + argv)
    assert code == 2
    import re
    assert re.search(message, capsys.readouterr().err)
    assert not out_dir.exists() or not os.listdir(out_dir)


def test_params_not_matching_the_symbol_is_refused(tmp_path, capsys):
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    args['lenet5_fc1_weight'] = mx.nd.zeros((500, 10))
    prefix = str(tmp_path / 'bad')
    save_checkpoint(prefix, 0, sym, args, aux)
    assert main(['prune', prefix, '--output', str(tmp_path / 'o' / 'x'), '--sparsity',
                 '0.5']) == 2
    assert 'lenet5_fc1_weight has shape (500, 10)' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_sensitivity_sweep_csv_png_and_targets(tmp_path, mnist_dir):
    from mxcompress.data import load_mnist
    sym = symbols.get_symbol('lenet300')
    args, aux = random_params(sym)
    # random weights suffice for the mechanics; the reference is the unpruned error
    images, labels = load_mnist('test', num_examples=200)
    rows = sensitivity_sweep(sym, args, aux, images, labels, sparsities=[0.0, 0.5, 0.9])
    assert len(rows) == 9 and {r['layer'] for r in rows} == {'lenet300_fc1', 'lenet300_fc2',
                                                             'lenet300_fc3'}
    assert all(r['accuracy_drop'] == 0 for r in rows if r['sparsity'] == 0.0)
    targets = targets_from_sensitivity(rows, max_drop=1.0)
    assert targets == {'lenet300_fc1': 0.9, 'lenet300_fc2': 0.9, 'lenet300_fc3': 0.9}
    synthetic = [{'layer': 'a', 'sparsity': s, 'accuracy_drop': d}
                 for s, d in ((0.0, 0.0), (0.5, 0.001), (0.8, 0.004), (0.9, 0.02))]
    synthetic.append({'layer': 'b', 'sparsity': 0.5, 'accuracy_drop': 0.01})
    assert targets_from_sensitivity(synthetic, 0.005) == {'a': 0.8, 'b': 0.0}
    csv_path = write_sensitivity_csv(rows, str(tmp_path / 's.csv'))
    assert open(csv_path).readline().strip() == 'layer,sparsity,error,accuracy,accuracy_drop'
    png = plot_sensitivity(rows, str(tmp_path / 's.png'), max_drop=0.01)
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_report_markdown_totals():
    sym = symbols.get_symbol('lenet300')
    args, _ = random_params(sym)
    args['lenet300_fc3_weight'] = mx.nd.zeros((10, 100))
    report = pruning_report(sym, args)
    md = report_markdown(report, 'x')
    assert '| lenet300_fc3 | FullyConnected | 10x100 | 1010 | 0 | 100.00% | 1000 | 0 |' in md
    assert '| **total** | | | 266610 | 265200 |' in md


def test_train_prune_script_help():
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'train', 'train_prune.py'),
                          '--help'], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=ROOT)).stdout
    for option in ('--method', '--sparsity', '--quality', '--layers', '--num-epochs',
                   '--output', '--steps', '--filter-norm', '--l1-gamma', '--tolerance'):
        assert option in out
    assert 'fine-tune epochs per pruning step' in out


def test_network_slimming_end_to_end(tmp_path, mnist_dir):
    from test_pruning_filters import conv_bn_net
    sym = conv_bn_net()
    args, aux = random_params(sym)
    prefix = str(tmp_path / 'bn')
    save_checkpoint(prefix, 0, sym, args, aux)
    out = str(tmp_path / 'slim')
    assert main(['prune', prefix, '--output', out, '--method', 'slim', '--sparsity', '0.5',
                 '--regularize-epochs', '1', '--l1-gamma', '1e-3', '--num-epochs', '1',
                 '--num-examples', '300', '--batch-size', '50', '--num-test-examples',
                 '100']) == 0
    _, new_args, new_aux = load_checkpoint(out, 0, {'data': (1, 1, 28, 28)})
    assert new_args['bn1_gamma'].shape[0] + new_args['bn2_gamma'].shape[0] == 7  # 14 -> 7
    assert new_aux['bn2_moving_mean'].shape == new_args['bn2_gamma'].shape


def test_l1_regularised_training_shrinks_weights(mnist_dir):
    from conftest import fit_args
    from mxcompress import data as mnist_data
    from mxcompress.fit import fit
    from mxcompress.pruning import l1_optimizer_params
    sym = symbols.get_symbol('lenet300')
    args, _ = random_params(sym)
    norms = {}
    for l1 in (0.0, 1e-2):
        train, val = mnist_data.mnist_iterators(50, num_examples=500, num_test_examples=100)
        opts = fit_args(num_epochs=1, batch_size=50, lr=0.05, lr_schedule='none')
        opts.optimizer, opt_params = l1_optimizer_params(sym, opts, weight_l1=l1)
        module = fit(opts, sym, train, val, arg_params=dict(args), optimizer_params=opt_params)
        norms[l1] = np.abs(module.get_params()[0]['lenet300_fc1_weight'].asnumpy()).sum()
    assert norms[1e-2] < 0.9 * norms[0.0]
