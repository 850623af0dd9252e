"""Channel groups of a Symbol (residual adds, depthwise convs, Concat offsets, what stays dense)
and thinning in those groups: thinned network == original with the removed channels zeroed."""
import os

import mxnet as mx
import numpy as np
import pytest

from mxcompress.analysis import count_macs
from mxcompress.cli import main
from mxcompress.pruning import (analyse, filter_norms, plan_groups, round_kept, thin_network,
                                thin_symbol, zero_filters)
from mxcompress.pruning.filters import group_scores
from conftest import random_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (1, 3, 16, 16)


def run(sym, args, aux, x):
    exe = sym.bind(mx.cpu(), dict(args, data=mx.nd.array(x)), aux_states=aux, grad_req='null')
    return exe.forward(is_train=False)[0].asnumpy()


def conv(x, name, filters, kernel=3, stride=1, groups=1):
    return mx.sym.Convolution(x, num_filter=filters, kernel=(kernel, kernel),
                              stride=(stride, stride), pad=(kernel // 2, kernel // 2),
                              num_group=groups, no_bias=True, name=name)


def bn(x, name):
    return mx.sym.BatchNorm(x, fix_gamma=False, name=name)


def cbr(x, name, filters, **kw):
    return mx.sym.relu(bn(conv(x, name, filters, **kw), name + '_bn'))


def resnet():
    """Stem, an identity block and a block with a 1x1 projection shortcut, global pool, fc."""
    x = cbr(mx.sym.var('data'), 's', 8)
    y = bn(conv(cbr(x, 'a1', 6), 'b1', 8), 'b1_bn')
    x = mx.sym.relu(x + y)                                       # identity path: s ~ b1
    y = bn(conv(cbr(x, 'a2', 6, stride=2), 'b2', 12), 'b2_bn')
    p = bn(conv(x, 'p2', 12, kernel=1, stride=2), 'p2_bn')
    x = mx.sym.relu(mx.sym.broadcast_add(y, p))                  # projection: b2 ~ p2
    x = mx.sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type='avg')
    return mx.sym.FullyConnected(x, num_hidden=5, name='fc')


def mobile():
    """Expansion, depthwise, projection with a residual, flatten of a 4x4 map, fc."""
    x = cbr(mx.sym.var('data'), 'stem', 4, stride=2)
    e = cbr(x, 'e', 12, kernel=1)
    d = mx.sym.clip(bn(conv(e, 'dw', 12, groups=12), 'dw_bn'), 0, 6)  # depthwise: e ~ dw
    x = x + bn(conv(d, 'pj', 4, kernel=1), 'pj_bn')
    x = mx.sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type='max')
    return mx.sym.FullyConnected(mx.sym.Dropout(mx.sym.Flatten(x)), num_hidden=5, name='fc')


def dense():
    """Concat of two convs, BatchNorm on the concat, a conv reading it, a concat of concats."""
    x = mx.sym.var('data')
    c = mx.sym.Concat(conv(x, 'c1', 4), conv(x, 'c2', 6), dim=1)
    y = conv(mx.sym.relu(bn(c, 'cat_bn')), 'c3', 5)
    c = mx.sym.Concat(c, y, dim=1)
    x = conv(mx.sym.relu(bn(c, 'cat2_bn')), 'c4', 7, kernel=1)
    return mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.Pooling(x, kernel=(4, 4), stride=(4, 4),
                                                               pool_type='avg')),
                                 num_hidden=5, name='fc')


def groups_by_name(sym):
    return {g.name: g for g in analyse(sym, SHAPE).groups}


def check_thinning(sym, sparsity=0.5, criterion='l1', seed=0):
    args, aux = random_params(sym, seed=seed, data_shape=(2,) + SHAPE[1:])
    plan = plan_groups(sym, args, sparsity, criterion, data_shape=SHAPE)
    thin = thin_network(sym, args, aux, plan)
    masked = zero_filters(sym, args, aux, plan)
    x = np.random.RandomState(seed).rand(3, *SHAPE[1:]).astype(np.float32)
    out, ref = run(*thin, x), run(*masked, x)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert not np.allclose(ref, run(sym, args, aux, x), rtol=1e-3)
    assert count_macs(thin[0], SHAPE) == plan.macs_after < plan.macs_before
    again = mx.sym.load_json(thin[0].tojson())    # a standard graph
    np.testing.assert_array_equal(run(again, thin[1], thin[2], x), out)
    return plan, thin


