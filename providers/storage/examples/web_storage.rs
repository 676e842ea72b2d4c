//! The storage of a web app, as in the book's storage page: an uploads bucket the browser
//! writes to directly (CORS for the web app), a versioned media bucket with lifecycle rules, and
//! the built front end synced as static assets. The `dev` stack keeps everything in `./.storage`;
//! other stacks use S3 with the endpoint and keys from the standard AWS variables.
//!
//! ```sh
//! cargo run -p stackwright-storage --example web_storage -- up --stack dev --yes
//! ```

use std::collections::BTreeMap;

use stackwright::Output;
use stackwright_storage::{
    Bucket, BucketArgs, CorsRule, Folder, FolderArgs, LifecycleRule, Object, ObjectArgs, ObjectSource,
    PublicAccessBlock, S3Config, ServiceProfile, StorageConfig,
};

fn main() -> std::process::ExitCode {
    stackwright::run(|stack| {
        let env = stack.name().to_owned();
        let storage = match env.as_str() {
            "dev" => StorageConfig::local(".storage"),
            _ => StorageConfig::s3(S3Config::from_env(ServiceProfile::Aws)),
        };
        stack.provider(storage.provider()?);
        let app_origin = match env.as_str() {
            "dev" => "http://localhost:3000".to_owned(),
            _ => format!("https://{env}.app.example.com"),
        };
        let tags = BTreeMap::from([("app".to_owned(), "reader".to_owned()), ("env".to_owned(), env.clone())]);

        // Uploads: the browser PUTs files with presigned URLs, so the bucket allows the web
        // app's origin; unfinished uploads and scratch files are cleaned up.
        let uploads = stack.resource::<Bucket>(
            "uploads",
            BucketArgs {
                cors: vec![
                    CorsRule::new([app_origin.clone()], ["GET", "PUT", "POST", "HEAD"])
                        .allowed_headers(["*"])
                        .expose_headers(["ETag"])
                        .max_age_seconds(3000),
                ]
                .into(),
                lifecycle: vec![
                    LifecycleRule::new("abort-unfinished-uploads", "").abort_incomplete_uploads_after_days(1),
                    LifecycleRule::new("expire-scratch", "tmp/").expire_after_days(7),
                ]
                .into(),
                public_access_block: Some(PublicAccessBlock::all().into()),
                tags: tags.clone().into(),
                ..BucketArgs::new(format!("reader-uploads-{env}"))
            },
        );

        // Media (EPUB files, audio): every version kept, old versions expire after 30 days.
        let media = stack.resource::<Bucket>(
            "media",
            BucketArgs {
                versioning: true.into(),
                lifecycle: vec![
                    LifecycleRule::new("expire-old-versions", "").expire_noncurrent_after_days(30),
                    LifecycleRule::new("abort-unfinished-uploads", "").abort_incomplete_uploads_after_days(2),
                ]
                .into(),
                public_access_block: Some(PublicAccessBlock::all().into()),
                tags: tags.clone().into(),
                force_destroy: env != "prod",
                ..BucketArgs::new(format!("reader-media-{env}"))
            },
        );

        // Static assets: the built front end, synced by content hash.
        let assets = stack.resource::<Bucket>(
            "assets",
            BucketArgs { tags: tags.into(), force_destroy: true, ..BucketArgs::new(format!("reader-assets-{env}")) },
        );
        let site = stack.resource::<Folder>(
            "site",
            FolderArgs::from_dir(&assets.name, "web/dist")?
                .prefix("static")
                .cache_control("public, max-age=31536000, immutable"),
        );

        // The front end's runtime configuration, built from the buckets' outputs.
        let config = stackwright::zip(&uploads.name, &media.name)
            .map(|(u, m)| ObjectSource::inline(format!(r#"{{"uploadsBucket":"{u}","mediaBucket":"{m}"}}"#)));
        stack.resource::<Object>(
            "runtime-config",
            ObjectArgs {
                cache_control: Some("no-cache".to_owned().into()),
                ..ObjectArgs::new(&assets.name, "config.json".to_owned(), config)
            },
        );

        stack.export("uploads_bucket", uploads.name.clone());
        stack.export("media_bucket", media.name.clone());
        stack.export("assets_url", site.url.clone());
        stack.export("env", Output::new(env));
        Ok(())
    })
}
