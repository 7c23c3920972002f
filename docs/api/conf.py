"""Sphinx configuration of lstmlab's API reference (``make docs``): autodoc reads the
docstrings of the public modules; no extension fetches anything over the network."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "src")))

import lstmlab  # noqa: E402

project = "lstmlab"
release = version = lstmlab.__version__
extensions = ["sphinx.ext.autodoc"]
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# The optional integrations are imported by the functions that need them, never at import
# time, so nothing needs mocking; the docs build without torch, Keras or onnx.
html_theme = "alabaster"
html_static_path = []
exclude_patterns = ["_build"]
nitpicky = False
