"""Base generators: how to build or load one, call it with (z, y), and sample its latents."""
from .base import Base, truncated_normal
from .registry import BASES, list_bases, load_base, wrap_generator

__all__ = ["BASES", "Base", "list_bases", "load_base", "truncated_normal", "wrap_generator"]
