-- Timestamps, guards, row level security, grants, and what pg_dump must keep.
--
-- Identity comes from the extension's own dialer.uid() and dialer.is_admin()
-- (see src/identity.rs). Every policy wraps them in (SELECT ...) so the planner
-- evaluates them once per statement as an initPlan, not once per row.

GRANT USAGE ON SCHEMA dialer TO anon, authenticated, service_role;

-- The guards below let privileged callers through: an admin (by claims), or a
-- role that bypasses row level security (service_role, a superuser restoring a
-- dump). See dialer.is_privileged() in src/identity.rs.

---------------------------------------------------------------------------
-- Timestamps. Only on UPDATE: a restore loads rows with INSERT-firing COPY,
-- and the timestamps in a dump must come back as they were.
---------------------------------------------------------------------------
CREATE FUNCTION dialer.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

CREATE FUNCTION dialer.set_last_updated() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
BEGIN
    NEW.last_updated := pg_catalog.now();
    RETURN NEW;
END
$$;

CREATE TRIGGER set_updated_at BEFORE UPDATE ON subscription_plans
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON user_subscriptions
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_last_updated BEFORE UPDATE ON user_call_usage
    FOR EACH ROW EXECUTE FUNCTION dialer.set_last_updated();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON call_service_providers
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON provider_phone_numbers
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON user_phone_numbers
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON voice_options
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON call_templates
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON call_queue
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();

---------------------------------------------------------------------------
-- Columns a user may not change on their own rows, even where a policy lets
-- them update the row: keys, ownership, creation time, and what the dialing
-- worker and admins manage. Named as trigger arguments (src/guards.rs).
---------------------------------------------------------------------------
CREATE TRIGGER protect_columns BEFORE UPDATE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION dialer.protect_columns('id', 'status', 'created_at');
CREATE TRIGGER protect_columns BEFORE UPDATE ON user_phone_numbers
    FOR EACH ROW EXECUTE FUNCTION dialer.protect_columns('id', 'user_id', 'created_at');
CREATE TRIGGER protect_columns BEFORE UPDATE ON call_templates
    FOR EACH ROW EXECUTE FUNCTION dialer.protect_columns('id', 'created_by', 'created_at');
CREATE TRIGGER protect_columns BEFORE UPDATE ON call_queue
    FOR EACH ROW EXECUTE FUNCTION dialer.protect_columns(
        'id', 'user_id', 'created_at', 'call_id', 'retry_count', 'last_error',
        'provider_id', 'provider_phone_number_id', 'claimed_at', 'idempotency_key');

---------------------------------------------------------------------------
-- Row level security: the spec's policies by name, each targeting its roles,
-- each INSERT and UPDATE with a WITH CHECK.
---------------------------------------------------------------------------
ALTER TABLE subscription_plans     ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_profiles          ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_subscriptions     ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_call_usage        ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_service_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_phone_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_phone_numbers     ENABLE ROW LEVEL SECURITY;
ALTER TABLE voice_options          ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_templates         ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_queue             ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_call_history      ENABLE ROW LEVEL SECURITY;

-- 1. subscription_plans
CREATE POLICY "Anyone can view subscription plans" ON subscription_plans
    FOR SELECT TO authenticated USING (true);
CREATE POLICY "Admin can manage subscription plans" ON subscription_plans
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 2. user_profiles: a new profile starts inactive; only an admin activates it.
CREATE POLICY "Users can view own profile" ON user_profiles
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = id);
CREATE POLICY "Users can update own profile" ON user_profiles
    FOR UPDATE TO authenticated
    USING ((SELECT dialer.uid()) = id) WITH CHECK ((SELECT dialer.uid()) = id);
CREATE POLICY "Users can insert own profile" ON user_profiles
    FOR INSERT TO authenticated
    WITH CHECK ((SELECT dialer.uid()) = id AND status = 'inactive');
CREATE POLICY "Admin can access all profiles" ON user_profiles
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 3. user_subscriptions
CREATE POLICY "Users can view own subscriptions" ON user_subscriptions
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Admin can manage all subscriptions" ON user_subscriptions
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 4. user_call_usage
CREATE POLICY "Users can view own call usage" ON user_call_usage
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Admin can manage all call usage" ON user_call_usage
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 5. call_service_providers (api_credentials is kept out by column grants below)
CREATE POLICY "Users can view call providers" ON call_service_providers
    FOR SELECT TO authenticated USING (true);
CREATE POLICY "Admin can manage call providers" ON call_service_providers
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 6. provider_phone_numbers
CREATE POLICY "Users can view provider phone numbers" ON provider_phone_numbers
    FOR SELECT TO authenticated USING (is_active = true);
CREATE POLICY "Admin can manage phone numbers" ON provider_phone_numbers
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 7. user_phone_numbers
CREATE POLICY "Users can view own phone numbers" ON user_phone_numbers
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Users can manage own phone numbers" ON user_phone_numbers
    FOR INSERT TO authenticated WITH CHECK ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Users can update own phone numbers" ON user_phone_numbers
    FOR UPDATE TO authenticated
    USING ((SELECT dialer.uid()) = user_id) WITH CHECK ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Users can delete own phone numbers" ON user_phone_numbers
    FOR DELETE TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Admin can manage all phone numbers" ON user_phone_numbers
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 8. voice_options
CREATE POLICY "Users can view available voices" ON voice_options
    FOR SELECT TO authenticated USING (is_active = true);
