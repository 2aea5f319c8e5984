"""Grad-Instructor's command line from a checkout: `python train_agents.py ...` is `grad-instructor ...`.

The parser lives in `agents.cli`; the installed console script `grad-instructor` calls the same `main`.
"""

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main())
