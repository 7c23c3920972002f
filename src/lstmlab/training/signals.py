"""Stopping a training run cleanly on Ctrl-C (SIGINT), SIGTERM or SIGHUP.

SIGHUP is what a process hears when its terminal closes or its ssh connection drops; by
default it ends the process at once, losing every step since the last checkpoint. Here it
stops the run as SIGTERM does, unless it is ignored (``nohup``: the run is meant to outlive
its terminal), and then it stays ignored.

While :func:`stop_signals` is active, the first SIGINT, SIGTERM or SIGHUP only records itself in the
:class:`StopRequest` it yields; the training loop looks at it between steps, so the step in
progress finishes, the run writes its checkpoint and returns. A second signal (of either
kind) means "now": the handler raises :class:`StopNow` wherever the loop is, and nothing
more is written. Either way a command exits with ``128 + the signal number`` (130 for
SIGINT, 143 for SIGTERM, 129 for SIGHUP), the shell's convention for "stopped by that
signal", so a job scheduler that sent SIGTERM sees what happened.

The handlers are installed only for the duration of the ``with`` block and the previous
ones are restored after it. Python lets only the main thread install handlers; elsewhere
(and for a signal the platform lacks) the block installs nothing and the request simply
never arrives. Windows has a ``signal.SIGTERM`` constant, but terminating a process there
does not deliver it to Python, so on Windows only Ctrl-C takes this path.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopNow(KeyboardInterrupt):
    """A second stop signal: stop at once, without writing a checkpoint.

    A subclass of ``KeyboardInterrupt``, so code that already treats Ctrl-C as "stop"
    (``except KeyboardInterrupt``) treats a repeated SIGTERM the same way.
    """

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """The first stop signal received inside :func:`stop_signals`, if any."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal_name(self.signum)

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum


@contextmanager
def stop_signals():
    """Handle SIGINT, SIGTERM and (when not ignored) SIGHUP as "stop after this step" inside
    the block; yields the :class:`StopRequest` to poll. See the module docstring."""
    request = StopRequest()

    def handler(signum, frame):
        if request.requested:
            raise StopNow(signum)
        request.signum = signum

    previous = {}
    for name in SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None or (name == "SIGHUP" and signal.getsignal(signum) is signal.SIG_IGN):
            continue
        try:
            previous[signum] = signal.signal(signum, handler)
        except (ValueError, OSError):  # not the main thread, or not allowed here
            continue
    try:
        yield request
    finally:
        for signum, old in previous.items():
            # None: the previous handler was not installed from Python; the default is.
            signal.signal(signum, signal.SIG_DFL if old is None else old)
