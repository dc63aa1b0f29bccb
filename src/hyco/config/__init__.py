"""Configuration: typed schema, validation, and loading of the shipped Hydra config tree (the errors it
raises are hyco.errors')."""
