//! The storage provider through the real engine, as a specification. Every behaviour runs twice:
//! against the S3 server CI starts (Ceph RGW, which checks SigV4 signatures) and against
//! local-directory storage.

mod common;

use stackwright::{PreviewOptions, UpOptions};
use std::collections::BTreeMap;

use common::*;
use stackwright::{EngineError, StepOp};
use stackwright_core::ErrorKind;
use stackwright_storage::store::{Body, ObjectMeta, PutObject, Versioning};
use stackwright_storage::{
    Bucket, BucketArgs, CorsRule, Folder, FolderArgs, LifecycleRule, Object, ObjectArgs, ObjectSource,
    PublicAccessBlock, ServiceProfile, StorageConfig,
};

/// Runs a behaviour against both backends, as two tests.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name(Harness::new(Kind::S3)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$name(Harness::new(Kind::Local)).await
            }
        }
    )*};
}

on_both!(
    bucket_sub_configurations_are_created_updated_and_removed,
    cors_drift_is_found_by_refresh_and_repaired,
    force_destroy_empties_a_versioned_bucket,
    object_content_metadata_and_key_changes,
    object_drift_is_compared_without_downloading,
    folder_sync_adds_changes_and_removes_files,
    unsupported_features_fail_at_preview,
);

fn web_cors() -> CorsRule {
    CorsRule::new(["https://app.example.com"], ["get", "PUT"])
        .allowed_headers(["Content-Type", "x-amz-*"])
        .expose_headers(["ETag"])
        .max_age_seconds(3000)
}

fn sort_cors(rules: &[CorsRule]) -> Vec<(Vec<String>, Vec<String>)> {
    rules
        .iter()
        .map(|r| {
            let mut o = r.allowed_origins.clone();
            o.sort();
            let mut m: Vec<String> = r.allowed_methods.iter().map(|m| m.to_uppercase()).collect();
            m.sort();
            (o, m)
        })
        .collect()
}

