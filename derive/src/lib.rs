//! # tickwire-derive: `#[derive(Patch)]`
//!
//! Derives [`tickwire_shared::patch::Patch`], the in-place path that applies
//! a delta's field patch (PROTOCOL.md §8.5) to an entity state without
//! decoding a whole new state; the same impl also reads a whole state in
//! place ([`tickwire_shared::patch::read_in_place`], for full snapshots).
//! Hook it into your game with `tickwire_shared::derived_patch_hooks!();`
//! inside your `impl GameProtocol` (it overrides `patch_in_place`,
//! `read_in_place`, `read_unchanged`, `diff_fields` and `read_ahead`). The
//! generated impl visits the fields exactly as serde's derived `Serialize`
//! hands them to bincode:
//!
//! * a struct (named fields, tuple or unit) is its fields in declaration
//!   order; a newtype is its inner value;
//! * an enum is its variant index (the declaration position, as serde and
//!   bincode number variants), then that variant's fields in order;
//! * a field of type `PhantomData<…>` is nothing (serde writes nothing for
//!   it);
//! * every type parameter gets a `Patch` bound.
//!
//! Every field's own type must implement `Patch`: `tickwire_shared` covers
//! the primitives, `String`, `Arc<str>`, `Option`, `Vec`, arrays, tuples (up
//! to 4), glam's `Vec2`/`Vec3`/`Vec4` and the [`quantize`] types; derive it on
//! your nested types too.
//!
//! The type must also derive serde's `Serialize`/`Deserialize` (a hand-written
//! serde impl can serialize anything; the macro cannot see it). Serde
//! attributes that change the serialized layout are refused with a compile
//! error, because the in-place path would disagree with the bytes the server
//! diffs: `skip`, `skip_serializing`, `skip_serializing_if`,
//! `skip_deserializing`, `flatten`, `with`, `serialize_with`,
//! `deserialize_with`, `getter` on fields; `skip*`, `with`, `*_with`, `other`,
//! `untagged` on variants; `tag`, `content`, `untagged`, `from`, `try_from`,
//! `into`, `remote`, `field_identifier`, `variant_identifier` on the type,
//! and any serde attribute this macro does not know. Accepted (no effect on
//! bincode's layout): `rename`, `rename_all`, `rename_all_fields`, `alias`,
//! `default`, `bound`, `borrow`, `deny_unknown_fields`, `expecting`,
//! `crate`, and `transparent` (with skipped fields refused, a transparent
//! struct has the same bincode layout as the plain one).
//!
//! The generated code names `::tickwire_shared`, so the crate using the
//! derive depends on `tickwire-shared` directly.
//!
//! ```
//! use std::sync::Arc;
//!
//! use serde::{Deserialize, Serialize};
//! use tickwire_derive::Patch;
//! use tickwire_shared::patch::{Patch as _, PatchScratch, patch_in_place, patch_with_serde};
//! use tickwire_shared::{Limits, NetId, Reader, Snapshot, delta};
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
//! enum Kind { Player, Rock { size: u8 } }
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
//! struct Entity { kind: Kind, x: i32, y: i32, name: Arc<str> }
//!
//! let base = Entity { kind: Kind::Player, x: 10, y: 20, name: "ann".into() };
//! let cur = Entity { x: 12, name: "anna".into(), ..base.clone() };
//! assert_eq!(base.field_count(), 4); // variant index, x, y, name
//!
//! let delta = delta::diff(
//!     &Snapshot::from_vec(vec![(NetId(1), base.clone())]).unwrap(),
//!     &Snapshot::from_vec(vec![(NetId(1), cur.clone())]).unwrap(),
//! )
//! .unwrap();
//! // No removals, one patched entity (id 1), then its patch.
//! assert_eq!(delta[..3], [0, 1, 1]);
//! let limits = Limits::default();
//!
//! let mut fast = base.clone();
//! patch_in_place(&mut fast, &mut Reader::new(&delta[3..]), &limits).unwrap();
//! assert_eq!(fast, cur);
//!
//! // The serde path, which the fast path must always agree with.
//! let mut slow = base;
//! let mut scratch = PatchScratch::default();
//! patch_with_serde(&mut slow, &mut Reader::new(&delta[3..]), &limits, &mut scratch).unwrap();
//! assert_eq!(slow, cur);
//! ```
//!
//! [`tickwire_shared::patch::Patch`]: https://docs.rs/tickwire-shared/latest/tickwire_shared/patch/trait.Patch.html
//! [`tickwire_shared::patch::read_in_place`]: https://docs.rs/tickwire-shared/latest/tickwire_shared/patch/fn.read_in_place.html
//! [`quantize`]: https://docs.rs/tickwire-shared/latest/tickwire_shared/quantize/index.html
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Literal, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Fields, Token, Type, parse_macro_input, parse_quote};

