"""The `velocity` command: a thin shell composing each package's own CLI."""
