"""The shipped PDE models' and networks' `Params`: their config keys, free of torch."""
