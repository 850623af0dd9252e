"""Bit packing and canonical Huffman coding of integer streams, numpy-vectorised.

Used by the ``.mxc`` container (:mod:`mxcompress.deep_compression.container`) for codebook indices and sparse
gaps, as in Deep Compression's last stage (Han et al. 2016, section 4): the index and gap
distributions are far from uniform, so a variable-length prefix code saves 20-30 %.

Canonical Huffman (Schwartz & Kallick 1964; DEFLATE, RFC 1951 section 3.2.2): only the code
*length* of each symbol is stored; codes are assigned in order of (length, symbol), so
encoder and decoder rebuild identical codes from the lengths. Lengths are limited to
:data:`MAX_CODE_LEN` bits by repeatedly halving the counts (rounding up, so every present
symbol keeps a code) until the Huffman tree is shallow enough; this costs a fraction of a
percent on skewed tails and keeps the decoder's lookup table at 2^MAX_CODE_LEN entries.

Bits are written most-significant first; a stream is padded with zeros to whole bytes.
"""
import heapq

import numpy as np

__all__ = ['MAX_CODE_LEN', 'pack_bits', 'unpack_bits', 'huffman_lengths', 'canonical_codes',
           'huffman_encode', 'huffman_decode', 'HuffmanError']

MAX_CODE_LEN = 20


class HuffmanError(ValueError):
    """A stream that cannot be decoded with its code table."""


