//! Deployments: file upload with SHA-1 check, create with `missing_files`, a time-driven build
//! state machine, list/get/cancel/delete, promote and rollback, and aliases.
//!
//! Build progress is computed from the clock rather than driven by background tasks, so a
//! paused or manually advanced clock moves builds forward deterministically. Side effects that
//! happen "when a build finishes" (alias assignment, production pointer) are applied by
//! [`settle`], which runs before every request touches the store.

use crate::app::{AppState, Scope};
use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::json::{self, Field, Obj, Params};
use crate::pagination::{PageRequest, paginate};
use crate::projects::{self, AliasRequest, project_not_found, resolve_project_id};
use crate::store::{Ctx, TeamData, Visibility};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::sync::Arc;

const CREATE_FIELDS: &[&str] = &[
    "name",
    "project",
    "target",
    "files",
    "gitSource",
    "gitMetadata",
    "projectSettings",
    "meta",
    "monorepoManager",
    "withLatestCommit",
    "customEnvironmentSlugOrId",
    "deploymentId",
];

const PROJECT_SETTINGS_FIELDS: &[&str] = &[
    "buildCommand",
    "commandForIgnoringBuildStep",
    "devCommand",
    "framework",
    "installCommand",
    "nodeVersion",
    "outputDirectory",
    "rootDirectory",
    "serverlessFunctionRegion",
    "skipGitConnectDuringLink",
    "sourceFilesOutsideRootDirectory",
];

/// Observable build states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued,
    Initializing,
    Building,
    Ready,
    Error,
    Canceled,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Initializing => "INITIALIZING",
            Self::Building => "BUILDING",
            Self::Ready => "READY",
            Self::Error => "ERROR",
            Self::Canceled => "CANCELED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "QUEUED" => Self::Queued,
            "INITIALIZING" => Self::Initializing,
            "BUILDING" => Self::Building,
            "READY" => Self::Ready,
            "ERROR" => Self::Error,
            "CANCELED" => Self::Canceled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Ready,
    Error { code: String, message: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub id: String,
    pub url: String,
    pub name: String,
    pub owner_id: String,
    pub project_id: String,
    pub target: Option<String>,
    pub created_at: i64,
    queued_until: u64,
    initializing_until: u64,
    building_until: u64,
    alias_delay: u64,
    outcome: Outcome,
    canceled_at: Option<u64>,
    /// Whether the end-of-build side effects have been applied.
    pub finalized: bool,
    alias_error: Option<Value>,
    files: Vec<Value>,
    git_ref: Option<String>,
    git_source: Option<Value>,
    project_settings: Option<Obj>,
    meta: Obj,
    fingerprint: String,
    creator: String,
    pub vis: Visibility,
}

impl Deployment {
    pub fn phase(&self, now: u64) -> Phase {
        if self.canceled_at.is_some_and(|c| now >= c) {
            return Phase::Canceled;
        }
        if now < self.queued_until {
            Phase::Queued
        } else if now < self.initializing_until {
            Phase::Initializing
        } else if now < self.building_until {
            Phase::Building
        } else {
            match self.outcome {
                Outcome::Ready => Phase::Ready,
                Outcome::Error { .. } => Phase::Error,
            }
        }
    }

    /// When end-of-build effects are due.
    fn settles_at(&self) -> u64 {
        match (self.canceled_at, &self.outcome) {
            (Some(c), _) => c,
            (None, Outcome::Ready) => self.building_until + self.alias_delay,
            (None, Outcome::Error { .. }) => self.building_until,
        }
    }

    fn alias_names(&self, team: &TeamData) -> Vec<String> {
        team.aliases.values().filter(|a| a.deployment_id == self.id).map(|a| a.alias.clone()).collect()
    }

    fn timestamps(&self, clock: &Clock, now: u64) -> (Option<i64>, Option<i64>) {
        let phase = self.phase(now);
        let building_at = (now >= self.initializing_until && phase != Phase::Canceled
            || self.canceled_at.is_some_and(|c| c >= self.initializing_until))
        .then(|| clock.epoch_of(self.initializing_until));
        let ready = match phase {
            Phase::Ready | Phase::Error => Some(clock.epoch_of(self.building_until)),
            Phase::Canceled => self.canceled_at.map(|c| clock.epoch_of(c)),
            _ => None,
        };
        (building_at, ready)
    }

