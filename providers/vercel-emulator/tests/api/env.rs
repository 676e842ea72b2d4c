//! Environment variables: types and decryption, sensitive values, conflicts, upsert, PATCH,
//! delete, batch delete and pagination.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::HashSet;

const ENV: &str = "/v10/projects/app/env";

fn find<'a>(envs: &'a Value, key: &str) -> &'a Value {
    envs.as_array().unwrap().iter().find(|e| e["key"] == key).unwrap_or_else(|| panic!("{key} not listed"))
}

#[tokio::test]
async fn types_and_decrypt() {
    let h = start().await;
    h.create_project("app").await;
    let r = h
        .post(ENV, json!({ "key": "PLAIN", "value": "p-val", "type": "plain", "target": ["production", "preview"] }))
        .await;
    assert_eq!(r.code(), 201, "{}", r.raw);
    assert_eq!(r.body["created"]["key"], "PLAIN");
    assert_eq!(r.body["failed"], json!([]));
    let id = r.body["created"]["id"].as_str().unwrap().to_owned();
    let r = h
        .post(
            ENV,
            json!({ "key": "ENC", "value": "e-val", "type": "encrypted", "target": "development", "comment": "c" }),
        )
        .await;
    assert_eq!(r.code(), 201, "{}", r.raw);

    let listed = h.get(ENV).await.body;
    assert_eq!(find(&listed["envs"], "PLAIN")["value"], "p-val");
    let enc = find(&listed["envs"], "ENC");
    assert_ne!(enc["value"], "e-val", "encrypted values are ciphertext without decrypt");
    assert_eq!(enc["decrypted"], false);
    assert_eq!(enc["target"], json!(["development"]));
    assert_eq!(enc["comment"], "c");

    for path in [format!("{ENV}?decrypt=true"), "/v8/projects/app/env?decrypt=true".into()] {
        let listed = h.get(&path).await.body;
        assert_eq!(find(&listed["envs"], "ENC")["value"], "e-val", "{path}");
        assert_eq!(find(&listed["envs"], "ENC")["decrypted"], true);
    }
    let one = h.get(&format!("/v1/projects/app/env/{id}")).await;
    assert_eq!(one.code(), 200);
    assert_eq!(one.body["value"], "p-val");
    assert_eq!(h.get("/v1/projects/app/env/nope").await.code(), 404);
    assert_eq!(h.get("/v10/projects/missing/env").await.code(), 404);
}

#[tokio::test]
async fn sensitive_values_are_never_returned() {
    let h = start().await;
    h.create_project("app").await;
    let secret = "TOP-SECRET-VALUE-123";
    let r = h
        .post(ENV, json!({ "key": "S", "value": secret, "type": "sensitive", "target": ["production", "preview"] }))
        .await;
    assert_eq!(r.code(), 201, "{}", r.raw);
    let id = r.body["created"]["id"].as_str().unwrap().to_owned();
    let mut bodies = vec![r.raw];
    bodies.push(h.get(ENV).await.raw);
    bodies.push(h.get(&format!("{ENV}?decrypt=true")).await.raw);
    bodies.push(h.get("/v8/projects/app/env?decrypt=true").await.raw);
    bodies.push(h.get(&format!("/v1/projects/app/env/{id}")).await.raw);
    bodies.push(h.get("/v9/projects/app").await.raw);
    let p = h
        .patch(&format!("/v9/projects/app/env/{id}"), json!({ "value": "NEW-SECRET-456", "target": ["production"] }))
        .await;
    assert_eq!(p.code(), 200, "{}", p.raw);
    bodies.push(p.raw);
    bodies.push(h.get(&format!("{ENV}?decrypt=true")).await.raw);
    let upsert = h
        .post(
            &format!("{ENV}?upsert=true"),
            json!({ "key": "S", "value": "UPSERTED-789", "type": "sensitive", "target": ["production"] }),
        )
        .await;
    assert_eq!(upsert.code(), 201, "{}", upsert.raw);
    bodies.push(upsert.raw);
    bodies.push(h.delete(&format!("/v9/projects/app/env/{id}")).await.raw);
    for body in &bodies {
        for s in [secret, "NEW-SECRET-456", "UPSERTED-789"] {
            assert!(!body.contains(s), "sensitive value leaked in {body}");
        }
    }
    // The first listing did return the variable, just without a value.
    assert!(bodies[1].contains("\"key\":\"S\""));

    let dev = h.post(ENV, json!({ "key": "S2", "value": "x", "type": "sensitive", "target": ["development"] })).await;
    assert_eq!(dev.code(), 400);
    assert_eq!(dev.error_code(), "bad_request");
    let to_plain = h.post(ENV, json!({ "key": "S3", "value": "x", "type": "sensitive", "target": ["preview"] })).await;
    let id3 = to_plain.body["created"]["id"].as_str().unwrap().to_owned();
    let r = h.patch(&format!("/v9/projects/app/env/{id3}"), json!({ "type": "plain" })).await;
    assert_eq!(r.code(), 400);
}

