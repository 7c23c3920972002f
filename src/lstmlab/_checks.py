"""Input checks that turn bad input into errors naming the argument and what was expected."""

from __future__ import annotations

import numbers

import numpy as np


def as_float_array(value, name: str, dtype, ndim: int | tuple[int, ...] | None = None,
                   finite: bool = True) -> np.ndarray:
    """``value`` as a NumPy array of ``dtype``; rejects non-real dtypes, wrong rank, NaN/inf
    (with ``finite``, also finite values that ``dtype`` cannot hold, e.g. 1e300 as float32).

    Accepts anything array-like, including torch tensors (via ``numpy()``), and real
    floating arrays of another precision (converted).
    """
    arr = as_numpy(value, name)
    if arr.dtype.kind not in "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {arr.dtype} "
                        f"(convert with .astype(np.float32) or np.float64)")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {arr.shape}")
    with np.errstate(over="ignore"):  # a finite value beyond dtype's range becomes inf: named below
        out = np.ascontiguousarray(arr, dtype=dtype)
    if finite and not np.isfinite(out).all():
        # located in arr's own shape: ascontiguousarray makes a 0-d array 1-d
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out.reshape(arr.shape)))[0])
        at = f" at index {bad}" if bad else ""
        if np.isfinite(arr[bad]):
            raise ValueError(f"{name} holds {arr[bad]:.3g}{at}, beyond the range of "
                             f"{out.dtype} (largest {np.finfo(out.dtype).max:.3g})")
        raise ValueError(f"{name} " + (f"contains NaN or inf (first{at})" if bad
                                       else f"is {arr[()]}"))
    return out


def check_shape(arr: np.ndarray, expected: tuple[int, ...], name: str) -> None:
    if tuple(arr.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(arr.shape)}")


def as_lengths(lengths, T: int, B: int, name: str = "lengths") -> np.ndarray | None:
    """Validate per-sequence lengths: integers in [1, T], one per batch row."""
    if lengths is None:
        return None
    if hasattr(lengths, "detach") and hasattr(lengths, "numpy"):
        lengths = lengths.detach().cpu().numpy()
    arr = np.asarray(lengths)
    whole = (arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all()
             and np.all(arr == np.round(arr)))  # 3.0 is a length; inf is not (nor a cast)
    if arr.dtype.kind not in "iu" and not whole:
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"{name} must have shape ({B},) (one length per sequence), got {arr.shape}")
    if B and (arr.min() < 1 or arr.max() > T):
        raise ValueError(f"{name} must lie in [1, {T}] (T = {T}), got values from "
                         f"{int(arr.min())} to {int(arr.max())}")
    return arr.astype(np.int64)


def is_real(value) -> bool:
    """A real number (NumPy's too), not a bool: True is an int to Python, not a rate."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def finite_float(value, name: str, dtype=np.float64) -> float:
    """``value`` as a float: a real number, finite also when rounded to ``dtype``."""
    try:
        x = float(value) if is_real(value) else None
    except OverflowError:  # an int beyond any float
        x = None
    if x is None or not abs(x) <= float(np.finfo(dtype).max):
        raise ValueError(f"{name} must be a finite number within {np.dtype(dtype).name}'s range, "
                         f"got {short_repr(value)}")
    return x


def probability(value, name: str) -> float:
    if not is_real(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def true_or_false(value, name: str, error: type = TypeError) -> bool:
    """``value`` as a bool when it is one (Python's or NumPy's), else ``error`` naming
    ``name``: bool() would take a misplaced number as True, and the string 'False' too."""
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be True or False, got {value!r}")
    return bool(value)


def float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """float32 or float64 from anything NumPy reads as one, or ``torch.float32`` /
    ``torch.float64`` (what the interop functions' torch users write); else a ValueError
    naming ``name``."""
    if type(dtype).__module__ == "torch":  # torch.dtype: NumPy cannot interpret it
        dtype = str(dtype).rpartition(".")[2]
    try:
        dt = np.dtype(dtype)
    except TypeError:  # 'bfloat16', an object: NumPy's "data type not understood"
        raise ValueError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be float32 or float64, got {dt}")
    return dt


def generator(rng, name: str = "rng") -> np.random.Generator:
    """``rng`` if it is a Generator; a fresh unseeded one for None; an error otherwise."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def shorten(text: str, width: int = 300) -> str:
    """``text`` cut to ``width`` characters, so that an error message never echoes a whole
    field of an untrusted file."""
    return text if len(text) <= width else text[:width - 3] + "..."


def short_repr(value, width: int = 60) -> str:
    return shorten(repr(value), width)


def as_numpy(v, name: str = "the array") -> np.ndarray:
    """A NumPy array from an array-like or a torch tensor (without importing torch). A
    bfloat16 tensor, which NumPy has no type for, becomes float32: exactly its values.
    Nested lists of unequal lengths (no array) and a tensor on torch's meta device (a shape
    without values) are a ValueError naming ``name``."""
    if hasattr(v, "detach") and hasattr(v, "numpy"):
        if getattr(v, "is_meta", False) is True:
            raise ValueError(f"{name} is a tensor on the meta device, which holds no values: "
                             f"materialise the module first (module.to_empty(device='cpu'), "
                             f"then load or initialise its weights)")
        v = v.detach().cpu()
        return (v.float() if str(v.dtype) == "torch.bfloat16" else v).numpy()
    try:
        return np.asarray(v)
    except ValueError:  # NumPy's "inhomogeneous shape": ragged nested sequences
        raise ValueError(f"{name} must be an array or equally long nested lists; got nested "
                         f"sequences of unequal lengths") from None