    fn alias_assigned(&self, now: u64) -> bool {
        self.finalized && self.phase(now) == Phase::Ready
    }

    /// The `GET /v13/deployments/{id}` shape.
    pub fn to_json(&self, team: &TeamData, clock: &Clock, now: u64) -> Value {
        let phase = self.phase(now);
        let (building_at, ready) = self.timestamps(clock, now);
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("name".into(), json!(self.name));
        o.insert("url".into(), json!(self.url));
        o.insert("projectId".into(), json!(self.project_id));
        o.insert("ownerId".into(), json!(self.owner_id));
        o.insert("readyState".into(), json!(phase.as_str()));
        o.insert("status".into(), json!(phase.as_str()));
        o.insert("target".into(), json!(self.target));
        o.insert("type".into(), json!("LAMBDAS"));
        o.insert("version".into(), json!(2));
        o.insert("public".into(), json!(false));
        o.insert("regions".into(), json!(["iad1"]));
        o.insert("createdAt".into(), json!(self.created_at));
        o.insert("buildingAt".into(), json!(building_at));
        o.insert("ready".into(), json!(ready));
        o.insert("alias".into(), json!(self.alias_names(team)));
        o.insert("aliasAssigned".into(), json!(self.alias_assigned(now)));
        o.insert("aliasError".into(), json!(self.alias_error));
        o.insert("meta".into(), Value::Object(self.meta.clone()));
        o.insert("creator".into(), json!({ "uid": self.creator }));
        o.insert("source".into(), json!(if self.git_source.is_some() { "git" } else { "api" }));
        o.insert("inspectorUrl".into(), json!(format!("https://vercel.com/inspect/{}", self.id)));
        if let Some(g) = &self.git_source {
            o.insert("gitSource".into(), g.clone());
        }
        if let Some(s) = &self.project_settings {
            o.insert("projectSettings".into(), Value::Object(s.clone()));
        }
        if let Outcome::Error { code, message } = &self.outcome
            && phase == Phase::Error
        {
            o.insert("errorCode".into(), json!(code));
            o.insert("errorMessage".into(), json!(message));
        }
        match phase {
            Phase::Ready => {
                o.insert("checksConclusion".into(), json!("succeeded"));
            }
            Phase::Error | Phase::Canceled => {
                o.insert("checksConclusion".into(), json!("skipped"));
            }
            _ => {}
        }
        o.insert("fileCount".into(), json!(self.files.len()));
        Value::Object(o)
    }

    /// The short form used in project `targets` and `latestDeployments`.
    pub fn summary_json(&self, team: &TeamData, clock: &Clock, now: u64) -> Value {
        let (building_at, ready) = self.timestamps(clock, now);
        json!({
            "id": self.id,
            "url": self.url,
            "name": self.name,
            "readyState": self.phase(now).as_str(),
            "target": self.target,
            "createdAt": self.created_at,
            "buildingAt": building_at,
            "ready": ready,
            "alias": self.alias_names(team),
            "aliasAssigned": self.alias_assigned(now),
            "aliasError": self.alias_error,
        })
    }

    /// The `GET /v6/deployments` item shape (`uid`, `state`, `created`).
    fn list_json(&self, clock: &Clock, now: u64) -> Value {
        let phase = self.phase(now).as_str();
        let (building_at, ready) = self.timestamps(clock, now);
        json!({
            "uid": self.id,
            "name": self.name,
            "url": self.url,
            "created": self.created_at,
            "createdAt": self.created_at,
            "buildingAt": building_at,
            "ready": ready,
            "state": phase,
            "readyState": phase,
            "type": "LAMBDAS",
            "target": self.target,
            "projectId": self.project_id,
            "creator": { "uid": self.creator },
            "meta": self.meta,
            "aliasAssigned": self.alias_assigned(now),
            "aliasError": self.alias_error,
            "source": if self.git_source.is_some() { "git" } else { "api" },
            "inspectorUrl": format!("https://vercel.com/inspect/{}", self.id),
        })
    }
}

/// An alias hostname pointing at a deployment.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    pub uid: String,
    pub alias: String,
    pub deployment_id: String,
    pub project_id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub vis: Visibility,
}

fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl Alias {
    pub fn to_json(&self) -> Value {
        json!({
            "uid": self.uid,
            "alias": self.alias,
            "deploymentId": self.deployment_id,
            "projectId": self.project_id,
            "createdAt": self.created_at,
            "created": iso(self.created_at),
            "updatedAt": self.updated_at,
            "redirect": null,
        })
    }
}

fn deployment_not_found() -> ApiError {
    ApiError::not_found("Deployment not found")
}

fn alias_not_found() -> ApiError {
    ApiError::not_found("Alias not found")
}

/// Accepts a deployment id, its URL (with or without scheme) or an alias hostname.
fn find_deployment(team: &TeamData, key: &str) -> Option<String> {
    let host = key.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
    if team.deployments.contains_key(host) {
        return Some(host.to_owned());
    }
    team.deployments
        .values()
        .find(|d| d.url == host)
        .map(|d| d.id.clone())
        .or_else(|| team.aliases.get(host).map(|a| a.deployment_id.clone()))
}

/// Hostname-safe form of a project name or branch.
fn host_label(s: &str) -> String {
    let mut out: String =
        s.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_owned()
}

/// Points `name` at `deployment_id`; returns the deployment it pointed at before.
fn upsert_alias(ctx: &mut Ctx<'_>, name: &str, deployment_id: &str, project_id: &str) -> ApiResult<Option<String>> {
    if let Some(owner) = ctx.store.alias_owner(name)
        && owner != ctx.team_id
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "alias_in_use",
            format!("The alias \"{name}\" is already in use by another account."),
        ));
    }
    let epoch = ctx.epoch;
    if let Some(a) = ctx.team().aliases.get_mut(name) {
        let old = std::mem::replace(&mut a.deployment_id, deployment_id.to_owned());
        a.project_id = project_id.to_owned();
        a.updated_at = epoch;
        return Ok(Some(old));
    }
    let uid = ctx.store.new_id("", 24);
    let vis = ctx.visibility();
    ctx.team().aliases.insert(
        name.to_owned(),
        Alias {
            uid,
            alias: name.to_owned(),
            deployment_id: deployment_id.to_owned(),
            project_id: project_id.to_owned(),
            created_at: epoch,
            updated_at: epoch,
            vis,
        },
    );
    Ok(None)
}

/// Hostnames that follow a project's production deployment.
fn production_alias_names(ctx: &Ctx<'_>, project_id: &str) -> Vec<String> {
    let team = ctx.team_ref();
    let Some(p) = team.projects.get(project_id) else {
        return Vec::new();
    };
    let label = host_label(&p.name);
    let mut names = vec![format!("{label}.vercel.app"), format!("{label}-{}.vercel.app", host_label(&ctx.slug))];
    names.extend(
        team.domains.values().filter(|d| d.project_id == project_id && d.serves_production()).map(|d| d.name.clone()),
    );
    names
}

fn assign_production_aliases(ctx: &mut Ctx<'_>, project_id: &str) {
    let Some(dep) = ctx.team_ref().projects.get(project_id).and_then(|p| p.production_deployment.clone()) else {
        return;
    };
    for name in production_alias_names(ctx, project_id) {
        // A name held by another team is simply not assigned, like a taken `*.vercel.app`.
        let _ = upsert_alias(ctx, &name, &dep, project_id);
    }
}

/// Re-evaluates the alias of one project domain after it was added, changed or verified.
pub(crate) fn sync_domain_alias(ctx: &mut Ctx<'_>, name: &str) {
    let team = ctx.team_ref();
    let Some(domain) = team.domains.get(name) else {
        return;
    };
    let project_id = domain.project_id.clone();
    let production = team.projects.get(&project_id).and_then(|p| p.production_deployment.clone());
    match production {
        Some(dep) if domain.serves_production() => {
            let _ = upsert_alias(ctx, name, &dep, &project_id);
        }
        _ => {
            ctx.team().aliases.remove(name);
        }
    }
}

