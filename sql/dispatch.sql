---------------------------------------------------------------------------
-- The dispatcher (src/dispatch.rs): pg_dialer places due calls with their
-- providers itself. dispatch_due_calls() is one pass in the caller's
-- session (a scheduler or pg_cron can run it); the claim is committed
-- before any request leaves, and the answers are recorded after.
---------------------------------------------------------------------------

-- Per provider: paused until (after a 429, for its Retry-After), and the
-- last error the dispatcher met. Only the extension's owner touches it.
CREATE TABLE dialer.provider_state (
    provider_id   UUID PRIMARY KEY REFERENCES public.call_service_providers (id) ON DELETE CASCADE,
    paused_until  TIMESTAMPTZ,
    last_error    TEXT,
    last_error_at TIMESTAMPTZ
);
REVOKE ALL ON dialer.provider_state FROM PUBLIC;

-- What the dispatcher placed and failed per provider, by 10-second bucket,
-- for dispatcher_status(); buckets older than an hour are dropped.
CREATE TABLE dialer.dispatch_counts (
    provider_id UUID NOT NULL REFERENCES public.call_service_providers (id) ON DELETE CASCADE,
    bucket      TIMESTAMPTZ NOT NULL,
    placed      INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider_id, bucket)
);
REVOKE ALL ON dialer.dispatch_counts FROM PUBLIC;

-- One pass: claim (committed: the calls are in progress, being sent), then
-- send and record a run of calls at a time, each run committed. CALL it
-- outside a transaction block. No SET clause: a
-- procedure that commits may not have one; every name is qualified.
CREATE PROCEDURE dispatch_due_calls(max_calls integer DEFAULT 50)
    LANGUAGE plpgsql
AS $$
DECLARE claimed uuid[] := dialer.dispatch_claim(max_calls);
BEGIN
    COMMIT;
    WHILE EXISTS (SELECT FROM dialer.dispatch_send(claimed)) LOOP COMMIT; END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE dispatch_due_calls(integer) FROM PUBLIC, anon;
GRANT EXECUTE ON PROCEDURE dispatch_due_calls(integer) TO authenticated, service_role;

REVOKE ALL ON FUNCTION dispatcher_status(), dispatcher_worker() FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION dispatcher_status(), dispatcher_worker() TO authenticated, service_role;

-- Providers' credentials are sealed when written (src/credentials.rs: under
-- the key pg_dialer.credentials_key names, never stored in the database);
-- rows already there (adopted, or of an earlier version) are sealed now.
CREATE TRIGGER seal_credentials BEFORE INSERT OR UPDATE OF api_credentials, id ON call_service_providers
    FOR EACH ROW EXECUTE FUNCTION dialer.seal_credentials();
SELECT dialer.seal_stored_credentials();
REVOKE ALL ON FUNCTION rotate_credentials_key() FROM PUBLIC, anon;
