# Sourced by scripts/test: the Debian packages the suite drives for real. HAProxy and nginx
# (tests/integration/balancers) and chromium (the dashboard's browser tests,
# tests/integration/web). Installed with one apt-get when missing and this runs as root, as
# CI does; otherwise says plainly which are missing (their tests then skip naming them
# outside CI, and fail in CI). Packaged services are not started (policy-rc.d).
system_missing=()
for bin in haproxy nginx chromium; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || system_missing+=("$bin")
done
if [ ${#system_missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> apt-get install ${system_missing[*]} (real balancers and browser for the tests)"
        policy=/usr/sbin/policy-rc.d
        made_policy=0
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
        fi
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${system_missing[@]}" >/dev/null; }; then
            echo "scripts/test: could not install ${system_missing[*]} with apt-get;" \
                "the tests that drive them will fail" >&2
        fi
        if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
    else
        echo "scripts/test: ${system_missing[*]} not installed and not running as root:" \
            "the tests that drive them skip (apt-get install ${system_missing[*]})" >&2
    fi
fi
unset system_missing
