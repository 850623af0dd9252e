"""Distillation training with Module: frozen and joint teachers, the saved student, bad input."""
import argparse
import os

import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mxcompress.cli import main as cli_main
from mxcompress.data import load_mnist
from mxcompress.commands.distill import add_kd_args, build_kd, run_kd
from mxcompress.measure import classification_error


def kd_args(**overrides):
    parser = argparse.ArgumentParser()
    add_kd_args(parser)
    args = parser.parse_args([])
    args.disp_batches, args.num_examples, args.num_test_examples = 1000, 1000, 500
    args.num_epochs, args.batch_size, args.lr, args.student = 1, 50, 0.1, 'lenet300'
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@pytest.fixture(scope='module')
def teacher_prefix(tmp_path_factory, mnist_dir):
    """A small MLP teacher (784-64-10) trained for one epoch on 2,000 images."""
    from mxcompress.fit import fit
    from mxcompress.data import mnist_iterators
    from conftest import fit_args
    prefix = str(tmp_path_factory.mktemp('teacher') / 'teacher')
    symbol = symbols.get_symbol('mlp', hidden=(64,), dropout=0.3)
    train, test = mnist_iterators(50, num_examples=2000, num_test_examples=500)
    module = fit(fit_args(num_epochs=1, batch_size=50, lr=0.1), symbol, train, test)
    save_checkpoint(prefix, 0, symbol, *module.get_params())
    return prefix


def test_frozen_teacher_stays_fixed_and_student_is_saved(teacher_prefix, tmp_path):
    out = str(tmp_path / 'student')
    result = run_kd(kd_args(teacher_prefix=teacher_prefix, temperature=4.0, t2_scaling=True,
                            output_prefix=out))
    _, t_args, _ = load_checkpoint(teacher_prefix, 0)
    trained, _ = result['module'].get_params()
    for name, value in t_args.items():
        np.testing.assert_array_equal(trained['teacher_' + name].asnumpy(), value.asnumpy())
    # the deployed student is a standard checkpoint: data in, probabilities first out
    sym, s_args, s_aux = load_checkpoint(out, 0, data_shapes={'data': (1, 1, 28, 28)})
    assert sym.list_outputs()[0] == 'softmax_output' and sym.list_arguments()[0] == 'data'
    assert not any(k.startswith('teacher_') for k in s_args)
    images, labels = load_mnist('test', num_examples=500)
    error = classification_error(sym, s_args, s_aux, images, labels)
    assert error == result['student_test_error']
    assert error < 0.5  # it learnt something in one epoch on 1,000 images
    probs = mx.model.load_checkpoint(out, 0)  # readable by MXNet's own loader
    assert 'fc_class_score_weight' in probs[1]


def test_joint_training_trains_both(mnist_dir):
    result = run_kd(kd_args(joint=True, teacher='mlp', student='shallow-cnn', temperature=2.0))
    trained, _ = result['module'].get_params()
    assert any(k.startswith('teacher_mlp_') for k in trained)
    assert result['teacher_test_error'] < 0.5 and result['student_test_error'] < 0.9


def test_bad_temperature_and_mimic_weight(teacher_prefix, tmp_path):
    for bad in (dict(temperature=0.0), dict(temperature=-3.0), dict(mimic_weight=-1.0)):
        out = str(tmp_path / 'never')
        with pytest.raises(ValueError, match='temperature|mimic-weight'):
            run_kd(kd_args(teacher_prefix=teacher_prefix, output_prefix=out, **bad))
        assert not os.listdir(tmp_path)


def test_frozen_teacher_needs_a_checkpoint():
    with pytest.raises(ValueError, match='--teacher-prefix'):
        build_kd(kd_args())


def test_teacher_with_other_class_count(tmp_path):
    prefix = str(tmp_path / 't5')
    symbol = symbols.get_symbol('mlp', num_classes=5, hidden=(8,))
    shapes, _, _ = symbol.infer_shape(data=(1, 1, 28, 28))
    params = {n: mx.nd.zeros(s) for n, s in zip(symbol.list_arguments(), shapes)
              if n not in ('data', 'softmax_label')}
    save_checkpoint(prefix, 0, symbol, params, {})
    with pytest.raises(ValueError, match='teacher has 5 classes'):
        build_kd(kd_args(teacher_prefix=prefix))


def test_teacher_params_not_fitting_its_symbol(teacher_prefix, tmp_path):
    symbol, arg_params, aux_params = load_checkpoint(teacher_prefix, 0)
    prefix = str(tmp_path / 'bad')
    wrong = dict(arg_params, mlp_fc1_weight=mx.nd.zeros((32, 784)))
    save_checkpoint(prefix, 0, symbol, wrong, aux_params)
    with pytest.raises(CheckpointError, match='mlp_fc1_weight'):
        build_kd(kd_args(teacher_prefix=prefix))
    missing = {k: v for k, v in arg_params.items() if k != 'mlp_fc2_bias'}
    save_checkpoint(prefix, 0, symbol, missing, aux_params)
    with pytest.raises(CheckpointError, match='mlp_fc2_bias'):
        build_kd(kd_args(teacher_prefix=prefix))


def test_cli_reports_bad_input(capsys, tmp_path, mnist_dir):
    code = cli_main(['distill', '--teacher-prefix', str(tmp_path / 'nope'), '--temperature',
                     '2'])
    assert code == 2 and 'nope-symbol.json' in capsys.readouterr().err
    code = cli_main(['distill', '--joint', '--temperature', '0'])
    assert code == 2 and 'Temperature' in capsys.readouterr().err


def test_distill_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        cli_main(['distill', '--help'])
    out = capsys.readouterr().out
    for option in ('--temperature', '--mimic-weight', '--teacher-prefix', '--teacher-epoch',
                   '--joint', '--student', '--teacher', '--t2-scaling', '--output-prefix'):
        assert option in out
