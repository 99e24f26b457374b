-- Campaigns, calling windows, expiry and enqueue_calls(): as the users,
-- admins and the worker use them, and as another tenant would try them.
-- Times are checked against PostgreSQL's own zone data (AT TIME ZONE), an
-- implementation apart from the one the extension uses (chrono-tz).
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

-- The test clusters turn the default window off (scripts/test.sh); here the
-- built-in default applies (empty: 08:00-21:00 every day).
SET pg_dialer.default_call_window = '';

-- A plan without limits and a period around now that the next days fall
-- in, whatever the date; room at the provider.
INSERT INTO subscription_plans (id, name, price, "interval", features, call_limit, minutes_limit) VALUES
    ('11111111-1111-4111-8111-111111111119', 'Bulk', 500, 'monthly', '{}', NULL, NULL);
UPDATE user_subscriptions SET plan_id = '11111111-1111-4111-8111-111111111119',
       current_period_start = now() - interval '1 day', current_period_end = now() + interval '40 days'
WHERE user_id = :alice;
UPDATE call_service_providers SET concurrency_limit = 1000;

CREATE FUNCTION tests.alice_calls() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT count(*) FROM public.call_queue WHERE user_id = 'a11ce000-0000-4000-8000-000000000001' $$;
-- Whether `at` is open in a window of 08:00-21:00 in `zone`, by PostgreSQL.
CREATE FUNCTION tests.in_default_window(at timestamptz, zone text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT (at AT TIME ZONE zone)::time >= '08:00' AND (at AT TIME ZONE zone)::time < '21:00' $$;
-- Whether `at` is when such a window opens (a minute before, it was closed).
CREATE FUNCTION tests.default_window_opens(at timestamptz, zone text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT tests.in_default_window(at, zone) AND NOT tests.in_default_window(at - interval '1 minute', zone) $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tests TO PUBLIC;

---------------------------------------------------------------- windows
SELECT tests.as_user(:alice);
SELECT is(current_setting('pg_dialer.default_call_window'), '', 'the built-in default window applies here');

-- Five cities at one instant: each call waits for 08:00 in its own zone,
-- or is due now where it is open now.
CREATE TEMP TABLE cities (city text, number text, zone text);
INSERT INTO cities VALUES
    ('Honolulu', '+1 808 555 0100', 'Pacific/Honolulu'),
    ('Denver', '+1 303 555 0100', 'America/Denver'),
    ('New York', '+1 212 555 0100', 'America/New_York'),
    ('London', '+44 20 7946 0173', 'Europe/London'),
    ('Sydney', '+61 2 9374 4000', 'Australia/Sydney');
CREATE TEMP TABLE city_calls AS
SELECT c.city, c.zone, q.id, q.scheduled_time, q.call_window
FROM cities c, LATERAL enqueue_call(c.number) q;
GRANT SELECT ON city_calls TO PUBLIC;
SELECT is((SELECT count(*) FROM city_calls WHERE call_window = '{"hours": [["08:00", "21:00"]], "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}'),
          5::bigint, 'every call gets the default window, written out');
SELECT is((SELECT string_agg(city, ', ' ORDER BY city) FROM city_calls
           WHERE NOT CASE WHEN scheduled_time = now() THEN tests.in_default_window(now(), zone)
                          ELSE scheduled_time > now() AND tests.default_window_opens(scheduled_time, zone)
                               AND NOT tests.in_default_window(now(), zone)
                          AND scheduled_time < now() + interval '1 day' END), NULL,
          'each city''s call is due now inside its window, or at its next opening in its own zone');

-- The worker claims only the calls whose window is open now.
SELECT tests.as_service();
CREATE TEMP TABLE claimed AS SELECT call_queue_id FROM claim_due_calls(100);
SELECT is((SELECT string_agg(city, ', ' ORDER BY city) FROM city_calls
           WHERE id IN (SELECT call_queue_id FROM claimed)),
          (SELECT string_agg(city, ', ' ORDER BY city) FROM city_calls
           WHERE tests.in_default_window(clock_timestamp(), zone)),
          'a claim takes the calls whose window is open now, and no other');
SELECT tests.as_owner();
UPDATE call_queue SET status = 'completed' WHERE id IN (SELECT call_queue_id FROM claimed);

-- A window closed now, in UTC: the call waits for its opening two hours on.
SELECT tests.as_user(:alice);
SELECT format('{"hours": [["%s:00", "%s:00"]], "time_zone": "UTC"}',
              lpad(((extract(hour FROM now() AT TIME ZONE 'UTC')::int + 2) % 24)::text, 2, '0'),
              lpad(((extract(hour FROM now() AT TIME ZONE 'UTC')::int + 2) % 24 + 1)::text, 2, '0')) AS later \gset
SELECT is((SELECT scheduled_time FROM enqueue_call('+14155550190', call_window => :'later')),
          date_trunc('hour', now()) + interval '2 hours', 'a call outside its window waits for its opening');
-- 23:00 in New York: the next morning at 08:00.
SELECT is((SELECT scheduled_time AT TIME ZONE 'America/New_York' FROM enqueue_call('+1 212 555 0190',
               scheduled_time => (date_trunc('day', now() AT TIME ZONE 'America/New_York') + interval '1 day 23 hours')
                                 AT TIME ZONE 'America/New_York')),
          date_trunc('day', now() AT TIME ZONE 'America/New_York') + interval '2 days 8 hours',
          '23:00 local moves to 08:00 the next morning');
-- Weekdays: every day but today's (in UTC): tomorrow at midnight.
SELECT format('{"hours": [["00:00", "24:00"]], "days": %s, "time_zone": "UTC"}',
              (SELECT jsonb_agg(d) FROM unnest(ARRAY['mon','tue','wed','thu','fri','sat','sun']) WITH ORDINALITY AS w(d, n)
               WHERE n <> extract(isodow FROM now() AT TIME ZONE 'UTC'))) AS not_today \gset
SELECT is((SELECT scheduled_time FROM enqueue_call('+14155550191', call_window => :'not_today')),
          (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC',
          'a day the window leaves out is skipped');
-- A number whose region spans several zones: open in all of them.
SELECT ok((SELECT bool_and(tests.in_default_window(q.scheduled_time, z))
           FROM enqueue_call('+61 412 345 678') q,
                unnest(ARRAY['Australia/Adelaide', 'Australia/Brisbane', 'Australia/Eucla', 'Australia/Lord_Howe',
                             'Australia/Perth', 'Australia/Sydney', 'Indian/Christmas', 'Indian/Cocos']) AS z),
          'an Australian mobile waits until 08:00-21:00 holds in every Australian zone');
SELECT ok((SELECT tests.in_default_window(scheduled_time, 'Australia/Perth')
                  AND (scheduled_time = now() OR tests.default_window_opens(scheduled_time, 'Australia/Perth'))
           FROM enqueue_call('+61 412 345 679', call_window => '{"time_zone": "Australia/Perth"}')),
          '... unless the caller names the zone');
SELECT is((SELECT call_window FROM enqueue_call('+14155550192', call_window => '{"always": true}')),
          '{"always": true}'::jsonb, 'turning the window off is explicit');
SELECT is((SELECT scheduled_time FROM enqueue_call('+14155550193', call_window => '{"always": true}')),
          now(), '... and such a call is due at once');

-- Bad windows: 22023 naming what is wrong, nothing written.
SELECT tests.alice_calls() AS before_bad \gset
SELECT throws_ok($$SELECT enqueue_call('+14155550100', call_window => '{"hours": [["21:00", "08:00"]]}')$$, '22023',
                 'call_window.hours[0] ends before it starts: ["21:00","08:00"]; a range across midnight is written as two',
                 'a range across midnight is refused');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', call_window => '{"days": ["someday"]}')$$, '22023',
                 'call_window.days holds "someday", which is not one of mon, tue, wed, thu, fri, sat, sun',
                 'an unknown weekday is refused');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', call_window => '{"time_zone": "Mars/Olympus"}')$$, '22023',
                 'call_window.time_zone "Mars/Olympus" is not a time zone of the IANA database',
                 'an unknown zone is refused');
SELECT throws_ok($$SELECT enqueue_call('+80012345678')$$, '22023',
                 'the time zone of recipient_number +80012345678 is not known, so its calling window cannot be kept',
                 'a number without a known zone needs one named');
-- (a window of the day after tomorrow only, in UTC: closed now, whatever the
-- time of the run)
SELECT format('{"days": ["%s"], "time_zone": "UTC"}',
              lower(to_char((now() AT TIME ZONE 'UTC') + interval '2 days', 'dy'))) AS later_window \gset
SELECT matches((tests.error_detail(format($$SELECT enqueue_call('+14155550100', call_window => %L,
                                       expires_at => now() + interval '1 minute')$$, :'later_window')))::text,
               '"code": "22023".*expires_at .* comes before the call could be placed: the call''s window first opens at ',
               'an expiry before the window opens is refused');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', expires_at => now() - interval '1 second')$$, '22023',
                 format('expires_at %s has passed', now() - interval '1 second'), 'an expiry in the past is refused');
