"""Gluon distillation losses: values and gradients against hand-computed numpy references."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from mxcompress.distillation.losses import SoftTargetLoss, TFStyleLoss


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _inputs(n=6, c=5, seed=0):
    rng = np.random.RandomState(seed)
    student = rng.randn(n, c) * 3
    teacher = rng.randn(n, c) * 3
    label = rng.randint(0, c, size=n)
    return student, teacher, label


def _run(block, student, teacher, label, hybridize=False):
    if hybridize:
        block.hybridize()
    s = mx.nd.array(student)
    t = mx.nd.array(teacher)
    s.attach_grad()
    t.attach_grad()
    with autograd.record():
        loss = block(s, t, mx.nd.array(label))
    loss.backward()
    return loss.asnumpy(), s.grad.asnumpy(), t.grad.asnumpy()


@pytest.mark.parametrize('temperature,t2', [(1.0, True), (4.0, True), (20.0, False)])
@pytest.mark.parametrize('hybridize', [False, True])
def test_soft_target_loss_value_and_gradient(temperature, t2, hybridize):
    student, teacher, label = _inputs()
    w_soft, w_hard = 0.7, 0.3
    loss, grad_s, grad_t = _run(SoftTargetLoss(temperature, w_soft, w_hard, t2_scaling=t2),
                                student, teacher, label, hybridize)
    q = _softmax(teacher / temperature)
    p_t = _softmax(student / temperature)
    p = _softmax(student)
    onehot = np.eye(student.shape[1])[label]
    scale = temperature ** 2 if t2 else 1.0
    expected = (w_soft * scale * -(q * np.log(p_t)).sum(1)
                + w_hard * -np.log(p[np.arange(len(label)), label]))
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
    # d loss.sum() / d z_s = w_soft * scale / T * (p_T - q) + w_hard * (p - y)
    expected_grad = w_soft * scale / temperature * (p_t - q) + w_hard * (p - onehot)
    np.testing.assert_allclose(grad_s, expected_grad, rtol=1e-4, atol=1e-5)
    assert not grad_t.any(), 'the teacher must receive no gradient'


def test_soft_target_loss_sample_weight_and_identical_logits():
    student, _, label = _inputs()
    block = SoftTargetLoss(temperature=5.0, soft_weight=1.0, hard_weight=0.0)
    weight = mx.nd.array(np.arange(6).reshape(6, 1) / 5.0)
    s = mx.nd.array(student)
    loss = block(s, s, mx.nd.array(label), weight.reshape(-1)).asnumpy()
    q = _softmax(student / 5.0)
    entropy = -(q * np.log(q)).sum(1) * 25.0  # CE(q, q) = H(q): the soft term's minimum
    np.testing.assert_allclose(loss, entropy * np.arange(6) / 5.0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('tau,lamda', [(3.0, 0.5), (1.0, 1.0), (7.5, 0.2)])
@pytest.mark.parametrize('hybridize', [False, True])
def test_tf_style_loss_value_and_gradient(tau, lamda, hybridize):
    student, teacher, label = _inputs(n=8, c=4, seed=1)
    loss, grad_s, grad_t = _run(TFStyleLoss(num_classes=4, tau=tau, lamda=lamda), student,
                                teacher, label, hybridize)
    a, b = student / tau, teacher / tau
    y = np.eye(4)[label]
    sig = 1.0 / (1.0 + np.exp(-a))
    objective1 = -(y * np.log(sig) + (1 - y) * np.log(1 - sig))  # the textbook form
    objective2 = 0.5 * (a - b) ** 2
    batch_size = len(label)
    expected = (lamda * objective1.sum() + (1 - lamda) * objective2.sum()) / batch_size
    assert loss.shape == (1,)
    np.testing.assert_allclose(loss[0], expected, rtol=1e-5)
    expected_grad = (lamda * (sig - y) + (1 - lamda) * (a - b)) / (tau * batch_size)
    np.testing.assert_allclose(grad_s, expected_grad, rtol=1e-4, atol=1e-6)
    assert not grad_t.any()


def test_tf_style_loss_is_stable_for_large_logits():
    student = np.array([[200.0, -200.0, 0.0]])
    loss, grad, _ = _run(TFStyleLoss(3, tau=1.0, lamda=1.0), student, student, np.array([0]))
    # sigmoid CE: label 1 at +200 -> 0; label 0 at -200 -> 0; label 0 at 0 -> log 2
    np.testing.assert_allclose(loss[0], np.log(2.0), rtol=1e-6)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize('bad', [0.0, -1.0, float('nan'), float('inf')])
def test_bad_temperature_is_rejected(bad):
    with pytest.raises(ValueError, match='Temperature'):
        SoftTargetLoss(temperature=bad)
    with pytest.raises(ValueError, match='Temperature'):
        TFStyleLoss(10, tau=bad)


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError, match='>= 0'):
        SoftTargetLoss(temperature=2.0, soft_weight=-0.5)
    with pytest.raises(ValueError, match='lamda'):
        TFStyleLoss(10, tau=2.0, lamda=1.5)
    with pytest.raises(ValueError, match='num_classes'):
        TFStyleLoss(0)
