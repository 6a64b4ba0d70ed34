"""Sliding-window limits: the algorithm, its Redis storage and clocks."""
