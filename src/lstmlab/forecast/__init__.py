"""Forecasting a numeric column: CSV reading, windows and scaling, baselines, the LSTM
forecaster, and its report (see docs/forecasting.md)."""

from .baselines import LinearAR, mae, mase_scale, persistence, rmse, seasonal_naive
from .data import SeriesError, TimeSeries, detect_season, load_shipped, read_series
from .model import ForecastConfig, Forecaster
from .smoothing import WindowSmoothing
from .windows import Split, WindowError, WindowScaler, chronological_split, make_windows

__all__ = ["ForecastConfig", "Forecaster", "LinearAR", "SeriesError", "Split", "TimeSeries",
           "WindowError", "WindowScaler", "chronological_split", "detect_season", "load_shipped",
           "WindowSmoothing", "mae", "make_windows", "mase_scale", "persistence", "read_series",
           "rmse", "seasonal_naive"]
