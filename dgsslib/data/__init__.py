"""Datasets: the procedural benchmark (``synthetic/``) and seven real datasets, one way to build each.
"""
