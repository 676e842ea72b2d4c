//! Provider configuration: where objects live (an S3-compatible endpoint or a local directory),
//! credentials (secret; from the configuration or the standard AWS environment variables),
//! addressing style, service profile and upload tuning.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::profile::ServiceProfile;

/// A secret string: shown as `[secret]` by `Debug` and never put into an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret's value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// How bucket names go into URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Addressing {
    /// `https://host/bucket/key`: needed by MinIO, Ceph and IP-address endpoints.
    #[default]
    Path,
    /// `https://bucket.host/key`: AWS's default; bucket names with dots break TLS.
    VirtualHosted,
}

/// Access keys for an S3-compatible service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (not secret; it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// A session token for temporary credentials.
    pub session_token: Option<Secret>,
}

impl Credentials {
    /// Static credentials.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<Secret>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Option<Self> {
        let id = non_empty_env("AWS_ACCESS_KEY_ID")?;
        let secret = non_empty_env("AWS_SECRET_ACCESS_KEY")?;
        Some(Credentials {
            access_key_id: id,
            secret_access_key: Secret(secret),
            session_token: non_empty_env("AWS_SESSION_TOKEN").map(Secret),
        })
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Configuration of an S3-compatible endpoint.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The endpoint, e.g. `https://s3.eu-west-1.amazonaws.com`, `https://<account>.r2.cloudflarestorage.com`
    /// or `http://127.0.0.1:7480`.
    pub endpoint: String,
    /// The signing region (`us-east-1`, `auto` for R2); also the default bucket region.
    pub region: String,
    /// Access keys; `None` means "take them from the AWS environment variables".
    pub credentials: Option<Credentials>,
    /// Path-style or virtual-hosted addressing.
    pub addressing: Addressing,
    /// Which service this is, and so which sub-features exist.
    pub profile: ServiceProfile,
    /// Files larger than this are uploaded with multipart upload.
    pub multipart_threshold: u64,
    /// The size of each part of a multipart upload (at least 5 MiB).
    pub part_size: u64,
    /// How many parts of one object, or files of one folder, upload at once.
    pub upload_concurrency: usize,
}

impl S3Config {
    /// An endpoint with the profile's defaults: path-style, 16 MiB multipart threshold, 8 MiB
    /// parts, 4 concurrent uploads; credentials from the AWS environment variables until
    /// [`S3Config::credentials`] sets them.
    pub fn new(endpoint: impl Into<String>, profile: ServiceProfile) -> Self {
        S3Config {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            region: profile.default_region().to_owned(),
            credentials: None,
            addressing: match profile {
                ServiceProfile::Aws | ServiceProfile::Railway => Addressing::VirtualHosted,
                _ => Addressing::Path,
            },
            profile,
            multipart_threshold: 16 * MIB,
            part_size: 8 * MIB,
            upload_concurrency: 4,
        }
    }

    /// Configuration from the standard AWS environment variables: `AWS_ENDPOINT_URL_S3` (or
    /// `AWS_ENDPOINT_URL`; AWS's regional endpoint otherwise), `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub fn from_env(profile: ServiceProfile) -> Self {
        let region = non_empty_env("AWS_REGION")
            .or_else(|| non_empty_env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| profile.default_region().to_owned());
        let endpoint = non_empty_env("AWS_ENDPOINT_URL_S3")
            .or_else(|| non_empty_env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let mut c = S3Config::new(endpoint, profile).region(region);
        c.credentials = Credentials::from_env();
        c
    }

    /// Sets the signing region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Sets static credentials.
    pub fn credentials(mut self, access_key_id: impl Into<String>, secret_access_key: impl Into<Secret>) -> Self {
        self.credentials = Some(Credentials::new(access_key_id, secret_access_key));
        self
    }

    /// Uses path-style addressing (`host/bucket/key`).
    pub fn path_style(mut self) -> Self {
        self.addressing = Addressing::Path;
        self
    }

    /// Uses virtual-hosted addressing (`bucket.host/key`).
    pub fn virtual_hosted(mut self) -> Self {
        self.addressing = Addressing::VirtualHosted;
        self
    }

    /// Sets the multipart threshold and part size (the part size is raised to 5 MiB, S3's
    /// minimum).
    pub fn multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(5 * MIB);
        self
    }

    /// Sets how many uploads run at once (parts of an object, files of a folder).
    pub fn upload_concurrency(mut self, n: usize) -> Self {
        self.upload_concurrency = n.max(1);
        self
    }

    /// The credentials to use: the configured ones, else the AWS environment variables.
    pub fn resolved_credentials(&self) -> Result<Credentials, ConfigError> {
        self.credentials
            .clone()
            .or_else(Credentials::from_env)
            .ok_or(ConfigError::MissingCredentials { endpoint: self.endpoint.clone() })
    }
}

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// Where a storage provider keeps buckets.
#[derive(Debug, Clone)]
pub enum Backend {
    /// An S3-compatible service.
    S3(S3Config),
    /// A local directory: one folder per bucket, objects as files (for dev stacks).
    Local {
        /// The root directory.
        root: PathBuf,
        /// The service whose limits to emulate (`Local` supports everything).
        profile: ServiceProfile,
    },
}

