"""A shallow CNN student (Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?").

conv 3x3 x c1 (pad 1) - relu - maxpool 2 - conv 3x3 x c2 (pad 1) - relu - maxpool 2 - fc
num_classes. With the default (8, 16) filters: 9,098 parameters and about 0.2 M
multiply-accumulates per 28 x 28 image.
"""
import mxnet as mx


def get_symbol(num_classes=10, conv_filters=(8, 16), name='shallow', **kwargs):
    """Build the shallow CNN.

    Parameters
    ----------
    num_classes : int
    conv_filters : tuple of int
        Filters of the two 3x3 convolutions.
    name : str
        Prefix of every op name.

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28); output ``softmax`` (N, num_classes).
    """
    if kwargs:
        raise TypeError('shallow-cnn got unknown options %s' % sorted(kwargs))
    if not conv_filters or any(int(c) < 1 for c in conv_filters):
        raise ValueError('conv_filters must be positive, got %r' % (conv_filters,))
    x = mx.sym.Variable('data')
    for i, filters in enumerate(conv_filters, start=1):
        x = mx.sym.Convolution(x, num_filter=int(filters), kernel=(3, 3), pad=(1, 1),
                               name='%s_conv%d' % (name, i))
        x = mx.sym.Activation(x, act_type='relu', name='%s_relu%d' % (name, i))
        x = mx.sym.Pooling(x, pool_type='max', kernel=(2, 2), stride=(2, 2),
                           name='%s_pool%d' % (name, i))
    x = mx.sym.Flatten(x, name=name + '_flatten')
    x = mx.sym.FullyConnected(x, num_hidden=num_classes, name=name + '_fc')
    return mx.sym.SoftmaxOutput(x, name='softmax')
