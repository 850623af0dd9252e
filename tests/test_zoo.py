"""Rewrites on real architectures: gluoncv model-zoo exports with random weights.

Each network is built with ``get_model(name, pretrained=False, classes=10)``, initialised with
random weights and random BatchNorm statistics, hybridised, run once and exported (once per
session), then every rewrite is checked against a reference:

* thinning that keeps every channel gives identical outputs;
* thinning in dependency groups gives the outputs of the masked model (the removed filters and
  their BatchNorm ``gamma, beta, moving_mean`` zeroed), within 1e-5 relative;
* low rank at full rank is exact (grouped / depthwise convs are skipped, not refused);
* lossless ``pack`` / ``unpack`` round-trips bit for bit;
* BatchNorm folding matches.

The ImageNet-shaped nets run at a reduced input (64x64; squeezenet needs 224x224 for its final
13x13 pooling) with batch 2 to stay fast; the CIFAR net at its native 3x32x32. The heavier
ones (resnet50_v1, mobilenetv2_1.0, vgg16_bn, densenet121) are analysed at 224x224 on the
symbol alone in tests/test_pruning_groups.py.
"""
import os

import mxnet as mx
import numpy as np
import pytest

from mxcompress.analysis import count_macs
from mxcompress.deep_compression.container import pack, unpack
from mxcompress.deploy import fold_batchnorm
from mxcompress.lowrank import describe_layers, factorize
from mxcompress.pruning import plan_groups, thin_network, zero_filters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: name -> input shape (batch 2)
ZOO = {'cifar_resnet20_v1': (2, 3, 32, 32), 'resnet18_v1': (2, 3, 64, 64),
       'resnet18_v2': (2, 3, 64, 64), 'mobilenetv2_0.25': (2, 3, 64, 64),
       'mobilenet0.25': (2, 3, 64, 64), 'squeezenet1.1': (2, 3, 224, 224)}


def _export(name, shape, directory):
    from gluoncv.model_zoo import get_model
    mx.random.seed(7)
    net = get_model(name, pretrained=False, classes=10)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    x = mx.nd.array(np.random.RandomState(0).rand(*shape).astype(np.float32))
    net(x)  # shapes are deferred until the first forward
    rng = np.random.RandomState(1)
    for pname, param in net.collect_params().items():
        size = param.shape
        if pname.endswith('gamma'):
            param.set_data(mx.nd.array(rng.uniform(0.5, 1.5, size)))
        elif pname.endswith(('beta', 'running_mean')):
            param.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, size)))
        elif pname.endswith('running_var'):
            param.set_data(mx.nd.array(rng.uniform(0.5, 1.5, size)))
    net.hybridize()
    net(x)
    prefix = os.path.join(directory, name)
    net.export(prefix)
    symbol, args, aux = mx.model.load_checkpoint(prefix, 0)
    return {'prefix': prefix, 'model': (symbol, args, aux), 'shape': shape,
            'x': np.random.RandomState(2).rand(*shape).astype(np.float32)}


@pytest.fixture(scope='session')
def zoo(tmp_path_factory):
    """Exports of :data:`ZOO`, made once per session (lazily, per network)."""
    directory = str(tmp_path_factory.mktemp('zoo'))
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _export(name, ZOO[name], directory)
        return cache[name]
    return get


def forward(model, x):
    symbol, args, aux = model
    exe = symbol.bind(mx.cpu(), dict(args, data=mx.nd.array(x)), aux_states=aux,
                      grad_req='null')
    return exe.forward(is_train=False)[0].asnumpy()


def assert_close(out, ref, rtol=1e-5):
    """``max |out - ref| <= rtol * max |ref|``: relative to the output's scale."""
    scale = max(float(np.abs(ref).max()), 1e-30)
    assert float(np.abs(out - ref).max()) <= rtol * scale, (
        'max difference %g, relative %g' % (np.abs(out - ref).max(),
                                            np.abs(out - ref).max() / scale))


