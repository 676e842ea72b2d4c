//! Environment variables: create (object or array, `upsert`), paginated list with `decrypt`,
//! single read, PATCH, delete and batch delete, with the key/branch/target conflict rules.

use crate::app::{AppState, Scope};
use crate::error::{ApiError, ApiResult};
use crate::json::{self, Field, Obj, Params};
use crate::pagination::{PageRequest, paginate};
use crate::projects::resolve_project_id;
use crate::store::{Ctx, Visibility};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub(crate) const TARGETS: &[&str] = &["production", "preview", "development"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvType {
    Plain,
    Encrypted,
    Sensitive,
    System,
    Secret,
}

impl EnvType {
    fn parse(s: &str) -> ApiResult<Self> {
        Ok(match s {
            "plain" => Self::Plain,
            "encrypted" => Self::Encrypted,
            "sensitive" => Self::Sensitive,
            "system" => Self::System,
            "secret" => Self::Secret,
            other => {
                return Err(ApiError::invalid(format!(
                    "`type` should be equal to one of the allowed values \"system\", \"secret\", \"encrypted\", \"plain\", \"sensitive\" (got \"{other}\")."
                )));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Encrypted => "encrypted",
            Self::Sensitive => "sensitive",
            Self::System => "system",
            Self::Secret => "secret",
        }
    }

    /// Types whose list value is ciphertext unless `decrypt=true`.
    fn encrypted_at_rest(self) -> bool {
        matches!(self, Self::Encrypted | Self::Secret)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct EnvVar {
    pub id: String,
    pub project_id: String,
    pub key: String,
    pub value: String,
    pub kind: EnvType,
    pub target: Vec<String>,
    pub git_branch: Option<String>,
    pub comment: Option<String>,
    pub custom_environment_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub vis: Visibility,
}

/// How much of the value a response may show.
#[derive(Debug, Clone, Copy)]
enum Reveal {
    /// Plaintext unless sensitive (single reads, create/PATCH answers).
    Decrypted,
    /// The list endpoint: encrypted values stay ciphertext unless `decrypt=true`.
    Listed { decrypt: bool },
}

impl EnvVar {
    fn to_json(&self, reveal: Reveal) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("key".into(), json!(self.key));
        o.insert("type".into(), json!(self.kind.as_str()));
        o.insert("target".into(), json!(self.target));
        o.insert("gitBranch".into(), json!(self.git_branch));
        o.insert("comment".into(), json!(self.comment));
        o.insert("customEnvironmentIds".into(), json!(self.custom_environment_ids));
        o.insert("configurationId".into(), Value::Null);
        o.insert("createdAt".into(), json!(self.created_at));
        o.insert("updatedAt".into(), json!(self.updated_at));
        // A sensitive value must never leave the emulator, whatever was asked for.
        if self.kind != EnvType::Sensitive {
            let decrypted = match reveal {
                Reveal::Decrypted => true,
                Reveal::Listed { decrypt } => decrypt || !self.kind.encrypted_at_rest(),
            };
            let value = if decrypted { self.value.clone() } else { self.ciphertext() };
            o.insert("value".into(), json!(value));
            o.insert("decrypted".into(), json!(decrypted));
        } else {
            o.insert("decrypted".into(), json!(false));
        }
        Value::Object(o)
    }

    /// Admin view: everything, including sensitive values.
    pub fn admin_json(&self) -> Value {
        let mut v = self.to_json(Reveal::Decrypted);
        if let Some(o) = v.as_object_mut() {
            o.insert("value".into(), json!(self.value));
            o.insert("projectId".into(), json!(self.project_id));
        }
        v
    }

    /// Stands in for real ciphertext: opaque, stable, and different from the plaintext, so a
    /// provider that forgets `decrypt=true` sees drift just as it would against Vercel.
    fn ciphertext(&self) -> String {
        let digest = Sha256::digest(format!("{}\0{}", self.id, self.value));
        format!("enc:{}", hex::encode(&digest[..24]))
    }

    fn validate(&self) -> ApiResult<()> {
        validate_key(&self.key)?;
        if self.target.is_empty() && self.custom_environment_ids.is_empty() {
            return Err(ApiError::invalid("`target` should NOT have fewer than 1 items."));
        }
        if let Some(bad) = self.target.iter().find(|t| !TARGETS.contains(&t.as_str())) {
            return Err(ApiError::invalid(format!(
                "`target` items should be equal to one of the allowed values \"production\", \"preview\", \"development\" (got \"{bad}\")."
            )));
        }
        if self.kind == EnvType::Sensitive && self.target.iter().any(|t| t == "development") {
            return Err(ApiError::bad_request(
                "Sensitive environment variables cannot be created in the Development environment.",
            ));
        }
        if self.git_branch.is_some() && self.target != ["preview"] {
            return Err(ApiError::bad_request("`gitBranch` can only be set when `target` is only \"preview\"."));
        }
        Ok(())
    }
}

fn validate_key(key: &str) -> ApiResult<()> {
    let mut chars = key.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 256;
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "The name of an environment variable can only contain letters, digits and underscores, and cannot start with a digit (got \"{key}\")."
        )))
    }
}

/// Same key, same branch and at least one shared target (or custom environment).
pub(crate) fn conflicts(a: &EnvVar, b: &EnvVar) -> bool {
    a.id != b.id
        && a.project_id == b.project_id
        && a.key == b.key
        && a.git_branch == b.git_branch
        && (a.target.iter().any(|t| b.target.contains(t))
            || a.custom_environment_ids.iter().any(|c| b.custom_environment_ids.contains(c)))
}

fn conflict_message(existing: &EnvVar) -> String {
    let mut msg = format!(
        "A variable with the name `{}` already exists for the target {}",
        existing.key,
        existing.target.join(",")
    );
    if let Some(b) = &existing.git_branch {
        msg.push_str(&format!(" on branch {b}"));
    }
    msg
}

pub(crate) fn conflict_error(existing: &EnvVar) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ENV_CONFLICT", conflict_message(existing))
        .with("key", existing.key.clone())
        .with("envVarKey", existing.key.clone())
        .with("target", json!(existing.target))
        .with("gitBranch", json!(existing.git_branch))
}

/// A parsed create body item.
#[derive(Debug, Clone)]
pub(crate) struct EnvInput {
    key: String,
    value: String,
    kind: EnvType,
    target: Vec<String>,
    git_branch: Option<String>,
    comment: Option<String>,
    custom_environment_ids: Vec<String>,
}

impl EnvInput {
    /// `inline` is the `environmentVariables[]` form of project create, where `type` may be
    /// omitted (it then defaults to `encrypted`, the dashboard default).
    pub fn parse(obj: &Obj, inline: bool) -> ApiResult<Self> {
        json::reject_unknown(obj, &["key", "value", "type", "target", "gitBranch", "comment", "customEnvironmentIds"])?;
        let kind = match json::string_field(obj, "type")? {
            Field::Set(t) => EnvType::parse(&t)?,
            _ if inline => EnvType::Encrypted,
            _ => return Err(ApiError::invalid("missing required property `type`.")),
        };
        let custom_environment_ids =
            json::string_list_field(obj, "customEnvironmentIds")?.into_option().unwrap_or_default();
        let target = match json::string_list_field(obj, "target")? {
            Field::Set(t) => json::dedup(t),
            _ if !custom_environment_ids.is_empty() => Vec::new(),
            _ => return Err(ApiError::invalid("missing required property `target`.")),
        };
        Ok(Self {
            key: json::required_string(obj, "key")?,
            value: json::required_string(obj, "value")?,
            kind,
            target,
            git_branch: json::string_field(obj, "gitBranch")?.into_option().filter(|b| !b.is_empty()),
            comment: json::string_field(obj, "comment")?.into_option(),
            custom_environment_ids: json::dedup(custom_environment_ids),
        })
    }

