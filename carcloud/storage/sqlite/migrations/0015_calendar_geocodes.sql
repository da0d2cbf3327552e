-- The geocoder's answers for meeting locations, kept so that each text is asked once
-- (carcloud/calendars/geocoding.py): a place (lat, lon) or none (reason).
CREATE TABLE calendar_geocodes (
    query TEXT PRIMARY KEY,
    lat REAL,
    lon REAL,
    label TEXT,
    reason TEXT,
    looked_up_at INTEGER NOT NULL
);
