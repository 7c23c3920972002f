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


# Names a page's Python examples use without defining them: stand-ins for the reader's data.
PLACEHOLDERS = {"interop.md": {"x"}}


def _bound(tree) -> set:
    import ast
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
    return out


def test_python_examples_define_every_name_they_use():
    """Each ```python block of the README and docs/ uses only names it, an earlier block of
    its page or Python itself defines, so a reader can run the page's blocks in order."""
    import ast
    import builtins
    undefined = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        known = set(dir(builtins)) | PLACEHOLDERS.get(page.name, set())
        for block in re.findall(r"```python\n(.*?)```", page.read_text("utf-8"), flags=re.S):
            tree = ast.parse(block)
            known |= _bound(tree)
            used = {n.id for n in ast.walk(tree)
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            if used - known:
                undefined.setdefault(page.name, set()).update(used - known)
    assert not undefined, undefined


# The page that documents each command, so a user finds every option of --help there too.
COMMAND_PAGES = {"train": "training.md", "generate": "training.md", "evaluate": "training.md",
                 "demo": "lecture.md", "experiment": "lecture.md", "inspect": "explore.md",
                 "explore": "explore.md", "export": "interop.md",
                 "forecast": ("forecasting.md", "forecasting-panels.md"),
                 "classify": "classification.md"}


def test_every_option_of_a_command_is_on_its_page():
    from lstmlab.cli import build_parser
    from test_cli_conventions import command_parsers

    missing = []
    for path, parser in command_parsers(build_parser()):
        pages = COMMAND_PAGES[path[0]]
        pages = (pages,) if isinstance(pages, str) else pages
        page = "\n".join((ROOT / "docs" / name).read_text("utf-8") for name in pages)
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and not re.search(
                        re.escape(option) + r"(?![\w-])", page):
                    missing.append(f"{' '.join(path)} {option} ({COMMAND_PAGES[path[0]]})")
    assert not missing, missing
