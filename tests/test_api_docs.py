"""The API reference (docs/api, `make docs`) builds from the docstrings with Sphinx, warnings
as errors, offline (no extension reaches the network), and documents the public names."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("sphinx")


def test_api_reference_builds_without_warnings(tmp_path):
    out = tmp_path / "html"
    res = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q",
                          "-b", "html", "-d", str(tmp_path / "doctrees"), str(REPO / "docs" / "api"),
                          str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    pages = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.html")}
    for page, names in {"layers.html": ["LSTM", 'id="lstmlab.layers.recurrent.GRU"',
                                        "load_torch_state_dict", "set_num_threads"],
                        "training.html": ["evaluate_text", "LMTrainer"] + [
                            f'id="lstmlab.{name}"' for name in (
                                "training.optim.AdamW", "training.optim.clip_grad_norm",
                                "training.losses.softmax_cross_entropy",
                                "training.supervised.fit_sequence_net",
                                "layers.seqnet.SequenceNet", "training.checkpoint.save_checkpoint")],
                        "interop.html": ["save_safetensors", "save_keras_charlm", "to_onnx"],
                        "tasks.html": ["Forecaster", "LSTMClassifier"]}.items():
        for name in names:
            assert name in pages[page], (page, name)
