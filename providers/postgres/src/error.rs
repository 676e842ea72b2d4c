//! PostgreSQL errors turned into provider errors: the SQLSTATE decides the kind (and so whether
//! the engine retries), and the message names the resource, the SQLSTATE and the server's
//! detail and hint.

use stackwright_core::{ErrorKind, ProviderError};
use tokio_postgres::error::SqlState;

/// The error kind for a SQLSTATE.
///
/// Connection failures (class 08), serialization failures and deadlocks (class 40),
/// insufficient resources (class 53), operator interventions such as a shutting-down server
/// (class 57) and lock timeouts are transient; permission and authentication failures are
/// unauthorized; duplicates and objects in use are conflicts; missing databases, schemas and
/// objects are not found; syntax errors, data exceptions and unsupported features are invalid
/// input.
pub fn kind_for_sqlstate(code: &str) -> ErrorKind {
    match code {
        // insufficient_privilege, invalid_authorization_specification, invalid_password
        "42501" | "28000" | "28P01" => ErrorKind::Unauthorized,
        // duplicate_database, duplicate_object, duplicate_schema, duplicate_table,
        // duplicate_function, unique_violation, object_in_use, dependent_objects_still_exist
        "42P04" | "42710" | "42P06" | "42P07" | "42723" | "23505" | "55006" | "2BP01" => ErrorKind::Conflict,
        // invalid_catalog_name, undefined_object, invalid_schema_name, undefined_table,
        // undefined_function
        "3D000" | "42704" | "3F000" | "42P01" | "42883" => ErrorKind::NotFound,
        // lock_not_available, query_canceled (statement timeout)
        "55P03" | "57014" => ErrorKind::Transient,
        _ => match &code[..code.len().min(2)] {
            // connection exceptions, transaction rollbacks (serialization, deadlock),
            // insufficient resources (too many connections), operator intervention
            "08" | "40" | "53" | "57" => ErrorKind::Transient,
            // data exceptions, syntax errors or access rule violations, feature not supported,
            // invalid parameter values
            "22" | "42" | "0A" | "2F" | "39" | "P0" => ErrorKind::InvalidInput,
            _ => ErrorKind::Other,
        },
    }
}

/// A short name for the SQLSTATEs this provider meets most, to make messages readable.
fn sqlstate_name(state: &SqlState) -> Option<&'static str> {
    let names: &[(SqlState, &str)] = &[
        (SqlState::INSUFFICIENT_PRIVILEGE, "insufficient_privilege"),
        (SqlState::INVALID_AUTHORIZATION_SPECIFICATION, "invalid_authorization_specification"),
        (SqlState::INVALID_PASSWORD, "invalid_password"),
        (SqlState::DUPLICATE_DATABASE, "duplicate_database"),
        (SqlState::DUPLICATE_OBJECT, "duplicate_object"),
        (SqlState::DUPLICATE_SCHEMA, "duplicate_schema"),
        (SqlState::UNIQUE_VIOLATION, "unique_violation"),
        (SqlState::OBJECT_IN_USE, "object_in_use"),
        (SqlState::DEPENDENT_OBJECTS_STILL_EXIST, "dependent_objects_still_exist"),
        (SqlState::INVALID_CATALOG_NAME, "invalid_catalog_name"),
        (SqlState::UNDEFINED_OBJECT, "undefined_object"),
        (SqlState::INVALID_SCHEMA_NAME, "invalid_schema_name"),
        (SqlState::UNDEFINED_TABLE, "undefined_table"),
        (SqlState::UNDEFINED_FUNCTION, "undefined_function"),
        (SqlState::T_R_SERIALIZATION_FAILURE, "serialization_failure"),
        (SqlState::T_R_DEADLOCK_DETECTED, "deadlock_detected"),
        (SqlState::TOO_MANY_CONNECTIONS, "too_many_connections"),
        (SqlState::ADMIN_SHUTDOWN, "admin_shutdown"),
        (SqlState::CANNOT_CONNECT_NOW, "cannot_connect_now"),
        (SqlState::SYNTAX_ERROR, "syntax_error"),
        (SqlState::ACTIVE_SQL_TRANSACTION, "active_sql_transaction"),
        (SqlState::FEATURE_NOT_SUPPORTED, "feature_not_supported"),
        (SqlState::INVALID_PARAMETER_VALUE, "invalid_parameter_value"),
    ];
    names.iter().find(|(s, _)| s == state).map(|(_, n)| *n)
}

