"""Training a char-LM: exact against PyTorch, resume after SIGKILL, Ctrl-C, NaN, bad input."""

import json
import math
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmlab.cli import main
from lstmlab.data.text import LMBatcher, Vocab
from lstmlab.layers.model import CharLM, CharLMConfig
from lstmlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstmlab.training.lm import (LMTrainer, TrainConfig, TrainingStopped, generate, load_charlm,
                                 make_optimizer, train_step)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def sample_text(n_lines=400, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the", "cell", "state", "gate", "forget", "input", "output", "tanh", "sigma", "lstm"]
    lines = [" ".join(rng.choice(words, size=rng.integers(3, 9))) + "." for _ in range(n_lines)]
    return "\n".join(lines) + "\n"


# -- exactness against torch ----------------------------------------------------------------
def torch_twin(model: CharLM):
    torch = pytest.importorskip("torch")
    cfg = model.config
    emb = torch.nn.Embedding(cfg.vocab_size, cfg.embed_dim).double()
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cfg.cell, torch.nn.RNN)
    rnn = cls(cfg.embed_dim, cfg.hidden_size, cfg.num_layers).double()
    head = torch.nn.Linear(cfg.hidden_size, cfg.vocab_size).double()
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(model.embed.weight))
        rnn.load_state_dict({k: torch.from_numpy(v) for k, v in model.rnn.torch_state_dict().items()})
        head.weight.copy_(torch.from_numpy(model.head.weight))
        head.bias.copy_(torch.from_numpy(model.head.params()["bias"]))
    # lstmlab keeps the lecture's single bias: torch's bias_hh stays at zero, untrained
    # (the GRU's b_hn block aside: that one is a parameter of its own).
    for name, p in rnn.named_parameters():
        if name.startswith("bias_hh") and cfg.cell == "gru":
            keep = torch.zeros_like(p)
            keep[2 * cfg.hidden_size:] = 1.0
            p.register_hook(lambda g, keep=keep: g * keep)
        elif name.startswith("bias_hh"):
            p.requires_grad_(False)
    return torch, emb, rnn, head


@pytest.mark.parametrize("optimizer,cell", [("adam", "lstm"), ("sgd", "lstm"), ("adam", "rnn"),
                                            ("adam", "gru")])
def test_training_matches_pytorch_step_by_step(optimizer, cell):
    rng = np.random.default_rng(0)
    config = CharLMConfig(vocab_size=11, hidden_size=7, num_layers=2, embed_dim=5, cell=cell,
                          forget_bias=0.5, dtype="float64")
    model = CharLM(config, rng=rng)
    torch, emb, rnn, head = torch_twin(model)
    cfg = TrainConfig(optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.3, momentum=0.9,
                      clip=0.1)
    opt = make_optimizer(cfg, model.params())
    tparams = [p for m in (emb, rnn, head) for p in m.parameters() if p.requires_grad]
    if optimizer == "adam":
        topt = torch.optim.Adam(tparams, lr=cfg.lr)
    else:
        topt = torch.optim.SGD(tparams, lr=cfg.lr, momentum=0.9)
    state, tstate = None, None
    clipped = 0
    for step in range(20):
        x = rng.integers(0, 11, size=(6, 3))
        y = rng.integers(0, 11, size=(6, 3))
        loss, norm, state = train_step(model, opt, x, y, state, cfg.clip)
        topt.zero_grad()
        out, tfinal = rnn(emb(torch.from_numpy(x)), tstate)
        logits = head(out)
        tloss = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), torch.from_numpy(y).reshape(-1))
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, cfg.clip)
        topt.step()
        tstate = tuple(s.detach() for s in tfinal) if cell == "lstm" else tfinal.detach()
        assert abs(loss - tloss.item()) <= 1e-9 * abs(tloss.item()), (step, loss, tloss.item())
        assert abs(norm - tnorm.item()) <= 1e-9 * tnorm.item()
        clipped += norm > cfg.clip
    assert clipped > 0  # the clipping path was exercised
    tw = head.weight.detach().numpy()
    assert np.abs(model.head.weight - tw).max() <= 1e-9 * np.abs(tw).max()


@pytest.mark.parametrize("call, tokens, expected", [
    ("forward", np.zeros((0, 2), np.int64), r"tokens must have shape \(T, B\) with T, B >= 1, "
                                            r"got \(0, 2\)"),
    ("forward", np.zeros((3, 0), np.int64), r"tokens must have shape \(T, B\) .* got \(3, 0\)"),
    ("step", np.zeros((1, 1), np.int64), r"token must have shape \(B,\) .* got \(1, 1\)"),
    ("step", np.zeros(0, np.int64), r"token must have shape \(B,\) .* got \(0,\)"),
])
def test_charlm_names_the_tokens_shape_it_was_given(call, tokens, expected):
    # not the embedded array's shape under the recurrent layer's name (x, x_t)
    model = CharLM(CharLMConfig(vocab_size=5, hidden_size=4, num_layers=1, embed_dim=3),
                   rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=expected):
        getattr(model, call)(tokens)


