"""The converter turns a binary training graph (bnn contract) into an xnor_conv2d graph that
predicts what the training graph predicts, with 1-bit weights."""
import json

import mxnet as mx
import numpy as np
import pytest

import mxcompress.ops as ops
from mxcompress.binary.convert import convert, size_report
from mxcompress.checkpoint import load_checkpoint, save_checkpoint
from mxcompress.data import load_mnist
from mxcompress.graph import graph_nodes
from mxcompress.measure import predict


def _ste_sign(x):
    """The training graph's straight-through sign: clip(x) + BlockGrad(sign(x) - clip(x))."""
    clipped = mx.sym.clip(x, -1.0, 1.0)
    return clipped + mx.sym.BlockGrad(((x >= 0) * 2 - 1) - clipped)


def _binary_conv(data, name, num_filter, alpha, binary_input, **conv):
    """A binary Convolution node as the binary-network family builds it (the contract)."""
    latent = mx.sym.var(name + '_weight')
    weight = _ste_sign(latent)
    if alpha:
        scale = mx.sym.mean(mx.sym.abs(latent), axis=0, exclude=True, keepdims=True)
        weight = weight * mx.sym.broadcast_mul(mx.sym.ones_like(weight), scale)
    attrs = {'__binary_weight__': 'sign_alpha' if alpha else 'sign',
             '__binary_input__': 'true' if binary_input else 'false',
             '__latent_weight__': latent.name}
    return mx.sym.Convolution(data, weight, num_filter=num_filter, no_bias=True, name=name,
                              attr=attrs, **conv)


def _training_graph():
    data = mx.sym.var('data')
    x = mx.sym.Convolution(data, num_filter=16, kernel=(3, 3), pad=(1, 1), name='conv0')
    x = mx.sym.BatchNorm(x, name='bn0', fix_gamma=False)
    x = _binary_conv(_ste_sign(x), 'bconv1', 32, True, True, kernel=(3, 3), pad=(1, 1))
    x = mx.sym.BatchNorm(x, name='bn1', fix_gamma=False)
    x = _binary_conv(_ste_sign(x), 'bconv2', 40, False, True, kernel=(3, 3), pad=(1, 1),
                     stride=(2, 2))
    x = mx.sym.BatchNorm(x, name='bn2', fix_gamma=False)
    x = _binary_conv(x, 'bconv3', 24, True, False, kernel=(3, 3), pad=(1, 1))  # float input
    x = mx.sym.BatchNorm(x, name='bn3', fix_gamma=False)
    x = mx.sym.Activation(x, act_type='relu')
    x = mx.sym.Pooling(x, global_pool=True, pool_type='avg', kernel=(1, 1))
    x = mx.sym.FullyConnected(mx.sym.flatten(x), num_hidden=10, name='fc')
    return mx.sym.SoftmaxOutput(x, name='softmax')


def _random_params(symbol, seed=0):
    rng = np.random.RandomState(seed)
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=(1, 1, 28, 28))
    args = {n: mx.nd.array(rng.uniform(-1, 1, s)) for n, s in
            zip(symbol.list_arguments(), arg_shapes) if n not in ('data', 'softmax_label')}
    aux = {}
    for n, s in zip(symbol.list_auxiliary_states(), aux_shapes):
        aux[n] = mx.nd.array(rng.uniform(-0.2, 0.2, s) if 'mean' in n else rng.uniform(0.5, 2, s))
    return args, aux


@pytest.fixture(scope='module')
def model():
    symbol = _training_graph()
    args, aux = _random_params(symbol)
    return symbol, args, aux


def test_converted_graph_structure_and_size(model):
    symbol, args, aux = model
    conv_sym, conv_args, conv_aux, layers = convert(symbol, args, aux)
    ops_by_name = {n['name']: n['op'] for n in graph_nodes(conv_sym)}
    assert ops_by_name['bconv1'] == 'xnor_conv2d' and ops_by_name['bconv2'] == 'xnor_conv2d'
    assert ops_by_name['bconv3'] == 'Convolution'  # its input is not binary
    assert 'bconv1_weight' not in conv_args and 'bconv2_weight' not in conv_args
    assert 'bconv3_weight' in conv_args
    assert conv_args['bconv1_xnor_weight'].dtype == np.uint8
    assert conv_args['bconv1_xnor_weight'].shape == (32, 3, 3, 2)
    np.testing.assert_array_equal(ops.unpack_weights(conv_args['bconv1_xnor_weight'], 16),
                                  np.where(args['bconv1_weight'].asnumpy() >= 0, 1, -1))
    np.testing.assert_allclose(conv_args['bconv1_xnor_alpha'].asnumpy(),
                               np.abs(args['bconv1_weight'].asnumpy()).mean(axis=(1, 2, 3)),
                               rtol=1e-6)
    np.testing.assert_array_equal(conv_args['bconv2_xnor_alpha'].asnumpy(), np.ones(40))
    assert all(r['sign_stripped'] for r in layers)
    report = size_report(layers, args, conv_args)
    assert report['binary_conv_fp32_bytes'] == 4 * (32 * 16 * 9 + 40 * 32 * 9)
    assert report['binary_conv_packed_bytes'] == 32 * 9 * 2 + 40 * 9 * 4 + 4 * (32 + 40)
    assert report['params_bytes_after'] < report['params_bytes_before']


