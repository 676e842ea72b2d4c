//! `Secret<T>`: a value that formatting never shows. Its `Debug` and `Display` print `[secret]`
//! whatever its length, so even a secret too short to be scrubbed from free text (see
//! [`crate::value::MIN_SCRUB_LEN`]) cannot reach a log line or an error through `{:?}` or `{}`.
//! It serializes as the secret marker, so it stays secret when it becomes a property value.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::output::{Input, Output};
use crate::value::{SECRET_PLACEHOLDER, reveal, secret};

/// A secret value. Read it with [`Secret::expose`]; formatting shows `[secret]`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value as secret.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself. The name is meant to stand out in review: whatever receives it must
    /// not print it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// A secret of the value transformed by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Secret<U> {
        Secret(f(self.0))
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_PLACEHOLDER)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_PLACEHOLDER)
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plain = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        secret(plain).serialize(serializer)
    }
}

/// Accepts the secret marker or a plain value. A type mismatch names the expected type but
/// never quotes the value (serde's own message would).
impl<'de, T: DeserializeOwned> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (plain, _) = reveal(Value::deserialize(d)?);
        T::deserialize(plain).map(Secret).map_err(|_| {
            serde::de::Error::custom(format_args!(
                "a secret value that is not a {} (the value is not shown)",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// A secret literal becomes a secret input: it is encrypted in state and shown as `[secret]`.
impl<T: Serialize> From<Secret<T>> for Input<T> {
    fn from(s: Secret<T>) -> Self {
        Input::Output(Output::secret(s.0))
    }
}

/// A secret literal becomes a secret output.
impl<T: Serialize> From<Secret<T>> for Output<T> {
    fn from(s: Secret<T>) -> Self {
        Output::secret(s.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CANARY: &str = "canary-\"q\"\\b\ne\tx é🦀 &=+ %/";

    #[test]
    fn debug_and_display_never_show_the_value_even_a_short_one() {
        for s in [Secret::new(CANARY.to_owned()), Secret::new("ab".to_owned())] {
            assert_eq!(format!("{s:?}"), "[secret]");
            assert_eq!(format!("{s:#?}"), "[secret]");
            assert_eq!(format!("{s}"), "[secret]");
            assert_eq!(format!("{:?}", Some(&s)), "Some([secret])");
        }
        assert_eq!(format!("{:?}", Secret::new(json!({"pw": "ab"}))), "[secret]");
    }

    #[test]
    fn serializes_as_the_secret_marker_and_reads_both_forms() {
        let s = Secret::new(CANARY.to_owned());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v, secret(json!(CANARY)));
        let back: Secret<String> = serde_json::from_value(v).unwrap();
        assert_eq!(back.expose(), CANARY);
        let plain: Secret<String> = serde_json::from_value(json!("ab")).unwrap();
        assert_eq!(plain.into_inner(), "ab");
    }

    #[test]
    fn a_type_mismatch_does_not_quote_the_value() {
        let e = serde_json::from_value::<Secret<u32>>(json!("ab-hunter2")).unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("u32"), "{e}");
    }

    #[test]
    fn a_secret_literal_is_a_secret_input() {
        let input: Input<String> = Secret::new("ab".to_owned()).into();
        assert_eq!(format!("{input:?}"), "Output([secret])");
        assert_eq!(serde_json::to_value(&input).unwrap(), secret(json!("ab")));
    }
}
