"""Insight: the lecture's claims measured, and the inside of a network made visible.

* :mod:`.gradflow` — how much gradient reaches each earlier step; Jacobian norms.
* :mod:`.gates` — f, i, C̃, C, o, h recorded at every step.
* :mod:`.units` — cells of a character model that follow a nameable property of the text.
* :mod:`.experiments` — RNN vs LSTM on the adding problem and the copy task.
* :mod:`.lecture`, :mod:`.demo` — the numbers and the report of ``lstmlab demo``.
* :mod:`.plots`, :mod:`.report` — figures (matplotlib, imported only there) and HTML.
"""

from .experiments import ExperimentConfig, RunResult, run_experiment, summarize, train_run
from .gates import GateTrace, record_charlm, record_gates
from .gradflow import GradientFlow, JacobianNorms, gradient_flow, jacobian_norms
from .units import correlations, find_units, text_signals

__all__ = ["ExperimentConfig", "GateTrace", "GradientFlow", "JacobianNorms", "RunResult",
           "correlations", "find_units", "gradient_flow", "jacobian_norms", "record_charlm",
           "record_gates", "run_experiment", "summarize", "text_signals", "train_run"]
