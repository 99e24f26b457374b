//! Template parameters: what `call_templates.params` declares and how a call's
//! `custom_variables` are checked against it.
//!
//! `params` is a JSON object, one key per parameter:
//!
//! ```json
//! {
//!   "patient_name":     {"type": "string", "required": true},
//!   "appointment_time": {"type": "string", "required": true},
//!   "clinic_name":      {"type": "string", "default": "our clinic"}
//! }
//! ```
//!
//! * `type`: one of `string`, `integer`, `number`, `boolean`, `object`, `array`
//!   (default `string`);
//! * `required`: whether a call must supply a value (default `false`); a
//!   required parameter with a `default` is satisfied by the default;
//! * `default`: the value used when a call supplies none; it must have the
//!   parameter's type;
//! * `description`: free text for the application's forms.
//!
//! `params_order` is a JSON array of the parameter names in display order;
//! each name must be a declared parameter, at most once.
//!
//! A call's `custom_variables` must be a JSON object whose keys are declared
//! parameters with values of the declared type. A template without `params`
//! accepts any object.

use crate::error::{quoted, DialerError};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
}

impl ParamType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => ParamType::String,
            "integer" => ParamType::Integer,
            "number" => ParamType::Number,
            "boolean" => ParamType::Boolean,
            "object" => ParamType::Object,
            "array" => ParamType::Array,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Object => "object",
            ParamType::Array => "array",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            ParamType::String => value.is_string(),
            ParamType::Integer => {
                value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            ParamType::Number => value.is_number(),
            ParamType::Boolean => value.is_boolean(),
            ParamType::Object => value.is_object(),
            ParamType::Array => value.is_array(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub kind: ParamType,
    pub required: bool,
    pub default: Option<Value>,
}

/// The most parameters a template declares, and variables a call carries.
pub const MAX_PARAMS: usize = 500;

/// The parameters a template declares; `None` for a template without `params`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateParams {
    declared: Option<Vec<Param>>,
}

impl TemplateParams {
    /// Reads and checks a template's `params` and `params_order`.
    pub fn parse(params: Option<&Value>, order: Option<&Value>) -> Result<Self, DialerError> {
        let params = match params {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => return Err(DialerError::invalid("params must be a JSON object")),
        };
        let Some(map) = params else {
            if matches!(order, Some(Value::Array(a)) if !a.is_empty()) {
                return Err(DialerError::invalid(
                    "params_order names parameters but params is empty",
                ));
            }
            return Ok(TemplateParams { declared: None });
        };
        if map.len() > MAX_PARAMS {
            return Err(DialerError::invalid(format!(
                "params declares {} parameters; at most {MAX_PARAMS} are accepted",
                map.len()
            )));
        }
        let mut declared = Vec::with_capacity(map.len());
        for (name, spec) in map {
            declared.push(parse_param(name, spec)?);
        }
        check_order(&declared, order)?;
        Ok(TemplateParams {
            declared: Some(declared),
        })
    }

    /// Checks a call's `custom_variables`; returns them as an object.
    pub fn check(&self, variables: Option<&Value>) -> Result<Map<String, Value>, DialerError> {
        let variables = match variables {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(other) => {
                return Err(DialerError::invalid(format!(
                    "custom_variables must be a JSON object, not {}",
                    json_kind(other)
                )))
            }
        };
        if variables.len() > MAX_PARAMS {
            return Err(DialerError::invalid(format!(
                "custom_variables has {} keys; at most {MAX_PARAMS} are accepted",
                variables.len()
            )));
        }
        let Some(declared) = &self.declared else {
            return Ok(variables);
        };
        let by_name: std::collections::HashMap<&str, &Param> =
            declared.iter().map(|p| (p.name.as_str(), p)).collect();
        for (name, value) in &variables {
            let Some(param) = by_name.get(name.as_str()) else {
                return Err(DialerError::invalid(format!(
                    "custom_variables.{name} is not a parameter of the template"
                ))
                .with_hint(format!(
                    "The template's parameters are: {}.",
                    names(declared)
                )));
            };
            if !param.kind.accepts(value) {
                return Err(DialerError::invalid(format!(
                    "custom_variables.{name} must be {} {}, not {}",
                    article(param.kind.name()),
                    param.kind.name(),
                    json_kind(value)
                )));
            }
        }
        if let Some(missing) = declared
            .iter()
            .find(|p| p.required && p.default.is_none() && !variables.contains_key(&p.name))
        {
            return Err(DialerError::invalid(format!(
                "custom_variables.{} is required by the template",
                missing.name
            )));
        }
        Ok(variables)
    }

