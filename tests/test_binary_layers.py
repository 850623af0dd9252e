"""Binary Gluon layers: hybridised == imperative, equality with float layers on sign inputs
and sign weights, +-alpha weights, contract attributes, latent clipping, warnings."""
import warnings

import mxnet as mx
import numpy as np
import pytest

from mxcompress.binary import layers as L
from mxcompress.binary.optimizer import LatentClipAdam, latent_weight_names

DENSE = [L.BinaryConnectDense, L.BWNDense, L.XNORDense]
CONV = [L.BinaryConnectConv2D, L.BWNConv2D, L.XNORConv2D]


def _sign(a):
    return np.where(a >= 0, 1.0, -1.0).astype(np.float32)


def _make(cls, **kwargs):
    if cls in DENSE:
        block = cls(7, in_units=12, **kwargs)
        x = mx.nd.array(np.random.RandomState(0).randn(4, 12))
    else:
        block = cls(5, 3, padding=1, strides=1, in_channels=3, **kwargs)
        x = mx.nd.array(np.random.RandomState(0).randn(2, 3, 6, 7))
    block.initialize(mx.init.Uniform(0.9))
    return block, x


def _weights(block):
    w = block.weight.data().asnumpy()
    alpha = np.abs(w).reshape(w.shape[0], -1).mean(1)
    return w, alpha


@pytest.mark.parametrize('cls', DENSE + CONV)
def test_hybridised_equals_imperative(cls):
    block, x = _make(cls)
    imperative = block(x).asnumpy()
    block.hybridize()
    hybrid = block(x).asnumpy()
    hybrid_again = block(x).asnumpy()
    np.testing.assert_allclose(hybrid, imperative, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(hybrid, hybrid_again)


@pytest.mark.parametrize('cls', DENSE + CONV)
def test_gradients_hybridised_equal_imperative(cls):
    block, x = _make(cls, use_bias=True)
    grads = []
    for hybrid in (False, True):
        if hybrid:
            block.hybridize()
        with mx.autograd.record():
            loss = (block(x) ** 2).sum()
        loss.backward()
        grads.append(block.weight.grad().asnumpy().copy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-4, atol=1e-4)
    assert np.abs(grads[0]).sum() > 0


@pytest.mark.parametrize('cls', DENSE + CONV)
def test_binary_layer_equals_float_layer_on_sign_inputs_and_weights(cls):
    block, x = _make(cls)
    w, alpha = _weights(block)
    scale = alpha if cls in (L.BWNDense, L.BWNConv2D, L.XNORDense, L.XNORConv2D) \
        else np.ones_like(alpha)
    inputs = mx.nd.array(_sign(x.asnumpy())) if cls in (L.XNORDense, L.XNORConv2D) else x
    if cls in DENSE:
        ref = mx.nd.FullyConnected(inputs, mx.nd.array(_sign(w)), num_hidden=7, no_bias=True)
        ref = ref.asnumpy() * scale[None, :]
    else:
        ref = mx.nd.Convolution(inputs, mx.nd.array(_sign(w)), kernel=(3, 3), pad=(1, 1),
                                num_filter=5, no_bias=True)
        ref = ref.asnumpy() * scale[None, :, None, None]
    np.testing.assert_allclose(block(x).asnumpy(), ref, rtol=1e-5, atol=1e-5)


def test_xnor_conv_integer_output_on_sign_inputs_before_alpha():
    """XNOR = alpha * (+-1 conv +-1): without padding, output / alpha is an integer."""
    block, x = _make(L.XNORConv2D)
    block = L.XNORConv2D(5, 3, in_channels=3)
    block.initialize(mx.init.Uniform(0.9))
    _, alpha = _weights(block)
    out = block(x).asnumpy() / alpha[None, :, None, None]
    np.testing.assert_allclose(out, np.round(out), atol=1e-4)
    assert np.all(np.abs(out) <= 27) and np.all((np.round(out) - 27) % 2 == 0)


@pytest.mark.parametrize('cls', [L.BWNConv2D, L.XNORConv2D, L.BWNDense, L.XNORDense])
def test_binarised_weights_are_plus_minus_alpha_per_output_channel(cls):
    from mxcompress.binary.quantizers import binarize_weight
    block, _ = _make(cls)
    w, alpha = _weights(block)
    wb = binarize_weight(mx.nd, block.weight.data(), alpha=True).asnumpy()
    for o in range(w.shape[0]):
        np.testing.assert_allclose(np.unique(np.abs(wb[o])), [alpha[o]], rtol=1e-6)
        np.testing.assert_array_equal(np.sign(wb[o]), _sign(w[o]))


def test_stochastic_binaryconnect_weights_are_plus_minus_one():
    block = L.BinaryConnectDense(3, in_units=4, mode='stochastic', use_bias=False)
    block.initialize(mx.init.Uniform(0.5))
    x = mx.nd.eye(4)
    out = block(x).asnumpy()   # identity input reads the sampled weight columns
    assert set(np.unique(out)) <= {-1.0, 1.0}


@pytest.mark.parametrize('cls', DENSE + CONV)
def test_symbol_form_carries_the_contract_attributes(cls):
    block = cls(4, in_units=6) if cls in DENSE else cls(4, 3, in_channels=2)
    out = block(mx.sym.var('data'))
    nodes = [n for n in __import__('json').loads(out.tojson())['nodes']
             if n['op'] in ('Convolution', 'FullyConnected')]
    assert len(nodes) == 1
    attrs = nodes[0]['attrs']
    alpha = cls in (L.BWNDense, L.BWNConv2D, L.XNORDense, L.XNORConv2D)
    binary_in = cls in (L.XNORDense, L.XNORConv2D)
    assert attrs['__binary_weight__'] == ('sign_alpha' if alpha else 'sign')
    assert attrs['__binary_input__'] == ('true' if binary_in else 'false')
    assert attrs['__latent_weight__'] == block.weight.name
    assert block.weight.name in out.list_arguments()
    assert out.attr_dict()[block.weight.name]['__wd_mult__'] == '0.0'
    assert latent_weight_names(out) == [block.weight.name]


def test_one_by_one_binary_conv_warns_and_three_by_three_does_not():
    with pytest.warns(UserWarning, match='binary 1x1 convolution'):
        L.XNORConv2D(8, 1)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        L.XNORConv2D(8, 3)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match='mode must be one of'):
        L.BWNConv2D(4, 3, mode='random')
    with pytest.raises(ValueError, match='clip_value must be a positive'):
        L.BinaryConnectDense(4, clip_value=0)
    with pytest.raises(ValueError, match='channels must be >= 1'):
        L.XNORConv2D(0, 3)
    with pytest.raises(ValueError, match='units must be >= 1'):
        L.XNORDense(0)


