"""LeNet-5, Caffe variant: conv 5x5x20 - maxpool 2 - conv 5x5x50 - maxpool 2 - fc 500 - relu - fc 10.

431,080 parameters (1,724,320 bytes in fp32); the reference network of Han et al. (2015).
"""
import mxnet as mx


def get_symbol(num_classes=10, name='lenet5', conv_filters=(20, 50), fc_hidden=500, **kwargs):
    """Build LeNet-5 (Caffe variant).

    Parameters
    ----------
    num_classes : int
        Size of the last layer.
    name : str
        Prefix of every op name.
    conv_filters : tuple of int
        Filters of the two conv layers (filter pruning produces thinner variants).
    fc_hidden : int
        Width of the hidden fully connected layer.

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28); output ``softmax`` (N, num_classes), label ``softmax_label``.
    """
    if kwargs:
        raise TypeError('lenet5 got unknown options %s' % sorted(kwargs))
    x = mx.sym.Variable('data')
    for i, filters in enumerate(conv_filters, start=1):
        x = mx.sym.Convolution(x, num_filter=filters, kernel=(5, 5), name='%s_conv%d' % (name, i))
        x = mx.sym.Pooling(x, pool_type='max', kernel=(2, 2), stride=(2, 2),
                           name='%s_pool%d' % (name, i))
    x = mx.sym.Flatten(x, name=name + '_flatten')
    x = mx.sym.FullyConnected(x, num_hidden=fc_hidden, name=name + '_fc1')
    x = mx.sym.Activation(x, act_type='relu', name=name + '_relu1')
    x = mx.sym.FullyConnected(x, num_hidden=num_classes, name=name + '_fc2')
    return mx.sym.SoftmaxOutput(x, name='softmax')
