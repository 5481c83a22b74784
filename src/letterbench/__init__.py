"""letterbench: train, evaluate and compare CNNs on handwritten letters (EMNIST).

The package's folders are its layers, and data flows one way through them: a module imports its
own layer and the layers before it, never a later one (``tests/promises/test_architecture.py`` checks it).
"""

__version__ = "0.1.0"

LAYERS = (
    "core",  # errors, atomic writes, torchrun plumbing, the runtime (device and precision)
    "data",  # EMNIST on disk and in memory, the train/validation split, synthetic letters
    "models",  # the model registry, architectures, weights
    "images",  # pixels to a model's input: photos to EMNIST's look, augmentation, preprocessing
    "recipes",  # how a model is trained, as data: the schema, loading, --set, the words for one
    "runs",  # run and study folders, their files
    "training",  # the batch stream, the engine, `letterbench train`
    "evaluation",  # metrics, intervals and tests, calibration, the ensemble choice
    "reporting",  # the report, its plots and tables
    "study",  # `letterbench run`: presets, the resumable study
    "apps",  # predict, export, serve
    "cli",  # the command line
)
