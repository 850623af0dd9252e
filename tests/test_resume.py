"""Exact resume: a run stopped after epoch 1 and resumed with ``--load-epoch 1`` ends with the
weights of the uninterrupted 2-epoch run, bit for bit.

The checkpoint holds the optimizer state (momentum, Adam moments) and, in its manifest, the
position in the run; the resumed fit sees the data order (shuffle, jitter) and the random
numbers (dropout) of the epoch it resumes at, and continues the learning-rate schedule.
"""
import numpy as np
import pytest

import symbols
from mxcompress.checkpoint import load_checkpoint, read_manifest
from mxcompress.fit import fit_options, train_model


class _Stop(Exception):
    pass


def _stop_after_first_epoch(epoch, *_):
    raise _Stop()


def _run(prefix, num_epochs, load_epoch=None, stop=False, **options):
    args = fit_options(num_examples=400, num_test_examples=100, batch_size=50, jitter=2,
                       lr=0.05, seed=3, num_epochs=num_epochs, model_prefix=prefix,
                       load_epoch=load_epoch, disp_batches=1000, **options)
    symbol = symbols.get_symbol('mlp', hidden=(32,), dropout=0.3)
    try:
        module, _ = train_model(args, symbol, validate=False,
                                epoch_end_callback=_stop_after_first_epoch if stop else None)
    except _Stop:   # killed after epoch 1 (its checkpoint is already written)
        return None
    return module.get_params()


def _assert_same(got, want):
    for a, b in zip(got, want):
        assert sorted(a) == sorted(b)
        for name in b:
            np.testing.assert_array_equal(a[name].asnumpy(), b[name].asnumpy(), name)


@pytest.mark.parametrize('options', [dict(optimizer='sgd', lr_schedule='cosine'),
                                     dict(optimizer='adam', lr_schedule='cosine'),
                                     dict(optimizer='nag', lr_schedule='step',
                                          lr_step_epochs='1')])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, options):
    straight = _run(str(tmp_path / 'straight'), 2, **options)
    _run(str(tmp_path / 'resumed'), 2, stop=True, **options)
    manifest = read_manifest(str(tmp_path / 'resumed'), 1)
    assert manifest['resume']['epoch'] == 1 and 'resumed-0001.states' in manifest['files']
    resumed = _run(str(tmp_path / 'resumed'), 2, load_epoch=1, **options)
    _assert_same(resumed, straight)
    _assert_same(load_checkpoint(str(tmp_path / 'resumed'), 2)[1:],
                 load_checkpoint(str(tmp_path / 'straight'), 2)[1:])


def test_one_epoch_then_resume_equals_two_epochs_at_constant_rate(tmp_path):
    """``--num-epochs 1``, then ``--load-epoch 1 --num-epochs 2`` (the reported case)."""
    straight = _run(str(tmp_path / 'straight'), 2, lr_schedule='none')
    _run(str(tmp_path / 'resumed'), 1, lr_schedule='none')
    _assert_same(_run(str(tmp_path / 'resumed'), 2, load_epoch=1, lr_schedule='none'), straight)


def test_resume_without_state_warns(tmp_path, caplog):
    prefix = str(tmp_path / 'm')
    _run(prefix, 1)
    (tmp_path / 'm-0001.states').unlink()
    (tmp_path / 'm-0001.manifest.json').unlink()  # a plain MXNet checkpoint from elsewhere
    (tmp_path / 'm-0001.params.sha256').unlink()
    with caplog.at_level('WARNING', logger='mxcompress'):
        _run(prefix, 2, load_epoch=1)
    assert 'not an exact continuation' in caplog.text
    assert 'checkpoint unverified' in caplog.text
