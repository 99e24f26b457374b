-- What the providers received for each call the dispatcher placed (from the
-- provider stand-in, :requests; never a key: it keeps no Authorization
-- header) and what pg_dialer recorded of it.
\set ON_ERROR_STOP 1
\pset footer off
\echo '== 13. Per call: what the provider received, and the result recorded from its webhook'
\x on
WITH received AS (
    SELECT r->>'provider' AS api, r->'body' AS body,
           coalesce(r->'body'->'assistantOverrides'->'metadata', r->'body'->'metadata')->>'call_queue_id' AS call_queue_id
    FROM jsonb_array_elements(:'requests'::jsonb) r
)
SELECT q.recipient_number, r.api,
       jsonb_strip_nulls(r.body - 'metadata' - 'webhook' || jsonb_build_object('assistantOverrides',
           (r.body->'assistantOverrides') - 'metadata'))::text AS provider_received,
       q.status, q.call_id AS provider_call_id, h.duration AS seconds, h.call_summary
FROM received r
JOIN call_queue q ON q.id::text = r.call_queue_id
LEFT JOIN user_call_history h ON h.call_queue_id = q.id
ORDER BY q.recipient_number;
\x off

\echo '== 14. The dispatcher, as an admin or service_role sees it'
SET ROLE service_role;
SELECT provider, api, in_progress, placed_last_hour, failed_last_hour, coalesce(last_error, '') AS last_error
FROM dispatcher_status();
SELECT enabled, database, pid IS NOT NULL AS running FROM dispatcher_worker();
RESET ROLE;