def test_converted_predictions_equal_training_graph(model, mnist_dir, tmp_path):
    symbol, args, aux = model
    images, _ = load_mnist('test', mnist_dir)
    images = images[:300]
    want = predict(symbol, args, aux, images, batch_size=100)
    conv_sym, conv_args, conv_aux, _ = convert(symbol, args, aux)
    got = predict(conv_sym, conv_args, conv_aux, images, batch_size=100)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    # a saved inference checkpoint reloads (library loaded) and gives the same predictions
    prefix = str(tmp_path / 'xnor-net')
    save_checkpoint(prefix, 0, conv_sym, conv_args, conv_aux)
    sym2, args2, aux2 = load_checkpoint(prefix, 0, data_shapes={'data': (1, 1, 28, 28)})
    np.testing.assert_array_equal(predict(sym2, args2, aux2, images, batch_size=100), got)


def test_without_sign_stripping_same_predictions(model, mnist_dir):
    symbol, args, aux = model
    images, _ = load_mnist('test', mnist_dir)
    images = images[:100]
    a = predict(*convert(symbol, args, aux, strip_sign=False)[:3], images, batch_size=50)
    b = predict(*convert(symbol, args, aux)[:3], images, batch_size=50)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_contract_violations_are_reported(model):
    symbol, args, aux = model
    bad = dict(args)
    del bad['bconv1_weight']
    with pytest.raises(ValueError, match="layer bconv1: latent weight 'bconv1_weight'"):
        convert(symbol, bad, aux)
    sym = mx.sym.Convolution(mx.sym.var('data'), mx.sym.var('w'), kernel=(3, 3), num_filter=2,
                             no_bias=True, name='c', attr={'__binary_weight__': 'ternary',
                                                           '__binary_input__': 'true',
                                                           '__latent_weight__': 'w'})
    with pytest.raises(ValueError, match='__binary_weight__ must be sign or sign_alpha'):
        convert(sym, {'w': mx.nd.ones((2, 1, 3, 3))}, {})


def test_cli_converts_and_checks_on_mnist(model, mnist_dir, tmp_path, capsys):
    from mxcompress.cli import main
    symbol, args, aux = model
    prefix, out = str(tmp_path / 'bnn'), str(tmp_path / 'bnn-xnor')
    save_checkpoint(prefix, 0, symbol, args, aux)
    assert main(['xnor-convert', prefix, out, '--check']) == 0
    report = capsys.readouterr().out
    assert '"predictions_equal_count": 10000' in report
    assert json.loads(report)['batchnorms_folded'] == ['bn0', 'bn1']
    assert json.loads(report)['packed_outputs'] == {'bconv1': 'bconv2'}
    assert main(['xnor-convert', prefix, out + '-plain', '--no-fold-bn', '--no-fuse-add']) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain['batchnorms_folded'] == [] and plain['residual_adds_fused'] == []
    assert plain['packed_outputs'] == {}  # nothing to pack without folded thresholds
    assert main(['xnor-convert', prefix, out + '-float', '--no-packed-output', '--check']) == 0
    floats = json.loads(capsys.readouterr().out)
    assert floats['packed_outputs'] == {} and floats['batchnorms_folded'] == ['bn0', 'bn1']
    assert floats['predictions_equal_count'] == 10000
    sym, _, _ = load_checkpoint(out, 0, data_shapes={'data': (1, 1, 28, 28)})
    assert 'xnor_conv2d' in sym.tojson()


def test_cli_rejects_graph_without_binary_convs(tmp_path, capsys):
    from mxcompress.cli import main
    sym = mx.sym.FullyConnected(mx.sym.flatten(mx.sym.var('data')), num_hidden=10, name='fc')
    prefix = str(tmp_path / 'plain')
    save_checkpoint(prefix, 0, sym, {'fc_weight': mx.nd.ones((10, 784)),
                                     'fc_bias': mx.nd.zeros(10)}, {})
    assert main(['xnor-convert', prefix, str(tmp_path / 'out')]) == 2
    assert 'no binary convolution' in capsys.readouterr().err
    assert not (tmp_path / 'out-symbol.json').exists()


