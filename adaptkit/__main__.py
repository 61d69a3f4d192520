"""``python -m adaptkit`` (also what ``torchrun -m adaptkit fit ...`` runs)."""
from .cli import main

main()
