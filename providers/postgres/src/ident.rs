//! Quoting of identifiers and literals for SQL text, and the textual ids of resources.
//!
//! Utility statements (`CREATE ROLE`, `GRANT`, `ALTER DATABASE`, …) cannot take bind
//! parameters, so every name that reaches SQL text goes through [`quote_ident`] and every value
//! through [`quote_literal`]. Catalog queries bind names as parameters instead.

/// The longest identifier PostgreSQL keeps without truncating it (`NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Quotes an identifier for SQL text: always wrapped in double quotes, with embedded double
/// quotes doubled, so case, spaces and punctuation are kept exactly (like libpq's
/// `PQescapeIdentifier`).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a schema-qualified name, `"schema"."name"`.
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Quotes a string literal for SQL text, as PostgreSQL's `quote_literal` does: single quotes are
/// doubled, and a value with backslashes is written as an escape string (`E'…'`) with doubled
/// backslashes, so the result means the same whatever `standard_conforming_strings` is.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Checks that `name` can be an identifier: not empty, no NUL, at most 63 bytes (PostgreSQL
/// would silently truncate a longer one, and the resource would never find its object again).
pub fn validate_ident(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if name.contains('\0') {
        return Err(format!("{what} {name:?} contains a NUL character"));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "{what} {name:?} is {} bytes long; PostgreSQL truncates identifiers to {MAX_IDENTIFIER_BYTES} bytes",
            name.len()
        ));
    }
    Ok(())
}

fn needs_id_quotes(part: &str) -> bool {
    part.is_empty() || part.contains(['.', '"']) || part.trim() != part
}

/// Joins the parts of a resource id with dots, double-quoting a part that contains a dot, a
/// double quote or surrounding spaces (e.g. `app."my.schema"`).
pub fn join_id(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| if needs_id_quotes(p) { quote_ident(p) } else { (*p).to_owned() })
        .collect::<Vec<_>>()
        .join(".")
}

/// Splits a resource id written as dot-separated parts, each optionally double-quoted (with
/// `""` for a quote inside). Unquoted parts are taken literally: no case folding.
pub fn split_id(id: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = id.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(format!("id {id:?} has an unterminated double quote")),
                }
            }
            match chars.next() {
                None => {
                    parts.push(part);
                    return Ok(parts);
                }
                Some('.') => parts.push(part),
                Some(c) => return Err(format!("id {id:?}: expected `.` after a quoted part, found {c:?}")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        parts.push(part);
                        return Ok(parts);
                    }
                    Some('.') => break,
                    Some('"') => return Err(format!("id {id:?}: a double quote may only start a part")),
                    Some(c) => part.push(c),
                }
            }
            parts.push(part);
        }
    }
}

/// Splits an id that must have exactly `names.len()` parts, naming them in the error.
pub fn split_id_exact(type_token: &str, id: &str, names: &[&str]) -> Result<Vec<String>, String> {
    let parts = split_id(id)?;
    if parts.len() != names.len() || parts.iter().any(String::is_empty) {
        return Err(format!(
            "{type_token} id {id:?} should be {} (quote a part that contains a dot with double quotes)",
            names.join(".")
        ));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted_and_quotes_doubled() {
        assert_eq!(quote_ident("app"), r#""app""#);
        assert_eq!(quote_ident("MixedCase"), r#""MixedCase""#);
        assert_eq!(quote_ident("with space"), r#""with space""#);
        assert_eq!(quote_ident(r#"say "hi""#), r#""say ""hi""""#);
        assert_eq!(quote_ident(r#"""#), r#""""""#);
        assert_eq!(quote_qualified("My Schema", "t"), r#""My Schema"."t""#);
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b"), r"E'a\\b'");
        assert_eq!(quote_literal(r"'\'"), r"E'''\\'''");
    }

    #[test]
    fn identifier_validation_rejects_empty_nul_and_overlong() {
        assert!(validate_ident("name", "ok").is_ok());
        assert!(validate_ident("name", "").is_err());
        assert!(validate_ident("name", "a\0b").is_err());
        assert!(validate_ident("name", &"x".repeat(63)).is_ok());
        let err = validate_ident("name", &"x".repeat(64)).unwrap_err();
        assert!(err.contains("64 bytes"), "{err}");
    }

    #[test]
    fn ids_round_trip_through_join_and_split() {
        let cases: &[&[&str]] = &[
            &["app", "public"],
            &["app", "my.schema"],
            &["My DB", r#"quote"d"#, " padded "],
            &["a", "", "b"],
            &["db", "fn(integer, text)"],
        ];
        for parts in cases {
            let id = join_id(parts);
            let back = split_id(&id).unwrap();
            assert_eq!(back, parts.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "id {id}");
        }
        assert_eq!(join_id(&["app", "my.schema"]), r#"app."my.schema""#);
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(split_id(r#""open"#).is_err());
        assert!(split_id(r#""a"b"#).is_err());
        assert!(split_id(r#"a"b"#).is_err());
        assert!(split_id_exact("postgres:Schema", "onlyone", &["database", "schema"]).is_err());
        assert_eq!(split_id_exact("postgres:Schema", "d.s", &["database", "schema"]).unwrap(), vec!["d", "s"]);
    }
}