@pytest.mark.parametrize('fix_gamma', [False, True])
def test_batchnorm_threshold_equals_sign_of_batchnorm(fix_gamma):
    """sign(BatchNorm(x)) == -1 exactly where x * scale < threshold, at every sign case of
    gamma (> 0, < 0, = 0 with beta < 0, = 0 and >= 0) and a large eps; points within float
    rounding of a threshold are left out (both sides round differently there)."""
    from mxcompress.binary.convert import batchnorm_threshold
    from mxcompress.ops.reference import threshold_sign
    rng = np.random.RandomState(3)
    c = 8
    gamma = np.array([1.5, -0.7, 0.0, 0.0, 0.0, 2.0, -3.0, 0.2], np.float32)
    beta = np.array([0.3, -0.4, -0.5, 0.0, 0.6, 0.0, 1.0, -2.0], np.float32)
    mean = rng.uniform(-1, 1, c).astype(np.float32)
    var = rng.uniform(0.1, 2, c).astype(np.float32)
    eps = 0.25
    x = rng.randn(4, c, 6, 6).astype(np.float32) * 2
    y = mx.nd.BatchNorm(mx.nd.array(x), mx.nd.array(gamma), mx.nd.array(beta),
                        mx.nd.array(mean), mx.nd.array(var), eps=eps, fix_gamma=fix_gamma,
                        use_global_stats=True).asnumpy()
    want = np.where(y >= 0, 1, -1)
    scale, threshold = batchnorm_threshold(gamma, beta, mean, var, eps, fix_gamma=fix_gamma)
    assert set(scale.tolist()) <= {1.0, -1.0}
    got = threshold_sign(mx.nd.array(x), mx.nd.array(scale), mx.nd.array(threshold)).asnumpy()
    finite = np.isfinite(threshold)[None, :, None, None]
    near = finite & (np.abs(x * scale[None, :, None, None] - threshold[None, :, None, None])
                     < 1e-5 * (1 + np.abs(x)))
    assert near.mean() < 0.01
    np.testing.assert_array_equal(got[~near], want[~near])
    if not fix_gamma:   # gamma = 0: the constant sign(beta) (beta = 0 gives +1)
        assert np.all(got[:, 2] == -1) and np.all(got[:, 3] == 1) and np.all(got[:, 4] == 1)


def _with_zero_and_negative_gammas(args):
    args = dict(args)
    for name in ('bn0_gamma', 'bn1_gamma'):
        gamma = args[name].asnumpy()
        gamma[0], gamma[1], gamma[2] = 0.0, -abs(gamma[1]), -0.5
        args[name] = mx.nd.array(gamma)
    return args


def test_folded_batchnorm_equals_unfolded_graph(model, mnist_dir):
    """BatchNorm + sign folded into the op's input thresholds (gamma < 0 and gamma = 0
    channels included): the BatchNorms before binary convs leave the graph, the predictions
    equal the unfolded conversion and the training graph."""
    symbol, args, aux = model
    args = _with_zero_and_negative_gammas(args)
    images, _ = load_mnist('test', mnist_dir)
    images = images[:300]
    folded_sym, folded_args, folded_aux, layers = convert(symbol, args, aux)
    plain = convert(symbol, args, aux, fold_bn=False)
    assert [r['batchnorm_folded'] for r in layers] == ['bn0', 'bn1']
    ops_by_name = {n['name']: n['op'] for n in graph_nodes(folded_sym)}
    assert 'bn0' not in ops_by_name and 'bn1' not in ops_by_name and 'bn2' in ops_by_name
    assert 'bn0' in {n['name'] for n in graph_nodes(plain[0])}
    assert 'bn0_gamma' not in folded_args and 'bn0_moving_mean' not in folded_aux
    np.testing.assert_array_equal(folded_args['bn1_in_scale'].asnumpy()[:3], [1, -1, -1])
    assert folded_args['bn1_in_threshold'].asnumpy()[0] in (np.inf, -np.inf)
    got = predict(folded_sym, folded_args, folded_aux, images, batch_size=100)
    np.testing.assert_allclose(got, predict(*plain[:3], images, batch_size=100),
                               rtol=1e-5, atol=1e-6)
    want = predict(symbol, args, aux, images, batch_size=100)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))


