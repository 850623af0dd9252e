"""Product quantisation, Q-CNN and fixed point against exact references."""
import numpy as np
import pytest

from mxcompress.quantization.fixedpoint import (fixed_point_bits_per_weight,
                                                fixed_point_dequantize, fixed_point_quantize)
from mxcompress.quantization.pq import (pq_bits_per_weight, pq_reconstruct, product_quantize,
                                        qcnn_quantize)


def test_pq_with_one_codeword_per_row_is_exact():
    w = np.random.RandomState(0).randn(6, 8).astype(np.float32)
    codebooks, codes = product_quantize(w, 2, 6)
    np.testing.assert_allclose(pq_reconstruct(codebooks, codes), w, atol=1e-6)
    codebooks, codes = product_quantize(w, 2, 64)  # k > rows: documented fallback k = rows
    assert codebooks.shape == (4, 6, 2)


def test_pq_shapes_and_errors():
    w = np.random.RandomState(0).randn(20, 12)
    codebooks, codes = product_quantize(w, 4, 4)
    assert codebooks.shape == (3, 4, 4) and codes.shape == (20, 3)
    assert codes.max() < 4
    with pytest.raises(ValueError, match='fc1: sub-vector length d=5 must divide'):
        product_quantize(w, 5, 4, layer='fc1')
    assert pq_bits_per_weight((20, 12), 4, 4) == pytest.approx((20 * 3 * 2 + 32 * 48) / 240)


def test_qcnn_lowers_output_error_on_calibration_inputs():
    rng = np.random.RandomState(0)
    x = rng.rand(400, 16) * (rng.rand(16) > 0.3)  # some inputs never active
    w = rng.randn(30, 16)
    pq = pq_reconstruct(*product_quantize(w, 4, 4))
    qc = pq_reconstruct(*qcnn_quantize(w, x, 4, 4))
    out_err = lambda q: np.mean((x @ (q - w).T) ** 2)
    assert out_err(qc) < 0.8 * out_err(pq)
    with pytest.raises(ValueError, match='calibration inputs must be'):
        qcnn_quantize(w, x[:, :8], 4, 4)


def test_fixed_point_error_bound_zeros_and_range():
    rng = np.random.RandomState(0)
    w = rng.randn(5, 3, 2, 2).astype(np.float32)
    w[0] = 0
    w[1, 0, 0, 0] = 0
    for bits in (2, 4, 8, 16):
        q, scales = fixed_point_quantize(w, bits)
        levels = 2 ** (bits - 1) - 1
        assert np.abs(q).max() <= levels and scales[0] == 0
        back = fixed_point_dequantize(q, scales)
        assert np.all(np.abs(back - w) <= scales[:, None, None, None] / 2 + 1e-7)
        assert back[1, 0, 0, 0] == 0 and not back[0].any()
        np.testing.assert_allclose(np.abs(back).reshape(5, -1).max(1), np.abs(w).reshape(
            5, -1).max(1), rtol=1e-6)
    for bad in (1, 17):
        with pytest.raises(ValueError, match='conv1: fixed-point bits must be an integer in 2..16'):
            fixed_point_quantize(w, bad, layer='conv1')
    assert fixed_point_bits_per_weight((5, 12), 8) == pytest.approx(8 + 32 * 5 / 60)
