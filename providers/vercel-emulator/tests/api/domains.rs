//! Project domains: add/get/update/remove, conflicts, TXT verification and DNS config.

use crate::common::*;
use serde_json::json;
use stackwright_vercel_emulator::DomainConfig;

const DOMAINS: &str = "/v10/projects/site/domains";

#[tokio::test]
async fn add_get_update_remove() {
    let h = start().await;
    h.create_project("site").await;
    let r = h.post(DOMAINS, json!({ "name": "WWW.Example.com" })).await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    assert_eq!(r.body["name"], "www.example.com");
    assert_eq!(r.body["apexName"], "example.com");
    assert_eq!(r.body["verified"], true);
    assert!(r.body.get("verification").is_none());
    h.post(DOMAINS, json!({ "name": "example.com" })).await;

    let got = h.get("/v9/projects/site/domains/www.example.com").await;
    assert_eq!(got.code(), 200);
    assert_eq!(got.body["projectId"], h.get("/v9/projects/site").await.body["id"]);
    assert!(got.body["redirect"].is_null());

    let p = h
        .patch(
            "/v9/projects/site/domains/www.example.com",
            json!({ "redirect": "example.com", "redirectStatusCode": 301 }),
        )
        .await;
    assert_eq!(p.code(), 200, "{}", p.raw);
    let got = h.get("/v9/projects/site/domains/www.example.com").await.body;
    assert_eq!(got["redirect"], "example.com");
    assert_eq!(got["redirectStatusCode"], 301);
    let bad = h.patch("/v9/projects/site/domains/www.example.com", json!({ "redirectStatusCode": 303 })).await;
    assert_eq!(bad.code(), 400);
    let elsewhere = h.patch("/v9/projects/site/domains/www.example.com", json!({ "redirect": "nothere.com" })).await;
    assert_eq!(elsewhere.code(), 400);
    let p =
        h.patch("/v9/projects/site/domains/www.example.com", json!({ "redirect": null, "gitBranch": "staging" })).await;
    assert_eq!(p.code(), 200);
    assert!(p.body["redirect"].is_null() && p.body["redirectStatusCode"].is_null());
    assert_eq!(p.body["gitBranch"], "staging");

    let listed = h.get("/v9/projects/site/domains").await.body;
    assert_eq!(listed["domains"].as_array().unwrap().len(), 2);

    assert_eq!(h.delete("/v9/projects/site/domains/www.example.com").await.code(), 200);
    let gone = h.get("/v9/projects/site/domains/www.example.com").await;
    assert_eq!(gone.code(), 404);
    assert_eq!(gone.error_code(), "not_found");
    for bad in ["not a domain", "nodot", "-x.com"] {
        assert_eq!(h.post(DOMAINS, json!({ "name": bad })).await.code(), 400, "{bad}");
    }
}

#[tokio::test]
async fn domain_conflicts() {
    let h = start().await;
    h.create_project("site").await;
    h.create_project("other").await;
    assert_eq!(h.post(DOMAINS, json!({ "name": "a.example.org" })).await.code(), 200);

    let same = h.post(DOMAINS, json!({ "name": "a.example.org" })).await;
    assert_eq!(same.code(), 400);
    assert_eq!(same.error_code(), "domain_already_in_use");

    let other = h.post("/v10/projects/other/domains", json!({ "name": "a.example.org" })).await;
    assert_eq!(other.code(), 409);
    assert_eq!(other.error_code(), "domain_already_in_use");

    let beta = h.in_team(OTHER_TEAM);
    beta.create_project("theirs").await;
    let foreign = beta.post("/v10/projects/theirs/domains", json!({ "name": "a.example.org" })).await;
    assert_eq!(foreign.code(), 409);
    assert_eq!(foreign.error_code(), "domain_already_exists");
    // The documented adoption check: GET on our project says 200, on theirs 404.
    assert_eq!(h.get("/v9/projects/site/domains/a.example.org").await.code(), 200);
    assert_eq!(beta.get("/v9/projects/theirs/domains/a.example.org").await.code(), 404);
}

#[tokio::test]
async fn txt_verification() {
    let h = start_with(|b| b.domains(DomainConfig { unverified_suffixes: vec![".needs-txt.dev".into()] })).await;
    h.create_project("site").await;
    let r = h.post(DOMAINS, json!({ "name": "app.needs-txt.dev" })).await;
    assert_eq!(r.code(), 200);
    assert_eq!(r.body["verified"], false);
    let v = &r.body["verification"][0];
    assert_eq!(v["type"], "TXT");
    assert_eq!(v["domain"], "_vercel.needs-txt.dev");
    let value = v["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("vc-domain-verify=app.needs-txt.dev,"));

    let fail = h.post("/v9/projects/site/domains/app.needs-txt.dev/verify", json!({})).await;
    assert_eq!(fail.code(), 400);
    assert_eq!(fail.error_code(), "bad_request");

    h.emu.add_dns_record("_vercel.needs-txt.dev", "TXT", &value);
    let ok = h.post("/v9/projects/site/domains/app.needs-txt.dev/verify", json!({})).await;
    assert_eq!(ok.code(), 200, "{}", ok.raw);
    assert_eq!(ok.body["verified"], true);
    assert!(ok.body.get("verification").is_none());
    assert_eq!(h.get("/v9/projects/site/domains/app.needs-txt.dev").await.body["verified"], true);
}

#[tokio::test]
async fn dns_config_endpoint() {
    let h = start().await;
    h.create_project("site").await;
    h.post(DOMAINS, json!({ "name": "shop.example.net" })).await;
    let path = "/v6/domains/shop.example.net/config?projectIdOrName=site";
    let before = h.get(path).await;
    assert_eq!(before.code(), 200, "{}", before.raw);
    assert_eq!(before.body["misconfigured"], true);
    assert_eq!(before.body["recommendedIPv4"][0]["value"][0], "76.76.21.21");
    assert_eq!(before.body["recommendedCNAME"][0]["value"], "cname.vercel-dns.com.");

    let r = h
        .admin(
            reqwest::Method::POST,
            "/dns",
            Some(json!({ "name": "shop.example.net", "type": "CNAME", "value": "cname.vercel-dns.com." })),
        )
        .await;
    assert_eq!(r.code(), 200);
    let after = h.get(path).await.body;
    assert_eq!(after["misconfigured"], false);
    assert_eq!(after["configuredBy"], "CNAME");
    assert_eq!(h.get("/v6/domains/shop.example.net/config?projectIdOrName=missing").await.code(), 404);
}