SELECT is(tests.alice_calls(), :before_bad::bigint, 'bad windows wrote nothing');

-- A user's default window, below the call's own.
UPDATE user_profiles SET call_window = '{"hours": [["09:00", "17:00"]], "days": ["mon", "tue", "wed", "thu", "fri"]}' WHERE id = :alice;
SELECT is((SELECT call_window FROM enqueue_call('+14155550194')),
          '{"hours": [["09:00", "17:00"]], "days": ["mon", "tue", "wed", "thu", "fri"]}'::jsonb,
          'the user''s default window applies to a call without one');
SELECT throws_ok($$UPDATE user_profiles SET call_window = '{"hours": "all day"}' WHERE id = 'a11ce000-0000-4000-8000-000000000001'$$,
                 '22023', 'call_window.hours must be a list of 1 to 8 ranges ["HH:MM", "HH:MM"]',
                 'a bad default window is refused');
UPDATE user_profiles SET call_window = NULL WHERE id = :alice;

---------------------------------------------------------------- campaigns
INSERT INTO campaigns (id, user_id, name, template_id, call_window, expires_at) VALUES
    ('c0000000-0000-4000-8000-000000000001', :alice, 'Spring reminders', '88888888-8888-4888-8888-000000000002',
     '{"always": true}', now() + interval '7 days');