def test_quantizer_ste_sign_is_stripped_and_its_batchnorm_folded():
    """The straight-through sign of mxcompress.binary.quantizers (BlockGrad(2 (x >= 0) - 1) +
    (clip(x) - BlockGrad(clip(x)))) is recognised: the op reads the BatchNorm's input; a
    multi-bit activation in the same place is not stripped."""
    from mxcompress.binary.quantizers import quantize_activation, ste_sign
    x = mx.sym.BatchNorm(mx.sym.Convolution(mx.sym.var('data'), num_filter=8, kernel=(3, 3),
                                            pad=(1, 1), name='c0'), fix_gamma=False, name='bn')
    net = _binary_conv(ste_sign(mx.sym, x), 'b1', 8, True, True, kernel=(3, 3), pad=(1, 1))
    args, aux = _random_params(net)
    _, _, _, layers = convert(net, args, aux)
    assert layers[0]['sign_stripped'] and layers[0]['batchnorm_folded'] == 'bn'
    two_bit = _binary_conv(quantize_activation(mx.sym, x, num_bits=2), 'b1', 8, True, True,
                           kernel=(3, 3), pad=(1, 1))
    _, _, _, layers = convert(two_bit, args, aux)
    assert not layers[0]['sign_stripped'] and layers[0]['batchnorm_folded'] is None


def test_residual_add_fused_into_the_op():
    """A converted conv whose output only feeds an element-wise add takes the add's other
    operand as its residual input: the add leaves the graph, the outputs are bit-identical;
    a conv whose output is also read elsewhere keeps its add."""
    from mxcompress.binary.quantizers import ste_sign
    x = mx.sym.BatchNorm(mx.sym.Convolution(mx.sym.var('data'), num_filter=8, kernel=(3, 3),
                                            pad=(1, 1), name='c0'), fix_gamma=False, name='bn')
    y = _binary_conv(ste_sign(mx.sym, x), 'b1', 8, True, True, kernel=(3, 3), pad=(1, 1))
    summed = mx.sym.elemwise_add(y, x, name='sum')
    z = _binary_conv(ste_sign(mx.sym, summed), 'b2', 8, True, True, kernel=(3, 3), pad=(1, 1))
    twice = mx.sym.elemwise_add(z, summed, name='sum2') + z         # z read twice
    head = mx.sym.FullyConnected(mx.sym.flatten(mx.sym.Pooling(
        twice, global_pool=True, pool_type='avg', kernel=(1, 1))), num_hidden=10, name='fc')
    net = mx.sym.SoftmaxOutput(head, name='softmax')
    args, aux = _random_params(net)
    fused_sym, fused_args, fused_aux, layers = convert(net, args, aux)
    plain = convert(net, args, aux, fuse_add=False)
    assert [r['residual_add_fused'] for r in layers] == ['sum', None]
    # b1's sum and z are read by several nodes: their float values stay
    assert [r['packed_output'] for r in layers] == [None, None]
    names = {n['name'] for n in graph_nodes(fused_sym)}
    assert 'sum' not in names and 'sum2' in names
    images = np.random.RandomState(0).rand(16, 1, 28, 28).astype(np.float32)
    got = predict(fused_sym, fused_args, fused_aux, images, batch_size=8)
    np.testing.assert_array_equal(got, predict(*plain[:3], images, batch_size=8))
    np.testing.assert_array_equal(got.argmax(1), predict(net, args, aux, images).argmax(1))


def _small_bnn_resnet(filter_list=(12, 20, 36)):
    """symbols.bnn_resnet (8 layers: conv -> BN -> sign -> conv -> + shortcut units, binary
    shortcut convs where the shape changes) with channel counts off the multiples of 8."""
    from symbols import bnn_resnet
    net = bnn_resnet.get_symbol(num_classes=10, num_layers=8, filter_list=filter_list)
    args, aux = _random_params(net, seed=4)
    return net, _with_zero_and_negative_gammas_everywhere(args), aux


def _with_zero_and_negative_gammas_everywhere(args):
    args = dict(args)
    for name in args:
        if name.endswith('_gamma'):
            gamma = args[name].asnumpy()
            gamma[0], gamma[1] = 0.0, -abs(gamma[1])
            args[name] = mx.nd.array(gamma)
    return args


