//! Per-stack configuration, kept in the repository as `Stackwright.<stack>.toml`: plain values,
//! secret values encrypted with the stack's passphrase, and the stack's encryption salt. The
//! program reads it with typed accessors whose errors name the key, the stack and the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stackwright_core::{Output, Secret};
use stackwright_state::Cipher;

/// A configuration value the program cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key `{key}` of stack `{stack}` ({file}): {problem}")]
pub struct ConfigError {
    /// The key.
    pub key: String,
    /// The stack.
    pub stack: String,
    /// The configuration file.
    pub file: String,
    /// What is wrong and what to do.
    pub problem: String,
}

/// A problem with the configuration file itself.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read or written.
    #[error("{action} {file}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file.
        file: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML or not in the expected shape.
    #[error(
        "{file} is not a valid Stackwright configuration file: {message}. Fix it by hand; it has not been modified"
    )]
    Malformed {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A secret could not be decrypted.
    #[error("{file}, key `{key}`: {source}")]
    Secret {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
        /// Why.
        source: stackwright_state::SecretsError,
    },
}

/// The on-disk shape of `Stackwright.<stack>.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    /// The stack's passphrase salt record (see `stackwright_state::Cipher`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_salt: Option<String>,
    /// The configuration values; a secret is a table `{ secure = "v1:…" }`.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

impl ConfigFile {
    /// Reads a configuration file; a missing file is an empty configuration.
    pub fn read(path: &Path) -> Result<Self, ConfigFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ConfigFileError::Malformed { file: path.to_owned(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(ConfigFileError::Io { action: "reading", file: path.to_owned(), source: e }),
        }
    }

    /// The file's text, as [`ConfigFile::write`] writes it.
    pub fn render(&self) -> String {
        format!(
            "# Stackwright configuration of one stack. Secret values are encrypted with the stack's passphrase.\n{}",
            toml::to_string_pretty(self).expect("configuration serializes")
        )
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), ConfigFileError> {
        let text = self.render();
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| ConfigFileError::Io {
            action: "writing",
            file: path.to_owned(),
            source: e,
        })
    }

    /// The ciphertext of a secret entry.
    pub fn secure(value: &toml::Value) -> Option<&str> {
        value.as_table().filter(|t| t.len() == 1).and_then(|t| t.get("secure")).and_then(toml::Value::as_str)
    }

    /// A secret entry holding `ciphertext`.
    pub fn secure_entry(ciphertext: String) -> toml::Value {
        let mut t = toml::map::Map::new();
        t.insert("secure".into(), toml::Value::String(ciphertext));
        toml::Value::Table(t)
    }
}

/// A secret entry is held as a [`Secret`], so the derived `Debug` of [`Config`] shows
/// `[secret]` in its place.
#[derive(Debug, Clone)]
enum Entry {
    Plain(Value),
    Secret(Secret<Value>),
}

/// A stack's configuration as the program sees it. Its `Debug` shows secret entries as
/// `[secret]`.
#[derive(Debug, Clone)]
pub struct Config {
    stack: String,
    file: String,
    entries: BTreeMap<String, Entry>,
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a table".into(),
        Value::Null => "nothing".into(),
    }
}

impl Config {
    /// An empty configuration.
    pub fn empty(stack: &str) -> Self {
        Config { stack: stack.to_owned(), file: format!("Stackwright.{stack}.toml"), entries: BTreeMap::new() }
    }

    /// Loads a stack's configuration, decrypting secrets with `cipher`.
    pub fn load(stack: &str, path: &Path, cipher: Option<&Cipher>) -> Result<Self, ConfigFileError> {
        let file = ConfigFile::read(path)?;
        let mut entries = BTreeMap::new();
        for (key, value) in file.config {
            let entry = match ConfigFile::secure(&value) {
                Some(ciphertext) => {
                    let secret_err =
                        |source| ConfigFileError::Secret { file: path.to_owned(), key: key.clone(), source };
                    let cipher = cipher.ok_or_else(|| secret_err(stackwright_state::SecretsError::Locked))?;
                    let plain = cipher.decrypt(ciphertext).map_err(secret_err)?;
                    let v = serde_json::from_slice(&plain)
                        .map_err(|_| secret_err(stackwright_state::SecretsError::Tampered))?;
                    Entry::Secret(Secret::new(v))
                }
                None => Entry::Plain(serde_json::to_value(&value).unwrap_or(Value::Null)),
            };
            entries.insert(key, entry);
        }
        Ok(Config { stack: stack.to_owned(), file: path.display().to_string(), entries })
    }

