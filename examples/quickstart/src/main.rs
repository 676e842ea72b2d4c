//! The quickstart: a small web stack — a database, an API that uses its URL, a web front end
//! that uses the API's URL — declared with built-in `Data` resources, so it runs anywhere with
//! local state and no credentials. Run it with
//! `STACKWRIGHT_PASSPHRASE=quickstart cargo run -p quickstart -- up --stack dev --yes`.

use serde_json::json;
use stackwright::{Data, DataArgs, Output, ResourceOptions, zip};

fn main() -> std::process::ExitCode {
    stackwright::run(|stack| {
        let env = stack.name().to_owned();
        let database = stack.resource_with::<Data>(
            "database",
            DataArgs::new(json!({ "engine": "postgres", "version": 15, "name": format!("app_{env}") })),
            ResourceOptions::new().protect(),
        );
        let password = Output::secret("correct-horse-battery-staple".to_owned());
        let database_url = zip(&database.output, &password).map(|(db, pw)| {
            json!(format!("postgres://app:{pw}@db.internal:5432/{}", db["name"].as_str().unwrap_or("app")))
        });
        let api = stack.resource::<Data>(
            "api",
            DataArgs::new(
                database_url.map(|url| json!({ "image": "ghcr.io/acme/api:1.4.2", "env": { "DATABASE_URL": url } })),
            ),
        );
        let api_url = api.id().map(|id| format!("https://api-{id}.example.dev"));
        let web = stack.resource_with::<Data>(
            "web",
            DataArgs::new(api_url.map(|url| json!({ "framework": "nextjs", "env": { "NEXT_PUBLIC_API_URL": url } }))),
            ResourceOptions::new().depends_on(&api),
        );
        stack.export("api_url", api_url);
        stack.export("web", web.output.clone());
        stack.export("database_url", database_url);
        Ok(())
    })
}
