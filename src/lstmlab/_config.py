"""The JSON form of the settings dataclasses that checkpoints and reports keep."""

from __future__ import annotations

from dataclasses import asdict, fields


class JsonConfig:
    """A dataclass mixin: :meth:`to_json` gives its fields as a dict, :meth:`from_json` builds
    it back and ignores keys it does not know (a checkpoint written by a later version, which
    has more settings, still loads; a missing key takes its default)."""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
