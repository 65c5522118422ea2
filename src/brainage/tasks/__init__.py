"""Training tasks as LightningModules, the training loop, the cascade and the run folder.

>>> from brainage.tasks import TrainConfig, train_cohort  # doctest: +SKIP
>>> train_cohort("prepared/", "runs/quickstart", TrainConfig())  # doctest: +SKIP
"""

from brainage.tasks.config import TrainConfig, stage2_defaults

__all__ = ["TrainConfig", "stage2_defaults"]
