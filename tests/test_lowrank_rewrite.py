"""Checkpoint rewrite, rank selection and fine-tuning of factorised graphs."""
import mxnet as mx
import numpy as np
import pytest

import symbols
from conftest import fit_args
from mxcompress.analysis import model_summary
from mxcompress.data import mnist_iterators
from mxcompress.lowrank import (LowRankError, choose_ranks, describe_layers, factorize,
                                rank_for_energy, rank_for_ratio, ranks_for_target)
from mxcompress.lowrank.finetune import finetune
from conftest import random_params


def forward(sym, args, aux, x):
    args = dict(args, data=mx.nd.array(x), softmax_label=mx.nd.zeros((len(x),)))
    return sym.bind(mx.cpu(), args, aux_states=aux).forward()[0].asnumpy()


def logits(sym):
    """The pre-softmax output, so agreement is checked where it is not squashed."""
    internals = sym.get_internals()
    return internals[internals.list_outputs().index('softmax_output') - 2]


X = np.random.RandomState(5).rand(4, 1, 28, 28).astype(np.float32)


@pytest.mark.parametrize('network,conv_scheme', [('lenet300', 'channel'), ('lenet5', 'channel'),
                                                 ('lenet5', 'spatial')])
def test_full_rank_rewrite_equals_original(network, conv_scheme):
    sym = symbols.get_symbol(network)
    args, aux = random_params(sym)
    specs = describe_layers(sym, args, conv_scheme=conv_scheme)
    ranks = {s.name: s.scheme.max_rank(s.geom) for s in specs}
    new, new_args, new_aux, report = factorize(sym, args, aux, ranks, conv_scheme=conv_scheme)
    ref, out = forward(sym, args, aux, X), forward(new, new_args, new_aux, X)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert all(abs(r['kept_energy'] - 1) < 1e-9 for r in report)
    for s in specs:  # names kept: NAME_v / NAME_u, original weights gone
        assert s.weight not in new_args and s.name + '_v_weight' in new_args
        assert s.name + '_u_bias' in new_args
    assert new.list_outputs() == sym.list_outputs()


def test_truncated_rewrite_keeps_other_layers_and_counts():
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    new, new_args, _, report = factorize(sym, args, aux, {'lenet5_conv2': 10, 'lenet5_fc1': 20},
                                         conv_scheme='spatial')
    assert new_args['lenet5_conv1_weight'] is args['lenet5_conv1_weight']
    assert new_args['lenet5_conv2_v_weight'].shape == (10, 20, 5, 1)
    assert new_args['lenet5_conv2_u_weight'].shape == (50, 10, 1, 5)
    conv2 = [r for r in report if r['layer'] == 'lenet5_conv2'][0]
    # vertical 5x1: 20*5*10 MACs at each of 8x12 positions; horizontal 1x5: 10*5*50 at 8x8
    assert conv2['factored_macs'] == 20 * 5 * 10 * 8 * 12 + 10 * 5 * 50 * 8 * 8
    assert conv2['macs'] == 50 * 20 * 25 * 64
    summary = model_summary(new, new_args)
    table = {r['layer']: r for r in summary['layers']}
    assert table['lenet5_conv2_v']['dense_macs'] + table['lenet5_conv2_u']['dense_macs'] == \
        conv2['factored_macs']
    assert table['lenet5_fc1_v']['weight_shape'] == [20, 800]


def test_errors_name_the_layer():
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    with pytest.raises(LowRankError, match=r'lenet5_fc2: rank must be an integer in 1\.\.10'):
        factorize(sym, args, aux, {'lenet5_fc2': 11})
    with pytest.raises(LowRankError, match=r'lenet5_conv1: rank .* 1\.\.20.* got 0'):
        factorize(sym, args, aux, {'lenet5_conv1': 0})
    with pytest.raises(LowRankError, match='lenet5_pool1 is a Pooling'):
        factorize(sym, args, aux, {'lenet5_pool1': 2})
    with pytest.raises(LowRankError, match="no layer named 'nope'.*lenet5_conv1"):
        factorize(sym, args, aux, {'nope': 2})
    with pytest.raises(LowRankError, match="lenet5_fc1: scheme 'spatial' does not apply"):
        factorize(sym, args, aux, {'lenet5_fc1': 2}, schemes={'lenet5_fc1': 'spatial'})


def test_grouped_and_depthwise_convolutions_are_skipped_dilated_is_exact(caplog):
    data = mx.sym.Variable('data')
    x = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), name='c0')
    g = mx.sym.Convolution(x, num_filter=4, kernel=(3, 3), num_group=2, name='grouped')
    w = mx.sym.Convolution(x, num_filter=4, kernel=(3, 3), num_group=4, name='depthwise')
    d = mx.sym.Convolution(x, num_filter=6, kernel=(3, 3), dilate=(2, 2), pad=(2, 2),
                           name='dilated')
    sym = mx.sym.Group([g, w, d])
    args, aux = random_params(sym)
    for scheme in ('channel', 'spatial'):
        skipped = []
        with caplog.at_level('INFO', logger='mxcompress'):
            new, nargs, _, report = factorize(sym, args, aux, {'grouped': 1, 'depthwise': 1,
                                                               'c0': 1},
                                              conv_scheme=scheme, skipped=skipped)
        assert [r['layer'] for r in report] == ['c0']      # skipped, not refused
        assert [n for n, _ in skipped] == ['grouped', 'depthwise']
        assert 'grouped convolution (num_group=2)' in skipped[0][1]
        assert 'depthwise convolution (num_group=4)' in skipped[1][1]
        assert 'skipping layer grouped: grouped convolution' in caplog.text
        assert 'skipping layer depthwise: depthwise convolution' in caplog.text
        assert nargs['grouped_weight'] is args['grouped_weight']
        specs = describe_layers(sym, args, conv_scheme=scheme)     # default: every layer
        assert [s.name for s in specs] == ['c0', 'dilated']
    dil = d
    dargs = {k: v for k, v in args.items() if k in dil.list_arguments()}
    for scheme, full in (('channel', 6), ('spatial', 12)):
        new, nargs, _, _ = factorize(dil, dargs, {}, {'dilated': full}, conv_scheme=scheme)
        np.testing.assert_allclose(forward(new, nargs, {}, X), forward(dil, dargs, {}, X),
                                   rtol=1e-4, atol=1e-4)