async fn bucket_sub_configurations_are_created_updated_and_removed(h: Harness) {
    let name = h.bucket("subcfg");
    let renamed = h.bucket("subcfg2");
    let version = |name: String, stage: u8| {
        h.program(move |s| {
            let args = match stage {
                // Everything on; forms that read back differently (lowercase methods, rules
                // out of id order) must not show as changes.
                0 => BucketArgs {
                    versioning: true.into(),
                    cors: vec![web_cors()].into(),
                    lifecycle: vec![
                        LifecycleRule::new("tmp", "tmp/").expire_after_days(7),
                        LifecycleRule::new("old-versions", "").expire_noncurrent_after_days(30),
                        LifecycleRule::new("abort", "").abort_incomplete_uploads_after_days(2),
                    ]
                    .into(),
                    public_access_block: Some(PublicAccessBlock::all().into()),
                    tags: BTreeMap::from([("env".to_owned(), "test".to_owned())]).into(),
                    ..BucketArgs::new(name.clone())
                },
                // Every sub-configuration changes.
                1 => BucketArgs {
                    versioning: false.into(),
                    cors: vec![CorsRule::new(["https://admin.example.com"], ["GET"]), web_cors()].into(),
                    lifecycle: vec![LifecycleRule::new("tmp", "tmp/").expire_after_days(1)].into(),
                    public_access_block: Some(
                        PublicAccessBlock { block_public_acls: true, ..PublicAccessBlock::default() }.into(),
                    ),
                    tags: BTreeMap::from([
                        ("env".to_owned(), "test".to_owned()),
                        ("team".to_owned(), "web & media".to_owned()),
                    ])
                    .into(),
                    ..BucketArgs::new(name.clone())
                },
                // Every sub-configuration removed.
                _ => BucketArgs::new(name.clone()),
            };
            s.resource::<Bucket>("media", args);
            Ok(())
        })
    };

    // Create.
    let p = version(name.clone(), 0);
    assert_eq!(changes(&h.preview(&p).await.plan), vec![("media".into(), StepOp::Create)]);
    h.up(&p).await;
    assert!(h.store.bucket_exists(&name).await.unwrap());
    assert_eq!(h.store.get_versioning(&name).await.unwrap(), Versioning::Enabled);
    let cors = h.store.get_cors(&name).await.unwrap();
    assert_eq!(sort_cors(&cors), sort_cors(&[web_cors()]));
    assert_eq!(cors[0].max_age_seconds, Some(3000));
    let mut ids: Vec<String> = h.store.get_lifecycle(&name).await.unwrap().into_iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, ["abort", "old-versions", "tmp"]);
    assert_eq!(h.store.get_public_access_block(&name).await.unwrap(), Some(PublicAccessBlock::all()));
    assert_eq!(h.store.get_tags(&name).await.unwrap()["env"], "test");
    if h.kind == Kind::S3 {
        // The CORS rule is in force: a browser preflight from the web app's origin is allowed.
        let url = h.store.object_url(&name, "upload.bin");
        let preflight = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "PUT")
            .send()
            .await
            .unwrap();
        let allowed = preflight.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allowed.as_deref(), Some("https://app.example.com"), "{preflight:?}");
    }
    h.assert_no_changes(&p).await;

    // Update every sub-configuration in place.
    let p = version(name.clone(), 1);
    let plan = h.preview(&p).await.plan;
    assert_eq!(op_of(&plan, "media"), Some(StepOp::Update));
    let paths = changed_paths(&plan, "media");
    for field in ["versioning", "cors", "lifecycle", "public_access_block", "tags"] {
        assert!(paths.iter().any(|p| p.starts_with(field)), "{field} should change: {paths:?}");
    }
    h.up(&p).await;
    assert_eq!(h.store.get_versioning(&name).await.unwrap(), Versioning::Suspended);
    let cors = h.store.get_cors(&name).await.unwrap();
    assert_eq!(cors.len(), 2);
    assert_eq!(cors[0].allowed_origins, ["https://admin.example.com"], "CORS rule order is kept");
    let lifecycle = h.store.get_lifecycle(&name).await.unwrap();
    assert_eq!((lifecycle.len(), lifecycle[0].expiration_days), (1, Some(1)));
    assert!(
        h.store
            .get_public_access_block(&name)
            .await
            .unwrap()
            .is_some_and(|b| b.block_public_acls && !b.ignore_public_acls)
    );
    assert_eq!(h.store.get_tags(&name).await.unwrap()["team"], "web & media");
    h.assert_no_changes(&p).await;

    // Remove every sub-configuration.
    let p = version(name.clone(), 2);
    h.up(&p).await;
    assert!(h.store.get_cors(&name).await.unwrap().is_empty());
    assert!(h.store.get_lifecycle(&name).await.unwrap().is_empty());
    assert!(h.store.get_tags(&name).await.unwrap().is_empty());
    assert!(h.store.get_public_access_block(&name).await.unwrap().is_none_or(|b| b == PublicAccessBlock::default()));
    assert_eq!(h.store.get_versioning(&name).await.unwrap(), Versioning::Suspended, "never back to unversioned");
    h.assert_no_changes(&p).await;

    // A new name replaces the bucket: the new one is created, then the old one deleted.
    let p = version(renamed.clone(), 2);
    assert_eq!(op_of(&h.preview(&p).await.plan, "media"), Some(StepOp::Replace { delete_before_create: false }));
    h.up(&p).await;
    assert!(h.store.bucket_exists(&renamed).await.unwrap());
    assert!(!h.store.bucket_exists(&name).await.unwrap());

    h.destroy(&p).await;
    assert!(!h.store.bucket_exists(&renamed).await.unwrap());
}

