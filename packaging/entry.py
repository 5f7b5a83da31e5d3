"""The frozen app's entry point: the same ``fewshot-gui`` command as the console script."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # worker processes of a frozen app re-enter here
    from fewshot_gui.cli import main

    sys.exit(main())