    /// Builds (and validates) a new variable; the id is only drawn once validation passed.
    pub fn into_env(self, ctx: &mut Ctx<'_>, project_id: &str) -> EnvVar {
        let created = ctx.created_at();
        EnvVar {
            id: ctx.store.new_id("", 16),
            project_id: project_id.to_owned(),
            key: self.key,
            value: self.value,
            kind: self.kind,
            target: self.target,
            git_branch: self.git_branch,
            comment: self.comment,
            custom_environment_ids: self.custom_environment_ids,
            created_at: created,
            updated_at: created,
            vis: ctx.visibility(),
        }
    }

    fn check(&self) -> ApiResult<()> {
        EnvVar {
            id: String::new(),
            project_id: String::new(),
            key: self.key.clone(),
            value: String::new(),
            kind: self.kind,
            target: self.target.clone(),
            git_branch: self.git_branch.clone(),
            comment: None,
            custom_environment_ids: self.custom_environment_ids.clone(),
            created_at: 0,
            updated_at: 0,
            vis: Visibility::default(),
        }
        .validate()
    }
}

fn env_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Environment Variable \"{id}\" not found"))
}

pub(crate) async fn create(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(project): Path<String>,
    params: Params,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let upsert = params.flag("upsert");
    let (items, is_array) = match json::parse_body(&body)? {
        Value::Object(o) => (vec![o], false),
        Value::Array(items) => {
            let objs = items
                .into_iter()
                .map(|v| match v {
                    Value::Object(o) => Ok(o),
                    _ => Err(ApiError::invalid("body items should be object.")),
                })
                .collect::<ApiResult<Vec<_>>>()?;
            (objs, true)
        }
        _ => return Err(ApiError::invalid("body should be object or array.")),
    };
    let inputs = items
        .iter()
        .map(|o| {
            let input = EnvInput::parse(o, false)?;
            input.check()?;
            Ok(input)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let mut created = Vec::new();
        let mut failed = Vec::new();
        for input in inputs {
            let candidate = input.into_env(ctx, &project_id);
            let epoch = ctx.epoch;
            let team = ctx.team();
            let clashing: Vec<String> =
                team.envs.values().filter(|e| conflicts(e, &candidate)).map(|e| e.id.clone()).collect();
            match clashing.as_slice() {
                [] => {
                    created.push(candidate.to_json(Reveal::Decrypted));
                    team.envs.insert(candidate.id.clone(), candidate);
                }
                [only] if upsert => {
                    let existing = team.envs.get_mut(only).ok_or_else(|| env_not_found(only))?;
                    existing.value = candidate.value;
                    existing.kind = candidate.kind;
                    existing.target = candidate.target;
                    existing.comment = candidate.comment;
                    existing.custom_environment_ids = candidate.custom_environment_ids;
                    existing.updated_at = epoch;
                    created.push(existing.to_json(Reveal::Decrypted));
                }
                [first, ..] => {
                    let err = conflict_error(&team.envs[first]);
                    if !is_array {
                        return Err(err);
                    }
                    let mut body = err.body();
                    if let Some(e) = body.get_mut("error").and_then(Value::as_object_mut) {
                        e.insert("target".into(), json!(candidate.target));
                        e.insert("gitBranch".into(), json!(candidate.git_branch));
                    }
                    failed.push(body);
                }
            }
        }
        let created = if is_array { Value::Array(created) } else { created.pop().unwrap_or(Value::Null) };
        Ok((StatusCode::CREATED, Json(json!({ "created": created, "failed": failed }))))
    })
}

pub(crate) async fn list(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(project): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_params(&params, &app.config().pagination)?;
    let decrypt = params.flag("decrypt");
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let target = params.get("target");
        let branch = params.get("gitBranch");
        let items: Vec<&EnvVar> = ctx
            .team_ref()
            .envs
            .values()
            .filter(|e| e.project_id == project_id && e.vis.listed(ctx.now))
            .filter(|e| target.is_none_or(|t| e.target.iter().any(|x| x == t)))
            .filter(|e| branch.is_none_or(|b| e.git_branch.as_deref() == Some(b)))
            .collect();
        let (items, pagination) = paginate(items, |e| e.created_at, page);
        let envs: Vec<Value> = items.iter().map(|e| e.to_json(Reveal::Listed { decrypt })).collect();
        Ok(Json(json!({ "envs": envs, "pagination": pagination })))
    })
}

