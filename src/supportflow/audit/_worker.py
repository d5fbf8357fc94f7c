"""A share process of a split audit started fresh (where forking is not safe):
``python -m supportflow.audit._worker IN OUT`` serves one share over those pipe ends
(`_parallel.serve`). It imports nothing of the auditing program's ``__main__``."""

from __future__ import annotations

import sys

from supportflow.audit._parallel import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
