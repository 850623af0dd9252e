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
"""
import struct

import numpy as np

from .huffman import huffman_decode, huffman_encode, huffman_lengths, pack_bits, unpack_bits
from ..quantization.scalar import check_bits

__all__ = ['sparse_entries', 'sparse_positions', 'encode_layer', 'decode_layer']

_HEAD = struct.Struct('<BBBBBII')


def sparse_entries(flat_nonzero_positions, gap_bits):
    """Gaps (with fillers) of sorted positions.

    Parameters
    ----------
    flat_nonzero_positions : int array (n,), strictly increasing
    gap_bits : int

    Returns
    -------
    gaps : int64 (m,), each in 0 .. 2^gap_bits - 1
    real : int64 (n,), where the real entries sit among the m (the rest are fillers)
    """
    p = np.asarray(flat_nonzero_positions, np.int64)
    span = 1 << gap_bits
    gap = np.diff(np.concatenate([[-1], p])) - 1
    fillers = gap // span
    real = np.cumsum(fillers + 1) - 1
    gaps = np.full(int(real[-1]) + 1 if len(real) else 0, span - 1, np.int64)
    gaps[real] = gap - fillers * span
    return gaps, real


def sparse_positions(gaps):
    """Positions of all entries (fillers included) from their gaps."""
    return np.cumsum(np.asarray(gaps, np.int64) + 1) - 1


def _stream(values, bits, huffman):
    if huffman:
        lengths = huffman_lengths(values, 1 << bits)
        used = int(np.flatnonzero(lengths).max()) + 1 if lengths.any() else 0
        data, _ = huffman_encode(values, lengths)
        table = struct.pack('<I', used) + lengths[:used].tobytes()
        return table + data, len(table)
    return pack_bits(values, bits), 0


def _unstream(blob, bits, count, huffman):
    if huffman:
        (used,) = struct.unpack_from('<I', blob)
        lengths = np.frombuffer(blob, np.uint8, count=used, offset=4)
        return huffman_decode(blob[4 + used:], count, lengths), 4 + used
    return unpack_bits(blob, bits, count), 0


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
    positions = np.flatnonzero(flat)
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
        idx = np.zeros(len(gaps), np.int64)
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


def decode_layer(payload):
    """Decode :func:`encode_layer` bytes.

    Returns
    -------
    weight : numpy.ndarray, float32, the stored shape
    meta : dict
        Bytes per component and counts (see :func:`mxcompress.deep_compression.container.container_info`).

    Raises
    ------
    ValueError
        Inconsistent payload (index or position out of range, short stream).
    """
    storage, ndim, index_bits, gap_bits, flags, k, entries = _HEAD.unpack_from(payload)
    shape = struct.unpack_from('<%dI' % ndim, payload, _HEAD.size)
    pos = _HEAD.size + 4 * ndim
    parts = []
    for _ in range(3 if storage == 0 else 2):
        (n,) = struct.unpack_from('<I', payload, pos)
        parts.append(payload[pos + 4:pos + 4 + n])
        if len(parts[-1]) < n:
            raise ValueError('component %d truncated' % len(parts))
        pos += 4 + n
    huffman_idx, huffman_gap = bool(flags & 1), bool(flags & 2)
    gaps, gap_table = _unstream(parts[-1], gap_bits, entries, huffman_gap)
    positions = sparse_positions(gaps)
    size = int(np.prod(shape))
    if entries and positions[-1] >= size:
        raise ValueError('sparse position %d beyond the weight size %d' % (positions[-1], size))
    flat = np.zeros(size, np.float32)
    meta = {'weights': size, 'shape': list(shape), 'entries': int(entries),
            'gap_bits': gap_bits, 'layer_header': _HEAD.size + 4 * ndim + 4 * len(parts),
            'gaps': len(parts[-1]) - gap_table, 'huffman_tables': gap_table,
            'coding': 'huffman' if huffman_gap else 'bitpacked'}
    if storage == 0:
        codebook = np.concatenate([[0.0], np.frombuffer(parts[0], np.float32)]).astype(np.float32)
        if len(codebook) != k:
            raise ValueError('codebook has %d entries, header says %d' % (len(codebook), k))
        idx, idx_table = _unstream(parts[1], index_bits, entries, huffman_idx)
        if entries and idx.max() >= k:
            raise ValueError('codebook index %d out of range 0..%d' % (idx.max(), k - 1))
        flat[positions] = codebook[idx]
        meta.update(storage='codebook', bits=index_bits, k=k, codebook=len(parts[0]),
                    indices=len(parts[1]) - idx_table, values=0,
                    huffman_tables=gap_table + idx_table)
        meta['theoretical_q_fraction'] = index_bits / 32.0  # log2(2^bits) / 32
    else:
        values = np.frombuffer(parts[0], np.float32)
        if len(values) != entries:
            raise ValueError('%d values for %d entries' % (len(values), entries))
        flat[positions] = values
        meta.update(storage='float', bits=32, k=0, codebook=0, indices=0, values=len(parts[0]))
    meta['nonzeros'] = int(np.count_nonzero(flat))
    meta['fillers'] = int(entries) - meta['nonzeros']
    total = len(payload)
    meta['real_bits_per_weight'] = 8.0 * total / size if size else 0.0
    meta['real_bits_per_nonzero'] = 8.0 * total / meta['nonzeros'] if meta['nonzeros'] else 0.0
    meta['real_fraction_of_fp32'] = total / (4.0 * size) if size else 0.0
    return flat.reshape(shape), meta
