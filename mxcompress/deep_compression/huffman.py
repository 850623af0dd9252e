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
           'huffman_encode', 'huffman_decode', 'HuffmanError', 'symbol_counts', 'symbol_dtype',
           'nonzero_positions']

MAX_CODE_LEN = 20


class HuffmanError(ValueError):
    """A stream that cannot be decoded with its code table."""


#: symbols written per pass of :func:`_emit` (bounds its working memory: a dozen arrays of
#: this many 8-byte elements, 6 MiB)
_EMIT_BLOCK = 1 << 16
#: elements per pass of the block-wise counts and searches (:func:`symbol_counts`,
#: :func:`nonzero_positions`): numpy widens a whole array to 8-byte integers otherwise
_SCAN_BLOCK = 1 << 18


#: most walkers :func:`_code_starts` follows at once (each costs about 50 bytes per step)
_MAX_WALKERS = 1 << 16


def symbol_dtype(alphabet_size):
    """The narrowest unsigned dtype holding the symbols ``0 .. alphabet_size - 1``."""
    if alphabet_size <= 1 << 8:
        return np.dtype(np.uint8)
    if alphabet_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int64)


def _integers(values):
    """``values`` flattened, kept in its own integer dtype (no widened copy); other dtypes
    become int64."""
    flat = np.asarray(values).ravel()
    return flat if flat.dtype.kind in 'iu' else flat.astype(np.int64)


def symbol_counts(symbols, minlength=0):
    """``np.bincount(symbols, minlength=minlength)``, block by block.

    ``np.bincount`` first converts its whole input to 8-byte integers; counting blocks of
    :data:`_SCAN_BLOCK` keeps that copy small for a uint8 / uint16 stream (counts add up
    exactly, so the result is identical).

    Parameters
    ----------
    symbols : array of non-negative int, any shape
    minlength : int

    Returns
    -------
    numpy.ndarray, int64, shape (max(minlength, symbols.max() + 1),)
    """
    flat = _integers(symbols)
    counts = np.zeros(minlength, np.int64)
    for lo in range(0, len(flat), _SCAN_BLOCK):
        part = np.bincount(flat[lo:lo + _SCAN_BLOCK], minlength=minlength)
        if len(part) > len(counts):
            part[:len(counts)] += counts
            counts = part
        else:
            counts[:len(part)] += part
    return counts


def nonzero_positions(mask):
    """``np.flatnonzero(mask)`` as int32 when the positions fit (half the memory), built
    block by block: int (count_nonzero(mask),)."""
    mask = np.asarray(mask).ravel()
    dtype = np.int32 if len(mask) < 2 ** 31 else np.int64
    out = np.empty(int(np.count_nonzero(mask)), dtype)
    at = 0
    for lo in range(0, len(mask), _SCAN_BLOCK):
        part = np.flatnonzero(mask[lo:lo + _SCAN_BLOCK])
        part += lo
        out[at:at + len(part)] = part
        at += len(part)
    return out


def _emit(codes, lengths, total=None):
    """Concatenate variable-length codes (MSB first) into bytes. Returns (bytes, nbits).

    ``codes`` and ``lengths`` are arrays, or callables giving the codes and the lengths of
    symbols ``lo:hi`` (so that no per-symbol array of the whole stream is built); with
    callables, ``total`` is ``(number of symbols, number of bits)``. Vectorised per symbol,
    not per bit, in blocks of :data:`_EMIT_BLOCK` symbols: a code of at most 32 bits starting
    at bit ``s`` lies in the 5 bytes from byte ``s >> 3``; it is shifted into that 40-bit
    window and its 5 bytes are added into the output (codes never overlap, so adding is
    OR-ing).
    """
    if callable(codes):
        count, total = total

        def block(lo, hi):
            return codes(lo, hi), lengths(lo, hi)
    else:
        codes = np.asarray(codes, dtype=np.uint64).ravel()
        lengths = np.asarray(lengths, dtype=np.int64).ravel()
        count, total = len(codes), int(lengths.sum())

        def block(lo, hi):
            return codes[lo:hi], lengths[lo:hi]
    if total == 0:
        return b'', 0
    nbytes = (total + 7) // 8
    out = np.zeros(nbytes + 10, np.uint8)
    offset = 0
    for lo in range(0, count, _EMIT_BLOCK):
        c, n = block(lo, min(count, lo + _EMIT_BLOCK))
        c, n = np.asarray(c, np.uint64), np.asarray(n, np.int64)
        if n.max() > 32:
            raise ValueError('codes of at most 32 bits, got %d' % n.max())
        start = np.cumsum(n)
        start -= n
        start += offset
        offset = int(start[-1] + n[-1])
        window = c << (40 - n - (start & 7)).astype(np.uint64)
        first = start >> 3
        base = int(first[0])
        first -= base
        size = int(first[-1]) + 5
        acc = np.zeros(size, np.float64)
        for j in range(5):
            part = ((window >> np.uint64(32 - 8 * j)) & np.uint64(0xFF)).astype(np.float64)
            acc[j:] += np.bincount(first, weights=part, minlength=size)[:size - j]
        out[base:base + size] |= acc.astype(np.uint8)
    if offset != total:
        raise ValueError('codes hold %d bits, %d declared' % (offset, total))
    return out[:nbytes].tobytes(), total


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
    values = _integers(values)
    if values.size and (values.min() < 0 or values.max() >= (1 << bits)):
        raise ValueError('values must be in 0..%d to pack into %d bits, got %d..%d'
                         % ((1 << bits) - 1, bits, values.min(), values.max()))
    return _emit(lambda lo, hi: values[lo:hi], lambda lo, hi: np.full(hi - lo, bits),
                 (values.size, values.size * bits))[0]


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
    counts = symbol_counts(symbols, alphabet_size)
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
    """Encode ``symbols`` (any integer dtype, not widened) with the canonical code of
    ``lengths``. Returns (bytes, nbits)."""
    symbols = _integers(symbols)
    lengths = np.asarray(lengths, np.int64)
    counts = symbol_counts(symbols, len(lengths))
    if len(counts) > len(lengths) or (counts[lengths == 0] > 0).any():
        raise ValueError('a symbol has no code (length 0) in the table')
    codes = canonical_codes(lengths)
    total = int(np.dot(counts, lengths))
    return _emit(lambda lo, hi: codes[symbols[lo:hi]], lambda lo, hi: lengths[symbols[lo:hi]],
                 (symbols.size, total))