@pytest.mark.parametrize("cell, given, got", [
    ("gru", lambda st: st[0], "ndarray"),  # the bare h: st[0] would read layer 0 as h0
    ("gru", lambda st: st + st, "a tuple of 2"),  # an LSTM's (h, c): c would be dropped
    ("lstm", lambda st: st[0], "ndarray"),
    ("lstm", lambda st: st[:1], "a tuple of 1"),
])
def test_charlm_names_a_state_of_another_cell_or_a_bare_array(cell, given, got):
    model = CharLM(CharLMConfig(vocab_size=5, hidden_size=4, num_layers=2, embed_dim=3,
                                cell=cell), rng=np.random.default_rng(0))
    tokens = np.zeros((3, 2), np.int64)
    logits, state = model.forward(tokens)
    what = r"\(h, c\)" if cell == "lstm" else r"\(h,\)"
    for call, name in ((lambda s: model.forward(tokens, s), "state"),
                       (lambda s: model.step(tokens[0], s), "state"),
                       (lambda s: model.backward(np.zeros_like(logits), s), "dstate")):
        with pytest.raises(TypeError, match=rf"{name} must be a tuple {what} for cell '{cell}' "
                                            rf"\(what forward and step return\), or None; "
                                            rf"got {got}"):
            call(given(state))
    model.forward(tokens, list(state))  # a list of the right length is the same state


@pytest.mark.parametrize("setting, message", [
    (dict(clip="5"), r"clip must be a finite number, got '5'"),
    (dict(clip=float("inf")), r"clip must be a finite number, got inf"),  # not at step 1
    (dict(momentum="a"), r"momentum must be a finite number, got 'a'"),
    (dict(weight_decay=None), r"weight_decay must be a finite number, got None"),
    (dict(lr=True), r"lr must be a finite number, got True"),
    (dict(warmup=True), r"warmup must be a non-negative integer, got True"),
    (dict(nesterov="yes"), r"nesterov must be True or False, got 'yes'"),
])
def test_train_config_names_a_setting_of_the_wrong_kind(setting, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**setting)


def test_first_step_loss_is_log_vocab():
    rng = np.random.default_rng(1)
    for V in (20, 95):
        model = CharLM(CharLMConfig(vocab_size=V, hidden_size=32, num_layers=2), rng=rng)
        opt = make_optimizer(TrainConfig(), model.params())
        x = rng.integers(0, V, size=(50, 8))
        loss, _, _ = train_step(model, opt, x, rng.integers(0, V, size=(50, 8)), None, 5.0)
        assert abs(loss - math.log(V)) < 0.03 * math.log(V)


# -- the run: resume, interrupt, NaN ----------------------------------------------------------
def _train_cmd(corpus, out, steps, extra=()):
    return [sys.executable, "-m", "lstmlab", "train", str(corpus), "--out", str(out), "--steps",
            str(steps), "--hidden", "24", "--layers", "2", "--embed", "8", "--seq-len", "20",
            "--batch-size", "4", "--eval-every", "10", "--eval-chunks", "2",
            "--checkpoint-every", "10", "--dropout", "0.1", "--seed", "3", "--quiet", *extra]


def _env():
    env = dict(os.environ, PYTHONPATH=SRC, OPENBLAS_NUM_THREADS="1")
    return env


def _losses(run_dir):
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines)}


