-- The data model of docs/schema.md: eleven tables, exactly as specified.
-- uuid_generate_v4() comes from uuid-ossp, which the control file requires;
-- during CREATE EXTENSION the schema of uuid-ossp is on the search_path, so the
-- default resolves both on plain PostgreSQL (public) and on Supabase
-- (extensions).
--
-- Foreign keys without ON DELETE CASCADE in the spec keep the default NO ACTION:
-- a provider, number, voice or template that calls refer to cannot be deleted
-- and is deactivated (is_active = false) instead, so no history is lost.

-- 1. subscription_plans
CREATE TABLE subscription_plans (
    id            UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name          TEXT NOT NULL,
    description   TEXT,
    price         DECIMAL(10, 2) NOT NULL,
    "interval"    TEXT NOT NULL CHECK ("interval" IN ('monthly', 'yearly')),
    features      JSONB,
    call_limit    INTEGER,
    minutes_limit INTEGER,
    created_at    TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at    TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_subscription_plans_interval ON subscription_plans ("interval");

-- 2. user_profiles
CREATE TABLE user_profiles (
    id           UUID PRIMARY KEY REFERENCES auth.users (id),
    first_name   TEXT,
    last_name    TEXT,
    phone_number TEXT,
    email        TEXT,
    address      JSONB,
    preferences  JSONB,
    status       TEXT NOT NULL DEFAULT 'inactive' CHECK (status IN ('active', 'inactive')),
    created_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_profiles_status ON user_profiles (status);

-- 3. user_subscriptions
CREATE TABLE user_subscriptions (
    id                   UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id              UUID NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    plan_id              UUID NOT NULL REFERENCES subscription_plans (id),
    status               TEXT NOT NULL CHECK (status IN ('active', 'canceled', 'past_due', 'trialing')),
    stripe_sub_id        TEXT,
    current_period_start TIMESTAMPTZ NOT NULL,
    current_period_end   TIMESTAMPTZ NOT NULL,
    cancel_at_period_end BOOLEAN DEFAULT FALSE,
    payment_method       JSONB,
    subscription_id      TEXT,
    created_at           TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at           TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_subscriptions_user_id ON user_subscriptions (user_id);
CREATE INDEX idx_user_subscriptions_plan_id ON user_subscriptions (plan_id);
CREATE INDEX idx_user_subscriptions_status ON user_subscriptions (status);

-- 4. user_call_usage
CREATE TABLE user_call_usage (
    id                   UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id              UUID NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    subscription_id      UUID REFERENCES user_subscriptions (id),
    billing_period_start TIMESTAMPTZ NOT NULL,
    billing_period_end   TIMESTAMPTZ NOT NULL,
    calls_used           INTEGER DEFAULT 0,
    minutes_used         INTEGER DEFAULT 0,
    calls_remaining      INTEGER,
    minutes_remaining    INTEGER,
    last_updated         TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_call_usage_user_id ON user_call_usage (user_id);
CREATE INDEX idx_user_call_usage_subscription_id ON user_call_usage (subscription_id);
CREATE INDEX idx_user_call_usage_billing_period ON user_call_usage (billing_period_start, billing_period_end);

-- 5. call_service_providers
CREATE TABLE call_service_providers (
    id                UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name              TEXT NOT NULL,
    api_credentials   JSONB,
    type              TEXT NOT NULL,
    concurrency_limit INTEGER DEFAULT 5,
    priority          INTEGER DEFAULT 1,
    created_at        TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at        TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_call_service_providers_name ON call_service_providers (name);

-- 6. provider_phone_numbers
CREATE TABLE provider_phone_numbers (
    id           UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    provider_id  UUID NOT NULL REFERENCES call_service_providers (id) ON DELETE CASCADE,
    phone_id     TEXT,
    country_code TEXT NOT NULL,
    area_code    TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    full_number  TEXT NOT NULL,
    is_active    BOOLEAN DEFAULT TRUE,
    capabilities JSONB,
    created_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (provider_id, phone_id)
);
CREATE INDEX idx_provider_phone_numbers_provider_id ON provider_phone_numbers (provider_id);
CREATE INDEX idx_provider_phone_numbers_is_active ON provider_phone_numbers (is_active);
CREATE INDEX idx_provider_phone_numbers_full_number ON provider_phone_numbers (full_number);

-- 7. user_phone_numbers
CREATE TABLE user_phone_numbers (
    id           UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id      UUID NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    provider_id  UUID NOT NULL REFERENCES call_service_providers (id),
    phone_id     TEXT,
    country_code TEXT NOT NULL,
    area_code    TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    full_number  TEXT NOT NULL,
    is_active    BOOLEAN DEFAULT TRUE,
    is_default   BOOLEAN DEFAULT FALSE,
    capabilities JSONB,
    created_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (user_id, full_number)
);
CREATE INDEX idx_user_phone_numbers_user_id ON user_phone_numbers (user_id);
CREATE INDEX idx_user_phone_numbers_is_active ON user_phone_numbers (is_active);
CREATE INDEX idx_user_phone_numbers_is_default ON user_phone_numbers (is_default);

-- 8. voice_options
CREATE TABLE voice_options (
    id             UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    provider_id    UUID NOT NULL REFERENCES call_service_providers (id) ON DELETE CASCADE,
    voice_id       TEXT NOT NULL,
    name           TEXT NOT NULL,
    gender         TEXT CHECK (gender IN ('male', 'female', 'neutral')),
    language       TEXT NOT NULL,
    accent         TEXT,
    description    TEXT,
    sample_mp3_url TEXT,
    is_premium     BOOLEAN DEFAULT FALSE,
    is_active      BOOLEAN DEFAULT TRUE,
    created_at     TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at     TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (provider_id, voice_id)
);
CREATE INDEX idx_voice_options_provider_id ON voice_options (provider_id);
CREATE INDEX idx_voice_options_language ON voice_options (language);
CREATE INDEX idx_voice_options_is_active ON voice_options (is_active);
CREATE INDEX idx_voice_options_is_premium ON voice_options (is_premium);

-- 9. call_templates
CREATE TABLE call_templates (
    id           UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name         TEXT NOT NULL,
    description  TEXT,
    category     TEXT,
    tags         JSONB,
    is_public    BOOLEAN DEFAULT FALSE,
    created_by   UUID REFERENCES auth.users (id),
    provider_id  UUID REFERENCES call_service_providers (id),
    assistant_id UUID,
    voice_id     UUID REFERENCES voice_options (id),
    params       JSONB,
    params_order JSONB,
    created_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at   TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_call_templates_created_by ON call_templates (created_by);
CREATE INDEX idx_call_templates_is_public ON call_templates (is_public);
CREATE INDEX idx_call_templates_category ON call_templates (category);
CREATE INDEX idx_call_templates_provider_id ON call_templates (provider_id);

-- 10. call_queue
CREATE TABLE call_queue (
    id               UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id          UUID NOT NULL REFERENCES auth.users (id),
    recipient_number TEXT NOT NULL,
    caller_number_id UUID REFERENCES user_phone_numbers (id),
    scheduled_time   TIMESTAMPTZ,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'in-progress', 'completed', 'failed', 'canceled')),
    call_id          TEXT,
    provider_id      UUID REFERENCES call_service_providers (id),
    template_id      UUID REFERENCES call_templates (id),
    voice_id         UUID REFERENCES voice_options (id),
    custom_variables JSONB,
    retry_count      INTEGER DEFAULT 0,
    last_error       TEXT,
    created_at       TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at       TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_call_queue_user_id ON call_queue (user_id);
CREATE INDEX idx_call_queue_status ON call_queue (status);
CREATE INDEX idx_call_queue_scheduled_time ON call_queue (scheduled_time);
CREATE INDEX idx_call_queue_created_at ON call_queue (created_at);

-- 11. user_call_history
CREATE TABLE user_call_history (
    id               UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id          UUID NOT NULL REFERENCES auth.users (id),
    call_queue_id    UUID REFERENCES call_queue (id),
    call_id          TEXT,
    provider_id      UUID REFERENCES call_service_providers (id),
    assistant_id     UUID,
    phone_number_id  UUID REFERENCES provider_phone_numbers (id),
    caller_number_id UUID REFERENCES user_phone_numbers (id),
    voice_id         UUID REFERENCES voice_options (id),
    transcript       TEXT,
    status           TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'canceled')),
    duration         INTEGER DEFAULT 0,
    recording_url    TEXT,
    call_summary     TEXT,
    call_data        JSONB,
    created_at       TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_call_history_user_id ON user_call_history (user_id);
CREATE INDEX idx_user_call_history_call_queue_id ON user_call_history (call_queue_id);
CREATE INDEX idx_user_call_history_status ON user_call_history (status);
CREATE INDEX idx_user_call_history_created_at ON user_call_history (created_at);

---------------------------------------------------------------------------
-- Additions to the spec, for the call pipeline (documented in the README).
---------------------------------------------------------------------------
ALTER TABLE call_queue
    -- The provider number a claimed call goes out on.
    ADD COLUMN provider_phone_number_id UUID REFERENCES provider_phone_numbers (id),
    -- When a worker claimed the call: the clock of stale-call rescue.
    ADD COLUMN claimed_at TIMESTAMPTZ,
    -- A client's key that makes enqueue_call() safe to repeat.
    ADD COLUMN idempotency_key TEXT;

-- When the number last placed a call: least recently used numbers go first.
ALTER TABLE provider_phone_numbers ADD COLUMN last_used_at TIMESTAMPTZ;
-- A provider's active numbers in an area, and its least recently used ones
-- in a country and of all: what routing chooses from.
CREATE INDEX provider_phone_numbers_area
    ON provider_phone_numbers (provider_id, country_code, area_code) WHERE is_active;
CREATE INDEX provider_phone_numbers_country_lru
    ON provider_phone_numbers (provider_id, country_code, last_used_at NULLS FIRST, id) WHERE is_active;
CREATE INDEX provider_phone_numbers_lru
    ON provider_phone_numbers (provider_id, last_used_at NULLS FIRST, id) WHERE is_active;

CREATE UNIQUE INDEX call_queue_idempotency_key ON call_queue (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Due calls, oldest first, for claim_due_calls().
CREATE INDEX call_queue_due ON call_queue (scheduled_time NULLS FIRST, created_at, id)
    WHERE status = 'queued';
-- Calls in progress per provider, for concurrency limits and stale-call rescue.
CREATE INDEX call_queue_in_progress ON call_queue (provider_id, claimed_at)
    WHERE status = 'in-progress';
-- A user's reserved calls in a period, for the quota check.
CREATE INDEX call_queue_reserved ON call_queue (user_id, scheduled_time)
    WHERE status IN ('queued', 'in-progress');

-- Where billing periods are counted from (the start of the first period), so
-- that month ends stay put: set by rollover_billing_periods() when NULL.
ALTER TABLE user_subscriptions ADD COLUMN billing_anchor TIMESTAMPTZ;

-- One usage row per subscription period.
CREATE UNIQUE INDEX user_call_usage_period ON user_call_usage (subscription_id, billing_period_start)
    WHERE subscription_id IS NOT NULL;
-- A user's latest calls first: the history page, with the user's own filter.
CREATE INDEX user_call_history_user_recent ON user_call_history (user_id, created_at DESC);
-- A provider call's result is recorded once.
CREATE UNIQUE INDEX user_call_history_call_id ON user_call_history (call_id)
    WHERE call_id IS NOT NULL;
-- Provider webhooks find their call by the provider's call id.
CREATE INDEX call_queue_call_id ON call_queue (call_id)
    WHERE call_id IS NOT NULL;

-- Campaigns: a user's calls queued together, sharing a template, voice,
-- caller number, calling window and latest time (each call may bring its
-- own instead); a paused campaign's calls are not claimed. See README,
-- "Campaigns and calling windows".
CREATE TABLE campaigns (
    id               UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id          UUID NOT NULL REFERENCES auth.users (id),
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    template_id      UUID REFERENCES call_templates (id),
    voice_id         UUID REFERENCES voice_options (id),
    caller_number_id UUID REFERENCES user_phone_numbers (id),
    call_window      JSONB,
    expires_at       TIMESTAMPTZ,
    paused           BOOLEAN NOT NULL DEFAULT false,
    canceled_at      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at       TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX campaigns_user_id ON campaigns (user_id);

ALTER TABLE call_queue
    -- The campaign the call belongs to, if any.
    ADD COLUMN campaign_id UUID REFERENCES campaigns (id),
    -- When the call may be placed, in the recipient's local time
    -- (core/src/window.rs): set for every call the checks pass, NULL (no
    -- window) only on rows nobody checked (a superuser's, or queued before
    -- 0.2.0).
    ADD COLUMN call_window JSONB,
    -- Not placed by then, the call ends canceled ("expired").
    ADD COLUMN expires_at TIMESTAMPTZ;
-- A campaign's calls, for its progress and cancel_campaign().
CREATE INDEX call_queue_campaign ON call_queue (campaign_id, status)
    WHERE campaign_id IS NOT NULL;
-- Queued calls that expire, for rescue_stale_calls().
CREATE INDEX call_queue_expiring ON call_queue (expires_at)
    WHERE status = 'queued' AND expires_at IS NOT NULL;

-- A user's default calling window, for calls that bring none and belong to
-- no campaign with one.
ALTER TABLE user_profiles ADD COLUMN call_window JSONB;

-- Which API the dispatcher speaks with a provider (docs/providers.md); NULL:
-- the dispatcher leaves the provider's calls to a worker outside
-- (claim_due_calls()).
ALTER TABLE call_service_providers
    ADD COLUMN api TEXT CONSTRAINT call_service_providers_api_check CHECK (api IN ('vapi', 'retell', 'bland'));
-- The template's agent at its provider where that is no UUID (a Retell
-- agent, a Bland pathway; a VAPI assistant may be either): 1 to 128
-- printable ASCII characters without spaces. The dispatcher sends it, else
-- assistant_id.
ALTER TABLE call_templates
    ADD COLUMN provider_agent_id TEXT
        CONSTRAINT call_templates_provider_agent_id_check CHECK (provider_agent_id ~ '^[!-~]{1,128}$');
