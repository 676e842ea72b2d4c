//! `vercel:Deployment`: a deployment of a local directory of built files.
//!
//! [`DeploymentArgs::from_dir`] reads the directory when the program runs and records every
//! file's SHA-1 and size, so the plan shows exactly which files changed. Creating the
//! deployment asks Vercel for it by digest; Vercel answers `missing_files` with the digests it
//! does not have yet, and only those files are uploaded. The provider then waits until the build
//! is `READY` (and, for production, until its aliases are assigned) or fails with the build's
//! error. The outputs hold the deployment's URL.
//!
//! A deployment is immutable: any change of the files, target, project or metadata replaces it
//! (create the new one, then delete the old one). The directory's path is only recorded, so the
//! same files built in another checkout plan no change.
//!
//! Each deployment is tagged with the engine's operation id in its `meta`, so a create that was
//! interrupted (a lost answer, or a crash) finds its deployment again instead of building twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use stackwright_core::{
    Args, CheckFailure, Created, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError,
    Resource, ResourceRef, Stored,
};

use crate::client::now_ms;
use crate::common::{Shared, str_field};
use crate::project::Project;

/// The `meta` key that carries the engine's operation id.
pub const OPERATION_META_KEY: &str = "stackwrightOperation";

/// How often the whole create may be told about missing files before giving up.
const UPLOAD_ROUNDS: usize = 3;

/// The `vercel:Deployment` resource type.
pub struct Deployment;

impl Resource for Deployment {
    const TYPE: &'static str = "vercel:Deployment";
    type Args = DeploymentArgs;
    type Outputs = DeploymentOutputs;
}

/// Where a deployment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentTarget {
    /// A preview deployment with its own URL.
    #[default]
    Preview,
    /// A production deployment: once ready it serves the project's production domains
    /// (unless production was rolled back; see `Promotion`).
    Production,
}

/// One file of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// The SHA-1 of the content, in hex.
    pub sha: String,
    /// The size in bytes.
    pub size: u64,
}

/// Arguments of `vercel:Deployment`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct DeploymentArgs {
    /// The project's id (wire `project.id()`).
    #[sw(replace)]
    pub project_id: Input<String>,
    /// The project's name, which Vercel uses in the deployment's URL (wire `project.name`).
    #[sw(replace)]
    pub project_name: Input<String>,
    /// The directory the files are read from. Only recorded: moving it changes nothing.
    pub directory: String,
    /// Every file, by path relative to the directory (with `/` separators).
    #[sw(replace)]
    pub files: BTreeMap<String, FileDigest>,
    /// Production or preview.
    #[sw(replace)]
    #[serde(default)]
    pub target: DeploymentTarget,
    /// Free-form metadata stored with the deployment.
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, FileDigest>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() == ".git" {
                continue;
            }
            walk(root, &path, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let bytes = std::fs::read(&path)?;
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            files.insert(name.join("/"), FileDigest { sha: sha1_hex(&bytes), size: bytes.len() as u64 });
        }
    }
    Ok(())
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

impl DeploymentArgs {
    /// A deployment of the files under `dir` (read now) to `project`.
    pub fn from_dir(
        project: &ResourceRef<Project>,
        dir: impl AsRef<Path>,
        target: DeploymentTarget,
    ) -> std::io::Result<Self> {
        Self::for_project(project.id(), project.name.clone(), dir, target)
    }

    /// Like [`DeploymentArgs::from_dir`], with the project's id and name given separately.
    pub fn for_project(
        project_id: impl Into<Input<String>>,
        project_name: impl Into<Input<String>>,
        dir: impl AsRef<Path>,
        target: DeploymentTarget,
    ) -> std::io::Result<Self> {
        let dir = dir.as_ref();
        let mut files = BTreeMap::new();
        walk(dir, dir, &mut files)?;
        if files.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} holds no files to deploy", dir.display()),
            ));
        }
        Ok(DeploymentArgs {
            project_id: project_id.into(),
            project_name: project_name.into(),
            directory: dir.to_string_lossy().into_owned(),
            files,
            target,
            meta: BTreeMap::new(),
        })
    }

    /// Adds a metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.insert(key.into(), value.into());
        self
    }
}

