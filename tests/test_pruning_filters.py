"""Filter pruning with physical removal: thinned network == original with the filters zeroed."""
import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress.analysis import model_summary
from mxcompress.graph import find_layers
from mxcompress.pruning import (filter_norms, plan_filters, slimming_plan, thin_network,
                                weakest_filters, zero_filters)
from test_pruning_masks import random_params, run


def conv_bn_net():
    """conv-BN-relu-pool x2, flatten, fc: BatchNorm with trainable gamma, no conv bias."""
    x = mx.sym.Variable('data')
    for i, f in enumerate((6, 8), start=1):
        x = mx.sym.Convolution(x, num_filter=f, kernel=(3, 3), pad=(1, 1), no_bias=True,
                               name='c%d' % i)
        x = mx.sym.BatchNorm(x, fix_gamma=False, name='bn%d' % i)
        x = mx.sym.Activation(x, act_type='relu', name='r%d' % i)
        x = mx.sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type='max', name='p%d' % i)
    x = mx.sym.FullyConnected(mx.sym.Flatten(x, name='flat'), num_hidden=10, name='fc')
    return mx.sym.SoftmaxOutput(x, name='softmax')


def test_filter_norms_and_weakest():
    w = np.zeros((4, 2, 1, 1), dtype=np.float32)
    w[:, 0, 0, 0] = [3, -1, 2, 0.5]
    w[:, 1, 0, 0] = [0, -1, 0, 0.5]
    np.testing.assert_allclose(filter_norms(w, 'l1'), [3, 2, 2, 1])
    np.testing.assert_allclose(filter_norms(w, 'l2'), [3, np.sqrt(2), 2, np.sqrt(0.5)])
    np.testing.assert_array_equal(weakest_filters(filter_norms(w, 'l1'), 2), [0, 2])
    np.testing.assert_array_equal(weakest_filters(filter_norms(w, 'l2'), 0.5), [0, 2])
    with pytest.raises(ValueError, match='at least one filter'):
        weakest_filters([1, 2, 3], 3, 'conv9')
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        weakest_filters([1, 2, 3], 1.0, 'conv9')


