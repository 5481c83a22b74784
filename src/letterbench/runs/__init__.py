"""Where a run lives and how it runs: run and study folders, their files, the runtime."""