def test_residual_groups_identity_and_projection():
    groups = groups_by_name(resnet())
    assert set(groups) == {'s', 'a1', 'a2', 'b2'}
    assert groups['s'].producers == ('s', 'b1')
    assert groups['b2'].producers == ('b2', 'p2')
    members = dict(groups['s'].members)
    assert members['a2'] == 'conv input' and members['p2'] == 'conv input'
    assert sorted(n for n, r in groups['b2'].members if r == 'batchnorm') == ['b2_bn', 'p2_bn']
    assert ('fc', 'fc input') in groups['b2'].members
    plan, (thin, args, aux) = check_thinning(resnet())
    assert args['s_weight'].shape == (4, 3, 3, 3) and args['b1_weight'].shape == (4, 3, 3, 3)
    assert args['p2_weight'].shape == (6, 4, 1, 1) and args['fc_weight'].shape == (5, 6)
    assert aux['p2_bn_moving_var'].shape == (6,)


def test_group_score_sums_the_members_filters():
    sym = resnet()
    args, _ = random_params(sym, data_shape=(2,) + SHAPE[1:])
    analysis = analyse(sym, SHAPE)
    group = [g for g in analysis.groups if g.name == 's'][0]
    l1 = group_scores(analysis, args, 'l1')[group.id]
    np.testing.assert_allclose(l1, filter_norms(args['s_weight']) + filter_norms(args['b1_weight']),
                               rtol=1e-6)
    l2 = group_scores(analysis, args, 'l2')[group.id]
    np.testing.assert_allclose(l2, np.sqrt(filter_norms(args['s_weight'], 'l2') ** 2 +
                                           filter_norms(args['b1_weight'], 'l2') ** 2), rtol=1e-6)
    gamma = group_scores(analysis, args, 'bn')[group.id]
    np.testing.assert_allclose(gamma, (np.abs(args['s_bn_gamma'].asnumpy()) +
                                       np.abs(args['b1_bn_gamma'].asnumpy())) / 2, rtol=1e-6)
    plan = plan_groups(sym, args, 3, data_shape=SHAPE)       # 3 channels of every group
    row = [r for r in plan.groups if r['group'] == 's'][0]
    np.testing.assert_array_equal(row['kept_channels'], np.sort(np.argsort(l1,
                                                                           kind='stable')[3:]))


def test_depthwise_conv_joins_the_group_of_the_conv_feeding_it():
    groups = groups_by_name(mobile())
    assert ('dw', 'depthwise') in groups['e'].members
    assert groups['stem'].producers == ('stem', 'pj')          # residual add
    assert ('fc', 'fc input') in groups['stem'].members
    _, (thin, args, _) = check_thinning(mobile())
    assert args['dw_weight'].shape == (6, 1, 3, 3)
    node = [n for n in thin.get_internals() if n.name == 'dw'][0]
    assert node.list_attr()['num_group'] == '6' and node.list_attr()['num_filter'] == '6'
    assert args['fc_weight'].shape == (5, 2 * 4 * 4)           # flatten: H*W columns a channel
    check_thinning(mobile(), 0.5, 'bn', seed=1)


def test_concat_inputs_keep_their_own_groups_at_their_offsets():
    groups = groups_by_name(dense())
    assert {'c1', 'c2', 'c3', 'c4'} <= set(groups)
    assert ('cat_bn', 'batchnorm') in groups['c1'].members
    assert ('cat2_bn', 'batchnorm') in groups['c2'].members
    assert ('c4', 'conv input') in groups['c3'].members
    plan, (thin, args, _) = check_thinning(dense())
    kept = {r['group']: r['kept'] for r in plan.groups}
    assert args['cat_bn_gamma'].shape == (kept['c1'] + kept['c2'],)
    assert args['c4_weight'].shape == (kept['c4'], kept['c1'] + kept['c2'] + kept['c3'], 1, 1)


def test_what_cannot_be_followed_stays_dense_and_is_reported():
    x = mx.sym.var('data')
    g = conv(conv(x, 'g0', 4), 'grouped', 6, groups=2)              # general grouped conv
    r = mx.sym.reshape(conv(x, 'r0', 4), shape=(0, 2, 2, -1))       # reshape mixes channels
    r = conv(r, 'after_reshape', 4)
    s = mx.sym.SliceChannel(conv(x, 's0', 4), num_outputs=2, axis=1)[0]
    ok = conv(x, 'ok', 4)
    out = mx.sym.Concat(mx.sym.Flatten(g), mx.sym.Flatten(r), mx.sym.Flatten(s),
                        mx.sym.Flatten(conv(ok, 'ok2', 3)), dim=1)
    sym = mx.sym.FullyConnected(out, num_hidden=5, name='fc')
    args, aux = random_params(sym, data_shape=(2,) + SHAPE[1:])
    plan = plan_groups(sym, args, 0.5, data_shape=SHAPE)           # no exception
    why = {s['group']: ' '.join(s['reasons']) for s in plan.skipped}
    assert 'grouped convolution' in why['g0'] and 'grouped convolution' in why['grouped']
    assert 'Reshape' in why['r0'] and 'SliceChannel' in why['s0']
    assert {r['group'] for r in plan.groups} == {'ok', 'after_reshape', 'ok2'}
    thin = thin_network(sym, args, aux, plan)
    x = np.random.RandomState(0).rand(2, *SHAPE[1:]).astype(np.float32)
    np.testing.assert_allclose(run(*thin, x), run(*zero_filters(sym, args, aux, plan), x),
                               rtol=1e-5, atol=1e-6)
    # named explicitly, a blocked group is skipped by the plan, refused by a raw keep-list
    plan = plan_groups(sym, args, {'r0': 0.5, 'ok': 0.5}, data_shape=SHAPE)
    assert [r['group'] for r in plan.groups] == ['ok']
    with pytest.raises(ValueError, match='r0: its channel group r0 stays dense'):
        thin_network(sym, args, aux, {'r0': [0]}, data_shape=SHAPE)


def test_per_group_sparsity_and_conflicts():
    sym = resnet()
    args, aux = random_params(sym, data_shape=(2,) + SHAPE[1:])
    plan = plan_groups(sym, args, {'b1': 0.25, 'p2': 4}, data_shape=SHAPE)   # names any member
    assert {r['group']: r['kept'] for r in plan.groups} == {'s': 6, 'b2': 8}
    with pytest.raises(ValueError, match='s and b1 are in one channel group'):
        plan_groups(sym, args, {'s': 0.5, 'b1': 0.25}, data_shape=SHAPE)
    with pytest.raises(ValueError, match="unknown conv layer 'fc'"):
        plan_groups(sym, args, {'fc': 0.5}, data_shape=SHAPE)
    with pytest.raises(ValueError, match='cannot remove 8 of the 8 filters of s'):
        plan_groups(sym, args, {'s': 8}, data_shape=SHAPE)
    plan = plan_groups(sym, args, 0.5, layers=['a1'], data_shape=SHAPE)
    assert [r['group'] for r in plan.groups] == ['a1']


@pytest.mark.parametrize('name', ['resnet50_v1', 'mobilenetv2_1.0', 'vgg16_bn', 'densenet121',
                                  'cifar_resnet56_v1', 'mobilenet1.0', 'resnet18_v2',
                                  'squeezenet1.1'])
def test_zoo_symbols_at_native_shapes(name):
    """Symbol-level analysis of the zoo nets of the issue at their native input (3x224x224,
    3x32x32 for CIFAR; no params, no forward): every conv is in exactly one group, the coupled
    structures are found, the thinned graph is consistent."""
    from gluoncv.model_zoo import get_model
    with mx.name.NameManager():
        sym = get_model(name, pretrained=False, classes=10)(mx.sym.var('data'))
    shape = (1, 3, 32, 32) if name.startswith('cifar') else (1, 3, 224, 224)
    analysis = analyse(sym, shape)
    convs = [n for n in analysis.nodes if n['op'] == 'Convolution']
    producers = [p for g in analysis.groups for p in g.producers]   # grouped convs included
    depthwise = [n for g in analysis.groups for n, role in g.members if role == 'depthwise']
    assert sorted(producers + depthwise) == sorted(n['name'] for n in convs)
    assert len(producers) == len(set(producers))
    blocked = analysis.blocked
    assert all(any('graph output' in r for r in g.reasons) for g in blocked)
    if name == 'resnet50_v1':
        assert max(len(g.producers) for g in analysis.groups) == 7   # stage 3: 6 blocks + proj
        assert not blocked
    if name == 'mobilenetv2_1.0':
        assert len(depthwise) == 17 and len(blocked) == 1
    if name == 'vgg16_bn':
        last = analysis.groups[-1]
        assert any(role == 'fc input' for _, role in last.members)
    if name == 'cifar_resnet56_v1':
        assert sorted(len(g.producers) for g in analysis.groups)[-3:] == [10, 10, 10]
    if name == 'squeezenet1.1':            # fire modules: expand 1x1 / 3x3 concatenated
        assert sum(role == 'conv input' for g in analysis.groups
                   for _, role in g.members) > len(convs)
    if name == 'densenet121':
        assert max(sum(role == 'batchnorm' for _, role in g.members)
                   for g in analysis.groups) >= 16       # read by every later layer of a block
    plan = plan_groups(sym, {}, 0.5, data_shape=shape, analysis=analysis)
    thin = thin_symbol(sym, plan)
    thin.infer_shape(data=shape)
    assert plan.macs_after < 0.35 * plan.macs_before