@pytest.mark.parametrize('name', sorted(ZOO))
def test_thinning_in_groups_equals_masked_model(zoo, name):
    net = zoo(name)
    symbol, args, aux = net['model']
    shape = (1,) + net['shape'][1:]
    ref = forward(net['model'], net['x'])
    # keeping every channel changes nothing, bit for bit
    full = plan_groups(symbol, args, 0.0, data_shape=shape)
    assert all(g['removed'] == 0 for g in full.groups)
    kept = thin_network(symbol, args, aux, full)
    np.testing.assert_array_equal(forward(kept, net['x']), ref)
    # half of every group's channels: thinned == the masked model
    plan = plan_groups(symbol, args, 0.5, data_shape=shape, aux_params=aux)
    assert plan.groups and sum(g['removed'] for g in plan.groups) > 0
    thin = thin_network(symbol, args, aux, plan)
    masked = zero_filters(symbol, args, aux, plan)
    out, mref = forward(thin, net['x']), forward(masked, net['x'])
    assert_close(out, mref)
    assert not np.allclose(mref, ref, rtol=1e-3)      # the mask did remove something
    assert count_macs(thin[0], shape) == plan.macs_after < 0.5 * plan.macs_before
    # every conv with filters is in a group; only groups reaching the output stay dense
    for skipped in plan.skipped:
        assert any('graph output' in r for r in skipped['reasons']), skipped


@pytest.mark.parametrize('name', ['cifar_resnet20_v1', 'mobilenetv2_0.25'])
def test_slimming_in_groups_equals_masked_model(zoo, name):
    net = zoo(name)
    symbol, args, aux = net['model']
    plan = plan_groups(symbol, args, 0.4, 'bn', data_shape=(1,) + net['shape'][1:])
    thin = thin_network(symbol, args, aux, plan)
    assert_close(forward(thin, net['x']), forward(zero_filters(symbol, args, aux, plan),
                                                  net['x']))


@pytest.mark.parametrize('name,scheme', [('cifar_resnet20_v1', 'channel'),
                                         ('cifar_resnet20_v1', 'spatial'),
                                         ('mobilenetv2_0.25', 'channel')])
def test_low_rank_at_full_rank_is_exact(zoo, name, scheme):
    net = zoo(name)
    symbol, args, aux = net['model']
    shape = (1,) + net['shape'][1:]
    skipped = []
    specs = describe_layers(symbol, args, conv_scheme=scheme, data_shape=shape, skipped=skipped)
    ranks = {s.name: s.scheme.max_rank(s.geom) for s in specs}
    new = factorize(symbol, args, aux, ranks, conv_scheme=scheme, data_shape=shape)[:3]
    assert_close(forward(new, net['x']), forward(net['model'], net['x']), rtol=1e-4)
    groups = [n for n, _ in skipped]
    if name.startswith('mobilenet'):
        assert groups and all('depthwise' in r for _, r in skipped)
    else:
        assert not groups


@pytest.mark.parametrize('name', ['cifar_resnet20_v1', 'mobilenetv2_0.25', 'squeezenet1.1'])
def test_lossless_pack_round_trips_bit_for_bit(zoo, name, tmp_path):
    net = zoo(name)
    symbol, args, aux = net['model']
    path = str(tmp_path / (name + '.mxc'))
    pack(path, symbol, args, aux, storage='float')
    usym, uargs, uaux = unpack(path)
    assert set(uargs) == set(args) and set(uaux) == set(aux)
    for mine, theirs in ((args, uargs), (aux, uaux)):
        for key, value in mine.items():
            np.testing.assert_array_equal(theirs[key].asnumpy(), value.asnumpy(), err_msg=key)
    np.testing.assert_array_equal(forward((usym, uargs, uaux), net['x']),
                                  forward(net['model'], net['x']))


@pytest.mark.parametrize('name', ['resnet18_v1', 'resnet18_v2', 'mobilenetv2_0.25'])
def test_fold_batchnorm_matches(zoo, name):
    net = zoo(name)
    symbol, args, aux, folds = fold_batchnorm(*net['model'])
    assert any(f.folded for f in folds)
    assert_close(forward((symbol, args, aux), net['x']), forward(net['model'], net['x']))


