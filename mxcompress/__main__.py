"""``python -m mxcompress`` runs the ``mxcompress`` command."""
import sys

from .cli import main

sys.exit(main())
