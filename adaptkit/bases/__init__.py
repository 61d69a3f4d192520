"""Base generators: how to build or load one."""