/// Outputs of `vercel:Deployment`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct DeploymentOutputs {
    /// The deployment id, `dpl_…` (also the resource's id).
    #[sw(computed)]
    pub id: String,
    /// Its unique URL, `https://…vercel.app`.
    #[sw(computed)]
    pub url: String,
    /// `READY` once created; `ERROR` or `CANCELED` if something happened to it later.
    #[sw(computed)]
    pub ready_state: String,
    /// The dashboard page with its build logs.
    #[sw(computed)]
    pub inspector_url: String,
    /// When it was created, in Unix milliseconds.
    #[sw(computed)]
    pub created_at: i64,
}

fn outputs(d: &Value) -> DeploymentOutputs {
    let url = str_field(d, "url").unwrap_or_default();
    DeploymentOutputs {
        id: str_field(d, "id").or_else(|| str_field(d, "uid")).unwrap_or_default(),
        url: if url.is_empty() || url.starts_with("http") { url } else { format!("https://{url}") },
        ready_state: str_field(d, "readyState").or_else(|| str_field(d, "state")).unwrap_or_default(),
        inspector_url: str_field(d, "inspectorUrl").unwrap_or_default(),
        created_at: d.get("createdAt").or_else(|| d.get("created")).and_then(Value::as_i64).unwrap_or_default(),
    }
}

/// How a wait for a build ended.
enum Waited {
    Ready(Value),
    /// The build failed or was canceled: the message for the user.
    Failed(String),
}

/// The handler for `vercel:Deployment`.
pub(crate) struct DeploymentHandler {
    pub shared: Arc<Shared>,
}

impl DeploymentHandler {
    fn poll_interval(&self) -> Duration {
        self.shared.client.config.poll_interval
    }

    /// Reads `files[path]` from the directory, checking it still has the planned digest.
    fn read_file(args: &DeploymentArgs, sha: &str) -> Result<Vec<u8>, ProviderError> {
        let (path, _) = args.files.iter().find(|(_, f)| f.sha == sha).ok_or_else(|| {
            ProviderError::other(format!(
                "Vercel asked for a file with digest {sha}, which this deployment does not have"
            ))
        })?;
        let full: PathBuf = Path::new(&args.directory).join(path);
        let bytes = std::fs::read(&full)
            .map_err(|e| ProviderError::invalid_input(format!("cannot read {} to upload it: {e}", full.display())))?;
        if sha1_hex(&bytes) != sha {
            return Err(ProviderError::invalid_input(format!(
                "{} changed after the program read it; run again to deploy the new content",
                full.display()
            )));
        }
        Ok(bytes)
    }

    /// Waits until deployment `id` is ready (with aliases assigned for production) or failed.
    async fn wait(&self, id: &str, production: bool) -> Result<Waited, ProviderError> {
        let started = Instant::now();
        let config = &self.shared.client.config;
        let visible_within = config.consistency_grace.max(Duration::from_secs(10));
        let path = format!("/v13/deployments/{id}");
        loop {
            match self.shared.client.send(Method::GET, &path, &[], None, &[]).await {
                Ok(d) => {
                    let state = str_field(&d, "readyState").unwrap_or_default();
                    match state.as_str() {
                        "READY" => {
                            if let Some(err) = d.get("aliasError").filter(|e| !e.is_null()) {
                                let why =
                                    err.get("message").and_then(Value::as_str).map_or(err.to_string(), str::to_owned);
                                return Ok(Waited::Failed(format!(
                                    "deployment {id} is ready but its aliases could not be assigned: {why}"
                                )));
                            }
                            let assigned =
                                d.get("aliasAssigned").is_some_and(|a| a.as_bool() != Some(false) && !a.is_null());
                            if !production || assigned {
                                return Ok(Waited::Ready(d));
                            }
                        }
                        "ERROR" => {
                            let code = str_field(&d, "errorCode").unwrap_or_else(|| "ERROR".into());
                            let message = str_field(&d, "errorMessage").unwrap_or_else(|| "the build failed".into());
                            let inspect =
                                str_field(&d, "inspectorUrl").map(|u| format!(" (logs: {u})")).unwrap_or_default();
                            return Ok(Waited::Failed(format!(
                                "build of deployment {id} failed: {code}: {message}{inspect}"
                            )));
                        }
                        "CANCELED" => return Ok(Waited::Failed(format!("deployment {id} was canceled"))),
                        _ => {}
                    }
                }
                // A deployment we just created may not be visible yet.
                Err(f) if f.is_not_found() && started.elapsed() < visible_within => {}
                Err(f) => return Err(f.into_error(&format!("waiting for deployment {id}"))),
            }
            if started.elapsed() > config.deployment_timeout {
                return Err(ProviderError::other(format!(
                    "deployment {id} was not ready after {:?}; Stackwright stops waiting (the build may still finish: see the dashboard)",
                    config.deployment_timeout
                )));
            }
            tokio::time::sleep(self.poll_interval()).await;
        }
    }

