"""docs/lecture.ipynb runs from top to bottom in a fresh kernel (so it cannot rot), and shows
what it says: the RNN's gradient gone, the LSTM's carried, a figure of a char-LM's gates."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "lecture.ipynb"
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own paths, no warning
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


@pytest.mark.slow
def test_lecture_notebook_executes(tmp_path, monkeypatch):
    import lstmlab
    # the kernel imports the lstmlab these tests import (a relative PYTHONPATH would not
    # survive the kernel's own working directory)
    here = str(Path(lstmlab.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "LSTM(8, 32, dtype=float64)" in text and "CharLM(LSTM 1x32, vocabulary" in text
    assert "99 steps back: RNN" in text and "held-out MSE: RNN" in text
    assert "bits per character" in text
    assert any("image/png" in o.get("data", {}) for o in nb.cells[-1].outputs)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors == []
