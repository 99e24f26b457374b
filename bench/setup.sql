-- Helpers of the benchmark runs (not part of pg_dialer).
\set ON_ERROR_STOP 1
CREATE TABLE bench_claims (call_queue_id uuid, provider_id uuid, claimed_at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON bench_claims TO service_role;
CREATE TABLE bench_payloads (body jsonb);
GRANT SELECT ON bench_payloads TO service_role;
CREATE SEQUENCE bench_rec_seq;
GRANT USAGE ON SEQUENCE bench_rec_seq TO service_role;

\ir ../tests/fixtures/assert_limits.sql

-- A batch of 10,000 calls for enqueue_calls (bench/campaigns.sh).
CREATE TABLE bench_batch AS
SELECT jsonb_agg(jsonb_build_object('recipient_number', '+1415555' || lpad(i::text, 4, '0'),
                                    'custom_variables', jsonb_build_object('patient_name', 'Patient ' || i))
                 ORDER BY i) AS calls
FROM generate_series(0, 9999) i;
GRANT SELECT ON bench_batch TO authenticated;