SELECT is((SELECT (template_id, call_window, expires_at)::text FROM enqueue_call('+14155550195', campaign_id => 'c0000000-0000-4000-8000-000000000001')),
          (SELECT (template_id, call_window, expires_at)::text FROM campaigns WHERE id = 'c0000000-0000-4000-8000-000000000001'),
          'a campaign lends its calls its template, window and expiry');
SELECT throws_ok($$INSERT INTO campaigns (user_id, name, call_window) VALUES ('a11ce000-0000-4000-8000-000000000001', 'x', '{"hours": []}')$$,
                 '22023', 'call_window.hours must be a list of 1 to 8 ranges ["HH:MM", "HH:MM"]', 'a campaign''s window is checked');
SELECT is((SELECT call_window FROM campaigns WHERE id = 'c0000000-0000-4000-8000-000000000001'), '{"always": true}'::jsonb,
          'a campaign''s window is stored written out');

-- Bob, another tenant, sees none of it and cannot use it.
SELECT tests.as_user(:bob);
SELECT is(tests.visible('campaigns'), 0::bigint, 'another tenant sees no campaign of Alice''s');
SELECT is(tests.visible('campaign_progress'), 0::bigint, '... nor their progress');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', campaign_id => 'c0000000-0000-4000-8000-000000000001')$$, 'PT404',
                 'campaign c0000000-0000-4000-8000-000000000001 not found', 'nor queues calls into it');
