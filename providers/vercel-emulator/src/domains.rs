//! Project domains: add, get, list, update, remove, TXT verification and the DNS-configuration
//! check, backed by a fake DNS table that tests fill through the admin API.

use crate::app::{AppState, Scope};
use crate::deployments;
use crate::error::{ApiError, ApiResult};
use crate::json::{self, Field, Obj, Params};
use crate::pagination::{PageRequest, paginate};
use crate::projects::resolve_project_id;
use crate::store::{Ctx, Visibility};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The anycast address and CNAME target Vercel recommends.
pub(crate) const VERCEL_IPV4: &str = "76.76.21.21";
pub(crate) const VERCEL_CNAME: &str = "cname.vercel-dns.com";

/// A record in the emulator's fake DNS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub(crate) struct ProjectDomain {
    pub name: String,
    pub apex_name: String,
    pub project_id: String,
    pub redirect: Option<String>,
    pub redirect_status_code: Option<u64>,
    pub git_branch: Option<String>,
    pub custom_environment_id: Option<String>,
    pub verified: bool,
    pub verification_token: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub vis: Visibility,
}

impl ProjectDomain {
    fn txt_name(&self) -> String {
        format!("_vercel.{}", self.apex_name)
    }

    fn txt_value(&self) -> String {
        format!("vc-domain-verify={},{}", self.name, self.verification_token)
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "apexName": self.apex_name,
            "projectId": self.project_id,
            "redirect": self.redirect,
            "redirectStatusCode": self.redirect_status_code,
            "gitBranch": self.git_branch,
            "customEnvironmentId": self.custom_environment_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "verified": self.verified,
        });
        if !self.verified
            && let Some(o) = v.as_object_mut()
        {
            o.insert(
                "verification".into(),
                json!([{
                    "type": "TXT",
                    "domain": self.txt_name(),
                    "value": self.txt_value(),
                    "reason": "pending_domain_verification",
                }]),
            );
        }
        v
    }

    /// Serves the project's production deployment (as opposed to redirecting, following a
    /// branch, or waiting for verification).
    pub fn serves_production(&self) -> bool {
        self.verified && self.redirect.is_none() && self.git_branch.is_none() && self.custom_environment_id.is_none()
    }
}

/// Lowercases and checks a hostname (a leading `*.` wildcard is allowed).
pub(crate) fn normalize_domain(raw: &str) -> ApiResult<String> {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let body = name.strip_prefix("*.").unwrap_or(&name);
    let labels: Vec<&str> = body.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || name.len() > 253 || !labels.iter().all(label_ok) {
        return Err(ApiError::bad_request(format!("The domain \"{raw}\" is not a valid domain name.")));
    }
    Ok(name)
}

/// The registrable part: the last two labels. Multi-label public suffixes (`co.uk`) are not
/// modelled.
pub(crate) fn apex_of(name: &str) -> String {
    let body = name.strip_prefix("*.").unwrap_or(name);
    let labels: Vec<&str> = body.split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

fn domain_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("The domain \"{name}\" was not found on this project."))
}

fn parse_redirect_code(obj: &Obj) -> ApiResult<Field<u64>> {
    let code = json::u64_field(obj, "redirectStatusCode")?;
    if let Field::Set(c) = code
        && ![301, 302, 307, 308].contains(&c)
    {
        return Err(ApiError::invalid(
            "`redirectStatusCode` should be equal to one of the allowed values 301, 302, 307, 308.",
        ));
    }
    Ok(code)
}

/// Redirect targets must be domains of the same project, as on the real platform.
fn check_redirect(ctx: &Ctx<'_>, project_id: &str, name: &str, redirect: &str) -> ApiResult<String> {
    let target = normalize_domain(redirect)?;
    if target == name {
        return Err(ApiError::bad_request("A domain cannot redirect to itself."));
    }
    match ctx.team_ref().domains.get(&target) {
        Some(d) if d.project_id == project_id => Ok(target),
        _ => Err(ApiError::bad_request(format!("The redirect target \"{target}\" is not a domain of this project."))),
    }
}

