"""The vectorised codec and k-means against plain reference implementations.

The fast paths (block-wise bit emission, chunk-parallel Huffman decoding, k-means on sorted
values) must give exactly what the obvious per-symbol / per-value code gives, on small random
inputs, corrupted streams included. No timing is asserted here.
"""
import numpy as np
import pytest

from mxcompress.deep_compression import huffman
from mxcompress.deep_compression.huffman import (HuffmanError, canonical_codes, huffman_decode,
                                                 huffman_encode, huffman_lengths, pack_bits,
                                                 unpack_bits)
from mxcompress.quantization.kmeans import assign_1d, init_centroids, kmeans_1d


def _ref_bits(codes, lengths):
    """MSB-first concatenation, one bit at a time."""
    bits = ''.join(format(int(c), '0%db' % int(n)) if n else ''
                   for c, n in zip(codes, lengths))
    bits += '0' * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def _ref_decode(data, count, lengths, exact):
    """Sequential decoder: ('ok', symbols) or ('error', None)."""
    codes = canonical_codes(lengths)
    table = {(int(n), int(c)): s for s, (c, n) in enumerate(zip(codes, lengths)) if n}
    bits = ''.join(format(b, '08b') for b in data)
    out, p = [], 0
    for _ in range(count):
        for n in range(1, (max(lengths) if len(lengths) else 0) + 1):
            if p + n > len(bits):
                return 'error', None
            s = table.get((n, int(bits[p:p + n], 2)))
            if s is not None:
                out.append(s)
                p += n
                break
        else:
            return 'error', None
    if exact and ((p + 7) // 8 != len(data) or '1' in bits[p:]):
        return 'error', None
    return 'ok', out


def _ref_kmeans_1d(values, k, init='linear', iters=50, seed=0, tol=0.0):
    """Lloyd's iterations assigning every value by binary search (the pre-sorting code)."""
    v = np.asarray(values, np.float64).ravel()
    c = init_centroids(v, k, init, np.random.RandomState(seed)).astype(np.float64)
    labels = assign_1d(v, c)
    for _ in range(iters):
        sums = np.bincount(labels, weights=v, minlength=k)
        counts = np.bincount(labels, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        moved = np.abs(new - c).max()
        c = new
        labels = assign_1d(v, c)
        if moved <= tol:
            break
    return c, labels


@pytest.mark.parametrize('seed', range(6))
def test_pack_bits_matches_reference(seed):
    rng = np.random.RandomState(seed)
    bits = int(rng.randint(1, 33))
    values = rng.randint(0, 1 << bits, size=int(rng.randint(0, 300)), dtype=np.int64)
    data = pack_bits(values, bits)
    assert data == _ref_bits(values, [bits] * len(values))
    np.testing.assert_array_equal(unpack_bits(data, bits, len(values), exact=True), values)


def test_emit_blocks_join_exactly(monkeypatch):
    """Blocks of the bit writer meet at arbitrary bit offsets."""
    monkeypatch.setattr(huffman, '_EMIT_BLOCK', 7)
    rng = np.random.RandomState(0)
    symbols = rng.choice(20, 500, p=rng.dirichlet(np.ones(20) * 0.3))
    lengths = huffman_lengths(symbols, 20)
    data, nbits = huffman_encode(symbols, lengths)
    codes = canonical_codes(lengths)
    assert data == _ref_bits(codes[symbols], lengths[symbols])
    assert nbits == int(lengths[symbols].sum())
    assert pack_bits(np.arange(100) % 8, 3) == _ref_bits(np.arange(100) % 8, [3] * 100)


@pytest.mark.parametrize('seed', range(12))
def test_huffman_decode_matches_reference(seed):
    rng = np.random.RandomState(seed)
    alphabet = int(rng.choice([2, 3, 9, 40, 256]))
    n = int(rng.choice([1, 5, 60, 700, 3000]))
    p = rng.dirichlet(np.ones(alphabet) * rng.choice([0.05, 0.5, 5.0]))
    symbols = rng.choice(alphabet, n, p=p)
    lengths = huffman_lengths(symbols, alphabet, max_len=int(rng.choice([8, 12, 20])))
    data, _ = huffman_encode(symbols, lengths)
    assert data == _ref_bits(canonical_codes(lengths)[symbols], lengths[symbols])
    np.testing.assert_array_equal(huffman_decode(data, n, lengths, exact=True), symbols)
    corrupt = bytearray(data)
    for _ in range(2):
        corrupt[rng.randint(len(corrupt))] ^= 1 << rng.randint(8)
    for blob in (bytes(corrupt), data[:-1], data + b'\x00', data + b'\x80'):
        for count in (n - 1, n, n + 1):
            for exact in (False, True):
                want = _ref_decode(blob, count, lengths, exact)
                try:
                    got = 'ok', huffman_decode(blob, count, lengths, exact=exact).tolist()
                except HuffmanError:
                    got = 'error', None
                assert got == want, (blob, count, exact)


def test_huffman_decode_long_stream_across_chunks():
    """Many chunks, codes of 1..20 bits, streams that need every entry offset."""
    rng = np.random.RandomState(3)
    p = 0.5 ** np.arange(1, 21)
    p /= p.sum()
    symbols = rng.choice(20, 60000, p=p)
    lengths = huffman_lengths(symbols, 20)
    data, _ = huffman_encode(symbols, lengths)
    np.testing.assert_array_equal(huffman_decode(data, len(symbols), lengths, exact=True),
                                  symbols)
    fixed = np.full(8, 3)          # a fixed-length code never resynchronises
    symbols = rng.randint(0, 8, 20000)
    data, _ = huffman_encode(symbols, fixed)
    np.testing.assert_array_equal(huffman_decode(data, len(symbols), fixed, exact=True), symbols)


@pytest.mark.parametrize('n,k,init', [(1000, 255, 'linear'), (300, 255, 'linear'),
                                      (3000, 31, 'density'), (2000, 7, 'random'),
                                      (800, 15, 'kmeans++'), (50, 1, 'linear')])
def test_kmeans_1d_matches_reference(n, k, init):
    rng = np.random.RandomState(n)
    values = (rng.randn(n) * 0.05).astype(np.float32)
    c1, l1 = kmeans_1d(values, k, init=init)
    c2, l2 = _ref_kmeans_1d(values, k, init=init)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(l1, l2)
    assert l1.dtype == np.int64


@pytest.mark.parametrize('tol', [0.0, 1e-3])
def test_kmeans_1d_ties_and_duplicates(tol):
    """Values on midpoints and repeated values are assigned as the reference assigns them."""
    rng = np.random.RandomState(1)
    values = np.round(rng.randn(4000), 1)
    c1, l1 = kmeans_1d(values, 20, tol=tol)
    c2, l2 = _ref_kmeans_1d(values, 20, tol=tol)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(l1, l2)