fn finalize(ctx: &mut Ctx<'_>, id: &str) {
    let now = ctx.now;
    let Some(d) = ctx.team().deployments.get_mut(id) else {
        return;
    };
    d.finalized = true;
    if d.phase(now) != Phase::Ready {
        return;
    }
    let (project_id, is_production, git_ref) =
        (d.project_id.clone(), d.target.as_deref() == Some("production"), d.git_ref.clone());
    if is_production {
        let Some(p) = ctx.team().projects.get_mut(&project_id) else {
            return;
        };
        if p.rollback_paused {
            return;
        }
        p.production_deployment = Some(id.to_owned());
        assign_production_aliases(ctx, &project_id);
    } else if let Some(branch) = git_ref {
        let Some(p) = ctx.team_ref().projects.get(&project_id) else {
            return;
        };
        let mut names =
            vec![format!("{}-git-{}-{}.vercel.app", host_label(&p.name), host_label(&branch), host_label(&ctx.slug))];
        names.extend(
            ctx.team_ref()
                .domains
                .values()
                .filter(|d| {
                    d.project_id == project_id
                        && d.verified
                        && d.redirect.is_none()
                        && d.git_branch.as_deref() == Some(branch.as_str())
                })
                .map(|d| d.name.clone()),
        );
        for name in names {
            let _ = upsert_alias(ctx, &name, id, &project_id);
        }
    }
}

fn complete_alias_request(ctx: &mut Ctx<'_>, project_id: &str) {
    let Some(p) = ctx.team().projects.get_mut(project_id) else {
        return;
    };
    let Some(req) = p.alias_request.as_mut() else {
        return;
    };
    req.completes_at = None;
    let to = req.to.clone();
    p.rollback_paused = req.kind == "rollback";
    p.production_deployment = Some(to);
    assign_production_aliases(ctx, project_id);
}

/// Applies every build completion and promote/rollback that is due, oldest first.
pub(crate) fn settle(ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    let team = ctx.team_ref();
    let mut due: Vec<(u64, i64, String)> = team
        .deployments
        .values()
        .filter(|d| !d.finalized && d.settles_at() <= now)
        .map(|d| (d.settles_at(), d.created_at, d.id.clone()))
        .collect();
    due.sort();
    let mut jobs: Vec<(u64, String)> = team
        .projects
        .values()
        .filter_map(|p| {
            let at = p.alias_request.as_ref()?.completes_at?;
            (at <= now).then(|| (at, p.id.clone()))
        })
        .collect();
    jobs.sort();
    for (_, _, id) in due {
        finalize(ctx, &id);
    }
    for (_, project_id) in jobs {
        complete_alias_request(ctx, &project_id);
    }
}

pub(crate) async fn upload_file(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body =
        body.map_err(|e| ApiError::new(e.status(), "payload_too_large", format!("The file could not be read: {e}")))?;
    let digest = headers
        .get("x-vercel-digest")
        .or_else(|| headers.get("x-now-digest"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| ApiError::bad_request("Missing `x-vercel-digest` header."))?;
    if headers.get("content-length").is_none() {
        return Err(ApiError::bad_request("Missing `Content-Length` header."));
    }
    let actual = hex::encode(Sha1::digest(&body));
    if actual != digest {
        return Err(ApiError::bad_request(format!(
            "The SHA1 of the uploaded file ({actual}) does not match the `x-vercel-digest` header ({digest})."
        ))
        .with("sha", digest));
    }
    app.with_ctx(&scope, |ctx| {
        ctx.team().files.insert(actual, body.len() as u64);
        Ok(Json(json!({})))
    })
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A `files[]` entry: a reference to an uploaded file or inline UTF-8 data.
struct FileEntry {
    file: String,
    sha: String,
    size: u64,
    inline: bool,
}

fn parse_files(obj: &Obj) -> ApiResult<Vec<FileEntry>> {
    let items = match obj.get("files") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::invalid("`files` should be array.")),
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(f) = item else {
                return Err(ApiError::invalid("`files` items should be object."));
            };
            json::reject_unknown(f, &["file", "sha", "size", "data", "encoding", "mode"])?;
            let file = json::required_string(f, "file")?;
            if let Field::Set(data) = json::string_field(f, "data")? {
                if let Field::Set(enc) = json::string_field(f, "encoding")?
                    && enc != "utf-8"
                {
                    return Err(ApiError::bad_request(
                        "The emulator only accepts inline file data with `encoding: \"utf-8\"`; upload other files with POST /v2/files.",
                    ));
                }
                return Ok(FileEntry {
                    file,
                    sha: hex::encode(Sha1::digest(data.as_bytes())),
                    size: data.len() as u64,
                    inline: true,
                });
            }
            let sha = json::required_string(f, "sha")?.to_ascii_lowercase();
            if !is_sha1(&sha) {
                return Err(ApiError::invalid(format!(
                    "`files[].sha` should be a SHA1 hex digest (got \"{sha}\")."
                )));
            }
            let size = json::u64_field(f, "size")?.into_option().unwrap_or(0);
            Ok(FileEntry {
                file,
                sha,
                size,
                inline: false,
            })
        })
        .collect()
}