/// Derives `tickwire_shared::patch::Patch`; see the [crate docs](crate).
#[proc_macro_derive(Patch)]
pub fn derive_patch(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Where a serde attribute sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Container,
    Variant,
    Field,
}

/// The serde attributes that keep bincode's layout, per level.
fn allowed(level: Level, name: &str) -> bool {
    match level {
        Level::Container => matches!(
            name,
            "rename"
                | "rename_all"
                | "rename_all_fields"
                | "deny_unknown_fields"
                | "bound"
                | "default"
                | "crate"
                | "expecting"
                | "transparent"
        ),
        Level::Variant => matches!(name, "rename" | "rename_all" | "alias" | "bound" | "borrow"),
        Level::Field => matches!(name, "rename" | "alias" | "default" | "bound" | "borrow"),
    }
}

/// Why a refused serde attribute changes the layout.
fn why(name: &str) -> &'static str {
    match name {
        "skip" | "skip_serializing" | "skip_deserializing" => {
            "leaves it out of the serialized fields (or out of one direction only)"
        }
        "skip_serializing_if" => "makes the serialized fields depend on the value",
        "flatten" => "serializes the field as map entries",
        "with" | "serialize_with" | "deserialize_with" | "getter" => {
            "replaces serde's impl with one whose layout the derive cannot see"
        }
        "tag" | "content" | "untagged" => "replaces bincode's variant index",
        "other" => "only exists with tagged enums",
        "from" | "try_from" | "into" | "remote" => "serializes the type as another type",
        "field_identifier" | "variant_identifier" => "deserializes the type from an identifier",
        _ => "is not known to keep serde's bincode layout",
    }
}

/// Checks the `#[serde(...)]` attributes of one item, pushing an error for
/// each one that would make the derived visit disagree with serde.
fn check_serde(attrs: &[Attribute], level: Level, errors: &mut Vec<syn::Error>) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let parsed = attr.parse_nested_meta(|meta| {
            // Consume the attribute's value (`= …` or `(…)`), whatever it is.
            while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                meta.input.parse::<proc_macro2::TokenTree>()?;
            }
            let path = &meta.path;
            let name = path
                .get_ident()
                .map_or_else(|| quote!(#path).to_string(), ToString::to_string);
            if !allowed(level, &name) {
                let what = match level {
                    Level::Container => "type",
                    Level::Variant => "variant",
                    Level::Field => "field",
                };
                errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format!(
                        "#[derive(Patch)] does not support #[serde({name})] on a {what}: it {}, \
                         so the in-place patch would disagree with serde's layout; remove it \
                         or implement tickwire_shared::patch::Patch by hand",
                        why(&name)
                    ),
                ));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
}

/// True for `PhantomData<…>` (by its last path segment): serde writes
/// nothing for it, so it has no fields.
fn is_phantom(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "PhantomData"),
        Type::Group(g) => is_phantom(&g.elem),
        Type::Paren(p) => is_phantom(&p.elem),
        _ => false,
    }
}

/// A destructuring pattern suffix for `fields` (`{ a: __f0, .. }`,
/// `(__f0, _)` or nothing) and the bindings of the fields to visit.
fn bind(fields: &Fields, errors: &mut Vec<syn::Error>) -> (TokenStream2, Vec<proc_macro2::Ident>) {
    bind_as(fields, "f", errors)
}

