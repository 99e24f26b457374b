-- The eleven tables as a team writes them by hand from the design document
-- (docs/schema.md), written apart from the extension's sql/: the spec's
-- policy names with the team's own, weaker policies (auth.uid(), an admin
-- check of its own, no WITH CHECK), its own updated_at triggers, some types
-- and defaults of its own, and none of pg_dialer's additions. Its rows are in
-- rows.sql. Needs auth.users, auth.uid(), auth.jwt() and uuid-ossp.

CREATE FUNCTION public.is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') = 'admin'
$$;
CREATE FUNCTION public.update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END $$;

CREATE TABLE subscription_plans (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name VARCHAR(100) NOT NULL,
    description TEXT,
    price NUMERIC(10, 2) NOT NULL,
    interval TEXT NOT NULL CHECK (interval IN ('monthly', 'yearly')),
    features JSONB,
    call_limit INTEGER,
    minutes_limit INTEGER,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_subscription_plans_interval ON subscription_plans(interval);

CREATE TABLE user_profiles (
    id UUID PRIMARY KEY REFERENCES auth.users(id),
    first_name TEXT,
    last_name TEXT,
    phone_number TEXT,
    email TEXT,
    address JSONB,
    preferences JSONB,
    status TEXT NOT NULL DEFAULT 'inactive' CHECK (status IN ('active', 'inactive')),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_user_profiles_status ON user_profiles(status);

CREATE TABLE user_subscriptions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    plan_id UUID NOT NULL REFERENCES subscription_plans(id),
    status TEXT NOT NULL CHECK (status IN ('active', 'canceled', 'past_due', 'trialing')),
    stripe_sub_id TEXT,
    current_period_start TIMESTAMPTZ NOT NULL,
    current_period_end TIMESTAMPTZ NOT NULL,
    cancel_at_period_end BOOLEAN DEFAULT FALSE,
    payment_method JSONB,
    subscription_id TEXT,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_subscriptions_user_id ON user_subscriptions(user_id);
CREATE INDEX idx_user_subscriptions_plan_id ON user_subscriptions(plan_id);
CREATE INDEX idx_user_subscriptions_status ON user_subscriptions(status);

CREATE TABLE user_call_usage (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    subscription_id UUID REFERENCES user_subscriptions(id),
    billing_period_start TIMESTAMPTZ NOT NULL,
    billing_period_end TIMESTAMPTZ NOT NULL,
    calls_used INTEGER DEFAULT 0,
    minutes_used INTEGER DEFAULT 0,
    calls_remaining INTEGER,
    minutes_remaining INTEGER,
    last_updated TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_call_usage_user_id ON user_call_usage(user_id);
CREATE INDEX idx_user_call_usage_subscription_id ON user_call_usage(subscription_id);
CREATE INDEX idx_user_call_usage_billing_period ON user_call_usage(billing_period_start, billing_period_end);

CREATE TABLE call_service_providers (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name TEXT NOT NULL,
    api_credentials JSON,
    type TEXT NOT NULL,
    concurrency_limit INTEGER DEFAULT 5,
    priority INTEGER DEFAULT 1,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_call_service_providers_name ON call_service_providers(name);

CREATE TABLE provider_phone_numbers (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    provider_id UUID NOT NULL REFERENCES call_service_providers(id) ON DELETE CASCADE,
    phone_id TEXT,
    country_code TEXT NOT NULL,
    area_code TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    full_number VARCHAR(20) NOT NULL,
    is_active BOOLEAN DEFAULT TRUE,
    capabilities JSONB,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT provider_phone_unique UNIQUE (provider_id, phone_id)
);
CREATE INDEX idx_provider_phone_numbers_provider_id ON provider_phone_numbers(provider_id);
CREATE INDEX idx_provider_phone_numbers_is_active ON provider_phone_numbers(is_active);
CREATE INDEX idx_provider_phone_numbers_full_number ON provider_phone_numbers(full_number);

CREATE TABLE user_phone_numbers (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    provider_id UUID NOT NULL REFERENCES call_service_providers(id),
    phone_id TEXT,
    country_code TEXT NOT NULL,
    area_code TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    full_number TEXT NOT NULL,
    is_active BOOLEAN DEFAULT TRUE,
    is_default BOOLEAN DEFAULT FALSE,
    capabilities JSONB,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (user_id, full_number)
);
CREATE INDEX idx_user_phone_numbers_user_id ON user_phone_numbers(user_id);
CREATE INDEX idx_user_phone_numbers_is_active ON user_phone_numbers(is_active);
CREATE INDEX idx_user_phone_numbers_is_default ON user_phone_numbers(is_default);

CREATE TABLE voice_options (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    provider_id UUID NOT NULL REFERENCES call_service_providers(id) ON DELETE CASCADE,
    voice_id TEXT NOT NULL,
    name TEXT NOT NULL,
    gender TEXT CHECK (gender IN ('male', 'female', 'neutral')),
    language TEXT NOT NULL,
    accent TEXT,
    description TEXT,
    sample_mp3_url TEXT,
    is_premium BOOLEAN DEFAULT FALSE,
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (provider_id, voice_id)
);
CREATE INDEX idx_voice_options_provider_id ON voice_options(provider_id);
CREATE INDEX idx_voice_options_language ON voice_options(language);
CREATE INDEX idx_voice_options_is_active ON voice_options(is_active);
CREATE INDEX idx_voice_options_is_premium ON voice_options(is_premium);

CREATE TABLE call_templates (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name TEXT NOT NULL,
    description TEXT,
    category TEXT,
    tags JSONB,
    is_public BOOLEAN DEFAULT FALSE,
    created_by UUID REFERENCES auth.users(id),
    provider_id UUID REFERENCES call_service_providers(id),
    assistant_id UUID,
    voice_id UUID REFERENCES voice_options(id),
    params JSONB,
    params_order JSONB,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_call_templates_created_by ON call_templates(created_by);
CREATE INDEX idx_call_templates_is_public ON call_templates(is_public);
CREATE INDEX idx_call_templates_category ON call_templates(category);
CREATE INDEX idx_call_templates_provider_id ON call_templates(provider_id);

CREATE TABLE call_queue (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID NOT NULL REFERENCES auth.users(id),
    recipient_number VARCHAR(32) NOT NULL,
    caller_number_id UUID REFERENCES user_phone_numbers(id),
    scheduled_time TIMESTAMPTZ,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'in-progress', 'completed', 'failed', 'canceled')),
    call_id TEXT,
    provider_id UUID REFERENCES call_service_providers(id),
    template_id UUID REFERENCES call_templates(id),
    voice_id UUID REFERENCES voice_options(id),
    custom_variables JSONB,
    retry_count INTEGER DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_call_queue_user_id ON call_queue(user_id);
CREATE INDEX idx_call_queue_status ON call_queue(status);
CREATE INDEX idx_call_queue_scheduled_time ON call_queue(scheduled_time);
CREATE INDEX idx_call_queue_created_at ON call_queue(created_at);

CREATE TABLE user_call_history (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID NOT NULL REFERENCES auth.users(id),
    call_queue_id UUID REFERENCES call_queue(id),
    call_id TEXT,
    provider_id UUID REFERENCES call_service_providers(id),
    assistant_id UUID,
    phone_number_id UUID REFERENCES provider_phone_numbers(id),
    caller_number_id UUID REFERENCES user_phone_numbers(id),
    voice_id UUID REFERENCES voice_options(id),
    transcript TEXT,
    status TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'canceled')),
    duration INTEGER DEFAULT 0,
    recording_url TEXT,
    call_summary TEXT,
    call_data JSONB,
    created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_call_history_user_id ON user_call_history(user_id);
CREATE INDEX idx_user_call_history_call_queue_id ON user_call_history(call_queue_id);
CREATE INDEX idx_user_call_history_status ON user_call_history(status);
CREATE INDEX idx_user_call_history_created_at ON user_call_history(created_at);

CREATE TRIGGER update_subscription_plans_updated_at BEFORE UPDATE ON subscription_plans
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_user_profiles_updated_at BEFORE UPDATE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_call_queue_updated_at BEFORE UPDATE ON call_queue
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Row level security, the spec's policy names, the team's definitions.
ALTER TABLE subscription_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_call_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_service_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_phone_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_phone_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE voice_options ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_call_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Anyone can view subscription plans" ON subscription_plans FOR SELECT USING (true);
CREATE POLICY "Admin can manage subscription plans" ON subscription_plans USING (is_admin());
CREATE POLICY "Users can view own profile" ON user_profiles FOR SELECT USING (auth.uid() = id);
CREATE POLICY "Users can update own profile" ON user_profiles FOR UPDATE USING (auth.uid() = id);
CREATE POLICY "Users can insert own profile" ON user_profiles FOR INSERT WITH CHECK (auth.uid() = id);
CREATE POLICY "Admin can access all profiles" ON user_profiles USING (is_admin());
CREATE POLICY "Users can view own subscriptions" ON user_subscriptions FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Admin can manage all subscriptions" ON user_subscriptions USING (is_admin());
CREATE POLICY "Users can view own call usage" ON user_call_usage FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Admin can manage all call usage" ON user_call_usage USING (is_admin());
CREATE POLICY "Users can view call providers" ON call_service_providers FOR SELECT USING (true);
CREATE POLICY "Admin can manage call providers" ON call_service_providers USING (is_admin());
CREATE POLICY "Users can view provider phone numbers" ON provider_phone_numbers FOR SELECT USING (is_active = true);
CREATE POLICY "Admin can manage phone numbers" ON provider_phone_numbers USING (is_admin());
CREATE POLICY "Users can view own phone numbers" ON user_phone_numbers FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can manage own phone numbers" ON user_phone_numbers FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own phone numbers" ON user_phone_numbers FOR UPDATE USING (auth.uid() = user_id);
CREATE POLICY "Users can delete own phone numbers" ON user_phone_numbers FOR DELETE USING (auth.uid() = user_id);
CREATE POLICY "Admin can manage all phone numbers" ON user_phone_numbers USING (is_admin());
CREATE POLICY "Users can view available voices" ON voice_options FOR SELECT USING (is_active = true);
CREATE POLICY "Admin can manage voices" ON voice_options USING (is_admin());
CREATE POLICY "Users can view public templates" ON call_templates FOR SELECT USING (is_public = true);
CREATE POLICY "Users can view own templates" ON call_templates FOR SELECT USING (auth.uid() = created_by);
CREATE POLICY "Users can create templates" ON call_templates FOR INSERT WITH CHECK (auth.uid() = created_by);
CREATE POLICY "Users can update own templates" ON call_templates FOR UPDATE USING (auth.uid() = created_by);
CREATE POLICY "Users can delete own templates" ON call_templates FOR DELETE USING (auth.uid() = created_by);
CREATE POLICY "Admin can manage all templates" ON call_templates USING (is_admin());
CREATE POLICY "Users can view own call queue" ON call_queue FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can insert into call queue" ON call_queue FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own queued calls" ON call_queue FOR UPDATE USING (auth.uid() = user_id AND status = 'queued');
CREATE POLICY "Users can delete own queued calls" ON call_queue FOR DELETE USING (auth.uid() = user_id AND status = 'queued');
CREATE POLICY "Admin can manage all call queue entries" ON call_queue USING (is_admin());
CREATE POLICY "Users can view own call history" ON user_call_history FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Admin can manage all call history" ON user_call_history USING (is_admin());

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO authenticated;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon;
GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