/// Checks `gitSource` and returns the ref it builds.
fn parse_git_source(g: &Obj) -> ApiResult<String> {
    let kind = json::required_string(g, "type")?;
    let has = |k: &str| g.get(k).is_some_and(|v| !v.is_null());
    let ok = match kind.as_str() {
        "github" => has("repo") || has("repoId"),
        "gitlab" => has("projectId"),
        "bitbucket" => (has("owner") && has("slug")) || has("repoUuid"),
        other => {
            return Err(ApiError::invalid(format!(
                "`gitSource.type` should be one of \"github\", \"gitlab\", \"bitbucket\" (got \"{other}\")."
            )));
        }
    };
    if !ok {
        return Err(ApiError::invalid(format!("`gitSource` is missing the repository fields for type \"{kind}\".")));
    }
    match g.get("ref") {
        Some(Value::String(r)) if !r.is_empty() => Ok(r.clone()),
        _ => Err(ApiError::invalid("missing required property `gitSource.ref`.")),
    }
}

pub(crate) async fn create(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    params: Params,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    json::reject_unknown(&obj, CREATE_FIELDS)?;
    let name = json::required_string(&obj, "name")?;
    let project_ref = json::string_field(&obj, "project")?.into_option();
    let target = match json::string_field(&obj, "target")?.into_option().as_deref() {
        None | Some("preview") => None,
        Some(t @ ("production" | "staging")) => Some(t.to_owned()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`target` should be \"production\", \"preview\" or \"staging\" (got \"{other}\")."
            )));
        }
    };
    let files = parse_files(&obj)?;
    let git_source = json::object_field(&obj, "gitSource")?.into_option();
    let git_ref = git_source.as_ref().map(parse_git_source).transpose()?;
    if files.is_empty() && git_source.is_none() {
        return Err(ApiError::invalid("missing required property `files` (or `gitSource`)."));
    }
    let project_settings = json::object_field(&obj, "projectSettings")?.into_option();
    if let Some(s) = &project_settings {
        json::reject_unknown(s, PROJECT_SETTINGS_FIELDS).map_err(|e| {
            ApiError::bad_request(e.message.replace("Invalid request: ", "Invalid request: `projectSettings` "))
        })?;
    }
    let mut meta = json::object_field(&obj, "meta")?.into_option().unwrap_or_default();
    if meta.values().any(|v| !v.is_string()) {
        return Err(ApiError::invalid("`meta` values should be string."));
    }
    if let (Some(g), Some(r)) = (&git_source, &git_ref) {
        let kind = g.get("type").and_then(Value::as_str).unwrap_or("github");
        meta.insert(format!("{kind}CommitRef"), json!(r));
    }
    let force_new = params.flag("forceNew");
    let fingerprint = {
        let mut h = Sha256::new();
        let mut refs: Vec<(&str, &str)> = files.iter().map(|f| (f.file.as_str(), f.sha.as_str())).collect();
        refs.sort();
        h.update(format!("{refs:?}|{target:?}|{git_source:?}|{project_settings:?}"));
        hex::encode(h.finalize())
    };
    app.with_ctx(&scope, |ctx| {
        // Missing files are reported before anything is created, so the retry after the
        // uploads is the first call with an effect.
        let mut missing: Vec<String> = Vec::new();
        for f in files.iter().filter(|f| !f.inline) {
            if !ctx.team_ref().files.contains_key(&f.sha) && !missing.contains(&f.sha) {
                missing.push(f.sha.clone());
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "missing_files", "Missing files")
                .with("missing", json!(missing)));
        }
        let project_id = match &project_ref {
            Some(p) => resolve_project_id(ctx, p)?,
            None => match ctx.team_ref().find_project_id(&name) {
                Some(id) => id,
                None => {
                    // Deploying to an unknown name creates the project, as the real API does.
                    projects::validate_name(&name)?;
                    let p = projects::new_project(ctx, name.clone());
                    let id = p.id.clone();
                    ctx.team().projects.insert(id.clone(), p);
                    id
                }
            },
        };
        let team = ctx.team_ref();
        if !force_new
            && let Some(existing) = team.deployments.values().find(|d| {
                d.project_id == project_id
                    && d.fingerprint == fingerprint
                    && !matches!(d.phase(ctx.now), Phase::Error | Phase::Canceled)
            })
        {
            return Ok(Json(existing.to_json(team, ctx.clock, ctx.now)));
        }
        let project_name = team.projects[&project_id].name.clone();
        for f in files.iter().filter(|f| f.inline) {
            ctx.team().files.insert(f.sha.clone(), f.size);
        }
        let cfg = ctx.cfg.deployments.clone();
        let marker = files.iter().any(|f| f.file.rsplit('/').next() == Some(cfg.fail_marker_file.as_str()));
        let outcome = if marker {
            Outcome::Error {
                code: "BUILD_FAILED".into(),
                message: format!(
                    "Command \"npm run build\" exited with 1 (the deployment contains {})",
                    cfg.fail_marker_file
                ),
            }
        } else if ctx.store.chance(cfg.error_rate) {
            Outcome::Error { code: "BUILD_FAILED".into(), message: "Command \"npm run build\" exited with 1".into() }
        } else {
            Outcome::Ready
        };
        let id = ctx.store.new_id("dpl_", 28);
        let url =
            format!("{}-{}-{}.vercel.app", host_label(&project_name), ctx.store.lower_id(9), host_label(&ctx.slug));
        let now = ctx.now;
        let queued_until = now + cfg.queued_ms;
        let initializing_until = queued_until + cfg.initializing_ms;
        let created_at = ctx.created_at();
        let deployment = Deployment {
            id: id.clone(),
            url,
            name: project_name,
            owner_id: ctx.team_id.clone(),
            project_id,
            target,
            created_at,
            queued_until,
            initializing_until,
            building_until: initializing_until + cfg.building_ms,
            alias_delay: cfg.alias_delay_ms,
            outcome,
            canceled_at: None,
            finalized: false,
            alias_error: None,
            files: files.iter().map(|f| json!({ "file": f.file, "sha": f.sha, "size": f.size })).collect(),
            git_ref,
            git_source: git_source.map(Value::Object),
            project_settings,
            meta,
            fingerprint,
            creator: ctx.user_id.clone(),
            vis: ctx.visibility(),
        };
        ctx.team().deployments.insert(id.clone(), deployment);
        // Zero-length builds finish immediately; apply their effects before answering.
        settle(ctx);
        let team = ctx.team_ref();
        Ok(Json(team.deployments[&id].to_json(team, ctx.clock, ctx.now)))
    })
}

