"""LeNet-300-100: the fully connected 784-300-100-10 network of LeCun et al. (1998).

266,610 parameters (1,066,440 bytes in fp32); the reference network of Han et al. (2015).
"""
import mxnet as mx


def get_symbol(num_classes=10, name='lenet300', **kwargs):
    """Build LeNet-300-100.

    Parameters
    ----------
    num_classes : int
        Size of the last layer.
    name : str
        Prefix of every op name.

    Returns
    -------
    mx.sym.Symbol
        Input ``data`` (N, 1, 28, 28) or (N, 784); output ``softmax`` (N, num_classes)
        probabilities, label ``softmax_label`` (N,).
    """
    if kwargs:
        raise TypeError('lenet300 takes no options besides num_classes, got %s' % sorted(kwargs))
    data = mx.sym.Variable('data')
    x = mx.sym.Flatten(data, name=name + '_flatten')
    for i, width in enumerate((300, 100), start=1):
        x = mx.sym.FullyConnected(x, num_hidden=width, name='%s_fc%d' % (name, i))
        x = mx.sym.Activation(x, act_type='relu', name='%s_relu%d' % (name, i))
    x = mx.sym.FullyConnected(x, num_hidden=num_classes, name=name + '_fc3')
    return mx.sym.SoftmaxOutput(x, name='softmax')
