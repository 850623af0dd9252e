"""Subcommands of the ``mxcompress`` command line (see :mod:`mxcompress.cli`)."""
