//! `storage:Folder` — syncs a local directory (static assets, a built site) to a key prefix. The
//! arguments hold a map of relative path → SHA-256 of every file, computed when the program
//! declares the folder, so the plan lists exactly the files that are added, changed or removed.
//! An apply uploads new and changed files in parallel, then deletes removed ones.
//!
//! A folder manages the objects it uploaded. With `exclusive: true` it owns its whole prefix:
//! objects under it that did not come from the directory show as drift and are deleted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, ErrorKind, Handler, Input, Observed, OpContext, Outputs, PropertyChange,
    ProviderError, Resource, Stored,
};

use crate::Shared;
use crate::bucket::bucket_name_problem;
use crate::content::{guess_content_type, hash_dir};
use crate::object::key_problem;
use crate::store::{Body, ObjectMeta, PutObject};

/// The `storage:Folder` resource type.
pub struct Folder;

impl Resource for Folder {
    const TYPE: &'static str = "storage:Folder";
    type Args = FolderArgs;
    type Outputs = FolderOutputs;
}

/// Arguments of `storage:Folder`. Build them with [`FolderArgs::from_dir`], which hashes the
/// directory.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct FolderArgs {
    /// The bucket. A change replaces the folder (uploads to the new bucket, then deletes the
    /// old objects).
    #[sw(replace)]
    pub bucket: Input<String>,
    /// The key prefix, empty or ending with `/` (e.g. `assets/`). A change replaces the folder.
    #[sw(replace)]
    #[serde(default)]
    pub prefix: String,
    /// The local directory.
    pub source: String,
    /// Every file to sync: path relative to `source` (with `/`) → SHA-256.
    pub files: BTreeMap<String, String>,
    /// `Cache-Control` for every file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// Own the whole prefix: delete objects under it that are not in the directory.
    #[serde(default)]
    pub exclusive: bool,
}

impl FolderArgs {
    /// Syncs `dir` to the root of `bucket`; hashes every visible file now.
    pub fn from_dir(bucket: impl Into<Input<String>>, dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref();
        Ok(FolderArgs {
            bucket: bucket.into(),
            prefix: String::new(),
            source: dir.to_string_lossy().into_owned(),
            files: hash_dir(dir)?,
            cache_control: None,
            exclusive: false,
        })
    }

    /// Puts the files under `prefix` (a `/` is added if missing).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let mut p = prefix.into();
        if !p.is_empty() && !p.ends_with('/') {
            p.push('/');
        }
        self.prefix = p;
        self
    }

    /// Sets `Cache-Control` on every file.
    pub fn cache_control(mut self, value: impl Into<String>) -> Self {
        self.cache_control = Some(value.into());
        self
    }

    /// Makes the folder own its prefix (see [`FolderArgs::exclusive`]).
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }
}

/// Outputs of `storage:Folder`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct FolderOutputs {
    /// The bucket.
    pub bucket: String,
    /// The prefix.
    pub prefix: String,
    /// The URL of the prefix.
    pub url: String,
    /// Each uploaded file's ETag, by relative path.
    #[sw(computed)]
    pub etags: BTreeMap<String, String>,
    /// How many files are synced.
    #[sw(computed)]
    pub file_count: usize,
}

pub(crate) struct FolderHandler {
    pub(crate) shared: Arc<Shared>,
}

enum Work {
    Upload(String),
    Meta(String),
}

impl FolderHandler {
    fn outputs(&self, args: &FolderArgs, etags: BTreeMap<String, String>) -> FolderOutputs {
        let bucket = args.bucket.get().clone();
        let url = if args.prefix.is_empty() {
            self.shared.store.bucket_url(&bucket)
        } else {
            self.shared.store.object_url(&bucket, &args.prefix)
        };
        FolderOutputs { url, prefix: args.prefix.clone(), file_count: args.files.len(), bucket, etags }
    }

    fn meta(&self, args: &FolderArgs, rel: &str) -> ObjectMeta {
        ObjectMeta {
            content_type: Some(guess_content_type(rel).to_owned()),
            cache_control: args.cache_control.clone(),
            metadata: BTreeMap::new(),
        }
    }

    /// Uploads or re-describes files in parallel; returns the new ETags.
    async fn run(&self, args: &FolderArgs, work: Vec<Work>) -> Result<Vec<(String, String)>, ProviderError> {
        let bucket = args.bucket.get();
        let source = PathBuf::from(&args.source);
        let store = &self.shared.store;
        futures::stream::iter(work)
            .map(|w| {
                let source = &source;
                async move {
                    match w {
                        Work::Upload(rel) => {
                            let put = PutObject {
                                bucket: bucket.clone(),
                                key: format!("{}{rel}", args.prefix),
                                body: Body::File(source.join(&rel)),
                                sha256: args.files[&rel].clone(),
                                meta: self.meta(args, &rel),
                            };
                            let r = store.put_object(&put).await?;
                            Ok((rel, r.etag))
                        }
                        Work::Meta(rel) => {
                            let key = format!("{}{rel}", args.prefix);
                            let r = store
                                .update_object_meta(bucket, &key, &args.files[&rel], &self.meta(args, &rel))
                                .await?;
                            Ok((rel, r.etag))
                        }
                    }
                }
            })
            .buffer_unordered(self.shared.concurrency)
            .try_collect()
            .await
    }

