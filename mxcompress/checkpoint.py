"""Standard MXNet checkpoints, written as one unit and checked on load.

A checkpoint is the usual pair ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params`` (readable by
``mx.model.load_checkpoint``, ``mx.sym.load`` and ``gluon.SymbolBlock.imports``), optionally
``PREFIX-NNNN.states`` (the optimizer state, for an exact resume), a
``PREFIX-NNNN.params.sha256`` sidecar and the manifest ``PREFIX-NNNN.manifest.json`` that makes
them one unit (as orbax does for multi-file checkpoints):

1. under a lock on the prefix (two writers never interleave), every file is written to a
   temporary name in its directory and fsync'ed, then renamed into place;
2. the manifest -- the SHA-256 and size of every file of the set, and the training position
   to resume from -- is written last, fsync'ed and renamed: that rename is the commit.

A reader trusts the manifest: every file must have the recorded hash, so a crash between two
renames, a second writer, a new symbol beside old params or a flipped byte is refused, never
silently read. A checkpoint with no manifest (a plain MXNet / Gluon / gluoncv export) still
loads, with a one-line warning that it is unverified (its ``.sha256`` sidecar, if any, is still
checked). Params are checked against the symbol's arguments and shapes; non-finite weights are
never written.
"""
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile

import mxnet as mx
import numpy as np

from .graph import find_layers, graph_nodes

__all__ = ['CheckpointError', 'atomic_path', 'save_checkpoint', 'load_checkpoint',
           'check_params_fit', 'infer_data_shapes', 'model_input_shape', 'check_finite', 'sha256_file', 'params_path', 'states_path',
           'manifest_path', 'read_manifest', 'mxnet_reason', 'write_manifest', 'check_output_prefix', 'MANIFEST_FORMAT']

#: ``format`` field of a manifest
MANIFEST_FORMAT = 'mxcompress-checkpoint/1'
#: the largest symbol JSON / manifest read (a bigger one is not a checkpoint of ours)
_MAX_JSON_BYTES = 256 << 20
log = logging.getLogger('mxcompress')


class CheckpointError(ValueError):
    """A missing, corrupt or inconsistent checkpoint, or an unusable output path."""


def params_path(prefix, epoch):
    """``PREFIX-NNNN.params``."""
    return '%s-%04d.params' % (prefix, epoch)


def states_path(prefix, epoch):
    """``PREFIX-NNNN.states``: the optimizer state saved with a checkpoint."""
    return '%s-%04d.states' % (prefix, epoch)


def manifest_path(prefix, epoch):
    """``PREFIX-NNNN.manifest.json``: the file that commits a checkpoint."""
    return '%s-%04d.manifest.json' % (prefix, epoch)


