-- Helpers of the benchmark runs (not part of pg_dialer).
\set ON_ERROR_STOP 1
CREATE TABLE bench_claims (call_queue_id uuid, provider_id uuid, claimed_at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON bench_claims TO service_role;
CREATE TABLE bench_payloads (body jsonb);
GRANT SELECT ON bench_payloads TO service_role;
CREATE SEQUENCE bench_rec_seq;
GRANT USAGE ON SEQUENCE bench_rec_seq TO service_role;

-- Raises if any provider has more calls in progress than its limit, as the
-- calling transaction sees them.
CREATE FUNCTION bench_assert_limits() RETURNS void LANGUAGE plpgsql AS $$
DECLARE over text;
BEGIN
    SELECT string_agg(format('%s: %s in progress, limit %s', p.name, c.calls, p.concurrency_limit), '; ') INTO over
    FROM call_service_providers p
    JOIN (SELECT provider_id, count(*) AS calls FROM call_queue WHERE status = 'in-progress' GROUP BY 1) c
      ON c.provider_id = p.id
    WHERE c.calls > p.concurrency_limit;
    IF over IS NOT NULL THEN
        RAISE EXCEPTION 'concurrency limit exceeded: %', over;
    END IF;
END $$;
