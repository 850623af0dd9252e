"""One weight tensor in Deep Compression's sparse form (a section of the ``.mxc`` file).

Han et al. (2016), section 2: the nonzeros of the flattened (row-major) weight are stored in
order with the *relative* index ``gap_i = p_i - p_{i-1} - 1`` (``p_{-1} = -1``) in ``gap_bits``
bits. A gap larger than ``2^gap_bits - 1`` is bridged with filler entries: a filler sits
``2^gap_bits`` positions after the previous entry (gap ``2^gap_bits - 1``) and holds an exact
zero (codebook index 0, or the value 0.0). Decoding: ``p_i = sum_{j<=i} (gap_j + 1) - 1``.

Payload layout (little-endian)::

    storage u8 (0 codebook, 1 float) | ndim u8 | index_bits u8 | gap_bits u8 | flags u8
    | k u32 | entries u32 | dims u32 x ndim
    | u32 len + codebook[1:] float32 (codebook)  or  u32 len + values float32 (float)
    | u32 len + index stream (codebook only) | u32 len + gap stream

``flags`` bit 0: the index stream is Huffman coded; bit 1: the gap stream is. A Huffman stream
is ``n u32 | n code lengths u8 | bits`` (see :mod:`mxcompress.deep_compression.huffman`); otherwise the stream
is the values bit-packed at their width. ``codebook[0] = 0`` is implied, not stored.

Decoding trusts no size it reads (:func:`parse_layer` checks them all before anything is
allocated): ``storage`` 0 or 1, ``flags`` bits 0-1 only, ``gap_bits`` and ``index_bits``
1..16 (float storage: ``index_bits = k = 0``), ``1 <= k <= 2^index_bits``, ``ndim`` at most
:data:`MAX_NDIM` with no zero dimension, ``entries`` at most the weight's size, each component
inside the payload and the payload ending with the gap stream; the codebook holds ``k - 1``
float32s, the values ``entries`` float32s; a bit-packed stream exactly
``ceil(entries * bits / 8)`` bytes, a Huffman table at most ``2^bits`` code lengths of at most
:data:`~mxcompress.deep_compression.huffman.MAX_CODE_LEN` bits, and at least ``entries`` bits
of code after it. Decoded, a stream must end with its last symbol (zero padding), positions
stay inside the weight, indices inside the codebook, values are finite, and every zero entry
is a filler (gap ``2^gap_bits - 1``). :func:`decode_layer` also takes the largest number of
weights the caller accepts, so a tiny payload cannot declare a gigantic weight.
"""
import struct

import numpy as np

from .huffman import (MAX_CODE_LEN, huffman_decode, huffman_encode, huffman_lengths,
                      nonzero_positions, pack_bits, symbol_counts, symbol_dtype, unpack_bits)
from ..quantization.scalar import check_bits

__all__ = ['sparse_entries', 'sparse_positions', 'encode_layer', 'parse_layer', 'decode_layer',
           'MAX_NDIM', 'MAX_WIDTH']

_HEAD = struct.Struct('<BBBBBII')
#: most dimensions a stored weight may declare
MAX_NDIM = 32
#: widest index / gap the format stores (bits)
MAX_WIDTH = 16
#: entries placed per pass when a weight is rebuilt (bounds the int64 positions in memory)
_SCATTER_BLOCK = 1 << 18


def sparse_entries(flat_nonzero_positions, gap_bits):
    """Gaps (with fillers) of sorted positions.

    Parameters
    ----------
    flat_nonzero_positions : int array (n,), strictly increasing
    gap_bits : int

    Returns
    -------
    gaps : (m,) of the narrowest unsigned dtype holding ``gap_bits`` bits, each in
        0 .. 2^gap_bits - 1
    real : int (n,) (int32 when the positions are, else int64), where the real entries sit
        among the m (the rest are fillers)
    """
    p = np.asarray(flat_nonzero_positions)
    if p.dtype not in (np.int32, np.int64):
        p = p.astype(np.int64)
    span = 1 << gap_bits
    gap = np.diff(p, prepend=p.dtype.type(-1))  # in place from here: two arrays of len(p)
    gap -= 1
    real = gap >> gap_bits           # fillers before each entry
    real += 1
    np.cumsum(real, out=real)
    real -= 1
    gap &= span - 1                  # what is left after the fillers
    gaps = np.full(int(real[-1]) + 1 if len(real) else 0, span - 1, symbol_dtype(span))
    gaps[real] = gap
    return gaps, real