def _emit(codes, lengths):
    """Concatenate variable-length codes (MSB first) into bytes. Returns (bytes, nbits)."""
    codes = np.asarray(codes, dtype=np.uint64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return b'', 0
    starts = np.cumsum(lengths) - lengths
    rep_codes = np.repeat(codes, lengths)
    offset = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    shift = (np.repeat(lengths, lengths) - 1 - offset).astype(np.uint64)
    bits = ((rep_codes >> shift) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits).tobytes(), total


def pack_bits(values, bits):
    """Pack non-negative integers into ``bits`` bits each (MSB first).

    Parameters
    ----------
    values : array of int, shape (n,), each in 0 .. 2^bits - 1
    bits : int, 1..32

    Returns
    -------
    bytes
        ``ceil(n * bits / 8)`` bytes.
    """
    values = np.asarray(values, dtype=np.int64).ravel()
    if values.size and (values.min() < 0 or values.max() >= (1 << bits)):
        raise ValueError('values must be in 0..%d to pack into %d bits, got %d..%d'
                         % ((1 << bits) - 1, bits, values.min(), values.max()))
    return _emit(values, np.full(values.size, bits))[0]


def unpack_bits(data, bits, count, exact=False):
    """Inverse of :func:`pack_bits`: ``count`` integers of ``bits`` bits, int64 (count,).

    The stream must hold ``ceil(count * bits / 8)`` bytes (checked before anything is
    allocated); with ``exact`` it must hold exactly that many, padded with zero bits, as
    :func:`pack_bits` writes it.

    Raises
    ------
    HuffmanError
        The stream is too short (or, with ``exact``, too long or not zero-padded).
    """
    bits, count = int(bits), int(count)
    if not 1 <= bits <= 32 or count < 0:
        raise HuffmanError('cannot unpack %d values of %d bits (widths are 1..32)' % (count, bits))
    need = (count * bits + 7) // 8
    if len(data) < need:
        raise HuffmanError('bit-packed stream has %d bytes, %d values of %d bits need %d'
                           % (len(data), count, bits, need))
    if exact and len(data) != need:
        raise HuffmanError('bit-packed stream has %d bytes, %d values of %d bits take exactly %d'
                           % (len(data), count, bits, need))
    if count == 0:
        return np.zeros(0, np.int64)
    raw = np.frombuffer(data, np.uint8, count=need)
    if exact and (count * bits) % 8 and int(raw[-1]) & ((1 << (8 - (count * bits) % 8)) - 1):
        raise HuffmanError('bit-packed stream: padding bits after the last value are not zero')
    # each value lies inside the 5 bytes from its first byte: a 40-bit big-endian window
    padded = np.concatenate([raw, np.zeros(5, np.uint8)]).astype(np.uint64)
    offsets = np.arange(count, dtype=np.int64) * bits
    first = offsets >> 3
    window = np.zeros(count, np.uint64)
    for j in range(5):
        window = (window << np.uint64(8)) | padded[first + j]
    shift = (40 - bits - (offsets & 7)).astype(np.uint64)
    return ((window >> shift) & np.uint64((1 << bits) - 1)).astype(np.int64)


def _tree_lengths(counts):
    heap = [(int(c), i, (s,)) for i, (s, c) in enumerate(counts)]
    heapq.heapify(heap)
    depth = {s: 0 for s, _ in counts}
    tie = len(heap)
    while len(heap) > 1:
        c1, _, a = heapq.heappop(heap)
        c2, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        heapq.heappush(heap, (c1 + c2, tie, a + b))
        tie += 1
    return depth


def huffman_lengths(symbols, alphabet_size, max_len=MAX_CODE_LEN):
    """Code length of each symbol of ``0..alphabet_size-1`` (0 = symbol absent).

    Parameters
    ----------
    symbols : array of int, shape (n,)
    alphabet_size : int
    max_len : int
        Longest allowed code (counts are halved until the tree fits).

    Returns
    -------
    numpy.ndarray, uint8, shape (alphabet_size,)
    """
    counts = np.bincount(np.asarray(symbols, np.int64).ravel(), minlength=alphabet_size)
    if len(counts) > alphabet_size:
        raise ValueError('symbol %d outside the alphabet 0..%d' % (len(counts) - 1,
                                                                  alphabet_size - 1))
    lengths = np.zeros(alphabet_size, np.uint8)
    present = np.flatnonzero(counts)
    if len(present) == 0:
        return lengths
    if len(present) == 1:
        lengths[present] = 1
        return lengths
    work = counts[present].astype(np.int64)
    while True:
        depth = _tree_lengths(list(zip(present.tolist(), work.tolist())))
        if max(depth.values()) <= max_len:
            break
        work = (work + 1) // 2
    for s, d in depth.items():
        lengths[s] = d
    return lengths


def canonical_codes(lengths):
    """Canonical codes from code lengths: uint64 array (alphabet_size,), 0 for absent symbols."""
    lengths = np.asarray(lengths, np.int64)
    codes = np.zeros(len(lengths), np.uint64)
    order = np.lexsort((np.arange(len(lengths)), lengths))
    order = order[lengths[order] > 0]
    code, prev_len = 0, 0
    for s in order.tolist():
        code <<= int(lengths[s]) - prev_len
        prev_len = int(lengths[s])
        codes[s] = code
        code += 1
    if len(order) and code > (1 << prev_len):
        raise HuffmanError('code lengths violate the Kraft inequality (corrupt table)')
    return codes


def huffman_encode(symbols, lengths):
    """Encode ``symbols`` with the canonical code of ``lengths``. Returns (bytes, nbits)."""
    symbols = np.asarray(symbols, np.int64).ravel()
    lengths = np.asarray(lengths, np.int64)
    if symbols.size and (lengths[symbols] == 0).any():
        raise ValueError('a symbol has no code (length 0) in the table')
    codes = canonical_codes(lengths)
    return _emit(codes[symbols], lengths[symbols])


#: bits of a Huffman stream looked up at once (bounds the decoder's working memory)
_CHUNK_BITS = 1 << 16


def huffman_decode(data, count, lengths, exact=False):
    """Decode ``count`` symbols from ``data`` with the canonical code of ``lengths``.

    A table of 2^L entries (L = longest code, at most :data:`MAX_CODE_LEN`) maps every L-bit
    window to (symbol, length); the windows at all bit positions of one chunk of the stream
    are computed at once, then the code boundaries are followed. Every size is checked before
    anything is allocated: the code lengths against :data:`MAX_CODE_LEN`, ``count`` against
    the bits of ``data`` (a code is at least one bit).

    Parameters
    ----------
    data : bytes
    count : int
    lengths : array of int, the code length of each symbol (0 = absent)
    exact : bool
        The stream must end with the last symbol: at most 7 padding bits, all zero (as
        :func:`huffman_encode` writes it).

    Returns
    -------
    numpy.ndarray, int64, shape (count,)

    Raises
    ------
    HuffmanError
        A code length over the maximum, a table that is no prefix code, or a stream that ends
        early, holds a bit pattern that is no code, or (``exact``) has bytes after the end.
    """
    lengths = np.asarray(lengths, np.int64)
    count = int(count)
    longest = int(lengths.max()) if len(lengths) else 0
    if count < 0 or (len(lengths) and lengths.min() < 0):
        raise HuffmanError('negative symbol count or code length')
    if longest > MAX_CODE_LEN:
        raise HuffmanError('code length %d exceeds the %d-bit maximum (corrupt table)'
                           % (longest, MAX_CODE_LEN))
    nbits = 8 * len(data)
    if count == 0:
        if exact and len(data):
            raise HuffmanError('Huffman stream of 0 symbols holds %d bytes' % len(data))
        return np.zeros(0, np.int64)
    if longest == 0:
        raise HuffmanError('code table has no usable codes (longest %d bits)' % longest)
    if count > nbits:
        raise HuffmanError('%d symbols cannot fit in a %d-bit Huffman stream (a code takes at '
                           'least 1 bit)' % (count, nbits))
    codes = canonical_codes(lengths)
    max_len = longest
    size = 1 << max_len
    sym_tab = np.full(size, -1, np.int64)
    len_tab = np.zeros(size, np.int64)
    for s in np.flatnonzero(lengths).tolist():
        shift = max_len - int(lengths[s])
        lo = int(codes[s]) << shift
        sym_tab[lo:lo + (1 << shift)] = s
        len_tab[lo:lo + (1 << shift)] = lengths[s]
    raw = np.frombuffer(data, np.uint8)
    out = np.empty(count, np.int64)
    p = i = 0
    while i < count:
        if p >= nbits:
            raise HuffmanError('Huffman stream ends or breaks after %d of %d symbols' % (i, count))
        lo, hi = p, min(nbits, p + _CHUNK_BITS)
        n = hi - lo
        skip = lo & 7
        chunk = np.unpackbits(raw[lo >> 3:(hi + max_len + 7) >> 3])[skip:skip + n + max_len]
        padded = np.zeros(n + max_len, np.int64)
        padded[:len(chunk)] = chunk
        window = np.zeros(n, np.int64)
        for j in range(max_len):
            window = (window << 1) | padded[j:j + n]
        step = len_tab[window].tolist()
        starts, q, first = [], p - lo, i
        while i < count and q < n:
            if step[q] == 0:
                raise HuffmanError('Huffman stream ends or breaks after %d of %d symbols'
                                   % (i, count))
            starts.append(q)
            q += step[q]
            i += 1
        out[first:i] = sym_tab[window[starts]]
        p = lo + q
    if p > nbits:
        raise HuffmanError('Huffman stream is %d bits short' % (p - nbits))
    if exact:
        if (p + 7) // 8 != len(data):
            raise HuffmanError('Huffman stream has %d bytes after its last symbol'
                               % (len(data) - (p + 7) // 8))
        if p % 8 and int(raw[-1]) & ((1 << (8 - p % 8)) - 1):
            raise HuffmanError('Huffman stream: padding bits after the last symbol are not zero')
    return out
