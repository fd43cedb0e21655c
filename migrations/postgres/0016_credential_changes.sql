-- A counter the database raises whenever what a broker's files hold may have changed:
-- devices registered or removed, a device's broker password, an operator's MQTT account,
-- a revoked device certificate. The server syncing Mosquitto's files reads this one row
-- every poll and reads every credential only when it moved (or once a minute), so an idle
-- fleet's poll no longer costs one row per device. Triggers raise it, so no code path that
-- changes credentials can forget to; deferred to the commit, so a transaction holds the
-- counter's row lock only while it commits (registrations do not queue behind each other).
CREATE TABLE credential_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO credential_changes (id, n) VALUES (1, 0);

CREATE FUNCTION raise_credential_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE credential_changes SET n = n + 1;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER devices_credentials AFTER INSERT OR DELETE OR UPDATE OF broker_password_hash ON devices
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION raise_credential_changes();
CREATE CONSTRAINT TRIGGER operators_credentials AFTER INSERT OR DELETE OR UPDATE OF mqtt, broker_password_hash ON operator_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION raise_credential_changes();
CREATE CONSTRAINT TRIGGER certificates_revoked AFTER UPDATE OF revoked_at ON device_certificates
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION raise_credential_changes();
