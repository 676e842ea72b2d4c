//! `storage:Object` — one object with content from a file or inline text, a content type, cache
//! control and metadata. The content's SHA-256 is part of the arguments (computed when the
//! program declares the source) and stored with the object as metadata, so a content change
//! shows in the plan and drift is found with a `HEAD`, without downloading. A metadata-only
//! change is applied with a server-side copy, without re-uploading.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError,
    Resource, Stored,
};

use crate::Shared;
use crate::bucket::bucket_name_problem;
use crate::content::{ObjectSource, guess_content_type};
use crate::store::{Body, ObjectHead, ObjectMeta, PutObject};

/// The `storage:Object` resource type.
pub struct Object;

impl Resource for Object {
    const TYPE: &'static str = "storage:Object";
    type Args = ObjectArgs;
    type Outputs = ObjectOutputs;
}

/// Arguments of `storage:Object`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct ObjectArgs {
    /// The bucket (usually `bucket.name` of a `storage:Bucket`). A change replaces the object.
    #[sw(replace)]
    pub bucket: Input<String>,
    /// The key. A change replaces the object.
    #[sw(replace)]
    pub key: Input<String>,
    /// The content: [`ObjectSource::file`] or [`ObjectSource::inline`], with its SHA-256.
    pub source: Input<ObjectSource>,
    /// `Content-Type` (guessed from the key's extension when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Input<String>>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Input<String>>,
    /// User metadata (`x-amz-meta-*`); keys are lowercase.
    #[serde(default)]
    pub metadata: Input<BTreeMap<String, String>>,
}

impl ObjectArgs {
    /// An object at `bucket`/`key` with content from `source`.
    pub fn new(
        bucket: impl Into<Input<String>>,
        key: impl Into<Input<String>>,
        source: impl Into<Input<ObjectSource>>,
    ) -> Self {
        ObjectArgs { bucket: bucket.into(), key: key.into(), source: source.into(), ..ObjectArgs::default() }
    }
}

/// Outputs of `storage:Object`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct ObjectOutputs {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The object's URL.
    pub url: String,
    /// The content's SHA-256 as stored with the object.
    #[sw(computed)]
    pub sha256: String,
    /// Size in bytes.
    #[sw(computed)]
    pub size: u64,
    /// The ETag the service returned.
    #[sw(computed)]
    pub etag: String,
    /// The version id, on a versioned bucket.
    #[sw(computed)]
    pub version_id: Option<String>,
}

/// Largest object a server-side copy can rewrite; larger ones are uploaded again.
const COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// Why an object key is not usable, if it is not.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > 1024 {
        return Some(format!("object key `{key}` must be 1 to 1024 bytes long"));
    }
    if key.starts_with('/') {
        return Some(format!("object key `{key}` must not start with `/`"));
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Some(format!("object key `{key}` must not contain `.` or `..` segments (URLs would rewrite them)"));
    }
    if key.chars().any(char::is_control) {
        return Some(format!("object key {key:?} must not contain control characters"));
    }
    None
}

/// Checks user metadata: lowercase keys that are valid header names, printable ASCII values.
pub(crate) fn check_metadata(field: &str, metadata: &BTreeMap<String, String>, out: &mut Vec<CheckFailure>) {
    let mut total = 0;
    for (k, v) in metadata {
        total += k.len() + v.len();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
            out.push(CheckFailure::at(
                field,
                format!(
                    "metadata key `{k}` must use lowercase letters, digits, `-` and `_` (S3 lowercases header names)"
                ),
            ));
        }
        if k.starts_with("stackwright-") {
            out.push(CheckFailure::at(field, format!("metadata key `{k}`: the `stackwright-` prefix is reserved")));
        }
        if !v.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            out.push(CheckFailure::at(field, format!("metadata `{k}` must be printable ASCII")));
        }
    }
    if total > 2048 {
        out.push(CheckFailure::at(field, format!("metadata takes {total} bytes; S3 allows 2 KB")));
    }
}

