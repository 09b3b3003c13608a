"""fluvial's benchmark harness (issue 5): see bench/README.md."""
