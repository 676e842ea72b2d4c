//! Secrets stay out of the SDK's own formatting: the `Debug` that `#[derive(Args, Outputs)]`
//! generates, and the errors of arguments that do not match a resource's schema (which reach
//! the handler with their secrets revealed, so serde's messages would quote them).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use stackwright_core::{
    Args, Created, Handler, Input, Observed, OpContext, Outputs, PropertyChange, Provider, ProviderError, Resource,
    Secret, Stored, Urn,
};

const CANARY: &str = "canary-\"q\"\\b\ne\tx é🦀 &=+ %/";

struct Login;

impl Resource for Login {
    const TYPE: &'static str = "t:Login";
    type Args = LoginArgs;
    type Outputs = LoginOutputs;
}

#[derive(Clone, Serialize, Deserialize)]
struct Endpoint {
    host: String,
    port: u16,
}

#[derive(Clone, Serialize, Deserialize, Args)]
struct LoginArgs {
    user: Input<String>,
    #[sw(secret)]
    password: Input<String>,
    #[sw(secret)]
    #[serde(default)]
    pin: Option<Input<u32>>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    endpoint: Option<Endpoint>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Clone, Serialize, Deserialize, Outputs)]
struct LoginOutputs {
    user: String,
    #[sw(secret)]
    token: String,
    /// A nested secret inside a non-secret field stays hidden through `Secret<T>`.
    session: Option<Secret<String>>,
}

struct LoginHandler;

#[async_trait]
impl Handler<Login> for LoginHandler {
    async fn create(&self, _: &OpContext, args: &LoginArgs) -> Result<Created<LoginOutputs>, ProviderError> {
        Ok(Created {
            id: "1".into(),
            outputs: LoginOutputs { user: args.user.get().clone(), token: "t".into(), session: None },
        })
    }
    async fn read(&self, _: &OpContext, _: &Stored<Login>) -> Result<Option<Observed<Login>>, ProviderError> {
        Ok(None)
    }
    async fn update(
        &self,
        _: &OpContext,
        stored: &Stored<Login>,
        _: &LoginArgs,
        _: &[PropertyChange],
    ) -> Result<LoginOutputs, ProviderError> {
        Ok(stored.outputs.clone())
    }
    async fn delete(&self, _: &OpContext, _: &Stored<Login>) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// Runs a future that completes without waiting (the handler above never awaits anything).
fn now<T>(f: impl Future<Output = T>) -> T {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(t) => t,
        Poll::Pending => panic!("the call waited"),
    }
}

fn ctx() -> OpContext {
    OpContext { urn: Urn::from("login"), stack: "dev".into(), operation_id: "op-1".into() }
}

fn assert_hidden(text: &str) {
    for needle in ["canary", "\"ab\"", "hunter", "4711"] {
        assert!(!text.contains(needle), "`{needle}` shown in: {text}");
    }
}

#[test]
fn derived_debug_of_args_shows_secret_fields_as_secret_and_the_rest_as_is() {
    for password in [CANARY, "ab"] {
        let args = LoginArgs {
            user: "alice".into(),
            password: password.into(),
            pin: Some(4711.into()),
            retries: 3,
            endpoint: Some(Endpoint { host: "db.internal".into(), port: 5432 }),
        };
        for text in [format!("{args:?}"), format!("{args:#?}")] {
            assert_hidden(&text);
            assert!(text.contains("LoginArgs") && text.contains("password") && text.contains("pin"), "{text}");
            assert!(text.contains("\"alice\"") && text.contains("retries") && text.contains("db.internal:5432"));
            assert_eq!(text.matches("[secret]").count(), 2, "{text}");
        }
    }
}

#[test]
fn derived_debug_of_outputs_shows_secret_fields_as_secret() {
    let outputs = LoginOutputs { user: "alice".into(), token: CANARY.into(), session: Some(Secret::new("ab".into())) };
    let text = format!("{outputs:?}");
    assert_hidden(&text);
    assert_eq!(text, r#"LoginOutputs { user: "alice", token: [secret], session: Some([secret]) }"#);
}

#[test]
fn argument_type_errors_name_the_field_and_type_but_never_quote_the_value() {
    let provider = Provider::new("t").resource::<Login>(LoginHandler);
    let handler = provider.handler(Login::TYPE).unwrap();
    // A secret where a number belongs (serde would say `invalid type: string "…", expected u32`).
    let wrong = json!({"user": "alice", "password": "pw", "pin": "hunter2-pin", "retries": 1});
    let e = now(handler.create(&ctx(), &wrong)).unwrap_err().to_string();
    assert_hidden(&e);
    assert!(e.contains("t:Login") && e.contains("`pin`") && e.contains("found a string, expected u32"), "{e}");

    let failures = handler.check(&wrong);
    assert_eq!(failures.len(), 1);
    assert_hidden(&failures[0].message);
    assert_eq!(failures[0].path.as_ref().map(ToString::to_string).as_deref(), Some("pin"));
    assert!(failures[0].message.contains("expected u32"), "{}", failures[0].message);

    // Nested: the path goes down to the offending part.
    let nested = json!({"user": "a", "password": "pw", "endpoint": {"host": "h", "port": CANARY}});
    let e = now(handler.create(&ctx(), &nested)).unwrap_err().to_string();
    assert_hidden(&e);
    assert!(e.contains("`endpoint.port`") && e.contains("found a string, expected u16"), "{e}");

    // Missing fields are named; an unknown variant or a bad number of items never shows a value.
    let missing = json!({"user": "alice"});
    let e = now(handler.create(&ctx(), &missing)).unwrap_err().to_string();
    assert!(e.contains("missing field `password`"), "{e}");
    let big = json!({"user": "a", "password": "pw", "retries": -4711});
    let e = now(handler.create(&ctx(), &big)).unwrap_err().to_string();
    assert_hidden(&e);
    assert!(e.contains("`retries`") && e.contains("found a number"), "{e}");
}

#[test]
fn stored_outputs_errors_never_quote_the_value() {
    let provider = Provider::new("t").resource::<Login>(LoginHandler);
    let handler = provider.handler(Login::TYPE).unwrap();
    let stored = stackwright_core::RawState {
        id: "1".into(),
        args: json!({"user": "alice", "password": CANARY}),
        outputs: json!({"user": "alice", "token": ["hunter2", CANARY]}),
    };
    let e = now(handler.delete(&ctx(), &stored)).unwrap_err().to_string();
    assert_hidden(&e);
    assert!(e.contains("stored outputs") && e.contains("`token`") && e.contains("found a list"), "{e}");
    // And the raw state itself prints only its shape.
    let text = format!("{stored:?}");
    assert_hidden(&text);
    assert!(text.contains("\"password\":\"a string\"") && text.contains("id: \"1\""), "{text}");
}