/// Turns a driver error into a provider error about `subject` (e.g. `postgres:Role "app"`).
///
/// Errors the server reported carry their SQLSTATE; errors without one (a refused or closed
/// connection, an I/O failure) are transient.
pub fn pg_error(subject: &str, e: &tokio_postgres::Error) -> ProviderError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let name = sqlstate_name(db.code()).map(|n| format!(" {n}")).unwrap_or_default();
            let mut message = format!("{subject}: {} (SQLSTATE {code}{name})", db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                message.push_str(&format!("; hint: {hint}"));
            }
            // Two sessions changed the same catalog row at once ("tuple concurrently updated" for
            // concurrent GRANTs on one object, "… deleted" for DROP OWNED while the objects are
            // being dropped): this statement changed nothing, and trying again succeeds.
            let kind = if code == "XX000" && db.message().starts_with("tuple concurrently ") {
                ErrorKind::Transient
            } else {
                kind_for_sqlstate(code)
            };
            ProviderError::new(kind, message)
        }
        None => ProviderError::transient(format!("{subject}: the connection to PostgreSQL failed: {e}")),
    }
}

/// The SQLSTATE of a driver error, if the server reported one.
pub fn sqlstate(e: &tokio_postgres::Error) -> Option<&str> {
    e.as_db_error().map(|db| db.code().code())
}

/// Whether a provider error made by [`pg_error`] carries `code` (for decisions after a helper
/// already turned the driver error into a provider error).
pub fn has_sqlstate(e: &ProviderError, code: &str) -> bool {
    e.message.contains(&format!("(SQLSTATE {code}"))
}

/// Adds `.on(subject)` to driver results, mapping errors with [`pg_error`].
pub trait PgResultExt<T> {
    /// Maps the error to a provider error about `subject`.
    fn on(self, subject: &str) -> Result<T, ProviderError>;
}

impl<T> PgResultExt<T> for Result<T, tokio_postgres::Error> {
    fn on(self, subject: &str) -> Result<T, ProviderError> {
        self.map_err(|e| pg_error(subject, &e))
    }
}

/// A "not found" error turned into a plain failure, for calls where the engine would otherwise
/// take it to mean "already deleted" (a missing role to reassign to, say).
pub fn not_found_is_failure(e: ProviderError) -> ProviderError {
    if e.kind == ErrorKind::NotFound { ProviderError::new(ErrorKind::InvalidInput, e.message) } else { e }
}

/// The error for an object that already exists when a resource is created: it is not taken
/// over silently.
pub fn already_exists(type_token: &str, what: &str, id: &str, extra: &str) -> ProviderError {
    ProviderError::conflict(format!(
        "{type_token}: {what} already exists and is not managed by this stack. To manage it, import it \
         (id `{id}`) or set `adopt: true` on the resource to take it over; or choose another name.{extra}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_kinds() {
        assert_eq!(kind_for_sqlstate("42501"), ErrorKind::Unauthorized);
        assert_eq!(kind_for_sqlstate("28P01"), ErrorKind::Unauthorized);
        assert_eq!(kind_for_sqlstate("42P04"), ErrorKind::Conflict);
        assert_eq!(kind_for_sqlstate("42710"), ErrorKind::Conflict);
        assert_eq!(kind_for_sqlstate("2BP01"), ErrorKind::Conflict);
        assert_eq!(kind_for_sqlstate("40001"), ErrorKind::Transient);
        assert_eq!(kind_for_sqlstate("40P01"), ErrorKind::Transient);
        assert_eq!(kind_for_sqlstate("08006"), ErrorKind::Transient);
        assert_eq!(kind_for_sqlstate("53300"), ErrorKind::Transient);
        assert_eq!(kind_for_sqlstate("57P01"), ErrorKind::Transient);
        assert_eq!(kind_for_sqlstate("3D000"), ErrorKind::NotFound);
        assert_eq!(kind_for_sqlstate("42704"), ErrorKind::NotFound);
        assert_eq!(kind_for_sqlstate("42601"), ErrorKind::InvalidInput);
        assert_eq!(kind_for_sqlstate("22023"), ErrorKind::InvalidInput);
        assert_eq!(kind_for_sqlstate("XX000"), ErrorKind::Other);
    }

    #[test]
    fn not_found_becomes_a_failure_where_it_would_mean_deleted() {
        let e = not_found_is_failure(ProviderError::not_found("role \"x\" does not exist"));
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        let e = not_found_is_failure(ProviderError::transient("later"));
        assert_eq!(e.kind, ErrorKind::Transient);
    }
}
