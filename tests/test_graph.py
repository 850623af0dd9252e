"""Graph rewriting against the original graph."""
import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress.graph import find_layers, rewrite


def random_params(sym, seed=0):
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(2, 1, 28, 28))
    rng = np.random.RandomState(seed)
    args = {k: mx.nd.array(rng.randn(*s) * 0.1) for k, s in zip(sym.list_arguments(), arg_shapes)}
    aux = {k: mx.nd.array(np.abs(rng.randn(*s)) + 0.5)
           for k, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return args, aux


def run(sym, args, aux):
    return sym.bind(mx.cpu(), args, aux_states=aux).forward()[0].asnumpy()


@pytest.mark.parametrize('name', ['lenet5', 'lenet300', 'mobilenetv2_0.25', 'shufflenet_v2'])
def test_identity_rewrite_keeps_graph_and_outputs(name):
    sym = symbols.get_symbol(name)
    new = rewrite(sym)
    assert new.tojson() == sym.tojson()
    args, aux = random_params(sym)
    np.testing.assert_array_equal(run(sym, args, aux), run(new, args, aux))


def test_replacement_splices_a_subgraph():
    sym = symbols.get_symbol('lenet300')
    args, aux = random_params(sym)

    def double_fc2(node, inputs):
        if node.op == 'FullyConnected' and node.attrs['num_hidden'] == '100':
            fc = mx.sym.FullyConnected(*inputs, num_hidden=100, name=node.name + '_inner')
            return mx.sym.relu(fc, name=node.name + '_r') * 2  # sign-free check below
        return None

    new = rewrite(sym, double_fc2)
    assert 'lenet300_fc2_inner' in new.tojson()
    assert new.list_arguments() == sym.list_arguments()
    out = run(new, args, aux)
    assert out.shape == (2, 10) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(out, run(sym, args, aux))


def test_find_layers_by_op_not_by_name():
    sym = symbols.get_symbol('lenet5', name='weird')
    layers = find_layers(sym)
    assert [l.op for l in layers] == ['Convolution', 'Convolution', 'FullyConnected',
                                      'FullyConnected']
    assert layers[0].weight == 'weird_conv1_weight' and layers[0].input_node == 'data'
    assert [l.name for l in find_layers(sym, ops=('FullyConnected',))] == ['weird_fc1',
                                                                          'weird_fc2']
