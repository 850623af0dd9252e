"""Configurable multilayer perceptron: Hinton et al.'s (2015) distillation teacher
(784-1200-1200-10, dropout) and student (784-800-800-10)."""
import mxnet as mx


def get_symbol(num_classes=10, hidden=(800, 800), dropout=0.0, input_dropout=0.0,
               name='mlp', **kwargs):
    """Build an MLP with ReLU hidden layers.

    Parameters
    ----------
    num_classes : int
    hidden : sequence of int
        Widths of the hidden layers, e.g. (1200, 1200) for the teacher.
    dropout : float
        Dropout rate after each hidden layer, in [0, 1).
    input_dropout : float
        Dropout rate on the input pixels, in [0, 1).
    name : str
        Prefix of every op name.

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28) or (N, 784); output ``softmax`` (N, num_classes).
    """
    if kwargs:
        raise TypeError('mlp got unknown options %s' % sorted(kwargs))
    for arg, rate in (('dropout', dropout), ('input_dropout', input_dropout)):
        if not 0.0 <= rate < 1.0:
            raise ValueError('%s must be in [0, 1), got %r' % (arg, rate))
    if not hidden or any(int(h) < 1 for h in hidden):
        raise ValueError('hidden must be a non-empty list of positive widths, got %r' % (hidden,))
    x = mx.sym.Flatten(mx.sym.Variable('data'), name=name + '_flatten')
    if input_dropout:
        x = mx.sym.Dropout(x, p=input_dropout, name=name + '_dropin')
    for i, width in enumerate(hidden, start=1):
        x = mx.sym.FullyConnected(x, num_hidden=int(width), name='%s_fc%d' % (name, i))
        x = mx.sym.Activation(x, act_type='relu', name='%s_relu%d' % (name, i))
        if dropout:
            x = mx.sym.Dropout(x, p=dropout, name='%s_drop%d' % (name, i))
    x = mx.sym.FullyConnected(x, num_hidden=num_classes, name='%s_fc%d' % (name, len(hidden) + 1))
    return mx.sym.SoftmaxOutput(x, name='softmax')
