"""Benchmarks that ship with nnfast (`python -m nnfast bench`)."""
