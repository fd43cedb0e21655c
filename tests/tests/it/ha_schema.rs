//! Home Assistant's MQTT `update` discovery schema, encoded to check what the server
//! publishes without a Home Assistant install.
//!
//! Where it comes from: the documentation page <https://www.home-assistant.io/integrations/update.mqtt/>
//! and the code behind it in home-assistant/core, `homeassistant/components/mqtt/`:
//! `update.py` (`PLATFORM_SCHEMA_MODERN`, and `MQTT_JSON_UPDATE_SCHEMA`, which validates the
//! JSON on the state topic), `config.py` (`SCHEMA_BASE`, `MQTT_RO_SCHEMA`) and `schemas.py`
//! (`MQTT_ENTITY_COMMON_SCHEMA`, `MQTT_AVAILABILITY_SCHEMA`, `MQTT_ENTITY_DEVICE_INFO_SCHEMA`,
//! `MQTT_ORIGIN_INFO_SCHEMA`), as of Home Assistant Core 2025 (`in_progress` as a boolean and
//! `update_percentage` since 2024.11; `display_precision`; `default_entity_id` since 2025.10).
//!
//! Stricter than Home Assistant where that is safer: its `cv.string` also takes numbers
//! (we want JSON strings), and its discovery schema silently drops unknown keys
//! (`vol.REMOVE_EXTRA`) where this refuses them, so a misspelt key cannot pass unnoticed.
//! Abbreviated keys are not used by the server and so are refused too. The state schema has
//! no `extra` allowance in Home Assistant either: an unknown key there makes it discard
//! the whole message.

use serde_json::{Map, Value};

/// How a value is checked.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    /// `cv.positive_int` (0 or more).
    PositiveInt,
    /// `valid_qos_schema`: 0, 1 or 2.
    Qos,
    /// A topic one may subscribe to (`valid_subscribe_topic`): non-empty, wildcards only as
    /// whole levels.
    SubscribeTopic,
    /// A topic one may publish to (`valid_publish_topic`): no wildcards.
    PublishTopic,
    /// `vol.Any(vol.Range(min=0, max=100), None)`.
    Percentage,
    /// `update` device classes: `firmware`, or null.
    DeviceClass,
    /// `vol.Any(cv.string, None)`.
    StrOrNull,
    /// `vol.In(AVAILABILITY_MODES)`.
    AvailabilityMode,
    /// `ENTITY_CATEGORIES_SCHEMA`.
    EntityCategory,
    /// `cv.ensure_list, [cv.string]`.
    StrList,
    Availability,
    Device,
    Origin,
}

/// Keys of an `update` discovery config and what each must be.
const CONFIG_KEYS: &[(&str, Kind)] = &[
    // config.py SCHEMA_BASE and MQTT_RO_SCHEMA
    ("qos", Kind::Qos),
    ("encoding", Kind::Str),
    ("group", Kind::StrList),
    ("state_topic", Kind::SubscribeTopic),
    ("value_template", Kind::Str),
    // update.py PLATFORM_SCHEMA_MODERN
    ("command_topic", Kind::PublishTopic),
    ("device_class", Kind::DeviceClass),
    ("display_precision", Kind::PositiveInt),
    ("entity_picture", Kind::Str),
    ("latest_version_template", Kind::Str),
    ("latest_version_topic", Kind::SubscribeTopic),
    ("name", Kind::StrOrNull),
    ("payload_install", Kind::Str),
    ("release_summary", Kind::Str),
    ("release_url", Kind::Str),
    ("retain", Kind::Bool),
    ("title", Kind::Str),
    // schemas.py MQTT_AVAILABILITY_SCHEMA
    ("availability_topic", Kind::SubscribeTopic),
    ("availability_template", Kind::Str),
    ("payload_available", Kind::Str),
    ("payload_not_available", Kind::Str),
    ("availability_mode", Kind::AvailabilityMode),
    ("availability", Kind::Availability),
    // schemas.py MQTT_ENTITY_COMMON_SCHEMA
    ("device", Kind::Device),
    ("origin", Kind::Origin),
    ("enabled_by_default", Kind::Bool),
    ("entity_category", Kind::EntityCategory),
    ("icon", Kind::Str),
    ("json_attributes_topic", Kind::SubscribeTopic),
    ("json_attributes_template", Kind::Str),
    ("object_id", Kind::Str),
    ("default_entity_id", Kind::Str),
    ("unique_id", Kind::Str),
];

