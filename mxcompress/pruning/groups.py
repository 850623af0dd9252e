"""Dependency groups of channels in an MXNet Symbol: what filter pruning must remove together.

Removing output channel ``j`` of a convolution is only possible if every tensor that carries
channel ``j`` loses it consistently. On a Symbol the graph is explicit, so the channels that
are coupled can be found exactly by one pass over the JSON in topological order, the way
DepGraph (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023) groups coupled
parameters by tracing a PyTorch graph.

Every node output ``x`` of shape ``(N, C, ...)`` gets a *layout*: the list of channel groups
its ``C`` channels are made of, in order, each with the number of features ``S`` one channel
occupies on the channel axis (``S = 1`` for a feature map; ``S = H * W`` once a map is
flattened). With ``C_g`` channels in group ``g``, a layout ``[(g_1, S_1), (g_2, S_2), ...]``
covers ``sum_k C_{g_k} S_k`` features; channel ``c`` of ``g_k`` occupies the features
``offset_k + c S_k ... offset_k + (c + 1) S_k - 1``.

How each op maps layouts (the rules of :func:`analyse`):

============================================  =====================================================
op                                            layout of the output
============================================  =====================================================
``Convolution`` (``num_group = 1``)           a new group of ``num_filter`` channels; the conv is
                                              its *producer* (weight rows ``W[j]``, bias ``b[j]``)
                                              and a *consumer* of its input (weight columns
                                              ``W[:, c]``)
depthwise ``Convolution``                     the input's layout (channel ``j`` out reads only
(``num_group = C_in = num_filter``)           channel ``j`` in): weight rows, bias, ``num_filter``
                                              and ``num_group`` shrink with the input's groups
other grouped ``Convolution``                 input and output groups left dense (reported)
``BatchNorm`` (axis 1), Activation, clip,     the input's layout (``gamma, beta, moving_mean,
Pooling (incl. global), Dropout, scalar ops   moving_var`` sliced)
``elemwise_add`` / ``broadcast_add`` /        the inputs' groups are merged (union-find): a
``_Plus`` / ``_plus`` / sub / mul / max       residual block's conv, its 1x1 projection or the
                                              block input's producer (identity path) form one group
``Concat`` (dim 1)                            the inputs' layouts concatenated: each input keeps
                                              its own group, at its channel offset
``Flatten``, ``FullyConnected(flatten)``      each channel becomes its ``H * W`` block of columns
                                              (``S`` multiplied by ``H * W``); FC columns sliced
anything else (Reshape, transpose,            every group it reads is *blocked*: left dense, with
SliceChannel, softmax, LRN, ...), graph       the reason in the plan -- never an error mid-run
inputs and outputs
============================================  =====================================================

A group is prunable when it has at least one producer conv and nothing blocks it. Removing
channel set ``R`` of group ``g`` then removes, in every member, exactly the features of ``R``
(Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017: filters and the next layer's
kernels; Liu et al., "Learning Efficient Convolutional Networks through Network Slimming",
ICCV 2017: the BatchNorm channels too).
"""
import collections
import json

import numpy as np

from ..graph import parse_tuple

__all__ = ['ChannelGroup', 'GroupAnalysis', 'analyse', 'layout_index', 'node_params', 'PASSTHROUGH',
           'ELEMENTWISE']

#: unary ops that keep channels one-to-one (channel j out depends on channel j in only)
PASSTHROUGH = ('Activation', 'relu', 'sigmoid', 'tanh', 'softrelu', 'softsign', 'LeakyReLU',
               'Pooling', 'Dropout', 'clip', '_copy', 'identity', 'BlockGrad', 'stop_gradient',
               'Cast', 'cast', 'abs', 'square', 'sqrt', 'exp', 'log', 'negative', 'hard_sigmoid',
               '_mul_scalar', '_plus_scalar', '_minus_scalar', '_rminus_scalar', '_div_scalar',
               '_rdiv_scalar', '_power_scalar', '_maximum_scalar', '_minimum_scalar',
               '_MulScalar', '_PlusScalar', '_MinusScalar', '_DivScalar', 'Pad', 'UpSampling')
#: ops combining same-shaped tensors channel by channel: their inputs' groups merge
ELEMENTWISE = ('elemwise_add', 'broadcast_add', '_Plus', '_plus', '_add', 'add_n',
               'ElementWiseSum', 'elemwise_sub', 'broadcast_sub', '_Minus', '_minus', '_sub',
               'elemwise_mul', 'broadcast_mul', '_Mul', '_mul', 'elemwise_div', 'broadcast_div',
               '_maximum', '_minimum', 'broadcast_maximum', 'broadcast_minimum', '_Maximum',
               '_Minimum')

