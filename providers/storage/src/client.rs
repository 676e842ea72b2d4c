//! The S3 client: builds path-style or virtual-hosted URLs, signs every request with SigV4
//! (the maintained `aws-sigv4` signer; the payload's SHA-256 is signed, so the server verifies
//! it), sends it with `reqwest`, and implements [`Store`] on top — bucket sub-configurations,
//! uploads (single `PUT` with `Content-MD5`, or multipart for large files with every part
//! checksummed), listings and batch deletes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use md5::Md5;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};
use stackwright_core::ProviderError;

use crate::bucket::{CorsRule, LifecycleRule, PublicAccessBlock};
use crate::config::{Addressing, ConfigError, S3Config};
use crate::error::{Context, S3Error, to_provider_error, transport};
use crate::profile::Feature;
use crate::store::{
    Body, ObjectHead, ObjectInfo, ObjectMeta, PutObject, PutResult, SHA256_METADATA_KEY, Store, Versioning,
};
use crate::xml;

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// For object keys in paths: like [`UNRESERVED`] but `/` stays as is (S3 never double-encodes).
const KEY: &AsciiSet = &UNRESERVED.remove(b'/');

/// Encodes an object key for a URL path.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

fn encode_query(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Base64 MD5, for `Content-MD5`.
pub fn md5_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

fn hex_to_base64(hex_digest: &str) -> Option<String> {
    hex::decode(hex_digest).ok().map(|b| base64::engine::general_purpose::STANDARD.encode(b))
}

/// A request to send.
struct Req<'a> {
    operation: &'static str,
    method: Method,
    bucket: &'a str,
    key: Option<&'a str>,
    query: Vec<(&'static str, Option<String>)>,
    headers: Vec<(String, String)>,
    body: Bytes,
    /// The body's hex SHA-256 when already known.
    body_sha256: Option<String>,
    /// Send `Content-MD5` (required by S3 for sub-configuration PUTs and batch deletes).
    md5: bool,
}

impl<'a> Req<'a> {
    fn new(operation: &'static str, method: Method, bucket: &'a str) -> Self {
        Req {
            operation,
            method,
            bucket,
            key: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            body_sha256: None,
            md5: false,
        }
    }
    fn key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }
    fn sub(mut self, name: &'static str) -> Self {
        self.query.push((name, None));
        self
    }
    fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, Some(value.into())));
        self
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
    fn xml(mut self, body: String) -> Self {
        self.body = Bytes::from(body);
        self.md5 = true;
        self.headers.push(("content-type".into(), "application/xml".into()));
        self
    }
}

/// A response with a 2xx status.
struct Resp {
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A failed call: the service's error (if it answered) and the provider error it maps to.
struct Failed {
    s3: Option<S3Error>,
    error: ProviderError,
}

impl Failed {
    fn code(&self) -> &str {
        self.s3.as_ref().map_or("", |e| e.code.as_str())
    }
    fn status(&self) -> u16 {
        self.s3.as_ref().map_or(0, |e| e.status)
    }
}

impl From<Failed> for ProviderError {
    fn from(f: Failed) -> Self {
        f.error
    }
}

/// An S3 client for one endpoint.
pub struct S3Client {
    config: S3Config,
    http: reqwest::Client,
    identity: Identity,
    access_key_id: String,
    scheme: String,
    host: String,
    base_path: String,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client").field("config", &self.config).finish()
    }
}