/// The storage provider's configuration. Switch a stack between an S3 service and a local
/// directory by building a different `StorageConfig`; the program's resources stay the same.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The provider's name in the stack (default `storage`).
    pub name: String,
    /// Where buckets live.
    pub backend: Backend,
    /// At most this many provider calls at once.
    pub max_concurrency: usize,
}

impl StorageConfig {
    /// Storage on an S3-compatible service.
    pub fn s3(config: S3Config) -> Self {
        StorageConfig { name: "storage".into(), backend: Backend::S3(config), max_concurrency: 16 }
    }

    /// Storage in a local directory (created when needed).
    pub fn local(root: impl Into<PathBuf>) -> Self {
        StorageConfig {
            name: "storage".into(),
            backend: Backend::Local { root: root.into(), profile: ServiceProfile::Local },
            max_concurrency: 16,
        }
    }

    /// Configuration from a URL-like string, for choosing the backend per stack from config or
    /// the environment: `local:./.storage` or `s3:<profile>` (e.g. `s3:r2`) with the endpoint,
    /// region and keys from the AWS environment variables.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        if let Some(dir) = spec.strip_prefix("local:") {
            return Ok(StorageConfig::local(dir));
        }
        if let Some(profile) = spec.strip_prefix("s3:") {
            let profile =
                profile.parse().map_err(|e: crate::profile::UnknownProfile| ConfigError::Invalid(e.to_string()))?;
            return Ok(StorageConfig::s3(S3Config::from_env(profile)));
        }
        Err(ConfigError::Invalid(format!(
            "storage backend `{spec}` is not understood; write `local:DIR` or `s3:PROFILE` (aws, r2, minio, railway, ceph-generic)"
        )))
    }

    /// Names the provider (for stacks with more than one storage provider).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Emulates a service's limits on local storage (no effect on S3, whose profile is in
    /// [`S3Config`]).
    pub fn emulating(mut self, profile: ServiceProfile) -> Self {
        if let Backend::Local { profile: p, .. } = &mut self.backend {
            *p = profile;
        }
        self
    }

    /// The service profile in force.
    pub fn profile(&self) -> ServiceProfile {
        match &self.backend {
            Backend::S3(c) => c.profile,
            Backend::Local { profile, .. } => *profile,
        }
    }

    /// The store these settings describe, for reading or changing buckets directly.
    pub fn store(&self) -> Result<Arc<dyn crate::store::Store>, ConfigError> {
        Ok(match &self.backend {
            Backend::S3(c) => Arc::new(crate::client::S3Client::new(c.clone())?),
            Backend::Local { root, .. } => Arc::new(crate::local::LocalStore::new(root.clone())),
        })
    }

    /// The provider to register with a stack.
    pub fn provider(&self) -> Result<stackwright_core::Provider, ConfigError> {
        crate::provider(self)
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No keys in the configuration nor in the environment.
    #[error(
        "no S3 credentials for {endpoint}: set them in the storage provider's configuration (S3Config::credentials) or in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    MissingCredentials {
        /// The endpoint that needs them.
        endpoint: String,
    },
    /// Anything else.
    #[error("storage configuration: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = S3Config::new("http://h:1", ServiceProfile::CephGeneric).credentials("AKID", "very-secret");
        let text = format!("{c:?}");
        assert!(!text.contains("very-secret") && text.contains("AKID") && text.contains("[secret]"), "{text}");
    }

    #[test]
    fn specs_choose_the_backend() {
        assert!(matches!(StorageConfig::parse("local:/tmp/x").unwrap().backend, Backend::Local { .. }));
        let e = StorageConfig::parse("ftp:x").unwrap_err().to_string();
        assert!(e.contains("local:DIR"), "{e}");
        let e = StorageConfig::parse("s3:gcs").unwrap_err().to_string();
        assert!(e.contains("unknown storage service profile `gcs`"), "{e}");
    }

    #[test]
    fn profiles_pick_addressing_and_region() {
        assert_eq!(S3Config::new("https://x", ServiceProfile::R2).region, "auto");
        assert_eq!(S3Config::new("https://x", ServiceProfile::Aws).addressing, Addressing::VirtualHosted);
        assert_eq!(S3Config::new("https://x/", ServiceProfile::Minio).endpoint, "https://x");
    }
}
