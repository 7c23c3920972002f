"""Table cells padded by the columns they take on a terminal, control characters escaped."""

import pytest

from lstmlab._columns import pad, shown, width


@pytest.mark.parametrize("text, columns", [
    ("abc", 3), ("", 0),
    ("C\u0303", 1),  # C and a combining tilde: one column
    ("e\u0301te\u0301", 3),  # decomposed accents
    ("字字", 4), ("ｗ", 2),  # East Asian wide and fullwidth
    ("\U0001F600", 2),  # an emoji
    ("\U0001F468\u200d\U0001F469", 4),  # two emoji joined by a zero-width joiner
    ("a\nb", 4), ("\x00", 4),  # control characters are shown escaped: \n, \x00
])
def test_width_counts_terminal_columns(text, columns):
    assert width(text) == columns


def test_pad_fills_to_the_columns_on_either_side():
    assert pad("C\u0303", 3) == "C\u0303  "
    assert pad("字", 4, ">") == "  字"
    assert pad("toolong", 3) == "toolong"
    with pytest.raises(ValueError, match="align must be"):
        pad("a", 3, "^")


def test_shown_escapes_control_characters_and_lone_surrogates():
    assert shown("a\tb\n") == "a\\tb\\n"
    assert shown("\ud83d") == "\\ud83d"
    assert shown("é字\U0001F600") == "é字\U0001F600"


def _columns_of(lines, ch):
    """The terminal column at which ``ch`` starts in each line that holds it."""
    return {width(line[:line.index(ch)]) for line in lines if ch in line}


def test_confusion_matrix_lines_up_class_names_of_any_script():
    import numpy as np

    from lstmlab.classify.model import format_confusion

    names = ["cafe\u0301", "猫猫猫猫猫", "ok"]
    text = format_confusion(np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), names)
    lines = text.splitlines()
    assert len({width(line) for line in lines}) == 1, text
    # the counts of one column end where its name ends
    for digit in "147":
        assert _columns_of(lines[1:], digit) == _columns_of(lines[1:], "1"), text


def test_panel_table_lines_up_series_names_of_any_script():
    import numpy as np

    from lstmlab.forecast.global_report import PanelEvaluation, SeriesResult

    def result(mase):
        s = {"mase": mase, "smape": 10.0, "owa": 1.0}
        return SeriesResult(np.zeros(1), np.zeros((1, 1)), {}, {"naive2": s, "lstm": s},
                            None, None, {})

    from lstmlab.forecast.global_report import format_panel

    ev = PanelEvaluation({"東京の電力需要": result(1.5), "Zu\u0308rich": result(2.5)}, "lstm", "test")
    lines = format_panel(ev).splitlines()[1:5]
    ends = {width(line) for line in lines if not line.startswith("-")}
    assert len(ends) == 1, lines
