//! `storage:Bucket` — a bucket with versioning, CORS rules, lifecycle rules, a public access
//! block and tags. Each sub-configuration is read back on refresh and compared in a normalised
//! form (lifecycle rules by id, CORS values as sets within each rule, an absent versioning status
//! as "off"), so only real drift shows; `force_destroy` empties the bucket, every version
//! included, before deleting it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError,
    Resource, Stored,
};

use crate::Shared;
use crate::profile::Feature;

/// The `storage:Bucket` resource type.
pub struct Bucket;

impl Resource for Bucket {
    const TYPE: &'static str = "storage:Bucket";
    type Args = BucketArgs;
    type Outputs = BucketOutputs;
}

/// One CORS rule. S3 applies the first rule that matches a request, so rules are kept in the
/// order given; within a rule, origins, methods and headers are sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// An optional id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Origins allowed, e.g. `https://app.example.com` or `*`.
    pub allowed_origins: Vec<String>,
    /// Methods allowed: `GET`, `PUT`, `POST`, `DELETE`, `HEAD`.
    pub allowed_methods: Vec<String>,
    /// Request headers allowed in a preflight (`*` for any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may read (e.g. `ETag`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

impl CorsRule {
    /// A rule allowing `methods` from `origins`.
    pub fn new<S: Into<String>, M: Into<String>>(
        origins: impl IntoIterator<Item = S>,
        methods: impl IntoIterator<Item = M>,
    ) -> Self {
        CorsRule {
            allowed_origins: origins.into_iter().map(Into::into).collect(),
            allowed_methods: methods.into_iter().map(Into::into).collect(),
            ..CorsRule::default()
        }
    }

    /// Allows these request headers.
    pub fn allowed_headers<S: Into<String>>(mut self, headers: impl IntoIterator<Item = S>) -> Self {
        self.allowed_headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Exposes these response headers.
    pub fn expose_headers<S: Into<String>>(mut self, headers: impl IntoIterator<Item = S>) -> Self {
        self.expose_headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the preflight cache time.
    pub fn max_age_seconds(mut self, seconds: u32) -> Self {
        self.max_age_seconds = Some(seconds);
        self
    }

    fn normalized(&self) -> CorsRule {
        let set = |v: &[String], f: fn(&str) -> String| -> Vec<String> {
            v.iter().map(|s| f(s.trim())).collect::<BTreeSet<_>>().into_iter().collect()
        };
        CorsRule {
            id: self.id.clone().filter(|s| !s.is_empty()),
            allowed_origins: set(&self.allowed_origins, str::to_owned),
            allowed_methods: set(&self.allowed_methods, str::to_ascii_uppercase),
            allowed_headers: set(&self.allowed_headers, str::to_ascii_lowercase),
            expose_headers: set(&self.expose_headers, str::to_ascii_lowercase),
            max_age_seconds: self.max_age_seconds,
        }
    }
}

/// One lifecycle rule. Rules are identified by `id`; their order does not matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// The rule's id (unique within the bucket).
    pub id: String,
    /// The key prefix the rule applies to (empty: the whole bucket).
    #[serde(default)]
    pub prefix: String,
    /// Whether the rule is in force.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Delete current objects this many days after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// Delete noncurrent versions this many days after they become noncurrent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration_days: Option<u32>,
    /// Abort multipart uploads still unfinished this many days after they started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_upload_days: Option<u32>,
}

fn yes() -> bool {
    true
}

impl LifecycleRule {
    /// An enabled rule with no actions yet, for keys under `prefix`.
    pub fn new(id: impl Into<String>, prefix: impl Into<String>) -> Self {
        LifecycleRule {
            id: id.into(),
            prefix: prefix.into(),
            enabled: true,
            expiration_days: None,
            noncurrent_version_expiration_days: None,
            abort_incomplete_multipart_upload_days: None,
        }
    }

    /// Expires current objects after `days`.
    pub fn expire_after_days(mut self, days: u32) -> Self {
        self.expiration_days = Some(days);
        self
    }

    /// Expires noncurrent versions after `days`.
    pub fn expire_noncurrent_after_days(mut self, days: u32) -> Self {
        self.noncurrent_version_expiration_days = Some(days);
        self
    }

