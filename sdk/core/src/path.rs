//! Property paths such as `env.vars[2].name`, used by diffs, `ignore_changes` and
//! `replace_on_changes`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One step of a property path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// A key of an object.
    Key(String),
    /// An index into an array.
    Index(usize),
}

/// A path from the root of a property value to one of its parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<Segment>);

/// A path string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid property path `{path}`: {reason} (write paths like `tags.env` or `rules[0].origins`)")]
pub struct PathParseError {
    /// The text that was given.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Path {
    /// The empty path, which names the whole value.
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// A one-segment path naming a top-level field.
    pub fn field(name: &str) -> Self {
        Path(vec![Segment::Key(name.to_owned())])
    }

    /// This path extended by one key.
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    /// This path extended by one index.
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }

    /// Whether `prefix` names this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.len() >= prefix.0.len() && self.0[..prefix.0.len()] == prefix.0[..]
    }

    /// Parses `a.b[0]` or `a["key with.dots"]`.
    pub fn parse(text: &str) -> Result<Self, PathParseError> {
        let err = |reason: &str| PathParseError { path: text.to_owned(), reason: reason.to_owned() };
        let mut segments = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let mut expect_key = true;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    if expect_key {
                        return Err(err("empty segment"));
                    }
                    expect_key = true;
                    i += 1;
                }
                '[' => {
                    let close = chars[i..].iter().position(|c| *c == ']').ok_or_else(|| err("missing `]`"))? + i;
                    let inner: String = chars[i + 1..close].iter().collect();
                    if let Some(quoted) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        segments.push(Segment::Key(quoted.to_owned()));
                    } else {
                        let n = inner.parse::<usize>().map_err(|_| err("an index must be a number"))?;
                        segments.push(Segment::Index(n));
                    }
                    expect_key = false;
                    i = close + 1;
                }
                _ => {
                    if !expect_key {
                        return Err(err("expected `.` or `[` between segments"));
                    }
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    segments.push(Segment::Key(chars[start..i].iter().collect()));
                    expect_key = false;
                }
            }
        }
        if segments.is_empty() || (expect_key && !chars.is_empty()) {
            return Err(err("empty path"));
        }
        Ok(Path(segments))
    }

    /// The part of `value` this path names, if present.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.0.iter().try_fold(value, |v, seg| match seg {
            Segment::Key(k) => v.as_object()?.get(k),
            Segment::Index(i) => v.as_array()?.get(*i),
        })
    }

    /// Sets the part of `value` this path names, creating objects along the way; an index equal
    /// to an array's length appends. Returns false if the path runs through a non-container.
    pub fn set(&self, value: &mut Value, new: Value) -> bool {
        let Some((last, parents)) = self.0.split_last() else {
            *value = new;
            return true;
        };
        let mut cur = value;
        for seg in parents {
            cur = match seg {
                Segment::Key(k) => {
                    if cur.is_null() {
                        *cur = Value::Object(Default::default());
                    }
                    match cur.as_object_mut() {
                        Some(map) => map.entry(k.clone()).or_insert(Value::Null),
                        None => return false,
                    }
                }
                Segment::Index(i) => match cur.as_array_mut().and_then(|a| a.get_mut(*i)) {
                    Some(v) => v,
                    None => return false,
                },
            };
        }
        match last {
            Segment::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Default::default());
                }
                match cur.as_object_mut() {
                    Some(map) => {
                        map.insert(k.clone(), new);
                        true
                    }
                    None => false,
                }
            }
            Segment::Index(i) => match cur.as_array_mut() {
                Some(a) if *i < a.len() => {
                    a[*i] = new;
                    true
                }
                Some(a) if *i == a.len() => {
                    a.push(new);
                    true
                }
                _ => false,
            },
        }
    }

    /// Removes the part of `value` this path names (an array element is removed, shifting the
    /// rest). Returns the removed value.
    pub fn remove(&self, value: &mut Value) -> Option<Value> {
        let (last, parents) = self.0.split_last()?;
        let mut cur = value;
        for seg in parents {
            cur = match seg {
                Segment::Key(k) => cur.as_object_mut()?.get_mut(k)?,
                Segment::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
            };
        }
        match last {
            Segment::Key(k) => cur.as_object_mut()?.remove(k),
            Segment::Index(i) => {
                let a = cur.as_array_mut()?;
                (*i < a.len()).then(|| a.remove(*i))
            }
        }
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if is_plain_key(k) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => write!(f, "[{k:?}]")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Path {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Path::root());
        }
        Path::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_displays_round_trip() {
        for text in ["a", "a.b", "a[0].b", "tags[\"x.y\"]", "rules[3][1]"] {
            let p = Path::parse(text).unwrap();
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        for text in ["", ".a", "a..b", "a[", "a[x]", "a.", "a[0]b"] {
            assert!(Path::parse(text).is_err(), "{text} should not parse");
        }
    }

    #[test]
    fn get_set_remove() {
        let mut v = json!({"a": {"b": [1, 2]}});
        let p = Path::parse("a.b[1]").unwrap();
        assert_eq!(p.get(&v), Some(&json!(2)));
        assert!(p.set(&mut v, json!(5)));
        assert!(Path::parse("a.b[2]").unwrap().set(&mut v, json!(6)));
        assert_eq!(v, json!({"a": {"b": [1, 5, 6]}}));
        assert_eq!(p.remove(&mut v), Some(json!(5)));
        assert_eq!(v, json!({"a": {"b": [1, 6]}}));
    }
}
