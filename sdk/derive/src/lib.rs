//! Derive macros that turn a plain serde struct into a resource's `Args` or `Outputs`, reading
//! per-field schema facts from `#[sw(replace, secret, computed)]`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, LitStr, parse_macro_input};

struct Field {
    ident: syn::Ident,
    ty: syn::Type,
    name: String,
    replace: bool,
    secret: bool,
    computed: bool,
}

fn fields(input: &DeriveInput) -> syn::Result<Vec<Field>> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            input,
            "Args and Outputs can only be derived for structs with named fields",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(
            input,
            "Args and Outputs can only be derived for structs with named fields",
        ));
    };
    let mut out = Vec::new();
    for f in &named.named {
        let ident = f.ident.clone().expect("named field");
        let mut field =
            Field { name: ident.to_string(), ident, ty: f.ty.clone(), replace: false, secret: false, computed: false };
        for attr in &f.attrs {
            if attr.path().is_ident("sw") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("replace") {
                        field.replace = true;
                    } else if meta.path.is_ident("secret") {
                        field.secret = true;
                    } else if meta.path.is_ident("computed") {
                        field.computed = true;
                    } else {
                        return Err(meta.error("unknown attribute; expected `replace`, `secret` or `computed`"));
                    }
                    Ok(())
                })?;
            } else if attr.path().is_ident("serde") {
                // Keep schema names equal to the serialized names.
                let _ = attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("rename") {
                        let lit: LitStr = meta.value()?.parse()?;
                        field.name = lit.value();
                    } else if meta.input.peek(syn::Token![=]) {
                        let _: syn::Expr = meta.value()?.parse()?;
                    }
                    Ok(())
                });
            }
        }
        out.push(field);
    }
    Ok(out)
}

fn schema(fields: &[Field]) -> Tokens {
    let entries = fields.iter().map(|f| {
        let (name, replace, secret, computed) = (&f.name, f.replace, f.secret, f.computed);
        quote! {
            ::stackwright_core::FieldSchema { name: #name, replace: #replace, secret: #secret, computed: #computed }
        }
    });
    quote! {
        fn schema() -> &'static [::stackwright_core::FieldSchema] {
            const SCHEMA: &[::stackwright_core::FieldSchema] = &[#(#entries),*];
            SCHEMA
        }
    }
}

/// A `Debug` impl that prints `[secret]` in place of every `#[sw(secret)]` field, so that
/// arguments and outputs (which reach a provider with their secrets revealed) can be logged.
fn redacting_debug(name: &syn::Ident, fields: &[Field]) -> Tokens {
    let name_text = name.to_string();
    let entries = fields.iter().map(|f| {
        let ident = &f.ident;
        let label = ident.to_string().trim_start_matches("r#").to_owned();
        if f.secret {
            quote! { .field(#label, &::core::format_args!("[secret]")) }
        } else {
            quote! { .field(#label, &self.#ident) }
        }
    });
    quote! {
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name_text) #(#entries)* .finish()
            }
        }
    }
}

/// Implements `stackwright_core::Args` and a redacting `Debug` for a struct of resource
/// arguments (so do not also derive `Debug`).
///
/// Field attributes: `#[sw(replace)]` (a change forces replacement), `#[sw(secret)]` (shown as
/// `[secret]` by `Debug`, encrypted in state).
#[proc_macro_derive(Args, attributes(sw))]
pub fn derive_args(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let fields = match fields(&input) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    let name = &input.ident;
    let schema = schema(&fields);
    let debug = redacting_debug(name, &fields);
    quote! {
        impl ::stackwright_core::Args for #name {
            #schema
        }
        #debug
    }
    .into()
}

/// Implements `stackwright_core::Outputs` and a redacting `Debug` (so do not also derive
/// `Debug`) for a struct of resource outputs, and generates `<Name>Refs`, a struct with one
/// typed `Output` per field for wiring.
///
/// Field attributes: `#[sw(secret)]` (shown as `[secret]` by `Debug`), `#[sw(computed)]`
/// (unknown until a create or update returns).
#[proc_macro_derive(Outputs, attributes(sw))]
pub fn derive_outputs(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let fields = match fields(&input) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    let name = &input.ident;
    let vis = &input.vis;
    let refs = format_ident!("{}Refs", name);
    let schema = schema(&fields);
    let debug = redacting_debug(name, &fields);
    let doc = format!("Typed outputs of a resource whose outputs are [`{name}`], for wiring into other resources.");
    let decls = fields.iter().map(|f| {
        let (ident, ty) = (&f.ident, &f.ty);
        let doc = format!("The `{}` output.", f.name);
        quote! { #[doc = #doc] pub #ident: ::stackwright_core::Output<#ty> }
    });
    let inits = fields.iter().map(|f| {
        let (ident, field_name) = (&f.ident, &f.name);
        quote! { #ident: ::stackwright_core::Output::field(urn, #field_name) }
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #refs {
            #(#decls),*
        }

        impl ::stackwright_core::Outputs for #name {
            type Refs = #refs;
            #schema
            fn refs(urn: &::stackwright_core::Urn) -> #refs {
                #refs { #(#inits),* }
            }
        }

        #debug
    }
    .into()
}
