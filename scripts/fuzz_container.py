"""Fuzz the ``.mxc`` decoder with structured mutations of valid files.

Random bytes never get past the CRC32s, so every mutation here is made on the *parsed* file
and the file is rebuilt with fresh checksums (unless the mutation is about the checksums):
flip / set / insert / delete bytes inside one section, set a declared size, count, shape,
width or Huffman code length to an interesting value (0, 1, 2^16, 2^32 - 1, ...), drop,
duplicate, rename or reorder sections, cut the file, and edit the graph JSON (attributes,
wiring, names). 1 to 3 mutations are stacked on one of a few small seed models.

The decoder (``decode_model`` and ``container_info``) must either succeed or raise
:class:`~mxcompress.deep_compression.container.ContainerError`; anything else -- another
exception, a ``MemoryError`` under the address-space limit (``--memory-mb`` above what the
process holds at start), a run over ``--exec-timeout`` seconds, or a dead process (segfault,
abort) -- is a crash. The inputs of crashes are saved in ``--crash-dir``.

Usage::

    python scripts/fuzz_container.py --seconds 60            # prints one JSON object
    python scripts/fuzz_container.py --make-corpus tests/data/mxc_corpus

The executions run in a worker process that is restarted (with the next seed) if it dies
and after ``--recycle`` executions (MXNet leaks a few KB per ``Symbol.tojson``, which would
otherwise eat the memory cap in a long run);
the test suite imports the mutators (:func:`mutate`, :func:`seed_blobs`) and drives them
with hypothesis (tests/test_container_fuzz.py).
"""
import argparse
import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MAGIC = b'MXCPACK\x00'
_HEADER = struct.Struct('<8sHII')
_LAYER_HEAD = struct.Struct('<BBBBBII')
#: values that break sizes: zero, one, powers of two and their neighbours, u8/u16/u32 maxima
INTERESTING = (0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 20, 21, 31, 32, 33, 64, 127, 128, 255, 256,
               1023, 4096, 0x7fff, 0x8000, 0xffff, 0x10000, 32768, 65536, 1 << 20, 1 << 24,
               0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
BYTE_VALUES = (0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff)


# ---------------------------------------------------------------------------- file layout

def crc(data):
    return zlib.crc32(bytes(data)) & 0xFFFFFFFF


def split_sections(blob):
    """``[(name, payload), ...]`` of a valid ``.mxc`` blob (no checks: the seeds are valid)."""
    _, _, count, toc_len = _HEADER.unpack_from(blob)
    hsize = _HEADER.size + 4
    toc = blob[hsize:hsize + toc_len]
    entries, pos = [], 0
    for _ in range(count):
        (n,) = struct.unpack_from('<H', toc, pos)
        name = toc[pos + 2:pos + 2 + n].decode('utf-8')
        length, _ = struct.unpack_from('<QI', toc, pos + 2 + n)
        entries.append((name, length))
        pos += 2 + n + 12
    offset, sections = hsize + toc_len, []
    for name, length in entries:
        sections.append((name, bytes(blob[offset:offset + length])))
        offset += length
    return sections


def build(sections, version=1, count=None, magic=MAGIC, lengths=None, toc_tail=b'',
          toc_len_delta=0, crcs=True):
    """An ``.mxc`` blob from ``[(name, payload)]`` with recomputed CRCs.

    ``count`` / ``lengths`` (index -> declared length) / ``toc_len_delta`` override what the
    header and the table declare; ``toc_tail`` is extra bytes at the end of the table.
    """
    toc = b''
    for i, (name, payload) in enumerate(sections):
        raw = name.encode('utf-8', 'surrogatepass')
        length = (lengths or {}).get(i, len(payload))
        toc += struct.pack('<H', len(raw) & 0xffff) + raw + struct.pack(
            '<QI', length, crc(payload) if crcs else 0)
    toc += toc_tail
    toc += struct.pack('<I', crc(toc))
    head = _HEADER.pack(magic, version, len(sections) if count is None else count,
                        (len(toc) + toc_len_delta) & 0xffffffff)
    head += struct.pack('<I', crc(head))
    return head + toc + b''.join(bytes(p) for _, p in sections)


# ----------------------------------------------------------------------------- seed models

def seed_models():
    """Small models ``(name, symbol, arg_params, aux_params, encode kwargs)`` to mutate."""
    import mxnet as mx
    import numpy as np
    rng = np.random.RandomState(0)

    def sparse(shape, levels, density=0.5):
        w = rng.choice(levels, size=shape).astype(np.float32)
        w[rng.rand(*shape) > density] = 0
        return w

    data = mx.sym.Variable('data')
    fc1 = mx.sym.FullyConnected(data, num_hidden=8, name='fc1')
    fc2 = mx.sym.FullyConnected(mx.sym.Activation(fc1, act_type='relu', name='relu1'),
                                num_hidden=3, name='fc2')
    mlp = mx.sym.SoftmaxOutput(fc2, name='softmax')
    levels = [-0.5, -0.25, 0.25, 0.5, 1.0]
    mlp_args = {'fc1_weight': sparse((8, 12), levels, 0.3), 'fc1_bias': rng.randn(8) * 0.1,
                'fc2_weight': sparse((3, 8), levels, 0.6), 'fc2_bias': rng.randn(3) * 0.1}
    mlp_args['fc1_weight'][0, :] = 0                      # a long run of zeros: fillers
    mlp_args['fc1_weight'][7, 11] = 1.0
    conv = mx.sym.Convolution(data, kernel=(3, 3), num_filter=4, name='conv1')
    bn = mx.sym.BatchNorm(conv, name='bn1')
    pool = mx.sym.Pooling(mx.sym.Activation(bn, act_type='relu'), kernel=(2, 2), stride=(2, 2),
                          pool_type='max', name='pool1')
    fc = mx.sym.FullyConnected(mx.sym.Flatten(pool), num_hidden=3, name='fc')
    cnn = mx.sym.SoftmaxOutput(fc, name='softmax')       # data (1, 1, 6, 6)
    cnn_args = {'conv1_weight': sparse((4, 1, 3, 3), levels, 0.7), 'conv1_bias': np.zeros(4),
                'bn1_gamma': np.ones(4), 'bn1_beta': np.zeros(4),
                'fc_weight': sparse((3, 16), levels, 0.5), 'fc_bias': np.zeros(3)}
    cnn_aux = {'bn1_moving_mean': rng.randn(4) * 0.1, 'bn1_moving_var': rng.rand(4) + 0.5}

    def nd(params):
        return {k: mx.nd.array(v, dtype=np.float32) for k, v in params.items()}

    return [
        ('mlp-huffman', mlp, nd(mlp_args), {}, dict(fc_bits=3, gap_bits_fc=2)),
        ('mlp-bitpacked', mlp, nd(mlp_args), {}, dict(fc_bits=3, gap_bits_fc=3, huffman=False)),
        ('mlp-float', mlp, nd(mlp_args), {}, dict(storage='float', gap_bits_fc=2)),
        ('cnn-bn', cnn, nd(cnn_args), nd(cnn_aux), dict(conv_bits=3, fc_bits=3, gap_bits_conv=2,
                                                         gap_bits_fc=4)),
    ]


def seed_blobs(version=None):
    """``{name: valid .mxc bytes}`` of :func:`seed_models`.

    ``version`` None: in the format written now (version 2, DEFLATE-coded graph) and, for
    ``mlp-huffman``, in version 1 as well (``mlp-huffman-v1``); 1 or 2: all in that format.
    """
    from mxcompress.deep_compression.container import encode_model
    blobs = {name: encode_model(sym, args, aux, format_version=version or 2, **kw)[0]
             for name, sym, args, aux, kw in seed_models()}
    if version is None:
        name, sym, args, aux, kw = seed_models()[0]
        blobs[name + '-v1'] = encode_model(sym, args, aux, format_version=1, **kw)[0]
    return blobs


def blob_version(blob):
    """The format version a valid blob declares."""
    return _HEADER.unpack_from(blob)[1]


def graph_json(payload, version):
    """The JSON bytes of a graph section (None where it is not a valid DEFLATE section)."""
    if version == 1:
        return payload
    if not payload or payload[0] != 1:
        return payload[1:] if payload and payload[0] == 0 else None
    try:
        inflater = zlib.decompressobj(-15)
        return inflater.decompress(payload[1:], 1 << 20)
    except zlib.error:
        return None


def graph_section(text, version):
    """A graph section holding the JSON bytes ``text`` in format ``version``."""
    if version == 1:
        return text
    coder = zlib.compressobj(9, zlib.DEFLATED, -15)
    return b'\x01' + coder.compress(text) + coder.flush()


# -------------------------------------------------------------------------------- mutators

def _pick(draw, seq):
    return seq[draw(len(seq))]


def _value(draw, original, width):
    """An interesting replacement for an unsigned field of ``width`` bytes."""
    top = (1 << (8 * width)) - 1
    kind = draw(6)
    if kind == 0:
        return min(top, original + 1)
    if kind == 1:
        return max(0, original - 1)
    if kind == 2:
        return min(top, original * 2 + draw(2))
    if kind == 3:
        return draw(min(top, 1 << 20) + 1)
    return min(top, _pick(draw, INTERESTING))


def layer_fields(payload):
    """Mutable fields of a layer payload: ``[(name, offset, width)]`` (as far as it parses)."""
    fields = [('storage', 0, 1), ('ndim', 1, 1), ('index_bits', 2, 1), ('gap_bits', 3, 1),
              ('flags', 4, 1), ('k', 5, 4), ('entries', 9, 4)]
    try:
        storage, ndim, _, _, flags, _, _ = _LAYER_HEAD.unpack_from(payload)
        pos = _LAYER_HEAD.size
        fields += [('dim%d' % i, pos + 4 * i, 4) for i in range(ndim)
                   if pos + 4 * i + 4 <= len(payload)]
        pos += 4 * ndim
        parts = 3 if storage == 0 else 2
        for c in range(parts):
            (n,) = struct.unpack_from('<I', payload, pos)
            fields.append(('length%d' % c, pos, 4))
            start = pos + 4
            huffman = (c == 1 and flags & 1) or (c == parts - 1 and flags & 2)
            if c > 0 and huffman and start + 4 <= len(payload):
                (used,) = struct.unpack_from('<I', payload, start)
                fields.append(('huffman_used%d' % c, start, 4))
                fields += [('code_length%d_%d' % (c, j), start + 4 + j, 1)
                           for j in range(min(used, 64)) if start + 4 + j < len(payload)]
            pos = start + n
    except struct.error:
        pass
    return fields


def dense_fields(payload):
    """Mutable fields of the dense section: ``[(name, offset, width)]``."""
    fields, pos = [], 0
    try:
        while pos < len(payload):
            kind, n = struct.unpack_from('<BH', payload, pos)
            fields += [('kind', pos, 1), ('name_length', pos + 1, 2)]
            pos += 3 + n
            code, ndim = struct.unpack_from('<BB', payload, pos)
            fields += [('dtype', pos, 1), ('ndim', pos + 1, 1)]
            shape = struct.unpack_from('<%dI' % ndim, payload, pos + 2)
            fields += [('dim%d' % i, pos + 2 + 4 * i, 4) for i in range(ndim)]
            size = 1
            for d in shape:
                size *= d
            pos += 2 + 4 * ndim + size * (4 if code in (0, 2) else 2 if code == 1 else 1)
    except struct.error:
        pass
    return fields


def _set_field(draw, payload, fields):
    if not fields:
        return _byte_mutation(draw, payload)
    name, offset, width = _pick(draw, fields)
    if offset + width > len(payload):
        return _byte_mutation(draw, payload)
    fmt = {1: '<B', 2: '<H', 4: '<I'}[width]
    (old,) = struct.unpack_from(fmt, payload, offset)
    if name.startswith('code_length'):
        new = _pick(draw, (0, 1, 2, 19, 20, 21, 24, 31, 32, 33, 64, 255))
    else:
        new = _value(draw, old, width)
    out = bytearray(payload)
    struct.pack_into(fmt, out, offset, new)
    return bytes(out)


def _byte_mutation(draw, payload):
    out = bytearray(payload)
    kind = draw(5)
    if kind == 0 and out:                       # flip one bit
        i = draw(len(out))
        out[i] ^= 1 << draw(8)
    elif kind == 1 and out:                     # set a byte to an edge value
        out[draw(len(out))] = _pick(draw, BYTE_VALUES)
    elif kind == 2:                             # insert bytes
        i = draw(len(out) + 1)
        out[i:i] = bytes(_pick(draw, BYTE_VALUES) for _ in range(1 + draw(8)))
    elif kind == 3 and out:                     # delete a range
        i = draw(len(out))
        del out[i:i + 1 + draw(16)]
    elif out:                                   # overwrite 4 bytes with an interesting u32
        i = draw(len(out))
        out[i:i + 4] = struct.pack('<I', _pick(draw, INTERESTING))
    return bytes(out)


def _graph_mutation(draw, payload, version=1):
    """Edit the graph's JSON (inflated and deflated again in version 2), or its codec."""
    text = graph_json(payload, version)
    if version != 1 and draw(4) == 0:           # the codec byte / stream itself
        op = draw(4)
        if op == 0:
            return bytes([_pick(draw, (0, 2, 255))]) + payload[1:]
        if op == 1:                             # a 1000:1 stream: 4 MB of spaces
            coder = zlib.compressobj(9, zlib.DEFLATED, -15)
            return b'\x01' + coder.compress(b' ' * (4 << 20)) + coder.flush()
        if op == 2:
            return payload[:draw(len(payload) + 1)]
        return payload + bytes(1 + draw(8))
    try:
        graph = json.loads(text.decode('utf-8'))
        nodes = graph['nodes']
    except (ValueError, KeyError, TypeError, AttributeError):
        return _byte_mutation(draw, payload)
    kind = draw(8)
    node = nodes[draw(len(nodes))] if nodes else {}
    if kind <= 1 and isinstance(node, dict):    # an attribute
        attrs = node.setdefault('attrs', {})
        key = _pick(draw, sorted(attrs) + ['num_hidden', 'num_filter', 'kernel', 'no_bias',
                                           'flatten', 'num_group', 'stride', 'pad'])
        attrs[key] = _pick(draw, ('0', '1', '-1', '3', '8', '65536', '4294967295', '1e30',
                                  'True', 'False', '(0, 0)', '(3, 3)', '(65536, 65536)',
                                  '(1,)', '', 'x', '[]'))
    elif kind == 2 and isinstance(node, dict) and node.get('inputs'):  # rewire an input
        entry = node['inputs'][draw(len(node['inputs']))]
        if isinstance(entry, list) and entry:
            entry[draw(len(entry))] = _pick(draw, (-1, 0, 1, 2, len(nodes) - 1, len(nodes),
                                                   len(nodes) + 5, 1 << 31))
    elif kind == 3 and nodes:                   # drop a node
        del nodes[draw(len(nodes))]
    elif kind == 4 and isinstance(node, dict):  # rename or retype a node
        if draw(2):
            node['name'] = _pick(draw, ('data', 'fc1_weight', 'fc2_weight', 'x', ''))
        else:
            node['op'] = _pick(draw, ('null', 'FullyConnected', 'Convolution', 'Flatten',
                                      'BatchNorm', 'NoSuchOp', ''))
    elif kind == 5:                             # arg_nodes / heads
        key = _pick(draw, ('arg_nodes', 'heads', 'node_row_ptr'))
        graph[key] = _pick(draw, ([], [0], [[0, 0, 0]], [[len(nodes) + 3, 0, 0]],
                                  [[0, 7, 0]], [-1], None, 'x'))
    elif kind == 6:                             # the version attribute
        graph['attrs'] = {'mxnet_version': ['int', _pick(draw, (0, 800, 10000, 10900,
                                                                 99999999))]}
    else:
        return _byte_mutation(draw, payload)
    return graph_section(json.dumps(graph).encode('utf-8'), version)


def mutate(draw, blob, donors=()):
    """One structurally mutated version of a valid ``blob``.

    ``draw(n)`` returns an int in ``0 .. n-1`` (random.Random.randrange or a hypothesis
    draw); ``donors`` are other valid blobs whose sections may be spliced in.
    """
    sections = [[name, payload] for name, payload in split_sections(blob)]
    version = blob_version(blob)
    header = {'version': version}
    post = []
    for _ in range(1 + draw(3)):
        kind = draw(12)
        i = draw(len(sections)) if sections else 0
        if kind <= 3 and sections:              # a field of a layer / dense / graph section
            name, payload = sections[i]
            if name.startswith('w:'):
                sections[i][1] = _set_field(draw, payload, layer_fields(payload))
            elif name == 'dense':
                sections[i][1] = _set_field(draw, payload, dense_fields(payload))
            else:
                sections[i][1] = _graph_mutation(draw, payload, version)
        elif kind <= 5 and sections:            # bytes inside one section
            sections[i][1] = _byte_mutation(draw, sections[i][1])
        elif kind == 6 and sections:            # drop / duplicate / swap / rename a section
            op = draw(4)
            if op == 0:
                del sections[i]
            elif op == 1:
                sections.insert(draw(len(sections) + 1), list(sections[i]))
            elif op == 2:
                j = draw(len(sections))
                sections[i], sections[j] = sections[j], sections[i]
            else:
                sections[i][0] = _pick(draw, ('graph', 'dense', 'w:', 'w:fc1_weight',
                                              'w:fc2_weight', 'w:fc1_bias', 'w:nope', 'junk',
                                              'w:conv1_weight', 'w:fc_weight'))
        elif kind == 7 and donors:              # splice a section of another model
            donor = split_sections(donors[draw(len(donors))])
            name, payload = donor[draw(len(donor))]
            if sections:
                sections[i][1] = payload
        elif kind == 8:                         # header / table fields
            op = draw(5)
            if op == 0:
                header['count'] = _value(draw, len(sections), 4)
            elif op == 1:
                header['lengths'] = {i: _value(draw, len(sections[i][1]) if sections else 0, 8)}
            elif op == 2:
                header['toc_len_delta'] = _pick(draw, (-4, -1, 1, 4, 1 << 20, 0xffffff00))
            elif op == 3:
                header['version'] = _pick(draw, (0, 1, 2, 3, 0xffff))
            else:
                header['toc_tail'] = bytes(1 + draw(8))
        elif kind == 9:                         # a consistent size bomb: graph and layer agree
            post.append('bomb')
        elif kind == 10:                        # cut or extend the file after rebuilding
            post.append('cut' if draw(2) else 'extend')
        else:                                   # CRCs left stale (the flip must be caught)
            post.append('stale')
    if 'bomb' in post:
        sections = _bomb(draw, sections, version)
    out = build([(n, p) for n, p in sections], crcs='stale' not in post, **header)
    if 'cut' in post and out:
        out = out[:draw(len(out))]
    if 'extend' in post:
        out = out + bytes(1 + draw(64))
    if 'stale' in post and out:
        bad = bytearray(out)
        bad[draw(len(bad))] ^= 0xff
        out = bytes(bad)
    return out


def _bomb(draw, sections, version=1):
    """Make the first layer huge in both the graph and its section (0 entries kept)."""
    big = _pick(draw, (65536, 1 << 20, 1 << 24, 0x7fffffff))
    for item in sections:
        if item[0] == 'graph':
            try:
                graph = json.loads(graph_json(item[1], version).decode('utf-8'))
                for node in graph['nodes']:
                    attrs = node.get('attrs') or {}
                    for key in ('num_hidden', 'num_filter'):
                        if key in attrs:
                            attrs[key] = str(big)
                item[1] = graph_section(json.dumps(graph).encode('utf-8'), version)
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        elif item[0].startswith('w:') and len(item[1]) >= _LAYER_HEAD.size + 4:
            payload = bytearray(item[1])
            struct.pack_into('<I', payload, _LAYER_HEAD.size, big)
            if payload[1] >= 2:
                struct.pack_into('<I', payload, _LAYER_HEAD.size + 4, big)
            item[1] = bytes(payload)
    return sections


# ------------------------------------------------------------------------------- execution

def vm_bytes():
    """Current virtual memory size of this process (bytes), 0 where unknown."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmSize:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class ExecTimeout(Exception):
    """An execution ran past its time limit."""


def _alarm(signum, frame):
    raise ExecTimeout('execution timed out')


def execute(blob, timeout=10.0):
    """Decode ``blob`` both ways; returns ``('ok' | 'ContainerError', None)`` or
    ``('crash', (signature, message))``, the signature being the exception type and the two
    innermost frames."""
    from mxcompress.deep_compression.container import (ContainerError, container_info,
                                                       decode_model)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    outcome = 'ok'
    try:
        for fn in (decode_model, container_info):
            try:
                fn(blob, 'fuzz.mxc')
            except ContainerError:
                outcome = 'ContainerError'
    except BaseException as err:  # noqa: B902 -- everything else is the finding
        if isinstance(err, KeyboardInterrupt):
            raise
        frames = traceback.extract_tb(err.__traceback__)
        where = ['%s:%d' % (os.path.basename(f.filename), f.lineno) for f in frames[-2:]]
        return 'crash', ('%s at %s' % (type(err).__name__, ' < '.join(reversed(where))),
                         str(err).split('\n')[0][:200])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return outcome, None


def limit_memory(extra_mb):
    """Cap this process's address space at what it holds now + ``extra_mb``."""
    if extra_mb <= 0:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm_bytes() + extra_mb * (1 << 20)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def worker(args):
    """Mutate and execute until time or examples run out; one JSON line of results."""
    import mxnet  # noqa: F401 -- load the library before the memory cap is measured
    blobs = seed_blobs()
    names = sorted(blobs)
    donors = [blobs[n] for n in names]
    execute(donors[0])                       # warm up MXNet's threads before the cap
    limit_memory(args.memory_mb)
    rng = random.Random(args.seed)
    stats = {'executions': 0, 'ok': 0, 'ContainerError': 0, 'crashes': []}
    deadline = time.time() + args.seconds
    current = os.path.join(args.state_dir, 'current.mxc')
    progress = os.path.join(args.state_dir, 'stats.json')
    while time.time() < deadline and (not args.examples or stats['executions'] < args.examples) \
            and stats['executions'] < args.recycle:
        blob = mutate(rng.randrange, blobs[names[rng.randrange(len(names))]], donors)
        with open(current, 'wb') as f:
            f.write(blob)
        outcome, signature = execute(blob, args.exec_timeout)
        stats['executions'] += 1
        if outcome == 'crash':
            signature, message = signature
            stats['crashes'].append({'signature': signature, 'example': message,
                                     'input': _save_crash(args, blob)})
        else:
            stats[outcome] += 1
        if outcome == 'crash' or stats['executions'] % 25 == 0:
            _write_json(progress, stats)    # what a parent reads if this process dies
    _write_json(progress, stats)
    os.remove(current)


def _write_json(path, value):
    with open(path + '.tmp', 'w') as f:
        json.dump(value, f)
    os.replace(path + '.tmp', path)


def _save_crash(args, blob):
    os.makedirs(args.crash_dir, exist_ok=True)
    path = os.path.join(args.crash_dir, 'crash-%08x.mxc' % crc(blob))
    with open(path, 'wb') as f:
        f.write(blob)
    return path


def run(args):
    """Run workers until ``--seconds`` are spent, restarting a worker that dies."""
    start = time.time()
    total = {'executions': 0, 'ok': 0, 'ContainerError': 0}
    crashes = []
    seed = args.seed
    with tempfile.TemporaryDirectory() as state:
        while True:
            left = args.seconds - (time.time() - start)
            done = args.examples and total['executions'] >= args.examples
            if left <= 0 or done:
                break
            cmd = [sys.executable, os.path.abspath(__file__), '--worker', '--seed', str(seed),
                   '--seconds', '%.3f' % left, '--memory-mb', str(args.memory_mb),
                   '--exec-timeout', str(args.exec_timeout), '--state-dir', state,
                   '--recycle', str(args.recycle),
                   '--crash-dir', args.crash_dir,
                   '--examples', str(max(0, args.examples - total['executions'])
                                     if args.examples else 0)]
            progress = os.path.join(state, 'stats.json')
            if os.path.exists(progress):
                os.remove(progress)
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, cwd=ROOT)
            if os.path.exists(progress):        # all but the last few executions if it died
                with open(progress) as f:
                    stats = json.load(f)
                for key in total:
                    total[key] += stats[key]
                crashes += stats['crashes']
            if proc.returncode != 0:            # the worker died: the input it was on
                current = os.path.join(state, 'current.mxc')
                blob = open(current, 'rb').read() if os.path.exists(current) else b''
                total['executions'] += 1
                crashes.append({'signature': 'process died (exit %d)' % proc.returncode,
                                'example': proc.stderr.strip().split('\n')[-1][:200],
                                'input': _save_crash(args, blob)})
            seed += 1
    signatures = {}
    for c in crashes:
        signatures.setdefault(c['signature'], '%s (e.g. %s)' % (c.get('example', ''), c['input']))
    result = {'executions': total['executions'], 'seconds': round(time.time() - start, 1),
              'ok': total['ok'], 'container_errors': total['ContainerError'],
              'crashes': len(crashes), 'unique_crashes': len(signatures),
              'crash_signatures': signatures, 'seed': args.seed, 'memory_mb': args.memory_mb,
              'crash_dir': args.crash_dir if crashes else None}
    print(json.dumps(result, indent=1, sort_keys=True))
    return 1 if crashes else 0


