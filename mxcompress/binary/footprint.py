"""Storage of a binary network: binarised weights at 1 bit each versus fp32.

Courbariaux et al. (2015, BinaryConnect): binarising the parameters cuts their storage to
1/32. This module
measures it on a trained checkpoint: every node carrying ``__latent_weight__`` (see
:mod:`.contract`) stores ``sign(W)`` at 1 bit per weight (``ceil(n / 8)`` bytes) plus, for
``sign_alpha`` layers, one fp32 scale per output channel; every other parameter (full
precision first conv / last fc, biases, BatchNorm gamma / beta / moving statistics) stays fp32.
"""
import json
import math

import numpy as np

from .contract import BINARY_INPUT, BINARY_WEIGHT, LATENT_WEIGHT

__all__ = ['binary_layers', 'binary_footprint']


def binary_layers(symbol):
    """The binary layers of ``symbol``: list of dicts ``node``, ``op``, ``latent_weight``,
    ``binary_weight`` ('sign' / 'sign_alpha'), ``binary_input`` (bool), in graph order."""
    layers = []
    for node in json.loads(symbol.tojson())['nodes']:
        attrs = node.get('attrs', {})
        if LATENT_WEIGHT in attrs:
            layers.append({'node': node['name'], 'op': node['op'],
                           'latent_weight': attrs[LATENT_WEIGHT],
                           'binary_weight': attrs.get(BINARY_WEIGHT, 'sign'),
                           'binary_input': attrs.get(BINARY_INPUT) == 'true'})
    return layers


def binary_footprint(symbol, arg_params, aux_params=None):
    """Bytes of the binarised weights at 1 bit each vs fp32, per layer and for the model.

    Parameters
    ----------
    symbol : mx.sym.Symbol
        Training graph with the binary-layer attributes.
    arg_params, aux_params : dict of str -> NDArray

    Returns
    -------
    dict
        ``layers``: per binary layer ``weights``, ``bits_bytes`` (1 bit each, rounded up to
        whole bytes), ``alpha_bytes``, ``fp32_bytes``; ``binary_weights`` (count),
        ``binary_weight_bytes_1bit`` (packed signs + alphas), ``binary_weight_bytes_fp32``,
        ``binary_weight_ratio`` (1-bit / fp32, ~1/32), ``other_params`` and
        ``other_bytes_fp32`` (everything else, fp32), ``model_bytes_binary``,
        ``model_bytes_fp32``, ``model_ratio``.
    """
    aux_params = aux_params or {}
    rows, latent = [], set()
    for layer in binary_layers(symbol):
        name = layer['latent_weight']
        if name not in arg_params:
            raise ValueError('binary layer %s: latent weight %r not in the params'
                             % (layer['node'], name))
        if name in latent:
            continue
        latent.add(name)
        shape = arg_params[name].shape
        count = int(np.prod(shape))
        alpha_bytes = 4 * int(shape[0]) if layer['binary_weight'] == 'sign_alpha' else 0
        rows.append(dict(layer, weights=count, bits_bytes=int(math.ceil(count / 8.0)),
                         alpha_bytes=alpha_bytes, fp32_bytes=4 * count))
    binary_count = sum(r['weights'] for r in rows)
    binary_1bit = sum(r['bits_bytes'] + r['alpha_bytes'] for r in rows)
    binary_fp32 = sum(r['fp32_bytes'] for r in rows)
    other = int(sum(v.size for k, v in arg_params.items() if k not in latent)
                + sum(v.size for v in aux_params.values()))
    return {'layers': rows, 'binary_weights': binary_count,
            'binary_weight_bytes_1bit': binary_1bit, 'binary_weight_bytes_fp32': binary_fp32,
            'binary_weight_ratio': binary_1bit / binary_fp32 if binary_fp32 else None,
            'other_params': other, 'other_bytes_fp32': 4 * other,
            'model_bytes_binary': binary_1bit + 4 * other,
            'model_bytes_fp32': binary_fp32 + 4 * other,
            'model_ratio': (binary_1bit + 4 * other) / (binary_fp32 + 4 * other)
            if binary_fp32 + other else None}
