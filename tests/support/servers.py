"""Local S3 servers for tests: re-exported from `devkit.local_s3` (also used by the demo)."""

from devkit.local_s3 import (
    ACCESS_KEY,
    SECRET_KEY,
    S3Server,
    free_port,
    start_moto,
    start_seaweedfs,
)

__all__ = ["ACCESS_KEY", "SECRET_KEY", "S3Server", "free_port", "start_moto", "start_seaweedfs"]
