"""Filter pruning with physical removal, in dependency groups.

Li et al. ("Pruning Filters for Efficient ConvNets", ICLR 2017) rank a conv layer's filters by
their norm ``||F_j||_p`` (p = 1 or 2, they use L1) and remove the weakest; removing filter
``j`` removes output channel ``j``, so the network shrinks, not just sparsifies. In a real
architecture channels are coupled: the convs whose outputs meet at a residual add, a depthwise
conv and the conv feeding it, the inputs of a Concat at their offsets. :mod:`.groups` finds
these *channel groups* on the Symbol (as DepGraph, Fang et al., CVPR 2023, does by tracing);
here each group is ranked by one criterion over all its members and the same channels are
removed from every member:

- producers (convs whose filters make the channels): ``num_filter``, weight rows ``W[j]``,
  bias ``b[j]``; depthwise convs in the group also ``num_group``;
- BatchNorms on the group: ``gamma, beta, moving_mean, moving_var`` lose entry ``j``;
- consumers: input channel ``j`` of every conv reading the group, ``W'[:, j]`` (at the group's
  offset when it reaches the conv through a Concat), and the ``H*W`` columns of channel ``j``
  of a FullyConnected after a Flatten or a global pooling.

Criteria for a group ``g`` with producer weights ``W_p`` (depthwise ones included), channel
``j``:

* ``l1``: ``sum_p ||W_p[j]||_1`` -- the L1 norm of all the group's filters for ``j``;
* ``l2``: ``sqrt(sum_p ||W_p[j]||_2^2)``;
* ``bn`` (network slimming, Liu et al., ICCV 2017): ``mean_b |gamma_b[j]|`` over the group's
  BatchNorms with a trainable gamma, one global threshold over all groups.

Groups the analysis cannot follow (a Reshape, a transpose, a SliceChannel on channels, a
general grouped conv, the graph's inputs and outputs) stay dense and are reported in the
:class:`FilterPlan`; nothing raises in the middle of a rewrite.

The result is a smaller dense standard checkpoint computing exactly what the original computes
with the removed filters, and the BatchNorm ``gamma, beta, moving_mean`` of their channels, set
to zero (:func:`zero_filters`, the test reference).
"""
import json

import mxnet as mx
import numpy as np

from ..analysis import count_macs, input_shape
from ..graph import Node, build_op, rewrite
from .groups import analyse, layout_index, node_params

__all__ = ['filter_norms', 'weakest_filters', 'FilterPlan', 'plan_groups', 'plan_filters',
           'slimming_plan', 'thin_network', 'thin_symbol', 'zero_filters', 'group_scores',
           'CRITERIA', 'round_kept']

#: ranking criteria of :func:`plan_groups`
CRITERIA = ('l1', 'l2', 'bn')


def _np(value):
    return value.asnumpy() if hasattr(value, 'asnumpy') else np.asarray(value)


def filter_norms(weight, norm='l1'):
    """Norm of each filter: ``sum |W[j]|`` (l1) or ``sqrt(sum W[j]^2)`` (l2).

    Parameters
    ----------
    weight : array, shape (C_out, C_in, kh, kw)

    Returns
    -------
    numpy.ndarray, shape (C_out,)
    """
    w = _np(weight).reshape(_np(weight).shape[0], -1)
    if norm == 'l1':
        return np.abs(w).sum(axis=1)
    if norm == 'l2':
        return np.sqrt((w.astype(np.float64) ** 2).sum(axis=1))
    raise ValueError('unknown filter norm %r; valid: l1, l2' % (norm,))


def weakest_filters(scores, remove, layer='layer'):
    """Indices to keep after removing the ``remove`` lowest ``scores`` (ties: lowest index).

    Parameters
    ----------
    scores : array, shape (C,)
    remove : int or float
        Number of filters (int) or fraction in [0, 1) (float) to remove.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices of the kept filters.

    Raises
    ------
    ValueError
        ``remove`` would remove every filter of the layer, or is negative.
    """
    scores = np.asarray(scores)
    count = scores.size
    if isinstance(remove, float):
        if not 0.0 <= remove < 1.0:
            raise ValueError('filter ratio of %s must be in [0, 1), got %s' % (layer, remove))
        remove = int(round(remove * count))
    if remove < 0:
        raise ValueError('cannot remove %d filters of %s' % (remove, layer))
    if remove >= count:
        raise ValueError('cannot remove %d of the %d filters of %s: a layer must keep at least '
                         'one filter' % (remove, count, layer))
    order = np.argsort(scores, kind='stable')
    return np.sort(order[remove:])


