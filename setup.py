"""Package list only (everything else is in pyproject.toml): the ``fewshot_gui`` packages plus
``fewshot_gui.resources``, which pyproject's ``package-dir`` maps to the top-level ``resources/``
folder. pyproject.toml alone cannot add a mapped package to the ones ``find`` discovers."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["fewshot_gui", "fewshot_gui.*"]), "fewshot_gui.resources"])
