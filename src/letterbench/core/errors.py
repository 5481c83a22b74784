"""The one exception type users see.

Every failure caused by input (files, options, environment) is raised as a
``LetterbenchError`` whose message names the problem and the fix. The CLI prints
it as a single line and exits non-zero; anything else is a bug and keeps its traceback.
"""


class LetterbenchError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class DataError(LetterbenchError):
    """Missing, truncated, corrupt or foreign data files."""


class WeightsError(LetterbenchError):
    """Weights that cannot be had, or do not fit the model."""


class TrainingError(LetterbenchError):
    """A run that cannot start or continue (existing run dir, corrupt checkpoint, non-finite loss)."""
