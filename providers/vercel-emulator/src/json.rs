//! Strict request parsing: query parameters and JSON bodies validated the way Vercel's schema
//! validator does, so a provider sending a misspelt or mistyped field gets a 400 here too.

use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub(crate) type Obj = Map<String, Value>;

/// Query parameters, with a Vercel-shaped error on malformed input.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(pub HashMap<String, String>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Vercel flags are sent as `1` or `true`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true"))
    }

    pub fn i64(&self, key: &str) -> ApiResult<Option<i64>> {
        self.get(key)
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::invalid(format!("`{key}` should be number."))))
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(q)| Params(q))
            .map_err(|e| ApiError::invalid(format!("malformed query string: {e}")))
    }
}

pub(crate) fn parse_body(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("request body is required."));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))
}

pub(crate) fn parse_object(bytes: &[u8]) -> ApiResult<Obj> {
    match parse_body(bytes)? {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::invalid("body should be object.")),
    }
}

pub(crate) fn reject_unknown(obj: &Obj, allowed: &[&str]) -> ApiResult<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!("should NOT have additional property `{k}`."))),
        None => Ok(()),
    }
}

/// A PATCH-style field: absent, explicitly `null`, or a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Field<T> {
    /// Collapses absent and null, for create bodies where both mean "not given".
    pub fn into_option(self) -> Option<T> {
        match self {
            Field::Set(v) => Some(v),
            _ => None,
        }
    }
}

pub(crate) fn string_field(obj: &Obj, key: &str) -> ApiResult<Field<String>> {
    match obj.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(Value::String(s)) => Ok(Field::Set(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("`{key}` should be string."))),
    }
}

pub(crate) fn required_string(obj: &Obj, key: &str) -> ApiResult<String> {
    match string_field(obj, key)? {
        Field::Set(s) => Ok(s),
        _ => Err(ApiError::invalid(format!("missing required property `{key}`."))),
    }
}

pub(crate) fn u64_field(obj: &Obj, key: &str) -> ApiResult<Field<u64>> {
    match obj.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(v) => v.as_u64().map(Field::Set).ok_or_else(|| ApiError::invalid(format!("`{key}` should be integer."))),
    }
}

pub(crate) fn object_field(obj: &Obj, key: &str) -> ApiResult<Field<Obj>> {
    match obj.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(Value::Object(o)) => Ok(Field::Set(o.clone())),
        Some(_) => Err(ApiError::invalid(format!("`{key}` should be object."))),
    }
}

/// A list of strings; Vercel also accepts a single string where a list is expected (`target`).
pub(crate) fn string_list_field(obj: &Obj, key: &str) -> ApiResult<Field<Vec<String>>> {
    match obj.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(Value::String(s)) => Ok(Field::Set(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::invalid(format!("`{key}` items should be string.")))
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Field::Set),
        Some(_) => Err(ApiError::invalid(format!("`{key}` should be array."))),
    }
}

/// Drops duplicates while keeping first-seen order.
pub(crate) fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}