def _code_lengths_at(raw, nbits, max_len, len_tab):
    """The code length (``len_tab``) of the ``max_len``-bit window at each of the first
    ``nbits`` bit positions of ``raw`` (zeros past its end), and the big-endian 32-bit word
    at each byte (a window at bit ``p`` is ``word[p >> 3] >> (32 - max_len - (p & 7))``)."""
    nbytes = (nbits + 7) // 8
    padded = np.zeros(nbytes + 4, np.uint32)
    have = min(len(raw), nbytes + 4)
    padded[:have] = raw[:have]
    words = padded[:nbytes] << 24            # in place from here: one temporary at a time
    words |= padded[1:nbytes + 1] << 16
    words |= padded[2:nbytes + 2] << 8
    words |= padded[3:nbytes + 3]
    del padded
    mask = np.uint32((1 << max_len) - 1)
    lens = np.empty((nbytes, 8), np.uint8)
    for o in range(8):
        lens[:, o] = len_tab[(words >> np.uint32(32 - max_len - o)) & mask]
    return lens.ravel()[:nbits], words


def _walk(lens, nbits, starts, ends, is_start=None, merge=False):
    """Follow codes from each start while they start before its end (and before ``nbits``).

    All walkers step at once (one numpy step per code). Returns each walker's exit: the
    first position at or past its end (or ``nbits``), or -1 where it met a bit pattern that
    is no code. With ``is_start``, every position visited (the broken one included) is set.
    With ``merge``, walkers that meet at one position (their ends must then be equal) go on
    as one, checked after 1, 2, 4, ... steps and every 32 steps after that: walks from
    nearby offsets of a prefix code fall into step within a few codes.
    """
    exits = np.array(starts, np.int64)
    limit = np.minimum(ends, nbits)
    ids = np.flatnonzero(exits < limit)
    cur, end = exits[ids], limit[ids]
    alias = np.arange(len(exits)) if merge else None
    steps, check = 0, 1
    while len(ids):
        if is_start is not None:
            is_start[cur] = True
        if merge and steps == check:
            check = check * 2 if check < 32 else check + 32
            uniq, first, inverse = np.unique(cur, return_index=True, return_inverse=True)
            if len(uniq) < len(cur):
                alias[ids] = ids[first[inverse]]
                ids, cur, end = ids[first], uniq, end[first]
        steps += 1
        step = lens[cur]
        nxt = cur + step
        fin = (step == 0) | (nxt >= end)
        if fin.any():
            exits[ids[fin]] = np.where(step[fin] == 0, -1, nxt[fin])
            keep = ~fin
            ids, cur, end = ids[keep], nxt[keep], end[keep]
        else:
            cur = nxt
    if merge:
        while True:   # a walker merged into one that later merged into another
            deeper = alias[alias]
            if np.array_equal(deeper, alias):
                break
            alias = deeper
        exits = exits[alias]
    return exits


