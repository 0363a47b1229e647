"""``python -m transfer.fewshot``: see :mod:`transfer.fewshot.evaluate`."""

import sys

from transfer.fewshot.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
