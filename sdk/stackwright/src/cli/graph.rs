//! `graph`: print the program's dependency graph.

use std::process::ExitCode;

use crate::stack::{Program, Stack};

/// Runs the program and prints its declarations as Graphviz DOT.
pub(super) async fn run(flag: &Option<String>, program: &Program) -> anyhow::Result<ExitCode> {
    let stack_name = flag.clone().unwrap_or_else(|| "graph".into());
    let mut stack = Stack::new(&stack_name);
    program(&mut stack)?;
    println!("{}", crate::graph::dot(&stack));
    Ok(ExitCode::SUCCESS)
}
