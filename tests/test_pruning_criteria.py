"""Criteria, schedules and the L1 optimizer against hand-computed references."""
import math

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxcompress.pruning import (SparseSGD, agp_sparsity, check_sparsity, global_masks,
                                iterative_targets, l1_targets, level_mask, threshold_mask)
from test_pruning_filters import conv_bn_net


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.floats(0, 0.999), st.integers(0, 1000))
def test_level_mask_prunes_exact_count_of_smallest(n, sparsity, seed):
    w = np.random.RandomState(seed).randn(n).astype(np.float32)
    mask = level_mask(w, sparsity)
    pruned = int(math.floor(sparsity * n + 1e-9))
    assert mask.sum() == n - pruned
    if 0 < pruned < n:
        assert np.abs(w[mask == 0]).max() <= np.abs(w[mask == 1]).min()


def test_check_sparsity_range():
    for bad in (1.0, -0.1, float('nan'), 'x'):
        with pytest.raises(ValueError, match=r'\[0, 1\)'):
            check_sparsity(bad)
    assert check_sparsity('0.5') == 0.5


def test_threshold_mask_is_hans_rule():
    w = np.array([-3.0, -1.0, 0.2, 0.5, 2.0, 4.0], dtype=np.float32)
    std = np.std(w)
    np.testing.assert_array_equal(threshold_mask(w, 0.5), np.abs(w) > 0.5 * std)
    current = np.array([1, 1, 1, 1, 1, 0], dtype=np.float32)  # std over survivors only
    expected = (np.abs(w) > 0.5 * np.std(w[:5])) & (current == 1)
    np.testing.assert_array_equal(threshold_mask(w, 0.5, current), expected)
    with pytest.raises(ValueError, match='quality'):
        threshold_mask(w, -1)


def test_global_masks_one_threshold_over_layers():
    a = np.array([[0.1, -5.0], [0.3, 2.0]])
    b = np.array([0.2, -0.05, 4.0, 0.4])
    masks = global_masks({'a': a, 'b': b}, 0.5)
    np.testing.assert_array_equal(masks['a'], [[0, 1], [0, 1]])  # 0.05 .. 0.3 pruned
    np.testing.assert_array_equal(masks['b'], [0, 0, 1, 1])
    assert sum(m.sum() for m in masks.values()) == 4


def test_agp_schedule_and_iterative_targets():
    assert agp_sparsity(0, 0.9, 10, 110) == 0.0
    assert agp_sparsity(110, 0.9, 10, 110) == pytest.approx(0.9)
    assert agp_sparsity(60, 0.9, 10, 110) == pytest.approx(0.9 * (1 - 0.5 ** 3))
    values = [agp_sparsity(t, 0.8, 0, 100) for t in range(101)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[10] - values[0] > values[100] - values[90]  # fast first, slow last
    assert iterative_targets(0.9, 3)[-1] == pytest.approx(0.9)
    steps = iterative_targets({'fc1': 0.9, 'fc2': 0.6}, 2)
    assert steps[0]['fc1'] == pytest.approx(0.9 * 0.875) and steps[1]['fc2'] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        agp_sparsity(0, 1.0, 0, 10)


def _one_update(opt, weight, grad):
    updater = mx.optimizer.get_updater(opt)
    w = mx.nd.array(weight)
    updater(0, mx.nd.array(grad), w)
    return w.asnumpy()


def test_sparse_sgd_adds_the_l1_subgradient():
    rng = np.random.RandomState(0)
    w, g = rng.randn(5, 4).astype(np.float32), rng.randn(5, 4).astype(np.float32)
    w[0, 0] = 0
    kw = dict(learning_rate=0.1, wd=0.01, momentum=0.9, rescale_grad=0.5,
              param_idx2name={0: 'fc_weight'})
    plain = _one_update(mx.optimizer.SGD(**kw), w, g)
    same = _one_update(SparseSGD(l1={'other': 1.0}, **kw), w, g)
    np.testing.assert_allclose(same, plain, rtol=1e-6)  # unpenalised params: exactly sgd
    lam = 0.3
    pen = _one_update(SparseSGD(l1={'fc_weight': lam}, **kw), w, g)
    expected = w - 0.1 * (0.5 * g + 0.01 * w + lam * np.sign(w))
    np.testing.assert_allclose(pen, expected, rtol=1e-5, atol=1e-6)
    assert mx.optimizer.create('sparsesgd', l1={}).__class__ is SparseSGD


def test_l1_targets_weights_and_gammas():
    sym = conv_bn_net()
    targets = l1_targets(sym, weight_l1=1e-4, gamma_l1=1e-3)
    assert targets['c1_weight'] == 1e-4 and targets['fc_weight'] == 1e-4
    assert targets['bn1_gamma'] == 1e-3 and targets['bn2_gamma'] == 1e-3
    bad = mx.sym.BatchNorm(mx.sym.Variable('data'), name='bn')
    with pytest.raises(ValueError, match='fix_gamma'):
        l1_targets(bad, gamma_l1=1e-3)
