"""BatchNorm folding: synthetic graphs with random statistics, committed and gluoncv models."""
import os

import mxnet as mx
import numpy as np
import pytest

from mxcompress.checkpoint import load_checkpoint
from mxcompress.cli import main
from mxcompress.deploy import fold_batchnorm
from mxcompress.graph import graph_nodes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'benchmarks', 'models')


def forward(symbol, arg_params, aux_params, data):
    """Inference outputs (``is_train=False``: BatchNorm uses its moving statistics)."""
    args = dict(arg_params, data=mx.nd.array(data, dtype=data.dtype))
    args.update({name: mx.nd.zeros(len(data)) for name in symbol.list_arguments()
                 if name.endswith('label')})   # a loss head's label: unused in inference
    executor = symbol.bind(mx.cpu(), args, aux_states=dict(aux_params), grad_req='null')
    return [out.asnumpy() for out in executor.forward(is_train=False)]


def random_params(symbol, data_shape, seed=0):
    """Random weights (std sqrt(2 / fan-in)) and BatchNorm statistics (variance in [0.2, 3],
    gamma +-[0.5, 2])."""
    rng = np.random.RandomState(seed)
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=data_shape)
    args = {}
    for name, shape in zip(symbol.list_arguments(), arg_shapes):
        if name == 'data' or name.endswith('label'):
            continue
        if name.endswith('gamma'):
            value = rng.choice([-1, 1], shape) * rng.uniform(0.5, 2, shape)
        elif len(shape) > 1:
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        else:
            value = rng.normal(0, 0.5, shape)
        args[name] = mx.nd.array(value)
    aux = {name: mx.nd.array(rng.uniform(0.2, 3, shape) if name.endswith('var') else
                             rng.normal(0, 1, shape))
           for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return args, aux


def assert_same(before, after, data, rtol=1e-5):
    for want, got in zip(forward(*before, data), forward(*after, data)):
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def synthetic():
    """conv+bias -> BN(fix_gamma False); grouped conv, no bias -> BN (defaults: fix_gamma True,
    eps 1e-3); depthwise conv -> BN(axis -1 is wrong for NCHW: kept); pool -> BN (kept);
    conv feeding a BN and an add (kept); FC -> BN(axis -1) as the graph's output."""
    data = mx.sym.Variable('data')
    x = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), pad=(1, 1), name='conv1')
    x = mx.sym.BatchNorm(x, fix_gamma=False, eps=1e-5, name='bn1')
    x = mx.sym.relu(x)
    x = mx.sym.Convolution(x, num_filter=8, num_group=2, kernel=(3, 3), no_bias=True,
                           name='gconv')
    x = mx.sym.BatchNorm(x, name='bn_grouped')
    y = mx.sym.Convolution(x, num_filter=8, num_group=8, kernel=(3, 3), pad=(1, 1),
                           name='dwconv')
    x = mx.sym.BatchNorm(y, axis=-1, fix_gamma=False, name='bn_last_axis')
    x = mx.sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type='max', name='pool')
    x = mx.sym.BatchNorm(x, fix_gamma=False, name='bn_after_pool')
    z = mx.sym.Convolution(x, num_filter=4, kernel=(1, 1), name='conv_shared')
    x = mx.sym.BatchNorm(z, fix_gamma=False, name='bn_shared') + z
    x = mx.sym.FullyConnected(x, num_hidden=6, name='fc')
    return mx.sym.BatchNorm(x, axis=-1, fix_gamma=False, name='bn_fc')


def test_synthetic_graph_folds_exactly_what_it_may():
    symbol = synthetic()
    args, aux = random_params(symbol, (2, 4, 10, 10))
    folded, new_args, new_aux, folds = fold_batchnorm(symbol, args, aux)
    status = {f.batchnorm: (f.layer, f.folded) for f in folds}
    assert status == {'bn1': ('conv1', True), 'bn_grouped': ('gconv', True),
                      'bn_last_axis': ('dwconv', False), 'bn_after_pool': ('pool', False),
                      'bn_shared': ('conv_shared', False), 'bn_fc': ('fc', True)}
    reasons = {f.batchnorm: f.reason for f in folds}
    assert 'Pooling' in reasons['bn_after_pool']
    assert 'also feeds 1 other' in reasons['bn_shared']
    assert 'axis -1' in reasons['bn_last_axis']
    ops = [n['op'] for n in graph_nodes(folded)]
    assert ops.count('BatchNorm') == 3
    layers = {n['name']: n.get('attrs', {}) for n in graph_nodes(folded)}
    assert layers['gconv']['no_bias'] == 'False' and 'gconv_bias' in new_args
    assert folded.list_outputs() == ['bn_fc_output']       # the output keeps its name
    assert sorted(new_args) == sorted(a for a in folded.list_arguments() if a != 'data')
    assert 'bn1_gamma' not in new_args and 'bn1_moving_var' not in new_aux
    data = np.random.RandomState(1).uniform(size=(3, 4, 10, 10)).astype(np.float32)
    assert_same((symbol, args, aux), (folded, new_args, new_aux), data)