    /// The deployment of `project` that operation `op` created, if any.
    async fn by_operation(&self, project: &str, op: &str) -> Result<Option<Value>, ProviderError> {
        let all = self.shared.client.list_all("/v6/deployments", &[("projectId", project)], "deployments").await;
        let all = match all {
            Ok(all) => all,
            Err(f) if f.is_not_found() => return Ok(None),
            Err(f) => return Err(f.into_error(&format!("looking for the deployments of project {project}"))),
        };
        Ok(all
            .into_iter()
            .find(|d| d.pointer(&format!("/meta/{OPERATION_META_KEY}")).and_then(Value::as_str) == Some(op)))
    }

    async fn finish(&self, op: &str, id: &str, production: bool) -> Result<Created<DeploymentOutputs>, ProviderError> {
        match self.wait(id, production).await? {
            Waited::Ready(d) => {
                self.shared.settle(op);
                Ok(Created { id: id.to_owned(), outputs: outputs(&d) })
            }
            Waited::Failed(message) => {
                self.shared.settle(op);
                Err(ProviderError::other(message))
            }
        }
    }
}

#[async_trait]
impl Handler<Deployment> for DeploymentHandler {
    fn check(&self, args: &DeploymentArgs) -> Vec<CheckFailure> {
        // No files is allowed here: an imported deployment records none (Vercel does not list
        // them) and is kept with `ignore_changes(["files"])`. Creating one needs files.
        let mut failures = Vec::new();
        if let Some((path, _)) = args.files.iter().find(|(_, f)| f.sha.len() != 40) {
            failures.push(CheckFailure::at("files", format!("`{path}` has no SHA-1 digest")));
        }
        if args.meta.contains_key(OPERATION_META_KEY) {
            failures.push(CheckFailure::at("meta", format!("`{OPERATION_META_KEY}` is reserved by the provider")));
        }
        failures
    }