async fn cors_drift_is_found_by_refresh_and_repaired(h: Harness) {
    let name = h.bucket("drift");
    let p = {
        let name = name.clone();
        h.program(move |s| {
            s.resource::<Bucket>(
                "uploads",
                BucketArgs {
                    cors: vec![web_cors()].into(),
                    tags: BTreeMap::from([("app".to_owned(), "web".to_owned())]).into(),
                    ..BucketArgs::new(name.clone())
                },
            );
            Ok(())
        })
    };
    h.up(&p).await;
    h.assert_no_changes(&p).await;

    // Someone changes CORS and the tags by hand.
    let by_hand = CorsRule::new(["*"], ["GET", "PUT", "DELETE"]);
    h.store.put_cors(&name, std::slice::from_ref(&by_hand)).await.unwrap();
    h.store.put_tags(&name, &BTreeMap::from([("app".to_owned(), "other".to_owned())])).await.unwrap();

    // A refresh finds it and records it; the next plan repairs it.
    let drift = h.engine.refresh(STACK, &p).await.unwrap();
    assert_eq!(drift.len(), 1, "{drift:#?}");
    let paths: Vec<String> = drift[0].changes.iter().map(|c| c.path.to_string()).collect();
    assert!(paths.iter().any(|p| p.starts_with("cors")) && paths.iter().any(|p| p.starts_with("tags")), "{paths:?}");
    let plan = h.preview(&p).await.plan;
    assert_eq!(changes(&plan), vec![("uploads".into(), StepOp::Update)]);
    h.up(&p).await;
    assert_eq!(sort_cors(&h.store.get_cors(&name).await.unwrap()), sort_cors(&[web_cors()]));
    assert_eq!(h.store.get_tags(&name).await.unwrap()["app"], "web");
    h.assert_no_changes(&p).await;

    // Removing the CORS configuration by hand is drift too.
    h.store.put_cors(&name, &[]).await.unwrap();
    let report = h.engine.up(STACK, &p, UpOptions::refreshed(), &|_, _| true).await.unwrap();
    assert!(report.succeeded() && report.drift.len() == 1, "{:#?}", report.drift);
    assert_eq!(h.store.get_cors(&name).await.unwrap().len(), 1);

    h.destroy(&p).await;
    assert!(!h.store.bucket_exists(&name).await.unwrap());
}

async fn force_destroy_empties_a_versioned_bucket(h: Harness) {
    let name = h.bucket("force");
    let program = |force: bool, with_object: bool| {
        let name = name.clone();
        h.program(move |s| {
            let bucket = s.resource::<Bucket>(
                "media",
                BucketArgs { versioning: true.into(), force_destroy: force, ..BucketArgs::new(name.clone()) },
            );
            if with_object {
                s.resource::<Object>(
                    "episode",
                    ObjectArgs::new(&bucket.name, "audio/ep1.mp3", ObjectSource::inline("pretend audio v1")),
                );
            }
            Ok(())
        })
    };
    h.up(&program(false, true)).await;
    // More versions, another key and a delete marker, written by hand.
    for (key, text) in
        [("audio/ep1.mp3", "v2"), ("audio/ep1.mp3", "v3"), ("notes.txt", "n1"), ("notes.txt", "n2"), ("keep.txt", "k")]
    {
        let body = bytes::Bytes::from(text);
        let put = PutObject {
            bucket: name.clone(),
            key: key.into(),
            sha256: stackwright_storage::client::sha256_hex(&body),
            body: Body::Bytes(body),
            meta: ObjectMeta::default(),
        };
        h.store.put_object(&put).await.unwrap();
    }
    h.store.delete_object(&name, "notes.txt").await.unwrap();

    // Without force_destroy, deleting the non-empty bucket fails clearly and keeps it.
    let report = h.engine.destroy(STACK, &program(false, true), &|_, _| true).await.unwrap();
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    let message = &report.failures[0].message;
    assert!(message.contains("not empty") || message.contains("BucketNotEmpty"), "{message}");
    assert!(message.contains("force_destroy"), "{message}");
    assert!(h.store.bucket_exists(&name).await.unwrap());

    // With force_destroy applied, destroy empties every version and deletes the bucket.
    h.up(&program(true, false)).await;
    h.destroy(&program(true, false)).await;
    assert!(!h.store.bucket_exists(&name).await.unwrap());
}

