"""Stress the streaming path: a 2x256 character LSTM generating a long text, one step a call.

Run it under a memory checker; ``make memcheck`` does three runs:

* 1,000,000 characters with glibc's heap checks (``MALLOC_CHECK_=3``: a corrupted heap
  aborts at once; ``MALLOC_PERTURB_``: freed and new memory filled with a byte pattern, so
  a read of either goes wrong visibly);
* 100,000 characters with numba's bounds checks compiled into every kernel
  (``NUMBA_BOUNDSCHECK=1``, in a separate cache): an index out of range raises;
* 5,000 characters under valgrind's memcheck, when valgrind is installed: every load and
  store checked against the heap's blocks (about 500 times slower here). Its checks of
  uninitialised values are off: CPython's own start-up and garbage collector trip them,
  with no frame of lstmlab's compiled code in their stacks; ``bench/valgrind.supp`` holds
  the one dynamic-loader report of the same kind.

Each prints the characters per second and a checksum of the text: a run under a checker
gives the checksum of the same run without one (same ``--seed`` and length). The weights
are random (a trained model's would only change which characters are drawn). Exit status 0
means the run ended normally; a checker's finding aborts it.
"""

from __future__ import annotations

import argparse
import hashlib
import string
import time

import numpy as np

from lstmlab.data.text import Vocab
from lstmlab.layers.model import CharLM, CharLMConfig
from lstmlab.training.lm import generate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000, help="characters to generate")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    vocab = Vocab(sorted(set(string.printable)))
    config = CharLMConfig(len(vocab.chars), hidden_size=args.hidden, num_layers=args.layers)
    model = CharLM(config, rng=np.random.default_rng(args.seed))
    model.eval()
    generate(model, vocab, "The cell state ", 10, rng=np.random.default_rng(1))  # compile
    start = time.perf_counter()
    text = generate(model, vocab, "The cell state ", args.chars,
                    rng=np.random.default_rng(args.seed + 1))
    seconds = time.perf_counter() - start
    print(f"{len(text):,} characters from a {args.layers}x{args.hidden} LSTM in {seconds:.1f} s "
          f"({len(text) / seconds:,.0f} chars/s); sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
