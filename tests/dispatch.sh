#!/usr/bin/env bash
# The dispatcher against tests/mock_provider.py (VAPI, Retell and Bland on
# 127.0.0.1, limits 50, 30 and 20, answering in 20 ms, calls of 200 ms whose
# results come back through record_call_result()):
#   - 1,000 calls across the three providers are all placed by
#     dispatch_due_calls() passes and all their results recorded; no provider
#     ever has more calls in progress at the mock than its limit, no call is
#     placed twice, every request carries its key and a body as documented;
#   - 400 fails a call for good with the provider's message; 429 puts it
#     back (no attempt counted) and pauses the provider for its Retry-After; 500, garbage, a
#     hang-up and a hang queue it again;
#   - a wrong key fails the call with the provider's message, and no key
#     appears in last_error or in the server's log;
#   - a user's own caller number not verified by an admin is not sent;
#   - credentials are sealed: no key in a dump; without the key, calls fail
#     with the reason;
#   - only the worker (service_role, an admin) may dispatch.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_dialer installed,
# and $SERVER_LOG (the cluster's log file) if set. Prints TAP.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=pg_dialer_dispatch
log=$(mktemp -d /tmp/pg_dialer-dispatch.XXXXXX)
source "$here"/lib.sh
q() { psql_q -At -d "$db" -c "$1"; }
worker() { psql_q -At -d "$db" -c "SET ROLE service_role" -c "$1"; }

dropdb --if-exists "$db" >/dev/null
createdb "$db"
psql_q -d "$db" -f "$here"/dispatch/setup.sql >/dev/null 2>&1

python3 "$here"/mock_provider.py --answer-ms 20 --call-ms 200 \
    --provider VAPI:vapi:vapi-key-7c1e93:50 --provider Retell:retell:retell-key-5a0f22:30 \
    --provider Bland:bland:bland-key-9d4b71:20 \
    --psql "psql -X -q -d $db" >"$log/port" 2>"$log/mock.err" &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$log/port" ] && break; sleep 0.1; done
port=$(head -1 "$log/port")
mock_url="http://127.0.0.1:$port"
stats() { curl -s "$mock_url/_stats"; }
stat() { stats | python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"; }
control() { curl -s -XPOST "$mock_url/_control" -d "$1" >/dev/null; }
for api in vapi retell bland; do
    q "ALTER DATABASE $db SET pg_dialer.${api}_base_url = '$mock_url/$api'" >/dev/null
done

# Passes until nothing is queued or in progress (or 120 s).
drain() {
    local deadline=$((SECONDS + 120))
    while [ "$(q "SELECT count(*) FROM call_queue WHERE status IN ('queued', 'in-progress')")" != 0 ]; do
        [ $SECONDS -lt $deadline ] || return 1
        worker "CALL dispatch_due_calls(200)" >/dev/null
        sleep 0.05
    done
}

# ------------------------------------------------------------ 1,000 calls
q "SELECT queue_calls(1000, '555')" >/dev/null
if drain; then ok "1,000 queued calls are all dispatched and done within 120 s"; else not_ok "1,000 calls drained" "$(q "SELECT status, count(*) FROM call_queue GROUP BY 1")"; fi
check "every call is completed" "1000" "$(q "SELECT count(*) FROM call_queue WHERE status = 'completed'")"
check "every call has its result in the history" "1000" "$(q "SELECT count(DISTINCT call_queue_id) FROM user_call_history")"
check "each provider placed its share (templates name the provider)" "333|334|333" \
    "$(stat "'|'.join(str(s[a]['placed']) for a in ('vapi', 'retell', 'bland'))")"
check "no call was placed twice" "0" "$(stat "sum(s[a]['duplicates'] for a in s)")"
check "no provider ever had more calls in progress than its limit" "0" "$(stat "sum(s[a]['over_limit'] for a in s)")"
check_match "the providers were used in parallel, up to their limits" '^(1[0-9]|[2-4][0-9]|50)\|([5-9]|[12][0-9]|30)\|([5-9]|1[0-9]|20)$' \
    "$(stat "'|'.join(str(s[a]['max_in_progress']) for a in ('vapi', 'retell', 'bland'))")"
check "every request carried its key and a body as its provider documents it" "0|0" \
    "$(stat "str(sum(s[a]['bad_auth'] for a in s)) + '|' + str(sum(s[a]['malformed'] for a in s))")"
curl -s "$mock_url/_requests" >"$log/requests.json"
check "VAPI got the assistant, caller number id, customer, variables, voice and call id" "ok" \
    "$(python3 - "$log/requests.json" <<'EOF'
import json, sys
reqs = [r for r in json.load(open(sys.argv[1])) if r["provider"] == "vapi"]
b = reqs[0]["body"]
o = b["assistantOverrides"]
ok = (b["assistantId"] == "a551a7a0-0001-4000-8000-00000000f001" and b["phoneNumberId"].startswith("VAPI-")
      and b["customer"]["number"].startswith("+1415555") and o["variableValues"]["patient_name"].startswith("Patient ")
      and o["voice"] == {"provider": "11labs", "voiceId": "21m00Tcm4TlvDq8ikWAM"} and len(o["metadata"]["call_queue_id"]) == 36)
print("ok" if ok else json.dumps(b))
EOF
)"
check "Retell got the agent and string variables, Bland the pathway" "agent_8d2f0c1e9b|5e8f3a2b-1c4d-4e6f-9a0b-7c8d9e0f1a2b" \
    "$(python3 -c "
