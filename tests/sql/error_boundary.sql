-- The typed error boundary (src/errors.rs): a PT code is never raised
-- beneath a Rust frame, where pgrx would turn it into XX000 (HTTP 500). Rust
-- returns such an error beside its result; the SQL shells raise it through
-- dialer.raised(), and nothing else raises one. Checked in the catalog and
-- on every path that answers with a PT code, including the trigger fired by
-- Rust's own writes.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

CREATE TEMP VIEW dialer_sql_functions AS
SELECT p.oid::regprocedure::text AS fn, l.lanname, p.prosrc
FROM pg_proc p
JOIN pg_language l ON l.oid = p.prolang
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_dialer'
WHERE l.lanname IN ('plpgsql', 'sql');

---------------------------------------------------------------- the catalog
SELECT is((SELECT array_agg(fn ORDER BY fn) FROM dialer_sql_functions
           WHERE prosrc ~ 'PT[0-9]{3}' OR prosrc ~* 'ERRCODE\s*=\s*[a-z_]'),
          ARRAY['dialer.raised(anyelement,text,text,text,text)'],
          'no SQL or PL/pgSQL function of pg_dialer raises a PT code, or a code it was given, but dialer.raised()');

SELECT is((SELECT array_agg(fn ORDER BY fn) FROM dialer_sql_functions WHERE prosrc LIKE '%dialer.raised(%'),
          ARRAY['cancel_call(uuid)', 'cancel_campaign(uuid)', 'dialer.validate_queued_call()',
                'enqueue_call(text,uuid,jsonb,uuid,uuid,timestamp with time zone,text,uuid,uuid,jsonb,timestamp with time zone)',
                'enqueue_calls(jsonb,uuid,uuid,uuid,uuid,jsonb,timestamp with time zone,boolean,uuid)',
                'mark_call_failed(uuid,text,boolean)', 'mark_call_placed(uuid,text)', 'pause_campaign(uuid)',
                'pick_provider_number(text,uuid,uuid)', 'record_call_result(jsonb)', 'resume_campaign(uuid)'],
          'the shells that raise what Rust returns');

SELECT is((SELECT array_agg(fn ORDER BY fn) FROM dialer_sql_functions
           WHERE prosrc LIKE '%dialer.raised(%'
             AND prosrc !~ ('^\s*(BEGIN\s+(RETURN \(|RETURN QUERY\s+|NEW := \())?SELECT (o\.[a-z_]+,\s*)*'
                            'dialer\.raised\(o\.[a-z_]+, o\.error_code, o\.error_message, o\.error_detail, o\.error_hint\)'
                            '\s+FROM dialer\.[a-z_]+\(([A-Za-z_.:,\s]|''[a-z]+'')*\) AS o(\)?;\s+(RETURN NEW;\s+)?END)?\s*$')),
          NULL,
          'each shell only calls its Rust function (with its arguments, or a constant word) and hands the row to dialer.raised(): no query, no branch');

SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text)
           FROM pg_proc p
           JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
           JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_dialer'
           WHERE 'error_code' = ANY (p.proargnames)),
          ARRAY['dialer.campaign_action(uuid,text)', 'dialer.cancel_queued_call(uuid)',
                'dialer.check_queued_call(call_queue,call_queue)',
                'dialer.enqueue(text,uuid,text,uuid,uuid,timestamp with time zone,text,uuid,uuid,text,timestamp with time zone)',
                'dialer.enqueue_batch(text,uuid,uuid,uuid,uuid,text,timestamp with time zone,boolean,uuid)',
                'dialer.fail_call(uuid,text,boolean)', 'dialer.pick_number(text,uuid,uuid)', 'dialer.place_call(uuid,text)',
                'dialer.record_result(text)'],
          'the Rust functions that return a PT error as a value: each has its shell above');