pub(crate) async fn add(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    json::reject_unknown(&obj, &["name", "gitBranch", "redirect", "redirectStatusCode", "customEnvironmentId"])?;
    let name = normalize_domain(&json::required_string(&obj, "name")?)?;
    let code = parse_redirect_code(&obj)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let redirect = match json::string_field(&obj, "redirect")?.into_option() {
            Some(r) if !r.is_empty() => Some(check_redirect(ctx, &project_id, &name, &r)?),
            _ => None,
        };
        if let Some((team, existing)) = ctx.store.domain_owner(&name) {
            let err = if team != ctx.team_id {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "domain_already_exists",
                    format!("The domain \"{name}\" is already in use by another account."),
                )
            } else if existing.project_id == project_id {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "domain_already_in_use",
                    format!("Cannot add \"{name}\" since it is already assigned to this project."),
                )
            } else {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "domain_already_in_use",
                    format!("Cannot add \"{name}\" since it is already in use by another project."),
                )
                .with("projectId", existing.project_id.clone())
            };
            return Err(err.with("domain", name.clone()));
        }
        let apex = apex_of(&name);
        let apex_elsewhere =
            ctx.store.teams.iter().any(|(id, t)| *id != ctx.team_id && t.domains.values().any(|d| d.apex_name == apex));
        let needs_txt =
            apex_elsewhere || ctx.cfg.domains.unverified_suffixes.iter().any(|s| name.ends_with(s.as_str()));
        let created = ctx.created_at();
        let domain = ProjectDomain {
            name: name.clone(),
            apex_name: apex,
            project_id: project_id.clone(),
            redirect_status_code: redirect.as_ref().map(|_| code.clone().into_option().unwrap_or(308)),
            redirect,
            git_branch: json::string_field(&obj, "gitBranch")?.into_option().filter(|b| !b.is_empty()),
            custom_environment_id: json::string_field(&obj, "customEnvironmentId")?
                .into_option()
                .filter(|c| !c.is_empty()),
            verified: !needs_txt,
            verification_token: ctx.store.lower_id(20),
            created_at: created,
            updated_at: created,
            vis: ctx.visibility(),
        };
        let out = domain.to_json();
        ctx.team().domains.insert(name.clone(), domain);
        deployments::sync_domain_alias(ctx, &name);
        Ok(Json(out))
    })
}

/// Finds a domain of a project, for writes (no read lag).
fn domain_of<'a>(ctx: &'a mut Ctx<'_>, project_id: &str, name: &str) -> ApiResult<&'a mut ProjectDomain> {
    let name = name.to_ascii_lowercase();
    ctx.team().domains.get_mut(&name).filter(|d| d.project_id == project_id).ok_or_else(|| domain_not_found(&name))
}

pub(crate) async fn get(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, domain)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let now = ctx.now;
        let d = domain_of(ctx, &project_id, &domain)?;
        if !d.vis.read(now) {
            return Err(domain_not_found(&domain));
        }
        Ok(Json(d.to_json()))
    })
}

pub(crate) async fn list(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(project): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_params(&params, &app.config().pagination)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let items: Vec<&ProjectDomain> =
            ctx.team_ref().domains.values().filter(|d| d.project_id == project_id && d.vis.listed(ctx.now)).collect();
        let (items, pagination) = paginate(items, |d| d.created_at, page);
        let domains: Vec<Value> = items.iter().map(|d| d.to_json()).collect();
        Ok(Json(json!({ "domains": domains, "pagination": pagination })))
    })
}

/// PATCH a project domain; also used by the admin drift endpoint (which may set `verified`).
pub(crate) fn patch_domain(
    ctx: &mut Ctx<'_>,
    project_id: &str,
    name: &str,
    obj: &Obj,
    admin: bool,
) -> ApiResult<Value> {
    let mut allowed = vec!["gitBranch", "redirect", "redirectStatusCode", "customEnvironmentId"];
    if admin {
        allowed.push("verified");
    }
    json::reject_unknown(obj, &allowed)?;
    let code = parse_redirect_code(obj)?;
    let mut d = domain_of(ctx, project_id, name)?.clone();
    match json::string_field(obj, "redirect")? {
        Field::Absent => {}
        Field::Null => d.redirect = None,
        Field::Set(r) if r.is_empty() => d.redirect = None,
        Field::Set(r) => d.redirect = Some(check_redirect(ctx, project_id, &d.name, &r)?),
    }
    match code {
        Field::Absent => {}
        Field::Null => d.redirect_status_code = None,
        Field::Set(c) => d.redirect_status_code = Some(c),
    }
    if d.redirect.is_none() {
        d.redirect_status_code = None;
    } else if d.redirect_status_code.is_none() {
        d.redirect_status_code = Some(308);
    }
    match json::string_field(obj, "gitBranch")? {
        Field::Absent => {}
        Field::Null => d.git_branch = None,
        Field::Set(b) => d.git_branch = Some(b).filter(|b| !b.is_empty()),
    }
    match json::string_field(obj, "customEnvironmentId")? {
        Field::Absent => {}
        Field::Null => d.custom_environment_id = None,
        Field::Set(c) => d.custom_environment_id = Some(c).filter(|c| !c.is_empty()),
    }
    if let Some(v) = obj.get("verified") {
        d.verified = v.as_bool().ok_or_else(|| ApiError::invalid("`verified` should be boolean."))?;
    }
    d.updated_at = ctx.epoch;
    let out = d.to_json();
    let key = d.name.clone();
    ctx.team().domains.insert(key.clone(), d);
    deployments::sync_domain_alias(ctx, &key);
    Ok(out)
}