import json
reqs = json.load(open('$log/requests.json'))
r = next(x['body'] for x in reqs if x['provider'] == 'retell')
b = next(x['body'] for x in reqs if x['provider'] == 'bland')
print(r['override_agent_id'] + '|' + b['pathway_id'])")"

# ------------------------------------------------------------ refusals
# One call for one provider: the newest queued call of that template.
one_call() { # template digit, recipient suffix -> call id
    q "INSERT INTO call_queue (user_id, recipient_number, template_id, custom_variables, status, scheduled_time)
       VALUES ('d1d1d1d1-0000-4000-8000-000000000001', '+1415777$2', 'd1d1d1d1-0000-4000-8000-0000000000d$1',
               '{\"patient_name\": \"Ana\"}', 'queued', now() - interval '1 minute') RETURNING id"
}
dispatch_one() { worker "CALL dispatch_due_calls(10)" >/dev/null; }
row() { q "SELECT status || '|' || retry_count || '|' || coalesce(last_error, '') FROM call_queue WHERE id = '$1'"; }

control '{"provider": "vapi", "mode": "400"}'
id=$(one_call 1 0001)
dispatch_one
check "a 400 fails the call for good, with the provider's message" \
    "failed|1|vapi 400: customer.number is on the do-not-call list" "$(row "$id")"

control '{"provider": "retell", "mode": "429", "retry_after": "30"}'
id=$(one_call 2 0002)
dispatch_one
check "a 429 puts the call back in the queue without counting an attempt, with the provider's message" \
    "queued|0|retell 429: Account rate limited, please throttle your requests." "$(row "$id")"
check "due when the pause ends" "t" \
    "$(q "SELECT scheduled_time BETWEEN now() + interval '25 seconds' AND now() + interval '31 seconds' FROM call_queue WHERE id = '$id'")"
check "and pauses the provider for its Retry-After" "t" \
    "$(q "SELECT paused_until BETWEEN now() + interval '25 seconds' AND now() + interval '31 seconds'
          FROM dialer.provider_state WHERE provider_id = 'd1d1d1d1-0000-4000-8000-0000000000b2'")"
before=$(stat "s['retell']['requests']")
q "UPDATE call_queue SET scheduled_time = now() - interval '1 minute' WHERE id = '$id'" >/dev/null
dispatch_one
check "a paused provider is sent nothing; its call waits, queued" "$before|queued" \
    "$(stat "s['retell']['requests']")|$(q "SELECT status FROM call_queue WHERE id = '$id'")"
