"""Command-line interface: ``lstmlab <command>``; ``main(argv) -> int`` so tests call it."""

from __future__ import annotations

import argparse
import sys

DEMO_HELP = """\
The lecture, measured. A vanilla RNN and LSTMs (forget-gate bias 0 as in PyTorch, 1 as
commonly advised, 3) read the same random sequence; the loss is on the last step only. The
table shows how much of its gradient reaches earlier steps: the RNN's "so many tanh" make
it vanish, and the LSTM's cell state keeps it alive once the forget gate is open.

example:
  lstmlab demo
  lstmlab demo --length 200 --hidden 128 --seed 1
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab",
        description="The lecture's RNN and LSTM in NumPy: exact, fast, and explained.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'lstmlab COMMAND --help' for a command's options and examples")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="the lecture's claims, measured", description=DEMO_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--length", type=_positive, default=100, help="sequence length T (default 100)")
    demo.add_argument("--hidden", type=_positive, default=64, help="hidden units H (default 64)")
    demo.add_argument("--batch", type=_positive, default=32, help="sequences in the batch (default 32)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=cmd_demo)
    return parser


def cmd_demo(args) -> int:
    from .insight.lecture import vanishing_gradients

    rows, ks = vanishing_gradients(T=args.length, batch=args.batch, hidden=args.hidden,
                                   seed=args.seed)
    T = args.length
    print(f"Vanishing gradients, measured (T={T}, B={args.batch}, H={args.hidden}, seed {args.seed})")
    print("Loss on the last step only; each column: ||dL/d(state at step T-k)|| / ||dL/d(state at T)||")
    print()
    head = f"{'model':<26}{'path':<6}" + "".join(f"{'k=' + str(k):>10}" for k in ks)
    print(head)
    print("-" * len(head))
    for name, path, rel in rows:
        print(f"{name:<26}{path:<6}" + "".join(f"{rel[k]:>10.1e}" for k in ks))
    print()
    print("h: through the hidden state; C: through the LSTM's cell state.")
    print("The RNN's gradient falls by orders of magnitude within a few dozen steps. The LSTM's")
    print("path through C decays like the product of its forget gates: with PyTorch's default")
    print("bias (f ~ 0.5) it still vanishes; with the forget gate open it carries the gradient back.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"lstmlab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
