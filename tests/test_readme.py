"""The README's Python snippet runs as written (the layers, streaming, PyTorch both ways)."""

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippet_runs_as_written():
    pytest.importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.S)
    assert len(blocks) == 1
    namespace = {}
    exec(blocks[0], namespace)
    lstm, y = namespace["lstm"], namespace["y"]
    assert y.shape == (50, 4, 32) and namespace["h_n"].shape == (2, 4, 32)
    # the weights went to PyTorch and came back unchanged
    back = lstm.torch_state_dict()
    for k, v in namespace["torch_lstm"].state_dict().items():
        np.testing.assert_array_equal(back[k], v.numpy())