def test_prune_command_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    prefix = os.path.join(ROOT, 'benchmarks', 'models', 'kd-light-mobilenetv2_0.25-alone')
    out = str(tmp_path / 'out' / 'thin')
    assert main(['prune', prefix, '--output', out, '--method', 'filter', '--sparsity', '0.5',
                 '--dry-run']) == 0
    text = capsys.readouterr().out
    assert 'Filter pruning plan' in text and 'depthwise' in text
    assert 'MACs per example' in text and 'dry run: nothing written' in text
    assert not os.path.exists(str(tmp_path / 'out'))
    assert main(['prune', prefix, '--method', 'slim', '--sparsity', '0.3', '--dry-run']) == 0
    assert 'criterion bn' in capsys.readouterr().out
    assert main(['prune', prefix, '--method', 'filter', '--sparsity', '0.3']) != 0
    assert '--output is required' in capsys.readouterr().err


def test_shared_weights_stay_dense():
    x = mx.sym.var('data')
    w = mx.sym.var('shared_weight')
    a = mx.sym.Convolution(x, w, num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=True, name='a')
    b = mx.sym.Convolution(x, w, num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=True, name='b')
    sym = mx.sym.FullyConnected(mx.sym.Concat(a, b, dim=1), num_hidden=5, name='fc')
    args, aux = random_params(sym, data_shape=(2,) + SHAPE[1:])
    plan = plan_groups(sym, args, 0.5, data_shape=SHAPE)
    assert not plan.groups
    assert all('shared_weight' in ' '.join(s['reasons']) for s in plan.skipped)


def test_round_kept_to_a_channel_multiple():
    assert [round_kept(k, 16, 8) for k in (1, 3, 4, 11, 12, 16)] == [8, 8, 8, 8, 16, 16]
    assert round_kept(45, 64, 8) == 48 and round_kept(43, 64, 8) == 40
    assert round_kept(6, 8, 8) == 8 and round_kept(11, 64, 1) == 11   # small group stays whole
    for bad in (0, -8, 2.5, True):
        with pytest.raises(ValueError, match='channel multiple must be an integer >= 1'):
            round_kept(4, 16, bad)


def test_channel_multiple_keeps_the_strongest_channels_in_multiples():
    """Thinning to multiples of 4: kept counts round to 4 (a 6-channel interior group keeps
    4 or 6 -> 4; the 8- and 12-channel groups 4 and 8), the kept channels are the group's
    highest-scoring ones, and the thinned net equals the masked one."""
    sym = resnet()
    args, aux = random_params(sym, data_shape=(2,) + SHAPE[1:])
    plain = plan_groups(sym, args, 0.4, data_shape=SHAPE)
    plan = plan_groups(sym, args, 0.4, data_shape=SHAPE, channel_multiple=4)
    kept = {r['group']: r['kept'] for r in plan.groups}
    assert {r['group']: r['kept'] for r in plain.groups} == {'s': 5, 'a1': 4, 'a2': 4, 'b2': 7}
    assert kept == {'s': 4, 'a1': 4, 'a2': 4, 'b2': 8}
    scores = group_scores(plan.analysis, args, 'l1')
    for g in plan.analysis.groups:
        expect = np.sort(np.argsort(scores[g.id], kind='stable')[-kept[g.name]:])
        np.testing.assert_array_equal(plan.keep[g.id], expect)
    thin = thin_network(sym, args, aux, plan)
    masked = zero_filters(sym, args, aux, plan)
    x = np.random.RandomState(1).rand(2, *SHAPE[1:]).astype(np.float32)
    ref = run(*masked, x)
    np.testing.assert_allclose(run(*thin, x), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    with pytest.raises(ValueError, match='channel multiple'):
        plan_groups(sym, args, 0.4, data_shape=SHAPE, channel_multiple=0)