def sha256_file(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path):
    with open(path, 'rb') as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary_beside(path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                               dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
    return tmp


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; fsync and rename it onto ``path`` if the block
    succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    tmp = _temporary_beside(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def _prefix_lock(prefix):
    """Exclusive lock of one checkpoint prefix (``.NAME.lock`` beside it)."""
    directory, name = os.path.split(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, '.%s.lock' % name), 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_finite(params, where='checkpoint'):
    """Raise :class:`CheckpointError` naming the first param holding NaN or infinity."""
    for name in sorted(params):
        value = params[name].asnumpy() if hasattr(params[name], 'asnumpy') else params[name]
        if value.dtype.kind == 'f' and not np.isfinite(value).all():
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise CheckpointError('%s: param %s holds %d non-finite value(s) (NaN or inf); '
                                  'nothing was written' % (where, name, bad))


def save_checkpoint(prefix, epoch, symbol, arg_params, aux_params, optimizer_states=None,
                    resume=None):
    """Write one checkpoint as a unit: symbol, params, optional optimizer state, manifest.

    Parameters
    ----------
    prefix : str
    epoch : int
    symbol : mx.sym.Symbol or None
        None keeps an existing ``PREFIX-symbol.json`` (it must exist).
    arg_params, aux_params : dict of str -> mx.nd.NDArray
    optimizer_states : callable or None
        ``optimizer_states(path)`` writes the optimizer state to ``path`` (e.g.
        ``module.save_optimizer_states``); stored as ``PREFIX-NNNN.states``.
    resume : dict or None
        Where training continues from (epoch, update count, seeds), kept in the manifest.

    Raises
    ------
    CheckpointError
        A non-finite param (nothing is written).
    """
    check_finite(dict(arg_params, **(aux_params or {})), where=prefix)
    save = {'arg:%s' % k: v.as_in_context(mx.cpu()) for k, v in arg_params.items()}
    save.update({'aux:%s' % k: v.as_in_context(mx.cpu()) for k, v in (aux_params or {}).items()})
    sym_file, par_file = prefix + '-symbol.json', params_path(prefix, epoch)
    files = [(par_file, lambda tmp: mx.nd.save(tmp, save))]
    if symbol is not None:
        files.append((sym_file, symbol.save))
    if optimizer_states is not None:
        files.append((states_path(prefix, epoch), optimizer_states))
    with _prefix_lock(prefix):
        if symbol is None and not os.path.isfile(sym_file):
            raise CheckpointError('%s: no symbol given and none saved before' % sym_file)
        temporaries = {}
        try:
            for path, write in files:   # everything to temporaries first: a full disk or a
                tmp = temporaries[path] = _temporary_beside(path)  # crash renames nothing
                write(tmp)
                _fsync(tmp)
            digests = {path: sha256_file(tmp) for path, tmp in temporaries.items()}
            with atomic_path(par_file + '.sha256') as tmp_sum:
                with open(tmp_sum, 'w') as f:
                    f.write('%s  %s\n' % (digests[par_file], os.path.basename(par_file)))
            for path, tmp in temporaries.items():
                os.replace(tmp, path)
        finally:
            for tmp in temporaries.values():
                if os.path.exists(tmp):
                    os.remove(tmp)
        write_manifest(prefix, epoch, resume, digests)


def write_manifest(prefix, epoch, resume=None, digests=None):
    """Commit checkpoint ``PREFIX`` at ``epoch``: write its manifest (atomically, last).

    Lists the symbol, the params and, when present, the optimizer state, each with its
    SHA-256 (``digests``: path -> hex, computed when not given). Called by
    :func:`save_checkpoint`; call it yourself to seal a checkpoint written by other tools (a
    Gluon export) so later reads verify it.
    """
    digests = dict(digests or {})
    paths = [prefix + '-symbol.json', params_path(prefix, epoch)]
    if os.path.isfile(states_path(prefix, epoch)):
        paths.append(states_path(prefix, epoch))
    for path in paths:
        if path not in digests:
            if not os.path.isfile(path):
                raise CheckpointError('checkpoint file not found: %s' % path)
            digests[path] = sha256_file(path)
    manifest = {'format': MANIFEST_FORMAT, 'epoch': int(epoch),
                'files': {os.path.basename(p): {'sha256': d, 'bytes': os.path.getsize(p)}
                          for p, d in sorted(digests.items())}}
    if resume is not None:
        manifest['resume'] = resume
    with atomic_path(manifest_path(prefix, epoch)) as tmp:   # the commit
        with open(tmp, 'w') as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.write('\n')
    _fsync_directory(os.path.dirname(os.path.abspath(prefix)))
    return manifest_path(prefix, epoch)


def read_manifest(prefix, epoch):
    """The manifest of a checkpoint as a dict, or None when it has none.

    Raises
    ------
    CheckpointError
        The manifest is unreadable, not a regular file, or not a manifest of this format.
    """
    path = manifest_path(prefix, epoch)
    if not os.path.lexists(path):
        return None
    if not os.path.isfile(path) or os.path.getsize(path) > _MAX_JSON_BYTES:
        raise CheckpointError('%s: not a regular manifest file' % path)
    try:
        with open(path, 'rb') as f:
            manifest = json.loads(f.read().decode('utf-8'))
    except (OSError, ValueError) as err:
        raise CheckpointError('%s: unreadable manifest (%s)' % (path, err)) from None
    if not isinstance(manifest, dict) or manifest.get('format') != MANIFEST_FORMAT or \
            not isinstance(manifest.get('files'), dict):
        raise CheckpointError('%s: not a checkpoint manifest (format %s expected)'
                              % (path, MANIFEST_FORMAT))
    return manifest


def _verify_manifest(prefix, epoch, manifest):
    directory = os.path.dirname(os.path.abspath(prefix))
    for name, entry in sorted(manifest['files'].items()):
        path = os.path.join(directory, os.path.basename(name))
        if not os.path.isfile(path):
            raise CheckpointError('%s: listed in %s but missing' % (path,
                                                                   manifest_path(prefix, epoch)))
        actual = sha256_file(path)
        if not isinstance(entry, dict) or actual != entry.get('sha256'):
            raise CheckpointError(
                '%s: checksum mismatch with its manifest %s (corrupt, truncated, or written by '
                'another run: expected sha256 %s, got %s)' % (path, manifest_path(prefix, epoch),
                                                     entry.get('sha256') if isinstance(
                                                         entry, dict) else entry, actual))


def _verify_checksum(path):
    sidecar = path + '.sha256'
    if not os.path.lexists(sidecar):
        return False
    try:
        if not os.path.isfile(sidecar) or os.path.getsize(sidecar) > 4096:
            raise OSError('not a small regular file')
        with open(sidecar) as f:
            fields = f.read().split()
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError('%s: unreadable checksum file (%s)' % (sidecar, err)) from None
    if not fields or len(fields[0]) != 64:
        raise CheckpointError('%s: not a sha256 checksum file (empty or malformed)' % sidecar)
    actual = sha256_file(path)
    if actual != fields[0]:
        raise CheckpointError('%s: checksum mismatch (file is corrupt or truncated; expected '
                              'sha256 %s, got %s)' % (path, fields[0], actual))
    return True


def check_params_fit(symbol, arg_params, aux_params, data_shapes=None, where='checkpoint'):
    """Raise :class:`CheckpointError` unless the params fit the symbol.

    Every argument of ``symbol`` except its inputs (``data``, labels) must have a param, no
    param may be unknown to the symbol, and every param's shape must be what the graph needs:
    with ``data_shapes`` (e.g. ``{'data': (1, 1, 28, 28)}``) the shapes are inferred from the
    input; without, MXNet's shape inference runs from the params' own shapes and must find them
    consistent (a weight of the wrong shape for its layer, or for the layer it feeds, fails).
    """
    inputs = set(data_shapes or {'data': None}) | {a for a in symbol.list_arguments()
                                                  if a.endswith('label')}
    missing = [a for a in symbol.list_arguments() if a not in inputs and a not in arg_params]
    missing += [a for a in symbol.list_auxiliary_states() if a not in aux_params]
    extra = [a for a in arg_params if a not in symbol.list_arguments()]
    extra += [a for a in aux_params if a not in symbol.list_auxiliary_states()]
    if missing or extra:
        raise CheckpointError('%s: params do not match the symbol (missing: %s; unexpected: %s)'
                              % (where, missing or 'none', extra or 'none'))
    if not data_shapes:
        data_shapes = infer_data_shapes(symbol, arg_params, aux_params)
        if data_shapes is None:
            data_shapes = _fixed_input_shape(symbol, arg_params)
            if data_shapes is None:  # a convolution first: the input size is not known
                log.warning('%s: param shapes not checked (no usual input size fits; the '
                            'command checks them once it knows the data shape)', where)
                return
    try:
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**data_shapes)
    except Exception as err:   # noqa: BLE001 -- MXNetError, or a bare Exception (> 2^31)
        raise CheckpointError('%s: the params do not fit the graph (%s)'
                              % (where, mxnet_reason(err))) from None
    expected = dict(zip(symbol.list_arguments(), arg_shapes or []))
    expected.update(zip(symbol.list_auxiliary_states(), aux_shapes or []))
    for name, value in list(arg_params.items()) + list(aux_params.items()):
        want = tuple(expected.get(name) or ())
        if want and 0 not in want and tuple(value.shape) != want:
            raise CheckpointError('%s: param %s has shape %s, the symbol needs %s'
                                  % (where, name, tuple(value.shape), want))


#: square input sizes tried, in order, when a checkpoint does not say its input shape: a
#: network with global pooling takes any size, so the first is the usual one for the channel
#: count (1 channel: MNIST's 28; 3 channels: ImageNet's 224, then CIFAR's 32, ...); a
#: 3-channel network whose first convolution keeps the resolution (stride 1, as the CIFAR
#: ResNets') tries CIFAR's 32 first (ImageNet stems downsample at once; VGG's fixed
#: classifier fits 224 only, so it still finds 224)
_PROBE_SIZES = {1: (28, 32, 64, 96, 112, 128, 224, 16, 8),
                3: (224, 32, 299, 227, 256, 64, 96, 112, 128, 28, 16, 8)}
_CIFAR_SIZE = 32


def mxnet_reason(err):
    """The informative line of an MXNet error (not its "Traceback" header)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if 'Error in operator' in line or 'Check failed' in line or 'Shape inconsistent' in line:
            return line
    return next((l for l in lines if not l.startswith(('Traceback', 'File ', '['))),
                lines[0] if lines else type(err).__name__)


def _shapes_fit(symbol, data_shape, arg_params, aux_params):
    try:
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(data=data_shape)
    except Exception:   # noqa: BLE001 -- MXNet raises a bare Exception for > 2^31 elements
        return False
    want = dict(zip(symbol.list_arguments(), arg_shapes or []))
    want.update(zip(symbol.list_auxiliary_states(), aux_shapes or []))
    return all(tuple(want.get(k) or ()) == tuple(v.shape)
               for k, v in list(arg_params.items()) + list(aux_params.items()))


def infer_data_shapes(symbol, arg_params, aux_params=None):
    """``{'data': (1, ...)}``: an input shape under which every param has the shape the graph
    needs, found from the first layer's weight (FullyConnected: its input size; Convolution:
    its channels and a square size from a list of usual ones), or None if none fits."""
    aux_params = aux_params or {}
    first = _first_layers(symbol, arg_params)
    if 'data' not in symbol.list_arguments() or not first:
        return None
    layer, weight = first[0][0], arg_params[first[0][1]].shape
    if layer.op == 'FullyConnected':
        candidates = [(1, int(weight[1]))]
    else:
        channels = int(weight[1]) * int(layer.attrs.get('num_group', '1'))
        sizes = _PROBE_SIZES.get(channels, _PROBE_SIZES[3])
        stride = layer.attrs.get('stride', '(1, 1)').strip('()[] ').replace(' ', '')
        if channels == 3 and stride in ('', '1', '1,1'):
            sizes = (_CIFAR_SIZE,) + tuple(s for s in sizes if s != _CIFAR_SIZE)
        candidates = [(1, channels, size, size) for size in sizes]
    for shape in candidates:
        if _shapes_fit(symbol, shape, arg_params, aux_params):
            return {'data': shape}
    return None


#: ops that pass the input on without mixing examples or changing the per-example size
_SIZE_KEEPING = ('Flatten', 'flatten', 'Dropout', 'Activation', 'BlockGrad', 'identity',
                 '_copy', 'Cast', 'clip', 'relu')


def _weight_param(nodes, index, name, arg_params):
    """The parameter a layer's weight input is computed from (itself, or e.g. the latent
    weight of ``sign(W)`` in a binary layer), or None."""
    todo, seen = [name], set()
    while todo:
        name = todo.pop(0)
        if name in arg_params:
            return name
        if name in seen or name not in index:
            continue
        seen.add(name)
        todo.extend(nodes[i]['name'] for i, *_ in nodes[index[name]]['inputs'])
    return None


def _first_layers(symbol, arg_params):
    """``(layer, weight param)`` of the weighted layers reading ``data`` directly or through
    size-keeping ops (Flatten, ...)."""
    nodes = graph_nodes(symbol)
    index = {node['name']: i for i, node in enumerate(nodes)}
    first = []
    for layer in find_layers(symbol):
        name = layer.input_node
        while name in index and nodes[index[name]]['op'] in _SIZE_KEEPING:
            name = nodes[nodes[index[name]]['inputs'][0][0]]['name']
        weight = _weight_param(nodes, index, layer.weight, arg_params)
        if name == 'data' and weight is not None:
            first.append((layer, weight))
    return first


def _fixed_input_shape(symbol, arg_params):
    """The input shape a FullyConnected first layer fixes (its weight's input size)."""
    first = _first_layers(symbol, arg_params)
    if first and first[0][0].op == 'FullyConnected':
        return {'data': (1, int(arg_params[first[0][1]].shape[1]))}
    return None


def model_input_shape(symbol, arg_params, aux_params=None, data_shape=None, where='checkpoint'):
    """``(1, C, H, W)`` (or ``(1, features)``): the input shape of one example of a model.

    ``data_shape`` (C, H, W, e.g. from ``--data-shape``) wins; otherwise the shape is inferred
    from the checkpoint (:func:`infer_data_shapes`), so gluoncv exports (3 x 224 x 224) and
    MNIST models (1 x 28 x 28) both work without a constant. A network with global pooling
    fits any size: it is then measured at the usual one for its channels (1: 28, 3: 224).

    Raises
    ------
    CheckpointError
        No input shape fits the params: the message asks for ``--data-shape``.
    """
    if data_shape is not None:
        return (1,) + tuple(int(v) for v in data_shape)
    found = infer_data_shapes(symbol, arg_params, aux_params) or \
        _fixed_input_shape(symbol, arg_params)
    if found is None:
        raise CheckpointError('%s: cannot tell the input size from the checkpoint; give it with '
                              '--data-shape C,H,W' % where)
    return tuple(found['data'])


def _needs_ops_library(text):
    return '"xnor_conv2d"' in text


def _read_symbol(sym_file):
    """The symbol of ``sym_file``; loads the xnor op library first when the graph uses it."""
    if not os.path.isfile(sym_file):
        raise CheckpointError('%s: not a regular file' % sym_file)
    if os.path.getsize(sym_file) > _MAX_JSON_BYTES:
        raise CheckpointError('%s: %d bytes, too large for a symbol file'
                              % (sym_file, os.path.getsize(sym_file)))
    with open(sym_file, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
        graph = json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError('%s: not a symbol file (malformed JSON: %s)' % (sym_file, err)) \
            from None
    if not isinstance(graph, dict) or 'nodes' not in graph or 'heads' not in graph:
        raise CheckpointError('%s: not a symbol file (no "nodes" / "heads")' % sym_file)
    if _needs_ops_library(text):
        from . import ops   # the graph runs on the xnor op: register it (idempotent)
        try:
            ops.load()
        except (OSError, RuntimeError) as err:
            raise CheckpointError('%s: the graph uses the xnor_conv2d op, and its library could '
                                  'not be loaded (%s); build it with `python -m '
                                  'mxcompress.ops.build`, then call mxcompress.ops.load()'
                                  % (sym_file, err)) from None
    try:
        return mx.sym.load_json(text)
    except mx.base.MXNetError as err:
        raise CheckpointError('%s: cannot read symbol (%s)' % (sym_file, mxnet_reason(err))) \
            from None


def load_checkpoint(prefix, epoch=0, data_shapes=None):
    """Load ``(symbol, arg_params, aux_params)``, verifying the manifest, checksums and fit.

    Parameters
    ----------
    prefix : str
    epoch : int
    data_shapes : dict or None
        Input shapes used to check param shapes, e.g. ``{'data': (1, 1, 28, 28)}``; without,
        the params' own shapes must be consistent with the graph.

    Raises
    ------
    CheckpointError
        A file is missing, unreadable, does not match the manifest or its checksum, or the
        params don't fit the symbol.
    """
    sym_file, par_file = prefix + '-symbol.json', params_path(prefix, epoch)
    for path in (sym_file, par_file):
        if not os.path.exists(path):
            raise CheckpointError('checkpoint file not found: %s' % path)
        if not os.path.isfile(path):
            raise CheckpointError('%s: not a regular file' % path)
    manifest = read_manifest(prefix, epoch)
    if manifest is not None:
        _verify_manifest(prefix, epoch, manifest)
        _verify_checksum(par_file)
    elif not _verify_checksum(par_file):
        log.warning('%s: no manifest or checksum: checkpoint unverified (a plain MXNet export?)',
                    prefix)
    symbol = _read_symbol(sym_file)
    try:
        saved = mx.nd.load(par_file)
    except mx.base.MXNetError as err:
        raise CheckpointError('%s: cannot read params (%s)' % (par_file, mxnet_reason(err))) \
            from None
    if not isinstance(saved, dict):
        raise CheckpointError('%s: params file holds a list, not named arg:/aux: arrays'
                              % par_file)
    arg_params, aux_params = {}, {}
    for key, value in saved.items():
        kind, _, name = key.partition(':')
        if kind == 'arg':
            arg_params[name] = value
        elif kind == 'aux':
            aux_params[name] = value
        else:
            raise CheckpointError('%s: key %r is not arg:/aux:' % (par_file, key))
    check_params_fit(symbol, arg_params, aux_params, data_shapes, where=prefix)
    return symbol, arg_params, aux_params


def check_output_prefix(prefix, inputs=(), what='--output', is_file=False):
    """Check an output prefix (or, with ``is_file``, an output file) before any work.

    The path must not name a directory (``out/`` or an existing folder), its directory must be
    creatable and writable, and none of the files it will write may be one of ``inputs``
    (paths the command reads). Nothing is created. Returns the path.

    Raises
    ------
    CheckpointError
    """
    if not prefix or str(prefix).endswith(('/', os.sep)) or os.path.isdir(prefix):
        raise CheckpointError('%s %r names a directory; give a file prefix such as %s'
                              % (what, prefix, os.path.join(str(prefix) or '.', 'model')))
    directory = os.path.dirname(os.path.abspath(prefix))
    existing = directory
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise CheckpointError('%s %r: %s is not a directory' % (what, prefix, existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CheckpointError('%s %r: directory %s is not writable' % (what, prefix, existing))
    reads = {os.path.realpath(p) for p in inputs}
    base = os.path.realpath(os.path.abspath(prefix))
    for read in reads:
        if read == base or not is_file and (read.startswith(base + '-') or
                                            read.startswith(base + '.')):
            raise CheckpointError('%s %r would overwrite the input %s' % (what, prefix, read))
    return prefix
