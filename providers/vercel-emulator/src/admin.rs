//! Admin API under `/_emulator/`: change state behind the provider's back (drift), set faults
//! and limits at runtime, advance the clock, fake DNS, reset, and dump state and counters.

use crate::app::{AppState, Scope};
use crate::auth::bearer;
use crate::config::{
    ConsistencyConfig, DeploymentConfig, DomainConfig, FaultConfig, RateLimitConfig, TeamConfig, TokenConfig,
};
use crate::domains::DnsRecord;
use crate::error::{ApiError, ApiResult};
use crate::json::{self, Params};
use crate::projects::{self, GitLink, project_not_found, resolve_project_id};
use crate::{deployments, domains, env};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(e.to_string()))
}

async fn admin_auth(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(expected) = app.config().admin_token
        && bearer(req.headers()) != Some(expected.as_str())
    {
        return ApiError::forbidden("Admin token required").into_response();
    }
    next.run(req).await
}

/// Admin calls name the team by id, slug or (for personal scopes) user id.
fn admin_scope(app: &AppState, team: &str) -> ApiResult<Scope> {
    let cfg = app.config();
    if let Some(t) = cfg.teams.iter().find(|t| t.id == team || t.slug == team) {
        return Ok(Scope { team_id: t.id.clone(), slug: t.slug.clone(), user_id: "admin".into() });
    }
    if app.store().teams.contains_key(team) {
        return Ok(Scope { team_id: team.to_owned(), slug: "emulator-user".into(), user_id: "admin".into() });
    }
    Err(ApiError::not_found(format!("Unknown team \"{team}\"")))
}

async fn health() -> Json<Value> {
    Json(json!({ "ok": true }))
}

async fn dump_state(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(app.store().dump(&app.clock))
}

async fn get_stats(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(serde_json::to_value(&*app.stats()).unwrap_or(Value::Null))
}

async fn reset_stats(State(app): State<Arc<AppState>>) -> Json<Value> {
    *app.stats() = Default::default();
    Json(json!({}))
}

async fn reset(State(app): State<Arc<AppState>>) -> Json<Value> {
    app.reset();
    Json(json!({}))
}

async fn get_config(State(app): State<Arc<AppState>>) -> Json<Value> {
    let mut cfg = app.config();
    cfg.faults = app.faults().config();
    Json(serde_json::to_value(cfg).unwrap_or(Value::Null))
}

async fn put_faults(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let cfg: FaultConfig = parse(&body)?;
    cfg.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
    app.faults().set(cfg.clone());
    app.update_config(|c| c.faults = cfg);
    Ok(Json(json!({})))
}

async fn put_rate_limit(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let cfg: Option<RateLimitConfig> = parse(&body)?;
    if cfg.is_some_and(|c| c.requests == 0 || c.window_ms == 0) {
        return Err(ApiError::bad_request("requests and window_ms must be positive"));
    }
    app.update_config(|c| c.rate_limit = cfg);
    app.limiter().reset();
    Ok(Json(json!({})))
}

async fn put_consistency(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let cfg: ConsistencyConfig = parse(&body)?;
    app.update_config(|c| c.consistency = cfg);
    Ok(Json(json!({})))
}

async fn put_deployments(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let cfg: DeploymentConfig = parse(&body)?;
    app.update_config(|c| c.deployments = cfg);
    Ok(Json(json!({})))
}

async fn put_domains(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let cfg: DomainConfig = parse(&body)?;
    app.update_config(|c| c.domains = cfg);
    Ok(Json(json!({})))
}

async fn advance_clock(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Advance {
        ms: u64,
    }
    let Advance { ms } = parse(&body)?;
    app.clock.advance(Duration::from_millis(ms));
    Ok(Json(json!({ "clockMs": app.clock.now_ms() })))
}

async fn get_dns(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({ "records": app.store().dns }))
}

async fn put_dns(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Records {
        records: Vec<DnsRecord>,
    }
    let Records { records } = parse(&body)?;
    app.store().dns = records;
    Ok(Json(json!({})))
}

async fn add_dns(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let record: DnsRecord = parse(&body)?;
    app.store().dns.push(record);
    Ok(Json(json!({})))
}

async fn delete_dns(State(app): State<Arc<AppState>>, params: Params) -> Json<Value> {
    let mut store = app.store();
    match params.get("name") {
        Some(name) => store.dns.retain(|r| r.name != name),
        None => store.dns.clear(),
    }
    Json(json!({}))
}

async fn add_token(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let token: TokenConfig = parse(&body)?;
    app.update_config(|c| {
        c.tokens.retain(|t| t.token != token.token);
        c.tokens.push(token);
    });
    Ok(Json(json!({})))
}