@pytest.mark.parametrize('fix_gamma', [True, False])
@pytest.mark.parametrize('no_bias', [True, False])
def test_conv_and_fc_with_and_without_bias(fix_gamma, no_bias):
    data = mx.sym.Variable('data')
    x = mx.sym.Convolution(data, num_filter=6, kernel=(3, 3), no_bias=no_bias, name='c')
    x = mx.sym.BatchNorm(x, fix_gamma=fix_gamma, name='bn')
    x = mx.sym.FullyConnected(mx.sym.relu(x), num_hidden=5, no_bias=no_bias, name='f')
    symbol = mx.sym.BatchNorm(x, fix_gamma=fix_gamma, eps=1e-4, name='bnf')
    args, aux = random_params(symbol, (2, 3, 7, 7), seed=2)
    folded, new_args, new_aux, folds = fold_batchnorm(symbol, args, aux)
    assert all(f.folded for f in folds) and not new_aux
    assert 'BatchNorm' not in [n['op'] for n in graph_nodes(folded)]
    data = np.random.RandomState(3).normal(size=(4, 3, 7, 7)).astype(np.float32)
    assert_same((symbol, args, aux), (folded, new_args, new_aux), data)


def test_binary_layer_and_shared_weight_are_left_alone():
    data = mx.sym.Variable('data')
    w = mx.sym.Variable('w')
    a = mx.sym.BatchNorm(mx.sym.Convolution(data, weight=w, num_filter=4, kernel=(1, 1),
                                            no_bias=True, name='a'), name='bna')
    b = mx.sym.BatchNorm(mx.sym.Convolution(data, weight=w, num_filter=4, kernel=(1, 1),
                                            no_bias=True, name='b'), name='bnb')
    latent = mx.sym.Variable('latent')
    c = mx.sym.Convolution(data, weight=mx.sym.sign(latent), num_filter=4, kernel=(1, 1),
                           no_bias=True, name='binary')
    symbol = mx.sym.Group([a, b, mx.sym.BatchNorm(c, name='bnc')])
    args, aux = random_params(symbol, (1, 2, 3, 3))
    _, _, _, folds = fold_batchnorm(symbol, args, aux)
    assert not any(f.folded for f in folds)
    assert 'shared' in folds[0].reason and 'sign' in folds[2].reason


def test_gluoncv_mobilenet_with_random_statistics():
    """52 conv -> BN pairs with random statistics. In float64 the fold is exact; in float32
    this random 52-layer network is ill-conditioned (the float32 original itself is ~2e-5 off
    its float64 result on some inputs), so float32 is checked at 1e-4."""
    import symbols
    symbol = symbols.get_symbol('mobilenetv2_0.25').get_children()[0]   # the logits
    args, aux = random_params(symbol, (1, 1, 28, 28), seed=4)
    folded = fold_batchnorm(symbol, args, aux)
    assert len(folded[3]) == 52 and all(f.folded for f in folded[3])
    data = np.random.RandomState(5).uniform(size=(8, 1, 28, 28)).astype(np.float32)
    assert_same((symbol, args, aux), folded[:3], data, rtol=1e-4)
    as64 = [{k: v.astype('float64') for k, v in d.items()} for d in (args, aux)]
    folded64 = fold_batchnorm(symbol, *as64)
    assert_same((symbol, *as64), folded64[:3], data.astype(np.float64), rtol=1e-10)


@pytest.mark.parametrize('name', ['kd-light-mobilenetv2_0.25-alone',
                                  'kd-light-shufflenet_v2-alone', 'bnn-resnet'])
def test_fold_bn_command_on_committed_models(name, tmp_path, mnist_dir, capsys):
    from mxcompress.data import load_mnist
    prefix = os.path.join(MODELS, name)
    assert main(['fold-bn', prefix, str(tmp_path / 'folded')]) == 0
    assert '"max_relative_difference"' in capsys.readouterr().out
    before = load_checkpoint(prefix)
    after = load_checkpoint(str(tmp_path / 'folded'))
    images = load_mnist('test', num_examples=8)[0]
    assert_same(before, after, images)
    left = [n for n in graph_nodes(after[0]) if n['op'] == 'BatchNorm']
    if name == 'bnn-resnet':   # binary convs (weight = f(latent)) and BN after pool / add
        assert len(left) == 7
    else:
        assert not left


def test_fold_bn_refuses_to_overwrite_its_input(capsys):
    prefix = os.path.join(MODELS, 'lenet5')
    assert main(['fold-bn', prefix, prefix]) == 2
    assert 'would overwrite' in capsys.readouterr().err
