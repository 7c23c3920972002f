"""Check the torch engine on a GPU: its first steps against the NumPy engine in float64, then
its training speed in float32.

1. A small char-LM (float64) trains ``--check-steps`` steps twice from the same weights on
   the same batches: lstmlab's NumPy engine on the CPU and ``--engine torch`` on ``--device``.
   The per-step losses and gradient norms must agree within ``--tolerance`` (relative).
2. The default char-LM (float32, LSTM 2x256, batch 32x100) trains ``--steps`` steps on the
   device; the characters per second are printed.

    python bench/gpu_check.py                    # needs a CUDA GPU
    python bench/gpu_check.py --device cpu       # the same check on the CPU

Exit status 0 when the check passes, 1 when it fails, 2 when the device is missing.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lstmlab.data.text import LMBatcher, Vocab, default_corpus
from lstmlab.layers.model import CharLM, CharLMConfig
from lstmlab.training.lm import TrainConfig, make_optimizer, make_schedule, train_step
from lstmlab.training.torch_engine import TorchEngine


def first_steps(ids, vocab_size: int, device: str, steps: int, seed: int = 0):
    """Per-step ``(loss, grad_norm)`` of both engines, float64, from the same weights."""
    config = CharLMConfig(vocab_size=vocab_size, hidden_size=64, num_layers=2, embed_dim=16,
                          forget_bias=0.5, dtype="float64")
    cfg = TrainConfig(seq_len=50, batch_size=8, steps=steps, clip=1.0, lr=3e-3)
    ours = CharLM(config, rng=np.random.default_rng(seed))
    twin_model = CharLM(config, rng=np.random.default_rng(seed))
    optimizer = make_optimizer(cfg, ours.params())
    engine = TorchEngine(twin_model, make_optimizer(cfg, twin_model.params()), device)
    schedule = make_schedule(cfg)
    batcher = LMBatcher(ids, cfg.batch_size, cfg.seq_len)
    state_a = state_b = None
    rows = []
    for k in range(steps):
        x, y = batcher.chunk(k % len(batcher))
        optimizer.lr = schedule(k)
        loss_a, norm_a, state_a = train_step(ours, optimizer, x, y, state_a, cfg.clip)
        loss_b, norm_b, state_b = engine.step(x, y, state_b, cfg.clip, schedule(k))
        rows.append((loss_a, loss_b, norm_a, norm_b))
    return rows


def throughput(ids, vocab_size: int, device: str, steps: int) -> float:
    """Characters per second of the default char-LM (float32) on ``device``."""
    import torch

    config = CharLMConfig(vocab_size=vocab_size)
    cfg = TrainConfig(steps=steps)
    model = CharLM(config, rng=np.random.default_rng(0))
    engine = TorchEngine(model, make_optimizer(cfg, model.params()), device)
    batcher = LMBatcher(ids, cfg.batch_size, cfg.seq_len)
    state = None
    engine.step(*batcher.chunk(0), state, cfg.clip, cfg.lr)  # warm-up (kernels, allocator)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(steps):
        _, _, state = engine.step(*batcher.chunk(k % len(batcher)), state, cfg.clip, cfg.lr)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * cfg.seq_len * cfg.batch_size / (time.perf_counter() - start)


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--check-steps", type=int, default=20)
    p.add_argument("--tolerance", type=float, default=1e-9)
    p.add_argument("--steps", type=int, default=200, help="steps timed for the throughput")
    p.add_argument("--max-chars", type=int, default=2_000_000)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible to PyTorch (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    text, desc = default_corpus(max_chars=args.max_chars)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {where}; corpus: {desc}")

    rows = first_steps(ids, len(vocab), args.device, args.check_steps)
    worst = max(max(abs(a - b) / abs(a), abs(na - nb) / abs(na)) for a, b, na, nb in rows)
    for k, (a, b, na, nb) in enumerate(rows, 1):
        print(f"step {k:3d}  loss numpy {a:.15f}  torch {b:.15f}  grad norm {na:.6e} / {nb:.6e}")
    ok = worst <= args.tolerance
    print(f"largest relative difference over {len(rows)} steps: {worst:.2e} "
          f"({'within' if ok else 'ABOVE'} {args.tolerance:g})")
    cps = throughput(ids, len(vocab), args.device, args.steps)
    print(f"default char-LM (float32, LSTM 2x256, 32x100 per step) on {args.device}: "
          f"{cps:,.0f} characters per second over {args.steps} steps")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
