"""Scoring trained models: metrics, intervals and tests, calibration, the ensemble choice."""