def _wait_for_step(run_dir, step, proc, timeout=60):
    deadline = time.time() + timeout
    path = Path(run_dir) / "metrics.jsonl"
    while time.time() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= step:
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(sample_text(), encoding="utf-8")
    steps = 300
    full = subprocess.run(_train_cmd(corpus, tmp_path / "full", steps), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen(_train_cmd(corpus, tmp_path / "cut", steps), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for_step(tmp_path / "cut", 25, proc), "the run ended before it could be killed"
    proc.kill()  # SIGKILL; on Windows, which has no signals, TerminateProcess
    proc.wait()
    assert proc.returncode == (-signal.SIGKILL if os.name == "posix" else 1)
    meta, _ = load_checkpoint(tmp_path / "cut" / "last.ckpt")
    killed_at = meta["step"]
    assert 20 <= killed_at < steps
    resumed = subprocess.run(_train_cmd(corpus, tmp_path / "cut", steps, ["--resume"]), env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "cut")
    assert sorted(a) == sorted(b) == list(range(1, steps + 1))
    assert all(a[s] == b[s] for s in a), [s for s in a if a[s] != b[s]][:5]


@pytest.mark.skipif(os.name != "posix", reason="Windows cannot send SIGINT to one process")
@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_checkpoint(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(sample_text(), encoding="utf-8")
    proc = subprocess.Popen(_train_cmd(corpus, tmp_path / "run", 100000), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for_step(tmp_path / "run", 15, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: saved" in err
    meta, _ = load_checkpoint(tmp_path / "run" / "last.ckpt")
    assert meta["step"] >= 15
    assert max(_losses(tmp_path / "run")) == meta["step"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    text = sample_text()
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    rng = np.random.default_rng(0)
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=8, num_layers=1, embed_dim=4), rng=rng)
    cfg = TrainConfig(seq_len=10, batch_size=2, steps=10, checkpoint_every=5, eval_every=5, eval_chunks=1)
    trainer = LMTrainer(model, vocab, ids[:-500], ids[-500:], cfg, tmp_path, rng, progress=False)
    trainer.run()
    good = (tmp_path / "last.ckpt").read_bytes()
    trainer.cfg = TrainConfig(**{**cfg.__dict__, "steps": 20})
    model.head.weight[0, 0] = np.nan
    with np.errstate(all="ignore"), pytest.raises(TrainingStopped, match=r"loss became nan .* at step 11;.*last good checkpoint is"):
        trainer.run()
    assert (tmp_path / "last.ckpt").read_bytes() == good


# -- generate and evaluate ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    corpus = d / "corpus.txt"
    corpus.write_text(sample_text(), encoding="utf-8")
    args = ["train", str(corpus), "--out", str(d / "run"), "--steps", "40", "--hidden", "32",
            "--layers", "1", "--seq-len", "20", "--batch-size", "8", "--eval-every", "20",
            "--checkpoint-every", "20", "--lr", "0.01", "--quiet"]
    assert main(args) == 0
    return d


def test_generate_greedy_is_deterministic_and_streams(trained, capsys):
    ckpt = str(trained / "run" / "best.ckpt")
    assert main(["generate", ckpt, "--prompt", "the ", "--length", "40", "--temperature", "0"]) == 0
    first = capsys.readouterr().out
    assert main(["generate", ckpt, "--prompt", "the ", "--length", "40", "--temperature", "0",
                 "--seed", "9", "--top-k", "3"]) == 0
    out = capsys.readouterr()
    assert out.out == first
    assert "--top-k, --seed have no effect" in out.err  # greedy says so, not silently
    assert first.startswith("the ") and len(first.rstrip("\n")) == 44
    model, vocab, _ = load_charlm(ckpt)
    streamed = []
    text = generate(model, vocab, "ga", 25, temperature=0.8, top_k=3,
                    rng=np.random.default_rng(0), on_char=streamed.append)
    assert "".join(streamed) == text and len(text) == 25
    assert set(text) <= set(vocab.chars)


def test_generate_refuses_an_rng_that_is_not_a_generator(trained):
    model, vocab, _ = load_charlm(str(trained / "run" / "best.ckpt"))
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator "
                                        r"\(np.random.default_rng\(seed\)\), got int"):
        generate(model, vocab, "the ", 5, rng=3)


@pytest.mark.parametrize("length", [2.5, "5", -1])
def test_generate_refuses_a_length_that_is_not_a_count(trained, length):
    model, vocab, _ = load_charlm(str(trained / "run" / "best.ckpt"))
    with pytest.raises(ValueError, match=rf"length must be an integer >= 0, got {length!r}"):
        generate(model, vocab, "the ", length, rng=np.random.default_rng(0))
    assert len(generate(model, vocab, "the ", np.int64(3), rng=np.random.default_rng(0))) == 3


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(temperature="1"), ValueError, r"temperature must be a number >= 0 \(0 = greedy\), "
                                        r"got .1."),
    (dict(temperature=None), ValueError, r"temperature must be a number >= 0 .*got None"),
    (dict(temperature=-0.5), ValueError, r"temperature must be a number >= 0 .*got -0.5"),
    (dict(prompt=b"ab"), TypeError, r"prompt must be a str, got bytes"),
    # failed as "'int' object is not callable" once the prompt was read
    (dict(on_char=3), TypeError, r"on_char must be a function of one character, or None, "
                                 r"got int"),
])
def test_generate_names_a_temperature_or_prompt_of_the_wrong_kind(kwargs, exc, message):
    model = CharLM(CharLMConfig(vocab_size=3, hidden_size=4, num_layers=1, embed_dim=2),
                   rng=np.random.default_rng(0))
    args = dict(prompt="ab", length=3, rng=np.random.default_rng(0)) | kwargs
    with pytest.raises(exc, match=message):
        generate(model, Vocab.from_text("abc"), **args)


def test_generate_takes_numpy_integers_as_top_k(trained):
    model, vocab, _ = load_charlm(str(trained / "run" / "best.ckpt"))
    args = (model, vocab, "the ", 12)
    assert (generate(*args, top_k=np.int64(1), rng=np.random.default_rng(0))
            == generate(*args, temperature=0))  # the likeliest only: greedy
    with pytest.raises(ValueError, match=r"top_k must be a non-negative integer .*got True"):
        generate(*args, top_k=True)


def test_top_p_samples_only_from_the_nucleus():
    # generate had temperature and top-k, no nucleus (top-p) sampling
    from lstmlab.training.lm import sample_next

    probs = np.array([0.06, 0.25, 0.04, 0.4, 0.1, 0.15])  # likeliest: 3, 1, 5, 4, 0, 2
    logits = np.log(probs)

    def draws(top_p, temperature=1.0, top_k=0, n=1000):
        rng = np.random.default_rng(0)
        return np.bincount([sample_next(logits, temperature, top_k, rng, top_p)
                            for _ in range(n)], minlength=6) / n

    # 0.4 + 0.25 = 0.65 < 0.75, with 0.15 it reaches 0.8: the nucleus is {3, 1, 5}
    freq = draws(top_p=0.75, n=3000)
    assert set(np.flatnonzero(freq)) == {3, 1, 5}
    np.testing.assert_allclose(freq[[3, 1, 5]], probs[[3, 1, 5]] / 0.8, atol=0.03)
    assert set(np.flatnonzero(draws(top_p=0.4))) == {3}  # reached by the likeliest alone
    assert set(np.flatnonzero(draws(top_p=1.0))) == set(range(6))
    assert set(np.flatnonzero(draws(top_p=0.9, top_k=2))) == {3, 1}  # top-k first
    # at temperature 2 the probabilities are sqrt(p) renormalised, .277 .219 .170 .139 ...:
    # 0.75 takes four tokens
    assert set(np.flatnonzero(draws(top_p=0.75, temperature=2.0))) == {3, 1, 5, 4}


