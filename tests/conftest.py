"""Suite-wide set-up."""

import os
import signal
import tempfile
from pathlib import Path

# A suite started in the background by a non-interactive shell (``make test &``, nohup, some CI
# runners) inherits SIGINT ignored, and so would every command a test starts: the tests that
# press Ctrl-C on a command would wait for a process that cannot hear it. Python's own handler
# here gives the children SIGINT's default disposition, as a terminal would.
if hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs ``-n auto``) each worker compiles into its own
    numba cache folder: numba's cache is not safe for processes that compile into it at the
    same moment (their index entries can overwrite each other), which the workers of one run
    would. The folders are kept between runs, in pytest's cache folder; the kernels compile
    afresh when their sources change, as in numba's own folder. A serial run keeps numba's
    usual cache."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    base = os.environ.get("NUMBA_CACHE_DIR")
    if base:
        folder = Path(base) / f"pytest-{worker}"
    elif getattr(config, "cache", None) is not None:
        folder = config.cache.mkdir(f"numba-{worker}")
    else:  # pytest's cache is turned off (-p no:cacheprovider)
        folder = Path(tempfile.gettempdir()) / f"lstmlab-numba-{worker}"
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
