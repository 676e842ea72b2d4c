//! Built-in resources that need no credentials: `Data`, which stores a value in state like
//! Terraform's `terraform_data`, and a test provider with latency and fault injection.

pub mod data;
pub mod testing;

use stackwright_core::Provider;

/// The name of the built-in provider, always registered.
pub const PROVIDER_NAME: &str = "builtin";

/// The built-in provider with its `Data` resource.
pub fn provider() -> Provider {
    Provider::new(PROVIDER_NAME).resource::<data::Data>(data::DataHandler)
}