def residual_net():
    """conv-BN-relu, a residual block of two 3x3 convs (identity shortcut), a strided 3x3 conv
    with a 1x1 projection shortcut, global pooling, fc."""
    x = mx.sym.Variable('data')

    def cbr(x, name, filters, stride=1, relu=True):
        x = mx.sym.Convolution(x, num_filter=filters, kernel=(3, 3), pad=(1, 1),
                               stride=(stride, stride), no_bias=True, name=name)
        x = mx.sym.BatchNorm(x, fix_gamma=False, name=name + '_bn')
        return mx.sym.relu(x) if relu else x
    x = cbr(x, 'stem', 8)
    x = mx.sym.relu(x + cbr(cbr(x, 'b1a', 8), 'b1b', 8, relu=False))
    proj = mx.sym.Convolution(x, num_filter=12, kernel=(1, 1), stride=(2, 2), name='proj')
    x = mx.sym.relu(proj + cbr(cbr(x, 'b2a', 12, stride=2), 'b2b', 12, relu=False))
    x = mx.sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type='avg')
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=10, name='fc'),
                                name='softmax')


@pytest.mark.parametrize('conv_scheme', ['channel', 'spatial'])
def test_residual_net_3x3_convs_at_full_rank_are_exact(conv_scheme):
    sym = residual_net()
    args, aux = random_params(sym)
    convs = ['stem', 'b1a', 'b1b', 'b2a', 'b2b']
    specs = describe_layers(sym, args, names=convs, conv_scheme=conv_scheme)
    ranks = {s.name: s.scheme.max_rank(s.geom) for s in specs}
    new, new_args, new_aux, report = factorize(sym, args, aux, ranks, conv_scheme=conv_scheme)
    out, ref = forward(logits(new), new_args, new_aux, X), forward(logits(sym), args, aux, X)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert {r['layer'] for r in report} == set(convs)
    # truncated: a real saving on the strided block, still a valid graph
    half = {s.name: max(1, s.scheme.max_rank(s.geom) // 2) for s in specs}
    small, sargs, saux, rep = factorize(sym, args, aux, half, conv_scheme=conv_scheme)
    assert sum(r['factored_params'] for r in rep) < sum(r['params'] for r in rep)
    assert forward(small, sargs, saux, X).shape == (len(X), 10)


def test_rank_selection_helpers():
    sym = symbols.get_symbol('lenet300')
    args, _ = random_params(sym)
    specs = {s.name: s for s in describe_layers(sym, args)}
    fc1 = specs['lenet300_fc1']
    assert rank_for_ratio(fc1, 0.2) == int(0.2 * 784 * 300 / (784 + 300))
    assert rank_for_energy(fc1, 1.0) == 300
    s2 = fc1.singular_values ** 2
    r = rank_for_energy(fc1, 0.5)
    assert s2[:r].sum() / s2.sum() >= 0.5 > s2[:r - 1].sum() / s2.sum()
    chosen = ranks_for_target(list(specs.values()), 5.0)
    total = sum(s.scheme.params(s.geom, chosen[s.name]) for s in specs.values())
    assert total <= sum(s.scheme.original_params(s.geom) for s in specs.values()) / 5.0
    assert choose_ranks(list(specs.values()), ranks={'lenet300_fc3': 4}, ratio=0.5)[
        'lenet300_fc3'] == 4
    with pytest.raises(LowRankError, match='out of reach'):
        ranks_for_target([specs['lenet300_fc3']], 50.0)
    with pytest.raises(LowRankError, match='no rank given'):
        choose_ranks(list(specs.values()))


def test_factorised_graph_fine_tunes_through_fit(mnist_dir):
    sym = symbols.get_symbol('lenet5')
    args, aux = random_params(sym)
    new, new_args, new_aux, _ = factorize(sym, args, aux, {'lenet5_conv2': 4, 'lenet5_fc1': 8},
                                          conv_scheme='spatial')
    train, test = mnist_iterators(50, num_examples=400, num_test_examples=100)
    fargs = fit_args(num_epochs=1, batch_size=50, lr=0.05)
    tuned, _ = finetune(new, new_args, new_aux, fargs, train, test)
    assert set(tuned) == set(new_args)
    for name in ('lenet5_conv2_v_weight', 'lenet5_conv2_u_weight', 'lenet5_fc1_v_weight'):
        assert not np.allclose(tuned[name].asnumpy(), new_args[name].asnumpy())
