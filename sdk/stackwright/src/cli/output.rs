//! `output`: print the stack's exported outputs.

use std::process::ExitCode;

use anyhow::bail;
use stackwright_state::{Backend, StackState};

use crate::render;

use super::args::OutputArgs;
use super::context::Context_;
use super::ui::shown;

/// Prints one or all exports, secrets hidden unless `--show-secrets`.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, args: OutputArgs) -> anyhow::Result<ExitCode> {
    let OutputArgs { name, json, show_secrets } = args;
    let opened = ctx.open_read_only(flag).await?;
    let stack = opened.name.clone();
    let state = opened.backend.load(&stack).await?.unwrap_or_else(|| StackState::new(&stack));
    let exports: std::collections::BTreeMap<&String, serde_json::Value> = state
        .exports
        .iter()
        .filter(|(k, _)| name.as_ref().is_none_or(|n| n == *k))
        .map(|(k, v)| (k, shown(v, show_secrets)))
        .collect();
    if let Some(n) = &name
        && exports.is_empty()
    {
        bail!("stack `{stack}` has no output named `{n}`; `output` lists them");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&exports)?);
    } else if let (Some(_), Some((_, v))) = (&name, exports.iter().next()) {
        println!("{}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
    } else {
        for (k, v) in exports {
            println!("{k:<24} {}", render::value(&v));
        }
    }
    Ok(ExitCode::SUCCESS)
}