@pytest.mark.parametrize("top_p", [0, 0.0, -0.1, 1.5, float("nan"), True, "0.5", None])
def test_generate_refuses_a_top_p_outside_0_1(trained, top_p):
    model, vocab, _ = load_charlm(str(trained / "run" / "best.ckpt"))
    with pytest.raises(ValueError, match=r"top_p must be a number in \(0, 1\] \(1 = no "
                                         r"limit\), got "):
        generate(model, vocab, "the ", 3, rng=np.random.default_rng(0), top_p=top_p)


def test_generate_top_p_from_the_command_line(trained, capsys):
    ckpt = str(trained / "run" / "best.ckpt")
    assert main(["generate", ckpt, "--prompt", "the ", "--length", "30", "--temperature",
                 "0"]) == 0
    greedy = capsys.readouterr().out
    # a nucleus this small holds the likeliest character only: the greedy text
    assert main(["generate", ckpt, "--prompt", "the ", "--length", "30", "--top-p", "1e-9",
                 "--seed", "4"]) == 0
    assert capsys.readouterr().out == greedy
    for bad in ("0", "1.01", "nan"):
        with pytest.raises(SystemExit) as exc:
            main(["generate", ckpt, "--top-p", bad])
        assert exc.value.code == 2
        assert "argument --top-p: expected a number in (0, 1]" in capsys.readouterr().err


def test_trainer_refuses_an_rng_that_is_not_a_generator(tmp_path):
    text = "the cell state " * 40
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=4, num_layers=1, embed_dim=3),
                   rng=np.random.default_rng(0))
    cfg = TrainConfig(seq_len=5, batch_size=2, steps=2)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator .*got int"):
        LMTrainer(model, vocab, ids[:500], ids[500:], cfg, tmp_path / "run", 3, progress=False)
    assert not (tmp_path / "run").exists()


def test_trainer_refuses_a_model_built_for_another_vocabulary_size(tmp_path):
    text = "the cell state " * 40
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = CharLM(CharLMConfig(vocab_size=3, hidden_size=4, num_layers=1, embed_dim=3),
                   rng=np.random.default_rng(0))
    cfg = TrainConfig(seq_len=5, batch_size=2, steps=2)
    with pytest.raises(ValueError, match=rf"the model's vocab_size \(3\) is not the "
                                         rf"vocabulary's size \({len(vocab)}\)"):
        LMTrainer(model, vocab, ids[:500], ids[500:], cfg, tmp_path / "run",
                  np.random.default_rng(0), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("which", ["train_ids", "val_ids"])
def test_trainer_refuses_ids_outside_the_vocabulary(tmp_path, which):
    text = "the cell state " * 40
    vocab = Vocab.from_text(text)
    ids = {"train_ids": vocab.encode(text[:500]), "val_ids": vocab.encode(text[500:])}
    ids[which] = ids[which] + len(vocab)  # ids of some other, larger vocabulary
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=4, num_layers=1, embed_dim=3),
                   rng=np.random.default_rng(0))
    cfg = TrainConfig(seq_len=5, batch_size=2, steps=2)
    with pytest.raises(ValueError, match=rf"{which} must be ids of the vocabulary, in "
                                         rf"\[0, {len(vocab)}\)"):
        LMTrainer(model, vocab, ids["train_ids"], ids["val_ids"], cfg, tmp_path / "run",
                  np.random.default_rng(0), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", [np.array(["ab", "c"]), np.array([1 + 2j]),
                                 np.zeros(2, dtype=[("a", "f4")]), np.array([None, 1])])
def test_save_checkpoint_refuses_arrays_load_checkpoint_would_refuse(tmp_path, bad):
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, {"kind": "test"}, {"w": np.arange(3.0)})
    before = path.read_bytes()
    with pytest.raises(TypeError, match=rf"array 'bad' has dtype .*; checkpoints hold boolean, "
                                        rf"integer and floating-point arrays only"):
        save_checkpoint(path, {"kind": "test"}, {"w": np.arange(3.0), "bad": bad})
    assert path.read_bytes() == before  # the loadable checkpoint is still there
    assert set(load_checkpoint(path)[1]) == {"w"}


