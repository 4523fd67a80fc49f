//! Derives for plimsoll's label types: `#[derive(LabelSet)]` for a struct of
//! labels (and, on request, its borrowed key), `#[derive(LabelValue)]` for a
//! closed set of values written as an enum with a catch-all variant.
//!
//! ```
//! use plimsoll_core::{ClosedLabel, Format, LabelSet, Telemetry};
//! use plimsoll_macros::{LabelSet, LabelValue};
//!
//! /// How a job ended: a closed set, so it adds a fixed number of series.
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, LabelValue)]
//! enum Outcome {
//!     Success,
//!     ServerError,
//!     #[label(value = "unknown")]
//!     Other,
//! }
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, LabelSet)]
//! #[label_set(key = JobKey)]
//! struct Job {
//!     queue: String,
//!     #[label(name = "result")]
//!     outcome: Outcome,
//! }
//!
//! let telemetry = Telemetry::builder().with_process_metrics(false).build()?;
//! let jobs = telemetry.counter::<Job>("jobs", "Jobs run.")?;
//! let acme = telemetry.tenant("acme");
//!
//! // The borrowed key finds the owned set's series without allocating.
//! jobs.inc(&acme, &JobKey { queue: "emails", outcome: Outcome::Success });
//! jobs.inc(&acme, &Job { queue: "emails".into(), outcome: Outcome::Success });
//! // Values from outside go through `from_label`: unknown ones land on `Other`.
//! let reported = Outcome::from_label("server_error");
//! jobs.inc(&acme, &JobKey { queue: "emails", outcome: reported });
//! let reported = Outcome::from_label("on fire");
//! jobs.inc(&acme, &JobKey { queue: "emails", outcome: reported });
//!
//! assert_eq!(Job::NAMES, ["queue", "result"]);
//! assert_eq!(Outcome::VALUES, ["success", "server_error", "unknown"]);
//! let body = telemetry.encode(Format::Prometheus);
//! assert!(body.contains(r#"jobs_total{tenant_id="acme",queue="emails",result="success"} 2"#));
//! assert!(body.contains(r#"jobs_total{tenant_id="acme",queue="emails",result="server_error"} 1"#));
//! assert!(body.contains(r#"jobs_total{tenant_id="acme",queue="emails",result="unknown"} 1"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # `#[derive(LabelSet)]`
//!
//! On a non-generic struct with named fields, each of a type implementing
//! `LabelValue`. It implements `LabelSet`, as `impl_label_set!` does: the
//! label names are the field names in order (`r#type` is `type`), and each
//! field writes its value.
//!
//! - `#[label(name = "..")]` on a field gives its label another name.
//! - `#[label_set(key = Name)]` on the struct also declares the borrowed
//!   key `Name<'a>`, as `label_key!` does: a struct with the struct's
//!   visibility and the same fields in the same order, each `pub` and of
//!   type `<T as LabelField>::Ref<'a>` (`&'a str` for `String`, `Arc<str>`
//!   and `Box<str>`; the value itself for integers, `bool` and closed
//!   enums), implementing `LabelKey<Struct>`. It hashes exactly like the
//!   struct as long as the struct derives `Hash`, so recording with either
//!   lands on the same series. Every field type must implement `LabelField`.
//!
//! Label names are checked at compile time, as registering the family would
//! check them at run time: `[a-zA-Z_][a-zA-Z0-9_]*`, not `tenant_id` (plimsoll
//! adds it), not starting with `__`, no name twice.
//!
//! # `#[derive(LabelValue)]`
//!
//! On a non-generic enum whose variants have no fields. The enum must also
//! derive `Clone, Copy, Debug, Hash, PartialEq, Eq`. It implements
//! `LabelValue` (writes the variant's value), `LabelField` (the borrowed
//! form is the value itself) and `ClosedLabel` (`VALUES` in variant order,
//! `as_str`, and `from_label`, which maps every unknown input onto the
//! catch-all variant).
//!
//! - A variant's value is its name in snake case (`ServerError` is
//!   `server_error`); `#[label(value = "..")]` gives it another one.
//! - The catch-all variant is the one marked `#[label(other)]`, else the one
//!   named `Other`. There must be one: a closed set keeps its bound only if
//!   inputs it does not know have somewhere to go.
//!
//! # From the `plimsoll` facade
//!
//! Generated code refers to `::plimsoll_core`. A crate that depends on the
//! `plimsoll` facade instead says so with `#[plimsoll(crate = plimsoll)]` on
//! the struct or enum: the facade re-exports all of `plimsoll_core` at its
//! root, so every path the derives use is there. (The facade does not
//! re-export these derives: depend on `plimsoll-macros` as well.) Any path
//! to a re-export works, as here with a renamed import:
//!
//! ```
//! use plimsoll_core as plimsoll;
//! use plimsoll_macros::{LabelSet, LabelValue};
//!
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, LabelValue)]
//! #[plimsoll(crate = plimsoll)]
//! enum Tier { Free, Paid, Other }
//!
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, LabelSet)]
//! #[plimsoll(crate = plimsoll)]
//! struct Plan { tier: Tier }
//!
//! assert_eq!(<Plan as plimsoll::LabelSet>::NAMES, ["tier"]);
//! ```
//!
//! # Compile errors
//!
//! Each mistake below is refused with a message that points at it.
//!
//! A label set needs named fields, so no tuple struct:
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! struct Route(String);
//! ```
//!
//! nor unit struct (a family without labels uses `()`):
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! struct Nothing;
//! ```
//!
//! nor enum (derive `LabelValue` on it and make it a field):
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! enum Method { Get, Other }
//! ```
//!
//! nor union:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, plimsoll_macros::LabelSet)]
//! union Bits { small: u8, large: u32 }
//! ```
//!
//! A label set is one concrete type, so no generics:
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! struct Labels<T> { value: T }
//! ```
//!
//! Unknown attribute arguments are refused, on a field:
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! struct Labels { #[label(rename = "route")] path: String }
//! ```
//!
//! on the struct:
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! #[label_set(borrowed = LabelsKey)]
//! struct Labels { path: String }
//! ```
//!
//! and on a variant:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelValue)]
//! enum Tier { #[label(rename = "free")] Free, Other }
//! ```
//!
//! A helper attribute in the wrong place is refused too:
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! #[label(name = "labels")]
//! struct Labels { path: String }
//! ```
//!
//! A label name that registration would refuse is refused at compile time:
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! struct Labels { tenant_id: String }
//! ```
//!
//! ```compile_fail
//! #[derive(Clone, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelSet)]
//! struct Labels { route: String, #[label(name = "route")] path: String }
//! ```
//!
//! A closed set needs a catch-all variant:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelValue)]
//! enum Tier { Free, Paid }
//! ```
//!
//! Two variants cannot share a value:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelValue)]
//! enum Tier { Free, #[label(value = "free")] Trial, Other }
//! ```
//!
//! A variant cannot carry fields:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelValue)]
//! enum Tier { Free, Custom(u32), Other }
//! ```
//!
//! and `LabelValue` is for enums only:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, plimsoll_macros::LabelValue)]
//! struct Tier { name: &'static str }
//! ```

use proc_macro::TokenStream;
use syn::{DeriveInput, Generics, parse_macro_input};

mod attr;
mod label_set;
mod label_value;

/// Implements `LabelSet` for a struct with named fields, and with
/// `#[label_set(key = Name)]` declares its borrowed key `Name<'a>`.
///
/// Attributes: `#[label(name = "..")]` on a field renames its label;
/// `#[label_set(key = Name)]` and `#[plimsoll(crate = path)]` go on the
/// struct. See the [crate docs](crate) for the details and an example.
#[proc_macro_derive(LabelSet, attributes(label, label_set, plimsoll))]
pub fn derive_label_set(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    label_set::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `LabelValue`, `LabelField` and `ClosedLabel` for a fieldless
/// enum with a catch-all variant (`Other`, or the one marked
/// `#[label(other)]`).
///
/// Attributes: `#[label(value = "..")]` and `#[label(other)]` on a variant;
/// `#[plimsoll(crate = path)]` on the enum. See the [crate docs](crate) for
/// the details and an example.
#[proc_macro_derive(LabelValue, attributes(label, plimsoll))]
pub fn derive_label_value(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    label_value::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Refuses type, lifetime and const parameters: a label set or value is one
/// concrete `'static` type whose label names and values are fixed.
fn reject_generics(generics: &Generics, derive: &str, kind: &str) -> syn::Result<()> {
    if generics.params.is_empty() && generics.where_clause.is_none() {
        return Ok(());
    }
    Err(syn::Error::new_spanned(
        generics,
        format!(
            "`derive({derive})` does not support generic {kind}s: a label type is one \
             concrete `'static` type whose labels are fixed"
        ),
    ))
}
