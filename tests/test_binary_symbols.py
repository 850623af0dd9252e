"""The document's bnn Symbol API, its residual unit and the binary networks of ``symbols``."""
import json
import warnings

import mxnet as mx
import numpy as np
import pytest

import symbols
from symbols import bnn
from symbols.bnn_resnet import get_symbol as bnn_resnet, residual_unit

MAIN_OPS = ('BatchNorm', 'Convolution')
BINARY = ('bnn-resnet', 'binaryconnect-mlp', 'bwn-lenet5', 'xnor-lenet5')


def _nodes(sym):
    return json.loads(sym.tojson())['nodes']


def _forward(sym, data, seed=0, **shapes):
    """Run ``sym`` once in inference mode with random params."""
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data.shape, **shapes)
    rng = np.random.RandomState(seed)
    args = {n: mx.nd.array(rng.uniform(-1, 1, s)) for n, s in
            zip(sym.list_arguments(), arg_shapes)}
    args['data'] = mx.nd.array(data)
    aux = {n: mx.nd.array(np.ones(s) if n.endswith('var') else np.zeros(s))
           for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    exe = sym.bind(mx.cpu(), args, aux_states=aux, grad_req='null')
    return exe.forward(is_train=False)[0].asnumpy()


@pytest.mark.parametrize('dim_match', [True, False])
def test_residual_unit_has_the_document_op_order_and_shape(dim_match):
    data = mx.sym.var('data')
    filters, stride = (16, (1, 1)) if dim_match else (32, (2, 2))
    with mx.name.Prefix('u_'):
        out = residual_unit(data, filters, stride, dim_match, num_bits=1)
    nodes = _nodes(out)
    head = json.loads(out.tojson())['heads'][0][0]
    main = [(i, n) for i, n in enumerate(nodes) if n['op'] in MAIN_OPS] + [(head, nodes[head])]
    expected = ['BatchNorm', 'Convolution', 'BatchNorm', 'Convolution']
    expected += ([] if dim_match else ['Convolution']) + ['elemwise_add']
    assert [n['op'] for _, n in main] == expected
    assert main[-1][0] == len(nodes) - 1          # the sum is the unit's output
    bn1, conv1, bn2, conv2 = [i for i, _ in main[:4]]

    def binact_source(conv_index):
        """The BatchNorm whose binarised output feeds this convolution's data input."""
        src = nodes[conv_index]['inputs'][0][0]      # the BinActiv's final node
        seen, stack = set(), [src]
        while stack:
            k = stack.pop()
            if nodes[k]['op'] == 'BatchNorm':
                return k
            if k not in seen:
                seen.add(k)
                stack.extend(j for j, _, _ in nodes[k]['inputs'])
        return None

    assert binact_source(conv1) == bn1          # bnAct1 -> conv1
    assert nodes[bn2]['inputs'][0][0] == conv1   # conv1 -> convBn1
    assert binact_source(conv2) == bn2          # convBn1 -> conv2
    add = main[-1][1]
    add_inputs = [j for j, _, _ in add['inputs']]
    assert conv2 in add_inputs                   # conv2 + shortcut
    if dim_match:
        assert nodes[add_inputs[1]]['name'] == 'data'
    else:
        shortcut = main[4][0]
        assert shortcut in add_inputs
        assert nodes[shortcut]['inputs'][0][0] == nodes[conv1]['inputs'][0][0]  # bnAct1
        assert nodes[shortcut]['attrs']['stride'] == '(2, 2)'
    for i in (conv1, conv2):
        assert nodes[i]['attrs']['kernel'] == '(3, 3)' and nodes[i]['attrs']['pad'] == '(1, 1)'
    _, out_shapes, _ = out.infer_shape(data=(2, 16, 14, 14))
    assert out_shapes[0] == ((2, 16, 14, 14) if dim_match else (2, 32, 7, 7))
    x = np.random.RandomState(0).randn(2, 16, 14, 14)
    assert _forward(out, x).shape == out_shapes[0]


@pytest.mark.parametrize('bits,binary_input', [(1, 'true'), (2, 'false'), (4, 'false')])
def test_every_binary_conv_carries_the_contract(bits, binary_input):
    sym = bnn_resnet(num_layers=8, num_bits=bits, filter_list=(4, 8, 8))
    args = set(sym.list_arguments())
    attr = sym.attr_dict()
    convs = [n for n in _nodes(sym) if n['op'] == 'Convolution']
    binary = [n for n in convs if '__latent_weight__' in n.get('attrs', {})]
    assert len(binary) == 8 and len(convs) == 9      # conv0 stays full precision
    for node in binary:
        a = node['attrs']
        assert a['__binary_weight__'] == 'sign_alpha'
        assert a['__binary_input__'] == binary_input
        assert a['__latent_weight__'] in args
        assert attr[a['__latent_weight__']]['__wd_mult__'] == '0.0'
        assert a.get('no_bias') == 'True'
    fcs = [n for n in _nodes(sym) if n['op'] == 'FullyConnected']
    assert len(fcs) == 1 and '__latent_weight__' not in fcs[0].get('attrs', {})


def test_bnn_batchnorm_binarises_and_quantises():
    x = np.random.RandomState(1).randn(3, 4, 5, 5) * 3
    one = _forward(bnn.BatchNorm(data=mx.sym.var('data'), num_bits=1, name='b1'), x)
    assert set(np.unique(one)) == {-1.0, 1.0}
    two = _forward(bnn.BatchNorm(data=mx.sym.var('data'), num_bits=2, name='b2'), x)
    np.testing.assert_allclose(np.unique(two), [-1, -1 / 3, 1 / 3, 1], rtol=1e-6)
    out = bnn.BatchNorm(data=mx.sym.var('data'), num_bits=1, name='b3')
    assert out.attr('__act_bits__') == '1'
    assert [n['op'] for n in _nodes(out)].count('BatchNorm') == 1


def test_bnn_convolution_alpha_option_and_binary_input_detection():
    data = mx.sym.var('data')
    act = bnn.BatchNorm(data=data, num_bits=1, name='bn')
    plain = bnn.Convolution(data=act, num_filter=4, kernel=(3, 3), pad=(1, 1), name='c',
                            alpha=False)
    node = [n for n in _nodes(plain) if n['op'] == 'Convolution'][0]['attrs']
    assert node['__binary_weight__'] == 'sign' and node['__binary_input__'] == 'true'
    assert node['__latent_weight__'] == 'c_weight'
    float_in = bnn.Convolution(data=data, num_filter=4, kernel=(3, 3), name='d')
    node = [n for n in _nodes(float_in) if n['op'] == 'Convolution'][0]['attrs']
    assert node['__binary_weight__'] == 'sign_alpha' and node['__binary_input__'] == 'false'


def test_bnn_convolution_equals_float_convolution_of_sign_weights():
    data = mx.sym.var('data')
    conv = bnn.Convolution(data=data, num_filter=3, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                           name='c', alpha=False)
    rng = np.random.RandomState(2)
    x = np.where(rng.randn(2, 5, 7, 7) >= 0, 1.0, -1.0)
    w = rng.uniform(-1, 1, (3, 5, 3, 3))
    out = conv.eval(data=mx.nd.array(x), c_weight=mx.nd.array(w))[0].asnumpy()
    ref = mx.nd.Convolution(mx.nd.array(x), mx.nd.array(np.where(w >= 0, 1.0, -1.0)),
                            kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=3,
                            no_bias=True).asnumpy()
    np.testing.assert_array_equal(out, ref)


def test_design_note_warnings():
    with pytest.warns(UserWarning, match='binary 1x1 convolution'):
        bnn.Convolution(data=mx.sym.var('data'), num_filter=4, kernel=(1, 1), name='p')
    with pytest.warns(UserWarning, match='num_bits=5'):
        bnn.BatchNorm(data=mx.sym.var('data'), num_bits=5)
    with pytest.warns(UserWarning, match='num_bits=8'):
        bnn_resnet(num_bits=8)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        bnn_resnet(num_bits=4)     # 3x3 only, 4 bits: silent


def test_bad_input_names_the_argument():
    for bits in (0, 9):
        with pytest.raises(ValueError, match='num_bits must be an integer in 1..8'):
            bnn.BatchNorm(data=mx.sym.var('data'), num_bits=bits)
        with pytest.raises(ValueError, match='num_bits'):
            bnn_resnet(num_bits=bits)
    with pytest.raises(ValueError, match='num_layers must be 6n \\+ 2'):
        bnn_resnet(num_layers=10)
    with pytest.raises(ValueError, match='mode must be one of'):
        bnn.Convolution(data=mx.sym.var('data'), num_filter=4, kernel=(3, 3), mode='noisy')
    with pytest.raises(ValueError, match='mode must be one of'):
        symbols.get_symbol('binaryconnect-mlp', mode='noisy')
    with pytest.raises(ValueError, match='image_shape'):
        bnn_resnet(image_shape='28,28')


@pytest.mark.parametrize('network', BINARY)
def test_binary_networks_build_save_and_reload(network, tmp_path):
    kw = {'filter_list': (4, 8, 8)} if network == 'bnn-resnet' else {}
    sym = symbols.get_symbol(network, **kw)
    assert network in symbols.known_networks()
    path = str(tmp_path / 'net-symbol.json')
    sym.save(path)
    loaded = mx.sym.load(path)
    x = np.random.RandomState(3).rand(2, 1, 28, 28)
    out = _forward(sym, x, softmax_label=(2,))
    np.testing.assert_allclose(_forward(loaded, x, softmax_label=(2,)), out, rtol=1e-5)
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)
    registered = set(mx.operator.get_all_registered_operators()) | {'null'}
    assert {n['op'] for n in _nodes(loaded)} <= registered
    from mxcompress.binary.footprint import binary_layers
    assert binary_layers(loaded) == binary_layers(sym) and binary_layers(sym)


