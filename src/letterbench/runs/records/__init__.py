"""The files a run keeps (config, progress, metrics) as typed records, checked when they are
read, a run's identity (``RunKey``), and a study's ensemble choice (``EnsembleChoice``,
``ensemble.json``).

``RunDir`` returns these records and readers use their fields; a hand-edited or damaged file gives
one clear line naming the file and what is wrong with it, instead of a KeyError deep in an
evaluation. Only what readers rely on is declared; everything else a file holds passes through
(``to_json`` gives the file's content back, as it was read).
"""

from letterbench.runs.records.base import RunKey, checked
from letterbench.runs.records.metrics import (
    METRICS_SCHEMA,
    Confused,
    Cost,
    Fit,
    Overfitting,
    PerClass,
    RunData,
    RunInfo,
    RunMetrics,
    Stage,
    StageMetrics,
)
from letterbench.runs.records.run import (
    DataRecord,
    EpochRecord,
    ModelRecord,
    RunConfig,
    RunProgress,
)
from letterbench.runs.records.study import EnsembleChoice, StudyFile

__all__ = [
    "METRICS_SCHEMA",
    "Confused",
    "Cost",
    "DataRecord",
    "EnsembleChoice",
    "EpochRecord",
    "Fit",
    "ModelRecord",
    "Overfitting",
    "PerClass",
    "RunConfig",
    "RunData",
    "RunInfo",
    "RunKey",
    "RunMetrics",
    "RunProgress",
    "Stage",
    "StageMetrics",
    "StudyFile",
    "checked",
]
