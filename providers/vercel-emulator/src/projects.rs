//! Projects: create (v8/v10/v11), get (v9/v10), list, PATCH with sent/""/null/omitted semantics,
//! delete with cascade, and the Git link, unlink and production-branch endpoints.

use crate::app::{AppState, Scope};
use crate::clock::Clock;
use crate::env::{self, EnvVar};
use crate::error::{ApiError, ApiResult};
use crate::json::{self, Field, Obj, Params};
use crate::pagination::{PageRequest, paginate};
use crate::store::{Ctx, TeamData, Visibility};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Build settings stored as plain optional strings; `""` is kept as an explicit empty override.
const COMMAND_FIELDS: &[&str] = &["buildCommand", "installCommand", "devCommand", "outputDirectory"];

/// Settings the emulator does not interpret but stores and returns, so providers that manage
/// them see the round trip they would see against the real API.
const PASSTHROUGH_FIELDS: &[&str] = &[
    "autoAssignCustomDomains",
    "autoExposeSystemEnvs",
    "commandForIgnoringBuildStep",
    "customerSupportCodeVisibility",
    "directoryListing",
    "enableAffectedProjectsDeployments",
    "enablePreviewFeedback",
    "enableProductionFeedback",
    "gitComments",
    "gitForkProtection",
    "gitLFS",
    "gitProviderOptions",
    "oidcTokenConfig",
    "optionsAllowlist",
    "passwordProtection",
    "previewDeploymentsDisabled",
    "previewDeploymentSuffix",
    "protectionBypass",
    "publicSource",
    "resourceConfig",
    "serverlessFunctionRegion",
    "serverlessFunctionZeroConfigFailover",
    "skewProtectionBoundaryAt",
    "skewProtectionMaxAge",
    "sourceFilesOutsideRootDirectory",
    "ssoProtection",
    "trustedIps",
];

const CREATE_ONLY_FIELDS: &[&str] = &["gitRepository", "environmentVariables", "skipGitConnectDuringLink"];

const DEFAULT_NODE_VERSION: &str = "22.x";

/// A Git provider a project can be linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GitProvider {
    Github,
    Gitlab,
    Bitbucket,
}

impl GitProvider {
    pub fn parse(s: &str) -> ApiResult<Self> {
        match s {
            "github" => Ok(Self::Github),
            "gitlab" => Ok(Self::Gitlab),
            "bitbucket" => Ok(Self::Bitbucket),
            other => Err(ApiError::invalid(format!(
                "`type` should be equal to one of the allowed values \"github\", \"gitlab\", \"bitbucket\" (got \"{other}\")."
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Bitbucket => "bitbucket",
        }
    }
}

/// A project's connected repository.
#[derive(Debug, Clone)]
pub(crate) struct GitLink {
    pub provider: GitProvider,
    /// Everything before the last `/` (GitLab groups may nest).
    pub owner: String,
    pub name: String,
    pub production_branch: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl GitLink {
    pub fn parse(obj: &Obj, now: i64) -> ApiResult<Self> {
        json::reject_unknown(obj, &["type", "repo", "productionBranch"])?;
        let provider = GitProvider::parse(&json::required_string(obj, "type")?)?;
        let repo = json::required_string(obj, "repo")?;
        let (owner, name) = match repo.rsplit_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !o.starts_with('/') => (o, n),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "The repository `{repo}` is not valid: expected `owner/name`."
                )));
            }
        };
        let production_branch =
            json::string_field(obj, "productionBranch")?.into_option().unwrap_or_else(|| "main".into());
        Ok(Self {
            provider,
            owner: owner.to_owned(),
            name: name.to_owned(),
            production_branch,
            created_at: now,
            updated_at: now,
        })
    }

    /// Numeric repository ids differ per provider; hashing keeps them stable across runs.
    fn repo_id(&self) -> u64 {
        let digest = Sha256::digest(format!("{}/{}", self.owner, self.name));
        u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8])) % 1_000_000_000
    }

    pub fn to_json(&self) -> Value {
        let common = json!({
            "type": self.provider.as_str(),
            "productionBranch": self.production_branch,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "deployHooks": [],
            "gitCredentialId": "",
            "sourceless": true,
        });
        let specific = match self.provider {
            GitProvider::Github => json!({
                "org": self.owner,
                "repo": self.name,
                "repoId": self.repo_id(),
                "repoOwnerId": self.repo_id() / 7,
            }),
            GitProvider::Gitlab => json!({
                "projectId": self.repo_id().to_string(),
                "projectName": self.name,
                "projectNamespace": self.owner,
                "projectNameWithNamespace": format!("{} / {}", self.owner, self.name),
                "projectUrl": format!("https://gitlab.com/{}/{}", self.owner, self.name),
            }),
            GitProvider::Bitbucket => json!({
                "owner": self.owner,
                "slug": self.name,
                "name": self.name,
                "uuid": format!("{{{:032x}}}", self.repo_id()),
                "workspaceUuid": format!("{{{:032x}}}", self.repo_id() / 3),
            }),
        };
        let mut out = common;
        if let (Some(o), Value::Object(s)) = (out.as_object_mut(), specific) {
            o.extend(s);
        }
        out
    }
}

/// Record of the latest promote or rollback, exposed as `lastAliasRequest`.
#[derive(Debug, Clone)]
pub(crate) struct AliasRequest {
    pub kind: &'static str,
    pub from: Option<String>,
    pub to: String,
    pub requested_at: i64,
    /// Tick at which a pending request completes; `None` once it has.
    pub completes_at: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub framework: Option<String>,
    pub commands: BTreeMap<&'static str, Option<String>>,
    pub root_directory: Option<String>,
    pub node_version: String,
    pub extra: BTreeMap<String, Value>,
    pub link: Option<GitLink>,
    pub production_deployment: Option<String>,
    /// After a rollback new production builds stop taking the production aliases until the
    /// next promote, as on the real platform.
    pub rollback_paused: bool,
    pub alias_request: Option<AliasRequest>,
    pub vis: Visibility,
}

impl Project {
    pub fn to_json(&self, team: &TeamData, clock: &Clock) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("name".into(), json!(self.name));
        o.insert("accountId".into(), json!(self.account_id));
        o.insert("createdAt".into(), json!(self.created_at));
        o.insert("updatedAt".into(), json!(self.updated_at));
        o.insert("framework".into(), json!(self.framework));
        for (k, v) in &self.commands {
            o.insert((*k).into(), json!(v));
        }
        o.insert("rootDirectory".into(), json!(self.root_directory));
        o.insert("nodeVersion".into(), json!(self.node_version));
        for (k, v) in &self.extra {
            o.insert(k.clone(), v.clone());
        }
        if let Some(link) = &self.link {
            o.insert("link".into(), link.to_json());
        }
        o.insert("live".into(), json!(false));
        let now = clock.now_ms();
        let production = self
            .production_deployment
            .as_ref()
            .and_then(|id| team.deployments.get(id))
            .map(|d| d.summary_json(team, clock, now));
        let mut targets = Map::new();
        if let Some(p) = production {
            targets.insert("production".into(), p);
        }
        o.insert("targets".into(), Value::Object(targets));
        let latest: Vec<Value> = {
            let mut deps: Vec<_> = team.deployments.values().filter(|d| d.project_id == self.id).collect();
            deps.sort_by_key(|d| std::cmp::Reverse(d.created_at));
            deps.iter().take(5).map(|d| d.summary_json(team, clock, now)).collect()
        };
        o.insert("latestDeployments".into(), Value::Array(latest));
        o.insert(
            "lastAliasRequest".into(),
            self.alias_request.as_ref().map_or(Value::Null, |r| {
                json!({
                    "type": r.kind,
                    "fromDeploymentId": r.from,
                    "toDeploymentId": r.to,
                    "jobStatus": if r.completes_at.is_some() { "pending" } else { "succeeded" },
                    "requestedAt": r.requested_at,
                })
            }),
        );
        Value::Object(o)
    }
}

/// Vercel accepts lowercase letters, digits, `.`, `_` and `-`, up to 100 characters, and
/// rejects `---` (reserved as a separator in deployment hostnames).
pub(crate) fn validate_name(name: &str) -> ApiResult<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 100 || !ok_chars || name.contains("---") {
        return Err(ApiError::invalid(format!(
            "`name` must be 1-100 characters of lowercase letters, digits, `.`, `_` or `-`, and must not contain `---` (got \"{name}\")."
        )));
    }
    Ok(())
}

fn validate_framework(f: &str) -> ApiResult<()> {
    let ok =
        !f.is_empty() && f.len() <= 64 && f.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("`framework` should be a framework slug such as \"nextjs\" (got \"{f}\").")))
    }
}

