"""The ``.mxc`` compressed model file (Deep Compression's storage format, Han et al. 2016).

Layout (all integers little-endian)::

    header   magic b'MXCPACK\\0' | version u16 | sections u32 | toc_bytes u32 | crc32 u32
    toc      per section: name_len u16 | name | length u64 | crc32 u32 ; then crc32 u32
    payloads the sections' bytes, in TOC order, nothing after the last

Every section has its own CRC32, the header and the table of contents have theirs, and the
file length must equal header + TOC + payloads: a truncated file or any flipped byte raises
:class:`ContainerError` naming the section.

Sections:

* ``graph``: the symbol JSON (UTF-8), what ``mx.sym.load`` reads. Version 1 stores the JSON
  as is; version 2 (written since) stores one codec byte and the JSON behind it: ``0`` the
  JSON as is, ``1`` the JSON without whitespace, raw-DEFLATE coded (zlib ``wbits=-15``, no
  zlib header or checksum: the section has its CRC32). LeNet-300-100's 2,223-byte graph takes
  352 bytes. Inflating is bounded: at most :data:`MAX_GRAPH_JSON_BYTES` of JSON, the stream
  must end exactly at the end of the section.
* ``w:NAME``, one per FullyConnected / Convolution weight: the weight in sparse form (see
  :mod:`mxcompress.deep_compression.sparse_codec`): relative positions (gaps, ``gap_bits`` wide, filler zero
  entries when a gap overflows), and per entry either a codebook index (``index_bits`` wide,
  index 0 = the reserved zero) plus the codebook (float32), or a float32 value (storage
  ``float``: pruned only). Index and gap streams are bit-packed or canonical-Huffman coded.
* ``dense``: every other param (biases, BatchNorm, unquantised weights), raw, in its own
  dtype (float32 usually); with ``dense_float16`` a float32 param is stored as IEEE half
  precision (dtype code 4) and restored as float32: 2 bytes a value instead of 4, at a
  relative rounding error of at most 2^-11 (a param that would overflow half precision stays
  float32). The accuracy-budget search writes its files so when the validation error does
  not rise (:func:`mxcompress.deep_compression.auto.quantize_and_encode`).

``param_bytes = total_bytes - graph_bytes`` counts everything but the graph (headers, TOC,
tables included), so ``4 * params / param_bytes`` is an honest compression ratio.

Decoding trusts no size it reads (as bounded decoders do: zlib's and zstd's output limits,
safetensors' header checks). Before anything is allocated:

* a path must be a regular file (not a directory, device or pipe) of at most
  :data:`MAX_FILE_BYTES`; its header and table are read first and the total they declare must
  equal the file's size before the rest is read;
* the table declares at most as many sections as its bytes can hold, each name once, every
  length inside the file, nothing after the last section;
* the graph is JSON whose nodes only read earlier nodes, and outputs those nodes have (MXNet
  itself crashes on a bad output index), and MXNet must load it;
* every section is checked on its own (layers by
  :func:`~mxcompress.deep_compression.sparse_codec.parse_layer`: widths, counts, code
  lengths, component lengths against the payload; dense params: known dtype, at most 32
  dimensions, no zero dimension, their bytes inside the section);
* the params must be those of the graph -- ``w:NAME`` only for FullyConnected / Convolution
  weights, every dense param an argument or auxiliary state, nothing missing, nothing twice --
  with the shapes the graph gives them (the layers' attributes, and MXNet's shape inference
  from an input shape derived from the first layer; the file does not record the input's
  spatial size, so the dims that depend on it -- a first FullyConnected's input size, the
  input size of one after convolutions -- can only be checked for consistency);
* the weights together may hold at most :func:`decode_budget` elements (16 Mi, or 256 per byte
  of the file, whichever is more: a weight costs at least a bit per nonzero and a filler per
  ``2^gap_bits`` zeros between them, so only an all-but-empty or crafted file declares more;
  ``MXCOMPRESS_MXC_MAX_WEIGHTS`` sets another limit).

Decoded, every value must be finite and the params must pass
:func:`mxcompress.checkpoint.check_params_fit`. Every rejection is a :class:`ContainerError`
naming the file, the section and what is wrong.
"""
import json
import os
import stat
import struct
import zlib

import mxnet as mx
import numpy as np