/// [`bind`] with bindings named `__tickwire_{prefix}{i}`.
fn bind_as(
    fields: &Fields,
    prefix: &str,
    errors: &mut Vec<syn::Error>,
) -> (TokenStream2, Vec<proc_macro2::Ident>) {
    let mut bindings = Vec::new();
    let mut parts = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        check_serde(&f.attrs, Level::Field, errors);
        let b = if is_phantom(&f.ty) {
            quote!(_)
        } else {
            let b = format_ident!("__tickwire_{}{}", prefix, i);
            bindings.push(b.clone());
            quote!(#b)
        };
        parts.push(match &f.ident {
            Some(name) => quote!(#name: #b),
            None => b,
        });
    }
    let pattern = match fields {
        Fields::Named(_) => quote!({ #(#parts),* }),
        Fields::Unnamed(_) => quote!(( #(#parts),* )),
        Fields::Unit => quote!(),
    };
    (pattern, bindings)
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let krate = quote!(::tickwire_shared::patch);
    let mut errors = Vec::new();
    check_serde(&input.attrs, Level::Container, &mut errors);

    let p = quote!(__tickwire_patcher);
    let d = quote!(__tickwire_differ);
    let base = quote!(__tickwire_base);
    let (count_body, patch_body, diff_body, ahead_body) = match &input.data {
        Data::Struct(s) => {
            let (pattern, bindings) = bind(&s.fields, &mut errors);
            let count = if bindings.is_empty() {
                quote!(0usize)
            } else {
                quote!(#(#krate::Patch::field_count(#bindings))+*)
            };
            // The base's bindings; its fields were checked above.
            let (base_pattern, base_bindings) = bind_as(&s.fields, "b", &mut Vec::new());
            (
                quote!(match self { Self #pattern => #count }),
                quote!(match self {
                    Self #pattern => {
                        #(#krate::Patch::patch(#bindings, #p)?;)*
                        ::core::result::Result::Ok(())
                    }
                }),
                quote!(match (self, #base) {
                    (Self #pattern, Self #base_pattern) => {
                        #(#krate::Patch::diff(#bindings, #base_bindings, #d)?;)*
                        ::core::result::Result::Ok(())
                    }
                }),
                quote!(match self {
                    Self #pattern => 0usize #(.wrapping_add(#krate::Patch::read_ahead(#bindings)))*
                }),
            )
        }
        Data::Enum(e) if e.variants.is_empty() => (
            quote!(match *self {}),
            quote!(match *self {}),
            quote!(match *self {}),
            quote!(match *self {}),
        ),
        Data::Enum(e) => {
            let mut count_arms = Vec::new();
            let mut patch_arms = Vec::new();
            let mut diff_arms = Vec::new();
            let mut ahead_arms = Vec::new();
            for (i, v) in e.variants.iter().enumerate() {
                check_serde(&v.attrs, Level::Variant, &mut errors);
                let Ok(index) = u32::try_from(i) else {
                    errors.push(syn::Error::new_spanned(v, "more than u32::MAX variants"));
                    break;
                };
                let index = Literal::u32_suffixed(index);
                let name = &v.ident;
                let (pattern, bindings) = bind(&v.fields, &mut errors);
                count_arms.push(quote!(
                    Self::#name #pattern => 1usize #(+ #krate::Patch::field_count(#bindings))*
                ));
                ahead_arms.push(quote!(
                    Self::#name #pattern => 0usize #(.wrapping_add(#krate::Patch::read_ahead(#bindings)))*
                ));
                let (base_pattern, base_bindings) = bind_as(&v.fields, "b", &mut Vec::new());
                diff_arms.push(quote!(
                    (Self::#name #pattern, Self::#name #base_pattern) => {
                        #d.variant(#index, #index)?;
                        #(#krate::Patch::diff(#bindings, #base_bindings, #d)?;)*
                        ::core::result::Result::Ok(())
                    }
                ));
                patch_arms.push(if bindings.is_empty() {
                    quote!(Self::#name #pattern => #p.variant(#index))
                } else {
                    quote!(Self::#name #pattern => {
                        #p.variant(#index)?;
                        #(#krate::Patch::patch(#bindings, #p)?;)*
                        ::core::result::Result::Ok(())
                    })
                });
            }
            (
                quote!(match self { #(#count_arms,)* }),
                quote!(match self { #(#patch_arms,)* }),
                // Another variant changes the layout: the serde path decides.
                quote!(
                    #[allow(unreachable_patterns)]
                    match (self, #base) {
                        #(#diff_arms)*
                        _ => ::core::result::Result::Err(#krate::PatchError::Layout),
                    }
                ),
                quote!(match self { #(#ahead_arms,)* }),
            )
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "#[derive(Patch)] does not support unions (serde cannot derive them either)",
            ));
        }
    };

    if let Some(mut first) = errors.pop() {
        // Report them in source order, all at once.
        for e in errors.into_iter().rev() {
            let mut e = e;
            e.combine(first);
            first = e;
        }
        return Err(first);
    }

    let name = &input.ident;
    let mut generics = input.generics.clone();
    for tp in generics.type_params_mut() {
        tp.bounds.push(parse_quote!(#krate::Patch));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Patch for #name #ty_generics #where_clause {
            #[inline(always)]
            fn field_count(&self) -> usize {
                #count_body
            }

            #[inline(always)]
            fn patch(
                &mut self,
                #p: &mut #krate::Patcher<'_, '_>,
            ) -> ::core::result::Result<(), #krate::PatchError> {
                #patch_body
            }

            #[inline(always)]
            fn diff(
                &self,
                #base: &Self,
                #d: &mut ::tickwire_shared::diff::Differ<'_>,
            ) -> ::core::result::Result<(), #krate::PatchError> {
                #diff_body
            }

            #[inline(always)]
            fn read_ahead(&self) -> usize {
                #ahead_body
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: TokenStream2) -> String {
        let input: DeriveInput = syn::parse2(src).unwrap();
        match expand(&input) {
            Ok(ts) => panic!("expected an error, got {ts}"),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn ok(src: TokenStream2) -> String {
        let input: DeriveInput = syn::parse2(src).unwrap();
        expand(&input).unwrap().to_string()
    }

    #[test]
    fn layout_changing_serde_attributes_are_refused() {
        for (src, needle) in [
            (
                quote!(
                    struct S {
                        #[serde(skip)]
                        a: u8,
                    }
                ),
                "#[serde(skip)] on a field",
            ),
            (
                quote!(
                    struct S {
                        #[serde(default, skip_serializing_if = "is_zero")]
                        a: u8,
                    }
                ),
                "#[serde(skip_serializing_if)]",
            ),
            (
                quote!(
                    struct S {
                        #[serde(skip_deserializing)]
                        a: u8,
                    }
                ),
                "skip_deserializing",
            ),
            (
                quote!(
                    struct S {
                        #[serde(flatten)]
                        a: T,
                    }
                ),
                "flatten",
            ),
            (
                quote!(
                    struct S(#[serde(with = "m")] u8);
                ),
                "#[serde(with)]",
            ),
            (
                quote!(
                    struct S(#[serde(serialize_with = "f")] u8);
                ),
                "serialize_with",
            ),
            (
                quote!(
                    struct S(#[serde(deserialize_with = "f")] u8);
                ),
                "deserialize_with",
            ),
            (
                quote!(
                    #[serde(tag = "t")]
                    enum E {
                        A,
                    }
                ),
                "#[serde(tag)] on a type",
            ),
            (
                quote!(
                    #[serde(tag = "t", content = "c")]
                    enum E {
                        A(u8),
                    }
                ),
                "#[serde(content)]",
            ),
            (
                quote!(
                    #[serde(untagged)]
                    enum E {
                        A(u8),
                    }
                ),
                "untagged",
            ),
            (
                quote!(
                    enum E {
                        #[serde(untagged)]
                        A(u8),
                    }
                ),
                "on a variant",
            ),
            (
                quote!(
                    enum E {
                        #[serde(skip)]
                        A,
                        B,
                    }
                ),
                "#[serde(skip)] on a variant",
            ),
            (
                quote!(
                    #[serde(from = "u8")]
                    struct S(u8);
                ),
                "#[serde(from)]",
            ),
            (
                quote!(
                    #[serde(into = "u8")]
                    struct S(u8);
                ),
                "#[serde(into)]",
            ),
            (
                quote!(
                    #[serde(remote = "X")]
                    struct S(u8);
                ),
                "remote",
            ),
            (
                quote!(
                    struct S {
                        #[serde(frobnicate)]
                        a: u8,
                    }
                ),
                "not known",
            ),
            (quote!(union U { a: u8 }), "unions"),
        ] {
            let e = err(src.clone());
            assert!(e.contains(needle), "{src}: {e}");
        }
    }

    #[test]
    fn every_refused_attribute_is_reported() {
        let e = err(quote!(
            struct S {
                #[serde(skip)]
                a: u8,
                #[serde(flatten)]
                b: T,
            }
        ));
        assert!(e.contains("skip") && e.contains("flatten"), "{e}");
    }

    #[test]
    fn layout_neutral_serde_attributes_are_accepted() {
        ok(quote!(
            #[serde(rename = "s", rename_all = "camelCase", deny_unknown_fields)]
            #[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
            #[serde(default, crate = "serde", expecting = "an s")]
            struct S<T> {
                #[serde(rename(serialize = "x", deserialize = "y"), alias = "z", default = "d")]
                a: T,
                #[serde(borrow, bound = "")]
                b: u8,
            }
        ));
        ok(quote!(
            #[serde(transparent)]
            struct W(u8);
        ));
        ok(quote!(
            #[serde(rename_all_fields = "UPPERCASE")]
            enum E {
                #[serde(rename = "a", alias = "b", rename_all = "kebab-case")]
                A { x: u8 },
            }
        ));
    }

    #[test]
    fn phantom_fields_are_not_visited_and_params_are_bounded() {
        let out = ok(quote!(
            struct S<T, const N: usize> {
                a: [T; N],
                _m: PhantomData<T>,
            }
        ));
        assert!(out.contains("_m : _"), "{out}");
        assert!(
            out.contains("T : :: tickwire_shared :: patch :: Patch"),
            "{out}"
        );
        assert_eq!(out.matches("field_count (__tickwire_f").count(), 1, "{out}");
    }
}