    /// Aborts incomplete multipart uploads after `days`.
    pub fn abort_incomplete_uploads_after_days(mut self, days: u32) -> Self {
        self.abort_incomplete_multipart_upload_days = Some(days);
        self
    }

    /// Disables the rule.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

/// The public access block: four switches that keep a bucket private whatever its ACLs or
/// policy say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Reject requests that set public ACLs.
    #[serde(default)]
    pub block_public_acls: bool,
    /// Ignore public ACLs.
    #[serde(default)]
    pub ignore_public_acls: bool,
    /// Reject bucket policies that grant public access.
    #[serde(default)]
    pub block_public_policy: bool,
    /// Restrict access to a bucket with a public policy to the owner's account.
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four switches on: the bucket stays private.
    pub fn all() -> Self {
        PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        }
    }
}

/// Arguments of `storage:Bucket`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct BucketArgs {
    /// The bucket's name (global on AWS). A change replaces the bucket.
    #[sw(replace)]
    pub name: Input<String>,
    /// The region to create it in (the provider's region when absent). A change replaces it.
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Input<String>>,
    /// Keep every version of every object. Turning it off suspends versioning (a bucket can
    /// never return to unversioned).
    #[serde(default)]
    pub versioning: Input<bool>,
    /// CORS rules, in order (empty: none).
    #[serde(default)]
    pub cors: Input<Vec<CorsRule>>,
    /// Lifecycle rules (empty: none).
    #[serde(default)]
    pub lifecycle: Input<Vec<LifecycleRule>>,
    /// The public access block (absent: none set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<Input<PublicAccessBlock>>,
    /// Bucket tags (empty: none).
    #[serde(default)]
    pub tags: Input<BTreeMap<String, String>>,
    /// On delete, first delete every object, version and unfinished upload. Without it,
    /// deleting a bucket that is not empty fails. Apply it before destroying.
    #[serde(default)]
    pub force_destroy: bool,
}

impl BucketArgs {
    /// A bucket named `name` with nothing else configured.
    pub fn new(name: impl Into<Input<String>>) -> Self {
        BucketArgs { name: name.into(), ..BucketArgs::default() }
    }
}

/// Outputs of `storage:Bucket`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct BucketOutputs {
    /// The bucket's name (wire this into objects and folders).
    pub name: String,
    /// Its region.
    pub region: String,
    /// Its URL.
    pub url: String,
}

