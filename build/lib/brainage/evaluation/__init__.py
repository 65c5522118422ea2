"""Evaluation: predictions table, metrics with bootstrap intervals, bias correction, group and
longitudinal analyses (``brainage evaluate``), uncertainty."""
