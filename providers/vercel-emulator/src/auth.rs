//! Bearer-token authentication (with the per-token rate limiter) and team scoping through
//! `?teamId=` or `?slug=`; calls without either act in the token owner's personal scope.

use crate::app::{AppState, Scope};
use crate::config::{EmulatorConfig, TokenConfig};
use crate::error::ApiError;
use crate::json::Params;
use crate::ratelimit::Verdict;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The authenticated caller, set by [`auth_mw`] for the handlers and [`scope_mw`].
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub token: String,
    pub user_id: String,
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// A stable user id per token unless one is configured.
pub(crate) fn user_id_of(token: &TokenConfig) -> String {
    token.user_id.clone().unwrap_or_else(|| {
        let digest = Sha256::digest(token.token.as_bytes());
        format!("user_{}", &hex::encode(digest)[..20])
    })
}

pub(crate) async fn auth_mw(State(app): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let Some(token) = bearer(req.headers()).map(str::to_owned) else {
        return ApiError::forbidden("The request is missing an authentication token")
            .with("missingToken", true)
            .into_response();
    };
    let cfg = app.config();
    let Some(token_cfg) = cfg.tokens.iter().find(|t| t.token == token) else {
        return ApiError::forbidden("Not authorized").with("invalidToken", true).into_response();
    };
    let verdict = app.limiter().check(&token, cfg.rate_limit, &app.clock);
    let headers = match verdict {
        Verdict::Limited(err) => return err.into_response(),
        Verdict::Unlimited => None,
        Verdict::Allowed { limit, remaining, reset_epoch_s } => Some([
            ("x-ratelimit-limit", limit as i64),
            ("x-ratelimit-remaining", remaining as i64),
            ("x-ratelimit-reset", reset_epoch_s),
        ]),
    };
    req.extensions_mut().insert(Caller { user_id: user_id_of(token_cfg), token });
    let mut resp = next.run(req).await;
    for (name, value) in headers.into_iter().flatten() {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// Resolves the scope a request acts in, or the 403 Vercel answers for a team the token
/// cannot use (unknown teams get the same answer, so ids cannot be probed).
pub(crate) fn resolve_scope(cfg: &EmulatorConfig, caller: &Caller, params: &Params) -> Result<Scope, ApiError> {
    let token = cfg.tokens.iter().find(|t| t.token == caller.token);
    let wanted = params.get("teamId").map(|id| (id, true)).or_else(|| params.get("slug").map(|s| (s, false)));
    let Some((wanted, by_id)) = wanted.filter(|(w, _)| !w.is_empty()) else {
        return Ok(Scope {
            team_id: caller.user_id.clone(),
            slug: "emulator-user".into(),
            user_id: caller.user_id.clone(),
        });
    };
    let team = cfg.teams.iter().find(|t| if by_id { t.id == wanted } else { t.slug == wanted });
    match (team, token) {
        (Some(team), Some(token)) if token.allows(team) => {
            Ok(Scope { team_id: team.id.clone(), slug: team.slug.clone(), user_id: caller.user_id.clone() })
        }
        _ => Err(ApiError::forbidden(format!("Not authorized: you do not have access to the team \"{wanted}\"."))),
    }
}

pub(crate) async fn scope_mw(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let params = match Params::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(caller) = parts.extensions.get::<Caller>().cloned() else {
        return ApiError::forbidden("Not authorized").into_response();
    };
    match resolve_scope(&app.config(), &caller, &params) {
        Ok(scope) => {
            parts.extensions.insert(scope);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}