/// Applies create/PATCH fields: a sent value is stored, `null` resets to the default, an
/// omitted field is untouched. `""` is stored as an explicit empty command; for `framework`
/// and `rootDirectory` it means the same as `null`.
fn apply_settings(p: &mut Project, obj: &Obj) -> ApiResult<()> {
    match json::string_field(obj, "name")? {
        Field::Absent => {}
        Field::Null => return Err(ApiError::invalid("`name` should be string.")),
        Field::Set(n) => {
            validate_name(&n)?;
            p.name = n;
        }
    }
    match json::string_field(obj, "framework")? {
        Field::Absent => {}
        Field::Null => p.framework = None,
        Field::Set(f) if f.is_empty() => p.framework = None,
        Field::Set(f) => {
            validate_framework(&f)?;
            p.framework = Some(f);
        }
    }
    for key in COMMAND_FIELDS {
        match json::string_field(obj, key)? {
            Field::Absent => {}
            Field::Null => {
                p.commands.insert(key, None);
            }
            Field::Set(v) => {
                p.commands.insert(key, Some(v));
            }
        }
    }
    match json::string_field(obj, "rootDirectory")? {
        Field::Absent => {}
        Field::Null => p.root_directory = None,
        Field::Set(v) if v.is_empty() => p.root_directory = None,
        Field::Set(v) => {
            if v.starts_with('/') || v.split('/').any(|s| s == "..") {
                return Err(ApiError::invalid("`rootDirectory` must be a relative path inside the repository."));
            }
            p.root_directory = Some(v);
        }
    }
    match json::string_field(obj, "nodeVersion")? {
        Field::Absent => {}
        Field::Null => p.node_version = DEFAULT_NODE_VERSION.into(),
        Field::Set(v) => {
            if !matches!(v.as_str(), "18.x" | "20.x" | "22.x" | "24.x") {
                return Err(ApiError::invalid(
                    "`nodeVersion` should be equal to one of the allowed values \"18.x\", \"20.x\", \"22.x\", \"24.x\".",
                ));
            }
            p.node_version = v;
        }
    }
    for key in PASSTHROUGH_FIELDS {
        match obj.get(*key) {
            None => {}
            Some(Value::Null) => {
                p.extra.remove(*key);
            }
            Some(v) => {
                p.extra.insert((*key).to_owned(), v.clone());
            }
        }
    }
    Ok(())
}

pub(crate) fn updatable_fields() -> Vec<&'static str> {
    let mut v = vec!["name", "framework", "rootDirectory", "nodeVersion"];
    v.extend_from_slice(COMMAND_FIELDS);
    v.extend_from_slice(PASSTHROUGH_FIELDS);
    v
}

pub(crate) fn project_not_found() -> ApiError {
    ApiError::not_found("Project not found")
}

/// Resolves a project for writes and sub-resources; writes go to the primary, so a project
/// that is still "invisible" to reads is found here.
pub(crate) fn resolve_project_id(ctx: &Ctx<'_>, id_or_name: &str) -> ApiResult<String> {
    ctx.team_ref().find_project_id(id_or_name).ok_or_else(project_not_found)
}

fn name_taken(team: &TeamData, name: &str, except: Option<&str>) -> bool {
    team.projects.values().any(|p| p.name == name && Some(p.id.as_str()) != except)
}

fn duplicate_error(name: &str) -> ApiError {
    ApiError::conflict(format!("Project \"{name}\" already exists."))
}

pub(crate) fn new_project(ctx: &mut Ctx<'_>, name: String) -> Project {
    let id = ctx.store.new_id("prj_", 28);
    let created = ctx.created_at();
    Project {
        id,
        name,
        account_id: ctx.team_id.clone(),
        created_at: created,
        updated_at: created,
        framework: None,
        commands: COMMAND_FIELDS.iter().map(|k| (*k, None)).collect(),
        root_directory: None,
        node_version: DEFAULT_NODE_VERSION.into(),
        extra: BTreeMap::new(),
        link: None,
        production_deployment: None,
        rollback_paused: false,
        alias_request: None,
        vis: ctx.visibility(),
    }
}

pub(crate) async fn create(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    body: Bytes,
) -> ApiResult<Response> {
    let obj = json::parse_object(&body)?;
    let mut allowed = updatable_fields();
    allowed.extend_from_slice(CREATE_ONLY_FIELDS);
    json::reject_unknown(&obj, &allowed)?;
    let name = json::required_string(&obj, "name")?;
    validate_name(&name)?;
    app.with_ctx(&scope, |ctx| {
        if name_taken(ctx.team_ref(), &name, None) {
            return Err(duplicate_error(&name));
        }
        let mut project = new_project(ctx, name);
        apply_settings(&mut project, &obj)?;
        if let Field::Set(repo) = json::object_field(&obj, "gitRepository")? {
            project.link = Some(GitLink::parse(&repo, project.created_at)?);
        }
        let envs = match obj.get("environmentVariables") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut envs: Vec<EnvVar> = Vec::new();
                for item in items {
                    let Value::Object(o) = item else {
                        return Err(ApiError::invalid("`environmentVariables` items should be object."));
                    };
                    let input = env::EnvInput::parse(o, true)?;
                    let var = input.into_env(ctx, &project.id);
                    if let Some(existing) = envs.iter().find(|e| env::conflicts(e, &var)) {
                        return Err(env::conflict_error(existing));
                    }
                    envs.push(var);
                }
                envs
            }
            Some(_) => {
                return Err(ApiError::invalid("`environmentVariables` should be array."));
            }
        };
        let clock = ctx.clock;
        let team = ctx.team();
        for e in envs {
            team.envs.insert(e.id.clone(), e);
        }
        let out = project.to_json(team, clock);
        team.projects.insert(project.id.clone(), project);
        Ok(Json(out).into_response())
    })
}

