"""Metrics of generated images against real ones: KMMD, mean variance, FID, LPIPS diversity."""
from .diversity import PerceptualDistance, feature_map_distance, lpips_alexnet, lpips_distance, pairwise_diversity
from .features import FeatureExtractor, load_embedded_extractor, load_feature_extractor, load_inception
from .fid import frechet_distance
from .kmmd import kmmd
from .mean_variance import MeanVariance, mean_variance
from .report import EvalReport, evaluate

__all__ = [
    "EvalReport",
    "FeatureExtractor",
    "MeanVariance",
    "PerceptualDistance",
    "evaluate",
    "feature_map_distance",
    "frechet_distance",
    "kmmd",
    "load_embedded_extractor",
    "load_feature_extractor",
    "load_inception",
    "lpips_alexnet",
    "lpips_distance",
    "mean_variance",
    "pairwise_diversity",
]
