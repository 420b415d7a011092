"""Where the viewer's static files are, and Node to run its ES modules outside a browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "gateway" / "static"
RUN_MODEL = STATIC / "run_model.js"

#: Generous: Node shares a possibly loaded 2-core machine with other tests.
NODE_TIMEOUT = 120.0

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the viewer's JS run model cannot be run"
)
