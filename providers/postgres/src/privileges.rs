//! Privilege lists shared by grants and default privileges: spelling (`temp` is `TEMPORARY`,
//! `all privileges` is `ALL`), validation against what an object type accepts, and the value
//! `read` reports so that an unchanged set never shows as drift while any difference does.

use std::collections::BTreeSet;

/// Privileges on a database.
pub(crate) const DATABASE: &[&str] = &["CREATE", "CONNECT", "TEMPORARY"];
/// Privileges on a schema.
pub(crate) const SCHEMA: &[&str] = &["CREATE", "USAGE"];
/// Privileges on a table, view or materialized view (`MAINTAIN` exists from PostgreSQL 17).
pub(crate) const TABLE: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];
/// Privileges on a sequence.
pub(crate) const SEQUENCE: &[&str] = &["USAGE", "SELECT", "UPDATE"];
/// Privileges on a function.
pub(crate) const FUNCTION: &[&str] = &["EXECUTE"];
/// Privileges on a type.
pub(crate) const TYPE: &[&str] = &["USAGE"];

/// The canonical spelling of a privilege.
pub(crate) fn normalize(p: &str) -> String {
    let upper = p.trim().to_ascii_uppercase();
    match upper.as_str() {
        "TEMP" => "TEMPORARY".to_owned(),
        "ALL PRIVILEGES" => "ALL".to_owned(),
        _ => upper,
    }
}

/// The canonical set of a privilege list.
pub(crate) fn normalized(list: &[String]) -> BTreeSet<String> {
    list.iter().map(|p| normalize(p)).collect()
}

/// Checks a privilege list against those `allowed` for an object type (`ALL` is always allowed,
/// but only on its own).
pub(crate) fn validate(list: &[String], allowed: &[&str], what: &str) -> Result<(), String> {
    let set = normalized(list);
    if set.contains("ALL") && set.len() > 1 {
        return Err("`ALL` already includes every privilege; list it alone".into());
    }
    let extra = if allowed == TABLE { &["MAINTAIN"][..] } else { &[][..] };
    for p in &set {
        if p != "ALL" && !allowed.contains(&p.as_str()) && !extra.contains(&p.as_str()) {
            return Err(format!("{p} is not a privilege on {what}; use {}", allowed.join(", ")));
        }
    }
    Ok(())
}

/// Whether the privileges held (`actual`) are what `wanted` asks for.
pub(crate) fn matches(wanted: &[String], actual: &BTreeSet<String>, all: &[&str]) -> bool {
    let want = normalized(wanted);
    if want.len() == 1 && want.contains("ALL") {
        return all.iter().all(|p| actual.contains(*p));
    }
    want == *actual
}

/// What `read` reports for a privilege list: the stored spelling when every object holds
/// exactly that, otherwise the set held by the first object that differs.
pub(crate) fn observed<'a>(
    stored: &[String],
    per_object: impl IntoIterator<Item = &'a BTreeSet<String>>,
    all: &[&str],
) -> Vec<String> {
    for actual in per_object {
        if !matches(stored, actual, all) {
            return actual.iter().cloned().collect();
        }
    }
    stored.to_vec()
}

/// A privilege list for SQL text (validated first, so only keywords reach it).
pub(crate) fn sql_list(list: &[String]) -> String {
    let set = normalized(list);
    if set.contains("ALL") {
        return "ALL PRIVILEGES".to_owned();
    }
    set.into_iter().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spelling_is_normalized() {
        assert_eq!(normalize(" select "), "SELECT");
        assert_eq!(normalize("temp"), "TEMPORARY");
        assert_eq!(normalize("all privileges"), "ALL");
        assert_eq!(sql_list(&list(&["update", "select", "SELECT"])), "SELECT, UPDATE");
        assert_eq!(sql_list(&list(&["all"])), "ALL PRIVILEGES");
    }

    #[test]
    fn validation_knows_each_object_type() {
        assert!(validate(&list(&["select", "insert"]), TABLE, "a table").is_ok());
        assert!(validate(&list(&["maintain"]), TABLE, "a table").is_ok());
        assert!(validate(&list(&["connect", "temp"]), DATABASE, "a database").is_ok());
        let e = validate(&list(&["select"]), SCHEMA, "a schema").unwrap_err();
        assert!(e.contains("CREATE, USAGE"), "{e}");
        assert!(validate(&list(&["all", "select"]), TABLE, "a table").is_err());
    }

    #[test]
    fn observed_keeps_the_stored_spelling_only_when_everything_matches() {
        let stored = list(&["select", "insert"]);
        let same = set(&["INSERT", "SELECT"]);
        let more = set(&["INSERT", "SELECT", "DELETE"]);
        assert_eq!(observed(&stored, [&same, &same], TABLE), stored);
        assert_eq!(observed(&stored, [&same, &more], TABLE), list(&["DELETE", "INSERT", "SELECT"]));
        assert_eq!(observed(&stored, [], TABLE), stored);
        let all = list(&["ALL"]);
        let every = TABLE.to_vec();
        assert_eq!(observed(&all, [&set(&every)], TABLE), all);
        assert_eq!(observed(&all, [&same], TABLE), list(&["INSERT", "SELECT"]));
    }
}
