-- Providers' credentials sealed at rest (src/credentials.rs): plain JSON is
-- sealed when written, under the key pg_dialer.credentials_key names (a
-- file, or a Vault secret), bound to the provider's row; superusers rotate
-- the key. What the dispatcher does with a key it lacks is in
-- tests/dispatch.sh.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

-- The key a sealed value names, and the id of a key line (first 8 bytes of
-- its SHA-256).
CREATE FUNCTION tests.key_id_of(line text) RETURNS text LANGUAGE sql AS $$
    SELECT encode(substr(sha256(decode(line, 'hex')), 1, 8), 'hex')
$$;

---------------------------------------------------------------- sealing
SELECT tests.as_admin();
SELECT lives_ok($$INSERT INTO call_service_providers (id, name, type, api, api_credentials)
                  VALUES ('44444444-4444-4444-8444-0000000000c1', 'Bland', 'voice', 'bland', '{"api_key": "org_bland_0c1"}')$$,
                'an admin writes plain JSON credentials');
SELECT tests.as_owner();
SELECT is((SELECT api_credentials ? 'pg_dialer_sealed' FROM call_service_providers WHERE id = '44444444-4444-4444-8444-0000000000c1'),
          true, 'they are stored sealed');
SELECT is((SELECT strpos(api_credentials::text, 'org_bland_0c1') FROM call_service_providers WHERE id = '44444444-4444-4444-8444-0000000000c1'),
          0, 'with no key in clear');
SELECT is((SELECT count(*) FROM call_service_providers WHERE api_credentials IS NOT NULL AND NOT api_credentials ? 'pg_dialer_sealed'),
          0::bigint, 'every provider''s credentials are sealed, the fixture''s too');
SELECT isnt((SELECT api_credentials->>'data' FROM call_service_providers WHERE id = '44444444-4444-4444-8444-0000000000c1'),
            (SELECT api_credentials->>'data' FROM call_service_providers WHERE id = '44444444-4444-4444-8444-000000000001'),
            'two sealings differ');
SELECT lives_ok($$UPDATE call_service_providers SET api_credentials =
                    (SELECT api_credentials FROM call_service_providers WHERE id = '44444444-4444-4444-8444-000000000001')
                  WHERE id = '44444444-4444-4444-8444-0000000000c1'$$,
                'a sealed value copied onto another provider is stored as it is');
SELECT is((SELECT api_credentials FROM call_service_providers WHERE id = '44444444-4444-4444-8444-0000000000c1'),
          (SELECT api_credentials FROM call_service_providers WHERE id = '44444444-4444-4444-8444-000000000001'),
          '(and does not open there: it is bound to its row, see core/src/secrets.rs)');

---------------------------------------------------------------- rotation
SELECT tests.as_admin();
SELECT throws_ok($$SELECT * FROM rotate_credentials_key()$$, '42501', NULL, 'an admin may not rotate the key');
SELECT tests.as_service();
SELECT throws_ok($$SELECT * FROM rotate_credentials_key()$$, '42501', NULL, 'nor service_role');
SELECT tests.as_anon();
SELECT throws_ok($$SELECT * FROM rotate_credentials_key()$$, '42501', 'permission denied for function rotate_credentials_key',
                 'anon may not call it');
SELECT tests.as_owner();
CREATE TEMP TABLE before AS SELECT id, api_credentials->>'key_id' AS key_id FROM call_service_providers WHERE api_credentials IS NOT NULL;
CREATE TEMP TABLE rotated AS SELECT * FROM rotate_credentials_key();
SELECT is((SELECT sealed_again || '|' || not_opened FROM rotated), ((SELECT count(*) FROM before) - 1) || '|1',
          'a superuser rotates: every sealed row is sealed again, but the copy, which does not open, and is counted');
SELECT is((SELECT count(*) FROM call_service_providers p JOIN rotated r ON p.api_credentials->>'key_id' = r.key_id),
          (SELECT count(*) - 1 FROM before), 'under the new key');
SELECT is((SELECT api_credentials->>'key_id' FROM call_service_providers WHERE id = '44444444-4444-4444-8444-0000000000c1'),
          (SELECT key_id FROM before WHERE id = '44444444-4444-4444-8444-0000000000c1'), 'the copy is left as it was');
SELECT isnt((SELECT key_id FROM rotated), (SELECT DISTINCT key_id FROM before), 'which is another key');

---------------------------------------------------------------- where the key is
SET pg_dialer.credentials_key = '/nonexistent/pg_dialer.key';
SELECT throws_ok($$UPDATE call_service_providers SET api_credentials = '{"api_key": "x"}' WHERE id = '44444444-4444-4444-8444-0000000000c1'$$,
                 'F0000', NULL, 'a key file that cannot be made refuses the write (nothing stored in clear)');
SELECT is((SELECT api_credentials ? 'pg_dialer_sealed' FROM call_service_providers WHERE id = '44444444-4444-4444-8444-0000000000c1'),
          true, 'the stored value is still sealed');

-- A Vault stand-in (Supabase's vault schema, as pg_dialer uses it).
CREATE SCHEMA vault;
CREATE TABLE vault.secrets (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text UNIQUE, secret text);
CREATE VIEW vault.decrypted_secrets AS SELECT id, name, secret AS decrypted_secret FROM vault.secrets;
CREATE FUNCTION vault.create_secret(new_secret text, new_name text) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO vault.secrets (name, secret) VALUES (new_name, new_secret) RETURNING id
$$;
CREATE FUNCTION vault.update_secret(secret_id uuid, new_secret text) RETURNS void LANGUAGE sql AS $$
    UPDATE vault.secrets SET secret = new_secret WHERE id = secret_id
$$;
SET pg_dialer.credentials_key = 'vault:pg_dialer_credentials_key';
SELECT lives_ok($$UPDATE call_service_providers SET api_credentials = '{"api_key": "org_bland_vault"}'
                  WHERE id = '44444444-4444-4444-8444-0000000000c1'$$,
                'with vault:<name>, the key is a Vault secret');
SELECT is((SELECT count(*) FROM vault.secrets WHERE name = 'pg_dialer_credentials_key'), 1::bigint,
          'made when first needed');
SELECT is((SELECT api_credentials->>'key_id' FROM call_service_providers WHERE id = '44444444-4444-4444-8444-0000000000c1'),
          (SELECT tests.key_id_of((regexp_match(secret, '^([0-9a-f]{64})$', 'n'))[1]) FROM vault.secrets),
          'and the credentials are sealed under it');
CREATE TEMP TABLE vault_rotated AS SELECT * FROM rotate_credentials_key();
SELECT is((SELECT tests.key_id_of((regexp_match(secret, '^([0-9a-f]{64})$', 'n'))[1]) FROM vault.secrets),
          (SELECT key_id FROM vault_rotated), 'a rotation puts the new key first in the secret');
SELECT is((SELECT array_length(regexp_split_to_array(trim(secret), E'\n'), 1) >= 2 FROM vault.secrets), true,
          'keeping the earlier key');
RESET pg_dialer.credentials_key;

SELECT * FROM finish();
ROLLBACK;
