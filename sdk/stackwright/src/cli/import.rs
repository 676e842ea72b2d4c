//! `import`: adopt an existing object into the stack and print the declaration to add.

use std::process::ExitCode;

use crate::stack::Program;

use super::args::ImportArgs;
use super::context::Context_;

/// Reads the object, records it in the state and prints its arguments.
pub(super) async fn run(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    args: ImportArgs,
) -> anyhow::Result<ExitCode> {
    let ImportArgs { type_token, name, id } = args;
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    let resource = ctx.engine(&opened, 1, "import", false).import(&stack, program, &type_token, &name, &id).await?;
    println!("Imported `{type_token}` {id} as `{name}` into stack `{stack}`.\n");
    println!("Declare it in the program with these arguments so the next preview shows no changes:");
    println!("  stack.resource::<…>({name:?}, /* {type_token} arguments */);");
    let args = stackwright_core::value::redact(&resource.inputs);
    println!("{}", serde_json::to_string_pretty(&args)?);
    Ok(ExitCode::SUCCESS)
}
