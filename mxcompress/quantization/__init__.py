"""Quantisation: k-means weight sharing with centroid fine-tuning, product quantisation,
Q-CNN, fixed point, and the Deep Compression pipeline.

Modules: :mod:`.kmeans` (clustering), :mod:`.scalar` (one layer's codebook + indices),
:mod:`.codebook` (``take(codebook, index)`` HybridBlocks, checkpoint rewrite and fold-back),
:mod:`.pq` (PQ and Q-CNN), :mod:`.fixedpoint` (symmetric per-channel n-bit),
:mod:`.int8` (MXNet's own int8 path), :mod:`.deep` (prune -> quantise -> Huffman -> .mxc).
"""
from .codebook import (CodebookConv2D, CodebookDense, codebook_rewrite, codebook_weight,
                       fold_codebooks, quantize_params)
from .fixedpoint import fixed_point_dequantize, fixed_point_quantize
from .kmeans import INITS, kmeans, kmeans_1d
from .pq import pq_reconstruct, product_quantize, qcnn_quantize
from .scalar import dequantize, scalar_quantize

__all__ = ['CodebookConv2D', 'CodebookDense', 'codebook_rewrite', 'codebook_weight',
           'fold_codebooks', 'quantize_params', 'fixed_point_dequantize',
           'fixed_point_quantize', 'INITS', 'kmeans', 'kmeans_1d', 'pq_reconstruct',
           'product_quantize', 'qcnn_quantize', 'dequantize', 'scalar_quantize']