def test_checkpoint_arrays_come_back_with_their_shapes_0d_and_strided_included(tmp_path):
    path = tmp_path / "c.ckpt"
    arrays = {"scalar": np.float32(2.5), "zero_d": np.array(7),
              "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    save_checkpoint(path, {"kind": "test"}, arrays)
    loaded = load_checkpoint(path)[1]
    for name, value in arrays.items():
        assert loaded[name].shape == np.shape(value)
        assert loaded[name].dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(loaded[name], value)


@pytest.mark.parametrize("meta, arrays, message", [
    ({"kind": "test", "step": np.int64(3)}, {}, r"meta\['step'\] is a numpy.int64"),
    ({"kind": "test", "opt": {"betas": [0.9, {0.99}]}}, {},
     r"meta\['opt'\]\['betas'\]\[1\] is a builtins.set"),
    ({"kind": "test", "by": {1: 2, "a": 3}}, {}, r"meta\['by'\] has the key 1 \(int\), not a str"),
    ([("kind", "test")], {}, r"meta must be a dict, got list"),
    ({"kind": "test"}, [np.zeros(2)], r"arrays must be a dict, got list"),
    ({"kind": "test"}, {1: np.zeros(2)}, r"arrays has the key 1 \(int\); array names are str"),
])
def test_save_checkpoint_names_what_json_or_the_zip_cannot_hold(tmp_path, meta, arrays, message):
    path = tmp_path / "c.ckpt"
    with pytest.raises(TypeError, match=message):
        save_checkpoint(path, meta, arrays)
    assert not path.exists()


def test_save_checkpoint_refuses_a_meta_that_load_checkpoint_would_refuse(tmp_path):
    from lstmlab.training.checkpoint import MAX_META_BYTES
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, {"kind": "test"}, {"w": np.arange(3.0)})
    before = path.read_bytes()
    history = "x" * MAX_META_BYTES
    with pytest.raises(ValueError, match=rf"meta takes [\d,]+ bytes as JSON; "
                                         rf"a checkpoint's meta.json is at most "
                                         rf"{MAX_META_BYTES:,}"):
        save_checkpoint(path, {"history": history}, {"w": np.arange(3.0)})
    assert path.read_bytes() == before


@pytest.mark.parametrize("key", ["format", "version"])
def test_save_checkpoint_refuses_meta_that_would_replace_its_format_tag(tmp_path, key):
    path = tmp_path / "c.ckpt"
    with pytest.raises(ValueError, match=rf"meta must not hold '{key}': the checkpoint's own "
                                         rf"format tag and version go there"):
        save_checkpoint(path, {"kind": "test", key: 2}, {"w": np.arange(3.0)})
    assert not path.exists()
    save_checkpoint(path, {"kind": "test", "model_version": 2}, {"w": np.arange(3.0)})
    meta, arrays = load_checkpoint(path)
    assert meta["model_version"] == 2
    save_checkpoint(path, meta, arrays)  # a loaded meta holds the tag itself: saved again
    assert load_checkpoint(path)[0] == meta