# --------------------------------------------------------------------------------- corpus

def corpus():
    """``{file name: (bytes, what it tests)}``: one crafted file per class of bad input
    (version-1 files, except the two about the version-2 graph codec)."""
    blobs = seed_blobs(1)
    mlp = split_sections(blobs['mlp-huffman'])
    packed = split_sections(blobs['mlp-bitpacked'])
    floats = split_sections(blobs['mlp-float'])
    out = {}

    def replace(sections, name, payload):
        return [(n, payload if n == name else p) for n, p in sections]

    def layer(sections, name):
        return dict(sections)[name]

    def patch(payload, offset, fmt, value):
        out_ = bytearray(payload)
        struct.pack_into(fmt, out_, offset, value)
        return bytes(out_)

    fc1 = layer(mlp, 'w:fc1_weight')
    dims = _LAYER_HEAD.size
    # 1. a consistent huge model: graph and section both say (65536, 32768), 0 entries
    import mxnet as mx
    sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Variable('data'), num_hidden=65536,
                                                     no_bias=True, name='fc'), name='softmax')
    empty = _LAYER_HEAD.pack(0, 2, 1, 16, 0, 1, 0) + struct.pack('<II', 65536, 32768)
    empty += struct.pack('<I', 0) + struct.pack('<I', 0) + struct.pack('<I', 0)
    out['huge_weight.mxc'] = (build([('graph', sym.tojson().encode()), ('w:fc_weight', empty),
                                     ('dense', b'')]),
                              'a 2^31-weight layer that agrees with its graph (8 GiB decoded)')
    # 2. a huge weight the graph does not declare
    out['huge_weight_vs_graph.mxc'] = (build(replace(mlp, 'w:fc1_weight', patch(
        patch(fc1, dims, '<I', 65536), dims + 4, '<I', 32768))),
        'fc1 declared (65536, 32768), the graph gives fc1 8 outputs')
    # 3. a 32-bit Huffman code length
    fields = dict((n, o) for n, o, _ in layer_fields(fc1))
    out['code_length_32.mxc'] = (build(replace(mlp, 'w:fc1_weight', patch(
        fc1, fields['code_length1_0'], '<B', 32))), 'a code length over the 20-bit maximum')
    # 4. 2^32 - 1 entries
    out['entries_4g.mxc'] = (build(replace(mlp, 'w:fc1_weight', patch(
        fc1, 9, '<I', 0xffffffff))), '2^32-1 entries in a 96-weight layer')
    # 5. entries within the shape but more than the streams hold
    p1 = layer(packed, 'w:fc1_weight')
    out['entries_vs_payload.mxc'] = (build(replace(packed, 'w:fc1_weight', patch(
        p1, 9, '<I', 96))), '96 entries declared, the bit-packed streams hold fewer')
    # 6. a huge Huffman table count
    out['huffman_table_4g.mxc'] = (build(replace(mlp, 'w:fc1_weight', patch(
        fc1, fields['huffman_used1'], '<I', 0xffffffff))), 'a Huffman table of 2^32-1 lengths')
    # 7. wrong shape against the graph: fc2 (3, 9) where the graph needs (3, 8)
    fc2 = layer(mlp, 'w:fc2_weight')
    out['wrong_shape.mxc'] = (build(replace(mlp, 'w:fc2_weight', patch(fc2, dims + 4, '<I', 9))),
                              'fc2 stored as (3, 9), the graph needs (3, 8)')
    # 8. a weight missing
    out['missing_weight.mxc'] = (build([s for s in mlp if s[0] != 'w:fc2_weight']),
                                 'no section for fc2_weight')
    # 9. a param the graph does not have
    dense = layer(mlp, 'dense')
    extra = struct.pack('<BH', 0, 5) + b'bogus' + struct.pack('<BBI', 0, 1, 1) + b'\0' * 4
    out['unknown_param.mxc'] = (build(replace(mlp, 'dense', dense + extra)),
                                'a dense param "bogus" unknown to the graph')
    # 10. a dense param declaring 2^32 elements
    big = struct.pack('<BH', 0, 8) + b'fc1_bias' + struct.pack('<BBII', 0, 2, 65536, 65536)
    out['dense_huge.mxc'] = (build(replace(mlp, 'dense', big)),
                             'a dense param of (65536, 65536) float32 in a few bytes')
    # 11. truncated: the file ends inside the dense section
    whole = blobs['mlp-huffman']
    out['truncated.mxc'] = (whole[:len(whole) - 7], 'the last 7 bytes cut off')
    # 12. a section length of 2^64 - 1 in the table
    out['section_length_huge.mxc'] = (build(mlp, lengths={1: (1 << 64) - 1}),
                                      'the table declares a 2^64-1 byte section')
    # 13. 2^32 - 1 sections declared
    out['section_count_4g.mxc'] = (build(mlp, count=0xffffffff), '2^32-1 sections declared')
    # 14. a codebook index beyond the codebook: k = 2 with a consistent 1-value codebook
    cb_at = dict((n, o) for n, o, _ in layer_fields(fc1))['length0']
    (cb_len,) = struct.unpack_from('<I', fc1, cb_at)
    short = patch(fc1[:cb_at] + struct.pack('<I', 4) + fc1[cb_at + 4:cb_at + 8] +
                  fc1[cb_at + 4 + cb_len:], 5, '<I', 2)
    out['index_out_of_range.mxc'] = (build(replace(mlp, 'w:fc1_weight', short)),
                                     'a codebook of k = 2 entries, indices up to 5 stored')
    # 15. a NaN in the codebook
    cb = fields['length0'] + 4
    out['nan_codebook.mxc'] = (build(replace(mlp, 'w:fc1_weight', patch(
        fc1, cb, '<f', float('nan')))), 'a NaN codebook value')
    # 16. sparse positions past the end of the weight
    out['position_overflow.mxc'] = (build(replace(mlp, 'w:fc1_weight', patch(
        fc1, dims + 4, '<I', 5))), 'fc1 declared (8, 5): its positions run past 40 weights')
    # 17. the same section twice
    out['duplicate_section.mxc'] = (build(mlp[:2] + mlp[1:]), 'w:fc1_weight twice')
    # 18. a graph that is not JSON
    out['graph_not_json.mxc'] = (build(replace(mlp, 'graph', b'{"nodes": [')),
                                 'the graph section is cut JSON')
    # 19. a graph whose node reads a node that does not exist
    graph = json.loads(dict(mlp)['graph'].decode())
    graph['nodes'][3]['inputs'][0][0] = 99
    out['graph_bad_input.mxc'] = (build(replace(mlp, 'graph', json.dumps(graph).encode())),
                                  'node fc1 reads node 99, past the end of the graph')
    # 20. float storage with fewer values than entries
    f1 = layer(floats, 'w:fc1_weight')
    _, _, _, _, _, _, entries = _LAYER_HEAD.unpack_from(f1)
    out['float_values_short.mxc'] = (build(replace(floats, 'w:fc1_weight', patch(
        f1, 9, '<I', entries + 1))), 'float storage: one entry more than values')
    # 21. a dense dtype code that does not exist
    off = 3 + len('fc1_bias')
    out['dense_bad_dtype.mxc'] = (build(replace(mlp, 'dense', patch(dense, off, '<B', 9))),
                                  'dtype code 9 in the dense section')
    # 22. a graph reading an output its node does not have (crashed MXNet's shape inference)
    graph = json.loads(dict(mlp)['graph'].decode())
    graph['nodes'][-1]['inputs'][0][1] = 15
    out['graph_bad_output.mxc'] = (build(replace(mlp, 'graph', json.dumps(graph).encode())),
                                   'softmax reads output 15 of the 1-output fc2 (segfaulted)')
    # 23. bytes after the last section
    out['trailing_bytes.mxc'] = (whole + b'\0' * 16, '16 bytes after the last section')
    # 24. a real entry stored as index 0 (a zero that is no filler)
    from mxcompress.deep_compression.huffman import pack_bits, unpack_bits
    head = _LAYER_HEAD.unpack_from(p1)
    _, ndim, index_bits, gap_bits, _, _, entries = head
    pos = _LAYER_HEAD.size + 4 * ndim
    (cb_len,) = struct.unpack_from('<I', p1, pos)
    idx_at = pos + 4 + cb_len
    (idx_len,) = struct.unpack_from('<I', p1, idx_at)
    gap_at = idx_at + 4 + idx_len
    (gap_len,) = struct.unpack_from('<I', p1, gap_at)
    gaps = unpack_bits(p1[gap_at + 4:gap_at + 4 + gap_len], gap_bits, entries)
    idx = unpack_bits(p1[idx_at + 4:idx_at + 4 + idx_len], index_bits, entries)
    real = [j for j in range(entries) if gaps[j] != (1 << gap_bits) - 1][0]
    idx[real] = 0
    stream = pack_bits(idx, index_bits)
    out['zero_not_filler.mxc'] = (build(replace(packed, 'w:fc1_weight', p1[:idx_at + 4] + stream +
                                                p1[idx_at + 4 + idx_len:])),
                                  'entry %d stored as a zero (index 0) with gap %d' % (
                                      real, gaps[real]))
    # 25. a NaN dense param
    off = 3 + len('fc1_bias') + 2 + 4
    out['dense_nan.mxc'] = (build(replace(mlp, 'dense', patch(dense, off, '<f', float('nan')))),
                            'fc1_bias holds a NaN')
    # 26. version 2: a graph codec that does not exist
    mlp2 = split_sections(seed_blobs(2)['mlp-huffman'])
    graph2 = dict(mlp2)['graph']
    out['graph_bad_codec.mxc'] = (build(replace(mlp2, 'graph', b'\x07' + graph2[1:]),
                                        version=2), 'version 2, graph codec byte 7')
    return out


