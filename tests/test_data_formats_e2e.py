"""Bring your own data: the commands run on a data set in every format, and the same images
give the same predictions whichever format they are read from."""
import os

import numpy as np
import pytest

from mxcompress.checkpoint import load_checkpoint
from mxcompress.cli import main
from mxcompress.fit import data_split, fit_options
from mxcompress.measure import predict


@pytest.fixture(scope='module')
def formats(tmp_path_factory, mnist_dir):
    """A 600 / 200 image subset of MNIST written as npz, folder and rec by convert-data."""
    root = tmp_path_factory.mktemp('formats')
    out = {'idx': mnist_dir}
    base = str(root / 'mnist.npz')
    assert main(['convert-data', mnist_dir, '--to', 'npz', base, '--num-examples', '600',
                 '--num-test-examples', '200']) == 0
    out['npz'] = base
    for fmt in ('folder', 'rec'):
        assert main(['convert-data', base, '--to', fmt, str(root / fmt)]) == 0
        out[fmt] = str(root / fmt)
    return out


def test_train_prune_lowrank_deep_compress_on_a_folder(formats, tmp_path, capsys):
    data = ['--data', formats['folder']]
    prefix = str(tmp_path / 'lenet5')
    assert main(['train', '--network', 'lenet5', '--num-epochs', '1', '--batch-size', '50',
                 '--model-prefix', prefix] + data) == 0
    assert 'test error' in capsys.readouterr().out
    assert main(['prune', prefix, '--epoch', '1', '--sparsity', '0.5', '--num-epochs', '1',
                 '--batch-size', '50', '--output', str(tmp_path / 'pruned')] + data) == 0
    assert main(['lowrank', prefix, '--epoch', '1', '--rank', '4', '--num-epochs', '1',
                 '--batch-size', '50', '--output', str(tmp_path / 'low')] + data) == 0
    assert main(['deep-compress', prefix, '--epoch', '1', '--output', str(tmp_path / 'x.mxc'),
                 '--prune-steps', '1', '--prune-epochs', '1', '--quant-epochs', '1',
                 '--batch-size', '50'] + data) == 0
    assert os.path.getsize(str(tmp_path / 'x.mxc')) > 0


@pytest.mark.parametrize('fmt', ['npz', 'rec'])
def test_train_bnn_and_distill_on_other_formats(formats, tmp_path, fmt):
    data = ['--data', formats[fmt]]
    assert main(['train-bnn', '--network', 'xnor-lenet5', '--num-epochs', '1',
                 '--batch-size', '50'] + data) == 0
    teacher = str(tmp_path / 'teacher')
    assert main(['train', '--network', 'lenet300', '--num-epochs', '1', '--batch-size', '50',
                 '--model-prefix', teacher] + data) == 0
    assert main(['distill', '--teacher-prefix', teacher, '--teacher-epoch', '1',
                 '--num-epochs', '1', '--batch-size', '50'] + data) == 0


def test_same_images_same_predictions_through_every_format(formats):
    symbol, arg_params, aux_params = load_checkpoint(
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     'benchmarks', 'models', 'lenet5'))
    predictions = {}
    for fmt, path in formats.items():
        images, labels = data_split(fit_options(data_dir=path, num_test_examples=200), 'test')
        if fmt == 'folder':   # a folder lists each class in turn (stable within a class)
            ref_images, ref_labels = data_split(fit_options(data_dir=formats['npz'],
                                                            num_test_examples=200), 'test')
            order = np.argsort(ref_labels, kind='stable')
            np.testing.assert_array_equal(images, ref_images[order])
            np.testing.assert_array_equal(labels, ref_labels[order])
        predictions[fmt] = (predict(symbol, arg_params, aux_params, images).argmax(1), labels)
    errors = {fmt: float(np.mean(p != l)) for fmt, (p, l) in predictions.items()}
    assert len(set(errors.values())) == 1, errors   # the same 200 images, in any order
    np.testing.assert_array_equal(predictions['npz'][0], predictions['idx'][0])
    np.testing.assert_array_equal(predictions['rec'][0], predictions['idx'][0])


def test_rewrite_only_needs_no_data(tmp_path, monkeypatch, capsys):
    """``prune --num-epochs 0`` and ``lowrank --num-epochs 0`` rewrite a checkpoint with no data
    set anywhere: shapes come from the checkpoint."""
    monkeypatch.delenv('MXCOMPRESS_DATA', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))          # no ~/.mxnet/datasets/mnist either
    models = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'benchmarks', 'models')
    out = str(tmp_path / 'thin')
    assert main(['prune', os.path.join(models, 'lenet5'), '--method', 'filter', '--sparsity',
                 '0.5', '--num-epochs', '0', '--output', out]) == 0
    assert 'test error not measured (no data set)' in capsys.readouterr().out
    symbol, arg_params, _ = load_checkpoint(out)
    assert arg_params['lenet5_conv1_weight'].shape[0] == 10   # half of the 20 filters
    assert main(['lowrank', os.path.join(models, 'lenet300'), '--rank', '20', '--layers',
                 'lenet300_fc1,lenet300_fc2', '--output', str(tmp_path / 'low')]) == 0
    assert main(['deep-compress', os.path.join(models, 'lenet300'), '--output',
                 str(tmp_path / 'x.mxc'), '--prune-epochs', '0', '--quant-epochs', '0']) == 0
    assert 'P+Q+H  test error not measured' in capsys.readouterr().out