/// `MQTT_ENTITY_DEVICE_INFO_SCHEMA` (and `connections`, a list of pairs, checked apart).
const DEVICE_KEYS: &[(&str, Kind)] = &[
    ("identifiers", Kind::StrList),
    ("manufacturer", Kind::Str),
    ("model", Kind::Str),
    ("model_id", Kind::Str),
    ("name", Kind::Str),
    ("hw_version", Kind::Str),
    ("serial_number", Kind::Str),
    ("sw_version", Kind::Str),
    ("via_device", Kind::Str),
    ("suggested_area", Kind::Str),
    ("configuration_url", Kind::Str),
];

/// `MQTT_ORIGIN_INFO_SCHEMA`.
const ORIGIN_KEYS: &[(&str, Kind)] = &[("name", Kind::Str), ("sw_version", Kind::Str), ("support_url", Kind::Str)];

/// `MQTT_JSON_UPDATE_SCHEMA`: the JSON a state topic may carry.
const STATE_KEYS: &[(&str, Kind)] = &[
    ("installed_version", Kind::Str),
    ("latest_version", Kind::Str),
    ("title", Kind::Str),
    ("release_summary", Kind::Str),
    ("release_url", Kind::Str),
    ("entity_picture", Kind::Str),
    ("in_progress", Kind::Bool),
    ("update_percentage", Kind::Percentage),
];

/// Checks a discovery config; `Err` says what Home Assistant would not take.
pub(crate) fn check_config(config: &Value) -> Result<(), String> {
    let map = config.as_object().ok_or("the config is not a JSON object")?;
    check_keys(map, CONFIG_KEYS, "config")?;
    if !map.contains_key("state_topic") {
        return Err("state_topic is required (MQTT_RO_SCHEMA)".into());
    }
    if map.contains_key("availability_topic") && map.contains_key("availability") {
        return Err("availability_topic and availability exclude each other".into());
    }
    if map.contains_key("command_topic") && !map.contains_key("payload_install") {
        return Err("an install (command_topic) publishes payload_install, which must be set".into());
    }
    if map.contains_key("device") && !map.contains_key("unique_id") {
        return Err("a device block works only with a unique_id".into());
    }
    Ok(())
}

/// Checks the JSON of a state message.
pub(crate) fn check_state(state: &Value) -> Result<(), String> {
    let map = state.as_object().ok_or("the state is not a JSON object")?;
    check_keys(map, STATE_KEYS, "state")
}

fn check_keys(map: &Map<String, Value>, allowed: &[(&str, Kind)], what: &str) -> Result<(), String> {
    for (key, value) in map {
        let Some((_, kind)) = allowed.iter().find(|(k, _)| k == key) else {
            return Err(format!("{what}: unknown key `{key}`"));
        };
        check(*kind, value).map_err(|e| format!("{what}.{key}: {e} (got {value})"))?;
    }
    Ok(())
}

fn check(kind: Kind, v: &Value) -> Result<(), String> {
    let ok = match kind {
        Kind::Str => v.is_string(),
        Kind::Bool => v.is_boolean(),
        Kind::PositiveInt => v.as_u64().is_some(),
        Kind::Qos => v.as_u64().is_some_and(|q| q <= 2),
        Kind::SubscribeTopic => v.as_str().is_some_and(subscribe_topic),
        Kind::PublishTopic => v.as_str().is_some_and(|t| subscribe_topic(t) && !t.contains(['+', '#'])),
        Kind::Percentage => v.is_null() || v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)),
        Kind::DeviceClass => v.is_null() || v == "firmware",
        Kind::StrOrNull => v.is_null() || v.is_string(),
        Kind::AvailabilityMode => matches!(v.as_str(), Some("all" | "any" | "latest")),
        Kind::EntityCategory => matches!(v.as_str(), Some("config" | "diagnostic")),
        Kind::StrList => v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::Availability => return availability(v),
        Kind::Device => return device(v),
        Kind::Origin => return origin(v),
    };
    if ok { Ok(()) } else { Err("wrong type or value".into()) }
}