------------------------- enqueue_call's own insert is the only row not checked
-- enqueue_call checks its call in Rust (returning its error) and inserts it;
-- the trigger does not check that one row again. The pass is for that
-- insert only: when the insert fails (here a DBA's trigger refuses it), the
-- same call written directly afterwards is checked like any other.
CREATE FUNCTION tests.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused by a trigger of the DBA';
END $$;
CREATE TRIGGER a_refuse BEFORE INSERT ON call_queue
    FOR EACH ROW WHEN (current_setting('tests.refuse', true) = 'on') EXECUTE FUNCTION tests.refuse();
SET LOCAL tests.refuse = 'on';
SELECT tests.as_user('a11ce000-0000-4000-8000-000000000001');
SELECT throws_ok($$SELECT enqueue_call('+14155550177', scheduled_time => now())$$,
                 'P0001', 'refused by a trigger of the DBA', 'enqueue_call: its insert is refused');
SELECT tests.as_owner();
SET LOCAL tests.refuse = 'off';
UPDATE subscription_plans SET call_limit = 0 WHERE id = '11111111-1111-4111-8111-111111111111';
SELECT tests.as_user('a11ce000-0000-4000-8000-000000000001');
SELECT throws_ok($$INSERT INTO call_queue (user_id, recipient_number, scheduled_time)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', '+14155550177', now())$$,
                 'PT402', 'call limit reached: plan "Starter" allows 0 calls per billing period',
                 'the same call, inserted directly afterwards, is checked: PT402');
SELECT throws_ok($$SELECT enqueue_call('+14155550177', scheduled_time => now())$$,
                 'PT402', 'call limit reached: plan "Starter" allows 0 calls per billing period',
                 'enqueue_call: PT402 from Rust, through its shell');
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = 100 WHERE id = '11111111-1111-4111-8111-111111111111';
DROP TRIGGER a_refuse ON call_queue;
-- A DBA's trigger that skips the row: enqueue_call queues nothing and says
-- so with NULL, as 0.1.0 did, rather than failing inside Rust (XX000).
CREATE FUNCTION tests.skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER a_skip BEFORE INSERT ON call_queue FOR EACH ROW EXECUTE FUNCTION tests.skip();
SELECT tests.as_user('a11ce000-0000-4000-8000-000000000001');
SELECT is((SELECT enqueue_call('+14155550177') IS NULL), true, 'a row a trigger skipped: enqueue_call returns NULL');
SELECT tests.as_owner();
DROP TRIGGER a_skip ON call_queue;

-------------------------------------------- every PT path reaches the client
SELECT tests.as_service();
SELECT throws_ok($$SELECT mark_call_placed('99999999-9999-4999-8999-0000000000ff', 'x')$$, 'PT404',
                 'call 99999999-9999-4999-8999-0000000000ff not found', 'mark_call_placed: PT404');
SELECT throws_ok($$SELECT mark_call_placed('99999999-9999-4999-8999-000000000001', 'x')$$, 'PT409',
                 'call 99999999-9999-4999-8999-000000000001 is queued, not in-progress', 'mark_call_placed: PT409');
SELECT throws_ok($$SELECT mark_call_failed('99999999-9999-4999-8999-0000000000ff', 'x')$$, 'PT404',
                 'call 99999999-9999-4999-8999-0000000000ff not found', 'mark_call_failed: PT404');
SELECT throws_ok($$SELECT mark_call_failed('99999999-9999-4999-8999-000000000003', 'x')$$, 'PT409',
                 'call 99999999-9999-4999-8999-000000000003 is queued, not in-progress', 'mark_call_failed: PT409');
SELECT throws_ok($$SELECT * FROM record_call_result('{"message": {"type": "end-of-call-report",
                    "endedReason": "customer-ended-call", "call": {"id": "nobody-placed-me"}}}')$$, 'PT404',
                 'no call has provider call id nobody-placed-me', 'record_call_result: PT404');
SELECT throws_ok($$SELECT cancel_call('99999999-9999-4999-8999-000000000002')$$, 'PT409',
                 'call 99999999-9999-4999-8999-000000000002 is in-progress; only a queued call can be canceled',
                 'cancel_call: PT409');

SELECT tests.as_user('a11ce000-0000-4000-8000-000000000001');
SELECT throws_ok($$SELECT cancel_call('99999999-9999-4999-8999-000000000003')$$, 'PT404',
                 'call 99999999-9999-4999-8999-000000000003 not found', 'cancel_call of another tenant''s call: PT404');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', template_id => '88888888-8888-4888-8888-000000000003')$$,
                 'PT404', 'template 88888888-8888-4888-8888-000000000003 not found',
                 'enqueue_call with another tenant''s template: PT404');
SELECT throws_ok($$INSERT INTO call_queue (recipient_number, template_id)
                   VALUES ('+14155550100', '88888888-8888-4888-8888-000000000003')$$,
                 'PT404', 'template 88888888-8888-4888-8888-000000000003 not found',
                 'a direct INSERT: PT404 from the trigger');
SELECT throws_ok($$UPDATE call_queue SET template_id = '88888888-8888-4888-8888-000000000003'
                   WHERE id = '99999999-9999-4999-8999-000000000001'$$,
                 'PT404', 'template 88888888-8888-4888-8888-000000000003 not found',
                 'a direct UPDATE of a queued call: PT404 from the trigger');
