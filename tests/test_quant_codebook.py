"""Codebook layers and the checkpoint rewrite against dense references."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import symbols
from conftest import fit_args
from mxcompress import data as mnist_data
from mxcompress.fit import fit
from mxcompress.quantization.codebook import (CodebookConv2D, CodebookDense, codebook_rewrite,
                                              fold_codebooks, quantize_params)
from mxcompress.quantization.scalar import dequantize, scalar_quantize


def pruned(shape, density=0.4, seed=0):
    rng = np.random.RandomState(seed)
    w = (rng.randn(*shape) * 0.1).astype(np.float32)
    w[rng.rand(*shape) > density] = 0
    return w


@pytest.mark.parametrize('hybrid', [False, True])
def test_codebook_dense_matches_dense_and_sums_gradients(hybrid):
    w = pruned((6, 10))
    codebook, index = scalar_quantize(w, 3)
    layer = CodebookDense(6, 10, bits=3)
    layer.initialize()
    layer.set_quantized(codebook, index, bias=np.arange(6, dtype=np.float32))
    ref = gluon.nn.Dense(6, in_units=10)
    ref.initialize()
    ref.weight.set_data(mx.nd.array(dequantize(codebook, index)))
    ref.bias.set_data(mx.nd.arange(6))
    if hybrid:
        layer.hybridize()
    x = mx.nd.array(np.random.RandomState(1).randn(4, 10))
    with autograd.record():
        y = layer(x)
        (y * y).sum().backward()
    with autograd.record():
        y_ref = ref(x)
        (y_ref * y_ref).sum().backward()
    np.testing.assert_allclose(y.asnumpy(), y_ref.asnumpy(), rtol=1e-5, atol=1e-6)
    # d L / d c_k = sum of dL/dW over the weights with index k (Deep Compression)
    expected = np.bincount(index.ravel(), weights=ref.weight.grad().asnumpy().ravel(),
                           minlength=8)
    got = layer.codebook.grad().asnumpy()
    np.testing.assert_allclose(got[1:], expected[1:], rtol=1e-4, atol=1e-5)
    assert layer.index.grad_req == 'null' and layer.codemask.grad_req == 'null'


def test_codebook_conv_matches_conv_hybridised():
    w = pruned((4, 3, 3, 3))
    codebook, index = scalar_quantize(w, 8)
    layer = CodebookConv2D(4, 3, (3, 3), padding=(1, 1), bits=8)
    layer.initialize()
    layer.set_quantized(codebook, index, bias=np.ones(4, np.float32))
    x = mx.nd.array(np.random.RandomState(2).rand(2, 3, 7, 7))
    eager = layer(x).asnumpy()
    layer.hybridize()
    ref = mx.nd.Convolution(x, mx.nd.array(dequantize(codebook, index)), mx.nd.ones(4),
                            kernel=(3, 3), pad=(1, 1), num_filter=4).asnumpy()
    np.testing.assert_allclose(layer(x).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eager, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(layer.quantized_weight(), dequantize(codebook, index))


def random_checkpoint(name, seed=0):
    sym = symbols.get_symbol(name)
    arg_shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    args = {}
    for k, s in zip(sym.list_arguments(), arg_shapes):
        if k in ('data', 'softmax_label'):
            continue
        args[k] = mx.nd.array(pruned(s, 0.3, seed) if k.endswith('weight')
                              else np.random.RandomState(seed).randn(*s) * 0.01)
    return sym, args


def forward(sym, args, x):
    exe = sym.bind(mx.cpu(), dict(args, data=mx.nd.array(x),
                                  softmax_label=mx.nd.zeros(len(x))))
    return exe.forward()[0].asnumpy()


@pytest.mark.parametrize('name', ['lenet5', 'lenet300'])
def test_rewrite_equals_original_with_quantised_weights(name):
    sym, args = random_checkpoint(name)
    plan = quantize_params(sym, args, conv_bits=6, fc_bits=4)
    new_sym, new_args, fixed = codebook_rewrite(sym, args, plan)
    assert not any(k.endswith('_weight') for k in new_sym.list_arguments())
    q_args = dict(args)
    for weight, p in plan.items():
        q_args[weight] = mx.nd.array(dequantize(p['codebook'], p['index']))
    x = np.random.RandomState(0).rand(3, 1, 28, 28).astype(np.float32)
    np.testing.assert_allclose(forward(new_sym, new_args, x), forward(sym, q_args, x),
                               rtol=1e-5, atol=1e-6)
    folded = fold_codebooks(new_args)
    assert set(folded) == set(args)
    for weight in plan:
        np.testing.assert_array_equal(folded[weight].asnumpy(), q_args[weight].asnumpy())


def test_module_finetune_trains_codebook_only_and_keeps_zeros(mnist_dir):
    sym, args = random_checkpoint('lenet300', seed=3)
    plan = quantize_params(sym, args, fc_bits=3)
    new_sym, new_args, fixed = codebook_rewrite(sym, args, plan)
    train, val = mnist_data.mnist_iterators(50, num_examples=200, num_test_examples=100)
    module = fit(fit_args(num_epochs=1, batch_size=50, lr=0.5, wd=0.0), new_sym, train, val,
                 arg_params=new_args, fixed_param_names=fixed)
    trained, _ = module.get_params()
    for weight, p in plan.items():
        idx = weight + '_index'
        np.testing.assert_array_equal(trained[idx].asnumpy(), new_args[idx].asnumpy())
        assert not np.allclose(trained[weight + '_codebook'].asnumpy()[1:], p['codebook'][1:])
    folded = fold_codebooks(trained, plan)
    for weight, p in plan.items():
        w = folded[weight].asnumpy()
        np.testing.assert_array_equal(w == 0, args[weight].asnumpy() == 0)  # zeros stay zero
        np.testing.assert_array_equal(w, p['codebook'][p['index']])
        assert len(np.unique(w)) <= 8


def test_quantize_params_bits_overrides_and_errors():
    sym, args = random_checkpoint('lenet5')
    plan = quantize_params(sym, args, bits={'lenet5_fc2': 2})
    assert {p['layer']: p['bits'] for p in plan.values()} == {
        'lenet5_conv1': 8, 'lenet5_conv2': 8, 'lenet5_fc1': 5, 'lenet5_fc2': 2}
    with pytest.raises(ValueError, match='no FullyConnected/Convolution layer'):
        quantize_params(sym, args, bits={'nope': 3})
    with pytest.raises(ValueError, match='lenet5_fc1: bits must be an integer in 1..16'):
        quantize_params(sym, args, bits={'lenet5_fc1': 20})
