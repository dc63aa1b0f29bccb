"""Neural surrogates; importing this registers the shipped architectures."""
