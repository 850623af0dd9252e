"""The Deep Compression pipeline end to end on a small slice of MNIST."""
import os

import numpy as np
import pytest

from mxcompress import cli
from mxcompress.checkpoint import load_checkpoint
from mxcompress.commands.deep_compress import compress
from mxcompress.deep_compression.container import read_info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, 'benchmarks', 'models', 'lenet300')


def test_deep_compress_pipeline(tmp_path, mnist_dir, capsys):
    out = str(tmp_path / 'l300.mxc')
    args = cli.build_parser().parse_args([
        'deep-compress', MODEL, '--output', out, '--save-prefix', str(tmp_path / 'final'),
        '--num-examples', '300', '--num-test-examples', '500', '--batch-size', '50',
        '--prune-steps', '2', '--prune-epochs', '1', '--quant-epochs', '1',
        '--sparsity', 'lenet300_fc1=0.9,lenet300_fc2=0.8', '--sparsity-fc', '0.5',
        '--bits', 'lenet300_fc3=6'])
    report = compress(args)
    printed = capsys.readouterr().out
    for stage in ('baseline', 'P ', 'P+Q ', 'P+Q+H'):
        assert stage in printed
    stages = report['stages']
    assert stages['P']['ratio'] < stages['P+Q']['ratio'] < stages['P+Q+H']['ratio']
    # the file holds exactly the quantised weights: same error as before writing
    assert stages['P+Q+H']['test_error'] == stages['P+Q']['test_error']
    info = read_info(out)
    assert info['param_bytes'] == stages['P+Q+H']['param_bytes'] == os.path.getsize(out) - \
        info['graph_bytes']
    assert stages['P+Q+H']['ratio'] == pytest.approx(266610 * 4 / info['param_bytes'])
    _, params, _ = load_checkpoint(str(tmp_path / 'final'), 0)
    _, base, _ = load_checkpoint(MODEL, 0)
    for name, sparsity, bits in (('fc1', 0.9, 5), ('fc2', 0.8, 5), ('fc3', 0.5, 6)):
        w = params['lenet300_%s_weight' % name].asnumpy()
        assert np.mean(w == 0) >= sparsity - 1e-6
        assert len(np.unique(w[w != 0])) <= 2 ** bits - 1
        assert info['layers']['lenet300_%s_weight' % name]['bits'] == bits
    assert not np.array_equal(params['lenet300_fc1_bias'].asnumpy(),
                              base['lenet300_fc1_bias'].asnumpy())  # fine-tuned


def test_deep_compress_bad_options(tmp_path, capsys):
    out = str(tmp_path / 'x.mxc')
    assert cli.main(['deep-compress', MODEL, '--output', out, '--sparsity', 'nope=0.5']) == 2
    assert '--sparsity names unknown layers' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(['deep-compress', MODEL, '--output', out, '--fc-bits', '0'])
    assert not os.path.exists(out)