/// Why a bucket name is not valid, if it is not.
pub fn bucket_name_problem(name: &str) -> Option<String> {
    let len = name.len();
    if !(3..=63).contains(&len) {
        return Some(format!("bucket name `{name}` must be 3 to 63 characters long (it has {len})"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-')) {
        return Some(format!(
            "bucket name `{name}` may only contain lowercase letters, digits, `.` and `-` (found `{c}`)"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Some(format!("bucket name `{name}` must start and end with a letter or digit"));
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Some(format!("bucket name `{name}` must not contain `..`, `.-` or `-.`"));
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Some(format!("bucket name `{name}` must not look like an IP address"));
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") {
        return Some(format!("bucket name `{name}` uses a reserved prefix or suffix"));
    }
    None
}

fn check_cors(rules: &[CorsRule], out: &mut Vec<CheckFailure>) {
    if rules.len() > 100 {
        out.push(CheckFailure::at("cors", format!("at most 100 CORS rules are allowed ({} given)", rules.len())));
    }
    for (i, r) in rules.iter().enumerate() {
        if r.allowed_origins.is_empty() {
            out.push(CheckFailure::at(&format!("cors[{i}].allowed_origins"), "a CORS rule needs at least one origin"));
        }
        if r.allowed_methods.is_empty() {
            out.push(CheckFailure::at(&format!("cors[{i}].allowed_methods"), "a CORS rule needs at least one method"));
        }
        for m in &r.allowed_methods {
            if !matches!(m.to_ascii_uppercase().as_str(), "GET" | "PUT" | "POST" | "DELETE" | "HEAD") {
                out.push(CheckFailure::at(
                    &format!("cors[{i}].allowed_methods"),
                    format!("`{m}` is not a CORS method S3 accepts (GET, PUT, POST, DELETE, HEAD)"),
                ));
            }
        }
    }
}

fn check_lifecycle(rules: &[LifecycleRule], out: &mut Vec<CheckFailure>) {
    let mut ids = HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let at = |f: &str| format!("lifecycle[{i}].{f}");
        if r.id.trim().is_empty() || r.id.len() > 255 {
            out.push(CheckFailure::at(&at("id"), "a lifecycle rule needs an id of 1 to 255 characters"));
        } else if !ids.insert(r.id.as_str()) {
            out.push(CheckFailure::at(&at("id"), format!("lifecycle rule id `{}` is used twice", r.id)));
        }
        let days = [r.expiration_days, r.noncurrent_version_expiration_days, r.abort_incomplete_multipart_upload_days];
        if days.iter().all(Option::is_none) {
            out.push(CheckFailure::at(
                &at("id"),
                format!("lifecycle rule `{}` has no action: set an expiration, a noncurrent expiration or an abort of incomplete uploads", r.id),
            ));
        }
        if days.iter().flatten().any(|d| *d == 0) {
            out.push(CheckFailure::at(&at("id"), format!("lifecycle rule `{}`: days must be at least 1", r.id)));
        }
    }
}

fn check_tags(tags: &BTreeMap<String, String>, out: &mut Vec<CheckFailure>) {
    if tags.len() > 50 {
        out.push(CheckFailure::at("tags", format!("at most 50 tags are allowed ({} given)", tags.len())));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            out.push(CheckFailure::at(
                "tags",
                format!("tag `{k}`: keys need 1 to 128 characters and values at most 256"),
            ));
        }
        if k.starts_with("aws:") {
            out.push(CheckFailure::at("tags", format!("tag `{k}`: the `aws:` prefix is reserved")));
        }
    }
}

fn normalized_cors(rules: &[CorsRule]) -> Vec<CorsRule> {
    rules.iter().map(CorsRule::normalized).collect()
}

fn normalized_lifecycle(rules: &[LifecycleRule]) -> Vec<LifecycleRule> {
    let mut v: Vec<LifecycleRule> =
        rules.iter().map(|r| LifecycleRule { prefix: r.prefix.trim().to_owned(), ..r.clone() }).collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// The public access block in force; all switches off is the same as none (services answer
/// either way for a bucket that never had one).
fn pab(args: &BucketArgs) -> Option<PublicAccessBlock> {
    args.public_access_block.as_ref().map(|p| *p.get()).filter(|p| *p != PublicAccessBlock::default())
}

pub(crate) struct BucketHandler {
    pub(crate) shared: Arc<Shared>,
    /// Buckets this process created, by operation, so a retried create continues its own work
    /// instead of reporting the bucket as taken.
    created: Mutex<HashSet<(String, String)>>,
}

impl BucketHandler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        BucketHandler { shared, created: Mutex::default() }
    }

    fn outputs(&self, args: &BucketArgs) -> BucketOutputs {
        let name = args.name.get().clone();
        BucketOutputs {
            url: self.shared.store.bucket_url(&name),
            region: args.region.as_ref().map(|r| r.get().clone()).unwrap_or_else(|| self.shared.default_region.clone()),
            name,
        }
    }

    /// Brings each sub-configuration from `old` (`None`: a new bucket) to `new`, touching only
    /// those that differ once normalised.
    async fn configure(&self, old: Option<&BucketArgs>, new: &BucketArgs) -> Result<(), ProviderError> {
        let store = &self.shared.store;
        let name = new.name.get();
        let blank = BucketArgs::default();
        let old = old.unwrap_or(&blank);
        let profile = self.shared.profile;
        if *old.versioning.get() != *new.versioning.get() && profile.supports(Feature::Versioning) {
            store.put_versioning(name, *new.versioning.get()).await?;
        }
        if normalized_cors(old.cors.get()) != normalized_cors(new.cors.get()) {
            store.put_cors(name, new.cors.get()).await?;
        }
        if normalized_lifecycle(old.lifecycle.get()) != normalized_lifecycle(new.lifecycle.get()) {
            store.put_lifecycle(name, new.lifecycle.get()).await?;
        }
        if pab(old) != pab(new) {
            store.put_public_access_block(name, pab(new).as_ref()).await?;
        }
        if old.tags.get() != new.tags.get() {
            store.put_tags(name, new.tags.get()).await?;
        }
        Ok(())
    }

    /// The bucket as it is, starting from `base` (the stored arguments): each sub-configuration
    /// the service supports is read back, and kept in `base`'s form when it is equal once
    /// normalised.
    async fn observe(&self, base: &BucketArgs) -> Result<Option<BucketArgs>, ProviderError> {
        let store = &self.shared.store;
        let name = base.name.get();
        if !store.bucket_exists(name).await? {
            return Ok(None);
        }
        let profile = self.shared.profile;
        let mut args = base.clone();
        if profile.supports(Feature::Versioning) {
            args.versioning = Input::Value(store.get_versioning(name).await?.is_enabled());
        }
        if profile.supports(Feature::Cors) {
            let rules = store.get_cors(name).await?;
            if normalized_cors(&rules) != normalized_cors(base.cors.get()) {
                args.cors = Input::Value(rules);
            }
        }
        if profile.supports(Feature::Lifecycle) {
            let rules = store.get_lifecycle(name).await?;
            if normalized_lifecycle(&rules) != normalized_lifecycle(base.lifecycle.get()) {
                args.lifecycle = Input::Value(rules);
            }
        }
        if profile.supports(Feature::PublicAccessBlock) {
            let observed = store.get_public_access_block(name).await?.filter(|p| *p != PublicAccessBlock::default());
            if observed != pab(base) {
                args.public_access_block = observed.map(Input::Value);
            }
        }
        if profile.supports(Feature::BucketTagging) {
            args.tags = Input::Value(store.get_tags(name).await?);
        }
        Ok(Some(args))
    }
}

#[async_trait]
impl Handler<Bucket> for BucketHandler {
    fn check(&self, args: &BucketArgs) -> Vec<CheckFailure> {
        let mut out = Vec::new();
        let profile = self.shared.profile;
        let mut need = |used: bool, feature: Feature, field: &str| {
            if used && !profile.supports(feature) {
                out.push(CheckFailure::at(field, profile.unsupported(feature, field)));
            }
        };
        need(true, Feature::BucketManagement, "name");
        need(*args.versioning.get(), Feature::Versioning, "versioning");
        need(!args.cors.get().is_empty(), Feature::Cors, "cors");
        need(!args.lifecycle.get().is_empty(), Feature::Lifecycle, "lifecycle");
        for (i, r) in args.lifecycle.get().iter().enumerate() {
            need(
                r.noncurrent_version_expiration_days.is_some(),
                Feature::NoncurrentVersionExpiration,
                &format!("lifecycle[{i}].noncurrent_version_expiration_days"),
            );
            need(
                r.abort_incomplete_multipart_upload_days.is_some(),
                Feature::AbortIncompleteMultipartUpload,
                &format!("lifecycle[{i}].abort_incomplete_multipart_upload_days"),
            );
        }
        need(args.public_access_block.is_some(), Feature::PublicAccessBlock, "public_access_block");
        need(!args.tags.get().is_empty(), Feature::BucketTagging, "tags");
        let name = args.name.get();
        if let Some(problem) = bucket_name_problem(name) {
            out.push(CheckFailure::at("name", problem));
        } else if name.contains('.') && self.shared.virtual_hosted_tls {
            out.push(CheckFailure::at(
                "name",
                format!("bucket name `{name}` contains dots, which break TLS with virtual-hosted addressing; use a name without dots or path-style addressing"),
            ));
        }
        check_cors(args.cors.get(), &mut out);
        check_lifecycle(args.lifecycle.get(), &mut out);
        check_tags(args.tags.get(), &mut out);
        out
    }

    async fn create(&self, ctx: &OpContext, args: &BucketArgs) -> Result<Created<BucketOutputs>, ProviderError> {
        let store = &self.shared.store;
        let name = args.name.get().clone();
        let mark = (ctx.operation_id.clone(), name.clone());
        let ours = self.created.lock().expect("created lock").contains(&mark);
        let existed = store.bucket_exists(&name).await?;
        if existed && !ours {
            return Err(ProviderError::conflict(format!(
                "bucket `{name}` already exists on {}: import it into the stack, or choose another name (a replacement that keeps the name needs `delete_before_replace`)",
                store.describe()
            )));
        }
        if !existed {
            store.create_bucket(&name, args.region.as_ref().map(|r| r.get().as_str())).await?;
            self.created.lock().expect("created lock").insert(mark.clone());
        }
        match self.configure(None, args).await {
            Ok(()) => {
                self.created.lock().expect("created lock").remove(&mark);
                Ok(Created { id: name, outputs: self.outputs(args) })
            }
            // A retry of this create continues with the bucket it made.
            Err(e) if e.kind.is_retryable() => Err(e),
            Err(e) => {
                // The create failed for good: remove the empty bucket so nothing is orphaned.
                if !existed {
                    if let Err(cleanup) = store.delete_bucket(&name).await {
                        tracing::warn!("removing bucket `{name}` after a failed create: {cleanup}");
                    }
                    self.created.lock().expect("created lock").remove(&mark);
                }
                Err(e)
            }
        }
    }

    async fn read(&self, _ctx: &OpContext, stored: &Stored<Bucket>) -> Result<Option<Observed<Bucket>>, ProviderError> {
        Ok(self.observe(&stored.args).await?.map(|args| Observed {
            id: stored.id.clone(),
            outputs: self.outputs(&args),
            args,
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Bucket>,
        args: &BucketArgs,
        _changes: &[PropertyChange],
    ) -> Result<BucketOutputs, ProviderError> {
        self.configure(Some(&stored.args), args).await?;
        Ok(self.outputs(args))
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Bucket>) -> Result<(), ProviderError> {
        let store = &self.shared.store;
        let name = stored.args.name.get();
        if stored.args.force_destroy {
            store.empty_bucket(name).await?;
        }
        match store.delete_bucket(name).await {
            // Objects written while the bucket was being emptied: once more.
            Err(e) if stored.args.force_destroy && e.kind == stackwright_core::ErrorKind::Conflict => {
                store.empty_bucket(name).await?;
                store.delete_bucket(name).await
            }
            other => other,
        }
    }

    async fn find(&self, _ctx: &OpContext, args: &BucketArgs) -> Result<Found<BucketOutputs>, ProviderError> {
        let found: Result<Option<Created<BucketOutputs>>, ProviderError> = async {
            let name = args.name.get();
            if self.shared.store.bucket_exists(name).await? {
                Ok(Some(Created { id: name.clone(), outputs: self.outputs(args) }))
            } else {
                Ok(None)
            }
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Bucket>>, ProviderError> {
        let base = BucketArgs::new(id.to_owned());
        Ok(self.observe(&base).await?.map(|args| Observed { id: id.to_owned(), outputs: self.outputs(&args), args }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert_eq!(bucket_name_problem("my-bucket.v2"), None);
        for bad in ["ab", "My-Bucket", "-abc", "abc-", "a..b", "192.168.1.1", "xn--abc", "under_score"] {
            assert!(bucket_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn normalisation_ignores_order_and_case_that_do_not_matter() {
        let a = vec![CorsRule::new(["https://b", "https://a"], ["put", "GET"]).allowed_headers(["Content-Type"])];
        let b = vec![CorsRule::new(["https://a", "https://b"], ["GET", "PUT"]).allowed_headers(["content-type"])];
        assert_eq!(normalized_cors(&a), normalized_cors(&b));
        let r1 = LifecycleRule::new("a", "tmp/").expire_after_days(1);
        let r2 = LifecycleRule::new("b", "").abort_incomplete_uploads_after_days(2);
        assert_eq!(normalized_lifecycle(&[r1.clone(), r2.clone()]), normalized_lifecycle(&[r2, r1]));
    }

    #[test]
    fn lifecycle_rules_need_unique_ids_and_an_action() {
        let mut out = Vec::new();
        check_lifecycle(&[LifecycleRule::new("a", ""), LifecycleRule::new("a", "").expire_after_days(0)], &mut out);
        let text: Vec<String> = out.iter().map(|f| f.message.clone()).collect();
        assert!(text.iter().any(|t| t.contains("no action")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("used twice")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("at least 1")), "{text:?}");
    }
}