def _bn_trainable(node):
    attrs = node.get('attrs', {})
    return str(attrs.get('fix_gamma', 'True')).strip().lower() not in ('true', '1')


def group_scores(analysis, arg_params, criterion='l1'):
    """Score of every channel of every group (higher = more important).

    Parameters
    ----------
    analysis : GroupAnalysis
    arg_params : dict of str -> NDArray
    criterion : {'l1', 'l2', 'bn'}
        See the module docstring.

    Returns
    -------
    dict of int -> numpy.ndarray, shape (C_g,)
        Group id -> scores; for ``bn``, only groups with a BatchNorm whose gamma is trained.
    """
    if criterion not in CRITERIA:
        raise ValueError('unknown filter criterion %r; valid: %s' % (criterion,
                                                                     ', '.join(CRITERIA)))
    nodes = analysis.nodes
    total, count = {}, {}
    for i, role, layout in analysis.roles():
        params = node_params(nodes, i)
        if criterion in ('l1', 'l2') and role in ('filters', 'depthwise'):
            if params[0] not in arg_params:
                continue
            w = _np(arg_params[params[0]])
            w = w.reshape(w.shape[0], -1).astype(np.float64)
            values = np.abs(w).sum(axis=1) if criterion == 'l1' else (w ** 2).sum(axis=1)
        elif criterion == 'bn' and role == 'batchnorm' and _bn_trainable(nodes[i]):
            if params[0] not in arg_params:
                continue
            values = np.abs(_np(arg_params[params[0]]).astype(np.float64))
        else:
            continue
        offset = 0
        for g, _ in layout:
            size = analysis.size(g)
            total[g] = total.get(g, 0) + values[offset:offset + size]
            count[g] = count.get(g, 0) + 1
            offset += size
    if criterion == 'l2':
        return {g: np.sqrt(v) for g, v in total.items()}
    if criterion == 'bn':
        return {g: v / count[g] for g, v in total.items()}
    return total


class FilterPlan:
    """What :func:`plan_groups` decided; :func:`thin_network` applies it.

    Attributes
    ----------
    analysis : GroupAnalysis
    criterion : str
    keep : dict of int -> numpy.ndarray
        Group id -> sorted kept channels, for every group that loses channels (or was asked to).
    groups : list of dict
        One row per planned group: ``group`` (name), ``channels``, ``kept``, ``removed``,
        ``producers``, ``members`` (``[name, role]``), ``kept_channels``.
    skipped : list of dict
        Groups left dense: ``group``, ``channels``, ``producers``, ``members``, ``reasons``.
    macs_before, macs_after : int
        Dense multiply-accumulates per example (:func:`mxcompress.analysis.count_macs`).
    """

    def __init__(self, analysis, criterion, keep, groups, skipped):
        self.analysis, self.criterion, self.keep = analysis, criterion, keep
        self.groups, self.skipped = groups, skipped
        self.macs_before = count_macs(analysis.symbol, analysis.data_shape)
        self.macs_after = count_macs(thin_symbol(analysis.symbol, self), analysis.data_shape)

    def layers(self):
        """Producer conv name -> kept channels (the old per-layer keep-lists)."""
        by_id = {g.id: g for g in self.analysis.groups}
        return {name: kept for g, kept in self.keep.items() for name in by_id[g].producers}

    def to_dict(self):
        """JSON-ready summary (kept channel lists included)."""
        return {'criterion': self.criterion, 'data_shape': list(self.analysis.data_shape),
                'macs_before': int(self.macs_before), 'macs_after': int(self.macs_after),
                'groups': self.groups, 'skipped': self.skipped}


def _member_rows(group):
    return [[name, role] for name, role in group.members]


def round_kept(kept, channels, multiple):
    """The kept channel count rounded to the nearest multiple of ``multiple``.

    Vectorised conv kernels (oneDNN's blocked layouts use 8 or 16 channels) run a layer of
    ``11`` channels little faster than one of ``16``, so thinning pays off in time only when
    the kept counts are multiples of the SIMD width (Torch-Pruning's ``round_to``).

    Parameters
    ----------
    kept : int
        Channels the sparsity would keep (>= 1).
    channels : int
        Channels of the group before thinning.
    multiple : int
        Round to a multiple of this (>= 1; 1 leaves ``kept`` as it is).

    Returns
    -------
    int
        ``kept`` rounded half up to a multiple of ``multiple``, at least ``multiple`` and at
        most ``channels`` (so a group of at most ``multiple`` channels stays whole).
    """
    if isinstance(multiple, bool) or int(multiple) != multiple or multiple < 1:
        raise ValueError('channel multiple must be an integer >= 1, got %r' % (multiple,))
    if multiple == 1:
        return kept
    rounded = int(multiple * np.floor(kept / float(multiple) + 0.5))
    return int(min(max(rounded, multiple), channels))