pub(crate) async fn get(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_name): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &id_or_name)?;
        let now = ctx.now;
        let clock = ctx.clock;
        let team = ctx.team();
        let project = team.projects.get_mut(&id).ok_or_else(project_not_found)?;
        if !project.vis.read(now) {
            return Err(project_not_found());
        }
        let project = &team.projects[&id];
        Ok(Json(project.to_json(team, clock)))
    })
}

pub(crate) async fn list(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_params(&params, &app.config().pagination)?;
    app.with_ctx(&scope, |ctx| {
        let team = ctx.team_ref();
        let search = params.get("search").unwrap_or("");
        let items: Vec<&Project> =
            team.projects.values().filter(|p| p.vis.listed(ctx.now) && p.name.contains(search)).collect();
        let (items, pagination) = paginate(items, |p| p.created_at, page);
        let projects: Vec<Value> = items.iter().map(|p| p.to_json(team, ctx.clock)).collect();
        Ok(Json(json!({ "projects": projects, "pagination": pagination })))
    })
}

pub(crate) fn patch_project(ctx: &mut Ctx<'_>, id: &str, obj: &Obj) -> ApiResult<Value> {
    let epoch = ctx.epoch;
    let clock = ctx.clock;
    let team = ctx.team();
    let mut updated = team.projects.get(id).cloned().ok_or_else(project_not_found)?;
    apply_settings(&mut updated, obj)?;
    if name_taken(team, &updated.name, Some(id)) {
        return Err(duplicate_error(&updated.name));
    }
    updated.updated_at = epoch;
    let out = updated.to_json(team, clock);
    team.projects.insert(id.to_owned(), updated);
    Ok(out)
}

pub(crate) async fn update(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    json::reject_unknown(&obj, &updatable_fields())?;
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &id_or_name)?;
        patch_project(ctx, &id, &obj).map(Json)
    })
}

/// Removes a project and everything that hangs off it.
pub(crate) fn delete_cascade(team: &mut TeamData, id: &str) -> bool {
    if team.projects.remove(id).is_none() {
        return false;
    }
    team.envs.retain(|_, e| e.project_id != id);
    team.domains.retain(|_, d| d.project_id != id);
    let deployments: Vec<String> =
        team.deployments.values().filter(|d| d.project_id == id).map(|d| d.id.clone()).collect();
    team.deployments.retain(|_, d| d.project_id != id);
    team.aliases.retain(|_, a| a.project_id != id && !deployments.contains(&a.deployment_id));
    true
}

pub(crate) async fn delete(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_name): Path<String>,
) -> ApiResult<StatusCode> {
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &id_or_name)?;
        delete_cascade(ctx.team(), &id);
        Ok(StatusCode::NO_CONTENT)
    })
}

pub(crate) async fn link(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &id_or_name)?;
        let link = GitLink::parse(&obj, ctx.epoch)?;
        let epoch = ctx.epoch;
        let clock = ctx.clock;
        let team = ctx.team();
        let p = team.projects.get_mut(&id).ok_or_else(project_not_found)?;
        p.link = Some(link);
        p.updated_at = epoch;
        Ok(Json(team.projects[&id].to_json(team, clock)))
    })
}

pub(crate) async fn unlink(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_name): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &id_or_name)?;
        let epoch = ctx.epoch;
        let clock = ctx.clock;
        let team = ctx.team();
        let p = team.projects.get_mut(&id).ok_or_else(project_not_found)?;
        if p.link.take().is_some() {
            p.updated_at = epoch;
        }
        Ok(Json(team.projects[&id].to_json(team, clock)))
    })
}

pub(crate) async fn set_branch(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(id_or_name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    json::reject_unknown(&obj, &["branch"])?;
    let branch = json::required_string(&obj, "branch")?;
    if branch.is_empty() {
        return Err(ApiError::invalid("`branch` should NOT be shorter than 1 characters."));
    }
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &id_or_name)?;
        let epoch = ctx.epoch;
        let clock = ctx.clock;
        let team = ctx.team();
        let p = team.projects.get_mut(&id).ok_or_else(project_not_found)?;
        let Some(link) = p.link.as_mut() else {
            return Err(ApiError::bad_request("The project is not connected to a Git repository."));
        };
        link.production_branch = branch;
        link.updated_at = epoch;
        p.updated_at = epoch;
        Ok(Json(team.projects[&id].to_json(team, clock)))
    })
}
