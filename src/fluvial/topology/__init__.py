"""The logical graph: nodes, stores, internal topic naming, sub-topologies, describe()."""
