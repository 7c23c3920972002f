"""The JSON form of the settings dataclasses that checkpoints and reports keep."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields

import numpy as np

from ._checks import short_repr


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


def _names(keys, most: int = 5) -> str:
    """The first ``most`` of ``keys``, each quoted and cut short: a file edited by hand may
    hold thousands of keys, or a long one."""
    keys = list(keys)
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return ", ".join(short_repr(k, 40) for k in keys[:most]) + more


def config_from_json(cls, d, ignore_unknown: bool = False):
    """The settings dataclass ``cls`` built from ``d``, its JSON object: a dict that holds
    every field without a default and no key that is not a field (with
    ``ignore_unknown``, such a key is left out: a checkpoint of a later version). Each
    fault is a ValueError naming the class, the fields at fault and the fields it takes,
    rather than the constructor's bare TypeError; the values are the constructor's to
    check."""
    check_json_object(d, cls)
    params = [f for f in fields(cls) if f.init]
    required = [f.name for f in params
                if f.default is MISSING and f.default_factory is MISSING]
    names = {f.name for f in params}
    missing = [name for name in required if name not in d]
    unknown = [] if ignore_unknown else [k for k in d if k not in names]
    if missing or unknown:
        faults = [f"{what} field{'s' if len(keys) > 1 else ''} {_names(keys)}"
                  for what, keys in (("missing", missing), ("unknown", unknown)) if keys]
        takes = ", ".join(f.name + (" (required)" if f.name in required else "")
                          for f in params)
        raise ValueError(f"{cls.__name__}.from_json: {' and '.join(faults)}; "
                         f"{cls.__name__} takes the fields {takes}")
    return cls(**{k: v for k, v in d.items() if k in names})


def check_config(config, cls, example: str, name: str = "config") -> None:
    """A TypeError unless ``config`` (the argument ``name``) is a ``cls``: its fields are
    read throughout, and a dict or a bare size would fail deep inside with an
    AttributeError. ``example`` shows how to build one (a dict ``d`` goes in as
    ``cls.from_json(d)``)."""
    if not isinstance(config, cls):
        raise TypeError(f"{name} must be a {cls.__name__} ({example}; {cls.__name__}.from_json(d) "
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
        return config_from_json(cls, d, ignore_unknown=True)
