-- Campaigns and calling windows (see README, "Campaigns and calling
-- windows"): the campaigns table's guards and policies, the windows'
-- check, progress in one query, and the API: enqueue_calls(), and
-- pause_campaign(), resume_campaign() and cancel_campaign().

-- A user's default window and a campaign's are windows
-- (core/src/window.rs), stored with every key written out; canceling a
-- campaign is cancel_campaign()'s, which cancels its queued calls with it
-- (src/window.rs, src/campaigns.rs).
CREATE TRIGGER validate_call_window BEFORE INSERT OR UPDATE OF call_window ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_call_window();
CREATE TRIGGER validate_campaign BEFORE INSERT OR UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_campaign();

CREATE TRIGGER set_updated_at BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER protect_columns BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION dialer.protect_columns('id', 'user_id', 'created_at');

-- A user's own campaigns, as for their other rows; only admins delete (a
-- campaign with calls stays, as its calls refer to it).
ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own campaigns" ON campaigns
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Users can create campaigns" ON campaigns
    FOR INSERT TO authenticated
    WITH CHECK ((SELECT dialer.uid()) = user_id AND canceled_at IS NULL);
CREATE POLICY "Users can update own campaigns" ON campaigns
    FOR UPDATE TO authenticated
    USING ((SELECT dialer.uid()) = user_id) WITH CHECK ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Admin can manage all campaigns" ON campaigns
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));
REVOKE ALL ON campaigns FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON campaigns TO authenticated, service_role;
SELECT pg_catalog.pg_extension_config_dump('campaigns', '');

-- A campaign's progress in one query: its calls by state (an expired call
-- is canceled with last_error 'expired: not placed by ...'; the other canceled calls are
-- counted apart from it) and the minutes billed for them. The caller's
-- own rights apply (security_invoker): a user sees their own campaigns.
CREATE VIEW campaign_progress WITH (security_invoker = true) AS
SELECT c.id AS campaign_id, c.user_id, c.name, c.paused, c.canceled_at, c.expires_at,
       count(q.id) AS calls,
       count(q.id) FILTER (WHERE q.status = 'queued') AS queued,
       count(q.id) FILTER (WHERE q.status = 'in-progress') AS in_progress,
       count(q.id) FILTER (WHERE q.status = 'completed') AS completed,
       count(q.id) FILTER (WHERE q.status = 'failed') AS failed,
       count(q.id) FILTER (WHERE q.status = 'canceled'
                                 AND (q.last_error IS NULL OR q.last_error NOT LIKE 'expired: not placed by %')) AS canceled,
       count(q.id) FILTER (WHERE q.status = 'canceled' AND q.last_error LIKE 'expired: not placed by %') AS expired,
       coalesce(sum(h.minutes), 0)::bigint AS minutes_used
FROM public.campaigns c
LEFT JOIN public.call_queue q ON q.campaign_id = c.id
LEFT JOIN LATERAL (
    SELECT sum(dialer.billed_minutes(coalesce(r.duration, 0))) AS minutes
    FROM public.user_call_history r WHERE r.call_queue_id = q.id) AS h ON true
GROUP BY c.id;
REVOKE ALL ON campaign_progress FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON campaign_progress TO authenticated, service_role;

---------------------------------------------------------------------------
-- Shells (see dialer.raised()): enqueue_calls (src/batch.rs) queues up to
-- 10,000 calls in one request, all or nothing unless skip_invalid; each
-- call is {"recipient_number", "custom_variables", "scheduled_time",
-- "idempotency_key", "call_window", "expires_at"}, the rest is shared.
-- pause_campaign, resume_campaign and cancel_campaign (src/campaigns.rs).
---------------------------------------------------------------------------
CREATE FUNCTION enqueue_calls(
    calls jsonb,
    template_id uuid DEFAULT NULL,
    voice_id uuid DEFAULT NULL,
    caller_number_id uuid DEFAULT NULL,
    campaign_id uuid DEFAULT NULL,
    call_window jsonb DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL,
    skip_invalid boolean DEFAULT false,
    user_id uuid DEFAULT NULL
) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.result, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.enqueue_batch(enqueue_calls.calls::text, enqueue_calls.template_id,
                                      enqueue_calls.voice_id, enqueue_calls.caller_number_id,
                                      enqueue_calls.campaign_id, enqueue_calls.call_window::text,
                                      enqueue_calls.expires_at, enqueue_calls.skip_invalid,
                                      enqueue_calls.user_id) AS o);
END
$$;

CREATE FUNCTION pause_campaign(campaign_id uuid) RETURNS public.campaigns
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.campaign, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.campaign_action(pause_campaign.campaign_id, 'pause') AS o);
END
$$;

CREATE FUNCTION resume_campaign(campaign_id uuid) RETURNS public.campaigns
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.campaign, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.campaign_action(resume_campaign.campaign_id, 'resume') AS o);
END
$$;

CREATE FUNCTION cancel_campaign(campaign_id uuid) RETURNS public.campaigns
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.campaign, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.campaign_action(cancel_campaign.campaign_id, 'cancel') AS o);
END
$$;

REVOKE ALL ON FUNCTION
    enqueue_calls(jsonb, uuid, uuid, uuid, uuid, jsonb, timestamptz, boolean, uuid),
    pause_campaign(uuid), resume_campaign(uuid), cancel_campaign(uuid)
FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION
    enqueue_calls(jsonb, uuid, uuid, uuid, uuid, jsonb, timestamptz, boolean, uuid),
    pause_campaign(uuid), resume_campaign(uuid), cancel_campaign(uuid)
TO authenticated, service_role;
