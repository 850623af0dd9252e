"""Knowledge-distillation losses as Gluon HybridBlocks.

Two losses, each a pure function of ``F`` first and a thin block second:

* :func:`soft_target_loss` / :class:`SoftTargetLoss` -- Hinton, Vinyals and Dean, "Distilling
  the Knowledge in a Neural Network" (2015): cross-entropy between the teacher's and the
  student's softmax at temperature T, times T^2, plus the ordinary cross-entropy with the
  true labels, weighted.
* :func:`tf_style_loss` / :class:`TFStyleLoss` -- a TensorFlow formulation of the same idea
  written in MXNet: sigmoid cross-entropy of ``student / tau`` against the one-hot label plus
  ``0.5 (student / tau - teacher / tau)^2``, combined with ``lamda`` and summed, then divided
  by the batch size.

The teacher's logits always pass through ``BlockGrad``: they are targets, so no gradient
reaches the teacher (a frozen teacher needs none; in joint training it learns from its own
loss).
"""
import math

from mxnet import gluon

__all__ = ['check_temperature', 'check_mimic_weight', 'soft_target_loss', 'tf_style_loss',
           'SoftTargetLoss', 'TFStyleLoss']


def check_temperature(temperature):
    """Return ``float(temperature)``; ValueError unless it is finite and > 0."""
    value = float(temperature)
    if not value > 0 or math.isinf(value):
        raise ValueError('Temperature (--temperature) must be a finite number > 0, got %r'
                         % (temperature,))
    return value


def check_mimic_weight(mimic_weight):
    """Return ``float(mimic_weight)``; ValueError unless it is finite and >= 0."""
    value = float(mimic_weight)
    if not value >= 0 or math.isinf(value):
        raise ValueError('mimic_weight (--mimic-weight) must be a finite number >= 0, got %r'
                         % (mimic_weight,))
    return value


def soft_target_loss(F, student_logits, teacher_logits, label, temperature, soft_weight=1.0,
                     hard_weight=1.0, t2_scaling=True):
    r"""Per-example Hinton distillation loss.

    .. math::

        q = \mathrm{softmax}(z_t / T), \quad p_T = \mathrm{softmax}(z_s / T), \quad
        p = \mathrm{softmax}(z_s)

        L = w_{soft}\, s\, \Big(-\sum_i q_i \log p_{T,i}\Big) + w_{hard}\,(-\log p_y),
        \qquad s = T^2 \text{ if t2\_scaling else } 1

    Gradient with respect to the student logits:
    ``w_soft * s / T * (p_T - q) + w_hard * (p - onehot(y))``; none to the teacher.

    Parameters
    ----------
    F : mx.nd or mx.sym
    student_logits, teacher_logits : (N, C)
    label : (N,) class indices
    temperature : float > 0
    soft_weight, hard_weight : float >= 0
    t2_scaling : bool

    Returns
    -------
    (N,) loss per example
    """
    q = F.softmax(F.BlockGrad(teacher_logits) / temperature, axis=-1)
    soft = -F.sum(q * F.log_softmax(student_logits / temperature, axis=-1), axis=-1)
    if t2_scaling:
        soft = soft * (temperature * temperature)
    hard = -F.pick(F.log_softmax(student_logits, axis=-1), label, axis=-1)
    return soft_weight * soft + hard_weight * hard


