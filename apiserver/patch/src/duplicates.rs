//! Fields given twice in one JSON object: what `fieldValidation=Strict|Warn`
//! reports as "duplicate field" (a parsed `Value` keeps only the last one,
//! so this reads the bytes).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Paths (`spec.replicas`, `spec.template.spec.containers[0].name`) of the
/// fields a JSON document repeats; empty when it has none or is not JSON.
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    let scan = Scan {
        path: String::new(),
        out: &mut out,
    };
    if scan.deserialize(&mut de).is_err() {
        return Vec::new();
    }
    out
}

struct Scan<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let path = if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.out.push(path.clone());
            }
            map.next_value_seed(Scan {
                path,
                out: self.out,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let path = format!("{}[{i}]", self.path);
            if seq
                .next_element_seed(Scan {
                    path,
                    out: self.out,
                })?
                .is_none()
            {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_at_any_depth() {
        let doc = br#"{"spec": {"replicas": 1, "replicas": 2, "template": {"spec": {"containers": [{"name": "a", "name": "b"}]}}}}"#;
        assert_eq!(
            duplicate_fields(doc),
            vec!["spec.replicas", "spec.template.spec.containers[0].name"]
        );
        assert!(duplicate_fields(br#"{"a": 1, "b": {"a": 2}}"#).is_empty());
        assert!(duplicate_fields(b"not json").is_empty());
    }
}
