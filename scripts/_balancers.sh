# Sourced by scripts/test: the real balancers tests/integration/balancers drives (HAProxy and
# nginx, Debian packages). Installed with apt-get when missing and this runs as root, as CI
# does; otherwise says plainly that they are missing (their tests then skip and name them
# outside CI, and fail in CI). Their packaged services are not started (policy-rc.d).
balancers_missing=()
for bin in haproxy nginx; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || balancers_missing+=("$bin")
done
if [ ${#balancers_missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> apt-get install ${balancers_missing[*]} (real balancers for the integration tests)"
        policy=/usr/sbin/policy-rc.d
        made_policy=0
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
        fi
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${balancers_missing[@]}" >/dev/null; }; then
            echo "scripts/test: could not install ${balancers_missing[*]} with apt-get;" \
                "their balancer tests will fail" >&2
        fi
        if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
    else
        echo "scripts/test: ${balancers_missing[*]} not installed and not running as root:" \
            "their balancer tests skip (apt-get install ${balancers_missing[*]})" >&2
    fi
fi
unset balancers_missing
