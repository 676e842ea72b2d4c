//! The passphrase secrets provider: a key derived with Argon2id from the stack's passphrase and
//! its own random salt, and ChaCha20-Poly1305 encryption of every secret value at rest — in
//! state snapshots, journal records, saved plans and configuration files.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::{Value, json};
use stackwright_core::value::{MARKER_KEY, is_secret};
use zeroize::Zeroizing;

const CHECK_PLAINTEXT: &[u8] = b"stackwright passphrase check";

/// A failure of the secrets provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The passphrase does not open this stack's secrets.
    #[error("the passphrase is wrong for stack `{stack}`: it does not decrypt the check value in {file}")]
    WrongPassphrase {
        /// The stack.
        stack: String,
        /// Where the salt lives.
        file: String,
    },
    /// A ciphertext was altered or belongs to another stack.
    #[error("a secret failed to decrypt: the ciphertext was altered or was encrypted for another stack")]
    Tampered,
    /// The salt record or a ciphertext is not in the expected format.
    #[error("malformed secrets data: {0}")]
    Malformed(String),
    /// A secret must be stored but no secrets provider is configured.
    #[error(
        "refusing to store a secret in plain text: no secrets provider is configured for this stack (set STACKWRIGHT_PASSPHRASE or STACKWRIGHT_PASSPHRASE_FILE)"
    )]
    NoProvider,
    /// Encrypted secrets were found but no secrets provider is configured.
    #[error(
        "the stack holds encrypted secrets but no passphrase was given; set STACKWRIGHT_PASSPHRASE or STACKWRIGHT_PASSPHRASE_FILE"
    )]
    Locked,
}

/// Key-derivation cost. The defaults follow OWASP's Argon2id recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Parallelism.
    pub parallelism: u32,
}

impl KdfParams {
    /// A deliberately cheap derivation for tests and benchmarks, where the passphrase protects
    /// nothing. Never use it for a real stack.
    pub fn insecure_for_tests() -> Self {
        KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 }
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// An opened secrets provider: encrypts and decrypts values for one stack.
pub struct Cipher {
    aead: ChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([secret])")
    }
}

