-- The chat schema of the Migration Safety Guide (schema nchat), as it stands before migration 054.
CREATE SCHEMA nchat;

CREATE TABLE nchat.nchat_users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  username TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL,
  full_name TEXT,
  legacy_field TEXT,
  email_confirmed_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE nchat.nchat_users IS 'Chat users';

CREATE TABLE nchat.nchat_channels (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name TEXT NOT NULL UNIQUE,
  is_private BOOLEAN NOT NULL DEFAULT false,
  created_by UUID NOT NULL REFERENCES nchat.nchat_users(id),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_channels_created_by ON nchat.nchat_channels (created_by);

CREATE TABLE nchat.nchat_channel_members (
  channel_id UUID NOT NULL REFERENCES nchat.nchat_channels(id) ON DELETE CASCADE,
  user_id UUID NOT NULL REFERENCES nchat.nchat_users(id) ON DELETE CASCADE,
  joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX idx_channel_members_user ON nchat.nchat_channel_members (user_id);

-- user_id has no foreign key yet: migration 058 adds it the guide's way (NOT VALID, then VALIDATE).
CREATE TABLE nchat.nchat_messages (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  channel_id UUID NOT NULL REFERENCES nchat.nchat_channels(id) ON DELETE CASCADE,
  user_id UUID NOT NULL,
  body TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  edited_at TIMESTAMPTZ
);
CREATE INDEX idx_messages_channel ON nchat.nchat_messages (channel_id, created_at);
CREATE INDEX idx_messages_user ON nchat.nchat_messages (user_id);
COMMENT ON COLUMN nchat.nchat_messages.body IS 'Message text as the user wrote it';

-- No foreign keys: a log outlives what it logs.
CREATE TABLE nchat.nchat_audit_log (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  actor_id UUID,
  action TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
