"""Cohorts: readers, validation, splits, datasets and the synthetic aging cohort."""