    async fn create(
        &self,
        ctx: &OpContext,
        args: &DeploymentArgs,
    ) -> Result<Created<DeploymentOutputs>, ProviderError> {
        let op = ctx.operation_id.as_str();
        let project = args.project_id.get();
        let production = args.target == DeploymentTarget::Production;
        if args.files.is_empty() {
            return Err(ProviderError::invalid_input(format!(
                "a deployment to project {project} needs at least one file (use DeploymentArgs::from_dir)"
            )));
        }
        // A retry of a create whose deployment was accepted: wait for that one.
        if let Some(id) = self.shared.known_deployment(op) {
            return self.finish(op, &id, production).await;
        }
        if self.shared.unknown_attempt(op).is_some()
            && let Some(d) = self.by_operation(project, op).await?
        {
            let id = outputs(&d).id;
            self.shared.remember_deployment(op, &id);
            return self.finish(op, &id, production).await;
        }
        let files: Vec<Value> =
            args.files.iter().map(|(file, f)| json!({ "file": file, "sha": f.sha, "size": f.size })).collect();
        let mut meta: Map<String, Value> = args.meta.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        meta.insert(OPERATION_META_KEY.into(), json!(op));
        let mut body = json!({
            "name": args.project_name.get(),
            "project": project,
            "files": files,
            "meta": meta,
        });
        if production {
            body["target"] = json!("production");
        }
        let query = [("skipAutoDetectionConfirmation", "1"), ("forceNew", "1")];
        let context = format!("deploying {} to project {project}", args.directory);
        for _ in 0..UPLOAD_ROUNDS {
            let started = now_ms();
            match self.shared.client.send(Method::POST, "/v13/deployments", &query, Some(&body), &[]).await {
                Ok(d) => {
                    let id = outputs(&d).id;
                    self.shared.remember_deployment(op, &id);
                    return self.finish(op, &id, production).await;
                }
                Err(f) if f.code() == Some("missing_files") => {
                    let missing: Vec<String> = match &f {
                        crate::client::Failure::Api(e) => e
                            .error
                            .get("missing")
                            .and_then(Value::as_array)
                            .map(|m| m.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                            .unwrap_or_default(),
                        crate::client::Failure::Transport(_) => Vec::new(),
                    };
                    tracing::debug!(target: crate::client::LOG_TARGET, "{} file(s) to upload for {context}", missing.len());
                    for sha in &missing {
                        let bytes = Self::read_file(args, sha)?;
                        self.shared
                            .client
                            .upload(sha, bytes)
                            .await
                            .map_err(|f| f.into_error(&format!("{context}: uploading {sha}")))?;
                    }
                }
                Err(f) => return Err(self.shared.create_failed(op, started, f, &context)),
            }
        }
        Err(ProviderError::transient(format!(
            "{context}: Vercel still reports missing files after {UPLOAD_ROUNDS} uploads"
        )))
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Deployment>,
    ) -> Result<Option<Observed<Deployment>>, ProviderError> {
        let path = format!("/v13/deployments/{}", stored.id);
        let get = || async {
            match self.shared.client.send(Method::GET, &path, &[], None, &[]).await {
                Ok(d) => Ok(Some(d)),
                Err(f) if f.is_not_found() => Ok(None),
                Err(f) => Err(f.into_error(&format!("reading deployment {}", stored.id))),
            }
        };
        let found = self.shared.read_lagging(stored.outputs.created_at, get).await?;
        // The files cannot be read back; a deployment never changes them.
        Ok(found.map(|d| Observed { id: stored.id.clone(), args: stored.args.clone(), outputs: outputs(&d) }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Deployment>,
        _args: &DeploymentArgs,
        _changes: &[PropertyChange],
    ) -> Result<DeploymentOutputs, ProviderError> {
        // Only the recorded directory can change in place; nothing to tell Vercel.
        Ok(stored.outputs.clone())
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Deployment>) -> Result<(), ProviderError> {
        let path = format!("/v13/deployments/{}", stored.id);
        match self.shared.client.send(Method::DELETE, &path, &[], None, &[]).await {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(f.into_error(&format!("deleting deployment {}", stored.id))),
        }
    }

    async fn find(&self, ctx: &OpContext, args: &DeploymentArgs) -> Result<Found<DeploymentOutputs>, ProviderError> {
        let found: Result<Option<Created<DeploymentOutputs>>, ProviderError> = async {
            let Some(d) = self.by_operation(args.project_id.get(), &ctx.operation_id).await? else {
                return Ok(None);
            };
            let id = outputs(&d).id;
            match self.wait(&id, args.target == DeploymentTarget::Production).await? {
                Waited::Ready(d) => Ok(Some(Created { id, outputs: outputs(&d) })),
                // A failed build is not worth adopting; the next create makes a new one.
                Waited::Failed(_) => Ok(None),
            }
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Deployment>>, ProviderError> {
        let path = format!("/v13/deployments/{id}");
        let d = match self.shared.client.send(Method::GET, &path, &[], None, &[]).await {
            Ok(d) => d,
            Err(f) if f.is_not_found() => return Ok(None),
            Err(f) => return Err(f.into_error(&format!("importing deployment {id}"))),
        };
        let meta: BTreeMap<String, String> = d
            .get("meta")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != OPERATION_META_KEY && !k.ends_with("CommitRef"))
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let target = match str_field(&d, "target").as_deref() {
            Some("production") => DeploymentTarget::Production,
            _ => DeploymentTarget::Preview,
        };
        // The API does not list a deployment's files: an imported deployment records none, so
        // a program that declares files replaces it on the next `up` (or ignores `files`).
        let args = DeploymentArgs {
            project_id: Input::Value(str_field(&d, "projectId").unwrap_or_default()),
            project_name: Input::Value(str_field(&d, "name").unwrap_or_default()),
            directory: String::new(),
            files: BTreeMap::new(),
            target,
            meta,
        };
        Ok(Some(Observed { id: outputs(&d).id, args, outputs: outputs(&d) }))
    }
}
