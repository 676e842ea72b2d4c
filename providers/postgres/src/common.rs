//! Small helpers shared by the resource modules: serde defaults, argument checks, the
//! normalisations `read` applies so that an unchanged object never shows as drift, and role
//! lookups.

use deadpool_postgres::GenericClient;
use stackwright_core::{CheckFailure, Input, ProviderError};

use crate::error::PgResultExt;
use crate::ident::{quote_ident, validate_ident};

/// Serde default: `true`.
pub(crate) fn yes() -> bool {
    true
}

/// Serde skip predicate for flags that default to false.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// How an object is named in messages: `postgres:Role "app"`.
pub(crate) fn subject(type_token: &str, name: &str) -> String {
    format!("{type_token} {}", quote_ident(name))
}

/// Adds a failure if a known identifier argument is not a valid identifier.
pub(crate) fn check_ident(failures: &mut Vec<CheckFailure>, path: &str, value: Option<&Input<String>>) {
    if let Some(Input::Value(v)) = value
        && let Err(m) = validate_ident(path, v)
    {
        failures.push(CheckFailure::at(path, m));
    }
}

/// Compares names of encodings and locales as PostgreSQL does loosely: `utf8`, `UTF-8` and
/// `UTF8` are the same.
pub(crate) fn loose_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.chars().filter(|c| !matches!(c, '-' | '_')).flat_map(char::to_lowercase).collect::<String>();
    norm(a) == norm(b)
}

/// What `read` reports for an optional argument that cannot drift away from the value it was
/// created with, or that the server may spell differently: nothing when nothing was asked for,
/// the stored spelling when it means the same, the server's value otherwise.
pub(crate) fn keep_if_same(stored: Option<&str>, actual: &str, same: fn(&str, &str) -> bool) -> Option<String> {
    match stored {
        None => None,
        Some(s) if same(s, actual) => Some(s.to_owned()),
        Some(_) => Some(actual.to_owned()),
    }
}

/// What `read` reports for an optional argument with a server default (like an owner that
/// defaults to the provider's login): nothing when nothing was asked for and the default holds,
/// the real value otherwise, so a change made by hand shows as drift.
pub(crate) fn observe_default(stored: Option<&str>, actual: &str, default: &str) -> Option<String> {
    match stored {
        None if actual == default => None,
        _ => Some(actual.to_owned()),
    }
}

/// Whether a grantee name means the `PUBLIC` pseudo-role.
pub(crate) fn is_public(role: &str) -> bool {
    role.eq_ignore_ascii_case("public")
}

/// A grantee in SQL text: `PUBLIC` or a quoted role name.
pub(crate) fn grantee_sql(role: &str) -> String {
    if is_public(role) { "PUBLIC".to_owned() } else { quote_ident(role) }
}

/// The OID of a role (0 for `PUBLIC`), or `None` if there is no such role.
pub(crate) async fn role_oid(
    client: &impl GenericClient,
    role: &str,
    subject: &str,
) -> Result<Option<u32>, ProviderError> {
    if is_public(role) {
        return Ok(Some(0));
    }
    let row = client.query_opt("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1", &[&role]).await.on(subject)?;
    Ok(row.map(|r| r.get(0)))
}

/// The comment put on a database, role or schema the provider creates. It names the operation,
/// so a create that is retried, or a crash recovery (`find`), recognises the object as the one
/// its own operation made rather than taking over somebody else's.
pub(crate) fn creation_comment(operation_id: &str) -> String {
    format!("managed by Stackwright; created by operation {operation_id}")
}

/// Whether an object's comment says `operation_id` created it.
pub(crate) fn created_by(comment: Option<&str>, operation_id: &str) -> bool {
    comment == Some(creation_comment(operation_id).as_str())
}

/// A random password: 64 hex digits (256 bits) from the server's strong random source, so the
/// provider needs no random number generator of its own.
pub(crate) async fn generate_password(client: &impl GenericClient, subject: &str) -> Result<String, ProviderError> {
    let row = client
        .query_one("SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')", &[])
        .await
        .on(subject)?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_names_compare_as_postgres_does() {
        assert!(loose_eq("utf8", "UTF8"));
        assert!(loose_eq("UTF-8", "UTF8"));
        assert!(loose_eq("C.UTF-8", "C.utf8"));
        assert!(!loose_eq("LATIN1", "UTF8"));
    }

    #[test]
    fn observed_optionals_do_not_invent_drift() {
        assert_eq!(keep_if_same(None, "UTF8", loose_eq), None);
        assert_eq!(keep_if_same(Some("utf8"), "UTF8", loose_eq).as_deref(), Some("utf8"));
        assert_eq!(keep_if_same(Some("LATIN1"), "UTF8", loose_eq).as_deref(), Some("UTF8"));
        assert_eq!(observe_default(None, "postgres", "postgres"), None);
        assert_eq!(observe_default(None, "intruder", "postgres").as_deref(), Some("intruder"));
        assert_eq!(observe_default(Some("app"), "app", "postgres").as_deref(), Some("app"));
    }

    #[test]
    fn public_is_the_pseudo_role() {
        assert_eq!(grantee_sql("public"), "PUBLIC");
        assert_eq!(grantee_sql("PUBLIC"), "PUBLIC");
        assert_eq!(grantee_sql("Public Relations"), r#""Public Relations""#);
    }
}