#[tokio::test]
async fn conflicts_upsert_and_array_failures() {
    let h = start().await;
    h.create_project("app").await;
    let base = json!({ "key": "K", "value": "1", "type": "plain", "target": ["production", "preview"] });
    let first = h.post(ENV, base.clone()).await;
    assert_eq!(first.code(), 201);
    let first_id = first.body["created"]["id"].as_str().unwrap().to_owned();

    let clash = h.post(ENV, json!({ "key": "K", "value": "2", "type": "plain", "target": ["preview"] })).await;
    assert_eq!(clash.code(), 400);
    assert_eq!(clash.error_code(), "ENV_CONFLICT");
    assert_eq!(clash.body["error"]["envVarKey"], "K");

    // No overlap: different target, or same target on a specific branch.
    assert_eq!(
        h.post(ENV, json!({ "key": "K", "value": "3", "type": "plain", "target": ["development"] })).await.code(),
        201
    );
    assert_eq!(
        h.post(ENV, json!({ "key": "K", "value": "4", "type": "plain", "target": ["preview"], "gitBranch": "feat" }))
            .await
            .code(),
        201
    );
    // A branch needs a preview-only target.
    let r = h
        .post(ENV, json!({ "key": "Q", "value": "4", "type": "plain", "target": ["production"], "gitBranch": "feat" }))
        .await;
    assert_eq!(r.code(), 400);

    let arr = h
        .post(
            ENV,
            json!([
                { "key": "NEW", "value": "n", "type": "plain", "target": ["production"] },
                { "key": "K", "value": "5", "type": "plain", "target": ["production"] },
            ]),
        )
        .await;
    assert_eq!(arr.code(), 201, "{}", arr.raw);
    assert_eq!(arr.body["created"].as_array().unwrap().len(), 1);
    let failed = &arr.body["failed"][0]["error"];
    assert_eq!(failed["code"], "ENV_CONFLICT");
    assert_eq!(failed["envVarKey"], "K");
    assert_eq!(failed["target"], json!(["production"]));
    assert!(failed["gitBranch"].is_null());

    let up = h
        .post(
            &format!("{ENV}?upsert=true"),
            json!({ "key": "K", "value": "upserted", "type": "encrypted", "target": ["production", "preview"] }),
        )
        .await;
    assert_eq!(up.code(), 201, "{}", up.raw);
    assert_eq!(up.body["created"]["id"], first_id.as_str(), "upsert keeps the id");
    let got = h.get(&format!("/v1/projects/app/env/{first_id}")).await;
    assert_eq!(got.body["value"], "upserted");
    assert_eq!(got.body["type"], "encrypted");
}

#[tokio::test]
async fn patch_delete_and_batch_delete() {
    let h = start().await;
    h.create_project("app").await;
    let mut ids = Vec::new();
    for (key, target) in [("A", "production"), ("B", "production"), ("C", "preview")] {
        let r = h.post(ENV, json!({ "key": key, "value": key, "type": "plain", "target": [target] })).await;
        ids.push(r.body["created"]["id"].as_str().unwrap().to_owned());
    }
    let p = h
        .patch(
            &format!("/v9/projects/app/env/{}", ids[0]),
            json!({ "value": "A2", "target": ["production", "development"], "comment": "why" }),
        )
        .await;
    assert_eq!(p.code(), 200, "{}", p.raw);
    assert_eq!(p.body["value"], "A2");
    assert_eq!(p.body["target"], json!(["production", "development"]));
    // Renaming B onto A's key with an overlapping target conflicts.
    let c = h.patch(&format!("/v9/projects/app/env/{}", ids[1]), json!({ "key": "A" })).await;
    assert_eq!(c.code(), 400);
    assert_eq!(c.error_code(), "ENV_CONFLICT");
    assert_eq!(h.patch("/v9/projects/app/env/nope", json!({ "value": "x" })).await.code(), 404);

    let d = h.delete(&format!("/v9/projects/app/env/{}", ids[0])).await;
    assert_eq!(d.code(), 200);
    assert_eq!(d.body["id"], ids[0].as_str());
    assert_eq!(h.delete(&format!("/v9/projects/app/env/{}", ids[0])).await.code(), 404);

    let batch = |ids: Vec<&str>| h.send(reqwest::Method::DELETE, "/v1/projects/app/env", Some(json!({ "ids": ids })));
    let partial = batch(vec![ids[1].as_str(), "nope"]).await;
    assert_eq!(partial.code(), 404);
    assert_eq!(h.get(ENV).await.body["envs"].as_array().unwrap().len(), 2, "all-or-nothing");
    let ok = batch(vec![ids[1].as_str(), ids[2].as_str()]).await;
    assert_eq!(ok.code(), 200, "{}", ok.raw);
    assert_eq!(ok.body["deleted"].as_array().unwrap().len(), 2);
    assert_eq!(h.get(ENV).await.body["envs"], json!([]));
}

#[tokio::test]
async fn pagination_walks_more_than_100_vars() {
    let h = start().await;
    h.create_project("app").await;
    for chunk in 0..3 {
        let items: Vec<Value> = (0..50)
            .map(
                |i| json!({ "key": format!("K_{chunk}_{i}"), "value": "v", "type": "plain", "target": ["production"] }),
            )
            .collect();
        let r = h.post(ENV, Value::Array(items)).await;
        assert_eq!(r.code(), 201);
        assert_eq!(r.body["failed"], json!([]));
    }
    let first = h.get(ENV).await.body;
    assert_eq!(first["envs"].as_array().unwrap().len(), 20, "default page size");
    assert_eq!(first["pagination"]["count"], 20);

    let mut seen = HashSet::new();
    let mut pages = 0;
    let mut path = format!("{ENV}?limit=100");
    loop {
        let page = h.get(&path).await.body;
        pages += 1;
        let envs = page["envs"].as_array().unwrap();
        assert_eq!(page["pagination"]["count"], envs.len());
        for e in envs {
            assert!(seen.insert(e["id"].as_str().unwrap().to_owned()), "duplicate across pages");
        }
        match page["pagination"]["next"].as_i64() {
            Some(next) => path = format!("{ENV}?limit=100&until={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 150);
    let too_big = h.get(&format!("{ENV}?limit=101")).await;
    assert_eq!(too_big.code(), 400);
}
