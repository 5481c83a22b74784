"""What a run trained, brought back: its data (checked against what it recorded) and its model
(untrained, or with a phase's best weights). ``RunDir`` owns the files; this reads them into data
and models, which is why it lives here and not in ``RunDir``."""

from __future__ import annotations

import os

from letterbench.core.errors import TrainingError
from letterbench.runs.records import RunConfig
from letterbench.runs.rundir import RunDir


def run_data(run: RunDir, data_dir: str | os.PathLike | None = None, config: RunConfig | None = None):
    """The data the run was trained on (its recorded folder unless ``data_dir`` is given),
    checked by SHA-256."""
    from letterbench.data.emnist import load_emnist, resolve_data_dir

    recorded = (config or run.read_config()).data
    data_dir = data_dir or recorded.data_dir
    data = load_emnist(data_dir, recorded.split)
    if data.checksums != recorded.sha256:
        raise TrainingError(
            f"the data in {resolve_data_dir(data_dir)} differs from the data {run.path} was trained on "
            "(SHA-256 mismatch); pass the same --data-dir"
        )
    return data


def untrained_model(run: RunDir, config: RunConfig | None = None):
    """An untrained model of the architecture the run recorded (weights come from its checkpoints)."""
    from letterbench.models import create_model

    config = config or run.read_config()
    return create_model(config.model.name, len(config.data.class_names), dropout=config.recipe.dropout)


def trained_model(run: RunDir, phase: str | None = None):
    """(model in eval mode, class names) of a finished run: the best checkpoint of ``phase``,
    by default the last phase (the fine-tuned model, where there is one)."""
    config = run.require_finished()
    model = untrained_model(run, config)
    run.load_weights_into(model, phase or run.phases(config)[-1])
    return model.eval(), config.data.class_names
