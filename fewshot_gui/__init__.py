"""fewshot-gui: sort images with a few examples per class.

The engine (``core``, ``data``, ``encoders``, ``adapters``, ``training``, ``session``) imports no Qt;
the desktop app (``app``, ``ui``, ``plots``, ``workers``) is a thin layer on top of it.
"""

__version__ = "0.1.0"