pub(crate) async fn get_one(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let now = ctx.now;
        let env =
            ctx.team().envs.get_mut(&id).filter(|e| e.project_id == project_id).ok_or_else(|| env_not_found(&id))?;
        if !env.vis.read(now) {
            return Err(env_not_found(&id));
        }
        Ok(Json(env.to_json(Reveal::Decrypted)))
    })
}

/// PATCH an env var; also used by the admin drift endpoint.
pub(crate) fn patch_env(ctx: &mut Ctx<'_>, project_id: &str, id: &str, obj: &Obj) -> ApiResult<Value> {
    json::reject_unknown(obj, &["key", "value", "type", "target", "gitBranch", "comment", "customEnvironmentIds"])?;
    let epoch = ctx.epoch;
    let team = ctx.team();
    let mut env = team.envs.get(id).filter(|e| e.project_id == project_id).cloned().ok_or_else(|| env_not_found(id))?;
    if let Field::Set(k) = json::string_field(obj, "key")? {
        env.key = k;
    }
    if let Field::Set(v) = json::string_field(obj, "value")? {
        env.value = v;
    }
    if let Field::Set(t) = json::string_field(obj, "type")? {
        let new = EnvType::parse(&t)?;
        if env.kind == EnvType::Sensitive && new != EnvType::Sensitive {
            return Err(ApiError::bad_request("A sensitive environment variable cannot be changed to another type."));
        }
        env.kind = new;
    }
    if let Field::Set(t) = json::string_list_field(obj, "target")? {
        env.target = json::dedup(t);
    }
    match json::string_field(obj, "gitBranch")? {
        Field::Absent => {}
        Field::Null => env.git_branch = None,
        Field::Set(b) => env.git_branch = Some(b).filter(|b| !b.is_empty()),
    }
    match json::string_field(obj, "comment")? {
        Field::Absent => {}
        Field::Null => env.comment = None,
        Field::Set(c) => env.comment = Some(c),
    }
    match json::string_list_field(obj, "customEnvironmentIds")? {
        Field::Absent => {}
        Field::Null => env.custom_environment_ids.clear(),
        Field::Set(c) => env.custom_environment_ids = json::dedup(c),
    }
    env.validate()?;
    if let Some(other) = team.envs.values().find(|e| conflicts(e, &env)) {
        return Err(conflict_error(other));
    }
    env.updated_at = epoch;
    let out = env.to_json(Reveal::Decrypted);
    team.envs.insert(id.to_owned(), env);
    Ok(out)
}

pub(crate) async fn update(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        patch_env(ctx, &project_id, &id, &obj).map(Json)
    })
}

pub(crate) async fn delete_one(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let team = ctx.team();
        match team.envs.get(&id) {
            Some(e) if e.project_id == project_id => {}
            _ => return Err(env_not_found(&id)),
        }
        let env = team.envs.remove(&id).ok_or_else(|| env_not_found(&id))?;
        Ok(Json(env.to_json(Reveal::Decrypted)))
    })
}

/// Batch delete is all-or-nothing so a retried call cannot half-apply.
pub(crate) async fn delete_batch(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    json::reject_unknown(&obj, &["ids"])?;
    let ids = match json::string_list_field(&obj, "ids")? {
        Field::Set(ids) if !ids.is_empty() => json::dedup(ids),
        _ => return Err(ApiError::invalid("missing required property `ids`.")),
    };
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let team = ctx.team();
        let missing: Vec<&String> =
            ids.iter().filter(|id| team.envs.get(id.as_str()).is_none_or(|e| e.project_id != project_id)).collect();
        if let Some(first) = missing.first() {
            return Err(env_not_found(first).with("ids", json!(missing)));
        }
        for id in &ids {
            team.envs.remove(id);
        }
        Ok(Json(json!({ "deleted": ids })))
    })
}
