//! The graph shapes the benchmark declares, over built-in `Data` resources (engine cost alone) or
//! test-provider `Item`s (a provider with latency). Names and wiring match the Terraform harness
//! (`r{i}`, `l{layer}_{i}`, `c{k}`), and every dependency is data flow: a node's input is a short
//! tag derived from its dependencies' outputs, so values stay the same size in every shape.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackwright::builtin::testing::{Item, ItemArgs, TestProvider};
use stackwright::{Data, DataArgs, Input, Output, Program, Stack, zip};

/// How many layers the layered shape has.
pub const LAYERS: usize = 10;

/// A graph shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// N resources without dependencies.
    Independent,
    /// 10 layers of N/10; node i of layer L>0 reads nodes i and i+1 (mod size) of layer L-1.
    Layered,
    /// Node k>0 reads node k-1.
    Chain,
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 3] = [Shape::Independent, Shape::Layered, Shape::Chain];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Independent => "independent",
            Shape::Layered => "layered",
            Shape::Chain => "chain",
        }
    }

    /// Checks that `n` resources can take this shape.
    pub fn validate(self, n: usize) -> anyhow::Result<()> {
        anyhow::ensure!(n >= 1, "{self}: N must be at least 1");
        if self == Shape::Layered {
            anyhow::ensure!(n.is_multiple_of(LAYERS), "layered: N must be a multiple of {LAYERS}, got {n}");
        }
        Ok(())
    }

    /// The fastest possible apply when every provider call takes `call` and at most `parallel`
    /// calls run at once.
    pub fn ideal_apply(self, n: usize, parallel: usize, call: std::time::Duration) -> std::time::Duration {
        call * u32::try_from(self.waves(n, parallel)).unwrap_or(u32::MAX)
    }

    /// How many provider calls deep the ideal schedule is: calls in one wave run at once.
    pub fn waves(self, n: usize, parallel: usize) -> usize {
        let parallel = parallel.max(1);
        match self {
            Shape::Independent => n.div_ceil(parallel),
            Shape::Layered => LAYERS * (n / LAYERS).div_ceil(parallel),
            Shape::Chain => n,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Shape {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Shape::ALL
            .into_iter()
            .find(|shape| shape.name() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown shape `{s}` (expected independent, layered or chain)"))
    }
}

/// Which resource type the nodes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Built-in `Data`: no provider I/O, so the run measures the engine alone.
    Engine,
    /// `test:Item` from the test provider, whose calls sleep for the configured latency.
    Latency,
    /// `test:Item` from the test provider without latency: every create and delete is a durable
    /// operation (a pending record, then its result), at the speed of the engine and the disk.
    Provider,
}

/// Declares one node named `name` with `input` and returns the output its dependents read.
type DeclareFn = dyn Fn(&mut Stack, &str, Input<Value>) -> Output<Value> + Send + Sync;
type Declare = Arc<DeclareFn>;

/// A program declaring `n` `Data` resources in `shape`.
pub fn data_program(shape: Shape, n: usize) -> Program {
    let declare: Declare =
        Arc::new(|stack, name, input| stack.resource::<Data>(name, DataArgs::new(input)).output.clone());
    program(shape, n, declare, None)
}

/// A program declaring `n` test-provider `Item`s in `shape`, using `provider`.
pub fn item_program(shape: Shape, n: usize, provider: TestProvider) -> Program {
    let declare: Declare = Arc::new(|stack, name, input| {
        stack.resource::<Item>(name, ItemArgs { value: input, ..ItemArgs::default() }).value.clone()
    });
    program(shape, n, declare, Some(provider))
}

fn program(shape: Shape, n: usize, declare: Declare, provider: Option<TestProvider>) -> Program {
    Arc::new(move |stack: &mut Stack| {
        if let Some(p) = &provider {
            stack.provider(p.provider());
        }
        declare_shape(stack, shape, n, declare.as_ref());
        Ok(())
    })
}

fn declare_shape(stack: &mut Stack, shape: Shape, n: usize, declare: &DeclareFn) {
    match shape {
        Shape::Independent => {
            for i in 0..n {
                let name = format!("r{i}");
                declare(stack, &name, json!(name).into());
            }
        }
        Shape::Layered => {
            let size = n / LAYERS;
            let mut previous: Vec<Output<Value>> = Vec::new();
            for layer in 0..LAYERS {
                let mut current = Vec::with_capacity(size);
                for i in 0..size {
                    let name = format!("l{layer}_{i}");
                    let input = if layer == 0 {
                        json!(name).into()
                    } else {
                        let (a, b) = (i % size, (i + 1) % size);
                        if a == b {
                            derived(&name, &previous[a])
                        } else {
                            derived_pair(&name, &previous[a], &previous[b])
                        }
                    };
                    current.push(declare(stack, &name, input));
                }
                previous = current;
            }
        }
        Shape::Chain => {
            let mut previous: Option<Output<Value>> = None;
            for k in 0..n {
                let name = format!("c{k}");
                let input = match &previous {
                    None => json!(name).into(),
                    Some(p) => derived(&name, p),
                };
                previous = Some(declare(stack, &name, input));
            }
        }
    }
}

/// `"{name}:{hash}"` of one dependency's output.
fn derived(name: &str, dep: &Output<Value>) -> Input<Value> {
    let name = name.to_owned();
    dep.map(move |v| tag(&name, &[&v])).into()
}

/// `"{name}:{hash}"` of two dependencies' outputs.
fn derived_pair(name: &str, a: &Output<Value>, b: &Output<Value>) -> Input<Value> {
    let name = name.to_owned();
    zip(a, b).map(move |(x, y)| tag(&name, &[&x, &y])).into()
}

/// A short, deterministic tag of `values` (FNV-1a over their JSON text): hashing rather than
/// concatenating keeps every value small, as the Terraform harness does with `md5`.
fn tag(name: &str, values: &[&Value]) -> Value {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, v) in values.iter().enumerate() {
        let text = v.to_string();
        let sep: &[u8] = if i == 0 { b"" } else { b"|" };
        for b in sep.iter().chain(text.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    json!(format!("{name}:{h:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ideal_schedules() {
        let ms = Duration::from_millis(20);
        assert_eq!(Shape::Independent.ideal_apply(500, 10, ms), Duration::from_secs(1));
        assert_eq!(Shape::Layered.ideal_apply(500, 10, ms), Duration::from_secs(1));
        assert_eq!(Shape::Chain.ideal_apply(200, 10, ms), Duration::from_secs(4));
        assert_eq!(Shape::Independent.ideal_apply(15, 10, ms), Duration::from_millis(40));
    }

    #[test]
    fn shapes_parse_and_validate() {
        assert_eq!("chain".parse::<Shape>().unwrap(), Shape::Chain);
        assert!("ring".parse::<Shape>().is_err());
        assert!(Shape::Layered.validate(15).is_err());
        assert!(Shape::Layered.validate(20).is_ok());
    }

    #[test]
    fn tags_are_deterministic_and_short() {
        let a = tag("x", &[&json!("a"), &json!("b")]);
        assert_eq!(a, tag("x", &[&json!("a"), &json!("b")]));
        assert_ne!(a, tag("x", &[&json!("b"), &json!("a")]));
        assert_eq!(a.as_str().unwrap().len(), "x:".len() + 16);
    }
}
