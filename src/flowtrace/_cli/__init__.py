"""Subcommands of the ``flowtrace`` CLI, one module each (``register(subparsers)``)."""
