"""The docs quote code verbatim; fail when a quoted line no longer exists in the source."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_equation_page_quotes_real_kernel_lines():
    page = (ROOT / "docs" / "equations.md").read_text(encoding="utf-8")
    source = "\n".join((ROOT / "src" / "lstmlab" / "kernels" / name).read_text(encoding="utf-8")
                       for name in ("lstm.py", "rnn.py", "gru.py", "lstm_proj.py",
                                    "lstm_layernorm.py"))
    quoted = re.findall(r"`([^`]*(?:=|\(|\+=)[^`]*)`", page)
    code = [q for q in quoted if ("np." in q or "@" in q or "*=" in q or "sigmoid(" in q
                                  or "lstm_cell(" in q or "rnn_cell(" in q or "+=" in q
                                  or "dc_prev = " in q)]
    assert len(code) >= 25
    missing = [q for q in code if q not in source]
    assert not missing, missing
