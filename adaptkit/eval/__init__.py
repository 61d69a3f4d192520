"""Metrics of generated images against real ones: KMMD, mean variance, FID, KID, LPIPS diversity
(overall and intra-cluster), and the memorization score against the training images."""
from .diversity import (
    PerceptualDistance, feature_map_distance, intra_cluster_diversity, lpips_alexnet, lpips_distance,
    pairwise_diversity,
)
from .features import FeatureExtractor, load_embedded_extractor, load_feature_extractor, load_inception
from .fid import frechet_distance
from .kid import KernelDistance, kernel_distance
from .kmmd import kmmd
from .mean_variance import MeanVariance, mean_variance
from .memorization import Memorization, NearestTraining, memorization, nearest_training, save_nearest
from .report import EvalReport, evaluate

__all__ = [
    "EvalReport",
    "FeatureExtractor",
    "KernelDistance",
    "MeanVariance",
    "Memorization",
    "NearestTraining",
    "PerceptualDistance",
    "evaluate",
    "feature_map_distance",
    "frechet_distance",
    "intra_cluster_diversity",
    "kernel_distance",
    "kmmd",
    "load_embedded_extractor",
    "load_feature_extractor",
    "load_inception",
    "lpips_alexnet",
    "lpips_distance",
    "mean_variance",
    "memorization",
    "nearest_training",
    "pairwise_diversity",
    "save_nearest",
]
