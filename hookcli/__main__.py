"""``python -m hookcli`` runs the ``hook`` command."""

from hookcli.cli import main

main()