async fn add_team(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let team: TeamConfig = parse(&body)?;
    app.update_config(|c| {
        c.teams.retain(|t| t.id != team.id);
        c.teams.push(team);
    });
    Ok(Json(json!({})))
}

/// Drift on a project: any PATCH field, plus `link` (`null` unlinks).
async fn patch_project(
    State(app): State<Arc<AppState>>,
    Path((team, project)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let mut obj = json::parse_object(&body)?;
    let mut allowed = projects::updatable_fields();
    allowed.push("link");
    json::reject_unknown(&obj, &allowed)?;
    let link = obj.remove("link");
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &project)?;
        let new_link = match &link {
            Some(Value::Object(l)) => Some(Some(GitLink::parse(l, ctx.epoch)?)),
            Some(Value::Null) => Some(None),
            Some(_) => return Err(ApiError::invalid("`link` should be object or null.")),
            None => None,
        };
        let out = projects::patch_project(ctx, &id, &obj)?;
        match new_link {
            Some(l) => {
                let clock = ctx.clock;
                let team = ctx.team();
                let p = team.projects.get_mut(&id).ok_or_else(project_not_found)?;
                p.link = l;
                Ok(Json(team.projects[&id].to_json(team, clock)))
            }
            None => Ok(Json(out)),
        }
    })
}

async fn delete_project(
    State(app): State<Arc<AppState>>,
    Path((team, project)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| {
        let id = resolve_project_id(ctx, &project)?;
        projects::delete_cascade(ctx.team(), &id);
        Ok(Json(json!({ "deleted": id })))
    })
}

async fn patch_env(
    State(app): State<Arc<AppState>>,
    Path((team, project, env_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        env::patch_env(ctx, &project_id, &env_id, &obj)?;
        let e = ctx.team_ref().envs[&env_id].admin_json();
        Ok(Json(e))
    })
}

async fn delete_env(
    State(app): State<Arc<AppState>>,
    Path((team, project, env_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let team = ctx.team();
        match team.envs.get(&env_id) {
            Some(e) if e.project_id == project_id => {
                team.envs.remove(&env_id);
                Ok(Json(json!({ "deleted": env_id })))
            }
            _ => Err(ApiError::not_found("Environment Variable not found")),
        }
    })
}

async fn patch_domain(
    State(app): State<Arc<AppState>>,
    Path((team, project, domain)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        domains::patch_domain(ctx, &project_id, &domain, &obj, true).map(Json)
    })
}

async fn delete_domain(
    State(app): State<Arc<AppState>>,
    Path((team, project, domain)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        domains::remove_domain(ctx, &project_id, &domain)?;
        Ok(Json(json!({ "deleted": domain })))
    })
}

async fn patch_deployment(
    State(app): State<Arc<AppState>>,
    Path((team, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| deployments::admin_patch(ctx, &id, &obj).map(Json))
}

async fn delete_deployment(
    State(app): State<Arc<AppState>>,
    Path((team, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| {
        if deployments::delete_deployment(ctx.team(), &id) {
            Ok(Json(json!({ "deleted": id })))
        } else {
            Err(ApiError::not_found("Deployment not found"))
        }
    })
}

async fn delete_alias(
    State(app): State<Arc<AppState>>,
    Path((team, alias)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let scope = admin_scope(&app, &team)?;
    app.with_ctx(&scope, |ctx| match ctx.team().aliases.remove(&alias) {
        Some(_) => Ok(Json(json!({ "deleted": alias }))),
        None => Err(ApiError::not_found("Alias not found")),
    })
}

pub(crate) fn router(app: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/state", get(dump_state))
        .route("/stats", get(get_stats).delete(reset_stats))
        .route("/reset", post(reset))
        .route("/config", get(get_config))
        .route("/faults", put(put_faults))
        .route("/rate-limit", put(put_rate_limit))
        .route("/consistency", put(put_consistency))
        .route("/deployments", put(put_deployments))
        .route("/domains", put(put_domains))
        .route("/clock/advance", post(advance_clock))
        .route("/dns", get(get_dns).put(put_dns).post(add_dns).delete(delete_dns))
        .route("/tokens", post(add_token))
        .route("/teams", post(add_team))
        .route("/teams/{team}/projects/{project}", patch(patch_project).delete(delete_project))
        .route("/teams/{team}/projects/{project}/env/{env_id}", patch(patch_env).delete(delete_env))
        .route("/teams/{team}/projects/{project}/domains/{domain}", patch(patch_domain).delete(delete_domain))
        .route("/teams/{team}/deployments/{id}", patch(patch_deployment).delete(delete_deployment))
        .route("/teams/{team}/aliases/{alias}", delete(delete_alias))
        .route_layer(from_fn_with_state(app, admin_auth))
        .route("/health", get(health))
}
