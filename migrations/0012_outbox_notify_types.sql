-- The outbox's NOTIFY names the event types the statement wrote
-- ("JobQueued,WorkerReady"), so a listener can tell whether the wake-up
-- concerns it: the scheduler passes only on the events that can make an
-- assignment possible, not on every JobAssigned or JobFinished. Still one
-- notification per INSERT statement, delivered at commit.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('hodei_outbox',
                    coalesce((SELECT string_agg(DISTINCT event_type, ',') FROM new_rows), ''));
  RETURN NULL;
END;
$$;
DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
