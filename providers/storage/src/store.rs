//! The storage operations the resources need, implemented by the S3 client and by local-directory
//! storage. Tests and programs can also use a store directly (to inspect a bucket, or to change
//! one "by hand" when testing drift).

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use stackwright_core::ProviderError;

use crate::bucket::{CorsRule, LifecycleRule, PublicAccessBlock};

/// The metadata key under which Stackwright stores an object's SHA-256 (hex), so that content
/// can be compared without downloading it. On S3 it is the `x-amz-meta-stackwright-sha256`
/// header.
pub const SHA256_METADATA_KEY: &str = "stackwright-sha256";

/// A bucket's versioning state as the service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Never versioned (no `<Status>`).
    Unversioned,
    /// Versioning is on.
    Enabled,
    /// Versioning was on and is suspended (a bucket can never go back to unversioned).
    Suspended,
}

impl Versioning {
    /// Whether new writes keep old versions.
    pub fn is_enabled(self) -> bool {
        self == Versioning::Enabled
    }
}

/// Where an object's content comes from when uploading.
#[derive(Debug, Clone)]
pub enum Body {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A local file, streamed (multipart above the threshold).
    File(PathBuf),
}

/// The settable properties of an object besides its content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// User metadata (`x-amz-meta-*`), without Stackwright's own keys.
    pub metadata: BTreeMap<String, String>,
}

/// An upload.
#[derive(Debug, Clone)]
pub struct PutObject {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The content.
    pub body: Body,
    /// The content's SHA-256 (lowercase hex) as the program declared it. The upload fails if
    /// the content read does not match, and the server is sent checksums to verify.
    pub sha256: String,
    /// Content type, cache control and metadata.
    pub meta: ObjectMeta,
}

/// What an upload returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The ETag, without quotes.
    pub etag: String,
    /// The version id, on a versioned bucket.
    pub version_id: Option<String>,
}

/// An object's properties, read without downloading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// The ETag, without quotes.
    pub etag: String,
    /// The SHA-256 Stackwright stored with it, if any.
    pub sha256: Option<String>,
    /// Content type, cache control and user metadata.
    pub meta: ObjectMeta,
    /// The current version id, on a versioned bucket.
    pub version_id: Option<String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag, without quotes.
    pub etag: String,
}

/// Operations on buckets and objects, over S3 or a local directory.
///
/// Every `put_*` of a bucket sub-configuration replaces it whole; an empty value (no rules, no
/// tags, `None`) removes it.
#[async_trait]
pub trait Store: Send + Sync {
    /// A description for messages, e.g. `S3 (Ceph RGW / generic S3) at http://127.0.0.1:7480`.
    fn describe(&self) -> String;
    /// The URL of a bucket.
    fn bucket_url(&self, bucket: &str) -> String;
    /// The URL of an object.
    fn object_url(&self, bucket: &str, key: &str) -> String;

    /// Whether the bucket exists (and is ours): `Ok(true)`; absent: `Ok(false)`.
    async fn bucket_exists(&self, bucket: &str) -> Result<bool, ProviderError>;
    /// Creates a bucket in `region` (the endpoint's default when `None`).
    async fn create_bucket(&self, bucket: &str, region: Option<&str>) -> Result<(), ProviderError>;
    /// Deletes an empty bucket; a non-empty one is a `Conflict`.
    async fn delete_bucket(&self, bucket: &str) -> Result<(), ProviderError>;
    /// Deletes every object version, delete marker and unfinished multipart upload. Returns how
    /// many objects and versions were deleted.
    async fn empty_bucket(&self, bucket: &str) -> Result<usize, ProviderError>;

    /// The versioning state.
    async fn get_versioning(&self, bucket: &str) -> Result<Versioning, ProviderError>;
    /// Enables versioning, or suspends it.
    async fn put_versioning(&self, bucket: &str, enabled: bool) -> Result<(), ProviderError>;
    /// CORS rules, in the service's order (empty when none).
    async fn get_cors(&self, bucket: &str) -> Result<Vec<CorsRule>, ProviderError>;
    /// Replaces the CORS rules (removes them when empty).
    async fn put_cors(&self, bucket: &str, rules: &[CorsRule]) -> Result<(), ProviderError>;
    /// Lifecycle rules (empty when none).
    async fn get_lifecycle(&self, bucket: &str) -> Result<Vec<LifecycleRule>, ProviderError>;
    /// Replaces the lifecycle rules (removes them when empty).
    async fn put_lifecycle(&self, bucket: &str, rules: &[LifecycleRule]) -> Result<(), ProviderError>;
    /// The public access block, if one is set.
    async fn get_public_access_block(&self, bucket: &str) -> Result<Option<PublicAccessBlock>, ProviderError>;
    /// Sets (or with `None`, removes) the public access block.
    async fn put_public_access_block(
        &self,
        bucket: &str,
        block: Option<&PublicAccessBlock>,
    ) -> Result<(), ProviderError>;
    /// Bucket tags (empty when none).
    async fn get_tags(&self, bucket: &str) -> Result<BTreeMap<String, String>, ProviderError>;
    /// Replaces the bucket tags (removes them when empty).
    async fn put_tags(&self, bucket: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError>;

    /// Uploads an object, verifying its SHA-256.
    async fn put_object(&self, put: &PutObject) -> Result<PutResult, ProviderError>;
    /// Replaces an object's content type, cache control and metadata without re-uploading it
    /// (a copy onto itself); `sha256` is kept as Stackwright's stored hash.
    async fn update_object_meta(
        &self,
        bucket: &str,
        key: &str,
        sha256: &str,
        meta: &ObjectMeta,
    ) -> Result<PutResult, ProviderError>;
    /// An object's properties, or `None` if it (or its bucket) does not exist.
    async fn head_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, ProviderError>;
    /// Downloads an object whole (meant for small objects and tests).
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Bytes>, ProviderError>;
    /// Deletes an object (succeeds if it is absent).
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), ProviderError>;
    /// Deletes many objects (succeeds for absent ones).
    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<(), ProviderError>;
    /// Every object whose key starts with `prefix`, in key order. A missing bucket is
    /// `NotFound`.
    async fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, ProviderError>;
}