def _top_channels(scores, count):
    """Sorted indices of the ``count`` highest ``scores`` (ties: the lower index goes first,
    as in :func:`weakest_filters`)."""
    order = np.argsort(np.asarray(scores), kind='stable')
    return np.sort(order[len(order) - count:])


def plan_groups(symbol, arg_params, sparsity, criterion='l1', layers=None, data_shape=None,
                aux_params=None, analysis=None, channel_multiple=1):
    """Plan filter removal in dependency groups.

    Parameters
    ----------
    symbol, arg_params : checkpoint
    sparsity : float, int or dict
        One value for every chosen group, or ``{conv name: value}``: the group containing that
        conv (as a producer, or a depthwise conv in it) gets the value; names of one group
        must agree. A float is the fraction in [0, 1) of the group's channels to remove, an
        int their number. With ``criterion='bn'``: one float, the fraction of all the chosen
        groups' channels, by one global ``|gamma|`` threshold (Liu et al. 2017).
    criterion : {'l1', 'l2', 'bn'}
    layers : list of str or None
        Conv names whose groups are chosen (default: every group).
    data_shape : tuple or None
        Input shape (batch axis included); None: what the checkpoint implies.
    analysis : GroupAnalysis or None
        A ready analysis of ``symbol`` (made here when None).
    channel_multiple : int
        Round every thinned group's kept channel count to the nearest multiple of this
        (:func:`round_kept`; e.g. 8 so oneDNN's blocked kernels stay full); 1: no rounding.

    Returns
    -------
    FilterPlan

    Raises
    ------
    ValueError
        Unknown conv names, conflicting values for one group, a value that would remove every
        channel of a group. Groups that cannot be thinned are skipped and reported, not raised.
    """
    if criterion not in CRITERIA:
        raise ValueError('unknown filter criterion %r; valid: %s' % (criterion,
                                                                     ', '.join(CRITERIA)))
    round_kept(1, 1, channel_multiple)  # validates it before any work
    if analysis is None:
        analysis = analyse(symbol, input_shape(symbol, arg_params, aux_params, data_shape))
    by_id = {g.id: g for g in analysis.groups}
    targets, named = {}, {}
    if isinstance(sparsity, dict):
        if criterion == 'bn':
            raise ValueError('network slimming takes one sparsity (a global channel fraction)')
        for name, value in sparsity.items():
            group = analysis.group_of(name)
            if group.id in targets and targets[group.id] != value:
                raise ValueError('%s and %s are in one channel group (%s) but were given '
                                 'different sparsities %s and %s'
                                 % (named[group.id], name, group.name, targets[group.id], value))
            targets[group.id], named[group.id] = value, name
    else:
        chosen = analysis.groups if layers is None else [analysis.group_of(n) for n in layers]
        targets = {g.id: sparsity for g in chosen}
    scores = group_scores(analysis, arg_params, criterion)
    skipped, keep = [], {}
    for g in analysis.blocked:
        skipped.append({'group': g.name, 'channels': g.channels, 'producers': list(g.producers),
                        'members': _member_rows(g), 'reasons': list(g.reasons)})
    live = [by_id[g] for g in targets if not by_id[g].reasons]
    if criterion == 'bn':
        if isinstance(sparsity, bool) or not 0.0 <= float(sparsity) < 1.0:
            raise ValueError('slimming ratio must be in [0, 1), got %s' % sparsity)
        for g in [g for g in live if g.id not in scores]:
            skipped.append({'group': g.name, 'channels': g.channels,
                            'producers': list(g.producers), 'members': _member_rows(g),
                            'reasons': ['no BatchNorm with a trainable gamma']})
        live = [g for g in live if g.id in scores]
        if not live:
            raise ValueError('no prunable channel group has a BatchNorm with a trainable gamma: '
                             'nothing to slim')
        everything = np.sort(np.concatenate([scores[g.id] for g in live]))
        cut = int(round(float(sparsity) * everything.size))
        threshold = everything[cut - 1] if cut else -np.inf
        for g in live:
            kept = np.nonzero(scores[g.id] > threshold)[0]
            keep[g.id] = kept if kept.size else np.array([int(np.argmax(scores[g.id]))])
    else:
        for g in live:
            values = scores.get(g.id, np.zeros(g.channels))
            value = targets[g.id]
            if not isinstance(sparsity, dict) and isinstance(value, float) and 0 <= value < 1:
                value = min(int(round(value * g.channels)), g.channels - 1)  # keep one
            keep[g.id] = weakest_filters(values, value, g.name)
    for g in live:
        count = round_kept(len(keep[g.id]), g.channels, channel_multiple)
        if count != len(keep[g.id]):
            values = scores.get(g.id, np.zeros(g.channels))
            keep[g.id] = _top_channels(values, count)
    rows = []
    for g in live:
        kept = keep[g.id]
        rows.append({'group': g.name, 'channels': g.channels, 'kept': int(len(kept)),
                     'removed': int(g.channels - len(kept)), 'producers': list(g.producers),
                     'members': _member_rows(g), 'kept_channels': [int(k) for k in kept]})
    return FilterPlan(analysis, criterion, keep, rows, skipped)


