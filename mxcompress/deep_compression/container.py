"""The ``.mxc`` compressed model file (Deep Compression's storage format, Han et al. 2016).

Layout (all integers little-endian)::

    header   magic b'MXCPACK\\0' | version u16 | sections u32 | toc_bytes u32 | crc32 u32
    toc      per section: name_len u16 | name | length u64 | crc32 u32 ; then crc32 u32
    payloads the sections' bytes, in TOC order, nothing after the last

Every section has its own CRC32, the header and the table of contents have theirs, and the
file length must equal header + TOC + payloads: a truncated file or any flipped byte raises
:class:`ContainerError` naming the section.

Sections:

* ``graph``: the symbol JSON (UTF-8), exactly what ``mx.sym.load`` reads.
* ``w:NAME``, one per FullyConnected / Convolution weight: the weight in sparse form (see
  :mod:`mxcompress.deep_compression.sparse_codec`): relative positions (gaps, ``gap_bits`` wide, filler zero
  entries when a gap overflows), and per entry either a codebook index (``index_bits`` wide,
  index 0 = the reserved zero) plus the codebook (float32), or a float32 value (storage
  ``float``: pruned only). Index and gap streams are bit-packed or canonical-Huffman coded.
* ``dense``: every other param (biases, BatchNorm, unquantised weights) as raw float32.

``param_bytes = total_bytes - graph_bytes`` counts everything but the graph (headers, TOC,
tables included), so ``4 * params / param_bytes`` is an honest compression ratio.
"""
import json
import struct
import zlib

import mxnet as mx
import numpy as np

from ..checkpoint import atomic_path
from ..graph import find_layers
from ..quantization.scalar import default_bits, scalar_quantize
from .sparse_codec import decode_layer, encode_layer

__all__ = ['MAGIC', 'VERSION', 'ContainerError', 'encode_model', 'decode_model', 'pack',
           'unpack', 'read_info', 'container_info']

MAGIC = b'MXCPACK\x00'
VERSION = 1
_HEADER = struct.Struct('<8sHII')
#: gap widths tried by ``gap_bits_*='auto'``
AUTO_GAP_BITS = tuple(range(2, 13))
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8}
_DTYPE_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


class ContainerError(ValueError):
    """A truncated, corrupt or unsupported ``.mxc`` file."""