def make_corpus(directory):
    """Write :func:`corpus` into ``directory`` with a README listing the files."""
    os.makedirs(directory, exist_ok=True)
    items = corpus()
    lines = ['# Crafted .mxc files', '',
             'Written by `python scripts/fuzz_container.py --make-corpus %s`: valid CRCs, one '
             'class of bad input each; every one must raise ContainerError '
             '(tests/test_container_fuzz.py).' % directory.rstrip('/'), '',
             '| file | bytes | what is wrong |', '|---|---|---|']
    for name, (blob, what) in sorted(items.items()):
        with open(os.path.join(directory, name), 'wb') as f:
            f.write(blob)
        lines.append('| %s | %d | %s |' % (name, len(blob), what))
        print('%-28s %6d bytes  %s' % (name, len(blob), what))
    with open(os.path.join(directory, 'README.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=60.0, help='time budget')
    parser.add_argument('--examples', type=int, default=0,
                        help='stop after this many executions (0: only the time limit)')
    parser.add_argument('--seed', type=int, default=0, help='first random seed')
    parser.add_argument('--memory-mb', type=int, default=1024,
                        help='address space allowed above what the worker holds at start')
    parser.add_argument('--exec-timeout', type=float, default=10.0,
                        help='seconds one decode may take')
    parser.add_argument('--recycle', type=int, default=5000,
                        help='start a fresh worker after this many executions (MXNet leaks '
                             'a few KB per symbol serialisation)')
    parser.add_argument('--crash-dir', default=os.path.join(tempfile.gettempdir(),
                                                            'mxc-fuzz-crashes'),
                        help='where the inputs of crashes are saved')
    parser.add_argument('--make-corpus', metavar='DIR', help='write the crafted corpus and exit')
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--state-dir', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_corpus:
        return make_corpus(args.make_corpus)
    if args.worker:
        worker(args)
        return 0
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