    /// A configuration with the given plain and secret values (for tests of programs).
    pub fn from_values(stack: &str, plain: BTreeMap<String, Value>, secret: BTreeMap<String, Value>) -> Self {
        let mut c = Config::empty(stack);
        c.entries.extend(plain.into_iter().map(|(k, v)| (k, Entry::Plain(v))));
        c.entries.extend(secret.into_iter().map(|(k, v)| (k, Entry::Secret(Secret::new(v)))));
        c
    }

    fn error(&self, key: &str, problem: String) -> ConfigError {
        ConfigError { key: key.to_owned(), stack: self.stack.clone(), file: self.file.clone(), problem }
    }

    fn missing(&self, key: &str, secret: bool) -> ConfigError {
        let flag = if secret { " --secret" } else { "" };
        self.error(key, format!("is not set; set it with `config set {key} VALUE{flag} --stack {}`", self.stack))
    }

    fn typed<T: DeserializeOwned>(&self, key: &str, v: &Value, secret: bool) -> Result<T, ConfigError> {
        T::deserialize(v).map_err(|e| {
            // serde's message quotes the value, so a secret gets only the expected type.
            let problem = if secret {
                format!("has the wrong type: a secret value that is not a {}", std::any::type_name::<T>())
            } else {
                format!("has the wrong type ({}): {e}", describe(v))
            };
            self.error(key, problem)
        })
    }

    /// The value of `key`, or `None` if it is not set.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(Entry::Plain(v)) => self.typed(key, v, false).map(Some),
            Some(Entry::Secret(_)) => {
                Err(self.error(key, "is secret; read it with `require_secret` or `get_secret`".into()))
            }
        }
    }

    /// The value of `key`; an error if it is not set.
    pub fn require<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        self.get(key)?.ok_or_else(|| self.missing(key, false))
    }

    /// The value of `key`, or `default` if it is not set.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// A secret value as a secret output, or `None` if it is not set.
    pub fn get_secret<T: DeserializeOwned + Serialize>(&self, key: &str) -> Result<Option<Output<T>>, ConfigError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(Entry::Secret(v)) => Ok(Some(Output::secret(self.typed(key, v.expose(), true)?))),
            Some(Entry::Plain(v)) => Ok(Some(Output::secret(self.typed(key, v, true)?))),
        }
    }

    /// A secret value itself, for code that needs it now (a provider's token, say), or `None`
    /// if it is not set. It is wrapped as a [`Secret`], which formatting shows as `[secret]`;
    /// for wiring into resources use [`Config::get_secret`], which keeps it a secret output.
    pub fn get_secret_value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Secret<T>>, ConfigError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(Entry::Secret(v)) => self.typed(key, v.expose(), true).map(|t| Some(Secret::new(t))),
            Some(Entry::Plain(v)) => self.typed(key, v, true).map(|t| Some(Secret::new(t))),
        }
    }

    /// A secret value itself; an error if it is not set. See [`Config::get_secret_value`].
    pub fn require_secret_value<T: DeserializeOwned>(&self, key: &str) -> Result<Secret<T>, ConfigError> {
        self.get_secret_value(key)?.ok_or_else(|| self.missing(key, true))
    }

    /// A secret value as a secret output; an error if it is not set.
    pub fn require_secret<T: DeserializeOwned + Serialize>(&self, key: &str) -> Result<Output<T>, ConfigError> {
        self.get_secret(key)?.ok_or_else(|| self.missing(key, true))
    }

    /// The keys, each with whether it is secret.
    pub fn keys(&self) -> impl Iterator<Item = (&str, bool)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), matches!(e, Entry::Secret(_))))
    }

    /// The raw value of a key and whether it is secret (for the `config` command).
    pub fn raw(&self, key: &str) -> Option<(&Value, bool)> {
        self.entries.get(key).map(|e| match e {
            Entry::Plain(v) => (v, false),
            Entry::Secret(v) => (v.expose(), true),
        })
    }
}

