"""The ``stowage`` command: argument parsing in ``main``, one module per subcommand."""
