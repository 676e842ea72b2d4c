//! `vercel:ProjectDomain`: redirects wired from another domain, branch domains, verification
//! records, drift and replacement.

use reqwest::Method;
use serde_json::json;
use stackwright::StepOp;
use stackwright_vercel::{Project, ProjectArgs, ProjectDomain, ProjectDomainArgs};
use stackwright_vercel_emulator::DomainConfig;

use crate::common::*;

fn program(h: &Harness, staging: &'static str) -> stackwright::Program {
    h.program(move |s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("domains-app"));
        let apex = s.resource::<ProjectDomain>("apex", ProjectDomainArgs::new(web.id(), "acme-shop.dev"));
        s.resource::<ProjectDomain>(
            "www",
            ProjectDomainArgs::new(web.id(), "www.acme-shop.dev").redirect_to(apex.name.clone(), 301),
        );
        s.resource::<ProjectDomain>(
            "staging",
            ProjectDomainArgs { git_branch: Some("develop".into()), ..ProjectDomainArgs::new(web.id(), staging) },
        );
        s.resource::<ProjectDomain>("docs", ProjectDomainArgs::new(web.id(), "docs.needs-proof.dev"));
    })
}

#[tokio::test]
async fn domains_are_added_updated_verified_and_replaced() {
    let h =
        harness_with(|b| b.domains(DomainConfig { unverified_suffixes: vec![".needs-proof.dev".into()] }), |c| c).await;
    let v1 = program(&h, "staging.acme-shop.dev");
    h.up(&v1).await;
    let www = h.object("domains", "name", "www.acme-shop.dev");
    assert_eq!((www["redirect"].as_str(), www["redirectStatusCode"].as_u64()), (Some("acme-shop.dev"), Some(301)));
    assert_eq!(h.object("domains", "name", "staging.acme-shop.dev")["gitBranch"], "develop");
    assert_eq!(h.id("www").await, "www.acme-shop.dev");

    // A domain Vercel cannot verify by itself carries the DNS record to set.
    let docs = h.outputs("docs").await;
    assert_eq!(docs["verified"], false);
    let record = &docs["verification"][0];
    assert_eq!((record["type"].as_str(), record["domain"].as_str()), (Some("TXT"), Some("_vercel.needs-proof.dev")));
    assert!(h.outputs("apex").await["verified"].as_bool() == Some(true));
    assert_no_changes(&h.preview(&v1, true).await.plan);

    // Once the record is in DNS and the domain verified, a refresh reports it.
    let value = record["value"].as_str().expect("record value").to_owned();
    h.admin(Method::POST, "/dns", json!({ "name": "_vercel.needs-proof.dev", "type": "TXT", "value": value })).await;
    h.api_ok(Method::POST, &format!("/v9/projects/{}/domains/docs.needs-proof.dev/verify", h.id("web").await), None)
        .await;
    let preview = h.preview(&v1, true).await;
    let docs_drift = preview.drift.iter().find(|d| d.urn.as_str() == "docs").expect("docs refreshed");
    assert!(docs_drift.changes.iter().any(|c| c.path.to_string() == "outputs.verified"));
    assert_no_changes(&preview.plan);

    // Drift on a redirect is repaired.
    let project = h.id("web").await;
    h.admin(
        Method::PATCH,
        &format!("/teams/{TEAM}/projects/{project}/domains/www.acme-shop.dev"),
        json!({ "redirect": null }),
    )
    .await;
    let preview = h.preview(&v1, true).await;
    assert_eq!(step(&preview.plan, "www"), StepOp::Update);
    h.up_refresh(&v1).await;
    assert_eq!(h.object("domains", "name", "www.acme-shop.dev")["redirect"], "acme-shop.dev");

    // A new name replaces the domain.
    let v2 = program(&h, "next.acme-shop.dev");
    assert_eq!(step(&h.preview(&v2, false).await.plan, "staging"), StepOp::Replace { delete_before_create: true });
    h.up(&v2).await;
    let names: Vec<String> = h.objects("domains").iter().map(|d| text(d, "/name")).collect();
    assert!(
        names.contains(&"next.acme-shop.dev".into()) && !names.contains(&"staging.acme-shop.dev".into()),
        "{names:?}"
    );

    h.destroy(&v2).await;
    assert!(h.objects("domains").is_empty());
}