impl S3Client {
    /// A client for `config`; fails when there are no credentials or the endpoint is not a URL.
    pub fn new(config: S3Config) -> Result<Self, ConfigError> {
        let creds = config.resolved_credentials()?;
        let (scheme, rest) = config.endpoint.split_once("://").ok_or_else(|| {
            ConfigError::Invalid(format!("endpoint `{}` must start with http:// or https://", config.endpoint))
        })?;
        if scheme != "http" && scheme != "https" {
            return Err(ConfigError::Invalid(format!("endpoint `{}` must use http or https", config.endpoint)));
        }
        let (host, base_path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(ConfigError::Invalid(format!("endpoint `{}` has no host", config.endpoint)));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ConfigError::Invalid(format!("HTTP client: {e}")))?;
        let identity: Identity = aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.expose().to_owned(),
            creds.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "stackwright",
        )
        .into();
        Ok(S3Client {
            http,
            identity,
            access_key_id: creds.access_key_id,
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            base_path: base_path.to_owned(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    fn service(&self) -> &'static str {
        self.config.profile.service_name()
    }

    fn url(&self, bucket: &str, key: Option<&str>, query: &[(&'static str, Option<String>)]) -> String {
        let mut url = match self.config.addressing {
            Addressing::Path => format!("{}://{}{}/{}", self.scheme, self.host, self.base_path, bucket),
            Addressing::VirtualHosted => format!("{}://{}.{}{}", self.scheme, bucket, self.host, self.base_path),
        };
        match key {
            Some(k) => {
                url.push('/');
                url.push_str(&encode_key(k));
            }
            None if self.config.addressing == Addressing::VirtualHosted => url.push('/'),
            None => {}
        }
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(name);
            if let Some(v) = value {
                url.push('=');
                url.push_str(&encode_query(v));
            }
        }
        url
    }

    /// Sends a request. A `HEAD` refused with 403 carries no error body, so "wrong secret" and
    /// "not allowed" look alike: a GET of the same thing then says which it is.
    async fn call(&self, req: Req<'_>) -> Result<Resp, Failed> {
        let (head, bucket, key) = (req.method == Method::HEAD, req.bucket, req.key);
        match self.call_once(req).await {
            Err(f) if head && f.status() == 403 => match self.diagnose_403(bucket, key).await {
                Some(Failed { s3: Some(e), error }) => Err(Failed { s3: Some(e), error }),
                _ => Err(f),
            },
            other => other,
        }
    }

    async fn call_once(&self, req: Req<'_>) -> Result<Resp, Failed> {
        let target = match req.key {
            Some(k) => format!("{}/{k}", req.bucket),
            None => req.bucket.to_owned(),
        };
        let cx = Context {
            operation: req.operation,
            target: &target,
            endpoint: &self.config.endpoint,
            access_key_id: &self.access_key_id,
            service: self.service(),
        };
        let url = self.url(req.bucket, req.key, &req.query);
        let mut headers = req.headers;
        if req.md5 {
            headers.push(("content-md5".into(), md5_base64(&req.body)));
        }
        let payload_sha = req.body_sha256.unwrap_or_else(|| sha256_hex(&req.body));
        let signed = {
            let mut settings = SigningSettings::default();
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            let params = v4::SigningParams::builder()
                .identity(&self.identity)
                .region(&self.config.region)
                .name("s3")
                .time(SystemTime::now())
                .settings(settings)
                .build()
                .map_err(|e| Failed { s3: None, error: ProviderError::other(format!("signing: {e}")) })?
                .into();
            let signable = SignableRequest::new(
                req.method.as_str(),
                url.as_str(),
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Precomputed(payload_sha),
            )
            .map_err(|e| Failed { s3: None, error: ProviderError::invalid_input(format!("request URL {url}: {e}")) })?;
            let (instructions, _) = sign(signable, &params)
                .map_err(|e| Failed { s3: None, error: ProviderError::other(format!("signing: {e}")) })?
                .into_parts();
            instructions.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<_>>()
        };
        let has_body = !req.body.is_empty() || matches!(req.method, Method::PUT | Method::POST);
        let mut builder = self.http.request(req.method.clone(), &url);
        for (k, v) in headers.iter().chain(signed.iter()) {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if has_body {
            builder = builder.body(req.body);
        }
        let response = builder.send().await.map_err(|e| Failed { s3: None, error: transport(&e, &cx) })?;
        let status = response.status().as_u16();
        let resp_headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| Failed { s3: None, error: transport(&e, &cx) })?;
        if (200..300).contains(&status) {
            return Ok(Resp { headers: resp_headers, body });
        }
        let retry_after = resp_headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let e = S3Error::parse(status, &String::from_utf8_lossy(&body), retry_after);
        let error = to_provider_error(&e, &cx);
        Err(Failed { s3: Some(e), error })
    }

    /// The failure a GET of the same bucket or object gets, if it explains a bodiless 403.
    async fn diagnose_403(&self, bucket: &str, key: Option<&str>) -> Option<Failed> {
        let req = match key {
            Some(k) => Req::new("HeadObject", Method::GET, bucket).key(k).header("range", "bytes=0-0"),
            None => Req::new("HeadBucket", Method::GET, bucket).param("list-type", "2").param("max-keys", "0"),
        };
        match self.call_once(req).await {
            Err(f)
                if f.status() == 403
                    && f.s3.as_ref().is_some_and(|e| !e.message.is_empty() || e.code != "AccessDenied") =>
            {
                Some(f)
            }
            _ => None,
        }
    }

    /// GETs a bucket sub-resource; a 404 other than `NoSuchBucket` means "not configured".
    async fn get_sub(
        &self,
        operation: &'static str,
        bucket: &str,
        sub: &'static str,
    ) -> Result<Option<String>, ProviderError> {
        match self.call(Req::new(operation, Method::GET, bucket).sub(sub)).await {
            Ok(r) => Ok(Some(r.text())),
            Err(f) if f.status() == 404 && f.code() != "NoSuchBucket" => Ok(None),
            Err(f) => Err(f.error),
        }
    }

    async fn delete_sub(&self, operation: &'static str, bucket: &str, sub: &'static str) -> Result<(), ProviderError> {
        match self.call(Req::new(operation, Method::DELETE, bucket).sub(sub)).await {
            Ok(_) => Ok(()),
            Err(f) if f.status() == 404 && f.code() != "NoSuchBucket" => Ok(()),
            Err(f) => Err(f.error),
        }
    }

    fn object_headers<'a>(&self, req: Req<'a>, sha256: &str, meta: &ObjectMeta) -> Req<'a> {
        let mut req = req;
        if let Some(ct) = &meta.content_type {
            req = req.header("content-type", ct.clone());
        }
        if let Some(cc) = &meta.cache_control {
            req = req.header("cache-control", cc.clone());
        }
        for (k, v) in &meta.metadata {
            req = req.header(&format!("x-amz-meta-{k}"), v.clone());
        }
        req.header(&format!("x-amz-meta-{SHA256_METADATA_KEY}"), sha256.to_owned())
    }

    async fn put_single(&self, put: &PutObject, data: Bytes) -> Result<PutResult, ProviderError> {
        let actual = sha256_hex(&data);
        if actual != put.sha256 {
            return Err(changed_content(put, &actual));
        }
        let mut req = Req::new("PutObject", Method::PUT, &put.bucket).key(&put.key);
        req = self.object_headers(req, &put.sha256, &put.meta);
        req = req.header("content-md5", md5_base64(&data));
        if self.config.profile.supports(Feature::ChecksumSha256)
            && let Some(b64) = hex_to_base64(&put.sha256)
        {
            req = req.header("x-amz-checksum-sha256", b64);
        }
        req.body_sha256 = Some(actual);
        req.body = data;
        let r = self.call(req).await?;
        Ok(PutResult {
            etag: xml::unquote(&r.header("etag").unwrap_or_default()),
            version_id: r.header("x-amz-version-id").filter(|v| v != "null"),
        })
    }

    async fn put_multipart(&self, put: &PutObject, path: &Path, size: u64) -> Result<PutResult, ProviderError> {
        let create = self.object_headers(
            Req::new("CreateMultipartUpload", Method::POST, &put.bucket).key(&put.key).sub("uploads"),
            &put.sha256,
            &put.meta,
        );
        let upload_id = xml::parse_upload_id(&self.call(create).await?.text()).map_err(ProviderError::transient)?;
        let result = self.upload_parts(put, path, size, &upload_id).await;
        match result {
            Ok(parts) => {
                let body = xml::complete_multipart(&parts);
                let req = Req::new("CompleteMultipartUpload", Method::POST, &put.bucket)
                    .key(&put.key)
                    .param("uploadId", upload_id.clone())
                    .xml(body);
                let completed = self.call(req).await;
                let r = match completed {
                    Ok(r) => r,
                    Err(f) => {
                        self.abort_upload(&put.bucket, &put.key, &upload_id).await;
                        return Err(f.error);
                    }
                };
                match xml::parse_etag_result(&r.text()).map_err(ProviderError::transient)? {
                    // Ceph 16 answers with an empty `<ETag>`: ask for it.
                    Ok(etag) if etag.is_empty() => match self.head_object(&put.bucket, &put.key).await? {
                        Some(head) => Ok(PutResult { etag: head.etag, version_id: head.version_id }),
                        None => Err(ProviderError::transient(format!(
                            "{} CompleteMultipartUpload of {}/{} succeeded but the object is not visible yet",
                            self.service(),
                            put.bucket,
                            put.key
                        ))),
                    },
                    Ok(etag) => {
                        Ok(PutResult { etag, version_id: r.header("x-amz-version-id").filter(|v| v != "null") })
                    }
                    Err((code, message)) => {
                        self.abort_upload(&put.bucket, &put.key, &upload_id).await;
                        let e = S3Error { status: 200, code, message, request_id: None, retry_after: None };
                        let target = format!("{}/{}", put.bucket, put.key);
                        Err(to_provider_error(
                            &S3Error { status: if e.code == "InternalError" { 500 } else { 400 }, ..e },
                            &Context {
                                operation: "CompleteMultipartUpload",
                                target: &target,
                                endpoint: &self.config.endpoint,
                                access_key_id: &self.access_key_id,
                                service: self.service(),
                            },
                        ))
                    }
                }
            }
            Err(e) => {
                self.abort_upload(&put.bucket, &put.key, &upload_id).await;
                Err(e)
            }
        }
    }

    /// Reads the file part by part on a blocking thread (hashing the whole file as it goes) and
    /// uploads parts concurrently, each with `Content-MD5` and its signed SHA-256.
    async fn upload_parts(
        &self,
        put: &PutObject,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<(u32, String)>, ProviderError> {
        let part_size = self.config.part_size.max(5 * crate::config::MIB);
        let concurrency = self.config.upload_concurrency.max(1);
        let (tx, rx) = tokio::sync::mpsc::channel::<(u32, Bytes)>(concurrency);
        let reader_path = path.to_owned();
        let reader = tokio::task::spawn_blocking(move || -> Result<String, std::io::Error> {
            let mut file = std::fs::File::open(&reader_path)?;
            let mut whole = Sha256::new();
            let mut number = 0u32;
            let mut remaining = size;
            while remaining > 0 {
                let len = remaining.min(part_size) as usize;
                let mut buf = vec![0u8; len];
                file.read_exact(&mut buf)?;
                whole.update(&buf);
                remaining -= len as u64;
                number += 1;
                if tx.blocking_send((number, Bytes::from(buf))).is_err() {
                    break;
                }
            }
            let mut extra = [0u8; 1];
            if remaining == 0 && file.read(&mut extra)? > 0 {
                // The file grew since it was measured: its hash cannot match.
                whole.update(extra);
            }
            Ok(hex::encode(whole.finalize()))
        });
        let parts = tokio_stream_from(rx)
            .map(|(number, data)| async move {
                let (md5, sha) = tokio::task::spawn_blocking({
                    let data = data.clone();
                    move || (md5_base64(&data), sha256_hex(&data))
                })
                .await
                .map_err(|e| ProviderError::other(format!("hashing a part: {e}")))?;
                let mut req = Req::new("UploadPart", Method::PUT, &put.bucket)
                    .key(&put.key)
                    .param("partNumber", number.to_string())
                    .param("uploadId", upload_id.to_owned())
                    .header("content-md5", md5);
                req.body_sha256 = Some(sha);
                req.body = data;
                let r = self.call(req).await?;
                let etag = xml::unquote(&r.header("etag").unwrap_or_default());
                Ok::<_, ProviderError>((number, etag))
            })
            .buffer_unordered(concurrency);
        let mut parts = parts;
        let mut done = Vec::new();
        let mut first_error = None;
        while let Some(p) = parts.next().await {
            match p {
                Ok(p) => done.push(p),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        drop(parts);
        let whole = reader.await.map_err(|e| ProviderError::other(format!("reading {}: {e}", path.display())))?;
        if let Some(e) = first_error {
            return Err(e);
        }
        let whole = whole.map_err(|e| ProviderError::invalid_input(format!("reading {}: {e}", path.display())))?;
        if whole != put.sha256 {
            return Err(changed_content(put, &whole));
        }
        done.sort_by_key(|(n, _)| *n);
        Ok(done)
    }

    async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) {
        let req =
            Req::new("AbortMultipartUpload", Method::DELETE, bucket).key(key).param("uploadId", upload_id.to_owned());
        if let Err(f) = self.call(req).await {
            tracing::warn!("aborting multipart upload {upload_id} of {bucket}/{key}: {}", f.error);
        }
    }

    async fn delete_batch(&self, bucket: &str, items: &[(String, Option<String>)]) -> Result<(), ProviderError> {
        for chunk in items.chunks(1000) {
            let req = Req::new("DeleteObjects", Method::POST, bucket).sub("delete").xml(xml::delete_objects(chunk));
            let r = self.call(req).await?;
            let errors = xml::parse_delete_errors(&r.text()).map_err(ProviderError::transient)?;
            let errors: Vec<_> = errors.into_iter().filter(|(_, code, _)| code != "NoSuchKey").collect();
            if let Some((key, code, message)) = errors.first() {
                return Err(ProviderError::other(format!(
                    "{} DeleteObjects on {bucket}: {} of {} deletes failed, first {key}: {code} {message}",
                    self.service(),
                    errors.len(),
                    chunk.len()
                )));
            }
        }
        Ok(())
    }
}

fn changed_content(put: &PutObject, actual: &str) -> ProviderError {
    let what = match &put.body {
        Body::File(p) => format!("file {}", p.display()),
        Body::Bytes(_) => "inline content".to_owned(),
    };
    ProviderError::invalid_input(format!(
        "{what} for {}/{} changed since the program hashed it (SHA-256 {actual}, expected {}); run again to upload the current content",
        put.bucket, put.key, put.sha256
    ))
}

fn tokio_stream_from<T: Send + 'static>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn meta_from_headers(headers: &HeaderMap) -> (ObjectMeta, Option<String>) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut metadata = BTreeMap::new();
    let mut sha = None;
    for (name, value) in headers {
        if let Some(k) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = value.to_str().unwrap_or_default().to_owned();
            if k == SHA256_METADATA_KEY {
                sha = Some(v);
            } else {
                metadata.insert(k.to_owned(), v);
            }
        }
    }
    (ObjectMeta { content_type: get("content-type"), cache_control: get("cache-control"), metadata }, sha)
}

#[async_trait]
impl Store for S3Client {
    fn describe(&self) -> String {
        format!("S3 ({}) at {}", self.service(), self.config.endpoint)
    }

