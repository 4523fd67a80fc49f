//! Attribute parsing shared by both derives.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, LitStr, Path};

/// The helper attribute that names the crate generated code refers to.
pub(crate) const PLIMSOLL: &str = "plimsoll";

/// The path generated code uses for `plimsoll_core`: `::plimsoll_core`,
/// unless `#[plimsoll(crate = path)]` names another one (the `plimsoll`
/// facade re-exports all of `plimsoll_core` at its root).
pub(crate) fn crate_path(attrs: &[Attribute]) -> syn::Result<TokenStream> {
    let mut found: Option<Path> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(PLIMSOLL)) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("crate") {
                return Err(meta.error("unknown `plimsoll` attribute; expected `crate = path`"));
            }
            if found.is_some() {
                return Err(meta.error("`crate` is given twice"));
            }
            let value = meta.value()?;
            // `crate = "plimsoll"` (as serde spells it) reads like `crate = plimsoll`.
            let path = if value.peek(LitStr) {
                value.parse::<LitStr>()?.parse::<Path>()?
            } else {
                value.parse::<Path>()?
            };
            found = Some(path);
            Ok(())
        })?;
    }
    Ok(match found {
        Some(path) => quote!(#path),
        None => quote!(::plimsoll_core),
    })
}

/// Fails on the first attribute among `attrs` named one of `names`: a helper
/// attribute written where it means nothing.
pub(crate) fn reject(attrs: &[Attribute], names: &[&str], place: &str) -> syn::Result<()> {
    for attr in attrs {
        if let Some(name) = names.iter().find(|name| attr.path().is_ident(name)) {
            return Err(syn::Error::new_spanned(
                attr,
                format!("`#[{name}(..)]` is not supported on {place}"),
            ));
        }
    }
    Ok(())
}

/// Whether the attribute argument being parsed is a bare flag (`other`), not
/// `other = ..` or `other(..)`.
pub(crate) fn is_flag(meta: &syn::meta::ParseNestedMeta<'_>) -> bool {
    meta.input.is_empty() || meta.input.peek(syn::Token![,])
}
