"""Development support, never shipped in the wheel: the demo and local S3 servers.

    demo/        `scripts/demo` (`python -m devkit.demo`): a whole cluster on this machine
    local_s3     SeaweedFS and moto servers on 127.0.0.1 for the demo, tests and benchmarks

Importable from a checkout (scripts/ and pytest put the repository root on sys.path).
"""
