"""Symbol builders: shapes, exact parameter counts, names, and the registry."""
import json

import numpy as np
import pytest

import symbols


def n_params(sym):
    shapes, _, _ = sym.infer_shape(data=(2, 1, 28, 28))
    return sum(int(np.prod(s)) for name, s in zip(sym.list_arguments(), shapes)
               if name not in ('data', 'softmax_label'))


@pytest.mark.parametrize('name,params', [('lenet5', 431080), ('lenet300', 266610),
                                         ('kd-teacher', 784 * 1200 + 1200 + 1200 * 1200 + 1200
                                          + 12010),
                                         ('kd-student', 784 * 800 + 800 + 800 * 800 + 800 + 8010)])
def test_exact_parameter_counts(name, params):
    assert n_params(symbols.get_symbol(name)) == params


@pytest.mark.parametrize('name', symbols.known_networks())
def test_every_network_takes_mnist_and_outputs_probabilities(name):
    sym = symbols.get_symbol(name, num_classes=10)
    assert sym.list_arguments()[0] == 'data'
    assert sym.list_outputs()[0] == 'softmax_output'
    _, out, _ = sym.infer_shape(data=(3, 1, 28, 28))
    assert out[0] == (3, 10)


@pytest.mark.parametrize('name', ['lenet5', 'lenet300', 'mlp'])
def test_every_op_is_named_from_its_block(name):
    nodes = json.loads(symbols.get_symbol(name).tojson())['nodes']
    ops = [n['name'] for n in nodes if n['op'] != 'null' and n['op'] != 'SoftmaxOutput']
    prefix = 'mlp' if name == 'mlp' else name
    assert ops and all(op.startswith(prefix + '_') for op in ops), ops


def test_num_classes_and_options():
    assert symbols.get_symbol('lenet5', num_classes=7).infer_shape(data=(1, 1, 28, 28))[1] \
        == [(1, 7)]
    thin = symbols.get_symbol('lenet5', conv_filters=(10, 25))
    assert n_params(thin) < 431080
    with pytest.raises(ValueError, match='dropout'):
        symbols.get_symbol('mlp', dropout=1.5)


def test_unknown_network_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        symbols.get_symbol('lenet7')
    for name in ('lenet5', 'lenet300', 'mobilenetv2_0.25', 'shufflenet_v2', 'cifar_resnet20_v1'):
        assert name in str(err.value)
