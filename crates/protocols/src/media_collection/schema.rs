//! The JSON Schema (draft-04) of each event type, written from the tables of
//! `rules.rs`: the schema `GET /api/v1/schemas/{eventType}` serves is the one
//! the decoder enforces.

use super::rules::{self, EventRules, Type};
use serde_json::{json, Map, Value};

/// The draft every schema is written in (the vendor's).
pub const DRAFT_04: &str = "http://json-schema.org/draft-04/schema#";

/// The JSON Schema (draft-04) of one event type, the one `decode_event`
/// enforces; `None` for an unknown type.
pub fn schema(event_type: &str) -> Option<Value> {
    let rules = rules::find(event_type)?;
    let mut required = vec!["eventType", "playerTime"];
    if rules.needs_params || !rules.required.is_empty() {
        required.push("params");
    }
    let custom_metadata = if rules.custom_metadata {
        json!({
            "type": "object",
            "description": "Flat string to string.",
            "patternProperties": {rules::CUSTOM_KEY_PATTERN: {"type": "string"}},
            "additionalProperties": false,
        })
    } else {
        json!({
            "description": "Not allowed on this event type (only on sessionStart, adStart and chapterStart).",
            "not": {},
        })
    };
    let mut schema = json!({
        "$schema": DRAFT_04,
        "title": format!("Media Collection API event `{}`", rules.name),
        "type": "object",
        "required": required,
        "properties": {
            "eventType": {"type": "string", "enum": [rules.name]},
            "playerTime": {
                "type": "object",
                "required": ["playhead", "ts"],
                "properties": {
                    "playhead": {
                        "type": "number",
                        "minimum": 0,
                        "description": "Seconds; for live content the second of the day.",
                    },
                    "ts": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": rules::MAX_TS,
                        "description": "Milliseconds since the Unix epoch.",
                    },
                },
                "additionalProperties": false,
            },
            "params": params(rules),
            "qoeData": members(
                rules::QOE.iter().map(|k| (k.name, k.ty)),
                &[],
            ),
            "customMetadata": custom_metadata,
        },
    });
    if rules.needs_error_id {
        // Either spelling of the error id will do.
        let id = |object: &str, key: &str| {
            json!({
                "required": [object],
                "properties": {object: {
                    "required": [key],
                    "properties": {key: {"type": "string", "minLength": 1}},
                }},
            })
        };
        schema["anyOf"] = json!([
            id("qoeData", rules::QOE_ERROR_ID),
            id("params", rules::PARAM_ERROR_ID),
        ]);
    }
    Some(schema)
}

fn params(rules: &EventRules) -> Value {
    if !rules.reads_params {
        return json!({"type": "object", "description": "Accepted and ignored."});
    }
    let known = rules::PARAMS
        .iter()
        .map(|k| (k.name, k.ty))
        .chain(rules::STANDARD_METADATA.iter().map(|&k| (k, Type::Text)));
    members(known, rules.required)
}

/// An object of typed known members; any other member a string, number or boolean.
fn members(known: impl Iterator<Item = (&'static str, Type)>, required: &[&str]) -> Value {
    let properties: Map<String, Value> = known
        .map(|(name, ty)| (name.to_owned(), type_schema(ty, required.contains(&name))))
        .collect();
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    });
    // Draft-04 wants at least one name in `required`.
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn type_schema(ty: Type, required: bool) -> Value {
    match ty {
        Type::Text if required => json!({"type": "string", "minLength": 1}),
        Type::Text => json!({"type": "string"}),
        Type::Boolean => json!({"type": "boolean"}),
        Type::OneOf(allowed) => json!({"type": "string", "enum": allowed}),
        Type::Number { min } => with_minimum(json!({"type": "number"}), min),
        Type::Integer { min } => with_minimum(json!({"type": "integer"}), min.map(|m| m as f64)),
    }
}

fn with_minimum(mut schema: Value, min: Option<f64>) -> Value {
    if let Some(min) = min {
        // Written as an integer when it is one (`0`, not `0.0`).
        schema["minimum"] = if min.fract() == 0.0 {
            json!(min as i64)
        } else {
            json!(min)
        };
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_collection::EVENT_TYPES;

    #[test]
    fn every_event_type_has_a_valid_draft_04_schema() {
        for ty in EVENT_TYPES {
            let s = schema(ty).unwrap();
            assert_eq!(s["$schema"], DRAFT_04, "{ty}");
            // Survives a round trip through text, as served.
            let s: Value = serde_json::from_str(&s.to_string()).unwrap();
            if let Err(e) = jsonschema::draft4::meta::validate(&s) {
                panic!("{ty}: not a valid draft-04 schema: {e}");
            }
            assert_eq!(s["properties"]["eventType"]["enum"], json!([ty]));
            assert_eq!(s["properties"]["playerTime"]["additionalProperties"], false);
        }
        assert_eq!(schema("seek"), None);
        assert_eq!(schema("SessionStart"), None);
    }

    #[test]
    fn custom_metadata_only_where_allowed() {
        for ty in EVENT_TYPES {
            let cm = &schema(ty).unwrap()["properties"]["customMetadata"];
            let allowed = matches!(ty, "sessionStart" | "adStart" | "chapterStart");
            assert_eq!(cm.get("not").is_none(), allowed, "{ty}");
            if allowed {
                assert_eq!(cm["additionalProperties"], false);
                assert_eq!(
                    cm["patternProperties"]["^[a-zA-Z0-9_.]+$"]["type"],
                    "string"
                );
            }
        }
    }

    #[test]
    fn required_params_and_the_error_id() {
        let s = schema("sessionStart").unwrap();
        assert_eq!(s["required"], json!(["eventType", "playerTime", "params"]));
        assert_eq!(
            s["properties"]["params"]["required"]
                .as_array()
                .unwrap()
                .len(),
            8
        );
        assert_eq!(
            s["properties"]["params"]["properties"]["media.id"],
            json!({"type": "string", "minLength": 1})
        );
        let play = schema("play").unwrap();
        assert_eq!(play["required"], json!(["eventType", "playerTime"]));
        assert!(play["properties"]["params"].get("required").is_none());
        assert!(play.get("anyOf").is_none());
        let error = schema("error").unwrap();
        assert_eq!(error["anyOf"].as_array().unwrap().len(), 2);
        assert_eq!(
            schema("ping").unwrap()["properties"]["params"],
            json!({"type": "object", "description": "Accepted and ignored."})
        );
        assert_eq!(
            play["properties"]["qoeData"]["properties"]["media.qoe.droppedFrames"],
            json!({"type": "integer", "minimum": 0})
        );
    }
}
