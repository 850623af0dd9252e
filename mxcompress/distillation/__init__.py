"""Knowledge distillation (Hinton, Vinyals & Dean, 2015).

- :mod:`.losses`: soft-target and TF-style losses as Gluon blocks, argument checks.
- :mod:`.graph`: graph helpers of the teacher/student ``mx.sym.Group`` (renaming, logits
  and features of any classifier graph, inference mode, the student's deploy graph).

The group itself, with the public signature users import, is built by
:func:`symbols.distill.get_symbol`.
"""
