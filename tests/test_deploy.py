"""Deploy graphs: loss heads -> inference ops, and every committed model loads in Gluon."""
import glob
import os
import warnings

import mxnet as mx
import numpy as np
import pytest

from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.cli import main
from mxcompress.deploy import deploy_graph, deploy_params
from mxcompress.graph import graph_nodes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = sorted(os.path.basename(path)[:-len('-symbol.json')] for path in
                glob.glob(os.path.join(ROOT, 'benchmarks', 'models', '*-symbol.json')))


def module_outputs(symbol, arg_params, aux_params, images):
    """All outputs of ``symbol`` bound as a training graph (labels given, inference pass)."""
    shapes = dict(zip(symbol.list_arguments(), symbol.infer_shape(data=images.shape)[0]))
    labels = [(a, shapes[a]) for a in symbol.list_arguments() if a.endswith('label')]
    module = mx.mod.Module(symbol, data_names=['data'], label_names=[a for a, _ in labels],
                           context=mx.cpu())
    module.bind([('data', images.shape)], labels or None, for_training=False)
    module.set_params(arg_params, aux_params)
    module.forward(mx.io.DataBatch([mx.nd.array(images)], [mx.nd.zeros(s) for _, s in labels]),
                   is_train=False)
    return [out.asnumpy() for out in module.get_outputs()]


def gluon_outputs(prefix, images):
    with warnings.catch_warnings():   # "Cannot decide type for ... data": it is the input
        warnings.simplefilter('ignore', UserWarning)
        net = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'],
                                           prefix + '-0000.params')
    out = net(mx.nd.array(images))
    return [o.asnumpy() for o in (out if isinstance(out, (list, tuple)) else [out])]


def with_params(symbol, data_shape, seed=0):
    rng = np.random.RandomState(seed)
    shapes = dict(zip(symbol.list_arguments(), symbol.infer_shape(data=data_shape)[0]))
    return {k: mx.nd.array(rng.normal(size=s)) for k, s in shapes.items()
            if k != 'data' and not k.endswith('label')}


def heads():
    data = mx.sym.Variable('data')
    fc = mx.sym.FullyConnected(data, num_hidden=6, name='fc')
    conv = mx.sym.Convolution(data.reshape((0, 2, 3, 4)), num_filter=3, kernel=(1, 1),
                              name='conv')
    return {'softmax': mx.sym.SoftmaxOutput(fc, name='softmax'),
            'multi_output': mx.sym.SoftmaxOutput(conv, multi_output=True, name='softmax'),
            'nd': mx.sym.SoftmaxOutput(conv, name='softmax'),
            'preserve_shape': mx.sym.SoftmaxOutput(conv, preserve_shape=True, name='softmax'),
            'logistic': mx.sym.LogisticRegressionOutput(fc, name='out'),
            'linear': mx.sym.LinearRegressionOutput(fc, name='out'),
            'mae': mx.sym.MAERegressionOutput(fc, name='out'),
            'two_heads': mx.sym.Group([mx.sym.SoftmaxOutput(fc, name='softmax'),
                                       mx.sym.LinearRegressionOutput(fc, name='reg')])}


@pytest.mark.parametrize('kind', sorted(heads()))
def test_loss_heads_become_their_inference_outputs(kind):
    symbol = heads()[kind]
    deployed = deploy_graph(symbol)
    assert deployed.list_outputs() == symbol.list_outputs()
    assert not [a for a in deployed.list_arguments() if a.endswith('label')]
    args = with_params(symbol, (5, 24))
    images = np.random.RandomState(1).normal(size=(5, 24)).astype(np.float32)
    want = module_outputs(symbol, args, {}, images)
    got = [o.asnumpy() for o in deployed.eval(ctx=mx.cpu(), data=mx.nd.array(images), **args)]
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_make_loss_heads_reading_labels_are_dropped():
    data, label = mx.sym.Variable('data'), mx.sym.Variable('label')
    fc = mx.sym.FullyConnected(data, num_hidden=3, name='fc')
    loss = mx.sym.MakeLoss(mx.sym.mean(mx.sym.square(fc - label.reshape((-1, 1)))), name='loss')
    symbol = mx.sym.Group([loss, mx.sym.BlockGrad(fc, name='pred')])
    deployed = deploy_graph(symbol)
    assert deployed.list_outputs() == ['pred_output']
    assert deployed.list_arguments() == ['data', 'fc_weight', 'fc_bias']
    with pytest.raises(ValueError, match='MakeLoss reading a label'):
        deploy_graph(loss)


