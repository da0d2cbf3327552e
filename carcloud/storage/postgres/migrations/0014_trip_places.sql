-- A trip names the geofence or named place at each end (JSON: kind, id, name); a
-- tariff may be attached to one of its brand's geofences.
ALTER TABLE trips ADD COLUMN start_place TEXT;
ALTER TABLE trips ADD COLUMN end_place TEXT;
ALTER TABLE tariffs ADD COLUMN geofence_id TEXT;