SELECT tests.as_owner();
UPDATE user_subscriptions SET status = 'canceled' WHERE user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT tests.as_user('a11ce000-0000-4000-8000-000000000001');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', scheduled_time => '2030-01-01 00:00+00')$$, 'PT402',
                 format('no active subscription covers the call time %s', '2030-01-01 00:00+00'::timestamptz),
                 'enqueue_call without a subscription: PT402');

-------------------------------- Rust's own writes never meet a PT code
-- A failed attempt queues the call again: Rust updates the row, and the
-- check's trigger fires beneath it. The check passes rows that were not
-- queued, so the retry of a call whose user has no subscription any more is
-- no PT402 (which would reach the worker as XX000), but a queued call.
SELECT tests.as_service();
SELECT is((SELECT status FROM mark_call_failed('99999999-9999-4999-8999-000000000002', 'busy')), 'queued',
          'mark_call_failed queues the call again, whatever its user''s subscription');
SELECT is((SELECT status FROM cancel_call('99999999-9999-4999-8999-000000000002')), 'canceled',
          'and the retry can be canceled as any queued call');
SELECT tests.as_owner();
UPDATE call_queue SET status = 'in-progress', call_id = 'vapi-call-2b' WHERE id = '99999999-9999-4999-8999-000000000003';
UPDATE user_subscriptions SET status = 'canceled' WHERE user_id = 'b0b00000-0000-4000-8000-000000000002';
SELECT tests.as_service();
SELECT is((SELECT queue_status FROM record_call_result('{"message": {"type": "end-of-call-report",
              "endedReason": "customer-busy", "call": {"id": "vapi-call-2b"}}}')), 'queued',
          'a busy result queues the call again, beneath Rust, without an error');

------------------------------ the owner's statements use no name of the caller's
-- Some statements run with the extension owner's privileges inside Rust (a
-- user's lock, the lookups of a queued call, cancel, routing counts). A
-- tenant's temporary type named like a built-in one, with a cast to it from
-- text (and back, so that the statement still parses), would be found first
-- under a search_path that does not list pg_temp, and its cast function
-- would run as the owner (a superuser, often). The owner's statements run
-- with search_path = pg_catalog, pg_temp. A sequence (not rolled back with
-- the failing statement) counts the times the tenant's function ran as
-- anyone else.
SELECT tests.as_owner();
UPDATE user_subscriptions SET status = 'active' WHERE user_id = 'a11ce000-0000-4000-8000-000000000001';
SELECT tests.as_user('a11ce000-0000-4000-8000-000000000001');
CREATE SEQUENCE pg_temp.escalations;
CREATE TYPE pg_temp.uuid AS (v text);
CREATE FUNCTION pg_temp.grab(text) RETURNS pg_temp.uuid LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'authenticated' THEN
        PERFORM nextval('pg_temp.escalations');
    END IF;
    RETURN ROW($1)::pg_temp.uuid;
END $$;
CREATE FUNCTION pg_temp.back(pg_temp.uuid) RETURNS pg_catalog.uuid LANGUAGE sql
    AS $$ SELECT ($1).v::pg_catalog.uuid $$;
CREATE CAST (text AS pg_temp.uuid) WITH FUNCTION pg_temp.grab(text);
CREATE CAST (pg_temp.uuid AS pg_catalog.uuid) WITH FUNCTION pg_temp.back(pg_temp.uuid) AS ASSIGNMENT;
DISCARD PLANS;  -- every statement is planned again, with the tenant's type around
-- The tenant's type breaks the tenant's own statements (their business);
-- what matters is that no statement of the owner's picks it up.
DO $$ BEGIN PERFORM enqueue_call('+14155550177'); EXCEPTION WHEN OTHERS THEN NULL; END $$;
DO $$ BEGIN PERFORM cancel_call('99999999-9999-4999-8999-000000000001'); EXCEPTION WHEN OTHERS THEN NULL; END $$;
-- Taking one's own lock: the owner's upsert casts the user's id to uuid.
DO $$ BEGIN PERFORM dialer.lock_user('a11ce000-0000-4000-8000-000000000001'); EXCEPTION WHEN OTHERS THEN NULL; END $$;
SELECT is((SELECT is_called FROM pg_temp.escalations), false,
          'and never in the owner''s: no function of a tenant''s runs with the owner''s privileges');

SELECT * FROM finish();
ROLLBACK;
