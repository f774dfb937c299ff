#!/bin/sh
# An application kept alive by tandem through the HTTPS API: runs PROGRAM and, while it
# runs (and while CHECK, if given, succeeds), tells the node every INTERVAL seconds that
# the `app` resource NAME is alive. When the program dies or its check fails, the
# heartbeats stop; once the resource's `deadline` has passed without one, tandem counts
# a failure and restarts the group in place, or moves it at `migration_threshold`.
#
#   TANDEM_TOKEN=$(cat /etc/tandem/billing.token) \
#   app-heartbeat.sh https://10.0.0.11:7400 billing /etc/tandem/ca.crt -- /usr/bin/billingd --foreground
#
# The token is one of role `app` whose user is named after the resource
# (`tandem user add billing --role app`); post to the node that runs the group (the
# resource's address on that node, or its virtual IP). CHECK (environment variable) is a
# shell command run before each heartbeat, e.g. CHECK='curl -fs http://127.0.0.1:8080/health'.
# Needs curl. INTERVAL defaults to 1 (keep it well under the resource's `deadline`).
set -eu
if [ $# -lt 5 ] || [ "$4" != "--" ]; then
    echo "usage: TANDEM_TOKEN=... $0 ENDPOINT NAME CA_FILE -- PROGRAM [ARGS...]" >&2
    exit 2
fi
endpoint=$1 name=$2 ca=$3
shift 4
: "${TANDEM_TOKEN:?set TANDEM_TOKEN to the app token (tandem user add NAME --role app)}"
interval=${INTERVAL:-1}
"$@" &
child=$!
trap 'kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT
while kill -0 "$child" 2>/dev/null; do
    if [ -z "${CHECK:-}" ] || sh -c "$CHECK" >/dev/null 2>&1; then
        # The token goes in a header read from stdin, not on the command line (ps).
        printf 'Authorization: Bearer %s\n' "$TANDEM_TOKEN" |
            curl -fsS --cacert "$ca" -H @- -X POST \
                 -d "{\"status\": \"pid $child alive\"}" \
                 "$endpoint/v1/apps/$name/heartbeat" >/dev/null ||
            echo "app-heartbeat: the node did not take the heartbeat" >&2
    fi
    sleep "$interval"
done
wait "$child"
