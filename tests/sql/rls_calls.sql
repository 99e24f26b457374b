-- Calls: call_templates, call_queue, user_call_history. Each as anon, the
-- owner, another user, an admin and service_role, with forged owners, ids,
-- status and worker fields.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

---------------------------------------------------------------- anon
SELECT tests.as_anon();
SELECT is((SELECT array_agg(name) FROM call_templates), ARRAY['Appointment reminder'],
          'anon reads public templates, and nothing else of them');
SELECT throws_ok($$INSERT INTO call_templates (name, is_public) VALUES ('Spam', true)$$, '42501', 'permission denied for table call_templates',
                 'anon cannot create templates');
SELECT throws_ok($$UPDATE call_templates SET name = 'x'$$, '42501', 'permission denied for table call_templates', 'anon cannot update templates');
SELECT throws_ok($$DELETE FROM call_templates$$, '42501', 'permission denied for table call_templates', 'anon cannot delete templates');
SELECT throws_ok('SELECT * FROM call_queue', '42501', 'permission denied for table call_queue', 'anon cannot read the queue');
SELECT throws_ok($$INSERT INTO call_queue (user_id, recipient_number) VALUES ('a11ce000-0000-4000-8000-000000000001', '+1')$$,
                 '42501', 'permission denied for table call_queue', 'anon cannot queue calls');