pub(crate) async fn get(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_url): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let id = find_deployment(ctx.team_ref(), &id_or_url).ok_or_else(deployment_not_found)?;
        let now = ctx.now;
        let d = ctx.team().deployments.get_mut(&id).ok_or_else(deployment_not_found)?;
        if !d.vis.read(now) {
            return Err(deployment_not_found());
        }
        let team = ctx.team_ref();
        Ok(Json(team.deployments[&id].to_json(team, ctx.clock, now)))
    })
}

pub(crate) async fn list(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_params(&params, &app.config().pagination)?;
    app.with_ctx(&scope, |ctx| {
        let project = match params.get("projectId") {
            Some(p) => Some(resolve_project_id(ctx, p)?),
            None => None,
        };
        let app_name = params.get("app");
        let target = params.get("target");
        let states: Option<Vec<&str>> = params.get("state").map(|s| s.split(',').collect());
        let now = ctx.now;
        let team = ctx.team_ref();
        let items: Vec<&Deployment> = team
            .deployments
            .values()
            .filter(|d| d.vis.listed(now))
            .filter(|d| project.as_ref().is_none_or(|p| &d.project_id == p))
            .filter(|d| app_name.is_none_or(|a| d.name == a))
            .filter(|d| target.is_none_or(|t| d.target.as_deref().unwrap_or("preview") == t))
            .filter(|d| states.as_ref().is_none_or(|s| s.contains(&d.phase(now).as_str())))
            .collect();
        let (items, pagination) = paginate(items, |d| d.created_at, page);
        let deployments: Vec<Value> = items.iter().map(|d| d.list_json(ctx.clock, now)).collect();
        Ok(Json(json!({ "deployments": deployments, "pagination": pagination })))
    })
}

