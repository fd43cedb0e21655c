-- A counter the database raises whenever what a broker's files hold may have changed:
-- devices registered or removed, a device's broker password, an operator's MQTT account,
-- a revoked device certificate. The server syncing Mosquitto's files reads this one row
-- every poll and reads every credential only when it moved (or once a minute), so an idle
-- fleet's poll no longer costs one row per device. Triggers raise it, so no code path
-- that changes credentials can forget to.
CREATE TABLE credential_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO credential_changes (id, n) VALUES (1, 0);

CREATE TRIGGER devices_credentials_added AFTER INSERT ON devices
BEGIN UPDATE credential_changes SET n = n + 1; END;
CREATE TRIGGER devices_credentials_removed AFTER DELETE ON devices
BEGIN UPDATE credential_changes SET n = n + 1; END;
CREATE TRIGGER devices_credentials_changed AFTER UPDATE OF broker_password_hash ON devices
BEGIN UPDATE credential_changes SET n = n + 1; END;

CREATE TRIGGER operators_credentials_added AFTER INSERT ON operator_tokens
BEGIN UPDATE credential_changes SET n = n + 1; END;
CREATE TRIGGER operators_credentials_removed AFTER DELETE ON operator_tokens
BEGIN UPDATE credential_changes SET n = n + 1; END;
CREATE TRIGGER operators_credentials_changed AFTER UPDATE OF mqtt, broker_password_hash ON operator_tokens
BEGIN UPDATE credential_changes SET n = n + 1; END;

CREATE TRIGGER certificates_revoked AFTER UPDATE OF revoked_at ON device_certificates
BEGIN UPDATE credential_changes SET n = n + 1; END;
