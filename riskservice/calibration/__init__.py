"""Proposing rule thresholds from analysts' labels (``python -m riskservice calibrate``)."""
