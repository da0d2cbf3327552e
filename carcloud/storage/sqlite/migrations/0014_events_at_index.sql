-- The hourly prune finds its cut by bisecting ids (events.first_id_at); no query needs an
-- index on `at`, and every event paid for its update (two events a command).
DROP INDEX events_at;