def _code_starts(lens, nbits, max_len):
    """Sorted bit positions where the codes of the stream start (from bit 0), vectorised.

    Exact, without a Python step per code: the stream is cut into chunks of ``C`` bits; the
    first code starting in a chunk starts within its first ``max_len`` bits, so walking every
    chunk from each of those ``max_len`` offsets at once (all chunks in parallel) gives, per
    chunk and entry offset, the offset at which the codes enter the next chunk. Chaining those
    tables from bit 0 (one Python step per chunk) gives each chunk's true entry; one more
    parallel walk from the true entries marks every code start. The broken position (a bit
    pattern that is no code) ends the chain and is included.
    """
    chunk = int(min(8192, max(64, np.sqrt(nbits) / 4,         # steps vs. walkers per step,
                              nbits * max_len / _MAX_WALKERS)))   # walkers capped (memory)
    chunks = -(-nbits // chunk)
    offsets = np.arange(max_len, dtype=np.int64)
    base = np.arange(chunks, dtype=np.int64) * chunk
    starts = (base[:, None] + offsets[None, :]).ravel()
    exits = _walk(lens, nbits, starts, np.repeat(base + chunk, max_len),
                  merge=True).reshape(chunks, max_len)
    table = exits.tolist()
    entries, entry = [0], 0
    for c in range(chunks - 1):
        e = table[c][entry]
        if e < 0 or e >= nbits:
            break
        entries.append(e)
        entry = e - (c + 1) * chunk
    entries = np.array(entries, np.int64)
    is_start = np.zeros(nbits, bool)
    _walk(lens, nbits, entries, base[:len(entries)] + chunk, is_start)
    return nonzero_positions(is_start)


def huffman_decode(data, count, lengths, exact=False, dtype=np.int64):
    """Decode ``count`` symbols from ``data`` with the canonical code of ``lengths``.

    A table of 2^L entries (L = longest code, at most :data:`MAX_CODE_LEN`) maps every L-bit
    window to (symbol, length); the code length at every bit position of the stream's first
    ``count * L`` bits (no more can hold ``count`` codes) is looked up at once, the code
    boundaries are followed for all chunks of the stream in parallel (see
    :func:`_code_starts`), and the symbols are looked up at the boundaries. Every size is
    checked before anything is allocated: the code lengths against :data:`MAX_CODE_LEN`,
    ``count`` against the bits of ``data`` (a code is at least one bit).

    Parameters
    ----------
    data : bytes
    count : int
    lengths : array of int, the code length of each symbol (0 = absent)
    exact : bool
        The stream must end with the last symbol: at most 7 padding bits, all zero (as
        :func:`huffman_encode` writes it).
    dtype : numpy dtype
        Of the result; one that holds every symbol of ``lengths`` (e.g.
        ``symbol_dtype(len(lengths))``: a uint8 stream takes 1/8 the memory of int64).

    Returns
    -------
    numpy.ndarray, ``dtype``, shape (count,)

    Raises
    ------
    HuffmanError
        A code length over the maximum, a table that is no prefix code, or a stream that ends
        early, holds a bit pattern that is no code, or (``exact``) has bytes after the end.
    """
    lengths = np.asarray(lengths, np.int64)
    count = int(count)
    if np.dtype(dtype).kind not in 'iu' or len(lengths) > np.iinfo(dtype).max + 1:
        raise ValueError('dtype %s cannot hold the %d symbols of the table'
                         % (np.dtype(dtype).name, len(lengths)))
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
        return np.zeros(0, dtype)
    if longest == 0:
        raise HuffmanError('code table has no usable codes (longest %d bits)' % longest)
    if count > nbits:
        raise HuffmanError('%d symbols cannot fit in a %d-bit Huffman stream (a code takes at '
                           'least 1 bit)' % (count, nbits))
    codes = canonical_codes(lengths)
    max_len = longest
    size = 1 << max_len
    sym_tab = np.full(size, -1, np.int64)
    len_tab = np.zeros(size, np.uint8)
    for s in np.flatnonzero(lengths).tolist():
        shift = max_len - int(lengths[s])
        lo = int(codes[s]) << shift
        sym_tab[lo:lo + (1 << shift)] = s
        len_tab[lo:lo + (1 << shift)] = lengths[s]
    raw = np.frombuffer(data, np.uint8)
    span = min(nbits, count * max_len)      # count codes lie in these bits
    lens, words = _code_lengths_at(raw, span, max_len, len_tab)
    starts = _code_starts(lens, span, max_len)
    if len(starts) < count or not lens[starts[count - 1]]:
        good = len(starts) if len(starts) < count else count
        if len(starts) and not lens[starts[min(count, len(starts)) - 1]]:
            good = min(count, len(starts)) - 1
        raise HuffmanError('Huffman stream ends or breaks after %d of %d symbols'
                           % (good, count))
    starts = starts[:count]
    p = int(starts[-1]) + int(lens[starts[-1]])
    if p > nbits:
        raise HuffmanError('Huffman stream is %d bits short' % (p - nbits))
    del lens
    out = np.empty(count, dtype)
    for lo in range(0, count, _EMIT_BLOCK):   # the symbols at the starts, in blocks
        at = starts[lo:lo + _EMIT_BLOCK]
        shift = (32 - max_len - (at & 7)).astype(np.uint32)
        out[lo:lo + len(at)] = sym_tab[(words[at >> 3] >> shift) & np.uint32(size - 1)]
    if exact:
        if (p + 7) // 8 != len(data):
            raise HuffmanError('Huffman stream has %d bytes after its last symbol'
                               % (len(data) - (p + 7) // 8))
        if p % 8 and int(raw[-1]) & ((1 << (8 - p % 8)) - 1):
            raise HuffmanError('Huffman stream: padding bits after the last symbol are not zero')
    return out
