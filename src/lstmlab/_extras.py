"""The optional integrations (pip extras) and the check a command makes before any work.

``pip install lstmlab`` brings what the main commands need (NumPy, numba, matplotlib). The
heavy integrations are extras, each named after what it adds (``pyproject.toml`` lists them)::

    onnx     onnx, onnxruntime      export --format onnx; lstmlab.interop's ONNX import/export
    torch    torch, safetensors     export --format torch (safetensors); to_torch/from_torch
    keras    keras (+ a backend)    export --format keras (a .keras model file)
    sklearn  scikit-learn           classify train without DATA (the digits); lstmlab.sklearn

:func:`require` only looks the modules up (``importlib.util.find_spec``): nothing is imported,
so the check costs milliseconds and a command that lacks an extra stops before reading data.
"""

from __future__ import annotations

import importlib.util
import os

# extra -> the modules it provides that lstmlab imports
MODULES = {
    "onnx": ("onnx",),
    "torch": ("safetensors",),
    "keras": ("keras",),
    "sklearn": ("sklearn",),
}
# Keras 3 runs on one of these; its own default comes first.
KERAS_BACKENDS = ("tensorflow", "jax", "torch")


class MissingExtra(ImportError):
    """A command or function needs an extra that is not installed (the message names it)."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed install counts as missing
        return False


def keras_backend() -> str | None:
    """The Keras backend to use: ``KERAS_BACKEND`` when set, else the first installed of
    TensorFlow (Keras's default), JAX and PyTorch; None when none is installed."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen if _installed({"tensorflow": "tensorflow", "jax": "jax",
                                     "torch": "torch"}.get(chosen, chosen)) else None
    return next((b for b in KERAS_BACKENDS if _installed(b)), None)


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` and the pip line when ``what`` (for
    example ``"export --format onnx"``) cannot run for lack of it."""
    missing = [m for m in MODULES[extra] if not _installed(m)]
    chosen = os.environ.get("KERAS_BACKEND")
    if extra == "keras" and chosen and chosen not in KERAS_BACKENDS + ("numpy", "openvino"):
        raise ValueError(f"{what}: KERAS_BACKEND={chosen!r} names no Keras backend (Keras 3 "
                         f"runs on {', '.join(KERAS_BACKENDS)}, numpy or openvino); set one of "
                         f"them, or unset it to use the first installed")
    if extra == "keras" and not missing and keras_backend() is None:
        missing.append("a Keras backend (" + os.environ.get("KERAS_BACKEND", "tensorflow, jax "
                                                            "or torch") + ")")
    if missing:
        raise MissingExtra(f"{what} needs the '{extra}' extra, which is not installed "
                           f"(missing: {', '.join(missing)}): pip install 'lstmlab[{extra}]'")