q "UPDATE dialer.provider_state SET paused_until = now()" >/dev/null
dispatch_one
check "once the pause is over the call goes out" "in-progress" "$(q "SELECT status FROM call_queue WHERE id = '$id'")"

# Within one pass: a 429 in one run keeps the pass's later runs off the provider.
q "UPDATE dialer.provider_state SET paused_until = NULL" >/dev/null
q "ALTER DATABASE $db SET pg_dialer.dispatch_in_flight = 1" >/dev/null
control '{"provider": "retell", "mode": "429", "retry_after": "30"}'
before=$(stat "s['retell']['requests']")
a=$(one_call 2 0008)
b=$(one_call 2 0009)
dispatch_one
check "after a 429 the same pass sends the provider nothing more; both calls wait, no attempt counted" \
    "$((before + 1))|queued|0|queued|0" \
    "$(stat "s['retell']['requests']")|$(q "SELECT string_agg(status || '|' || retry_count, '|' ORDER BY id) FROM call_queue WHERE id IN ('$a', '$b')")"
q "ALTER DATABASE $db RESET pg_dialer.dispatch_in_flight" >/dev/null
q "UPDATE dialer.provider_state SET paused_until = NULL" >/dev/null
q "UPDATE call_queue SET status = 'canceled' WHERE id IN ('$a', '$b')" >/dev/null

for mode in 500 garbage close; do
    control "{\"provider\": \"bland\", \"mode\": \"$mode\"}"
    id=$(one_call 3 "1$(printf %03d ${#mode})")
    dispatch_one
    check_match "a provider answering $mode gets the call again later" '^queued\|1\|bland (500|502|did not answer)' "$(row "$id")"
done

q "ALTER DATABASE $db SET pg_dialer.dispatch_timeout = 500" >/dev/null
control '{"provider": "vapi", "mode": "hang"}'
id=$(one_call 1 0003)
dispatch_one
check_match "a provider that does not answer in time gets the call again later" \
    '^queued\|1\|vapi did not answer: no answer within the timeout' "$(row "$id")"
q "ALTER DATABASE $db RESET pg_dialer.dispatch_timeout" >/dev/null

q "UPDATE call_service_providers SET api_credentials = '{\"api_key\": \"wrong-key-0e6f5d4c\"}'
   WHERE id = 'd1d1d1d1-0000-4000-8000-0000000000b3'" >/dev/null
id=$(one_call 3 0004)
dispatch_one
check "a wrong key fails the call with the provider's message" "failed|1|bland 401: Invalid API key." "$(row "$id")"
q "UPDATE call_service_providers SET api_credentials = '{}' WHERE id = 'd1d1d1d1-0000-4000-8000-0000000000b1'" >/dev/null
before=$(stat "s['vapi']['requests']")
id=$(one_call 1 0006)
dispatch_one
check "a provider without a usable key gets nothing; the call goes back, no attempt counted" \
    "$before|queued|0|the provider's credentials hold no api_key" "$(stat "s['vapi']['requests']")|$(row "$id")"
check "and the provider pauses" "t" \
    "$(q "SELECT paused_until > now() FROM dialer.provider_state WHERE provider_id = 'd1d1d1d1-0000-4000-8000-0000000000b1'")"
check "no key shows in any call's last_error" "0" \
    "$(q "SELECT count(*) FROM call_queue WHERE last_error ~ '(vapi-key|retell-key|bland-key|wrong-key)'")"
if [ -n "${SERVER_LOG:-}" ]; then
    check "no key shows in the server's log" "0" "$(grep -cE 'vapi-key-7c1e93|retell-key-5a0f22|bland-key-9d4b71|wrong-key-0e6f5d4c' "$SERVER_LOG" || true)"
fi

# A private template's agent id is the user's to write: never sent.
q "INSERT INTO call_templates (id, name, is_public, created_by, provider_id, provider_agent_id, params)
   VALUES ('d1d1d1d1-0000-4000-8000-0000000000d9', 'Private', false, 'd1d1d1d1-0000-4000-8000-000000000001',
           'd1d1d1d1-0000-4000-8000-0000000000b2', 'agent_of_another_tenant',
           '{\"patient_name\": {\"type\": \"string\"}}')" >/dev/null
