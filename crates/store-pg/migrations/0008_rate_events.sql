-- The sliding-window counter began as failed sign-ins; registrations per address use it too, so
-- it is named for what it counts: events per key (`user:…`, `ip:…`, `register:…`).

ALTER TABLE login_failures RENAME TO rate_events;
ALTER TABLE rate_events RENAME COLUMN failed_at TO occurred_at;
DROP INDEX login_failures_key_failed_at;
DROP INDEX login_failures_failed_at;
CREATE INDEX rate_events_key_occurred_at ON rate_events (throttle_key, occurred_at);
CREATE INDEX rate_events_occurred_at ON rate_events (occurred_at);
