"""Training adapters: settings, objectives, perceptual losses, the loop, checkpoints, data parallelism."""
from .config import FitConfig
from .loop import fit, resume_config
from .objectives import OBJECTIVES, AdversarialObjective, GloObjective, Objective

__all__ = ["AdversarialObjective", "OBJECTIVES", "FitConfig", "GloObjective", "Objective", "fit", "resume_config"]