#: One channel group. ``name``: its first producer conv in graph order (``groupN`` when it has
#: none); ``channels``: ``C_g``; ``producers``: conv layers whose filters (weight rows) make
#: its channels; ``members``: ``(node name, role)`` of everything that is sliced with it, role
#: in ``filters``, ``depthwise``, ``conv input``, ``fc input``, ``batchnorm`` (and ``grouped``:
#: the output of a grouped conv, a group that always stays dense);
#: ``reasons``: why it stays dense (empty when prunable).
ChannelGroup = collections.namedtuple('ChannelGroup', 'id name channels producers members '
                                                      'reasons')


def _true(text):
    return str(text).strip().lower() in ('true', '1')


class _UnionFind:
    def __init__(self):
        self.parent, self.size, self.reasons, self.origin = [], [], [], []

    def new(self, size, reason=None, origin=None):
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.reasons.append([reason] if reason else [])
        self.origin.append(origin)
        return len(self.parent) - 1

    def find(self, g):
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.reasons[a] += self.reasons[b]
        return a

    def block(self, g, reason):
        root = self.find(g)
        if reason not in self.reasons[root]:
            self.reasons[root].append(reason)


class GroupAnalysis:
    """The channel groups of a symbol (see the module docstring); made by :func:`analyse`.

    Attributes
    ----------
    groups : list of ChannelGroup
        Every group with a producer conv, in graph order of the producer.
    nodes : list of dict
        The symbol's JSON nodes.
    data_shape : tuple
        The input shape the analysis was made for.
    """

    def __init__(self, symbol, nodes, uf, layouts, roles, data_shape):
        self.symbol, self.nodes, self._uf = symbol, nodes, uf
        self._layouts, self._roles, self.data_shape = layouts, roles, tuple(data_shape)
        by_root = collections.OrderedDict()
        for index, role, layout in roles:
            for g, _ in layout:
                entry = by_root.setdefault(uf.find(g), {'producers': [], 'members': []})
                member = (nodes[index]['name'], role)
                if member not in entry['members']:
                    entry['members'].append(member)
                if role in ('filters', 'grouped'):
                    entry['producers'].append(nodes[index]['name'])
        self.groups, self._by_root, self._by_layer = [], {}, {}
        for root, entry in by_root.items():
            if not entry['producers']:
                continue
            group = ChannelGroup(root, entry['producers'][0], uf.size[root],
                                 tuple(entry['producers']), tuple(entry['members']),
                                 tuple(uf.reasons[root]))
            self.groups.append(group)
            self._by_root[root] = group
            for name in entry['producers']:
                self._by_layer[name] = group
        for index, role, layout in roles:   # a depthwise conv names the group it sits in
            if role == 'depthwise' and len(layout) == 1:
                root = uf.find(layout[0][0])
                if root in self._by_root:
                    self._by_layer.setdefault(nodes[index]['name'], self._by_root[root])

    @property
    def prunable(self):
        """Groups that can be thinned (a producer conv, nothing blocking)."""
        return [g for g in self.groups if not g.reasons]

    @property
    def blocked(self):
        """Groups left dense, each with its reasons."""
        return [g for g in self.groups if g.reasons]

    def group_of(self, layer):
        """The group whose channels conv ``layer`` produces (or filters depthwise).

        Raises
        ------
        ValueError
            ``layer`` is not a Convolution of the graph.
        """
        if layer not in self._by_layer:
            convs = [n['name'] for n in self.nodes if n['op'] == 'Convolution']
            raise ValueError('unknown conv layer %r; Convolution layers of this model: %s'
                             % (layer, ', '.join(convs) or 'none'))
        return self._by_layer[layer]

    def roles(self):
        """``(node index, role, layout)`` of every sliced member, layouts as
        ``[(group id, S), ...]`` with group ids resolved to their groups."""
        return [(i, role, [(self._uf.find(g), s) for g, s in layout])
                for i, role, layout in self._roles]

    def size(self, g):
        """Channel count ``C_g`` of group id ``g``."""
        return self._uf.size[self._uf.find(g)]


def _shape_table(symbol, data_shape):
    internals = symbol.get_internals()
    try:
        _, shapes, _ = internals.infer_shape_partial(data=tuple(data_shape))
    except Exception:   # an op whose shape cannot be inferred: no shapes, groups blocked
        return {}
    return {name: tuple(s) if s else None for name, s in zip(internals.list_outputs(), shapes)}