from ..checkpoint import atomic_path
from ..graph import find_layers
from ..quantization.scalar import default_bits, scalar_quantize
from .sparse_codec import decode_layer, encode_layer, parse_layer
from .validate import (MIN_DECODE_WEIGHTS, WEIGHTS_PER_BYTE, ContainerError, check_against_graph,
                       check_fit, decode_budget, load_graph)

__all__ = ['MAGIC', 'VERSION', 'ContainerError', 'encode_model', 'decode_model', 'pack',
           'unpack', 'read_info', 'container_info', 'decode_budget', 'MAX_FILE_BYTES',
           'MIN_DECODE_WEIGHTS', 'WEIGHTS_PER_BYTE', 'READ_VERSIONS', 'MAX_GRAPH_JSON_BYTES',
           'encode_graph', 'decode_graph']

MAGIC = b'MXCPACK\x00'
#: the version written
VERSION = 2
#: the versions read (1: graph JSON as is; 2: graph with a codec byte, DEFLATE by default)
READ_VERSIONS = (1, 2)
#: graph codecs of version 2
GRAPH_RAW, GRAPH_DEFLATE = 0, 1
#: most bytes a version-2 graph section may inflate to
MAX_GRAPH_JSON_BYTES = 32 << 20
_HEADER = struct.Struct('<8sHII')
#: gap widths tried by ``gap_bits_*='auto'``
AUTO_GAP_BITS = tuple(range(2, 13))
#: weights compared per pass when deciding whether a codebook is exact (bounds the copy)
_COMPARE_BLOCK = 1 << 20
#: dense dtype code -> the dtype its bytes are stored in
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.float16}
#: codes whose param is restored to another dtype: 4 = a float32 param stored as float16
_RESTORED = {4: np.float32}
_HALF_OF_SINGLE = 4
_DTYPE_CODES = {np.dtype(v): k for k, v in _DTYPES.items() if k not in _RESTORED}
_TOC_ENTRY_MIN = 2 + 8 + 4           # name length, length, crc (an empty name)
#: largest ``.mxc`` file read (bytes)
MAX_FILE_BYTES = 4 << 30
#: most dimensions of a dense param
_MAX_DENSE_NDIM = 32