SELECT throws_ok($$INSERT INTO call_queue (user_id, recipient_number, campaign_id)
                   VALUES ('b0b00000-0000-4000-8000-000000000002', '+14155550100', 'c0000000-0000-4000-8000-000000000001')$$, 'PT404',
                 'campaign c0000000-0000-4000-8000-000000000001 not found', '... not even with a direct INSERT');
SELECT throws_ok($$SELECT enqueue_calls('[{"recipient_number": "+14155550100"}]', campaign_id => 'c0000000-0000-4000-8000-000000000001')$$, 'PT404',
                 'campaign c0000000-0000-4000-8000-000000000001 not found', '... nor in bulk');
SELECT throws_ok($$SELECT pause_campaign('c0000000-0000-4000-8000-000000000001')$$, 'PT404',
                 'campaign c0000000-0000-4000-8000-000000000001 not found', 'nor pauses it');
SELECT throws_ok($$SELECT cancel_campaign('c0000000-0000-4000-8000-000000000001')$$, 'PT404',
                 'campaign c0000000-0000-4000-8000-000000000001 not found', 'nor cancels it');
SELECT is(tests.affected($$UPDATE campaigns SET paused = true$$), 0::bigint, 'nor updates it');
SELECT throws_ok($$INSERT INTO campaigns (user_id, name) VALUES ('a11ce000-0000-4000-8000-000000000001', 'forged')$$,
                 '42501', 'new row violates row-level security policy for table "campaigns"', 'nor creates one in Alice''s name');
SELECT tests.as_anon();
SELECT throws_ok($$SELECT enqueue_calls('[]')$$, '42501', 'permission denied for function enqueue_calls', 'anon cannot queue calls');
SELECT throws_ok($$SELECT * FROM campaign_progress$$, '42501', 'permission denied for view campaign_progress', 'nor read progress');

-- Paused: its calls stay queued; resumed: claimed.
SELECT tests.as_user(:alice);
SELECT is((SELECT paused FROM pause_campaign('c0000000-0000-4000-8000-000000000001')), true, 'Alice pauses her campaign');
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(100) c JOIN call_queue q ON q.id = c.call_queue_id
           WHERE q.campaign_id = 'c0000000-0000-4000-8000-000000000001'), 0::bigint, 'a paused campaign''s calls are not claimed');
SELECT tests.as_user(:alice);
SELECT is((SELECT paused FROM resume_campaign('c0000000-0000-4000-8000-000000000001')), false, 'Alice resumes it');
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(100) c JOIN call_queue q ON q.id = c.call_queue_id
           WHERE q.campaign_id = 'c0000000-0000-4000-8000-000000000001'), 1::bigint, 'then they are claimed');

-- Cancel: every queued call of it, at once; then nothing more joins it.
SELECT tests.as_user(:alice);
SELECT enqueue_calls('[{"recipient_number": "+14155550196"}, {"recipient_number": "+14155550197"}]',
                     campaign_id => 'c0000000-0000-4000-8000-000000000001') IS NOT NULL AS queued_two \gset
SELECT ok((SELECT canceled_at IS NOT NULL FROM cancel_campaign('c0000000-0000-4000-8000-000000000001')), 'Alice cancels it');
SELECT is((SELECT (queued, in_progress, canceled)::text FROM campaign_progress WHERE campaign_id = 'c0000000-0000-4000-8000-000000000001'),
          '(0,1,2)', 'its queued calls are canceled, the call in progress goes on');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', campaign_id => 'c0000000-0000-4000-8000-000000000001')$$, 'PT409',
                 'campaign c0000000-0000-4000-8000-000000000001 is canceled; no calls can be added to it', 'no call joins a canceled campaign');
SELECT throws_ok($$SELECT resume_campaign('c0000000-0000-4000-8000-000000000001')$$, 'PT409',
                 'campaign c0000000-0000-4000-8000-000000000001 is canceled; it cannot be resumed', 'nor is it resumed');
