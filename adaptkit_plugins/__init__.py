"""adaptkit's built-in adapters, registered through the ``adaptkit.adapters`` entry points
exactly as a third-party plugin package would be."""
