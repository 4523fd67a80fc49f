//! `#[derive(LabelValue)]`: a fieldless enum as a closed set of label values
//! with a catch-all variant.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr};

use crate::attr::{self, PLIMSOLL};

const LABEL: &str = "label";

/// The variant that is the catch-all when none is marked `#[label(other)]`.
const OTHER: &str = "Other";

struct Variant {
    ident: Ident,
    value: String,
    value_span: Span,
    other: Option<Span>,
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let DeriveInput {
        attrs,
        ident,
        generics,
        data,
        ..
    } = input;
    let data = match data {
        Data::Enum(data) => data,
        Data::Struct(data) => {
            return Err(syn::Error::new(
                data.struct_token.span,
                "`derive(LabelValue)` supports fieldless enums (a closed set of values); \
                 for a struct of labels, use `derive(LabelSet)`",
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "`derive(LabelValue)` supports fieldless enums, not unions",
            ));
        }
    };
    crate::reject_generics(&generics, "LabelValue", "enum")?;
    let krate = attr::crate_path(&attrs)?;
    attr::reject(&attrs, &[LABEL], "the enum; it goes on variants")?;

    let mut variants: Vec<Variant> = Vec::with_capacity(data.variants.len());
    for variant in data.variants {
        attr::reject(&variant.attrs, &[PLIMSOLL], "a variant")?;
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                &variant.fields,
                format!(
                    "variant `{}` has fields; a closed label value is a fieldless variant",
                    variant.ident
                ),
            ));
        }
        let (value, other) = variant_attrs(&variant.attrs)?;
        let (value, value_span) = match value {
            Some(lit) => (lit.value(), lit.span()),
            None => (
                snake_case(&variant.ident.unraw().to_string()),
                variant.ident.span(),
            ),
        };
        if value.is_empty() {
            return Err(syn::Error::new(
                value_span,
                "a label value cannot be empty: Prometheus reads an empty value as no label",
            ));
        }
        if let Some(earlier) = variants.iter().find(|v| v.value == value) {
            return Err(syn::Error::new(
                value_span,
                format!(
                    "label value {value:?} is used by both `{}` and `{}`",
                    earlier.ident, variant.ident
                ),
            ));
        }
        variants.push(Variant {
            ident: variant.ident,
            value,
            value_span,
            other,
        });
    }
    let other = catch_all(&ident, &variants)?;

    let idents: Vec<_> = variants.iter().map(|v| &v.ident).collect();
    let values: Vec<_> = variants
        .iter()
        .map(|v| LitStr::new(&v.value, v.value_span))
        .collect();
    // The catch-all's own value falls to the `_` arm like any unknown one.
    let known = values.iter().zip(&idents).filter(|(_, v)| **v != other);
    let (known_values, known_idents): (Vec<&LitStr>, Vec<&&Ident>) = known.unzip();

    Ok(quote! {
        impl #krate::LabelValue for #ident {
            #[inline]
            fn write_value(&self, out: &mut #krate::LabelValues<'_>) {
                out.push(<Self as #krate::ClosedLabel>::as_str(self));
            }
        }

        impl #krate::LabelField for #ident {
            type Ref<'a> = Self;
            #[inline]
            fn as_ref_value(&self) -> Self {
                *self
            }
            #[inline]
            fn from_ref_value(value: Self) -> Self {
                value
            }
        }

        impl #krate::ClosedLabel for #ident {
            const VALUES: &'static [&'static str] = &[#(#values),*];
            #[inline]
            fn as_str(&self) -> &'static str {
                match self {
                    #( Self::#idents => #values, )*
                }
            }
            fn from_label(value: &str) -> Self {
                match value {
                    #( #known_values => Self::#known_idents, )*
                    _ => Self::#other,
                }
            }
        }
    })
}

/// `#[label(value = "..")]` and `#[label(other)]` on a variant.
fn variant_attrs(attrs: &[syn::Attribute]) -> syn::Result<(Option<LitStr>, Option<Span>)> {
    let mut value = None;
    let mut other = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(LABEL)) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("value") {
                if value.is_some() {
                    return Err(meta.error("`value` is given twice"));
                }
                value = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else if meta.path.is_ident("other") {
                if !attr::is_flag(&meta) {
                    return Err(meta.error("`other` takes no value: write `#[label(other)]`"));
                }
                if other.is_some() {
                    return Err(meta.error("`other` is given twice"));
                }
                other = Some(meta.path.span());
                Ok(())
            } else {
                Err(meta.error(
                    "unknown `label` attribute on a variant; expected `value = \"..\"` or `other`",
                ))
            }
        })?;
    }
    Ok((value, other))
}

/// The variant unknown inputs map to: the one marked `#[label(other)]`,
/// else the one named `Other`.
fn catch_all<'v>(enum_ident: &Ident, variants: &'v [Variant]) -> syn::Result<&'v Ident> {
    let mut marked = variants.iter().filter(|v| v.other.is_some());
    if let Some(first) = marked.next() {
        if let Some(second) = marked.next() {
            return Err(syn::Error::new(
                second.other.unwrap_or_else(Span::call_site),
                format!(
                    "only one variant can be `#[label(other)]`; `{}` is already",
                    first.ident
                ),
            ));
        }
        return Ok(&first.ident);
    }
    variants
        .iter()
        .find(|v| v.ident == OTHER)
        .map(|v| &v.ident)
        .ok_or_else(|| {
            syn::Error::new(
                enum_ident.span(),
                format!(
                    "`{enum_ident}` has no catch-all variant: add a variant `Other` or mark one \
                     `#[label(other)]`, so that unknown inputs map onto it instead of becoming \
                     new label values"
                ),
            )
        })
}

/// `ServerError` → `server_error`, `HTTPVersion` → `http_version`, `Http2` →
/// `http2`: a word starts at an upper-case letter that follows a lower-case
/// letter or a digit, or that ends a run of capitals before a lower-case one.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_uppercase() {
            out.push(c);
            continue;
        }
        let starts_word = match i.checked_sub(1).map(|p| chars[p]) {
            None | Some('_') => false,
            Some(prev) if prev.is_lowercase() || prev.is_numeric() => true,
            Some(prev) if prev.is_uppercase() => chars.get(i + 1).is_some_and(|n| n.is_lowercase()),
            Some(_) => false,
        };
        if starts_word {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_splits_words() {
        for (name, expected) in [
            ("Other", "other"),
            ("ServerError", "server_error"),
            ("ClientError", "client_error"),
            ("HTTPVersion", "http_version"),
            ("GET", "get"),
            ("Http2", "http2"),
            ("Status5xx", "status5xx"),
            ("Status4Xx", "status4_xx"),
            ("already_snake", "already_snake"),
            ("Mixed_Case", "mixed_case"),
            ("A", "a"),
        ] {
            assert_eq!(snake_case(name), expected, "{name}");
        }
    }
}
