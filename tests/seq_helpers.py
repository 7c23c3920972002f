"""Helpers shared by the tests (forecasting, classification, estimators, recurrent layers)."""

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Small matrices: BLAS threads only contend on a shared 2-core machine (15x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def double_ctrl_c_after_each_epoch(monkeypatch):
    """Send two SIGINTs back to back once forecast or classify training has logged an epoch:
    a hurried double Ctrl-C, which stops the command at once."""
    import os
    import signal

    from lstmlab.forecast import cli as forecast_cli

    log_epoch = forecast_cli._Progress.__call__

    def twice(progress, record):
        log_epoch(progress, record)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(forecast_cli._Progress, "__call__", twice)



def central_difference(loss, arr, idx, eps=1e-6) -> float:
    """``(loss() at arr[idx] + eps - loss() at arr[idx] - eps) / 2 eps``; ``arr`` is restored."""
    v = arr[idx]
    arr[idx] = v + eps
    up = loss()
    arr[idx] = v - eps
    down = loss()
    arr[idx] = v
    return (up - down) / (2 * eps)


def numerical_gradient(loss, arr, eps=1e-6) -> np.ndarray:
    """:func:`central_difference` at every entry of ``arr``."""
    return np.array([central_difference(loss, arr, idx, eps) for idx in np.ndindex(arr.shape)]
                    ).reshape(arr.shape)