def _random_model(symbol, shape, seed=0):
    rng = np.random.RandomState(seed)
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=shape)
    args = {n: mx.nd.array(rng.uniform(-1, 1, s)) for n, s in
            zip(symbol.list_arguments(), arg_shapes) if n not in ('data', 'softmax_label')}
    aux = {n: mx.nd.array(rng.uniform(-0.2, 0.2, s) if 'mean' in n else rng.uniform(0.5, 2, s))
           for n, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return symbol, args, aux


@pytest.mark.parametrize('num_layers, units', [(18, 8), (34, 16)])
def test_imagenet_layout_and_its_full_precision_twin(num_layers, units):
    """``num_layers`` 18 / 34: He et al.'s four stages on a 7x7 / 2 stem; ``num_bits=32`` is
    the same topology with float convolutions (no sign), the same params."""
    import json
    from mxcompress.analysis import count_macs
    from mxcompress.graph import graph_nodes
    nets = {bits: symbols.get_symbol('bnn-resnet', num_layers=num_layers,
                                     image_shape='3,224,224', num_classes=1000, num_bits=bits)
            for bits in (1, 32)}
    shapes = {}
    for bits, net in nets.items():
        arg_shapes, out_shapes, _ = net.infer_shape(data=(1, 3, 224, 224))
        assert out_shapes == [(1, 1000)]
        shapes[bits] = dict(zip(net.list_arguments(), arg_shapes))
        convs = [n for n in graph_nodes(net) if n['op'] == 'Convolution']
        assert len(convs) == 1 + 2 * units + 3          # stem, units, 3 downsampling shortcuts
        assert count_macs(net, (1, 3, 224, 224)) > 1.5e9
    assert sorted(v for v in shapes[1].values()) == sorted(v for v in shapes[32].values())
    ops = {n['op'] for n in json.loads(nets[32].tojson())['nodes']}
    assert 'sign' not in ops and 'clip' not in ops     # no binarisation in the twin
    binary = [n for n in graph_nodes(nets[1]) if '__binary_weight__' in n.get('attrs', {})]
    assert len(binary) == 2 * units + 3                 # every unit conv binary, stem fp32


def test_imagenet_layout_converts_to_xnor_with_the_same_predictions():
    """The converter turns the ImageNet-layout binary net into xnor_conv2d layers (every unit
    conv) predicting what the training graph predicts (small images for speed)."""
    from mxcompress.binary.convert import convert
    from mxcompress.measure import predict
    symbol = symbols.get_symbol('bnn-resnet', num_layers=18, image_shape='3,64,64',
                                num_classes=10, num_bits=1, filter_list=(16, 16, 32, 32))
    model = _random_model(symbol, (1, 3, 64, 64))
    images = np.random.RandomState(3).rand(4, 3, 64, 64).astype(np.float32)
    want = predict(*model, images, batch_size=4)
    conv_sym, conv_args, conv_aux, layers = convert(*model)
    assert len(layers) == 2 * 8 + 3
    got = predict(conv_sym, conv_args, conv_aux, images, batch_size=4)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_bad_layouts_are_clear_errors():
    with pytest.raises(ValueError, match='or one of \\[18, 34\\]'):
        bnn_resnet(num_layers=16)
    with pytest.raises(ValueError, match='must be 4 channel counts'):
        bnn_resnet(num_layers=18, filter_list=(16, 32, 64))
    with pytest.raises(ValueError, match='or 32: the full-precision twin'):
        bnn_resnet(num_bits=16)