def plan_filters(symbol, arg_params, remove, norm='l1', data_shape=None):
    """Keep-lists of conv layers by filter norm, in dependency groups.

    Parameters
    ----------
    remove : dict of str -> int or float
        Conv layer name -> filters to remove (count) or fraction; every conv of the layer's
        channel group loses the same channels (see :func:`plan_groups`).
    norm : {'l1', 'l2'}

    Returns
    -------
    dict of str -> numpy.ndarray
        Producer conv name -> sorted indices of kept filters (for :func:`thin_network`).
        Groups that cannot be thinned are left out.
    """
    if norm not in ('l1', 'l2'):
        raise ValueError('unknown filter norm %r; valid: l1, l2' % (norm,))
    return plan_groups(symbol, arg_params, dict(remove), norm, data_shape=data_shape).layers()


def slimming_plan(symbol, arg_params, ratio, data_shape=None):
    """Network slimming: channels ranked by their BatchNorm ``|gamma|`` (Liu et al. 2017).

    One global threshold over the channels of every prunable group with a BatchNorm removes
    the fraction ``ratio`` of them with the smallest (group-mean) ``|gamma|``; each group keeps
    at least one channel.

    Returns
    -------
    dict of str -> numpy.ndarray
        Producer conv name -> kept channel indices (for :func:`thin_network`).
    """
    return plan_groups(symbol, arg_params, ratio, 'bn', data_shape=data_shape).layers()


def _group_keep(analysis, keep):
    """``{conv name: kept}`` or a :class:`FilterPlan` -> ``{group id: kept}``, checked."""
    if isinstance(keep, FilterPlan):
        return dict(keep.keep)
    result, named = {}, {}
    for layer, kept in keep.items():
        group = analysis.group_of(layer)
        if group.reasons:
            raise ValueError('cannot remove filters of %s: its channel group %s stays dense '
                             '(%s)' % (layer, group.name, '; '.join(group.reasons)))
        total = group.channels
        kept = np.asarray(kept, dtype=np.int64).ravel()
        if kept.size == 0:
            raise ValueError('cannot remove all %d filters of %s: keep at least one'
                             % (total, layer))
        if kept.min() < 0 or kept.max() >= total or len(set(kept.tolist())) != kept.size:
            raise ValueError('kept filters of %s must be distinct indices in 0..%d'
                             % (layer, total - 1))
        kept = np.sort(kept)
        if group.id in result and not np.array_equal(result[group.id], kept):
            raise ValueError('%s and %s are in one channel group (%s) but were given different '
                             'kept filters' % (named[group.id], layer, group.name))
        result[group.id], named[group.id] = kept, layer
    return result


def _changes(analysis, keep):
    """Param slices ``{name: [(axis, index)]}`` and conv attribute changes ``{node: attrs}``."""
    nodes = analysis.nodes
    slices, owner, attrs = {}, {}, {}
    for i, role, layout in analysis.roles():
        index, changed = layout_index(layout, keep, analysis.size)
        if not changed or role == 'grouped':
            continue
        params = node_params(nodes, i)
        name = nodes[i]['name']
        if role in ('filters', 'depthwise'):
            steps = [(params[0], 0)] + ([(params[1], 0)] if len(params) > 1 else [])
            attrs.setdefault(name, {})['num_filter'] = str(len(index))
            if role == 'depthwise':
                attrs[name]['num_group'] = str(len(index))
        elif role in ('conv input', 'fc input'):
            steps = [(params[0], 1)]
        else:   # batchnorm
            steps = [(p, 0) for p in params[:4]]
        for param, axis in steps:
            if (param, axis) in owner and owner[(param, axis)] != name:
                raise ValueError('param %s is shared by %s and %s: shared weights cannot be '
                                 'thinned' % (param, owner[(param, axis)], name))
            owner[(param, axis)] = name
            slices.setdefault(param, []).append((axis, index))
    return slices, attrs


