"""Prediction from a run folder (``Predictor``) and explanation maps."""