pub(crate) fn delete_deployment(team: &mut TeamData, id: &str) -> bool {
    let Some(d) = team.deployments.remove(id) else {
        return false;
    };
    team.aliases.retain(|_, a| a.deployment_id != id);
    if let Some(p) = team.projects.get_mut(&d.project_id)
        && p.production_deployment.as_deref() == Some(id)
    {
        p.production_deployment = None;
    }
    true
}

pub(crate) async fn delete(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_url): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let id = find_deployment(ctx.team_ref(), &id_or_url).ok_or_else(deployment_not_found)?;
        delete_deployment(ctx.team(), &id);
        Ok(Json(json!({ "uid": id, "state": "DELETED" })))
    })
}

pub(crate) async fn cancel(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let id = find_deployment(ctx.team_ref(), &id).ok_or_else(deployment_not_found)?;
        let now = ctx.now;
        let d = ctx.team().deployments.get_mut(&id).ok_or_else(deployment_not_found)?;
        if !matches!(d.phase(now), Phase::Queued | Phase::Initializing | Phase::Building) {
            return Err(ApiError::bad_request(format!(
                "The deployment is {} and cannot be canceled.",
                d.phase(now).as_str()
            )));
        }
        d.canceled_at = Some(now);
        settle(ctx);
        let team = ctx.team_ref();
        Ok(Json(team.deployments[&id].to_json(team, ctx.clock, now)))
    })
}

/// Starts a promote or rollback; synchronous (201) when `promote_delay_ms` is 0, else 202.
fn start_alias_job(ctx: &mut Ctx<'_>, project: &str, deployment: &str, kind: &'static str) -> ApiResult<Response> {
    let project_id = resolve_project_id(ctx, project)?;
    let now = ctx.now;
    let team = ctx.team_ref();
    let p = team.projects.get(&project_id).ok_or_else(project_not_found)?;
    let d = team.deployments.get(deployment).filter(|d| d.project_id == project_id).ok_or_else(deployment_not_found)?;
    if d.phase(now) != Phase::Ready {
        return Err(ApiError::bad_request(format!(
            "Deployment {} is {}; only READY deployments can be used.",
            d.id,
            d.phase(now).as_str()
        )));
    }
    if p.alias_request.as_ref().is_some_and(|r| r.completes_at.is_some()) {
        return Err(ApiError::conflict("A promote or rollback is already in progress for this project."));
    }
    let current = p.production_deployment.clone();
    if kind == "rollback" {
        if d.target.as_deref() != Some("production") {
            return Err(ApiError::bad_request("Only production deployments can be rolled back to."));
        }
        if current.as_deref() == Some(deployment) {
            return Err(ApiError::bad_request("The deployment is already the current production deployment."));
        }
    }
    let delay = ctx.cfg.deployments.promote_delay_ms;
    let request = AliasRequest {
        kind,
        from: current,
        to: deployment.to_owned(),
        requested_at: ctx.epoch,
        completes_at: Some(now + delay),
    };
    if let Some(p) = ctx.team().projects.get_mut(&project_id) {
        p.alias_request = Some(request);
    }
    let status = if delay == 0 {
        complete_alias_request(ctx, &project_id);
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(json!({}))).into_response())
}

pub(crate) async fn promote(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, deployment)): Path<(String, String)>,
) -> ApiResult<Response> {
    app.with_ctx(&scope, |ctx| start_alias_job(ctx, &project, &deployment, "promote"))
}

pub(crate) async fn rollback(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, deployment)): Path<(String, String)>,
) -> ApiResult<Response> {
    app.with_ctx(&scope, |ctx| start_alias_job(ctx, &project, &deployment, "rollback"))
}

