"""Suite-wide set-up."""

import signal

# A suite started in the background by a non-interactive shell (``make test &``, nohup, some CI
# runners) inherits SIGINT ignored, and so would every command a test starts: the tests that
# press Ctrl-C on a command would wait for a process that cannot hear it. Python's own handler
# here gives the children SIGINT's default disposition, as a terminal would.
if hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
