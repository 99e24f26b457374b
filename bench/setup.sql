-- Helpers of the benchmark runs (not part of pg_dialer).
\set ON_ERROR_STOP 1
CREATE TABLE bench_claims (call_queue_id uuid, provider_id uuid, claimed_at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON bench_claims TO service_role;
CREATE TABLE bench_payloads (body jsonb);
GRANT SELECT ON bench_payloads TO service_role;
CREATE SEQUENCE bench_rec_seq;
GRANT USAGE ON SEQUENCE bench_rec_seq TO service_role;

\ir ../tests/fixtures/assert_limits.sql
