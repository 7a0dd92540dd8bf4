//! A serde deserializer over a borrowed DynamoDB attribute value: an event's payload decoded
//! in place, straight into its typed struct (no copy of the item, no untyped JSON value in
//! between). It accepts what the JSON-value path accepts: numbers are read as serde_dynamo
//! reads them (`i64`, else `u64`, else `f64`), and binary values, which have no JSON form, are
//! refused wherever they are in the payload.

use std::collections::hash_map;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::forward_to_deserialize_any;

/// Why a payload does not decode (the message becomes the event error's reason).
#[derive(Debug)]
pub(crate) struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// A borrowed attribute value as a serde deserializer.
#[derive(Clone, Copy)]
pub(crate) struct Attr<'a>(pub(crate) &'a AttributeValue);

/// An `N` value: serde_dynamo's reading, the narrowest of `i64`, `u64`, `f64` that parses.
fn visit_number<'de, V: Visitor<'de>>(n: &str, visitor: V) -> Result<V::Value, DeError> {
    if let Ok(i) = n.parse::<i64>() {
        visitor.visit_i64(i)
    } else if let Ok(u) = n.parse::<u64>() {
        visitor.visit_u64(u)
    } else {
        match n.parse::<f64>() {
            Ok(f) => visitor.visit_f64(f),
            Err(_) => Err(DeError(format!("`{n}` is not a number"))),
        }
    }
}

impl<'de> de::Deserializer<'de> for Attr<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            AttributeValue::S(s) => visitor.visit_borrowed_str(s),
            AttributeValue::N(n) => visit_number(n, visitor),
            AttributeValue::Bool(b) => visitor.visit_bool(*b),
            AttributeValue::Null(_) => visitor.visit_unit(),
            AttributeValue::M(m) => visitor.visit_map(Entries::new(m)),
            AttributeValue::L(l) => visitor.visit_seq(SeqDeserializer::new(l.iter().map(Attr))),
            AttributeValue::Ss(ss) => visitor.visit_seq(SeqDeserializer::new(
                ss.iter().map(|s| BorrowedStrDeserializer::new(s)),
            )),
            AttributeValue::Ns(ns) => {
                visitor.visit_seq(SeqDeserializer::new(ns.iter().map(|n| Number(n))))
            }
            AttributeValue::B(_) | AttributeValue::Bs(_) => Err(DeError(
                "binary attribute values have no JSON form".to_owned(),
            )),
            _ => Err(DeError("unsupported attribute type".to_owned())),
        }
    }

    // The payloads' integers: parsed where they are, no detour through `deserialize_any`.
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            AttributeValue::N(n) => match n.parse::<i64>() {
                Ok(i) => visitor.visit_i64(i),
                Err(_) => visit_number(n, visitor),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            AttributeValue::Null(_) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    // Unit variants as strings, others as a map of one entry (as JSON has them).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            AttributeValue::S(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            AttributeValue::M(m) if m.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(Entries::new(m)))
            }
            _ => Err(DeError(
                "an enum is a string or a map of one entry".to_owned(),
            )),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Attr<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// One number of an `NS` set.
struct Number<'a>(&'a str);

impl<'de> de::Deserializer<'de> for Number<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visit_number(self.0, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Number<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// The entries of an `M` value, keys borrowed.
struct Entries<'a> {
    iter: hash_map::Iter<'a, String, AttributeValue>,
    value: Option<&'a AttributeValue>,
}

impl<'a> Entries<'a> {
    fn new(map: &'a std::collections::HashMap<String, AttributeValue>) -> Self {
        Self {
            iter: map.iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(BorrowedStrDeserializer::new(key))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(Attr(value)),
            None => Err(DeError("a map value without its key".to_owned())),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}