    /// The variables a call is placed with: defaults, overridden by the call's
    /// own values.
    pub fn merged(&self, variables: &Map<String, Value>) -> Map<String, Value> {
        let mut merged = Map::new();
        for param in self.declared.iter().flatten() {
            if let Some(default) = &param.default {
                merged.insert(param.name.clone(), default.clone());
            }
        }
        for (name, value) in variables {
            merged.insert(name.clone(), value.clone());
        }
        merged
    }
}

fn parse_param(name: &str, spec: &Value) -> Result<Param, DialerError> {
    let Value::Object(spec) = spec else {
        return Err(DialerError::invalid(format!(
            "params.{name} must be an object like {{\"type\": \"string\", \"required\": true}}"
        )));
    };
    for key in spec.keys() {
        if !matches!(
            key.as_str(),
            "type" | "required" | "default" | "description"
        ) {
            return Err(DialerError::invalid(format!(
                "params.{name} has an unknown key {}",
                quoted(key)
            ))
            .with_hint("A parameter takes type, required, default and description."));
        }
    }
    let kind = match spec.get("type") {
        None => ParamType::String,
        Some(Value::String(t)) => ParamType::parse(t).ok_or_else(|| {
            DialerError::invalid(format!(
                "params.{name}.type {} is not a known type",
                quoted(t)
            ))
            .with_hint("Use string, integer, number, boolean, object or array.")
        })?,
        Some(_) => {
            return Err(DialerError::invalid(format!(
                "params.{name}.type must be a string"
            )))
        }
    };
    let required = match spec.get("required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(DialerError::invalid(format!(
                "params.{name}.required must be true or false"
            )))
        }
    };
    let default = match spec.get("default") {
        None => None,
        Some(value) if kind.accepts(value) => Some(value.clone()),
        Some(value) => {
            return Err(DialerError::invalid(format!(
                "params.{name}.default must be {} {}, not {}",
                article(kind.name()),
                kind.name(),
                json_kind(value)
            )))
        }
    };
    Ok(Param {
        name: name.to_owned(),
        kind,
        required,
        default,
    })
}

fn check_order(declared: &[Param], order: Option<&Value>) -> Result<(), DialerError> {
    let items = match order {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(DialerError::invalid(
                "params_order must be a JSON array of parameter names",
            ))
        }
    };
    if items.len() > MAX_PARAMS {
        return Err(DialerError::invalid(format!(
            "params_order names {} parameters; at most {MAX_PARAMS} are accepted",
            items.len()
        )));
    }
    let names: std::collections::HashSet<&str> = declared.iter().map(|p| p.name.as_str()).collect();
    let mut seen: std::collections::HashSet<&str> =
        std::collections::HashSet::with_capacity(items.len());
    for item in items {
        let Some(name) = item.as_str() else {
            return Err(DialerError::invalid(
                "params_order must hold parameter names (strings)",
            ));
        };
        if !names.contains(name) {
            return Err(DialerError::invalid(format!(
                "params_order names {} which is not in params",
                quoted(name)
            )));
        }
        if !seen.insert(name) {
            return Err(DialerError::invalid(format!(
                "params_order names {} twice",
                quoted(name)
            )));
        }
    }
    Ok(())
}

