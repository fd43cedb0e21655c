// Node-RED settings for the Fleet OTA example flow (`npm start` in this folder).
// The flow reads its broker, account and alert URL from environment variables (see
// README.md), so neither this file nor flows.json / flows_cred.json holds a secret.
module.exports = {
    flowFile: "flows.json",
    // flows_cred.json holds only ${FLEET_MQTT_USER} and ${FLEET_MQTT_PASSWORD}: kept plain.
    credentialSecret: false,
    // The editor and the dashboard listen on this host only; set NODE_RED_HOST=0.0.0.0
    // (and protect the editor with adminAuth) to reach them from elsewhere.
    uiHost: process.env.NODE_RED_HOST || "127.0.0.1",
    uiPort: Number(process.env.PORT) || 1880,
    // The editor at /; set NODE_RED_HEADLESS=1 to run without it (dashboard and flow only).
    httpAdminRoot: process.env.NODE_RED_HEADLESS ? false : "/",
    logging: { console: { level: "info", metrics: false, audit: false } },
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
    editorTheme: { projects: { enabled: false } }
};