pub(crate) async fn create_alias(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    json::reject_unknown(&obj, &["alias", "redirect"])?;
    let alias = crate::domains::normalize_domain(&json::required_string(&obj, "alias")?)?;
    app.with_ctx(&scope, |ctx| {
        let id = find_deployment(ctx.team_ref(), &id).ok_or_else(deployment_not_found)?;
        let d = &ctx.team_ref().deployments[&id];
        if matches!(d.phase(ctx.now), Phase::Error | Phase::Canceled) {
            return Err(ApiError::bad_request(format!(
                "Deployment {id} is {} and cannot be aliased.",
                d.phase(ctx.now).as_str()
            )));
        }
        let project_id = d.project_id.clone();
        let old = upsert_alias(ctx, &alias, &id, &project_id)?;
        let a = &ctx.team_ref().aliases[&alias];
        Ok(Json(json!({
            "uid": a.uid,
            "alias": a.alias,
            "created": iso(a.created_at),
            "oldDeploymentId": old,
        })))
    })
}

pub(crate) async fn list_deployment_aliases(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let id = find_deployment(ctx.team_ref(), &id).ok_or_else(deployment_not_found)?;
        let aliases: Vec<Value> = ctx
            .team_ref()
            .aliases
            .values()
            .filter(|a| a.deployment_id == id && a.vis.listed(ctx.now))
            .map(Alias::to_json)
            .collect();
        Ok(Json(json!({ "aliases": aliases })))
    })
}

fn find_alias(team: &TeamData, key: &str) -> Option<String> {
    let key = key.to_ascii_lowercase();
    if team.aliases.contains_key(&key) {
        return Some(key);
    }
    team.aliases.values().find(|a| a.uid.eq_ignore_ascii_case(&key)).map(|a| a.alias.clone())
}

pub(crate) async fn get_alias(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let name = find_alias(ctx.team_ref(), &key).ok_or_else(alias_not_found)?;
        let now = ctx.now;
        let a = ctx.team().aliases.get_mut(&name).ok_or_else(alias_not_found)?;
        if !a.vis.read(now) {
            return Err(alias_not_found());
        }
        let mut out = a.to_json();
        let team = ctx.team_ref();
        if let (Some(o), Some(d)) = (out.as_object_mut(), team.deployments.get(&team.aliases[&name].deployment_id)) {
            o.insert("deployment".into(), json!({ "id": d.id, "url": d.url }));
        }
        Ok(Json(out))
    })
}

pub(crate) async fn delete_alias(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let name = find_alias(ctx.team_ref(), &key).ok_or_else(alias_not_found)?;
        ctx.team().aliases.remove(&name);
        Ok(Json(json!({ "status": "SUCCESS" })))
    })
}

/// Admin drift: force a deployment into a state or set an alias error.
pub(crate) fn admin_patch(ctx: &mut Ctx<'_>, id: &str, obj: &Obj) -> ApiResult<Value> {
    json::reject_unknown(obj, &["readyState", "errorCode", "errorMessage", "aliasError"])?;
    let now = ctx.now;
    let id = find_deployment(ctx.team_ref(), id).ok_or_else(deployment_not_found)?;
    let d = ctx.team().deployments.get_mut(&id).ok_or_else(deployment_not_found)?;
    if let Field::Set(state) = json::string_field(obj, "readyState")? {
        match Phase::parse(&state) {
            Some(Phase::Error) => {
                d.outcome = Outcome::Error {
                    code: json::string_field(obj, "errorCode")?.into_option().unwrap_or_else(|| "BUILD_FAILED".into()),
                    message: json::string_field(obj, "errorMessage")?
                        .into_option()
                        .unwrap_or_else(|| "Build failed".into()),
                };
                d.building_until = d.building_until.min(now);
                d.initializing_until = d.initializing_until.min(now);
                d.queued_until = d.queued_until.min(now);
            }
            Some(Phase::Ready) => {
                d.outcome = Outcome::Ready;
                d.building_until = d.building_until.min(now);
                d.initializing_until = d.initializing_until.min(now);
                d.queued_until = d.queued_until.min(now);
                d.alias_delay = 0;
                // Re-run the end-of-build effects for the new outcome.
                d.finalized = false;
            }
            Some(Phase::Canceled) => d.canceled_at = Some(now),
            _ => {
                return Err(ApiError::bad_request("readyState must be READY, ERROR or CANCELED"));
            }
        }
    }
    match obj.get("aliasError") {
        None => {}
        Some(Value::Null) => d.alias_error = None,
        Some(v) => d.alias_error = Some(v.clone()),
    }
    settle(ctx);
    let team = ctx.team_ref();
    Ok(team.deployments[&id].to_json(team, ctx.clock, now))
}
