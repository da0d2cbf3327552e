-- A participant kicked by an operator cannot rejoin with its token: the invite is revoked.
ALTER TABLE room_invites ADD COLUMN revoked_at INTEGER;