pub(crate) async fn update(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, domain)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = json::parse_object(&body)?;
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        patch_domain(ctx, &project_id, &domain, &obj, false).map(Json)
    })
}

pub(crate) fn remove_domain(ctx: &mut Ctx<'_>, project_id: &str, name: &str) -> ApiResult<()> {
    let key = domain_of(ctx, project_id, name)?.name.clone();
    let team = ctx.team();
    team.domains.remove(&key);
    team.aliases.remove(&key);
    Ok(())
}

pub(crate) async fn remove(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, domain)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        remove_domain(ctx, &project_id, &domain)?;
        Ok(Json(json!({})))
    })
}

pub(crate) async fn verify(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path((project, domain)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    app.with_ctx(&scope, |ctx| {
        let project_id = resolve_project_id(ctx, &project)?;
        let d = domain_of(ctx, &project_id, &domain)?.clone();
        if !d.verified {
            let (txt_name, txt_value) = (d.txt_name(), d.txt_value());
            let found = ctx.store.dns.iter().any(|r| {
                r.kind.eq_ignore_ascii_case("TXT") && r.name == txt_name && r.value == txt_value
            });
            if !found {
                return Err(ApiError::bad_request(format!(
                    "Domain \"{}\" was not verified: the TXT record \"{txt_name}\" with value \"{txt_value}\" was not found.",
                    d.name
                ))
                .with("verification", d.to_json()["verification"].clone()));
            }
            let epoch = ctx.epoch;
            if let Some(stored) = ctx.team().domains.get_mut(&d.name) {
                stored.verified = true;
                stored.updated_at = epoch;
            }
            deployments::sync_domain_alias(ctx, &d.name);
        }
        let out = ctx.team_ref().domains[&d.name].to_json();
        Ok(Json(out))
    })
}

/// `GET /v6/domains/{d}/config`: whether public DNS points at Vercel.
pub(crate) async fn config(
    State(app): State<Arc<AppState>>,
    Extension(scope): Extension<Scope>,
    Path(domain): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let name = normalize_domain(&domain)?;
    app.with_ctx(&scope, |ctx| {
        if let Some(p) = params.get("projectIdOrName") {
            resolve_project_id(ctx, p)?;
        }
        let records: Vec<&DnsRecord> = ctx.store.dns.iter().filter(|r| r.name == name).collect();
        let values = |kind: &str| -> Vec<String> {
            records
                .iter()
                .filter(|r| r.kind.eq_ignore_ascii_case(kind))
                .map(|r| r.value.trim_end_matches('.').to_owned())
                .collect()
        };
        let a_values = values("A");
        let cnames = values("CNAME");
        let is_apex = apex_of(&name) == name;
        let configured_by = if name.ends_with(".vercel.app") || a_values.iter().any(|v| v == VERCEL_IPV4) {
            Some("A")
        } else if !is_apex && cnames.iter().any(|v| v == VERCEL_CNAME) {
            Some("CNAME")
        } else {
            None
        };
        Ok(Json(json!({
            "configuredBy": configured_by,
            "misconfigured": configured_by.is_none(),
            "acceptedChallenges": [],
            "aValues": a_values,
            "cnames": cnames,
            "conflicts": [],
            "nameservers": [],
            "serviceType": "external",
            "recommendedIPv4": [{ "rank": 1, "value": [VERCEL_IPV4] }],
            "recommendedCNAME": [{ "rank": 1, "value": format!("{VERCEL_CNAME}.") }],
        })))
    })
}