def sparse_positions(gaps):
    """Positions of all entries (fillers included) from their gaps: int64 (m,)."""
    positions = np.asarray(gaps).astype(np.int64)   # one array, updated in place
    positions += 1
    np.cumsum(positions, out=positions)
    positions -= 1
    return positions


def _stream(values, bits, huffman):
    if huffman:
        lengths = huffman_lengths(values, 1 << bits)
        used = int(np.flatnonzero(lengths).max()) + 1 if lengths.any() else 0
        data, _ = huffman_encode(values, lengths)
        table = struct.pack('<I', used) + lengths[:used].tobytes()
        return table + data, len(table)
    return pack_bits(values, bits), 0


def _unstream(blob, bits, count, huffman):
    """``(values, table_bytes)``: the ``count`` values of a stream, as the narrowest unsigned
    dtype holding ``bits`` bits."""
    dtype = symbol_dtype(1 << bits)
    if huffman:
        (used,) = struct.unpack_from('<I', blob)
        lengths = np.frombuffer(blob, np.uint8, count=used, offset=4)
        return huffman_decode(blob[4 + used:], count, lengths, exact=True,
                              dtype=dtype), 4 + used
    return unpack_bits(blob, bits, count, exact=True).astype(dtype), 0


def _check_stream(blob, bits, count, huffman, what):
    """Sizes of one stream against ``count`` values of ``bits`` bits, before decoding it."""
    if not huffman:
        need = (count * bits + 7) // 8
        if len(blob) != need:
            raise ValueError('%s stream has %d bytes, %d values of %d bits take %d'
                             % (what, len(blob), count, bits, need))
        return
    if len(blob) < 4:
        raise ValueError('%s stream has %d bytes, too short for its Huffman table'
                         % (what, len(blob)))
    (used,) = struct.unpack_from('<I', blob)
    if used > (1 << bits):
        raise ValueError('%s Huffman table has %d code lengths, the %d-bit alphabet has %d '
                         'symbols' % (what, used, bits, 1 << bits))
    if 4 + used > len(blob):
        raise ValueError('%s Huffman table of %d code lengths runs past its %d-byte stream'
                         % (what, used, len(blob)))
    lengths = np.frombuffer(blob, np.uint8, count=used, offset=4)
    if used and int(lengths.max()) > MAX_CODE_LEN:
        raise ValueError('%s Huffman code length %d exceeds the %d-bit maximum'
                         % (what, int(lengths.max()), MAX_CODE_LEN))
    code_bits = 8 * (len(blob) - 4 - used)
    if count > code_bits:
        raise ValueError('%s stream declares %d entries, its %d bits of code hold at most %d'
                         % (what, count, code_bits, code_bits))


def _component(data):
    return struct.pack('<I', len(data)) + data


def encode_layer(array, index_bits, gap_bits, huffman=True, codebook=None, name='layer'):
    """Encode one weight.

    Parameters
    ----------
    array : numpy.ndarray
        With ``codebook``: the int index array (0 = zero); without: the float weight.
    index_bits : int
        Index width (1..16) with a codebook; ignored for float storage.
    gap_bits : int
        Relative index width, 1..16.
    huffman : bool
    codebook : numpy.ndarray (k,) float32 or None
        ``codebook[0]`` must be 0.
    name : str
        For error messages.

    Returns
    -------
    bytes
    """
    gap_bits = check_bits(gap_bits, '%s: gap_bits' % name)
    arr = np.asarray(array)
    flat = arr.ravel()
    positions = nonzero_positions(flat)          # int32 when it fits, built block by block
    gaps, real = sparse_entries(positions, gap_bits)
    flags = (1 | 2) if huffman else 0
    if codebook is not None:
        index_bits = check_bits(index_bits, name)
        codebook = np.asarray(codebook, np.float32)
        if len(codebook) > (1 << index_bits) or codebook[0] != 0:
            raise ValueError('%s: codebook must start with 0 and hold at most 2^%d entries, got %d'
                             % (name, index_bits, len(codebook)))
        if flat.size and (flat.min() < 0 or flat.max() >= len(codebook)):
            raise ValueError('%s: index out of range 0..%d' % (name, len(codebook) - 1))
        idx = np.zeros(len(gaps), symbol_dtype(1 << index_bits))   # checked in range above
        idx[real] = flat[positions]
        first = _component(codebook[1:].tobytes())
        index_stream = _component(_stream(idx, index_bits, huffman)[0])
        storage, k = 0, len(codebook)
    else:
        values = np.zeros(len(gaps), np.float32)
        values[real] = flat[positions]
        first, index_stream, storage, k, index_bits = _component(values.tobytes()), b'', 1, 0, 0
    head = _HEAD.pack(storage, arr.ndim, index_bits, gap_bits, flags, k, len(gaps))
    head += struct.pack('<%dI' % arr.ndim, *arr.shape)
    return head + first + index_stream + _component(_stream(gaps, gap_bits, huffman)[0])