SELECT throws_ok($$UPDATE campaigns SET canceled_at = NULL WHERE id = 'c0000000-0000-4000-8000-000000000001'$$, '42501',
                 'campaigns.canceled_at can only be changed by an admin', 'nor un-canceled by hand');

-- A call of a canceled campaign that was in progress and fails is not
-- queued again: it ends canceled.
SELECT tests.as_service();
SELECT is((SELECT status FROM mark_call_failed(
              (SELECT id FROM call_queue WHERE campaign_id = 'c0000000-0000-4000-8000-000000000001' AND status = 'in-progress'),
              'no-answer', true)),
          'canceled', 'a failed call of a canceled campaign ends canceled, not queued again');
SELECT tests.as_user(:alice);

-- What a campaign names is checked when it names it: a public template
-- made private later does not keep its user from pausing the campaign.
INSERT INTO campaigns (id, user_id, name, template_id) VALUES
    ('c0000000-0000-4000-8000-000000000003', :alice, 'On a public template', '88888888-8888-4888-8888-000000000001');
SELECT tests.as_owner();
UPDATE call_templates SET is_public = false WHERE id = '88888888-8888-4888-8888-000000000001';
SELECT tests.as_user(:alice);
SELECT is((SELECT paused FROM pause_campaign('c0000000-0000-4000-8000-000000000003')), true,
          'a campaign whose template went private can still be paused');
SELECT ok((SELECT canceled_at IS NOT NULL FROM cancel_campaign('c0000000-0000-4000-8000-000000000003')),
          '... and canceled');
SELECT tests.as_owner();
UPDATE call_templates SET is_public = true WHERE id = '88888888-8888-4888-8888-000000000001';
SELECT tests.as_user(:alice);

-- A campaign names only what its user may use: the same refusal for
-- another tenant's row and for none, so that ids cannot be probed.
SELECT throws_ok($$INSERT INTO campaigns (user_id, name, template_id)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', 'x', '88888888-8888-4888-8888-000000000003')$$, '22023',
                 'the campaign''s template_id 88888888-8888-4888-8888-000000000003 is not a template of its user''s or a public one',
                 'a campaign cannot name another tenant''s private template');
SELECT throws_ok($$INSERT INTO campaigns (user_id, name, template_id)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', 'x', '88888888-8888-4888-8888-0000000000ff')$$, '22023',
                 'the campaign''s template_id 88888888-8888-4888-8888-0000000000ff is not a template of its user''s or a public one',
                 '... and says the same of a template that does not exist');
SELECT throws_ok($$INSERT INTO campaigns (user_id, name, caller_number_id)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', 'x', '66666666-6666-4666-8666-000000000002')$$, '22023',
                 'the campaign''s caller_number_id 66666666-6666-4666-8666-000000000002 is not a caller number of its user''s',
                 'nor another tenant''s caller number');

---------------------------------------------------------------- expiry
-- Noticed by a claim (on the clock): canceled as expired, never billed.
SELECT id AS soon FROM enqueue_call('+14155550198', call_window => '{"always": true}',
                                    expires_at => clock_timestamp() + interval '300 milliseconds') \gset
SELECT pg_sleep(0.5);
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(100) WHERE call_queue_id = :'soon'), 0::bigint, 'an expired call is not claimed');
SELECT is((SELECT (status, last_error LIKE 'expired: not placed by %')::text FROM call_queue WHERE id = :'soon'),
          '(canceled,t)', 'it ends canceled, as expired');
-- Noticed by the rescue job.
SELECT tests.as_user(:alice);
SELECT id AS later_call FROM enqueue_call('+14155550199', expires_at => now() + interval '1 day') \gset
SELECT tests.as_owner();
UPDATE call_queue SET expires_at = now() - interval '1 minute' WHERE id = :'later_call';
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM rescue_stale_calls() WHERE id = :'later_call' AND status = 'canceled'), 1::bigint,
          'rescue_stale_calls() cancels an expired call');
