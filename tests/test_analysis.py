"""Counting params and MACs, and timing, against hand-computed references."""
import mxnet as mx
import numpy as np

import symbols
from mxcompress.analysis import model_summary
from mxcompress.measure import time_inference


def lenet5_params(seed=0):
    sym = symbols.get_symbol('lenet5')
    shapes, _, _ = sym.infer_shape(data=(1, 1, 28, 28))
    rng = np.random.RandomState(seed)
    return sym, {k: mx.nd.array(rng.randn(*s) * 0.1) for k, s in zip(sym.list_arguments(), shapes)
                 if k not in ('data', 'softmax_label')}


def test_lenet5_macs_and_params_by_hand():
    sym, args = lenet5_params()
    summary = model_summary(sym, args)
    macs = {r['layer']: r['dense_macs'] for r in summary['layers']}
    assert macs == {'lenet5_conv1': 20 * 25 * 24 * 24, 'lenet5_conv2': 50 * 20 * 25 * 8 * 8,
                    'lenet5_fc1': 800 * 500, 'lenet5_fc2': 500 * 10}
    assert summary['params'] == 431080 and summary['fp32_bytes'] == 1724320
    assert summary['weight_density'] == 1.0


def test_sparsity_and_remaining_macs():
    sym, args = lenet5_params()
    w = args['lenet5_fc1_weight'].asnumpy()
    w[:, :600] = 0  # 75 % of fc1 pruned
    args['lenet5_fc1_weight'] = mx.nd.array(w)
    row = [r for r in model_summary(sym, args)['layers'] if r['layer'] == 'lenet5_fc1'][0]
    assert row['nonzeros'] == 500 * 200 and abs(row['sparsity'] - 0.75) < 1e-9
    assert row['remaining_macs'] == 100000


def test_time_inference_reports_medians_for_every_model():
    sym, args = lenet5_params()
    timing = time_inference({'a': (sym, args, {}), 'b': (sym, args, {})}, batch_size=4,
                            repeats=5, warmup=1)
    for name in ('a', 'b'):
        t = timing[name]
        assert t['min_ms'] <= t['median_ms'] <= t['max_ms'] and t['repeats'] == 5
        assert t['images_per_s'] > 0


def test_layers_found_through_the_graph_not_by_weight_name():
    import mxnet as mx
    data = mx.sym.Variable('data')
    w = mx.sym.Variable('oddly_named')
    fc = mx.sym.FullyConnected(mx.sym.Flatten(data), weight=w, num_hidden=4, no_bias=True,
                               name='dense')
    args = {'oddly_named': mx.nd.ones((4, 784))}
    rows = model_summary(fc, args)['layers']
    assert [(r['layer'], r['params'], r['dense_macs']) for r in rows] == [('dense', 3136, 3136)]
