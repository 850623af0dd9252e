"""Graph helpers of the teacher/student group (Hinton, Vinyals & Dean, 2015).

Pure functions on MXNet symbols, used by :func:`symbols.distill.get_symbol` to build the
group and by the ``distill`` runner to take the student back out of it:

- renaming a network so teacher and student never share parameter names
  (:func:`add_prefix`, :func:`prefix_params`);
- the logits and the features of any classifier graph (:func:`logits_of`, :func:`features_of`),
  e.g. of a checkpoint or a gluoncv export;
- a frozen teacher's inference mode inside a training module (:func:`inference_mode`);
- the trained student alone and its params (:func:`student_deploy_symbol`,
  :func:`subgraph_params`), the teacher's params for ``fixed_param_names``
  (:func:`teacher_param_names`).
"""
import json

import mxnet as mx

from ..graph import graph_nodes, op_function, rewrite

__all__ = ['HARD_LABEL', 'add_prefix', 'prefix_params', 'logits_of', 'features_of', 'bind_data',
           'inference_mode', 'num_outputs', 'student_deploy_symbol', 'subgraph_params',
           'teacher_param_names']

#: Label input of the ``softmax_hard`` head (``class_labels`` when none is given).
HARD_LABEL = 'softmax_hard_label'
_WEIGHTED = ('FullyConnected', 'Convolution')


def add_prefix(symbol, prefix, keep=('data',)):
    """Copy of ``symbol`` with ``prefix`` put before every node name except ``keep`` and labels.

    Teacher and student built by the same builder would otherwise share parameter names.
    """
    graph = json.loads(symbol.tojson())
    for node in graph['nodes']:
        name = node['name']
        if node['op'] == 'null' and (name in keep or name.endswith('label')):
            continue
        node['name'] = prefix + name
    return mx.sym.load_json(json.dumps(graph))


def prefix_params(params, prefix):
    """``{prefix + name: value}``: the parameters of a symbol renamed by :func:`add_prefix`."""
    return {prefix + name: value for name, value in params.items()}


def internal_output(symbol, node_name):
    internals = symbol.get_internals()
    outputs = internals.list_outputs()
    for candidate in (node_name + '_output', node_name):
        if candidate in outputs:
            return internals[outputs.index(candidate)]
    raise ValueError('node %r has no single output in the graph' % node_name)


def logits_of(symbol):
    """The logits of a classifier: the data input of its final ``SoftmaxOutput`` (if any)."""
    nodes = graph_nodes(symbol)
    last = nodes[json.loads(symbol.tojson())['heads'][0][0]]
    if last['op'] in ('SoftmaxOutput', 'softmax', 'SoftmaxActivation'):
        return internal_output(symbol, nodes[last['inputs'][0][0]]['name'])
    return symbol


def features_of(logits):
    """The features feeding the classifier: the data input of the last weighted layer.

    Walks back from the output through parameter-free ops (Flatten, reshape, ...) to the last
    FullyConnected / Convolution and returns its input, e.g. the pooled features of a
    MobileNetV2 (whose classifier is a 1x1 convolution) or the last hidden layer of an MLP.
    """
    nodes = graph_nodes(logits)
    index = json.loads(logits.tojson())['heads'][0][0]
    while nodes[index]['op'] not in _WEIGHTED:
        if nodes[index]['op'] == 'null' or not nodes[index]['inputs']:
            raise ValueError('no FullyConnected/Convolution classifier found in the graph')
        index = nodes[index]['inputs'][0][0]
    source = nodes[nodes[index]['inputs'][0][0]]
    if source['op'] == 'null':
        return mx.sym.Variable(source['name'])
    return internal_output(logits, source['name'])


def bind_data(symbol, data):
    """Wire ``data`` into ``symbol``'s ``data`` input (one shared input node for both nets)."""
    if data is None or 'data' not in symbol.list_arguments():
        return symbol
    return symbol(data=data)


def inference_mode(symbol):
    """``symbol`` with Dropout removed and BatchNorm on its moving statistics.

    A frozen teacher runs inside a training module (``is_train=True``); this makes its
    outputs those of inference.
    """
    def replace(node, inputs):
        if node.op == 'Dropout':
            return inputs[0]
        if node.op == 'BatchNorm':
            attrs = {k: v for k, v in node.attrs.items() if not k.startswith('__')}
            attrs['use_global_stats'] = 'True'
            return op_function('BatchNorm')(*inputs, name=node.name, **attrs)
        return None
    return rewrite(symbol, replace)


def num_outputs(symbol, data_shape):
    if 'data' not in symbol.list_arguments():
        return None
    _, out_shapes, _ = symbol.infer_shape_partial(data=data_shape)
    shape = out_shapes[0] if out_shapes else None
    return int(shape[-1]) if shape and len(shape) == 2 and shape[-1] else None


def student_deploy_symbol(group):
    """The student alone: ``fc_class_score`` -> ``SoftmaxOutput`` named ``softmax``.

    Input ``data``, first output ``softmax_output`` (probabilities in inference), like every
    model of :mod:`symbols`.
    """
    return mx.sym.SoftmaxOutput(internal_output(group, 'fc_class_score'), name='softmax')


def subgraph_params(symbol, arg_params, aux_params):
    """The params of ``arg_params`` / ``aux_params`` that ``symbol`` uses."""
    args, auxs = set(symbol.list_arguments()), set(symbol.list_auxiliary_states())
    return ({k: v for k, v in arg_params.items() if k in args},
            {k: v for k, v in aux_params.items() if k in auxs})


def teacher_param_names(group):
    """Arguments and auxiliary states of the teacher branch (for ``fixed_param_names``)."""
    teacher = internal_output(group, 'teacher_soft_labels')
    return [a for a in teacher.list_arguments() + teacher.list_auxiliary_states()
            if a != 'data' and not a.endswith('label')]
