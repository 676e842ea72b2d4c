//! Shared emulator state and the HTTP route table.

use crate::auth::{self, auth_mw, scope_mw};
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::error::{ApiError, ApiResult};
use crate::faults::{FaultState, faults_mw};
use crate::ratelimit::RateLimiter;
use crate::stats::{Stats, stats_mw};
use crate::store::{Ctx, Store};
use crate::{admin, deployments, domains, env, projects};
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

/// The team (or personal account) a request acts in.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub team_id: String,
    pub slug: String,
    pub user_id: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct AppState {
    config: RwLock<EmulatorConfig>,
    initial: EmulatorConfig,
    store: Mutex<Store>,
    pub clock: Clock,
    stats: Mutex<Stats>,
    faults: Mutex<FaultState>,
    limiter: Mutex<RateLimiter>,
}

impl AppState {
    pub fn new(cfg: EmulatorConfig) -> Self {
        Self {
            store: Mutex::new(Store::new(cfg.seed)),
            faults: Mutex::new(FaultState::new(cfg.faults.clone(), cfg.seed)),
            config: RwLock::new(cfg.clone()),
            initial: cfg,
            clock: Clock::new(),
            stats: Mutex::new(Stats::default()),
            limiter: Mutex::new(RateLimiter::default()),
        }
    }

    /// A snapshot; cheap enough per request and avoids holding a lock across handlers.
    pub fn config(&self) -> EmulatorConfig {
        self.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn update_config(&self, f: impl FnOnce(&mut EmulatorConfig)) {
        f(&mut self.config.write().unwrap_or_else(PoisonError::into_inner));
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.faults)
    }

    pub fn limiter(&self) -> MutexGuard<'_, RateLimiter> {
        lock(&self.limiter)
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Runs `f` against the caller's team after applying any build completions that are due.
    pub fn with_ctx<R>(&self, scope: &Scope, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        let cfg = self.config();
        let mut store = self.store();
        let now = self.clock.now_ms();
        let mut ctx = Ctx {
            store: &mut store,
            team_id: scope.team_id.clone(),
            slug: scope.slug.clone(),
            user_id: scope.user_id.clone(),
            now,
            epoch: self.clock.epoch_of(now),
            cfg: &cfg,
            clock: &self.clock,
        };
        ctx.team();
        deployments::settle(&mut ctx);
        f(&mut ctx)
    }

    /// Back to the starting configuration with empty state and counters.
    pub fn reset(&self) {
        let cfg = self.initial.clone();
        *self.store() = Store::new(cfg.seed);
        self.faults().set(cfg.faults.clone());
        self.limiter().reset();
        *self.stats() = Stats::default();
        self.update_config(|c| *c = cfg);
    }
}

async fn current_user(Extension(caller): Extension<auth::Caller>) -> Json<Value> {
    Json(json!({ "user": {
        "id": caller.user_id,
        "uid": caller.user_id,
        "username": "emulator-user",
        "email": "emulator-user@example.invalid",
        "defaultTeamId": null,
    }}))
}

fn team_json(t: &crate::config::TeamConfig) -> Value {
    json!({ "id": t.id, "slug": t.slug, "name": t.name.clone().unwrap_or_else(|| t.slug.clone()) })
}

async fn get_team(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    Path(id_or_slug): Path<String>,
) -> ApiResult<Json<Value>> {
    let cfg = app.config();
    let token = cfg.tokens.iter().find(|t| t.token == caller.token);
    cfg.teams
        .iter()
        .find(|t| t.id == id_or_slug || t.slug == id_or_slug)
        .filter(|t| token.is_some_and(|tok| tok.allows(t)))
        .map(|t| Json(team_json(t)))
        .ok_or_else(|| ApiError::forbidden("Not authorized"))
}

async fn list_teams(State(app): State<Arc<AppState>>, Extension(caller): Extension<auth::Caller>) -> Json<Value> {
    let cfg = app.config();
    let token = cfg.tokens.iter().find(|t| t.token == caller.token);
    let teams: Vec<Value> =
        cfg.teams.iter().filter(|t| token.is_some_and(|tok| tok.allows(t))).map(team_json).collect();
    Json(json!({ "teams": teams, "pagination": { "count": teams.len(), "next": null, "prev": null } }))
}