    async fn remove(&self, args: &FolderArgs, rels: impl IntoIterator<Item = &String>) -> Result<(), ProviderError> {
        let keys: Vec<String> = rels
            .into_iter()
            .map(|r| format!("{}{r}", args.prefix))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        match self.shared.store.delete_objects(args.bucket.get(), &keys).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[async_trait]
impl Handler<Folder> for FolderHandler {
    fn check(&self, args: &FolderArgs) -> Vec<CheckFailure> {
        let mut out = Vec::new();
        if let Some(p) = bucket_name_problem(args.bucket.get()) {
            out.push(CheckFailure::at("bucket", p));
        }
        if !args.prefix.is_empty() && (!args.prefix.ends_with('/') || key_problem(&args.prefix).is_some()) {
            out.push(CheckFailure::at(
                "prefix",
                format!("prefix `{}` must be empty or a valid key ending with `/`", args.prefix),
            ));
        }
        for (rel, sha) in &args.files {
            if let Some(p) = key_problem(&format!("{}{rel}", args.prefix)) {
                out.push(CheckFailure::at("files", format!("file `{rel}`: {p}")));
            }
            if sha.len() != 64 {
                out.push(CheckFailure::at("files", format!("file `{rel}`: `{sha}` is not a SHA-256")));
            }
        }
        out
    }

    async fn create(&self, _ctx: &OpContext, args: &FolderArgs) -> Result<Created<FolderOutputs>, ProviderError> {
        let work = args.files.keys().cloned().map(Work::Upload).collect();
        match self.run(args, work).await {
            Ok(etags) => {
                let outputs = self.outputs(args, etags.into_iter().collect());
                Ok(Created { id: format!("{}/{}", args.bucket.get(), args.prefix), outputs })
            }
            Err(e) => {
                if !e.kind.is_retryable() {
                    // Nothing of this folder is recorded: remove what was uploaded.
                    if let Err(cleanup) = self.remove(args, args.files.keys()).await {
                        tracing::warn!("removing the files of a failed folder upload: {cleanup}");
                    }
                }
                Err(e)
            }
        }
    }

    async fn read(&self, _ctx: &OpContext, stored: &Stored<Folder>) -> Result<Option<Observed<Folder>>, ProviderError> {
        let base = &stored.args;
        let listing = match self.shared.store.list_objects(base.bucket.get(), &base.prefix).await {
            Ok(l) => l,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut files = BTreeMap::new();
        let mut etags = BTreeMap::new();
        for obj in listing {
            let Some(rel) = obj.key.strip_prefix(&base.prefix) else { continue };
            match (base.files.get(rel), stored.outputs.etags.get(rel)) {
                (Some(sha), Some(etag)) if *etag == obj.etag => {
                    files.insert(rel.to_owned(), sha.clone());
                }
                (Some(_), Some(_)) => {
                    files.insert(rel.to_owned(), format!("changed outside Stackwright (ETag {})", obj.etag));
                }
                _ if base.exclusive || base.files.contains_key(rel) => {
                    files.insert(rel.to_owned(), format!("not from the source folder (ETag {})", obj.etag));
                }
                _ => continue,
            }
            etags.insert(rel.to_owned(), obj.etag);
        }
        let args = FolderArgs { files, ..base.clone() };
        let mut outputs = self.outputs(&args, etags);
        outputs.file_count = args.files.len();
        Ok(Some(Observed { id: stored.id.clone(), args, outputs }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Folder>,
        args: &FolderArgs,
        _changes: &[PropertyChange],
    ) -> Result<FolderOutputs, ProviderError> {
        let old = &stored.args;
        let old_etags = &stored.outputs.etags;
        let meta_changed = old.cache_control != args.cache_control;
        let mut work = Vec::new();
        for (rel, sha) in &args.files {
            if old.files.get(rel) != Some(sha) || !old_etags.contains_key(rel) {
                work.push(Work::Upload(rel.clone()));
            } else if meta_changed {
                work.push(Work::Meta(rel.clone()));
            }
        }
        let changed = self.run(args, work).await?;
        let removed: Vec<&String> =
            old.files.keys().chain(old_etags.keys()).filter(|r| !args.files.contains_key(*r)).collect();
        self.remove(args, removed).await?;
        let mut etags: BTreeMap<String, String> = old_etags
            .iter()
            .filter(|(r, _)| args.files.contains_key(*r))
            .map(|(r, e)| (r.clone(), e.clone()))
            .collect();
        etags.extend(changed);
        Ok(self.outputs(args, etags))
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Folder>) -> Result<(), ProviderError> {
        let args = &stored.args;
        self.remove(args, args.files.keys().chain(stored.outputs.etags.keys())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_with_a_slash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        let args = FolderArgs::from_dir("b".to_owned(), dir.path()).unwrap().prefix("assets");
        assert_eq!(args.prefix, "assets/");
        assert_eq!(args.files.len(), 1);
        assert!(FolderArgs::from_dir("b".to_owned(), dir.path().join("missing")).is_err());
    }
}
