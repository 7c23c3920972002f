"""The JSON form of the settings dataclasses that checkpoints and reports keep."""

from __future__ import annotations

from dataclasses import asdict, fields

import numpy as np


def plain(value):
    """``value`` with every NumPy number as the Python number it holds and every NumPy dtype
    (``np.float32``, ``np.dtype("float64")``) as its name, in dicts, lists and tuples too.

    The settings dataclasses take NumPy numbers (a size from ``np.arange``, a rate from
    ``np.linspace``) as they take Python ones; their JSON form, which checkpoints keep,
    must hold what JSON can write."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    return value


def check_json_object(d, cls) -> None:
    """A ValueError unless ``d`` is a dict, the JSON object that ``cls.from_json`` reads."""
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__}.from_json reads a JSON object (a dict of its "
                         f"fields), got {type(d).__name__}")


def check_config(config, cls, example: str) -> None:
    """A TypeError unless ``config`` is a ``cls``: a model reads its fields throughout, and
    a dict or a bare size would fail deep inside with an AttributeError. ``example`` shows
    how to build one (a dict ``d`` goes in as ``cls.from_json(d)``)."""
    if not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__} ({example}; {cls.__name__}.from_json(d) "
                        f"for a dict), got {type(config).__name__}")


def config_json(config) -> dict:
    """A settings dataclass's fields as a dict of JSON values (:func:`plain`)."""
    return plain(asdict(config))


class JsonConfig:
    """A dataclass mixin: :meth:`to_json` gives its fields as a dict, :meth:`from_json` builds
    it back and ignores keys it does not know (a checkpoint written by a later version, which
    has more settings, still loads; a missing key takes its default)."""

    def to_json(self) -> dict:
        return config_json(self)

    @classmethod
    def from_json(cls, d: dict):
        check_json_object(d, cls)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
