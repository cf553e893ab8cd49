-- Outbox: events written in the same transaction as the state they announce.
-- The relay reads WHERE published_at IS NULL ORDER BY id (never a high-water
-- mark: bigserial ids are allocated before commit, so they commit out of order).
CREATE TABLE outbox (
  id              bigserial PRIMARY KEY,
  event_id        uuid NOT NULL UNIQUE,
  subject         text NOT NULL,          -- full NATS subject
  aggregate_type  text NOT NULL,          -- 'job', 'worker', 'provision', ...
  aggregate_id    text NOT NULL,
  event_type      text NOT NULL,          -- 'JobQueued', ...
  payload         bytea NOT NULL,         -- packed hodei.v1.Event
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  published_at    timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wakes the relay at once: one notification per INSERT statement, not per row.
-- Delivered at commit, so a rolled-back insert wakes nobody.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('hodei_outbox', '');
  RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