SELECT throws_ok('SELECT * FROM user_call_history', '42501', 'permission denied for table user_call_history', 'anon cannot read history');
-- Every table but call_templates is closed to anon, whatever it is.
SELECT is(
    (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
       AND has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')),
    ARRAY['call_templates'], 'anon holds a privilege on call_templates only');
SELECT ok(NOT has_table_privilege('anon', 'call_templates', 'INSERT, UPDATE, DELETE'),
          'and there only SELECT');

---------------------------------------------------------------- call_templates
SELECT tests.as_user(:alice);
SELECT is((SELECT array_agg(name ORDER BY name) FROM call_templates), ARRAY['Alice private', 'Appointment reminder'],
          'alice sees public templates and her own');
SELECT lives_ok($$INSERT INTO call_templates (name, created_by, params)
                  VALUES ('Alice second', 'a11ce000-0000-4000-8000-000000000001', '{}')$$, 'alice creates a template');
SELECT throws_ok($$INSERT INTO call_templates (name, created_by, is_public)
                   VALUES ('Forged', 'b0b00000-0000-4000-8000-000000000002', true)$$,
                 '42501', 'new row violates row-level security policy for table "call_templates"', 'alice cannot create a template as bob');
SELECT throws_ok($$INSERT INTO call_templates (name, is_public) VALUES ('Orphan', true)$$,
                 '42501', 'new row violates row-level security policy for table "call_templates"', 'alice cannot create a template owned by nobody');
SELECT is(tests.affected($$UPDATE call_templates SET name = 'Renamed' WHERE name = 'Alice private'$$), 1::bigint,
          'alice updates her template');
SELECT is(tests.affected($$UPDATE call_templates SET name = 'Defaced' WHERE name = 'Appointment reminder'$$), 0::bigint,
          'alice cannot update bob''s public template');
SELECT throws_ok($$UPDATE call_templates SET created_by = 'b0b00000-0000-4000-8000-000000000002' WHERE name = 'Renamed'$$,
                 '42501', 'call_templates.created_by can only be changed by an admin', 'alice cannot hand her template to bob');
SELECT is(tests.affected($$DELETE FROM call_templates WHERE name = 'Appointment reminder'$$), 0::bigint,
          'alice cannot delete bob''s template');
SELECT is(tests.affected($$DELETE FROM call_templates WHERE name = 'Alice second'$$), 1::bigint,
          'alice deletes her own template');
-- Publishing is an admin's act.
SELECT throws_ok($$INSERT INTO call_templates (name, created_by, is_public)
                   VALUES ('Mine, for all', 'a11ce000-0000-4000-8000-000000000001', true)$$,
                 '42501', 'new row violates row-level security policy for table "call_templates"', 'alice cannot publish a template she creates');
SELECT throws_ok($$UPDATE call_templates SET is_public = true WHERE name = 'Renamed'$$,
                 '42501', 'new row violates row-level security policy for table "call_templates"', 'nor publish her private one');
SELECT tests.as_owner();
UPDATE call_templates SET is_public = true WHERE name = 'Renamed';
SELECT tests.as_user(:alice);
SELECT is(tests.affected($$UPDATE call_templates SET assistant_id = 'f0000000-0000-4000-8000-00000000beef'
                           WHERE name = 'Renamed'$$), 0::bigint,
          'once published (by an admin), its author cannot change it under other tenants'' calls');
SELECT is(tests.affected($$DELETE FROM call_templates WHERE name = 'Renamed'$$), 0::bigint,
          'nor delete it');
SELECT tests.as_owner();
UPDATE call_templates SET is_public = false WHERE name = 'Renamed';
SELECT tests.as_user(:alice);
SELECT tests.as_user(:bob);
SELECT is((SELECT array_agg(name ORDER BY name) FROM call_templates), ARRAY['Appointment reminder', 'Bob private'],
          'bob does not see alice''s private template');
SELECT tests.as_admin();
SELECT is(tests.visible('call_templates'), 3::bigint, 'an admin sees every template');
SELECT is(tests.affected($$UPDATE call_templates SET is_public = false WHERE name = 'Appointment reminder'$$), 1::bigint,
          'an admin unpublishes a template');
SELECT tests.as_service();
SELECT is(tests.visible('call_templates'), 3::bigint, 'service_role sees every template');

---------------------------------------------------------------- call_queue
SELECT tests.as_user(:alice);
SELECT is(tests.visible('call_queue'), 2::bigint, 'alice sees her two calls');
SELECT lives_ok($$INSERT INTO call_queue (id, user_id, recipient_number)
                  VALUES ('99999999-9999-4999-8999-000000000010', 'a11ce000-0000-4000-8000-000000000001', '+14155550130')$$,
                'alice queues a call');
SELECT is((SELECT status FROM call_queue WHERE id = '99999999-9999-4999-8999-000000000010'), 'queued',
          'it is queued');
SELECT throws_ok($$INSERT INTO call_queue (user_id, recipient_number)
                   VALUES ('b0b00000-0000-4000-8000-000000000002', '+14155550131')$$,
                 '42501', 'only an admin or service_role can queue calls for another user, not for b0b00000-0000-4000-8000-000000000002', 'alice cannot queue a call for bob');
SELECT throws_ok($$INSERT INTO call_queue (user_id, recipient_number, status)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', '+14155550132', 'completed')$$,
                 '42501', 'new row violates row-level security policy for table "call_queue"', 'alice cannot insert a call as completed');
SELECT throws_ok($$INSERT INTO call_queue (user_id, recipient_number, call_id)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', '+14155550133', 'vapi-call-2')$$,
                 '42501', 'new row violates row-level security policy for table "call_queue"', 'alice cannot insert a call with a provider call id');
SELECT throws_ok($$INSERT INTO call_queue (user_id, recipient_number, retry_count)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', '+14155550134', -5)$$,
                 '42501', 'new row violates row-level security policy for table "call_queue"', 'alice cannot insert a call with a retry count');
SELECT throws_ok($$INSERT INTO call_queue (id, user_id, recipient_number)
                   VALUES ('99999999-9999-4999-8999-000000000003', 'a11ce000-0000-4000-8000-000000000001', '+14155550135')$$,
                 '23505', 'duplicate key value violates unique constraint "call_queue_pkey"', 'alice cannot take over bob''s call by its id');

SELECT is(tests.affected($$UPDATE call_queue SET recipient_number = '+14155550140'
                           WHERE id = '99999999-9999-4999-8999-000000000001'$$), 1::bigint,
          'alice edits her queued call');
SELECT throws_ok($$UPDATE call_queue SET status = 'completed' WHERE id = '99999999-9999-4999-8999-000000000001'$$,
                 '42501', 'new row violates row-level security policy for table "call_queue"', 'alice cannot complete her queued call');
SELECT throws_ok($$UPDATE call_queue SET user_id = 'b0b00000-0000-4000-8000-000000000002'
                   WHERE id = '99999999-9999-4999-8999-000000000001'$$,
                 '42501', 'call_queue.user_id can only be changed by an admin', 'alice cannot hand her call to bob');
SELECT throws_ok($$UPDATE call_queue SET call_id = 'vapi-call-2' WHERE id = '99999999-9999-4999-8999-000000000001'$$,
                 '42501', 'call_queue.call_id can only be changed by an admin', 'alice cannot set a provider call id');
SELECT throws_ok($$UPDATE call_queue SET retry_count = 0, last_error = NULL, created_at = '2000-01-01'
                   WHERE id = '99999999-9999-4999-8999-000000000001'$$,
                 '42501', 'call_queue.created_at can only be changed by an admin', 'alice cannot backdate her call');
SELECT throws_ok($$UPDATE call_queue SET id = uuid_generate_v4() WHERE id = '99999999-9999-4999-8999-000000000001'$$,
                 '42501', 'call_queue.id can only be changed by an admin', 'alice cannot change a call''s id');
SELECT is(tests.affected($$UPDATE call_queue SET recipient_number = '+10000000000'
                           WHERE id = '99999999-9999-4999-8999-000000000002'$$), 0::bigint,
          'alice cannot edit her call once in progress');
SELECT is(tests.affected($$UPDATE call_queue SET recipient_number = '+10000000000'
                           WHERE id = '99999999-9999-4999-8999-000000000003'$$), 0::bigint,
          'alice cannot edit bob''s call');
SELECT is(tests.affected($$DELETE FROM call_queue WHERE id = '99999999-9999-4999-8999-000000000002'$$), 0::bigint,
          'alice cannot delete her in-progress call');
SELECT is(tests.affected($$DELETE FROM call_queue WHERE id = '99999999-9999-4999-8999-000000000003'$$), 0::bigint,
          'alice cannot delete bob''s call');
SELECT is(tests.affected($$DELETE FROM call_queue WHERE id = '99999999-9999-4999-8999-000000000010'$$), 1::bigint,
          'alice deletes her queued call');

SELECT tests.as_admin();
SELECT is(tests.visible('call_queue'), 3::bigint, 'an admin sees every call');
SELECT is(tests.affected($$UPDATE call_queue SET status = 'canceled', last_error = 'canceled by support'
                           WHERE id = '99999999-9999-4999-8999-000000000002'$$), 1::bigint,
          'an admin cancels an in-progress call');
SELECT tests.as_service();
SELECT is(tests.affected($$UPDATE call_queue SET status = 'in-progress', call_id = 'vapi-call-3', retry_count = 1
                           WHERE id = '99999999-9999-4999-8999-000000000003'$$), 1::bigint,
          'service_role (the worker) marks a call in progress');

---------------------------------------------------------------- user_call_history
SELECT tests.as_user(:alice);
SELECT is((SELECT array_agg(transcript) FROM user_call_history), ARRAY['Alice transcript'],
          'alice reads only her history');
SELECT throws_ok($$INSERT INTO user_call_history (user_id, status, duration)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', 'completed', 1)$$,
                 '42501', 'new row violates row-level security policy for table "user_call_history"', 'alice cannot write history');
SELECT is(tests.affected($$UPDATE user_call_history SET duration = 0$$), 0::bigint, 'alice cannot rewrite history');
SELECT is(tests.affected($$DELETE FROM user_call_history$$), 0::bigint, 'alice cannot delete history');
SELECT tests.as_admin();
SELECT is(tests.visible('user_call_history'), 2::bigint, 'an admin reads all history');
SELECT tests.as_service();
SELECT lives_ok($$INSERT INTO user_call_history (user_id, call_queue_id, status, duration)
                  VALUES ('b0b00000-0000-4000-8000-000000000002', '99999999-9999-4999-8999-000000000003', 'completed', 42)$$,
                'service_role records a result');

---------------------------------------------------------------- nothing leaked
SELECT tests.as_owner();
SELECT is((SELECT name FROM call_templates WHERE id = '88888888-8888-4888-8888-000000000001'), 'Appointment reminder',
          'bob''s template kept its name');
SELECT is((SELECT (status, call_id, recipient_number)::text FROM call_queue WHERE id = '99999999-9999-4999-8999-000000000001'),
          '(queued,,+14155550140)', 'alice''s queued call holds only her legitimate edit');
SELECT is((SELECT duration FROM user_call_history WHERE transcript = 'Alice transcript'), 61, 'history is intact');

SELECT * FROM finish();
ROLLBACK;
