"""`scripts/demo` (`python -m devkit.demo`): the whole system on one machine, for real.

    client thread --GET /--> examples.lb (on lb-1) --weighted--> examples.app (web-1..4)
                                 ^ peers file                       ^ desired file
                                 | (files driver)                   | (files + process driver)
                            bosun-agent lb-1 ... bosun-agent web-7   (8 agent daemons)
                                 |  PUT reports/<m>.json    GET desired/<m>.json  ^
                                 v                                                |
                       bucket (directory backend, or SeaweedFS with --s3)         |
                                 ^  GET reports/   PUT desired/, status/          |
                                 |                                                |
                            bosun controller run --every 1s ----------------------+

`devkit.demo.run.run_demo` sets it up (fleet.py), tells the story (story.py) while
watching the bucket and the balancer (observe.py) with a client counting answers per
phase (traffic.py), then stops every process it started (procs.py) and writes the
summary (summary.py). It lives in `devkit/`, outside the shipped package: machines that
install the wheel carry no demo.
"""

from devkit.demo.run import DemoSettings, run_demo

__all__ = ["DemoSettings", "run_demo"]
