"""Rank sweep, layer timing models, CSV and PNG."""
import csv

import mxnet as mx
import numpy as np
import pytest

import symbols
from mxcompress.lowrank import describe_layers
from mxcompress.lowrank.sweep import layer_models, plot_sweep, rank_sweep, write_csv
from test_lowrank_rewrite import random_params


@pytest.mark.parametrize('layer,scheme', [('lenet5_fc1', 'svd'), ('lenet5_conv2', 'channel'),
                                          ('lenet5_conv2', 'spatial')])
def test_timed_layer_models_match_at_full_rank(layer, scheme):
    sym = symbols.get_symbol('lenet5')
    args, _ = random_params(sym)
    spec = describe_layers(sym, args, [layer], {layer: scheme})[0]
    full = spec.scheme.max_rank(spec.geom)
    models, shape = layer_models(spec, args, [full, 2])
    x = mx.nd.array(np.random.RandomState(0).rand(3, *shape))
    outs = {}
    for name, (s, p, _) in models.items():
        outs[name] = s.bind(mx.cpu(), dict(p, data=x)).forward()[0].asnumpy()
    np.testing.assert_allclose(outs['rank %d' % full], outs['original'], rtol=1e-4, atol=1e-4)
    assert outs['rank 2'].shape == outs['original'].shape


def test_rank_sweep_rows_csv_and_png(tmp_path):
    sym = symbols.get_symbol('lenet300')
    args, aux = random_params(sym)
    x = np.random.RandomState(1).rand(50, 1, 28, 28).astype(np.float32)

    def evaluate(s, a, b):  # agreement with the original's predictions
        from mxcompress.measure import predict
        return float(np.mean(predict(s, a, b, x, 50).argmax(1) != reference))

    from mxcompress.measure import predict
    reference = predict(sym, args, aux, x, 50).argmax(1)
    rows = rank_sweep(sym, args, aux, 'lenet300_fc2', [1, 100], evaluate, repeats=3,
                      batch_sizes=(1, 4))
    assert [(r['rank'], r['batch']) for r in rows] == [(1, 1), (1, 4), (100, 1), (100, 4)]
    assert rows[2]['error_before'] == 0.0          # full rank: same predictions
    assert rows[0]['params_ratio'] == pytest.approx(400 / 30000)
    assert all(r['speedup'] > 0 and r['error_after'] is None for r in rows)
    path = write_csv(rows, str(tmp_path / 's.csv'))
    with open(path) as f:
        assert len(list(csv.DictReader(f))) == 4
    png = plot_sweep(rows, str(tmp_path / 's.png'))
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