fn derive(passphrase: &str, salt: &[u8], params: KdfParams) -> Result<Cipher, SecretsError> {
    let p = Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
        .map_err(|e| SecretsError::Malformed(format!("key-derivation parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| SecretsError::Malformed(format!("key derivation: {e}")))?;
    Ok(Cipher { aead: ChaCha20Poly1305::new(Key::from_slice(key.as_ref())) })
}

impl Cipher {
    /// A new provider for a new stack: a fresh random salt. Returns the cipher and the salt
    /// record to store with the stack's configuration.
    pub fn create(passphrase: &str, params: KdfParams) -> Result<(Cipher, String), SecretsError> {
        let salt: [u8; 16] = rand::random();
        let cipher = derive(passphrase, &salt, params)?;
        let check = cipher.encrypt(CHECK_PLAINTEXT);
        let record = format!(
            "v1:argon2id:m={},t={},p={}:{}:{check}",
            params.memory_kib,
            params.iterations,
            params.parallelism,
            B64.encode(salt)
        );
        Ok((cipher, record))
    }

    /// Opens a stack's provider from its salt record; a wrong passphrase is detected.
    pub fn open(passphrase: &str, record: &str, stack: &str, file: &str) -> Result<Cipher, SecretsError> {
        let malformed =
            || SecretsError::Malformed(format!("the encryption salt in {file} is not a Stackwright salt record"));
        let parts: Vec<&str> = record.splitn(5, ':').collect();
        let [version, algorithm, params, salt, check] = parts[..] else { return Err(malformed()) };
        if version != "v1" || algorithm != "argon2id" {
            return Err(malformed());
        }
        let mut kdf = KdfParams::default();
        for kv in params.split(',') {
            let (k, v) = kv.split_once('=').ok_or_else(malformed)?;
            let v: u32 = v.parse().map_err(|_| malformed())?;
            match k {
                "m" => kdf.memory_kib = v,
                "t" => kdf.iterations = v,
                "p" => kdf.parallelism = v,
                _ => return Err(malformed()),
            }
        }
        let salt = B64.decode(salt).map_err(|_| malformed())?;
        let cipher = derive(passphrase, &salt, kdf)?;
        match cipher.decrypt(check) {
            Ok(p) if p == CHECK_PLAINTEXT => Ok(cipher),
            _ => Err(SecretsError::WrongPassphrase { stack: stack.to_owned(), file: file.to_owned() }),
        }
    }

    /// Encrypts bytes to `v1:<base64 of nonce and ciphertext>`.
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let nonce: [u8; 12] = rand::random();
        let mut out = nonce.to_vec();
        out.extend(self.aead.encrypt(Nonce::from_slice(&nonce), plaintext).expect("encryption does not fail"));
        format!("v1:{}", B64.encode(out))
    }

    /// Decrypts what [`Cipher::encrypt`] produced.
    pub fn decrypt(&self, text: &str) -> Result<Vec<u8>, SecretsError> {
        let body =
            text.strip_prefix("v1:").ok_or_else(|| SecretsError::Malformed("unknown ciphertext version".into()))?;
        let bytes = B64.decode(body).map_err(|_| SecretsError::Tampered)?;
        if bytes.len() < 12 {
            return Err(SecretsError::Tampered);
        }
        let (nonce, ct) = bytes.split_at(12);
        self.aead.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| SecretsError::Tampered)
    }
}

fn ciphertext_of(v: &Value) -> Option<&str> {
    match v {
        Value::Object(map) if map.get(MARKER_KEY).and_then(Value::as_str) == Some("secret") => {
            map.get("ciphertext").and_then(Value::as_str)
        }
        _ => None,
    }
}

/// Replaces every secret's plain value by its ciphertext. Without a cipher, any secret is an
/// error: secrets are never written in plain text.
pub fn seal(value: &mut Value, cipher: Option<&Cipher>) -> Result<(), SecretsError> {
    if is_secret(value) && ciphertext_of(value).is_none() {
        let cipher = cipher.ok_or(SecretsError::NoProvider)?;
        let plain = value.get("value").cloned().unwrap_or(Value::Null);
        let text = serde_json::to_vec(&plain).expect("values serialize");
        *value = json!({ MARKER_KEY: "secret", "ciphertext": cipher.encrypt(&text) });
        return Ok(());
    }
    match value {
        Value::Array(items) => items.iter_mut().try_for_each(|v| seal(v, cipher)),
        Value::Object(map) => map.values_mut().try_for_each(|v| seal(v, cipher)),
        _ => Ok(()),
    }
}

/// Replaces every secret's ciphertext by its plain value (still marked secret).
pub fn unseal(value: &mut Value, cipher: Option<&Cipher>) -> Result<(), SecretsError> {
    if let Some(text) = ciphertext_of(value) {
        let cipher = cipher.ok_or(SecretsError::Locked)?;
        let plain: Value = serde_json::from_slice(&cipher.decrypt(text)?).map_err(|_| SecretsError::Tampered)?;
        *value = json!({ MARKER_KEY: "secret", "value": plain });
        return Ok(());
    }
    match value {
        Value::Array(items) => items.iter_mut().try_for_each(|v| unseal(v, cipher)),
        Value::Object(map) => map.values_mut().try_for_each(|v| unseal(v, cipher)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackwright_core::value::secret;

    pub(crate) fn fast() -> KdfParams {
        KdfParams::insecure_for_tests()
    }

    #[test]
    fn seals_and_unseals_and_detects_wrong_passphrases_and_tampering() {
        let (cipher, record) = Cipher::create("hunter2", fast()).unwrap();
        let original = json!({ "a": secret(json!({"pw": "canary-123"})), "b": [1, secret(json!(7))] });
        let mut v = original.clone();
        seal(&mut v, Some(&cipher)).unwrap();
        let text = v.to_string();
        assert!(!text.contains("canary-123") && text.contains("ciphertext"), "{text}");
        let reopened = Cipher::open("hunter2", &record, "dev", "Stackwright.dev.toml").unwrap();
        unseal(&mut v, Some(&reopened)).unwrap();
        assert_eq!(v, original);

        let err = Cipher::open("wrong", &record, "dev", "Stackwright.dev.toml").unwrap_err();
        assert!(matches!(err, SecretsError::WrongPassphrase { .. }));

        let mut sealed = original.clone();
        seal(&mut sealed, Some(&cipher)).unwrap();
        let ct = sealed["b"][1]["ciphertext"].as_str().unwrap().to_owned();
        let mut bytes = B64.decode(&ct[3..]).unwrap();
        bytes[20] ^= 1;
        sealed["b"][1]["ciphertext"] = json!(format!("v1:{}", B64.encode(bytes)));
        assert_eq!(unseal(&mut sealed.clone(), Some(&cipher)), Err(SecretsError::Tampered));
        assert_eq!(unseal(&mut sealed, None), Err(SecretsError::Locked));
        assert_eq!(seal(&mut original.clone(), None), Err(SecretsError::NoProvider));
    }
}
