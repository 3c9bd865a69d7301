"""Example services used by the Bosun demo and tests; copy them freely (see docs/examples.md)."""
