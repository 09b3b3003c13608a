"""State stores (memory, RocksDB), the write cache and changelog, checkpoints, restore."""
