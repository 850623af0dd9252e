"""The Module training loop: learning, checkpoints, resume, repeatability."""
import os

import mxnet as mx
import numpy as np
import pytest

import symbols
from conftest import fit_args
from mxcompress import checkpoint, data
from mxcompress.fit import fit
from mxcompress.measure import classification_error, predict


def small_iters(mnist_dir, n=2000, batch=50, seed=0):
    return data.mnist_iterators(batch, mnist_dir, num_examples=n, num_test_examples=1000,
                                seed=seed)


def train(mnist_dir, tmp_path=None, **overrides):
    opts = dict(num_epochs=2, batch_size=50, lr=0.1, lr_schedule='none', num_examples=2000)
    opts.update(overrides)
    args = fit_args(**opts)
    train_iter, test_iter = small_iters(mnist_dir, args.num_examples, args.batch_size, args.seed)
    sym = symbols.get_symbol('lenet300')
    return sym, fit(args, sym, train_iter, test_iter)


def test_short_fit_clearly_beats_chance(mnist_dir):
    sym, module = train(mnist_dir)
    arg, aux = module.get_params()
    x, y = data.load_mnist('test', mnist_dir, 1000)
    assert classification_error(sym, arg, aux, x, y) < 0.20  # chance is 0.90


def test_same_seed_same_params(mnist_dir):
    runs = [train(mnist_dir, num_epochs=1, num_examples=500)[1].get_params()[0]
            for _ in range(2)]
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name].asnumpy(), runs[1][name].asnumpy())


def test_checkpoint_round_trip_identical_outputs(mnist_dir, tmp_path):
    prefix = str(tmp_path / 'net')
    sym, module = train(mnist_dir, num_epochs=1, num_examples=500, model_prefix=prefix)
    assert os.path.exists(prefix + '-symbol.json') and os.path.exists(prefix + '-0001.params')
    loaded_sym, arg, aux = checkpoint.load_checkpoint(prefix, 1, {'data': (1, 1, 28, 28)})
    std_sym, std_arg, std_aux = mx.model.load_checkpoint(prefix, 1)  # standard reader agrees
    x, _ = data.load_mnist('test', mnist_dir, 100)
    live_arg, live_aux = module.get_params()
    ref = predict(sym, live_arg, live_aux, x)
    np.testing.assert_array_equal(predict(loaded_sym, arg, aux, x), ref)
    np.testing.assert_array_equal(predict(std_sym, std_arg, std_aux, x), ref)


def test_resume_continues_from_saved_epoch(mnist_dir, tmp_path):
    prefix = str(tmp_path / 'net')
    train(mnist_dir, num_epochs=1, num_examples=500, model_prefix=prefix)
    first = checkpoint.load_checkpoint(prefix, 1)[1]
    _, module = train(mnist_dir, num_epochs=2, num_examples=500, model_prefix=prefix,
                      load_epoch=1)
    assert os.path.exists(prefix + '-0002.params')
    second = checkpoint.load_checkpoint(prefix, 2)[1]
    # resumed from epoch 1's weights: one more epoch moved them, but only a little
    name = 'lenet300_fc1_weight'
    delta = np.abs(second[name].asnumpy() - first[name].asnumpy()).mean()
    assert 0 < delta < np.abs(first[name].asnumpy()).mean()
    with pytest.raises(ValueError, match='must exceed the resumed epoch'):
        train(mnist_dir, num_epochs=1, num_examples=500, model_prefix=prefix, load_epoch=1)


def test_fixed_params_do_not_move(mnist_dir):
    args = fit_args(num_epochs=1, batch_size=50, lr=0.1, num_examples=500)
    it, val = small_iters(mnist_dir, 500)
    sym = symbols.get_symbol('lenet300')
    init = {'lenet300_fc1_weight': mx.nd.ones((300, 784)) * 0.01}
    module = fit(args, sym, it, val, arg_params=init, fixed_param_names=['lenet300_fc1_weight'])
    np.testing.assert_array_equal(module.get_params()[0]['lenet300_fc1_weight'].asnumpy(),
                                  init['lenet300_fc1_weight'].asnumpy())


@pytest.mark.parametrize('schedule,steps', [('cosine', ''), ('step', '2')])
def test_resumed_schedule_continues_where_it_stopped(schedule, steps):
    from mxcompress.fit import make_lr_scheduler
    args = fit_args(num_epochs=4, lr=0.1, lr_schedule=schedule, lr_step_epochs=steps)
    whole = make_lr_scheduler(args, epoch_size=10)
    resumed = make_lr_scheduler(args, epoch_size=10)
    opt = mx.optimizer.SGD(learning_rate=0.1, lr_scheduler=resumed, begin_num_update=30)
    # the optimizer of a run resumed at epoch 3 uses the rate the whole run has there
    assert abs(opt._get_lr(0) - whole(30)) < 1e-12 and whole(30) < 0.1