def test_thinned_lenet5_equals_zeroed_filters():
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    keep = plan_filters(sym, args, {'lenet5_conv1': 8, 'lenet5_conv2': 0.6}, norm='l1')
    assert len(keep['lenet5_conv1']) == 12 and len(keep['lenet5_conv2']) == 20
    thin, targs, taux = thin_network(sym, args, aux, keep)
    shapes = {k: v.shape for k, v in targs.items()}
    assert shapes['lenet5_conv1_weight'] == (12, 1, 5, 5)
    assert shapes['lenet5_conv1_bias'] == (12,)
    assert shapes['lenet5_conv2_weight'] == (20, 12, 5, 5)  # in-channels follow conv1
    assert shapes['lenet5_fc1_weight'] == (500, 20 * 4 * 4)  # flatten columns follow conv2
    layers = {l.name: l.attrs for l in find_layers(thin)}
    assert layers['lenet5_conv1']['num_filter'] == '12'
    assert layers['lenet5_conv2']['num_filter'] == '20'
    x = np.random.RandomState(5).rand(6, 1, 28, 28).astype(np.float32)
    _, zargs, zaux = zero_filters(sym, args, aux, keep)
    np.testing.assert_allclose(run(thin, targs, taux, x), run(sym, zargs, zaux, x),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(run(sym, args, aux, x), run(sym, zargs, zaux, x))
    before, after = model_summary(sym, args), model_summary(thin, targs)
    assert after['dense_macs'] < 0.45 * before['dense_macs']
    # a standard checkpoint: round trip through JSON
    again = mx.sym.load_json(thin.tojson())
    np.testing.assert_allclose(run(again, targs, taux, x), run(thin, targs, taux, x))


def test_thinned_batchnorm_net_equals_zeroed_channels():
    sym = conv_bn_net()
    args, aux = random_params(sym, seed=3)
    keep = {'c1': np.array([0, 2, 5]), 'c2': np.array([1, 3, 4, 6, 7])}
    thin, targs, taux = thin_network(sym, args, aux, keep)
    assert targs['bn1_gamma'].shape == (3,) and taux['bn1_moving_var'].shape == (3,)
    assert targs['c2_weight'].shape == (5, 3, 3, 3) and targs['fc_weight'].shape == (10, 5 * 49)
    x = np.random.RandomState(1).rand(3, 1, 28, 28).astype(np.float32)
    _, zargs, zaux = zero_filters(sym, args, aux, keep)
    np.testing.assert_allclose(run(thin, targs, taux, x), run(sym, zargs, zaux, x),
                               rtol=1e-5, atol=1e-6)


def test_slimming_plan_uses_global_gamma_threshold():
    sym = conv_bn_net()
    args, _ = random_params(sym)
    args['bn1_gamma'] = mx.nd.array([0.9, 0.01, 0.5, 0.02, 0.7, 0.6])
    args['bn2_gamma'] = mx.nd.array([0.03, 0.8, 0.04, 0.9, 0.5, 0.05, 0.4, 0.3])
    plan = slimming_plan(sym, args, 5 / 14.0)  # the 5 smallest: 0.01 .. 0.05
    np.testing.assert_array_equal(plan['c1'], [0, 2, 4, 5])
    np.testing.assert_array_equal(plan['c2'], [1, 3, 4, 6, 7])


def test_bad_filter_plans():
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    with pytest.raises(ValueError, match='lenet5_conv1, lenet5_conv2'):
        plan_filters(sym, args, {'lenet5_fc1': 2})
    with pytest.raises(ValueError, match='cannot remove 20 of the 20 filters of lenet5_conv1'):
        plan_filters(sym, args, {'lenet5_conv1': 20})
    with pytest.raises(ValueError, match='keep at least one'):
        thin_network(sym, args, aux, {'lenet5_conv2': []})
    # a residual add couples c1 and c2: one group, thinned together (once refused)
    x = mx.sym.Variable('data')
    c1 = mx.sym.Convolution(x, num_filter=4, kernel=(3, 3), pad=(1, 1), name='c1')
    c2 = mx.sym.Convolution(c1, num_filter=4, kernel=(3, 3), pad=(1, 1), name='c2')
    res = mx.sym.FullyConnected(c1 + c2, num_hidden=10, name='fc')
    rargs, raux = random_params(res, data_shape=(2, 1, 8, 8))
    thin, targs, taux = thin_network(res, rargs, raux, {'c1': [0, 1]}, data_shape=(1, 1, 8, 8))
    assert targs['c1_weight'].shape == (2, 1, 3, 3) and targs['c2_weight'].shape == (2, 2, 3, 3)
    assert targs['fc_weight'].shape == (10, 2 * 64)
    xs = np.random.RandomState(0).rand(2, 1, 8, 8).astype(np.float32)
    _, zargs, zaux = zero_filters(res, rargs, raux, {'c1': [0, 1]}, data_shape=(1, 1, 8, 8))
    np.testing.assert_allclose(run(thin, targs, taux, xs), run(res, zargs, zaux, xs),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='c1 and c2 are in one channel group'):
        thin_network(res, rargs, raux, {'c1': [0, 1], 'c2': [1, 2]}, data_shape=(1, 1, 8, 8))
    # a reshape mixes channels: the group stays dense, an explicit request names why
    mixed = mx.sym.FullyConnected(mx.sym.reshape(c1, shape=(0, 2, -1)), num_hidden=10,
                                  flatten=True, name='fc')
    margs, maux = random_params(mixed, data_shape=(2, 1, 8, 8))
    with pytest.raises(ValueError, match="c1: its channel group c1 stays dense.*Reshape"):
        thin_network(mixed, margs, maux, {'c1': [0, 1]}, data_shape=(1, 1, 8, 8))
