"""``python -m adaptkit`` runs the command line."""
from .cli import main

main()
