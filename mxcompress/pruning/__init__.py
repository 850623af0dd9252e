"""Pruning and sparsity: masks, criteria, schedules, filter removal, regularisation, sensitivity.

Every function maps a standard checkpoint ``(symbol, arg_params, aux_params)`` to another one.

- :mod:`.masks`: ``MaskedDense`` / ``MaskedConv2D`` blocks, ``insert_masks`` / ``strip_masks``
  rewrites of any checkpoint.
- :mod:`.criteria`: ``level_mask``, ``threshold_mask`` (Han), ``global_masks``.
- :mod:`.schedules`: ``agp_sparsity`` / ``AGPCallback`` (Zhu & Gupta), ``iterative_targets`` (Han).
- :mod:`.finetune`: ``prune_and_finetune``, ``masked_finetune`` (the entry points for other
  methods, e.g. Deep Compression's quantisation after pruning).
- :mod:`.groups`: channel groups of a Symbol that must be pruned together (residual adds,
  depthwise convs, Concat offsets; DepGraph, Fang et al. 2023).
- :mod:`.filters`: filter pruning with physical removal in those groups (Li et al. 2017),
  network slimming plans (Liu et al. 2017), dry-run plans (:class:`FilterPlan`).
- :mod:`.regularization`: ``SparseSGD`` (L1 on weights / BatchNorm gamma).
- :mod:`.sensitivity`: per-layer sweeps, CSV, PNG, targets.
- :mod:`.report`: per-layer Markdown / JSON tables.
"""
from .criteria import check_sparsity, global_masks, level_mask, sparsity_of, threshold_mask
from .filters import (FilterPlan, filter_norms, plan_filters, plan_groups, round_kept,
                      slimming_plan, thin_network, thin_symbol, weakest_filters, zero_filters)
from .groups import ChannelGroup, GroupAnalysis, analyse
from .finetune import (METHODS, compute_masks, finetune_with_masks, masked_finetune,
                       prune_and_finetune)
from .masks import (MaskedConv2D, MaskedDense, insert_masks, masks_from_zeros, prunable_layers,
                    resolve_layers, strip_masks)
from .regularization import SparseSGD, l1_optimizer_params, l1_targets
from .report import pruning_report, report_markdown, write_report
from .schedules import AGPCallback, agp_sparsity, iterative_targets
from .sensitivity import (plot_sensitivity, sensitivity_sweep, targets_from_sensitivity,
                          write_sensitivity_csv)

__all__ = ['check_sparsity', 'global_masks', 'level_mask', 'sparsity_of', 'threshold_mask',
           'filter_norms', 'plan_filters', 'slimming_plan', 'thin_network', 'weakest_filters',
           'zero_filters', 'FilterPlan', 'plan_groups', 'thin_symbol', 'ChannelGroup',
           'GroupAnalysis', 'analyse', 'round_kept', 'METHODS', 'compute_masks', 'finetune_with_masks', 'masked_finetune',
           'prune_and_finetune', 'MaskedConv2D', 'MaskedDense', 'insert_masks',
           'masks_from_zeros', 'prunable_layers', 'resolve_layers', 'strip_masks', 'SparseSGD',
           'l1_optimizer_params', 'l1_targets', 'pruning_report', 'report_markdown',
           'write_report', 'AGPCallback', 'agp_sparsity', 'iterative_targets',
           'plot_sensitivity', 'sensitivity_sweep', 'targets_from_sensitivity',
           'write_sensitivity_csv']