SELECT is((SELECT count(*) FROM user_call_history WHERE call_queue_id IN (:'soon', :'later_call')), 0::bigint,
          'expired calls leave no history and are not billed');

---------------------------------------------------------------- enqueue_calls
SELECT tests.as_user(:alice);
-- 10,000 calls, 3 bad: nothing written, exactly those 3 reported.
CREATE TEMP TABLE batch AS
SELECT jsonb_agg(CASE i WHEN 17 THEN jsonb_build_object('recipient_number', 'not a number')
                        WHEN 5000 THEN jsonb_build_object('recipient_number', '+14155550100', 'scheduled_time', 'someday')
                        WHEN 9999 THEN jsonb_build_object('recipient_number', '+14155550100', 'custom_variables', '[1]'::jsonb)
                        ELSE jsonb_build_object('recipient_number', format('+1415555%s', lpad(i::text, 4, '0')),
                                                'idempotency_key', 'k' || i) END ORDER BY i) AS calls
FROM generate_series(0, 9999) i;
GRANT SELECT ON batch TO PUBLIC;
SELECT tests.alice_calls() AS before_batch \gset
SELECT tests.error_detail($$SELECT enqueue_calls((SELECT calls FROM batch), call_window => '{"always": true}')$$) AS refused \gset
SELECT is((:'refused'::jsonb)->>'code', '22023', 'a batch with bad calls is refused');
SELECT is((:'refused'::jsonb)->>'message', '3 of the 10000 calls are invalid; none was queued', '... saying how many');
SELECT is((SELECT jsonb_agg(jsonb_build_array(e->'index', e->'field')) FROM jsonb_array_elements((:'refused'::jsonb)->'detail') e),
          '[[17, "recipient_number"], [5000, "scheduled_time"], [9999, "custom_variables"]]'::jsonb,
          '... listing exactly the bad calls, by index and field');
SELECT is(tests.alice_calls(), :before_batch::bigint, '... and writing nothing');
SELECT enqueue_calls((SELECT calls FROM batch), call_window => '{"always": true}', skip_invalid => true) AS skipped \gset
SELECT is(((:'skipped'::jsonb)->>'queued')::int, 9997, 'with skip_invalid the 9,997 good calls are queued');
SELECT is(jsonb_array_length((:'skipped'::jsonb)->'invalid'), 3, '... and the 3 bad ones returned');
SELECT is(tests.alice_calls(), :before_batch::bigint + 9997, '... 9,997 rows written');
SELECT enqueue_calls((SELECT calls FROM batch), call_window => '{"always": true}', skip_invalid => true) AS resent \gset
SELECT is(((:'resent'::jsonb)->>'queued')::int, 0, 'the same batch sent again queues nothing');
SELECT is(((:'resent'::jsonb)->>'existing')::int, 9997, '... and answers with the calls of its keys');
SELECT is(tests.alice_calls(), :before_batch::bigint + 9997, '... nothing written twice');
SELECT throws_ok($$SELECT enqueue_calls('[{"recipient_number": "+14155550100", "idempotency_key": "dup"},
                                        {"recipient_number": "+14155550101", "idempotency_key": "dup"}]')$$, '22023',
                 '1 of the 2 calls is invalid; none was queued', 'a key twice in one batch is refused');
SELECT throws_ok(format($$SELECT enqueue_calls(%L)$$, (SELECT jsonb_agg(jsonb_build_object('recipient_number', '+14155550100'))
                                                     FROM generate_series(1, 10001))),
                 '22023', 'calls holds 10001 calls; at most 10000 are queued in one request', 'at most 10,000 calls a request');
SELECT throws_ok($$SELECT enqueue_calls('{"recipient_number": "+14155550100"}')$$, '22023',
                 'calls must be a JSON array of calls, such as [{"recipient_number": "+14155550100"}]', 'calls is a list');