def test_packed_output_between_binary_convs(mnist_dir):
    """In each residual unit conv1's only reader is BN -> sign -> conv2: conv1 emits conv2's
    binarisation as packed bits (output_threshold with the folded BatchNorm's thresholds)
    and conv2 reads them (packed_input). Convs whose output feeds a residual add or has
    several readers keep float outputs. The outputs equal the float-between conversion
    exactly and the training graph's predictions (gamma < 0 and gamma = 0 channels
    included)."""
    net, args, aux = _small_bnn_resnet()
    packed_sym, packed_args, packed_aux, layers = convert(net, args, aux)
    plain = convert(net, args, aux, packed_output=False)
    pairs = {r['layer']: r['packed_output'] for r in layers if r['packed_output']}
    assert len(pairs) == 3  # one per residual unit
    for producer, consumer in pairs.items():
        assert producer.endswith('_conv0_fwd') and consumer == producer.replace('0_fwd', '1_fwd')
        assert next(r for r in layers if r['layer'] == consumer)['packed_input'] == producer
    nodes = {n['name']: n for n in graph_nodes(packed_sym)}
    for producer, consumer in pairs.items():
        assert nodes[producer]['attrs']['output_threshold'] == 'True'
        assert nodes[consumer]['attrs']['packed_input'] == 'True'
        assert nodes[consumer]['attrs']['input_threshold'] == 'False'
        assert int(nodes[consumer]['attrs']['in_channels']) == int(
            nodes[producer]['attrs']['num_filter'])
    for r in layers:  # shortcuts and the convs that feed an add keep float outputs
        if r['layer'] not in pairs:
            assert nodes[r['layer']]['attrs'].get('output_threshold', 'False') == 'False'
    assert sorted(packed_args) == sorted(plain[1])  # same params, thresholds moved
    assert all(r['packed_output'] is None for r in plain[3])
    images, _ = load_mnist('test', mnist_dir)
    images = images[:200]
    got = predict(packed_sym, packed_args, packed_aux, images, batch_size=50)
    np.testing.assert_array_equal(got, predict(*plain[:3], images, batch_size=50))
    np.testing.assert_array_equal(got.argmax(1), predict(net, args, aux, images).argmax(1))


def test_packed_output_needs_the_folded_batchnorm():
    """Without folding (--no-fold-bn) no conv reads thresholds, so nothing is packed; a conv
    read by two binary convs (the unit's first activation: conv1 and the shortcut) is not
    packed either."""
    net, args, aux = _small_bnn_resnet()
    _, _, _, layers = convert(net, args, aux, fold_bn=False)
    assert all(r['packed_output'] is None and r['packed_input'] is None for r in layers)


def test_packed_output_with_a_fused_residual_add():
    """A conv whose residual add is fused and whose sum is read only by the next binary conv
    (through a folded BatchNorm): the op adds the residual, then binarises the sum into
    packed bits (out thresholds before the residual input); outputs equal the float form."""
    from mxcompress.binary.quantizers import ste_sign
    x = mx.sym.BatchNorm(mx.sym.Convolution(mx.sym.var('data'), num_filter=12, kernel=(3, 3),
                                            pad=(1, 1), name='c0'), fix_gamma=False, name='bn')
    y = _binary_conv(ste_sign(mx.sym, x), 'b1', 12, True, True, kernel=(3, 3), pad=(1, 1))
    summed = mx.sym.elemwise_add(y, x, name='sum')
    bn2 = mx.sym.BatchNorm(summed, fix_gamma=False, name='bn2')
    z = _binary_conv(ste_sign(mx.sym, bn2), 'b2', 20, True, True, kernel=(3, 3), pad=(1, 1),
                     stride=(2, 2))
    head = mx.sym.FullyConnected(mx.sym.flatten(mx.sym.Pooling(
        z, global_pool=True, pool_type='avg', kernel=(1, 1))), num_hidden=10, name='fc')
    net = mx.sym.SoftmaxOutput(head, name='softmax')
    args, aux = _random_params(net)
    args = _with_zero_and_negative_gammas_everywhere(args)
    packed_sym, packed_args, packed_aux, layers = convert(net, args, aux)
    plain = convert(net, args, aux, packed_output=False)
    by_name = {r['layer']: r for r in layers}
    assert by_name['b1']['residual_add_fused'] == 'sum'
    assert by_name['b1']['packed_output'] == 'b2' and by_name['b2']['packed_input'] == 'b1'
    node = {n['name']: n for n in graph_nodes(packed_sym)}['b1']
    assert node['attrs']['residual'] == 'True' and node['attrs']['output_threshold'] == 'True'
    images = np.random.RandomState(1).rand(16, 1, 28, 28).astype(np.float32)
    got = predict(packed_sym, packed_args, packed_aux, images, batch_size=8)
    np.testing.assert_array_equal(got, predict(*plain[:3], images, batch_size=8))
    np.testing.assert_array_equal(got.argmax(1), predict(net, args, aux, images).argmax(1))
