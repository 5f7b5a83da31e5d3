"""Shipped resources (checkpoints, icons, desktop entry, MIME type) as the package
``fewshot_gui.resources``: ``pyproject.toml`` maps this folder into the package, and
``fewshot_gui.core.paths.resources_dir()`` finds it through ``importlib.resources``."""
