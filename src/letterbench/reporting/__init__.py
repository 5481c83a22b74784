"""Turning measurements into tables, plots and pages."""