def _crc(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def _write_sections(sections):
    toc = b''
    for name, payload in sections:
        raw = name.encode('utf-8')
        toc += struct.pack('<H', len(raw)) + raw + struct.pack('<QI', len(payload), _crc(payload))
    toc += struct.pack('<I', _crc(toc))
    head = _HEADER.pack(MAGIC, VERSION, len(sections), len(toc))
    head += struct.pack('<I', _crc(head))
    return head + toc + b''.join(p for _, p in sections), len(head), len(toc)


def _read_sections(blob, where='file'):
    """Parse and verify; returns (list of (name, payload), header_bytes, toc_bytes)."""
    hsize = _HEADER.size + 4
    if len(blob) < hsize:
        raise ContainerError('%s: truncated header (%d bytes, need %d)' % (where, len(blob), hsize))
    magic, version, count, toc_len = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ContainerError('%s: not an .mxc file (bad magic %r)' % (where, magic))
    if struct.unpack_from('<I', blob, _HEADER.size)[0] != _crc(blob[:_HEADER.size]):
        raise ContainerError('%s: header checksum mismatch (corrupt header)' % where)
    if version != VERSION:
        raise ContainerError('%s: format version %d, this mxcompress reads version %d'
                             % (where, version, VERSION))
    toc = blob[hsize:hsize + toc_len]
    if len(toc) < toc_len or toc_len < 4:
        raise ContainerError('%s: truncated table of contents' % where)
    if struct.unpack_from('<I', toc, toc_len - 4)[0] != _crc(toc[:-4]):
        raise ContainerError('%s: table of contents checksum mismatch (corrupt section table)'
                             % where)
    entries, pos = [], 0
    try:
        for _ in range(count):
            (n,) = struct.unpack_from('<H', toc, pos)
            name = toc[pos + 2:pos + 2 + n].decode('utf-8')
            length, crc = struct.unpack_from('<QI', toc, pos + 2 + n)
            entries.append((name, length, crc))
            pos += 2 + n + 12
    except (struct.error, UnicodeDecodeError) as err:
        raise ContainerError('%s: malformed table of contents (%s)' % (where, err)) from err
    offset = hsize + toc_len
    sections = []
    for i, (name, length, crc) in enumerate(entries):
        payload = blob[offset:offset + length]
        if len(payload) < length:
            raise ContainerError('%s: section %d %r truncated (%d of %d bytes)'
                                 % (where, i, name, len(payload), length))
        if _crc(payload) != crc:
            raise ContainerError('%s: section %d %r checksum mismatch (corrupt data)'
                                 % (where, i, name))
        sections.append((name, payload))
        offset += length
    if offset != len(blob):
        raise ContainerError('%s: %d unexpected bytes after the last section' % (where,
                                                                              len(blob) - offset))
    return sections, hsize, toc_len


def _encode_dense(params):
    out = b''
    for (kind, name), value in params:
        arr = np.ascontiguousarray(value)
        if arr.dtype not in _DTYPE_CODES:
            arr = arr.astype(np.float32)
        raw = name.encode('utf-8')
        out += struct.pack('<BH', kind, len(raw)) + raw
        out += struct.pack('<BB', _DTYPE_CODES[arr.dtype], arr.ndim)
        out += struct.pack('<%dI' % arr.ndim, *arr.shape) + arr.tobytes()
    return out


def _decode_dense(payload):
    pos, items = 0, []
    while pos < len(payload):
        kind, n = struct.unpack_from('<BH', payload, pos)
        name = payload[pos + 3:pos + 3 + n].decode('utf-8')
        pos += 3 + n
        code, ndim = struct.unpack_from('<BB', payload, pos)
        shape = struct.unpack_from('<%dI' % ndim, payload, pos + 2)
        pos += 2 + 4 * ndim
        dtype = np.dtype(_DTYPES[code])
        nbytes = int(np.prod(shape)) * dtype.itemsize
        items.append((kind, name, np.frombuffer(payload[pos:pos + nbytes], dtype).reshape(shape),
                      3 + n + 2 + 4 * ndim + nbytes))
        pos += nbytes
    return items


def _plan_layers(symbol, arg_params, plan, conv_bits, fc_bits, bits, quantize):
    """Codebook and index per weight (from ``plan`` or exact / k-means). Returns (plan, lossy)."""
    plan = dict(plan or {})
    lossy = []
    bits = dict(bits or {})
    for layer in find_layers(symbol):
        w = layer.weight
        if w in plan or w not in arg_params:
            continue
        b = bits.get(layer.name, bits.get(w, default_bits(layer.op, conv_bits, fc_bits)))
        values = arg_params[w].asnumpy()
        codebook, index = scalar_quantize(values, b, layer=layer.name)
        if not np.array_equal(codebook[index], values):
            if quantize == 'never':
                raise ValueError('layer %s has %d distinct nonzero values, more than the %d a '
                                 '%d-bit codebook holds; quantise it first (mxcompress '
                                 'deep-compress) or pass --quantize auto'
                                 % (layer.name, len(np.unique(values[values != 0])),
                                    (1 << b) - 1, b))
            lossy.append(layer.name)
        plan[w] = {'layer': layer.name, 'op': layer.op, 'bits': b, 'codebook': codebook,
                   'index': index}
    return plan, lossy


def encode_model(symbol, arg_params, aux_params, plan=None, conv_bits=8, fc_bits=5,
                 bits=None, gap_bits_conv=8, gap_bits_fc=5, huffman=True, storage='codebook',
                 quantize='auto'):
    """Serialise a model into ``.mxc`` bytes.

    Parameters
    ----------
    symbol, arg_params, aux_params
        A standard checkpoint; pruned weights are exact zeros.
    plan : dict or None
        Codebooks and indices from :func:`mxcompress.quantization.codebook.quantize_params`
        (after :func:`~mxcompress.quantization.codebook.fold_codebooks`). Layers not in it
        are quantised here: losslessly when they have at most ``2^bits - 1`` distinct
        nonzero values, else by k-means (``quantize='auto'``) or an error (``'never'``).
    conv_bits, fc_bits, bits
        Index widths (default by op; ``bits`` maps layer names to overrides).
    gap_bits_conv, gap_bits_fc : int or 'auto'
        Widths of the relative sparse indices (Han et al.: 8 conv, 5 fc), 1..16. ``'auto'``
        encodes the layer with every width in 2..12 and keeps the smallest (with Huffman
        coding a wider gap alphabet costs little, while fewer fillers save entries).
    huffman : bool
        Huffman-code index and gap streams (else bit-pack them).
    storage : {'codebook', 'float'}
        ``float`` stores each nonzero as float32 (pruning only, the "P" stage) -- lossless.

    Returns
    -------
    blob : bytes
    lossy : list of str
        Layers that were k-means quantised here (their weights change).
    """
    if storage not in ('codebook', 'float'):
        raise ValueError("storage must be 'codebook' or 'float', got %r" % storage)
    if quantize not in ('auto', 'never'):
        raise ValueError("quantize must be 'auto' or 'never', got %r" % quantize)
    layers = {l.weight: l for l in find_layers(symbol) if l.weight in arg_params}
    lossy = []
    if storage == 'codebook':
        plan, lossy = _plan_layers(symbol, arg_params, plan, conv_bits, fc_bits, bits, quantize)
    sections = [('graph', symbol.tojson().encode('utf-8'))]
    for w, layer in layers.items():
        gap_bits = gap_bits_conv if layer.op == 'Convolution' else gap_bits_fc
        candidates = AUTO_GAP_BITS if gap_bits == 'auto' else (gap_bits,)
        if storage == 'codebook':
            p = plan[w]
            payloads = [encode_layer(p['index'], p['bits'], g, huffman, codebook=p['codebook'],
                                     name=layer.name) for g in candidates]
        else:
            payloads = [encode_layer(arg_params[w].asnumpy(), 0, g, huffman, name=layer.name)
                        for g in candidates]
        sections.append(('w:' + w, min(payloads, key=len)))
    dense = [((0, k), v.asnumpy()) for k, v in sorted(arg_params.items()) if k not in layers]
    dense += [((1, k), v.asnumpy()) for k, v in sorted((aux_params or {}).items())]
    sections.append(('dense', _encode_dense(dense)))
    return _write_sections(sections)[0], lossy


def decode_model(blob, where='file'):
    """Parse ``.mxc`` bytes into ``(symbol, arg_params, aux_params)`` (NDArrays)."""
    sections, _, _ = _read_sections(blob, where)
    names = [n for n, _ in sections]
    if not names or names[0] != 'graph' or names[-1] != 'dense':
        raise ContainerError('%s: sections %s, expected graph ... dense' % (where, names))
    try:
        symbol = mx.sym.load_json(sections[0][1].decode('utf-8'))
    except (mx.base.MXNetError, UnicodeDecodeError) as err:
        raise ContainerError('%s: section graph: unreadable symbol (%s)' % (where, err)) from err
    arg_params, aux_params = {}, {}
    for name, payload in sections[1:-1]:
        if not name.startswith('w:'):
            raise ContainerError('%s: unknown section %r' % (where, name))
        try:
            arg_params[name[2:]] = mx.nd.array(decode_layer(payload)[0], dtype=np.float32)
        except (ValueError, struct.error, KeyError) as err:
            raise ContainerError('%s: section %r: %s' % (where, name, err)) from err
    try:
        dense = _decode_dense(sections[-1][1])
    except (ValueError, struct.error, KeyError) as err:
        raise ContainerError("%s: section 'dense': %s" % (where, err)) from err
    for kind, name, value, _ in dense:
        (aux_params if kind else arg_params)[name] = mx.nd.array(value, dtype=value.dtype)
    return symbol, arg_params, aux_params


def container_info(blob, where='file'):
    """Byte accounting of ``.mxc`` bytes.

    Returns
    -------
    dict
        ``total_bytes``, ``graph_bytes``, ``param_bytes`` (= total - graph), ``header_bytes``,
        ``toc_bytes``, ``dense_bytes``, ``layers``: per weight its components in bytes
        (``codebook``, ``values``, ``indices``, ``gaps``, ``huffman_tables``, ``layer_header``,
        ``total``), ``bits``, ``gap_bits``, ``k``, ``nonzeros``, ``entries`` (with fillers),
        ``fillers``, ``weights``, ``coding``, the theoretical ``log2(k)/32`` and the real
        bits per weight and per nonzero; ``dense``: bytes per dense param.
    """
    sections, hsize, toc_len = _read_sections(blob, where)
    info = {'format_version': VERSION, 'total_bytes': len(blob),
            'graph_bytes': len(sections[0][1]), 'header_bytes': hsize, 'toc_bytes': toc_len,
            'layers': {}, 'dense': {}}
    info['param_bytes'] = info['total_bytes'] - info['graph_bytes']
    for name, payload in sections[1:-1]:
        _, meta = decode_layer(payload)
        meta['total'] = len(payload)
        info['layers'][name[2:]] = meta
    for kind, name, _, nbytes in _decode_dense(sections[-1][1]):
        info['dense'][name] = nbytes
    info['dense_bytes'] = len(sections[-1][1])
    return info


def pack(path, symbol, arg_params, aux_params, **kwargs):
    """Write an ``.mxc`` file atomically; returns ``(info, lossy_layers)``.

    Keyword arguments are those of :func:`encode_model`.
    """
    blob, lossy = encode_model(symbol, arg_params, aux_params, **kwargs)
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(blob)
    return container_info(blob, path), lossy


def _read(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as err:
        raise ContainerError('cannot read %s: %s' % (path, err)) from err


def unpack(path):
    """Read an ``.mxc`` file: ``(symbol, arg_params, aux_params)`` of a standard checkpoint."""
    return decode_model(_read(path), path)


def read_info(path):
    """:func:`container_info` of an ``.mxc`` file."""
    return container_info(_read(path), path)


def info_json(info):
    """``info`` as indented JSON text."""
    return json.dumps(info, indent=2, sort_keys=True)