def test_graph_without_labels_is_unchanged():
    symbol = mx.sym.softmax(mx.sym.FullyConnected(mx.sym.Variable('data'), num_hidden=3))
    assert deploy_graph(symbol) is symbol


def test_deploy_params_names_what_is_missing():
    symbol = deploy_graph(heads()['softmax'])
    with pytest.raises(ValueError, match='fc_bias'):
        deploy_params(symbol, {'fc_weight': mx.nd.zeros((6, 24))}, {})


def test_symbolblock_reads_the_arg_aux_prefixed_keys_save_checkpoint_writes(tmp_path):
    symbol = mx.sym.BatchNorm(mx.sym.FullyConnected(mx.sym.Variable('data'), num_hidden=3,
                                                    name='fc'), fix_gamma=False, name='bn')
    args = with_params(symbol, (2, 4))
    aux = {'bn_moving_mean': mx.nd.array([1, 2, 3]), 'bn_moving_var': mx.nd.array([1, 4, 9])}
    save_checkpoint(str(tmp_path / 'm'), 0, symbol, args, aux)
    keys = set(mx.nd.load(str(tmp_path / 'm-0000.params')))
    assert {'arg:fc_weight', 'arg:bn_gamma', 'aux:bn_moving_var'} <= keys
    images = np.ones((2, 4), np.float32)
    executor = symbol.bind(mx.cpu(), dict(args, data=mx.nd.array(images)), aux_states=aux)
    want = executor.forward(is_train=False)[0].asnumpy()
    np.testing.assert_allclose(gluon_outputs(str(tmp_path / 'm'), images)[0], want, rtol=1e-6)


@pytest.fixture(scope='module')
def test_images(mnist_dir):
    from mxcompress.data import load_mnist
    return load_mnist('test', num_examples=6)[0]


@pytest.mark.parametrize('name', MODELS)
def test_every_committed_model_loads_in_gluon_after_export(name, tmp_path, test_images):
    import mxcompress.ops
    mxcompress.ops.load()
    prefix = os.path.join(ROOT, 'benchmarks', 'models', name)
    want = module_outputs(*load_checkpoint(prefix), test_images)[0]
    out = str(tmp_path / name)
    assert main(['export', prefix, out, '--deploy']) == 0
    got = gluon_outputs(out, test_images)
    assert len(got) == 1 and got[0].shape == (len(test_images), 10)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)
    assert 'SoftmaxOutput' not in [n['op'] for n in graph_nodes(mx.sym.load(out + '-symbol.json'))]


@pytest.mark.parametrize('name', ['kd-light-mobilenetv2_0.25-alone',
                                  'kd-light-shufflenet_v2-alone'])
def test_export_with_folded_batchnorm_loads_in_gluon(name, tmp_path, test_images):
    prefix = os.path.join(ROOT, 'benchmarks', 'models', name)
    want = module_outputs(*load_checkpoint(prefix), test_images)[0]
    out = str(tmp_path / name)
    assert main(['export', prefix, out, '--deploy', '--fold-bn']) == 0
    np.testing.assert_allclose(gluon_outputs(out, test_images)[0], want, rtol=1e-5, atol=1e-5)
    assert 'BatchNorm' not in [n['op'] for n in graph_nodes(mx.sym.load(out + '-symbol.json'))]


def test_committed_training_graph_does_not_load_in_gluon():
    """Why export exists: the label of SoftmaxOutput is a parameter Gluon cannot find."""
    prefix = os.path.join(ROOT, 'benchmarks', 'models', 'lenet300')
    with pytest.raises(AssertionError, match='softmax_label'):
        gluon_outputs(prefix, np.zeros((1, 1, 28, 28), np.float32))


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(['export', str(tmp_path / 'missing'), str(tmp_path / 'out'), '--deploy']) == 2
    assert 'not found' in capsys.readouterr().err