/// Non-empty, at most 65535 bytes, no NUL, `+` and `#` only as whole levels, `#` last.
fn subscribe_topic(t: &str) -> bool {
    let levels: Vec<&str> = t.split('/').collect();
    let wildcards_whole = levels.iter().all(|l| !l.contains(['+', '#']) || *l == "+" || *l == "#");
    let hash_last = levels.iter().rev().skip(1).all(|l| *l != "#");
    !t.is_empty() && t.len() <= 65535 && !t.contains('\0') && wildcards_whole && hash_last
}

fn availability(v: &Value) -> Result<(), String> {
    let items = v.as_array().ok_or("a list")?;
    for item in items {
        let map = item.as_object().ok_or("a list of objects")?;
        let keys: &[(&str, Kind)] = &[
            ("topic", Kind::SubscribeTopic),
            ("payload_available", Kind::Str),
            ("payload_not_available", Kind::Str),
            ("value_template", Kind::Str),
        ];
        check_keys(map, keys, "availability")?;
        if !map.contains_key("topic") {
            return Err("availability: topic is required".into());
        }
    }
    Ok(())
}

fn device(v: &Value) -> Result<(), String> {
    let map = v.as_object().ok_or("an object")?;
    let connections = map.get("connections");
    let mut rest = map.clone();
    rest.remove("connections");
    check_keys(&rest, DEVICE_KEYS, "device")?;
    let pairs = |c: &Value| {
        c.as_array().is_some_and(|a| {
            a.iter().all(|p| p.as_array().is_some_and(|p| p.len() == 2 && p.iter().all(Value::is_string)))
        })
    };
    if connections.is_some_and(|c| !pairs(c)) {
        return Err("device.connections: a list of [type, id] pairs".into());
    }
    let non_empty = |k: &str| match map.get(k) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    if !non_empty("identifiers") && !non_empty("connections") {
        return Err("device: at least one of identifiers and connections".into());
    }
    Ok(())
}

fn origin(v: &Value) -> Result<(), String> {
    let map = v.as_object().ok_or("an object")?;
    check_keys(map, ORIGIN_KEYS, "origin")?;
    if !map.contains_key("name") { Err("origin: name is required".into()) } else { Ok(()) }
}

#[test]
fn the_schema_refuses_what_home_assistant_refuses() {
    use serde_json::json;
    let good = json!({"state_topic": "a/b", "unique_id": "u", "command_topic": "a/c", "payload_install": "install",
        "device": {"identifiers": ["x"]}, "device_class": "firmware", "availability_topic": "a/+/p"});
    assert_eq!(check_config(&good), Ok(()));
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        check_config(&c)
    };
    assert!(with("stat_t", json!("x")).is_err(), "abbreviations and unknown keys");
    assert!(with("device_class", json!("battery")).is_err());
    assert!(with("command_topic", json!("a/+")).is_err(), "no wildcard where one publishes");
    assert!(with("qos", json!(3)).is_err());
    assert!(with("device", json!({"name": "x"})).is_err(), "a device needs an identifier");
    assert!(with("origin", json!({"sw_version": "1"})).is_err());
    assert!(check_config(&json!({"unique_id": "u"})).is_err(), "state_topic is required");
    assert_eq!(check_state(&json!({"installed_version": "1", "in_progress": true, "update_percentage": 50})), Ok(()));
    assert!(check_state(&json!({"installed_version": null})).is_err(), "null where a string is due");
    assert!(check_state(&json!({"update_percentage": 101})).is_err());
    assert!(check_state(&json!({"progress": 1})).is_err(), "unknown keys discard the message");
}
