"""The thresholds letterbench applies to its models' answers, in one torch-free place (the command
line's parser shows them as defaults without importing torch)."""

UNSURE_BELOW = 0.5  # a calibrated top-1 probability under this is shown as unsure
USEFUL_FLOOR = 0.5  # a model that reads fewer than half of the test letters is not yet useful
CASE_NOTE = "small and capital letters are one class in EMNIST Letters: the answer a stands for A or a"