fn sha_problem(sha: &str) -> bool {
    sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

pub(crate) struct ObjectHandler {
    pub(crate) shared: Arc<Shared>,
}

fn meta_of(args: &ObjectArgs) -> ObjectMeta {
    let key = args.key.get();
    ObjectMeta {
        content_type: Some(
            args.content_type.as_ref().map(|c| c.get().clone()).unwrap_or_else(|| guess_content_type(key).to_owned()),
        ),
        cache_control: args.cache_control.as_ref().map(|c| c.get().clone()),
        metadata: args.metadata.get().clone(),
    }
}

fn body_of(source: &ObjectSource) -> Body {
    match source {
        ObjectSource::File { path, .. } => Body::File(path.into()),
        ObjectSource::Inline { text, .. } => Body::Bytes(Bytes::from(text.clone())),
    }
}

impl ObjectHandler {
    fn outputs(&self, args: &ObjectArgs, etag: String, version_id: Option<String>) -> ObjectOutputs {
        let (bucket, key) = (args.bucket.get().clone(), args.key.get().clone());
        ObjectOutputs {
            url: self.shared.store.object_url(&bucket, &key),
            sha256: args.source.get().sha256().to_owned(),
            size: args.source.get().size(),
            bucket,
            key,
            etag,
            version_id,
        }
    }

    async fn upload(&self, args: &ObjectArgs) -> Result<ObjectOutputs, ProviderError> {
        let source = args.source.get();
        let put = PutObject {
            bucket: args.bucket.get().clone(),
            key: args.key.get().clone(),
            body: body_of(source),
            sha256: source.sha256().to_owned(),
            meta: meta_of(args),
        };
        let r = self.shared.store.put_object(&put).await?;
        Ok(self.outputs(args, r.etag, r.version_id))
    }

    /// The object as it is, in the form of `base` (the stored arguments).
    fn observed(&self, base: &ObjectArgs, stored_etag: Option<&str>, head: ObjectHead) -> Observed<Object> {
        let mut args = base.clone();
        let source = base.source.get();
        let same_content =
            head.sha256.as_deref() == Some(source.sha256()) && stored_etag.is_none_or(|e| e == head.etag);
        if !same_content {
            let note = match &head.sha256 {
                Some(sha) if stored_etag.is_none_or(|e| e == head.etag) => sha.clone(),
                _ => format!("changed outside Stackwright (ETag {})", head.etag),
            };
            args.source = Input::Value(source.with_sha256(note));
        }
        let key = base.key.get();
        args.content_type = match (&base.content_type, head.meta.content_type) {
            (None, Some(ct)) if ct == guess_content_type(key) => None,
            (_, ct) => ct.map(Input::Value),
        };
        args.cache_control = head.meta.cache_control.map(Input::Value);
        args.metadata = Input::Value(head.meta.metadata);
        let (bucket, key) = (base.bucket.get().clone(), key.clone());
        let outputs = ObjectOutputs {
            url: self.shared.store.object_url(&bucket, &key),
            sha256: head.sha256.unwrap_or_default(),
            size: head.size,
            etag: head.etag,
            version_id: head.version_id,
            bucket: bucket.clone(),
            key: key.clone(),
        };
        Observed { id: format!("{bucket}/{key}"), args, outputs }
    }
}

#[async_trait]
impl Handler<Object> for ObjectHandler {
    fn check(&self, args: &ObjectArgs) -> Vec<CheckFailure> {
        let mut out = Vec::new();
        if let Some(p) = bucket_name_problem(args.bucket.get()) {
            out.push(CheckFailure::at("bucket", p));
        }
        if let Some(p) = key_problem(args.key.get()) {
            out.push(CheckFailure::at("key", p));
        }
        if sha_problem(args.source.get().sha256()) {
            out.push(CheckFailure::at(
                "source",
                "the source's sha256 must be 64 lowercase hex digits; build it with ObjectSource::file or ObjectSource::inline",
            ));
        }
        check_metadata("metadata", args.metadata.get(), &mut out);
        out
    }

    async fn create(&self, _ctx: &OpContext, args: &ObjectArgs) -> Result<Created<ObjectOutputs>, ProviderError> {
        let outputs = self.upload(args).await?;
        Ok(Created { id: format!("{}/{}", outputs.bucket, outputs.key), outputs })
    }

    async fn read(&self, _ctx: &OpContext, stored: &Stored<Object>) -> Result<Option<Observed<Object>>, ProviderError> {
        let head = self.shared.store.head_object(stored.args.bucket.get(), stored.args.key.get()).await?;
        Ok(head.map(|h| {
            let mut o = self.observed(&stored.args, Some(&stored.outputs.etag), h);
            o.id = stored.id.clone();
            o
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Object>,
        args: &ObjectArgs,
        _changes: &[PropertyChange],
    ) -> Result<ObjectOutputs, ProviderError> {
        let content_changed = stored.args.source.get().sha256() != args.source.get().sha256();
        let meta_changed = meta_of(&stored.args) != meta_of(args);
        if content_changed || (meta_changed && stored.outputs.size > COPY_LIMIT) {
            return self.upload(args).await;
        }
        if meta_changed {
            let r = self
                .shared
                .store
                .update_object_meta(args.bucket.get(), args.key.get(), args.source.get().sha256(), &meta_of(args))
                .await?;
            return Ok(self.outputs(args, r.etag, r.version_id));
        }
        Ok(self.outputs(args, stored.outputs.etag.clone(), stored.outputs.version_id.clone()))
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Object>) -> Result<(), ProviderError> {
        self.shared.store.delete_object(stored.args.bucket.get(), stored.args.key.get()).await
    }

    async fn find(&self, _ctx: &OpContext, args: &ObjectArgs) -> Result<Found<ObjectOutputs>, ProviderError> {
        let found: Result<Option<Created<ObjectOutputs>>, ProviderError> = async {
            let head = self.shared.store.head_object(args.bucket.get(), args.key.get()).await?;
            Ok(head.filter(|h| h.sha256.as_deref() == Some(args.source.get().sha256())).map(|h| {
                let outputs = self.outputs(args, h.etag, h.version_id);
                Created { id: format!("{}/{}", outputs.bucket, outputs.key), outputs }
            }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Object>>, ProviderError> {
        let (bucket, key) = id
            .split_once('/')
            .ok_or_else(|| ProviderError::invalid_input(format!("object id `{id}` must be `bucket/key`")))?;
        let Some(head) = self.shared.store.head_object(bucket, key).await? else {
            return Ok(None);
        };
        let sha = head.sha256.clone().unwrap_or_else(|| format!("unknown (ETag {})", head.etag));
        let base = ObjectArgs::new(
            bucket.to_owned(),
            key.to_owned(),
            ObjectSource::Inline { text: String::new(), sha256: sha },
        );
        Ok(Some(self.observed(&base, None, head)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_metadata_are_checked() {
        assert_eq!(key_problem("media/a b.mp3"), None);
        for bad in ["", "/a", "a/../b", "./a", "a\nb"] {
            assert!(key_problem(bad).is_some(), "{bad:?}");
        }
        let mut out = Vec::new();
        let md = BTreeMap::from([("Owner".to_owned(), "x".to_owned()), ("stackwright-x".to_owned(), "é".to_owned())]);
        check_metadata("metadata", &md, &mut out);
        assert_eq!(out.len(), 3, "{out:?}");
    }
}
