//! Stack references: a program reads another stack's exported outputs; secrets stay secret.

mod common;

use common::*;
use serde_json::{Value, json};
use stackwright::{Data, DataArgs, Output};
use stackwright::{PreviewOptions, UpOptions};

#[tokio::test]
async fn a_program_reads_another_stacks_outputs_and_secrets_stay_secret() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let network = program(|s| {
        let vpc = s.resource::<Data>("vpc", DataArgs::new(json!({ "cidr": "10.0.0.0/16" })));
        s.export("vpc", vpc.output.clone());
        s.export("token", Output::secret("canary-ref-token".to_string()));
    });
    assert!(engine.up("network", &network, UpOptions::default(), &yes).await.unwrap().succeeded());

    let app = std::sync::Arc::new(|s: &mut stackwright::Stack| {
        let net = s.reference("network")?;
        let vpc: Output<Value> = net.output("vpc")?;
        let token: Output<String> = net.output("token")?;
        assert!(token.is_secret());
        s.resource::<Data>(
            "app",
            DataArgs::new(stackwright::zip(&vpc, &token).map(|(v, t)| json!({ "cidr": v["cidr"], "token": t }))),
        );
        Ok(())
    }) as stackwright::Program;
    let preview = engine.preview("app", &app, PreviewOptions::default()).await.unwrap();
    let rendered = stackwright::render::plan(&preview.plan);
    assert!(rendered.contains("[secret]") && !rendered.contains("canary-ref-token"), "{rendered}");
    assert!(engine.up("app", &app, UpOptions::default(), &yes).await.unwrap().succeeded());
    let state = engine.state("app").await.unwrap().unwrap();
    let (plain, was_secret) = stackwright::core::value::reveal(state.resources.values().next().unwrap().inputs.clone());
    assert!(was_secret);
    assert_eq!(plain["input"]["cidr"], json!("10.0.0.0/16"));

    let missing = std::sync::Arc::new(|s: &mut stackwright::Stack| {
        s.reference("network")?.output::<Value>("nope")?;
        Ok(())
    }) as stackwright::Program;
    let err = engine.preview("app", &missing, PreviewOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("stack `network` has no output named `nope`") && err.contains("token, vpc"), "{err}");
    let nowhere = std::sync::Arc::new(|s: &mut stackwright::Stack| {
        s.reference("ghost")?;
        Ok(())
    }) as stackwright::Program;
    let err = engine.preview("app", &nowhere, PreviewOptions::default()).await.unwrap_err().to_string();
    assert!(err.contains("stack `ghost` has no state"), "{err}");
}
