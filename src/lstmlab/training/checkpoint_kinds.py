"""What each kind of checkpoint must hold, checked before anything is built from it.

:func:`lstmlab.training.checkpoint.load_checkpoint` calls :func:`check_meta` with the JSON
description and the header (shape, dtype) of every array, before reading any array's data.
For the kinds lstmlab writes (``charlm``, ``forecaster``, ``classifier``) every field their
loaders read is checked for type and range, and the number of parameters the model
description implies is compared with the number the ``param/`` arrays hold. A description
that asks for a million layers or 8000 hidden units beside the arrays of a small model is
refused here, so building the model afterwards allocates no more than the file holds.

Problems are ``ValueError`` messages naming the field; the reader adds the file's name.
The parameter counts mirror the layers' registries (:class:`lstmlab.layers.model.CharLM`,
:class:`lstmlab.layers.seqnet.SequenceNet`), which a test compares for many configurations.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._checks import short_repr, shorten
from .._memory import recurrent_params


def recurrent_param_count(input_size: int, hidden_size: int, num_layers: int, cell: str) -> int:
    """Parameters of a unidirectional stacked LSTM/RNN/GRU with biases (the layers' own
    count, ``lstmlab._memory.recurrent_params``)."""
    return recurrent_params(cell, input_size, hidden_size, num_layers)


def charlm_param_count(config) -> int:
    """Embedding ``(V, E)``, the recurrent stack (with a layer norm's gains and bias, 10H a
    layer), head ``(V, H)`` and its bias ``(V,)``."""
    V, E, H = config.vocab_size, config.embed_dim, config.hidden_size
    ln = 10 * H * config.num_layers if config.layer_norm else 0
    return V * E + recurrent_param_count(E, H, config.num_layers, config.cell) + ln + H * V + V


def seqnet_param_count(config) -> int:
    """The recurrent stack, head ``(O, H)`` and its bias ``(O,)``."""
    O, H = config.output_size, config.hidden_size
    return recurrent_param_count(config.input_size, H, config.num_layers, config.cell) + H * O + O


# -- field checks -----------------------------------------------------------------------------

def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _section(meta: dict, key: str) -> dict:
    if key not in meta:
        raise ValueError(f"the description has no {key!r}")
    value = meta[key]
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be a JSON object, got {_type_name(value)}")
    return value


def _config(cls, meta: dict, key: str):
    """``cls.from_json(meta[key])``; any complaint of the config class names the field."""
    section = _section(meta, key)
    try:
        return cls.from_json(section)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key!r} is not a valid {cls.__name__}: {shorten(str(exc))}") from None


def _int(meta: dict, key: str, minimum: int) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key!r} must be an integer >= {minimum}, got {short_repr(value)}")
    return value


def _strings(value, key: str, length: int | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} must be a list of strings, got {_type_name(value)}")
    if length is not None and len(value) != length:
        raise ValueError(f"{key!r} must list {length} names (the model's size), got {len(value)}")
    return value


def _numbers(value, key: str, length: int) -> None:
    ok = isinstance(value, list) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        for v in value)
    if not ok:
        raise ValueError(f"{key!r} must be a list of finite numbers, got {_type_name(value)}")
    if len(value) != length:
        raise ValueError(f"{key!r} must hold {length} numbers (one per feature), got {len(value)}")


def _optional(value, key: str, check) -> None:
    if value is not None:
        check(value, key)


def _string(value, key: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, got {_type_name(value)}")


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def _rng_state(value) -> None:
    """A NumPy bit generator's ``state`` dict, tried on a scratch generator."""
    if not isinstance(value, dict) or value.get("bit_generator") not in _BIT_GENERATORS:
        raise ValueError(f"'rng' must be the state of one of NumPy's bit generators "
                         f"{_BIT_GENERATORS}")
    scratch = getattr(np.random, value["bit_generator"])()
    try:
        scratch.state = value
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"'rng' is not a valid {value['bit_generator']} state "
                         f"({shorten(repr(exc))})") from None