def _entry_shape(table, node, index):
    name = node['name']
    keys = (name,) if node['op'] == 'null' else (
        name + '_output', name + '_output%d' % index) if index == 0 else (
        name + '_output%d' % index,)
    for key in keys:
        shape = table.get(key)
        if shape:
            return shape
    return None


def analyse(symbol, data_shape):
    """Find the channel groups of ``symbol`` (one pass over its JSON, no params needed).

    Parameters
    ----------
    symbol : mx.sym.Symbol
    data_shape : tuple
        Shape of the input ``data`` (batch axis included, e.g. ``(1, 3, 224, 224)``): channel
        counts and the ``H * W`` of flattened maps come from shape inference.

    Returns
    -------
    GroupAnalysis
        Never raises for an op it does not understand: the groups it touches are blocked,
        with the op named in ``reasons``.
    """
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    table = _shape_table(symbol, data_shape)
    uf = _UnionFind()
    layouts, roles = {}, []

    def shape(entry):
        return _entry_shape(table, nodes[entry[0]], entry[1])

    def layout_of(entry, reason=None):
        key = (entry[0], entry[1])
        if key not in layouts:
            node = nodes[key[0]]
            s = shape(key)
            size = int(s[1]) if s and len(s) >= 2 else (int(s[0]) if s else 0)
            why = reason or ('graph input %r' % node['name'] if node['op'] == 'null' else
                             'output %d of %s %r' % (key[1], node['op'], node['name']))
            layouts[key] = [(uf.new(size, why), 1)]
        return layouts[key]

    def block(layout, reason):
        for g, _ in layout:
            uf.block(g, reason)

    def merge(first, other, reason):
        same = len(first) == len(other) and all(
            uf.size[uf.find(a)] == uf.size[uf.find(b)] and sa == sb
            for (a, sa), (b, sb) in zip(first, other))
        if same:
            for (a, _), (b, _) in zip(first, other):
                uf.union(a, b)
        else:
            block(first, reason)
            block(other, reason)

    for i, node in enumerate(nodes):
        op, name = node['op'], node['name']
        attrs = node.get('attrs', node.get('attr', node.get('param', {}))) or {}
        inputs = node['inputs']
        if op == 'null':
            continue
        what = '%s %r' % (op, name)
        if op == 'Convolution':
            in_layout = layout_of(inputs[0])
            in_shape = shape(inputs[0])
            groups, filters = int(attrs.get('num_group', 1)), int(attrs['num_filter'])
            channels = int(in_shape[1]) if in_shape else None
            if any(s != 1 for _, s in in_layout) or channels is None:
                block(in_layout, 'input of %s has no channel layout' % what)
                layouts[(i, 0)] = [(uf.new(filters, 'output of %s' % what), 1)]
            elif groups == 1:
                roles.append((i, 'conv input', in_layout))
                layouts[(i, 0)] = [(uf.new(filters, origin=i), 1)]
                roles.append((i, 'filters', layouts[(i, 0)]))
            elif groups == channels == filters:
                layouts[(i, 0)] = in_layout
                roles.append((i, 'depthwise', in_layout))
            else:
                reason = ('grouped convolution %r (num_group=%d, %d -> %d channels) cannot be '
                          'thinned consistently' % (name, groups, channels, filters))
                block(in_layout, reason)
                layouts[(i, 0)] = [(uf.new(filters, reason), 1)]
                roles.append((i, 'grouped', layouts[(i, 0)]))
        elif op == 'FullyConnected':
            in_layout = layout_of(inputs[0])
            in_shape = shape(inputs[0])
            if in_shape and len(in_shape) > 2 and _true(attrs.get('flatten', 'True')):
                spatial = int(np.prod(in_shape[2:]))
                roles.append((i, 'fc input', [(g, s * spatial) for g, s in in_layout]))
            elif in_shape and len(in_shape) == 2:
                roles.append((i, 'fc input', in_layout))
            else:
                block(in_layout, 'input of %s (flatten=False on a map)' % what)
            layouts[(i, 0)] = [(uf.new(int(attrs['num_hidden']),
                                       'output of %s (neurons are not filters)' % what), 1)]
        elif op == 'BatchNorm':
            in_layout = layout_of(inputs[0])
            in_shape = shape(inputs[0])
            axis = int(attrs.get('axis', 1))
            if in_shape and axis < 0:
                axis += len(in_shape)
            if axis != 1 or any(s != 1 for _, s in in_layout):
                block(in_layout, 'input of %s (axis %s is not the channel axis)' % (what, axis))
            else:
                roles.append((i, 'batchnorm', in_layout))
                layouts[(i, 0)] = in_layout
        elif op in PASSTHROUGH:
            in_layout = layout_of(inputs[0])
            fine = len(inputs) == 1
            if op == 'LeakyReLU' and attrs.get('act_type', 'leaky') in ('prelu',):
                fine = False
            if op == 'Pad':
                width = parse_tuple(attrs.get('pad_width', '()'))
                fine = fine and len(width) >= 4 and not any(width[:4])
            if op == 'UpSampling':
                fine = fine and attrs.get('sample_type', 'nearest') == 'nearest'
            if op == 'Pooling' and attrs.get('layout', 'None') not in ('None', 'NCHW', 'NCW',
                                                                          'NCDHW'):
                fine = False
            if fine:
                layouts[(i, 0)] = in_layout
            else:
                block(in_layout, 'input of %s (not channel-wise here)' % what)
        elif op in ('Flatten', 'flatten'):
            in_layout = layout_of(inputs[0])
            in_shape = shape(inputs[0])
            if in_shape is None:
                block(in_layout, 'input of %s (unknown shape)' % what)
            else:
                spatial = int(np.prod(in_shape[2:])) if len(in_shape) > 2 else 1
                layouts[(i, 0)] = [(g, s * spatial) for g, s in in_layout]
        elif op in ELEMENTWISE:
            out_shape = _entry_shape(table, node, 0)
            full = []
            for entry in inputs:
                in_layout, in_shape = layout_of(entry), shape(entry)
                if out_shape and in_shape == out_shape:
                    full.append(in_layout)
                elif (out_shape and in_shape and len(in_shape) == len(out_shape)
                      and len(in_shape) > 1 and in_shape[1] == 1):
                    continue          # broadcast along channels: not coupled
                else:
                    block(in_layout, 'input of %s (shapes %s -> %s)'
                          % (what, in_shape, out_shape))
            for other in full[1:]:
                merge(full[0], other, 'inputs of %s are concatenated differently' % what)
            if full:
                layouts[(i, 0)] = full[0]
        elif op == 'Concat':
            in_shape = shape(inputs[0]) if inputs else None
            dim = int(attrs.get('dim', 1))
            if in_shape and dim < 0:
                dim += len(in_shape)
            if dim == 1:
                layouts[(i, 0)] = [item for entry in inputs for item in layout_of(entry)]
            else:
                for entry in inputs:
                    block(layout_of(entry), 'input of %s (dim=%d is not channels)' % (what, dim))
        else:
            for entry in inputs:
                block(layout_of(entry), 'input of %s, which mixes channels or is not '
                                        'understood' % what)
    for entry in graph['heads']:
        block(layout_of(entry), 'graph output %r' % nodes[entry[0]]['name'])
    users = collections.defaultdict(set)      # a param sliced for two nodes must not be
    for i, _, _ in roles:                     # sliced twice (shared weights stay dense)
        for entry in nodes[i]['inputs'][1:]:
            users[entry[0]].add(i)
    for i, _, layout in roles:
        shared = [nodes[e[0]]['name'] for e in nodes[i]['inputs'][1:] if len(users[e[0]]) > 1]
        if shared:
            block(layout, 'param %s of %r is shared with another layer' % (shared[0],
                                                                             nodes[i]['name']))
    if not table:
        for g in range(len(uf.parent)):
            uf.block(g, 'shapes cannot be inferred for input shape %s' % (tuple(data_shape),))
    return GroupAnalysis(symbol, nodes, uf, layouts, roles, data_shape)


def layout_index(layout, keep, sizes):
    """Feature indices a layout keeps.

    Parameters
    ----------
    layout : list of (group id, S)
        Resolved group ids (see :meth:`GroupAnalysis.roles`).
    keep : dict of int -> numpy.ndarray
        Kept channels of the groups being thinned (others keep everything).
    sizes : callable
        Group id -> channel count ``C_g``.

    Returns
    -------
    index : numpy.ndarray of int
        ``concat_k (offset_k + (keep_{g_k}[:, None] * S_k + arange(S_k)).ravel())``.
    changed : bool
        Whether anything is removed.
    """
    parts, offset, changed = [], 0, False
    for g, s in layout:
        size = sizes(g)
        kept = keep.get(g)
        if kept is None:
            kept = np.arange(size)
        else:
            changed = changed or len(kept) != size
        parts.append(offset + (np.asarray(kept, np.int64)[:, None] * s
                               + np.arange(s)[None, :]).ravel())
        offset += size * s
    index = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return index, changed


def node_params(nodes, index):
    """Names of the variables wired to node ``index``'s inputs 1.. (weight, bias, gamma...)."""
    return [nodes[e[0]]['name'] for e in nodes[index]['inputs'][1:]]
