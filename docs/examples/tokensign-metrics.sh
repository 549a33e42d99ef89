#!/bin/sh
# tokensign-metrics DIR: write the agent's counters for node_exporter's
# textfile collector (--collector.textfile.directory=DIR) as
# DIR/tokensign.prom, atomically (a scrape never sees half a file).
# Reads `tokensign agent status --json` (docs/deployment.md, "Metrics");
# the agent is found through TOKENSIGN_AUTH_SOCK as usual.  Needs jq.
set -eu
dir=${1:?usage: tokensign-metrics DIR}
tmp=$(mktemp "$dir/.tokensign.prom.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# an agent that is down still gives valid JSON ({"up":false}) and exit 13
json=$(${TOKENSIGN:-tokensign} agent status --json) || true
printf '%s\n' "$json" | jq -r '
def esc: tostring | gsub("\\\\"; "\\\\\\\\") | gsub("\""; "\\\"") | gsub("\n"; "\\n");
def b: if . then 1 else 0 end;
def tok: (if .label == "" then .uri else .label end) | esc;
"# HELP tokensign_up 1 when the agent answered STATUS.",
"# TYPE tokensign_up gauge",
"tokensign_up \(.up | b)",
(select(.up) |
 "# HELP tokensign_locked 1 when the agent is locked (LOCK).",
 "# TYPE tokensign_locked gauge",
 "tokensign_locked \(.locked | b)",
 "# HELP tokensign_needs_unlock 1 when the PIN timed out and no PIN source can log in again.",
 "# TYPE tokensign_needs_unlock gauge",
 "tokensign_needs_unlock \(.needs_unlock | b)",
 "# HELP tokensign_uptime_seconds Seconds since the agent started.",
 "# TYPE tokensign_uptime_seconds gauge",
 "tokensign_uptime_seconds \(.uptime_seconds)",
 "# HELP tokensign_connections Open client connections.",
 "# TYPE tokensign_connections gauge",
 "tokensign_connections \(.connections)",
 "# HELP tokensign_signatures_total Signatures made since start.",
 "# TYPE tokensign_signatures_total counter",
 "tokensign_signatures_total \(.signatures)",
 "# HELP tokensign_errors_total Failed signing requests since start.",
 "# TYPE tokensign_errors_total counter",
 "tokensign_errors_total \(.errors)",
 "# HELP tokensign_token_present 1 when the token is inserted.",
 "# TYPE tokensign_token_present gauge",
 (.tokens[] | "tokensign_token_present{token=\"\(tok)\"} \(.present | b)"),
 "# HELP tokensign_token_logged_in 1 when the agent holds a logged-in session.",
 "# TYPE tokensign_token_logged_in gauge",
 (.tokens[] | "tokensign_token_logged_in{token=\"\(tok)\"} \(.logged_in | b)"),
 "# HELP tokensign_token_waiting 1 for a --token the agent waits for (not inserted since start).",
 "# TYPE tokensign_token_waiting gauge",
 (.tokens[] | "tokensign_token_waiting{token=\"\(tok)\"} \(.waiting | b)"),
 "# HELP tokensign_token_login_failed 1 for a --token that arrived late and refused the PIN (not tried again).",
 "# TYPE tokensign_token_login_failed gauge",
 (.tokens[] | "tokensign_token_login_failed{token=\"\(tok)\"} \(.login_failed | b)"),
 "# HELP tokensign_key_signatures_total Signatures made with the key since start.",
 "# TYPE tokensign_key_signatures_total counter",
 (.keys[] | "tokensign_key_signatures_total{key=\"\(.id | esc)\",label=\"\(.label | esc)\"} \(.signatures)"),
 "# HELP tokensign_key_errors_total Failed signing requests for the key since start.",
 "# TYPE tokensign_key_errors_total counter",
 (.keys[] | "tokensign_key_errors_total{key=\"\(.id | esc)\",label=\"\(.label | esc)\"} \(.errors)"))
' > "$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$dir/tokensign.prom"
trap - EXIT
