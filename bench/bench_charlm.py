"""Train the same char-LM here and in PyTorch: validation bits/char and wall-clock, side by side.

Both start from the same weights (copied through the torch state-dict converters), see the
same batches in the same order (the default corpus: the Python standard library's sources),
use Adam with the same schedule and global-norm clipping, and are evaluated on the same
held-out characters. lstmlab keeps the lecture's single LSTM bias, so torch's ``bias_hh`` is
frozen at zero to make the two models the same function with the same parameters.

    python bench/bench_charlm.py --steps 300 --hidden 128
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--pause", type=float, default=0.15,
                   help="seconds after each step, so that the other library's step does not "
                        "share a core with BLAS threads still busy-waiting (OpenBLAS: ~0.11 s)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--max-chars", type=int, default=2_000_000)
    p.add_argument("--val-chunks", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    return p


def main() -> None:
    args = build_parser().parse_args()

    import torch
    from threadpoolctl import ThreadpoolController

    from lstmlab.data.text import LMBatcher, Vocab, default_corpus, split_train_val
    from lstmlab.layers.model import CharLM, CharLMConfig
    from lstmlab.training.lm import TrainConfig, evaluate_lm, make_optimizer, train_step
    from lstmlab.training.optim import Cosine

    torch.manual_seed(args.seed)
    text, desc = default_corpus(max_chars=args.max_chars)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    train_ids, val_ids = split_train_val(ids, 0.05)
    batcher = LMBatcher(train_ids, args.batch_size, args.seq_len)
    V = len(vocab)

    cfg = CharLMConfig(vocab_size=V, hidden_size=args.hidden, num_layers=args.layers,
                       embed_dim=args.embed, cell="lstm", forget_bias=1.0, dtype="float32")
    model = CharLM(cfg, rng=np.random.default_rng(args.seed))
    tcfg = TrainConfig(seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps,
                       lr=args.lr, clip=args.clip)
    opt = make_optimizer(tcfg, model.params())
    schedule = Cosine(args.lr, args.steps, min_lr=args.lr / 10)

    emb = torch.nn.Embedding(V, args.embed)
    rnn = torch.nn.LSTM(args.embed, args.hidden, args.layers)
    head = torch.nn.Linear(args.hidden, V)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(model.embed.weight))
        rnn.load_state_dict({k: torch.from_numpy(v) for k, v in model.rnn.torch_state_dict().items()})
        head.weight.copy_(torch.from_numpy(model.head.weight))
        head.bias.copy_(torch.from_numpy(model.head.params()["bias"]))
    for name, p in rnn.named_parameters():
        if name.startswith("bias_hh"):
            p.requires_grad_(False)
    tparams = [p for m in (emb, rnn, head) for p in m.parameters() if p.requires_grad]
    topt = torch.optim.Adam(tparams, lr=args.lr)

    def torch_eval():
        with torch.no_grad():
            B = max(1, min(args.batch_size, (len(val_ids) - 1) // (args.seq_len + 1)))
            vb = LMBatcher(val_ids, B, args.seq_len)
            n = min(args.val_chunks, len(vb))
            state, total, count = None, 0.0, 0
            for k in range(n):
                x, y = vb.chunk(k)
                out, state = rnn(emb(torch.from_numpy(x)), state)
                logits = head(out)
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, V), torch.from_numpy(y).reshape(-1), reduction="sum").item()
                count += y.size
            return total / count

    blas = ThreadpoolController()  # lstmlab's steps hold NumPy's BLAS to one thread, as `lstmlab train` does
    ours_t = theirs_t = 0.0
    state = tstate = None
    for step in range(args.steps):
        k = step % len(batcher)
        if k == 0:
            state = tstate = None
        x, y = batcher.chunk(k)
        lr = schedule(step)
        opt.lr = lr
        with blas.limit(limits=1, user_api="blas"):
            t0 = time.perf_counter()
            loss, _, state = train_step(model, opt, x, y, state, args.clip)
            ours_t += time.perf_counter() - t0
        time.sleep(args.pause)  # let BLAS threads park before the other candidate runs
        for g in topt.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        topt.zero_grad()
        out, tfinal = rnn(emb(torch.from_numpy(x)), tstate)
        tloss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V),
                                                  torch.from_numpy(y).reshape(-1))
        tloss.backward()
        torch.nn.utils.clip_grad_norm_(tparams, args.clip)
        topt.step()
        tstate = tuple(s.detach() for s in tfinal)
        theirs_t += time.perf_counter() - t0
        time.sleep(args.pause)
        if (step + 1) % max(1, args.steps // 10) == 0:
            print(f"step {step + 1}: lstmlab loss {loss:.4f}  torch loss {tloss.item():.4f}", flush=True)

    ours_val, _ = evaluate_lm(model, val_ids, args.seq_len, args.batch_size, args.val_chunks)
    theirs_val = torch_eval()
    chars = args.steps * args.batch_size * args.seq_len
    print()
    print(f"corpus: {desc}")
    print(f"model: embedding {args.embed} -> LSTM {args.layers}x{args.hidden} -> linear {V}; "
          f"{args.steps} steps of {args.batch_size}x{args.seq_len}, Adam lr {args.lr} cosine, clip {args.clip}")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}")
    print()
    print(f"| | validation bits/char | training time (s) | chars/s |")
    print(f"|---|---|---|---|")
    print(f"| lstmlab | {ours_val / math.log(2):.4f} | {ours_t:.1f} | {chars / ours_t:,.0f} |")
    print(f"| PyTorch | {theirs_val / math.log(2):.4f} | {theirs_t:.1f} | {chars / theirs_t:,.0f} |")
    print(f"\ntime ratio torch/lstmlab: {theirs_t / ours_t:.2f} (> 1: lstmlab faster)")


if __name__ == "__main__":
    main()