SELECT throws_ok($$SELECT enqueue_calls('[{"recipient_number": "+14155550100"}]', call_window => '{"days": []}')$$, '22023',
                 'call_window.days must be a list of weekdays, such as ["mon", "tue"]', 'a bad shared window is the request''s error');

SELECT is((SELECT jsonb_agg(jsonb_build_array(e->'index', e->'field')) FROM jsonb_array_elements(
               enqueue_calls('[{"recipient_number": "+14155550100", "scheduled_time": "300000-01-01T00:00:00Z"},
                               {"recipient_number": "+14155550100", "scheduled_time": "2024-01-01 10:00+16"},
                               {"recipient_number": "+14155550100", "expires_at": "tomorrow"}]',
                             call_window => '{"always": true}', skip_invalid => true)->'invalid') e),
          '[[0, "scheduled_time"], [1, "scheduled_time"], [2, "expires_at"]]'::jsonb,
          'times out of range or not RFC 3339 are bad calls, listed, not the request''s failure');
SELECT is((enqueue_calls('[{"recipient_number": "not a number", "idempotency_key": "twice"},
                           {"recipient_number": "+14155550179", "idempotency_key": "twice"}]',
                         call_window => '{"always": true}', skip_invalid => true))->'queued', '1'::jsonb,
          'a key is judged among the calls that pass: the good call of two with one key is queued');

-- The quota, for the whole request: how many would fit.
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = (SELECT count(*) FROM call_queue
    WHERE user_id = :alice AND status IN ('queued', 'in-progress')) + 3
WHERE id = '11111111-1111-4111-8111-111111111119';
SELECT tests.as_user(:alice);
SELECT tests.error_detail($$SELECT enqueue_calls('[{"recipient_number": "+14155550100"}, {"recipient_number": "+14155550101"},
                                         {"recipient_number": "+14155550102"}, {"recipient_number": "+14155550103"},
                                         {"recipient_number": "+14155550104"}, {"recipient_number": "+14155550105"}]',
                                       call_window => '{"always": true}')$$) AS over_quota \gset
SELECT is((:'over_quota'::jsonb)->>'code', 'PT402', 'a batch over the quota is refused');
SELECT is((:'over_quota'::jsonb)->>'message',
          'call limit reached: plan "Bulk" allows ' || (SELECT call_limit FROM subscription_plans WHERE id = '11111111-1111-4111-8111-111111111119')
          || ' calls per billing period; 3 of the 6 calls would fit', '... saying how many would fit');

-- Progress in one query.
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = NULL WHERE id = '11111111-1111-4111-8111-111111111119';
INSERT INTO campaigns (id, user_id, name, call_window) VALUES
    ('c0000000-0000-4000-8000-000000000002', :alice, 'Autumn', '{"always": true}');
SELECT tests.as_user(:alice);
SELECT (enqueue_calls('[{"recipient_number": "+14155550180"}, {"recipient_number": "+14155550181"}, {"recipient_number": "+14155550182"}]',
                      campaign_id => 'c0000000-0000-4000-8000-000000000002'))->'calls' AS autumn \gset
SELECT tests.as_owner();
UPDATE call_queue SET status = 'completed' WHERE id = ((:'autumn'::jsonb)->0->>'id')::uuid;
INSERT INTO user_call_history (user_id, call_queue_id, call_id, status, duration)
VALUES (:alice, ((:'autumn'::jsonb)->0->>'id')::uuid, 'autumn-1', 'completed', 61);
UPDATE call_queue SET status = 'failed' WHERE id = ((:'autumn'::jsonb)->1->>'id')::uuid;
SELECT tests.as_user(:alice);
SELECT is((SELECT (calls, queued, in_progress, completed, failed, canceled, expired, minutes_used)::text
           FROM campaign_progress WHERE campaign_id = 'c0000000-0000-4000-8000-000000000002'),
          '(3,1,0,1,1,0,0,2)', 'progress: calls by state and minutes billed, in one query');

SELECT * FROM finish();
ROLLBACK;