fn names(declared: &[Param]) -> String {
    let mut names: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reminder() -> TemplateParams {
        TemplateParams::parse(
            Some(&json!({
                "patient_name": {"type": "string", "required": true},
                "appointment_time": {"type": "string", "required": true},
                "clinic_name": {"type": "string", "default": "our clinic"},
                "party_size": {"type": "integer", "required": true, "default": 1},
                "deposit": {"type": "number"},
                "vip": {"type": "boolean"}
            })),
            Some(&json!(["patient_name", "appointment_time", "clinic_name"])),
        )
        .unwrap()
    }

    #[test]
    fn good_variables_pass_and_merge_with_defaults() {
        let p = reminder();
        let vars = json!({"patient_name": "Ana", "appointment_time": "10:30", "deposit": 12.5, "vip": true});
        let checked = p.check(Some(&vars)).unwrap();
        let merged = p.merged(&checked);
        assert_eq!(merged["clinic_name"], json!("our clinic"));
        assert_eq!(merged["party_size"], json!(1));
        assert_eq!(merged["patient_name"], json!("Ana"));
    }

    #[test]
    fn a_call_value_overrides_the_default() {
        let p = reminder();
        let vars = json!({"patient_name": "Ana", "appointment_time": "10:30", "clinic_name": "Smile Dental"});
        let merged = p.merged(&p.check(Some(&vars)).unwrap());
        assert_eq!(merged["clinic_name"], json!("Smile Dental"));
    }

    #[test]
    fn missing_required_names_the_param() {
        let err = reminder()
            .check(Some(&json!({"patient_name": "Ana"})))
            .unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
        assert_eq!(
            err.message,
            "custom_variables.appointment_time is required by the template"
        );
    }

    #[test]
    fn wrong_type_names_the_param() {
        let err = reminder()
            .check(Some(&json!({"patient_name": 42, "appointment_time": "x"})))
            .unwrap_err();
        assert_eq!(
            err.message,
            "custom_variables.patient_name must be a string, not a number"
        );
        let err = reminder()
            .check(Some(
                &json!({"patient_name": "a", "appointment_time": "x", "party_size": 2.5}),
            ))
            .unwrap_err();
        assert_eq!(
            err.message,
            "custom_variables.party_size must be an integer, not a number"
        );
        assert!(reminder()
            .check(Some(
                &json!({"patient_name": "a", "appointment_time": "x", "party_size": 3.0})
            ))
            .is_ok());
    }

    #[test]
    fn unknown_variable_is_refused() {
        let err = reminder()
            .check(Some(
                &json!({"patient_name": "a", "appointment_time": "x", "patient_nmae": "typo"}),
            ))
            .unwrap_err();
        assert!(
            err.message.contains("custom_variables.patient_nmae"),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().contains("patient_name"));
    }

    #[test]
    fn variables_must_be_an_object() {
        let err = reminder().check(Some(&json!(["a"]))).unwrap_err();
        assert_eq!(
            err.message,
            "custom_variables must be a JSON object, not an array"
        );
    }

    #[test]
    fn template_without_params_takes_any_object() {
        let p = TemplateParams::parse(None, None).unwrap();
        assert!(p.check(Some(&json!({"anything": 1}))).is_ok());
        assert!(p.check(None).unwrap().is_empty());
        assert!(p.check(Some(&json!("text"))).is_err());
    }

    #[test]
    fn malformed_params_are_refused() {
        let bad = [
            json!("string"),
            json!({"a": "string"}),
            json!({"a": {"type": "uuid"}}),
            json!({"a": {"type": 1}}),
            json!({"a": {"required": "yes"}}),
            json!({"a": {"type": "integer", "default": "one"}}),
            json!({"a": {"typ": "string"}}),
        ];
        for params in bad {
            assert!(
                TemplateParams::parse(Some(&params), None).is_err(),
                "{params}"
            );
        }
    }

    #[test]
    fn params_order_must_name_declared_params_once() {
        let params = json!({"a": {}, "b": {}});
        assert!(TemplateParams::parse(Some(&params), Some(&json!(["b", "a"]))).is_ok());
        assert!(TemplateParams::parse(Some(&params), Some(&json!(["a", "c"]))).is_err());
        assert!(TemplateParams::parse(Some(&params), Some(&json!(["a", "a"]))).is_err());
        assert!(TemplateParams::parse(Some(&params), Some(&json!({"a": 1}))).is_err());
        assert!(TemplateParams::parse(None, Some(&json!(["a"]))).is_err());
    }

    #[test]
    fn sizes_are_capped() {
        let many: serde_json::Map<String, Value> = (0..=MAX_PARAMS)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        let err = TemplateParams::parse(Some(&Value::Object(many.clone())), None).unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
        assert_eq!(
            err.message,
            "params declares 501 parameters; at most 500 are accepted"
        );
        let order: Vec<Value> = (0..=MAX_PARAMS).map(|i| json!(format!("p{i}"))).collect();
        let mut fewer = many.clone();
        fewer.remove("p0");
        let err = TemplateParams::parse(Some(&Value::Object(fewer)), Some(&Value::Array(order)))
            .unwrap_err();
        assert!(
            err.message.starts_with("params_order names 501 parameters"),
            "{}",
            err.message
        );
        let variables: serde_json::Map<String, Value> = (0..=MAX_PARAMS)
            .map(|i| (format!("v{i}"), json!(1)))
            .collect();
        let err = TemplateParams::default()
            .check(Some(&Value::Object(variables)))
            .unwrap_err();
        assert_eq!(
            err.message,
            "custom_variables has 501 keys; at most 500 are accepted"
        );
    }

    #[test]
    fn the_most_parameters_check_quickly() {
        // Linear: every lookup is by hash, so the largest template checks at once.
        let params: serde_json::Map<String, Value> = (0..MAX_PARAMS)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        let order: Vec<Value> = (0..MAX_PARAMS)
            .rev()
            .map(|i| json!(format!("p{i}")))
            .collect();
        let t = TemplateParams::parse(Some(&Value::Object(params)), Some(&Value::Array(order)))
            .unwrap();
        let variables: serde_json::Map<String, Value> = (0..MAX_PARAMS)
            .map(|i| (format!("p{i}"), json!("x")))
            .collect();
        assert_eq!(
            t.check(Some(&Value::Object(variables))).unwrap().len(),
            MAX_PARAMS
        );
    }
}
