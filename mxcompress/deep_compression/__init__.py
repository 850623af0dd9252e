"""Deep Compression (Han, Mao & Dally, ICLR 2016): the pipeline and its ``.mxc`` file.

- :mod:`.pipeline`: prune -> quantise (centroid fine-tuning) -> Huffman, measured per stage.
- :mod:`.budget`: exact per-layer allocation under an error budget or a size target.
- :mod:`.auto`: the pipeline to an accuracy budget: per-layer sparsity and bits chosen on the
  validation split, refined after every fine-tuning round, replayable.
- :mod:`.container`: the ``.mxc`` format (sections with CRC32, DEFLATE-coded graph since
  version 2), ``pack`` / ``unpack``.
- :mod:`.validate`: what a decoded file must satisfy (graph checks, decode budget).
- :mod:`.sparse_codec`: one weight layer as relative indices and codebook indices.
- :mod:`.huffman`: canonical, length-limited Huffman codes and bit packing.

The format (``container``, ``sparse_codec``, ``huffman``) never imports the pipeline that
writes it: a deployment that only reads files needs nothing of the training code.
"""
