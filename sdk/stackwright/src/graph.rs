//! The dependency graph of a program's declarations, printed as Graphviz DOT or Mermaid.

use std::fmt::Write;

use stackwright_core::Urn;

use crate::stack::Stack;

/// One declared resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub urn: Urn,
    /// Its type token.
    pub type_token: String,
}

/// The declared resources, in declaration order, and their dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// The resources.
    pub nodes: Vec<Node>,
    /// `(dependency, dependent)` pairs: the first must exist before the second.
    pub edges: Vec<(Urn, Urn)>,
}

impl Graph {
    /// The graph of a program's declarations.
    pub fn of(stack: &Stack) -> Self {
        let nodes = stack
            .registrations
            .iter()
            .map(|r| Node { urn: r.urn.clone(), type_token: r.type_token.to_owned() })
            .collect();
        let edges =
            stack.registrations.iter().flat_map(|r| r.deps.iter().map(|d| (d.clone(), r.urn.clone()))).collect();
        Graph { nodes, edges }
    }

    /// Graphviz DOT text with one node per resource and one edge per dependency.
    pub fn dot(&self) -> String {
        let mut out = String::from("digraph stack {\n  rankdir=LR;\n");
        // Rust's string escaping is valid inside DOT's double-quoted strings, and its `\n`
        // is DOT's line break in labels.
        for n in &self.nodes {
            let _ = writeln!(out, "  {:?} [label={:?}];", n.urn.as_str(), format!("{}\n{}", n.urn, n.type_token));
        }
        for (from, to) in &self.edges {
            let _ = writeln!(out, "  {:?} -> {:?};", from.as_str(), to.as_str());
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart with one node per resource and one edge per dependency.
    pub fn mermaid(&self) -> String {
        // Resource names may hold any character, so nodes get generated ids and the names go in
        // quoted labels.
        let id = |urn: &Urn| self.nodes.iter().position(|n| &n.urn == urn).map(|i| format!("n{i}"));
        let mut out = String::from("flowchart LR\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = writeln!(out, "  n{i}[\"{}<br/>{}\"]", mermaid_text(n.urn.as_str()), mermaid_text(&n.type_token));
        }
        for (from, to) in &self.edges {
            if let (Some(a), Some(b)) = (id(from), id(to)) {
                let _ = writeln!(out, "  {a} --> {b}");
            }
        }
        out
    }
}

/// Text for inside a quoted Mermaid label: the characters that would end the label or be read
/// as markup become Mermaid's entity codes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// DOT text with one node per resource and one edge per dependency.
pub fn dot(stack: &Stack) -> String {
    Graph::of(stack).dot()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        Graph {
            nodes: vec![
                Node { urn: Urn::from("db"), type_token: "test:Item".into() },
                Node { urn: Urn::from("say \"hi\" <b>#1"), type_token: "test:Item".into() },
            ],
            edges: vec![(Urn::from("db"), Urn::from("say \"hi\" <b>#1"))],
        }
    }

    #[test]
    fn dot_has_a_node_per_resource_and_an_edge_per_dependency() {
        let dot = graph().dot();
        assert!(dot.starts_with("digraph stack {\n"), "{dot}");
        assert!(dot.contains("  \"db\" [label=\"db\\ntest:Item\"];"), "{dot}");
        assert!(dot.contains("  \"db\" -> \"say \\\"hi\\\" <b>#1\";"), "{dot}");
    }

    #[test]
    fn mermaid_uses_generated_ids_and_escapes_names_in_labels() {
        let m = graph().mermaid();
        assert_eq!(
            m,
            "flowchart LR\n  n0[\"db<br/>test:Item\"]\n  n1[\"say #quot;hi#quot; #lt;b#gt;#35;1<br/>test:Item\"]\n  n0 --> n1\n"
        );
    }
}