def test_generate_unknown_character_is_a_clear_error(trained, capsys):
    ckpt = str(trained / "run" / "best.ckpt")
    assert main(["generate", ckpt, "--prompt", "Zebra", "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert "Z" in err and "KeyError" not in err and "Traceback" not in err


def test_evaluate_prints_nats_and_bits(trained, capsys):
    corpus = trained / "held.txt"
    corpus.write_text(sample_text(60, seed=5), encoding="utf-8")
    assert main(["evaluate", str(trained / "run" / "best.ckpt"), str(corpus)]) == 0
    out = capsys.readouterr().out
    nats = float(out.split(": ")[1].split()[0])
    bits = float(out.split("= ")[1].split()[0])
    assert bits == pytest.approx(nats / math.log(2), abs=1e-3)
    assert 0 < bits < 5


def test_refuses_to_overwrite_a_run(trained, capsys):
    corpus = trained / "corpus.txt"
    assert main(["train", str(corpus), "--out", str(trained / "run"), "--steps", "2"]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_the_run_of_another_command_keeps_its_log(trained, tmp_path, capsys):
    # a forecaster's run folder and a char-LM's: neither command writes into the other's,
    # where its metrics.jsonl would be mixed with (train) or replace (forecast) the other log
    forecast = tmp_path / "forecast"
    assert main(["forecast", "train", "--epochs", "1", "--hidden", "2", "--lookback", "12",
                 "--quiet", "--no-plot", "--out", str(forecast)]) == 0
    logs = {d: (d / "metrics.jsonl").read_bytes() for d in (forecast, trained / "run")}
    capsys.readouterr()
    assert main(["train", str(trained / "corpus.txt"), "--out", str(forecast), "--steps", "2",
                 "--quiet"]) == 2
    assert "holds the run of another command (model.ckpt" in capsys.readouterr().err
    assert main(["forecast", "train", "--epochs", "1", "--quiet", "--no-plot",
                 "--out", str(trained / "run")]) == 2
    assert "already holds a model (last.ckpt, best.ckpt)" in capsys.readouterr().err
    assert {d: (d / "metrics.jsonl").read_bytes() for d in logs} == logs


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("content,pattern", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"abc\x00\x01\x02", "binary file .*byte offset 3"),
    (b"hello \xff world", "byte offset 6"),
    ("hello world\n".encode("utf-16"), r"is UTF-16 text \(it begins with UTF-16's byte-order "
                                       r"mark\); expected UTF-8: re-save the file as UTF-8"),
    ("hi\n".encode("utf-32"), r"is UTF-32 text"),
])
def test_bad_training_files(tmp_path, capsys, content, pattern):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    assert main(["train", str(path), "--out", str(tmp_path / "o"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "data.txt" in err
    import re
    assert re.search(pattern, err), err


def test_a_validation_split_of_exactly_one_chunk_is_enough(tmp_path, capsys):
    # 2020 characters, --val-fraction 0.05: 101 held out, one chunk of --seq-len 100 and its
    # targets; it said "the validation split has 101 characters, fewer than one chunk of
    # --seq-len + 1 = 101"
    path = tmp_path / "text.txt"
    path.write_text(("hello world " * 200)[:2020], encoding="utf-8")
    argv = ["train", str(path), "--batch-size", "8", "--steps", "1", "--hidden", "4",
            "--layers", "1", "--embed", "2"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert "101 validation characters" in capsys.readouterr().err  # the model line
    assert main(argv + ["--out", str(tmp_path / "b"), "--seq-len", "101"]) == 2
    assert ("the text has 2,020 characters, too few for --batch-size 8 and --seq-len 101: "
            "training needs --batch-size * (--seq-len + 1) = 816 characters and the "
            "--val-fraction 0.05 held out --seq-len + 1 = 102, at least 2,030 in all"
            ) in capsys.readouterr().err


def test_a_text_whose_held_out_part_is_short_names_val_fraction(tmp_path, capsys):
    # 'hello world' with --seq-len 4 --batch-size 1 asked for 91 characters and advised a
    # smaller --batch-size or --seq-len, when its 11 training characters were enough and the
    # held-out 5 % of the text (1 character) was what fell short
    path = tmp_path / "small.txt"
    path.write_text("hello world\n", encoding="utf-8")
    assert main(["train", str(path), "--seq-len", "4", "--batch-size", "1", "--steps", "1",
                 "--out", str(tmp_path / "a")]) == 2
    assert ("at least 91 in all; the held-out part is the --val-fraction 0.05 of the text, "
            "1 character here: use a longer text, a smaller --seq-len or a larger "
            "--val-fraction") in capsys.readouterr().err


@pytest.mark.parametrize("n", [1, 30, 3401])
def test_a_short_text_is_named_by_its_own_length(tmp_path, capsys, n):
    # it said "cannot split 1 tokens", or "there are 28 characters" of a 30-character text
    # (its training part)
    path = tmp_path / "short.txt"
    path.write_text(("hello world " * 300)[:n], encoding="utf-8")
    assert main(["train", str(path), "--out", str(tmp_path / "o"), "--steps", "1"]) == 2
    assert (f"the text has {n:,} character{'' if n == 1 else 's'}, too few for --batch-size 32 "
            f"and --seq-len 100: training needs --batch-size * (--seq-len + 1) = 3,232 "
            f"characters and the --val-fraction 0.05 held out --seq-len + 1 = 101, at least "
            f"3,402 in all") in capsys.readouterr().err


def test_corpus_shorter_than_one_chunk(tmp_path, capsys):
    path = tmp_path / "tiny.txt"
    path.write_text("short text\n", encoding="utf-8")
    assert main(["train", str(path), "--out", str(tmp_path / "o"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "characters" in err and "Traceback" not in err, err


@pytest.mark.parametrize("args,pattern", [
    (["--hidden", "0"], "expected a positive integer"),
    (["--layers", "-1"], "expected a positive integer"),
    (["--lr", "0"], "expected a number > 0"),
    (["--lr", "-0.1"], "expected a number > 0, got -0.1"),
    (["--batch-size", "abc"], "expected a positive integer"),
])
def test_nonsensical_hyperparameters(tmp_path, capsys, args, pattern):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", str(tmp_path / "o"), *args])
    assert exc.value.code == 2
    assert pattern in capsys.readouterr().err


def test_corrupt_truncated_and_foreign_checkpoints(trained, tmp_path, capsys):
    good = (trained / "run" / "best.ckpt").read_bytes()
    trunc = tmp_path / "trunc.ckpt"
    trunc.write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(bytes(flipped))
    foreign = tmp_path / "foreign.ckpt"
    save_checkpoint(foreign, {"kind": "forecaster"}, {"x": np.zeros(3)})
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    for path, pattern in [(trunc, "corrupt or truncated"), (corrupt, "corrupt"),
                          (empty, "is empty (0 bytes)"),
                          (foreign, "holds a 'forecaster' model"),
                          (tmp_path / "missing.ckpt", "does not exist")]:
        assert main(["generate", str(path), "--length", "3"]) == 2
        err = capsys.readouterr().err
        assert pattern in err and "Traceback" not in err, err
        with pytest.raises(CheckpointError):
            load_charlm(path)


def test_checkpoint_has_no_pickle_and_readable_json(trained):
    import zipfile
    with zipfile.ZipFile(trained / "run" / "last.ckpt") as zf:
        meta = json.loads(zf.read("meta.json"))
        assert all(n == "meta.json" or n.endswith(".npy") for n in zf.namelist())
    assert meta["kind"] == "charlm" and meta["step"] == 40
    assert meta["vocab"] == sorted(meta["vocab"])
    assert {"model", "train", "optimizer", "rng", "data"} <= set(meta)


def test_export_formats(trained, tmp_path, capsys):
    ckpt = str(trained / "run" / "best.ckpt")
    model, vocab, _ = load_charlm(ckpt)
    assert main(["export", ckpt, "--format", "torch-npz", "--out", str(tmp_path / "m.npz")]) == 0
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        sd = dict(z)
    assert set(sd) >= {"embed.weight", "rnn.weight_ih_l0", "head.weight", "head.bias"}
    np.testing.assert_array_equal(sd["embed.weight"], model.embed.weight)
    side = json.loads((tmp_path / "m.vocab.json").read_text())
    assert side["vocab"] == list(vocab.chars)
    assert main(["export", ckpt, "--format", "keras-npz", "--out", str(tmp_path / "k.npz")]) == 0
    with np.load(tmp_path / "k.npz", allow_pickle=False) as z:
        assert z["rnn/0/0"].shape == (model.config.embed_dim, 4 * model.config.hidden_size)
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort
    assert main(["export", ckpt, "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    tokens = vocab.encode("the cell state")[:, None]
    logits = sess.run(["logits"], {"tokens": tokens})[0]
    ours, _ = model.forward(tokens)
    np.testing.assert_allclose(logits, ours, rtol=1e-4, atol=1e-5)
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["vocab"]) == list(vocab.chars)


def test_the_library_names_its_own_parameters_in_its_errors(tmp_path):
    # (the command line shows the same errors with its flags: tests/test_edges.py)
    text = sample_text()
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=8, num_layers=1, embed_dim=4),
                   rng=np.random.default_rng(0))
    cfg = TrainConfig(seq_len=10, batch_size=2, steps=2)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"seq_len \+ 1 = 11; raise val_fraction or lower seq_len"):
        LMTrainer(model, vocab, ids[:-5], ids[-5:], cfg, tmp_path, rng, progress=False)
    with pytest.raises(ValueError, match=r"device='cuda' needs engine='torch'"):
        LMTrainer(model, vocab, ids[:-500], ids[-500:], cfg, tmp_path, rng, progress=False,
                  device="cuda")
    with pytest.raises(ValueError, match=r"batch_size=2, seq_len=10: .* batch_size \* \(seq_len "
                                         r"\+ 1\) = 22 .* a smaller batch_size or seq_len"):
        LMBatcher(ids[:5], 2, 10)
    with pytest.raises(ValueError, match=r"dropout_recurrent=0.2 and zoneout=0.1 both act"):
        CharLMConfig(vocab_size=5, dropout_recurrent=0.2, zoneout=0.1)


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_atomic_writes_give_the_mode_of_a_plain_open_without_touching_the_umask(tmp_path,
                                                                                monkeypatch):
    from lstmlab.training.checkpoint import atomic_write_text

    (tmp_path / "plain.txt").write_text("x")  # what open() gives under this umask
    want = (tmp_path / "plain.txt").stat().st_mode & 0o777

    def umask(*args):  # setting it, even to read it, races with other threads' file creation
        raise AssertionError("os.umask was called")

    monkeypatch.setattr(os, "umask", umask)
    atomic_write_text(tmp_path / "out.txt", "data")
    assert (tmp_path / "out.txt").read_text() == "data"
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "plain.txt"]


def test_load_charlm_takes_a_torch_dtype_and_names_one_it_cannot_use(trained):
    torch = pytest.importorskip("torch")
    ckpt = trained / "run" / "best.ckpt"
    assert load_charlm(ckpt, dtype=torch.float64)[0].dtype == np.float64
    assert load_charlm(ckpt, dtype="float32")[0].dtype == np.float32
    for dtype in ("bogus", np.float16):
        with pytest.raises(ValueError, match=r"dtype must be float32 or float64, got "):
            load_charlm(ckpt, dtype=dtype)


def test_a_run_configured_with_numpy_numbers_checkpoints_and_resumes_from_them(tmp_path):
    text = "the cell state " * 40
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=np.int64(4), num_layers=1,
                                embed_dim=3, forget_bias=np.float32(1.5), dtype=np.float64,
                                layer_norm=np.False_), rng=np.random.default_rng(0))
    cfg = TrainConfig(seq_len=5, batch_size=2, steps=np.int64(4), lr=np.float32(0.01),
                      eval_every=2, checkpoint_every=2, patience=np.int64(3))
    trainer = LMTrainer(model, vocab, ids[:500], ids[500:], cfg, tmp_path / "run",
                        np.random.default_rng(0), progress=False, log=lambda msg: None)
    assert trainer.run()["status"] == "finished"
    loaded, _, meta = load_charlm(tmp_path / "run" / "last.ckpt")
    assert loaded.config == CharLMConfig(vocab_size=len(vocab), hidden_size=4, num_layers=1,
                                         embed_dim=3, forget_bias=1.5, dtype="float64")
    assert meta["model"]["layer_norm"] is False
    assert TrainConfig.from_json(meta["train"]) == cfg


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_one_layer_charlm_with_dropout_builds_without_a_warning_and_drops_before_the_head(
        cell):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "dropout ... changes nothing" would be untrue here
        model = CharLM(CharLMConfig(vocab_size=5, hidden_size=4, num_layers=1, embed_dim=3,
                                    cell=cell, dropout=0.5), rng=np.random.default_rng(0))
    tokens = np.array([[1, 2], [3, 4]])
    trained, _ = model.forward(tokens)
    evaluated, _ = model.eval().forward(tokens)
    assert not np.allclose(trained, evaluated)  # the dropout before the head acts


@pytest.mark.parametrize("seq_len, batch_size, name, got", [
    (-1, 2, "seq_len", "-1"), (2.5, 2, "seq_len", "2.5"), (3, 0, "batch_size", "0"),
    (3, -4, "batch_size", "-4")])
def test_evaluate_lm_names_a_chunk_shape_it_cannot_use(seq_len, batch_size, name, got):
    from lstmlab.training.lm import evaluate_lm
    model = CharLM(CharLMConfig(vocab_size=3, hidden_size=2, num_layers=1, embed_dim=2),
                   rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"^{name} must be a positive integer, got {got}$"):
        evaluate_lm(model, np.arange(30) % 3, seq_len, batch_size)


@pytest.mark.parametrize("max_chunks", [1.5, -1, "2", None])
def test_evaluate_lm_names_a_max_chunks_that_is_not_a_count(max_chunks):
    # 1.5 failed in Python's range() ("'float' object cannot be interpreted as an integer")
    from lstmlab.training.lm import evaluate_lm
    model = CharLM(CharLMConfig(vocab_size=3, hidden_size=2, num_layers=1, embed_dim=2),
                   rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"^max_chunks must be a non-negative integer, got "
                                         rf"{re.escape(repr(max_chunks))}$"):
        evaluate_lm(model, np.arange(30) % 3, 3, 2, max_chunks=max_chunks)
    assert evaluate_lm(model, np.arange(30) % 3, 3, 2, max_chunks=np.int64(1))[1] == 6


@pytest.mark.parametrize("which, given, message", [
    ("cfg", {"steps": 2}, r"^cfg must be a TrainConfig \(TrainConfig\(steps=\.\.\., lr=\.\.\.\)\), "
                          r"got dict$"),
    ("vocab", "the cell state ", r"^vocab must be a Vocab \(Vocab.from_text\(text\)\), got str$"),
])
def test_trainer_names_a_config_or_vocabulary_of_the_wrong_kind(tmp_path, which, given, message):
    text = "the cell state " * 40
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=4, num_layers=1, embed_dim=3),
                   rng=np.random.default_rng(0))
    args = {"vocab": vocab, "cfg": TrainConfig(seq_len=5, batch_size=2, steps=2)} | {which: given}
    with pytest.raises(TypeError, match=message):
        LMTrainer(model, args["vocab"], ids[:500], ids[500:], args["cfg"], tmp_path / "run",
                  np.random.default_rng(0), progress=False)
    assert not (tmp_path / "run").exists()


def test_generate_names_a_model_or_vocabulary_of_the_wrong_kind():
    model = CharLM(CharLMConfig(vocab_size=3, hidden_size=4, num_layers=1, embed_dim=2),
                   rng=np.random.default_rng(0))
    vocab = Vocab.from_text("abc")
    for args, message in (((vocab, model), r"^model must be a CharLM \(.*\), got Vocab$"),
                          ((model, "abc"), r"^vocab must be a Vocab \(.*load_charlm\(path\)\), "
                                           r"got str$")):
        with pytest.raises(TypeError, match=message):
            generate(*args, "ab", 3, rng=np.random.default_rng(0))


@pytest.mark.parametrize("batch, message", [
    (0, "batch must be a positive integer, got 0"),  # forward refuses a state of no sequences
    (-1, "batch must be a positive integer, got -1"),  # NumPy's "negative dimensions"
    (2.0, r"batch must be a positive integer, got 2\.0"),
    ("2", "batch must be a positive integer, got '2'"),
])
def test_charlm_zero_state_names_a_batch_that_is_not_a_count(batch, message):
    model = CharLM(CharLMConfig(vocab_size=5, hidden_size=4, num_layers=2, embed_dim=3),
                   rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        model.zero_state(batch)
    h, c = model.zero_state(np.int64(3))
    assert h.shape == c.shape == (2, 3, 4) and not h.any()


def test_charlm_backward_before_forward_names_the_model():
    # the error named its head, Linear.backward, which the user never called
    model = CharLM(CharLMConfig(vocab_size=5, hidden_size=4, num_layers=1, embed_dim=3),
                   rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=r"^CharLM\.backward called before forward"):
        model.backward(np.zeros((2, 1, 5)))
    logits, _ = model.forward(np.zeros((2, 1), np.int64))
    model.backward(np.ones_like(logits))


def test_save_checkpoint_refuses_an_array_name_a_zip_cannot_keep(tmp_path):
    # zip cuts the name at the NUL: the array would be written and load_checkpoint leave it out
    path = tmp_path / "c.ckpt"
    with pytest.raises(ValueError, match=r"array name 'w\\x00b' holds a NUL character"):
        save_checkpoint(path, {"kind": "test"}, {"w\0b": np.arange(3.0)})
    assert not path.exists()
    # Python's zipfile reads a backslash in a member's name as '/' on Windows
    with pytest.raises(ValueError, match=r"array name 'w\\\\b' holds a backslash"):
        save_checkpoint(path, {"kind": "test"}, {"w\\b": np.arange(3.0)})
    assert not path.exists()


def test_charlm_backward_names_a_non_finite_dlogits():
    # the recurrent layer named the hidden gradient made of it, "dy"
    model = CharLM(CharLMConfig(vocab_size=5, hidden_size=4, num_layers=1, embed_dim=3),
                   rng=np.random.default_rng(0))
    logits, _ = model.forward(np.zeros((3, 2), np.int64))
    dlogits = np.zeros_like(logits)
    dlogits[1, 0, 4] = np.inf
    with pytest.raises(ValueError, match=r"^dlogits contains NaN or inf \(first at index "
                                         r"\(1, 0, 4\)\)"):
        model.backward(dlogits)
