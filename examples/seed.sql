-- Deterministic sample data: 2,000 users, 50 channels, 20,000 messages, 5,000 audit rows.
INSERT INTO nchat.nchat_users (id, username, email, full_name, legacy_field, email_confirmed_at, created_at)
SELECT md5('user' || i)::uuid, 'user' || i, 'user' || i || '@example.com', 'First' || i || ' Last' || i,
       CASE WHEN i % 7 = 0 THEN 'legacy' END,
       CASE WHEN i % 3 = 0 THEN timestamptz '2026-01-01' + i * interval '1 minute' END,
       timestamptz '2025-01-01' + i * interval '1 hour'
FROM generate_series(1, 2000) AS i;

INSERT INTO nchat.nchat_channels (id, name, is_private, created_by, created_at)
SELECT md5('channel' || i)::uuid, CASE WHEN i % 2 = 0 THEN 'public-' ELSE 'team-' END || i, i % 5 = 0,
       md5('user' || (i * 13 % 2000 + 1))::uuid, timestamptz '2025-02-01' + i * interval '1 day'
FROM generate_series(1, 50) AS i;

INSERT INTO nchat.nchat_channel_members (channel_id, user_id)
SELECT md5('channel' || c)::uuid, md5('user' || u)::uuid
FROM generate_series(1, 50) AS c, generate_series(1, 2000) AS u
WHERE (u + c) % 10 = 0;

INSERT INTO nchat.nchat_messages (id, channel_id, user_id, body, created_at)
SELECT md5('message' || i)::uuid, md5('channel' || (i % 50 + 1))::uuid, md5('user' || (i * 7 % 2000 + 1))::uuid,
       'message ' || i || ' ' || repeat('lorem ipsum ', i % 5 + 1),
       timestamptz '2026-01-01' + i * interval '3 minutes'
FROM generate_series(1, 20000) AS i;

INSERT INTO nchat.nchat_audit_log (actor_id, action, created_at)
SELECT md5('user' || (i % 2000 + 1))::uuid, 'login', timestamptz '2025-06-01' + i * interval '1 hour'
FROM generate_series(1, 5000) AS i;

ANALYZE;
