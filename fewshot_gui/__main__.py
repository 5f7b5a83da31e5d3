"""``python -m fewshot_gui`` → the command-line entry point."""

from fewshot_gui.cli import main

raise SystemExit(main())
