"""``python -m dropout_lab`` runs the command-line interface."""

from dropout_lab.cli import main

main()
