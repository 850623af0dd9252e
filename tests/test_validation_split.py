"""The validation split: held out of the training set, stratified, seeded, the same on every
run; epochs are validated on it and the test set is left for the reported figure."""
import numpy as np
import pytest

from mxcompress.data import holdout_split
from mxcompress.fit import data_provenance, fit_options, train_and_validation, train_iterators


def test_holdout_is_stratified_exact_disjoint_and_repeatable():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    train, val = holdout_split(labels, 0.1)
    assert len(val) == 20 and len(train) == 180
    assert not set(train) & set(val) and sorted(np.r_[train, val]) == list(range(200))
    assert np.bincount(labels[val]).tolist() == [10, 5, 3, 2]   # each class keeps its share
    assert np.array_equal(holdout_split(labels, 0.1)[1], val)
    assert not np.array_equal(holdout_split(labels, 0.1, seed=1)[1], val)
    assert len(holdout_split(labels, 7)[1]) == 7                 # a count works too


@pytest.mark.parametrize('size', [200, 1.0, -1])
def test_holdout_refuses_impossible_sizes(size):
    with pytest.raises(ValueError, match='--val-split must hold out 0..199'):
        holdout_split(np.zeros(200), size)


def test_iterators_validate_on_the_held_out_images(mnist_dir):
    args = fit_options(num_examples=1000, num_test_examples=100, batch_size=50)
    (x_train, _), (x_val, y_val) = train_and_validation(args)
    assert len(x_train) == 900 and len(x_val) == 100
    _, train_iter, val_iter = train_iterators(args)
    assert train_iter.num_data == 900
    seen = np.concatenate([b.label[0].asnumpy() for b in val_iter])
    np.testing.assert_array_equal(seen[:100], y_val)             # the split, not the test set
    none = fit_options(num_examples=1000, num_test_examples=100, batch_size=50, val_split=0)
    assert train_iterators(none)[1].num_data == 1000


def test_provenance_names_the_images_choices_were_made_on(mnist_dir):
    args = fit_options(num_examples=1000, val_split=0.1)
    chosen = data_provenance(args, 'ranks')
    assert chosen['selection'] == 'validation'
    assert 'ranks chosen on the validation split: 100 of the 1000 training images' in \
        chosen['choices_made_on']
    assert data_provenance(fit_options(num_examples=1000, val_split=0), 'ranks')['selection'] \
        == 'test'
    fixed = data_provenance(args)
    assert fixed['selection'] == 'none' and 'no choice' in fixed['choices_made_on']
    assert 'read once' in fixed['reported_on']
