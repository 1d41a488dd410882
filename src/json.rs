//! JSON objects into the derived structs read from bytes (discovery, token
//! responses, session and login cookies, refresh outcomes) or from a parsed
//! `Value` (the configuration).

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

/// `serde_json::from_slice` for a struct that is a JSON object. serde's
/// derive would also read the struct from a JSON array, by position, which
/// none of these documents is; asking for a map leaves that second reader
/// of each struct out of the module (5.4 KB of wasm for these five).
pub(crate) fn from_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = object(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A struct read from any deserializer (JSON bytes, a parsed `Value`) as a
/// map only.
pub(crate) fn object<'de, T: Deserialize<'de>, D: Deserializer<'de>>(de: D) -> Result<T, D::Error> {
    T::deserialize(ObjectOnly(de))
}

/// A deserializer that reads a struct as a map (a JSON object) only.
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::from_object;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Pair {
        a: u64,
        b: String,
    }

    #[test]
    fn reads_objects_and_refuses_arrays() {
        let p: Pair = from_object(br#"{"b":"x","a":1}"#).expect("an object");
        assert_eq!(
            p,
            Pair {
                a: 1,
                b: "x".into()
            }
        );
        assert!(from_object::<Pair>(br#"[1,"x"]"#).is_err());
        assert!(from_object::<Pair>(br#"{"a":1,"b":"x"} x"#).is_err());
    }
}