def _crc(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_graph(symbol, version=VERSION):
    """The ``graph`` section of ``symbol`` for a file of format ``version``.

    Version 1: the JSON of ``symbol.tojson()``. Version 2: codec byte :data:`GRAPH_DEFLATE`
    and the JSON without whitespace (same keys and order), raw DEFLATE at level 9.
    """
    text = symbol.tojson()
    if version == 1:
        return text.encode('utf-8')
    compact = json.dumps(json.loads(text), separators=(',', ':')).encode('utf-8')
    coder = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return bytes([GRAPH_DEFLATE]) + coder.compress(compact) + coder.flush()


def decode_graph(payload, version, where='file'):
    """The graph JSON bytes of a ``graph`` section (inverse of :func:`encode_graph`).

    Raises
    ------
    ContainerError
        An unknown codec, a stream that is not raw DEFLATE, inflates past
        :data:`MAX_GRAPH_JSON_BYTES`, stops early or has bytes after its end.
    """
    if version == 1:
        return payload
    if not payload:
        raise ContainerError('%s: section graph: empty (no codec byte)' % where)
    codec, body = payload[0], payload[1:]
    if codec == GRAPH_RAW:
        return body
    if codec != GRAPH_DEFLATE:
        raise ContainerError('%s: section graph: unknown codec %d (0 JSON, 1 DEFLATE)'
                             % (where, codec))
    inflater = zlib.decompressobj(-15)
    try:
        text = inflater.decompress(body, MAX_GRAPH_JSON_BYTES + 1)
    except zlib.error as err:
        raise ContainerError('%s: section graph: corrupt DEFLATE stream (%s)'
                             % (where, err)) from None
    if len(text) > MAX_GRAPH_JSON_BYTES:
        raise ContainerError('%s: section graph: inflates to more than %d bytes'
                             % (where, MAX_GRAPH_JSON_BYTES))
    if not inflater.eof:
        raise ContainerError('%s: section graph: truncated DEFLATE stream' % where)
    if inflater.unused_data:
        raise ContainerError('%s: section graph: %d bytes after the end of the DEFLATE stream'
                             % (where, len(inflater.unused_data)))
    return text


def _write_sections(sections, version=VERSION):
    toc = b''
    for name, payload in sections:
        raw = name.encode('utf-8')
        toc += struct.pack('<H', len(raw)) + raw + struct.pack('<QI', len(payload), _crc(payload))
    toc += struct.pack('<I', _crc(toc))
    head = _HEADER.pack(MAGIC, version, len(sections), len(toc))
    head += struct.pack('<I', _crc(head))
    return b''.join([head, toc] + [p for _, p in sections]), len(head), len(toc)  # one copy


def _parse_header(head, where):
    """``(count, toc_len, version)`` from the first ``_HEADER.size + 4`` bytes."""
    hsize = _HEADER.size + 4
    if len(head) < hsize:
        raise ContainerError('%s: truncated header (%d bytes, need %d)'
                             % (where, len(head), hsize))
    magic, version, count, toc_len = _HEADER.unpack_from(head)
    if magic != MAGIC:
        raise ContainerError('%s: not an .mxc file (bad magic %r)' % (where, magic))
    if struct.unpack_from('<I', head, _HEADER.size)[0] != _crc(head[:_HEADER.size]):
        raise ContainerError('%s: header checksum mismatch (corrupt header)' % where)
    if version not in READ_VERSIONS:
        raise ContainerError('%s: format version %d, this mxcompress reads versions %s'
                             % (where, version, ', '.join(map(str, READ_VERSIONS))))
    return count, toc_len, version


def _parse_toc(toc, count, toc_len, where):
    """``[(name, length, crc)]`` of a table of contents (its CRC and sizes checked)."""
    if len(toc) < toc_len or toc_len < 4:
        raise ContainerError('%s: truncated table of contents' % where)
    if struct.unpack_from('<I', toc, toc_len - 4)[0] != _crc(toc[:toc_len - 4]):
        raise ContainerError('%s: table of contents checksum mismatch (corrupt section table)'
                             % where)
    room = (toc_len - 4) // _TOC_ENTRY_MIN
    if count > room:
        raise ContainerError('%s: the header declares %d sections, a %d-byte table of contents '
                             'holds at most %d' % (where, count, toc_len, room))
    entries, pos, seen = [], 0, set()
    try:
        for _ in range(count):
            (n,) = struct.unpack_from('<H', toc, pos)
            if pos + 2 + n + 12 > toc_len - 4:
                raise ContainerError('%s: malformed table of contents (entry %d runs past it)'
                                     % (where, len(entries)))
            name = toc[pos + 2:pos + 2 + n].decode('utf-8')
            length, crc = struct.unpack_from('<QI', toc, pos + 2 + n)
            if name in seen:
                raise ContainerError('%s: section %r appears twice in the table of contents'
                                     % (where, name))
            seen.add(name)
            entries.append((name, length, crc))
            pos += 2 + n + 12
    except (struct.error, UnicodeDecodeError) as err:
        raise ContainerError('%s: malformed table of contents (%s)' % (where, err)) from None
    if pos != toc_len - 4:
        raise ContainerError('%s: malformed table of contents (%d unexpected bytes after %d '
                             'entries)' % (where, toc_len - 4 - pos, count))
    return entries


def _check_extent(entries, offset, total, where):
    """The sections declared from ``offset`` on must end exactly at ``total`` bytes."""
    for i, (name, length, _) in enumerate(entries):
        if offset + length > total:
            raise ContainerError('%s: section %d %r truncated (%d of %d bytes)'
                                 % (where, i, name, max(0, total - offset), length))
        offset += length
    if offset != total:
        raise ContainerError('%s: %d unexpected bytes after the last section'
                             % (where, total - offset))


def _read_sections(blob, where='file'):
    """Parse and verify; returns (list of (name, payload), header_bytes, toc_bytes, version)."""
    hsize = _HEADER.size + 4
    count, toc_len, version = _parse_header(blob[:hsize], where)
    entries = _parse_toc(blob[hsize:hsize + toc_len], count, toc_len, where)
    offset = hsize + toc_len
    _check_extent(entries, offset, len(blob), where)
    sections = []
    for i, (name, length, crc) in enumerate(entries):
        payload = blob[offset:offset + length]
        if _crc(payload) != crc:
            raise ContainerError('%s: section %d %r checksum mismatch (corrupt data)'
                                 % (where, i, name))
        sections.append((name, payload))
        offset += length
    return sections, hsize, toc_len, version


def _half_of_single(arr):
    """``arr`` (float32) as float16, or None when a value would overflow half precision."""
    with np.errstate(over='ignore'):
        half = arr.astype(np.float16)
    return half if np.isfinite(half).all() else None


def _encode_dense(params, float16=False):
    out = b''
    for (kind, name), value in params:
        arr = np.ascontiguousarray(value)
        if arr.dtype not in _DTYPE_CODES:
            arr = arr.astype(np.float32)
        code = _DTYPE_CODES[arr.dtype]
        half = _half_of_single(arr) if float16 and arr.dtype == np.float32 else None
        if half is not None:
            code, arr = _HALF_OF_SINGLE, half
        raw = name.encode('utf-8')
        out += struct.pack('<BH', kind, len(raw)) + raw
        out += struct.pack('<BB', code, arr.ndim)
        out += struct.pack('<%dI' % arr.ndim, *arr.shape) + arr.tobytes()
    return out


def _decode_dense(payload):
    """``[(kind, name, array, bytes)]`` of the dense section, every size checked first."""
    pos, items, seen = 0, [], set()
    while pos < len(payload):
        where = 'param %d' % len(items)
        if pos + 3 > len(payload):
            raise ValueError('%s: truncated entry header' % where)
        kind, n = struct.unpack_from('<BH', payload, pos)
        if kind not in (0, 1):
            raise ValueError('%s: kind %d (0 argument, 1 auxiliary state)' % (where, kind))
        if pos + 3 + n + 2 > len(payload):
            raise ValueError('%s: truncated entry header' % where)
        try:
            name = payload[pos + 3:pos + 3 + n].decode('utf-8')
        except UnicodeDecodeError:
            raise ValueError('%s: name is not UTF-8' % where) from None
        if not name or name in seen:
            raise ValueError('%s: name %r empty or repeated' % (where, name))
        seen.add(name)
        pos += 3 + n
        code, ndim = struct.unpack_from('<BB', payload, pos)
        if code not in _DTYPES:
            raise ValueError('param %s: unknown dtype code %d' % (name, code))
        if ndim > _MAX_DENSE_NDIM:
            raise ValueError('param %s: %d dimensions, at most %d' % (name, ndim,
                                                                     _MAX_DENSE_NDIM))
        if pos + 2 + 4 * ndim > len(payload):
            raise ValueError('param %s: truncated shape' % name)
        shape = struct.unpack_from('<%dI' % ndim, payload, pos + 2)
        if 0 in shape:
            raise ValueError('param %s: shape %s has a zero dimension' % (name, shape))
        pos += 2 + 4 * ndim
        dtype = np.dtype(_DTYPES[code])
        count = 1
        for d in shape:
            count *= d
        nbytes = count * dtype.itemsize
        if nbytes > len(payload) - pos:
            raise ValueError('param %s: shape %s of %s needs %d bytes, %d remain'
                             % (name, shape, dtype.name, nbytes, len(payload) - pos))
        value = np.frombuffer(payload, dtype, count=count, offset=pos).reshape(shape)
        if dtype.kind == 'f' and not np.isfinite(value).all():
            raise ValueError('param %s holds non-finite values (NaN or inf)' % name)
        if code in _RESTORED:
            value = value.astype(_RESTORED[code])
        items.append((kind, name, value, 3 + n + 2 + 4 * ndim + nbytes))
        pos += nbytes
    return items


def _check_finite(symbol, arg_params, aux_params, plan):
    """Refuse NaN / inf in any param (k-means would spread it over the whole layer)."""
    layers = {l.weight: l.name for l in find_layers(symbol)}
    for kind, params in (('argument', arg_params), ('auxiliary state', aux_params or {})):
        for name in sorted(params):
            value = params[name]
            value = value.asnumpy() if hasattr(value, 'asnumpy') else np.asarray(value)
            if value.dtype.kind in 'fc' and not np.isfinite(value).all():
                bad = int(value.size - np.count_nonzero(np.isfinite(value)))
                raise ValueError('%s %s%s holds %d non-finite value(s) (NaN or inf) of %d; '
                                 'refusing to pack it (fix or retrain the model first)'
                                 % (kind, name, ' (layer %s)' % layers[name] if name in layers
                                    else '', bad, value.size))
    for name, p in sorted((plan or {}).items()):
        if not np.isfinite(np.asarray(p['codebook'], np.float64)).all():
            raise ValueError('the codebook of %s%s holds non-finite values (NaN or inf); '
                             'refusing to pack it' % (name, ' (layer %s)' % layers[name]
                                                      if name in layers else ''))


def _plan_layer(layer, values, bits, quantize):
    """Codebook and index of one weight (exact when it has few enough values, else k-means).

    Returns
    -------
    entry : dict
        ``layer``, ``op``, ``bits``, ``codebook``, ``index`` (uint8 / uint16, as
        :func:`~mxcompress.quantization.scalar.scalar_quantize` gives it).
    lossy : bool
        Whether the codebook approximates the weight (k-means).
    """
    codebook, index = scalar_quantize(values, bits, layer=layer.name)
    flat_index, flat_values = index.ravel(), values.ravel()
    lossy = any(not np.array_equal(codebook[flat_index[lo:lo + _COMPARE_BLOCK]],
                                   flat_values[lo:lo + _COMPARE_BLOCK])
                for lo in range(0, flat_index.size, _COMPARE_BLOCK))   # no full-size copy
    if lossy and quantize == 'never':
        raise ValueError('layer %s has %d distinct nonzero values, more than the %d a '
                         '%d-bit codebook holds; quantise it first (mxcompress '
                         'deep-compress) or pass --quantize auto'
                         % (layer.name, len(np.unique(values[values != 0])),
                            (1 << bits) - 1, bits))
    return {'layer': layer.name, 'op': layer.op, 'bits': bits, 'codebook': codebook,
            'index': index.astype(np.uint8 if bits <= 8 else np.uint16, copy=False)}, lossy


def encode_model(symbol, arg_params, aux_params, plan=None, conv_bits=8, fc_bits=5,
                 bits=None, gap_bits_conv=8, gap_bits_fc=5, huffman=True, storage='codebook',
                 quantize='auto', format_version=VERSION, dense_float16=False):
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
    format_version : {1, 2}
        The file format: 2 (default) DEFLATE-codes the graph; 1 is what mxcompress wrote
        before (for readers that only know it).
    dense_float16 : bool
        Store float32 dense params (biases, BatchNorm) as float16, restored as float32
        (lossy: relative error <= 2^-11; a param that would overflow stays float32).

    Returns
    -------
    blob : bytes
    lossy : list of str
        Layers that were k-means quantised here (their weights change).

    Raises
    ------
    ValueError
        Bad options, a layer with too many values for ``quantize='never'``, or a param holding
        NaN or infinity (refused before any quantisation).
    """
    if storage not in ('codebook', 'float'):
        raise ValueError("storage must be 'codebook' or 'float', got %r" % storage)
    if quantize not in ('auto', 'never'):
        raise ValueError("quantize must be 'auto' or 'never', got %r" % quantize)
    if format_version not in READ_VERSIONS:
        raise ValueError('format_version must be one of %s, got %r'
                         % (', '.join(map(str, READ_VERSIONS)), format_version))
    _check_finite(symbol, arg_params, aux_params, plan)
    layers = {l.weight: l for l in find_layers(symbol) if l.weight in arg_params}
    lossy, plan, bits = [], plan or {}, bits or {}
    sections = [('graph', encode_graph(symbol, format_version))]
    for w, layer in layers.items():   # one layer's index in memory at a time
        gap_bits = gap_bits_conv if layer.op == 'Convolution' else gap_bits_fc
        candidates = AUTO_GAP_BITS if gap_bits == 'auto' else (gap_bits,)
        if storage == 'codebook':
            p = plan.get(w)
            if p is None:
                b = bits.get(layer.name, bits.get(w, default_bits(layer.op, conv_bits,
                                                                  fc_bits)))
                p, inexact = _plan_layer(layer, arg_params[w].asnumpy(), b, quantize)
                if inexact:
                    lossy.append(layer.name)
            payloads = [encode_layer(p['index'], p['bits'], g, huffman, codebook=p['codebook'],
                                     name=layer.name) for g in candidates]
            del p
        else:
            payloads = [encode_layer(arg_params[w].asnumpy(), 0, g, huffman, name=layer.name)
                        for g in candidates]
        sections.append(('w:' + w, min(payloads, key=len)))
    dense = [((0, k), v.asnumpy()) for k, v in sorted(arg_params.items()) if k not in layers]
    dense += [((1, k), v.asnumpy()) for k, v in sorted((aux_params or {}).items())]
    sections.append(('dense', _encode_dense(dense, dense_float16)))
    return _write_sections(sections, format_version)[0], lossy


def _parse_model(blob, where, max_weights=None):
    """Everything but the weights' contents, checked: the bounds of the module docstring."""
    sections, hsize, toc_len, version = _read_sections(blob, where)
    names = [n for n, _ in sections]
    if not names or names[0] != 'graph' or names[-1] != 'dense' or len(names) < 2:
        shown = names if len(names) <= 8 else names[:8] + ['... %d more' % (len(names) - 8)]
        raise ContainerError('%s: sections %s, expected graph ... dense' % (where, shown))
    symbol = load_graph(decode_graph(sections[0][1], version, where), where)
    layers, payloads = {}, {}
    for name, payload in sections[1:-1]:
        if not name.startswith('w:') or len(name) == 2:
            raise ContainerError('%s: unknown section %r' % (where, name))
        try:
            layers[name[2:]] = parse_layer(payload)
        except (ValueError, struct.error) as err:
            raise ContainerError('%s: section %r: %s' % (where, name, err)) from None
        payloads[name[2:]] = payload
    try:
        dense = _decode_dense(sections[-1][1])
    except (ValueError, struct.error) as err:
        raise ContainerError("%s: section 'dense': %s" % (where, err)) from None
    limit = decode_budget(len(blob)) if max_weights is None else max_weights
    check_against_graph(symbol, layers, dense, where, limit, len(blob))
    return symbol, sections, payloads, dense, hsize, toc_len, version


def decode_model(blob, where='file', max_weights=None):
    """Parse ``.mxc`` bytes into ``(symbol, arg_params, aux_params)`` (NDArrays).

    Parameters
    ----------
    blob : bytes
    where : str
        Names the file in error messages.
    max_weights : int or None
        Most weight elements the layers may decode to (default :func:`decode_budget`).

    Raises
    ------
    ContainerError
        A truncated, corrupt, inconsistent or oversized file (see the module docstring);
        nothing is allocated in proportion to a declared size before it is checked.
    """
    symbol, _, payloads, dense, _, _, _ = _parse_model(blob, where, max_weights)
    arg_params, aux_params = {}, {}
    for name, payload in payloads.items():
        try:
            weight = decode_layer(payload)[0]
        except (ValueError, struct.error) as err:
            raise ContainerError('%s: section %r: %s' % (where, 'w:' + name, err)) from None
        arg_params[name] = mx.nd.array(weight, dtype=np.float32)
    for kind, name, value, _ in dense:
        (aux_params if kind else arg_params)[name] = mx.nd.array(value, dtype=value.dtype)
    check_fit(symbol, arg_params, aux_params, where)
    return symbol, arg_params, aux_params


def container_info(blob, where='file', max_weights=None):
    """Byte accounting of ``.mxc`` bytes.

    The file is verified as :func:`decode_model` verifies it, but the weights are not built
    (memory in proportion to the file, not to the model).

    Returns
    -------
    dict
        ``format_version``, ``total_bytes``, ``graph_bytes`` (the section as stored: DEFLATE
        coded in version 2), ``graph_json_bytes`` (the JSON it holds), ``param_bytes``
        (= total - graph), ``header_bytes``,
        ``toc_bytes``, ``dense_bytes``, ``layers``: per weight its components in bytes
        (``codebook``, ``values``, ``indices``, ``gaps``, ``huffman_tables``, ``layer_header``,
        ``total``), ``bits``, ``gap_bits``, ``k``, ``nonzeros``, ``entries`` (with fillers),
        ``fillers``, ``weights``, ``coding``, the theoretical ``log2(k)/32`` and the real
        bits per weight and per nonzero; ``dense``: bytes per dense param.

    Raises
    ------
    ContainerError
        As :func:`decode_model`.
    """
    _, sections, payloads, dense, hsize, toc_len, version = _parse_model(blob, where,
                                                                         max_weights)
    info = {'format_version': version, 'total_bytes': len(blob),
            'graph_bytes': len(sections[0][1]), 'header_bytes': hsize, 'toc_bytes': toc_len,
            'graph_json_bytes': len(decode_graph(sections[0][1], version, where)),
            'layers': {}, 'dense': {}}
    info['param_bytes'] = info['total_bytes'] - info['graph_bytes']
    for name, payload in payloads.items():
        try:
            _, meta = decode_layer(payload, dense=False)
        except (ValueError, struct.error) as err:
            raise ContainerError('%s: section %r: %s' % (where, 'w:' + name, err)) from None
        meta['total'] = len(payload)
        info['layers'][name] = meta
    for kind, name, _, nbytes in dense:
        info['dense'][name] = nbytes
    info['dense_bytes'] = len(sections[-1][1])
    return info


def pack(path, symbol, arg_params, aux_params, **kwargs):
    """Write an ``.mxc`` file atomically; returns ``(info, lossy_layers)``.

    Keyword arguments are those of :func:`encode_model`. The file is verified (as
    :func:`read_info` would) before it is written; nothing is written on an error.

    Raises
    ------
    ValueError
        ``path`` is a directory, the model cannot be encoded (see :func:`encode_model`) or
        the file cannot be written (:class:`ContainerError`).
    """
    if os.path.isdir(path) or str(path).endswith(('/', os.sep)):
        raise ContainerError('%s: is a directory; give the name of the .mxc file to write'
                             % path)
    blob, lossy = encode_model(symbol, arg_params, aux_params, **kwargs)
    info = container_info(blob, path, max_weights=float('inf'))
    try:
        with atomic_path(path) as tmp:
            with open(tmp, 'wb') as f:
                f.write(blob)
    except OSError as err:
        raise ContainerError('cannot write %s: %s' % (path, err)) from None
    return info, lossy


def _read(path, limit=None):
    """The bytes of the ``.mxc`` file ``path``, sizes checked before they are read.

    Only a regular file of at most ``limit`` (:data:`MAX_FILE_BYTES`) bytes is read; its
    header and table of contents come first, and the total they declare must equal the file's
    size before the sections are read.
    """
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) |
                     getattr(os, 'O_CLOEXEC', 0))
    except OSError as err:
        raise ContainerError('cannot read %s: %s' % (path, err)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ContainerError('%s: is a directory, not an .mxc file' % path)
        if not stat.S_ISREG(st.st_mode):
            raise ContainerError('%s: not a regular file (a device, pipe or socket?); an .mxc '
                                 'file must be a regular file' % path)
        size = st.st_size
        if size > limit:
            raise ContainerError('%s: %d bytes, more than the %d-byte limit of an .mxc file'
                                 % (path, size, limit))
    except BaseException:
        os.close(fd)
        raise
    try:
        with os.fdopen(fd, 'rb') as f:
            hsize = _HEADER.size + 4
            head = f.read(hsize)
            count, toc_len, _ = _parse_header(head, path)
            if hsize + toc_len > size:
                raise ContainerError('%s: truncated table of contents (%d bytes declared, the '
                                     'file has %d after its header)'
                                     % (path, toc_len, max(0, size - hsize)))
            toc = f.read(toc_len)
            entries = _parse_toc(toc, count, toc_len, path)
            _check_extent(entries, hsize + toc_len, size, path)
            rest = f.read(size - hsize - toc_len + 1)   # one more: a file that grew
            blob = head + toc + rest
            if len(blob) != size:
                raise ContainerError('%s: changed while being read (%d bytes, then %d)'
                                     % (path, size, len(blob)))
            return blob
    except OSError as err:
        raise ContainerError('cannot read %s: %s' % (path, err)) from None


def unpack(path, max_weights=None):
    """Read an ``.mxc`` file: ``(symbol, arg_params, aux_params)`` of a standard checkpoint.

    Raises
    ------
    ContainerError
        Not a regular file, too large, or as :func:`decode_model`.
    """
    return decode_model(_read(path), path, max_weights)


def read_info(path, max_weights=None):
    """:func:`container_info` of an ``.mxc`` file."""
    return container_info(_read(path), path, max_weights)


def info_json(info):
    """``info`` as indented JSON text."""
    return json.dumps(info, indent=2, sort_keys=True)