CREATE POLICY "Admin can manage voices" ON voice_options
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 9. call_templates: public templates are the one thing anon may read.
-- Publishing is an admin's act: a user's templates stay private, and a public
-- template (other tenants queue calls with it) is changed by admins only.
CREATE POLICY "Users can view public templates" ON call_templates
    FOR SELECT TO anon, authenticated USING (is_public = true);
CREATE POLICY "Users can view own templates" ON call_templates
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = created_by);
CREATE POLICY "Users can create templates" ON call_templates
    FOR INSERT TO authenticated
    WITH CHECK ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false));
CREATE POLICY "Users can update own templates" ON call_templates
    FOR UPDATE TO authenticated
    USING ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false))
    WITH CHECK ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false));
CREATE POLICY "Users can delete own templates" ON call_templates
    FOR DELETE TO authenticated USING ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false));
CREATE POLICY "Admin can manage all templates" ON call_templates
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 10. call_queue: a user's call enters queued and stays queued under their
-- hands; what the worker records (call_id, retry_count, last_error, and the
-- provider and number a claim assigns) starts empty and is guarded by
-- protect_columns on update. Trigger validate_queued_call (sql/queue.sql)
-- checks the rest, as enqueue_call() does.
CREATE POLICY "Users can view own call queue" ON call_queue
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Users can insert into call queue" ON call_queue
    FOR INSERT TO authenticated
    WITH CHECK ((SELECT dialer.uid()) = user_id AND status = 'queued'
                AND call_id IS NULL AND coalesce(retry_count, 0) = 0 AND last_error IS NULL
                AND provider_id IS NULL AND provider_phone_number_id IS NULL AND claimed_at IS NULL);
CREATE POLICY "Users can update own queued calls" ON call_queue
    FOR UPDATE TO authenticated
    USING ((SELECT dialer.uid()) = user_id AND status = 'queued')
    WITH CHECK ((SELECT dialer.uid()) = user_id AND status = 'queued');
CREATE POLICY "Users can delete own queued calls" ON call_queue
    FOR DELETE TO authenticated USING ((SELECT dialer.uid()) = user_id AND status = 'queued');
CREATE POLICY "Admin can manage all call queue entries" ON call_queue
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

-- 11. user_call_history
CREATE POLICY "Users can view own call history" ON user_call_history
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Admin can manage all call history" ON user_call_history
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));

---------------------------------------------------------------------------
-- Grants: exactly what the policies need. Supabase's default privileges give
-- anon and authenticated everything on new tables in public; take it back.
---------------------------------------------------------------------------
REVOKE ALL ON subscription_plans, user_profiles, user_subscriptions, user_call_usage,
              call_service_providers, provider_phone_numbers, user_phone_numbers,
              voice_options, call_templates, call_queue, user_call_history
    FROM PUBLIC, anon, authenticated, service_role;

-- Every table has an admin policy for all commands, and admins are
-- `authenticated` callers: RLS decides what each one may touch.
GRANT SELECT, INSERT, UPDATE, DELETE
    ON subscription_plans, user_profiles, user_subscriptions, user_call_usage,
       provider_phone_numbers, user_phone_numbers, voice_options,
       call_templates, call_queue, user_call_history
    TO authenticated;

-- Provider credentials: writable by admins, never readable (nor usable in a
-- WHERE or RETURNING) by authenticated; only service_role reads them.
GRANT SELECT (id, name, type, concurrency_limit, priority, created_at, updated_at, api),
      INSERT, UPDATE, DELETE
    ON call_service_providers TO authenticated;

GRANT SELECT ON call_templates TO anon;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON subscription_plans, user_profiles, user_subscriptions, user_call_usage,
       call_service_providers, provider_phone_numbers, user_phone_numbers,
       voice_options, call_templates, call_queue, user_call_history
    TO service_role;

---------------------------------------------------------------------------
-- pg_dump leaves an extension's tables out unless they are registered here.
---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('subscription_plans', '');
SELECT pg_catalog.pg_extension_config_dump('user_profiles', '');
SELECT pg_catalog.pg_extension_config_dump('user_subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('user_call_usage', '');
SELECT pg_catalog.pg_extension_config_dump('call_service_providers', '');
SELECT pg_catalog.pg_extension_config_dump('provider_phone_numbers', '');
SELECT pg_catalog.pg_extension_config_dump('user_phone_numbers', '');
SELECT pg_catalog.pg_extension_config_dump('voice_options', '');
SELECT pg_catalog.pg_extension_config_dump('call_templates', '');
SELECT pg_catalog.pg_extension_config_dump('call_queue', '');
SELECT pg_catalog.pg_extension_config_dump('user_call_history', '');
