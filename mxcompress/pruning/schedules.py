"""Pruning schedules: Zhu & Gupta's gradual (AGP) schedule and Han's iterative steps.

Automated gradual pruning (Zhu & Gupta, "To prune, or not to prune", 2017) raises the
sparsity of each layer from ``s_i`` to ``s_f`` over ``n`` pruning steps spaced ``dt`` updates
apart, starting at update ``t0``::

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n dt))^3,    t0 <= t <= t0 + n dt

fast at first, while the network has redundant weights, and slowly near the end.
:class:`AGPCallback` applies it from a Module ``batch_end_callback``: every ``dt`` updates it
recomputes each layer's level mask on the effective weights ``|W * M|`` and writes the new mask
(and the zeroed latent weight) into the running module.

Han's iterative pruning (NIPS 2015) alternates pruning and retraining; :func:`iterative_targets`
gives the per-step targets, :func:`mxcompress.pruning.finetune.prune_and_finetune` runs the loop.
"""
import logging

import mxnet as mx
import numpy as np

from .criteria import check_sparsity, level_mask
from .masks import mask_name

__all__ = ['agp_sparsity', 'AGPCallback', 'iterative_targets']


def agp_sparsity(step, final_sparsity, begin_step, end_step, initial_sparsity=0.0):
    """Zhu & Gupta's cubic sparsity at update ``step``.

    Parameters
    ----------
    step : int
        Current update (optimizer step).
    final_sparsity, initial_sparsity : float in [0, 1)
    begin_step, end_step : int
        Sparsity is ``initial_sparsity`` up to ``begin_step`` and ``final_sparsity`` from
        ``end_step`` on.

    Returns
    -------
    float
    """
    final_sparsity = check_sparsity(final_sparsity, 'final sparsity')
    initial_sparsity = check_sparsity(initial_sparsity, 'initial sparsity')
    if end_step <= begin_step:
        raise ValueError('end_step (%d) must exceed begin_step (%d)' % (end_step, begin_step))
    if step <= begin_step:
        return initial_sparsity
    if step >= end_step:
        return final_sparsity
    progress = (step - begin_step) / float(end_step - begin_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def iterative_targets(final, steps):
    """Targets of Han's ``steps`` prune -> retrain iterations, ending at ``final``.

    The k-th target (k = 1..steps) follows the cubic ramp ``final * (1 - (1 - k/steps)^3)``
    (big cuts first, small ones last). ``final`` may be a float or a dict layer -> value.
    """
    if steps < 1:
        raise ValueError('steps must be >= 1, got %d' % steps)
    fractions = [1.0 - (1.0 - k / float(steps)) ** 3 for k in range(1, steps + 1)]
    if isinstance(final, dict):
        return [{k: v * f for k, v in final.items()} for f in fractions]
    return [final * f for f in fractions]


class AGPCallback(object):
    """Module ``batch_end_callback`` that prunes gradually with the AGP schedule.

    Parameters
    ----------
    targets : dict of str -> float
        Weight variable name -> final sparsity in [0, 1). The module's symbol must hold a mask
        ``<weight>_mask`` for each (see :func:`mxcompress.pruning.masks.insert_masks` with
        all-ones masks) and list the masks in ``fixed_param_names``.
    begin_step, end_step : int
        Updates at which pruning starts and reaches the final sparsity.
    frequency : int
        Recompute masks every ``frequency`` updates (``dt``).
    logger : logging.Logger or None

    Notes
    -----
    The callback reads the params with ``module.get_params()`` and writes only the changed
    masks and weights back with ``module.set_params(..., allow_missing=True)``, which works for
    single-device (and ``local`` kvstore) training, where the module holds the weights. The
    effective weight ``W * M`` of a newly pruned entry is exactly 0 from then on; its latent
    weight is zeroed too, although a non-zero momentum buffer may move it again. Stripping
    the masks (:func:`strip_masks`) stores ``W * M``, so the saved weights are exact zeros.
    """

    def __init__(self, targets, begin_step, end_step, frequency=100, logger=None):
        self.targets = {w: check_sparsity(s, 'sparsity of %s' % w) for w, s in targets.items()}
        if frequency < 1:
            raise ValueError('frequency must be >= 1, got %d' % frequency)
        agp_sparsity(begin_step, 0.0, begin_step, end_step)  # validates the steps
        self.begin_step, self.end_step, self.frequency = begin_step, end_step, frequency
        self.step = 0
        self.history = []  # (step, {weight: sparsity}) after each pruning
        self.logger = logger or logging.getLogger('mxcompress')

    def __call__(self, param):
        self.step += 1
        t = self.step
        due = (t - self.begin_step) % self.frequency == 0 or t == self.end_step
        if t < self.begin_step or t > self.end_step or not due:
            return
        self.apply(param.locals['self'], t)

    def apply(self, module, step):
        """Prune ``module``'s masked layers to their scheduled sparsity at ``step``."""
        arg_params, _ = module.get_params()
        update, reached = {}, {}
        for weight, final in self.targets.items():
            target = agp_sparsity(step, final, self.begin_step, self.end_step)
            mask_key = mask_name(weight)
            effective = arg_params[weight].asnumpy() * arg_params[mask_key].asnumpy()
            mask = level_mask(effective, target)
            update[weight] = mx.nd.array(effective * mask)
            update[mask_key] = mx.nd.array(mask)
            reached[weight] = 1.0 - float(np.count_nonzero(mask)) / mask.size
        module.set_params(update, {}, allow_missing=True, force_init=True)
        self.history.append((step, reached))
        self.logger.info('AGP step %d: sparsity %s', step,
                         ', '.join('%s %.3f' % kv for kv in reached.items()))
