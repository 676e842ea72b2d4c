//! Cursor pagination shared by every list endpoint: newest first, `limit` plus `until`/`since`
//! timestamps, answered with `pagination:{count,next,prev}`.

use crate::config::PaginationConfig;
use crate::error::{ApiError, ApiResult};
use crate::json::Params;
use serde_json::{Value, json};

/// A parsed page request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRequest {
    pub limit: usize,
    pub until: Option<i64>,
    pub since: Option<i64>,
}

impl PageRequest {
    pub fn from_params(params: &Params, cfg: &PaginationConfig) -> ApiResult<Self> {
        let limit = match params.get("limit") {
            None => cfg.default_limit,
            Some(raw) => {
                let n: usize = raw.parse().map_err(|_| ApiError::invalid("`limit` should be number."))?;
                if n == 0 || n > cfg.max_limit {
                    return Err(ApiError::invalid(format!("`limit` should be between 1 and {}.", cfg.max_limit)));
                }
                n
            }
        };
        Ok(Self { limit, until: params.i64("until")?, since: params.i64("since")? })
    }
}

/// Returns one page of `items` and its `pagination` object.
///
/// Keys must be unique (the store hands out strictly increasing creation timestamps), otherwise
/// an `until` cursor could skip items that share the boundary timestamp.
pub(crate) fn paginate<T>(mut items: Vec<T>, key: impl Fn(&T) -> i64, req: PageRequest) -> (Vec<T>, Value) {
    items.sort_by_key(|i| std::cmp::Reverse(key(i)));
    let newest = items.first().map(&key);
    let mut filtered: Vec<T> = items
        .into_iter()
        .filter(|i| req.until.is_none_or(|u| key(i) < u))
        .filter(|i| req.since.is_none_or(|s| key(i) > s))
        .collect();
    let has_more = filtered.len() > req.limit;
    // With only `since`, the page adjacent to the cursor is the oldest part of the range.
    if req.since.is_some() && req.until.is_none() && has_more {
        let start = filtered.len() - req.limit;
        filtered.drain(..start);
    } else {
        filtered.truncate(req.limit);
    }
    let next = if has_more && !(req.since.is_some() && req.until.is_none()) { filtered.last().map(&key) } else { None };
    let prev = match (filtered.first().map(&key), newest) {
        (Some(first), Some(newest)) if first < newest => Some(first),
        _ => None,
    };
    let pagination = json!({ "count": filtered.len(), "next": next, "prev": prev });
    (filtered, pagination)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(limit: usize, until: Option<i64>) -> PageRequest {
        PageRequest { limit, until, since: None }
    }

    #[test]
    fn walks_all_pages_without_gaps_or_repeats() {
        let items: Vec<i64> = (1..=45).collect();
        let mut seen = Vec::new();
        let mut until = None;
        loop {
            let (page, p) = paginate(items.clone(), |i| *i, req(20, until));
            seen.extend(page);
            match p["next"].as_i64() {
                Some(n) => until = Some(n),
                None => break,
            }
        }
        let mut expected = items.clone();
        expected.reverse();
        assert_eq!(seen, expected);
    }

    #[test]
    fn prev_is_null_on_first_page_only() {
        let items: Vec<i64> = (1..=5).collect();
        let (_, first) = paginate(items.clone(), |i| *i, req(2, None));
        assert!(first["prev"].is_null());
        assert_eq!(first["next"], 4);
        let (page, second) = paginate(items, |i| *i, req(2, Some(4)));
        assert_eq!(page, vec![3, 2]);
        assert_eq!(second["prev"], 3);
        assert_eq!(second["count"], 2);
    }
}