async fn object_content_metadata_and_key_changes(h: Harness) {
    let name = h.bucket("objects");
    let big = h.path("big.bin");
    // 7 MiB of varied bytes: above the S3 harness's 6 MiB multipart threshold, so two parts.
    let data: Vec<u8> = (0..7 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    let program = |stage: u8| {
        let (name, big) = (name.clone(), big.clone());
        h.program(move |s| {
            let bucket = s.resource::<Bucket>("bucket", BucketArgs::new(name.clone()));
            let (key, source, cache) = match stage {
                0 => ("docs/hello.txt", ObjectSource::inline("hello"), "no-cache"),
                1 => ("docs/hello.txt", ObjectSource::inline("hello, world"), "no-cache"),
                2 => ("docs/hello.txt", ObjectSource::inline("hello, world"), "max-age=60"),
                3 => ("docs/hello.txt", ObjectSource::file(&big)?, "max-age=60"),
                4 => ("docs/hello.txt", ObjectSource::file(&big)?, "max-age=120"),
                _ => ("docs/big.bin", ObjectSource::file(&big)?, "max-age=120"),
            };
            s.resource::<Object>(
                "doc",
                ObjectArgs {
                    cache_control: Some(cache.to_owned().into()),
                    metadata: BTreeMap::from([("owner".to_owned(), "web".to_owned())]).into(),
                    ..ObjectArgs::new(&bucket.name, key.to_owned(), source)
                },
            );
            Ok(())
        })
    };

    // Create: content, type guessed from the key, cache control, metadata and the stored hash.
    h.up(&program(0)).await;
    assert_eq!(h.text(&name, "docs/hello.txt").await.as_deref(), Some("hello"));
    let head = h.store.head_object(&name, "docs/hello.txt").await.unwrap().unwrap();
    assert_eq!(head.meta.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(head.meta.cache_control.as_deref(), Some("no-cache"));
    assert_eq!(head.meta.metadata.get("owner").map(String::as_str), Some("web"));
    assert_eq!(head.sha256.as_deref(), Some(ObjectSource::inline("hello").sha256()));
    h.assert_no_changes(&program(0)).await;

    // New content: an update whose diff is the content and its hash.
    let plan = h.preview(&program(1)).await.plan;
    assert_eq!(op_of(&plan, "doc"), Some(StepOp::Update));
    let paths = changed_paths(&plan, "doc");
    assert!(paths.contains(&"source.inline.sha256".to_owned()), "{paths:?}");
    h.up(&program(1)).await;
    assert_eq!(h.text(&name, "docs/hello.txt").await.as_deref(), Some("hello, world"));

    // Metadata only: rewritten in place, content untouched.
    let before = h.store.head_object(&name, "docs/hello.txt").await.unwrap().unwrap();
    h.up(&program(2)).await;
    let after = h.store.head_object(&name, "docs/hello.txt").await.unwrap().unwrap();
    assert_eq!(after.meta.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!((after.etag.as_str(), after.sha256.as_deref()), (before.etag.as_str(), before.sha256.as_deref()));
    assert_eq!(h.text(&name, "docs/hello.txt").await.as_deref(), Some("hello, world"));
    h.assert_no_changes(&program(2)).await;

    // A large file: streamed with multipart on S3, hash verified.
    h.up(&program(3)).await;
    let head = h.store.head_object(&name, "docs/hello.txt").await.unwrap().unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.sha256.as_deref(), Some(stackwright_storage::client::sha256_hex(&data).as_str()));
    if h.kind == Kind::S3 {
        assert!(head.etag.ends_with("-2"), "a 2-part multipart ETag, got {}", head.etag);
    }
    let got = h.store.get_object(&name, "docs/hello.txt").await.unwrap().unwrap();
    assert!(got[..] == data[..], "downloaded content equals the file");
    h.assert_no_changes(&program(3)).await;

    // New metadata on the multipart object: copied in place, and no false drift afterwards.
    h.up(&program(4)).await;
    let head = h.store.head_object(&name, "docs/hello.txt").await.unwrap().unwrap();
    assert_eq!((head.size, head.meta.cache_control.as_deref()), (data.len() as u64, Some("max-age=120")));
    h.assert_no_changes(&program(4)).await;

    // A new key replaces the object: the old key is deleted.
    assert_eq!(op_of(&h.preview(&program(5)).await.plan, "doc"), Some(StepOp::Replace { delete_before_create: false }));
    h.up(&program(5)).await;
    assert!(h.store.head_object(&name, "docs/hello.txt").await.unwrap().is_none());
    assert_eq!(h.store.head_object(&name, "docs/big.bin").await.unwrap().unwrap().size, data.len() as u64);

    // A file that changes after the program hashed it (here: after the plan was confirmed) is
    // refused, and the object keeps its content.
    let p = program(5);
    h.assert_no_changes(&p).await;
    std::fs::write(&big, &data[..6 * 1024 * 1024]).unwrap();
    let big2 = big.clone();
    let report = h
        .engine
        .up(STACK, &p, UpOptions::default(), &move |_, _| {
            std::fs::write(&big2, b"changed again").unwrap();
            true
        })
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    assert!(
        report.failures[0].message.contains("changed since the program hashed it"),
        "{}",
        report.failures[0].message
    );
    assert_eq!(h.store.head_object(&name, "docs/big.bin").await.unwrap().unwrap().size, data.len() as u64);
    h.destroy(&p).await;
    assert!(!h.store.bucket_exists(&name).await.unwrap());
}

async fn object_drift_is_compared_without_downloading(h: Harness) {
    let name = h.bucket("objdrift");
    let p = {
        let name = name.clone();
        h.program(move |s| {
            let bucket = s.resource::<Bucket>("bucket", BucketArgs::new(name.clone()));
            s.resource::<Object>(
                "config",
                ObjectArgs {
                    content_type: Some("application/json".to_owned().into()),
                    ..ObjectArgs::new(&bucket.name, "config.json", ObjectSource::inline(r#"{"api":"https://api"}"#))
                },
            );
            Ok(())
        })
    };
    h.up(&p).await;
    h.assert_no_changes(&p).await;

    // Overwritten by hand (without Stackwright's hash): found by a HEAD, repaired by an upload.
    let body = bytes::Bytes::from_static(b"{\"api\":\"http://evil\"}");
    let put = PutObject {
        bucket: name.clone(),
        key: "config.json".into(),
        sha256: stackwright_storage::client::sha256_hex(&body),
        body: Body::Bytes(body),
        meta: ObjectMeta { content_type: Some("application/json".into()), ..ObjectMeta::default() },
    };
    h.store.put_object(&put).await.unwrap();
    let drift = h.engine.refresh(STACK, &p).await.unwrap();
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(drift[0].changes.iter().any(|c| c.path.to_string() == "source.inline.sha256"), "{drift:#?}");
    h.up(&p).await;
    assert_eq!(h.text(&name, "config.json").await.as_deref(), Some(r#"{"api":"https://api"}"#));

    // Deleted by hand: gone from state on refresh, created again by the next update.
    h.store.delete_object(&name, "config.json").await.unwrap();
    let report = h.engine.up(STACK, &p, UpOptions::refreshed(), &|_, _| true).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    assert!(report.drift.iter().any(|d| d.gone), "{:#?}", report.drift);
    assert_eq!(op_of(&report.plan, "config"), Some(StepOp::Create));
    assert!(h.text(&name, "config.json").await.is_some());

    h.destroy(&p).await;
}

async fn folder_sync_adds_changes_and_removes_files(h: Harness) {
    let name = h.bucket("folder");
    let site = h.path("site");
    h.write("site/index.html", "<h1>v1</h1>");
    h.write("site/css/app.css", "body{}");
    h.write("site/img/logo.svg", "<svg/>");
    for i in 0..30 {
        h.write(&format!("site/fonts/f{i:02}.woff2"), format!("font {i}"));
    }
    let site_keys =
        |keys: Vec<String>| -> Vec<String> { keys.into_iter().filter(|k| !k.starts_with("static/fonts/")).collect() };
    let p = |exclusive: bool| {
        let (name, site) = (name.clone(), site.clone());
        h.program(move |s| {
            let bucket = s.resource::<Bucket>("bucket", BucketArgs::new(name.clone()));
            let mut args = FolderArgs::from_dir(&bucket.name, &site)?.prefix("static").cache_control("max-age=300");
            if exclusive {
                args = args.exclusive();
            }
            s.resource::<Folder>("assets", args);
            Ok(())
        })
    };

    h.up(&p(false)).await;
    assert_eq!(
        site_keys(h.keys(&name, "static/").await),
        ["static/css/app.css", "static/img/logo.svg", "static/index.html"]
    );
    assert_eq!(h.keys(&name, "static/fonts/").await.len(), 30, "uploaded in parallel");
    let font = h.store.head_object(&name, "static/fonts/f07.woff2").await.unwrap().unwrap();
    assert_eq!(font.meta.content_type.as_deref(), Some("font/woff2"));
    let head = h.store.head_object(&name, "static/css/app.css").await.unwrap().unwrap();
    assert_eq!(head.meta.content_type.as_deref(), Some("text/css; charset=utf-8"));
    assert_eq!(head.meta.cache_control.as_deref(), Some("max-age=300"));
    h.assert_no_changes(&p(false)).await;

    // Change one file, add one, remove one: the plan lists exactly those files.
    h.write("site/css/app.css", "body{color:red}");
    h.write("site/js/app.js", "console.log(1)");
    std::fs::remove_file(site.join("img/logo.svg")).unwrap();
    let plan = h.preview(&p(false)).await.plan;
    assert_eq!(op_of(&plan, "assets"), Some(StepOp::Update));
    let step = plan.steps.iter().find(|s| s.urn.as_str() == "assets").unwrap();
    let mut listed: Vec<(String, stackwright_core::ChangeKind)> =
        step.changes.iter().map(|c| (c.path.to_string(), c.kind)).collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    use stackwright_core::ChangeKind::*;
    assert_eq!(
        listed,
        vec![
            (r#"files["css/app.css"]"#.to_owned(), Update),
            (r#"files["img/logo.svg"]"#.to_owned(), Delete),
            (r#"files["js/app.js"]"#.to_owned(), Add),
        ]
    );
    h.up(&p(false)).await;
    assert_eq!(
        site_keys(h.keys(&name, "static/").await),
        ["static/css/app.css", "static/index.html", "static/js/app.js"]
    );
    assert_eq!(h.text(&name, "static/css/app.css").await.as_deref(), Some("body{color:red}"));
    h.assert_no_changes(&p(false)).await;

    // Drift: a file changed and one deleted by hand are restored. A stray object under the
    // prefix is left alone until the folder is made exclusive.
    let stray = bytes::Bytes::from_static(b"stray");
    for (key, body) in [("static/index.html", bytes::Bytes::from_static(b"defaced")), ("static/stray.txt", stray)] {
        let put = PutObject {
            bucket: name.clone(),
            key: key.into(),
            sha256: stackwright_storage::client::sha256_hex(&body),
            body: Body::Bytes(body),
            meta: ObjectMeta::default(),
        };
        h.store.put_object(&put).await.unwrap();
    }
    h.store.delete_object(&name, "static/js/app.js").await.unwrap();
    let report = h.engine.up(STACK, &p(false), UpOptions::refreshed(), &|_, _| true).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    assert_eq!(report.drift.len(), 1);
    assert_eq!(h.text(&name, "static/index.html").await.as_deref(), Some("<h1>v1</h1>"));
    assert_eq!(h.text(&name, "static/js/app.js").await.as_deref(), Some("console.log(1)"));
    assert!(h.text(&name, "static/stray.txt").await.is_some());

    h.up(&p(true)).await;
    let report = h.engine.up(STACK, &p(true), UpOptions::refreshed(), &|_, _| true).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    assert!(h.text(&name, "static/stray.txt").await.is_none(), "an exclusive folder deletes strays");
    assert_eq!(h.keys(&name, "static/").await.len(), 33);

    h.destroy(&p(true)).await;
    assert!(!h.store.bucket_exists(&name).await.unwrap());
}

async fn unsupported_features_fail_at_preview(h: Harness) {
    let name = h.bucket("profile");
    let config_for = |profile: ServiceProfile| match h.kind {
        Kind::S3 => StorageConfig::s3(s3_config(profile, None)),
        Kind::Local => StorageConfig::local(h.path("storage")).emulating(profile),
    };
    let program = |profile: ServiceProfile| {
        let provider = config_for(profile).provider().unwrap();
        let name = name.clone();
        std::sync::Arc::new(move |s: &mut stackwright::Stack| {
            s.provider(provider.clone());
            s.resource::<Bucket>(
                "media",
                BucketArgs {
                    versioning: true.into(),
                    cors: vec![web_cors()].into(),
                    lifecycle: vec![LifecycleRule::new("abort", "").abort_incomplete_uploads_after_days(1)].into(),
                    tags: BTreeMap::from([("env".to_owned(), "test".to_owned())]).into(),
                    ..BucketArgs::new(name.clone())
                },
            );
            Ok(())
        }) as stackwright::Program
    };
    let failures = |e: EngineError| match e {
        EngineError::Check(f) => {
            f.into_iter().map(|(urn, f)| (urn, f.path.map(|p| p.to_string()), f.message)).collect::<Vec<_>>()
        }
        other => panic!("expected a check failure, got {other}"),
    };

    let r2 =
        failures(h.engine.preview(STACK, &program(ServiceProfile::R2), PreviewOptions::default()).await.unwrap_err());
    let fields: Vec<&str> = r2.iter().filter_map(|(_, p, _)| p.as_deref()).collect();
    assert_eq!(fields, ["versioning", "tags"], "{r2:#?}");
    assert!(r2.iter().all(|(urn, _, m)| urn == "media" && m.contains("Cloudflare R2")), "{r2:#?}");

    let minio = failures(
        h.engine.preview(STACK, &program(ServiceProfile::Minio), PreviewOptions::default()).await.unwrap_err(),
    );
    let fields: Vec<&str> = minio.iter().filter_map(|(_, p, _)| p.as_deref()).collect();
    assert_eq!(fields, ["cors", "lifecycle[0].abort_incomplete_multipart_upload_days"], "{minio:#?}");
    assert!(minio[0].2.contains("MinIO does not support bucket CORS rules (field `cors`"), "{}", minio[0].2);

    let railway = failures(
        h.engine.preview(STACK, &program(ServiceProfile::Railway), PreviewOptions::default()).await.unwrap_err(),
    );
    assert!(railway.iter().any(|(_, p, m)| p.as_deref() == Some("name") && m.contains("bucketCreate")), "{railway:#?}");

    // `up` refuses the same way, before calling the service.
    let err = h.engine.up(STACK, &program(ServiceProfile::R2), UpOptions::default(), &|_, _| true).await.unwrap_err();
    assert!(err.to_string().contains("field `versioning`: Cloudflare R2 does not support bucket versioning"), "{err}");
    assert!(!h.store.bucket_exists(&name).await.unwrap(), "nothing was created");

    // Invalid names are also found at preview.
    let bad = h.program(|s| {
        s.resource::<Bucket>("bad", BucketArgs::new("Not_A_Bucket".to_owned()));
        Ok(())
    });
    let text = h.preview_error(&bad).await.to_string();
    assert!(text.contains("field `name`") && text.contains("lowercase"), "{text}");
    h.forget(&name);
}

/// A wrong secret key is refused by the server's signature check and reported as unauthorized,
/// naming the access key and what to check, without retries.
#[tokio::test]
async fn a_wrong_secret_key_is_a_clear_unauthorized_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::s3(s3_config(ServiceProfile::CephGeneric, Some("not-the-secret-key")));
    let h = Harness::with_config(Kind::S3, config, dir);
    let name = h.bucket("unauth");
    let p = {
        let name = name.clone();
        h.program(move |s| {
            s.resource::<Bucket>("uploads", BucketArgs::new(name.clone()));
            Ok(())
        })
    };
    let started = std::time::Instant::now();
    let failures = h.up_failing(&p).await;
    assert_eq!(failures.len(), 1);
    let m = &failures[0].message;
    assert!(m.contains("unauthorized") && m.contains("SignatureDoesNotMatch"), "{m}");
    assert!(m.contains("secret access key") && m.contains(&std::env::var("STACKWRIGHT_S3_ACCESS_KEY").unwrap()), "{m}");
    assert!(!m.contains("not-the-secret-key"), "the secret never shows: {m}");
    assert!(!m.contains("attempts"), "unauthorized errors are not retried: {m}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // The same through the store: the error kind is Unauthorized.
    let e = h.store.bucket_exists(&name).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    h.forget(&name);
}
