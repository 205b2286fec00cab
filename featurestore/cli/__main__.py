"""``python -m featurestore.cli``: the same as the ``featurestore`` command."""

from featurestore.cli import main

main()
