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


# Documented commands --------------------------------------------------------------------------
# Every command line the README and docs/ show (a fenced or indented block, or inline code)
# that runs `lstmlab ...`, `python -m lstmlab ...` or a bench/ script must parse with that
# command's own parser, so a renamed or removed flag fails here and not in a reader's shell.

# Values for the loop variables of documented `for` loops: the first value each loop runs.
LOOP_VALUES = {"$p": "macro"}
# Inline code that names a command without being one to run, with the reason.
NOT_COMMANDS = {
    "lstmlab train: stopped:": "an error message lstmlab prints, quoted",
}
# Inline code is a synopsis: it names a command and some of its options, leaves out what the
# command also needs, and writes a value as a placeholder (CKPT, N, ...).
PLACEHOLDER = re.compile(r"\.\.\.|[A-Z][A-Z_]*")
PYTHONS = re.compile(r"(?:\S*/)?python3?(?:\.\d+)?")


def _doc_pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _snippets(text: str):
    """(line, inline) for each command candidate of a page: each line of its fenced and
    indented code blocks (continuations joined), and each inline code span (inline True)."""
    parts = re.split(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    for i, part in enumerate(parts):
        if i % 2:  # a fenced block
            yield from ((line, False) for line in part.replace("\\\n", " ").splitlines())
            continue
        part = part.replace("\\\n", " ")
        yield from ((m.group(1), False) for m in re.finditer(r"^(?:    |\t)(.*)$", part, re.M))
        prose = re.sub(r"^(?:    |\t).*$", "", part, flags=re.M)
        for span in re.findall(r"`([^`]+)`", prose):
            yield from ((alt, True) for alt in _alternatives(span.replace("\n", " ")))


def _alternatives(span: str):
    """A synopsis with alternatives (`experiment adding\\|copy`, `--format onnx|torch`) as one
    span per alternative; a span with spaces around `|` is a pipe and stays whole."""
    span = span.replace("\\|", "|")
    choice = re.search(r"(?<=\s)[\w.-]+(?:\|[\w.-]+)+(?=\s|$)", span)
    if not choice:
        yield span
        return
    for word in choice.group(0).split("|"):
        yield from _alternatives(span[:choice.start()] + word + span[choice.end():])


def _segments(line: str):
    """Each simple command of a shell line: prompt, comments and redirections dropped, split at
    pipes, `;` and `&&`; a loop variable (LOOP_VALUES) made its first value."""
    import shlex
    line = re.sub(r"^\s*\$\s", "", line).replace("\\|", "|")
    line = re.sub(r"\s\d?>&?\d?", " >", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = []
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: a fragment of prose, not a command
        return
    redirected = False
    for token in [*tokens, ";"]:
        if token and set(token) <= set("|&;"):
            yield words
            words, redirected = [], False
        elif token and set(token) <= set("<>"):
            redirected = True
        elif redirected:
            redirected = False  # the target of a redirection
        else:
            words.append(LOOP_VALUES.get(token, token))


def _command(words: list[str]):
    """("lstmlab", args) or ("bench/NAME.py", args) for a command that runs one, else None."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    if words[:1] in (["do"], ["then"]):
        words = words[1:]
    if not words:
        return None
    if words[0] == "lstmlab":
        return "lstmlab", words[1:]
    if re.fullmatch(r"bench/\w+\.py", words[0]):
        return words[0], words[1:]
    if PYTHONS.fullmatch(words[0]) and len(words) > 1 and re.fullmatch(r"bench/\w+\.py", words[1]):
        return words[1], words[2:]
    if "-m" in words and words.index("-m") + 1 < len(words) and \
            words[words.index("-m") + 1] == "lstmlab" and \
            (PYTHONS.fullmatch(words[0]) or words[0] == "torchrun"):
        return "lstmlab", words[words.index("-m") + 2:]
    return None


def documented_commands():
    """(page, line, inline, program, args) of every command the README and docs/ show."""
    for page in _doc_pages():
        for snippet, inline in _snippets(page.read_text("utf-8")):
            if any(snippet.startswith(quote) for quote in NOT_COMMANDS):
                continue
            for words in _segments(snippet):
                found = _command(words)
                if found:
                    yield page.name, snippet.strip(), inline, *found


def _bench_parser(script: str):
    """The parser of a bench script, from its ``build_parser`` (the script imported as a
    module: its ``main`` does not run)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT / "bench"))  # the scripts import their siblings
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{Path(script).stem}", ROOT / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert hasattr(module, "build_parser"), \
        f"{script} has no build_parser() to parse its documented commands with"
    parser = module.build_parser()
    parser.prog = Path(script).name
    return parser


def _synopsis_gap(error: str) -> bool:
    """Whether ``error`` is one a synopsis makes: an argument it leaves out, or a value it
    writes as a placeholder."""
    if "required" in error:
        return True
    _, unrecognized, extra = error.partition("unrecognized arguments: ")
    if unrecognized:
        return all(PLACEHOLDER.fullmatch(word) for word in extra.split())
    value = re.search(r"(?:got|invalid choice:) '([^']*)'", error)
    return bool(value and PLACEHOLDER.fullmatch(value.group(1)))


def _parse_error(parser, args: list[str]):
    """argparse's message for ``args``, or None when they parse."""
    import contextlib
    import io
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(args)
    except SystemExit as exc:
        return err.getvalue().strip().splitlines()[-1] if exc.code else None
    return None


def test_every_documented_command_parses(tmp_path, monkeypatch):
    """The arguments of each documented command parse with its own parser (run from an empty
    folder, so the output folders it names can be created); a bench script's arguments after
    ``--`` are those of the lstmlab command it runs, and parse with that command's parser."""
    from lstmlab.cli import build_parser

    monkeypatch.chdir(tmp_path)
    commands = list(documented_commands())
    assert len(commands) >= 60, len(commands)
    parsers, broken = {"lstmlab": build_parser()}, []
    for page, line, inline, program, args in commands:
        if program != "lstmlab" and not (ROOT / program).exists():
            broken.append(f"{page}: {program} does not exist: {line}")
            continue
        if line == program:  # the script named in prose, not run
            continue
        if program not in parsers:
            parsers[program] = _bench_parser(program)
        checks = [(program, args)]
        if program == "bench/classify_ucr.py" and "--" in args:
            cut = args.index("--")
            checks = [(program, args[:cut]),
                      ("lstmlab", ["classify", "train", "DIR", *args[cut + 1:]])]
        for name, argv in checks:
            error = _parse_error(parsers[name], argv)
            if error and not (inline and _synopsis_gap(error)):
                broken.append(f"{page}: {line}\n    {error}")
    assert not broken, "\n".join(broken)


def test_every_bench_script_the_docs_name_exists():
    named = {name for page in _doc_pages()
             for name in re.findall(r"bench/[\w.-]+\.py", page.read_text("utf-8"))}
    assert len(named) >= 15, named
    missing = sorted(name for name in named if not (ROOT / name).exists())
    assert not missing, missing