def test_thin_then_fold_then_pack(zoo, tmp_path):
    """The README's flow on a real ResNet: thin in groups, fold BatchNorm, pack losslessly."""
    net = zoo('cifar_resnet20_v1')
    symbol, args, aux = net['model']
    plan = plan_groups(symbol, args, 0.5, data_shape=(1, 3, 32, 32))
    thin = thin_network(symbol, args, aux, plan)
    folded = fold_batchnorm(*thin)[:3]
    path = str(tmp_path / 'r20.mxc')
    pack(path, *folded, storage='float')
    assert_close(forward(unpack(path), net['x']), forward(thin, net['x']))


def test_commands_on_a_resnet_export(zoo, tmp_path, mnist_dir, capsys):
    """``prune --method filter`` (groups), ``fold-bn``, ``pack --storage float`` and ``unpack``
    on the gluoncv export, as a user runs them (MNIST read as 3x32x32 for the test error)."""
    from mxcompress.checkpoint import load_checkpoint
    from mxcompress.cli import main
    net = zoo('cifar_resnet20_v1')
    thin, folded = str(tmp_path / 'thin'), str(tmp_path / 'folded')
    mxc, back = str(tmp_path / 'r20.mxc'), str(tmp_path / 'back')
    assert main(['prune', net['prefix'], '--method', 'filter', '--sparsity', '0.5', '--output',
                 thin, '--data', mnist_dir, '--data-shape', '3,32,32',
                 '--num-test-examples', '100']) == 0
    symbol, args, aux = net['model']
    plan = plan_groups(symbol, args, 0.5, data_shape=(1, 3, 32, 32))
    ref = forward(thin_network(symbol, args, aux, plan), net['x'])
    np.testing.assert_array_equal(forward(load_checkpoint(thin), net['x']), ref)
    assert main(['fold-bn', thin, folded]) == 0
    assert main(['pack', folded, mxc, '--storage', 'float']) == 0
    assert main(['unpack', mxc, '--output', back]) == 0
    assert_close(forward(load_checkpoint(back), net['x']), ref)
    capsys.readouterr()


def test_rewrite_only_takes_the_shape_from_the_export(zoo, tmp_path, mnist_dir, capsys):
    """No ``--data``: the default MNIST (1x28x28) must not decide a 3-channel export's input;
    the dry run and the rewrite take the checkpoint's shape and measure no test error."""
    from mxcompress.cli import main
    net = zoo('cifar_resnet20_v1')
    assert main(['prune', net['prefix'], '--method', 'filter', '--sparsity', '0.5',
                 '--dry-run']) == 0
    assert 'removed' in capsys.readouterr().out
    thin = str(tmp_path / 'thin')
    assert main(['prune', net['prefix'], '--method', 'filter', '--sparsity', '0.5',
                 '--num-epochs', '0', '--output', thin]) == 0
    assert 'test error not measured (no data set)' in capsys.readouterr().out


def test_data_shape_converts_the_default_mnist(tmp_path, mnist_dir, capsys):
    """``--data-shape`` without ``--data`` reads the default MNIST converted to that shape."""
    from mxcompress.cli import main
    out = str(tmp_path / 'l5')
    assert main(['prune', os.path.join(ROOT, 'benchmarks', 'models', 'lenet5'), '--method',
                 'filter', '--sparsity', '0.25', '--data-shape', '1,28,28', '--num-epochs', '0',
                 '--num-test-examples', '200', '--output', out]) == 0
    assert 'test error not measured' not in capsys.readouterr().out


def test_input_size_guess_follows_the_stem(zoo, capsys):
    """A checkpoint does not record its input size: a stride-1 3-channel stem (CIFAR ResNets)
    is measured at 32x32, a downsampling stem (ImageNet nets) at 224x224; summary says so."""
    from mxcompress.checkpoint import model_input_shape
    from mxcompress.cli import main
    assert model_input_shape(*zoo('cifar_resnet20_v1')['model']) == (1, 3, 32, 32)
    assert model_input_shape(*zoo('resnet18_v1')['model']) == (1, 3, 224, 224)
    assert main(['summary', zoo('cifar_resnet20_v1')['prefix']]) == 0
    assert 'input 3x32x32 (inferred from the checkpoint' in capsys.readouterr().out