/// Parses a command-line value: TOML syntax when it is a TOML scalar (`3`, `true`, `"x"`,
/// `[1, 2]`), otherwise the text as a string.
pub fn parse_cli_value(text: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Probe {
        v: toml::Value,
    }
    toml::from_str::<Probe>(&format!("v = {text}"))
        .map(|p| p.v)
        .unwrap_or_else(|_| toml::Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_access_names_key_stack_and_file() {
        let c = Config::from_values(
            "prod",
            BTreeMap::from([("replicas".into(), json!("three")), ("region".into(), json!("eu-west-1"))]),
            BTreeMap::from([("db_password".into(), json!("canary-s3cr3t"))]),
        );
        assert_eq!(c.require::<String>("region").unwrap(), "eu-west-1");
        let e = c.require::<u32>("replicas").unwrap_err().to_string();
        assert!(
            e.contains("`replicas`")
                && e.contains("`prod`")
                && e.contains("Stackwright.prod.toml")
                && e.contains("\"three\""),
            "{e}"
        );
        let e = c.require::<u32>("missing").unwrap_err().to_string();
        assert!(e.contains("config set missing VALUE --stack prod"), "{e}");
        let e = c.require::<String>("db_password").unwrap_err().to_string();
        assert!(e.contains("is secret") && !e.contains("canary"), "{e}");
        let e = c.require_secret::<u32>("db_password").unwrap_err().to_string();
        assert!(!e.contains("canary"), "{e}");
        assert!(c.require_secret::<String>("db_password").unwrap().is_secret());
        assert_eq!(c.get_or("absent", 5u32).unwrap(), 5);
    }

    #[test]
    fn debug_of_config_and_secret_values_shows_no_secret_even_a_short_one() {
        let canary = "canary-\"q\"\\b\ne\tx é🦀 &=+ %/";
        let c = Config::from_values(
            "prod",
            BTreeMap::from([("region".into(), json!("eu-west-1"))]),
            BTreeMap::from([
                ("db_password".into(), json!(canary)),
                ("pin".into(), json!("ab")),
                ("nested".into(), json!({"deep": [canary]})),
            ]),
        );
        let texts = [
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{:?}", c.require_secret_value::<String>("pin").unwrap()),
            format!("{}", c.require_secret_value::<String>("db_password").unwrap()),
            format!("{:?}", c.get_secret_value::<Value>("nested").unwrap()),
            format!("{:?}", c.require_secret::<String>("pin").unwrap()),
        ];
        for text in &texts {
            assert!(!text.contains("canary") && !text.contains("\"ab\""), "{text}");
            assert!(text.contains("[secret]"), "{text}");
        }
        assert!(texts[0].contains("eu-west-1") && texts[0].contains("db_password"), "{}", texts[0]);
        assert_eq!(c.require_secret_value::<String>("pin").unwrap().expose(), "ab");
        assert_eq!(c.raw("db_password"), Some((&json!(canary), true)));
        let e = c.require_secret_value::<u32>("db_password").unwrap_err().to_string();
        assert!(!e.contains("canary") && e.contains("db_password"), "{e}");
    }

    #[test]
    fn cli_values_parse_as_toml_scalars_or_strings() {
        assert_eq!(parse_cli_value("3"), toml::Value::Integer(3));
        assert_eq!(parse_cli_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_cli_value("eu-west-1"), toml::Value::String("eu-west-1".into()));
        assert_eq!(parse_cli_value("\"3\""), toml::Value::String("3".into()));
    }
}
