"""Character LM data: file reading errors, vocabulary, train/val split, truncated-BPTT batches."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from lstmlab.data.text import (DataError, LMBatcher, Vocab, default_corpus, read_text_files,
                               split_train_val, stdlib_source_files)


def test_the_data_package_loads_only_the_two_helpers_design_md_names():
    """docs/design.md: ``data`` imports only ``_checks`` and ``_files``, so it is usable on its
    own, without the layers or the kernels."""
    code = ("import sys, lstmlab.data.text, lstmlab.data.tasks; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('lstmlab'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == ["lstmlab", "lstmlab._checks", "lstmlab._files", "lstmlab.data",
                      "lstmlab.data.tasks", "lstmlab.data.text"]


# -- read_text_files ------------------------------------------------------------------------

def test_read_text_files_concatenates_in_order(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("héllo\n", encoding="utf-8")
    b.write_bytes(b"\xef\xbb\xbfworld")  # a leading BOM is dropped
    assert read_text_files([a, b]) == "héllo\nworld"
    assert read_text_files(str(a)) == "héllo\n"


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match=r"nope\.txt.*does not exist"):
        read_text_files([missing])


def test_directory(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_text_files(tmp_path)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.txt.*is empty"):
        read_text_files([empty])


@pytest.mark.parametrize("encoding", ["UTF-16LE", "UTF-16BE"])
def test_utf16_without_a_byte_order_mark_is_named(tmp_path, encoding):
    # it was "looks like a binary file (NUL byte at byte offset 1)"
    path = tmp_path / "notes.txt"
    path.write_bytes("hello, wörld\n".encode(encoding.lower()))
    with pytest.raises(DataError, match=rf"notes\.txt' looks like {encoding} text without a "
                                        r"byte-order mark \(every other byte is NUL\); expected "
                                        r"UTF-8: re-save the file as UTF-8"):
        read_text_files([path])


def test_binary_file(tmp_path):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"GIF89a\x00\x01\x02")
    with pytest.raises(DataError, match=r"blob\.bin.*binary.*byte offset 6"):
        read_text_files([binary])


@pytest.mark.parametrize("content, offset, line", [
    (b"abc\xffdef", 3, 1),
    ("ab\nçé".encode() + b"\xe9 latin-1", 7, 2),  # ç and é take two bytes each
    (b"ok\n\xe2\x82", 3, 2),  # a truncated three-byte sequence at the end
])
def test_non_utf8_names_byte_offset(tmp_path, content, offset, line):
    bad = tmp_path / "latin.txt"
    bad.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_text_files([bad])
    msg = str(info.value)
    assert "latin.txt" in msg and "UTF-8" in msg
    assert f"byte offset {offset} " in msg and f"(line {line})" in msg
    assert isinstance(info.value, ValueError)


def test_no_files():
    with pytest.raises(DataError, match="no text files"):
        read_text_files([])


# -- default corpus -------------------------------------------------------------------------

def test_default_corpus_is_deterministic_and_capped():
    text1, desc1 = default_corpus(max_chars=20_000)
    text2, desc2 = default_corpus(max_chars=20_000)
    assert text1 == text2 and desc1 == desc2
    assert len(text1) == 20_000
    assert "standard library" in desc1 and "20000 characters" in desc1
    # It is Python source.
    assert "import " in text1 and "def " in text1


def test_default_corpus_files_sorted_and_filtered():
    files = stdlib_source_files()
    assert len(files) > 100
    # Sorted by relative path: the prefix of a fixed, deterministic order.
    assert files == stdlib_source_files()
    for f in files:
        parts = set(f.parts)
        assert f.suffix == ".py"
        assert not parts & {"site-packages", "test", "tests", "idle_test"}, f
    # The corpus is the files' texts, in that order, each ending in a newline.
    expected = ""
    for f in files:
        if len(expected) >= 3000:
            break
        body = f.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
        if body and "\ufffd" not in body:
            expected += body if body.endswith("\n") else body + "\n"
    text, desc = default_corpus(max_chars=3000)
    assert text == expected[:3000]
    assert "cut at max_chars=3000" in desc


def test_default_corpus_rejects_bad_max_chars():
    with pytest.raises(ValueError, match="max_chars"):
        default_corpus(max_chars=0)


# -- vocabulary -----------------------------------------------------------------------------

def test_vocab_sorted_deterministic_and_round_trip():
    text = "hello, wörld! 🙂 tabs\tand\nnewlines"
    v1, v2 = Vocab.from_text(text), Vocab.from_text(text[::-1])
    assert v1 == v2  # same characters, same ids, whatever order they appeared in
    assert list(v1.chars) == sorted(set(text))
    assert len(v1) == len(set(text))
    ids = v1.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert v1.decode(ids) == text
    assert all(v1.chars[i] == ch for i, ch in zip(ids, text))
    assert v1.decode(ids.reshape(1, -1)) == text
    empty = v1.encode("")
    assert empty.dtype == np.int64 and empty.shape == (0,) and v1.decode(empty) == ""
    astral = Vocab.from_text("a\U0010ffff")  # the largest code point
    assert astral.decode(astral.encode("\U0010ffffa")) == "\U0010ffffa"


def test_vocab_json_round_trip_keeps_order():
    v = Vocab(["z", "a", "\n", "é"])  # a saved order that is not sorted must survive
    data = json.loads(json.dumps(v.to_json()))
    assert data == ["z", "a", "\n", "é"]
    assert Vocab.from_json(data) == v
    with pytest.raises(TypeError, match="json.loads"):
        Vocab.from_json(json.dumps(v.to_json()))


def test_vocab_rejects_bad_entries():
    with pytest.raises(DataError, match="repeated"):
        Vocab(["a", "b", "a"])
    with pytest.raises(DataError, match="single characters"):
        Vocab(["a", "bc"])
    with pytest.raises(DataError, match="empty"):
        Vocab.from_text("")


def test_unknown_characters_error_names_char_and_position():
    v = Vocab.from_text("abc ")
    with pytest.raises(DataError) as info:
        v.encode("ab é cé")
    msg = str(info.value)
    assert "'é'" in msg and "U+00E9" in msg and "positions 3, 6" in msg
    with pytest.raises(DataError, match=r"'x' \(U\+0078\) at position 0 "):
        v.encode("xa")


def test_unknown_carriage_returns_are_named_as_windows_line_endings():
    v = Vocab.from_text("ab\n")
    with pytest.raises(DataError, match=r"'\\r' \(U\+000D\) at positions 2, 6 \(2 times\); "
                                        r"'\\r' ends the lines of a Windows \(CRLF\) text and the "
                                        r"vocabulary's text had LF line endings: convert the "
                                        r"text's line endings to LF"):
        v.encode("ab\r\nba\r\n")
    with pytest.raises(DataError) as err:  # a vocabulary without newlines: no such advice
        Vocab.from_text("ab").encode("a\rb")
    assert "CRLF" not in str(err.value)


@pytest.mark.parametrize("vocab_form, text_form", [("NFD", "NFC"), ("NFC", "NFD")])
def test_unknown_characters_of_the_other_normal_form_are_named_so(vocab_form, text_form):
    # "café" typed with é as one character, the vocabulary's text with e and U+0301 (or the
    # other way): the message named é, or the lone accent, and nothing else to do
    import unicodedata

    v = Vocab.from_text(unicodedata.normalize(vocab_form, "une école, un café"))
    with pytest.raises(DataError, match=rf"in Unicode normal form {vocab_form} \(.*, as in the "
                                        r"vocabulary's text\) every character of the text is in "
                                        rf"the vocabulary: normalise the text to {vocab_form}"):
        v.encode(unicodedata.normalize(text_form, "un café"))
    with pytest.raises(DataError) as err:  # a character no normal form brings in
        v.encode(unicodedata.normalize(text_form, "un thé"))
    assert "normal form" not in str(err.value)


def test_unknown_replace():
    v = Vocab.from_text("ab? ")
    assert v.decode(v.encode("aéb", unknown="replace")) == "a?b"
    assert v.decode(v.encode("aéb", unknown="replace", replacement=" ")) == "a b"
    with pytest.raises(DataError, match="replacement character 'z'"):
        v.encode("aéb", unknown="replace", replacement="z")
    no_fallback = Vocab.from_text("ab")
    with pytest.raises(DataError, match="none of"):
        no_fallback.encode("aéb", unknown="replace")
    with pytest.raises(ValueError, match="unknown must be"):
        v.encode("a", unknown="ignore")


def test_decode_rejects_out_of_range():
    v = Vocab.from_text("ab")
    with pytest.raises(DataError, match="id 2 at position 1"):
        v.decode([0, 2])


def test_decode_of_no_ids_is_the_empty_text():
    v = Vocab.from_text("ab")
    assert v.decode([]) == "" and v.decode(np.empty((0, 3), np.int64)) == ""
    assert v.decode(v.encode("")) == ""
    with pytest.raises(TypeError, match="ids must be integers, got dtype float64"):
        v.decode([0.0])


# -- split ----------------------------------------------------------------------------------

def test_split_train_val_is_chronological():
    ids = np.arange(100)
    train, val = split_train_val(ids, 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    assert train.dtype == np.int64
    train, val = split_train_val(ids, 0.0)
    assert len(train) == 100 and len(val) == 0
    with pytest.raises(DataError, match="nothing would be left"):
        split_train_val(np.arange(1), 0.5)


# -- batcher --------------------------------------------------------------------------------

@pytest.mark.parametrize("N, B, S", [(1000, 4, 7), (23, 1, 5), (12, 3, 3), (60, 6, 1)])
def test_batcher_layout(N, B, S):
    ids = np.arange(N, dtype=np.int64) * 3 + 1  # distinct values so positions are traceable
    batcher = LMBatcher(ids, batch_size=B, seq_len=S)
    L = N // B
    assert len(batcher) == batcher.chunks_per_epoch == (L - 1) // S >= 1
    chunks = list(batcher)
    assert len(chunks) == len(batcher)
    for k, (inp, tgt) in enumerate(chunks):
        assert inp.shape == tgt.shape == (S, B) and inp.dtype == tgt.dtype == np.int64
        for b in range(B):
            stream = ids[b * L:(b + 1) * L]
            np.testing.assert_array_equal(inp[:, b], stream[k * S:k * S + S])
        # targets are the inputs shifted one token ahead, within each stream
        np.testing.assert_array_equal(tgt[:-1], inp[1:])
        np.testing.assert_array_equal(tgt, np.stack([ids[(np.arange(B) * L) + k * S + t + 1]
                                                     for t in range(S)]))
        if k + 1 < len(chunks):  # stream b continues where it stopped: carry the state
            np.testing.assert_array_equal(chunks[k + 1][0][0], tgt[-1])
    # chunk(k) is the k-th chunk of the epoch, for exact resume
    k = len(batcher) - 1
    np.testing.assert_array_equal(batcher.chunk(k)[0], chunks[k][0])
    resumed = list(batcher.epoch_chunks(start=k))
    assert len(resumed) == 1 and np.array_equal(resumed[0][1], chunks[k][1])


def test_batcher_chunks_are_copies():
    ids = np.arange(50)
    batcher = LMBatcher(ids, 2, 4)
    inp, _ = batcher.chunk(0)
    inp[:] = -1
    assert batcher.chunk(0)[0].min() >= 0


def test_batcher_minimum_and_too_short():
    B, S = 4, 8
    assert len(LMBatcher(np.zeros(B * (S + 1), dtype=np.int64), B, S)) == 1
    with pytest.raises(DataError) as info:
        LMBatcher(np.zeros(B * (S + 1) - 1, dtype=np.int64), B, S)
    msg = str(info.value)
    assert re.search(r"at least .*= 36 characters", msg) and "there are 35" in msg


def test_batcher_bad_arguments():
    ids = np.arange(100)
    with pytest.raises(ValueError, match="batch_size"):
        LMBatcher(ids, 0, 5)
    with pytest.raises(TypeError, match="integer"):
        LMBatcher(ids.astype(float), 2, 5)
    batcher = LMBatcher(ids, 2, 5)
    with pytest.raises(IndexError, match="out of range"):
        batcher.chunk(len(batcher))
    with pytest.raises(ValueError, match="start"):
        batcher.epoch_chunks(start=-1)


def test_uint64_ids_beyond_int64_are_named_not_wrapped_to_negative():
    ids = np.arange(100, dtype=np.uint64)
    ids[7] = 2**63 + 1
    with pytest.raises(ValueError, match=rf"ids must be token ids below 2\*\*63, got {2**63 + 1}"):
        LMBatcher(ids, 2, 5)
    assert LMBatcher(np.arange(100, dtype=np.uint64), 2, 5).chunk(0)[0].dtype == np.int64


def test_text_to_batches_end_to_end():
    text, _ = default_corpus(max_chars=5_000)
    vocab = Vocab.from_text(text)
    train, val = split_train_val(vocab.encode(text), 0.1)
    batcher = LMBatcher(train, batch_size=8, seq_len=16)
    inp, tgt = batcher.chunk(0)
    assert vocab.decode(inp[:, 0]) + vocab.decode(tgt[-1:, 0]) == text[:17]
