"""Developer tools for fluvial (not part of the installed package).

A package only so that tests can ``import tools.kafka_cluster``.
"""