    fn bucket_url(&self, bucket: &str) -> String {
        self.url(bucket, None, &[])
    }

    fn object_url(&self, bucket: &str, key: &str) -> String {
        self.url(bucket, Some(key), &[])
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool, ProviderError> {
        match self.call(Req::new("HeadBucket", Method::HEAD, bucket)).await {
            Ok(_) => Ok(true),
            Err(f) if f.status() == 404 => Ok(false),
            Err(f) => Err(f.error),
        }
    }

    async fn create_bucket(&self, bucket: &str, region: Option<&str>) -> Result<(), ProviderError> {
        let region = region.unwrap_or(&self.config.region);
        let mut req = Req::new("CreateBucket", Method::PUT, bucket);
        if let Some(body) = xml::create_bucket(region) {
            req = req.xml(body);
        }
        match self.call(req).await {
            Ok(_) => Ok(()),
            Err(f) if f.code() == "BucketAlreadyOwnedByYou" => Ok(()),
            Err(f) => Err(f.error),
        }
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), ProviderError> {
        match self.call(Req::new("DeleteBucket", Method::DELETE, bucket)).await {
            Ok(_) => Ok(()),
            Err(f) if f.code() == "NoSuchBucket" => Ok(()),
            Err(f) => Err(f.error),
        }
    }

    async fn empty_bucket(&self, bucket: &str) -> Result<usize, ProviderError> {
        let mut deleted = 0;
        // Delete from the start of the listing until nothing is left, so objects written
        // meanwhile are caught too.
        loop {
            let r = self.call(Req::new("ListObjectVersions", Method::GET, bucket).sub("versions")).await;
            let (entries, _) = match r {
                Ok(r) => xml::parse_list_versions(&r.text()).map_err(ProviderError::transient)?,
                Err(f) if f.code() == "NoSuchBucket" => return Ok(deleted),
                Err(f) => return Err(f.error),
            };
            if entries.is_empty() {
                break;
            }
            let items: Vec<(String, Option<String>)> =
                entries.into_iter().map(|e| (e.key, Some(e.version_id))).collect();
            self.delete_batch(bucket, &items).await?;
            deleted += items.len();
        }
        loop {
            let r = self.call(Req::new("ListMultipartUploads", Method::GET, bucket).sub("uploads")).await?;
            let (uploads, _) = xml::parse_list_uploads(&r.text()).map_err(ProviderError::transient)?;
            if uploads.is_empty() {
                break;
            }
            for (key, id) in uploads {
                let req = Req::new("AbortMultipartUpload", Method::DELETE, bucket).key(&key).param("uploadId", id);
                match self.call(req).await {
                    Ok(_) => {}
                    Err(f) if f.status() == 404 => {}
                    Err(f) => return Err(f.error),
                }
            }
        }
        Ok(deleted)
    }

    async fn get_versioning(&self, bucket: &str) -> Result<Versioning, ProviderError> {
        match self.get_sub("GetBucketVersioning", bucket, "versioning").await? {
            Some(body) => xml::parse_versioning(&body).map_err(ProviderError::transient),
            None => Ok(Versioning::Unversioned),
        }
    }

    async fn put_versioning(&self, bucket: &str, enabled: bool) -> Result<(), ProviderError> {
        let req = Req::new("PutBucketVersioning", Method::PUT, bucket).sub("versioning").xml(xml::versioning(enabled));
        self.call(req).await.map(|_| ()).map_err(Into::into)
    }

    async fn get_cors(&self, bucket: &str) -> Result<Vec<CorsRule>, ProviderError> {
        match self.get_sub("GetBucketCors", bucket, "cors").await? {
            Some(body) => xml::parse_cors(&body).map_err(ProviderError::transient),
            None => Ok(Vec::new()),
        }
    }

    async fn put_cors(&self, bucket: &str, rules: &[CorsRule]) -> Result<(), ProviderError> {
        if rules.is_empty() {
            return self.delete_sub("DeleteBucketCors", bucket, "cors").await;
        }
        let req = Req::new("PutBucketCors", Method::PUT, bucket).sub("cors").xml(xml::cors(rules));
        self.call(req).await.map(|_| ()).map_err(Into::into)
    }

    async fn get_lifecycle(&self, bucket: &str) -> Result<Vec<LifecycleRule>, ProviderError> {
        match self.get_sub("GetBucketLifecycleConfiguration", bucket, "lifecycle").await? {
            Some(body) => xml::parse_lifecycle(&body).map_err(ProviderError::transient),
            None => Ok(Vec::new()),
        }
    }

    async fn put_lifecycle(&self, bucket: &str, rules: &[LifecycleRule]) -> Result<(), ProviderError> {
        if rules.is_empty() {
            return self.delete_sub("DeleteBucketLifecycle", bucket, "lifecycle").await;
        }
        let req = Req::new("PutBucketLifecycleConfiguration", Method::PUT, bucket)
            .sub("lifecycle")
            .xml(xml::lifecycle(rules));
        self.call(req).await.map(|_| ()).map_err(Into::into)
    }

    async fn get_public_access_block(&self, bucket: &str) -> Result<Option<PublicAccessBlock>, ProviderError> {
        match self.get_sub("GetPublicAccessBlock", bucket, "publicAccessBlock").await? {
            Some(body) => xml::parse_public_access_block(&body).map(Some).map_err(ProviderError::transient),
            None => Ok(None),
        }
    }

    async fn put_public_access_block(
        &self,
        bucket: &str,
        block: Option<&PublicAccessBlock>,
    ) -> Result<(), ProviderError> {
        let Some(block) = block else {
            return self.delete_sub("DeletePublicAccessBlock", bucket, "publicAccessBlock").await;
        };
        let req = Req::new("PutPublicAccessBlock", Method::PUT, bucket)
            .sub("publicAccessBlock")
            .xml(xml::public_access_block(block));
        self.call(req).await.map(|_| ()).map_err(Into::into)
    }

    async fn get_tags(&self, bucket: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        match self.get_sub("GetBucketTagging", bucket, "tagging").await? {
            Some(body) => xml::parse_tagging(&body).map_err(ProviderError::transient),
            None => Ok(BTreeMap::new()),
        }
    }

    async fn put_tags(&self, bucket: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError> {
        if tags.is_empty() {
            return self.delete_sub("DeleteBucketTagging", bucket, "tagging").await;
        }
        let req = Req::new("PutBucketTagging", Method::PUT, bucket).sub("tagging").xml(xml::tagging(tags));
        self.call(req).await.map(|_| ()).map_err(Into::into)
    }

    async fn put_object(&self, put: &PutObject) -> Result<PutResult, ProviderError> {
        match &put.body {
            Body::Bytes(b) => self.put_single(put, b.clone()).await,
            Body::File(path) => {
                let size = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| ProviderError::invalid_input(format!("reading {}: {e}", path.display())))?
                    .len();
                if size <= self.config.multipart_threshold {
                    let data = tokio::fs::read(path)
                        .await
                        .map_err(|e| ProviderError::invalid_input(format!("reading {}: {e}", path.display())))?;
                    self.put_single(put, Bytes::from(data)).await
                } else {
                    self.put_multipart(put, path, size).await
                }
            }
        }
    }

    async fn update_object_meta(
        &self,
        bucket: &str,
        key: &str,
        sha256: &str,
        meta: &ObjectMeta,
    ) -> Result<PutResult, ProviderError> {
        let source = format!("/{bucket}/{}", encode_key(key));
        let req = Req::new("CopyObject", Method::PUT, bucket)
            .key(key)
            .header("x-amz-copy-source", source)
            .header("x-amz-metadata-directive", "REPLACE");
        let req = self.object_headers(req, sha256, meta);
        let r = self.call(req).await?;
        match xml::parse_etag_result(&r.text()).map_err(ProviderError::transient)? {
            Ok(etag) => Ok(PutResult { etag, version_id: r.header("x-amz-version-id").filter(|v| v != "null") }),
            Err((code, message)) => Err(ProviderError::transient(format!(
                "{} CopyObject on {bucket}/{key} failed: {code}: {message}",
                self.service()
            ))),
        }
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, ProviderError> {
        let r = match self.call(Req::new("HeadObject", Method::HEAD, bucket).key(key)).await {
            Ok(r) => r,
            Err(f) if f.status() == 404 => return Ok(None),
            Err(f) => return Err(f.error),
        };
        let (meta, sha256) = meta_from_headers(&r.headers);
        Ok(Some(ObjectHead {
            size: r.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
            etag: xml::unquote(&r.header("etag").unwrap_or_default()),
            sha256,
            meta,
            version_id: r.header("x-amz-version-id").filter(|v| v != "null"),
        }))
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Bytes>, ProviderError> {
        match self.call(Req::new("GetObject", Method::GET, bucket).key(key)).await {
            Ok(r) => Ok(Some(r.body)),
            Err(f) if f.status() == 404 => Ok(None),
            Err(f) => Err(f.error),
        }
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), ProviderError> {
        match self.call(Req::new("DeleteObject", Method::DELETE, bucket).key(key)).await {
            Ok(_) => Ok(()),
            Err(f) if f.status() == 404 => Ok(()),
            Err(f) => Err(f.error),
        }
    }

    async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<(), ProviderError> {
        let items: Vec<(String, Option<String>)> = keys.iter().map(|k| (k.clone(), None)).collect();
        match self.delete_batch(bucket, &items).await {
            Err(e) if e.kind == stackwright_core::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, ProviderError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = Req::new("ListObjectsV2", Method::GET, bucket).param("list-type", "2");
            if !prefix.is_empty() {
                req = req.param("prefix", prefix.to_owned());
            }
            if let Some(t) = &token {
                req = req.param("continuation-token", t.clone());
            }
            let r = self.call(req).await?;
            let (objects, next) = xml::parse_list_objects(&r.text()).map_err(ProviderError::transient)?;
            out.extend(objects);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ServiceProfile;

    fn client(addressing: Addressing) -> S3Client {
        let mut c = S3Config::new("https://s3.example.com:8443/base/", ServiceProfile::Aws).credentials("AK", "SK");
        c.addressing = addressing;
        S3Client::new(c).unwrap()
    }

    #[test]
    fn urls_follow_the_addressing_style_and_encode_keys_once() {
        let q = [("prefix", Some("a b/c+d".to_owned())), ("versions", None)];
        let path = client(Addressing::Path);
        assert_eq!(
            path.url("b1", Some("dir/a b+é.txt"), &[]),
            "https://s3.example.com:8443/base/b1/dir/a%20b%2B%C3%A9.txt"
        );
        assert_eq!(path.url("b1", None, &q), "https://s3.example.com:8443/base/b1?prefix=a%20b%2Fc%2Bd&versions");
        let vh = client(Addressing::VirtualHosted);
        assert_eq!(vh.url("b1", Some("k"), &[]), "https://b1.s3.example.com:8443/base/k");
        assert_eq!(vh.bucket_url("b1"), "https://b1.s3.example.com:8443/base/");
    }

    #[test]
    fn a_missing_scheme_is_a_config_error() {
        let c = S3Config::new("s3.example.com", ServiceProfile::Aws).credentials("AK", "SK");
        assert!(S3Client::new(c).unwrap_err().to_string().contains("http://"));
    }
}