def test_gluon_training_step_then_clip_latent_weights():
    net = mx.gluon.nn.HybridSequential()
    net.add(L.XNORConv2D(4, 3, in_channels=1), mx.gluon.nn.Dense(3))
    net.initialize(mx.init.Uniform(0.5))
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 50.0})
    x = mx.nd.array(np.random.RandomState(0).randn(2, 1, 5, 5))
    with mx.autograd.record():
        loss = (net(x) ** 2).sum()
    loss.backward()
    trainer.step(2)
    assert np.abs(net[0].weight.data().asnumpy()).max() > 1   # the update overshoots
    assert L.clip_latent_weights(net) == 1
    assert np.abs(net[0].weight.data().asnumpy()).max() <= 1
    assert np.abs(net[1].weight.data().asnumpy()).max() > 1   # full precision: untouched


def test_latent_clip_optimizer_clips_only_latent_weights_in_module():
    data = mx.sym.var('data')
    x = L.BWNDense(8, in_units=5, prefix='bin_')(data)
    x = mx.sym.FullyConnected(x, num_hidden=2, name='fp')
    sym = mx.sym.SoftmaxOutput(x, name='softmax')
    rng = np.random.RandomState(0)
    it = mx.io.NDArrayIter(rng.randn(40, 5).astype(np.float32),
                           rng.randint(0, 2, 40).astype(np.float32), batch_size=20)
    mod = mx.mod.Module(sym, context=mx.cpu())
    mod.fit(it, num_epoch=2, optimizer='latentclipadam', initializer=mx.init.Uniform(0.5),
            optimizer_params={'learning_rate': 3.0, 'latent_clip': 0.25})
    args, _ = mod.get_params()
    assert np.abs(args['bin_weight'].asnumpy()).max() == pytest.approx(0.25)
    assert np.abs(args['fp_weight'].asnumpy()).max() > 0.25
    opt = LatentClipAdam(sym=sym)
    assert opt.latent_names == {'bin_weight'}
    with pytest.raises(ValueError, match='latent_clip must be a positive'):
        LatentClipAdam(sym=sym, latent_clip=-1)


def test_op_name_switches_the_operator():
    block = L.XNORConv2D(2, 3, in_channels=1, op_name='Deconvolution')
    block.initialize()
    with pytest.raises(mx.MXNetError):   # Deconvolution's weight shape differs: it was called
        block(mx.nd.ones((1, 1, 5, 5)))
    assert L.XNORConv2D(2, 3)._op_name == 'Convolution'
    assert L.BWNDense(2)._op_name == 'FullyConnected'
