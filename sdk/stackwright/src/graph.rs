//! The dependency graph of a program's declarations in Graphviz DOT.

use std::fmt::Write;

use crate::stack::Stack;

/// DOT text with one node per resource and one edge per dependency.
pub fn dot(stack: &Stack) -> String {
    let mut out = String::from("digraph stack {\n  rankdir=LR;\n");
    for r in &stack.registrations {
        let _ = writeln!(out, "  {:?} [label={:?}];", r.urn.as_str(), format!("{}\n{}", r.urn, r.type_token));
    }
    for r in &stack.registrations {
        for d in &r.deps {
            let _ = writeln!(out, "  {:?} -> {:?};", d.as_str(), r.urn.as_str());
        }
    }
    out.push_str("}\n");
    out
}