async fn not_found(State(app): State<Arc<AppState>>) -> ApiError {
    app.stats().unmatched += 1;
    ApiError::not_found("The requested API endpoint was not found.")
}

async fn method_unknown() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_unknown", "This endpoint does not support this HTTP method.")
}

/// Every emulated endpoint, with the versions the reference mentions.
pub(crate) fn router(app: Arc<AppState>) -> Router {
    let scoped: Router<Arc<AppState>> = Router::new()
        // Projects
        .route("/v8/projects", post(projects::create))
        .route("/v9/projects", get(projects::list))
        .route("/v10/projects", post(projects::create).get(projects::list))
        .route("/v11/projects", post(projects::create))
        .route("/v9/projects/{id_or_name}", get(projects::get).patch(projects::update).delete(projects::delete))
        .route("/v10/projects/{id_or_name}", get(projects::get))
        .route("/v9/projects/{id_or_name}/link", post(projects::link).delete(projects::unlink))
        .route("/v9/projects/{id_or_name}/branch", patch(projects::set_branch))
        // Environment variables
        .route("/v10/projects/{id_or_name}/env", post(env::create).get(env::list))
        .route("/v8/projects/{id_or_name}/env", get(env::list))
        .route("/v9/projects/{id_or_name}/env", get(env::list))
        .route("/v1/projects/{id_or_name}/env", axum::routing::delete(env::delete_batch))
        .route("/v1/projects/{id_or_name}/env/{env_id}", get(env::get_one))
        .route("/v9/projects/{id_or_name}/env/{env_id}", patch(env::update).delete(env::delete_one))
        // Domains
        .route("/v10/projects/{id_or_name}/domains", post(domains::add))
        .route("/v9/projects/{id_or_name}/domains", get(domains::list))
        .route(
            "/v9/projects/{id_or_name}/domains/{domain}",
            get(domains::get).patch(domains::update).delete(domains::remove),
        )
        .route("/v9/projects/{id_or_name}/domains/{domain}/verify", post(domains::verify))
        .route("/v6/domains/{domain}/config", get(domains::config))
        // Deployments, files, aliases
        .route("/v2/files", post(deployments::upload_file))
        .route("/v2/now/files", post(deployments::upload_file))
        .route("/v13/deployments", post(deployments::create))
        .route("/v12/now/deployments", post(deployments::create))
        .route("/v6/deployments", get(deployments::list))
        .route("/v13/deployments/{id_or_url}", get(deployments::get).delete(deployments::delete))
        .route("/v12/deployments/{id}/cancel", patch(deployments::cancel))
        .route("/v10/projects/{id_or_name}/promote/{deployment_id}", post(deployments::promote))
        .route("/v1/projects/{id_or_name}/rollback/{deployment_id}", post(deployments::rollback))
        .route(
            "/v2/deployments/{id}/aliases",
            post(deployments::create_alias).get(deployments::list_deployment_aliases),
        )
        .route("/v4/aliases/{id_or_alias}", get(deployments::get_alias))
        .route("/v2/aliases/{id_or_alias}", axum::routing::delete(deployments::delete_alias))
        .route_layer(from_fn_with_state(app.clone(), scope_mw));

    let unscoped: Router<Arc<AppState>> = Router::new()
        .route("/v2/user", get(current_user))
        .route("/v2/teams", get(list_teams))
        .route("/v2/teams/{id_or_slug}", get(get_team));

    let max_body = app.config().max_file_size;
    let api = scoped
        .merge(unscoped)
        .route_layer(from_fn_with_state(app.clone(), auth_mw))
        .route_layer(from_fn_with_state(app.clone(), faults_mw))
        .route_layer(from_fn_with_state(app.clone(), stats_mw))
        .layer(DefaultBodyLimit::max(max_body));

    Router::new()
        .merge(api)
        .nest("/_emulator", admin::router(app.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_unknown)
        .with_state(app)
}