def tf_style_loss(F, student_logits, teacher_logits, label, num_classes, tau, lamda):
    r"""A TensorFlow formulation of the distillation loss (Hinton et al. 2015), in MXNet.

    .. math::

        a = z_s / \tau, \quad b = z_t / \tau, \quad y = \mathrm{onehot}(label)

        o_1 = \max(a, 0) - a\,y + \log(1 + e^{-|a|})
        \quad (\texttt{sigmoid\_cross\_entropy\_with\_logits(a, y)})

        o_2 = 0.5\,(a - b)^2

        L = \big(\lambda \textstyle\sum o_1 + (1 - \lambda) \sum o_2\big) / N

    (sums over the batch and the classes; N the batch size), exactly as
    ``tf_loss = (lamda*reduce_sum(objective1) + (1-lamda)*reduce_sum(objective2))/batch_size``.
    Gradient with respect to the student logits:
    ``(lamda * (sigmoid(a) - y) + (1 - lamda) * (a - b)) / (tau * N)``; none to the teacher.

    Returns
    -------
    (1,) the batch loss
    """
    one_hot = F.one_hot(label, depth=num_classes, on_value=1.0, off_value=0.0)
    student_tau = student_logits / tau
    teacher_tau = F.BlockGrad(teacher_logits) / tau
    objective1 = (F.relu(student_tau) - student_tau * one_hot
                  + F.Activation(-F.abs(student_tau), act_type='softrelu'))
    objective2 = 0.5 * F.square(student_tau - teacher_tau)
    total = lamda * F.sum(objective1) + (1.0 - lamda) * F.sum(objective2)
    batch_size = F.cast(F.slice_axis(F.shape_array(student_logits), axis=0, begin=0, end=1),
                        dtype='float32')
    return F.broadcast_div(total, batch_size)


class SoftTargetLoss(gluon.loss.Loss):
    """Hinton's distillation loss (:func:`soft_target_loss`) as a Gluon loss block.

    Parameters
    ----------
    temperature : float
        T > 0 (Hinton et al. used 20 on MNIST).
    soft_weight, hard_weight : float
        Weights (>= 0) of the soft-target and the hard-label cross-entropy.
    t2_scaling : bool
        Multiply the soft term by T^2 so its gradient does not shrink as T grows.
    weight : float or None
        Global scalar weight (Gluon convention).
    batch_axis : int

    Inputs:
        - **student_logits**: (N, C)
        - **teacher_logits**: (N, C), no gradient flows into it
        - **label**: (N,) class indices
        - **sample_weight**: optional, broadcastable to (N,)

    Outputs:
        - **loss**: (N,)
    """

    def __init__(self, temperature=20.0, soft_weight=1.0, hard_weight=1.0, t2_scaling=True,
                 weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._temperature = check_temperature(temperature)
        self._soft_weight = check_mimic_weight(soft_weight)
        self._hard_weight = check_mimic_weight(hard_weight)
        self._t2_scaling = bool(t2_scaling)

    def hybrid_forward(self, F, student_logits, teacher_logits, label, sample_weight=None):
        loss = soft_target_loss(F, student_logits, teacher_logits, label, self._temperature,
                                self._soft_weight, self._hard_weight, self._t2_scaling)
        if sample_weight is not None:
            loss = F.broadcast_mul(loss, sample_weight)
        if self._weight is not None:
            loss = loss * self._weight
        return loss


class TFStyleLoss(gluon.HybridBlock):
    """The TensorFlow-style distillation loss (:func:`tf_style_loss`) as a HybridBlock.

    Parameters
    ----------
    num_classes : int
        Depth of the one-hot label (``n_classes`` in the snippet).
    tau : float
        Temperature > 0 (T = 3 is common; Hinton et al. 2015 used 20 on MNIST).
    lamda : float
        Weight in [0, 1] of the sigmoid cross-entropy; ``1 - lamda`` weights the L2 term.

    Inputs:
        - **student_logits**: (N, C)
        - **teacher_logits**: (N, C), no gradient flows into it
        - **label**: (N,) class indices

    Outputs:
        - **loss**: (1,) summed over batch and classes, divided by N
    """

    def __init__(self, num_classes, tau=3.0, lamda=0.5, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError('num_classes must be >= 1, got %r' % (num_classes,))
        if not 0.0 <= float(lamda) <= 1.0:
            raise ValueError('lamda must be in [0, 1], got %r' % (lamda,))
        self._num_classes = int(num_classes)
        self._tau = check_temperature(tau)
        self._lamda = float(lamda)

    def hybrid_forward(self, F, student_logits, teacher_logits, label):
        return tf_style_loss(F, student_logits, teacher_logits, label, self._num_classes,
                             self._tau, self._lamda)
