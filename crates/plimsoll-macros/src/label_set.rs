//! `#[derive(LabelSet)]`: a struct's named fields as labels, and optionally
//! its borrowed key (what `plimsoll_core::label_key!` declares by hand).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr};

use crate::attr::{self, PLIMSOLL};

const LABEL: &str = "label";
const LABEL_SET: &str = "label_set";

/// The name plimsoll adds to every series; a label set cannot use it.
const TENANT_ID: &str = "tenant_id";

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let DeriveInput {
        attrs,
        vis,
        ident,
        generics,
        data,
    } = input;
    crate::reject_generics(&generics, "LabelSet", "struct")?;
    let fields = match data {
        Data::Struct(data) => match data.fields {
            Fields::Named(fields) => fields.named,
            Fields::Unnamed(fields) => {
                return Err(syn::Error::new(
                    fields.span(),
                    "`derive(LabelSet)` needs named fields, whose names are the label names; \
                     found a tuple struct",
                ));
            }
            Fields::Unit => {
                return Err(syn::Error::new(
                    ident.span(),
                    "`derive(LabelSet)` needs named fields, whose names are the label names; \
                     found a unit struct (a family without labels uses `()`)",
                ));
            }
        },
        Data::Enum(data) => {
            return Err(syn::Error::new(
                data.enum_token.span,
                "`derive(LabelSet)` supports structs with named fields, not enums; \
                 for a closed set of values, `derive(LabelValue)` on the enum and make it a field",
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "`derive(LabelSet)` supports structs with named fields, not unions",
            ));
        }
    };

    let krate = attr::crate_path(&attrs)?;
    attr::reject(&attrs, &[LABEL], "the struct; it goes on fields")?;
    let key = key_name(&attrs)?;

    let mut idents = Vec::with_capacity(fields.len());
    let mut types = Vec::with_capacity(fields.len());
    let mut names: Vec<(String, proc_macro2::Span)> = Vec::with_capacity(fields.len());
    for field in &fields {
        attr::reject(&field.attrs, &[LABEL_SET, PLIMSOLL], "a field")?;
        let field_ident = field.ident.as_ref().expect("named fields have names");
        let name = match label_rename(&field.attrs)? {
            Some(lit) => (lit.value(), lit.span()),
            None => (field_ident.unraw().to_string(), field_ident.span()),
        };
        check_label_name(&name.0, name.1, &names)?;
        names.push(name);
        idents.push(field_ident);
        types.push(&field.ty);
    }
    let names = names.iter().map(|(name, _)| name);

    let label_set = quote! {
        impl #krate::LabelSet for #ident {
            const NAMES: &'static [&'static str] = &[#(#names),*];
            fn write_values(&self, out: &mut #krate::LabelValues<'_>) {
                #( #krate::LabelValue::write_value(&self.#idents, out); )*
            }
        }
    };
    let Some(key) = key else {
        return Ok(label_set);
    };
    if key == ident {
        return Err(syn::Error::new(
            key.span(),
            "the key needs a name of its own, not the label set's",
        ));
    }
    if idents.is_empty() {
        return Err(syn::Error::new(
            key.span(),
            "a label set without fields has nothing to borrow; record with the set itself",
        ));
    }

    let key_doc = format!(
        " The borrowed key of [`{ident}`]: the same labels in the same order, \
         borrowed, hashing exactly like `{ident}`. Recording with it allocates \
         nothing once the series exists."
    );
    let field_docs = idents
        .iter()
        .map(|field| format!(" `{ident}::{}`, borrowed.", field.unraw()));
    Ok(quote! {
        #label_set

        #[doc = #key_doc]
        #[derive(
            ::core::clone::Clone,
            ::core::marker::Copy,
            ::core::fmt::Debug,
            ::core::hash::Hash,
        )]
        #vis struct #key<'a> {
            #(
                #[doc = #field_docs]
                pub #idents: <#types as #krate::LabelField>::Ref<'a>,
            )*
        }

        impl #krate::LabelKey<#ident> for #key<'_> {
            #[inline]
            fn matches(&self, labels: &#ident) -> bool {
                #( #krate::LabelField::as_ref_value(&labels.#idents) == self.#idents )&&*
            }
            fn to_labels(&self) -> #ident {
                #ident {
                    #( #idents: <#types as #krate::LabelField>::from_ref_value(self.#idents), )*
                }
            }
        }
    })
}

/// The key's name from `#[label_set(key = Name)]`, if any.
fn key_name(attrs: &[syn::Attribute]) -> syn::Result<Option<Ident>> {
    let mut key = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(LABEL_SET)) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("key") {
                return Err(meta.error("unknown `label_set` attribute; expected `key = Name`"));
            }
            if key.is_some() {
                return Err(meta.error("`key` is given twice"));
            }
            key = Some(meta.value()?.parse::<Ident>()?);
            Ok(())
        })?;
    }
    Ok(key)
}

/// The label name from `#[label(name = "..")]` on a field, if any.
fn label_rename(attrs: &[syn::Attribute]) -> syn::Result<Option<LitStr>> {
    let mut name = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(LABEL)) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("name") {
                return Err(
                    meta.error("unknown `label` attribute on a field; expected `name = \"..\"`")
                );
            }
            if name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            name = Some(meta.value()?.parse::<LitStr>()?);
            Ok(())
        })?;
    }
    Ok(name)
}

/// Refuses at compile time what registering the family would refuse at run
/// time: a name that is not `[a-zA-Z_][a-zA-Z0-9_]*`, a reserved one, or
/// one given twice.
fn check_label_name(
    name: &str,
    span: proc_macro2::Span,
    earlier: &[(String, proc_macro2::Span)],
) -> syn::Result<()> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    let problem = if !valid {
        format!("label name {name:?} is invalid: label names are [a-zA-Z_][a-zA-Z0-9_]*")
    } else if name.starts_with("__") {
        format!("label name {name:?} is reserved: names starting with `__` belong to Prometheus")
    } else if name == TENANT_ID {
        format!("label name {name:?} is reserved: plimsoll adds it to every series")
    } else if earlier.iter().any(|(other, _)| other == name) {
        format!("label name {name:?} appears twice")
    } else {
        return Ok(());
    };
    Err(syn::Error::new(span, problem))
}
