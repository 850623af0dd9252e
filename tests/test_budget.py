"""The allocation of per-layer choices under an error budget / a size target
(mxcompress.deep_compression.budget) against brute force and hand-solved cases."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mxcompress.deep_compression.budget import (Option, allocate, allocate_for_bytes,
                                                error_count, lagrangian_allocate, total)


def brute(options, feasible, key):
    layers = list(options)
    best = None
    for combo in itertools.product(*(options[l] for l in layers)):
        b, c = sum(o.bytes for o in combo), sum(o.cost for o in combo)
        if feasible(b, c) and (best is None or key(b, c) < key(*best)):
            best = (b, c)
    return best


def synthetic(rng, layers=3, options=5):
    """Curves shaped like pruning sensitivity: more compression, fewer bytes, more error."""
    out = {}
    for l in range(layers):
        b = np.sort(rng.randint(100, 10000, options))[::-1].astype(float)
        c = np.sort(rng.randint(0, 40, options))
        out['layer%d' % l] = [Option(('s', j), float(b[j]), int(c[j])) for j in range(options)]
    return out


def test_known_optimum_by_hand():
    # fc1 is cheap in error per byte saved, fc2 expensive: a 5-image budget goes to fc1
    options = {'fc1': [Option(0.0, 1000, 0), Option(0.9, 200, 3), Option(0.95, 100, 5)],
               'fc2': [Option(0.0, 500, 0), Option(0.9, 100, 4)]}
    a = allocate(options, 5)
    assert a.feasible and {l: o.value for l, o in a.choice.items()} == {'fc1': 0.95, 'fc2': 0.0}
    assert (a.bytes, a.cost) == (600, 5)
    assert allocate(options, 7).choice['fc2'].value == 0.9    # 3 + 4: fc1 0.9, fc2 0.9
    assert allocate(options, 7).bytes == 300
    assert allocate(options, 0).bytes == 1500                  # a budget of 0 changes nothing
    # the dual: at most 600 bytes with the least error
    d = allocate_for_bytes(options, 600)
    assert (d.bytes, d.cost) == (600, 5) and d.feasible
    assert allocate_for_bytes(options, 50).feasible is False


def test_lagrangian_misses_what_the_exact_solution_finds():
    # the Lagrangian only reaches the convex hull: (budget 4) the exact answer mixes
    options = {'a': [Option(0, 100, 0), Option(1, 40, 4), Option(2, 0, 10)],
               'b': [Option(0, 100, 0), Option(1, 40, 4), Option(2, 0, 10)]}
    exact = allocate(options, 4)
    assert exact.bytes == 140
    for lam in np.linspace(0, 50, 101):
        lag = lagrangian_allocate(options, lam)
        if lag.cost <= 4:
            assert lag.bytes >= exact.bytes


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 10 ** 6), st.integers(1, 4), st.integers(1, 6), st.integers(0, 120))
def test_allocate_matches_brute_force(seed, layers, options, budget):
    curves = synthetic(np.random.RandomState(seed), layers, options)
    a = allocate(curves, budget)
    best = brute(curves, lambda b, c: c <= budget, lambda b, c: (b, c))
    if best is None:
        assert not a.feasible
    else:
        assert a.feasible and a.cost <= budget and a.bytes == pytest.approx(best[0])
        assert total(a.choice) == (a.bytes, a.cost)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 10 ** 6), st.integers(1, 4), st.integers(1, 6), st.integers(0, 40000))
def test_dual_matches_brute_force(seed, layers, options, max_bytes):
    curves = synthetic(np.random.RandomState(seed), layers, options)
    d = allocate_for_bytes(curves, max_bytes)
    best = brute(curves, lambda b, c: b <= max_bytes, lambda b, c: (c, b))
    if best is None:
        assert not d.feasible
    else:
        assert d.feasible and d.bytes <= max_bytes and d.cost == best[1]
        assert d.bytes == pytest.approx(best[0])


def test_error_count_and_bad_inputs():
    assert error_count(0.001, 6000) == 6
    assert error_count(-0.002, 6000) == 0          # a drop counts as no increase
    with pytest.raises(ValueError, match='finite'):
        error_count(float('nan'), 100)
    with pytest.raises(ValueError, match='no options'):
        allocate({'fc1': []}, 3)
    with pytest.raises(ValueError, match='whole number of images'):
        allocate({'fc1': [Option(0, 10, 0.5)]}, 3)
    with pytest.raises(ValueError, match='max_cost must be >= 0'):
        allocate({'fc1': [Option(0, 10, 0)]}, -1)


@pytest.mark.parametrize('curve_cost', [0, 1])
def test_search_does_not_redo_an_undone_round(monkeypatch, curve_cost):
    """A round is seeded by the accepted rounds before it, so the same targets on the same
    model are undone again: after fc1=0.9 is undone the search asks for less (fc1=0.5), it
    does not spend its rounds repeating 0.9, even when the curves say 0.9 costs nothing
    (stand-ins for the curves, fine-tuning and validation error; the allocation and the
    acceptance logic are the real ones)."""
    import mxnet as mx
    import symbols
    from mxcompress import cli
    from mxcompress.deep_compression import auto
    sym = symbols.get_symbol('lenet300')
    shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    params = {k: mx.nd.ones(s) for k, s in zip(sym.list_arguments(), shapes)
              if k not in ('data', 'softmax_label')}
    n_val, base_errors = 1000, 10
    increase = {0.9: 5, 0.5: 1}           # images after fine-tuning; the limit is 4.5

    def options(symbol, p, aux, images, labels, layers, current, nominal, examples):
        now = current['lenet300_fc1']
        opts = {l.name: [Option(current[l.name], 1000, 0)] for l in layers}
        if now == 0:
            opts['lenet300_fc1'] += [Option(0.5, 500, 0), Option(0.9, 100, curve_cost)]
        return opts

    tried = []

    def fine_tune(args, symbol, p, aux, train, val, targets, index, epochs, lr_scale, logger):
        tried.append(targets['lenet300_fc1'])
        return {'fc1': targets['lenet300_fc1']}, {}

    def error(symbol, p, aux, images, labels):
        return (base_errors + increase.get(p.get('fc1'), 0)) / float(n_val)

    monkeypatch.setattr(auto, 'prune_options', options)
    monkeypatch.setattr(auto, 'prune_round', fine_tune)
    monkeypatch.setattr(auto, 'classification_error', error)
    args = cli.build_parser().parse_args(['deep-compress', 'unused', '--output', 'unused.mxc'])
    val = (np.zeros((n_val, 1, 28, 28), np.float32), np.zeros(n_val, np.float32))
    result = auto.search(args, sym, params, {}, val, val, max_error_increase=0.005,
                         max_rounds=4, prune_only=True, max_polish=0)
    assert tried[:3] == [0.9, 0.9, 0.5]        # the round, its extra fine-tuning, then less
    assert tried.count(0.9) == 2
    assert result['sparsity']['lenet300_fc1'] == 0.5
    assert [e['accepted'] for e in result['log'] if 'targets' in e][:2] == [False, True]


def test_joint_bits_one_step_widens_the_layer_that_lowers_the_joint_error(monkeypatch):
    """The widening of an over-budget file: one step tries each layer one width wider with
    every layer quantised together, and keeps the lowest error (stand-in error: fc1 below
    3 bits costs 10 images, fc2 below 3 bits costs 1)."""
    import mxnet as mx
    import symbols
    from mxcompress.deep_compression import auto
    from mxcompress.graph import find_layers
    sym = symbols.get_symbol('lenet300')
    shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    rng = np.random.RandomState(0)
    params = {k: mx.nd.array(rng.randn(*s)) for k, s in zip(sym.list_arguments(), shapes)
              if k not in ('data', 'softmax_label')}
    layers = [l for l in find_layers(sym) if l.weight in params]

    def error(symbol, p, aux, images, labels):
        width = {w: int(np.ceil(np.log2(len(np.unique(p[w].asnumpy())))))
                 for w in ('lenet300_fc1_weight', 'lenet300_fc2_weight')}
        return (10 * (width['lenet300_fc1_weight'] < 3) +
                (width['lenet300_fc2_weight'] < 3)) / 1000.0

    monkeypatch.setattr(auto, 'classification_error', error)
    options = {l.name: [Option(b, 100.0 * b, 0) for b in (2, 3, 4)] for l in layers}
    bits = {l.name: 2 for l in layers}
    one, err = auto.joint_bits(sym, params, {}, None, None, layers, options, bits, limit=-1.0,
                               max_steps=1)
    assert one == dict(bits, lenet300_fc1=3) and err == 0.001
    every, _ = auto.joint_bits(sym, params, {}, None, None, layers, options, bits, limit=0.0)
    assert every['lenet300_fc1'] == 3 and every['lenet300_fc2'] == 3
