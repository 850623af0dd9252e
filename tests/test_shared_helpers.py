"""The helpers that replaced copied code, each against the code it replaced or a reference."""
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from mxcompress.analysis import count_macs, layer_table
from mxcompress.binary.contract import binary_attrs, check_attrs
from mxcompress.binary.quantizers import bwn_alpha
from mxcompress.commands.layer_options import number_or_layer_values, parse_layer_values
from mxcompress.fit import add_data_args, add_fit_args, fit_options
from mxcompress.graph import pair
from mxcompress.quantization.compare import layer_inputs, quantize_weight, subvector_length
from mxcompress.quantization.fixedpoint import fixed_point_dequantize, fixed_point_quantize
from mxcompress.quantization.pq import pq_reconstruct, product_quantize
from mxcompress.quantization.scalar import dequantize, scalar_quantize
from mxcompress.reporting.recipes import DEEP_COMPRESSION, deep_compress_options
import symbols
from conftest import random_params


def test_fit_options_defaults_match_the_parser():
    import argparse
    parser = argparse.ArgumentParser()
    add_data_args(parser)
    add_fit_args(parser)
    assert vars(fit_options()) == vars(parser.parse_args([]))


def test_fit_options_copies_and_overrides():
    base = fit_options(lr=0.1)
    derived = fit_options(base, lr=0.01, model_prefix=None)
    assert (base.lr, derived.lr) == (0.1, 0.01)
    with pytest.raises(ValueError, match="'nosuch' is not an option"):
        fit_options(base, nosuch=1)


@pytest.mark.parametrize('value,want', [(3, (3, 3)), ((3, 1), (3, 1)), ([0, 2], (0, 2)),
                                        (np.int64(2), (2, 2))])
def test_pair(value, want):
    assert pair(value) == want


@pytest.mark.parametrize('value', [(1, 2, 3), (-1, 1), 'ab', None])
def test_pair_rejects(value):
    with pytest.raises(ValueError, match='padding must be an int or a pair'):
        pair(value, 'padding')


def test_layer_values_parser():
    assert parse_layer_values(['a=1,b=2', 'c=3'], int, '--x') == {'a': 1, 'b': 2, 'c': 3}
    assert parse_layer_values('a=svd', str, '--schemes') == {'a': 'svd'}
    assert number_or_layer_values('0.5', '--sparsity') == 0.5
    assert number_or_layer_values('fc1=0.9', '--sparsity') == {'fc1': 0.9}
    assert number_or_layer_values(None, '--sparsity') is None
    with pytest.raises(ValueError, match='--ranks: expected NAME=VALUE'):
        parse_layer_values('fc1', int, '--ranks')
    with pytest.raises(ValueError, match='--ranks fc1'):
        parse_layer_values('fc1=x', int, '--ranks')
    with pytest.raises(ValueError, match='--sparsity must be a number'):
        number_or_layer_values('lots', '--sparsity')


def test_bwn_alpha_matches_numpy():
    w = np.random.RandomState(0).randn(4, 3, 2, 2).astype(np.float32)
    want = np.abs(w).reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(bwn_alpha(mx.nd, mx.nd.array(w)).asnumpy(), want, rtol=1e-6)
    assert bwn_alpha(mx.nd, mx.nd.array(w), keepdims=True).shape == (4, 1, 1, 1)


def test_binary_contract_checks_values():
    attrs = binary_attrs(True, True, 'w')
    check_attrs('conv', attrs, {'w': None})
    with pytest.raises(ValueError, match='layer conv: __binary_weight__ must be'):
        check_attrs('conv', dict(attrs, __binary_weight__='x'), {'w': None})
    with pytest.raises(ValueError, match="latent weight 'w'"):
        check_attrs('conv', attrs, {})


def test_count_macs_matches_layer_table():
    symbol = symbols.get_symbol('lenet5')
    arg_params, _ = random_params(symbol)
    rows = layer_table(symbol, arg_params)
    assert count_macs(symbol, (1, 1, 28, 28)) == sum(r['dense_macs'] for r in rows)


def test_quantize_weight_is_the_quantisers():
    rng = np.random.RandomState(0)
    w = rng.randn(16, 12).astype(np.float32)
    got, bits = quantize_weight('scalar', w, bits=3)
    codebook, index = scalar_quantize(w, 3)
    np.testing.assert_array_equal(got, dequantize(codebook, index))
    assert bits == 3 + 32.0 * len(codebook) / w.size
    got, _ = quantize_weight('pq', w, d=5, k=4)  # 5 does not divide 12: sub-vectors of 4
    assert subvector_length(5, 12) == 4
    np.testing.assert_array_equal(got, pq_reconstruct(*product_quantize(w, 4, 4)))
    got, _ = quantize_weight('fixed', w, bits=4)
    np.testing.assert_array_equal(got, fixed_point_dequantize(*fixed_point_quantize(w, 4)))
    with pytest.raises(ValueError, match='calibration inputs of layer fc'):
        quantize_weight('qcnn', w, 'fc', d=4, k=4)
    with pytest.raises(ValueError, match='unknown quantiser'):
        quantize_weight('nosuch', w)


def test_layer_inputs_are_the_activations():
    symbol = symbols.get_symbol('lenet300')
    arg_params, aux_params = random_params(symbol)
    images = np.random.RandomState(1).rand(5, 1, 28, 28).astype(np.float32)
    inputs = layer_inputs(symbol, arg_params, aux_params, images)
    np.testing.assert_allclose(inputs['lenet300_fc1_weight'], images.reshape(5, -1))
    fc1 = symbol.get_internals()['lenet300_fc1_output']
    want = fc1.bind(mx.cpu(), dict(arg_params, data=mx.nd.array(images))).forward()[0]
    relu = np.maximum(want.asnumpy(), 0)  # fc2 reads relu(fc1)
    np.testing.assert_allclose(inputs['lenet300_fc2_weight'], relu, rtol=1e-5, atol=1e-6)


def test_recipes_command_prints_the_deep_compress_options():
    out = subprocess.run([sys.executable, '-m', 'mxcompress.reporting.recipes', 'deep-compress',
                          'lenet5'], stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert out.stdout.split('\n')[:-1] == DEEP_COMPRESSION['lenet5']['options']
    assert deep_compress_options('lenet300') == DEEP_COMPRESSION['lenet300']['options']
    bad = subprocess.run([sys.executable, '-m', 'mxcompress.reporting.recipes', 'deep-compress',
                          'nosuch'], stderr=subprocess.PIPE, universal_newlines=True)
    assert bad.returncode == 2 and 'network must be one of lenet300, lenet5' in bad.stderr