id=$(one_call 9 0007)
dispatch_one
check "a private template's agent id is not sent: the caller number's agent answers" "" \
    "$(curl -s "$mock_url/_requests" | python3 -c "
import json, sys
r = [x['body'] for x in json.load(sys.stdin) if x['provider'] == 'retell' and x['body']['to_number'] == '+14157770007']
print(r[-1].get('override_agent_id', ''))")"

# A user's own number goes out as the caller number only once an admin
# verified it (gave it the provider's phone_id).
number=$(q "INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
            VALUES ('d1d1d1d1-0000-4000-8000-000000000001', 'd1d1d1d1-0000-4000-8000-0000000000b2', '1', '415', '5550999', '+14155550999')
            RETURNING id")
before=$(stat "s['retell']['requests']")
id=$(q "INSERT INTO call_queue (user_id, recipient_number, template_id, caller_number_id, custom_variables, status, scheduled_time)
        VALUES ('d1d1d1d1-0000-4000-8000-000000000001', '+14157770010', 'd1d1d1d1-0000-4000-8000-0000000000d2', '$number',
                '{\"patient_name\": \"Ana\"}', 'queued', now() - interval '1 minute') RETURNING id")
dispatch_one
check "a user's own number without an admin's phone_id is not sent: the call fails, nothing reaches the provider" \
    "$before|failed|1|caller number $number is not verified: an admin verifies a user's number by setting its phone_id" \
    "$(stat "s['retell']['requests']")|$(row "$id")"

# Credentials are sealed: no key in a dump; a server without the key fails
# the provider's calls with the reason, sending nothing.
check "no key appears in clear in pg_dump's output" "0" \
    "$(pg_dump -d "$db" | grep -cE 'vapi-key-7c1e93|retell-key-5a0f22|bland-key-9d4b71|wrong-key-0e6f5d4c' || true)"
python3 -c "import secrets; print(secrets.token_hex(32))" >"$log/other.key"
chmod 755 "$log" && chown postgres "$log/other.key" && chmod 600 "$log/other.key"
q "ALTER DATABASE $db SET pg_dialer.credentials_key = '$log/other.key'" >/dev/null
before=$(stat "s['retell']['requests']")
id=$(one_call 2 0011)
dispatch_one
check_match "a server without the key sends nothing and fails the call, retryable, saying why" \
    "^$before\|queued\|1\|provider Retell: the credentials were sealed under key [0-9a-f]{16}, which this server does not have$" \
    "$(stat "s['retell']['requests']")|$(row "$id")"
q "ALTER DATABASE $db RESET pg_dialer.credentials_key" >/dev/null
q "UPDATE call_queue SET status = 'canceled' WHERE id = '$id'" >/dev/null

# ------------------------------------------------------------ who may
check_match "a signed-in user may not dispatch" "is for the dialing worker" \
    "$(psql -X -q -d "$db" -c "SET ROLE authenticated" \
        -c "SELECT set_config('request.jwt.claims', '{\"sub\": \"d1d1d1d1-0000-4000-8000-000000000001\"}', false)" \
        -c "CALL dispatch_due_calls(10)" 2>&1)"
check_match "anon may not even call it" "permission denied" \
    "$(psql -X -q -d "$db" -c "SET ROLE anon" -c "CALL dispatch_due_calls(10)" 2>&1)"
id=$(one_call 1 0005)
q "UPDATE call_queue SET status = 'in-progress', claimed_at = now() WHERE id = '$id'" >/dev/null
before=$(stat "s['vapi']['requests']")
worker "SELECT count(*) FROM dialer.dispatch_send(ARRAY['$id']::uuid[])" >/dev/null
check "a call this session did not claim is not sent" "$before" "$(stat "s['vapi']['requests']")"

echo "1..$n"
