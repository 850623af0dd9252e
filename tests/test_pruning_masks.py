"""Masks: Gluon blocks vs the symbol rewrite, insert/strip round trips, exact zeros in training."""
import mxnet as mx
import numpy as np
import pytest

import symbols
from conftest import fit_args
from mxcompress import data as mnist_data
from mxcompress.fit import fit
from mxcompress.pruning import (MaskedConv2D, MaskedDense, insert_masks, level_mask,
                                masks_from_zeros, resolve_layers, strip_masks)
from conftest import random_params


def run(sym, args, aux, x):
    exe = sym.bind(mx.cpu(), dict(args, data=mx.nd.array(x),
                                  softmax_label=mx.nd.zeros(len(x))), aux_states=aux)
    return exe.forward()[0].asnumpy()


def half_masks(sym, args, seed=1):
    rng = np.random.RandomState(seed)
    return {l.weight: (rng.rand(*args[l.weight].shape) > 0.5).astype(np.float32)
            for l in resolve_layers(sym)}


@pytest.mark.parametrize('name', ['lenet5', 'lenet300'])
def test_all_ones_masks_compute_the_original(name):
    sym = symbols.get_symbol(name)
    args, aux = random_params(sym)
    x = np.random.RandomState(2).rand(3, 1, 28, 28).astype(np.float32)
    ones = {l.weight: np.ones(args[l.weight].shape) for l in resolve_layers(sym)}
    masked, margs, fixed = insert_masks(sym, args, ones)
    assert sorted(fixed) == sorted(w + '_mask' for w in ones)
    assert 'elemwise_mul' in masked.tojson()
    np.testing.assert_array_equal(run(masked, margs, aux, x), run(sym, args, aux, x))


def test_masks_equal_zeroed_weights_and_strip_round_trip():
    sym = symbols.get_symbol('lenet5', name='net')  # any names: layers found by op type
    args, aux = random_params(sym)
    x = np.random.RandomState(3).rand(4, 1, 28, 28).astype(np.float32)
    masks = half_masks(sym, args)
    masked, margs, _ = insert_masks(sym, args, masks)
    for w, m in masks.items():  # latent weights zeroed at rewrite
        assert np.all(margs[w].asnumpy()[m == 0] == 0)
    reference = dict(args)
    for w, m in masks.items():
        reference[w] = mx.nd.array(args[w].asnumpy() * m)
    np.testing.assert_allclose(run(masked, margs, aux, x), run(sym, reference, aux, x),
                               rtol=1e-6, atol=1e-7)
    plain, pargs, paux = strip_masks(masked, margs, aux)
    assert plain.list_arguments() == sym.list_arguments()
    assert 'elemwise_mul' not in plain.tojson() and not any(k.endswith('_mask') for k in pargs)
    for w, m in masks.items():
        assert np.count_nonzero(pargs[w].asnumpy()) == np.count_nonzero(
            args[w].asnumpy() * m)
    np.testing.assert_allclose(run(plain, pargs, paux, x), run(sym, reference, aux, x),
                               rtol=1e-6, atol=1e-7)
    # a standard checkpoint: masks_from_zeros recovers the pattern
    for w, m in masks_from_zeros(plain, pargs).items():
        np.testing.assert_array_equal(m, masks[w] * (args[w].asnumpy() != 0))


def test_insert_masks_bad_input():
    sym = symbols.get_symbol('lenet300')
    args, _ = random_params(sym)
    with pytest.raises(ValueError, match='not weights of'):
        insert_masks(sym, args, {'lenet300_fc1_bias': np.ones(300)})
    with pytest.raises(ValueError, match='shape'):
        insert_masks(sym, args, {'lenet300_fc1_weight': np.ones((3, 3))})
    with pytest.raises(ValueError, match='only 0 and 1'):
        insert_masks(sym, args, {'lenet300_fc3_weight': np.full((10, 100), 0.5)})
    with pytest.raises(ValueError, match='lenet300_fc1, lenet300_fc2, lenet300_fc3'):
        resolve_layers(sym, ['fc1'])


def _block_vs_symbol(block, x, weight_name, sym_layer):
    block.initialize(mx.init.Normal(0.1))
    block(mx.nd.array(x))
    w = block.weight.data().asnumpy()
    mask = level_mask(w, 0.6)
    block.set_mask(mask)
    assert np.all(block.weight.data().asnumpy()[mask == 0] == 0)
    imperative = block(mx.nd.array(x)).asnumpy()
    block.hybridize()
    hybrid = block(mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(hybrid, imperative, rtol=1e-6, atol=1e-6)
    # the same layer as a plain symbol, masked by the checkpoint rewrite
    params = {weight_name: mx.nd.array(w), sym_layer.name + '_bias': block.bias.data()}
    masked, margs, _ = insert_masks(sym_layer, params, {weight_name: mask})
    out = masked.bind(mx.cpu(), dict(margs, data=mx.nd.array(x))).forward()[0].asnumpy()
    np.testing.assert_allclose(out, imperative, rtol=1e-5, atol=1e-6)
    # gradients: none for the mask, zero for pruned weights
    with mx.autograd.record():
        loss = block(mx.nd.array(x)).sum()
    loss.backward()
    assert np.all(block.weight.grad().asnumpy()[mask == 0] == 0)
    assert block.mask.grad_req == 'null'


def test_masked_dense_block_matches_rewrite():
    x = np.random.RandomState(0).rand(5, 12).astype(np.float32)
    sym = mx.sym.FullyConnected(mx.sym.Variable('data'), num_hidden=7, name='fc')
    _block_vs_symbol(MaskedDense(7, in_units=12), x, 'fc_weight', sym)


def test_masked_conv_block_matches_rewrite():
    x = np.random.RandomState(0).rand(2, 3, 9, 9).astype(np.float32)
    sym = mx.sym.Convolution(mx.sym.Variable('data'), num_filter=4, kernel=(3, 3), pad=(1, 1),
                             stride=(2, 2), name='conv')
    _block_vs_symbol(MaskedConv2D(4, 3, in_channels=3, strides=2, padding=1), x, 'conv_weight',
                     sym)


def test_pruned_weights_stay_exactly_zero_under_sgd_momentum_and_wd(mnist_dir):
    sym = symbols.get_symbol('lenet300')
    args, _ = random_params(sym)
    masks = {w: level_mask(args[w].asnumpy(), 0.7) for w in
             [l.weight for l in resolve_layers(sym)]}
    masked, margs, fixed = insert_masks(sym, args, masks)
    train, val = mnist_data.mnist_iterators(50, num_examples=1000, num_test_examples=200)
    opts = fit_args(num_epochs=2, batch_size=50, lr=0.1, mom=0.9, wd=1e-3, lr_schedule='none')
    module = fit(opts, masked, train, val, arg_params=margs, fixed_param_names=fixed,
                 allow_missing=False)
    trained, _ = module.get_params()
    for w, m in masks.items():
        latent = trained[w].asnumpy()
        assert np.all(latent[m == 0] == 0), w  # exactly zero, not just small
        np.testing.assert_array_equal(trained[w + '_mask'].asnumpy(), m)  # masks fixed
        assert not np.allclose(latent[m == 1], margs[w].asnumpy()[m == 1])  # others trained
    _, plain_args, _ = strip_masks(masked, trained, {})
    for w, m in masks.items():
        assert np.count_nonzero(plain_args[w].asnumpy()) == int(m.sum() - np.sum(
            (trained[w].asnumpy() == 0) & (m == 1)))