def _param_count(headers: dict, expected: int, model: dict) -> None:
    """The ``param/`` arrays against the model description ``model``: ``expected`` numbers
    in all, each array of the description's dtype (a float64 run's weights under a float32
    description would be rounded without a word, and a resumed run continue in the other
    precision)."""
    present = sum(math.prod(h.shape) for name, h in headers.items() if name.startswith("param/"))
    dtype = model.get("dtype", "float32")
    other = sorted({str(h.dtype) for name, h in headers.items()
                    if name.startswith("param/") and h.dtype != np.dtype(dtype)})
    if other:
        raise ValueError(f"its param/ arrays are {', '.join(other)}, but its model description "
                         f"says dtype {short_repr(dtype)}")
    if present != expected:
        sizes = ", ".join(f"{k}={short_repr(v)}" for k, v in model.items()
                          if k in ("vocab_size", "input_size", "output_size", "hidden_size",
                                   "num_layers", "embed_dim", "cell", "layer_norm"))
        raise ValueError(f"its model description ({sizes}) implies {expected:,} parameters, but "
                         f"its param/ arrays hold {present:,}")


# -- the kinds --------------------------------------------------------------------------------

def check_charlm(meta: dict, headers: dict) -> None:
    """What :func:`lstmlab.training.lm.load_charlm`, ``LMTrainer.restore`` and the CLI's
    ``train --resume`` / ``evaluate`` read."""
    from ..data.text import Vocab
    from ..layers.model import CharLMConfig
    from .lm import TrainConfig

    config = _config(CharLMConfig, meta, "model")
    try:
        vocab = Vocab.from_json(meta.get("vocab"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"'vocab' is not a valid vocabulary: {shorten(str(exc))}") from None
    if len(vocab) != config.vocab_size:
        raise ValueError(f"'vocab' has {len(vocab)} characters, but model.vocab_size is "
                         f"{config.vocab_size}")
    _param_count(headers, charlm_param_count(config), meta["model"])
    train = _config(TrainConfig, meta, "train")
    data = _section(meta, "data")
    _string(data.get("fingerprint"), "data.fingerprint")
    _optional(data.get("description"), "data.description", _string)
    _int(data, "train_chars", 1)  # (--resume reads as much text as the run did)
    _int(data, "val_chars", 1)
    _section(meta, "optimizer")  # its contents: Optimizer.load_state_dict checks them
    _int(meta, "step", 0)
    _int(meta, "best_step", -1)
    _int(meta, "evals_since_best", 0)
    best = meta.get("best_val", 0.0)
    if best is not None and (isinstance(best, bool) or not isinstance(best, numbers.Real)):
        raise ValueError(f"'best_val' must be a number or null, got {_type_name(best)}")
    _rng_state(meta.get("rng"))
    if not isinstance(meta.get("has_state"), bool):
        raise ValueError(f"'has_state' must be true or false, got "
                         f"{short_repr(meta.get('has_state'))}")
    if meta["has_state"]:
        shape = (config.num_layers, train.batch_size, config.hidden_size)
        for i in range(2 if config.cell == "lstm" else 1):  # (h, c) or (h,)
            h = headers.get(f"state/{i}")
            if h is None or h.shape != shape:
                got = "missing" if h is None else f"of shape {h.shape}"
                raise ValueError(f"'has_state' is true, so array state/{i} must have shape "
                                 f"{shape} (layers, batch, hidden); it is {got}")


def check_forecaster(meta: dict, headers: dict) -> None:
    """What :meth:`lstmlab.forecast.model.Forecaster.load` and ``forecast predict`` read."""
    from ..forecast.model import ForecastConfig
    from ..forecast.windows import WindowScaler
    from ..layers.seqnet import SequenceNetConfig
    from .supervised import FitConfig

    config = _config(SequenceNetConfig, meta, "model")
    _param_count(headers, seqnet_param_count(config), meta["model"])
    _config(ForecastConfig, meta, "forecast")
    _config(FitConfig, meta, "fit")
    _config(WindowScaler, meta, "scaler")
    _strings(meta.get("columns"), "columns", config.input_size)
    season = meta.get("season")
    if season is not None and (isinstance(season, bool) or not isinstance(season, int)
                               or season < 1):
        raise ValueError(f"'season' must be a positive integer or null, got {short_repr(season)}")
    split = meta.get("split")
    if split is not None:
        if not isinstance(split, dict) or set(split) != {"n", "train", "val", "test"}:
            raise ValueError("'split' must be null or an object with n, train, val and test")
        for k in split:
            _int(split, k, 0)
    _optional(meta.get("target"), "target", _string)
    _optional(meta.get("features"), "features", _strings)
    _optional(meta.get("time"), "time", _string)


def check_classifier(meta: dict, headers: dict) -> None:
    """What :meth:`lstmlab.classify.model.SequenceClassifier.load` reads."""
    from ..classify.lstm_fcn import LSTMFCNConfig, lstmfcn_param_count
    from ..layers.seqnet import SequenceNetConfig
    from .supervised import FitConfig

    architecture = meta.get("architecture", "seqnet")
    if architecture not in ("seqnet", "lstm-fcn"):
        raise ValueError(f"'architecture' must be 'seqnet' or 'lstm-fcn', got "
                         f"{short_repr(architecture)}")
    members = _int(meta, "members", 1) if "members" in meta else 1
    if architecture == "lstm-fcn":
        config = _config(LSTMFCNConfig, meta, "model")
        _param_count(headers, members * lstmfcn_param_count(config), meta["model"])
    else:
        config = _config(SequenceNetConfig, meta, "model")
        _param_count(headers, members * seqnet_param_count(config), meta["model"])
    _config(FitConfig, meta, "fit")
    for key, size in (("classes", config.output_size), ("features", config.input_size)):
        names = _strings(meta.get(key), key, size)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # two outputs, or two inputs, under one name: which is which?
            raise ValueError(f"{key!r} must name each once, got "
                             f"{', '.join(map(short_repr, twice))} more than once")
    scaler = _section(meta, "scaler")
    _numbers(scaler.get("mean"), "scaler.mean", config.input_size)
    _numbers(scaler.get("std"), "scaler.std", config.input_size)
    if min(scaler["std"], default=1) <= 0:  # the fitted scaler stores 1 for a constant feature
        raise ValueError(f"'scaler.std' must hold numbers > 0, got "
                         f"{short_repr(scaler['std'])}")
    if not isinstance(meta.get("znorm", False), bool):  # (bool("false") is True)
        raise ValueError(f"'znorm' must be true or false, got {short_repr(meta['znorm'])}")
    counts = meta.get("class_counts")
    if counts is not None and not (
            isinstance(counts, list) and len(counts) == config.output_size
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
        raise ValueError(f"'class_counts' must be null or a list of {config.output_size} "
                         f"integers >= 0 (one per class), got {short_repr(counts)}")
    if "csv_options" in meta:  # what classify predict reads a CSV with, by default
        _csv_options(meta)


def _csv_options(meta: dict) -> None:
    """A classifier's ``csv_options``: the column names and missing-value rule it was
    trained with."""
    options = _section(meta, "csv_options")
    for key in ("id_col", "label_col", "time_col"):
        _optional(options.get(key), f"csv_options.{key}", _string)
    _optional(options.get("features"), "csv_options.features", _strings)
    if not isinstance(options.get("features_given", True), bool):
        raise ValueError(f"'csv_options.features_given' must be true or false, got "
                         f"{short_repr(options['features_given'])}")
    missing = options.get("missing")
    if missing not in (None, "refuse", "ffill", "interpolate"):
        raise ValueError(f"'csv_options.missing' must be 'refuse', 'ffill' or 'interpolate', "
                         f"got {short_repr(missing)}")


def check_global_forecaster(meta: dict, headers: dict) -> None:
    """What :meth:`lstmlab.forecast.global_model.GlobalForecaster.load` reads (the per-series
    entries are checked by the loader)."""
    from ..forecast.global_model import GlobalConfig
    from ..layers.seqnet import SequenceNetConfig
    from .supervised import FitConfig

    config = _config(SequenceNetConfig, meta, "model")
    _param_count(headers, seqnet_param_count(config), meta["model"])
    _config(GlobalConfig, meta, "forecast")
    _config(FitConfig, meta, "fit")
    _section(meta, "norm")
    _section(meta, "series")
    for key in ("id", "time", "value"):
        _optional(meta.get(key), key, _string)


CHECKS = {"charlm": check_charlm, "forecaster": check_forecaster, "classifier": check_classifier,
          "global_forecaster": check_global_forecaster}


def check_meta(meta: dict, headers: dict) -> None:
    """Check ``meta`` (a checkpoint's description) against ``headers`` (array name ->
    ``ArrayHeader``) for a kind lstmlab knows; other kinds pass unchecked. ValueError names
    the field and what was expected."""
    kind = meta.get("kind")
    check = CHECKS.get(kind) if isinstance(kind, str) else None
    if check is not None:
        check(meta, headers)
