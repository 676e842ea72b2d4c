//! Local-directory storage for dev stacks and the quickstart: the same `Bucket`, `Object` and
//! `Folder` resources, kept on disk.
//!
//! Layout under the root: `<bucket>/<key>` holds each object's bytes (so a dev server can serve
//! a bucket's folder as is), and `.stackwright/<bucket>/bucket.json` and
//! `.stackwright/<bucket>/meta/<key>.json` hold the bucket's configuration and each object's
//! metadata. Writes go to a temporary file and are renamed into place. Sub-configurations
//! (CORS, lifecycle, …) are stored and read back but not enforced; versioning is recorded but
//! only the current version of an object is kept.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stackwright_core::ProviderError;

use crate::bucket::{CorsRule, LifecycleRule, PublicAccessBlock};
use crate::store::{Body, ObjectHead, ObjectInfo, ObjectMeta, PutObject, PutResult, Store, Versioning};

const META_DIR: &str = ".stackwright";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BucketFile {
    region: Option<String>,
    versioning: Option<bool>,
    #[serde(default)]
    cors: Vec<CorsRule>,
    #[serde(default)]
    lifecycle: Vec<LifecycleRule>,
    #[serde(default)]
    public_access_block: Option<PublicAccessBlock>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MetaFile {
    size: u64,
    etag: String,
    sha256: Option<String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Storage in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Serialises read-modify-write of `bucket.json`.
    lock: Arc<tokio::sync::Mutex<()>>,
}

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> ProviderError {
    ProviderError::other(format!("local storage: {what}: {e}"))
}

fn no_bucket(bucket: &str) -> ProviderError {
    ProviderError::not_found(format!("local storage: bucket `{bucket}` does not exist"))
}

/// Checks that a key maps to a path inside the bucket's folder.
fn key_path(key: &str) -> Result<PathBuf, ProviderError> {
    let p = Path::new(key);
    let ok = !key.is_empty()
        && !key.ends_with('/')
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !key.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if ok {
        Ok(p.to_owned())
    } else {
        Err(ProviderError::invalid_input(format!("local storage cannot hold key `{key}`")))
    }
}

fn write_atomically(tmp_dir: &Path, target: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(tmp_dir)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = tmp_dir.join(format!("{:016x}.tmp", rand_u64()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, target)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ProviderError::other(format!("local storage task: {e}")))?
}

impl LocalStore {
    /// Storage rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into(), lock: Arc::default() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }
    fn bucket_meta_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(META_DIR).join(bucket)
    }
    fn bucket_file(&self, bucket: &str) -> PathBuf {
        self.bucket_meta_dir(bucket).join("bucket.json")
    }
    fn tmp_dir(&self) -> PathBuf {
        self.root.join(META_DIR).join("tmp")
    }
    fn meta_file(&self, bucket: &str, key: &Path) -> PathBuf {
        let mut p = self.bucket_meta_dir(bucket).join("meta").join(key);
        let name = format!("{}.json", p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        p.set_file_name(name);
        p
    }

    fn read_bucket(&self, bucket: &str) -> Result<BucketFile, ProviderError> {
        match std::fs::read(self.bucket_file(bucket)) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| ProviderError::other(format!("local storage: bucket `{bucket}` settings: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_bucket(bucket)),
            Err(e) => Err(io_err(format!("bucket `{bucket}`"), e)),
        }
    }

    async fn modify_bucket(&self, bucket: &str, f: impl FnOnce(&mut BucketFile)) -> Result<(), ProviderError> {
        let _guard = self.lock.lock().await;
        let mut b = self.read_bucket(bucket)?;
        f(&mut b);
        let data = serde_json::to_vec_pretty(&b).expect("bucket settings serialize");
        write_atomically(&self.tmp_dir(), &self.bucket_file(bucket), &data)
            .map_err(|e| io_err("writing bucket settings", e))
    }

    fn read_meta(&self, bucket: &str, key: &Path) -> Option<MetaFile> {
        std::fs::read(self.meta_file(bucket, key)).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    fn files_under(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel_name = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if e.file_type()?.is_dir() {
                Self::files_under(&e.path(), &rel_name, out)?;
            } else {
                out.push(rel_name);
            }
        }
        Ok(())
    }

    fn keys(&self, bucket: &str) -> Result<Vec<String>, ProviderError> {
        let mut keys = Vec::new();
        Self::files_under(&self.bucket_dir(bucket), "", &mut keys)
            .map_err(|e| io_err(format!("listing `{bucket}`"), e))?;
        keys.sort();
        Ok(keys)
    }

    fn info(&self, bucket: &str, key: &str) -> Result<Option<(MetaFile, u64)>, ProviderError> {
        let rel = key_path(key)?;
        let path = self.bucket_dir(bucket).join(&rel);
        let size = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("{bucket}/{key}"), e)),
        };
        let meta = match self.read_meta(bucket, &rel) {
            Some(m) if m.size == size => m,
            // Written by hand (or changed since): describe the bytes as they are.
            _ => {
                let data = std::fs::read(&path).map_err(|e| io_err(format!("{bucket}/{key}"), e))?;
                MetaFile {
                    size,
                    etag: hex::encode(Md5::digest(&data)),
                    sha256: None,
                    content_type: None,
                    cache_control: None,
                    metadata: BTreeMap::new(),
                }
            }
        };
        Ok(Some((meta, size)))
    }

    fn put_blocking(&self, put: &PutObject) -> Result<PutResult, ProviderError> {
        self.read_bucket(&put.bucket)?;
        let rel = key_path(&put.key)?;
        let target = self.bucket_dir(&put.bucket).join(&rel);
        let tmp_dir = self.tmp_dir();
        std::fs::create_dir_all(&tmp_dir).map_err(|e| io_err("creating temporary folder", e))?;
        let tmp = tmp_dir.join(format!("{:016x}.part", rand_u64()));
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        let mut size = 0u64;
        {
            let mut out = std::fs::File::create(&tmp).map_err(|e| io_err("creating temporary file", e))?;
            let mut write = |chunk: &[u8]| -> Result<(), ProviderError> {
                sha.update(chunk);
                md5.update(chunk);
                size += chunk.len() as u64;
                out.write_all(chunk).map_err(|e| io_err("writing temporary file", e))
            };
            match &put.body {
                Body::Bytes(b) => write(b)?,
                Body::File(path) => {
                    let mut f = std::fs::File::open(path)
                        .map_err(|e| ProviderError::invalid_input(format!("reading {}: {e}", path.display())))?;
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = f
                            .read(&mut buf)
                            .map_err(|e| ProviderError::invalid_input(format!("reading {}: {e}", path.display())))?;
                        if n == 0 {
                            break;
                        }
                        write(&buf[..n])?;
                    }
                }
            }
        }
        let actual = hex::encode(sha.finalize());
        if actual != put.sha256 {
            let _ = std::fs::remove_file(&tmp);
            return Err(ProviderError::invalid_input(format!(
                "content for {}/{} changed since the program hashed it (SHA-256 {actual}, expected {}); run again to upload the current content",
                put.bucket, put.key, put.sha256
            )));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                ProviderError::invalid_input(format!(
                    "local storage cannot hold key `{}` next to an object named like one of its folders: {e}",
                    put.key
                ))
            })?;
        }
        if target.is_dir() {
            let _ = std::fs::remove_file(&tmp);
            return Err(ProviderError::invalid_input(format!(
                "local storage cannot hold key `{}`: other keys use it as a folder",
                put.key
            )));
        }
        std::fs::rename(&tmp, &target).map_err(|e| io_err(format!("{}/{}", put.bucket, put.key), e))?;
        let etag = hex::encode(md5.finalize());
        self.write_meta(&put.bucket, &rel, &etag, size, &put.sha256, &put.meta)?;
        Ok(PutResult { etag, version_id: None })
    }

    fn write_meta(
        &self,
        bucket: &str,
        rel: &Path,
        etag: &str,
        size: u64,
        sha256: &str,
        meta: &ObjectMeta,
    ) -> Result<(), ProviderError> {
        let m = MetaFile {
            size,
            etag: etag.to_owned(),
            sha256: Some(sha256.to_owned()),
            content_type: meta.content_type.clone(),
            cache_control: meta.cache_control.clone(),
            metadata: meta.metadata.clone(),
        };
        write_atomically(
            &self.tmp_dir(),
            &self.meta_file(bucket, rel),
            &serde_json::to_vec(&m).expect("meta serializes"),
        )
        .map_err(|e| io_err("writing object metadata", e))
    }

    fn delete_blocking(&self, bucket: &str, key: &str) -> Result<(), ProviderError> {
        let rel = key_path(key)?;
        let path = self.bucket_dir(bucket).join(&rel);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("deleting {bucket}/{key}"), e)),
        }
        let _ = std::fs::remove_file(self.meta_file(bucket, &rel));
        // Remove folders the delete left empty, as S3 has no folders.
        let stop = self.bucket_dir(bucket);
        let mut dir = path.parent().map(Path::to_owned);
        while let Some(d) = dir {
            if d == stop || std::fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(Path::to_owned);
        }
        Ok(())
    }
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("local storage at {}", self.root.display())
    }

    fn bucket_url(&self, bucket: &str) -> String {
        format!("file://{}", self.bucket_dir(bucket).display())
    }

    fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("file://{}/{key}", self.bucket_dir(bucket).display())
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool, ProviderError> {
        Ok(self.bucket_file(bucket).is_file())
    }

    async fn create_bucket(&self, bucket: &str, region: Option<&str>) -> Result<(), ProviderError> {
        let _guard = self.lock.lock().await;
        if self.bucket_file(bucket).is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(self.bucket_dir(bucket))
            .map_err(|e| io_err(format!("creating bucket `{bucket}`"), e))?;
        let b = BucketFile { region: region.map(str::to_owned), ..BucketFile::default() };
        write_atomically(
            &self.tmp_dir(),
            &self.bucket_file(bucket),
            &serde_json::to_vec_pretty(&b).expect("serializes"),
        )
        .map_err(|e| io_err(format!("creating bucket `{bucket}`"), e))
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), ProviderError> {
        let _guard = self.lock.lock().await;
        if !self.bucket_file(bucket).is_file() {
            return Ok(());
        }
        let keys = self.keys(bucket)?;
        if !keys.is_empty() {
            return Err(ProviderError::conflict(format!(
                "local storage: bucket `{bucket}` is not empty ({} objects); set `force_destroy: true` on the bucket and apply it, then delete again",
                keys.len()
            )));
        }
        let _ = std::fs::remove_dir_all(self.bucket_dir(bucket));
        std::fs::remove_dir_all(self.bucket_meta_dir(bucket))
            .map_err(|e| io_err(format!("deleting bucket `{bucket}`"), e))
    }

    async fn empty_bucket(&self, bucket: &str) -> Result<usize, ProviderError> {
        let keys = self.keys(bucket)?;
        let me = self.clone();
        let b = bucket.to_owned();
        let n = keys.len();
        blocking(move || {
            for k in keys {
                me.delete_blocking(&b, &k)?;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }

    async fn get_versioning(&self, bucket: &str) -> Result<Versioning, ProviderError> {
        Ok(match self.read_bucket(bucket)?.versioning {
            None => Versioning::Unversioned,
            Some(true) => Versioning::Enabled,
            Some(false) => Versioning::Suspended,
        })
    }

    async fn put_versioning(&self, bucket: &str, enabled: bool) -> Result<(), ProviderError> {
        self.modify_bucket(bucket, |b| b.versioning = Some(enabled)).await
    }

    async fn get_cors(&self, bucket: &str) -> Result<Vec<CorsRule>, ProviderError> {
        Ok(self.read_bucket(bucket)?.cors)
    }

    async fn put_cors(&self, bucket: &str, rules: &[CorsRule]) -> Result<(), ProviderError> {
        self.modify_bucket(bucket, |b| b.cors = rules.to_vec()).await
    }

    async fn get_lifecycle(&self, bucket: &str) -> Result<Vec<LifecycleRule>, ProviderError> {
        Ok(self.read_bucket(bucket)?.lifecycle)
    }

    async fn put_lifecycle(&self, bucket: &str, rules: &[LifecycleRule]) -> Result<(), ProviderError> {
        self.modify_bucket(bucket, |b| b.lifecycle = rules.to_vec()).await
    }

    async fn get_public_access_block(&self, bucket: &str) -> Result<Option<PublicAccessBlock>, ProviderError> {
        Ok(self.read_bucket(bucket)?.public_access_block)
    }

    async fn put_public_access_block(
        &self,
        bucket: &str,
        block: Option<&PublicAccessBlock>,
    ) -> Result<(), ProviderError> {
        self.modify_bucket(bucket, |b| b.public_access_block = block.cloned()).await
    }

    async fn get_tags(&self, bucket: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        Ok(self.read_bucket(bucket)?.tags)
    }

    async fn put_tags(&self, bucket: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError> {
        self.modify_bucket(bucket, |b| b.tags = tags.clone()).await
    }

    async fn put_object(&self, put: &PutObject) -> Result<PutResult, ProviderError> {
        let me = self.clone();
        let put = put.clone();
        blocking(move || me.put_blocking(&put)).await
    }

    async fn update_object_meta(
        &self,
        bucket: &str,
        key: &str,
        sha256: &str,
        meta: &ObjectMeta,
    ) -> Result<PutResult, ProviderError> {
        let Some((current, size)) = self.info(bucket, key)? else {
            return Err(ProviderError::not_found(format!("local storage: {bucket}/{key} does not exist")));
        };
        self.write_meta(bucket, &key_path(key)?, &current.etag, size, sha256, meta)?;
        Ok(PutResult { etag: current.etag, version_id: None })
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, ProviderError> {
        if !self.bucket_file(bucket).is_file() {
            return Ok(None);
        }
        Ok(self.info(bucket, key)?.map(|(m, size)| ObjectHead {
            size,
            etag: m.etag,
            sha256: m.sha256,
            meta: ObjectMeta { content_type: m.content_type, cache_control: m.cache_control, metadata: m.metadata },
            version_id: None,
        }))
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Bytes>, ProviderError> {
        let path = self.bucket_dir(bucket).join(key_path(key)?);
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("{bucket}/{key}"), e)),
        }
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), ProviderError> {
        let me = self.clone();
        let (b, k) = (bucket.to_owned(), key.to_owned());
        blocking(move || me.delete_blocking(&b, &k)).await
    }

    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<(), ProviderError> {
        let me = self.clone();
        let (b, keys) = (bucket.to_owned(), keys.to_vec());
        blocking(move || keys.iter().try_for_each(|k| me.delete_blocking(&b, k))).await
    }

    async fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, ProviderError> {
        if !self.bucket_file(bucket).is_file() {
            return Err(no_bucket(bucket));
        }
        let me = self.clone();
        let (b, prefix) = (bucket.to_owned(), prefix.to_owned());
        blocking(move || {
            let mut out = Vec::new();
            for key in me.keys(&b)?.into_iter().filter(|k| k.starts_with(&prefix)) {
                if let Some((m, size)) = me.info(&b, &key)? {
                    out.push(ObjectInfo { key, size, etag: m.etag });
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_stay_inside_the_bucket() {
        assert!(key_path("a/b.txt").is_ok());
        for bad in ["", "../x", "a/../../x", "/abs", "a//b", "a/", "./a"] {
            assert!(key_path(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn objects_round_trip_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        s.create_bucket("b", None).await.unwrap();
        let data = Bytes::from_static(b"hello");
        let sha = crate::client::sha256_hex(&data);
        let meta = ObjectMeta { content_type: Some("text/plain".into()), ..ObjectMeta::default() };
        let put =
            PutObject { bucket: "b".into(), key: "d/x.txt".into(), body: Body::Bytes(data), sha256: sha.clone(), meta };
        s.put_object(&put).await.unwrap();
        let head = s.head_object("b", "d/x.txt").await.unwrap().unwrap();
        assert_eq!((head.size, head.sha256.as_deref()), (5, Some(sha.as_str())));
        assert_eq!(s.list_objects("b", "d/").await.unwrap().len(), 1);
        assert!(s.delete_bucket("b").await.unwrap_err().message.contains("force_destroy"));
        s.delete_object("b", "d/x.txt").await.unwrap();
        assert!(!dir.path().join("b/d").exists(), "empty folders are removed");
        s.delete_bucket("b").await.unwrap();
        assert!(!s.bucket_exists("b").await.unwrap());
    }
}
