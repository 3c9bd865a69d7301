"""The example HTTP application: `python -m examples.app --port 8081 --version 1.0`."""
