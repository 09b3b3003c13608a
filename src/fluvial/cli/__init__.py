"""The ``fluvial`` command line."""
