"""The contract between bosun-agent and the controller.

Bucket layout (`wire.layout`), documents (`wire.documents`), canonical JSON and HMAC
signing (`wire.signing`) and the bucket client (`wire.store`). Nothing in here imports
`agent` or `controller`; both import this.
"""

__all__ = ["__version__"]
__version__ = "0.2.0"
