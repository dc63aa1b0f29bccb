"""hyco benchmarks: every speed figure is a ratio against a bare reference measured in the same run."""
