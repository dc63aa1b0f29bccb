"""Process-wide plumbing: logging, seeding, device choice, warning filters, atomic file writes."""
