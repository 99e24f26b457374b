-- claim_due_calls counts other transactions' calls: at REPEATABLE READ its
-- snapshot would miss them, so it refuses to run there.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM no_plan();
SET LOCAL ROLE service_role;
SELECT throws_ok('SELECT * FROM claim_due_calls()', '22023', 'claim_due_calls() counts calls across transactions and cannot run at REPEATABLE READ', 'claim_due_calls refuses REPEATABLE READ');
SELECT * FROM finish();
ROLLBACK;
