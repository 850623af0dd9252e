"""Prune -> fine-tune entry points on real MNIST batches (few, so it is fast)."""
import math

import mxnet as mx
import numpy as np
import pytest

import symbols
from conftest import fit_args
from mxcompress import data as mnist_data
from mxcompress.pruning import (AGPCallback, compute_masks, masked_finetune, prune_and_finetune,
                                resolve_layers, strip_masks)
from test_pruning_masks import random_params, run


@pytest.fixture
def iters(mnist_dir):
    return mnist_data.mnist_iterators(50, num_examples=1000, num_test_examples=200, jitter=2)


def zeros(args, sym):
    return {l.name: int(np.sum(args[l.weight].asnumpy() == 0)) for l in resolve_layers(sym)}


def sizes(args, sym):
    return {l.name: args[l.weight].size for l in resolve_layers(sym)}


def test_iterative_level_pruning_hits_exact_sparsity_and_is_mask_free(iters):
    sym = symbols.get_symbol('lenet300')
    args, aux = random_params(sym)
    targets = {'lenet300_fc1': 0.9, 'lenet300_fc2': 0.8, 'lenet300_fc3': 0.5}
    opts = fit_args(num_epochs=1, batch_size=50, lr=0.5, lr_schedule='none')
    new_sym, new_args, new_aux = prune_and_finetune(sym, args, aux, opts, *iters,
                                                    method='level', sparsity=targets, steps=2)
    assert new_sym.tojson() == sym.tojson()  # the original graph, no masks
    assert set(new_args) == set(args)
    n = sizes(args, sym)
    for layer, count in zeros(new_args, sym).items():
        assert count >= math.floor(targets[layer] * n[layer])
        assert count <= math.floor(targets[layer] * n[layer]) + 3  # only chance exact zeros
    assert not np.allclose(new_args['lenet300_fc1_bias'].asnumpy(),
                           args['lenet300_fc1_bias'].asnumpy())  # it did train


def test_threshold_and_global_without_finetune_match_criteria(iters):
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    opts = fit_args(num_epochs=0)
    for method, kw in (('threshold', {'quality': 1.0}), ('global', {'sparsity': 0.75})):
        masks = compute_masks(sym, args, method, **kw)
        _, new_args, _ = prune_and_finetune(sym, args, aux, opts, *iters, method=method, **kw)
        for l in resolve_layers(sym):
            np.testing.assert_array_equal(new_args[l.weight].asnumpy(),
                                          args[l.weight].asnumpy() * masks[l.weight])
    with pytest.raises(ValueError, match='unknown pruning method'):
        prune_and_finetune(sym, args, aux, opts, *iters, method='random', sparsity=0.5)


def test_agp_callback_reaches_target_inside_the_module(iters):
    sym = symbols.get_symbol('lenet300')
    args, aux = random_params(sym)
    opts = fit_args(num_epochs=2, batch_size=50, lr=0.1, lr_schedule='none')
    targets = {'lenet300_fc1': 0.8, 'lenet300_fc2': 0.6}
    new_sym, new_args, _ = prune_and_finetune(sym, args, aux, opts, *iters, method='agp',
                                              sparsity=targets, layers=list(targets),
                                              agp_frequency=5)
    n = sizes(args, sym)
    z = zeros(new_args, sym)
    for layer, s in targets.items():
        assert z[layer] >= math.floor(s * n[layer]) and z[layer] <= math.floor(s * n[layer]) + 3
    assert z['lenet300_fc3'] == 0
    assert new_sym.tojson() == sym.tojson()


def test_agp_callback_history_follows_schedule():
    from mxcompress.pruning.masks import insert_masks
    sym = symbols.get_symbol('lenet300')
    args, aux = random_params(sym)
    w = 'lenet300_fc2_weight'
    masked, margs, fixed = insert_masks(sym, args, {w: np.ones(args[w].shape)})
    module = mx.mod.Module(masked, fixed_param_names=fixed)
    module.bind(data_shapes=[('data', (2, 1, 28, 28))], label_shapes=[('softmax_label', (2,))])
    module.set_params(margs, aux)
    callback = AGPCallback({w: 0.9}, begin_step=0, end_step=20, frequency=10)
    param = mx.model.BatchEndParam(epoch=0, nbatch=0, eval_metric=None,
                                   locals={'self': module})
    for _ in range(25):
        callback(param)
    assert [step for step, _ in callback.history] == [10, 20]
    assert callback.history[0][1][w] == pytest.approx(0.9 * (1 - 0.125), abs=1e-3)
    trained, _ = module.get_params()
    _, plain, _ = strip_masks(masked, trained, {})
    assert np.sum(plain[w].asnumpy() == 0) == 27000


def test_masked_finetune_keeps_the_zero_pattern(iters):
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    masks = compute_masks(sym, args, 'level', sparsity=0.7)
    pruned = {k: (mx.nd.array(v.asnumpy() * masks[k]) if k in masks else v)
              for k, v in args.items()}
    opts = fit_args(num_epochs=1, batch_size=50, lr=0.05, wd=1e-3, lr_schedule='none')
    new_sym, new_args, new_aux = masked_finetune(sym, pruned, aux, opts, *iters)
    for w, m in masks.items():
        after = new_args[w].asnumpy()
        np.testing.assert_array_equal(after == 0, pruned[w].asnumpy() == 0)
        assert not np.allclose(after, pruned[w].asnumpy())
    x = np.random.RandomState(0).rand(2, 1, 28, 28).astype(np.float32)
    assert run(new_sym, new_args, new_aux, x).shape == (2, 10)
