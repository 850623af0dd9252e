"""The encoder's memory-saving paths against the plain ones, and its working memory bounded.

``pack`` holds one layer's temporaries at a time; these are kept narrow (uint8 / uint16
indices and gaps, int32 positions, float32 sorted values in k-means) and built block by block.
Each narrow or blocked path must give exactly what the plain numpy expression gives, across
block boundaries, and the traced peak of quantising, encoding and checking a layer must stay
within a fixed number of bytes per weight (the scale table's "pack peak <= 4x fp32" rests on it).
"""
import tracemalloc

import numpy as np
import pytest

from mxcompress.deep_compression import huffman, sparse_codec
from mxcompress.deep_compression.huffman import (huffman_decode, huffman_encode, huffman_lengths,
                                                 symbol_counts, symbol_dtype)
from mxcompress.deep_compression.sparse_codec import decode_layer, encode_layer
from mxcompress.quantization.kmeans import _Sorted1D, assign_1d, kmeans_1d
from mxcompress.quantization.scalar import scalar_quantize


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few elements, so every blocked loop crosses many block boundaries."""
    monkeypatch.setattr(huffman, '_SCAN_BLOCK', 7)
    monkeypatch.setattr(huffman, '_EMIT_BLOCK', 5)
    monkeypatch.setattr(sparse_codec, '_SCATTER_BLOCK', 3)


def test_symbol_counts_and_positions_blockwise(small_blocks):
    rng = np.random.RandomState(0)
    for dtype in (np.uint8, np.uint16, np.int64):
        symbols = rng.randint(0, 200, size=101).astype(dtype)
        np.testing.assert_array_equal(symbol_counts(symbols, 256),
                                      np.bincount(symbols.astype(np.int64), minlength=256))
        np.testing.assert_array_equal(symbol_counts(symbols),
                                      np.bincount(symbols.astype(np.int64)))
    mask = rng.rand(1003) < 0.3
    got = huffman.nonzero_positions(mask)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.flatnonzero(mask))


def test_symbol_dtype_is_narrowest():
    assert symbol_dtype(2) == np.uint8 and symbol_dtype(256) == np.uint8
    assert symbol_dtype(257) == np.uint16 and symbol_dtype(1 << 16) == np.uint16
    assert symbol_dtype((1 << 16) + 1) == np.int64


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.int32, np.int64])
def test_huffman_narrow_symbols_same_bytes(small_blocks, dtype):
    """A uint8 stream encodes to the bytes of the same int64 stream and decodes to it."""
    rng = np.random.RandomState(1)
    symbols = np.minimum(rng.geometric(0.3, size=500) - 1, 200)
    lengths = huffman_lengths(symbols, 256)
    wide, nbits = huffman_encode(symbols.astype(np.int64), lengths)
    narrow, nbits2 = huffman_encode(symbols.astype(dtype), lengths)
    assert (narrow, nbits2) == (wide, nbits)
    out = huffman_decode(narrow, len(symbols), lengths, exact=True, dtype=dtype)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, symbols)


def test_huffman_decode_refuses_a_dtype_too_narrow():
    lengths = np.zeros(300, np.uint8)
    lengths[[0, 299]] = 1
    data, _ = huffman_encode(np.array([0, 299, 0]), lengths)
    with pytest.raises(ValueError, match='uint8 cannot hold the 300 symbols'):
        huffman_decode(data, 3, lengths, dtype=np.uint8)
    with pytest.raises(ValueError, match='float32 cannot hold'):
        huffman_decode(data, 3, lengths, dtype=np.float32)


@pytest.mark.parametrize('index_dtype', [np.uint8, np.int32, np.int64])
@pytest.mark.parametrize('huff', [True, False])
def test_layer_round_trip_blockwise(small_blocks, index_dtype, huff):
    """Encode / decode with tiny blocks: the same bytes as a wide index, the same weight."""
    rng = np.random.RandomState(2)
    index = rng.randint(0, 16, size=(7, 5, 3)) * (rng.rand(7, 5, 3) < 0.4)
    codebook = np.concatenate([[0.0], np.sort(rng.randn(15))]).astype(np.float32)
    for gap_bits in (1, 2, 5):
        wide = encode_layer(index.astype(np.int64), 4, gap_bits, huff, codebook=codebook)
        blob = encode_layer(index.astype(index_dtype), 4, gap_bits, huff, codebook=codebook)
        assert blob == wide
        weight, meta = decode_layer(blob)
        np.testing.assert_array_equal(weight, codebook[index])
        assert meta['nonzeros'] == np.count_nonzero(index)
    values = (rng.randn(6, 9) * (rng.rand(6, 9) < 0.3)).astype(np.float32)
    weight, meta = decode_layer(encode_layer(values, 0, 2, huff))
    np.testing.assert_array_equal(weight, values)


def test_sorted_float32_search_matches_float64_assignment():
    """Float32 values on both sides of every midpoint (and on it) go where assign_1d sends
    them: the float32 sorted copy searched with rounded-down midpoints is exact."""
    rng = np.random.RandomState(3)
    centroids = np.sort(rng.randn(31)) * 0.1
    mids = (centroids[1:] + centroids[:-1]) / 2.0
    near = mids.astype(np.float32)
    values = np.concatenate([near, np.nextafter(near, np.float32(np.inf)),
                             np.nextafter(near, np.float32(-np.inf)),
                             (rng.randn(2000) * 0.1).astype(np.float32)]).astype(np.float32)
    rng.shuffle(values)
    data = _Sorted1D(values.astype(np.float64), values)
    assert data.sorted.dtype == np.float32
    labels, counts = data.assign(centroids)
    expected = assign_1d(values.astype(np.float64), centroids)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(counts, np.bincount(expected, minlength=31))


def test_kmeans_float32_input_equals_float64_input():
    values = (np.random.RandomState(4).randn(5000) * 0.05).astype(np.float32)
    c32, l32 = kmeans_1d(values, 63)
    c64, l64 = kmeans_1d(values.astype(np.float64), 63)
    np.testing.assert_array_equal(c32, c64)
    np.testing.assert_array_equal(l32, l64)


@pytest.mark.parametrize('bits,dtype', [(5, np.uint8), (8, np.uint8), (9, np.uint16)])
def test_scalar_quantize_index_is_narrow(bits, dtype):
    w = np.random.RandomState(5).randn(40, 30).astype(np.float32)
    w[w < 0.2] = 0
    codebook, index = scalar_quantize(w, bits)
    assert index.dtype == dtype
    assert (index == 0).sum() == (w == 0).sum()
    assert np.abs(codebook[index] - w).max() < 0.1


def test_layer_working_memory_per_weight():
    """Quantising (8-bit k-means), encoding and checking a 1 M-weight layer at 50 % sparsity
    keeps the traced peak under 24 bytes per weight (21.5 measured; 36.7 with int64 indices,
    gaps and positions; the fp32 weight itself takes 4)."""
    from mxcompress.deep_compression.container import _plan_layer
    from mxcompress.graph import Layer
    rng = np.random.RandomState(6)
    w = rng.randn(1024, 1024).astype(np.float32)
    w[rng.rand(1024, 1024) < 0.5] = 0
    layer = Layer('FullyConnected', 'fc', {}, 'fc_weight', 'fc_bias', 'data')
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        plan, lossy = _plan_layer(layer, w, 8, 'auto')
        blob = encode_layer(plan['index'], 8, 5, True, codebook=plan['codebook'])
        del plan
        decode_layer(blob, dense=False)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert lossy
    assert peak < 24 * w.size, 'peak %.1f bytes per weight' % (peak / w.size)
