"""The example load balancer: `python -m examples.lb --port 8080 --peers-file peers.json`."""