def _analysis_for(symbol, arg_params, aux_params, keep, data_shape):
    if isinstance(keep, FilterPlan):
        return keep.analysis
    return analyse(symbol, input_shape(symbol, arg_params, aux_params, data_shape))


def thin_symbol(symbol, plan):
    """The thinned graph of a :class:`FilterPlan` (no params: for MAC counts and dry runs)."""
    slices, attrs = _changes(plan.analysis, plan.keep)
    return _rewrite(symbol, attrs, slices)


def _rewrite(symbol, attrs, sliced):
    graph = json.loads(symbol.tojson())
    for node in graph['nodes']:  # fixed shapes on sliced variables would now be wrong
        if node['op'] == 'null' and node['name'] in sliced:
            node.get('attrs', {}).pop('__shape__', None)

    def replace(node, inputs):
        if node.name not in attrs or node.op != 'Convolution':
            return None
        return build_op(Node(node.op, node.name, dict(node.attrs, **attrs[node.name]),
                             node.input_names), inputs)

    return rewrite(mx.sym.load_json(json.dumps(graph)), replace)


def thin_network(symbol, arg_params, aux_params, keep, data_shape=None):
    """Physically remove conv filters, in dependency groups: a smaller dense checkpoint.

    Parameters
    ----------
    symbol, arg_params, aux_params : standard checkpoint
    keep : dict of str -> array of int, or FilterPlan
        Conv layer name -> indices of the filters to keep (see :func:`plan_filters`; every
        other member of the layer's group follows), or a plan from :func:`plan_groups`.
    data_shape : tuple or None
        Input shape (batch axis included), for channel counts and the ``H*W`` columns of a
        FullyConnected after a Flatten. None: the shape the checkpoint implies
        (:func:`mxcompress.analysis.input_shape`).

    Returns
    -------
    symbol, arg_params, aux_params
        Producers' ``num_filter`` (and a depthwise conv's ``num_group``) become the kept
        counts; weights ``(C_out, C_in, kh, kw)`` lose rows and columns, BatchNorm params and
        FullyConnected columns follow. Other params are shared unchanged.

    Raises
    ------
    ValueError
        Before anything is built: unknown layers, a layer of a group that stays dense (the
        reasons named), bad indices, different keep-lists for one group.
    """
    analysis = _analysis_for(symbol, arg_params, aux_params, keep, data_shape)
    slices, attrs = _changes(analysis, _group_keep(analysis, keep))
    new_args, new_aux = dict(arg_params), dict(aux_params or {})
    for name in slices:
        if name not in new_args and name not in new_aux:
            raise ValueError('param %r of the symbol is missing from the checkpoint' % name)
    for name, steps in slices.items():
        target = new_args if name in new_args else new_aux
        value = _np(target[name])
        for axis, index in steps:
            value = np.take(value, index, axis=axis)
        target[name] = mx.nd.array(value, dtype=value.dtype)
    return _rewrite(symbol, attrs, slices), new_args, new_aux


def zero_filters(symbol, arg_params, aux_params, keep, data_shape=None):
    """Reference for :func:`thin_network`: same graph and shapes, removed channels zeroed.

    For every removed channel ``j`` of a group: the producers' (and depthwise convs') filter
    ``W[j]`` and bias ``b[j]``, and ``gamma[j]``, ``beta[j]`` and ``moving_mean[j]`` of every
    BatchNorm on the group, are set to 0, so in inference the channel is exactly 0 wherever it
    flows (through adds, concats, ReLU, clip and pooling) and its consumers see nothing of it.

    Returns
    -------
    symbol, arg_params, aux_params
        New NDArrays for the changed params.
    """
    analysis = _analysis_for(symbol, arg_params, aux_params, keep, data_shape)
    group_keep = _group_keep(analysis, keep)
    nodes = analysis.nodes
    new_args = dict(arg_params)
    new_aux = dict(aux_params or {})
    for i, role, layout in analysis.roles():
        index, changed = layout_index(layout, group_keep, analysis.size)
        if not changed or role not in ('filters', 'depthwise', 'batchnorm'):
            continue
        total = sum(analysis.size(g) * s for g, s in layout)
        removed = np.setdiff1d(np.arange(total), index)
        params = node_params(nodes, i)
        names = params[:3] if role == 'batchnorm' else params[:2]
        for name in names:
            target = new_args if name in new_args else new_aux
            value = _np(target[name]).copy()
            value[removed] = 0
            target[name] = mx.nd.array(value, dtype=value.dtype)
    return symbol, new_args, new_aux
