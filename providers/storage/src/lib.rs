//! Object storage for Stackwright: S3-compatible buckets, objects and folders on AWS S3,
//! Cloudflare R2, MinIO, Railway Buckets or Ceph RGW, and the same resources on a local
//! directory for dev stacks.
//!
//! ```no_run
//! use stackwright_storage::{Bucket, BucketArgs, CorsRule, S3Config, ServiceProfile, StorageConfig};
//!
//! # fn program(stack: &mut stackwright::Stack) -> anyhow::Result<()> {
//! let storage = if stack.name() == "dev" {
//!     StorageConfig::local(".storage")
//! } else {
//!     StorageConfig::s3(S3Config::from_env(ServiceProfile::R2))
//! };
//! stack.provider(storage.provider()?);
//! let uploads = stack.resource::<Bucket>("uploads", BucketArgs {
//!     cors: vec![CorsRule::new(["https://app.example.com"], ["GET", "PUT"])].into(),
//!     ..BucketArgs::new(format!("acme-uploads-{}", stack.name()))
//! });
//! # let _ = uploads;
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`config`] and [`profile`] (provider configuration, service profiles), [`client`]
//! (the SigV4-signing S3 client), [`local`] (local-directory storage), [`store`] (the operations
//! both implement), [`error`] (S3 errors → provider errors), one module per resource
//! ([`bucket`], [`object`], [`folder`]), [`content`] (hashing) and [`xml`].

pub mod bucket;
pub mod client;
pub mod config;
pub mod content;
pub mod error;
pub mod folder;
pub mod local;
pub mod object;
pub mod profile;
pub mod store;
pub mod xml;

use std::sync::Arc;

pub use bucket::{Bucket, BucketArgs, BucketOutputs, CorsRule, LifecycleRule, PublicAccessBlock};
pub use config::{Addressing, Backend, ConfigError, Credentials, S3Config, Secret, StorageConfig};
pub use content::ObjectSource;
pub use folder::{Folder, FolderArgs, FolderOutputs};
pub use object::{Object, ObjectArgs, ObjectOutputs};
pub use profile::{Feature, ServiceProfile};
pub use store::Store;

/// What every handler of one provider shares.
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub profile: ServiceProfile,
    pub default_region: String,
    /// Virtual-hosted addressing over TLS, where dotted bucket names fail.
    pub virtual_hosted_tls: bool,
    /// Uploads at once within one folder.
    pub concurrency: usize,
}

/// Builds the provider for `config`: `storage:Bucket`, `storage:Object` and `storage:Folder`.
pub fn provider(config: &StorageConfig) -> Result<stackwright_core::Provider, ConfigError> {
    let store = config.store()?;
    let (default_region, virtual_hosted_tls, concurrency) = match &config.backend {
        Backend::S3(c) => (
            c.region.clone(),
            c.addressing == Addressing::VirtualHosted && c.endpoint.starts_with("https://"),
            c.upload_concurrency,
        ),
        Backend::Local { .. } => ("local".to_owned(), false, 8),
    };
    let shared = Arc::new(Shared { store, profile: config.profile(), default_region, virtual_hosted_tls, concurrency });
    Ok(stackwright_core::Provider::new(config.name.clone())
        .resource::<Bucket>(bucket::BucketHandler::new(shared.clone()))
        .resource::<Object>(object::ObjectHandler { shared: shared.clone() })
        .resource::<Folder>(folder::FolderHandler { shared })
        .max_concurrency(config.max_concurrency))
}
