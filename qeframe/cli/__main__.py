"""``python -m qeframe.cli`` (used by ``qeframe run --jobs`` children and ``torchrun``)."""

from qeframe.cli import main

main()
