"""Helpers shared by the forecasting, classification and estimator tests."""

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

