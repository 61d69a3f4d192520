"""Base generators: how to build or load one, call it with (z, y), and sample its latents."""
from .base import Base, BaseSizes, declare_hub_model, declare_sizes, truncated_normal
from .registry import BASES, base_hub_model, base_sizes, is_base_spec, list_bases, load_base, wrap_generator

__all__ = ["BASES", "Base", "BaseSizes", "base_hub_model", "base_sizes", "declare_hub_model", "declare_sizes",
           "is_base_spec", "list_bases", "load_base", "truncated_normal", "wrap_generator"]
