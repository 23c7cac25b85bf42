"""An example fedsparse plugin (see docs/extending.md)."""