def parse_layer(payload):
    """Check the layout of :func:`encode_layer` bytes without decoding them.

    Every size in the payload is checked against the payload's length and the other fields
    (see the module docstring) before anything is allocated.

    Returns
    -------
    dict
        ``storage`` (0 codebook, 1 float), ``ndim``, ``index_bits``, ``gap_bits``, ``flags``,
        ``k``, ``entries``, ``shape`` (tuple), ``size`` (weights), ``parts``: the components as
        ``(offset, length)`` in the payload.

    Raises
    ------
    ValueError
        A size, count, width or code length that the payload cannot hold or the format does
        not allow.
    """
    if len(payload) < _HEAD.size:
        raise ValueError('layer header truncated (%d of %d bytes)' % (len(payload), _HEAD.size))
    storage, ndim, index_bits, gap_bits, flags, k, entries = _HEAD.unpack_from(payload)
    if storage not in (0, 1):
        raise ValueError('unknown storage %d (0 codebook, 1 float)' % storage)
    if flags & ~3:
        raise ValueError('unknown flags 0x%02x (bit 0: Huffman indices, bit 1: Huffman gaps)'
                         % flags)
    if not 1 <= gap_bits <= MAX_WIDTH:
        raise ValueError('gap_bits %d outside 1..%d' % (gap_bits, MAX_WIDTH))
    if storage == 0:
        if not 1 <= index_bits <= MAX_WIDTH:
            raise ValueError('index_bits %d outside 1..%d' % (index_bits, MAX_WIDTH))
        if not 1 <= k <= (1 << index_bits):
            raise ValueError('codebook of %d entries, %d-bit indices address 1..%d'
                             % (k, index_bits, 1 << index_bits))
    elif index_bits or k:
        raise ValueError('float storage with index_bits %d and k %d (both must be 0)'
                         % (index_bits, k))
    if ndim > MAX_NDIM:
        raise ValueError('%d dimensions, at most %d' % (ndim, MAX_NDIM))
    pos = _HEAD.size + 4 * ndim
    if len(payload) < pos:
        raise ValueError('layer header truncated (%d dimensions need %d bytes, %d present)'
                         % (ndim, pos, len(payload)))
    shape = struct.unpack_from('<%dI' % ndim, payload, _HEAD.size)
    if 0 in shape:
        raise ValueError('shape %s has a zero dimension' % (shape,))
    size = 1
    for d in shape:
        size *= d
    if entries > size:
        raise ValueError('%d entries declared for a weight of shape %s (%d positions)'
                         % (entries, shape, size))
    parts = []
    names = ('codebook', 'index', 'gap') if storage == 0 else ('values', 'gap')
    for i, what in enumerate(names):
        if pos + 4 > len(payload):
            raise ValueError('component %d (%s) truncated: its length field is missing'
                             % (i + 1, what))
        (n,) = struct.unpack_from('<I', payload, pos)
        if pos + 4 + n > len(payload):
            raise ValueError('component %d (%s) truncated (%d of %d bytes)'
                             % (i + 1, what, len(payload) - pos - 4, n))
        parts.append((pos + 4, n))
        pos += 4 + n
    if pos != len(payload):
        raise ValueError('%d unexpected bytes after the gap stream' % (len(payload) - pos))
    if storage == 0 and parts[0][1] != 4 * (k - 1):
        raise ValueError('codebook has %d bytes, k = %d needs %d (k - 1 float32s)'
                         % (parts[0][1], k, 4 * (k - 1)))
    if storage == 1 and parts[0][1] != 4 * entries:
        raise ValueError('%d values for %d entries' % (parts[0][1] // 4, entries))
    streams = [('gap', gap_bits, bool(flags & 2), parts[-1])]
    if storage == 0:
        streams.insert(0, ('index', index_bits, bool(flags & 1), parts[1]))
    for what, bits, huffman, (offset, n) in streams:
        _check_stream(payload[offset:offset + n], bits, entries, huffman, what)
    return {'storage': storage, 'ndim': ndim, 'index_bits': index_bits, 'gap_bits': gap_bits,
            'flags': flags, 'k': k, 'entries': entries, 'shape': tuple(shape), 'size': size,
            'parts': parts}


def decode_layer(payload, max_weights=None, dense=True):
    """Decode :func:`encode_layer` bytes.

    Parameters
    ----------
    payload : bytes
    max_weights : int or None
        Refuse a weight of more elements (checked before it is allocated).
    dense : bool
        Build the weight array (else return None for it: only ``meta``, which needs memory in
        proportion to the payload, not to the weight).

    Returns
    -------
    weight : numpy.ndarray, float32, the stored shape (None when not ``dense``)
    meta : dict
        Bytes per component and counts (see :func:`mxcompress.deep_compression.container.container_info`).

    Raises
    ------
    ValueError
        Inconsistent payload (a size it cannot hold, index or position out of range, short or
        overlong stream, non-finite value, a zero entry that is not a filler).
    """
    head = parse_layer(payload)
    storage, ndim, entries = head['storage'], head['ndim'], head['entries']
    shape, size, k = head['shape'], head['size'], head['k']
    if max_weights is not None and size > max_weights:
        raise ValueError('a weight of shape %s (%d elements) exceeds the limit of %d'
                         % (shape, size, max_weights))
    parts = [payload[offset:offset + n] for offset, n in head['parts']]
    index_bits, gap_bits, flags = head['index_bits'], head['gap_bits'], head['flags']
    huffman_idx, huffman_gap = bool(flags & 1), bool(flags & 2)
    gaps, gap_table = _unstream(parts[-1], gap_bits, entries, huffman_gap)
    last = int(gaps.sum(dtype=np.int64)) + int(entries) - 1    # the last entry's position
    if entries and last >= size:
        raise ValueError('sparse position %d beyond the weight size %d' % (last, size))
    meta = {'weights': size, 'shape': list(shape), 'entries': int(entries),
            'gap_bits': gap_bits, 'layer_header': _HEAD.size + 4 * ndim + 4 * len(parts),
            'gaps': len(parts[-1]) - gap_table, 'huffman_tables': gap_table,
            'coding': 'huffman' if huffman_gap else 'bitpacked'}
    if storage == 0:
        codebook = np.concatenate([[0.0], np.frombuffer(parts[0], np.float32)]).astype(np.float32)
        if len(codebook) != k:
            raise ValueError('codebook has %d entries, header says %d' % (len(codebook), k))
        if not np.isfinite(codebook).all():
            raise ValueError('codebook holds non-finite values (NaN or inf)')
        idx, idx_table = _unstream(parts[1], index_bits, entries, huffman_idx)
        counts = symbol_counts(idx, k)
        if len(counts) > k:
            raise ValueError('codebook index %d out of range 0..%d' % (len(counts) - 1, k - 1))
        stored, fillers = idx, idx == 0
        nonzeros = int(counts[codebook != 0].sum())
        meta.update(storage='codebook', bits=index_bits, k=k, codebook=len(parts[0]),
                    indices=len(parts[1]) - idx_table, values=0,
                    huffman_tables=gap_table + idx_table)
        meta['theoretical_q_fraction'] = index_bits / 32.0  # log2(2^bits) / 32
    else:
        values = np.frombuffer(parts[0], np.float32)
        if len(values) != entries:
            raise ValueError('%d values for %d entries' % (len(values), entries))
        if not np.isfinite(values).all():
            raise ValueError('values hold non-finite numbers (NaN or inf)')
        codebook, stored, fillers = None, values, values == 0
        nonzeros = int(np.count_nonzero(values))
        meta.update(storage='float', bits=32, k=0, codebook=0, indices=0, values=len(parts[0]))
    span = 1 << gap_bits
    if (gaps[fillers] != span - 1).any():
        bad = int(np.flatnonzero(fillers & (gaps != span - 1))[0])
        raise ValueError('entry %d is zero but not a filler (gap %d, a filler has gap %d)'
                         % (bad, gaps[bad], span - 1))
    del fillers
    meta['nonzeros'] = nonzeros
    meta['fillers'] = int(entries) - meta['nonzeros']
    total = len(payload)
    meta['real_bits_per_weight'] = 8.0 * total / size if size else 0.0
    meta['real_bits_per_nonzero'] = 8.0 * total / meta['nonzeros'] if meta['nonzeros'] else 0.0
    meta['real_fraction_of_fp32'] = total / (4.0 * size) if size else 0.0
    if not dense:
        return None, meta
    flat = np.zeros(size, np.float32)
    start = 0      # the position after the previous block's last entry
    for lo in range(0, len(gaps), _SCATTER_BLOCK):   # int64 positions of one block at a time
        positions = sparse_positions(gaps[lo:lo + _SCATTER_BLOCK])
        positions += start
        part = stored[lo:lo + _SCATTER_BLOCK]
        flat[positions] = part if codebook is None else codebook[part]
        start = int(positions[-1]) + 1
    return flat.reshape(shape), meta
